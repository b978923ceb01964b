// LmdbLogStore against a real LMDB environment in a temp dir: the Storage contract (same answers and errors as
// MemoryStorage), persist/compact/snapshot writes, restart, corruption detection, group commit, the entry
// cache (filled only when durable, cut on truncation, compaction and snapshot install, bounded), and
// durability (kill -9 right after an acknowledgement; fsync before the acknowledgement under strace).

import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CompactedError,
  ENTRY_HEADER_BYTES,
  RaftAssertionError,
  SnapOutOfDateError,
  UnavailableError,
  emptySnapshot,
} from '../../../src/raft/core/index.ts';
import { ENTRY_CACHE_OVERHEAD_BYTES, LmdbLogStore } from '../../../src/raft/storage/lmdb-log-store.ts';
import { StorageClosedError, StorageCorruptionError, StorageLimitError } from '../../../src/raft/storage/errors.ts';
import { ENTRY_VALUE_HEADER_BYTES, sealRecord } from '../../../src/raft/storage/codec.ts';
import {
  confOf,
  ent,
  ents,
  flipEntryByte,
  payloadOf,
  plain,
  storedIndexes,
  tempDir,
  withRawEnv,
} from './_helpers.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const CHILD = path.join(here, '_persist-child.ts');
const ALL = Number.MAX_SAFE_INTEGER;

/** A store with entries 1..10 (terms 1 for 1..5, 2 for 6..10), commit 8, snapshot at 5, compacted to 3. */
async function sample(dir: string): Promise<LmdbLogStore> {
  const s = await LmdbLogStore.open(dir);
  await s.persist({ entries: [...ents(1, 5, 1), ...ents(6, 10, 2)], hardState: { term: 2, vote: 1, commit: 8 } });
  await s.createSnapshot(5, confOf([1, 2, 3]));
  await s.compact(3);
  return s;
}

test('round trip: entries, terms, bounds, hard state and conf state, also after reopening', async (t) => {
  const dir = tempDir(t);
  let s = await LmdbLogStore.open(dir);
  t.is(s.firstIndex(), 1);
  t.is(s.lastIndex(), 0);
  t.is(s.term(0), 0);
  t.deepEqual(s.entries(1, 1, ALL), []);
  const written = [ent(1, 1, 'a'), ent(2, 1, new Uint8Array(0)), { ...ent(3, 2, 'cc'), type: 1 }];
  await s.persist({ entries: written, hardState: { term: 2, vote: 3, commit: 2 }, confState: confOf([1, 2], [4]) });
  const check = (): void => {
    t.is(s.lastIndex(), 3);
    t.deepEqual(plain(s.entries(1, 4, ALL)), plain(written));
    t.deepEqual([s.term(0), s.term(1), s.term(2), s.term(3)], [0, 1, 1, 2]);
    t.deepEqual(s.initialState(), { hardState: { term: 2, vote: 3, commit: 2 }, confState: confOf([1, 2], [4]) });
  };
  check();
  await s.close();
  s = await LmdbLogStore.open(dir);
  check();
  await s.close();
});

test('entries: size limit keeps at least one entry; Compacted and Unavailable errors like MemoryStorage', async (t) => {
  const dir = tempDir(t);
  const s = await LmdbLogStore.open(dir);
  await s.persist({ entries: [1, 2, 3].map((i) => ent(i, 1, new Uint8Array(100).fill(i))) });
  const one = 100 + ENTRY_HEADER_BYTES;
  t.deepEqual(s.entries(1, 4, ALL).map((e) => e.index), [1, 2, 3]);
  t.deepEqual(s.entries(1, 4, 2 * one).map((e) => e.index), [1, 2]);
  t.deepEqual(s.entries(1, 4, 2 * one - 1).map((e) => e.index), [1]);
  t.deepEqual(s.entries(1, 4, 0).map((e) => e.index), [1]);
  t.deepEqual(s.entries(2, 2, 0), []);
  t.throws(() => s.entries(1, 5, 0), { instanceOf: UnavailableError });
  t.throws(() => s.term(4), { instanceOf: UnavailableError });
  t.throws(() => s.entries(3, 2, 0), { instanceOf: RaftAssertionError });
  await s.close();
  const c = await sample(tempDir(t));
  t.throws(() => c.entries(3, 5, ALL), { instanceOf: CompactedError });
  t.throws(() => c.term(2), { instanceOf: CompactedError });
  t.throws(() => c.term(11), { instanceOf: UnavailableError });
  t.deepEqual(c.entries(4, 6, ALL).map((e) => e.index), [4, 5]);
  await c.close();
});

