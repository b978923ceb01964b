import test from 'ava';
import { createRequire } from 'node:module';
import { crc32c } from '@node-rs/crc32';
import {
  BATCH_HEADER_BYTES,
  BatchAttribute,
  BatchField,
  CompressionCodec,
  assignBatchOffset,
  checkBatchAt,
  findRecordByTimestamp,
  parseBatchHeader,
  stampLogAppendTime,
  updateBatchCrc,
  validateProducePayload,
} from '../../../src/protocol/records/batch.ts';
import { buildRecordBatch, decodeRecordBatch } from '../../../src/protocol/records/builder.ts';
import { ErrorCode, KafkaError } from '../../../src/protocol/errors.ts';

const require = createRequire(import.meta.url);
// kafkajs' own RecordBatch v2 encoder (internal module): proves we accept what a real client writes.
const { RecordBatch: kafkajsRecordBatch } = require('kafkajs/src/protocol/recordBatch/v0') as {
  RecordBatch: (args: Record<string, unknown>) => Promise<{ buffer: Buffer }>;
};
const kafkajsRecord = require('kafkajs/src/protocol/recordBatch/record/v0') as (args: Record<string, unknown>) => unknown;
const kafkajsDecoder = require('kafkajs/src/protocol/recordBatch/v0/decoder') as (d: unknown) => Promise<{
  records: { offset: string; key: Buffer; value: Buffer; timestamp: string; headers: Record<string, Buffer> }[];
  firstOffset: string;
  timestampType: number;
}>;
const KafkajsDecoder = require('kafkajs/src/protocol/decoder') as new (b: Buffer) => unknown;
const { Types: KafkajsCompression } = require('kafkajs/src/protocol/message/compression') as { Types: Record<string, number> };

const MAX = 1024 * 1024;

async function kafkajsBatch(count: number, compression = KafkajsCompression.None!): Promise<Buffer> {
  const records = Array.from({ length: count }, (_, i) =>
    kafkajsRecord({ offsetDelta: i, timestampDelta: i * 10, key: Buffer.from(`k${i}`), value: Buffer.from(`value-${i}`), headers: { h: `v${i}` } }),
  );
  const enc = await kafkajsRecordBatch({
    compression,
    firstTimestamp: 1_700_000_000_000,
    maxTimestamp: 1_700_000_000_000 + (count - 1) * 10,
    lastOffsetDelta: count - 1,
    records,
  });
  return enc.buffer;
}

function codeOf(fn: () => unknown): number {
  try {
    fn();
  } catch (err) {
    if (err instanceof KafkaError) return err.code;
    throw err;
  }
  return ErrorCode.NONE;
}

test('a batch built by kafkajs validates and decodes with our decoder', async (t) => {
  const batch = await kafkajsBatch(5);
  const [view, ...rest] = validateProducePayload(batch, MAX);
  t.is(rest.length, 0);
  t.is(view!.recordCount, 5);
  t.is(view!.lastOffsetDelta, 4);
  t.is(view!.size, batch.length);
  t.is(view!.baseTimestamp, 1_700_000_000_000);
  t.is(view!.maxTimestamp, 1_700_000_000_040);
  t.is(view!.compression, CompressionCodec.NONE);
  const decoded = decodeRecordBatch(batch);
  t.deepEqual(decoded.records.map((r) => r.value!.toString()), ['value-0', 'value-1', 'value-2', 'value-3', 'value-4']);
  t.deepEqual(decoded.records[3]!.headers, [{ key: 'h', value: Buffer.from('v3') }]);
  t.is(decoded.records[4]!.timestamp, 1_700_000_000_040);
});

test('a gzip batch built by kafkajs passes through validation untouched', async (t) => {
  const batch = await kafkajsBatch(20, KafkajsCompression.GZIP!);
  const copy = Buffer.from(batch);
  const [view] = validateProducePayload(batch, MAX);
  t.is(view!.compression, CompressionCodec.GZIP);
  t.is(view!.recordCount, 20);
  t.true(batch.equals(copy), 'validation must not modify the bytes');
  t.is(decodeRecordBatch(batch).records[19]!.key!.toString(), 'k19');
});

