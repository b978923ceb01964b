// The durable Raft log and stable store: one LMDB environment holding the log entries and the small records
// (hard state, compaction point, snapshot metadata, membership). It implements the core's read-only Storage
// (synchronous reads, which lmdb-js serves from its memory map) and the write side the driver uses:
// persist() for a Ready, createSnapshot() / compact() for log compaction.
//
// Durability. The environment is opened with overlappingSync off (lmdb-js's default on Linux is on, and then
// its documentation lets a write promise resolve at commit, before the flush). LMDB then commits the classic
// way: data pages written and fdatasync'ed, then the meta page written through an O_DSYNC descriptor, and
// only then does lmdb-js resolve the transaction. Every round additionally awaits `root.flushed` (immediate
// without overlappingSync, the flush with it), so the guarantee does not hang on the open flags alone: lmdb-js
// keeps the flags of an environment already open in the process. noSync is never set. Checked by
// backend/test/raft/storage/lmdb-log-store.test.ts: under strace (fsync returns delayed 20 ms) every data.mdb
// write is fsynced, or went through the O_DSYNC descriptor, before the acknowledgement is printed; and a child
// killed with SIGKILL right after acknowledgements loses none of them.
//
// Group commit. Only one write transaction of ours is in flight at a time. persist() / compact() /
// createSnapshot() calls made meanwhile wait in a queue, and the next transaction takes all of them (up to
// persistBatchRequestsMax / persistBatchBytesMax): N concurrent calls cost far fewer than N fsyncs. Each call
// runs in its own child transaction, so one that fails its checks is rolled back and rejected alone. A round
// starts one microtask after the call that found the writer idle, so the calls of one synchronous burst share it.
//
// Commit mode. A round of at most syncCommitBytesMax bytes commits synchronously (transactionSync): LMDB writes
// the pages, fdatasyncs and writes the meta page before the call returns, on the event loop thread. An async
// lmdb-js transaction instead hands the round to lmdb-js's writer thread, which calls back into the event loop
// to run it, commits, then wakes the event loop again: two thread hand-offs per round, which cost more than
// the fsync itself on a loaded machine (measured here: a 1 KiB round p50 0.17-0.2 ms synchronous, 0.3-0.4 ms
// async when idle; 1.1-1.4 ms async in a busy three-node cluster). A larger round still goes to the writer
// thread, so the event loop keeps serving while a big write is flushed. Both modes are equally durable.
//
// Compaction. compact(i) durably moves the compaction point (firstIndex() becomes i + 1) in one small
// transaction; the entries below it are then deleted in the background, at most entriesPerCompactionTxnMax
// per transaction, riding along with persists so a large compaction never stalls the log.
//
// Reads see the state of the last resolved round: bounds (firstIndex/lastIndex), hard state and snapshot
// metadata come from memory, entry bytes from the entry cache or LMDB. A round that rewrites a suffix only
// touches indexes the core still holds in its unstable log (it never reads them from storage until the write
// is acknowledged).
//
// Entry cache. The core reads committed entries back right after writing them (to apply them, and to send them
// to followers); from LMDB each read is a copy plus a CRC check. So the newest entries, up to
// entryCacheBytesMax, stay in memory as decoded Entry objects and entries() serves them from there. The cache
// follows the view exactly: it is changed only where the view is published, after the round's commit is
// durable, by the same per-call operations as the term cache (append from an index, which cuts a replaced
// suffix first; reset on an installed snapshot), and it drops what falls below firstIndex on compaction. So
// it always holds a suffix of the durable log, ending at lastIndex (checked at each publish: a mismatch, a
// bug, drops the cache and counts stats.entryCacheFaults, so reads fall back to LMDB). Its entries
// are built from the bytes encoded for LMDB (data is a view of that buffer, which only the store ever had),
// never from the caller's Entry or buffer, which the caller may reuse. Entries handed out by entries() are
// shared between calls: callers must treat an Entry and its data as immutable (MemoryStorage's rule too; the
// state machine copies a batch before stamping offsets into it).

import { open, type Database, type RootDatabase } from 'lmdb';
import path from 'node:path';
import {
  CompactedError,
  RaftAssertionError,
  SnapOutOfDateError,
  UnavailableError,
  assert,
} from '../core/errors.ts';
import type { InitialState, Storage } from '../core/storage.ts';
import type { ConfState, Entry, HardState, Snapshot, SnapshotMetadata } from '../core/types.ts';
import { emptyConfState, entrySizeBytes } from '../core/util.ts';
import {
  copyConfState,
  decodeConfState,
  decodeEntry,
  decodeHardState,
  decodeLogStart,
  decodeSnapshotMetadata,
  ENTRY_VALUE_HEADER_BYTES,
  encodeConfState,
  encodeEntry,
  encodeHardState,
  encodeLogStart,
  encodeSnapshotMetadata,
  entryKey,
  entryKeyIndex,
  openRecord,
  sealRecord,
  type LogStart,
} from './codec.ts';
import { StorageClosedError, StorageCorruptionError, StorageLimitError } from './errors.ts';
import { ensureDir } from './fs-util.ts';

