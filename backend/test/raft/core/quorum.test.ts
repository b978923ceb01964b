import test from 'ava';
import {
  jointCommittedIndex,
  jointVoteResult,
  majorityCommittedIndex,
  majoritySize,
  majorityVoteResult,
} from '../../../src/raft/core/index.ts';

const acked = (m: Record<number, number>) => (id: number) => m[id];

test('majoritySize', (t) => {
  t.deepEqual([1, 2, 3, 4, 5, 6, 7].map(majoritySize), [1, 2, 2, 3, 3, 4, 4]);
});

test('majorityCommittedIndex: the index a majority has reached', (t) => {
  t.is(majorityCommittedIndex([1, 2, 3], acked({ 1: 5, 2: 3, 3: 1 })), 3);
  t.is(majorityCommittedIndex([1, 2, 3], acked({ 1: 5 })), 0);
  t.is(majorityCommittedIndex([1, 2, 3, 4], acked({ 1: 5, 2: 5, 3: 4, 4: 1 })), 4);
  t.is(majorityCommittedIndex([1], acked({ 1: 7 })), 7);
  t.is(majorityCommittedIndex([], acked({})), Number.POSITIVE_INFINITY);
});

test('§4.3 jointCommittedIndex: the smaller of both halves', (t) => {
  const a = acked({ 1: 10, 2: 10, 3: 2, 4: 1, 5: 1 });
  t.is(jointCommittedIndex({ incoming: [1, 2, 3], outgoing: [3, 4, 5] }, a), 1);
  t.is(jointCommittedIndex({ incoming: [1, 2, 3], outgoing: [] }, a), 10);
  t.is(jointCommittedIndex({ incoming: [1, 2, 4], outgoing: [1, 2, 3] }, a), 10);
});

test('majorityVoteResult: won, lost, pending', (t) => {
  const v = (m: Record<number, boolean>) => new Map(Object.entries(m).map(([k, x]) => [Number(k), x]));
  t.is(majorityVoteResult([1, 2, 3], v({ 1: true, 2: true })), 'won');
  t.is(majorityVoteResult([1, 2, 3], v({ 1: true })), 'pending');
  t.is(majorityVoteResult([1, 2, 3], v({ 1: true, 2: false, 3: false })), 'lost');
  t.is(majorityVoteResult([1, 2, 3, 4], v({ 1: true, 2: true, 3: false })), 'pending');
  t.is(majorityVoteResult([1, 2, 3, 4], v({ 1: true, 2: false, 3: false })), 'lost');
  t.is(majorityVoteResult([1, 2], v({ 9: true, 1: true })), 'pending', 'votes of non-voters do not count');
  t.is(majorityVoteResult([], v({})), 'won');
});

test('jointVoteResult: both halves must win; a lost half loses', (t) => {
  const v = (m: Record<number, boolean>) => new Map(Object.entries(m).map(([k, x]) => [Number(k), x]));
  const cfg = { incoming: [1, 2, 3], outgoing: [3, 4, 5] };
  t.is(jointVoteResult(cfg, v({ 1: true, 2: true, 3: true })), 'pending');
  t.is(jointVoteResult(cfg, v({ 1: true, 2: true, 3: true, 4: true })), 'won');
  t.is(jointVoteResult(cfg, v({ 1: true, 2: true, 4: false, 5: false })), 'lost');
  t.is(jointVoteResult({ incoming: [1], outgoing: [] }, v({ 1: true })), 'won');
});
