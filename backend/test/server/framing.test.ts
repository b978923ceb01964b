import test from 'ava';
import fc from 'fast-check';
import { FrameReader, FrameSizeError } from '../../src/server/framing.ts';

function frame(payload: Buffer): Buffer {
  const size = Buffer.alloc(4);
  size.writeInt32BE(payload.length);
  return Buffer.concat([size, payload]);
}

function drain(reader: FrameReader): Buffer[] {
  const out: Buffer[] = [];
  for (let f = reader.next(); f !== null; f = reader.next()) out.push(Buffer.from(f));
  return out;
}

test('frames come out whole however the stream is split', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
      fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 30 }),
      (payloads, cuts) => {
        const stream = Buffer.concat(payloads.map((p) => frame(Buffer.from(p))));
        const reader = new FrameReader(1000);
        const out: Buffer[] = [];
        let offset = 0;
        let i = 0;
        while (offset < stream.length) {
          const n = cuts[i++ % cuts.length]!;
          reader.push(stream.subarray(offset, offset + n));
          offset += n;
          out.push(...drain(reader));
        }
        t.deepEqual(out, payloads.map((p) => Buffer.from(p)));
        t.is(reader.bufferedBytes, 0);
      },
    ),
    { numRuns: 200 },
  );
});

test('a frame inside one chunk is a view of it, not a copy', (t) => {
  const chunk = frame(Buffer.from('hello'));
  const reader = new FrameReader(100);
  reader.push(chunk);
  const f = reader.next()!;
  t.is(f.toString(), 'hello');
  t.is(f.buffer, chunk.buffer);
});

test('a size above the limit or negative throws before the body arrives', (t) => {
  const reader = new FrameReader(100);
  const head = Buffer.alloc(4);
  head.writeInt32BE(101);
  reader.push(head);
  const err = t.throws(() => reader.next(), { instanceOf: FrameSizeError });
  t.is(err?.size, 101);

  const negative = new FrameReader(100);
  negative.push(Buffer.from([0xff, 0xff, 0xff, 0xfe]));
  t.throws(() => negative.next(), { instanceOf: FrameSizeError });
});

test('a size exactly at the limit is accepted, a size prefix split across chunks is read', (t) => {
  const reader = new FrameReader(3);
  const f = frame(Buffer.from('abc'));
  reader.push(f.subarray(0, 1));
  t.is(reader.next(), null);
  reader.push(f.subarray(1, 3));
  t.is(reader.next(), null);
  reader.push(f.subarray(3));
  t.is(reader.next()!.toString(), 'abc');
  reader.push(frame(Buffer.alloc(0)));
  t.is(reader.next()!.length, 0);
});
