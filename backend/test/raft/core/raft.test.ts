// Unit tests of the protocol (raft.ts). Tests that follow the paper (Ongaro & Ousterhout 2014) or the thesis
// (Ongaro 2014) name the section.

import test from 'ava';
import {
  ConfChangeType,
  EntryType,
  MemoryStorage,
  MessageType,
  ProposalDroppedError,
  Raft,
  Role,
  encodeConfChange,
  newMessage,
} from '../../../src/raft/core/index.ts';
import type { Config, Entry, Message } from '../../../src/raft/core/index.ts';
import { Network, confOf, enc } from './harness.ts';

function newRaft(id: number, voters: number[], opts: Partial<Config> = {}, storage?: MemoryStorage): Raft {
  return new Raft({
    id,
    electionTick: 10,
    heartbeatTick: 1,
    storage: storage ?? new MemoryStorage(confOf(voters)),
    random: () => 0,
    ...opts,
  });
}

/** The messages the node queued (after flushing batched appends). */
function take(r: Raft): Message[] {
  r.flushAppends();
  const out = r.msgs;
  r.msgs = [];
  return out;
}

const ent = (index: number, term: number): Entry => ({ index, term, type: EntryType.Normal, data: new Uint8Array() });

function storageWith(voters: number[], terms: number[], hardTerm = 0): MemoryStorage {
  const s = new MemoryStorage(confOf(voters));
  s.append(terms.map((t, i) => ent(i + 1, t)));
  s.setHardState({ term: hardTerm || (terms[terms.length - 1] ?? 0), vote: 0, commit: 0 });
  return s;
}

function msg(fields: Partial<Message> & Pick<Message, 'type'>): Message {
  return newMessage(fields);
}

function logTerms(storage: MemoryStorage): number[] {
  const out: number[] = [];
  for (let i = storage.firstIndex(); i <= storage.lastIndex(); i++) out.push(storage.term(i));
  return out;
}

// ---- Elections ------------------------------------------------------------------------------------

test('§5.2 the election timeout is drawn from config.random in [electionTick, 2*electionTick)', (t) => {
  for (const [x, expected] of [
    [0, 10],
    [0.5, 15],
    [0.9999, 19],
  ] as const) {
    const r = newRaft(1, [1, 2, 3], { random: () => x });
    let ticks = 0;
    while (r.role === Role.Follower && ticks < 100) {
      r.tick();
      ticks++;
    }
    t.is(ticks, expected, `random ${x}`);
    t.is(r.role, Role.Candidate);
    t.is(r.term, 1);
  }
  t.throws(() => newRaft(1, [1], { random: () => 1 }), { message: /outside \[0, 1\)/ });
});

test('§5.2 a candidate with a majority of votes becomes leader; a minority keeps it candidate', (t) => {
  const cases: Array<{ size: number; down: number[]; leader: boolean }> = [
    { size: 3, down: [], leader: true },
    { size: 3, down: [3], leader: true },
    { size: 3, down: [2, 3], leader: false },
    { size: 5, down: [4, 5], leader: true },
    { size: 5, down: [3, 4, 5], leader: false },
  ];
  for (const c of cases) {
    const ids = Array.from({ length: c.size }, (_, i) => i + 1);
    const net = new Network(ids);
    for (const d of c.down) net.isolate(d);
    net.campaign(1);
    t.is(net.node(1).role(), c.leader ? Role.Leader : Role.Candidate, JSON.stringify(c));
    t.is(net.node(1).term(), 1);
  }
});

test('§5.2 a single voter elects itself at once and commits its empty entry', (t) => {
  const net = new Network([1]);
  net.campaign(1);
  t.is(net.node(1).role(), Role.Leader);
  t.is(net.node(1).rn.status().hardState.commit, 1);
  net.propose(1, 'x');
  t.deepEqual(net.node(1).data(), ['x']);
});

test('§5.2 one vote per term, first come first served; a repeated request is granted again', (t) => {
  const r = newRaft(1, [1, 2, 3]);
  const vote = (from: number, term = 1) => {
    r.step(msg({ type: MessageType.Vote, from, to: 1, term, index: 0, logTerm: 0 }));
    const [resp] = take(r);
    return resp!;
  };
  t.false(vote(2).reject);
  t.is(r.vote, 2);
  t.true(vote(3).reject);
  t.false(vote(2).reject, 'the same candidate asking again (answer lost) gets the vote again');
  const next = vote(3, 2);
  t.false(next.reject, 'a new term frees the vote');
  t.is(next.term, 2);
});

test('§5.4.1 votes only for a candidate whose log is at least as up-to-date', (t) => {
  // Voter's log: terms [1, 2, 2] (last index 3, last term 2).
  const cases: Array<[number, number, boolean]> = [
    [3, 2, true],
    [4, 2, true],
    [2, 2, false],
    [1, 3, true],
    [9, 1, false],
  ];
  for (const [index, logTerm, granted] of cases) {
    const r = newRaft(1, [1, 2], {}, storageWith([1, 2], [1, 2, 2]));
    r.step(msg({ type: MessageType.Vote, from: 2, to: 1, term: 3, index, logTerm }));
    const [resp] = take(r);
    t.is(resp!.type, MessageType.VoteResp);
    t.is(!resp!.reject, granted, `candidate last (${index}, ${logTerm})`);
    t.is(r.vote, granted ? 2 : 0);
  }
});

