// Property tests (fast-check): quorum arithmetic against brute force, the inflight window against a model,
// log conflict truncation against a model, and flow-control limits on a live leader.

import test from 'ava';
import fc from 'fast-check';
import {
  EntryType,
  Inflights,
  MemoryStorage,
  MessageType,
  RaftLog,
  jointCommittedIndex,
  jointVoteResult,
  majorityCommittedIndex,
  majorityVoteResult,
} from '../../../src/raft/core/index.ts';
import type { Entry, VoteResult } from '../../../src/raft/core/index.ts';
import { Network, confOf } from './harness.ts';

const ids = [1, 2, 3, 4, 5, 6, 7];

/** A set of voter ids (subset of 1..7). */
const voterSet = (minLength: number) => fc.subarray(ids, { minLength, maxLength: 7 });
/** Acknowledged index per node (some nodes unknown). */
const ackMap = fc.dictionary(fc.constantFrom(...ids.map(String)), fc.nat(20), { maxKeys: 7 });

/** Whether `yes` contains more than half of `voters` (an empty config agrees to everything). */
function isMajority(voters: number[], yes: Set<number>): boolean {
  if (voters.length === 0) return true;
  return voters.filter((v) => yes.has(v)).length * 2 > voters.length;
}

/** Brute force: the largest c such that the nodes that acknowledged >= c are a quorum of every half. */
function bruteCommitted(halves: number[][], acked: Record<string, number>): number {
  const candidates = [...new Set([0, ...Object.values(acked)])].sort((a, b) => b - a);
  for (const c of candidates) {
    const yes = new Set(ids.filter((id) => (acked[String(id)] ?? 0) >= c));
    if (halves.every((h) => isMajority(h, yes))) return c;
  }
  return 0;
}

/** Brute force over every way the missing votes could go: won if all completions win, lost if none does. */
function bruteVote(halves: number[][], votes: Map<number, boolean>): VoteResult {
  const all = [...new Set(halves.flat())];
  const missing = all.filter((id) => !votes.has(id));
  let wins = 0;
  const total = 1 << missing.length;
  for (let mask = 0; mask < total; mask++) {
    const yes = new Set(all.filter((id) => votes.get(id) === true));
    missing.forEach((id, i) => {
      if (mask & (1 << i)) yes.add(id);
    });
    if (halves.every((h) => isMajority(h, yes))) wins++;
  }
  if (wins === total) return 'won';
  if (wins === 0) return 'lost';
  return 'pending';
}

const voteMap = fc
  .dictionary(fc.constantFrom(...ids.map(String)), fc.boolean(), { maxKeys: 7 })
  .map((d) => new Map(Object.entries(d).map(([k, v]) => [Number(k), v])));

