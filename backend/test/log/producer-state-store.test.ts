// Producer state across restarts: snapshots at roll and clean close, rebuild from the log after kill -9 and
// torn tails, corrupt or stale snapshots, snapshot retention, and the snapshot codec itself.
import test from 'ava';
import fc from 'fast-check';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { ErrorCode } from '../../src/protocol/errors.ts';
import { buildRecordBatch } from '../../src/protocol/records/builder.ts';
import type { LogConfig } from '../../src/log/log-config.ts';
import { PartitionLog } from '../../src/log/partition-log.ts';
import { decodeProducerSnapshot, encodeProducerSnapshot, DEFAULT_PRODUCER_STATE_CONFIG } from '../../src/log/producer-state.ts';
import type { ProducerEntry, ProducerStateConfig } from '../../src/log/producer-state.ts';
import { listSnapshotOffsets, snapshotFileName, SNAPSHOTS_RETAINED } from '../../src/log/producer-state-store.ts';
import { captureLogger, Clock, config, segmentFiles, tempDir } from './_helpers.ts';
import type { CapturedLogger } from './_helpers.ts';
import { codeOf } from '../error-codes.ts';

const PARTITION_LOG_MODULE = fileURLToPath(new URL('../../src/log/partition-log.ts', import.meta.url));
const BUILDER_MODULE = fileURLToPath(new URL('../../src/protocol/records/builder.ts', import.meta.url));

function pbatch(pid: number, epoch: number, seq: number, count = 1, timestamp = 1_700_000_000_000): Buffer {
  return buildRecordBatch(
    Array.from({ length: count }, (_, i) => ({ key: `p${pid}-${seq + i}`, value: `v${seq + i}` })),
    { timestamp, producerId: pid, producerEpoch: epoch, baseSequence: seq },
  );
}

async function open(dir: string, cfg: LogConfig, captured: CapturedLogger = captureLogger(), clock = new Clock(), ps: ProducerStateConfig = DEFAULT_PRODUCER_STATE_CONFIG): Promise<PartitionLog> {
  return PartitionLog.open(dir, cfg, { logger: captured.logger, nowMs: clock.nowMs, producerState: ps });
}

/** The 'producer state loaded' line of an open: where the state came from and how much was scanned. */
function loadLine(captured: CapturedLogger): Record<string, unknown> {
  const line = captured.lines.find((l) => l.msg === 'producer state loaded');
  if (!line) throw new Error('no producer state loaded line');
  return line;
}

/** Appends `n` batches of 2 records from producer `pid` starting at sequence 0; returns their base offsets. */
async function appendRun(log: PartitionLog, pid: number, n: number, firstSeq = 0): Promise<number[]> {
  const offsets: number[] = [];
  for (let i = 0; i < n; i++) offsets.push((await log.append(pbatch(pid, 0, firstSeq + 2 * i, 2))).baseOffset);
  return offsets;
}

/** Retries of the last 5 batches of appendRun(pid, n) must all be duplicates answered with `offsets`. */
async function assertLastFiveAreDuplicates(t: import('ava').ExecutionContext, log: PartitionLog, pid: number, offsets: number[], firstSeq = 0): Promise<void> {
  const end = log.logEndOffset;
  for (let i = Math.max(0, offsets.length - 5); i < offsets.length; i++) {
    const r = await log.append(pbatch(pid, 0, firstSeq + 2 * i, 2));
    t.true(r.duplicate, `producer ${pid} batch ${i}`);
    t.is(r.baseOffset, offsets[i]!, `producer ${pid} batch ${i}`);
  }
  t.is(log.logEndOffset, end);
}

test('clean close snapshots at the log end; reopen loads it without scanning and remembers all 5 batches', async (t) => {
  const dir = tempDir();
  const log = await open(dir, config());
  const a = await appendRun(log, 1, 7);
  const b = await appendRun(log, 2, 3);
  await log.close();
  t.deepEqual(listSnapshotOffsets(dir), [log.logEndOffset]);
  const captured = captureLogger();
  const reopened = await open(dir, config(), captured);
  t.like(loadLine(captured), { snapshotOffset: 20, scannedFrom: 20, batchesReplayed: 0, producers: 2 });
  await assertLastFiveAreDuplicates(t, reopened, 1, a);
  await assertLastFiveAreDuplicates(t, reopened, 2, b);
  t.is(await codeOf(reopened.append(pbatch(1, 0, 0, 2))), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, 'older than the last 5');
  t.is((await reopened.append(pbatch(1, 0, 14, 1))).baseOffset, 20);
  await reopened.close();
});

