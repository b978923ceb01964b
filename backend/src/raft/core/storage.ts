// The persisted log as the core sees it, and an in-memory implementation.
//
// The core only reads Storage. The driver writes it, following the Ready contract (types.ts): snapshot,
// then entries, then hard state, synced, before sending the Ready's messages. MemoryStorage is the "disk"
// of tests and of the simulator; the LMDB-backed storage implements the same interface.

import {
  CompactedError,
  RaftAssertionError,
  SnapOutOfDateError,
  UnavailableError,
  assert,
} from './errors.ts';
import type { ConfState, Entry, HardState, Snapshot } from './types.ts';
import { EntryType } from './types.ts';
import { emptyConfState, limitSize } from './util.ts';

export interface InitialState {
  hardState: HardState;
  /** Membership as of the applied index the node restarts from (Config.applied). */
  confState: ConfState;
}

/**
 * Read-only view of the persisted log. Index i is readable when firstIndex() <= i <= lastIndex();
 * term(firstIndex() - 1) is also readable (the term of the last entry covered by the snapshot).
 */
export interface Storage {
  initialState(): InitialState;
  /**
   * Entries [lo, hi), at most maxBytes in total (entrySizeBytes), but at least one if lo < hi.
   * Throws CompactedError if lo < firstIndex(), UnavailableError if hi > lastIndex() + 1.
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** Term of entry i, for firstIndex() - 1 <= i <= lastIndex(); CompactedError / UnavailableError otherwise. */
  term(i: number): number;
  /** Index of the first entry still in the log (snapshot index + 1). */
  firstIndex(): number;
  /** Index of the last entry (snapshot index when the log after the snapshot is empty). */
  lastIndex(): number;
  /** The latest snapshot; may throw SnapshotTemporarilyUnavailableError while one is being built. */
  snapshot(): Snapshot;
}

export function emptySnapshot(conf: ConfState = emptyConfState()): Snapshot {
  return { metadata: { index: 0, term: 0, conf }, data: new Uint8Array(0) };
}

function copyConfState(cs: ConfState): ConfState {
  return {
    voters: [...cs.voters],
    learners: [...cs.learners],
    votersOutgoing: [...cs.votersOutgoing],
    learnersNext: [...cs.learnersNext],
    autoLeave: cs.autoLeave,
  };
}

