// Idempotent producer state of one partition (KIP-98, with the KIP-360 rules for unknown producers): for each
// producer id its current epoch and the sequence ranges of its last few appended batches. The partition log
// checks every batch that carries a producer id against it before writing, and records the batch after.
//
// Invariants:
// - Every entry holds 1..PRODUCER_BATCHES_RETAINED batches of its current epoch, oldest first, with
//   consecutive sequences (batches[i + 1].firstSeq == nextSequence(batches[i].lastSeq)) and increasing offsets.
// - The map's iteration order is the order of each producer's last append (least recent first): eviction when
//   the table is full removes the first entry.
// - An entry whose last batch's timestamp is producer.id.expiration.ms or more before `now` counts as absent everywhere
//   (checks, recording, views), whether or not a sweep (expire()) has removed it yet: outcomes never depend on
//   when sweeps run, only on the appends and the times passed in.
// This module does no I/O and reads no clock: the caller passes the time. The snapshot codec lives here too,
// so the bytes on disk and the table they describe are defined in one place.

import { crc32c } from '@node-rs/crc32';
import { ErrorCode, KafkaError } from '../protocol/errors.ts';
import { readInt64BE, writeInt64BE } from '../protocol/records/varint.ts';

/**
 * Batches remembered per producer. Kafka keeps 5 because an idempotent producer may have at most 5 requests
 * in flight per partition (max.in.flight.requests.per.connection <= 5), so any retry is one of the last 5.
 */
export const PRODUCER_BATCHES_RETAINED = 5;
const INT32_MAX = 2147483647;

export interface ProducerStateConfig {
  /** producer.id.expiration.ms: a producer with no append for this long is forgotten (ms); -1 = never. */
  producerIdExpirationMs: number;
  /** producer.id.expiration.check.interval.ms: how often expired producers are removed from memory (ms). */
  producerIdExpirationCheckIntervalMs: number;
  /**
   * Most producers remembered per partition (count, >= 1). A new producer beyond it evicts the one whose last
   * append is oldest; an evicted producer that comes back is treated as unknown (any sequence accepted).
   */
  producerStatesPerPartitionMax: number;
}

/** Kafka's defaults (1 day, 10 minutes); Kafka has no per-partition cap, ours keeps memory bounded. */
export const DEFAULT_PRODUCER_STATE_CONFIG: Readonly<ProducerStateConfig> = Object.freeze({
  producerIdExpirationMs: 24 * 3600 * 1000,
  producerIdExpirationCheckIntervalMs: 10 * 60 * 1000,
  producerStatesPerPartitionMax: 10_000,
});

/** One appended batch as the producer state remembers it. */
export interface BatchMetadata {
  firstSeq: number;
  lastSeq: number;
  firstOffset: number;
  lastOffset: number;
  /** The batch's maxTimestamp as stored (the broker's time for LogAppendTime topics). */
  timestamp: number;
}

export interface ProducerEntry {
  producerId: number;
  epoch: number;
  /** Oldest first; never empty. */
  batches: BatchMetadata[];
  /**
   * maxTimestamp of the producer's last batch (ms), as Kafka's lastTimestamp: expiry counts from it. Taken from
   * the batch rather than the broker's clock so that rebuilding the table from the log after a crash, or on
   * another replica, gives the same value, and every replica expires a producer at the same point of the log.
   * A batch without a timestamp (-1) counts from the time of the record() call.
   */
  lastTimestampMs: number;
}

/** What DescribeProducers reports for one producer (no transactions yet: coordinator epoch and txn start -1). */
export interface ProducerStateView {
  producerId: number;
  producerEpoch: number;
  lastSequence: number;
  /** maxTimestamp of the producer's last batch (ms). */
  lastTimestamp: number;
  coordinatorEpoch: number;
  currentTxnStartOffset: number;
}

/** The header fields of a batch the producer state needs (a BatchView has them all). */
export interface ProducerBatch {
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  lastOffsetDelta: number;
  baseOffset: number;
  maxTimestamp: number;
}

