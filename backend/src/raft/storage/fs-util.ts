// File-system helpers of the Raft storage: the directory fsyncs that make creations, renames and deletions
// durable (a rename is only power-loss safe once its directory is synced).

import fs from 'node:fs/promises';
import path from 'node:path';

/** fsync a directory so that entries created, renamed or removed in it survive a power loss. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** mkdir -p `dir`, then fsync every directory that gained an entry (the parents of each new directory). */
export async function ensureDir(dir: string): Promise<void> {
  const first = await fs.mkdir(dir, { recursive: true });
  if (first === undefined) return;
  const top = path.dirname(path.resolve(first));
  for (let d = path.dirname(path.resolve(dir)); ; d = path.dirname(d)) {
    await fsyncDir(d);
    if (d === top || d === path.dirname(d)) break;
  }
}

/** Removes a file; a missing file is not an error. */
export async function unlinkIfExists(file: string): Promise<void> {
  try {
    await fs.unlink(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
