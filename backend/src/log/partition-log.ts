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
// - producers (idempotent producer state) describes exactly the batches in [0, logEndOffset): it is checked
//   and updated inside that same synchronous step, and snapshots of it are written only at points whose data
//   is already fsynced (segment roll, clean close).

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
import { DEFAULT_PRODUCER_STATE_CONFIG, ProducerStateTable } from './producer-state.ts';
import type { ProducerStateConfig, ProducerStateView } from './producer-state.ts';
import { loadProducerState, writeProducerSnapshot } from './producer-state-store.ts';

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
  /** Idempotent producer bookkeeping limits; default DEFAULT_PRODUCER_STATE_CONFIG. */
  producerState?: ProducerStateConfig;
  /**
   * The clock idempotent-producer expiry compares batch timestamps with; default nowMs. Cluster mode passes the
   * state machine's command clock, so every replica expires a producer at the same entry of the Raft log, even
   * when a sweep runs between entries (a sweep on the wall clock could run ahead of the next entry's time).
   * Must never go backwards.
   */
  producerNowMs?: () => number;
  /**
   * Cluster mode: every append is already durable in the Raft log before it reaches this log, so an append
   * never waits for an fsync and the high watermark follows the log end offset at once; flush.messages and
   * flush.ms still start syncs, in the background (they bound what a power loss makes the node re-apply).
   * Default false (single-node mode: the flush policy decides when an append is acknowledged).
   */
  durableElsewhere?: boolean;
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
  /**
   * The payload was a retry of batches already in the log (same producer, epoch and sequences): nothing was
   * written and the offsets are those of the original append, which the producer must be told (Kafka answers
   * such a retry with success and the original base offset).
   */
  duplicate: boolean;
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
  private readonly producerNowMs: () => number;
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
  /** Retried batches answered with their original offsets since open (metrics, tests). */
  duplicatesTotal = 0;
  private readonly producers: ProducerStateTable;
  private producerConfig: ProducerStateConfig;
  private lastProducerExpiryMs: number;
  private readonly durableElsewhere: boolean;

  private constructor(
    dir: string,
    config: LogConfig,
    options: PartitionLogOptions,
    logger: Logger,
    segments: LogSegment[],
    startOffset: number,
    producers: ProducerStateTable,
  ) {
    this.dir = dir;
    this.config = { ...config };
    this.policy = indexPolicyOf(config);
    this.logger = logger;
    this.nowMs = options.nowMs;
    this.producerNowMs = options.producerNowMs ?? options.nowMs;
    this.readBytesMax = options.readBytesMax ?? READ_BYTES_MAX_DEFAULT;
    this.segments = segments;
    this.endOffset = this.active.nextOffset;
    this.startOffset = startOffset;
    this.hw = this.endOffset;
    this.syncedOffset = this.endOffset;
    this.producers = producers;
    this.producerConfig = { ...(options.producerState ?? DEFAULT_PRODUCER_STATE_CONFIG) };
    this.lastProducerExpiryMs = this.producerNowMs();
    this.durableElsewhere = options.durableElsewhere ?? false;
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
    let producers: ProducerStateTable;
    try {
      producers = openProducerState(dir, segments, options, logger);
    } catch (err) {
      for (const seg of segments) seg.close();
      throw err;
    }
    const log = new PartitionLog(dir, config, options, logger, segments, startOffset, producers);
    logger.debug({ logStartOffset: startOffset, logEndOffset: log.endOffset, segments: segments.length, producers: producers.size }, 'partition log opened');
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
    if (result.duplicate) {
      // The original append may still wait for its fsync: the retry is acknowledged no earlier than it.
      if (this.syncBeforeAck && this.syncedOffset <= result.lastOffset) await this.requestSync();
      return result;
    }
    if (this.syncBeforeAck || this.unsyncedMessages >= this.config.flushMessages) {
      if (this.durableElsewhere) this.syncInBackground();
      else await this.requestSync();
    } else {
      this.armFlushTimer();
    }
    return result;
  }

  /**
   * Everything append does before waiting: runs to completion without yielding, which is what serialises
   * appends per partition, idempotent producer checks included (checked after validation and before any byte
   * is written; recorded once the bytes are written).
   */
  private appendNow(payload: Buffer, leaderEpoch: number): LogAppendResult {
    this.ensureWritable();
    const views = validateProducePayload(payload, this.config.maxMessageBytes);
    let recordCount = 0;
    for (const v of views) recordCount += v.lastOffsetDelta + 1;
    if (recordCount > INT32_MAX) throw new KafkaError(ErrorCode.INVALID_RECORD, `payload claims ${recordCount} records`);
    const now = this.nowMs();
    const producerNow = this.producerNowMs();
    this.maybeExpireProducers(producerNow);
    const producerCheck = this.producers.check(views, producerNow);
    if (producerCheck.duplicate) return this.duplicateResult(views[0]!, producerCheck);
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
    this.producers.record(views, producerNow);
    this.unsyncedMessages += recordCount;
    if (!this.syncBeforeAck) this.advanceHighWatermark(this.endOffset);
    return { baseOffset, lastOffset, logAppendTimeMs, logStartOffset: this.startOffset, duplicate: false };
  }

  /** A retried payload: the original offsets (and, with LogAppendTime, the original append time). */
  private duplicateResult(first: BatchView, dup: { firstOffset: number; lastOffset: number; timestamp: number }): LogAppendResult {
    this.duplicatesTotal++;
    this.logger.debug({ producerId: first.producerId, baseSequence: first.baseSequence, offset: dup.firstOffset }, 'duplicate batch: answering with the original offsets');
    const logAppendTimeMs = this.config.messageTimestampType === 'LogAppendTime' ? dup.timestamp : -1;
    return { baseOffset: dup.firstOffset, lastOffset: dup.lastOffset, logAppendTimeMs, logStartOffset: this.startOffset, duplicate: true };
  }

  /** producer.id.expiration.check.interval.ms: expiry is a pass over every producer, so it runs that rarely. */
  private maybeExpireProducers(now: number): void {
    if (now - this.lastProducerExpiryMs < this.producerConfig.producerIdExpirationCheckIntervalMs) return;
    this.lastProducerExpiryMs = now;
    const expired = this.producers.expire(now);
    if (expired > 0) this.logger.info({ expired, remaining: this.producers.size }, 'expired idle producer ids');
  }

  /** Read-only producer state (DescribeProducers): every producer id this partition remembers. */
  producerStates(): ProducerStateView[] {
    this.ensureOpen();
    return this.producers.views(this.producerNowMs());
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
    return !this.durableElsewhere && this.config.flushMessages <= 1;
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

  /**
   * Seals the active segment (fsynced), snapshots the producer state at the log end offset (everything below
   * it is durable now), and starts a new segment there. One directory fsync covers both new files.
   */
  private roll(reason: string, now: number): void {
    try {
      this.active.seal();
      this.snapshotProducers();
      this.segments.push(LogSegment.create(this.dir, this.endOffset, now));
      fsyncDir(this.dir);
    } catch (err) {
      throw this.fail('roll', err);
    }
    this.logger.info({ baseOffset: this.endOffset, reason }, 'rolled to a new segment');
    this.markSynced(this.endOffset); // sealing fsynced everything written so far
  }

  /** A failed snapshot costs only a longer rebuild at the next open: logged, never fatal to the log. */
  private snapshotProducers(): boolean {
    try {
      writeProducerSnapshot(this.dir, this.endOffset, this.producers);
      return true;
    } catch (err) {
      this.logger.warn({ err, offset: this.endOffset }, 'writing the producer state snapshot failed');
      return false;
    }
  }

  // ---- durability ----------------------------------------------------------------------------------------

  /** durableElsewhere: a sync nobody waits for (a failure is logged by fail() and stops further appends). */
  private syncInBackground(): void {
    this.requestSync().catch(() => {});
  }

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

  /**
   * Cluster-mode recovery: removes every batch at and after `offset`, which must be a batch boundary, so that a
   * replicated state machine can re-apply the entries after its recorded point without duplicating a batch.
   * A log that already ends at or before `offset` is left alone (the caller judges a log that is too short).
   * When no batch below `offset` is left (retention or DeleteRecords removed them), the log restarts empty at
   * `offset`; a start offset beyond it comes back to it (the re-applied DeleteRecords moves it again).
   * Producer state is rebuilt for the shortened log. Call it before anything appends to or reads the log.
   */
  async truncateTo(offset: number): Promise<void> {
    this.ensureWritable();
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`cannot truncate to ${offset}`);
    if (offset >= this.endOffset) return;
    while (this.syncRunning !== null) await this.syncRunning.catch(() => {});
    const kept = this.segments.filter((s) => s.baseOffset < offset);
    const doomed = this.segments.filter((s) => s.baseOffset >= offset);
    try {
      for (const seg of doomed) this.removeNow(seg.markDeleted());
      const now = this.nowMs();
      const last = kept.pop();
      kept.push(last === undefined ? LogSegment.create(this.dir, offset, now) : this.reopenTruncated(last, offset, now));
      fsyncDir(this.dir);
    } catch (err) {
      throw this.fail('truncate', err);
    }
    this.segments = kept;
    this.endOffset = this.active.nextOffset;
    if (this.endOffset !== offset) throw this.fail('truncate', new Error(`offset ${offset} is not a batch boundary (log now ends at ${this.endOffset})`));
    this.hw = this.endOffset;
    this.syncedOffset = this.endOffset;
    this.unsyncedMessages = 0;
    const start = Math.min(Math.max(this.startOffset, this.segments[0]!.baseOffset), offset);
    if (start !== this.startOffset) {
      this.startOffset = start;
      await this.persistStartOffset();
    }
    const loaded = loadProducerState(this.dir, this.segments, this.endOffset, this.producers, this.logger, this.producerNowMs());
    this.logger.warn({ logEndOffset: offset, segmentsRemoved: doomed.length, producers: this.producers.size, ...loaded }, 'log truncated for re-application');
  }

  /** Cuts `seg` at `offset` (fsynced) and reopens it as the active segment, indexes rebuilt. */
  private reopenTruncated(seg: LogSegment, offset: number, now: number): LogSegment {
    const position = seg.nextOffset > offset ? seg.locate(offset) : -1;
    seg.close();
    const fd = fs.openSync(seg.logPath, 'r+');
    try {
      if (position >= 0) fs.ftruncateSync(fd, position);
      fs.fdatasyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    return LogSegment.recoverActive(this.dir, seg.baseOffset, this.policy, this.logger, now);
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
    // Producer state is not tied to segments (KIP-360): retention only gives expiry a chance on idle partitions.
    this.maybeExpireProducers(this.producerNowMs());
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
  /** Applies changed producer state limits (producer.id.expiration.ms ...) from the next append. */
  updateProducerStateConfig(config: ProducerStateConfig): void {
    this.producerConfig = { ...config };
    this.producers.updateConfig(config);
  }

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
        // The next open starts from here without scanning the log.
        if (this.snapshotProducers()) fsyncDir(this.dir);
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

/** Rebuilds the producer state of freshly opened segments (after any torn tail was truncated). */
function openProducerState(dir: string, segments: LogSegment[], options: PartitionLogOptions, logger: Logger): ProducerStateTable {
  const config = options.producerState ?? DEFAULT_PRODUCER_STATE_CONFIG;
  const table = new ProducerStateTable(config);
  const logEndOffset = segments[segments.length - 1]!.nextOffset;
  const now = (options.producerNowMs ?? options.nowMs)();
  const loaded = loadProducerState(dir, segments, logEndOffset, table, logger, now);
  const expired = table.expire(now);
  logger.debug({ ...loaded, producers: table.size, expired }, 'producer state loaded');
  return table;
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
