// SnapshotStore with real files in a temp dir: write/load round trips (whole and streamed data), checksum
// failures and fallback, retention, receiving a snapshot in chunks (finish, bad data, abort), limits, and the
// cleanup of unfinished files at open.

import test from 'ava';
import { crc32c } from '@node-rs/crc32';
import fs from 'node:fs';
import path from 'node:path';
import { SnapshotCorruptError, StorageLimitError } from '../../../src/raft/storage/errors.ts';
import { SnapshotStore, snapshotFileName } from '../../../src/raft/storage/snapshot-store.ts';
import type { SnapshotOffer } from '../../../src/raft/storage/snapshot-store.ts';
import type { SnapshotMetadata } from '../../../src/raft/core/types.ts';
import { confOf, tempDir } from './_helpers.ts';

const meta = (index: number, term: number, voters = [1, 2, 3]): SnapshotMetadata => ({
  index,
  term,
  conf: { ...confOf(voters, [9]), votersOutgoing: [1], learnersNext: [4], autoLeave: true },
});

/** Deterministic pseudo-random bytes. */
function bytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of chunks) out.push(c);
  return out;
}

function flipByte(file: string, position: number): void {
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, position);
  b[0] = b[0]! ^ 0xff;
  fs.writeSync(fd, b, 0, 1, position);
  fs.closeSync(fd);
}

test('write and load: metadata, data, file name; chunks() streams at most snapshotChunkBytes', async (t) => {
  const dir = tempDir(t);
  const store = await SnapshotStore.open(dir, { snapshotChunkBytes: 1000 });
  const data = bytes(10_500, 1);
  const info = await store.write(meta(42, 7), data);
  t.is(info.name, snapshotFileName(7, 42));
  t.is(info.name, 'snapshot-00000000000000000007-00000000000000000042.snap');
  t.deepEqual(fs.readdirSync(dir), [info.name]);
  const loaded = await store.load(info);
  t.deepEqual(loaded.metadata, meta(42, 7));
  t.is(loaded.dataBytes, data.length);
  t.is(loaded.dataCrc32c, crc32c(data));
  const chunks = await collect(loaded.chunks());
  t.true(chunks.every((c) => c.length <= 1000));
  t.is(chunks.length, 11);
  t.true(Buffer.concat(chunks).equals(data));
  t.true((await loaded.readAll()).equals(data));
  t.deepEqual(await store.latest(), info);
});

test('write streams an async iterable to disk through a bounded buffer', async (t) => {
  const dir = tempDir(t);
  const chunkBytes = 64 * 1024;
  const store = await SnapshotStore.open(dir, { snapshotChunkBytes: chunkBytes });
  const piece = 10_000;
  const total = 300;
  let lagMax = 0;
  async function* produce(): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < total; i++) {
      // What is on disk lags what was handed over by at most one buffer (plus the chunk in hand).
      const temp = fs.readdirSync(dir).find((n) => n.endsWith('.tmp'));
      if (temp !== undefined) lagMax = Math.max(lagMax, i * piece - (fs.statSync(path.join(dir, temp)).size - 200));
      yield bytes(piece, i);
    }
  }
  const info = await store.write(meta(5, 1), produce());
  t.true(lagMax <= chunkBytes, `data held in memory reached ${lagMax} bytes`);
  const loaded = await store.load(info);
  t.is(loaded.dataBytes, piece * total);
  const expected = crc32c(Buffer.concat(Array.from({ length: total }, (_, i) => bytes(piece, i))));
  t.is(loaded.dataCrc32c, expected);
  // A chunk larger than the buffer is written straight through.
  const big = bytes(3 * chunkBytes + 5, 9);
  const info2 = await store.write(meta(6, 1), [bytes(10, 1), big, bytes(7, 2)]);
  t.true((await (await store.load(info2)).readAll()).equals(Buffer.concat([bytes(10, 1), big, bytes(7, 2)])));
});

test('load rejects a damaged file with a clear error and leaves it in place', async (t) => {
  const dir = tempDir(t);
  const store = await SnapshotStore.open(dir);
  const info = await store.write(meta(10, 2), bytes(5000, 3));
  const size = fs.statSync(info.path).size;
  flipByte(info.path, size - 100); // a data byte
  const err = await t.throwsAsync(store.load(info), { instanceOf: SnapshotCorruptError, message: /data crc32c/ });
  t.is(err?.path, info.path);
  t.true(fs.existsSync(info.path));
  flipByte(info.path, size - 100);
  flipByte(info.path, 50); // inside the ConfState
  await t.throwsAsync(store.load(info), { instanceOf: SnapshotCorruptError, message: /header crc32c/ });
  flipByte(info.path, 50);
  fs.truncateSync(info.path, size - 1);
  await t.throwsAsync(store.load(info), { instanceOf: SnapshotCorruptError, message: /file has/ });
  fs.writeFileSync(info.path, 'not a snapshot at all, but long enough to hold a header......');
  await t.throwsAsync(store.load(info), { instanceOf: SnapshotCorruptError, message: /bad magic/ });
  // A file renamed to another snapshot's name is caught by the header.
  const other = await store.write(meta(11, 2), bytes(10, 1));
  fs.renameSync(other.path, path.join(dir, snapshotFileName(3, 11)));
  const renamed = (await store.list()).find((s) => s.term === 3)!;
  await t.throwsAsync(store.load(renamed), { instanceOf: SnapshotCorruptError, message: /header says term 2 index 11/ });
});

