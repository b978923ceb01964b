// The RawNode API and the Ready contract.

import test from 'ava';
import {
  EntryType,
  MemoryStorage,
  MessageType,
  RaftArgumentError,
  RaftAssertionError,
  RaftConfigError,
  RawNode,
  Role,
  newMessage,
} from '../../../src/raft/core/index.ts';
import type { Config, Ready } from '../../../src/raft/core/index.ts';
import { Network, TestNode, confOf, enc } from './harness.ts';

function rawNode(opts: Partial<Config> = {}, voters = [1, 2, 3]): { rn: RawNode; storage: MemoryStorage } {
  const storage = opts.storage instanceof MemoryStorage ? opts.storage : new MemoryStorage(confOf(voters));
  const rn = new RawNode({ id: 1, electionTick: 10, heartbeatTick: 1, random: () => 0, ...opts, storage });
  return { rn, storage };
}

function persist(storage: MemoryStorage, rd: Ready): void {
  if (rd.snapshot) storage.applySnapshot(rd.snapshot);
  storage.append(rd.entries);
  if (rd.hardState) storage.setHardState(rd.hardState);
}

test('config validation rejects programmer errors', (t) => {
  const base = { id: 1, electionTick: 10, heartbeatTick: 1, storage: new MemoryStorage(), random: () => 0 };
  const bad: Array<Partial<Config>> = [
    { id: 0 },
    { heartbeatTick: 0 },
    { electionTick: 1, heartbeatTick: 1 },
    { electionTick: 1.5 },
    { maxInflightMsgs: 0 },
    { maxInflightBytes: 10, maxSizePerMsg: 100 },
    { maxUncommittedEntriesSize: -1 },
    { applied: -1 },
    { readOnlyOption: 'lease-based' as 'safe' },
    { random: undefined as unknown as () => number },
  ];
  for (const b of bad) t.throws(() => new RawNode({ ...base, ...b }), { instanceOf: RaftConfigError }, JSON.stringify(b));
  t.notThrows(() => new RawNode(base));
});

test('one Ready at a time: ready() again before advance() throws; advance() wants the same Ready', (t) => {
  const { rn, storage } = rawNode();
  rn.campaign();
  t.true(rn.hasReady());
  const rd = rn.ready();
  t.false(rn.hasReady(), 'nothing to take while a Ready is outstanding');
  t.throws(() => rn.ready(), { instanceOf: RaftAssertionError });
  t.throws(() => rn.advance({ ...rd }), { instanceOf: RaftAssertionError });
  persist(storage, rd);
  rn.advance(rd);
  t.throws(() => rn.advance(rd), { instanceOf: RaftAssertionError }, 'a Ready is advanced once');
  t.false(rn.hasReady());
});

test('persist before send: a vote request leaves in the Ready that carries the self-vote', (t) => {
  const { rn } = rawNode();
  rn.campaign();
  const rd = rn.ready();
  t.deepEqual(rd.hardState, { term: 1, vote: 1, commit: 0 });
  t.true(rd.mustSync);
  t.deepEqual(rd.messages.map((m) => [m.type, m.to, m.term]), [
    [MessageType.Vote, 2, 1],
    [MessageType.Vote, 3, 1],
  ]);
  t.deepEqual(rd.softState, { leader: 0, role: Role.Candidate });
});

test('persist before send: a granted vote leaves in the Ready that carries the vote', (t) => {
  const { rn } = rawNode();
  rn.step(newMessage({ type: MessageType.Vote, from: 2, to: 1, term: 4, index: 0, logTerm: 0 }));
  const rd = rn.ready();
  t.deepEqual(rd.hardState, { term: 4, vote: 2, commit: 0 });
  t.true(rd.mustSync);
  t.deepEqual(rd.messages.map((m) => [m.type, m.to, m.reject]), [[MessageType.VoteResp, 2, false]]);
});

