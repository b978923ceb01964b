// The log of one partition: an ordered list of segments in one directory, the last one active.
//
// Invariants:
// - segments are sorted by baseOffset; segments[i] holds offsets [segments[i].baseOffset, segments[i].nextOffset)
//   and segments[i].nextOffset <= segments[i + 1].baseOffset. The last segment is the only one written to.
// - logStartOffset <= highWatermark <= logEndOffset == active.nextOffset.
// - highWatermark: what readers may see. With flush.messages = 1 it is the synced end of the log (nothing a
//   consumer saw can vanish in a power loss); otherwise every written batch is visible at once.
// - append() does all of its work (validate, assign offsets, write) synchronously, so appends to one partition
//   are serialised by the event loop without a lock; only waiting for the fsync is asynchronous.

import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { ErrorCode, KafkaError } from '../protocol/errors.ts';
import { assignBatchOffset, stampLogAppendTime, validateProducePayload } from '../protocol/records/batch.ts';
import type { BatchView } from '../protocol/records/batch.ts';
import type { LogConfig } from './log-config.ts';
import { TEMP_SUFFIX, readLogStartCheckpoint, writeLogStartCheckpoint } from './checkpoint.ts';
import { fsyncDir, unlinkIfExists } from './file-io.ts';
import {
  DELETED_SUFFIX,
  LOG_SUFFIX,
  LogSegment,
  indexPolicyOf,
  parseLogFileName,
  removeFiles,
  segmentFileName,
} from './segment.ts';
import type { IndexPolicy } from './segment.ts';

const INT32_MAX = 2147483647;
/** Default cap on the bytes one read() gathers (the first batch is returned whole even when larger). */
export const READ_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;

/** ListOffsets special timestamps (the wire values). */
export const OffsetSpec = { LATEST: -1, EARLIEST: -2, MAX_TIMESTAMP: -3, EARLIEST_LOCAL: -4 } as const;

export interface PartitionLogOptions {
  logger: Logger;
  /** The clock for segment.ms, retention and LogAppendTime (injected so tests control time). */
  nowMs: () => number;
  /** Most bytes one read() gathers beyond the first batch (bytes); default READ_BYTES_MAX_DEFAULT. */
  readBytesMax?: number;
}

export interface LogAppendOptions {
  /** Stored as every batch's partitionLeaderEpoch; default 0. */
  leaderEpoch?: number;
}

export interface LogAppendResult {
  baseOffset: number;
  lastOffset: number;
  /** The broker time stamped into the batches with LogAppendTime, else -1. */
  logAppendTimeMs: number;
  logStartOffset: number;
}

export interface LogReadResult {
  /** Whole batches as stored, the first one containing the requested offset. */
  records: Buffer[];
  bytes: number;
  highWatermark: number;
  logStartOffset: number;
  lastStableOffset: number;
}

export interface LogOffsetResult {
  /** -1 when no record matches. */
  offset: number;
  /** -1 for EARLIEST / LATEST and when no record matches. */
  timestamp: number;
  /** The partitionLeaderEpoch of the batch found, -1 when unknown. */
  leaderEpoch: number;
}

export interface RetentionResult {
  segmentsDeleted: number;
  bytesDeleted: number;
  logStartOffset: number;
}

