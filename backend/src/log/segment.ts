// One log segment: <base>.log holds whole RecordBatch v2 batches exactly as appended; <base>.index and
// <base>.timeindex are its sparse indexes (base = the first offset, 20 digits, as Kafka names them).
//
// Invariants:
// - [0, size) of the .log file is a sequence of whole, CRC-valid batches with consecutive offsets starting at
//   baseOffset; nextOffset is the offset after the last one. Reads never look past size.
// - An active segment keeps its index files open and appends to them; a sealed (closed) segment was fsynced
//   when it was sealed, so recovery only has to scan the active one.

import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { LogConfig } from './log-config.ts';
import { BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD_BYTES, BatchField, checkBatchAt, findRecordByTimestamp } from '../protocol/records/batch.ts';
import type { BatchView } from '../protocol/records/batch.ts';
import { readInt64BE } from '../protocol/records/varint.ts';
import { FileWindow, fdatasyncAsync, readFileIfExists, readFully, unlinkIfExists, writeFully } from './file-io.ts';
import { OFFSET_INDEX_ENTRY_BYTES, OffsetIndex } from './offset-index.ts';
import { TIME_INDEX_ENTRY_BYTES, TimeIndex } from './time-index.ts';

export const LOG_SUFFIX = '.log';
export const INDEX_SUFFIX = '.index';
export const TIME_INDEX_SUFFIX = '.timeindex';
export const DELETED_SUFFIX = '.deleted';
const FILE_NAME_DIGITS = 20;
/** Read size while scanning a whole segment at recovery (bytes). */
const SCAN_CHUNK_BYTES = 1024 * 1024;
/** Read size while walking batch headers from an index entry (bytes). */
const WALK_CHUNK_BYTES = 64 * 1024;

export function segmentFileName(baseOffset: number, suffix: string): string {
  return String(baseOffset).padStart(FILE_NAME_DIGITS, '0') + suffix;
}

/** The base offset of a segment .log file name, or null for any other name. */
export function parseLogFileName(name: string): number | null {
  const m = /^(\d{20})\.log$/.exec(name);
  return m ? Number(m[1]) : null;
}

/** How segments build their sparse indexes, derived from LogConfig. */
export interface IndexPolicy {
  indexIntervalBytes: number;
  /** segment.index.bytes / entry size; an index holding this many entries is full (the segment rolls). */
  offsetIndexEntriesMax: number;
  timeIndexEntriesMax: number;
}

export function indexPolicyOf(config: LogConfig): IndexPolicy {
  return {
    indexIntervalBytes: config.indexIntervalBytes,
    offsetIndexEntriesMax: Math.floor(config.segmentIndexBytes / OFFSET_INDEX_ENTRY_BYTES),
    timeIndexEntriesMax: Math.floor(config.segmentIndexBytes / TIME_INDEX_ENTRY_BYTES),
  };
}

/** What a header walk sees of each batch. */
export interface BatchSummary {
  position: number;
  size: number;
  baseOffset: number;
  lastOffset: number;
  maxTimestamp: number;
  leaderEpoch: number;
}

export interface TimestampHit {
  offset: number;
  timestamp: number;
  leaderEpoch: number;
}

export class LogSegment {
  readonly baseOffset: number;
  readonly logPath: string;
  readonly indexPath: string;
  readonly timeIndexPath: string;
  /** Bytes of whole valid batches at the start of the .log file. */
  size = 0;
  nextOffset: number;
  /** The largest batch maxTimestamp, and the base offset of the first batch that has it (-1: none). */
  maxTimestamp = -1;
  offsetOfMaxTimestamp = -1;
  /** Clock time the segment's age (segment.ms) counts from; null while it holds no batch. */
  rollStartMs: number | null = null;
  /** mtime of the .log file when loaded: retention.ms falls back to it when no batch has a timestamp. */
  lastModifiedMs = 0;
  readonly offsetIndex: OffsetIndex;
  readonly timeIndex: TimeIndex;
  private bytesSinceIndexEntry = 0;
  private logFd: number;
  private indexFd: number | null = null;
  private timeIndexFd: number | null = null;
  private syncsInFlight = 0;
  private closeWhenIdle = false;
  private fdsClosed = false;

  private constructor(dir: string, baseOffset: number, logFd: number, offsetIndex: OffsetIndex, timeIndex: TimeIndex) {
    this.baseOffset = baseOffset;
    this.nextOffset = baseOffset;
    this.logPath = path.join(dir, segmentFileName(baseOffset, LOG_SUFFIX));
    this.indexPath = path.join(dir, segmentFileName(baseOffset, INDEX_SUFFIX));
    this.timeIndexPath = path.join(dir, segmentFileName(baseOffset, TIME_INDEX_SUFFIX));
    this.logFd = logFd;
    this.offsetIndex = offsetIndex;
    this.timeIndex = timeIndex;
  }

