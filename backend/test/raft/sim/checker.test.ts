// Each checker is fed a hand-made history that breaks its invariant and must report it; a consistent
// history of the same shape must pass. This proves the checkers can fail.

import test from 'ava';
import { EntryType, type ConfState, type Entry } from '../../../src/raft/core/types.ts';
import { COMPACTED, Checker, InvariantViolation, type Invariant } from './checker.ts';
import { SimDisk } from './disk.ts';
import { fingerprint } from './state-machine.ts';

function ent(index: number, term: number, value = ''): Entry {
  return { index, term, type: EntryType.Normal, data: new TextEncoder().encode(value) };
}

function conf(voters: number[], outgoing: number[] = []): ConfState {
  return { voters, learners: [], votersOutgoing: outgoing, learnersNext: [], autoLeave: false };
}

function apply(c: Checker, node: number, before: number, e: Entry, nodeTerm = e.term): void {
  c.applied(node, before, e, fingerprint(e), e.data.length > 0 ? new TextDecoder().decode(e.data) : undefined, nodeTerm);
}

function violates(t: import('ava').ExecutionContext, invariant: Invariant, history: () => void): void {
  const err = t.throws(history, { instanceOf: InvariantViolation });
  t.is((err as InvariantViolation).invariant, invariant);
}

const noLog = (): undefined => undefined;

test('election safety: two leaders of one term', (t) => {
  const c = new Checker();
  c.leader(1, 5, noLog);
  c.leader(1, 5, noLog); // the same leader reported again is fine
  c.leader(2, 6, noLog);
  violates(t, 'election-safety', () => c.leader(2, 5, noLog));
});

test('log matching: same index and term, different entry', (t) => {
  const c = new Checker();
  c.entriesDurable(1, [ent(1, 1, 'a'), ent(2, 1, 'b')], 0);
  c.entriesDurable(2, [ent(1, 1, 'a')], 0);
  violates(t, 'log-matching', () => c.entriesDurable(3, [ent(2, 1, 'x')], 1));
});

test('log matching: same entry after a different predecessor', (t) => {
  const c = new Checker();
  c.entriesDurable(1, [ent(1, 1, 'a'), ent(2, 2, 'b')], 0);
  violates(t, 'log-matching', () => c.entriesDurable(2, [ent(1, 3, 'z'), ent(2, 2, 'b')], 0));
});

test('leader completeness: a new leader lacks a committed entry', (t) => {
  const c = new Checker();
  apply(c, 1, 0, ent(1, 1, 'a'));
  apply(c, 1, 1, ent(2, 1, 'b'));
  const good = (i: number): number | undefined => (i <= 2 ? 1 : undefined);
  c.leader(2, 2, good);
  c.leader(3, 3, (i) => (i === 1 ? COMPACTED : good(i)));
  violates(t, 'leader-completeness', () => c.leader(1, 4, (i) => (i === 1 ? 1 : undefined)));
});

test('leader completeness: an entry committed later is missing from a newer live leader', (t) => {
  const c = new Checker();
  c.leader(2, 3, () => undefined);
  violates(t, 'leader-completeness', () => apply(c, 1, 0, ent(1, 2, 'late')));
});

test('leader completeness counts the term an entry was committed in, not its own term', (t) => {
  const c = new Checker();
  // Leader 2 of term 15 lacks (55, term 6): fine while that entry is committed only in term 16.
  c.leader(2, 15, (i) => (i === 55 ? 15 : 6));
  c.leader(1, 16, () => 6);
  const log = Array.from({ length: 55 }, (_, k) => ent(k + 1, 6, `x${k + 1}`));
  c.leaderCommit(1, 16, log);
  for (const e of log) apply(c, 3, e.index - 1, e, 16);
  // A leader of term 17 must hold it.
  violates(t, 'leader-completeness', () => c.leader(3, 17, (i) => (i === 55 ? 15 : 6)));
  // And a live leader of a later term learns of a commit in an earlier term.
  const d = new Checker();
  d.leader(2, 9, () => undefined);
  violates(t, 'leader-completeness', () => d.leaderCommit(1, 8, [ent(1, 8, 'y')]));
});

test('state machine safety: a leader commits an entry other than the one committed before', (t) => {
  const c = new Checker();
  c.leaderCommit(1, 4, [ent(1, 2, 'e')]);
  // Nobody applied it yet, but a later leader committing something else there is a violation.
  violates(t, 'state-machine-safety', () => c.leaderCommit(5, 5, [ent(1, 3, 'f')]));
});

test('state machine safety: two entries applied at one index', (t) => {
  const c = new Checker();
  apply(c, 1, 0, ent(1, 1, 'a'));
  apply(c, 2, 0, ent(1, 1, 'a'));
  violates(t, 'state-machine-safety', () => apply(c, 3, 0, ent(1, 2, 'b')));
});

test('state machine safety: a snapshot image disagreeing with history', (t) => {
  const c = new Checker();
  apply(c, 1, 0, ent(1, 1, 'a'));
  const bad = { applied: 1, log: [fingerprint(ent(1, 1, 'other'))], conf: undefined };
  violates(t, 'state-machine-safety', () => c.restored(2, bad));
});