test('a segment roll snapshots the state; without a clean close the tail after it is scanned', async (t) => {
  const dir = tempDir();
  const cfg = config({ segmentBytes: 300 });
  const log = await open(dir, cfg);
  const offsets = await appendRun(log, 1, 12);
  t.true(log.segmentBaseOffsets().length > 3);
  const snapshots = listSnapshotOffsets(dir);
  t.is(snapshots.length, SNAPSHOTS_RETAINED, 'older snapshots are deleted');
  t.is(snapshots[snapshots.length - 1], log.segmentBaseOffsets().at(-1)!, 'the newest snapshot is at the active segment base');
  // No close: as after kill -9 (every append reached the OS before it returned).
  const captured = captureLogger();
  const reopened = await open(dir, cfg, captured);
  const line = loadLine(captured);
  t.is(line.snapshotOffset, log.segmentBaseOffsets().at(-1));
  t.true((line.batchesReplayed as number) >= 1);
  await assertLastFiveAreDuplicates(t, reopened, 1, offsets);
  await reopened.close();
});

test('kill -9 while appending: the reopened log knows every acknowledged batch of every producer', async (t) => {
  const dir = tempDir();
  // The child appends for two producers, 5 requests in flight each, prints each acknowledgement, and SIGKILLs
  // itself in the middle of a round (segments of 5000 bytes: several rolls, so snapshot plus scan).
  const script = `
    const { PartitionLog } = await import(${JSON.stringify(PARTITION_LOG_MODULE)});
    const { buildRecordBatch } = await import(${JSON.stringify(BUILDER_MODULE)});
    const { pino } = await import('pino');
    const log = await PartitionLog.open(${JSON.stringify(dir)}, { ...${JSON.stringify(config({ segmentBytes: 5000 }))} }, { logger: pino({ level: 'silent' }), nowMs: Date.now });
    const seq = [0, 0];
    for (let round = 0; ; round++) {
      const inFlight = [];
      for (let i = 0; i < 10; i++) {
        if (round === 30 && i === 4) process.kill(process.pid, 'SIGKILL'); // 2 appends per producer in the log, unacknowledged
        const pid = i % 2;
        const s = seq[pid]; seq[pid] += 3;
        const batch = buildRecordBatch([0, 1, 2].map((k) => ({ value: 'r' + (s + k) + 'x'.repeat(40) })), { producerId: pid, producerEpoch: 0, baseSequence: s });
        inFlight.push(log.append(batch).then((r) => process.stdout.write('acked ' + pid + ' ' + s + ' ' + r.baseOffset + '\\n')));
      }
      await Promise.all(inFlight);
    }`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const signal = await new Promise<string | null>((ok) => child.on('exit', (_code, sig) => ok(sig)));
  t.is(signal, 'SIGKILL', err);
  const acked = out.trim().split('\n').map((l) => l.split(' ').slice(1).map(Number) as [number, number, number]);
  t.true(acked.length >= 300, `${acked.length} acknowledgements`);

  const captured = captureLogger();
  const log = await open(dir, config({ segmentBytes: 5000 }), captured);
  t.true((loadLine(captured).batchesReplayed as number) > 0);
  const states = new Map(log.producerStates().map((p) => [p.producerId, p]));
  for (const pid of [0, 1]) {
    const mine = acked.filter(([p]) => p === pid);
    const [, lastSeq] = mine[mine.length - 1]!;
    // Appends that reached the log but whose acknowledgement was not printed yet may be there too.
    t.true(states.get(pid)!.lastSequence >= lastSeq + 2, `producer ${pid}`);
    // The last acknowledged batches are recognised as retries with their original offsets.
    const lastSeqInLog = states.get(pid)!.lastSequence;
    let checked = 0;
    for (const [, s, offset] of mine.slice(-5)) {
      if (lastSeqInLog - (s + 2) >= 5 * 3) continue; // pushed out of the last 5 by unacknowledged later batches
      const r = await log.append(pbatch(pid, 0, s, 3));
      t.true(r.duplicate, `producer ${pid} sequence ${s}`);
      t.is(r.baseOffset, offset);
      checked++;
    }
    t.true(checked >= 3, `producer ${pid}: ${checked} acknowledged batches checked`);
    t.is((await log.append(pbatch(pid, 0, lastSeqInLog + 1, 1))).duplicate, false, 'the producer continues after its last stored batch');
  }
  await log.close();
});