  /** Creates a new, empty active segment (fails if its .log already exists). The caller fsyncs the dir. */
  static create(dir: string, baseOffset: number, nowMs: number): LogSegment {
    const logFd = fs.openSync(path.join(dir, segmentFileName(baseOffset, LOG_SUFFIX)), 'wx+');
    const seg = new LogSegment(dir, baseOffset, logFd, new OffsetIndex(baseOffset), new TimeIndex(baseOffset));
    seg.lastModifiedMs = nowMs;
    seg.openIndexFiles();
    return seg;
  }

  /**
   * Opens the newest segment after a restart: scans every batch (length, CRC, offset continuity), truncates
   * the file at the first torn or corrupt batch, and rebuilds both indexes from the scan.
   */
  static recoverActive(dir: string, baseOffset: number, policy: IndexPolicy, logger: Logger, nowMs: number): LogSegment {
    const logFd = fs.openSync(path.join(dir, segmentFileName(baseOffset, LOG_SUFFIX)), 'r+');
    try {
      const seg = new LogSegment(dir, baseOffset, logFd, new OffsetIndex(baseOffset), new TimeIndex(baseOffset));
      const stat = fs.fstatSync(logFd);
      seg.lastModifiedMs = stat.mtimeMs;
      const stop = seg.scan(stat.size, policy);
      if (seg.size < stat.size) {
        logger.warn(
          { segment: seg.logPath, offset: seg.nextOffset, position: seg.size, bytesDropped: stat.size - seg.size, reason: stop },
          'truncating torn or corrupt log tail',
        );
        fs.ftruncateSync(logFd, seg.size);
        fs.fdatasyncSync(logFd);
      }
      seg.openIndexFiles();
      seg.offsetIndex.rewrite(seg.indexFd!);
      seg.timeIndex.rewrite(seg.timeIndexFd!);
      seg.rollStartMs = seg.size > 0 ? nowMs : null;
      return seg;
    } catch (err) {
      fs.closeSync(logFd);
      throw err;
    }
  }

  /**
   * Opens a sealed segment: loads its index files and checks them against the log (entries in range, and a
   * header walk from the last entry lands exactly on the end of the file). A missing or inconsistent index is
   * rebuilt by scanning the segment. A sealed segment is never truncated: if it is corrupt (bit rot) only its
   * valid prefix is served, and the error is logged.
   */
  static loadClosed(dir: string, baseOffset: number, policy: IndexPolicy, logger: Logger): LogSegment {
    const logFd = fs.openSync(path.join(dir, segmentFileName(baseOffset, LOG_SUFFIX)), 'r');
    try {
      const stat = fs.fstatSync(logFd);
      const indexBytes = readFileIfExists(path.join(dir, segmentFileName(baseOffset, INDEX_SUFFIX)));
      const timeBytes = readFileIfExists(path.join(dir, segmentFileName(baseOffset, TIME_INDEX_SUFFIX)));
      const offsetIndex = indexBytes && OffsetIndex.fromBytes(indexBytes, baseOffset);
      const timeIndex = timeBytes && TimeIndex.fromBytes(timeBytes, baseOffset);
      if (offsetIndex && timeIndex) {
        const seg = new LogSegment(dir, baseOffset, logFd, offsetIndex, timeIndex);
        seg.lastModifiedMs = stat.mtimeMs;
        if (seg.adoptIndexes(stat.size)) return seg;
      }
      logger.warn({ segment: path.join(dir, segmentFileName(baseOffset, LOG_SUFFIX)) }, 'rebuilding missing or inconsistent segment index');
      const seg = new LogSegment(dir, baseOffset, logFd, new OffsetIndex(baseOffset), new TimeIndex(baseOffset));
      seg.lastModifiedMs = stat.mtimeMs;
      const stop = seg.scan(stat.size, policy);
      if (seg.size < stat.size) {
        logger.error(
          { segment: seg.logPath, offset: seg.nextOffset, position: seg.size, bytesIgnored: stat.size - seg.size, reason: stop },
          'sealed segment is corrupt; serving only its valid prefix',
        );
      }
      seg.writeIndexFilesOnce();
      return seg;
    } catch (err) {
      fs.closeSync(logFd);
      throw err;
    }
  }

