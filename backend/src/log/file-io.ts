// Small synchronous file helpers for the log. The log does its I/O with positional sync calls on purpose:
// a write is in the OS (safe from kill -9) before append() returns, and a read is one syscall per range.

import fs from 'node:fs';

/** Writes all of `buf` at `position`, looping over short writes. */
export function writeFully(fd: number, buf: Uint8Array, position: number): void {
  let done = 0;
  while (done < buf.length) {
    done += fs.writeSync(fd, buf, done, buf.length - done, position + done);
  }
}

/** Reads into `buf` from `position` until it is full or the file ends; returns the bytes read. */
export function readFully(fd: number, buf: Uint8Array, position: number): number {
  let done = 0;
  while (done < buf.length) {
    const n = fs.readSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** fsync a directory so that file creations, renames and deletions in it survive a power loss. */
export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export function fdatasyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

/** Removes a file; a missing file is not an error. */
export function unlinkIfExists(path: string): void {
  try {
    fs.unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** Reads a whole file, or null when it does not exist. */
export function readFileIfExists(path: string): Buffer | null {
  try {
    return fs.readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * A sliding read window over a file region [0, end): view(pos, len) returns the bytes without a syscall when
 * they are already loaded, else loads at least chunkBytes from pos. Used to walk batch headers.
 */
export class FileWindow {
  private buf: Buffer = Buffer.alloc(0);
  private start = 0;
  private readonly fd: number;
  private readonly end: number;
  private readonly chunkBytes: number;

  constructor(fd: number, end: number, chunkBytes: number) {
    this.fd = fd;
    this.end = end;
    this.chunkBytes = chunkBytes;
  }

  /** Up to `len` bytes at `pos` (fewer only at the end of the region). The view is valid until the next call. */
  view(pos: number, len: number): Buffer {
    const want = Math.min(len, this.end - pos);
    if (want <= 0) return this.buf.subarray(0, 0);
    if (pos < this.start || pos + want > this.start + this.buf.length) this.load(pos, want);
    return this.buf.subarray(pos - this.start, pos - this.start + want);
  }

  private load(pos: number, want: number): void {
    const len = Math.min(Math.max(want, this.chunkBytes), this.end - pos);
    const buf = this.buf.length >= len && this.buf.length <= this.chunkBytes ? this.buf : Buffer.allocUnsafe(len);
    const n = readFully(this.fd, buf.subarray(0, len), pos);
    this.buf = buf.subarray(0, n);
    this.start = pos;
  }
}
