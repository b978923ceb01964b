// The data directory lock with real processes: a live holder in another process keeps it; a holder killed -9,
// a recycled pid, a torn lock file or another host's lock is taken over.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import pino from 'pino';
import { currentHolder, DataDirLock, DataDirLockedError, LOCK_FILE_NAME } from '../../src/log/data-dir-lock.ts';

const logger = pino({ level: 'silent' });
const MODULE = new URL('../../src/log/data-dir-lock.ts', import.meta.url).href;

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'takhin-lock-'));
}

/** A child process that takes the lock and prints "locked", then waits to be killed. */
async function holder(dir: string): Promise<ChildProcess> {
  const script = `import { DataDirLock } from ${JSON.stringify(MODULE)}; import pino from 'pino';
    DataDirLock.acquire(${JSON.stringify(dir)}, pino({ level: 'silent' })); console.log('locked'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((ok, fail) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('locked') && ok());
    child.on('exit', (code) => fail(new Error(`holder exited with ${code}`)));
  });
  return child;
}

test('a lock held by a live process is refused with its pid; after a kill -9 it is taken over', async (t) => {
  const dir = tempDir();
  const child = await holder(dir);
  const err = t.throws(() => DataDirLock.acquire(dir, logger), { instanceOf: DataDirLockedError });
  t.is(err?.holder.pid, child.pid!);
  t.regex(err!.message, new RegExp(`in use by process ${child.pid}`));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const lock = DataDirLock.acquire(dir, logger);
  t.is(JSON.parse(fs.readFileSync(path.join(dir, LOCK_FILE_NAME), 'utf8')).pid, process.pid);
  lock.release();
  t.false(fs.existsSync(path.join(dir, LOCK_FILE_NAME)));
});

test('stale locks are taken over: a recycled pid, a torn file, another host, an earlier life of this pid', (t) => {
  const me = currentHolder();
  const parentPid = process.ppid; // alive, but not the process the lock names
  const cases: [string, string][] = [
    ['recycled pid', JSON.stringify({ pid: parentPid, startTicks: 1, hostname: me.hostname })],
    ['torn file', '{"pid": 12'],
    ['another host', JSON.stringify({ pid: parentPid, startTicks: null, hostname: `${me.hostname}-other` })],
    ['this pid', JSON.stringify({ pid: process.pid, startTicks: 7, hostname: me.hostname })],
  ];
  if (me.startTicks === null) t.log('no /proc: start times unknown');
  for (const [what, content] of cases) {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, LOCK_FILE_NAME), content);
    const lock = DataDirLock.acquire(dir, logger);
    t.is(JSON.parse(fs.readFileSync(path.join(dir, LOCK_FILE_NAME), 'utf8')).pid, process.pid, what);
    lock.release();
  }
  // A live process whose start time matches is the holder.
  const dir = tempDir();
  const parent = { pid: parentPid, startTicks: null, hostname: me.hostname };
  fs.writeFileSync(path.join(dir, LOCK_FILE_NAME), JSON.stringify(parent));
  t.throws(() => DataDirLock.acquire(dir, logger), { instanceOf: DataDirLockedError });
});

test('release leaves a lock that is no longer ours alone', (t) => {
  const dir = tempDir();
  const lock = DataDirLock.acquire(dir, logger);
  const other = JSON.stringify({ pid: process.ppid, startTicks: null, hostname: os.hostname() });
  fs.writeFileSync(path.join(dir, LOCK_FILE_NAME), other);
  lock.release();
  t.is(fs.readFileSync(path.join(dir, LOCK_FILE_NAME), 'utf8'), other);
});