test('persist before send: an append is acknowledged in the Ready that carries the entries', (t) => {
  const { rn } = rawNode();
  const entries = [1, 2].map((index) => ({ index, term: 1, type: EntryType.Normal, data: enc(`e${index}`) }));
  rn.step(newMessage({ type: MessageType.App, from: 2, to: 1, term: 1, index: 0, logTerm: 0, entries, commit: 1 }));
  const rd = rn.ready();
  t.deepEqual(rd.entries, entries);
  t.true(rd.mustSync);
  t.deepEqual(rd.messages.map((m) => [m.type, m.index]), [[MessageType.AppResp, 2]]);
  t.deepEqual(rd.committedEntries.map((e) => e.index), [1], 'committed entries may be in the same Ready');
  t.is(rd.hardState!.commit, 1);
});

test('messages made between ready() and advance() wait for the next Ready', (t) => {
  const { rn, storage } = rawNode();
  rn.step(newMessage({ type: MessageType.Heartbeat, from: 2, to: 1, term: 1 }));
  const rd = rn.ready();
  t.is(rd.messages.length, 1);
  // A vote request of a later term arrives while the driver persists rd.
  rn.step(newMessage({ type: MessageType.Vote, from: 3, to: 1, term: 2, index: 0, logTerm: 0 }));
  persist(storage, rd);
  rn.advance(rd);
  const next = rn.ready();
  t.deepEqual(next.hardState, { term: 2, vote: 3, commit: 0 });
  t.deepEqual(next.messages.map((m) => [m.type, m.to]), [[MessageType.VoteResp, 3]]);
  rn.advance(next);
});

test('mustSync: entries, snapshot, term or vote; a commit-only change needs no sync', (t) => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  const f = net.node(2);
  net.propose(1, 'a');
  // The follower got the entry (sync), then the commit index in a later App (no sync needed).
  let prev = { term: 0, vote: 0, commit: 0 };
  let commitOnly = 0;
  for (const rd of f.readies) {
    const hs = rd.hardState ?? prev;
    const durableChange = rd.entries.length > 0 || rd.snapshot !== undefined || hs.term !== prev.term || hs.vote !== prev.vote;
    t.is(rd.mustSync, durableChange);
    if (!durableChange && hs.commit !== prev.commit) commitOnly++;
    prev = hs;
  }
  t.true(commitOnly > 0);
});

test('local message types from the network are ignored; answers from unknown nodes are dropped', (t) => {
  const { rn } = rawNode();
  rn.step(newMessage({ type: MessageType.Hup, from: 2, to: 1 }));
  t.is(rn.status().softState.role, Role.Follower);
  rn.step(newMessage({ type: MessageType.Beat, from: 2, to: 1 }));
  rn.step(newMessage({ type: MessageType.CheckQuorum, from: 2, to: 1 }));
  t.false(rn.hasReady());
  rn.campaign();
  const rd = rn.ready();
  rn.advance(rd);
  rn.step(newMessage({ type: MessageType.VoteResp, from: 9, to: 1, term: 1 }));
  rn.step(newMessage({ type: MessageType.VoteResp, from: 2, to: 1, term: 1 }));
  t.is(rn.status().softState.role, Role.Leader, 'only the known voter counted');
  t.throws(() => rn.step(newMessage({ type: MessageType.App, from: 2, to: 7, term: 1 })), { instanceOf: RaftAssertionError });
});

test('a forwarded proposal the leader cannot take is dropped, not thrown at the driver', (t) => {
  const { rn, storage } = rawNode();
  rn.campaign();
  rn.step(newMessage({ type: MessageType.VoteResp, from: 2, to: 1, term: 1 }));
  rn.transferLeader(2);
  t.is(rn.status().leadTransferee, 2);
  const m = newMessage({ type: MessageType.Prop, from: 3, to: 1, entries: [{ index: 0, term: 0, type: 0, data: enc('x') }] });
  t.notThrows(() => rn.step(m));
  const rd = rn.ready();
  t.deepEqual(rd.entries.map((e) => e.data.byteLength), [0], 'only the leader\'s empty entry');
  persist(storage, rd);
  rn.advance(rd);
});

