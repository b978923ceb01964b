import test from 'ava';
import {
  CompactedError,
  EntryType,
  MemoryStorage,
  RaftAssertionError,
  SnapOutOfDateError,
  UnavailableError,
  ENTRY_HEADER_BYTES,
} from '../../../src/raft/core/index.ts';
import type { Entry } from '../../../src/raft/core/index.ts';
import { confOf } from './harness.ts';

const ent = (index: number, term: number, size = 0): Entry => ({
  index,
  term,
  type: EntryType.Normal,
  data: new Uint8Array(size),
});

/** Storage with snapshot at 3 (term 3) and entries 4 (t4), 5 (t5). */
function sample(): MemoryStorage {
  const s = new MemoryStorage(confOf([1, 2, 3]));
  s.append([ent(1, 1), ent(2, 2), ent(3, 3), ent(4, 4), ent(5, 5)]);
  s.setHardState({ term: 5, vote: 1, commit: 5 });
  s.createSnapshot(3, confOf([1, 2, 3]), new Uint8Array([9]));
  s.compact(3);
  return s;
}

test('term: the snapshot term at firstIndex-1, errors outside the log', (t) => {
  const s = sample();
  t.is(s.firstIndex(), 4);
  t.is(s.lastIndex(), 5);
  t.is(s.term(3), 3);
  t.is(s.term(4), 4);
  t.is(s.term(5), 5);
  t.throws(() => s.term(2), { instanceOf: CompactedError });
  t.throws(() => s.term(6), { instanceOf: UnavailableError });
});

test('entries: range, size limit keeps at least one entry, errors', (t) => {
  const s = new MemoryStorage();
  s.append([ent(1, 1, 100), ent(2, 1, 100), ent(3, 1, 100)]);
  const one = 100 + ENTRY_HEADER_BYTES;
  t.deepEqual(s.entries(1, 4, Number.MAX_SAFE_INTEGER).map((e) => e.index), [1, 2, 3]);
  t.deepEqual(s.entries(1, 4, 2 * one).map((e) => e.index), [1, 2]);
  t.deepEqual(s.entries(1, 4, 2 * one - 1).map((e) => e.index), [1]);
  t.deepEqual(s.entries(1, 4, 0).map((e) => e.index), [1]);
  t.deepEqual(s.entries(2, 2, 0), []);
  t.throws(() => s.entries(1, 5, 0), { instanceOf: UnavailableError });
  t.throws(() => sample().entries(3, 5, 1000), { instanceOf: CompactedError });
});

test('append: truncates the conflicting suffix, skips compacted entries, rejects gaps', (t) => {
  const s = sample();
  s.append([ent(5, 6), ent(6, 6)]);
  t.deepEqual([s.term(4), s.term(5), s.term(6)], [4, 6, 6]);
  s.append([ent(2, 2), ent(3, 3), ent(4, 7)]);
  t.is(s.lastIndex(), 4);
  t.is(s.term(4), 7);
  t.is(s.term(3), 3);
  s.append([ent(1, 1)]);
  t.is(s.lastIndex(), 4);
  t.throws(() => s.append([ent(6, 7)]), { instanceOf: RaftAssertionError });
  t.throws(() => s.append([ent(5, 7), ent(7, 7)]), { instanceOf: RaftAssertionError });
});

test('compact: errors for compacted or unavailable indexes and past the snapshot', (t) => {
  const s = sample();
  t.throws(() => s.compact(3), { instanceOf: CompactedError });
  t.throws(() => s.compact(9), { instanceOf: UnavailableError });
  t.throws(() => s.compact(4), { instanceOf: RaftAssertionError });
  s.createSnapshot(5, confOf([1, 2, 3]), new Uint8Array());
  s.compact(4);
  t.is(s.firstIndex(), 5);
  t.is(s.term(4), 4);
});

test('createSnapshot: must be newer, within the log and committed', (t) => {
  const s = sample();
  t.throws(() => s.createSnapshot(3, confOf([1]), new Uint8Array()), { instanceOf: SnapOutOfDateError });
  t.throws(() => s.createSnapshot(6, confOf([1]), new Uint8Array()), { instanceOf: UnavailableError });
  s.append([ent(6, 6)]);
  t.throws(() => s.createSnapshot(6, confOf([1]), new Uint8Array()), { instanceOf: RaftAssertionError });
  const snap = s.createSnapshot(5, confOf([1, 2]), new Uint8Array([1, 2]));
  t.deepEqual(snap.metadata, { index: 5, term: 5, conf: confOf([1, 2]) });
  t.is(s.snapshot(), snap);
});

test('applySnapshot: replaces the log; older snapshots are rejected; empty storage bootstraps', (t) => {
  const s = sample();
  t.throws(() => s.applySnapshot({ metadata: { index: 3, term: 3, conf: confOf([1]) }, data: new Uint8Array() }), {
    instanceOf: SnapOutOfDateError,
  });
  s.applySnapshot({ metadata: { index: 10, term: 7, conf: confOf([1, 4]) }, data: new Uint8Array() });
  t.is(s.firstIndex(), 11);
  t.is(s.lastIndex(), 10);
  t.is(s.term(10), 7);
  t.deepEqual(s.initialState().confState.voters, [1, 4]);
  const fresh = new MemoryStorage();
  fresh.applySnapshot({ metadata: { index: 0, term: 0, conf: confOf([1, 2]) }, data: new Uint8Array() });
  t.deepEqual(fresh.initialState().confState.voters, [1, 2]);
});

test('initialState: hard state and the recorded configuration', (t) => {
  const s = sample();
  t.deepEqual(s.initialState().hardState, { term: 5, vote: 1, commit: 5 });
  s.setConfState(confOf([1, 2, 3], [4]));
  t.deepEqual(s.initialState().confState.learners, [4]);
});