/**
 * Storage kept in memory. Not durable by itself: the simulator treats it as the node's disk (it survives
 * a simulated crash; only what the driver wrote to it survives).
 *
 * Entries are shared, never copied: nobody mutates an Entry or its data once created.
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = { term: 0, vote: 0, commit: 0 };
  private snap: Snapshot;
  /** Membership as of the last applied ConfChange the driver recorded (setConfState), else the snapshot's. */
  private conf: ConfState;
  /**
   * ents[0] is a dummy entry standing for the snapshot: its index and term are the snapshot's. Invariant:
   * ents[i].index === ents[0].index + i for every i, and ents.length >= 1.
   */
  private ents: Entry[];

  /** An empty log; `conf` bootstraps a new cluster's membership (as if from an empty snapshot at index 0). */
  constructor(conf: ConfState = emptyConfState()) {
    this.snap = emptySnapshot(copyConfState(conf));
    this.conf = copyConfState(conf);
    this.ents = [dummyEntry(0, 0)];
  }

  initialState(): InitialState {
    return { hardState: { ...this.hardState }, confState: copyConfState(this.conf) };
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.ents[0]!.index;
    if (lo <= offset) throw new CompactedError(lo, offset + 1);
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1, this.lastIndex());
    assert(lo <= hi, () => `entries: lo ${lo} > hi ${hi}`);
    // Only the dummy entry: the log is empty.
    if (this.ents.length === 1) return [];
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxBytes);
  }

  term(i: number): number {
    const offset = this.ents[0]!.index;
    if (i < offset) throw new CompactedError(i, offset + 1);
    if (i - offset >= this.ents.length) throw new UnavailableError(i, this.lastIndex());
    return this.ents[i - offset]!.term;
  }

  firstIndex(): number {
    return this.ents[0]!.index + 1;
  }

  lastIndex(): number {
    return this.ents[0]!.index + this.ents.length - 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  setHardState(hs: HardState): void {
    this.hardState = { ...hs };
  }

  /**
   * Record the membership as of the applied index, for drivers that restart with Config.applied beyond the
   * snapshot (they will not re-apply the ConfChange entries in between). Optional otherwise.
   */
  setConfState(cs: ConfState): void {
    this.conf = copyConfState(cs);
  }

  /**
   * Replace the whole log with the snapshot (a follower restoring Ready.snapshot). Throws SnapOutOfDateError
   * unless the snapshot is newer than the current one; an empty storage also accepts index 0 (bootstrap).
   */
  applySnapshot(snap: Snapshot): void {
    const current = this.snap.metadata.index;
    const bootstrap = current === 0 && this.lastIndex() === 0;
    if (snap.metadata.index <= current && !bootstrap) throw new SnapOutOfDateError(snap.metadata.index, current);
    this.snap = { metadata: { ...snap.metadata, conf: copyConfState(snap.metadata.conf) }, data: snap.data };
    this.conf = copyConfState(snap.metadata.conf);
    this.ents = [dummyEntry(snap.metadata.index, snap.metadata.term)];
  }

  /**
   * Make a snapshot of the application state `data`, taken at applied index `index` with membership `conf`.
   * It does not remove entries: call compact() for that (usually keeping some entries for slow followers).
   */
  createSnapshot(index: number, conf: ConfState, data: Uint8Array): Snapshot {
    const current = this.snap.metadata.index;
    if (index <= current) throw new SnapOutOfDateError(index, current);
    if (index > this.lastIndex()) throw new UnavailableError(index, this.lastIndex());
    // The application can only have applied committed entries; a snapshot past the commit index is a bug.
    if (index > this.hardState.commit) {
      throw new RaftAssertionError(`snapshot index ${index} > persisted commit ${this.hardState.commit}`);
    }
    const offset = this.ents[0]!.index;
    this.snap = {
      metadata: { index, term: this.ents[index - offset]!.term, conf: copyConfState(conf) },
      data,
    };
    return this.snap;
  }

  /**
   * Discard entries up to and including `compactIndex` (which must be covered by the snapshot the
   * application made, or followers needing them get that snapshot). Throws CompactedError if already
   * compacted, UnavailableError beyond the last index.
   */
  compact(compactIndex: number): void {
    const offset = this.ents[0]!.index;
    if (compactIndex <= offset) throw new CompactedError(compactIndex, offset + 1);
    if (compactIndex > this.lastIndex()) throw new UnavailableError(compactIndex, this.lastIndex());
    // Compacting past the snapshot would leave a follower that needs those entries with nothing to catch up
    // from: the leader would send a snapshot that is still too old, forever.
    if (compactIndex > this.snap.metadata.index) {
      throw new RaftAssertionError(`compact ${compactIndex} beyond the snapshot at ${this.snap.metadata.index}`);
    }
    const i = compactIndex - offset;
    const kept = this.ents.slice(i + 1);
    this.ents = [dummyEntry(this.ents[i]!.index, this.ents[i]!.term), ...kept];
  }

  /**
   * Write entries (contiguous, increasing indexes). An entry whose index is already present replaces it and
   * everything after it (the conflicting suffix: a new leader overwrote it). Entries already compacted are
   * skipped. A gap after the last index is a driver bug.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    for (let i = 1; i < entries.length; i++) {
      assert(entries[i]!.index === entries[0]!.index + i, 'append: entries are not contiguous');
    }
    const first = this.firstIndex();
    const last = entries[0]!.index + entries.length - 1;
    if (last < first) return;
    const fresh = first > entries[0]!.index ? entries.slice(first - entries[0]!.index) : entries;
    const at = fresh[0]!.index - this.ents[0]!.index;
    assert(at <= this.ents.length, () => `append: gap, last index ${this.lastIndex()}, appending ${fresh[0]!.index}`);
    // Truncate the conflicting suffix in place, then append: O(appended), not O(log length).
    if (at < this.ents.length) this.ents.length = at;
    for (const e of fresh) this.ents.push(e);
  }
}

function dummyEntry(index: number, term: number): Entry {
  return { index, term, type: EntryType.Normal, data: new Uint8Array(0) };
}