test('§5.1 a message of a higher term turns any role into a follower of that term', (t) => {
  for (const role of [Role.Follower, Role.Candidate, Role.Leader]) {
    const r = newRaft(1, [1, 2, 3]);
    if (role !== Role.Follower) r.becomeCandidate();
    if (role === Role.Leader) r.becomeLeader();
    r.step(msg({ type: MessageType.App, from: 2, to: 1, term: 5 }));
    t.is(r.role, Role.Follower);
    t.is(r.term, 5);
    t.is(r.lead, 2);
  }
});

test('§5.2 a candidate that receives an App of its own term steps down to follower', (t) => {
  const r = newRaft(1, [1, 2, 3]);
  r.becomeCandidate();
  r.step(msg({ type: MessageType.App, from: 2, to: 1, term: 1 }));
  t.is(r.role, Role.Follower);
  t.is(r.lead, 2);
  t.is(r.term, 1);
});

test('§5.1 messages of an older term are ignored (no state change)', (t) => {
  const r = newRaft(1, [1, 2, 3], {}, storageWith([1, 2, 3], [1, 2], 3));
  r.step(msg({ type: MessageType.App, from: 2, to: 1, term: 2, index: 2, logTerm: 2, entries: [ent(3, 2)], commit: 3 }));
  t.is(r.log.lastIndex(), 2);
  t.is(r.term, 3);
  t.deepEqual(take(r), [], 'without CheckQuorum/PreVote a stale App gets no answer');
});

test('§9.6 pre-vote: a partitioned node does not raise its term and does not disrupt on return', (t) => {
  const net = new Network([1, 2, 3], { preVote: true });
  net.campaign(1);
  net.isolate(3);
  net.tickAll(100);
  t.is(net.node(3).term(), 1, 'pre-votes failed: the term did not move');
  t.is(net.node(3).role(), Role.PreCandidate);
  net.heal();
  net.tickAll(3);
  t.is(net.node(1).role(), Role.Leader);
  t.is(net.node(1).term(), 1);
  t.is(net.node(3).role(), Role.Follower);
  net.propose(1, 'after');
  t.deepEqual(net.node(3).data(), ['after']);
});

test('§9.6 pre-vote: granted for a future term without changing the voter; refused with a live leader', (t) => {
  const r = newRaft(1, [1, 2, 3], { preVote: true });
  r.step(msg({ type: MessageType.PreVote, from: 2, to: 1, term: 1, index: 0, logTerm: 0 }));
  const [granted] = take(r);
  t.is(granted!.type, MessageType.PreVoteResp);
  t.false(granted!.reject);
  t.is(granted!.term, 1, 'a granted pre-vote carries the future term');
  t.is(r.term, 0);
  t.is(r.vote, 0, 'a pre-vote is not a vote');
  // Heard from a leader: pre-votes are ignored until an election timeout passes without it.
  r.step(msg({ type: MessageType.Heartbeat, from: 3, to: 1, term: 1 }));
  take(r);
  r.step(msg({ type: MessageType.PreVote, from: 2, to: 1, term: 2, index: 5, logTerm: 1 }));
  t.deepEqual(take(r), []);
  for (let i = 0; i < 10; i++) r.tick();
  take(r);
  r.step(msg({ type: MessageType.PreVote, from: 2, to: 1, term: 2, index: 5, logTerm: 1 }));
  const later = take(r).find((m) => m.type === MessageType.PreVoteResp);
  t.false(later!.reject);
  // A candidate whose log is behind is refused even without a leader.
  const behind = newRaft(1, [1, 2, 3], { preVote: true }, storageWith([1, 2, 3], [1, 1]));
  behind.step(msg({ type: MessageType.PreVote, from: 2, to: 1, term: 2, index: 1, logTerm: 1 }));
  t.true(take(behind)[0]!.reject);
});

test('§9.6 a pre-candidate that wins the pre-vote campaigns for real in term + 1', (t) => {
  const net = new Network([1, 2, 3], { preVote: true });
  net.campaign(1);
  t.is(net.node(1).role(), Role.Leader);
  t.is(net.node(1).term(), 1);
  t.true(net.deliveredOf(MessageType.PreVote).length > 0);
  t.true(net.deliveredOf(MessageType.Vote).length > 0);
});

test('§6.2 CheckQuorum: a leader that hears from no quorum within an election timeout steps down', (t) => {
  const net = new Network([1, 2, 3], { checkQuorum: true });
  net.campaign(1);
  net.isolate(1);
  for (let i = 0; i < 10; i++) net.node(1).rn.tick();
  t.is(net.node(1).role(), Role.Leader, 'one timeout: the first check only resets activity');
  for (let i = 0; i < 10; i++) net.node(1).rn.tick();
  t.is(net.node(1).role(), Role.Follower);
  // With a quorum reachable the leader stays.
  const ok = new Network([1, 2, 3], { checkQuorum: true });
  ok.campaign(1);
  ok.isolate(3);
  ok.tickAll(50);
  t.is(ok.node(1).role(), Role.Leader);
});

test('§4.2.3 lease: with CheckQuorum, nodes that heard from the leader ignore a disruptive vote request', (t) => {
  const net = new Network([1, 2, 3], { checkQuorum: true });
  net.campaign(1);
  net.tickAll(1);
  const before = [1, 2].map((id) => net.node(id).term());
  // Node 3 asks for votes in a later term (as if it had campaigned alone).
  for (const to of [1, 2]) {
    net.inject([msg({ type: MessageType.Vote, from: 3, to, term: 5, index: 100, logTerm: 5 })]);
  }
  t.deepEqual([1, 2].map((id) => net.node(id).term()), before);
  t.is(net.node(1).role(), Role.Leader);
});

