import test from 'ava';
import {
  CompactedError,
  ENTRY_HEADER_BYTES,
  EntryType,
  MemoryStorage,
  RaftAssertionError,
  RaftLog,
  Unstable,
} from '../../../src/raft/core/index.ts';
import type { Entry } from '../../../src/raft/core/index.ts';
import { confOf } from './harness.ts';

const ent = (index: number, term: number, size = 0): Entry => ({
  index,
  term,
  type: EntryType.Normal,
  data: new Uint8Array(size),
});
const terms = (es: Entry[]): number[][] => es.map((e) => [e.index, e.term]);

function logWith(stored: Entry[], unstable: Entry[] = [], maxCommitted = 1 << 20): RaftLog {
  const s = new MemoryStorage(confOf([1]));
  s.append(stored);
  const log = new RaftLog(s, maxCommitted);
  if (unstable.length > 0) log.append(unstable);
  return log;
}

test('findConflict: first new or differing entry', (t) => {
  const log = logWith([ent(1, 1), ent(2, 2), ent(3, 3)]);
  t.is(log.findConflict([]), 0);
  t.is(log.findConflict([ent(1, 1), ent(2, 2), ent(3, 3)]), 0);
  t.is(log.findConflict([ent(2, 2), ent(3, 3), ent(4, 4)]), 4);
  t.is(log.findConflict([ent(2, 2), ent(3, 4)]), 3);
  t.is(log.findConflict([ent(1, 4), ent(2, 4)]), 1);
});

test('§5.3 maybeAppend: term check, conflict truncation, commit bounded by the last new entry', (t) => {
  const base = [ent(1, 1), ent(2, 2), ent(3, 3)];
  // Mismatching previous term: nothing changes.
  let log = logWith(base);
  t.is(log.maybeAppend(3, 2, 3, [ent(4, 4)]), undefined);
  t.is(log.lastIndex(), 3);
  // Matching: appended, commit = min(leader commit, last new).
  log = logWith(base);
  t.is(log.maybeAppend(3, 3, 10, [ent(4, 4), ent(5, 4)]), 5);
  t.is(log.committed, 5);
  // A short App that matches a prefix: stale entries after it stay, but are not committed.
  log = logWith(base);
  t.is(log.maybeAppend(1, 1, 3, []), 1);
  t.is(log.committed, 1);
  t.is(log.lastIndex(), 3);
  // Conflict: suffix replaced.
  log = logWith(base);
  t.is(log.maybeAppend(1, 1, 0, [ent(2, 4)]), 2);
  t.deepEqual(terms(log.slice(1, log.lastIndex() + 1, 1 << 20)), [[1, 1], [2, 4]]);
  // Conflicting with a committed entry is a safety violation.
  log = logWith(base);
  log.commitTo(3);
  t.throws(() => log.maybeAppend(1, 1, 3, [ent(2, 4)]), { instanceOf: RaftAssertionError });
});

test('findConflictByTerm: largest index at or below with a term no higher', (t) => {
  const log = logWith([ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2), ent(5, 5), ent(6, 5)]);
  t.deepEqual(log.findConflictByTerm(6, 5), { index: 6, term: 5 });
  t.deepEqual(log.findConflictByTerm(6, 4), { index: 4, term: 2 });
  t.deepEqual(log.findConflictByTerm(6, 1), { index: 2, term: 1 });
  t.deepEqual(log.findConflictByTerm(6, 0), { index: 0, term: 0 });
  t.deepEqual(log.findConflictByTerm(3, 9), { index: 3, term: 2 });
});

test('term and slice span storage, unstable and compaction', (t) => {
  const s = new MemoryStorage(confOf([1]));
  s.append([ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2)]);
  s.setHardState({ term: 2, vote: 1, commit: 4 });
  s.createSnapshot(2, confOf([1]), new Uint8Array());
  s.compact(2);
  const log = new RaftLog(s, 1 << 20);
  log.append([ent(5, 3), ent(6, 3)]);
  t.is(log.firstIndex(), 3);
  t.is(log.lastIndex(), 6);
  t.is(log.term(2), 1);
  t.is(log.term(5), 3);
  t.throws(() => log.term(1), { instanceOf: CompactedError });
  t.is(log.termOrZero(1), 0);
  t.is(log.termOrZero(7), 0);
  t.deepEqual(terms(log.slice(3, 7, 1 << 20)), [[3, 2], [4, 2], [5, 3], [6, 3]]);
  t.deepEqual(terms(log.slice(4, 6, 1 << 20)), [[4, 2], [5, 3]]);
  t.throws(() => log.slice(2, 4, 1 << 20), { instanceOf: CompactedError });
  // Unstable entries replacing part of storage hide the stale stored suffix.
  log.append([ent(4, 4)]);
  t.is(log.lastIndex(), 4);
  t.deepEqual(terms(log.slice(3, 5, 1 << 20)), [[3, 2], [4, 4]]);
});

