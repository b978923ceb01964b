import test from 'ava';
import fc from 'fast-check';
import { CompressionCodec, parseBatchHeader, validateProducePayload } from '../../../src/protocol/records/batch.ts';
import { buildRecordBatch, decodeRecordBatch } from '../../../src/protocol/records/builder.ts';
import type { RecordInput } from '../../../src/protocol/records/builder.ts';

const recordArb: fc.Arbitrary<RecordInput> = fc.record({
  key: fc.option(fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)), { nil: null }),
  value: fc.option(fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)), { nil: null }),
  headers: fc.array(fc.record({ key: fc.string({ maxLength: 10 }), value: fc.option(fc.uint8Array({ maxLength: 20 }).map((a) => Buffer.from(a)), { nil: null }) }), { maxLength: 3 }),
  timestamp: fc.integer({ min: 0, max: 4_000_000_000_000 }),
});

test('build then decode returns the same records (none and gzip)', (t) => {
  fc.assert(
    fc.property(
      fc.array(recordArb, { minLength: 1, maxLength: 20 }),
      fc.constantFrom(CompressionCodec.NONE, CompressionCodec.GZIP),
      fc.integer({ min: 0, max: 2 ** 40 }),
      (records, compression, baseOffset) => {
        const batch = buildRecordBatch(records, { compression, baseOffset, producerId: 9, producerEpoch: 2, baseSequence: 17 });
        const [view] = validateProducePayload(batch, 10 * 1024 * 1024);
        const decoded = decodeRecordBatch(batch);
        t.is(view!.producerId, 9);
        t.is(view!.producerEpoch, 2);
        t.is(view!.baseSequence, 17);
        t.is(decoded.header.maxTimestamp, Math.max(...records.map((r) => r.timestamp!)));
        t.is(decoded.records.length, records.length);
        decoded.records.forEach((r, i) => {
          const input = records[i]!;
          t.is(r.offset, baseOffset + i);
          t.is(r.timestamp, input.timestamp!);
          t.deepEqual(r.key, input.key);
          t.deepEqual(r.value, input.value);
          t.deepEqual(r.headers, input.headers);
        });
      },
    ),
    { numRuns: 150 },
  );
});

test('builder sets the transactional and control flags and producer defaults', (t) => {
  const plain = parseBatchHeader(buildRecordBatch([{ value: 'x' }]));
  t.is(plain.producerId, -1);
  t.is(plain.producerEpoch, -1);
  t.is(plain.baseSequence, -1);
  t.is(plain.partitionLeaderEpoch, -1);
  const txn = parseBatchHeader(buildRecordBatch([{ value: 'x' }], { transactional: true, control: true }));
  t.is(txn.attributes & 0x30, 0x30);
  t.throws(() => buildRecordBatch([]));
  t.throws(() => buildRecordBatch([{ value: 'x' }], { compression: CompressionCodec.ZSTD }));
});

test('LogAppendTime batches decode with maxTimestamp on every record', (t) => {
  const batch = buildRecordBatch([{ value: 'a', timestamp: 5 }, { value: 'b', timestamp: 9 }], { logAppendTime: true });
  t.deepEqual(decodeRecordBatch(batch).records.map((r) => r.timestamp), [9, 9]);
});