/** The outcome of checking a payload: append it, or it was appended before (answer with the original). */
export type ProducerCheck =
  | { duplicate: false }
  | { duplicate: true; firstOffset: number; lastOffset: number; timestamp: number };

const APPEND: ProducerCheck = Object.freeze({ duplicate: false });

/** The sequence after `seq`: sequences wrap from 2^31 - 1 to 0. */
export function nextSequence(seq: number): number {
  return seq === INT32_MAX ? 0 : seq + 1;
}

/** The sequence of the last record of a batch (wraps like nextSequence). */
export function lastSequenceOf(baseSequence: number, lastOffsetDelta: number): number {
  const last = baseSequence + lastOffsetDelta;
  return last > INT32_MAX ? last - INT32_MAX - 1 : last;
}

/** What a batch is compared with: the table's entry, or what earlier batches of the same payload made of it. */
interface Expected {
  epoch: number;
  lastSeq: number;
}

export class ProducerStateTable {
  private readonly entries = new Map<number, ProducerEntry>();
  private config: ProducerStateConfig;
  /** Producers dropped because the table was full, since it was created (for logs and metrics). */
  evictedTotal = 0;

  constructor(config: ProducerStateConfig = DEFAULT_PRODUCER_STATE_CONFIG) {
    this.config = { ...config };
  }

  get size(): number {
    return this.entries.size;
  }

  updateConfig(config: ProducerStateConfig): void {
    this.config = { ...config };
    this.evictOverflow();
  }

  /** The producer's entry unless it expired by `nowMs`. */
  entry(producerId: number, nowMs: number): ProducerEntry | undefined {
    const e = this.entries.get(producerId);
    return e === undefined || this.expired(e, nowMs) ? undefined : e;
  }

  private expired(e: ProducerEntry, nowMs: number): boolean {
    const ttl = this.config.producerIdExpirationMs;
    return ttl >= 0 && nowMs - e.lastTimestampMs >= ttl;
  }

  /**
   * Checks every batch of a payload in order, without changing anything. Batches without a producer id are
   * not checked. Throws KafkaError INVALID_PRODUCER_EPOCH (an older epoch), OUT_OF_ORDER_SEQUENCE_NUMBER (a
   * gap, a new epoch not starting at 0, a retry older than the last 5 batches, or a payload mixing retried
   * and new batches) or INVALID_RECORD (a producer id with a negative epoch or sequence). When every batch
   * is a retry of a batch already in the log, answers with the original offsets (Kafka's DUPLICATE case:
   * the producer gets a success and nothing is written twice).
   */
  check(batches: readonly ProducerBatch[], nowMs: number): ProducerCheck {
    if (batches.length === 1) return this.checkOne(batches[0]!, nowMs); // the Produce path: one batch per partition
    let pending: Map<number, Expected> | null = null;
    let duplicates = 0;
    let first: BatchMetadata | null = null;
    let last: BatchMetadata | null = null;
    for (const b of batches) {
      if (b.producerId < 0) continue;
      validateIds(b);
      const lastSeq = lastSequenceOf(b.baseSequence, b.lastOffsetDelta);
      const seen = pending?.get(b.producerId);
      const dup = seen === undefined ? this.findDuplicate(b, lastSeq, nowMs) : null;
      if (dup !== null) {
        duplicates++;
        first ??= dup;
        last = dup;
        continue;
      }
      this.checkSequence(b, seen ?? this.entry(b.producerId, nowMs));
      pending ??= new Map();
      pending.set(b.producerId, { epoch: b.producerEpoch, lastSeq });
    }
    if (duplicates === 0) return APPEND;
    if (duplicates < batches.length) {
      throw new KafkaError(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, 'payload mixes batches already appended with new ones');
    }
    return { duplicate: true, firstOffset: first!.firstOffset, lastOffset: last!.lastOffset, timestamp: last!.timestamp };
  }

