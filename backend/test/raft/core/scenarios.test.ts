// Hand-driven scenarios on small networks of RawNodes: the classic ways a Raft implementation loses data
// or serves stale reads. Each test builds the dangerous situation step by step and checks the outcome.
// Every message the harness sends is checked for "persist before send" (harness.ts, checkDurableOnSend).

import test from 'ava';
import {
  ConfChangeType,
  EntryType,
  MemoryStorage,
  MessageType,
  RawNode,
  Role,
  newMessage,
} from '../../../src/raft/core/index.ts';
import type { Entry, Ready } from '../../../src/raft/core/index.ts';
import { Network, confOf, enc } from './harness.ts';

/** No two nodes applied different entries at the same index (State Machine Safety, §5.4.3). */
function assertAppliedAgree(t: { deepEqual: (a: unknown, b: unknown, m?: string) => void }, net: Network): void {
  const byIndex = new Map<number, string>();
  for (const n of net.nodes.values()) {
    for (const e of n.applied) {
      const key = `${e.term}:${e.type}:${Buffer.from(e.data).toString('hex')}`;
      const seen = byIndex.get(e.index);
      if (seen === undefined) byIndex.set(e.index, key);
      else t.deepEqual(key, seen, `node ${n.id} applied a different entry at ${e.index}`);
    }
  }
}

function termsOf(storage: MemoryStorage): number[] {
  const out: number[] = [];
  for (let i = storage.firstIndex(); i <= storage.lastIndex(); i++) out.push(storage.term(i));
  return out;
}

test('§5.4.2 Figure 8: an entry of an earlier term on a majority is not committed by counting', (t) => {
  // One entry per App so that the new leader's own entry can be kept from the majority.
  const net = new Network([1, 2, 3, 4, 5], { maxSizePerMsg: 0 });
  net.campaign(1);
  // (a) S1 leads term 1 and replicates index 2 to S2 only.
  for (const id of [3, 4, 5]) net.cutLink(1, id);
  net.propose(1, 'term1-entry');
  t.deepEqual(termsOf(net.node(2).storage), [1, 1]);
  t.is(net.node(1).rn.status().hardState.commit, 1);
  // (b) S1 is gone; S5 wins term 2 with S3 and S4 and appends (2, term 2) alone.
  net.isolate(1);
  net.filter = (m) => m.from === 5 && m.type === MessageType.App;
  net.campaign(5);
  t.is(net.node(5).role(), Role.Leader);
  t.deepEqual(termsOf(net.node(5).storage), [1, 2]);
  // (c) S5 crashes; S1 restarts and wins term 3 with S2, S3, S4 (S3 and S4 voted in term 2: a second try).
  net.node(5).restart();
  net.node(1).restart();
  net.heal();
  net.isolate(5);
  // The network loses S1's term-3 entry (index 3) from every App: only index 2 (term 1) gets through.
  net.filter = (m) => {
    if (m.type === MessageType.App) m.entries = m.entries.filter((e) => e.index < 3);
    return false;
  };
  net.campaign(1);
  if (net.node(1).role() !== Role.Leader) net.campaign(1);
  t.is(net.node(1).role(), Role.Leader);
  t.is(net.node(1).term(), 3);
  net.tickAll(3);
  t.deepEqual(termsOf(net.node(3).storage), [1, 1], 'index 2 (term 1) is now on S1, S2, S3: a majority');
  t.is(net.node(1).rn.status().hardState.commit, 1, 'but it must not be committed by counting');
  t.deepEqual(net.node(1).data(), []);
  // (d) S1 crashes; S5 can win (its last term 2 beats term 1) and overwrites index 2 everywhere.
  net.filter = undefined;
  net.node(1).restart();
  net.heal();
  net.isolate(1);
  net.campaign(5);
  if (net.node(5).role() !== Role.Leader) net.campaign(5);
  t.is(net.node(5).role(), Role.Leader);
  net.tickAll(2);
  for (const id of [2, 3, 4]) t.deepEqual(termsOf(net.node(id).storage).slice(0, 2), [1, 2], `S${id}`);
  // Had S1 committed and applied index 2 in (c), it would disagree with everyone now.
  net.heal();
  net.tickAll(3);
  assertAppliedAgree(t, net);
  t.false(net.nodes.get(1)!.applied.some((e) => e.index === 2 && e.term === 1));
  t.deepEqual(termsOf(net.node(1).storage).slice(0, 2), [1, 2], 'S1\'s uncommitted entry was overwritten');
});