test('a batch built by our builder decodes with kafkajs', async (t) => {
  const batch = buildRecordBatch(
    [
      { key: 'a', value: 'one', timestamp: 1000, headers: [{ key: 'x', value: Buffer.from('y') }] },
      { key: null, value: 'two', timestamp: 990 },
      { value: null, timestamp: 1005 },
    ],
    { baseOffset: 42, compression: CompressionCodec.GZIP },
  );
  t.is(validateProducePayload(batch, MAX).length, 1);
  const decoded = await kafkajsDecoder(new KafkajsDecoder(batch));
  t.deepEqual(decoded.records.map((r) => r.offset), ['42', '43', '44']);
  t.deepEqual(decoded.records.map((r) => r.timestamp), ['1000', '990', '1005']);
  t.is(decoded.records[0]!.headers.x!.toString(), 'y');
  t.is(decoded.records[2]!.value as Buffer | null, null);
  const header = parseBatchHeader(batch);
  t.is(header.maxTimestamp, 1005);
  t.is(header.baseTimestamp, 1000);
});

test('several batches in one payload give one view each, in order', (t) => {
  const a = buildRecordBatch([{ value: 'a' }, { value: 'b' }], { timestamp: 1 });
  const b = buildRecordBatch([{ value: 'c' }], { timestamp: 2 });
  const views = validateProducePayload(Buffer.concat([a, b]), MAX);
  t.deepEqual(views.map((v) => [v.position, v.size, v.recordCount]), [[0, a.length, 2], [a.length, b.length, 1]]);
});

test('every single bit flip in the CRC-covered range is caught', (t) => {
  const batch = buildRecordBatch([{ key: 'k', value: 'some value' }, { value: 'more' }], { timestamp: 5 });
  for (let pos = BatchField.ATTRIBUTES; pos < batch.length; pos++) {
    const bad = Buffer.from(batch);
    bad[pos]! ^= 0x10;
    t.is(codeOf(() => validateProducePayload(bad, MAX)), ErrorCode.CORRUPT_MESSAGE, `flip at ${pos}`);
  }
  const badCrc = Buffer.from(batch);
  badCrc[BatchField.CRC]! ^= 1;
  t.is(codeOf(() => validateProducePayload(badCrc, MAX)), ErrorCode.CORRUPT_MESSAGE);
});

test('truncated payloads are CORRUPT_MESSAGE', (t) => {
  const batch = buildRecordBatch([{ value: 'x'.repeat(100) }], { timestamp: 5 });
  for (const cut of [1, 10, 17, 60, 61, batch.length - 1]) {
    const err = t.throws(() => validateProducePayload(batch.subarray(0, cut), MAX)) as KafkaError;
    t.is(err.code, ErrorCode.CORRUPT_MESSAGE, `cut at ${cut}`);
  }
  const twoWithCut = Buffer.concat([batch, batch.subarray(0, 30)]);
  t.is(codeOf(() => validateProducePayload(twoWithCut, MAX)), ErrorCode.CORRUPT_MESSAGE);
  const lying = Buffer.from(batch);
  lying.writeInt32BE(10, BatchField.BATCH_LENGTH);
  t.is(codeOf(() => validateProducePayload(lying, MAX)), ErrorCode.CORRUPT_MESSAGE);
});