  private checkOne(b: ProducerBatch, nowMs: number): ProducerCheck {
    if (b.producerId < 0) return APPEND;
    validateIds(b);
    const dup = this.findDuplicate(b, lastSequenceOf(b.baseSequence, b.lastOffsetDelta), nowMs);
    if (dup !== null) return { duplicate: true, firstOffset: dup.firstOffset, lastOffset: dup.lastOffset, timestamp: dup.timestamp };
    this.checkSequence(b, this.entry(b.producerId, nowMs));
    return APPEND;
  }

  /** The cached batch with the same epoch and sequence range, or null. */
  private findDuplicate(b: ProducerBatch, lastSeq: number, nowMs: number): BatchMetadata | null {
    const entry = this.entry(b.producerId, nowMs);
    if (entry === undefined || entry.epoch !== b.producerEpoch) return null;
    for (const m of entry.batches) {
      if (m.firstSeq === b.baseSequence && m.lastSeq === lastSeq) return m;
    }
    return null;
  }

  /**
   * Kafka's rules. No state for the producer (new, expired, evicted, or its batches deleted by retention):
   * any sequence is accepted (KIP-360; brokers before 2.5 answered UNKNOWN_PRODUCER_ID). Older epoch: fenced.
   * Newer epoch: must start at sequence 0. Same epoch: must continue right after the last sequence.
   */
  private checkSequence(b: ProducerBatch, expected: Expected | ProducerEntry | undefined): void {
    if (expected === undefined) return;
    const current = 'batches' in expected ? { epoch: expected.epoch, lastSeq: expected.batches[expected.batches.length - 1]!.lastSeq } : expected;
    if (b.producerEpoch < current.epoch) {
      throw new KafkaError(
        ErrorCode.INVALID_PRODUCER_EPOCH,
        `producer ${b.producerId} has epoch ${b.producerEpoch}, older than its current epoch ${current.epoch}`,
      );
    }
    if (b.producerEpoch > current.epoch) {
      if (b.baseSequence !== 0) {
        throw new KafkaError(
          ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
          `producer ${b.producerId} starts epoch ${b.producerEpoch} at sequence ${b.baseSequence}; a new epoch starts at 0`,
        );
      }
      return;
    }
    if (b.baseSequence !== nextSequence(current.lastSeq)) {
      throw new KafkaError(
        ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
        `producer ${b.producerId} epoch ${b.producerEpoch}: sequence ${b.baseSequence} where ${nextSequence(current.lastSeq)} was expected`,
      );
    }
  }

  /**
   * Records batches that are now in the log (their baseOffset is final), appended at `nowMs`. Also used to
   * rebuild the table from the log, where nothing is checked: what is in the log was accepted when appended.
   */
  record(batches: readonly ProducerBatch[], nowMs: number): void {
    for (const b of batches) {
      if (b.producerId >= 0) this.recordOne(b, nowMs);
    }
  }

  recordOne(b: ProducerBatch, nowMs: number): void {
    const meta: BatchMetadata = {
      firstSeq: b.baseSequence,
      lastSeq: lastSequenceOf(b.baseSequence, b.lastOffsetDelta),
      firstOffset: b.baseOffset,
      lastOffset: b.baseOffset + b.lastOffsetDelta,
      timestamp: b.maxTimestamp,
    };
    const lastTimestamp = b.maxTimestamp >= 0 ? b.maxTimestamp : nowMs;
    let entry = this.entries.get(b.producerId);
    if (entry !== undefined && entry.epoch === b.producerEpoch && !this.expired(entry, nowMs)) {
      this.entries.delete(b.producerId); // re-inserted below: the map stays ordered by last append
      entry.batches.push(meta);
      if (entry.batches.length > PRODUCER_BATCHES_RETAINED) entry.batches.shift();
      entry.lastTimestampMs = lastTimestamp;
    } else {
      if (entry !== undefined) this.entries.delete(b.producerId);
      entry = { producerId: b.producerId, epoch: b.producerEpoch, batches: [meta], lastTimestampMs: lastTimestamp };
    }
    this.entries.set(b.producerId, entry);
    this.evictOverflow();
  }

