// Builds RecordBatch v2 bytes and decodes them back. The broker never needs this on its hot path (batches are
// stored as received); tests, tools and broker-written batches (control records, internal topics) do.

import { gunzipSync, gzipSync } from 'node:zlib';
import { ErrorCode, KafkaError } from '../errors.ts';
import {
  BATCH_HEADER_BYTES,
  BATCH_LOG_OVERHEAD_BYTES,
  BatchAttribute,
  BatchField,
  CompressionCodec,
  MAGIC_V2,
  parseBatchHeader,
  updateBatchCrc,
} from './batch.ts';
import type { BatchHeader } from './batch.ts';
import { ByteReader, sizeOfVarint, writeInt64BE, writeVarint } from './varint.ts';

export interface RecordHeader {
  key: string;
  value: Buffer | null;
}

export interface RecordInput {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  headers?: RecordHeader[];
  /** Create time (ms since the epoch); default: BuildBatchOptions.timestamp. */
  timestamp?: number;
}

export interface BuildBatchOptions {
  baseOffset?: number;
  /** Default -1, as producers send it. */
  partitionLeaderEpoch?: number;
  /** Timestamp of records that carry none (ms); default Date.now(). */
  timestamp?: number;
  /** Default -1 (not idempotent). */
  producerId?: number;
  producerEpoch?: number;
  baseSequence?: number;
  transactional?: boolean;
  control?: boolean;
  /** CompressionCodec.NONE (default) or CompressionCodec.GZIP; other codecs are passed through, never built. */
  compression?: number;
  logAppendTime?: boolean;
}

export interface DecodedRecord {
  offset: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
}

export interface DecodedBatch {
  header: BatchHeader;
  records: DecodedRecord[];
}

/** Builds one RecordBatch v2 with a valid CRC. Record offsets are consecutive from options.baseOffset. */
export function buildRecordBatch(records: RecordInput[], options: BuildBatchOptions = {}): Buffer {
  if (records.length === 0) throw new RangeError('a record batch holds at least one record');
  const compression = options.compression ?? CompressionCodec.NONE;
  if (compression !== CompressionCodec.NONE && compression !== CompressionCodec.GZIP) {
    throw new KafkaError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, `cannot build batches with compression codec ${compression}`);
  }
  const defaultTs = options.timestamp ?? Date.now();
  const timestamps = records.map((r) => r.timestamp ?? defaultTs);
  const baseTimestamp = timestamps[0]!;
  const maxTimestamp = Math.max(...timestamps);
  const encoded = records.map((r, i) => encodeRecord(r, i, timestamps[i]! - baseTimestamp));
  let body = Buffer.concat(encoded);
  if (compression === CompressionCodec.GZIP) body = gzipSync(body);

  const batch = Buffer.alloc(BATCH_HEADER_BYTES + body.length);
  writeInt64BE(batch, BatchField.BASE_OFFSET, options.baseOffset ?? 0);
  batch.writeInt32BE(batch.length - BATCH_LOG_OVERHEAD_BYTES, BatchField.BATCH_LENGTH);
  batch.writeInt32BE(options.partitionLeaderEpoch ?? -1, BatchField.PARTITION_LEADER_EPOCH);
  batch.writeInt8(MAGIC_V2, BatchField.MAGIC);
  batch.writeInt16BE(attributesOf(compression, options), BatchField.ATTRIBUTES);
  batch.writeInt32BE(records.length - 1, BatchField.LAST_OFFSET_DELTA);
  writeInt64BE(batch, BatchField.BASE_TIMESTAMP, baseTimestamp);
  writeInt64BE(batch, BatchField.MAX_TIMESTAMP, maxTimestamp);
  writeInt64BE(batch, BatchField.PRODUCER_ID, options.producerId ?? -1);
  batch.writeInt16BE(options.producerEpoch ?? -1, BatchField.PRODUCER_EPOCH);
  batch.writeInt32BE(options.baseSequence ?? -1, BatchField.BASE_SEQUENCE);
  batch.writeInt32BE(records.length, BatchField.RECORD_COUNT);
  body.copy(batch, BATCH_HEADER_BYTES);
  updateBatchCrc(batch, 0, batch.length);
  return batch;
}

function attributesOf(compression: number, options: BuildBatchOptions): number {
  let attributes = compression;
  if (options.logAppendTime) attributes |= BatchAttribute.LOG_APPEND_TIME;
  if (options.transactional) attributes |= BatchAttribute.TRANSACTIONAL;
  if (options.control) attributes |= BatchAttribute.CONTROL;
  return attributes;
}

