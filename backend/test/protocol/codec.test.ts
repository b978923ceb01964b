import test from 'ava';
import fc from 'fast-check';
import { DecodeError, Reader, Writer } from '../../src/protocol/codec.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const written = (fn: (w: Writer) => void): string => {
  const w = new Writer();
  fn(w);
  return w.toBuffer().toString('hex');
};

test('unsigned varint edge values have the expected bytes and read back', (t) => {
  const cases: [number, string][] = [
    [0, '00'], [1, '01'], [127, '7f'], [128, '8001'], [300, 'ac02'], [16383, 'ff7f'], [16384, '808001'],
    [2 ** 31 - 1, 'ffffffff07'], [2 ** 32 - 1, 'ffffffff0f'],
  ];
  for (const [v, bytes] of cases) {
    t.is(written((w) => w.uvarint(v)), bytes, `write ${v}`);
    const r = new Reader(hex(bytes));
    t.is(r.uvarint(), v, `read ${v}`);
    t.is(r.remaining, 0);
  }
});

test('zigzag varint and varlong edge values', (t) => {
  const ints: [number, string][] = [
    [0, '00'], [-1, '01'], [1, '02'], [-2, '03'], [63, '7e'], [-64, '7f'], [64, '8001'],
    [2 ** 31 - 1, 'feffffff0f'], [-(2 ** 31), 'ffffffff0f'],
  ];
  for (const [v, bytes] of ints) {
    t.is(written((w) => w.varint(v)), bytes, `varint ${v}`);
    t.is(new Reader(hex(bytes)).varint(), v);
    t.is(written((w) => w.varlong(BigInt(v))), bytes, `varlong ${v}`);
    t.is(new Reader(hex(bytes)).varlong(), BigInt(v));
  }
  const longs: [bigint, string][] = [
    [2n ** 63n - 1n, 'feffffffffffffffff01'], [-(2n ** 63n), 'ffffffffffffffffff01'],
    // 2^52 is where the writer switches from its number path to bigint: both sides of it.
    [2n ** 52n - 1n, 'feffffffffffff0f'], [2n ** 52n, '80808080808080 10'], [-(2n ** 52n) - 1n, '81808080808080 10'],
  ];
  for (const [v, bytes] of longs) {
    t.is(written((w) => w.varlong(v)), hex(bytes).toString('hex'), `varlong ${v}`);
    t.is(new Reader(hex(bytes)).varlong(), v);
  }
});

test('overlong, oversized and truncated varints are rejected with DecodeError', (t) => {
  const bad = [
    'ffffffff10', // 5th byte above 2^32-1
    'ffffffffff01', // 6 bytes
    '80', // truncated
    '',
  ];
  for (const b of bad) t.throws(() => new Reader(hex(b)).uvarint('test.count'), { instanceOf: DecodeError, message: /test\.count/ });
  t.throws(() => new Reader(hex('ffffffffffffffffff02')).varlong(), { instanceOf: DecodeError }); // above 2^64-1
  t.throws(() => new Reader(hex('ffffffffffffffffffff01')).varlong(), { instanceOf: DecodeError }); // 11 bytes
  t.throws(() => new Reader(hex('ffff')).varlong(), { instanceOf: DecodeError });
  // Non-minimal encodings within 5 bytes are accepted, as Kafka accepts them.
  t.is(new Reader(hex('8000')).uvarint(), 0);
  t.throws(() => new Writer().uvarint(-1), { instanceOf: RangeError });
  t.throws(() => new Writer().uvarint(2 ** 32), { instanceOf: RangeError });
  t.throws(() => new Writer().varint(2 ** 31), { instanceOf: RangeError });
});

test('varint and varlong round-trip over their whole range', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.bigInt(-(2n ** 63n), 2n ** 63n - 1n), (i, l) => {
      const w = new Writer();
      w.varint(i);
      w.varlong(l);
      w.uvarint(i >>> 0);
      const r = new Reader(w.toBuffer());
      return r.varint() === i && r.varlong() === l && r.uvarint() === i >>> 0 && r.remaining === 0;
    }),
    { numRuns: 500 },
  );
  t.pass();
});