// ---- Log replication --------------------------------------------------------------------------------

test('§5.3 the leader replicates entries, commits on a majority, followers apply them', (t) => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.isolate(3);
  net.propose(1, 'a');
  t.deepEqual(net.node(1).data(), ['a']);
  t.deepEqual(net.node(2).data(), ['a']);
  t.deepEqual(net.node(3).data(), []);
  net.heal();
  net.tickAll(2);
  t.deepEqual(net.node(3).data(), ['a']);
});

test('§5.4.2 a new leader appends an empty entry of its term first', (t) => {
  const r = newRaft(1, [1, 2, 3], {}, storageWith([1, 2, 3], [1, 1], 1));
  r.becomeCandidate();
  r.becomeLeader();
  t.is(r.log.lastIndex(), 3);
  t.is(r.log.term(3), 2);
  t.is(r.log.slice(3, 4, 1000)[0]!.data.byteLength, 0);
});

test('§5.4.2 a leader does not commit an entry of an earlier term by counting replicas', (t) => {
  // The leader (term 3) has [1, 2] from earlier terms, replicated on a majority; only its own entry commits.
  const r = newRaft(1, [1, 2, 3], {}, storageWith([1, 2, 3], [1, 2], 2));
  r.becomeCandidate();
  r.becomeLeader();
  take(r);
  r.step(msg({ type: MessageType.AppResp, from: 2, to: 1, term: 3, index: 2 }));
  t.is(r.log.committed, 0, 'index 2 (term 2) is on a majority but not committed by counting');
  r.step(msg({ type: MessageType.AppResp, from: 2, to: 1, term: 3, index: 3 }));
  t.is(r.log.committed, 3, 'the term-3 entry commits, and with it everything before');
});

test('§5.3 Figure 7: the leader brings every kind of divergent follower log into agreement', (t) => {
  const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
  const followers: Record<string, number[]> = {
    a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
    b: [1, 1, 1, 4],
    c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    e: [1, 1, 1, 4, 4, 4, 4],
    f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
  };
  for (const [name, log] of Object.entries(followers)) {
    const net = new Network([1, 2, 3]);
    // Node 1: the leader's log; node 2: the follower; node 3: an empty log that votes for node 1.
    const logs: Record<number, number[]> = { 1: leaderLog, 2: log, 3: [] };
    for (const id of [1, 2, 3]) {
      const n = net.node(id);
      n.storage = storageWith([1, 2, 3], logs[id]!, 7);
      n.restart();
    }
    net.filter = (m) => m.from === 2 && m.type === MessageType.VoteResp;
    net.campaign(1);
    t.is(net.node(1).role(), Role.Leader, name);
    net.filter = undefined;
    net.tickAll(3);
    t.deepEqual(logTerms(net.node(2).storage), [...leaderLog, 8], `follower (${name})`);
    const rejections = net.delivered.filter((m) => m.type === MessageType.AppResp && m.reject && m.from === 2).length;
    t.true(rejections <= 2, `follower (${name}): ${rejections} rejections (fast backtracking skips whole terms)`);
  }
});

test('fast backtracking: a long divergent suffix costs one rejection, not one per entry', (t) => {
  const net = new Network([1, 2, 3]);
  const logs: Record<number, number[]> = {
    1: [1, ...Array<number>(100).fill(3)],
    2: [1, ...Array<number>(100).fill(2)],
    3: [1],
  };
  for (const id of [1, 2, 3]) {
    net.node(id).storage = storageWith([1, 2, 3], logs[id]!, 3);
    net.node(id).restart();
  }
  net.filter = (m) => m.from === 2 && m.type === MessageType.VoteResp;
  net.campaign(1);
  net.filter = undefined;
  net.settle();
  const rejections = net.delivered.filter((m) => m.type === MessageType.AppResp && m.reject && m.from === 2);
  t.is(rejections.length, 1);
  t.deepEqual(logTerms(net.node(2).storage), [1, ...Array<number>(100).fill(3), 4]);
});

test('proposal batching: proposals made between two Readies go to each follower in one App', (t) => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  const leader = net.node(1);
  for (const s of ['a', 'b', 'c']) leader.rn.propose(enc(s));
  const rd = leader.rn.ready();
  t.is(rd.entries.length, 3);
  const apps = rd.messages.filter((m) => m.type === MessageType.App);
  t.deepEqual(apps.map((m) => [m.to, m.entries.length]), [
    [2, 3],
    [3, 3],
  ]);
  leader.rn.advance(rd);
});

test('flow control: at most maxInflightMsgs App messages in flight to a silent follower', (t) => {
  const net = new Network([1, 2], { maxInflightMsgs: 3 });
  net.campaign(1);
  net.filter = (m) => m.from === 2 && m.type === MessageType.AppResp;
  for (let i = 0; i < 10; i++) net.propose(1, `p${i}`);
  const apps = net.delivered.filter((m) => m.type === MessageType.App && m.to === 2 && m.entries.length > 0);
  // One App carrying the leader's empty entry (probe answered before the filter) and then a window of 3.
  const afterFilter = apps.filter((m) => m.entries.some((e) => e.data.byteLength > 0));
  t.is(afterFilter.length, 3);
  const pr = net.node(1).rn.status().progress!.get(2)!;
  t.is(pr.state, 'replicate');
  t.is(pr.inflight, 3);
  t.true(pr.paused);
  // Answers resume the stream and deliver everything.
  net.filter = undefined;
  net.tickAll(3);
  t.is(net.node(2).data().length, 10);
});

