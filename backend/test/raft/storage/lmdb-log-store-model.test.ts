// Model-based property test: a random sequence of persist / createSnapshot / compact / applied snapshot /
// reopen calls, some issued concurrently (group commit), leaves LmdbLogStore answering every Storage read
// exactly like MemoryStorage given the same calls; invalid calls mixed in are rejected alone and change nothing.
// At the end, after the background deletion, LMDB holds exactly the entries firstIndex..lastIndex.
// entryCacheBytesMax varies from off through a few entries (reads split between LMDB and memory, constant
// eviction) to everything: the entry cache must never change an answer, across truncations, compactions,
// installed snapshots and reopens.

import test from 'ava';
import fc from 'fast-check';
import { deepStrictEqual } from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MemoryStorage } from '../../../src/raft/core/index.ts';
import type { ConfState, Entry, HardState, Storage } from '../../../src/raft/core/index.ts';
import { LmdbLogStore } from '../../../src/raft/storage/lmdb-log-store.ts';
import type { LmdbLogStoreSettings } from '../../../src/raft/storage/lmdb-log-store.ts';
import { confOf, ent, plain, storedIndexes, withRawEnv } from './_helpers.ts';

type Op = { wait: boolean } & (
  | { t: 'append'; pos: number; count: number; bump: boolean; size: number; withHardState: boolean }
  | { t: 'commit'; pos: number }
  | { t: 'vote'; vote: number }
  | { t: 'createSnapshot'; pos: number; voters: number[] }
  | { t: 'compact'; pos: number }
  | { t: 'applySnapshot'; gap: number; bump: boolean; voters: number[] }
  | { t: 'conf'; voters: number[] }
  | { t: 'gap' }
  | { t: 'reopen' }
);

const voters = fc.subarray([1, 2, 3, 4, 5]);
const pos = fc.nat(1000);
const opArb: fc.Arbitrary<Op> = fc
  .tuple(
    fc.oneof(
      { weight: 6, arbitrary: fc.record({ t: fc.constant('append' as const), pos, count: fc.integer({ min: 1, max: 6 }), bump: fc.boolean(), size: fc.nat(40), withHardState: fc.boolean() }) },
      { weight: 3, arbitrary: fc.record({ t: fc.constant('commit' as const), pos }) },
      { weight: 1, arbitrary: fc.record({ t: fc.constant('vote' as const), vote: fc.nat(3) }) },
      { weight: 2, arbitrary: fc.record({ t: fc.constant('createSnapshot' as const), pos, voters }) },
      { weight: 2, arbitrary: fc.record({ t: fc.constant('compact' as const), pos }) },
      { weight: 1, arbitrary: fc.record({ t: fc.constant('applySnapshot' as const), gap: fc.integer({ min: 1, max: 4 }), bump: fc.boolean(), voters }) },
      { weight: 1, arbitrary: fc.record({ t: fc.constant('conf' as const), voters }) },
      { weight: 1, arbitrary: fc.record({ t: fc.constant('gap' as const) }) },
      { weight: 1, arbitrary: fc.record({ t: fc.constant('reopen' as const) }) },
    ),
    fc.boolean(),
  )
  .map(([op, wait]) => ({ ...op, wait }) as Op);

const settingsArb: fc.Arbitrary<Partial<LmdbLogStoreSettings>> = fc.record({
  termCacheEntries: fc.constantFrom(0, 2, 8, 4096),
  entriesPerCompactionTxnMax: fc.constantFrom(1, 3, 1000),
  persistBatchRequestsMax: fc.constantFrom(1, 2, 1024),
  // Payloads are 0..40 bytes: 300 bytes hold one or two entries, 2,000 about a dozen.
  entryCacheBytesMax: fc.constantFrom(0, 300, 2_000, 64 * 1024 * 1024),
});

/** Entries read from the cache / from LMDB over all runs with the cache on: both paths must be exercised. */
const reads = { cached: 0, stored: 0 };

const ALL = Number.MAX_SAFE_INTEGER;

function payload(size: number, seed: number): Uint8Array {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = (seed * 13 + i * 5) & 0xff;
  return b;
}

/** A read's result, or the name of the error it threw (both stores must agree on either). */
function outcome<T>(fn: () => T): T | string {
  try {
    return fn();
  } catch (err) {
    return (err as Error).name;
  }
}

function compare(store: Storage, mem: MemoryStorage, context: string): void {
  const first = mem.firstIndex();
  const last = mem.lastIndex();
  deepStrictEqual([store.firstIndex(), store.lastIndex()], [first, last], `${context}: bounds`);
  deepStrictEqual(store.initialState(), mem.initialState(), `${context}: initial state`);
  deepStrictEqual(store.snapshot().metadata, mem.snapshot().metadata, `${context}: snapshot`);
  const terms = (s: Storage): Array<number | string> => {
    const out: Array<number | string> = [];
    for (let i = Math.max(0, first - 2); i <= last + 1; i++) out.push(outcome(() => s.term(i)));
    return out;
  };
  deepStrictEqual(terms(store), terms(mem), `${context}: terms`);
  const reads: Array<[number, number, number]> = [
    [first, last + 1, ALL],
    [first, last + 1, 100],
    [first - 1, last + 1, ALL],
    [first, last + 2, ALL],
    [Math.max(first, last - 2), last + 1, 0],
  ];
  for (const [lo, hi, max] of reads) {
    const view = (s: Storage): unknown => {
      const r = outcome(() => s.entries(lo, hi, max));
      return typeof r === 'string' ? r : plain(r as Entry[]);
    };
    deepStrictEqual(view(store), view(mem), `${context}: entries(${lo}, ${hi}, ${max})`);
  }
}