test('returned entry data stays valid after the entry is overwritten', async (t) => {
  const s = await LmdbLogStore.open(tempDir(t));
  const big = new Uint8Array(300_000).fill(7);
  await s.persist({ entries: [ent(1, 1, big), ent(2, 1, 'small')] });
  const [a, b] = s.entries(1, 3, ALL);
  await s.persist({ entries: [ent(1, 2, new Uint8Array(300_000).fill(9)), ent(2, 2, 'other')] });
  t.true(Buffer.from(a!.data).equals(Buffer.from(big)));
  t.is(Buffer.from(b!.data).toString(), 'small');
  await s.close();
});

test('persist: a conflicting append truncates the suffix; compacted entries are skipped', async (t) => {
  const dir = tempDir(t);
  let s = await LmdbLogStore.open(dir);
  await s.persist({ entries: [...ents(1, 5, 1), ...ents(6, 10, 2)], hardState: { term: 2, vote: 1, commit: 5 } });
  await s.createSnapshot(3, confOf([1]));
  await s.compact(2);
  await s.persist({ entries: [ent(7, 3), ent(8, 3)] });
  t.is(s.lastIndex(), 8);
  t.deepEqual([s.term(6), s.term(7), s.term(8)], [2, 3, 3]);
  t.throws(() => s.term(9), { instanceOf: UnavailableError });
  await t.throwsAsync(s.persist({ entries: [ent(3, 4), ent(4, 4)] }), { instanceOf: RaftAssertionError, message: /drops committed/ });
  // Entry 2 is compacted and skipped, 3..5 are rewritten as they were, 6 replaces the log from there on.
  await s.persist({ entries: [...ents(2, 5, 1), ent(6, 4)] });
  t.is(s.lastIndex(), 6);
  t.is(s.term(6), 4);
  await s.close();
  s = await LmdbLogStore.open(dir);
  t.is(s.lastIndex(), 6);
  t.deepEqual(plain(s.entries(3, 7, ALL)), plain([...ents(3, 5, 1), ent(6, 4)]));
  await s.close();
  const stored = await withRawEnv(dir, storedIndexes);
  t.deepEqual(stored, [3, 4, 5, 6], 'the truncated suffix and the compacted prefix are gone from LMDB');
});

test('persist: a bad call in a batch is rejected alone, the others are written', async (t) => {
  const s = await LmdbLogStore.open(tempDir(t));
  const a = s.persist({ entries: ents(1, 3, 1) });
  const gap = s.persist({ entries: [ent(9, 1)], hardState: { term: 1, vote: 0, commit: 1 } });
  const c = s.persist({ entries: ents(4, 5, 1), hardState: { term: 1, vote: 2, commit: 5 } });
  const back = s.persist({ hardState: { term: 0, vote: 0, commit: 5 } });
  const beyond = s.persist({ hardState: { term: 1, vote: 2, commit: 6 } });
  const uncommit = s.persist({ hardState: { term: 1, vote: 2, commit: 4 } });
  await a;
  await t.throwsAsync(gap, { instanceOf: RaftAssertionError, message: /gap/ });
  await c;
  await t.throwsAsync(back, { instanceOf: RaftAssertionError, message: /term 0 < 1/ });
  await t.throwsAsync(beyond, { instanceOf: RaftAssertionError, message: /beyond the last index/ });
  await t.throwsAsync(uncommit, { instanceOf: RaftAssertionError, message: /commit 4 < 5/ });
  t.is(s.stats.syncs, 1, 'all six calls shared one transaction');
  t.is(s.lastIndex(), 5);
  t.deepEqual(s.initialState().hardState, { term: 1, vote: 2, commit: 5 });
  await t.throwsAsync(s.persist({ entries: [ent(6, 1), ent(8, 1)] }), { instanceOf: RaftAssertionError, message: /contiguous/ });
  await s.close();
});

test('createSnapshot and compact: bounds, term at the compaction point, errors like MemoryStorage', async (t) => {
  const dir = tempDir(t);
  let s = await sample(dir);
  t.is(s.firstIndex(), 4);
  t.is(s.lastIndex(), 10);
  t.is(s.term(3), 1);
  t.deepEqual(s.snapshot().metadata, { index: 5, term: 1, conf: confOf([1, 2, 3]) });
  t.is(s.snapshot().data.byteLength, 0);
  await t.throwsAsync(s.createSnapshot(5, confOf([1])), { instanceOf: SnapOutOfDateError });
  await t.throwsAsync(s.createSnapshot(9, confOf([1])), { instanceOf: RaftAssertionError, message: /commit 8/ });
  await t.throwsAsync(s.createSnapshot(11, confOf([1])), { instanceOf: UnavailableError });
  await t.throwsAsync(s.compact(3), { instanceOf: CompactedError });
  await t.throwsAsync(s.compact(6), { instanceOf: RaftAssertionError, message: /beyond the snapshot/ });
  t.deepEqual(await s.createSnapshot(8, confOf([1, 2])), { index: 8, term: 2, conf: confOf([1, 2]) });
  await s.compact(7);
  t.is(s.firstIndex(), 8);
  t.is(s.term(7), 2);
  t.throws(() => s.entries(7, 9, ALL), { instanceOf: CompactedError });
  // createSnapshot records no membership of its own (MemoryStorage.createSnapshot does not either).
  t.deepEqual(s.initialState().confState, confOf([]));
  await s.close();
  s = await LmdbLogStore.open(dir);
  t.deepEqual([s.firstIndex(), s.lastIndex(), s.term(7)], [8, 10, 2]);
  t.deepEqual(s.snapshot().metadata, { index: 8, term: 2, conf: confOf([1, 2]) });
  await s.trimmed();
  await s.close();
  t.deepEqual(await withRawEnv(dir, storedIndexes), [8, 9, 10]);
});