test('flow control: the byte window limits bytes in flight', (t) => {
  const size = 1000;
  const net = new Network([1, 2], { maxInflightMsgs: 100, maxInflightBytes: 3 * (size + 24), maxSizePerMsg: size + 24 });
  net.campaign(1);
  net.filter = (m) => m.from === 2 && m.type === MessageType.AppResp;
  for (let i = 0; i < 10; i++) net.node(1).rn.propose(new Uint8Array(size));
  net.settle();
  const pr = net.node(1).rn.status().progress!.get(2)!;
  t.is(pr.inflight, 3);
  t.is(pr.inflightBytes, 3 * (size + 24));
  net.filter = undefined;
  net.tickAll(3);
  t.is(net.node(2).applied.filter((e) => e.data.byteLength === size).length, 10);
});

test('maxUncommittedEntriesSize: proposals beyond the limit are dropped until entries commit', (t) => {
  const net = new Network([1, 2, 3], { maxUncommittedEntriesSize: 100 });
  net.campaign(1);
  net.isolate(2);
  net.isolate(3);
  const leader = net.node(1).rn;
  leader.propose(new Uint8Array(60));
  leader.propose(new Uint8Array(40));
  const err = t.throws(() => leader.propose(new Uint8Array(1)), { instanceOf: ProposalDroppedError });
  t.is(err!.reason, 'uncommitted-limit');
  net.settle();
  net.heal();
  net.tickAll(3);
  t.notThrows(() => leader.propose(new Uint8Array(100)));
  // A single proposal larger than the limit passes when nothing is uncommitted.
  net.settle();
  net.tickAll(2);
  t.notThrows(() => leader.propose(new Uint8Array(500)));
});

test('proposals: dropped without a leader, forwarded by followers, dropped when forwarding is disabled', (t) => {
  const net = new Network([1, 2, 3], {}, { 3: { disableProposalForwarding: true } });
  t.throws(() => net.node(2).rn.propose(enc('x')), { instanceOf: ProposalDroppedError, message: /no-leader/ });
  net.campaign(1);
  net.propose(2, 'via-2');
  t.deepEqual(net.node(1).data(), ['via-2']);
  t.throws(() => net.node(3).rn.propose(enc('y')), { message: /forwarding-disabled/ });
  const candidate = new Network([1, 2, 3]);
  candidate.isolate(1);
  candidate.campaign(1);
  t.throws(() => candidate.node(1).rn.propose(enc('z')), { message: /no-leader/ });
});

test('heartbeats never commit beyond what the follower is known to hold', (t) => {
  const r = newRaft(1, [1, 2, 3]);
  r.becomeCandidate();
  r.becomeLeader();
  take(r);
  r.step(msg({ type: MessageType.AppResp, from: 2, to: 1, term: 1, index: 1 }));
  t.is(r.log.committed, 1);
  take(r);
  r.step(msg({ type: MessageType.Beat, from: 1 }));
  const hb = take(r).filter((m) => m.type === MessageType.Heartbeat);
  t.deepEqual(hb.map((m) => [m.to, m.commit]), [
    [2, 1],
    [3, 0],
  ]);
});

test('lost Apps in replicate state: the rejection of the next App sends the follower back to probe and repairs', (t) => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  let drop = true;
  net.filter = (m) => drop && m.to === 2 && m.type === MessageType.App && m.entries.length > 0;
  net.propose(1, 'lost');
  t.deepEqual(net.node(2).data(), []);
  // The empty App carrying the new commit index did not match (the entry before it is missing): rejected,
  // so the leader went back to probing (its probe is lost too).
  t.true(net.delivered.some((m) => m.type === MessageType.AppResp && m.from === 2 && m.reject));
  t.is(net.node(1).rn.status().progress!.get(2)!.state, 'probe');
  drop = false;
  net.tickAll(1);
  t.deepEqual(net.node(2).data(), ['lost'], 'the heartbeat answer let the probe go out again');
  t.is(net.node(1).rn.status().progress!.get(2)!.state, 'replicate');
  net.propose(1, 'next');
  t.deepEqual(net.node(2).data(), ['lost', 'next']);
});

test('reportUnreachable moves a replicating follower back to probe', (t) => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  t.is(net.node(1).rn.status().progress!.get(2)!.state, 'replicate');
  net.node(1).rn.reportUnreachable(2);
  t.is(net.node(1).rn.status().progress!.get(2)!.state, 'probe');
});

// ---- Snapshots --------------------------------------------------------------------------------------

function compactLeader(net: Network, id: number): number {
  const n = net.node(id);
  const idx = n.rn.status().applied;
  n.storage.createSnapshot(idx, n.rn.status().config, enc(`state@${idx}`));
  n.storage.compact(idx);
  return idx;
}