  /** Whether either index reached its size limit (then the log rolls before the next append). */
  indexFull(policy: IndexPolicy): boolean {
    return this.offsetIndex.entries >= policy.offsetIndexEntriesMax || this.timeIndex.entries >= policy.timeIndexEntriesMax;
  }

  /**
   * Appends a validated payload whose batches already carry their final offsets. The bytes reach the OS
   * before this returns; on a failed write the file is cut back so no partial batch stays behind.
   */
  append(payload: Buffer, views: BatchView[], nowMs: number, policy: IndexPolicy): void {
    const start = this.size;
    try {
      writeFully(this.logFd, payload, start);
    } catch (err) {
      fs.ftruncateSync(this.logFd, start);
      throw err;
    }
    for (const v of views) {
      this.track(start + v.position, v.size, v.baseOffset, v.baseOffset + v.lastOffsetDelta, v.maxTimestamp, policy);
    }
    this.size = start + payload.length;
    this.rollStartMs ??= nowMs;
    this.persistIndexes();
  }

  /** Writes index entries not yet in the index files (active segment only). */
  persistIndexes(): void {
    if (this.indexFd !== null) this.offsetIndex.persist(this.indexFd);
    if (this.timeIndexFd !== null) this.timeIndex.persist(this.timeIndexFd);
  }

  /** fdatasync of the .log without blocking the event loop. The fd stays open until the sync is done. */
  async syncLog(): Promise<void> {
    this.syncsInFlight++;
    try {
      await fdatasyncAsync(this.logFd);
    } finally {
      this.syncsInFlight--;
      if (this.closeWhenIdle && this.syncsInFlight === 0) this.closeFds();
    }
  }

  /** Synchronously makes the log and its index files durable. */
  syncAll(): void {
    this.persistIndexes();
    fs.fdatasyncSync(this.logFd);
    if (this.indexFd !== null) fs.fdatasyncSync(this.indexFd);
    if (this.timeIndexFd !== null) fs.fdatasyncSync(this.timeIndexFd);
  }

  /**
   * Turns the active segment into a sealed one: a last time index entry for its largest timestamp, everything
   * fsynced, index files closed. After this the segment is only read.
   */
  seal(): void {
    this.timeIndex.maybeAppend(this.maxTimestamp, this.offsetOfMaxTimestamp);
    this.syncAll();
    this.closeIndexFiles();
  }

  /** Position of the first batch whose last offset is >= offset, or -1 when there is none. */
  locate(offset: number): number {
    let found = -1;
    this.walk(this.offsetIndex.lookup(offset), (b) => {
      if (b.lastOffset < offset) return true;
      found = b.position;
      return false;
    });
    return found;
  }

  /**
   * Appends to `out` whole batches from `position`, as long as they fit in `budget` bytes and start below
   * `endOffset`; with takeFirst the first batch is taken even when it is larger than the budget (KIP-74).
   * Returns the bytes added and whether the walk reached the end of the segment.
   */
  readFrom(position: number, budget: number, takeFirst: boolean, endOffset: number, out: Buffer[]): { bytes: number; atEnd: boolean } {
    const available = this.size - position;
    if (available <= 0) return { bytes: 0, atEnd: true };
    const buf = Buffer.allocUnsafe(Math.min(budget, available));
    const len = readFully(this.logFd, buf, position);
    let p = 0;
    while (p + BATCH_LOG_OVERHEAD_BYTES <= len) {
      const size = buf.readInt32BE(p + BatchField.BATCH_LENGTH) + BATCH_LOG_OVERHEAD_BYTES;
      if (p + size > len || readInt64BE(buf, p) >= endOffset) break;
      out.push(buf.subarray(p, p + size));
      p += size;
    }
    if (p === 0 && takeFirst) return this.readOversizedFirst(position, endOffset, out);
    return { bytes: p, atEnd: position + p >= this.size };
  }

  /** The first batch at `position` alone, whatever its size (KIP-74: a fetch always makes progress). */
  private readOversizedFirst(position: number, endOffset: number, out: Buffer[]): { bytes: number; atEnd: boolean } {
    const header = Buffer.allocUnsafe(BATCH_LOG_OVERHEAD_BYTES);
    if (readFully(this.logFd, header, position) < header.length || readInt64BE(header, 0) >= endOffset) {
      return { bytes: 0, atEnd: false };
    }
    const size = header.readInt32BE(BatchField.BATCH_LENGTH) + BATCH_LOG_OVERHEAD_BYTES;
    const batch = this.readBatch(position, size);
    out.push(batch);
    return { bytes: size, atEnd: position + size >= this.size };
  }