/** Applies `op` to the model and issues it to the store; returns the store's promise (or undefined). */
function step(op: Op, store: LmdbLogStore, mem: MemoryStorage): Promise<unknown> | undefined {
  const hs: HardState = mem.initialState().hardState;
  const last = mem.lastIndex();
  const snapIndex = mem.snapshot().metadata.index;
  const conf = (v: number[]): ConfState => confOf(v);
  switch (op.t) {
    case 'append': {
      // Never below the commit index: committed entries are not rewritten.
      const lo = Math.max(mem.firstIndex(), hs.commit + 1);
      const at = lo + (op.pos % (last + 2 - lo));
      const term = Math.max(mem.term(at - 1), hs.term) + (op.bump ? 1 : 0);
      // Sometimes lead with entries that are already compacted: both stores must skip them.
      const lead = at === mem.firstIndex() && op.pos % 3 === 0 ? Math.min(2, at - 1) : 0;
      const entries: Entry[] = [];
      for (let i = at - lead; i < at + op.count; i++) entries.push(ent(i, i < at ? 0 : term, payload(op.size, i + term)));
      mem.append(entries);
      if (!op.withHardState) return store.persist({ entries });
      const next = { ...hs, term: Math.max(hs.term, term) };
      mem.setHardState(next);
      return store.persist({ entries, hardState: next });
    }
    case 'commit': {
      const next = { ...hs, commit: hs.commit + (op.pos % (last - hs.commit + 1)) };
      mem.setHardState(next);
      return store.persist({ hardState: next });
    }
    case 'vote': {
      const next = { ...hs, term: hs.term + 1, vote: op.vote };
      mem.setHardState(next);
      return store.persist({ hardState: next });
    }
    case 'createSnapshot': {
      if (hs.commit <= snapIndex) return undefined;
      const index = snapIndex + 1 + (op.pos % (hs.commit - snapIndex));
      const expected = mem.createSnapshot(index, conf(op.voters), new Uint8Array(0)).metadata;
      return store.createSnapshot(index, conf(op.voters)).then((m) => deepStrictEqual(m, expected));
    }
    case 'compact': {
      const start = mem.firstIndex() - 1;
      if (snapIndex <= start) return undefined;
      const index = start + 1 + (op.pos % (snapIndex - start));
      mem.compact(index);
      return store.compact(index);
    }
    case 'applySnapshot': {
      const metadata = { index: Math.max(hs.commit, snapIndex) + op.gap, term: hs.term + (op.bump ? 1 : 0), conf: conf(op.voters) };
      mem.applySnapshot({ metadata, data: new Uint8Array(0) });
      const next = { term: metadata.term, vote: hs.vote, commit: metadata.index };
      mem.setHardState(next);
      return store.persist({ snapshot: { metadata }, hardState: next });
    }
    case 'conf':
      mem.setConfState(conf(op.voters));
      return store.persist({ confState: conf(op.voters) });
    case 'gap':
      // Invalid (a gap after the last index): rejected alone, nothing of it is written.
      return store.persist({ entries: [ent(last + 2, hs.term)], hardState: { ...hs, commit: last + 2 } }).then(
        () => {
          throw new Error('a persist with a gap was accepted');
        },
        (err: Error) => deepStrictEqual(err.name, 'RaftAssertionError'),
      );
    case 'reopen':
      return undefined;
  }
}

async function runOps(ops: Op[], settings: Partial<LmdbLogStoreSettings>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'takhin-raft-model-'));
  let store = await LmdbLogStore.open(dir, settings);
  try {
    const mem = new MemoryStorage();
    let pending: Array<Promise<unknown>> = [];
    for (const [n, op] of ops.entries()) {
      if (op.t === 'reopen') {
        await Promise.all(pending);
        pending = [];
        await store.close();
        store = await LmdbLogStore.open(dir, settings);
        compare(store, mem, `after reopen at op ${n}`);
        continue;
      }
      const p = step(op, store, mem);
      if (p) pending.push(p);
      if (op.wait) {
        await Promise.all(pending);
        pending = [];
        compare(store, mem, `after op ${n} (${op.t})`);
      }
    }
    await Promise.all(pending);
    compare(store, mem, 'at the end');
    deepStrictEqual(store.stats.entryCacheFaults, 0, 'entry cache faults');
    if (settings.entryCacheBytesMax !== 0) {
      reads.cached += store.stats.entriesReadCached;
      reads.stored += store.stats.entriesReadStored;
    }
    await store.trimmed();
    const [first, last] = [mem.firstIndex(), mem.lastIndex()];
    await store.close();
    const stored = await withRawEnv(dir, storedIndexes);
    deepStrictEqual(stored, Array.from({ length: last - first + 1 }, (_, k) => first + k), 'entries stored in LMDB');
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('a random sequence of calls leaves LmdbLogStore agreeing with MemoryStorage', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 30 }), settingsArb, runOps),
    { numRuns: 80 },
  );
  t.true(reads.cached > 0 && reads.stored > 0, `with the cache on: ${reads.cached} entries read from it, ${reads.stored} from LMDB`);
});