test('magic 0 and 1 message sets are refused with a clear message', (t) => {
  // A v1 message: offset int64, size int32, crc int32, magic 1, attributes, timestamp, key, value.
  const v1 = Buffer.alloc(8 + 4 + 4 + 1 + 1 + 8 + 4 + 4 + 3);
  v1.writeInt32BE(v1.length - 12, 8);
  v1.writeInt8(1, 16);
  v1.writeInt32BE(-1, 26); // null key
  v1.writeInt32BE(3, 30); // 3-byte value
  const err = t.throws(() => validateProducePayload(v1, MAX)) as KafkaError;
  t.is(err.code, ErrorCode.INVALID_RECORD);
  t.regex(err.message, /message format v1 is not supported; use RecordBatch v2/);
  const v0 = Buffer.from(v1);
  v0.writeInt8(0, 16);
  t.regex((t.throws(() => validateProducePayload(v0, MAX)) as Error).message, /v0 is not supported/);
});

test('empty payloads, control batches, count mismatches and lying counts are INVALID_RECORD / CORRUPT', (t) => {
  t.is(codeOf(() => validateProducePayload(Buffer.alloc(0), MAX)), ErrorCode.INVALID_RECORD);
  const control = buildRecordBatch([{ key: Buffer.alloc(4), value: Buffer.alloc(6) }], { control: true, transactional: true });
  t.is(codeOf(() => validateProducePayload(control, MAX)), ErrorCode.INVALID_RECORD);

  const mismatch = buildRecordBatch([{ value: 'a' }, { value: 'b' }]);
  mismatch.writeInt32BE(5, BatchField.LAST_OFFSET_DELTA);
  updateBatchCrc(mismatch, 0, mismatch.length);
  t.is(codeOf(() => validateProducePayload(mismatch, MAX)), ErrorCode.INVALID_RECORD);

  const zero = buildRecordBatch([{ value: 'a' }]);
  zero.writeInt32BE(0, BatchField.RECORD_COUNT);
  zero.writeInt32BE(-1, BatchField.LAST_OFFSET_DELTA);
  updateBatchCrc(zero, 0, zero.length);
  t.is(codeOf(() => validateProducePayload(zero, MAX)), ErrorCode.INVALID_RECORD);

  // Claims a million records in a few bytes: would make the log skip a million offsets.
  const lying = buildRecordBatch([{ value: 'a' }]);
  lying.writeInt32BE(1_000_000, BatchField.RECORD_COUNT);
  lying.writeInt32BE(999_999, BatchField.LAST_OFFSET_DELTA);
  updateBatchCrc(lying, 0, lying.length);
  t.is(codeOf(() => validateProducePayload(lying, MAX)), ErrorCode.CORRUPT_MESSAGE);

  const badCodec = buildRecordBatch([{ value: 'a' }]);
  badCodec.writeInt16BE(6, BatchField.ATTRIBUTES);
  updateBatchCrc(badCodec, 0, badCodec.length);
  t.is(codeOf(() => validateProducePayload(badCodec, MAX)), ErrorCode.INVALID_RECORD);
});

test('batches over max.message.bytes are MESSAGE_TOO_LARGE', (t) => {
  const batch = buildRecordBatch([{ value: Buffer.alloc(2000) }]);
  t.is(validateProducePayload(batch, batch.length).length, 1);
  const err = t.throws(() => validateProducePayload(batch, batch.length - 1)) as KafkaError;
  t.is(err.code, ErrorCode.MESSAGE_TOO_LARGE);
  t.regex(err.message, /max\.message\.bytes/);
});

test('snappy, lz4 and zstd batches are accepted without being opened', (t) => {
  for (const codec of [CompressionCodec.SNAPPY, CompressionCodec.LZ4, CompressionCodec.ZSTD]) {
    // An opaque body (not valid compressed data): proves the produce path never decompresses.
    const batch = buildRecordBatch([{ value: 'a' }, { value: 'b' }, { value: 'c' }]);
    batch.writeInt16BE(codec, BatchField.ATTRIBUTES);
    updateBatchCrc(batch, 0, batch.length);
    const [view] = validateProducePayload(batch, MAX);
    t.is(view!.compression, codec);
    t.is(view!.recordCount, 3);
  }
});