function toBytes(v: Buffer | string | null | undefined): Buffer | null {
  if (v === null || v === undefined) return null;
  return typeof v === 'string' ? Buffer.from(v) : v;
}

function sizeOfVarBytes(b: Buffer | null): number {
  return b === null ? sizeOfVarint(-1) : sizeOfVarint(b.length) + b.length;
}

function writeVarBytes(buf: Buffer, pos: number, b: Buffer | null): number {
  if (b === null) return writeVarint(buf, pos, -1);
  pos = writeVarint(buf, pos, b.length);
  b.copy(buf, pos);
  return pos + b.length;
}

function encodeRecord(record: RecordInput, offsetDelta: number, timestampDelta: number): Buffer {
  const key = toBytes(record.key);
  const value = toBytes(record.value);
  const headers = (record.headers ?? []).map((h) => ({ key: Buffer.from(h.key), value: h.value }));
  let bodySize = 1 + sizeOfVarint(timestampDelta) + sizeOfVarint(offsetDelta) + sizeOfVarBytes(key) + sizeOfVarBytes(value);
  bodySize += sizeOfVarint(headers.length);
  for (const h of headers) bodySize += sizeOfVarBytes(h.key) + sizeOfVarBytes(h.value);

  const out = Buffer.alloc(sizeOfVarint(bodySize) + bodySize);
  let pos = writeVarint(out, 0, bodySize);
  out.writeInt8(0, pos++); // record attributes: unused by the protocol
  pos = writeVarint(out, pos, timestampDelta);
  pos = writeVarint(out, pos, offsetDelta);
  pos = writeVarBytes(out, pos, key);
  pos = writeVarBytes(out, pos, value);
  pos = writeVarint(out, pos, headers.length);
  for (const h of headers) {
    pos = writeVarBytes(out, pos, h.key);
    pos = writeVarBytes(out, pos, h.value);
  }
  return out;
}

/**
 * Decodes the records of one whole batch (uncompressed or gzip). The CRC is not checked here: use
 * checkBatchAt first when the bytes come from outside. Keys and values are views into `batch` (or into the
 * decompressed buffer).
 */
export function decodeRecordBatch(batch: Buffer): DecodedBatch {
  if (batch.length < BATCH_HEADER_BYTES) throw new KafkaError(ErrorCode.CORRUPT_MESSAGE, 'batch shorter than its header');
  const header = parseBatchHeader(batch, 0);
  if (header.magic !== MAGIC_V2) throw new KafkaError(ErrorCode.INVALID_RECORD, `unsupported magic ${header.magic}`);
  const end = header.batchLength + BATCH_LOG_OVERHEAD_BYTES;
  if (end > batch.length) throw new KafkaError(ErrorCode.CORRUPT_MESSAGE, 'batch is truncated');
  const compression = header.attributes & BatchAttribute.COMPRESSION_MASK;
  let body = batch.subarray(BATCH_HEADER_BYTES, end);
  if (compression === CompressionCodec.GZIP) body = gunzipSync(body);
  else if (compression !== CompressionCodec.NONE) {
    throw new KafkaError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, `cannot decode compression codec ${compression}`);
  }
  const logAppendTime = (header.attributes & BatchAttribute.LOG_APPEND_TIME) !== 0;
  const reader = new ByteReader(body);
  const records: DecodedRecord[] = [];
  for (let i = 0; i < header.recordCount; i++) {
    const record = decodeRecord(reader, header);
    if (logAppendTime) record.timestamp = header.maxTimestamp;
    records.push(record);
  }
  return { header, records };
}

function decodeRecord(reader: ByteReader, header: BatchHeader): DecodedRecord {
  const length = reader.readVarint();
  const end = reader.pos + length;
  if (length < 0 || end > reader.end) throw new KafkaError(ErrorCode.CORRUPT_MESSAGE, `record length ${length} is out of bounds`);
  const record = new ByteReader(reader.buf, reader.pos, end);
  record.readInt8();
  const timestamp = header.baseTimestamp + record.readVarlong();
  const offset = header.baseOffset + record.readVarint();
  const key = record.readVarBytes();
  const value = record.readVarBytes();
  const headerCount = record.readVarint();
  if (headerCount < 0) throw new KafkaError(ErrorCode.CORRUPT_MESSAGE, `header count ${headerCount}`);
  const headers: RecordHeader[] = [];
  for (let i = 0; i < headerCount; i++) {
    const hKey = record.readVarBytes();
    if (hKey === null) throw new KafkaError(ErrorCode.CORRUPT_MESSAGE, 'record header with a null key');
    headers.push({ key: hKey.toString('utf8'), value: record.readVarBytes() });
  }
  reader.pos = end;
  return { offset, timestamp, key, value, headers };
}