test('fixed-size primitives round-trip', (t) => {
  const w = new Writer({ initialBytes: 4 }); // forces several grows
  w.int8(-128);
  w.int16(-32768);
  w.int32(-2147483648);
  w.int64(-(2n ** 63n));
  w.uint16(65535);
  w.uint32(4294967295);
  w.float64(-1.5e300);
  w.bool(true);
  w.bool(false);
  const id = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
  w.uuid(id);
  const buf = w.toBuffer();
  t.is(buf.length, 1 + 2 + 4 + 8 + 2 + 4 + 8 + 1 + 1 + 16);
  const r = new Reader(buf);
  t.is(r.int8(), -128);
  t.is(r.int16(), -32768);
  t.is(r.int32(), -2147483648);
  t.is(r.int64(), -(2n ** 63n));
  t.is(r.uint16(), 65535);
  t.is(r.uint32(), 4294967295);
  t.is(r.float64(), -1.5e300);
  t.true(r.bool());
  t.false(r.bool());
  const u = r.uuid();
  t.deepEqual(u, id);
  t.is(u.buffer, buf.buffer, 'uuid is a zero-copy view');
  t.throws(() => r.int8('tail'), { instanceOf: DecodeError, message: /tail: needs 1 bytes/ });
  t.throws(() => new Writer().uuid(Buffer.alloc(15)), { instanceOf: RangeError });
});

test('int64 across the double-exact boundary, and integer range checks on write', (t) => {
  const values = [
    0n, -1n, 1n, 2n ** 32n - 1n, 2n ** 32n, -(2n ** 32n), BigInt(Number.MAX_SAFE_INTEGER), -BigInt(Number.MAX_SAFE_INTEGER),
    2n ** 53n, -(2n ** 53n), -(2n ** 53n) - 1n, 2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n), 1700000000000n,
  ];
  for (const v of values) {
    const w = new Writer();
    w.int64(v);
    const b = w.toBuffer();
    t.is(b.readBigInt64BE(0), v, `write ${v}`);
    t.is(new Reader(b).int64(), v, `read ${v}`);
  }
  fc.assert(
    fc.property(fc.bigInt(-(2n ** 63n), 2n ** 63n - 1n), (v) => {
      const b = Buffer.alloc(8);
      b.writeBigInt64BE(v);
      const w = new Writer();
      w.int64(v);
      return new Reader(b).int64() === v && w.toBuffer().equals(b);
    }),
    { numRuns: 300 },
  );
  t.throws(() => new Writer().int8(128), { instanceOf: RangeError });
  t.throws(() => new Writer().int16(-32769), { instanceOf: RangeError });
  t.throws(() => new Writer().int32(2 ** 31), { instanceOf: RangeError });
  t.throws(() => new Writer().int32(1.5), { instanceOf: RangeError });
  t.throws(() => new Writer().int32(undefined as unknown as number), { instanceOf: RangeError });
  t.is(written((w) => { w.int8(-1); w.int16(-2); w.int32(-3); }), 'fffffefffffffd');
});

test('strings: int16 and compact forms, UTF-8, null handling', (t) => {
  t.is(written((w) => w.string('abc')), '0003616263');
  t.is(written((w) => w.nullableString(null)), 'ffff');
  t.is(written((w) => w.compactString('abc')), '04616263');
  t.is(written((w) => w.compactNullableString(null)), '00');
  t.is(written((w) => w.compactString('')), '01');
  t.is(written((w) => w.string('é')), '0002c3a9');
  const long = 'x'.repeat(200) + '€';
  const w = new Writer();
  w.compactString(long);
  w.string(long);
  w.compactString('ü'.repeat(42));
  w.compactString('ü'.repeat(43));
  const r = new Reader(w.toBuffer());
  t.is(r.compactString(), long);
  t.is(r.string(), long);
  t.is(r.compactString(), 'ü'.repeat(42));
  t.is(r.compactString(), 'ü'.repeat(43));
  t.is(r.remaining, 0);
  t.throws(() => new Writer().string('x'.repeat(32768)), { instanceOf: RangeError });
  t.throws(() => new Writer().compactString('x'.repeat(32768)), { instanceOf: RangeError });
  t.throws(() => new Reader(hex('ffff')).string('T.name'), { instanceOf: DecodeError, message: /T\.name: null/ });
  t.throws(() => new Reader(hex('00')).compactString('T.name'), { instanceOf: DecodeError, message: /T\.name/ });
  t.throws(() => new Reader(hex('fffe')).nullableString(), { instanceOf: DecodeError, message: /invalid string length -2/ });
  t.throws(() => new Reader(hex('0005 6162')).string('T.s'), { instanceOf: DecodeError, message: /T\.s: needs 5 bytes/ });
  t.is(new Reader(hex('ffff')).nullableString(), null);
  t.is(new Reader(hex('00')).compactNullableString(), null);
});