export interface LmdbLogStoreSettings {
  /**
   * Compacted entries deleted per transaction (count). Bounds the delay one background deletion step adds
   * to the persist it shares a transaction with. At least 1.
   */
  entriesPerCompactionTxnMax: number;
  /**
   * Terms of the newest entries kept in memory (count; the cache holds between this and twice this), so
   * term() near the tail, the core's hot lookup, reads no LMDB page. 0 = no cache.
   */
  termCacheEntries: number;
  /** Calls (persist, compact, createSnapshot) merged into one transaction (count). At least 1. */
  persistBatchRequestsMax: number;
  /** Encoded entry bytes merged into one transaction; a single larger call still goes alone. */
  persistBatchBytesMax: number;
  /** Calls queued or being written before new ones are refused with StorageLimitError (count). At least 1. */
  persistQueueRequestsMax: number;
  /** Largest entry payload accepted (bytes); the value layout allows up to 2^32 - 1. */
  entryBytesMax: number;
  /**
   * Rounds whose calls carry at most this many encoded entry bytes commit synchronously on the event loop
   * thread (see "Commit mode"); larger ones on lmdb-js's writer thread (bytes). 0 = only rounds without entries.
   */
  syncCommitBytesMax: number;
  /**
   * Newest durable entries kept in memory for entries() (bytes: stored value size plus an estimate of the
   * per-entry object overhead, ENTRY_CACHE_OVERHEAD_BYTES). Oldest evicted first. 0 = no cache, every read
   * goes to LMDB.
   */
  entryCacheBytesMax: number;
}

export const DEFAULT_LMDB_LOG_STORE_SETTINGS: Readonly<LmdbLogStoreSettings> = {
  entriesPerCompactionTxnMax: 2_000,
  termCacheEntries: 4_096,
  persistBatchRequestsMax: 1_024,
  persistBatchBytesMax: 64 * 1024 * 1024,
  persistQueueRequestsMax: 4_096,
  entryBytesMax: 64 * 1024 * 1024,
  // Single produce requests (the latency case) stay far below it; the coalesced multi-MiB entries of a
  // throughput load take the writer thread, whose hand-offs are then small next to the write itself.
  syncCommitBytesMax: 1024 * 1024,
  // Apply and replication read entries within milliseconds of their write, which a few MiB covers; 64 MiB
  // is about 1.5 s of the highest ingest measured on this code (43 MB/s), so a follower that falls that far
  // behind (a GC pause, a reconnect) also catches up from memory. It is charged per node, next to the
  // partition logs' own buffers, and is small against a broker's usual heap.
  entryCacheBytesMax: 64 * 1024 * 1024,
};

/**
 * Bytes an entry in the entry cache is charged on top of its stored value: the Entry object and the Buffer
 * view of its data on the JS heap (an estimate; it keeps a cache of tiny entries bounded in real memory too).
 */
export const ENTRY_CACHE_OVERHEAD_BYTES = 128;

/** What one persist() writes, in this order, in one transaction (the Ready contract, types.ts). */
export interface PersistRequest {
  /**
   * A snapshot received from the leader (Ready.snapshot): replaces the whole log, like
   * MemoryStorage.applySnapshot. Only its metadata is stored here; the bytes live in the SnapshotStore.
   */
  snapshot?: { readonly metadata: SnapshotMetadata };
  /** Contiguous entries; an index already present replaces it and everything after it. */
  entries?: readonly Entry[];
  hardState?: HardState;
  /** Membership as of the applied index (MemoryStorage.setConfState): returned by initialState(). */
  confState?: ConfState;
}

export interface LmdbLogStoreStats {
  /** Write transactions committed; each ends in one fsync (the group-commit unit). */
  syncs: number;
  /** Calls (persist, compact, createSnapshot) completed, accepted or rejected. */
  requests: number;
  /** Most calls merged into one transaction so far. */
  requestsPerSyncMax: number;
  entriesWritten: number;
  /** Compacted entries physically deleted. */
  entriesTrimmed: number;
  /** Entries entries() served from the entry cache. */
  entriesReadCached: number;
  /** Entries entries() read (copied and checked) from LMDB. */
  entriesReadStored: number;
  /** Times the entry cache disagreed with the log's end and was dropped: always 0 unless this code has a bug. */
  entryCacheFaults: number;
}

/** On-disk layout version; a store written by a newer layout is refused, never misread. */
const FORMAT_VERSION = 1;
const ENTRIES_DB = 'raft-entries';
const META_DB = 'raft-meta';
const REC_FORMAT = 'format';
const REC_HARD_STATE = 'hardState';
const REC_LOG_START = 'logStart';
const REC_SNAPSHOT = 'snapshot';
const REC_CONF_STATE = 'confState';
const EMPTY = new Uint8Array(0);

/** The durable state as of the last committed round (replaced, never mutated, after each round). */
interface View {
  hardState: HardState;
  /** Entries <= logStart.index are compacted; logStart.index <= snapshot.index. */
  logStart: LogStart;
  lastIndex: number;
  snapshot: SnapshotMetadata;
  conf: ConfState;
}

/**
 * A change the term and entry caches replay once its round is durable: entries from `at` replaced (`entries`
 * only when the entry cache is on), or the log replaced by a snapshot.
 */
type CacheOp = { at: number; terms: number[]; entries: Entry[] | undefined } | { resetTo: number };

/** View being built inside a write transaction, plus what the call being applied changed. */
interface Working extends View {
  cacheOps: CacheOp[];
  entriesWritten: number;
}