test('assigning offsets and leader epoch keeps the CRC valid', async (t) => {
  const payload = Buffer.concat([await kafkajsBatch(3), buildRecordBatch([{ value: 'z' }])]);
  const views = validateProducePayload(payload, MAX);
  assignBatchOffset(payload, views[0]!.position, 1_234_567_890_123, 7);
  assignBatchOffset(payload, views[1]!.position, 1_234_567_890_126, 7);
  const again = validateProducePayload(payload, MAX);
  t.is(again[0]!.baseOffset, 1_234_567_890_123);
  t.is(again[0]!.partitionLeaderEpoch, 7);
  t.is(again[1]!.baseOffset, 1_234_567_890_126);
  const decoded = await kafkajsDecoder(new KafkajsDecoder(payload.subarray(0, views[0]!.size)));
  t.deepEqual(decoded.records.map((r) => r.offset), ['1234567890123', '1234567890124', '1234567890125']);
});

test('LogAppendTime stamping sets the attribute and timestamps and recomputes the CRC', async (t) => {
  const batch = await kafkajsBatch(3);
  stampLogAppendTime(batch, 0, batch.length, 1_800_000_000_000);
  const check = checkBatchAt(batch, 0, { verifyCrc: true, maxBatchBytes: 0 });
  t.true(check.ok);
  const h = parseBatchHeader(batch);
  t.is(h.maxTimestamp, 1_800_000_000_000);
  t.is(h.baseTimestamp, 1_800_000_000_000);
  t.truthy(h.attributes & BatchAttribute.LOG_APPEND_TIME);
  t.is(crc32c(batch.subarray(BatchField.ATTRIBUTES)), h.crc);
  const decoded = await kafkajsDecoder(new KafkajsDecoder(batch));
  t.is(decoded.timestampType, 1);
  t.deepEqual(decoded.records.map((r) => r.timestamp), ['1800000000000', '1800000000000', '1800000000000']);
});

test('recovery-style checks report truncation separately from corruption', (t) => {
  const batch = buildRecordBatch([{ value: 'abc' }]);
  const cut = checkBatchAt(batch.subarray(0, 40), 0, { verifyCrc: true, maxBatchBytes: 0 });
  t.false(cut.ok);
  t.true(!cut.ok && cut.truncated);
  const bad = Buffer.from(batch);
  bad[bad.length - 1]! ^= 1;
  const corrupt = checkBatchAt(bad, 0, { verifyCrc: true, maxBatchBytes: 0 });
  t.true(!corrupt.ok && !corrupt.truncated && corrupt.code === ErrorCode.CORRUPT_MESSAGE);
  t.true(checkBatchAt(bad, 0, { verifyCrc: false, maxBatchBytes: 0 }).ok);
  t.is(BATCH_HEADER_BYTES, 61);
});

test('findRecordByTimestamp finds the exact record in uncompressed batches', (t) => {
  const batch = buildRecordBatch(
    [{ value: 'a', timestamp: 100 }, { value: 'b', timestamp: 300 }, { value: 'c', timestamp: 200 }, { value: 'd', timestamp: 400 }],
    { baseOffset: 10 },
  );
  t.deepEqual(findRecordByTimestamp(batch, 150, 0), { offset: 11, timestamp: 300 });
  t.deepEqual(findRecordByTimestamp(batch, 100, 0), { offset: 10, timestamp: 100 });
  t.deepEqual(findRecordByTimestamp(batch, 100, 12), { offset: 12, timestamp: 200 });
  t.deepEqual(findRecordByTimestamp(batch, 400, 0), { offset: 13, timestamp: 400 });
  t.is(findRecordByTimestamp(batch, 401, 0), null);
  t.is(findRecordByTimestamp(batch, 0, 14), null);
  const gz = buildRecordBatch([{ value: 'a', timestamp: 100 }, { value: 'b', timestamp: 300 }], { baseOffset: 10, compression: CompressionCodec.GZIP });
  t.deepEqual(findRecordByTimestamp(gz, 250, 0), { offset: 10, timestamp: 300 });
});