test('compaction deletes at most entriesPerCompactionTxnMax per transaction and resumes after a restart', async (t) => {
  const dir = tempDir(t);
  const settings = { entriesPerCompactionTxnMax: 10 };
  let s = await LmdbLogStore.open(dir, settings);
  await s.persist({ entries: ents(1, 100, 1), hardState: { term: 1, vote: 1, commit: 100 } });
  await s.createSnapshot(95, confOf([1]));
  await s.compact(95);
  t.is(s.firstIndex(), 96);
  await s.close(); // before the background deletion is done
  const half = await withRawEnv(dir, storedIndexes);
  t.true(half[0]! <= 95, `deletion was still pending at close (${half.length} stored)`);
  t.true(half.length <= 90, 'the first deletion step rode along with the compact transaction');
  s = await LmdbLogStore.open(dir, settings);
  t.is(s.firstIndex(), 96);
  await s.trimmed();
  t.is(s.stats.entriesTrimmed, half.length - 5);
  t.true(s.stats.syncs >= Math.ceil(s.stats.entriesTrimmed / 10), `${s.stats.syncs} transactions`);
  await s.close();
  t.deepEqual(await withRawEnv(dir, storedIndexes), [96, 97, 98, 99, 100]);
});

test('persist({snapshot}) replaces the log; an out-of-date snapshot is refused; bootstrap at index 0', async (t) => {
  const dir = tempDir(t);
  let s = await LmdbLogStore.open(dir);
  await s.persist({ snapshot: emptySnapshot(confOf([1, 2, 3])) });
  t.deepEqual(s.initialState().confState, confOf([1, 2, 3]));
  t.deepEqual(s.snapshot().metadata, { index: 0, term: 0, conf: confOf([1, 2, 3]) });
  await s.persist({ entries: ents(1, 20, 1), hardState: { term: 1, vote: 1, commit: 12 } });
  const meta = { index: 15, term: 3, conf: confOf([1, 2, 3, 4]) };
  await s.persist({ snapshot: { metadata: meta }, hardState: { term: 3, vote: 0, commit: 15 } });
  t.deepEqual([s.firstIndex(), s.lastIndex(), s.term(15)], [16, 15, 3]);
  t.throws(() => s.term(16), { instanceOf: UnavailableError });
  t.deepEqual(s.initialState().confState, meta.conf);
  await t.throwsAsync(s.persist({ snapshot: { metadata: { ...meta, index: 15 } } }), { instanceOf: SnapOutOfDateError });
  await s.persist({ entries: [ent(16, 3)] });
  await s.close();
  s = await LmdbLogStore.open(dir);
  t.deepEqual([s.firstIndex(), s.lastIndex(), s.term(15), s.term(16)], [16, 16, 3, 3]);
  t.deepEqual(s.snapshot().metadata, meta);
  await s.trimmed();
  await s.close();
  t.deepEqual(await withRawEnv(dir, storedIndexes), [16]);
});

test('group commit: concurrent persists share transactions; persistBatchRequestsMax caps a batch', async (t) => {
  const s = await LmdbLogStore.open(tempDir(t));
  for (let i = 1; i <= 10; i++) await s.persist({ entries: [ent(i, 1)] });
  t.is(s.stats.syncs, 10, 'one after the other: one sync each');
  const concurrent = [];
  for (let i = 11; i <= 410; i++) concurrent.push(s.persist({ entries: [ent(i, 1)], hardState: { term: 1, vote: 1, commit: i } }));
  await Promise.all(concurrent);
  const syncs = s.stats.syncs - 10;
  t.true(syncs <= 4, `400 concurrent persists took ${syncs} syncs`);
  t.is(s.lastIndex(), 410);
  t.is(s.initialState().hardState.commit, 410);
  await s.close();

  const capped = await LmdbLogStore.open(tempDir(t), { persistBatchRequestsMax: 50 });
  await Promise.all(Array.from({ length: 200 }, (_, k) => capped.persist({ entries: [ent(k + 1, 1)] })));
  t.is(capped.stats.syncs, 4);
  t.is(capped.stats.requestsPerSyncMax, 50);
  await capped.close();
});

