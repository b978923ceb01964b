// RecordBatch v2: header parsing, produce-path validation and the in-place patches a broker makes (offsets,
// leader epoch, LogAppendTime). Batches are validated from their header and CRC only: the records inside are
// never decoded or decompressed on the produce path, so appending costs the same for 1 or 10,000 records.

import { Parser } from 'binary-parser';
import { crc32c } from '@node-rs/crc32';
import { ErrorCode, KafkaError } from '../errors.ts';
import { ByteReader, readInt64BE, writeInt64BE } from './varint.ts';

/** The fixed header every RecordBatch v2 starts with (bytes). */
export const BATCH_HEADER_BYTES = 61;
/** baseOffset + batchLength: the bytes before what batchLength counts. */
export const BATCH_LOG_OVERHEAD_BYTES = 12;
export const MAGIC_V2 = 2;
/** The smallest possible record: length, attributes, timestampDelta, offsetDelta, key, value, header count. */
export const RECORD_BYTES_MIN = 7;

/** Byte positions of the header fields inside a batch. */
export const BatchField = {
  BASE_OFFSET: 0,
  BATCH_LENGTH: 8,
  PARTITION_LEADER_EPOCH: 12,
  MAGIC: 16,
  CRC: 17,
  ATTRIBUTES: 21,
  LAST_OFFSET_DELTA: 23,
  BASE_TIMESTAMP: 27,
  MAX_TIMESTAMP: 35,
  PRODUCER_ID: 43,
  PRODUCER_EPOCH: 51,
  BASE_SEQUENCE: 53,
  RECORD_COUNT: 57,
} as const;

export const BatchAttribute = {
  COMPRESSION_MASK: 0x07,
  /** Set: every record's timestamp is the batch's maxTimestamp, stamped by the broker (LogAppendTime). */
  LOG_APPEND_TIME: 0x08,
  TRANSACTIONAL: 0x10,
  CONTROL: 0x20,
} as const;

export const CompressionCodec = { NONE: 0, GZIP: 1, SNAPPY: 2, LZ4: 3, ZSTD: 4 } as const;
export type CompressionCodecValue = (typeof CompressionCodec)[keyof typeof CompressionCodec];
const COMPRESSION_CODEC_MAX = CompressionCodec.ZSTD;