interface Job {
  /** Encoded entry bytes, for persistBatchBytesMax. */
  bytes: number;
  /** Checks the call against `w`, writes it in the current transaction, updates `w`. Throws to reject. */
  apply(w: Working): unknown;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

interface Outcome {
  ok: boolean;
  value: unknown;
}

interface RoundResult {
  view: View;
  cacheOps: CacheOp[];
  entriesWritten: number;
  outcomes: Outcome[];
  /** New trim floor when a deletion step ran, else undefined. */
  trimFloor: number | undefined;
  trimmed: number;
}

/** Directories open in this process: lmdb-js would share one environment between two stores. */
const openDirs = new Set<string>();

export class LmdbLogStore implements Storage {
  readonly stats: LmdbLogStoreStats = {
    syncs: 0,
    requests: 0,
    requestsPerSyncMax: 0,
    entriesWritten: 0,
    entriesTrimmed: 0,
    entriesReadCached: 0,
    entriesReadStored: 0,
    entryCacheFaults: 0,
  };
  private readonly settings: LmdbLogStoreSettings;
  private readonly dir: string;
  private readonly root: RootDatabase;
  private readonly entriesDb: Database<Buffer, Buffer>;
  private readonly metaDb: Database<Buffer, string>;
  private view: View;
  private snap: Snapshot;
  private readonly termCache: TermCache;
  private readonly entryCache: EntryCache;
  /** Lowest index that may still be stored at or below logStart.index (deletion pending below it). */
  private trimFloor: number;
  private trimError: unknown;
  private queue: Job[] = [];
  /** Jobs taken by the round in flight (rejected if the round fails). */
  private inRound: Job[] = [];
  private writing = false;
  private closing = false;
  private closed = false;
  /** Set when a commit failed: the on-disk state is uncertain, every later write is refused. */
  private failure: unknown;
  private idleWaiters: Array<() => void> = [];
  private trimWaiters: Array<{ resolve: () => void; reject: (err: unknown) => void }> = [];

  private constructor(
    dir: string,
    root: RootDatabase,
    entriesDb: Database<Buffer, Buffer>,
    metaDb: Database<Buffer, string>,
    settings: LmdbLogStoreSettings,
  ) {
    this.dir = dir;
    this.root = root;
    this.entriesDb = entriesDb;
    this.metaDb = metaDb;
    this.settings = settings;
    this.view = this.loadView();
    this.snap = { metadata: this.view.snapshot, data: EMPTY };
    this.termCache = new TermCache(settings.termCacheEntries, this.view.lastIndex + 1);
    this.entryCache = new EntryCache(settings.entryCacheBytesMax);
    const firstKey = this.firstStoredIndex();
    this.trimFloor = firstKey ?? this.view.logStart.index + 1;
    this.verifyTail();
  }

  /**
   * Opens (creating on first use) the store in directory `dir`. A new store is empty: bootstrap a cluster's
   * membership with persist({ snapshot: emptySnapshot(conf) }), as MemoryStorage(conf) does.
   */
  static async open(dir: string, settings: Partial<LmdbLogStoreSettings> = {}): Promise<LmdbLogStore> {
    const s = { ...DEFAULT_LMDB_LOG_STORE_SETTINGS, ...settings };
    validateSettings(s);
    const resolved = path.resolve(dir);
    if (openDirs.has(resolved)) throw new StorageClosedError(`raft log store ${resolved} is already open`);
    openDirs.add(resolved);
    let root: RootDatabase | undefined;
    try {
      await ensureDir(resolved);
      root = open({ path: resolved, overlappingSync: false, maxDbs: 4, compression: false });
      const entriesDb = root.openDB<Buffer, Buffer>(ENTRIES_DB, { keyEncoding: 'binary', encoding: 'binary' });
      const metaDb = root.openDB<Buffer, string>(META_DB, { encoding: 'binary' });
      await initFormat(root, metaDb, resolved);
      const store = new LmdbLogStore(resolved, root, entriesDb, metaDb, s);
      store.kick();
      return store;
    } catch (err) {
      openDirs.delete(resolved);
      if (root !== undefined) await root.close();
      throw err;
    }
  }

  // ---- Storage (reads) ----------------------------------------------------------------------------------

  initialState(): InitialState {
    this.assertReadable();
    return { hardState: { ...this.view.hardState }, confState: copyConfState(this.view.conf) };
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    this.assertReadable();
    const v = this.view;
    if (lo <= v.logStart.index) throw new CompactedError(lo, v.logStart.index + 1);
    if (hi > v.lastIndex + 1) throw new UnavailableError(hi - 1, v.lastIndex);
    assert(lo <= hi, () => `entries: lo ${lo} > hi ${hi}`);
    const out: Entry[] = [];
    // The cache holds a suffix of the log: [lo, cut) comes from LMDB, [cut, hi) from memory.
    const cached = this.entryCache;
    const cut = cached.size === 0 ? hi : Math.min(hi, Math.max(lo, cached.first));
    let size = 0;
    if (lo < cut) {
      size = this.readStored(lo, cut, maxBytes, out);
      if (size < 0) return out;
    }
    for (let i = cut; i < hi; i++) {
      const e = cached.at(i);
      size += entrySizeBytes(e);
      if (out.length > 0 && size > maxBytes) break;
      out.push(e);
      this.stats.entriesReadCached++;
    }
    return out;
  }