test('§7 a follower whose next entries were compacted gets a snapshot, restores it and catches up', (t) => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.isolate(3);
  for (let i = 0; i < 5; i++) net.propose(1, `e${i}`);
  const snapIndex = compactLeader(net, 1);
  net.propose(1, 'after-snap');
  net.heal();
  net.tickAll(2);
  const snaps = net.deliveredOf(MessageType.Snap);
  t.is(snaps.length, 1);
  t.is(snaps[0]!.snapshot!.metadata.index, snapIndex);
  const f = net.node(3);
  t.is(f.storage.snapshot().metadata.index, snapIndex);
  t.deepEqual(f.readies.find((rd) => rd.snapshot)!.snapshot!.data, enc(`state@${snapIndex}`));
  // The follower's answer to the snapshot shows it can continue from the log.
  t.is(net.node(1).rn.status().progress!.get(3)!.state, 'replicate');
  t.deepEqual(f.data(), ['after-snap'], 'entries after the snapshot are applied normally');
  t.is(f.rn.status().hardState.commit, net.node(1).rn.status().hardState.commit);
});

test('§7 without the follower\'s answer the leader waits in snapshot state until reportSnapshot', (t) => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.isolate(3);
  for (let i = 0; i < 3; i++) net.propose(1, `e${i}`);
  compactLeader(net, 1);
  net.heal();
  let dropAnswers = true;
  net.filter = (m) => dropAnswers && m.from === 3 && m.type === MessageType.AppResp && !m.reject;
  net.tickAll(3);
  t.is(net.node(1).rn.status().progress!.get(3)!.state, 'snapshot');
  t.is(net.deliveredOf(MessageType.Snap).length, 1, 'nothing more is sent while in snapshot state');
  dropAnswers = false;
  net.node(1).rn.reportSnapshot(3, true);
  const pr = net.node(1).rn.status().progress!.get(3)!;
  t.is(pr.state, 'probe');
  t.is(pr.next, net.node(1).storage.snapshot().metadata.index + 1);
  net.tickAll(2);
  t.is(net.node(1).rn.status().progress!.get(3)!.state, 'replicate');
  net.propose(1, 'x');
  t.deepEqual(net.node(3).data(), ['x']);
});

test('§7 a failed snapshot send is retried after reportSnapshot(false)', (t) => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.isolate(3);
  for (let i = 0; i < 3; i++) net.propose(1, `e${i}`);
  compactLeader(net, 1);
  net.heal();
  let dropSnap = true;
  net.filter = (m) => dropSnap && m.type === MessageType.Snap;
  net.tickAll(2);
  t.is(net.node(1).rn.status().progress!.get(3)!.state, 'snapshot');
  net.node(1).rn.reportSnapshot(3, false);
  t.is(net.node(1).rn.status().progress!.get(3)!.state, 'probe');
  dropSnap = false;
  net.tickAll(3);
  t.is(net.node(3).storage.snapshot().metadata.index, net.node(1).storage.snapshot().metadata.index);
});

test('§7 restore: older snapshots are ignored; a snapshot the log already covers only commits', (t) => {
  const r = newRaft(1, [1, 2, 3], {}, storageWith([1, 2, 3], [1, 1, 1]));
  const snap = (index: number, term: number, voters = [1, 2, 3]) => ({
    metadata: { index, term, conf: confOf(voters) },
    data: new Uint8Array(),
  });
  r.log.commitTo(2);
  t.false(r.restore(snap(2, 1)), 'not newer than the commit index');
  t.false(r.restore(snap(3, 1)), 'we already have entry 3 of term 1: fast-forward');
  t.is(r.log.committed, 3);
  t.false(r.restore(snap(10, 2, [2, 3])), 'a configuration without this node is refused');
  t.true(r.restore(snap(10, 2)));
  t.is(r.log.lastIndex(), 10);
  t.true(r.log.hasPendingSnapshot());
  t.false(r.promotable(), 'no campaign before the snapshot is persisted');
});

// ---- Leader transfer --------------------------------------------------------------------------------

test('§3.10 leader transfer to an up-to-date follower: TimeoutNow and it wins at once', (t) => {
  const net = new Network([1, 2, 3], { preVote: true, checkQuorum: true });
  net.campaign(1);
  net.node(1).rn.transferLeader(2);
  net.settle();
  t.is(net.node(2).role(), Role.Leader);
  t.is(net.node(1).role(), Role.Follower);
  t.is(net.deliveredOf(MessageType.TimeoutNow).length, 1);
  net.propose(2, 'x');
  t.deepEqual(net.node(3).data(), ['x']);
});

test('§3.10 leader transfer to a lagging follower: caught up first, proposals refused meanwhile', (t) => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.isolate(3);
  net.propose(1, 'a');
  net.hold = (m) => m.type === MessageType.App && m.to === 3;
  net.heal();
  net.node(1).rn.transferLeader(3);
  net.settle();
  t.is(net.node(1).rn.status().leadTransferee, 3);
  const err = t.throws(() => net.node(1).rn.propose(enc('b')), { instanceOf: ProposalDroppedError });
  t.is(err!.reason, 'leader-transfer');
  net.hold = undefined;
  net.release();
  net.settle();
  t.is(net.node(3).role(), Role.Leader);
  t.deepEqual(net.node(3).data(), ['a']);
});

test('§3.10 a transfer that does not finish within an election timeout is aborted', (t) => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.isolate(3);
  net.node(1).rn.transferLeader(3);
  net.settle();
  t.is(net.node(1).rn.status().leadTransferee, 3);
  for (let i = 0; i < 10; i++) {
    net.node(1).rn.tick();
    net.settle();
  }
  t.is(net.node(1).rn.status().leadTransferee, 0);
  t.is(net.node(1).role(), Role.Leader);
  t.notThrows(() => net.node(1).rn.propose(enc('ok')));
});

