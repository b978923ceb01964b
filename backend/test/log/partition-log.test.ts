import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, KafkaError } from '../../src/protocol/errors.ts';
import { BatchField, CompressionCodec, checkBatchAt, parseBatchHeader, updateBatchCrc } from '../../src/protocol/records/batch.ts';
import { buildRecordBatch, decodeRecordBatch } from '../../src/protocol/records/builder.ts';
import { appendAll, batch, captureLogger, Clock, config, openLog, readAll, segmentFiles, tempDir } from './_helpers.ts';

function codeOf(fn: () => unknown): number {
  try {
    fn();
  } catch (err) {
    if (err instanceof KafkaError) return err.code;
    throw err;
  }
  return ErrorCode.NONE;
}

test('append/read round trip over many batches and segments', async (t) => {
  const dir = tempDir();
  const log = await openLog(dir, config({ segmentBytes: 4096, indexIntervalBytes: 200 }));
  const payloads = Array.from({ length: 300 }, (_, i) => batch(`b${i}`, 1 + (i % 5), (i * 37) % 300));
  const stored = await appendAll(log, payloads);
  t.is(stored[0]!.baseOffset, 0);
  for (let i = 1; i < stored.length; i++) t.is(stored[i]!.baseOffset, stored[i - 1]!.lastOffset + 1);
  t.is(log.logEndOffset, stored[stored.length - 1]!.lastOffset + 1);
  t.is(log.highWatermark, log.logEndOffset);
  t.true(segmentFiles(dir).length > 10);
  for (const name of segmentFiles(dir)) t.regex(name, /^\d{20}\.log$/);
  t.deepEqual(readAll(log), stored.map((s) => s.bytes));
  // Every offset reads back the batch containing it, first.
  for (const s of stored) {
    for (const offset of [s.baseOffset, s.lastOffset]) {
      const r = log.read(offset, 1);
      t.true(r.records[0]!.equals(s.bytes), `offset ${offset}`);
    }
  }
  // And every stored batch is intact (CRC valid, decodes with the right offsets).
  const decoded = decodeRecordBatch(stored[123]!.bytes);
  t.is(decoded.records[0]!.offset, stored[123]!.baseOffset);
  t.is(decoded.records[0]!.value!.toString().split(':')[0], 'b123-0');
  await log.close();
});

test('reading from the middle of a batch returns the whole batch', async (t) => {
  const log = await openLog(tempDir(), config());
  const [a, b] = await appendAll(log, [batch('a', 10), batch('b', 10)]);
  const r = log.read(15, 1024 * 1024);
  t.is(r.records.length, 1);
  t.true(r.records[0]!.equals(b!.bytes));
  t.is(parseBatchHeader(r.records[0]!).baseOffset, 10);
  t.true(log.read(3, 1024 * 1024).records[0]!.equals(a!.bytes));
  await log.close();
});

test('maxBytes is honoured, and KIP-74 returns one whole batch larger than maxBytes', async (t) => {
  const log = await openLog(tempDir(), config());
  const stored = await appendAll(log, [batch('a', 1, 1000), batch('b', 1, 1000), batch('c', 1, 1000)]);
  const size = stored[0]!.bytes.length;
  const two = log.read(0, size * 2 + 10);
  t.is(two.records.length, 2);
  t.is(two.bytes, size * 2);
  const tiny = log.read(1, 10);
  t.is(tiny.records.length, 1, 'at least one batch even when maxBytes is smaller');
  t.true(tiny.records[0]!.equals(stored[1]!.bytes));
  const strict = log.read(1, 10, false);
  t.is(strict.records.length, 0, 'minOneBatch=false: nothing that does not fit');
  t.is(log.read(0, 0, false).bytes, 0);
  await log.close();
});

test('KIP-74 across a segment boundary and at the tail', async (t) => {
  const log = await openLog(tempDir(), config({ segmentBytes: 1500 }));
  const stored = await appendAll(log, [batch('a', 1, 1000), batch('b', 1, 1000), batch('c', 1, 1000)]);
  t.is(log.segmentBaseOffsets().length, 3);
  const all = log.read(0, 1024 * 1024);
  t.deepEqual(all.records, stored.map((s) => s.bytes), 'a large read continues into the next segments');
  t.true(log.read(2, 1).records[0]!.equals(stored[2]!.bytes));
  await log.close();
});

