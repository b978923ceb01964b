import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { OffsetIndex } from '../../src/log/offset-index.ts';
import { tempDir } from './_helpers.ts';

test('lookup returns the last entry at or below the offset', (t) => {
  const index = new OffsetIndex(1000);
  t.is(index.lookup(1500), 0, 'empty index: start of the segment');
  for (let i = 1; i <= 200; i++) index.append(1000 + i * 10, i * 4096);
  t.is(index.entries, 200);
  t.is(index.lookup(1005), 0);
  t.is(index.lookup(1010), 4096);
  t.is(index.lookup(1019), 4096);
  t.is(index.lookup(1020), 8192);
  t.is(index.lookup(999_999), 200 * 4096);
  t.deepEqual(index.last(), { offset: 3000, position: 200 * 4096 });
  t.throws(() => index.append(3000, 900_000), { message: /not after/ });
  t.throws(() => index.append(3001, 200 * 4096), { message: /not after/ });
});

test('persist appends only new entries; the file reads back with binary-parser', (t) => {
  const file = path.join(tempDir(), 'x.index');
  const fd = fs.openSync(file, 'w+');
  const index = new OffsetIndex(7);
  index.append(8, 100);
  index.append(12, 250);
  index.persist(fd);
  t.is(fs.statSync(file).size, 16);
  index.append(20, 900);
  index.persist(fd);
  index.persist(fd);
  fs.closeSync(fd);
  const bytes = fs.readFileSync(file);
  t.is(bytes.length, 24);
  t.deepEqual([bytes.readInt32BE(16), bytes.readInt32BE(20)], [13, 900]);
  const loaded = OffsetIndex.fromBytes(bytes, 7)!;
  t.is(loaded.entries, 3);
  t.is(loaded.lookup(15), 250);
  t.deepEqual(loaded.last(), { offset: 20, position: 900 });
});

test('malformed index files are rejected (then rebuilt by the segment)', (t) => {
  t.is(OffsetIndex.fromBytes(Buffer.alloc(12), 0), null, 'not a multiple of 8');
  const backwards = Buffer.alloc(16);
  backwards.writeInt32BE(5, 0);
  backwards.writeInt32BE(100, 4);
  backwards.writeInt32BE(4, 8);
  backwards.writeInt32BE(200, 12);
  t.is(OffsetIndex.fromBytes(backwards, 0), null, 'offsets must increase');
  const negative = Buffer.alloc(8);
  negative.writeInt32BE(-1, 0);
  t.is(OffsetIndex.fromBytes(negative, 0), null);
  t.is(OffsetIndex.fromBytes(Buffer.alloc(0), 0)!.entries, 0);
});