/** Called with the new high watermark each time it moves (a Fetch long-poll can wake up). */
export type LogAppendListener = (highWatermark: number) => void;

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export class PartitionLog {
  readonly dir: string;
  private config: LogConfig;
  private policy: IndexPolicy;
  private readonly logger: Logger;
  private readonly nowMs: () => number;
  private readonly readBytesMax: number;
  private segments: LogSegment[];
  private endOffset: number;
  private startOffset: number;
  private hw: number;
  /** The log end offset covered by the last completed fsync. */
  private syncedOffset: number;
  private unsyncedMessages = 0;
  private syncRunning: Promise<void> | null = null;
  /** The next group commit: appends arriving while a sync runs share it. */
  private syncQueued: Deferred | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  private checkpointChain: Promise<void> = Promise.resolve();
  private readonly pendingDeletes = new Map<NodeJS.Timeout, string[]>();
  private readonly listeners = new Set<LogAppendListener>();
  private failure: Error | null = null;
  private closed = false;

  private constructor(dir: string, config: LogConfig, options: PartitionLogOptions, logger: Logger, segments: LogSegment[], startOffset: number) {
    this.dir = dir;
    this.config = { ...config };
    this.policy = indexPolicyOf(config);
    this.logger = logger;
    this.nowMs = options.nowMs;
    this.readBytesMax = options.readBytesMax ?? READ_BYTES_MAX_DEFAULT;
    this.segments = segments;
    this.endOffset = this.active.nextOffset;
    this.startOffset = startOffset;
    this.hw = this.endOffset;
    this.syncedOffset = this.endOffset;
  }

  /**
   * Opens (or creates) the partition log in `dir`: removes leftovers, loads sealed segments, recovers the active
   * one (truncating a torn or corrupt tail). Never fails because of what a crash can leave behind.
   */
  static async open(dir: string, config: LogConfig, options: PartitionLogOptions): Promise<PartitionLog> {
    fs.mkdirSync(dir, { recursive: true });
    const logger = options.logger.child({ log: dir });
    const bases = prepareDir(dir, logger);
    const policy = indexPolicyOf(config);
    const now = options.nowMs();
    let checkpoint: number | null = null;
    try {
      checkpoint = readLogStartCheckpoint(dir);
    } catch (err) {
      logger.warn({ err }, 'ignoring unreadable log start checkpoint');
    }
    let segments: LogSegment[] = [];
    try {
      bases.forEach((base, i) => {
        segments.push(i < bases.length - 1 ? LogSegment.loadClosed(dir, base, policy, logger) : LogSegment.recoverActive(dir, base, policy, logger, now));
      });
      checkSegmentOrder(segments, logger);
      const lastEnd = segments.length > 0 ? segments[segments.length - 1]!.nextOffset : 0;
      if (checkpoint !== null && checkpoint > lastEnd) {
        // Only possible when an unsynced tail was lost after DeleteRecords moved the start past it: every
        // remaining record is below the start anyway.
        logger.warn({ logStartOffset: checkpoint, logEndOffset: lastEnd }, 'log ends before its start offset; starting empty there');
        for (const seg of segments) removeFiles(seg.markDeleted());
        segments = [];
      }
      if (segments.length === 0) {
        segments.push(LogSegment.create(dir, checkpoint ?? 0, now));
        fsyncDir(dir);
      }
    } catch (err) {
      for (const seg of segments) seg.close();
      throw err;
    }
    const startOffset = Math.max(checkpoint ?? 0, segments[0]!.baseOffset);
    const log = new PartitionLog(dir, config, options, logger, segments, startOffset);
    logger.debug({ logStartOffset: startOffset, logEndOffset: log.endOffset, segments: segments.length }, 'partition log opened');
    return log;
  }

  get logEndOffset(): number {
    return this.endOffset;
  }

  get logStartOffset(): number {
    return this.startOffset;
  }

  get highWatermark(): number {
    return this.hw;
  }

  /** No transactions yet: everything below the high watermark is stable. */
  get lastStableOffset(): number {
    return this.hw;
  }

  /** Bytes of all segments. */
  get sizeBytes(): number {
    let total = 0;
    for (const seg of this.segments) total += seg.size;
    return total;
  }

  segmentBaseOffsets(): number[] {
    return this.segments.map((s) => s.baseOffset);
  }

  /** Subscribes to high watermark moves; returns the unsubscribe function. */
  onAppend(listener: LogAppendListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Appends a produce payload (one or more RecordBatch v2 batches). Validates it, assigns consecutive offsets
   * to its batches in place (the payload buffer is modified and then owned by the log), writes it to the OS,
   * and resolves once the flush policy is satisfied (after fsync for flush.messages = 1).
   */
  async append(payload: Buffer, options: LogAppendOptions = {}): Promise<LogAppendResult> {
    const result = this.appendNow(payload, options.leaderEpoch ?? 0);
    if (this.syncBeforeAck || this.unsyncedMessages >= this.config.flushMessages) await this.requestSync();
    else this.armFlushTimer();
    return result;
  }

  /**
   * Everything append does before waiting: runs to completion without yielding, which is what serialises
   * appends per partition. (Idempotent producers, later: check each view's producerId / producerEpoch /
   * baseSequence against the producer state here, after validation and before any byte is written.)
   */
  private appendNow(payload: Buffer, leaderEpoch: number): LogAppendResult {
    this.ensureWritable();
    const views = validateProducePayload(payload, this.config.maxMessageBytes);
    let recordCount = 0;
    for (const v of views) recordCount += v.lastOffsetDelta + 1;
    if (recordCount > INT32_MAX) throw new KafkaError(ErrorCode.INVALID_RECORD, `payload claims ${recordCount} records`);
    const now = this.nowMs();
    const baseOffset = this.endOffset;
    const lastOffset = baseOffset + recordCount - 1;
    this.maybeRoll(payload.length, lastOffset, now);
    const logAppendTimeMs = this.config.messageTimestampType === 'LogAppendTime' ? now : -1;
    this.assignOffsets(payload, views, baseOffset, leaderEpoch, logAppendTimeMs);
    try {
      this.active.append(payload, views, now, this.policy);
    } catch (err) {
      throw this.fail('append', err);
    }
    this.active.lastModifiedMs = now;
    this.endOffset = lastOffset + 1;
    this.unsyncedMessages += recordCount;
    if (!this.syncBeforeAck) this.advanceHighWatermark(this.endOffset);
    return { baseOffset, lastOffset, logAppendTimeMs, logStartOffset: this.startOffset };
  }

  private assignOffsets(payload: Buffer, views: BatchView[], baseOffset: number, leaderEpoch: number, logAppendTimeMs: number): void {
    let next = baseOffset;
    for (const v of views) {
      assignBatchOffset(payload, v.position, next, leaderEpoch);
      v.baseOffset = next;
      v.partitionLeaderEpoch = leaderEpoch;
      if (logAppendTimeMs >= 0) {
        stampLogAppendTime(payload, v.position, v.size, logAppendTimeMs);
        v.baseTimestamp = logAppendTimeMs;
        v.maxTimestamp = logAppendTimeMs;
      }
      next += v.lastOffsetDelta + 1;
    }
  }

  private get active(): LogSegment {
    return this.segments[this.segments.length - 1]!;
  }

  private get syncBeforeAck(): boolean {
    return this.config.flushMessages <= 1;
  }

  private maybeRoll(payloadBytes: number, lastOffset: number, now: number): void {
    const seg = this.active;
    if (seg.size === 0) return; // an empty segment takes any payload: rolling would not help
    let reason: string | null = null;
    if (seg.size + payloadBytes > Math.min(this.config.segmentBytes, INT32_MAX)) reason = 'segment.bytes';
    else if (seg.rollStartMs !== null && now - seg.rollStartMs > this.config.segmentMs) reason = 'segment.ms';
    else if (seg.indexFull(this.policy)) reason = 'segment.index.bytes';
    else if (lastOffset - seg.baseOffset > INT32_MAX) reason = 'relative offset overflow';
    if (reason !== null) this.roll(reason, now);
  }

  /** Seals the active segment (fsynced) and starts a new one at the log end offset. */
  private roll(reason: string, now: number): void {
    try {
      this.active.seal();
      this.segments.push(LogSegment.create(this.dir, this.endOffset, now));
      fsyncDir(this.dir);
    } catch (err) {
      throw this.fail('roll', err);
    }
    this.logger.info({ baseOffset: this.endOffset, reason }, 'rolled to a new segment');
    this.markSynced(this.endOffset); // sealing fsynced everything written so far
  }

  // ---- durability ----------------------------------------------------------------------------------------

  /** Group commit: starts a sync now, or joins the one queued behind the running sync. */
  private requestSync(): Promise<void> {
    if (this.syncRunning === null) return this.startSync();
    this.syncQueued ??= deferred();
    return this.syncQueued.promise;
  }

  private startSync(): Promise<void> {
    const run = this.syncOnce();
    this.syncRunning = run;
    // Bookkeeping after the run settles (never synchronously inside it: syncOnce may finish without awaiting).
    const done = (): void => this.afterSync(run);
    run.then(done, done);
    return run;
  }

  private afterSync(run: Promise<void>): void {
    if (this.syncRunning !== run) return;
    this.syncRunning = null;
    const queued = this.syncQueued;
    if (queued) {
      this.syncQueued = null;
      this.startSync().then(queued.resolve, queued.reject);
    } else {
      this.armFlushTimer();
    }
  }

  /** One fdatasync of the active segment, covering everything written when it starts. */
  private async syncOnce(): Promise<void> {
    try {
      if (this.failure) throw this.failure;
      if (this.syncedOffset >= this.endOffset) return;
      const target = this.endOffset;
      const seg = this.active;
      this.unsyncedMessages = 0;
      seg.persistIndexes();
      await seg.syncLog();
      this.markSynced(target);
    } catch (err) {
      throw this.fail('fsync', err);
    }
  }

  /** flush.ms: sync at least this often while unsynced data exists. The timer never keeps the process up. */
  private armFlushTimer(): void {
    if (this.flushTimer !== null || this.closed || this.config.flushMs < 0 || this.syncedOffset >= this.endOffset) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      this.requestSync().catch(() => {
        // fail() already logged it and refuses further appends
      });
    }, this.config.flushMs);
    this.flushTimer.unref();
  }

  private markSynced(offset: number): void {
    if (offset > this.syncedOffset) this.syncedOffset = offset;
    if (this.syncBeforeAck) this.advanceHighWatermark(this.syncedOffset);
  }

  private advanceHighWatermark(offset: number): void {
    if (offset <= this.hw) return;
    this.hw = offset;
    for (const listener of this.listeners) {
      try {
        listener(offset);
      } catch (err) {
        this.logger.error({ err }, 'append listener threw');
      }
    }
  }

  /** Makes everything appended so far durable: the active segment's data and its index files. */
  async flush(): Promise<void> {
    this.ensureWritable();
    await this.requestSync();
    const target = this.endOffset;
    try {
      this.active.syncAll();
    } catch (err) {
      throw this.fail('flush', err);
    }
    this.markSynced(target);
  }

  // ---- reads ---------------------------------------------------------------------------------------------

  /**
   * Whole batches from the one containing `offset`, up to maxBytes (KIP-74: with minOneBatch the first batch
   * is returned even when larger), never at or past the high watermark. offset == logEndOffset (or anything
   * from the high watermark up) reads nothing; outside [logStartOffset, logEndOffset] is OFFSET_OUT_OF_RANGE.
   */
  read(offset: number, maxBytes: number, minOneBatch = true): LogReadResult {
    this.ensureOpen();
    if (offset < this.startOffset || offset > this.endOffset) {
      throw new KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE, `offset ${offset} is outside [${this.startOffset}, ${this.endOffset}]`);
    }
    const hw = this.hw;
    const records: Buffer[] = [];
    let bytes = 0;
    if (offset < hw) {
      try {
        bytes = this.collect(offset, Math.max(0, Math.min(maxBytes, this.readBytesMax)), minOneBatch, hw, records);
      } catch (err) {
        this.logger.error({ err, offset }, 'log read failed');
        throw new KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, `log read failed: ${(err as Error).message}`, { cause: err });
      }
    }
    return { records, bytes, highWatermark: hw, logStartOffset: this.startOffset, lastStableOffset: hw };
  }

  private collect(offset: number, budget: number, takeFirst: boolean, hw: number, out: Buffer[]): number {
    let i = this.segmentIndexFor(offset);
    let position = this.segments[i]!.locate(offset);
    let bytes = 0;
    for (; i < this.segments.length; i++, position = 0) {
      if (position < 0) continue; // no batch at or after offset in this segment
      const r = this.segments[i]!.readFrom(position, budget - bytes, takeFirst && bytes === 0, hw, out);
      bytes += r.bytes;
      if (!r.atEnd || bytes >= budget) break;
    }
    return bytes;
  }

  /** The last segment whose base offset is <= offset (0 if none). */
  private segmentIndexFor(offset: number): number {
    let lo = 0;
    let hi = this.segments.length - 1;
    let found = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.segments[mid]!.baseOffset <= offset) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  /**
   * ListOffsets. -2 (EARLIEST) / -4: the log start offset; -1 (LATEST): the high watermark; -3
   * (MAX_TIMESTAMP): the record with the largest timestamp; t >= 0: the first record with timestamp >= t at or
   * after the log start offset and below the high watermark. Inside uncompressed batches the exact record is
   * found; a compressed batch (never decompressed) answers with its base offset, which a consumer seeking
   * there reads whole, wanted record included. No match: offset -1, timestamp -1.
   */
  offsetForTimestamp(timestamp: number): LogOffsetResult {
    this.ensureOpen();
    const none: LogOffsetResult = { offset: -1, timestamp: -1, leaderEpoch: -1 };
    switch (timestamp) {
      case OffsetSpec.EARLIEST:
      case OffsetSpec.EARLIEST_LOCAL:
        return { offset: this.startOffset, timestamp: -1, leaderEpoch: -1 };
      case OffsetSpec.LATEST:
        return { offset: this.hw, timestamp: -1, leaderEpoch: -1 };
      case OffsetSpec.MAX_TIMESTAMP:
        return this.maxTimestampOffset() ?? none;
    }
    if (timestamp < 0) return none;
    for (let i = this.segmentIndexFor(this.startOffset); i < this.segments.length; i++) {
      const hit = this.segments[i]!.findByTimestamp(timestamp, this.startOffset, this.hw);
      if (hit) return hit;
    }
    return none;
  }

  private maxTimestampOffset(): LogOffsetResult | null {
    let best: LogSegment | null = null;
    for (const seg of this.segments) {
      if (seg.nextOffset > this.startOffset && seg.maxTimestamp >= 0 && (best === null || seg.maxTimestamp > best.maxTimestamp)) best = seg;
    }
    return best ? best.findByTimestamp(best.maxTimestamp, this.startOffset, this.endOffset) : null;
  }

  // ---- deletion ------------------------------------------------------------------------------------------

  /**
   * DeleteRecords: moves the log start offset up to `offset` (-1: the high watermark), persisted atomically
   * before this resolves; sealed segments wholly below it are deleted. Resolves the new log start offset.
   */
  async deleteRecordsBefore(offset: number): Promise<number> {
    this.ensureWritable();
    const target = offset === -1 ? this.hw : offset;
    if (target < 0 || target > this.hw) {
      throw new KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE, `cannot delete records before ${offset}: high watermark is ${this.hw}`);
    }
    if (target <= this.startOffset) return this.startOffset;
    this.startOffset = target;
    await this.persistStartOffset();
    if (!this.closed) this.deleteOldestSegments(this.countBelowStart(), 'log start offset');
    return this.startOffset;
  }

  /** Writes the current start offset; writes are chained so the newest value is always written last. */
  private persistStartOffset(): Promise<void> {
    const run = this.checkpointChain.then(() => writeLogStartCheckpoint(this.dir, this.startOffset));
    this.checkpointChain = run.catch(() => {});
    return run.catch((err) => {
      this.logger.error({ err }, 'writing the log start checkpoint failed');
      throw new KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, `log start checkpoint: ${(err as Error).message}`, { cause: err });
    });
  }

  /**
   * Deletes sealed segments (never the active one) that are wholly below the log start offset, whose newest
   * timestamp is older than retention.ms (file mtime when no batch has a timestamp), or while the partition
   * exceeds retention.bytes; oldest first. Files are renamed *.deleted and removed after file.delete.delay.ms.
   */
  applyRetention(nowMs: number = this.nowMs()): RetentionResult {
    this.ensureOpen();
    const closedCount = this.segments.length - 1;
    let count = this.countBelowStart();
    if (this.config.retentionMs >= 0) {
      let expired = 0;
      while (expired < closedCount && nowMs - segmentTimeMs(this.segments[expired]!) > this.config.retentionMs) expired++;
      count = Math.max(count, expired);
    }
    if (this.config.retentionBytes >= 0) {
      let total = this.sizeBytes;
      let oversize = 0;
      while (oversize < closedCount && total - this.segments[oversize]!.size >= this.config.retentionBytes) {
        total -= this.segments[oversize]!.size;
        oversize++;
      }
      count = Math.max(count, oversize);
    }
    const bytesDeleted = this.deleteOldestSegments(count, 'retention');
    return { segmentsDeleted: count, bytesDeleted, logStartOffset: this.startOffset };
  }

  private countBelowStart(): number {
    let count = 0;
    while (count < this.segments.length - 1 && this.segments[count + 1]!.baseOffset <= this.startOffset) count++;
    return count;
  }

  private deleteOldestSegments(count: number, reason: string): number {
    if (count <= 0) return 0;
    const doomed = this.segments.slice(0, count);
    this.segments = this.segments.slice(count);
    this.startOffset = Math.max(this.startOffset, this.segments[0]!.baseOffset);
    let bytes = 0;
    for (const seg of doomed) {
      bytes += seg.size;
      try {
        this.scheduleRemoval(seg.markDeleted());
      } catch (err) {
        this.logger.error({ err, segment: seg.logPath }, 'could not delete segment');
      }
    }
    try {
      fsyncDir(this.dir); // the renames must not be undone by a power loss (deleted data would come back)
    } catch (err) {
      this.logger.warn({ err }, 'fsync of the partition dir after deleting segments failed');
    }
    this.logger.info({ reason, segments: count, bytes, logStartOffset: this.startOffset }, 'deleted segments');
    return bytes;
  }

  private scheduleRemoval(paths: string[]): void {
    if (this.config.fileDeleteDelayMs <= 0) {
      this.removeNow(paths);
      return;
    }
    const timer = setTimeout(() => {
      this.pendingDeletes.delete(timer);
      this.removeNow(paths);
    }, this.config.fileDeleteDelayMs);
    timer.unref();
    this.pendingDeletes.set(timer, paths);
  }

  private removeNow(paths: string[]): void {
    for (const err of removeFiles(paths)) this.logger.warn({ err }, 'could not remove deleted segment file');
  }

  // ---- lifecycle -----------------------------------------------------------------------------------------

  /** Applies changed topic configs; index and size limits apply from the next append / roll. */
  updateConfig(config: LogConfig): void {
    this.config = { ...config };
    this.policy = indexPolicyOf(config);
    if (this.flushTimer !== null) {
      clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    if (!this.syncBeforeAck) this.advanceHighWatermark(this.endOffset);
    this.armFlushTimer();
  }

  /** Waits for running syncs, makes everything durable, closes the files and removes *.deleted files. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    while (this.syncRunning !== null) await this.syncRunning.catch(() => {});
    await this.checkpointChain;
    if (!this.failure) {
      try {
        this.active.syncAll();
        this.markSynced(this.endOffset);
      } catch (err) {
        this.logger.error({ err }, 'final sync at close failed');
      }
    }
    for (const seg of this.segments) {
      try {
        seg.close();
      } catch (err) {
        this.logger.error({ err, segment: seg.logPath }, 'closing segment failed');
      }
    }
    for (const [timer, paths] of this.pendingDeletes) {
      clearTimeout(timer);
      this.removeNow(paths);
    }
    this.pendingDeletes.clear();
    this.listeners.clear();
  }

  private ensureOpen(): void {
    if (this.closed) throw new KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, `partition log ${this.dir} is closed`);
  }

  private ensureWritable(): void {
    this.ensureOpen();
    if (this.failure) {
      throw new KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, `partition log ${this.dir} failed earlier: ${this.failure.message}`);
    }
  }

  /** An I/O error leaves the files in an unknown state: refuse further writes (Kafka takes the dir offline). */
  private fail(operation: string, err: unknown): KafkaError {
    if (err instanceof KafkaError) return err;
    if (!this.failure) {
      this.failure = err instanceof Error ? err : new Error(String(err));
      this.logger.error({ err, operation }, 'partition log failed; refusing further writes');
    }
    return new KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, `${operation} failed: ${(err as Error).message}`, { cause: err });
  }
}