test('loadLatest falls back to the previous snapshot and keeps the bad one as .corrupt', async (t) => {
  const dir = tempDir(t);
  const store = await SnapshotStore.open(dir, { snapshotsRetained: 3 });
  const a = await store.write(meta(10, 1), bytes(2000, 1));
  const b = await store.write(meta(20, 2), bytes(2000, 2));
  const c = await store.write(meta(30, 2), bytes(2000, 3));
  t.is((await store.loadLatest())!.info.name, c.name);
  t.is((await store.loadLatest({ indexMax: 25 }))!.info.name, b.name);
  flipByte(c.path, fs.statSync(c.path).size - 1);
  const fallback = await store.loadLatest();
  t.is(fallback?.info.name, b.name);
  t.true((await fallback!.readAll()).equals(bytes(2000, 2)));
  t.true(fs.existsSync(`${c.path}.corrupt`), 'kept for inspection');
  t.deepEqual((await store.list()).map((s) => s.name), [a.name, b.name]);
  // Retention never counts (nor deletes) the corrupt file.
  await store.write(meta(40, 3), bytes(10, 4));
  await store.write(meta(50, 3), bytes(10, 5));
  t.deepEqual((await store.list()).map((s) => s.index), [20, 40, 50]);
  t.true(fs.existsSync(`${c.path}.corrupt`));
  flipByte(path.join(dir, snapshotFileName(3, 50)), 20);
  flipByte(path.join(dir, snapshotFileName(3, 40)), 20);
  flipByte(b.path, 20);
  t.is(await store.loadLatest(), undefined);
});

test('retention keeps the newest snapshotsRetained snapshots', async (t) => {
  const dir = tempDir(t);
  const store = await SnapshotStore.open(dir, { snapshotsRetained: 2 });
  for (const i of [1, 2, 3, 4]) await store.write(meta(i * 10, i), bytes(100, i));
  t.deepEqual((await store.list()).map((s) => [s.index, s.term]), [[30, 3], [40, 4]]);
  t.deepEqual(fs.readdirSync(dir).sort(), [snapshotFileName(3, 30), snapshotFileName(4, 40)]);
});

/** The offer a leader would send for a loaded snapshot. */
function offerOf(m: SnapshotMetadata, data: Buffer): SnapshotOffer {
  return { metadata: m, dataBytes: data.length, dataCrc32c: crc32c(data) };
}

test('receive: chunks with offsets, then finish verifies and installs atomically', async (t) => {
  const leaderDir = tempDir(t);
  const leader = await SnapshotStore.open(leaderDir, { snapshotChunkBytes: 4096 });
  const data = bytes(50_000, 8);
  const sent = await leader.load(await leader.write(meta(100, 4), data));
  const dir = tempDir(t);
  const follower = await SnapshotStore.open(dir, { snapshotChunkBytes: 10_000 });
  const rx = await follower.begin(sent);
  let offset = 0;
  for await (const chunk of sent.chunks()) {
    await rx.write(chunk, offset);
    offset += chunk.length;
    t.deepEqual(await follower.list(), [], 'nothing visible before finish');
  }
  t.is(rx.bytesReceived, data.length);
  const info = await rx.finish();
  t.deepEqual(fs.readdirSync(dir), [info.name]);
  const got = await follower.load(info);
  t.deepEqual(got.metadata, meta(100, 4));
  t.true((await got.readAll()).equals(data));
  await t.throwsAsync(rx.write(Buffer.from('x')), { message: /finished/ });
});

