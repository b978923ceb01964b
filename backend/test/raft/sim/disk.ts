// A simulated disk holding what a node has made durable: its Raft log, HardState, last snapshot and the
// durable image of its state machine. A write is a list of operations that stays pending until its sync
// completes (the simulator schedules that after a random latency); only then does it reach `durable`.
// A crash loses every pending write, or keeps a prefix of their operations (a torn write: the log's tail
// was half written when the power went), which is what a checksummed write-ahead log recovers to.

import type { ConfState, Entry, HardState, Snapshot } from '../../../src/raft/core/types.ts';
import type { Prng } from './prng.ts';

/** The durable image of a state machine: fingerprints of entries 1..applied (see state-machine.ts). */
export interface SmImage {
  applied: number;
  /** log[i - 1] is the entry applied at index i. Only the first `applied` items are part of the image. */
  log: readonly string[];
  /** Membership as of `applied` (undefined: as bootstrapped); a restart hands it to the storage. */
  conf: ConfState | undefined;
}

export const EMPTY_SM: SmImage = { applied: 0, log: [], conf: undefined };

export type DiskOp =
  /** A snapshot received from a leader: replaces the whole log and the state machine image. */
  | { kind: 'restoreSnapshot'; snapshot: Snapshot; sm: SmImage }
  /**
   * A snapshot of the local state machine. The durable log keeps only the entries after it: a restart
   * loads the snapshot and replays what follows, so older entries would never be read again.
   */
  | { kind: 'saveSnapshot'; snapshot: Snapshot; sm: SmImage }
  /** Append, overwriting any durable entries from entries[0].index on (a conflicting suffix). */
  | { kind: 'entries'; entries: Entry[] }
  | { kind: 'hardState'; hardState: HardState }
  /** The state machine made its state durable up to sm.applied. */
  | { kind: 'smFlush'; sm: SmImage };

/** Receives every change to durable state, in order (the checkers implement it). */
export interface DiskObserver {
  /**
   * entries were made durable; prevTerm is the durable term of entries[0].index - 1 (0 for index 0), and
   * `following` the durable entry right after them, if any (there is none when the write truncated the
   * conflicting suffix, as it must).
   */
  entriesDurable(node: number, entries: readonly Entry[], prevTerm: number, following?: Entry): void;
  /** Durable entries from `fromIndex` on were removed because a conflicting write replaced them. */
  truncated(node: number, fromIndex: number, removed: readonly Entry[]): void;
  hardStateDurable(node: number, prev: HardState, next: HardState): void;
  snapshotDurable(node: number, snapshot: Snapshot, sm: SmImage): void;
}

export const NO_OBSERVER: DiskObserver = {
  entriesDurable() {},
  truncated() {},
  hardStateDurable() {},
  snapshotDurable() {},
};

interface PendingWrite {
  id: number;
  ops: DiskOp[];
}

export type CrashMode = 'lose' | 'torn';

export class SimDisk {
  // Durable state. Invariant: entries[k].index === snapIndex + 1 + k.
  snapshot: Snapshot | undefined = undefined;
  snapIndex = 0;
  snapTerm = 0;
  entries: Entry[] = [];
  hardState: HardState = { term: 0, vote: 0, commit: 0 };
  sm: SmImage = EMPTY_SM;

  private pending: PendingWrite[] = [];
  private nextId = 1;
  /** Virtual time (us) at which the last submitted write completes: the disk syncs in FIFO order. */
  lastCompletionUs = 0;

  constructor(
    readonly node: number,
    private readonly observer: DiskObserver = NO_OBSERVER,
    /** false only for the 'no-truncate' mutation: conflicting entries are overwritten, stale ones after them kept. */
    private readonly truncateOnConflict = true,
  ) {}

  /** Durable state present before the node first starts (a freshly installed cluster member). */
  install(snapshot: Snapshot, sm: SmImage, hardState: HardState): void {
    this.snapshot = snapshot;
    this.snapIndex = snapshot.metadata.index;
    this.snapTerm = snapshot.metadata.term;
    this.sm = sm;
    this.hardState = { ...hardState };
  }

  get lastIndex(): number {
    return this.snapIndex + this.entries.length;
  }

  get pendingWrites(): number {
    return this.pending.length;
  }

  /** Id of the newest pending write (completing it completes all of them), if any. */
  get lastPendingWrite(): number | undefined {
    return this.pending[this.pending.length - 1]?.id;
  }

  /** Durable term at index: undefined when the index is beyond the log or compacted below the snapshot. */
  term(index: number): number | undefined {
    if (index === this.snapIndex) return this.snapTerm;
    if (index < this.snapIndex || index > this.lastIndex) return undefined;
    return this.entries[index - this.snapIndex - 1]!.term;
  }

  entry(index: number): Entry | undefined {
    if (index <= this.snapIndex || index > this.lastIndex) return undefined;
    return this.entries[index - this.snapIndex - 1];
  }

  /** Queue a write; returns its id. complete(id) makes it durable. */
  submit(ops: DiskOp[]): number {
    const id = this.nextId++;
    this.pending.push({ id, ops });
    return id;
  }