test('§5.4.2 Figure 8 (e): once the leader\'s own entry is on a majority, everything before it commits', (t) => {
  const net = new Network([1, 2, 3, 4, 5], { maxSizePerMsg: 0 });
  net.campaign(1);
  for (const id of [3, 4, 5]) net.cutLink(1, id);
  net.propose(1, 'term1-entry');
  // S1 restarts and wins term 2 (S5 is away); its empty entry reaches S2, S3 and S4.
  net.node(1).restart();
  net.heal();
  net.isolate(5);
  net.campaign(1);
  t.is(net.node(1).role(), Role.Leader);
  t.is(net.node(1).term(), 2);
  t.is(net.node(1).rn.status().hardState.commit, 3);
  t.deepEqual(net.node(1).data(), ['term1-entry']);
  // S5 can no longer win: a majority has a log with a term-2 entry.
  net.node(1).restart();
  net.heal();
  net.isolate(1);
  net.campaign(5);
  t.not(net.node(5).role(), Role.Leader);
  assertAppliedAgree(t, net);
});

test('§6.4 a deposed leader cannot serve a stale read: ReadIndex needs a heartbeat quorum', (t) => {
  const net = new Network([1, 2, 3, 4, 5]);
  net.campaign(1);
  net.propose(1, 'v1');
  // S1 and S2 are cut from the majority, which elects S3 and writes v2.
  for (const a of [1, 2]) for (const b of [3, 4, 5]) net.cutLink(a, b);
  net.campaign(3);
  t.is(net.node(3).role(), Role.Leader);
  net.propose(3, 'v2');
  t.deepEqual(net.node(3).data(), ['v1', 'v2']);
  // Without CheckQuorum, S1 still believes it leads. A read there must not be answered.
  t.is(net.node(1).role(), Role.Leader);
  t.true(net.node(1).rn.readIndex(enc('stale?')));
  net.tickAll(20);
  t.deepEqual(net.node(1).readStates, [], 'only S2 acknowledged the heartbeat round: no quorum, no read');
  t.true(net.delivered.some((m) => m.type === MessageType.HeartbeatResp && m.from === 2 && m.to === 1));
  // A read through the real leader sees v2.
  t.true(net.node(3).rn.readIndex(enc('fresh')));
  net.settle();
  const rs = net.node(3).readStates[0]!;
  const v2 = net.node(3).applied.find((e) => e.data.byteLength > 0 && new TextDecoder().decode(e.data) === 'v2')!;
  t.true(rs.index >= v2.index);
  // After healing, S1 learns the new term and steps down; its read is never answered.
  net.heal();
  net.tickAll(3);
  t.is(net.node(1).role(), Role.Follower);
  t.deepEqual(net.node(1).readStates, []);
});