test('group commit: calls made while a transaction syncs go into the next one', async (t) => {
  const s = await LmdbLogStore.open(tempDir(t));
  const first = s.persist({ entries: [ent(1, 1)] });
  // Queued while the first transaction is being written (it started when the first call was made).
  await new Promise((resolve) => setImmediate(resolve));
  const more = Array.from({ length: 50 }, (_, k) => s.persist({ entries: [ent(k + 2, 1)] }));
  await Promise.all([first, ...more]);
  t.true(s.stats.syncs <= 3, `${s.stats.syncs} syncs`);
  t.is(s.lastIndex(), 51);
  await s.close();
});

test('commit mode: rounds above syncCommitBytesMax go through the writer thread; both modes are durable', async (t) => {
  const dir = tempDir(t);
  // A small entry encodes to a few dozen bytes, a big one to over 400: below and above syncCommitBytesMax 100.
  const s = await LmdbLogStore.open(dir, { syncCommitBytesMax: 100 });
  const small = (i: number) => ent(i, 1);
  const big = (i: number) => ent(i, 1, Buffer.alloc(400, i));
  const sizeOf = (i: number) => (i % 3 === 0 ? 400 : small(i).data.byteLength);
  const at = (i: number) => (i % 3 === 0 ? big(i) : small(i));
  for (let i = 1; i <= 6; i++) await s.persist({ entries: [at(i)], hardState: { term: 1, vote: 1, commit: i - 1 } });
  // A synchronous burst shares one round whatever its mode.
  const syncsBefore = s.stats.syncs;
  await Promise.all(Array.from({ length: 20 }, (_, k) => s.persist({ entries: [at(7 + k)] })));
  t.is(s.stats.syncs - syncsBefore, 1);
  await s.close();
  const reopened = await LmdbLogStore.open(dir, { syncCommitBytesMax: 0 });
  t.is(reopened.lastIndex(), 26);
  t.is(reopened.initialState().hardState.commit, 5);
  const back = reopened.entries(1, 27, ALL);
  t.deepEqual(back.map((e) => e.data.byteLength), Array.from({ length: 26 }, (_, k) => sizeOf(k + 1)));
  t.deepEqual(plain(back), plain(Array.from({ length: 26 }, (_, k) => at(k + 1))));
  // syncCommitBytesMax 0: every round with entries commits on the writer thread.
  await reopened.persist({ entries: [small(27)], hardState: { term: 1, vote: 1, commit: 27 } });
  await reopened.close();
  const again = await LmdbLogStore.open(dir);
  t.is(again.initialState().hardState.commit, 27);
  t.deepEqual(plain(again.entries(27, 28, ALL)), plain([small(27)]));
  await again.close();
  await t.throwsAsync(LmdbLogStore.open(tempDir(t), { syncCommitBytesMax: -1 }), { instanceOf: RangeError, message: /syncCommitBytesMax/ });
});

test('limits: queue length, entry size; settings are validated', async (t) => {
  const s = await LmdbLogStore.open(tempDir(t), { persistQueueRequestsMax: 5, entryBytesMax: 10 });
  const calls = Array.from({ length: 6 }, (_, k) => s.persist({ entries: [ent(k + 1, 1, 'x')] }));
  await Promise.all(calls.slice(0, 5));
  await t.throwsAsync(calls[5]!, { instanceOf: StorageLimitError, message: /persistQueueRequestsMax/ });
  await t.throwsAsync(s.persist({ entries: [ent(6, 1, 'x'.repeat(11))] }), { instanceOf: StorageLimitError, message: /entryBytesMax/ });
  await s.persist({ entries: [ent(6, 1, 'x'.repeat(10))] });
  await s.close();
  await t.throwsAsync(LmdbLogStore.open(tempDir(t), { entriesPerCompactionTxnMax: 0 }), { instanceOf: RangeError });
});

test('a closed store refuses calls; one directory cannot be opened twice', async (t) => {
  const dir = tempDir(t);
  const s = await LmdbLogStore.open(dir);
  await t.throwsAsync(LmdbLogStore.open(dir), { instanceOf: StorageClosedError, message: /already open/ });
  const pending = s.persist({ entries: [ent(1, 1)] });
  const closing = s.close();
  await pending; // queued before close: still written
  await closing;
  await t.throwsAsync(s.persist({ entries: [ent(2, 1)] }), { instanceOf: StorageClosedError });
  t.throws(() => s.term(1), { instanceOf: StorageClosedError });
  const again = await LmdbLogStore.open(dir);
  t.is(again.lastIndex(), 1);
  await again.close();
});

