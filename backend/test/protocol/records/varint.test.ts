import test from 'ava';
import fc from 'fast-check';
import {
  ByteReader,
  readInt64BE,
  sizeOfVarint,
  writeInt64BE,
  writeVarint,
  zigzagDecode,
  zigzagEncode,
} from '../../../src/protocol/records/varint.ts';
import { KafkaError } from '../../../src/protocol/errors.ts';

test('zigzag maps small magnitudes to small codes', (t) => {
  t.deepEqual([0, -1, 1, -2, 2].map(zigzagEncode), [0, 1, 2, 3, 4]);
  t.is(zigzagEncode(2147483647), 4294967294);
  t.is(zigzagEncode(-2147483648), 4294967295);
});

test('known varint encodings (Kafka protocol guide / protobuf)', (t) => {
  const buf = Buffer.alloc(10);
  t.is(writeVarint(buf, 0, 0), 1);
  t.is(buf[0], 0);
  t.is(writeVarint(buf, 0, -1), 1);
  t.is(buf[0], 1);
  t.is(writeVarint(buf, 0, 150), 2); // zigzag 300 = 0xac 0x02
  t.deepEqual([...buf.subarray(0, 2)], [0xac, 0x02]);
  t.is(sizeOfVarint(-2147483648), 5);
});

test('varlong round trip for |n| <= 2^52', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: -(2 ** 52), max: 2 ** 52 }), (n) => {
      const buf = Buffer.alloc(10);
      const end = writeVarint(buf, 0, n);
      if (end !== sizeOfVarint(n)) return false;
      const r = new ByteReader(buf, 0, end);
      return r.readVarlong() === n && r.remaining === 0;
    }),
  );
  t.pass();
});

test('varint round trip over int32', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: -2147483648, max: 2147483647 }), (n) => {
      const buf = Buffer.alloc(5);
      writeVarint(buf, 0, n);
      return new ByteReader(buf).readVarint() === n && zigzagDecode(zigzagEncode(n)) === n;
    }),
  );
  t.pass();
});

test('int64 helpers match BigInt encoding', (t) => {
  fc.assert(
    fc.property(fc.maxSafeInteger(), (n) => {
      const a = Buffer.alloc(8);
      const b = Buffer.alloc(8);
      writeInt64BE(a, 0, n);
      b.writeBigInt64BE(BigInt(n));
      return a.equals(b) && readInt64BE(a, 0) === n;
    }),
  );
  t.pass();
});

test('malformed varints are CORRUPT_MESSAGE, not crashes', (t) => {
  const tooLong = Buffer.alloc(11, 0xff);
  const e1 = t.throws(() => new ByteReader(tooLong).readVarlong());
  t.true(e1 instanceof KafkaError);
  const cut = Buffer.from([0x80]);
  const e2 = t.throws(() => new ByteReader(cut).readVarint());
  t.is((e2 as KafkaError).code, 2);
  const e3 = t.throws(() => new ByteReader(Buffer.from([0x08, 1])).readVarBytes()); // length 4, 1 byte left
  t.is((e3 as KafkaError).code, 2);
});