test('offsets at and beyond the ends', async (t) => {
  const log = await openLog(tempDir(), config());
  t.deepEqual(log.read(0, 100).records, [], 'empty log: offset 0 == log end');
  await appendAll(log, [batch('a', 3)]);
  const end = log.read(3, 100);
  t.is(end.records.length, 0);
  t.is(end.highWatermark, 3);
  t.is(end.logStartOffset, 0);
  t.is(end.lastStableOffset, 3);
  t.is(codeOf(() => log.read(4, 100)), ErrorCode.OFFSET_OUT_OF_RANGE);
  t.is(codeOf(() => log.read(-1, 100)), ErrorCode.OFFSET_OUT_OF_RANGE);
  await log.deleteRecordsBefore(2);
  t.is(codeOf(() => log.read(1, 100)), ErrorCode.OFFSET_OUT_OF_RANGE);
  t.is(log.read(2, 100).records.length, 1);
  await log.close();
});

test('invalid payloads are refused without touching the log', async (t) => {
  const log = await openLog(tempDir(), config({ maxMessageBytes: 2000 }));
  await appendAll(log, [batch('a', 2)]);
  const bad = batch('b');
  bad[bad.length - 1]! ^= 1;
  await t.throwsAsync(log.append(bad), { instanceOf: KafkaError, message: /CRC/ });
  await t.throwsAsync(log.append(batch('big', 1, 3000)), { instanceOf: KafkaError, message: /max\.message\.bytes/ });
  const v1 = Buffer.from(batch('c'));
  v1.writeInt8(1, BatchField.MAGIC);
  const e = await t.throwsAsync(log.append(v1));
  t.is((e as KafkaError).code, ErrorCode.INVALID_RECORD);
  t.is(log.logEndOffset, 2);
  const r = await log.append(batch('d'));
  t.is(r.baseOffset, 2);
  await log.close();
});

test('a payload with several batches gets consecutive offsets for each batch', async (t) => {
  const log = await openLog(tempDir(), config());
  const payload = Buffer.concat([batch('a', 3), batch('b', 2), batch('c', 4)]);
  const r = await log.append(payload, { leaderEpoch: 5 });
  t.deepEqual([r.baseOffset, r.lastOffset, r.logAppendTimeMs], [0, 8, -1]);
  const got = log.read(0, 1024 * 1024).records;
  t.deepEqual(got.map((b) => parseBatchHeader(b).baseOffset), [0, 3, 5]);
  t.deepEqual(got.map((b) => parseBatchHeader(b).partitionLeaderEpoch), [5, 5, 5]);
  for (const b of got) t.true(checkBatchAt(b, 0, { verifyCrc: true, maxBatchBytes: 0 }).ok);
  await log.close();
});

test('LogAppendTime stamps the broker time and keeps CRCs valid', async (t) => {
  const clock = new Clock();
  clock.now = 1_800_000_000_123;
  const log = await openLog(tempDir(), config({ messageTimestampType: 'LogAppendTime' }), clock);
  const r = await log.append(batch('a', 3, 0, { timestamp: 5 }));
  t.is(r.logAppendTimeMs, 1_800_000_000_123);
  const [stored] = log.read(0, 1000).records;
  t.true(checkBatchAt(stored!, 0, { verifyCrc: true, maxBatchBytes: 0 }).ok);
  t.deepEqual(decodeRecordBatch(stored!).records.map((x) => x.timestamp), [1_800_000_000_123, 1_800_000_000_123, 1_800_000_000_123]);
  t.deepEqual(log.offsetForTimestamp(1_800_000_000_000), { offset: 0, timestamp: 1_800_000_000_123, leaderEpoch: 0 });
  await log.close();
});