test('transfer requests: forwarded by followers; ignored for self, learners and unknown nodes', (t) => {
  const net = new Network([1, 2, 3, 4], {}, {}, confOf([1, 2, 3], [4]));
  net.campaign(1);
  net.node(3).rn.transferLeader(2);
  net.settle();
  t.is(net.node(2).role(), Role.Leader);
  for (const to of [2, 4, 9]) {
    net.node(2).rn.transferLeader(to);
    net.settle();
    t.is(net.node(2).rn.status().leadTransferee, 0, `transfer to ${to}`);
    t.is(net.node(2).role(), Role.Leader);
  }
});

test('TimeoutNow makes the transferee campaign past the voters\' lease and without pre-vote', (t) => {
  const net = new Network([1, 2, 3], { preVote: true, checkQuorum: true });
  net.campaign(1);
  net.tickAll(1);
  net.inject([msg({ type: MessageType.TimeoutNow, from: 1, to: 3, term: 1 })]);
  net.settle();
  t.is(net.node(3).role(), Role.Leader);
  t.is(net.node(3).term(), 2);
});

// ---- ReadIndex -------------------------------------------------------------------------------------

test('§6.4 ReadIndex on the leader: answered after a heartbeat quorum, context echoed, index = commit', (t) => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.propose(1, 'a');
  const commit = net.node(1).rn.status().hardState.commit;
  t.true(net.node(1).rn.readIndex(enc('r1')));
  const rd = net.node(1).rn.ready();
  t.deepEqual(rd.readStates, [], 'not before the heartbeat round');
  const hbs = rd.messages.filter((m) => m.type === MessageType.Heartbeat);
  t.is(hbs.length, 2);
  t.deepEqual(hbs[0]!.context, enc('r1'));
  net.node(1).rn.advance(rd);
  net.deliver(hbs);
  net.settle();
  t.deepEqual(net.node(1).readStates, [{ index: commit, requestCtx: enc('r1') }]);
});

test('§6.4 ReadIndex from a follower is forwarded and answered with ReadIndexResp', (t) => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.propose(1, 'a');
  t.true(net.node(3).rn.readIndex(enc('r3')));
  net.settle();
  t.deepEqual(net.node(3).readStates, [{ index: net.node(1).rn.status().hardState.commit, requestCtx: enc('r3') }]);
  t.is(net.deliveredOf(MessageType.ReadIndexResp).length, 1);
  t.deepEqual(net.node(1).readStates, []);
});

test('§6.4 ReadIndex: a single voter answers at once; without a leader the request is dropped', (t) => {
  const one = new Network([1]);
  one.campaign(1);
  t.true(one.node(1).rn.readIndex(enc('x')));
  one.settle();
  t.is(one.node(1).readStates.length, 1);
  const none = new Network([1, 2, 3]);
  t.false(none.node(2).rn.readIndex(enc('y')));
  t.throws(() => none.node(2).rn.readIndex(new Uint8Array()), { message: /non-empty/ });
});

test('§6.4 a lost heartbeat round is retried with the next heartbeats', (t) => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  let drop = true;
  net.filter = (m) => drop && m.type === MessageType.Heartbeat;
  net.node(1).rn.readIndex(enc('r'));
  net.settle();
  t.deepEqual(net.node(1).readStates, []);
  drop = false;
  net.tickAll(1);
  t.is(net.node(1).readStates.length, 1);
});

test('maxPendingReadIndex bounds the reads waiting on a leader', (t) => {
  const net = new Network([1, 2, 3], { maxPendingReadIndex: 2 });
  net.campaign(1);
  net.isolate(1);
  t.true(net.node(1).rn.readIndex(enc('a')));
  t.true(net.node(1).rn.readIndex(enc('b')));
  t.false(net.node(1).rn.readIndex(enc('c')));
});

// ---- Membership ------------------------------------------------------------------------------------

const cc = (type: ConfChangeType, nodeId: number) => ({ changes: [{ type, nodeId }], joint: false });

test('§4.2.1 learners receive the log but never vote, campaign or count in a quorum', (t) => {
  const net = new Network([1, 2, 3], {}, {}, confOf([1, 2], [3]));
  net.tick(3, 100);
  net.settle();
  t.is(net.node(3).role(), Role.Follower, 'a learner never campaigns');
  net.campaign(1);
  t.is(net.node(1).role(), Role.Leader);
  t.is(net.deliveredOf(MessageType.Vote).filter((m) => m.to === 3).length, 0, 'nobody asks a learner for a vote');
  net.propose(1, 'a');
  t.deepEqual(net.node(3).data(), ['a']);
  // Only the learner answers: nothing commits.
  net.isolate(2);
  net.propose(1, 'b');
  t.deepEqual(net.node(1).data(), ['a']);
  t.deepEqual(net.node(3).data(), ['a']);
});

