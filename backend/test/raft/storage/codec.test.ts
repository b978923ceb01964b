// The storage codecs: round trips at the edges of the number range, and every kind of damage detected.

import test from 'ava';
import fc from 'fast-check';
import { EntryType } from '../../../src/raft/core/types.ts';
import {
  ENTRY_VALUE_HEADER_BYTES,
  decodeConfState,
  decodeEntry,
  decodeHardState,
  decodeSnapshotMetadata,
  encodeConfState,
  encodeEntry,
  encodeHardState,
  encodeSnapshotMetadata,
  entryKey,
  entryKeyIndex,
  openRecord,
  sealRecord,
} from '../../../src/raft/storage/codec.ts';
import { StorageCorruptionError } from '../../../src/raft/storage/errors.ts';

const MAX = Number.MAX_SAFE_INTEGER;

test('entry keys sort like indexes and round trip up to 2^53 - 1', (t) => {
  const indexes = [0, 1, 255, 256, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 7, MAX];
  const keys = indexes.map(entryKey);
  t.deepEqual(keys.map(entryKeyIndex), indexes);
  const sorted = [...keys].sort(Buffer.compare);
  t.deepEqual(sorted.map(entryKeyIndex), indexes);
  t.throws(() => entryKeyIndex(Buffer.from([0xff, 0, 0, 0, 0, 0, 0, 0])), { instanceOf: StorageCorruptionError });
});

test('entries round trip (property)', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: MAX }),
      fc.integer({ min: 0, max: MAX }),
      fc.constantFrom(EntryType.Normal, EntryType.ConfChange),
      fc.uint8Array({ maxLength: 300 }),
      (index, term, type, data) => {
        const key = entryKey(index);
        const value = encodeEntry({ index, term, type, data }, key);
        const e = decodeEntry(index, key, value);
        return e.index === index && e.term === term && e.type === type && Buffer.from(e.data).equals(Buffer.from(data));
      },
    ),
  );
  t.pass();
});

test('entries: any flipped bit, a truncation, or the wrong key is detected and names the index', (t) => {
  const e = { index: 77, term: 5, type: EntryType.Normal, data: Buffer.from('hello raft') };
  const key = entryKey(77);
  const value = encodeEntry(e, key);
  for (let byte = 0; byte < value.length; byte++) {
    for (let bit = 0; bit < 8; bit++) {
      const bad = Buffer.from(value);
      bad[byte] = bad[byte]! ^ (1 << bit);
      const err = t.throws(() => decodeEntry(77, key, bad), { instanceOf: StorageCorruptionError });
      if (err?.index !== 77) t.fail(`byte ${byte} bit ${bit}: ${err?.message}`);
    }
  }
  t.throws(() => decodeEntry(77, key, value.subarray(0, value.length - 1)), { message: /entry 77 .*data length/ });
  t.throws(() => decodeEntry(77, key, value.subarray(0, ENTRY_VALUE_HEADER_BYTES - 1)), { message: /truncated/ });
  t.throws(() => decodeEntry(78, entryKey(78), value), { message: /entry 78 is corrupt: crc32c/ });
});

test('records: round trips; damage and the wrong name are detected', (t) => {
  const hs = { term: MAX, vote: 3, commit: 2 ** 33 };
  t.deepEqual(decodeHardState(openRecord('hardState', sealRecord('hardState', encodeHardState(hs)))), hs);
  const conf = { voters: [1, 2, MAX], learners: [], votersOutgoing: [4], learnersNext: [5, 6], autoLeave: true };
  t.deepEqual(decodeConfState(encodeConfState(conf)), conf);
  const meta = { index: 10, term: 3, conf };
  t.deepEqual(decodeSnapshotMetadata(encodeSnapshotMetadata(meta)), meta);
  const sealed = sealRecord('hardState', encodeHardState(hs));
  t.throws(() => openRecord('logStart', sealed), { message: /'logStart' is corrupt/ });
  const bad = Buffer.from(sealed);
  bad[7] = bad[7]! ^ 1;
  t.throws(() => openRecord('hardState', bad), { message: /'hardState' is corrupt/ });
  t.throws(() => decodeHardState(encodeHardState(hs).subarray(0, 20)), { message: /truncated/ });
  t.throws(() => decodeConfState(Buffer.concat([encodeConfState(conf), Buffer.from([0])])), { message: /trailing/ });
});
