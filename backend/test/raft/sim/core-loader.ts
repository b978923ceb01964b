// Loads the Raft core the simulator drives: the real one, or a patched private copy for a core mutation
// (mutations.ts). The copy lives in a temporary folder removed at exit; the core imports nothing outside
// its own folder, so a copy of that folder is a complete module.

import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type * as CoreIndex from '../../../src/raft/core/index.ts';
import { CORE_PATCHES, isDriverMutation, type MutationName } from './mutations.ts';

export type CoreModule = typeof CoreIndex;
export type RawNodeInstance = InstanceType<CoreModule['RawNode']>;
export type MemoryStorageInstance = InstanceType<CoreModule['MemoryStorage']>;

const CORE_DIR = fileURLToPath(new URL('../../../src/raft/core/', import.meta.url));

const loaded = new Map<string, Promise<CoreModule>>();

export function loadCore(mutation?: MutationName): Promise<CoreModule> {
  const key = mutation === undefined || isDriverMutation(mutation) ? 'real' : mutation;
  let core = loaded.get(key);
  if (core === undefined) {
    core = key === 'real' ? import('../../../src/raft/core/index.ts') : loadPatched(key as keyof typeof CORE_PATCHES);
    loaded.set(key, core);
  }
  return core;
}

async function loadPatched(mutation: keyof typeof CORE_PATCHES): Promise<CoreModule> {
  const patch = CORE_PATCHES[mutation];
  const dir = mkdtempSync(join(tmpdir(), `takhin-raft-${mutation}-`));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  for (const name of readdirSync(CORE_DIR)) {
    if (!name.endsWith('.ts')) continue;
    let text = readFileSync(join(CORE_DIR, name), 'utf8');
    if (name === patch.file) text = applyPatch(text, mutation);
    writeFileSync(join(dir, name), text);
  }
  return (await import(pathToFileURL(join(dir, 'index.ts')).href)) as CoreModule;
}

/** Apply a core mutation's patch to a file's text; throws when the snippet is not there exactly once. */
export function applyPatch(text: string, mutation: keyof typeof CORE_PATCHES): string {
  const { find, replace, file } = CORE_PATCHES[mutation];
  const at = text.indexOf(find);
  if (at < 0 || text.indexOf(find, at + 1) >= 0) {
    throw new Error(`mutation ${mutation}: the snippet to patch occurs ${at < 0 ? 'nowhere' : 'more than once'} ` +
      `in core/${file}; update CORE_PATCHES in backend/test/raft/sim/mutations.ts`);
  }
  return text.slice(0, at) + replace + text.slice(at + find.length);
}