  /** The whole batch containing `offset`, or null. */
  readBatchContaining(offset: number): Buffer | null {
    let found: Buffer | null = null;
    this.walk(this.offsetIndex.lookup(offset), (b) => {
      if (b.lastOffset < offset) return true;
      if (b.baseOffset <= offset) found = this.readBatch(b.position, b.size);
      return false;
    });
    return found;
  }

  /**
   * The first record with offset >= minOffset, timestamp >= target, in a batch starting below endOffset.
   * Uncompressed batches give the exact record; compressed ones their first qualifying offset.
   */
  findByTimestamp(target: number, minOffset: number, endOffset: number): TimestampHit | null {
    if (this.maxTimestamp < target) return null;
    const startOffset = Math.max(this.timeIndex.searchStartOffset(target), minOffset);
    let hit: TimestampHit | null = null;
    this.walk(this.offsetIndex.lookup(startOffset), (b) => {
      if (b.baseOffset >= endOffset) return false;
      if (b.maxTimestamp < target || b.lastOffset < minOffset) return true;
      const found = this.searchBatch(b, target, minOffset);
      if (found) hit = { ...found, leaderEpoch: b.leaderEpoch };
      return found === null;
    });
    return hit;
  }

  private searchBatch(b: BatchSummary, target: number, minOffset: number): { offset: number; timestamp: number } | null {
    const batch = this.readBatch(b.position, b.size);
    try {
      return findRecordByTimestamp(batch, target, minOffset);
    } catch {
      // Records a producer framed badly (the CRC only proves they arrived as sent): answer with the batch.
      return { offset: Math.max(b.baseOffset, minOffset), timestamp: b.maxTimestamp };
    }
  }

  private readBatch(position: number, size: number): Buffer {
    const batch = Buffer.allocUnsafe(size);
    if (readFully(this.logFd, batch, position) < size) throw new Error(`short read of batch at ${position} in ${this.logPath}`);
    return batch;
  }