  private evictOverflow(): void {
    const max = Math.max(1, this.config.producerStatesPerPartitionMax);
    while (this.entries.size > max) {
      const oldest = this.entries.keys().next().value as number;
      this.entries.delete(oldest);
      this.evictedTotal++;
    }
  }

  /** Forgets producers whose last batch is producer.id.expiration.ms or more older than nowMs; returns how many. */
  expire(nowMs: number): number {
    if (this.config.producerIdExpirationMs < 0) return 0;
    let removed = 0;
    // A full pass (not "stop at the first live one"): the wall clock may have stepped back between appends.
    for (const [id, entry] of this.entries) {
      if (this.expired(entry, nowMs)) {
        this.entries.delete(id);
        removed++;
      }
    }
    return removed;
  }

  /** Read-only view for DescribeProducers, least recently appended first; expired producers are left out. */
  views(nowMs: number): ProducerStateView[] {
    const out: ProducerStateView[] = [];
    for (const e of this.entries.values()) {
      if (this.expired(e, nowMs)) continue;
      const last = e.batches[e.batches.length - 1]!;
      out.push({
        producerId: e.producerId,
        producerEpoch: e.epoch,
        lastSequence: last.lastSeq,
        lastTimestamp: last.timestamp,
        coordinatorEpoch: -1,
        currentTxnStartOffset: -1,
      });
    }
    return out;
  }

  /** Entries in map order (least recent first); for snapshots and tests. The objects are the live ones. */
  allEntries(): IterableIterator<ProducerEntry> {
    return this.entries.values();
  }

  /** Replaces the content with decoded snapshot entries (in their stored order). */
  load(entries: readonly ProducerEntry[]): void {
    this.entries.clear();
    for (const e of entries) this.entries.set(e.producerId, e);
    this.evictOverflow();
  }
}

function validateIds(b: ProducerBatch): void {
  if (b.producerEpoch < 0 || b.baseSequence < 0) {
    throw new KafkaError(
      ErrorCode.INVALID_RECORD,
      `batch of producer ${b.producerId} has epoch ${b.producerEpoch} and base sequence ${b.baseSequence}; both must be >= 0`,
    );
  }
}

// ---- snapshot codec ------------------------------------------------------------------------------------------
//
// A snapshot file holds the table as it was after every batch below `offset` was appended:
//   magic "TKPS" | version int16 | crc32c uint32 of every byte after it | offset int64 | count int32 |
//   count x ( producerId int64 | epoch int16 | lastTimestampMs int64 | batchCount int8 |
//             batchCount x ( firstSeq int32 | lastSeq int32 | firstOffset int64 | lastOffset int64 | timestamp int64 ) )
// All five cached batches are kept (Kafka stores only the last), so retries of every in-flight request are still
// recognised after a restart.

const SNAPSHOT_MAGIC = 0x544b5053; // "TKPS"
const SNAPSHOT_VERSION = 1;
const SNAPSHOT_HEADER_BYTES = 4 + 2 + 4 + 8 + 4;
const SNAPSHOT_CRC_START = 10;
const ENTRY_HEADER_BYTES = 8 + 2 + 8 + 1;
const BATCH_META_BYTES = 4 + 4 + 8 + 8 + 8;

