// Helpers of the Raft storage tests: temp dirs, entries, and raw access to the LMDB environment of an
// LmdbLogStore (to damage it on purpose). The store must be closed while the raw environment is open.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { ExecutionContext } from 'ava';
import { EntryType } from '../../../src/raft/core/types.ts';
import type { ConfState, Entry } from '../../../src/raft/core/types.ts';
import { emptyConfState } from '../../../src/raft/core/util.ts';
import { entryKey } from '../../../src/raft/storage/codec.ts';

/** A fresh directory under the OS temp dir, removed when the test ends. */
export function tempDir(t: ExecutionContext, prefix = 'takhin-raft-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function ent(index: number, term: number, data: Uint8Array | string = `e${index}t${term}`): Entry {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  return { index, term, type: EntryType.Normal, data: bytes };
}

/** Entries lo..hi (inclusive) of one term. */
export function ents(lo: number, hi: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = lo; i <= hi; i++) out.push(ent(i, term));
  return out;
}

export function confOf(voters: number[], learners: number[] = []): ConfState {
  return { ...emptyConfState(), voters, learners };
}

/** Comparable form of entries (data as hex). */
export function plain(entries: readonly Entry[]): Array<[number, number, number, string]> {
  return entries.map((e) => [e.index, e.term, e.type, Buffer.from(e.data).toString('hex')]);
}

/** The payload the persist child writes for entry i: 200 bytes derived from i. */
export function payloadOf(i: number): Buffer {
  const buf = Buffer.alloc(200);
  for (let k = 0; k < buf.length; k++) buf[k] = (i * 31 + k * 7) & 0xff;
  buf.writeUInt32BE(i, 0);
  return buf;
}

export interface RawEnv {
  root: RootDatabase;
  entries: Database<Buffer, Buffer>;
  meta: Database<Buffer, string>;
}

/** Opens the store's LMDB environment directly, runs `fn`, closes it. */
export async function withRawEnv<T>(dir: string, fn: (raw: RawEnv) => Promise<T> | T): Promise<T> {
  const root = open({ path: dir, overlappingSync: false, maxDbs: 4 });
  try {
    const entries = root.openDB<Buffer, Buffer>('raft-entries', { keyEncoding: 'binary', encoding: 'binary' });
    const meta = root.openDB<Buffer, string>('raft-meta', { encoding: 'binary' });
    return await fn({ root, entries, meta });
  } finally {
    await root.close();
  }
}

/** Indexes of all entries physically stored. */
export function storedIndexes(raw: RawEnv): number[] {
  const out: number[] = [];
  for (const key of raw.entries.getKeys()) out.push(Number(key.readBigUInt64BE(0)));
  return out;
}

/** Flips one byte of entry `index`'s stored value at `offset` (bypassing the store). */
export async function flipEntryByte(raw: RawEnv, index: number, offset: number): Promise<void> {
  const key = entryKey(index);
  const value = raw.entries.get(key);
  if (value === undefined) throw new Error(`no entry ${index}`);
  const copy = Buffer.from(value);
  copy[offset] = copy[offset]! ^ 0x5a;
  await raw.entries.put(key, copy);
}