test('§6.4 a new leader does not answer ReadIndex before it commits an entry of its term', (t) => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.propose(1, 'a');
  // 'b' is committed by S1 and S2, but S2 is never told: its commit index stays behind.
  net.cutLink(1, 3);
  const bIndex = net.node(1).rn.status().lastIndex + 1;
  net.filter = (m) => m.from === 1 && m.to === 2 && m.commit >= bIndex;
  net.propose(1, 'b');
  t.is(net.node(1).rn.status().hardState.commit, bIndex, 'b is committed (and could have been acknowledged)');
  t.is(net.node(2).rn.status().hardState.commit, bIndex - 1);
  // S1 dies; S2 wins with S3's vote. Its empty entry is held back from S3 for now.
  net.filter = undefined;
  net.heal();
  net.isolate(1);
  net.hold = (m) => m.from === 2 && m.type === MessageType.App;
  net.campaign(2);
  t.is(net.node(2).role(), Role.Leader);
  t.true(net.node(2).rn.readIndex(enc('r')));
  net.settle();
  t.deepEqual(net.node(2).readStates, [], 'commit index of the new leader may be stale: the read waits');
  t.false(
    net.delivered.some((m) => m.type === MessageType.Heartbeat && m.context !== undefined && m.from === 2),
    'not even the heartbeat round starts',
  );
  net.hold = undefined;
  net.release();
  net.settle();
  const rs = net.node(2).readStates;
  t.is(rs.length, 1);
  t.true(rs[0]!.index >= bIndex, `read index ${rs[0]!.index} covers the committed write at ${bIndex}`);
  t.deepEqual(rs[0]!.requestCtx, enc('r'));
});

test('term change racing an in-flight append: entries replaced before they were persisted stay unstable', (t) => {
  const storage = new MemoryStorage(confOf([1, 2, 3]));
  const rn = new RawNode({ id: 1, electionTick: 10, heartbeatTick: 1, storage, random: () => 0 });
  const ent = (index: number, term: number): Entry => ({ index, term, type: EntryType.Normal, data: enc(`${index}@${term}`) });
  const persist = (rd: Ready) => {
    storage.append(rd.entries);
    if (rd.hardState) storage.setHardState(rd.hardState);
  };
  // Leader 2 (term 1) sends entries 1..3.
  rn.step(newMessage({ type: MessageType.App, from: 2, to: 1, term: 1, index: 0, logTerm: 0, entries: [ent(1, 1), ent(2, 1), ent(3, 1)] }));
  const rd1 = rn.ready();
  t.deepEqual(rd1.entries.map((e) => e.index), [1, 2, 3]);
  // While the driver writes rd1, leader 3 of term 2 replaces index 2 onwards.
  rn.step(newMessage({ type: MessageType.App, from: 3, to: 1, term: 2, index: 1, logTerm: 1, entries: [ent(2, 2)], commit: 2 }));
  persist(rd1);
  rn.advance(rd1);
  const rd2 = rn.ready();
  t.deepEqual(rd2.entries.map((e) => [e.index, e.term]), [[2, 2]], 'the replacement is written, not forgotten as stable');
  t.deepEqual(rd2.hardState, { term: 2, vote: 0, commit: 2 });
  t.deepEqual(rd2.messages.map((m) => [m.type, m.to, m.term, m.index]), [[MessageType.AppResp, 3, 2, 2]]);
  t.deepEqual(rd2.committedEntries.map((e) => [e.index, e.term]), [[1, 1], [2, 2]]);
  persist(rd2);
  rn.advance(rd2);
  t.deepEqual(termsOf(storage), [1, 2], 'the stale entry 3 of term 1 is gone from disk');
  t.false(rn.hasReady());
});

test('term change racing an in-flight append: a delayed acknowledgement of an old term is ignored', (t) => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  // S2's first acknowledgement of 'x' (term 1) is held back in the network.
  net.hold = (m) => m.from === 2 && m.type === MessageType.AppResp && net.held.length === 0;
  net.propose(1, 'x');
  t.is(net.held.length, 1);
  const stale = net.held[0]!;
  net.hold = undefined;
  net.held = [];
  // Leadership moves on: S2 wins term 2, then hands it back to S1, which leads term 3.
  net.isolate(1);
  net.campaign(2);
  net.heal();
  net.tickAll(2);
  net.node(2).rn.transferLeader(1);
  // From now on S1 hears nothing from S2 about term 3.
  net.filter = (m) => m.from === 2 && m.type === MessageType.AppResp;
  net.settle();
  t.is(net.node(1).role(), Role.Leader);
  t.is(net.node(1).term(), 3);
  const before = net.node(1).rn.status().progress!.get(2)!;
  t.is(before.match, 0, 'nothing acknowledged in term 3');
  net.inject([stale]);
  net.settle();
  t.deepEqual(net.node(1).rn.status().progress!.get(2), before, 'the term-1 acknowledgement changes nothing');
  assertAppliedAgree(t, net);
});