test('quorum: majority committed index is the largest index acknowledged by a majority', (t) => {
  fc.assert(
    fc.property(voterSet(1), ackMap, (voters, acked) => {
      const got = majorityCommittedIndex(voters, (id) => acked[String(id)]);
      return got === bruteCommitted([voters], acked);
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('quorum: joint committed index is the largest index acknowledged by a majority of both halves', (t) => {
  fc.assert(
    fc.property(voterSet(1), voterSet(0), ackMap, (incoming, outgoing, acked) => {
      const got = jointCommittedIndex({ incoming, outgoing }, (id) => acked[String(id)]);
      return got === bruteCommitted([incoming, outgoing], acked);
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('quorum: majority and joint vote results match brute force over all outcomes of missing votes', (t) => {
  fc.assert(
    fc.property(voterSet(0), voteMap, (voters, votes) => majorityVoteResult(voters, votes) === bruteVote([voters], votes)),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(voterSet(1), voterSet(0), voteMap, (incoming, outgoing, votes) => {
      return jointVoteResult({ incoming, outgoing }, votes) === bruteVote([incoming, outgoing], votes);
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

type InflightOp = { kind: 'add'; size: number } | { kind: 'free'; back: number } | { kind: 'freeFirst' } | { kind: 'reset' };

const inflightOp: fc.Arbitrary<InflightOp> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('add' as const), size: fc.integer({ min: 0, max: 300 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('free' as const), back: fc.integer({ min: -2, max: 10 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'freeFirst' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reset' as const }) },
);

test('inflights: never beyond the count limit, admitted only while under the byte limit, freeing matches a model', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 0, max: 1000 }),
      fc.array(inflightOp, { maxLength: 200 }),
      (maxMessages, maxBytes, ops) => {
        const inf = new Inflights(maxMessages, maxBytes);
        let model: Array<{ index: number; size: number }> = [];
        let next = 1;
        const modelBytes = () => model.reduce((s, m) => s + m.size, 0);
        const modelFull = () => model.length >= maxMessages || (maxBytes > 0 && modelBytes() >= maxBytes);
        for (const op of ops) {
          if (op.kind === 'add') {
            if (inf.full()) continue; // the leader never adds to a full window
            inf.add(next, op.size);
            model.push({ index: next, size: op.size });
            next += 1 + (op.size % 3);
          } else if (op.kind === 'free') {
            const upTo = next - 1 - op.back;
            inf.freeLE(upTo);
            model = model.filter((m) => m.index > upTo);
          } else if (op.kind === 'freeFirst') {
            inf.freeFirstOne();
            model = model.slice(1);
          } else {
            inf.reset();
            model = [];
          }
          if (inf.count() !== model.length || inf.bytes() !== modelBytes() || inf.full() !== modelFull()) return false;
          if (inf.count() > maxMessages) return false;
          // Only the newest message may have pushed the bytes past the limit.
          if (maxBytes > 0 && model.length > 0 && modelBytes() - model[model.length - 1]!.size >= maxBytes) return false;
        }
        return true;
      },
    ),
    { numRuns: 500 },
  );
  t.pass();
});

/** A log as a list of terms (index i + 1 has term terms[i]), non-decreasing. */
const termLog = (maxLength: number) =>
  fc.array(fc.integer({ min: 0, max: 2 }), { maxLength }).map((steps) => {
    let term = 1;
    return steps.map((s) => (term += s));
  });

const entriesOf = (terms: number[], from = 1): Entry[] =>
  terms.map((term, i) => ({ index: from + i, term, type: EntryType.Normal, data: new Uint8Array() }));

function readTerms(log: RaftLog): number[] {
  const out: number[] = [];
  for (let i = log.firstIndex(); i <= log.lastIndex(); i++) out.push(log.term(i));
  return out;
}

test('log: an append with a conflict keeps the matching prefix and replaces the suffix, as the model says', (t) => {
  fc.assert(
    fc.property(termLog(12), termLog(12), fc.nat(12), fc.nat(14), (followerTerms, leaderTerms, prevIdx, leaderCommit) => {
      const storage = new MemoryStorage(confOf([1]));
      storage.append(entriesOf(followerTerms));
      const log = new RaftLog(storage, 1 << 20);
      // The leader sends its entries after prevIdx (if it has such an index).
      const prev = Math.min(prevIdx, leaderTerms.length);
      const prevTerm = prev === 0 ? 0 : leaderTerms[prev - 1]!;
      const sent = entriesOf(leaderTerms.slice(prev), prev + 1);
      const result = log.maybeAppend(prev, prevTerm, leaderCommit, sent);
      // Model.
      const followerPrevTerm = prev === 0 ? 0 : followerTerms[prev - 1];
      if (followerPrevTerm !== prevTerm) {
        return result === undefined && readTerms(log).join() === followerTerms.join() && log.committed === 0;
      }
      let model = [...followerTerms];
      for (const e of sent) {
        if (model[e.index - 1] === e.term) continue;
        model = [...model.slice(0, e.index - 1), ...sent.filter((x) => x.index >= e.index).map((x) => x.term)];
        break;
      }
      const lastNew = prev + sent.length;
      return (
        result === lastNew && readTerms(log).join() === model.join() && log.committed === Math.min(leaderCommit, lastNew)
      );
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('storage: append truncates the conflicting suffix and keeps the prefix, as the model says', (t) => {
  fc.assert(
    fc.property(termLog(15), fc.nat(16), termLog(8), (existing, startRaw, batchTerms) => {
      const storage = new MemoryStorage();
      storage.append(entriesOf(existing));
      const start = 1 + Math.min(startRaw, existing.length);
      const batch = entriesOf(batchTerms, start);
      storage.append(batch);
      const model = batch.length === 0 ? existing : [...existing.slice(0, start - 1), ...batchTerms];
      const got: number[] = [];
      for (let i = storage.firstIndex(); i <= storage.lastIndex(); i++) got.push(storage.term(i));
      return got.join() === model.join();
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('flow control on a live leader: the window limits hold under lossy delivery', (t) => {
  const maxInflightMsgs = 4;
  const maxSizePerMsg = 600;
  const maxInflightBytes = 1500;
  const step = fc.record({
    sizes: fc.array(fc.integer({ min: 0, max: 800 }), { minLength: 1, maxLength: 8 }),
    tick: fc.boolean(),
  });
  let windowFilled = 0;
  fc.assert(
    fc.property(
      fc.array(step, { minLength: 1, maxLength: 12 }),
      fc.array(fc.boolean(), { minLength: 64, maxLength: 64 }),
      (steps, lossPattern) => {
        const net = new Network([1, 2, 3], { maxInflightMsgs, maxSizePerMsg, maxInflightBytes });
        net.campaign(1);
        let n = 0;
        // Follower answers are lost following the pattern; Apps always arrive.
        net.filter = (m) => m.type === MessageType.AppResp && lossPattern[n++ % lossPattern.length]!;
        const largest = Math.max(...steps.flatMap((s) => s.sizes)) + 24;
        for (const s of steps) {
          for (const size of s.sizes) net.node(1).rn.propose(new Uint8Array(size));
          net.settle();
          for (const [id, pr] of net.node(1).rn.status().progress!) {
            if (id === 1) continue;
            if (pr.inflight > maxInflightMsgs) return false;
            // Messages are sized to the byte budget left; only one entry larger than that may pass it.
            if (pr.inflightBytes > maxInflightBytes + largest) return false;
            if (pr.inflight === maxInflightMsgs || pr.inflightBytes >= maxInflightBytes) windowFilled++;
          }
          if (s.tick) net.tickAll(1);
        }
        // With losses stopped, everything is eventually replicated.
        net.filter = undefined;
        net.tickAll(5);
        return [2, 3].every((id) => net.node(id).applied.length === net.node(1).applied.length);
      },
    ),
    { numRuns: 60 },
  );
  t.true(windowFilled > 0, 'the runs exercised a full window');
});