test('§4.1 adding a voter: the new node catches up and counts in the quorum once applied', (t) => {
  const net = new Network([1, 2, 3]);
  net.add(4, new MemoryStorage(), {});
  net.campaign(1);
  net.propose(1, 'a');
  net.node(1).rn.proposeConfChange(cc(ConfChangeType.AddNode, 4));
  net.settle();
  t.deepEqual(net.node(1).rn.status().config.voters, [1, 2, 3, 4]);
  net.tickAll(2);
  t.deepEqual(net.node(4).data(), ['a']);
  t.deepEqual(net.node(4).rn.status().config.voters, [1, 2, 3, 4]);
  // Four voters: a quorum is three. With 3 and 4 down nothing commits.
  net.isolate(3);
  net.isolate(4);
  net.propose(1, 'b');
  t.deepEqual(net.node(1).data(), ['a']);
});

test('§4.1 one change at a time: a second ConfChange before the first is applied becomes an empty entry', (t) => {
  // The new leader's log holds an unapplied entry of an earlier term (it might be a ConfChange).
  const r = newRaft(1, [1, 2, 3], {}, storageWith([1, 2, 3], [1], 1));
  r.becomeCandidate();
  r.becomeLeader();
  t.is(r.pendingConfIndex, 1);
  const prop = (nodeId: number) =>
    r.step(
      msg({
        type: MessageType.Prop,
        from: 1,
        entries: [{ index: 0, term: 0, type: EntryType.ConfChange, data: encodeConfChange(cc(ConfChangeType.AddNode, nodeId)) }],
      }),
    );
  prop(4);
  t.is(r.log.slice(3, 4, 1000)[0]!.type, EntryType.Normal, 'refused: the earlier log is not applied yet');
  r.log.commitTo(3);
  r.appliedTo(3, []);
  prop(4);
  t.is(r.log.slice(4, 5, 1000)[0]!.type, EntryType.ConfChange);
  prop(5);
  const refused = r.log.slice(5, 6, 1000)[0]!;
  t.is(refused.type, EntryType.Normal);
  t.is(refused.data.byteLength, 0);
  t.is(r.pendingConfIndex, 4);
  r.log.commitTo(5);
  r.appliedTo(5, []);
  prop(5);
  t.is(r.log.slice(6, 7, 1000)[0]!.type, EntryType.ConfChange, 'accepted once the first change is applied');
});

test('invalid ConfChange proposals (leaving a non-joint config, bad bytes) become empty entries', (t) => {
  const r = newRaft(1, [1, 2, 3]);
  r.becomeCandidate();
  r.becomeLeader();
  r.log.commitTo(1);
  r.appliedTo(1, []);
  const prop = (data: Uint8Array) =>
    r.step(msg({ type: MessageType.Prop, from: 1, entries: [{ index: 0, term: 0, type: EntryType.ConfChange, data }] }));
  prop(encodeConfChange({ changes: [], joint: false }));
  prop(Uint8Array.of(1, 2, 3));
  prop(encodeConfChange(cc(ConfChangeType.RemoveNode, 1)));
  t.deepEqual(r.log.slice(2, 5, 1000).map((e) => e.type), [EntryType.Normal, EntryType.Normal, EntryType.ConfChange]);
});

test('§4.3 joint consensus with autoLeave: the leader leaves the joint configuration by itself', (t) => {
  const net = new Network([1, 2, 3]);
  net.add(4, new MemoryStorage(), {});
  net.campaign(1);
  net.node(1).rn.proposeConfChange({
    changes: [
      { type: ConfChangeType.AddNode, nodeId: 4 },
      { type: ConfChangeType.RemoveNode, nodeId: 3 },
    ],
    joint: false,
  });
  net.settle();
  net.tickAll(3);
  for (const id of [1, 2, 4]) {
    const cs = net.node(id).rn.status().config;
    t.deepEqual([cs.voters, cs.votersOutgoing, cs.autoLeave], [[1, 2, 4], [], false], `node ${id}`);
  }
  const confEntries = net.node(1).applied.filter((e) => e.type === EntryType.ConfChange);
  t.is(confEntries.length, 2, 'enter joint, then the automatic leave');
});

test('§4.3 joint consensus without autoLeave stays joint until an empty ConfChange is proposed', (t) => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.node(1).rn.proposeConfChange({ changes: [{ type: ConfChangeType.AddLearnerNode, nodeId: 3 }], joint: true, autoLeave: false });
  net.settle();
  net.tickAll(3);
  let cs = net.node(1).rn.status().config;
  t.deepEqual([cs.voters, cs.votersOutgoing, cs.learnersNext], [[1, 2], [1, 2, 3], [3]]);
  // While joint, decisions need both majorities: 1+2 is a majority of both.
  net.propose(1, 'joint');
  t.deepEqual(net.node(1).data(), ['joint']);
  net.node(1).rn.proposeConfChange({ changes: [], joint: false });
  net.settle();
  cs = net.node(1).rn.status().config;
  t.deepEqual([cs.voters, cs.votersOutgoing, cs.learners], [[1, 2], [], [3]]);
});

test('§4.2.2 a removed leader steps down once the change is applied; the rest elect a new leader', (t) => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.node(1).rn.proposeConfChange(cc(ConfChangeType.RemoveNode, 1));
  net.settle();
  t.is(net.node(1).role(), Role.Follower);
  net.isolate(1);
  net.tickAll(30);
  const leaders = net.leaders();
  t.is(leaders.length, 1);
  t.not(leaders[0], 1);
  net.propose(leaders[0]!, 'without-1');
  t.deepEqual(net.node(2).data(), ['without-1']);
});

