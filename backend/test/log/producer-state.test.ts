// Idempotent producer checks of the partition log (KIP-98 / KIP-360), on real files: duplicates, gaps, epochs,
// sequence wrap-around, multi-batch payloads, expiry and the per-partition cap.
import test from 'ava';
import fc from 'fast-check';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode } from '../../src/protocol/errors.ts';
import { parseBatchHeader } from '../../src/protocol/records/batch.ts';
import { buildRecordBatch } from '../../src/protocol/records/builder.ts';
import type { LogConfig } from '../../src/log/log-config.ts';
import { PartitionLog } from '../../src/log/partition-log.ts';
import type { LogAppendResult } from '../../src/log/partition-log.ts';
import { DEFAULT_PRODUCER_STATE_CONFIG, lastSequenceOf, nextSequence, PRODUCER_BATCHES_RETAINED } from '../../src/log/producer-state.ts';
import type { ProducerStateConfig } from '../../src/log/producer-state.ts';
import { captureLogger, Clock, config, readAll, segmentFiles, tempDir } from './_helpers.ts';
import { codeOf } from '../error-codes.ts';

const INT32_MAX = 2147483647;

/** A batch of `count` records from producer `pid`, epoch `epoch`, first sequence `seq`, created at `timestamp`. */
function pbatch(pid: number, epoch: number, seq: number, count = 1, tag = `p${pid}e${epoch}s${seq}`, timestamp = 1_700_000_000_000): Buffer {
  return buildRecordBatch(
    Array.from({ length: count }, (_, i) => ({ key: `${tag}-${i}`, value: `${tag}-${i}` })),
    { timestamp, producerId: pid, producerEpoch: epoch, baseSequence: seq },
  );
}

async function open(dir: string, cfg: LogConfig = config(), clock = new Clock(), producerState: ProducerStateConfig = DEFAULT_PRODUCER_STATE_CONFIG): Promise<PartitionLog> {
  return PartitionLog.open(dir, cfg, { logger: captureLogger().logger, nowMs: clock.nowMs, producerState });
}

function activeLogBytes(dir: string): number {
  const files = segmentFiles(dir);
  return fs.statSync(path.join(dir, files[files.length - 1]!)).size;
}