test('bytes are zero-copy views and null lengths are checked', (t) => {
  const buf = hex('00000003 010203 04 0a0b0c ffffffff 00');
  const r = new Reader(buf);
  const b = r.bytes();
  t.deepEqual(b, hex('010203'));
  t.is(b.buffer, buf.buffer);
  t.deepEqual(r.compactBytes(), hex('0a0b0c'));
  t.is(r.nullableBytes(), null);
  t.is(r.compactNullableBytes(), null);
  t.throws(() => new Reader(hex('ffffffff')).bytes('P.records'), { instanceOf: DecodeError, message: /P\.records/ });
  t.throws(() => new Reader(hex('7fffffff 00')).bytes(), { instanceOf: DecodeError, message: /needs 2147483647 bytes/ });
});

test('array counts are checked against the remaining bytes before anything is allocated', (t) => {
  const frame = Buffer.alloc(20);
  frame.writeInt32BE(0x7fffffff, 0);
  const started = process.hrtime.bigint();
  t.throws(() => new Reader(frame).arrayLength(1, 'M.topics'), { instanceOf: DecodeError, message: /M\.topics: 2147483647 elements/ });
  const compact = hex('ffffffff07' + '00'.repeat(15)); // count + 1 = 2^31 - 1
  t.throws(() => new Reader(compact).compactArrayLength(1, 'M.topics'), { instanceOf: DecodeError });
  // 4 int32 elements need 16 bytes: 15 remain.
  t.throws(() => new Reader(hex('00000004' + '00'.repeat(15))).arrayLength(4), { instanceOf: DecodeError });
  t.is(new Reader(hex('00000004' + '00'.repeat(16))).arrayLength(4), 4);
  t.true(process.hrtime.bigint() - started < 50_000_000n, 'fails fast');
  t.is(new Reader(hex('ffffffff')).arrayLength(1), -1);
  t.is(new Reader(hex('00')).compactArrayLength(1), -1);
  t.throws(() => new Reader(hex('fffffffe')).arrayLength(1), { instanceOf: DecodeError, message: /invalid array length/ });
});

test('tagged-field sections: unknown tags are skipped, sizes are checked', (t) => {
  // two fields: tag 5 with 3 bytes, tag 200 with 0 bytes; then a trailing byte
  const r = new Reader(hex('02 05 03 aabbcc c801 00 ee'));
  r.skipTaggedFields();
  t.is(r.remaining, 1);
  t.throws(() => new Reader(hex('01 05 09 aabb')).skipTaggedFields('S tagged fields'), {
    instanceOf: DecodeError, message: /S tagged fields/,
  });
  const r2 = new Reader(hex('04 aabbccdd'));
  const end = r2.taggedFieldEnd();
  t.is(end, 5);
  r2.skip(3);
  t.throws(() => r2.expectOffset(end), { instanceOf: DecodeError, message: /declared size/ });
});

test('Writer keeps large payloads by reference and copies small ones', (t) => {
  const big = Buffer.alloc(10_000, 7);
  const small = Buffer.alloc(10, 1);
  const w = new Writer({ zeroCopyBytesMin: 8192 });
  w.int32(0); // placeholder, patched below
  w.bytes(small);
  w.bytes(big);
  w.int16(5);
  w.records([big, small, big], true);
  w.int8(1);
  const chunks = w.toChunks();
  t.true(chunks.includes(big), 'large payload kept by reference');
  t.is(chunks.filter((c) => c === big).length, 3);
  t.false(chunks.includes(small), 'small payload copied');
  const total = 4 + 4 + 10 + 4 + 10_000 + 2 + 3 + 20_010 + 1;
  t.is(w.length, total);
  w.patchInt32(0, w.length - 4);
  const buf = w.toBuffer();
  t.is(buf.length, total);
  t.is(buf.readInt32BE(0), total - 4);
  const r = new Reader(buf, 4);
  t.deepEqual(r.bytes(), small);
  t.deepEqual(r.bytes(), big);
  t.is(r.int16(), 5);
  t.deepEqual(r.compactBytes(), Buffer.concat([big, small, big]));
  t.is(r.int8(), 1);
  // Writing continues after toChunks without disturbing what was returned.
  w.int32(9);
  t.is(Buffer.concat(chunks).length, total);
  t.is(w.toBuffer().readInt32BE(total), 9);
});

test('Writer with a single section returns it without copying into a new buffer', (t) => {
  const w = new Writer();
  w.int32(1);
  t.is(w.toChunks().length, 1);
  t.is(w.toBuffer().length, 4);
  t.deepEqual(new Writer().toChunks(), []);
  t.is(new Writer().toBuffer().length, 0);
});