test('roll by segment.bytes, segment.ms (injected clock) and a full index', async (t) => {
  const clock = new Clock();
  const dir = tempDir();
  const log = await openLog(dir, config({ segmentBytes: 1000, segmentMs: 60_000 }), clock);
  await appendAll(log, [batch('a', 1, 400), batch('b', 1, 400)]);
  t.is(log.segmentBaseOffsets().length, 1);
  await appendAll(log, [batch('c', 1, 400)]); // would pass 1000 bytes
  t.deepEqual(log.segmentBaseOffsets(), [0, 2]);

  clock.now += 60_000;
  await appendAll(log, [batch('d')]);
  t.deepEqual(log.segmentBaseOffsets(), [0, 2], 'exactly segment.ms old: no roll yet');
  clock.now += 1;
  await appendAll(log, [batch('e')]);
  t.deepEqual(log.segmentBaseOffsets(), [0, 2, 4], 'older than segment.ms: rolled');
  clock.now += 10 * 60_000;
  t.deepEqual(log.segmentBaseOffsets(), [0, 2, 4], 'an idle segment does not roll by itself');
  await log.close();

  // Index full: 24 bytes of time index = 2 entries (12 bytes each), one entry per 100 bytes.
  const log2 = await openLog(tempDir(), config({ segmentIndexBytes: 24, indexIntervalBytes: 100 }));
  await appendAll(log2, Array.from({ length: 10 }, (_, i) => batch(`x${i}`, 1, 100)));
  t.true(log2.segmentBaseOffsets().length >= 3, `rolled on a full index: ${log2.segmentBaseOffsets().join(',')}`);
  t.is(readAll(log2).length, 10);
  await log2.close();
});

test('roll when a relative offset would overflow int32', async (t) => {
  const log = await openLog(tempDir(), config());
  // A gzip batch is not opened, so it may claim ~2^31 records: offsets jump accordingly.
  const huge = buildRecordBatch([{ value: 'a' }], { compression: CompressionCodec.GZIP });
  huge.writeInt32BE(2 ** 31 - 2, BatchField.LAST_OFFSET_DELTA);
  huge.writeInt32BE(2 ** 31 - 1, BatchField.RECORD_COUNT);
  updateBatchCrc(huge, 0, huge.length);
  const r1 = await log.append(huge);
  t.is(r1.lastOffset, 2 ** 31 - 2);
  const r2 = await log.append(batch('b')); // relative offset 2^31-1 still fits
  t.is(r2.baseOffset, 2 ** 31 - 1);
  t.deepEqual(log.segmentBaseOffsets(), [0]);
  const r3 = await log.append(batch('c'));
  t.deepEqual(log.segmentBaseOffsets(), [0, 2 ** 31]);
  t.true(log.read(r3.baseOffset, 100).records[0]!.equals(log.read(2 ** 31, 100).records[0]!));
  t.true(log.read(2 ** 30, 100).records[0]!.equals(log.read(0, 100).records[0]!));
  await log.close();
});

test('index lookups across many segments after reopen', async (t) => {
  const dir = tempDir();
  const cfg = config({ segmentBytes: 8192, indexIntervalBytes: 128 });
  const log = await openLog(dir, cfg);
  const stored = await appendAll(log, Array.from({ length: 400 }, (_, i) => batch(`r${i}`, 1 + (i % 3), i % 200)));
  await log.close();
  t.true(fs.statSync(path.join(dir, '00000000000000000000.index')).size > 0, 'sealed segments have index entries');
  const cap = captureLogger();
  const reopened = await openLog(dir, cfg, new Clock(), cap);
  t.false(cap.lines.some((l) => /rebuilding/.test(String(l.msg))), 'consistent indexes are loaded, not rebuilt');
  t.is(reopened.logEndOffset, stored[stored.length - 1]!.lastOffset + 1);
  for (const s of stored) t.true(reopened.read(s.lastOffset, 1).records[0]!.equals(s.bytes));
  await reopened.close();
});

test('concurrent appends keep offsets consecutive', async (t) => {
  const log = await openLog(tempDir(), config({ flushMessages: 1, segmentBytes: 3000 }));
  const results = await Promise.all(Array.from({ length: 100 }, (_, i) => log.append(batch(`c${i}`, 1 + (i % 4)))));
  const sorted = [...results].sort((a, b) => a.baseOffset - b.baseOffset);
  t.is(sorted[0]!.baseOffset, 0);
  for (let i = 1; i < sorted.length; i++) t.is(sorted[i]!.baseOffset, sorted[i - 1]!.lastOffset + 1);
  t.is(log.logEndOffset, sorted[sorted.length - 1]!.lastOffset + 1);
  // Submission order is offset order: appends are serialised in arrival order.
  for (let i = 1; i < results.length; i++) t.true(results[i]!.baseOffset > results[i - 1]!.baseOffset);
  t.is(readAll(log).length, 100);
  await log.close();
});