test('corruption: a flipped byte in an entry is reported with its index, never returned', async (t) => {
  const dir = tempDir(t);
  const s = await LmdbLogStore.open(dir);
  await s.persist({ entries: ents(1, 10, 1), hardState: { term: 1, vote: 1, commit: 3 } });
  await s.close();
  await withRawEnv(dir, async (raw) => {
    await flipEntryByte(raw, 5, 20); // a data byte
    await flipEntryByte(raw, 7, 6); // a term byte
  });
  const r = await LmdbLogStore.open(dir);
  const err = t.throws(() => r.entries(1, 11, ALL), { instanceOf: StorageCorruptionError });
  t.is(err?.index, 5);
  t.regex(err!.message, /entry 5 is corrupt: crc32c/);
  t.throws(() => r.term(7), { instanceOf: StorageCorruptionError, message: /entry 7/ });
  t.deepEqual(r.entries(1, 5, ALL).map((e) => e.index), [1, 2, 3, 4]);
  t.is(r.term(6), 1);
  await r.close();
});

test('corruption: a missing entry, a damaged last entry, a damaged hard state, a newer format', async (t) => {
  const dir = tempDir(t);
  const s = await LmdbLogStore.open(dir);
  await s.persist({ entries: ents(1, 10, 1), hardState: { term: 1, vote: 1, commit: 3 } });
  await s.close();
  await withRawEnv(dir, (raw) => raw.entries.remove(Buffer.from([0, 0, 0, 0, 0, 0, 0, 4])));
  const r = await LmdbLogStore.open(dir);
  t.throws(() => r.entries(2, 8, ALL), { instanceOf: StorageCorruptionError, message: /entry 4 is missing/ });
  await r.close();

  await withRawEnv(dir, (raw) => flipEntryByte(raw, 10, 17));
  await t.throwsAsync(LmdbLogStore.open(dir), { instanceOf: StorageCorruptionError, message: /entry 10/ });
  await withRawEnv(dir, (raw) => flipEntryByte(raw, 10, 17)); // repaired

  await withRawEnv(dir, async (raw) => {
    const hs = Buffer.from(raw.meta.get('hardState')!);
    hs[10] = hs[10]! ^ 1;
    await raw.meta.put('hardState', hs);
  });
  await t.throwsAsync(LmdbLogStore.open(dir), { instanceOf: StorageCorruptionError, message: /'hardState' is corrupt/ });

  const other = tempDir(t);
  await (await LmdbLogStore.open(other)).close();
  await withRawEnv(other, (raw) => raw.meta.put('format', sealRecord('format', Buffer.from([0, 0, 0, 9]))));
  await t.throwsAsync(LmdbLogStore.open(other), { message: /format 9/ });
});

/** Runs the persist child until it has acknowledged `killAt` more entries, then kills it with SIGKILL. */
async function runAndKill(dir: string, killAt: number): Promise<number> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, '1000000', '4'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let acked = 0;
  let seen = 0;
  let pending = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      if (!line.startsWith('ACK ')) continue;
      acked = Math.max(acked, Number(line.slice(4)));
      // Killed the moment the acknowledgement is seen, while later persists are in flight.
      if (++seen === killAt) child.kill('SIGKILL');
    }
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('exit', (c, s) => resolve([c, s])),
  );
  if (signal !== 'SIGKILL') throw new Error(`child exited with ${code} / ${signal}`);
  return acked;
}

test('kill -9 right after a resolved persist: every acknowledged entry and hard state survives', async (t) => {
  const dir = tempDir(t);
  for (const killAt of [25, 60]) {
    const acked = await runAndKill(dir, killAt);
    const s = await LmdbLogStore.open(dir);
    t.true(s.lastIndex() >= acked, `acked ${acked}, last index ${s.lastIndex()}`);
    t.true(s.initialState().hardState.commit >= acked);
    const all = s.entries(1, s.lastIndex() + 1, ALL);
    const bad = all.filter((e) => !Buffer.from(e.data).equals(payloadOf(e.index)));
    t.deepEqual(bad.map((e) => e.index), []);
    t.is(all.length, s.lastIndex());
    await s.close();
  }
});

/** One syscall of an strace -f -y log. */
interface Call {
  name: string;
  fd: number;
  path: string;
  /** Line where it started and where it returned. */
  start: number;
  end: number;
  text: string;
}

