// Producer state on disk: one snapshot file per point in the log (<offset>.snapshot, named like the segments,
// describing every batch below that offset), and the rebuild at open: the newest readable snapshot at or below
// the log end offset, then the batch headers from there to the end (headers only: nothing is decompressed).
//
// When snapshots are written (by the partition log): at a segment roll, right after the old segment was sealed
// and fsynced, and at a clean close after the final sync. So a snapshot never describes data a crash could
// take back; a snapshot above the recovered log end (only possible if the disk lost synced data) is deleted.
// Writes are atomic: temp file, fsync, rename; the caller fsyncs the directory.

import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD_BYTES, BatchAttribute, BatchField } from '../protocol/records/batch.ts';
import { readInt64BE } from '../protocol/records/varint.ts';
import { TEMP_SUFFIX } from './checkpoint.ts';
import { FileWindow, unlinkIfExists, writeFully } from './file-io.ts';
import { decodeProducerSnapshot, encodeProducerSnapshot } from './producer-state.ts';
import type { ProducerBatch, ProducerStateTable } from './producer-state.ts';
import type { LogSegment } from './segment.ts';

export const SNAPSHOT_SUFFIX = '.snapshot';
/** Snapshots kept per partition: the newest, and one older in case the newest cannot be read. */
export const SNAPSHOTS_RETAINED = 2;
/** Read size while walking batch headers for the rebuild (bytes): small batches share one read. */
const HEADER_SCAN_CHUNK_BYTES = 64 * 1024;

export function snapshotFileName(offset: number): string {
  return String(offset).padStart(20, '0') + SNAPSHOT_SUFFIX;
}

/** Offsets of the snapshot files in `dir`, ascending. */
export function listSnapshotOffsets(dir: string): number[] {
  const offsets: number[] = [];
  for (const name of fs.readdirSync(dir)) {
    const m = /^(\d{20})\.snapshot$/.exec(name);
    if (m) offsets.push(Number(m[1]));
  }
  return offsets.sort((a, b) => a - b);
}

/**
 * Writes the table as the snapshot at `offset` (temp file, fsync, rename) and deletes older snapshots beyond
 * SNAPSHOTS_RETAINED. The caller fsyncs the directory (it usually has other entries to make durable too).
 */
export function writeProducerSnapshot(dir: string, offset: number, table: ProducerStateTable): void {
  const target = path.join(dir, snapshotFileName(offset));
  const temp = target + TEMP_SUFFIX;
  const bytes = encodeProducerSnapshot(offset, table.allEntries());
  const fd = fs.openSync(temp, 'w');
  try {
    writeFully(fd, bytes, 0);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temp, target);
  const offsets = listSnapshotOffsets(dir);
  for (const old of offsets.slice(0, Math.max(0, offsets.length - SNAPSHOTS_RETAINED))) {
    unlinkIfExists(path.join(dir, snapshotFileName(old)));
  }
}

export interface ProducerStateLoad {
  /** The snapshot the state started from, or null (rebuilt from the oldest segment). */
  snapshotOffset: number | null;
  /** Where the header scan started, and how many batches with a producer id it replayed. */
  scannedFrom: number;
  batchesReplayed: number;
}

/**
 * Fills `table` for a log whose segments were just opened and recovered (torn tails already truncated): loads
 * the newest snapshot at or below logEndOffset that reads back intact (corrupt ones are logged and deleted,
 * newer-than-the-log ones deleted), then replays the batch headers from the snapshot's offset to the end.
 * Expiry counts from each producer's last batch timestamp (as Kafka's does), which the replayed headers carry,
 * so the rebuilt table equals the one lost in the crash, and every replica of a partition builds the same one;
 * `nowMs` only stands in for batches without a timestamp.
 */
export function loadProducerState(
  dir: string,
  segments: readonly LogSegment[],
  logEndOffset: number,
  table: ProducerStateTable,
  logger: Logger,
  nowMs: number,
): ProducerStateLoad {
  const snapshotOffset = loadNewestSnapshot(dir, logEndOffset, table, logger);
  const scannedFrom = Math.max(snapshotOffset ?? 0, segments[0]?.baseOffset ?? 0);
  let batchesReplayed = 0;
  for (const seg of segments) {
    if (seg.nextOffset <= scannedFrom || seg.size === 0) continue;
    batchesReplayed += replaySegment(seg, scannedFrom, table, nowMs);
  }
  return { snapshotOffset, scannedFrom, batchesReplayed };
}

function loadNewestSnapshot(dir: string, logEndOffset: number, table: ProducerStateTable, logger: Logger): number | null {
  const offsets = listSnapshotOffsets(dir);
  for (let i = offsets.length - 1; i >= 0; i--) {
    const offset = offsets[i]!;
    const file = path.join(dir, snapshotFileName(offset));
    if (offset > logEndOffset) {
      logger.warn({ file, logEndOffset }, 'deleting producer snapshot beyond the end of the log');
      unlinkIfExists(file);
      continue;
    }
    try {
      const decoded = decodeProducerSnapshot(fs.readFileSync(file));
      if (decoded.offset !== offset) throw new Error(`snapshot says offset ${decoded.offset}, its name ${offset}`);
      table.load(decoded.entries);
      return offset;
    } catch (err) {
      logger.warn({ err, file }, 'deleting unreadable producer snapshot; rebuilding producer state from the log');
      unlinkIfExists(file);
    }
  }
  table.load([]);
  return null;
}

/** Replays the headers of every producer batch of `seg` starting at or after `fromOffset`; returns the count. */
function replaySegment(seg: LogSegment, fromOffset: number, table: ProducerStateTable, nowMs: number): number {
  const start = seg.baseOffset >= fromOffset ? 0 : seg.locate(fromOffset);
  if (start < 0) return 0;
  const fd = fs.openSync(seg.logPath, 'r');
  try {
    const window = new FileWindow(fd, seg.size, HEADER_SCAN_CHUNK_BYTES);
    const b: ProducerBatch = { producerId: -1, producerEpoch: -1, baseSequence: -1, lastOffsetDelta: 0, baseOffset: 0, maxTimestamp: -1 };
    let replayed = 0;
    // seg.size covers whole batches that were CRC-checked when the segment was opened or recovered.
    for (let pos = start; pos + BATCH_HEADER_BYTES <= seg.size; ) {
      const h = window.view(pos, BATCH_HEADER_BYTES);
      const size = h.readInt32BE(BatchField.BATCH_LENGTH) + BATCH_LOG_OVERHEAD_BYTES;
      if (size < BATCH_HEADER_BYTES) break;
      pos += size;
      const producerId = readInt64BE(h, BatchField.PRODUCER_ID);
      if (producerId < 0 || (h.readInt16BE(BatchField.ATTRIBUTES) & BatchAttribute.CONTROL) !== 0) continue;
      b.baseOffset = readInt64BE(h, BatchField.BASE_OFFSET);
      if (b.baseOffset < fromOffset) continue;
      b.producerId = producerId;
      b.producerEpoch = h.readInt16BE(BatchField.PRODUCER_EPOCH);
      b.baseSequence = h.readInt32BE(BatchField.BASE_SEQUENCE);
      b.lastOffsetDelta = h.readInt32BE(BatchField.LAST_OFFSET_DELTA);
      b.maxTimestamp = readInt64BE(h, BatchField.MAX_TIMESTAMP);
      table.recordOne(b, nowMs);
      replayed++;
    }
    return replayed;
  } finally {
    fs.closeSync(fd);
  }
}