  /**
   * The sync of write `id` finished: it and every earlier pending write become durable (FIFO disk).
   * Returns false when the write is unknown, i.e. a crash already lost it.
   */
  complete(id: number): boolean {
    const at = this.pending.findIndex((w) => w.id === id);
    if (at < 0) return false;
    const done = this.pending.splice(0, at + 1);
    for (const write of done) for (const op of write.ops) this.applyOp(op);
    return true;
  }

  /** Power loss: pending writes vanish, or (torn) a prefix of their operations survives. */
  crash(rng: Prng, mode: CrashMode): { keptOps: number; lostOps: number } {
    const ops = this.pending.flatMap((w) => w.ops);
    this.pending = [];
    if (mode === 'lose' || ops.length === 0) return { keptOps: 0, lostOps: ops.length };
    // Count an entries op as one unit per entry so a tear can fall in the middle of a batch.
    const units = ops.reduce((n, op) => n + (op.kind === 'entries' ? op.entries.length : 1), 0);
    let keep = rng.int(0, units);
    let kept = 0;
    for (const op of ops) {
      if (keep === 0) break;
      if (op.kind === 'entries' && op.entries.length > keep) {
        this.applyOp({ kind: 'entries', entries: op.entries.slice(0, keep) });
        keep = 0;
      } else {
        this.applyOp(op);
        keep -= op.kind === 'entries' ? op.entries.length : 1;
      }
      kept++;
    }
    return { keptOps: kept, lostOps: ops.length - kept };
  }

  private applyOp(op: DiskOp): void {
    switch (op.kind) {
      case 'entries':
        return this.appendEntries(op.entries);
      case 'hardState': {
        const prev = this.hardState;
        this.hardState = { ...op.hardState };
        this.observer.hardStateDurable(this.node, prev, this.hardState);
        return;
      }
      case 'restoreSnapshot':
        return this.restoreSnapshot(op.snapshot, op.sm);
      case 'saveSnapshot':
        return this.saveSnapshot(op.snapshot, op.sm);
      case 'smFlush':
        if (op.sm.applied > this.sm.applied) this.sm = op.sm;
        return;
    }
  }

  private appendEntries(batch: readonly Entry[]): void {
    if (batch.length === 0) return;
    // Entries at or below the snapshot are already covered by it (a slow append racing a snapshot).
    const skip = batch.findIndex((e) => e.index > this.snapIndex);
    if (skip < 0) return;
    const entries = batch.slice(skip);
    const first = entries[0]!.index;
    if (first > this.lastIndex + 1) {
      throw new Error(`disk ${this.node}: append at ${first} leaves a gap after last index ${this.lastIndex}`);
    }
    const keep = first - this.snapIndex - 1;
    if (!this.truncateOnConflict) {
      const prevTerm = this.term(first - 1) ?? 0;
      for (let i = 0; i < entries.length; i++) this.entries[keep + i] = entries[i]!;
      this.observer.entriesDurable(this.node, entries, prevTerm, this.entries[keep + entries.length]);
      return;
    }
    if (keep < this.entries.length) {
      const removed = this.entries.slice(keep);
      this.entries.length = keep;
      this.observer.truncated(this.node, first, removed);
    }
    const prevTerm = this.term(first - 1) ?? 0;
    for (const e of entries) this.entries.push(e);
    this.observer.entriesDurable(this.node, entries, prevTerm);
  }

  private restoreSnapshot(snapshot: Snapshot, sm: SmImage): void {
    const { index, term } = snapshot.metadata;
    // The bootstrap snapshot (index 0: the initial membership) is taken by an empty disk only.
    const bootstrap = index === 0 && this.snapshot === undefined && this.lastIndex === 0;
    if (index <= this.snapIndex && !bootstrap) return;
    // Like MemoryStorage.applySnapshot: the whole log is replaced by the snapshot.
    if (this.entries.length > 0) {
      const removed = this.entries;
      this.entries = [];
      this.observer.truncated(this.node, this.snapIndex + 1, removed);
    }
    this.snapshot = snapshot;
    this.snapIndex = index;
    this.snapTerm = term;
    if (sm.applied > this.sm.applied || bootstrap) this.sm = sm;
    this.observer.snapshotDurable(this.node, snapshot, sm);
  }

  private saveSnapshot(snapshot: Snapshot, sm: SmImage): void {
    const { index, term } = snapshot.metadata;
    if (index <= this.snapIndex) return;
    const known = this.term(index);
    if (known !== undefined && known !== term) {
      throw new Error(`disk ${this.node}: snapshot ${index}/${term} conflicts with durable term ${known}`);
    }
    // Keep the entries after the snapshot; those it covers are compacted away.
    if (index <= this.lastIndex) {
      this.entries = this.entries.slice(index - this.snapIndex);
    } else {
      this.entries = [];
    }
    this.snapshot = snapshot;
    this.snapIndex = index;
    this.snapTerm = term;
    if (sm.applied > this.sm.applied) this.sm = sm;
    this.observer.snapshotDurable(this.node, snapshot, sm);
  }
}