test('pre-vote deadlock: a node rejoining with a higher term but a stale log does not stall the cluster', (t) => {
  const net = new Network([1, 2, 3], { preVote: true, checkQuorum: true });
  net.campaign(1);
  net.propose(1, 'a');
  // While partitioned, S3 runs without pre-vote (an old version, or a restart) and inflates its term.
  net.isolate(3);
  const s3 = net.node(3);
  s3.restart({ preVote: false });
  net.tickAll(60);
  t.true(s3.term() > 3, `S3 reached term ${s3.term()}`);
  net.propose(1, 'b');
  // S3 comes back with pre-vote on and a log behind the others.
  s3.restart({ preVote: true });
  net.heal();
  net.tickAll(60);
  const leaders = net.leaders();
  t.is(leaders.length, 1);
  t.not(leaders[0], 3, 'S3 cannot lead with a stale log');
  t.true(net.node(leaders[0]!).term() >= s3.term());
  net.propose(leaders[0]!, 'c');
  for (const id of [1, 2, 3]) t.deepEqual(net.node(id).data(), ['a', 'b', 'c'], `S${id} caught up`);
});

test('§4.1 a configuration change that is not applied yet does not count in the quorum', (t) => {
  const net = new Network([1, 2]);
  net.add(3, new MemoryStorage(), {});
  net.campaign(1);
  net.propose(1, 'a');
  // S2 is unreachable. Under {1, 2, 3}, S1 and S3 would be a majority; under {1, 2} (in force) they are not.
  net.isolate(2);
  net.node(1).rn.proposeConfChange({ changes: [{ type: ConfChangeType.AddNode, nodeId: 3 }], joint: false });
  net.settle();
  net.tickAll(5);
  t.deepEqual(net.node(1).rn.status().config.voters, [1, 2]);
  t.is(net.node(1).rn.status().hardState.commit, 2, 'the ConfChange entry is not committed');
  t.false(net.delivered.some((m) => m.to === 3), 'S3 is not even contacted before the change applies');
});

test('§4.1 once committed and applied, the new member counts and catches up', (t) => {
  const net = new Network([1, 2]);
  net.add(3, new MemoryStorage(), {});
  net.campaign(1);
  net.propose(1, 'a');
  net.node(1).rn.proposeConfChange({ changes: [{ type: ConfChangeType.AddNode, nodeId: 3 }], joint: false });
  net.settle();
  net.tickAll(3);
  t.deepEqual(net.node(3).rn.status().config.voters, [1, 2, 3]);
  // Now {1, 3} is a majority of {1, 2, 3}.
  net.isolate(2);
  net.propose(1, 'b');
  t.deepEqual(net.node(3).data(), ['a', 'b']);
  t.deepEqual(net.node(1).data(), ['a', 'b']);
});

test('persist before send: every message in every scenario left after the state it promises was durable', (t) => {
  const net = new Network([1, 2, 3], { preVote: true, checkQuorum: true });
  net.campaign(1);
  for (let i = 0; i < 5; i++) net.propose(1 + (i % 3), `w${i}`);
  net.isolate(1);
  net.tickAll(30);
  net.heal();
  for (let i = 0; i < 5; i++) net.propose(net.leaders()[0]!, `x${i}`);
  net.tickAll(5);
  t.true(net.durabilityChecks > 50, `${net.durabilityChecks} messages checked`);
  assertAppliedAgree(t, net);
});

test('persist before send: a driver that sends before persisting is caught by the check', (t) => {
  const net = new Network([1, 2, 3]);
  net.node(2).sendBeforePersist = true;
  // S2 grants its vote: the VoteResp leaves before the vote is on S2's disk.
  t.throws(() => net.campaign(1), { message: /before the vote was durable/ });
});