test('restart: term, vote, commit and log come back from storage; applied from the config', (t) => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  for (const s of ['a', 'b', 'c']) net.propose(1, s);
  const n = net.node(2);
  const before = n.rn.status();
  n.restart();
  const after = n.rn.status();
  t.deepEqual(after.hardState, before.hardState);
  t.is(after.applied, before.applied);
  t.is(after.lastIndex, before.lastIndex);
  t.false(n.rn.hasReady(), 'nothing applied twice');
  // Restarting with applied = 0 hands the committed entries out again.
  const fresh = new RawNode({ id: 2, electionTick: 10, heartbeatTick: 1, storage: n.storage, random: () => 0 });
  const rd = fresh.ready();
  t.deepEqual(rd.committedEntries.map((e) => e.index), [1, 2, 3, 4]);
  t.throws(
    () => new RawNode({ id: 2, electionTick: 10, heartbeatTick: 1, storage: n.storage, random: () => 0, applied: 99 }),
    { instanceOf: RaftConfigError },
  );
});

test('restart: a persisted commit index beyond the persisted log is detected', (t) => {
  const storage = new MemoryStorage(confOf([1]));
  storage.setHardState({ term: 1, vote: 1, commit: 5 });
  t.throws(() => rawNode({ storage }), { instanceOf: RaftAssertionError, message: /entries were lost/ });
});

test('maxCommittedSizePerReady splits committed entries across Readies', (t) => {
  const storage = new MemoryStorage(confOf([1]));
  storage.append([1, 2, 3, 4].map((index) => ({ index, term: 1, type: EntryType.Normal, data: new Uint8Array(100) })));
  storage.setHardState({ term: 1, vote: 1, commit: 4 });
  const { rn } = rawNode({ storage, maxCommittedSizePerReady: 2 * 124 }, [1]);
  const sizes: number[] = [];
  while (rn.hasReady()) {
    const rd = rn.ready();
    sizes.push(rd.committedEntries.length);
    rn.advance(rd);
  }
  t.deepEqual(sizes, [2, 2]);
});

test('status: progress of every member on the leader only', (t) => {
  const net = new Network([1, 2, 3], {}, {}, confOf([1, 2], [3]));
  net.campaign(1);
  net.propose(1, 'a');
  const s = net.node(1).rn.status();
  t.deepEqual([...s.progress!.keys()], [1, 2, 3]);
  t.is(s.progress!.get(3)!.isLearner, true);
  t.is(s.progress!.get(2)!.match, 2);
  t.is(s.progress!.get(2)!.state, 'replicate');
  t.deepEqual(s.config.voters, [1, 2]);
  t.is(net.node(2).rn.status().progress, undefined);
});

test('arguments the API never accepts throw RaftArgumentError', (t) => {
  const { rn } = rawNode();
  t.throws(() => rn.readIndex(new Uint8Array(0)), { instanceOf: RaftArgumentError });
  t.throws(() => rn.transferLeader(0), { instanceOf: RaftArgumentError });
  t.throws(() => rn.propose('x' as unknown as Uint8Array), { instanceOf: RaftArgumentError });
});

test('the driver in the test harness sees every unstable entry exactly once per Ready', (t) => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  for (let i = 0; i < 20; i++) net.propose(1 + (i % 3), `p${i}`);
  for (const id of [1, 2, 3]) {
    const node: TestNode = net.node(id);
    const written = node.readies.flatMap((rd) => rd.entries.map((e) => e.index));
    t.deepEqual(written, [...new Set(written)], `node ${id} wrote each entry once`);
    t.is(node.data().length, 20);
  }
});