test('a torn tail is cut before the rebuild: the lost batch is appended again, not taken for a duplicate', async (t) => {
  const dir = tempDir();
  const log = await open(dir, config());
  const first = await appendRun(log, 1, 3);
  await log.close(); // snapshot at 6
  const again = await open(dir, config());
  const more = await appendRun(again, 1, 3, 6); // sequences 6..11 at offsets 6..11
  // Crash (no close) and a torn last batch: its last 10 bytes never reached the disk.
  const files = segmentFiles(dir);
  const active = path.join(dir, files[files.length - 1]!);
  fs.truncateSync(active, fs.statSync(active).size - 10);
  const captured = captureLogger();
  const reopened = await open(dir, config(), captured);
  t.is(reopened.logEndOffset, 10);
  t.like(loadLine(captured), { snapshotOffset: 6, scannedFrom: 6, batchesReplayed: 2 });
  t.true((await reopened.append(pbatch(1, 0, 8, 2))).duplicate, 'sequence 8 survived');
  t.is((await reopened.append(pbatch(1, 0, 8, 2))).baseOffset, more[1]!);
  const lost = await reopened.append(pbatch(1, 0, 10, 2));
  t.false(lost.duplicate, 'the torn batch is gone, so its retry is appended');
  t.is(lost.baseOffset, 10);
  t.true((await reopened.append(pbatch(1, 0, 2, 2))).duplicate);
  t.is(first.length, 3);
  await reopened.close();
});

test('a snapshot above the recovered log end is deleted and never used', async (t) => {
  const dir = tempDir();
  const log = await open(dir, config());
  await appendRun(log, 1, 4);
  await log.close(); // snapshot at 8
  // The disk lost synced data (only then can the log end fall below a snapshot): the last batch is gone.
  const files = segmentFiles(dir);
  const active = path.join(dir, files[files.length - 1]!);
  fs.truncateSync(active, fs.statSync(active).size - 5);
  const captured = captureLogger();
  const reopened = await open(dir, config(), captured);
  t.is(reopened.logEndOffset, 6);
  t.true(captured.lines.some((l) => l.msg === 'deleting producer snapshot beyond the end of the log'));
  t.deepEqual(listSnapshotOffsets(dir), []);
  t.like(loadLine(captured), { snapshotOffset: null, scannedFrom: 0, batchesReplayed: 3 });
  t.false((await reopened.append(pbatch(1, 0, 6, 2))).duplicate, 'the lost batch is appended again');
  await reopened.close();
});

test('a corrupt snapshot is deleted and the state rebuilt from the oldest segment', async (t) => {
  const dir = tempDir();
  const cfg = config({ segmentBytes: 600 });
  const log = await open(dir, cfg);
  const offsets = await appendRun(log, 1, 9);
  await log.close();
  for (const offset of listSnapshotOffsets(dir)) {
    const file = path.join(dir, snapshotFileName(offset));
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 3] ^= 0x40; // bit rot in every snapshot
    fs.writeFileSync(file, bytes);
  }
  const captured = captureLogger();
  const reopened = await open(dir, cfg, captured);
  t.is(captured.lines.filter((l) => l.msg === 'deleting unreadable producer snapshot; rebuilding producer state from the log').length, SNAPSHOTS_RETAINED);
  t.like(loadLine(captured), { snapshotOffset: null, scannedFrom: 0, batchesReplayed: 9 });
  await assertLastFiveAreDuplicates(t, reopened, 1, offsets);
  await reopened.close();
  t.deepEqual(listSnapshotOffsets(dir), [reopened.logEndOffset], 'a good snapshot again after the clean close');
});

test('producer state outlives the segments retention deleted (KIP-360), also across a reopen', async (t) => {
  const dir = tempDir();
  const cfg = config({ segmentBytes: 600, retentionBytes: 1, fileDeleteDelayMs: 0 });
  const log = await open(dir, cfg);
  const offsets = await appendRun(log, 1, 9);
  log.applyRetention();
  t.is(log.segmentBaseOffsets().length, 1, 'only the active segment is left');
  t.is(log.producerStates().length, 1);
  await assertLastFiveAreDuplicates(t, log, 1, offsets);
  await log.close();
  const reopened = await open(dir, cfg);
  await assertLastFiveAreDuplicates(t, reopened, 1, offsets);
  await reopened.close();
});

test('last batch timestamps are kept in the snapshot: a producer idle past expiry is gone after reopen', async (t) => {
  const dir = tempDir();
  const clock = new Clock();
  const ps = { ...DEFAULT_PRODUCER_STATE_CONFIG, producerIdExpirationMs: 60_000 };
  const log = await open(dir, config(), captureLogger(), clock, ps);
  await log.append(pbatch(1, 0, 0, 2, clock.now));
  clock.now += 30_000;
  await log.append(pbatch(2, 0, 0, 2, clock.now));
  await log.close();
  clock.now += 40_000; // producer 1 idle 70 s, producer 2 idle 40 s
  const reopened = await open(dir, config(), captureLogger(), clock, ps);
  t.deepEqual(reopened.producerStates().map((p) => p.producerId), [2]);
  await reopened.close();
});