function cluster(c: Checker, voters: number[]): Map<number, SimDisk> {
  const disks = new Map<number, SimDisk>();
  for (const id of voters) {
    const d = new SimDisk(id, c);
    disks.set(id, d);
    c.addDisk(d);
  }
  c.setInitialConf(conf(voters));
  return disks;
}

function write(d: SimDisk, entries: Entry[]): void {
  d.complete(d.submit([{ kind: 'entries', entries }]));
}

test('committed entry lost: a quorum of durable logs drops it', (t) => {
  const c = new Checker();
  const disks = cluster(c, [1, 2, 3]);
  write(disks.get(1)!, [ent(1, 1, 'a')]);
  write(disks.get(2)!, [ent(1, 1, 'a')]);
  apply(c, 1, 0, ent(1, 1, 'a'));
  // Node 3 never had it: still held by {1, 2}. Overwriting it on node 2 leaves only node 1.
  violates(t, 'committed-entry-lost', () => write(disks.get(2)!, [ent(1, 2, 'b')]));
});

test('committed entry lost: applying it when no quorum stored it', (t) => {
  const c = new Checker();
  const disks = cluster(c, [1, 2, 3]);
  write(disks.get(1)!, [ent(1, 1, 'a')]);
  violates(t, 'committed-entry-lost', () => apply(c, 1, 0, ent(1, 1, 'a')));
});

test('committed entry lost: a joint configuration needs both majorities', (t) => {
  const c = new Checker();
  const disks = cluster(c, [1, 2, 3, 4, 5]);
  for (const id of [1, 2, 3]) write(disks.get(id)!, [ent(1, 1, 'a')]);
  apply(c, 1, 0, ent(1, 1, 'a'));
  // Held by 1,2,3. Joint {1,4,5} / {1,2,3}: nodes 4 and 5 lack it and form a majority of the incoming
  // half, but not of the outgoing half, so it is still safe.
  c.confApplied(2, conf([1, 4, 5], [1, 2, 3]));
  // Leaving to {1,4,5} alone: 4 and 5 are a majority lacking it.
  violates(t, 'committed-entry-lost', () => c.confApplied(3, conf([1, 4, 5])));
});

test('commit regressed: durable and in memory', (t) => {
  const c = new Checker();
  c.hardStateDurable(1, { term: 1, vote: 1, commit: 0 }, { term: 1, vote: 1, commit: 5 });
  violates(t, 'commit-regressed', () =>
    c.hardStateDurable(1, { term: 1, vote: 1, commit: 5 }, { term: 2, vote: 0, commit: 3 }),
  );
  c.commit(2, 7);
  c.commit(2, 4, true); // a restart may come back with the (lower) durable commit
  violates(t, 'commit-regressed', () => c.commit(2, 3));
});

test('term regressed on disk', (t) => {
  const c = new Checker();
  violates(t, 'term-regressed', () =>
    c.hardStateDurable(1, { term: 4, vote: 0, commit: 0 }, { term: 3, vote: 0, commit: 0 }),
  );
});

test('double vote: two grants in one term, by message or on disk across a restart', (t) => {
  const c = new Checker();
  c.voteGranted(1, 3, 2);
  c.voteGranted(1, 3, 2); // a repeated grant to the same candidate is fine
  c.voteGranted(1, 4, 3);
  violates(t, 'double-vote', () => c.voteGranted(1, 3, 3));
  const d = new Checker();
  d.hardStateDurable(1, { term: 0, vote: 0, commit: 0 }, { term: 3, vote: 2, commit: 0 });
  // After a crash that lost nothing durable, the node comes back with vote 2; voting 3 in term 3 is a bug.
  violates(t, 'double-vote', () =>
    d.hardStateDurable(1, { term: 3, vote: 0, commit: 0 }, { term: 3, vote: 3, commit: 0 }),
  );
});

test('exactly once: one value applied at two indexes; apply order gaps and repeats', (t) => {
  const c = new Checker();
  apply(c, 1, 0, ent(1, 1, 'v1.1'));
  violates(t, 'exactly-once', () => apply(c, 1, 1, ent(2, 1, 'v1.1')));
  const d = new Checker();
  apply(d, 1, 0, ent(1, 1, 'x'));
  violates(t, 'apply-order', () => apply(d, 1, 1, ent(3, 1, 'y')));
  violates(t, 'apply-order', () => apply(d, 1, 1, ent(1, 1, 'x')));
});

test('exactly once: an acknowledged value that was never applied', (t) => {
  const c = new Checker();
  apply(c, 1, 0, ent(1, 1, 'v1.1'));
  c.ack('v1.1', 1);
  c.checkAcknowledgedApplied(['v1.1']);
  violates(t, 'exactly-once', () => c.checkAcknowledgedApplied(['v1.1', 'v2.7']));
  violates(t, 'exactly-once', () => c.ack('v1.1', 2));
});

test('linearizable read: a read misses a write acknowledged before it started', (t) => {
  const c = new Checker();
  apply(c, 1, 0, ent(1, 1, 'v1.1'));
  apply(c, 1, 1, ent(2, 1, 'v1.2'));
  c.ack('v1.2', 2);
  const ackedAtStart = c.highestAcknowledged;
  c.readServed(3, 'r1', ackedAtStart, 2);
  violates(t, 'linearizable-read', () => c.readServed(3, 'r2', ackedAtStart, 1));
});
