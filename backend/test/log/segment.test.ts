// Recovery of segments after crashes and damage, through the PartitionLog that owns them (real files).
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseBatchHeader } from '../../src/protocol/records/batch.ts';
import type { LogConfig } from '../../src/log/log-config.ts';
import { appendAll, batch, captureLogger, Clock, config, openLog, readAll, segmentFiles, tempDir } from './_helpers.ts';
import type { StoredBatch } from './_helpers.ts';

const cfg = config({ segmentBytes: 4000, indexIntervalBytes: 300 });

async function prepare(count: number, c: LogConfig = cfg): Promise<{ dir: string; stored: StoredBatch[] }> {
  const dir = tempDir();
  const log = await openLog(dir, c);
  const stored = await appendAll(log, Array.from({ length: count }, (_, i) => batch(`p${i}`, 1 + (i % 3), 50 + (i % 7) * 30)));
  await log.close();
  return { dir, stored };
}

function activeLogPath(dir: string): string {
  const files = segmentFiles(dir);
  return path.join(dir, files[files.length - 1]!);
}

/** Reopens, checks the surviving batches, the log line, and that appends continue at the right offset. */
async function reopenAndCheck(t: import('ava').ExecutionContext, dir: string, survivors: StoredBatch[], expectDrop: boolean): Promise<void> {
  const cap = captureLogger();
  const log = await openLog(dir, cfg, new Clock(), cap);
  t.deepEqual(readAll(log), survivors.map((s) => s.bytes));
  const expectedEnd = survivors.length ? survivors[survivors.length - 1]!.lastOffset + 1 : 0;
  t.is(log.logEndOffset, expectedEnd);
  const warn = cap.lines.find((l) => l.msg === 'truncating torn or corrupt log tail');
  if (expectDrop) {
    t.truthy(warn, 'the truncation is logged');
    t.is(warn!.offset, expectedEnd);
    t.true((warn!.bytesDropped as number) > 0);
    t.is(warn!.level, 40);
  } else {
    t.falsy(warn);
  }
  const r = await log.append(batch('next', 2));
  t.is(r.baseOffset, expectedEnd);
  t.true(log.read(expectedEnd, 10).records[0]!.equals(log.read(expectedEnd + 1, 10).records[0]!));
  await log.close();
  const again = await openLog(dir, cfg);
  t.is(again.logEndOffset, expectedEnd + 2, 'the repaired log reopens cleanly');
  await again.close();
}

test('a torn tail (file cut mid-batch) is truncated at the last whole batch', async (t) => {
  const { dir, stored } = await prepare(60);
  const file = activeLogPath(dir);
  const size = fs.statSync(file).size;
  fs.truncateSync(file, size - Math.floor(stored[stored.length - 1]!.bytes.length / 2));
  await reopenAndCheck(t, dir, stored.slice(0, -1), true);
});

test('a cut inside the header of the last batch, and a tail of a few stray bytes', async (t) => {
  const { dir, stored } = await prepare(30);
  const file = activeLogPath(dir);
  const last = stored[stored.length - 1]!.bytes.length;
  fs.truncateSync(file, fs.statSync(file).size - last + 7);
  await reopenAndCheck(t, dir, stored.slice(0, -1), true);
});

test('a corrupt last batch (one flipped byte) is truncated', async (t) => {
  const { dir, stored } = await prepare(40);
  const file = activeLogPath(dir);
  const fd = fs.openSync(file, 'r+');
  const size = fs.fstatSync(fd).size;
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, size - 5);
  b[0]! ^= 0x40;
  fs.writeSync(fd, b, 0, 1, size - 5);
  fs.closeSync(fd);
  await reopenAndCheck(t, dir, stored.slice(0, -1), true);
});