test('in-order batches append; a retry of any of the last 5 returns the original offsets and writes nothing', async (t) => {
  const dir = tempDir();
  const log = await open(dir);
  const firsts: LogAppendResult[] = [];
  let seq = 0;
  for (let i = 0; i < 8; i++) {
    const count = 1 + (i % 3);
    const r = await log.append(pbatch(7, 0, seq, count));
    t.false(r.duplicate);
    firsts.push(r);
    seq += count;
  }
  const end = log.logEndOffset;
  const bytes = activeLogBytes(dir);
  // The last 5 batches (i = 3..7) are remembered: each retry is a success with the original offsets.
  seq = 0;
  for (let i = 0; i < 8; i++) {
    const count = 1 + (i % 3);
    if (i >= 8 - PRODUCER_BATCHES_RETAINED) {
      const r = await log.append(pbatch(7, 0, seq, count));
      t.true(r.duplicate, `batch ${i}`);
      t.is(r.baseOffset, firsts[i]!.baseOffset);
      t.is(r.lastOffset, firsts[i]!.lastOffset);
      t.is(r.logAppendTimeMs, -1);
    } else {
      // Older than the last 5: Kafka answers OUT_OF_ORDER_SEQUENCE_NUMBER (no longer DUPLICATE_SEQUENCE_NUMBER).
      t.is(await codeOf(log.append(pbatch(7, 0, seq, count))), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, `batch ${i}`);
    }
    seq += count;
  }
  t.is(log.logEndOffset, end, 'nothing appended by the retries');
  t.is(activeLogBytes(dir), bytes);
  t.is(log.duplicatesTotal, PRODUCER_BATCHES_RETAINED);
  // A retry with the same first sequence but another length is not the same batch.
  t.is(await codeOf(log.append(pbatch(7, 0, seq - 3, 2))), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
  // And the producer continues where it was.
  const next = await log.append(pbatch(7, 0, seq, 1));
  t.is(next.baseOffset, end);
  t.false(next.duplicate);
  await log.close();
});

test('a gap in the sequence is OUT_OF_ORDER_SEQUENCE_NUMBER and leaves the log untouched', async (t) => {
  const dir = tempDir();
  const log = await open(dir);
  await log.append(pbatch(1, 0, 0, 5));
  const bytes = activeLogBytes(dir);
  t.is(await codeOf(log.append(pbatch(1, 0, 6, 1))), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, 'skips sequence 5');
  t.is(await codeOf(log.append(pbatch(1, 0, 4, 2))), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, 'overlaps the last batch');
  t.is(log.logEndOffset, 5);
  t.is(activeLogBytes(dir), bytes);
  t.is((await log.append(pbatch(1, 0, 5, 1))).baseOffset, 5);
  // Producers are independent: another producer's sequence does not matter.
  t.is((await log.append(pbatch(2, 0, 0, 1))).baseOffset, 6);
  await log.close();
});

test('an older epoch is fenced (INVALID_PRODUCER_EPOCH); a newer epoch must start at 0 and resets the producer', async (t) => {
  const log = await open(tempDir());
  const e0 = await log.append(pbatch(3, 0, 0, 2));
  await log.append(pbatch(3, 0, 2, 2));
  t.is(await codeOf(log.append(pbatch(3, 1, 4, 1))), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, 'new epoch not at 0');
  const e1 = await log.append(pbatch(3, 1, 0, 3));
  t.false(e1.duplicate);
  t.is(e1.baseOffset, 4);
  // The old epoch is fenced, even for what would have been a duplicate of it.
  t.is(await codeOf(log.append(pbatch(3, 0, 0, 2))), ErrorCode.INVALID_PRODUCER_EPOCH);
  t.is(await codeOf(log.append(pbatch(3, 0, 4, 1))), ErrorCode.INVALID_PRODUCER_EPOCH);
  // The new epoch's batches are the only ones remembered.
  t.true((await log.append(pbatch(3, 1, 0, 3))).duplicate);
  t.is((await log.append(pbatch(3, 1, 3, 1))).baseOffset, 7);
  t.is(e0.baseOffset, 0);
  t.deepEqual(log.producerStates(), [
    { producerId: 3, producerEpoch: 1, lastSequence: 3, lastTimestamp: 1_700_000_000_000, coordinatorEpoch: -1, currentTxnStartOffset: -1 },
  ]);
  await log.close();
});

test('the same sequence range in a new epoch is a new batch, and in an old epoch is fenced, not a duplicate', async (t) => {
  const log = await open(tempDir());
  await log.append(pbatch(4, 0, 0, 2));
  const bumped = await log.append(pbatch(4, 1, 0, 2));
  t.false(bumped.duplicate);
  t.is(bumped.baseOffset, 2);
  t.is(await codeOf(log.append(pbatch(4, 0, 0, 2))), ErrorCode.INVALID_PRODUCER_EPOCH);
  t.is(log.logEndOffset, 4);
  await log.close();
});

test('sequences wrap from 2^31-1 to 0, also inside one batch', async (t) => {
  t.is(nextSequence(INT32_MAX), 0);
  t.is(lastSequenceOf(INT32_MAX - 1, 3), 1);
  const log = await open(tempDir());
  // An unknown producer may start anywhere (KIP-360), here just below the wrap.
  await log.append(pbatch(9, 0, INT32_MAX - 2, 3)); // INT32_MAX-2 .. INT32_MAX
  t.is(await codeOf(log.append(pbatch(9, 0, INT32_MAX, 1))), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
  const wrapped = await log.append(pbatch(9, 0, 0, 2)); // 0 .. 1
  t.is(wrapped.baseOffset, 3);
  t.true((await log.append(pbatch(9, 0, INT32_MAX - 2, 3))).duplicate, 'retry from before the wrap');
  // A batch spanning the wrap: producer 10 at INT32_MAX-1 with 4 records ends at sequence 1.
  await log.append(pbatch(10, 0, INT32_MAX - 1, 4));
  t.is(log.producerStates().find((p) => p.producerId === 10)!.lastSequence, 1);
  const dup = await log.append(pbatch(10, 0, INT32_MAX - 1, 4));
  t.true(dup.duplicate);
  t.is(dup.baseOffset, 5);
  t.is((await log.append(pbatch(10, 0, 2, 1))).baseOffset, 9);
  await log.close();
});

test('an unknown producer is accepted at any sequence (modern Kafka), then held to it', async (t) => {
  const log = await open(tempDir());
  t.is((await log.append(pbatch(42, 5, 1000, 2))).baseOffset, 0);
  t.is(await codeOf(log.append(pbatch(42, 5, 1003, 1))), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
  t.is((await log.append(pbatch(42, 5, 1002, 1))).baseOffset, 2);
  await log.close();
});

test('bad producer fields and non-idempotent batches', async (t) => {
  const log = await open(tempDir());
  t.is(await codeOf(log.append(pbatch(5, 0, -1, 1))), ErrorCode.INVALID_RECORD, 'producer id with no sequence');
  t.is(await codeOf(log.append(pbatch(5, -1, 0, 1))), ErrorCode.INVALID_RECORD, 'producer id with no epoch');
  t.is(log.logEndOffset, 0);
  // Batches without a producer id are never checked, even identical ones.
  const plain = buildRecordBatch([{ value: 'x' }], { timestamp: 1 });
  t.is((await log.append(Buffer.from(plain))).baseOffset, 0);
  t.is((await log.append(Buffer.from(plain))).baseOffset, 1);
  t.deepEqual(log.producerStates(), []);
  await log.close();
});

test('multi-batch payloads: checked in order; a full retry is a duplicate; a partial retry is refused', async (t) => {
  const dir = tempDir();
  const log = await open(dir);
  const two = () => Buffer.concat([pbatch(1, 0, 0, 2), pbatch(1, 0, 2, 3)]);
  const r = await log.append(two());
  t.deepEqual([r.baseOffset, r.lastOffset, r.duplicate], [0, 4, false]);
  const again = await log.append(two());
  t.deepEqual([again.baseOffset, again.lastOffset, again.duplicate], [0, 4, true]);
  // A duplicate followed by a new batch, or in the middle: OUT_OF_ORDER, nothing written.
  const bytes = activeLogBytes(dir);
  t.is(await codeOf(log.append(Buffer.concat([pbatch(1, 0, 2, 3), pbatch(1, 0, 5, 1)]))), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
  t.is(await codeOf(log.append(Buffer.concat([pbatch(2, 0, 0, 1), pbatch(1, 0, 2, 3)]))), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
  // Within one payload the second batch must follow the first; a repeated batch inside one payload is a gap.
  t.is(await codeOf(log.append(Buffer.concat([pbatch(1, 0, 5, 1), pbatch(1, 0, 5, 1)]))), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
  t.is(await codeOf(log.append(Buffer.concat([pbatch(1, 0, 5, 1), pbatch(1, 0, 7, 1)]))), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
  t.is(activeLogBytes(dir), bytes);
  t.deepEqual(log.producerStates().map((p) => p.producerId), [1], 'refused payloads left no state behind');
  // Two producers and an epoch bump in one payload.
  const mixed = await log.append(Buffer.concat([pbatch(1, 0, 5, 1), pbatch(2, 0, 0, 1), pbatch(1, 1, 0, 1)]));
  t.deepEqual([mixed.baseOffset, mixed.lastOffset, mixed.duplicate], [5, 7, false]);
  t.is(log.producerStates().find((p) => p.producerId === 1)!.producerEpoch, 1);
  await log.close();
});

test('LogAppendTime: a duplicate reports the original append time', async (t) => {
  const clock = new Clock();
  const log = await open(tempDir(), config({ messageTimestampType: 'LogAppendTime' }), clock);
  const first = await log.append(pbatch(1, 0, 0, 1));
  t.is(first.logAppendTimeMs, clock.now);
  clock.now += 5000;
  const dup = await log.append(pbatch(1, 0, 0, 1));
  t.true(dup.duplicate);
  t.is(dup.logAppendTimeMs, first.logAppendTimeMs);
  await log.close();
});

test('flush.messages=1: a duplicate is acknowledged only once its original is synced', async (t) => {
  const log = await open(tempDir(), config({ flushMessages: 1 }));
  const original = log.append(pbatch(1, 0, 0, 1));
  const retry = log.append(pbatch(1, 0, 0, 1));
  const [a, b] = await Promise.all([original, retry]);
  t.is(b.baseOffset, a.baseOffset);
  t.true(b.duplicate);
  t.true(log.highWatermark > b.lastOffset, 'the original is visible (synced) when the retry is answered');
  await log.close();
});

test('producer.id.expiration.ms forgets producers whose last batch is that old; afterwards any sequence is accepted', async (t) => {
  const clock = new Clock();
  const at = (pid: number, seq: number) => pbatch(pid, 0, seq, 1, undefined, clock.now);
  const ps = { producerIdExpirationMs: 10_000, producerIdExpirationCheckIntervalMs: 1000, producerStatesPerPartitionMax: 100 };
  const { logger, lines } = captureLogger();
  const log = await PartitionLog.open(tempDir(), config(), { logger, nowMs: clock.nowMs, producerState: ps });
  await log.append(at(1, 0));
  clock.now += 6000;
  await log.append(at(2, 0));
  clock.now += 5000; // producer 1's last batch is 11 s old, producer 2's 5 s
  t.is(log.applyRetention().segmentsDeleted, 0);
  t.deepEqual(log.producerStates().map((p) => p.producerId), [2]);
  t.true(lines.some((l) => l.msg === 'expired idle producer ids' && l.expired === 1));
  // Producer 1 is unknown now: a gap is accepted, and so is (as in Kafka) a retry of its old batch.
  t.false((await log.append(pbatch(1, 0, 0, 1, undefined, clock.now - 11_000))).duplicate);
  t.is(await codeOf(log.append(at(2, 5))), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, 'producer 2 is still known');
  // Expiry also runs from appends, at most once per check interval.
  clock.now += 10_500;
  await log.append(at(3, 0));
  t.deepEqual(log.producerStates().map((p) => p.producerId), [3]);
  await log.close();
});

test('expiry counts from the batch timestamp (Kafka\'s lastTimestamp), not from when the broker appended it', async (t) => {
  const clock = new Clock();
  const ps = { producerIdExpirationMs: 10_000, producerIdExpirationCheckIntervalMs: 1000, producerStatesPerPartitionMax: 100 };
  const log = await PartitionLog.open(tempDir(), config(), { logger: captureLogger().logger, nowMs: clock.nowMs, producerState: ps });
  // A producer whose clock is 8 s behind: its state lives 2 s of broker time; one 8 s ahead lives 18 s.
  await log.append(pbatch(1, 0, 0, 1, undefined, clock.now - 8000));
  await log.append(pbatch(2, 0, 0, 1, undefined, clock.now + 8000));
  clock.now += 2000;
  t.deepEqual(log.producerStates().map((p) => p.producerId), [2]);
  clock.now += 15_999;
  t.deepEqual(log.producerStates().map((p) => p.producerId), [2]);
  clock.now += 1;
  t.deepEqual(log.producerStates(), []);
  await log.close();
});

test('with producerNowMs, expiry follows that clock alone, also in sweeps (cluster mode: the command clock)', async (t) => {
  const wall = new Clock();
  const commands = new Clock();
  const ps = { producerIdExpirationMs: 10_000, producerIdExpirationCheckIntervalMs: 1, producerStatesPerPartitionMax: 100 };
  const log = await PartitionLog.open(tempDir(), config(), { logger: captureLogger().logger, nowMs: wall.nowMs, producerNowMs: commands.nowMs, producerState: ps });
  await log.append(pbatch(1, 0, 0, 2, undefined, commands.now));
  // The wall clock runs far ahead (a sweep from retention uses it for segments, not for producers).
  wall.now += 3_600_000;
  log.applyRetention();
  commands.now += 9_999;
  t.true((await log.append(pbatch(1, 0, 0, 2, undefined, commands.now - 9_999))).duplicate, 'still known on the command clock');
  commands.now += 1;
  log.applyRetention();
  t.deepEqual(log.producerStates(), []);
  await log.close();
});

test('an expired producer counts as unknown at once, whenever the memory sweep runs', async (t) => {
  const clock = new Clock();
  const ps = { producerIdExpirationMs: 10_000, producerIdExpirationCheckIntervalMs: 24 * 3600 * 1000, producerStatesPerPartitionMax: 100 };
  const log = await PartitionLog.open(tempDir(), config(), { logger: captureLogger().logger, nowMs: clock.nowMs, producerState: ps });
  const t0 = clock.now;
  await log.append(pbatch(1, 0, 0, 2, undefined, t0));
  clock.now += 9_999;
  t.true((await log.append(pbatch(1, 0, 0, 2, undefined, t0))).duplicate, 'still known 1 ms before expiry');
  t.is(await codeOf(log.append(pbatch(1, 0, 7, 1, undefined, clock.now))), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
  clock.now += 1;
  t.deepEqual(log.producerStates(), [], 'expired, though no sweep ran');
  const gap = await log.append(pbatch(1, 0, 7, 1, undefined, clock.now));
  t.false(gap.duplicate, 'any sequence is accepted from an unknown producer');
  // Its new entry starts fresh: the batch from before the expiry is not remembered any more.
  t.is(await codeOf(log.append(pbatch(1, 0, 0, 2, undefined, t0))), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
  t.true((await log.append(pbatch(1, 0, 7, 1, undefined, clock.now))).duplicate);
  await log.close();
});

test('producerStatesPerPartitionMax evicts the producer whose last append is oldest', async (t) => {
  const ps = { ...DEFAULT_PRODUCER_STATE_CONFIG, producerStatesPerPartitionMax: 3 };
  const log = await open(tempDir(), config(), new Clock(), ps);
  for (const pid of [1, 2, 3]) await log.append(pbatch(pid, 0, 0, 1));
  await log.append(pbatch(1, 0, 1, 1)); // 1 is now the most recent
  await log.append(pbatch(4, 0, 0, 1)); // evicts 2
  t.deepEqual(log.producerStates().map((p) => p.producerId), [3, 1, 4]);
  t.true((await log.append(pbatch(1, 0, 1, 1))).duplicate);
  t.false((await log.append(pbatch(2, 0, 0, 1))).duplicate, 'evicted: its retry is not recognised');
  t.deepEqual(log.producerStates().map((p) => p.producerId), [1, 4, 2]);
  await log.close();
});

// A producer with up to 5 requests in flight whose responses are lost at random: it retries everything
// in flight, in order (as librdkafka and the Java client do). Whatever happens, each batch is in the log once
// and in sequence order, and every retry is answered with the offsets of the first append.
test('random response loss and retries: every batch stored exactly once, in order', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(fc.integer({ min: 1, max: 5 }), fc.boolean(), fc.integer({ min: 1, max: 4 })), { minLength: 5, maxLength: 40 }), async (steps) => {
      const dir = tempDir();
      const log = await open(dir, config({ segmentBytes: 2000 }));
      const offsets = new Map<number, number>(); // first sequence -> base offset of its first append
      let seq = 0;
      let inFlight: Array<{ seq: number; count: number }> = [];
      for (const [send, lose, count] of steps) {
        for (let i = 0; i < send && inFlight.length < 5; i++) {
          inFlight.push({ seq, count });
          seq += count;
        }
        for (const b of inFlight) {
          const r = await log.append(pbatch(1, 0, b.seq, b.count, `s${b.seq}`));
          const known = offsets.get(b.seq);
          if (known === undefined) offsets.set(b.seq, r.baseOffset);
          else if (r.baseOffset !== known || !r.duplicate) throw new Error(`retry of ${b.seq} answered ${r.baseOffset}, first ${known}`);
        }
        if (!lose) inFlight = []; // responses arrived; otherwise all of them are retried next round
      }
      const stored = readAll(log).map((b) => parseBatchHeader(b));
      const sequences = stored.map((h) => h.baseSequence);
      if (JSON.stringify(sequences) !== JSON.stringify([...offsets.keys()])) throw new Error(`log holds ${sequences}`);
      if (stored.some((h, i) => h.baseOffset !== offsets.get(sequences[i]!))) throw new Error('offsets differ');
      await log.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }),
    { numRuns: 30 },
  );
  t.pass();
});