  /**
   * Appends entries [lo, hi) read from LMDB to `out`, with limitSize semantics (the first entry of `out`
   * always, then only while the total stays within maxBytes). Returns the total size, or -1 when the limit cut
   * the read short.
   */
  private readStored(lo: number, hi: number, maxBytes: number, out: Entry[]): number {
    const base = out.length;
    let size = 0;
    for (const { key, value } of this.entriesDb.getRange({ start: entryKey(lo), end: entryKey(hi) })) {
      const index = entryKeyIndex(key);
      const expected = lo + out.length - base;
      if (index !== expected) throw missingEntry(expected);
      const e = decodeEntry(index, key, value);
      size += entrySizeBytes(e);
      if (out.length > 0 && size > maxBytes) return -1;
      out.push(e);
      this.stats.entriesReadStored++;
    }
    if (out.length - base < hi - lo) throw missingEntry(lo + out.length - base);
    return size;
  }

  term(i: number): number {
    this.assertReadable();
    const v = this.view;
    if (i < v.logStart.index) throw new CompactedError(i, v.logStart.index + 1);
    if (i > v.lastIndex) throw new UnavailableError(i, v.lastIndex);
    if (i === v.logStart.index) return v.logStart.term;
    return this.termCache.get(i) ?? this.entryCache.term(i) ?? this.readEntry(i).term;
  }

  firstIndex(): number {
    return this.view.logStart.index + 1;
  }

  lastIndex(): number {
    return this.view.lastIndex;
  }

  /**
   * The latest snapshot's metadata. `data` is always empty: the snapshot bytes live in the SnapshotStore
   * (snapshot-<term>-<index>.snap), which the transport streams to a follower.
   */
  snapshot(): Snapshot {
    return this.snap;
  }

  // ---- Writes -------------------------------------------------------------------------------------------