test('after a crash, the state rebuilt from the log expires exactly when the lost one would have', async (t) => {
  const dir = tempDir();
  const clock = new Clock();
  const ps = { ...DEFAULT_PRODUCER_STATE_CONFIG, producerIdExpirationMs: 60_000 };
  const log = await open(dir, config(), captureLogger(), clock, ps);
  const t0 = clock.now;
  const offsets: number[] = [];
  for (let i = 0; i < 2; i++) offsets.push((await log.append(pbatch(1, 0, 2 * i, 2, t0))).baseOffset);
  clock.now += 50_000;
  // No close, no snapshot: the state comes from the log alone, with the batches' own timestamps.
  const reopened = await open(dir, config(), captureLogger(), clock, ps);
  clock.now += 9_999; // 59.999 s after the batches
  for (let i = 0; i < 2; i++) {
    const r = await reopened.append(pbatch(1, 0, 2 * i, 2, t0));
    t.true(r.duplicate, `batch ${i}`);
    t.is(r.baseOffset, offsets[i]!);
  }
  clock.now += 1;
  t.deepEqual(reopened.producerStates(), []);
  await reopened.close();
});

test('truncateTo rebuilds the producer state: batches cut off are no longer duplicates', async (t) => {
  const dir = tempDir();
  const cfg = config({ segmentBytes: 300 });
  const log = await open(dir, cfg);
  const offsets = await appendRun(log, 1, 10);
  t.true(listSnapshotOffsets(dir).some((o) => o > offsets[6]!), 'a snapshot beyond the cut exists');
  await log.truncateTo(offsets[6]!);
  t.true(listSnapshotOffsets(dir).every((o) => o <= offsets[6]!), 'snapshots beyond the new end are gone');
  t.deepEqual(log.producerStates().map((p) => p.lastSequence), [11]);
  await assertLastFiveAreDuplicates(t, log, 1, offsets.slice(0, 6));
  const again = await log.append(pbatch(1, 0, 12, 2));
  t.false(again.duplicate, 'the cut batch is appended again');
  t.is(again.baseOffset, offsets[6]!);
  await log.close();
});

// ---- codec ------------------------------------------------------------------------------------------------

const entryArb: fc.Arbitrary<ProducerEntry> = fc.record({
  producerId: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  epoch: fc.integer({ min: 0, max: 32767 }),
  lastTimestampMs: fc.integer({ min: 0, max: 2 ** 50 }),
  batches: fc.array(
    fc.record({
      firstSeq: fc.integer({ min: 0, max: 2147483647 }),
      lastSeq: fc.integer({ min: 0, max: 2147483647 }),
      firstOffset: fc.integer({ min: 0, max: 2 ** 40 }),
      lastOffset: fc.constant(0),
      timestamp: fc.integer({ min: -1, max: 2 ** 50 }),
    }).map((m) => ({ ...m, lastOffset: m.firstOffset + (m.firstSeq % 100) })),
    { minLength: 1, maxLength: 5 },
  ),
});

test('snapshot codec: round trip, and any flipped byte or cut is detected', (t) => {
  fc.assert(
    fc.property(fc.array(entryArb, { maxLength: 6 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (entries, pick, flip) => {
      const offset = 2 ** 41 + 1;
      const bytes = encodeProducerSnapshot(offset, entries);
      const decoded = decodeProducerSnapshot(bytes);
      if (decoded.offset !== offset || !isDeepStrictEqual(decoded.entries.map(plain), entries.map(plain))) throw new Error('round trip differs');
      const corrupt = Buffer.from(bytes);
      corrupt[pick % corrupt.length] ^= flip;
      if (!throws(() => decodeProducerSnapshot(corrupt))) throw new Error(`flip at ${pick % corrupt.length} not detected`);
      if (!throws(() => decodeProducerSnapshot(bytes.subarray(0, pick % bytes.length)))) throw new Error('cut not detected');
    }),
  );
  t.throws(() => decodeProducerSnapshot(encodeProducerSnapshot(5, [{ producerId: 1, epoch: 0, lastTimestampMs: 0, batches: [{ firstSeq: 0, lastSeq: 0, firstOffset: 5, lastOffset: 5, timestamp: 0 }] }])), {
    message: /outside/,
  });
});

/** The entry as a plain object with a fixed key order (fast-check may build null-prototype objects). */
function plain(e: ProducerEntry): unknown {
  return [e.producerId, e.epoch, e.lastTimestampMs, e.batches.map((m) => [m.firstSeq, m.lastSeq, m.firstOffset, m.lastOffset, m.timestamp])];
}

function throws(fn: () => unknown): boolean {
  try {
    fn();
    return false;
  } catch {
    return true;
  }
}