test('onAppend reports each high watermark move', async (t) => {
  const log = await openLog(tempDir(), config());
  const seen: number[] = [];
  const off = log.onAppend((hw) => seen.push(hw));
  await appendAll(log, [batch('a', 2), batch('b', 3)]);
  off();
  await appendAll(log, [batch('c')]);
  t.deepEqual(seen, [2, 5]);
  await log.close();
});

test('operations on a closed log fail with KAFKA_STORAGE_ERROR', async (t) => {
  const log = await openLog(tempDir(), config());
  await log.close();
  await log.close();
  const e = await t.throwsAsync(log.append(batch('a')));
  t.is((e as KafkaError).code, ErrorCode.KAFKA_STORAGE_ERROR);
  t.is(codeOf(() => log.read(0, 10)), ErrorCode.KAFKA_STORAGE_ERROR);
});

// ---- retention and DeleteRecords ---------------------------------------------------------------------------

test('retention.ms deletes sealed segments by their newest timestamp, never the active one', async (t) => {
  const clock = new Clock();
  const dir = tempDir();
  const log = await openLog(dir, config({ segmentBytes: 600, retentionMs: 10_000, fileDeleteDelayMs: 60_000 }), clock);
  const t0 = clock.now;
  // Two batches per segment; timestamps: segment k holds t0 + k * 1000.
  for (let i = 0; i < 8; i++) await log.append(batch(`t${i}`, 1, 200, { timestamp: t0 + Math.floor(i / 2) * 1000 }));
  t.deepEqual(log.segmentBaseOffsets(), [0, 2, 4, 6]);
  t.deepEqual(log.applyRetention(t0 + 10_000), { segmentsDeleted: 0, bytesDeleted: 0, logStartOffset: 0 });
  const r = log.applyRetention(t0 + 11_500); // segments 0 (t0) and 1 (t0+1000) expired
  t.is(r.segmentsDeleted, 2);
  t.is(r.logStartOffset, 4);
  t.true(r.bytesDeleted > 0);
  t.deepEqual(log.segmentBaseOffsets(), [4, 6]);
  t.true(fs.existsSync(path.join(dir, '00000000000000000000.log.deleted')), 'renamed, removal delayed');
  t.is(codeOf(() => log.read(3, 100)), ErrorCode.OFFSET_OUT_OF_RANGE);
  t.is(log.offsetForTimestamp(-2).offset, 4);
  t.is(log.applyRetention(t0 + 1e9).segmentsDeleted, 1, 'everything expired: the active segment stays');
  t.deepEqual(log.segmentBaseOffsets(), [6]);
  t.is(readAll(log).length, 2);
  await log.close();
  t.deepEqual(fs.readdirSync(dir).filter((n) => n.endsWith('.deleted')), [], 'close removes pending .deleted files');
  const reopened = await openLog(dir, config(), clock);
  t.is(reopened.logStartOffset, 6);
  t.is(reopened.logEndOffset, 8);
  await reopened.close();
});

test('deleted segment files are removed after file.delete.delay.ms', async (t) => {
  const dir = tempDir();
  const log = await openLog(dir, config({ segmentBytes: 300, retentionBytes: 0, fileDeleteDelayMs: 30 }));
  await appendAll(log, [batch('a', 1, 200), batch('b', 1, 200), batch('c', 1, 200)]);
  t.is(log.applyRetention().segmentsDeleted, 2);
  t.is(fs.readdirSync(dir).filter((n) => n.endsWith('.deleted')).length, 6);
  await new Promise((r) => setTimeout(r, 150));
  t.is(fs.readdirSync(dir).filter((n) => n.endsWith('.deleted')).length, 0);
  await log.close();
});

