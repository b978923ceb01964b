// The partition's log start offset checkpoint (DeleteRecords moves it). Written atomically: temp file, fsync,
// rename over the old one, fsync the directory, so a crash leaves either the old or the new value.

import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

export const LOG_START_CHECKPOINT_FILE = 'log-start-offset.checkpoint';
export const TEMP_SUFFIX = '.tmp';
const FORMAT_VERSION = 0;

/** The stored log start offset, null when there is none; throws on an unreadable or malformed file. */
export function readLogStartCheckpoint(dir: string): number | null {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, LOG_START_CHECKPOINT_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const lines = text.split('\n');
  const version = Number(lines[0]);
  const offset = Number(lines[1]);
  if (version !== FORMAT_VERSION || lines[1] === '' || !Number.isSafeInteger(offset) || offset < 0) {
    throw new Error(`malformed ${LOG_START_CHECKPOINT_FILE}: ${JSON.stringify(text.slice(0, 100))}`);
  }
  return offset;
}

export async function writeLogStartCheckpoint(dir: string, offset: number): Promise<void> {
  const target = path.join(dir, LOG_START_CHECKPOINT_FILE);
  const temp = target + TEMP_SUFFIX;
  const file = await fsp.open(temp, 'w');
  try {
    await file.writeFile(`${FORMAT_VERSION}\n${offset}\n`);
    await file.sync();
  } finally {
    await file.close();
  }
  await fsp.rename(temp, target);
  const dirHandle = await fsp.open(dir, 'r');
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}