  /**
   * Writes the snapshot metadata, then the entries, then the hard state and membership, in one transaction
   * shared with the other calls queued meanwhile; resolves once all of it is durable (fsynced). Rejects
   * (writing nothing of this call) on a gap after the last index (RaftAssertionError), an out-of-date
   * snapshot (SnapOutOfDateError), a hard state whose term or commit goes back or whose commit is beyond the
   * last index, a truncation or snapshot that would drop committed entries (RaftAssertionError), an entry
   * above entryBytesMax or a full queue (StorageLimitError).
   */
  persist(req: PersistRequest): Promise<void> {
    let encoded: EncodedEntries;
    try {
      encoded = this.encodeEntries(req.entries ?? []);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.enqueue<void>(encoded.bytes, (w) => this.applyPersist(w, req, encoded));
  }

  /**
   * Records a snapshot the application made of its state at applied index `index` with membership `conf`
   * (write the SnapshotStore file first). Like MemoryStorage.createSnapshot it removes no entries: call
   * compact() for that. Rejects with SnapOutOfDateError if not newer than the current snapshot,
   * UnavailableError beyond the last index, RaftAssertionError beyond the persisted commit index.
   */
  createSnapshot(index: number, conf: ConfState): Promise<SnapshotMetadata> {
    return this.enqueue<SnapshotMetadata>(0, (w) => this.applyCreateSnapshot(w, index, conf));
  }

  /**
   * Discards entries up to and including `index` (which must be covered by the snapshot). Resolves once the
   * new compaction point is durable: firstIndex() = index + 1 and term(index) is kept. The entries are then
   * deleted in the background (see trimmed()). Rejects with CompactedError if already compacted,
   * UnavailableError beyond the last index, RaftAssertionError beyond the snapshot index.
   */
  compact(index: number): Promise<void> {
    return this.enqueue<void>(0, (w) => this.applyCompact(w, index));
  }

  /** What the entry cache holds now: `entries` entries from index `firstIndex` on, charged `bytes`. */
  entryCacheUsage(): { entries: number; firstIndex: number; bytes: number } {
    const c = this.entryCache;
    return { entries: c.size, firstIndex: c.size === 0 ? 0 : c.first, bytes: c.bytes };
  }

  /** Resolves once every compacted entry has been physically deleted (or the store closes). */
  trimmed(): Promise<void> {
    if (this.trimError !== undefined) return Promise.reject(this.trimError);
    if (!this.trimWanted() || this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => this.trimWaiters.push({ resolve, reject }));
  }

  /** Finishes the queued calls (not the background deletion: it resumes at the next open), then closes. */
  async close(): Promise<void> {
    if (this.closing) {
      if (!this.closed) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      return;
    }
    this.closing = true;
    if (this.writing || this.queue.length > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    this.closed = true;
    this.settleTrimWaiters();
    openDirs.delete(this.dir);
    await this.root.close();
  }

  // ---- The writer ---------------------------------------------------------------------------------------

  private enqueue<T>(bytes: number, apply: (w: Working) => T): Promise<T> {
    if (this.closing) return Promise.reject(new StorageClosedError(`raft log store ${this.dir} is closed`));
    if (this.failure !== undefined) {
      return Promise.reject(new StorageClosedError(`raft log store ${this.dir} failed`, { cause: this.failure }));
    }
    if (this.queue.length + this.inRound.length >= this.settings.persistQueueRequestsMax) {
      return Promise.reject(
        new StorageLimitError(`raft log store: ${this.settings.persistQueueRequestsMax} calls pending (persistQueueRequestsMax)`),
      );
    }
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ bytes, apply, resolve: resolve as (v: unknown) => void, reject });
      this.kick();
    });
  }

  /** Starts a round unless one is in flight; the round takes the queue when its transaction begins. */
  private kick(): void {
    if (this.writing || this.closed) return;
    const trim = this.trimWanted() && !this.closing;
    if (this.failure !== undefined || (this.queue.length === 0 && !trim)) {
      this.settleIdle();
      return;
    }
    this.writing = true;
    // One microtask later: calls made in the same synchronous run as this one join the round.
    void Promise.resolve().then(() => this.round()).then(() => {
      this.writing = false;
      // A deletion-only round yields to I/O first: background work must not monopolize the loop.
      if (this.queue.length === 0 && this.trimWanted() && !this.closing) setImmediate(() => this.kick());
      else this.kick();
    });
  }

  /** One write transaction + fsync. Never rejects: outcomes go to the jobs. */
  private async round(): Promise<void> {
    let applied = false;
    let result: RoundResult | undefined;
    try {
      const body = (): RoundResult => {
        const r = this.applyRound();
        applied = true;
        return r;
      };
      // Both are abortable: if applyRound threw, nothing of it would be committed.
      if (this.nextBatch().bytes <= this.settings.syncCommitBytesMax) result = this.root.transactionSync(body) as RoundResult;
      else result = (await this.root.childTransaction(body)) as RoundResult;
      // Resolves at once after a synchronous commit or without overlappingSync; it keeps the guarantee should
      // the environment ever be opened with it (lmdb-js keeps the flags of an environment already open).
      await this.root.flushed;
    } catch (err) {
      const jobs = this.inRound;
      this.inRound = [];
      // applyRound threw (a bug): nothing was written, the view is unchanged. A failed commit or flush
      // instead leaves the disk uncertain: refuse every later write (the node must restart and reload).
      if (applied) this.fail(err);
      for (const job of jobs) job.reject(err);
      return;
    }
    this.publish(result);
  }

  /** Runs inside the write transaction: applies every queued call in its own child transaction. */
  private applyRound(): RoundResult {
    const jobs = this.takeBatch();
    this.inRound = jobs;
    let view = this.view;
    const cacheOps: CacheOp[] = [];
    let entriesWritten = 0;
    const outcomes: Outcome[] = [];
    for (const job of jobs) {
      // Applied to a copy: a call that throws leaves neither the transaction nor the view changed.
      const w: Working = { ...view, cacheOps: [], entriesWritten: 0 };
      try {
        const value = this.nested(() => job.apply(w));
        const { cacheOps: ops, entriesWritten: written, ...next } = w;
        view = next;
        cacheOps.push(...ops);
        entriesWritten += written;
        outcomes.push({ ok: true, value });
      } catch (err) {
        outcomes.push({ ok: false, value: err });
      }
    }
    const { floor, trimmed } = this.trimStep(view.logStart.index);
    return { view, cacheOps, entriesWritten, outcomes, trimFloor: floor, trimmed };
  }

  /** How many queued calls the next round takes (persistBatchRequestsMax / persistBatchBytesMax), and their bytes. */
  private nextBatch(): { n: number; bytes: number } {
    let n = 0;
    let bytes = 0;
    while (n < this.queue.length && n < this.settings.persistBatchRequestsMax) {
      const b = this.queue[n]!.bytes;
      if (n > 0 && bytes + b > this.settings.persistBatchBytesMax) break;
      bytes += b;
      n++;
    }
    return { n, bytes };
  }

  private takeBatch(): Job[] {
    return this.queue.splice(0, this.nextBatch().n);
  }

  /** After the commit is durable: publish the new view, then settle the calls in order. */
  private publish(r: RoundResult): void {
    const jobs = this.inRound;
    this.inRound = [];
    if (r.view.snapshot !== this.view.snapshot) this.snap = { metadata: r.view.snapshot, data: EMPTY };
    this.view = r.view;
    for (const op of r.cacheOps) {
      if ('resetTo' in op) {
        this.termCache.reset(op.resetTo);
        this.entryCache.clear();
      } else {
        this.termCache.append(op.at, op.terms);
        if (op.entries !== undefined) this.entryCache.append(op.at, op.entries);
      }
    }
    this.entryCache.dropBelow(r.view.logStart.index + 1);
    // Cannot happen (the cache replays the view's own changes); if it ever did, reads fall back to LMDB, which is
    // always right, rather than serve a wrong entry or leave this round's callers unsettled by throwing here.
    if (this.entryCache.size > 0 && this.entryCache.end !== r.view.lastIndex + 1) {
      this.entryCache.clear();
      this.stats.entryCacheFaults++;
    }
    if (r.trimFloor !== undefined) this.trimFloor = r.trimFloor;
    this.stats.syncs++;
    this.stats.requests += jobs.length;
    this.stats.entriesTrimmed += r.trimmed;
    this.stats.entriesWritten += r.entriesWritten;
    this.stats.requestsPerSyncMax = Math.max(this.stats.requestsPerSyncMax, jobs.length);
    for (let i = 0; i < jobs.length; i++) {
      const o = r.outcomes[i]!;
      if (o.ok) jobs[i]!.resolve(o.value);
      else jobs[i]!.reject(o.value);
    }
    if (!this.trimWanted()) this.settleTrimWaiters();
  }

  private fail(err: unknown): void {
    this.failure = err;
    const queued = this.queue;
    this.queue = [];
    const closed = new StorageClosedError(`raft log store ${this.dir} failed`, { cause: err });
    for (const job of queued) job.reject(closed);
    this.settleTrimWaiters();
    this.settleIdle();
  }

  private settleIdle(): void {
    if (this.writing || this.queue.length > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private settleTrimWaiters(): void {
    const waiters = this.trimWaiters;
    this.trimWaiters = [];
    for (const w of waiters) {
      if (this.trimError !== undefined && !this.closed) w.reject(this.trimError);
      else w.resolve();
    }
  }

  // ---- Applying calls (inside the write transaction) ----------------------------------------------------

  private applyPersist(w: Working, req: PersistRequest, enc: EncodedEntries): void {
    if (req.snapshot !== undefined) this.applySnapshot(w, req.snapshot.metadata);
    if (enc.keys.length > 0) this.applyEntries(w, req.entries!, enc);
    if (req.hardState !== undefined) this.applyHardState(w, req.hardState);
    if (req.confState !== undefined) {
      w.conf = copyConfState(req.confState);
      this.putRecord(REC_CONF_STATE, encodeConfState(w.conf));
    }
  }

  /** MemoryStorage.applySnapshot: the log becomes empty after the snapshot. */
  private applySnapshot(w: Working, meta: SnapshotMetadata): void {
    const current = w.snapshot.index;
    const bootstrap = current === 0 && w.lastIndex === 0;
    if (meta.index <= current && !bootstrap) throw new SnapOutOfDateError(meta.index, current);
    if (meta.index < w.hardState.commit) {
      throw new RaftAssertionError(`persist: snapshot at ${meta.index} is behind the commit index ${w.hardState.commit}`);
    }
    // Entries after the snapshot must go now (they would extend the new log); those up to it are merely
    // unreachable below the new log start and are deleted in the background.
    this.removeRange(meta.index + 1, w.lastIndex);
    w.snapshot = { index: meta.index, term: meta.term, conf: copyConfState(meta.conf) };
    w.logStart = { index: meta.index, term: meta.term };
    w.conf = copyConfState(meta.conf);
    w.lastIndex = meta.index;
    this.putRecord(REC_SNAPSHOT, encodeSnapshotMetadata(w.snapshot));
    this.putRecord(REC_LOG_START, encodeLogStart(w.logStart));
    this.putRecord(REC_CONF_STATE, encodeConfState(w.conf));
    w.cacheOps.push({ resetTo: meta.index + 1 });
  }

  /** MemoryStorage.append: skip compacted entries, truncate a conflicting suffix, refuse a gap. */
  private applyEntries(w: Working, entries: readonly Entry[], enc: EncodedEntries): void {
    const first = w.logStart.index + 1;
    const e0 = entries[0]!.index;
    const last = e0 + entries.length - 1;
    if (last < first) return;
    const skip = Math.max(0, first - e0);
    const at = e0 + skip;
    assert(at <= w.lastIndex + 1, () => `persist: gap, last index ${w.lastIndex}, appending ${at}`);
    // A committed entry is never removed: the commit index must stay within the log (checked at open too).
    if (last < w.hardState.commit) {
      throw new RaftAssertionError(`persist: truncating the log to ${last} drops committed entries (commit ${w.hardState.commit})`);
    }
    for (let i = skip; i < entries.length; i++) this.entriesDb.put(enc.keys[i]!, enc.values[i]!);
    w.entriesWritten += entries.length - skip;
    this.removeRange(last + 1, w.lastIndex);
    w.lastIndex = last;
    const cached = enc.cached === undefined || skip === 0 ? enc.cached : enc.cached.slice(skip);
    w.cacheOps.push({ at, terms: entries.slice(skip).map((e) => e.term), entries: cached });
  }

  private applyHardState(w: Working, hs: HardState): void {
    const prev = w.hardState;
    if (hs.term < prev.term) throw new RaftAssertionError(`persist: hard state term ${hs.term} < ${prev.term}`);
    if (hs.commit < prev.commit) throw new RaftAssertionError(`persist: commit ${hs.commit} < ${prev.commit}`);
    if (hs.commit > w.lastIndex) {
      throw new RaftAssertionError(`persist: commit ${hs.commit} beyond the last index ${w.lastIndex}`);
    }
    w.hardState = { term: hs.term, vote: hs.vote, commit: hs.commit };
    this.putRecord(REC_HARD_STATE, encodeHardState(w.hardState));
  }

  private applyCreateSnapshot(w: Working, index: number, conf: ConfState): SnapshotMetadata {
    if (index <= w.snapshot.index) throw new SnapOutOfDateError(index, w.snapshot.index);
    if (index > w.lastIndex) throw new UnavailableError(index, w.lastIndex);
    // The application can only have applied committed entries; a snapshot past the commit index is a bug.
    if (index > w.hardState.commit) {
      throw new RaftAssertionError(`snapshot index ${index} > persisted commit ${w.hardState.commit}`);
    }
    w.snapshot = { index, term: this.termInTxn(w, index), conf: copyConfState(conf) };
    this.putRecord(REC_SNAPSHOT, encodeSnapshotMetadata(w.snapshot));
    return { ...w.snapshot, conf: copyConfState(w.snapshot.conf) };
  }

  private applyCompact(w: Working, index: number): void {
    if (index <= w.logStart.index) throw new CompactedError(index, w.logStart.index + 1);
    if (index > w.lastIndex) throw new UnavailableError(index, w.lastIndex);
    // Compacting past the snapshot would leave followers needing those entries nothing to catch up from.
    if (index > w.snapshot.index) {
      throw new RaftAssertionError(`compact ${index} beyond the snapshot at ${w.snapshot.index}`);
    }
    w.logStart = { index, term: this.termInTxn(w, index) };
    this.putRecord(REC_LOG_START, encodeLogStart(w.logStart));
  }

  /** Deletes up to entriesPerCompactionTxnMax compacted entries (at or below `logStartIndex`). */
  private trimStep(logStartIndex: number): { floor: number | undefined; trimmed: number } {
    if (this.trimFloor > logStartIndex || this.trimError !== undefined) return { floor: undefined, trimmed: 0 };
    const limit = this.settings.entriesPerCompactionTxnMax;
    try {
      return this.nested(() => {
        const keys: Buffer[] = [];
        for (const key of this.entriesDb.getKeys({ start: entryKey(this.trimFloor), end: entryKey(logStartIndex + 1), limit })) {
          keys.push(key);
        }
        for (const key of keys) this.entriesDb.remove(key);
        const floor = keys.length < limit ? logStartIndex + 1 : entryKeyIndex(keys[keys.length - 1]!) + 1;
        return { floor, trimmed: keys.length };
      });
    } catch (err) {
      // Deleting compacted entries is housekeeping: stop it (trimmed() reports the error), keep the log going.
      this.trimError = err;
      return { floor: undefined, trimmed: 0 };
    }
  }

  /**
   * Runs `fn` in a child transaction of the current write transaction: synchronous (lmdb-js runs a nested
   * child transaction inline), committed into the parent when `fn` returns, aborted when it throws.
   */
  private nested<T>(fn: () => T): T {
    const result = this.root.childTransaction(fn) as unknown;
    assert(!(result instanceof Promise), 'child transaction ran outside the write transaction');
    return result as T;
  }

  private removeRange(lo: number, hi: number): void {
    for (let i = lo; i <= hi; i++) this.entriesDb.remove(entryKey(i));
  }

  /** Term of an entry inside the write transaction (sees this round's writes). */
  private termInTxn(w: Working, index: number): number {
    if (index === w.logStart.index) return w.logStart.term;
    return this.readEntry(index).term;
  }

  private putRecord(name: string, payload: Buffer): void {
    this.metaDb.put(name, sealRecord(name, payload));
  }

  private encodeEntries(entries: readonly Entry[]): EncodedEntries {
    const keys: Buffer[] = [];
    const values: Buffer[] = [];
    const cached: Entry[] | undefined = this.settings.entryCacheBytesMax > 0 ? [] : undefined;
    let bytes = 0;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      assert(e.index === entries[0]!.index + i, 'persist: entries are not contiguous');
      if (e.data.byteLength > this.settings.entryBytesMax) {
        throw new StorageLimitError(`entry ${e.index} of ${e.data.byteLength} bytes exceeds entryBytesMax ${this.settings.entryBytesMax}`);
      }
      const key = entryKey(e.index);
      const value = encodeEntry(e, key);
      keys.push(key);
      values.push(value);
      // What the cache serves is what LMDB got: built from our own buffer, not the caller's (see "Entry cache").
      cached?.push({ index: e.index, term: e.term, type: e.type, data: value.subarray(ENTRY_VALUE_HEADER_BYTES) });
      bytes += value.length;
    }
    return { keys, values, cached, bytes };
  }

  // ---- Loading ------------------------------------------------------------------------------------------

  private loadView(): View {
    const hardState = this.readRecord(REC_HARD_STATE, decodeHardState) ?? { term: 0, vote: 0, commit: 0 };
    const logStart = this.readRecord(REC_LOG_START, decodeLogStart) ?? { index: 0, term: 0 };
    const snapshot = this.readRecord(REC_SNAPSHOT, decodeSnapshotMetadata) ?? { index: 0, term: 0, conf: emptyConfState() };
    // Absent until a snapshot is applied or persist() records one: like MemoryStorage() without a conf.
    const conf = this.readRecord(REC_CONF_STATE, decodeConfState) ?? emptyConfState();
    const lastKey = this.lastStoredIndex();
    const lastIndex = Math.max(logStart.index, lastKey ?? 0);
    if (logStart.index > snapshot.index) {
      throw new StorageCorruptionError(`raft log start ${logStart.index} is beyond the snapshot at ${snapshot.index}`);
    }
    if (hardState.commit > lastIndex) {
      throw new StorageCorruptionError(`raft commit index ${hardState.commit} is beyond the last entry ${lastIndex}`);
    }
    return { hardState, logStart, lastIndex, snapshot, conf };
  }

  /** Decodes the last entry once at open: a damaged tail is reported before the node acts on it. */
  private verifyTail(): void {
    if (this.view.lastIndex > this.view.logStart.index) this.readEntry(this.view.lastIndex);
  }

  private readRecord<T>(name: string, decode: (payload: Buffer) => T): T | undefined {
    const value = this.metaDb.get(name);
    return value === undefined ? undefined : decode(openRecord(name, value));
  }

  private readEntry(index: number): Entry {
    const key = entryKey(index);
    const value = this.entriesDb.get(key);
    if (value === undefined) throw missingEntry(index);
    return decodeEntry(index, key, value);
  }

  private firstStoredIndex(): number | undefined {
    for (const key of this.entriesDb.getKeys({ limit: 1 })) return entryKeyIndex(key);
    return undefined;
  }

  private lastStoredIndex(): number | undefined {
    for (const key of this.entriesDb.getKeys({ reverse: true, limit: 1 })) return entryKeyIndex(key);
    return undefined;
  }

  private trimWanted(): boolean {
    return this.trimFloor <= this.view.logStart.index && this.trimError === undefined;
  }

  private assertReadable(): void {
    if (this.closed) throw new StorageClosedError(`raft log store ${this.dir} is closed`);
  }
}