test('retention.bytes deletes oldest segments while the rest stays at or above the limit (Kafka)', async (t) => {
  const log = await openLog(tempDir(), config({ segmentBytes: 1000, retentionBytes: 2500 }));
  const stored = await appendAll(log, Array.from({ length: 12 }, (_, i) => batch(`s${i}`, 1, 400)));
  t.is(log.segmentBaseOffsets().length, 6); // ~480-byte batches: two per segment
  const r = log.applyRetention();
  t.is(r.segmentsDeleted, 3);
  const firstSegmentBytes = 2 * stored[0]!.bytes.length;
  t.true(log.sizeBytes >= 2500, `size ${log.sizeBytes}: deleting never goes below the limit`);
  t.true(log.sizeBytes - firstSegmentBytes < 2500, 'one more deletion would have');
  t.is(r.logStartOffset, log.segmentBaseOffsets()[0]!);
  t.deepEqual(readAll(log), stored.slice(r.logStartOffset).map((s) => s.bytes));
  await log.close();
});

test('deleteRecordsBefore moves the start, deletes whole segments below it and survives reopen', async (t) => {
  const dir = tempDir();
  const cfg = config({ segmentBytes: 1000, fileDeleteDelayMs: 0 });
  const log = await openLog(dir, cfg);
  const stored = await appendAll(log, Array.from({ length: 10 }, (_, i) => batch(`d${i}`, 2, 300)));
  t.is(await log.deleteRecordsBefore(7), 7);
  t.is(log.logStartOffset, 7);
  t.is(log.segmentBaseOffsets()[0], 6, 'the segment holding offset 7 stays');
  t.is(await log.deleteRecordsBefore(3), 7, 'never moves backwards');
  const first = log.read(7, 1).records[0]!;
  t.true(first.equals(stored[3]!.bytes), 'the batch containing the start offset is returned whole');
  const e = await t.throwsAsync(log.deleteRecordsBefore(21));
  t.is((e as KafkaError).code, ErrorCode.OFFSET_OUT_OF_RANGE);
  await log.close();
  t.true(fs.existsSync(path.join(dir, 'log-start-offset.checkpoint')));

  const reopened = await openLog(dir, cfg);
  t.is(reopened.logStartOffset, 7);
  t.is(codeOf(() => reopened.read(6, 100)), ErrorCode.OFFSET_OUT_OF_RANGE);
  t.is(await reopened.deleteRecordsBefore(-1), 20, '-1 means the high watermark');
  const r = await reopened.append(batch('after'));
  t.is(r.baseOffset, 20);
  t.is(r.logStartOffset, 20);
  await reopened.close();
  const again = await openLog(dir, cfg);
  t.is(again.logStartOffset, 20);
  t.is(again.logEndOffset, 21);
  await again.close();
});

// ---- ListOffsets -------------------------------------------------------------------------------------------

test('offsetForTimestamp: exact records, compressed batches, special values, across segments', async (t) => {
  const dir = tempDir();
  const cfg = config({ segmentBytes: 1000, indexIntervalBytes: 100 });
  const log = await openLog(dir, cfg);
  // 40 batches of 5 records; record j of batch i has timestamp 1000 + i * 100 + j * 10.
  for (let i = 0; i < 40; i++) {
    const records = Array.from({ length: 5 }, (_, j) => ({ value: `v${i}.${j}`, timestamp: 1000 + i * 100 + j * 10 }));
    await log.append(buildRecordBatch(records, { compression: i % 4 === 3 ? CompressionCodec.GZIP : CompressionCodec.NONE }));
  }
  t.true(log.segmentBaseOffsets().length > 3);
  const check = async (l: typeof log): Promise<void> => {
    t.deepEqual(l.offsetForTimestamp(0), { offset: 0, timestamp: 1000, leaderEpoch: 0 });
    t.deepEqual(l.offsetForTimestamp(1000 + 5 * 100 + 25), { offset: 5 * 5 + 3, timestamp: 1000 + 5 * 100 + 30, leaderEpoch: 0 });
    // Batch 7 is gzip: its base offset, with the batch's max timestamp.
    t.deepEqual(l.offsetForTimestamp(1000 + 7 * 100 + 15), { offset: 35, timestamp: 1000 + 7 * 100 + 40, leaderEpoch: 0 });
    t.deepEqual(l.offsetForTimestamp(1000 + 39 * 100 + 41), { offset: -1, timestamp: -1, leaderEpoch: -1 });
    t.deepEqual(l.offsetForTimestamp(-1), { offset: 200, timestamp: -1, leaderEpoch: -1 });
    t.deepEqual(l.offsetForTimestamp(-2), { offset: 0, timestamp: -1, leaderEpoch: -1 });
    // The newest batch (39) is gzip: its base offset.
    t.deepEqual(l.offsetForTimestamp(-3), { offset: 195, timestamp: 1000 + 39 * 100 + 40, leaderEpoch: 0 });
    for (let i = 0; i < 40; i += 3) {
      if (i % 4 === 3) continue;
      for (let j = 0; j < 5; j++) t.is(l.offsetForTimestamp(1000 + i * 100 + j * 10).offset, i * 5 + j);
    }
  };
  await check(log);
  await log.close();
  const reopened = await openLog(dir, cfg);
  await check(reopened); // the same answers from loaded (not rebuilt) time indexes
  await reopened.deleteRecordsBefore(12);
  t.is(reopened.offsetForTimestamp(0).offset, 12, 'never below the log start offset');
  await reopened.close();
});