/** The time retention.ms compares against: the newest batch timestamp, else the file's mtime. */
function segmentTimeMs(seg: LogSegment): number {
  return seg.maxTimestamp >= 0 ? seg.maxTimestamp : seg.lastModifiedMs;
}

/**
 * Removes what a crash or an interrupted deletion leaves (*.deleted, temp files, index files without a log)
 * and returns the base offsets of the segments, sorted.
 */
function prepareDir(dir: string, logger: Logger): number[] {
  const names = fs.readdirSync(dir);
  const bases = new Set<number>();
  for (const name of names) {
    const base = parseLogFileName(name);
    if (base !== null) bases.add(base);
  }
  for (const name of names) {
    const indexOf = /^(\d{20})\.(index|timeindex)$/.exec(name);
    const orphanIndex = indexOf !== null && !bases.has(Number(indexOf[1]));
    if (name.endsWith(DELETED_SUFFIX) || name.endsWith(TEMP_SUFFIX) || orphanIndex) {
      logger.info({ file: name }, 'removing leftover file');
      unlinkIfExists(path.join(dir, name));
    }
  }
  return [...bases].sort((a, b) => a - b);
}

function checkSegmentOrder(segments: LogSegment[], logger: Logger): void {
  for (let i = 0; i + 1 < segments.length; i++) {
    if (segments[i]!.nextOffset > segments[i + 1]!.baseOffset) {
      logger.error(
        { segment: segmentFileName(segments[i]!.baseOffset, LOG_SUFFIX), nextOffset: segments[i]!.nextOffset, nextSegment: segments[i + 1]!.baseOffset },
        'segments overlap; the newer segment wins for overlapping offsets',
      );
    }
  }
}