test('receive: bad CRC, short or long data, wrong offset fail and remove the temp file', async (t) => {
  const dir = tempDir(t);
  const store = await SnapshotStore.open(dir);
  const data = bytes(1000, 5);
  const tmpFiles = (): string[] => fs.readdirSync(dir).filter((n) => n.endsWith('.tmp'));

  const badCrc = await store.begin({ ...offerOf(meta(7, 1), data), dataCrc32c: crc32c(data) ^ 1 });
  await badCrc.write(data);
  t.is(tmpFiles().length, 1);
  await t.throwsAsync(badCrc.finish(), { instanceOf: SnapshotCorruptError, message: /crc32c/ });
  t.deepEqual(fs.readdirSync(dir), []);

  const short = await store.begin(offerOf(meta(7, 1), data));
  await short.write(data.subarray(0, 999));
  await t.throwsAsync(short.finish(), { instanceOf: SnapshotCorruptError, message: /received 999 of 1000/ });

  const long = await store.begin(offerOf(meta(7, 1), data));
  await long.write(data);
  await t.throwsAsync(long.write(Buffer.from('!')), { instanceOf: SnapshotCorruptError, message: /more data/ });
  await t.throwsAsync(long.finish(), { instanceOf: SnapshotCorruptError }, 'the receive stays failed');

  const gap = await store.begin(offerOf(meta(7, 1), data));
  await gap.write(data.subarray(0, 100), 0);
  await t.throwsAsync(gap.write(data.subarray(200, 300), 200), { instanceOf: SnapshotCorruptError, message: /offset 200, expected 100/ });
  t.deepEqual(fs.readdirSync(dir), []);
});

test('receive: abort removes the temp file; snapshotReceivesMax and snapshotBytesMax are enforced', async (t) => {
  const dir = tempDir(t);
  const store = await SnapshotStore.open(dir, { snapshotReceivesMax: 2, snapshotBytesMax: 5000 });
  const data = bytes(1000, 6);
  const a = await store.begin(offerOf(meta(7, 1), data));
  const b = await store.begin(offerOf(meta(8, 1), data));
  await t.throwsAsync(store.begin(offerOf(meta(9, 1), data)), { instanceOf: StorageLimitError, message: /snapshotReceivesMax/ });
  await a.write(data.subarray(0, 500));
  const pending = a.write(data.subarray(500, 600)); // still queued: the abort cancels it
  await a.abort();
  await t.throwsAsync(pending, { message: /aborted/ });
  t.is(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp')).length, 1, "only b's temp file is left");
  await t.throwsAsync(a.write(data), { message: /aborted/ });
  const c = await store.begin(offerOf(meta(9, 1), data)); // a's slot is free again
  await c.abort();
  await b.abort();
  t.deepEqual(fs.readdirSync(dir), []);
  await t.throwsAsync(store.begin(offerOf(meta(9, 1), bytes(5001, 1))), { instanceOf: StorageLimitError, message: /snapshotBytesMax/ });
  await t.throwsAsync(store.write(meta(9, 1), [bytes(3000, 1), bytes(3000, 2)]), { instanceOf: StorageLimitError });
  t.deepEqual(fs.readdirSync(dir), []);
});

test('open removes unfinished temp files and keeps the snapshots', async (t) => {
  const dir = tempDir(t);
  const store = await SnapshotStore.open(dir);
  const info = await store.write(meta(3, 1), bytes(10, 1));
  const rx = await store.begin(offerOf(meta(9, 2), bytes(100, 2)));
  await rx.write(bytes(50, 2));
  fs.writeFileSync(path.join(dir, `${snapshotFileName(1, 99)}.abcdef.tmp`), 'half');
  fs.writeFileSync(path.join(dir, 'unrelated.txt'), 'keep me');
  await SnapshotStore.open(dir);
  t.deepEqual(fs.readdirSync(dir).sort(), [info.name, 'unrelated.txt'].sort());
  await rx.abort(); // closes the handle of the "crashed" receive
});

test('chunks() notices a file changed after it was loaded; readAll is bounded', async (t) => {
  const dir = tempDir(t);
  const store = await SnapshotStore.open(dir, { snapshotChunkBytes: 100, snapshotInMemoryBytesMax: 999 });
  const info = await store.write(meta(3, 1), bytes(1000, 1));
  const loaded = await store.load(info);
  await t.throwsAsync(loaded.readAll(), { instanceOf: StorageLimitError, message: /snapshotInMemoryBytesMax/ });
  flipByte(info.path, fs.statSync(info.path).size - 1);
  const seen: number[] = [];
  await t.throwsAsync(
    (async () => {
      for await (const c of loaded.chunks()) seen.push(c.length);
    })(),
    { instanceOf: SnapshotCorruptError, message: /changed since it was loaded/ },
  );
  t.is(seen.length, 9, 'the last chunk is withheld');
});

test('settings are validated', async (t) => {
  await t.throwsAsync(SnapshotStore.open(tempDir(t), { snapshotsRetained: 0 }), { instanceOf: RangeError });
  await t.throwsAsync(SnapshotStore.open(tempDir(t), { snapshotChunkBytes: 1.5 }), { instanceOf: RangeError });
});