test('a node joining a never-compacted cluster gets the bootstrap configuration (snapshot at index 0)', (t) => {
  const net = new Network([1, 2, 3]);
  net.add(4, new MemoryStorage(), {});
  net.campaign(1);
  net.propose(1, 'a');
  net.node(1).rn.proposeConfChange({ changes: [{ type: ConfChangeType.AddLearnerNode, nodeId: 4 }], joint: false });
  net.settle();
  net.tickAll(2);
  const snaps = net.deliveredOf(MessageType.Snap).filter((m) => m.to === 4);
  t.is(snaps.length, 1);
  t.is(snaps[0]!.snapshot!.metadata.index, 0);
  t.deepEqual(snaps[0]!.snapshot!.metadata.conf.voters, [1, 2, 3]);
  // Replaying the log from index 1 on top of it gives the right membership.
  const cs = net.node(4).rn.status().config;
  t.deepEqual([cs.voters, cs.learners], [[1, 2, 3], [4]]);
  t.deepEqual(net.node(4).data(), ['a']);
  t.deepEqual(net.node(4).storage.initialState().confState.voters, [1, 2, 3], 'the driver persisted it');
  // Original members never get it: they have the configuration.
  t.false(net.deliveredOf(MessageType.Snap).some((m) => m.to !== 4));
});

test('a node joining after compaction gets the real snapshot with the current configuration', (t) => {
  const net = new Network([1, 2, 3]);
  net.add(4, new MemoryStorage(), {});
  net.campaign(1);
  net.propose(1, 'a');
  net.node(1).rn.proposeConfChange({ changes: [{ type: ConfChangeType.AddNode, nodeId: 4 }], joint: false });
  net.isolate(4);
  net.settle();
  net.propose(1, 'b');
  const leader = net.node(1);
  const applied = leader.rn.status().applied;
  leader.storage.createSnapshot(applied, leader.rn.status().config, enc('state'));
  leader.storage.compact(applied);
  net.heal();
  net.tickAll(3);
  const snap = net.deliveredOf(MessageType.Snap).find((m) => m.to === 4)!;
  t.is(snap.snapshot!.metadata.index, applied);
  t.deepEqual(net.node(4).rn.status().config.voters, [1, 2, 3, 4]);
  net.propose(1, 'c');
  t.deepEqual(net.node(4).data(), ['c']);
});

test('a node joining when the leader snapshotted without compacting gets that snapshot, not entries from 1', (t) => {
  const net = new Network([1, 2, 3]);
  net.add(4, new MemoryStorage(), {});
  net.campaign(1);
  net.isolate(4);
  net.node(1).rn.proposeConfChange({ changes: [{ type: ConfChangeType.AddLearnerNode, nodeId: 4 }], joint: false });
  net.settle();
  const leader = net.node(1);
  const applied = leader.rn.status().applied;
  leader.storage.createSnapshot(applied, leader.rn.status().config, enc('state'));
  t.is(leader.storage.firstIndex(), 1, 'not compacted: every entry is still there');
  net.heal();
  net.tickAll(3);
  const toJoiner = net.delivered.filter((m) => m.to === 4 && (m.type === MessageType.Snap || m.entries.length > 0));
  t.is(toJoiner[0]!.type, MessageType.Snap);
  t.is(toJoiner[0]!.snapshot!.metadata.index, applied);
  const cs = net.node(4).rn.status().config;
  t.deepEqual([cs.voters, cs.learners], [[1, 2, 3], [4]]);
  net.propose(1, 'x');
  t.deepEqual(net.node(4).data(), ['x']);
});

test('a node without a configuration refuses entries until a snapshot gives it one', (t) => {
  const r = newRaft(4, [], {}, new MemoryStorage());
  const entries = [{ index: 1, term: 1, type: EntryType.Normal, data: new Uint8Array() }];
  r.step(msg({ type: MessageType.App, from: 1, to: 4, term: 1, index: 0, logTerm: 0, entries, commit: 1 }));
  const [resp] = take(r);
  t.true(resp!.reject);
  t.is(resp!.rejectHint, 0);
  t.is(r.log.lastIndex(), 0);
  // A snapshot whose configuration does not name it is still a base for a node that has none.
  r.step(msg({ type: MessageType.Snap, from: 1, to: 4, term: 1, snapshot: { metadata: { index: 5, term: 1, conf: confOf([1, 2, 3]) }, data: new Uint8Array() } }));
  t.deepEqual(r.trk.confState().voters, [1, 2, 3]);
  t.is(r.log.lastIndex(), 5);
});

test('no campaign while a committed ConfChange is not applied', (t) => {
  const s = new MemoryStorage(confOf([1, 2, 3]));
  s.append([{ index: 1, term: 1, type: EntryType.ConfChange, data: encodeConfChange(cc(ConfChangeType.AddNode, 4)) }]);
  s.setHardState({ term: 1, vote: 0, commit: 1 });
  const r = newRaft(1, [1, 2, 3], {}, s);
  r.step(msg({ type: MessageType.Hup, from: 1 }));
  t.is(r.role, Role.Follower);
  r.appliedTo(1, []);
  r.step(msg({ type: MessageType.Hup, from: 1 }));
  t.is(r.role, Role.Candidate);
});

test('a node outside the configuration (waiting to be added) never campaigns', (t) => {
  const net = new Network([1, 2, 3]);
  net.add(4, new MemoryStorage(), {});
  net.tick(4, 100);
  net.settle();
  t.is(net.node(4).role(), Role.Follower);
  t.is(net.node(4).term(), 0);
});