export function encodeProducerSnapshot(offset: number, entries: Iterable<ProducerEntry>): Buffer {
  const list = [...entries];
  let size = SNAPSHOT_HEADER_BYTES;
  for (const e of list) size += ENTRY_HEADER_BYTES + e.batches.length * BATCH_META_BYTES;
  const buf = Buffer.alloc(size);
  buf.writeUInt32BE(SNAPSHOT_MAGIC, 0);
  buf.writeInt16BE(SNAPSHOT_VERSION, 4);
  writeInt64BE(buf, 10, offset);
  buf.writeInt32BE(list.length, 18);
  let p = SNAPSHOT_HEADER_BYTES;
  for (const e of list) {
    writeInt64BE(buf, p, e.producerId);
    buf.writeInt16BE(e.epoch, p + 8);
    writeInt64BE(buf, p + 10, e.lastTimestampMs);
    buf.writeInt8(e.batches.length, p + 18);
    p += ENTRY_HEADER_BYTES;
    for (const m of e.batches) {
      buf.writeInt32BE(m.firstSeq, p);
      buf.writeInt32BE(m.lastSeq, p + 4);
      writeInt64BE(buf, p + 8, m.firstOffset);
      writeInt64BE(buf, p + 16, m.lastOffset);
      writeInt64BE(buf, p + 24, m.timestamp);
      p += BATCH_META_BYTES;
    }
  }
  buf.writeUInt32BE(crc32c(buf.subarray(SNAPSHOT_CRC_START)), 6);
  return buf;
}

export interface DecodedProducerSnapshot {
  offset: number;
  entries: ProducerEntry[];
}

/** Decodes and verifies a snapshot; throws Error with the reason on anything malformed. */
export function decodeProducerSnapshot(buf: Buffer): DecodedProducerSnapshot {
  if (buf.length < SNAPSHOT_HEADER_BYTES) throw new Error(`producer snapshot of ${buf.length} bytes is shorter than its header`);
  if (buf.readUInt32BE(0) !== SNAPSHOT_MAGIC) throw new Error('not a producer snapshot (bad magic)');
  const version = buf.readInt16BE(4);
  if (version !== SNAPSHOT_VERSION) throw new Error(`unknown producer snapshot version ${version}`);
  const crc = crc32c(buf.subarray(SNAPSHOT_CRC_START));
  if (crc !== buf.readUInt32BE(6)) throw new Error('producer snapshot CRC mismatch');
  const offset = readInt64BE(buf, 10);
  const count = buf.readInt32BE(18);
  if (offset < 0 || count < 0 || count > (buf.length - SNAPSHOT_HEADER_BYTES) / ENTRY_HEADER_BYTES) {
    throw new Error(`producer snapshot header is inconsistent (offset ${offset}, count ${count})`);
  }
  const entries: ProducerEntry[] = [];
  let p = SNAPSHOT_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (p + ENTRY_HEADER_BYTES > buf.length) throw new Error('producer snapshot is cut off');
    const batchCount = buf.readInt8(p + 18);
    const entry: ProducerEntry = { producerId: readInt64BE(buf, p), epoch: buf.readInt16BE(p + 8), batches: [], lastTimestampMs: readInt64BE(buf, p + 10) };
    p += ENTRY_HEADER_BYTES;
    if (entry.producerId < 0 || entry.epoch < 0 || batchCount < 1 || batchCount > PRODUCER_BATCHES_RETAINED) {
      throw new Error(`producer snapshot entry ${i} is invalid (producer ${entry.producerId}, epoch ${entry.epoch}, ${batchCount} batches)`);
    }
    if (p + batchCount * BATCH_META_BYTES > buf.length) throw new Error('producer snapshot is cut off');
    for (let j = 0; j < batchCount; j++, p += BATCH_META_BYTES) {
      const m: BatchMetadata = {
        firstSeq: buf.readInt32BE(p),
        lastSeq: buf.readInt32BE(p + 4),
        firstOffset: readInt64BE(buf, p + 8),
        lastOffset: readInt64BE(buf, p + 16),
        timestamp: readInt64BE(buf, p + 24),
      };
      if (m.firstOffset < 0 || m.lastOffset < m.firstOffset || m.lastOffset >= offset) {
        throw new Error(`producer snapshot entry ${i} has a batch outside [0, ${offset})`);
      }
      entry.batches.push(m);
    }
    entries.push(entry);
  }
  if (p !== buf.length) throw new Error(`producer snapshot has ${buf.length - p} trailing bytes`);
  return { offset, entries };
}