test('a corrupt batch in the middle of the active segment drops it and everything after', async (t) => {
  const { dir, stored } = await prepare(40);
  const files = segmentFiles(dir);
  const activeBase = Number(files[files.length - 1]!.slice(0, 20));
  const firstInActive = stored.findIndex((s) => s.baseOffset === activeBase);
  const victim = firstInActive + 2;
  t.true(victim < stored.length - 1, 'the damaged batch is not the last one');
  let pos = 0;
  for (let i = firstInActive; i < victim; i++) pos += stored[i]!.bytes.length;
  const fd = fs.openSync(activeLogPath(dir), 'r+');
  fs.writeSync(fd, Buffer.from([0xff]), 0, 1, pos + 30); // inside the CRC-covered header
  fs.closeSync(fd);
  await reopenAndCheck(t, dir, stored.slice(0, victim), true);
});

test('garbage appended after the last batch is truncated', async (t) => {
  const { dir, stored } = await prepare(25);
  fs.appendFileSync(activeLogPath(dir), Buffer.from('this is not a record batch, it is garbage from a torn write'));
  await reopenAndCheck(t, dir, stored, true);
  const { dir: dir2, stored: stored2 } = await prepare(5);
  fs.appendFileSync(activeLogPath(dir2), Buffer.alloc(5000)); // zeros: a preallocated or half-written tail
  await reopenAndCheck(t, dir2, stored2, true);
});

test('missing index files are rebuilt from the log', async (t) => {
  const { dir, stored } = await prepare(80);
  t.true(segmentFiles(dir).length >= 3);
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.index') || n.endsWith('.timeindex'))) fs.unlinkSync(path.join(dir, f));
  const cap = captureLogger();
  const log = await openLog(dir, cfg, new Clock(), cap);
  t.true(cap.lines.some((l) => l.msg === 'rebuilding missing or inconsistent segment index'));
  for (const s of stored) t.true(log.read(s.lastOffset, 1).records[0]!.equals(s.bytes));
  t.is(log.offsetForTimestamp(0).offset, 0);
  await log.close();
  t.true(fs.statSync(path.join(dir, '00000000000000000000.index')).size > 0, 'rebuilt index written back');
  await reopenAndCheck(t, dir, stored, false);
});

test('inconsistent index files of a sealed segment are detected and rebuilt', async (t) => {
  const { dir, stored } = await prepare(80);
  const index = path.join(dir, '00000000000000000000.index');
  const good = fs.readFileSync(index);
  t.true(good.length >= 16);
  // An entry pointing into the middle of a batch (position + 1): the header walk notices.
  const shifted = Buffer.from(good);
  shifted.writeInt32BE(shifted.readInt32BE(shifted.length - 4) + 1, shifted.length - 4);
  fs.writeFileSync(index, shifted);
  fs.writeFileSync(path.join(dir, '00000000000000000000.timeindex'), Buffer.alloc(7)); // not a multiple of 12
  const cap = captureLogger();
  const log = await openLog(dir, cfg, new Clock(), cap);
  t.true(cap.lines.some((l) => l.msg === 'rebuilding missing or inconsistent segment index'));
  for (const s of stored) t.true(log.read(s.baseOffset, 1).records[0]!.equals(s.bytes));
  await log.close();
  t.deepEqual(fs.readFileSync(index), good, 'the rebuilt index equals the original one');
});

