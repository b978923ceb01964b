import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { TimeIndex } from '../../src/log/time-index.ts';
import { tempDir } from './_helpers.ts';

test('entries only grow in timestamp; search starts after the last older entry', (t) => {
  const index = new TimeIndex(100);
  t.is(index.searchStartOffset(5), 100);
  t.true(index.maybeAppend(1000, 110));
  t.false(index.maybeAppend(1000, 120), 'no new maximum, no entry');
  t.false(index.maybeAppend(900, 125));
  t.true(index.maybeAppend(2000, 130));
  t.true(index.maybeAppend(3000, 150));
  t.is(index.searchStartOffset(500), 100, 'nothing older: search the whole segment');
  t.is(index.searchStartOffset(1000), 100, 'an entry equal to the target is not older');
  t.is(index.searchStartOffset(1001), 110);
  t.is(index.searchStartOffset(2500), 130);
  t.is(index.searchStartOffset(99_999), 150);
  t.is(index.lastTimestamp, 3000);
  t.is(index.lastOffset, 150);
});

test('file round trip keeps 64-bit timestamps exact (binary-parser, no BigInt)', (t) => {
  const file = path.join(tempDir(), 'x.timeindex');
  const fd = fs.openSync(file, 'w+');
  const index = new TimeIndex(0);
  const stamps = [0, 4_294_967_295, 4_294_967_296, 1_700_000_000_123, 2 ** 52 + 7];
  stamps.forEach((ts, i) => index.maybeAppend(ts, i * 3));
  index.persist(fd);
  fs.closeSync(fd);
  const bytes = fs.readFileSync(file);
  t.is(bytes.length, stamps.length * 12);
  t.is(bytes.readBigInt64BE(12 * 3), 1_700_000_000_123n);
  const loaded = TimeIndex.fromBytes(bytes, 0)!;
  t.is(loaded.entries, stamps.length);
  t.is(loaded.lastTimestamp, 2 ** 52 + 7);
  t.is(loaded.searchStartOffset(4_294_967_296), 3);
  t.is(loaded.searchStartOffset(4_294_967_297), 6);
  t.false(loaded.maybeAppend(-1, 20), 'no timestamp (-1) never makes an entry');
});

test('malformed time index files are rejected', (t) => {
  t.is(TimeIndex.fromBytes(Buffer.alloc(13), 0), null);
  const notIncreasing = Buffer.alloc(24);
  notIncreasing.writeBigInt64BE(50n, 0);
  notIncreasing.writeBigInt64BE(50n, 12);
  notIncreasing.writeInt32BE(1, 20);
  t.is(TimeIndex.fromBytes(notIncreasing, 0), null);
});