export interface BatchHeader {
  baseOffset: number;
  /** Bytes after this field: the whole batch is batchLength + 12 bytes. */
  batchLength: number;
  partitionLeaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

/** A batch inside a larger buffer: its header plus where it sits. The bytes are not copied. */
export interface BatchView extends BatchHeader {
  /** Where the batch starts in the buffer it was found in. */
  position: number;
  /** Whole batch size in bytes (batchLength + 12). */
  size: number;
  compression: number;
  isTransactional: boolean;
  isControl: boolean;
  isLogAppendTime: boolean;
}

// int64 fields are converted to numbers: offsets, timestamps and producer ids stay below 2^53.
const toNumber = (v: unknown): number => Number(v as bigint);

/** Compiled once; parses exactly the 61 header bytes. */
const headerParser = new Parser()
  .endianness('big')
  .int64('baseOffset', { formatter: toNumber })
  .int32('batchLength')
  .int32('partitionLeaderEpoch')
  .int8('magic')
  .uint32('crc')
  .int16('attributes')
  .int32('lastOffsetDelta')
  .int64('baseTimestamp', { formatter: toNumber })
  .int64('maxTimestamp', { formatter: toNumber })
  .int64('producerId', { formatter: toNumber })
  .int16('producerEpoch')
  .int32('baseSequence')
  .int32('recordCount');
headerParser.compile();

/** Parses the header of the batch at `position`; the caller guarantees 61 bytes are there. */
export function parseBatchHeader(buf: Buffer, position = 0): BatchHeader {
  return headerParser.parse(buf.subarray(position, position + BATCH_HEADER_BYTES)) as BatchHeader;
}

export type BatchCheck =
  | { ok: true; view: BatchView }
  | { ok: false; code: number; reason: string; truncated: boolean };

export interface CheckOptions {
  /** Verify the CRC32C (attributes .. end). */
  verifyCrc: boolean;
  /** Refuse a batch larger than this (bytes) before its CRC is computed; 0 = no limit. */
  maxBatchBytes: number;
}

/**
 * Checks framing, magic, size and CRC of the batch starting at `position`. Never throws: both the produce path
 * (which turns a failure into a KafkaError) and log recovery (which truncates) use it.
 */
export function checkBatchAt(buf: Buffer, position: number, options: CheckOptions): BatchCheck {
  const remaining = buf.length - position;
  if (remaining <= BatchField.MAGIC) return truncated(`only ${remaining} bytes left, a batch header needs ${BATCH_HEADER_BYTES}`);
  const magic = buf.readInt8(position + BatchField.MAGIC);
  if (magic !== MAGIC_V2) {
    const reason = magic === 0 || magic === 1
      ? `message format v${magic} is not supported; use RecordBatch v2`
      : `unknown record batch magic ${magic}`;
    return { ok: false, code: ErrorCode.INVALID_RECORD, reason, truncated: false };
  }
  if (remaining < BATCH_HEADER_BYTES) return truncated(`only ${remaining} bytes left, a batch header needs ${BATCH_HEADER_BYTES}`);
  const batchLength = buf.readInt32BE(position + BatchField.BATCH_LENGTH);
  if (batchLength < BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD_BYTES) {
    return { ok: false, code: ErrorCode.CORRUPT_MESSAGE, reason: `batch length ${batchLength} is smaller than the header`, truncated: false };
  }
  const size = batchLength + BATCH_LOG_OVERHEAD_BYTES;
  if (options.maxBatchBytes > 0 && size > options.maxBatchBytes) {
    return {
      ok: false,
      code: ErrorCode.MESSAGE_TOO_LARGE,
      reason: `record batch of ${size} bytes exceeds max.message.bytes ${options.maxBatchBytes}`,
      truncated: false,
    };
  }
  if (size > remaining) return truncated(`batch of ${size} bytes is cut off after ${remaining} bytes`);
  const header = parseBatchHeader(buf, position);
  if (options.verifyCrc) {
    const actual = crc32c(buf.subarray(position + BatchField.ATTRIBUTES, position + size));
    if (actual !== header.crc) {
      return {
        ok: false,
        code: ErrorCode.CORRUPT_MESSAGE,
        reason: `batch CRC mismatch: stored ${header.crc.toString(16)}, computed ${actual.toString(16)}`,
        truncated: false,
      };
    }
  }
  return { ok: true, view: toView(header, position, size) };
}

function truncated(reason: string): BatchCheck {
  return { ok: false, code: ErrorCode.CORRUPT_MESSAGE, reason, truncated: true };
}

function toView(header: BatchHeader, position: number, size: number): BatchView {
  const view = header as BatchView;
  view.position = position;
  view.size = size;
  view.compression = header.attributes & BatchAttribute.COMPRESSION_MASK;
  view.isTransactional = (header.attributes & BatchAttribute.TRANSACTIONAL) !== 0;
  view.isControl = (header.attributes & BatchAttribute.CONTROL) !== 0;
  view.isLogAppendTime = (header.attributes & BatchAttribute.LOG_APPEND_TIME) !== 0;
  return view;
}

/**
 * Validates a produce payload holding one or more RecordBatch v2 batches and returns a view per batch.
 * Throws KafkaError: CORRUPT_MESSAGE (truncated, bad length, CRC), INVALID_RECORD (magic 0/1, control batch,
 * record count inconsistent), MESSAGE_TOO_LARGE (a batch over maxMessageBytes).
 */
export function validateProducePayload(payload: Buffer, maxMessageBytes: number): BatchView[] {
  if (payload.length === 0) throw new KafkaError(ErrorCode.INVALID_RECORD, 'produce payload holds no record batch');
  const views: BatchView[] = [];
  const options: CheckOptions = { verifyCrc: true, maxBatchBytes: maxMessageBytes };
  let position = 0;
  while (position < payload.length) {
    const check = checkBatchAt(payload, position, options);
    if (!check.ok) throw new KafkaError(check.code, `batch at byte ${position}: ${check.reason}`);
    validateProducedBatch(check.view);
    views.push(check.view);
    position += check.view.size;
  }
  return views;
}

function validateProducedBatch(view: BatchView): void {
  const where = `batch at byte ${view.position}`;
  if (view.isControl) throw new KafkaError(ErrorCode.INVALID_RECORD, `${where}: control batches are written only by the broker`);
  if (view.compression > COMPRESSION_CODEC_MAX) {
    throw new KafkaError(ErrorCode.INVALID_RECORD, `${where}: unknown compression codec ${view.compression}`);
  }
  if (view.recordCount < 1) throw new KafkaError(ErrorCode.INVALID_RECORD, `${where}: record count ${view.recordCount}`);
  if (view.lastOffsetDelta !== view.recordCount - 1) {
    throw new KafkaError(
      ErrorCode.INVALID_RECORD,
      `${where}: lastOffsetDelta ${view.lastOffsetDelta} does not match record count ${view.recordCount}`,
    );
  }
  // Offsets are assigned from recordCount, so an uncompressed batch must really hold that many records; a
  // lying header would otherwise make the log skip offsets. (Compressed batches are not opened here.)
  if (view.compression === CompressionCodec.NONE && view.recordCount > (view.size - BATCH_HEADER_BYTES) / RECORD_BYTES_MIN) {
    throw new KafkaError(ErrorCode.CORRUPT_MESSAGE, `${where}: ${view.recordCount} records cannot fit in ${view.size} bytes`);
  }
}

/** Sets baseOffset and partitionLeaderEpoch in place. The CRC starts at attributes, so it stays valid. */
export function assignBatchOffset(buf: Buffer, position: number, baseOffset: number, leaderEpoch: number): void {
  writeInt64BE(buf, position + BatchField.BASE_OFFSET, baseOffset);
  buf.writeInt32BE(leaderEpoch, position + BatchField.PARTITION_LEADER_EPOCH);
}

/**
 * Stamps LogAppendTime in place: sets the timestamp-type bit, baseTimestamp and maxTimestamp to `nowMs`, and
 * recomputes the CRC (these fields are covered by it). Consumers read every record's timestamp as maxTimestamp.
 */
export function stampLogAppendTime(buf: Buffer, position: number, size: number, nowMs: number): void {
  const attributes = buf.readInt16BE(position + BatchField.ATTRIBUTES) | BatchAttribute.LOG_APPEND_TIME;
  buf.writeInt16BE(attributes, position + BatchField.ATTRIBUTES);
  writeInt64BE(buf, position + BatchField.BASE_TIMESTAMP, nowMs);
  writeInt64BE(buf, position + BatchField.MAX_TIMESTAMP, nowMs);
  updateBatchCrc(buf, position, size);
}

/** Recomputes and stores the CRC32C of the batch at `position`. */
export function updateBatchCrc(buf: Buffer, position: number, size: number): void {
  const crc = crc32c(buf.subarray(position + BatchField.ATTRIBUTES, position + size));
  buf.writeUInt32BE(crc, position + BatchField.CRC);
}

/** The offset of the last record of the batch at `position` (header fields only). */
export function batchLastOffset(buf: Buffer, position: number): number {
  return readInt64BE(buf, position + BatchField.BASE_OFFSET) + buf.readInt32BE(position + BatchField.LAST_OFFSET_DELTA);
}

export interface RecordTimestamp {
  offset: number;
  timestamp: number;
}

/**
 * The first record of `batch` (a whole batch, already CRC-checked) with offset >= minOffset and timestamp >=
 * targetTs, or null. For LogAppendTime batches every record carries maxTimestamp. Compressed batches are not
 * opened: the answer is their first offset >= minOffset when their maxTimestamp qualifies (a consumer seeking
 * there receives the whole batch, including the wanted record).
 */
export function findRecordByTimestamp(batch: Buffer, targetTs: number, minOffset: number): RecordTimestamp | null {
  const header = parseBatchHeader(batch, 0);
  if (header.maxTimestamp < targetTs) return null;
  const lastOffset = header.baseOffset + header.lastOffsetDelta;
  if (lastOffset < minOffset) return null;
  const compression = header.attributes & BatchAttribute.COMPRESSION_MASK;
  if ((header.attributes & BatchAttribute.LOG_APPEND_TIME) !== 0 || compression !== CompressionCodec.NONE) {
    return { offset: Math.max(header.baseOffset, minOffset), timestamp: header.maxTimestamp };
  }
  const reader = new ByteReader(batch, BATCH_HEADER_BYTES, header.batchLength + BATCH_LOG_OVERHEAD_BYTES);
  for (let i = 0; i < header.recordCount && reader.remaining > 0; i++) {
    const length = reader.readVarint();
    const recordEnd = reader.pos + length;
    reader.readInt8(); // record attributes: unused
    const timestamp = header.baseTimestamp + reader.readVarlong();
    const offset = header.baseOffset + reader.readVarint();
    if (offset >= minOffset && timestamp >= targetTs) return { offset, timestamp };
    reader.pos = recordEnd;
  }
  return null;
}