interface EncodedEntries {
  keys: Buffer[];
  values: Buffer[];
  /** The entries as the entry cache will hold them (undefined when it is off). */
  cached: Entry[] | undefined;
  bytes: number;
}

function missingEntry(index: number): StorageCorruptionError {
  return new StorageCorruptionError(`raft log entry ${index} is missing`, index);
}

async function initFormat(root: RootDatabase, metaDb: Database<Buffer, string>, dir: string): Promise<void> {
  const stored = metaDb.get(REC_FORMAT);
  if (stored !== undefined) {
    const version = openRecord(REC_FORMAT, stored).readUInt32BE(0);
    if (version !== FORMAT_VERSION) {
      throw new StorageCorruptionError(`raft log store ${dir} has format ${version}; this build reads format ${FORMAT_VERSION}`);
    }
    return;
  }
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(FORMAT_VERSION, 0);
  await root.transaction(() => metaDb.put(REC_FORMAT, sealRecord(REC_FORMAT, payload)));
  await root.flushed;
}

function validateSettings(s: LmdbLogStoreSettings): void {
  const atLeast = (name: keyof LmdbLogStoreSettings, min: number, max = Number.MAX_SAFE_INTEGER): void => {
    const v = s[name];
    if (!Number.isSafeInteger(v) || v < min || v > max) {
      throw new RangeError(`raft log store setting ${name} must be an integer in [${min}, ${max}], got ${v}`);
    }
  };
  atLeast('entriesPerCompactionTxnMax', 1);
  atLeast('termCacheEntries', 0);
  atLeast('persistBatchRequestsMax', 1);
  atLeast('persistBatchBytesMax', 1);
  atLeast('persistQueueRequestsMax', 1);
  atLeast('entryBytesMax', 0, 2 ** 32 - 1);
  atLeast('syncCommitBytesMax', 0);
  atLeast('entryCacheBytesMax', 0);
}