test('offsetForTimestamp with out-of-order timestamps finds the first qualifying record', async (t) => {
  const log = await openLog(tempDir(), config({ indexIntervalBytes: 1 }));
  for (const ts of [500, 100, 900, 300, 700]) await log.append(batch(`t${ts}`, 1, 0, { timestamp: ts }));
  await log.append(buildRecordBatch([300, 950, 100, 950].map((ts) => ({ value: 'm', timestamp: ts }))));
  t.is(log.offsetForTimestamp(200).offset, 0);
  t.is(log.offsetForTimestamp(600).offset, 2);
  t.is(log.offsetForTimestamp(920).offset, 6);
  t.is(log.offsetForTimestamp(951).offset, -1);
  t.deepEqual(log.offsetForTimestamp(-3), { offset: 6, timestamp: 950, leaderEpoch: 0 }, 'the first record with the max');
  await log.close();
});

// ---- durability --------------------------------------------------------------------------------------------

function countSyncs(): { count: () => number; restore: () => void } {
  // A spy (the real fdatasync still runs): counts data syncs issued by the log.
  let calls = 0;
  const original = fs.fdatasync;
  (fs as { fdatasync: typeof fs.fdatasync }).fdatasync = ((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
    calls++;
    original(fd, cb);
  }) as typeof fs.fdatasync;
  return { count: () => calls, restore: () => void ((fs as { fdatasync: typeof fs.fdatasync }).fdatasync = original) };
}

test.serial('flush.messages=1: append resolves after the fsync, and concurrent appends share syncs', async (t) => {
  const spy = countSyncs();
  try {
    const log = await openLog(tempDir(), config({ flushMessages: 1 }));
    const pending = log.append(batch('a', 3));
    t.is(log.logEndOffset, 3, 'written to the OS at once');
    t.is(log.highWatermark, 0, 'not visible before it is synced');
    t.deepEqual(log.read(0, 1000).records, []);
    await pending;
    t.is(spy.count(), 1);
    t.is(log.highWatermark, 3);
    const before = spy.count();
    await Promise.all(Array.from({ length: 50 }, (_, i) => log.append(batch(`g${i}`))));
    const used = spy.count() - before;
    t.true(used >= 1 && used <= 3, `50 concurrent appends used ${used} syncs (group commit)`);
    t.is(log.highWatermark, 53);
    await log.close();
  } finally {
    spy.restore();
  }
});

test.serial('flush.messages=N syncs every N messages; flush.ms syncs idle unsynced data', async (t) => {
  const spy = countSyncs();
  try {
    const log = await openLog(tempDir(), config({ flushMessages: 10, flushMs: -1 }));
    await appendAll(log, [batch('a', 4), batch('b', 4)]);
    t.is(spy.count(), 0);
    t.is(log.highWatermark, 8, 'visible without waiting for a sync');
    await log.append(batch('c', 4)); // 12 >= 10
    t.is(spy.count(), 1);
    await log.close();

    const timed = await openLog(tempDir(), config({ flushMs: 20 }));
    const base = spy.count();
    await timed.append(batch('x'));
    t.is(spy.count(), base);
    await new Promise((r) => setTimeout(r, 120));
    t.is(spy.count(), base + 1, 'one timed sync, then nothing while there is nothing to sync');
    await timed.flush();
    await timed.close();
  } finally {
    spy.restore();
  }
});
