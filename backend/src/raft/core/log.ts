// The Raft log as one node sees it: the persisted part (Storage, read-only here) followed by the unstable
// part (entries and possibly a snapshot the driver has not yet persisted).
//
//   snapshot | storage entries ............. | unstable entries ...... |
//            firstIndex                       unstable.offset           lastIndex
//
// applied <= committed <= lastIndex, and committed entries are never truncated.

import { CompactedError, UnavailableError, assert } from './errors.ts';
import type { Storage } from './storage.ts';
import type { Entry, Snapshot } from './types.ts';
import { limitSize } from './util.ts';

/** Entries (and possibly a snapshot) accepted in memory but not yet persisted by the driver. */
export class Unstable {
  /** A snapshot to persist; when set, offset === snapshot.metadata.index + 1. */
  snapshot: Snapshot | undefined;
  /** Invariant: entries[i].index === offset + i. */
  entries: Entry[] = [];
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
  }

  /** First index if a pending snapshot defines it. */
  maybeFirstIndex(): number | undefined {
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index + 1;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index;
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot !== undefined && this.snapshot.metadata.index === i) return this.snapshot.metadata.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || i > last) return undefined;
    return this.entries[i - this.offset]!.term;
  }

  /**
   * The driver persisted entries up to (index, term). Only forget them if the entry there is still the one
   * that was persisted: a new leader may have replaced it meanwhile, and the replacement is not on disk.
   */
  stableTo(index: number, term: number): void {
    if (index < this.offset) return;
    if (this.maybeTerm(index) !== term) return;
    this.entries = this.entries.slice(index + 1 - this.offset);
    this.offset = index + 1;
  }

  stableSnapTo(index: number): void {
    if (this.snapshot !== undefined && this.snapshot.metadata.index === index) this.snapshot = undefined;
  }

  restore(snap: Snapshot): void {
    this.offset = snap.metadata.index + 1;
    this.entries = [];
    this.snapshot = snap;
  }

  /** Append entries whose first index may fall inside (or before) what is held: the suffix is replaced. */
  truncateAndAppend(ents: readonly Entry[]): void {
    const first = ents[0]!.index;
    if (first === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e);
    } else if (first <= this.offset) {
      // Replaces everything held; entries before `first` are in storage (the driver's append truncates).
      this.offset = first;
      this.entries = [...ents];
    } else {
      this.entries = this.entries.slice(0, first - this.offset).concat(ents);
    }
  }

  slice(lo: number, hi: number): Entry[] {
    assert(lo >= this.offset && hi <= this.offset + this.entries.length && lo <= hi, () =>
      `unstable.slice [${lo}, ${hi}) out of [${this.offset}, ${this.offset + this.entries.length})`,
    );
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

export class RaftLog {
  readonly storage: Storage;
  readonly unstable: Unstable;
  /** Highest index known to be stored on a quorum. Invariant: applied <= committed <= lastIndex(). */
  committed: number;
  /** Highest index the driver has applied (reported by advance()). */
  applied: number;
  /** Bytes of committed entries handed out in one Ready (at least one entry). */
  readonly maxCommittedSizePerReady: number;

  constructor(storage: Storage, maxCommittedSizePerReady: number) {
    this.storage = storage;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    // Everything up to the snapshot is committed and applied by definition.
    this.committed = first - 1;
    this.applied = first - 1;
    this.maxCommittedSizePerReady = maxCommittedSizePerReady;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /**
   * Term of entry i for firstIndex() - 1 <= i <= lastIndex(). Throws CompactedError below that range and
   * UnavailableError above it.
   */
  term(i: number): number {
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    const dummy = this.firstIndex() - 1;
    if (i < dummy) throw new CompactedError(i, dummy + 1);
    if (i > this.lastIndex()) throw new UnavailableError(i, this.lastIndex());
    return this.storage.term(i);
  }

  /**
   * Term of entry i, or 0 when it is compacted or beyond the log. The bounds are checked before term() so the
   * common miss (a follower probing an index past its last entry on every append) builds no exception.
   */
  termOrZero(i: number): number {
    if (i > this.lastIndex() || i < this.firstIndex() - 1) return 0;
    try {
      return this.term(i);
    } catch (err) {
      if (isLogGapError(err)) return 0;
      throw err;
    }
  }

  matchTerm(i: number, term: number): boolean {
    if (i > this.lastIndex() || i < this.firstIndex() - 1) return false;
    try {
      return this.term(i) === term;
    } catch (err) {
      if (isLogGapError(err)) return false;
      throw err;
    }
  }

  /** §5.4.1: a log is at least as up-to-date if its last term is higher, or equal with a longer log. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /**
   * A follower's handling of an append (§5.3): if our entry at `index` has term `logTerm`, take `entries`
   * (which follow it), replacing any conflicting suffix, and commit up to min(commit, last new index).
   * Returns the last index the leader's message covers, or undefined when the terms do not match.
   */
  maybeAppend(index: number, logTerm: number, commit: number, entries: readonly Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      assert(conflict > this.committed, () => `entry ${conflict} conflicts with committed entry (${this.committed})`);
      this.append(entries.slice(conflict - (index + 1)));
    }
    // Not lastIndex(): entries after lastNew may be stale leftovers the leader has not confirmed.
    this.commitTo(Math.min(commit, lastNew));
    return lastNew;
  }

  /**
   * Index of the first entry that is new or whose term differs from ours; 0 if all of them are already in
   * the log.
   */
  findConflict(entries: readonly Entry[]): number {
    for (const e of entries) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * Fast backtracking: the largest index <= `index` whose term is <= `term`, and that term. Every entry
   * after it has a higher term than `term`, so cannot match a log whose entry at `index` has term `term`.
   * Stops at a compacted index (term 0 returned).
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let i = index;
    while (i > 0) {
      let t: number;
      try {
        t = this.term(i);
      } catch (err) {
        if (isLogGapError(err)) return { index: i, term: 0 };
        throw err;
      }
      if (t <= term) return { index: i, term: t };
      i--;
    }
    return { index: 0, term: 0 };
  }

  /** Append entries (a leader's own, or a follower's after conflict checks). Returns the new last index. */
  append(entries: readonly Entry[]): number {
    if (entries.length === 0) return this.lastIndex();
    const after = entries[0]!.index - 1;
    assert(after >= this.committed, () => `append after ${after} would truncate committed ${this.committed}`);
    this.unstable.truncateAndAppend(entries);
    return this.lastIndex();
  }

  commitTo(commit: number): void {
    if (commit <= this.committed) return;
    assert(commit <= this.lastIndex(), () => `commit ${commit} is beyond the last index ${this.lastIndex()}`);
    this.committed = commit;
  }

  /**
   * §5.4.2: a leader only commits by counting replicas for an entry of its own term; earlier entries are
   * then committed indirectly (Log Matching).
   */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.termOrZero(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  appliedTo(index: number): void {
    if (index === 0) return;
    assert(index <= this.committed && index >= this.applied, () =>
      `applied ${index} out of range [${this.applied}, ${this.committed}]`,
    );
    this.applied = index;
  }

  stableTo(index: number, term: number): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapTo(index: number): void {
    this.unstable.stableSnapTo(index);
  }

  restore(snap: Snapshot): void {
    this.committed = snap.metadata.index;
    this.unstable.restore(snap);
  }

  hasPendingSnapshot(): boolean {
    return this.unstable.snapshot !== undefined;
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Entries from lo to the end, at most maxBytes (at least one). */
  entriesFrom(lo: number, maxBytes: number): Entry[] {
    if (lo > this.lastIndex()) return [];
    return this.slice(lo, this.lastIndex() + 1, maxBytes);
  }

  /** Committed entries not yet applied, at most maxCommittedSizePerReady bytes (at least one). */
  nextCommittedEntries(): Entry[] {
    const lo = Math.max(this.applied + 1, this.firstIndex());
    const hi = this.committed + 1;
    if (lo >= hi) return [];
    return this.slice(lo, hi, this.maxCommittedSizePerReady);
  }

  hasNextCommittedEntries(): boolean {
    return this.committed + 1 > Math.max(this.applied + 1, this.firstIndex());
  }

  /** Entries [lo, hi), at most maxBytes (at least one). Throws CompactedError if lo < firstIndex(). */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    assert(lo <= hi, () => `slice: lo ${lo} > hi ${hi}`);
    const first = this.firstIndex();
    if (lo < first) throw new CompactedError(lo, first);
    assert(hi <= this.lastIndex() + 1, () => `slice [${lo}, ${hi}) beyond last index ${this.lastIndex()}`);
    if (lo === hi) return [];
    let result: Entry[] = [];
    const offset = this.unstable.offset;
    if (lo < offset) {
      const storedHi = Math.min(hi, offset);
      result = this.storage.entries(lo, storedHi, maxBytes);
      // Storage cut the batch short at the size limit: stop here.
      if (result.length < storedHi - lo) return result;
    }
    if (hi > offset) {
      const fresh = this.unstable.slice(Math.max(lo, offset), hi);
      result = result.length === 0 ? fresh : result.concat(fresh);
    }
    return limitSize(result, maxBytes);
  }
}

/** True for the storage errors that mean "not there (any more)" rather than a failure. */
export function isLogGapError(err: unknown): boolean {
  return err instanceof CompactedError || err instanceof UnavailableError;
}