/**
 * Terms of the newest entries: terms[k] is the term of index start + k. Only updated with committed rounds, so
 * it always agrees with the durable log.
 */
class TermCache {
  private start: number;
  private terms: number[] = [];

  constructor(
    private readonly max: number,
    next: number,
  ) {
    this.start = next;
  }

  get(i: number): number | undefined {
    const k = i - this.start;
    return k >= 0 && k < this.terms.length ? this.terms[k] : undefined;
  }

  reset(next: number): void {
    this.start = next;
    this.terms = [];
  }

  /** Entries from index `at` on now have `terms` (a suffix from `at` was replaced). */
  append(at: number, terms: number[]): void {
    if (this.max === 0) return;
    // Not adjacent to what is cached (a truncation below the cached range): start over from `at`.
    if (at < this.start || at > this.start + this.terms.length) this.reset(at);
    this.terms.length = at - this.start;
    for (const t of terms) this.terms.push(t);
    if (this.terms.length > 2 * this.max) {
      const drop = this.terms.length - this.max;
      this.terms.splice(0, drop);
      this.start += drop;
    }
  }
}

/**
 * The newest durable entries, oldest first: a suffix of the log (see "Entry cache"), at most `max` bytes
 * (stored value size + ENTRY_CACHE_OVERHEAD_BYTES each). Live entries are ents[head..]; ents[head] has index
 * `first`.
 */