test('a sealed segment with bit rot is served up to the damage, never truncated', async (t) => {
  const { dir, stored } = await prepare(80);
  const first = path.join(dir, '00000000000000000000.log');
  const originalSize = fs.statSync(first).size;
  const secondBase = Number(segmentFiles(dir)[1]!.slice(0, 20));
  const inFirst = stored.filter((s) => s.baseOffset < secondBase);
  const fd = fs.openSync(first, 'r+');
  const at = inFirst[0]!.bytes.length + inFirst[1]!.bytes.length + 40; // inside batch 2
  fs.writeSync(fd, Buffer.from([0x5a]), 0, 1, at);
  fs.closeSync(fd);
  fs.unlinkSync(path.join(dir, '00000000000000000000.index')); // force the full scan
  const cap = captureLogger();
  const log = await openLog(dir, cfg, new Clock(), cap);
  t.true(cap.lines.some((l) => l.msg === 'sealed segment is corrupt; serving only its valid prefix' && l.level === 50));
  t.is(fs.statSync(first).size, originalSize, 'the file is left as it is');
  t.true(log.read(0, 1).records[0]!.equals(inFirst[0]!.bytes));
  // Offsets inside the damaged range read on from the next segment instead of serving damaged bytes.
  const r = log.read(inFirst[2]!.baseOffset, 1);
  t.is(parseBatchHeader(r.records[0]!).baseOffset, secondBase);
  t.is(log.logEndOffset, stored[stored.length - 1]!.lastOffset + 1);
  await log.close();
});

test('empty dir, empty active segment, leftovers from deletions and temp files', async (t) => {
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, '00000000000000000000.log'), Buffer.alloc(0));
  fs.writeFileSync(path.join(dir, '00000000000000000007.log.deleted'), 'old');
  fs.writeFileSync(path.join(dir, '00000000000000000007.index.deleted'), 'old');
  fs.writeFileSync(path.join(dir, 'log-start-offset.checkpoint.tmp'), 'half');
  fs.writeFileSync(path.join(dir, '00000000000000000099.index'), Buffer.alloc(8)); // no .log: orphan
  const log = await openLog(dir, cfg);
  t.is(log.logEndOffset, 0);
  t.deepEqual(
    fs.readdirSync(dir).sort(),
    ['00000000000000000000.index', '00000000000000000000.log', '00000000000000000000.timeindex'],
  );
  await appendAll(log, [batch('a')]);
  await log.close();

  const fresh = await openLog(path.join(tempDir(), 'new-partition-0'), cfg);
  t.is(fresh.logEndOffset, 0);
  t.is((await fresh.append(batch('x'))).baseOffset, 0);
  await fresh.close();
});

test('a new empty active segment after a roll (crash right after creating it)', async (t) => {
  const { dir, stored } = await prepare(50);
  const end = stored[stored.length - 1]!.lastOffset + 1;
  fs.writeFileSync(path.join(dir, String(end).padStart(20, '0') + '.log'), Buffer.alloc(0));
  await reopenAndCheck(t, dir, stored, false);
});

test('a corrupt log start checkpoint is ignored with a warning', async (t) => {
  const { dir, stored } = await prepare(10);
  fs.writeFileSync(path.join(dir, 'log-start-offset.checkpoint'), 'garbage');
  const cap = captureLogger();
  const log = await openLog(dir, cfg, new Clock(), cap);
  t.is(log.logStartOffset, 0);
  t.true(cap.lines.some((l) => l.msg === 'ignoring unreadable log start checkpoint'));
  t.is(readAll(log).length, stored.length);
  await log.close();
});

test('kill -9 during appends loses no acknowledged append', async (t) => {
  const dir = tempDir();
  const script = fileURLToPath(new URL('./_crash-writer.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)));
  t.is(signal, 'SIGKILL');
  const acked = out.split('\n').filter((l) => l.startsWith('acked ')).map((l) => Number(l.split(' ')[1]));
  t.true(acked.length >= 50, `the writer acknowledged ${acked.length} appends before it was killed`);
  const log = await openLog(dir, config({ segmentBytes: 20_000 }));
  t.true(log.logEndOffset > Math.max(...acked), 'every acknowledged offset survived');
  for (const offset of acked) {
    const [b] = log.read(offset, 1).records;
    const h = parseBatchHeader(b!);
    t.true(h.baseOffset <= offset && offset <= h.baseOffset + h.lastOffsetDelta);
  }
  const r = await log.append(batch('after-crash'));
  t.is(r.baseOffset, log.logEndOffset - 1);
  await log.close();
});