test('slice: size limit across storage and unstable keeps at least one entry', (t) => {
  const one = 10 + ENTRY_HEADER_BYTES;
  const log = logWith([ent(1, 1, 10), ent(2, 1, 10)], [ent(3, 1, 10), ent(4, 1, 10)]);
  t.is(log.slice(1, 5, 3 * one).length, 3);
  t.is(log.slice(1, 5, one).length, 1);
  t.is(log.slice(3, 5, 0).length, 1);
  t.is(log.slice(1, 5, 1 << 20).length, 4);
});

test('§5.4.2 maybeCommit: only an entry of the given term commits by counting', (t) => {
  const log = logWith([ent(1, 1), ent(2, 2)], [ent(3, 3)]);
  t.false(log.maybeCommit(2, 3));
  t.is(log.committed, 0);
  t.true(log.maybeCommit(3, 3));
  t.is(log.committed, 3);
  t.false(log.maybeCommit(2, 2), 'never moves back');
});

test('commitTo beyond the last index and appliedTo out of range are assertions', (t) => {
  const log = logWith([ent(1, 1), ent(2, 1)]);
  t.throws(() => log.commitTo(3), { instanceOf: RaftAssertionError });
  log.commitTo(2);
  log.appliedTo(1);
  t.throws(() => log.appliedTo(0 + 3), { instanceOf: RaftAssertionError });
  log.appliedTo(2);
  t.throws(() => log.append([ent(2, 5)]), { instanceOf: RaftAssertionError });
});

test('nextCommittedEntries: from applied+1 to committed, size limited', (t) => {
  const one = 10 + ENTRY_HEADER_BYTES;
  const log = logWith([ent(1, 1, 10), ent(2, 1, 10)], [ent(3, 1, 10)], 2 * one);
  t.false(log.hasNextCommittedEntries());
  log.commitTo(3);
  t.true(log.hasNextCommittedEntries());
  t.deepEqual(log.nextCommittedEntries().map((e) => e.index), [1, 2]);
  log.appliedTo(2);
  t.deepEqual(log.nextCommittedEntries().map((e) => e.index), [3]);
  log.appliedTo(3);
  t.false(log.hasNextCommittedEntries());
});

test('unstable: stableTo only forgets entries that are still the persisted ones', (t) => {
  const u = new Unstable(5);
  u.truncateAndAppend([ent(5, 1), ent(6, 1), ent(7, 1)]);
  // Persisted up to 6 (term 1), but meanwhile 6 was replaced by a term-2 entry: keep everything.
  const replaced = new Unstable(5);
  replaced.truncateAndAppend([ent(5, 1), ent(6, 1), ent(7, 1)]);
  replaced.truncateAndAppend([ent(6, 2)]);
  replaced.stableTo(6, 1);
  t.is(replaced.offset, 5);
  t.deepEqual(terms(replaced.entries), [[5, 1], [6, 2]]);
  u.stableTo(6, 1);
  t.is(u.offset, 7);
  t.deepEqual(terms(u.entries), [[7, 1]]);
  u.stableTo(4, 1);
  t.is(u.offset, 7);
  // Truncating before the offset replaces everything held.
  u.truncateAndAppend([ent(6, 3)]);
  t.is(u.offset, 6);
  t.deepEqual(terms(u.entries), [[6, 3]]);
});

test('unstable snapshot: restore, term of the snapshot index, stableSnapTo', (t) => {
  const log = logWith([ent(1, 1), ent(2, 1)]);
  log.restore({ metadata: { index: 10, term: 4, conf: confOf([1]) }, data: new Uint8Array() });
  t.true(log.hasPendingSnapshot());
  t.is(log.firstIndex(), 11);
  t.is(log.lastIndex(), 10);
  t.is(log.term(10), 4);
  t.is(log.committed, 10);
  log.stableSnapTo(9);
  t.true(log.hasPendingSnapshot());
  log.stableSnapTo(10);
  t.false(log.hasPendingSnapshot());
});

test('§5.4.1 isUpToDate: higher last term wins, then the longer log', (t) => {
  const log = logWith([ent(1, 1), ent(2, 2), ent(3, 2)]);
  t.true(log.isUpToDate(1, 3));
  t.true(log.isUpToDate(3, 2));
  t.true(log.isUpToDate(4, 2));
  t.false(log.isUpToDate(2, 2));
  t.false(log.isUpToDate(9, 1));
});