  /**
   * Renames the segment's files to *.deleted (Kafka's convention: readers that still hold them finish, the
   * files are removed later) and closes it. Returns the new paths.
   */
  markDeleted(): string[] {
    const renamed: string[] = [];
    for (const p of [this.logPath, this.indexPath, this.timeIndexPath]) {
      try {
        fs.renameSync(p, p + DELETED_SUFFIX);
        renamed.push(p + DELETED_SUFFIX);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    this.close();
    return renamed;
  }

  /** Writes pending index entries and closes the files (after any sync still running). */
  close(): void {
    if (this.fdsClosed) return;
    this.persistIndexes();
    if (this.syncsInFlight > 0) this.closeWhenIdle = true;
    else this.closeFds();
  }

  private closeFds(): void {
    if (this.fdsClosed) return;
    this.fdsClosed = true;
    this.closeIndexFiles();
    fs.closeSync(this.logFd);
  }

  private openIndexFiles(): void {
    this.indexFd = fs.openSync(this.indexPath, 'w+');
    this.timeIndexFd = fs.openSync(this.timeIndexPath, 'w+');
  }

  private closeIndexFiles(): void {
    if (this.indexFd !== null) fs.closeSync(this.indexFd);
    if (this.timeIndexFd !== null) fs.closeSync(this.timeIndexFd);
    this.indexFd = null;
    this.timeIndexFd = null;
  }

  /** Writes freshly rebuilt index files of a sealed segment, durably, then closes them. */
  private writeIndexFilesOnce(): void {
    this.openIndexFiles();
    try {
      this.offsetIndex.rewrite(this.indexFd!);
      this.timeIndex.rewrite(this.timeIndexFd!);
      fs.fdatasyncSync(this.indexFd!);
      fs.fdatasyncSync(this.timeIndexFd!);
    } finally {
      this.closeIndexFiles();
    }
  }

  /** Per-batch bookkeeping shared by append and recovery: offsets, max timestamp, sparse index entries. */
  private track(position: number, size: number, baseOffset: number, lastOffset: number, maxTimestamp: number, policy: IndexPolicy): void {
    if (maxTimestamp > this.maxTimestamp) {
      this.maxTimestamp = maxTimestamp;
      this.offsetOfMaxTimestamp = baseOffset;
    }
    if (this.bytesSinceIndexEntry > policy.indexIntervalBytes && !this.indexFull(policy)) {
      this.offsetIndex.append(baseOffset, position);
      this.timeIndex.maybeAppend(this.maxTimestamp, this.offsetOfMaxTimestamp);
      this.bytesSinceIndexEntry = 0;
    }
    this.bytesSinceIndexEntry += size;
    this.nextOffset = lastOffset + 1;
  }

  /**
   * Scans the .log from the start, validating length, magic, CRC and offset continuity batch by batch, and
   * tracks every valid batch. Sets size to the end of the valid prefix; returns why it stopped early, if so.
   */
  private scan(fileSize: number, policy: IndexPolicy): string | null {
    const window = new FileWindow(this.logFd, fileSize, SCAN_CHUNK_BYTES);
    let pos = 0;
    while (pos < fileSize) {
      const head = window.view(pos, BATCH_LOG_OVERHEAD_BYTES);
      if (head.length < BATCH_LOG_OVERHEAD_BYTES) return `${head.length} stray bytes at the end`;
      const size = head.readInt32BE(BatchField.BATCH_LENGTH) + BATCH_LOG_OVERHEAD_BYTES;
      if (size < BATCH_HEADER_BYTES) return `batch length ${size - BATCH_LOG_OVERHEAD_BYTES} is impossible`;
      if (size > fileSize - pos) return `batch of ${size} bytes is cut off after ${fileSize - pos} bytes`;
      const check = checkBatchAt(window.view(pos, size), 0, { verifyCrc: true, maxBatchBytes: 0 });
      if (!check.ok) return check.reason;
      const v = check.view;
      if (v.baseOffset !== this.nextOffset) return `batch offset ${v.baseOffset} where ${this.nextOffset} was expected`;
      this.track(pos, size, v.baseOffset, v.baseOffset + v.lastOffsetDelta, v.maxTimestamp, policy);
      pos += size;
      this.size = pos;
    }
    return null;
  }

  /**
   * Accepts loaded indexes if they agree with the log: entries inside the file, and a header walk from the last
   * offset index entry reaches exactly the end of the file with consecutive offsets. Fills in nextOffset and the
   * max timestamp (the last time index entry, or a newer batch after it).
   */
  private adoptIndexes(fileSize: number): boolean {
    const last = this.offsetIndex.last();
    if (last && last.position >= fileSize) return false;
    this.size = fileSize;
    let expected = last ? last.offset : this.baseOffset;
    let end = last ? last.position : 0;
    let tailMax = -1;
    let tailMaxOffset = -1;
    let consistent = true;
    this.walk(end, (b) => {
      if (b.baseOffset !== expected) {
        consistent = false;
        return false;
      }
      if (b.maxTimestamp > tailMax) {
        tailMax = b.maxTimestamp;
        tailMaxOffset = b.baseOffset;
      }
      expected = b.lastOffset + 1;
      end = b.position + b.size;
      return true;
    });
    if (!consistent || end !== fileSize || this.timeIndex.lastOffset >= expected) {
      this.size = 0;
      return false;
    }
    this.nextOffset = expected;
    if (tailMax > this.timeIndex.lastTimestamp) {
      this.maxTimestamp = tailMax;
      this.offsetOfMaxTimestamp = tailMaxOffset;
    } else {
      this.maxTimestamp = this.timeIndex.lastTimestamp;
      this.offsetOfMaxTimestamp = this.timeIndex.lastOffset;
    }
    return true;
  }

  /**
   * Visits batch headers from `position` while `visit` returns true. Stops at the end of the valid region or
   * at a header whose length is impossible (never reads past size).
   */
  private walk(position: number, visit: (b: BatchSummary) => boolean): void {
    const window = new FileWindow(this.logFd, this.size, WALK_CHUNK_BYTES);
    let pos = position;
    while (pos + BATCH_HEADER_BYTES <= this.size) {
      const h = window.view(pos, BATCH_HEADER_BYTES);
      if (h.length < BATCH_HEADER_BYTES) return;
      const size = h.readInt32BE(BatchField.BATCH_LENGTH) + BATCH_LOG_OVERHEAD_BYTES;
      if (size < BATCH_HEADER_BYTES || pos + size > this.size) return;
      const baseOffset = readInt64BE(h, BatchField.BASE_OFFSET);
      const summary: BatchSummary = {
        position: pos,
        size,
        baseOffset,
        lastOffset: baseOffset + h.readInt32BE(BatchField.LAST_OFFSET_DELTA),
        maxTimestamp: readInt64BE(h, BatchField.MAX_TIMESTAMP),
        leaderEpoch: h.readInt32BE(BatchField.PARTITION_LEADER_EPOCH),
      };
      if (!visit(summary)) return;
      pos += size;
    }
  }
}

/** Removes files; failures are returned for logging, never thrown (cleanup must not break the log). */
export function removeFiles(paths: string[]): unknown[] {
  const errors: unknown[] = [];
  for (const p of paths) {
    try {
      unlinkIfExists(p);
    } catch (err) {
      errors.push(err);
    }
  }
  return errors;
}