class EntryCache {
  first = 0;
  bytes = 0;
  private ents: Entry[] = [];
  private head = 0;

  constructor(private readonly max: number) {}

  get size(): number {
    return this.ents.length - this.head;
  }

  /** One past the newest cached index. */
  get end(): number {
    return this.first + this.size;
  }

  /** The entry at index i; the caller checked first <= i < end. */
  at(i: number): Entry {
    return this.ents[this.head + i - this.first]!;
  }

  term(i: number): number | undefined {
    return i >= this.first && i < this.end ? this.at(i).term : undefined;
  }

  clear(): void {
    this.ents = [];
    this.head = 0;
    this.bytes = 0;
  }

  /** Entries from index `at` on are now `entries` (a replaced suffix is cut first). */
  append(at: number, entries: readonly Entry[]): void {
    if (this.max === 0) return;
    // Below what is cached (everything cached is replaced) or not adjacent to it: start over from `at`.
    if (this.size === 0 || at < this.first || at > this.end) {
      this.clear();
      this.first = at;
    }
    while (this.end > at) this.bytes -= cost(this.ents.pop()!);
    for (const e of entries) {
      this.ents.push(e);
      this.bytes += cost(e);
    }
    while (this.bytes > this.max && this.size > 0) this.dropOldest();
    this.pack();
  }

  /** Drops the entries below `index` (compacted). */
  dropBelow(index: number): void {
    while (this.size > 0 && this.first < index) this.dropOldest();
    if (this.size === 0) this.clear();
    this.pack();
  }

  private dropOldest(): void {
    this.bytes -= cost(this.ents[this.head]!);
    this.ents[this.head] = undefined as unknown as Entry;
    this.head++;
    this.first++;
  }

  /** Moves the live entries to the front once the dropped slots are the larger part: O(1) amortized. */
  private pack(): void {
    if (this.head > 1024 && this.head * 2 > this.ents.length) {
      this.ents = this.ents.slice(this.head);
      this.head = 0;
    }
  }
}

function cost(e: Entry): number {
  return e.data.byteLength + ENTRY_VALUE_HEADER_BYTES + ENTRY_CACHE_OVERHEAD_BYTES;
}
