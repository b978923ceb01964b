// PartitionLog additions for cluster mode: truncateTo (recovery to a replicated state machine's recorded
// point) and durableElsewhere (the Raft log is the durable record, so appends never wait for an fsync).
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { PartitionLog } from '../../src/log/partition-log.ts';
import { decodeRecordBatch } from '../../src/protocol/records/builder.ts';
import { appendAll, batch, captureLogger, Clock, config, tempDir } from './_helpers.ts';

async function open(dir: string, overrides = {}, durableElsewhere = false, clock = new Clock()): Promise<PartitionLog> {
  return PartitionLog.open(dir, config({ segmentBytes: 1024, ...overrides }), { logger: captureLogger().logger, nowMs: clock.nowMs, durableElsewhere });
}

function keys(log: PartitionLog): string[] {
  const out: string[] = [];
  for (const b of log.read(log.logStartOffset, 1 << 30).records) for (const r of decodeRecordBatch(b).records) out.push(`${r.offset}:${r.key}`);
  return out;
}

test('truncateTo cuts inside a sealed segment, drops later segments, and the log continues from the cut', async (t) => {
  const dir = tempDir();
  const log = await open(dir);
  await appendAll(log, Array.from({ length: 30 }, (_, i) => batch(`b${i}`, 2, 50)));
  const bases = log.segmentBaseOffsets();
  t.true(bases.length >= 4, `${bases.length} segments`);
  const cut = bases[1]! + 4; // inside the second segment, on a batch boundary (2 records per batch)
  await log.truncateTo(cut);
  t.is(log.logEndOffset, cut);
  t.is(log.highWatermark, cut);
  t.deepEqual(log.segmentBaseOffsets(), bases.slice(0, 2));
  t.is(keys(log).length, cut);
  const r = await log.append(batch('next', 2, 50));
  t.is(r.baseOffset, cut);
  t.deepEqual(keys(log).slice(-2), [`${cut}:next-0`, `${cut + 1}:next-1`]);
  await log.close();
  // The files agree after a reopen: the truncation is on disk.
  const again = await open(dir);
  t.is(again.logEndOffset, cut + 2);
  t.deepEqual(keys(again).slice(-2), [`${cut}:next-0`, `${cut + 1}:next-1`]);
  await again.close();
});

test('truncateTo at a segment boundary, to 0, and past the end', async (t) => {
  const log = await open(tempDir());
  await appendAll(log, Array.from({ length: 30 }, (_, i) => batch(`b${i}`, 1, 50)));
  const end = log.logEndOffset;
  await log.truncateTo(end + 5);
  t.is(log.logEndOffset, end, 'a log already shorter is left alone');
  const bases = log.segmentBaseOffsets();
  await log.truncateTo(bases[2]!);
  t.is(log.logEndOffset, bases[2]);
  t.deepEqual(log.segmentBaseOffsets(), bases.slice(0, 2));
  await log.truncateTo(0);
  t.is(log.logEndOffset, 0);
  t.deepEqual(keys(log), []);
  t.is((await log.append(batch('again', 1))).baseOffset, 0);
  await log.close();
});

test('truncateTo below a moved log start restarts the log empty at the cut', async (t) => {
  const dir = tempDir();
  const log = await open(dir, { fileDeleteDelayMs: 0 });
  await appendAll(log, Array.from({ length: 30 }, (_, i) => batch(`b${i}`, 1, 50)));
  await log.deleteRecordsBefore(25);
  const firstBase = log.segmentBaseOffsets()[0]!;
  t.true(firstBase > 10, 'old segments are gone');
  await log.truncateTo(10);
  t.is(log.logStartOffset, 10);
  t.is(log.logEndOffset, 10);
  t.is((await log.append(batch('x', 1))).baseOffset, 10);
  await log.close();
  const again = await open(dir);
  t.is(again.logStartOffset, 10);
  t.is(again.logEndOffset, 11);
  await again.close();
});

test('truncateTo refuses an offset inside a batch', async (t) => {
  const log = await open(tempDir());
  await appendAll(log, [batch('a', 3), batch('b', 3)]);
  await t.throwsAsync(log.truncateTo(4), { message: /not a batch boundary/ });
});

test('truncateTo drops producer state of the removed batches', async (t) => {
  const log = await open(tempDir());
  const producer = (seq: number) => batch(`p${seq}`, 1, 10, { producerId: 7, producerEpoch: 0, baseSequence: seq });
  await appendAll(log, [producer(0), producer(1), producer(2)]);
  await log.truncateTo(2);
  // Sequence 2 is no longer in the log: it is appended again, not answered as a duplicate.
  const r = await log.append(producer(2));
  t.false(r.duplicate);
  t.is(r.baseOffset, 2);
  // Sequence 1 still is.
  t.true((await log.append(producer(1))).duplicate);
  await log.close();
});

test('durableElsewhere: appends never wait for an fsync and are visible at once, even with flush.messages=1', async (t) => {
  const clock = new Clock();
  const dir = tempDir();
  const log = await open(dir, { flushMessages: 1, flushMs: -1 }, true, clock);
  const r = await log.append(batch('a', 2));
  t.is(log.highWatermark, r.lastOffset + 1, 'visible before any fsync');
  t.is(keys(log).length, 2);
  await log.flush();
  await log.close();
  t.true(fs.statSync(path.join(dir, '00000000000000000000.log')).size > 0);
  // Single-node mode keeps its rule: with flush.messages=1 the high watermark is the synced end.
  const plain = await open(tempDir(), { flushMessages: 1, flushMs: -1 }, false, clock);
  const p = await plain.append(batch('b', 2));
  t.is(plain.highWatermark, p.lastOffset + 1);
  await plain.close();
});