/** Parses `strace -f -y` output (strace pads pids of different widths with extra spaces), pairing "<unfinished ...>" lines with their "<... resumed>" lines. */
function parseStrace(lines: string[]): Call[] {
  const calls: Call[] = [];
  const open = new Map<string, Call>();
  lines.forEach((line, n) => {
    const resumed = /^(\d+)\s+<\.\.\. (\w+) resumed>/.exec(line);
    if (resumed) {
      const c = open.get(`${resumed[1]}:${resumed[2]}`);
      if (c) c.end = n;
      return;
    }
    const m = /^(\d+)\s+(\w+)\((\d+)<([^>]*)>(.*)$/.exec(line);
    if (!m) return;
    const call: Call = { name: m[2]!, fd: Number(m[3]), path: m[4]!, start: n, end: n, text: line };
    calls.push(call);
    if (line.endsWith('<unfinished ...>')) {
      call.end = Number.POSITIVE_INFINITY;
      open.set(`${m[1]}:${m[2]}`, call);
    }
  });
  return calls;
}

const hasStrace = spawnSync('strace', ['-V']).status === 0;

(hasStrace ? test : test.skip)('durability: every data.mdb write is fsynced (or O_DSYNC) before persist() resolves (strace)', (t) => {
  const dir = tempDir(t);
  const trace = path.join(dir, 'trace.txt');
  const db = path.join(dir, 'db');
  const run = spawnSync(
    'strace',
    // fsync returns are delayed by 20 ms: an acknowledgement that raced ahead of the flush would show.
    ['-f', '-qq', '-y', '-o', trace, '-e', 'trace=openat,write,writev,pwrite64,pwritev,fsync,fdatasync',
      '-e', 'inject=fsync,fdatasync:delay_exit=20000',
      process.execPath, '--import', 'tsx', CHILD, db, '4', '1'],
    { encoding: 'utf8', timeout: 15_000 },
  );
  if (run.status !== 0 && /ptrace|Operation not permitted/.test(run.stderr)) {
    t.log(`strace cannot trace here: ${run.stderr.trim()}`);
    t.pass();
    return;
  }
  t.is(run.status, 0, run.stderr);
  const lines = fs.readFileSync(trace, 'utf8').split('\n');
  const dsyncFds = new Set(
    lines.filter((l) => /openat\(.*data\.mdb".*O_DSYNC/.test(l)).map((l) => Number(/= (\d+)</.exec(l)?.[1])),
  );
  t.true(dsyncFds.size >= 1, 'LMDB writes its meta page through an O_DSYNC descriptor');
  const calls = parseStrace(lines).filter((c) => c.path.endsWith('data.mdb'));
  const writes = calls.filter((c) => /write/.test(c.name));
  const syncs = calls.filter((c) => c.name === 'fsync' || c.name === 'fdatasync');
  for (let i = 1; i <= 4; i++) {
    const begin = lines.findIndex((l) => l.includes(`"BEGIN ${i}\\n"`));
    const ack = lines.findIndex((l) => l.includes(`"ACK ${i}\\n"`));
    t.true(begin >= 0 && ack > begin, `markers of entry ${i}`);
    const mine = writes.filter((w) => w.start > begin && w.start < ack);
    t.true(mine.length > 0, `entry ${i}: data.mdb was written between BEGIN and ACK`);
    for (const w of writes.filter((w) => w.start < ack)) {
      if (dsyncFds.has(w.fd)) {
        t.true(w.end < ack, `entry ${i}: O_DSYNC write returned before ACK: ${w.text}`);
        continue;
      }
      const synced = syncs.some((s) => s.start > w.end && s.end < ack);
      t.true(synced, `entry ${i}: ${w.text} is fsynced before ACK`);
    }
  }
});

// ---- Entry cache ----------------------------------------------------------------------------------------

/** Reads entries(lo, hi) and reports how many came from the cache and how many from LMDB. */
function readCounted(s: LmdbLogStore, lo: number, hi: number, max = ALL): { got: ReturnType<typeof plain>; cached: number; stored: number } {
  const [c0, s0] = [s.stats.entriesReadCached, s.stats.entriesReadStored];
  const got = plain(s.entries(lo, hi, max));
  if (s.stats.entryCacheFaults !== 0) throw new Error('the entry cache disagreed with the log');
  return { got, cached: s.stats.entriesReadCached - c0, stored: s.stats.entriesReadStored - s0 };
}

/** Cache bytes charged for `n` entries of `dataBytes` each (stored value + overhead). */
function cacheCost(n: number, dataBytes: number): number {
  return n * (dataBytes + ENTRY_VALUE_HEADER_BYTES + ENTRY_CACHE_OVERHEAD_BYTES);
}

test('entry cache: durable entries are served from memory, from the store\'s own copy of the bytes', async (t) => {
  const dir = tempDir(t);
  const s = await LmdbLogStore.open(dir);
  const data = Buffer.from('original-payload');
  const written = [ent(1, 1, data), ent(2, 1, 'two'), { ...ent(3, 2, 'three'), type: 1 }];
  const pending = s.persist({ entries: written });
  // Not durable yet: neither the view nor the cache shows the entries.
  t.throws(() => s.entries(1, 2, ALL), { instanceOf: UnavailableError });
  t.is(s.entryCacheUsage().entries, 0);
  await pending;
  const expected = plain(written);
  // The caller reuses its buffer (a pooled network buffer would): what the store hands out must not change.
  data.fill(0x21);
  written[1]!.term = 99;
  const r = readCounted(s, 1, 4);
  t.deepEqual(r.got, expected);
  t.deepEqual([r.cached, r.stored], [3, 0], 'all three from memory');
  t.not(s.entries(1, 2, ALL)[0]!.data, data);
  t.is(s.term(2), 1);
  t.deepEqual(s.entryCacheUsage(), { entries: 3, firstIndex: 1, bytes: cacheCost(1, 16) + cacheCost(1, 3) + cacheCost(1, 5) });
  // The size limit applies to cached entries as to stored ones.
  t.deepEqual(s.entries(1, 4, 0).map((e) => e.index), [1]);
  t.deepEqual(s.entries(1, 4, 16 + 3 + 2 * ENTRY_HEADER_BYTES).map((e) => e.index), [1, 2]);
  await s.close();
  // After a restart the cache starts empty: the same entries come from LMDB.
  const again = await LmdbLogStore.open(dir);
  const r2 = readCounted(again, 1, 4);
  t.deepEqual(r2.got, expected);
  t.deepEqual([r2.cached, r2.stored], [0, 3]);
  await again.close();
});

test('entry cache: a conflicting append cuts the cached suffix, also below the cached range', async (t) => {
  const one = cacheCost(1, ent(1, 1).data.byteLength);
  // Room for four entries of this size (indexes up to 9 encode to the same length).
  const s = await LmdbLogStore.open(tempDir(t), { entryCacheBytesMax: 4 * one });
  await s.persist({ entries: ents(1, 9, 1), hardState: { term: 1, vote: 1, commit: 3 } });
  t.deepEqual(s.entryCacheUsage(), { entries: 4, firstIndex: 6, bytes: 4 * one });
  // Inside the cached range: 8 and 9 are replaced, the log now ends at 8.
  await s.persist({ entries: [ent(7, 2), ent(8, 2)] });
  t.deepEqual(s.entryCacheUsage(), { entries: 3, firstIndex: 6, bytes: 3 * one });
  let r = readCounted(s, 4, 9);
  t.deepEqual(r.got, plain([ent(4, 1), ent(5, 1), ent(6, 1), ent(7, 2), ent(8, 2)]));
  t.deepEqual([r.stored, r.cached], [2, 3]);
  t.throws(() => s.entries(8, 10, ALL), { instanceOf: UnavailableError });
  t.throws(() => s.term(9), { instanceOf: UnavailableError });
  // Below the cached range: everything cached is replaced.
  await s.persist({ entries: [ent(5, 3)] });
  t.deepEqual(s.entryCacheUsage(), { entries: 1, firstIndex: 5, bytes: one });
  r = readCounted(s, 1, 6);
  t.deepEqual(r.got, plain([...ents(1, 4, 1), ent(5, 3)]));
  t.deepEqual([r.stored, r.cached], [4, 1]);
  t.throws(() => s.entries(1, 7, ALL), { instanceOf: UnavailableError });
  t.deepEqual([s.term(5), s.lastIndex()], [3, 5]);
  // A call rejected in a round fills nothing; the valid one beside it does.
  const gap = s.persist({ entries: [ent(9, 3)] });
  const ok = s.persist({ entries: [ent(6, 3)] });
  await t.throwsAsync(gap, { instanceOf: RaftAssertionError });
  await ok;
  t.deepEqual(s.entryCacheUsage(), { entries: 2, firstIndex: 5, bytes: 2 * one });
  t.deepEqual(readCounted(s, 5, 7).got, plain([ent(5, 3), ent(6, 3)]));
  await s.close();
});

test('entry cache: compaction drops what falls below firstIndex; an installed snapshot replaces everything', async (t) => {
  const s = await LmdbLogStore.open(tempDir(t));
  await s.persist({ entries: ents(1, 10, 1), hardState: { term: 1, vote: 1, commit: 8 } });
  await s.createSnapshot(6, confOf([1]));
  t.deepEqual(s.entryCacheUsage().entries, 10, 'a snapshot alone changes no entry');
  await s.compact(4);
  t.deepEqual([s.entryCacheUsage().entries, s.entryCacheUsage().firstIndex], [6, 5]);
  t.throws(() => s.entries(4, 6, ALL), { instanceOf: CompactedError });
  t.deepEqual(readCounted(s, 5, 11), { got: plain(ents(5, 10, 1)), cached: 6, stored: 0 });
  // A snapshot from the leader inside the cached range: entries after it are gone, new ones take their place.
  const meta = { index: 9, term: 2, conf: confOf([1, 2]) };
  await s.persist({ snapshot: { metadata: meta }, hardState: { term: 2, vote: 0, commit: 9 } });
  t.deepEqual(s.entryCacheUsage(), { entries: 0, firstIndex: 0, bytes: 0 });
  t.throws(() => s.entries(9, 10, ALL), { instanceOf: CompactedError });
  t.throws(() => s.entries(10, 11, ALL), { instanceOf: UnavailableError });
  t.deepEqual([s.firstIndex(), s.lastIndex(), s.term(9)], [10, 9, 2]);
  // A snapshot and new entries in one call (and one beyond the old log in the next).
  await s.persist({ snapshot: { metadata: { ...meta, index: 20, term: 3 } }, entries: ents(21, 22, 3), hardState: { term: 3, vote: 0, commit: 20 } });
  t.deepEqual(readCounted(s, 21, 23), { got: plain(ents(21, 22, 3)), cached: 2, stored: 0 });
  t.throws(() => s.entries(10, 21, ALL), { instanceOf: CompactedError });
  // Compacting everything cached empties the cache; later appends fill it again from the new tail.
  await s.persist({ hardState: { term: 3, vote: 0, commit: 22 } });
  await s.createSnapshot(22, confOf([1, 2]));
  await s.compact(22);
  t.is(s.entryCacheUsage().entries, 0);
  await s.persist({ entries: [ent(23, 3, 'new')] });
  t.deepEqual(readCounted(s, 23, 24), { got: plain([ent(23, 3, 'new')]), cached: 1, stored: 0 });
  await s.trimmed();
  await s.close();
});

test('entry cache: bounded by entryCacheBytesMax, oldest evicted first; 0 turns it off', async (t) => {
  const data = (i: number): Buffer => Buffer.alloc(1000, i);
  const one = cacheCost(1, 1000);
  const s = await LmdbLogStore.open(tempDir(t), { entryCacheBytesMax: 10 * one + 500 });
  for (let i = 1; i <= 30; i += 3) await s.persist({ entries: [0, 1, 2].map((k) => ent(i + k, 1, data(i + k))) });
  t.deepEqual(s.entryCacheUsage(), { entries: 10, firstIndex: 21, bytes: 10 * one });
  const all = Array.from({ length: 30 }, (_, k) => ent(k + 1, 1, data(k + 1)));
  t.deepEqual(readCounted(s, 1, 31), { got: plain(all), cached: 10, stored: 20 });
  // The size limit across the boundary between LMDB and memory: 19..22 fit in 4 entries' size.
  const four = 4 * (1000 + ENTRY_HEADER_BYTES);
  t.deepEqual(readCounted(s, 19, 31, four), { got: plain(all.slice(18, 22)), cached: 2, stored: 2 });
  t.deepEqual(readCounted(s, 15, 31, four), { got: plain(all.slice(14, 18)), cached: 0, stored: 4 });
  // An entry larger than the whole cache is not kept: oldest first, everything goes, then the entry itself.
  await s.persist({ entries: [ent(31, 1, Buffer.alloc(20_000, 1))] });
  t.deepEqual(s.entryCacheUsage(), { entries: 0, firstIndex: 0, bytes: 0 });
  await s.persist({ entries: [ent(32, 1, data(32))] });
  t.deepEqual(s.entryCacheUsage(), { entries: 1, firstIndex: 32, bytes: one });
  t.deepEqual(readCounted(s, 30, 33).got, plain([all[29]!, ent(31, 1, Buffer.alloc(20_000, 1)), ent(32, 1, data(32))]));
  await s.close();

  const off = await LmdbLogStore.open(tempDir(t), { entryCacheBytesMax: 0 });
  await off.persist({ entries: all });
  t.deepEqual(off.entryCacheUsage(), { entries: 0, firstIndex: 0, bytes: 0 });
  t.deepEqual(readCounted(off, 1, 31), { got: plain(all), cached: 0, stored: 30 });
  await off.close();
  await t.throwsAsync(LmdbLogStore.open(tempDir(t), { entryCacheBytesMax: -1 }), { instanceOf: RangeError, message: /entryCacheBytesMax/ });
});

test('entry cache: many entries through a small cache stay exact (eviction and repacking)', async (t) => {
  const one = cacheCost(1, 8);
  const s = await LmdbLogStore.open(tempDir(t), { entryCacheBytesMax: 700 * one });
  const payload = (i: number, term: number): Buffer => {
    const b = Buffer.alloc(8);
    b.writeUInt32BE(i, 0);
    b.writeUInt32BE(term, 4);
    return b;
  };
  let term = 1;
  let last = 0;
  for (let round = 0; round < 40; round++) {
    // Mostly appends, every few rounds a conflicting rewrite of the last 50.
    const at = round % 7 === 6 ? last - 49 : last + 1;
    if (at <= last) term++;
    const batch = Array.from({ length: 100 }, (_, k) => ent(at + k, term, payload(at + k, term)));
    await s.persist({ entries: batch });
    last = at + 99;
    const u = s.entryCacheUsage();
    t.true(u.bytes <= 700 * one && u.firstIndex + u.entries - 1 === last, `round ${round}: ${JSON.stringify(u)}`);
  }
  const cached = s.entries(last - 699, last + 1, ALL);
  for (const e of cached) t.true(Buffer.from(e.data).equals(payload(e.index, e.term)), `entry ${e.index}`);
  t.deepEqual(s.entries(1, last + 1, ALL).map((e) => e.index), Array.from({ length: last }, (_, k) => k + 1));
  t.is(s.entries(last - 10, last + 1, ALL).at(-1)!.term, term);
  await s.close();
});
