// One broker process per data directory. Two processes appending to the same partition files, or two cluster
// nodes sharing one Raft log, would corrupt them silently; Kafka guards its log dirs with a .lock file, and so
// do we. Node has no flock(), so the lock is a file created exclusively (O_EXCL) that names its holder: the
// process id, the process start time (Linux /proc, so a recycled pid is not mistaken for the holder) and the
// host name. A lock left behind by a crash (kill -9, power loss) names a process that is gone and is taken over;
// one whose holder runs on another host cannot be checked and is taken over as well, because a recreated
// container gets a new host name and must still be able to start on its volume.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';

export const LOCK_FILE_NAME = '.lock';
/** Stale locks taken over in a row before giving up (count): another process racing for the same dir. */
const ACQUIRE_ATTEMPTS_MAX = 3;
/** A lock file larger than this is not ours (bytes). */
const LOCK_FILE_BYTES_MAX = 4096;

export interface LockHolder {
  pid: number;
  /** Start time of the process in clock ticks since boot (/proc/<pid>/stat field 22); null where unknown. */
  startTicks: number | null;
  hostname: string;
}

export class DataDirLockedError extends Error {
  constructor(readonly dir: string, readonly holder: LockHolder) {
    super(`data directory ${dir} is in use by process ${holder.pid} on ${holder.hostname}; stop it first (or remove ${path.join(dir, LOCK_FILE_NAME)} if you are sure it is gone)`);
    this.name = 'DataDirLockedError';
  }
}

export class DataDirLock {
  private released = false;

  private constructor(readonly dir: string, private readonly file: string, private readonly holder: LockHolder) {}

  /** Takes the lock of `dir` (created if missing) or throws DataDirLockedError naming the live holder. */
  static acquire(dir: string, logger: Logger): DataDirLock {
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, LOCK_FILE_NAME);
    const me = currentHolder();
    for (let attempt = 0; attempt < ACQUIRE_ATTEMPTS_MAX; attempt++) {
      if (tryCreate(file, me)) return new DataDirLock(dir, file, me);
      const other = readHolder(file);
      if (other === undefined) continue; // removed meanwhile: try again
      if (other !== null && isAlive(other, me)) throw new DataDirLockedError(dir, other);
      logger.warn({ dir, holder: other }, 'taking over the lock of a data directory whose holder is gone');
      fs.rmSync(file, { force: true });
    }
    throw new Error(`could not lock data directory ${dir}: another process keeps taking it`);
  }

  /** Removes the lock file, if it is still ours. Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    const now = readHolder(this.file);
    if (now !== undefined && now !== null && now.pid === this.holder.pid && now.startTicks === this.holder.startTicks && now.hostname === this.holder.hostname) {
      fs.rmSync(this.file, { force: true });
    }
  }
}

export function currentHolder(): LockHolder {
  return { pid: process.pid, startTicks: processStartTicks(process.pid), hostname: os.hostname() };
}

/** Creates the lock file exclusively and makes it durable; false when it exists. */
function tryCreate(file: string, me: LockHolder): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, 'wx', 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    fs.writeSync(fd, `${JSON.stringify(me)}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

/** The holder named by the lock file; null when it names nobody readable (torn or foreign); undefined when gone. */
function readHolder(file: string): LockHolder | null | undefined {
  let text: string;
  try {
    const st = fs.statSync(file);
    if (st.size > LOCK_FILE_BYTES_MAX) return null;
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const v = JSON.parse(text) as Partial<LockHolder>;
    if (!Number.isSafeInteger(v.pid) || (v.pid as number) <= 0 || typeof v.hostname !== 'string') return null;
    const startTicks = typeof v.startTicks === 'number' ? v.startTicks : null;
    return { pid: v.pid as number, startTicks, hostname: v.hostname };
  } catch {
    return null; // a crash while the file was being written: nobody holds it
  }
}

/** Whether the recorded holder is a running process other than this one. */
function isAlive(holder: LockHolder, me: LockHolder): boolean {
  if (holder.hostname !== me.hostname) return false;
  // Our own pid in the file is an earlier life of this pid (a container restarts its broker as the same pid).
  if (holder.pid === me.pid) return false;
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false; // ESRCH: no such process
  }
  if (holder.startTicks === null) return true;
  const ticks = processStartTicks(holder.pid);
  // Same pid, other start time: the pid was recycled by an unrelated process.
  return ticks === null || ticks === holder.startTicks;
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks after boot), or null off Linux / when unreadable. */
function processStartTicks(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count fields after its closing one.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(rest[19]);
    return Number.isSafeInteger(ticks) ? ticks : null;
  } catch {
    return null;
  }
}
