import test from 'ava';
import fc from 'fast-check';
import { MessageType } from '../../../src/raft/core/types.ts';
import { newMessage } from '../../../src/raft/core/util.ts';
import { encodeMessage } from '../../../src/raft/transport/codec.ts';
import {
  FRAME_HEADER_BYTES,
  FRAME_LENGTH_BYTES,
  FrameDecodeError,
  FrameDecoder,
  FrameKind,
  clusterTagOf,
  decodeFrame,
  encodeFrame,
  frameHead,
  sealFrame,
} from '../../../src/raft/transport/frame.ts';

const TAG = clusterTagOf('c');

function heartbeatFrame(): Buffer {
  return sealFrame(encodeMessage(newMessage({ type: MessageType.Heartbeat, from: 1, to: 2, term: 3, commit: 9 })), FrameKind.Message, TAG, 1);
}

function decodeAll(bytes: Buffer, frameBytesMax = 1 << 20): number {
  const decoder = new FrameDecoder(frameBytesMax);
  decoder.push(bytes);
  let n = 0;
  while (decoder.next() !== null) n++;
  return n;
}

test('a frame carries its kind, cluster tag and sender; a separate head gives the same bytes', (t) => {
  const payload = Buffer.from('payload bytes');
  const whole = encodeFrame(FrameKind.SnapChunk, TAG, 2 ** 50, payload);
  const head = frameHead(FrameKind.SnapChunk, TAG, 2 ** 50, [payload.subarray(0, 4), payload.subarray(4)]);
  t.deepEqual(Buffer.concat([head, payload]), whole);
  const f = decodeFrame(whole.subarray(FRAME_LENGTH_BYTES));
  t.is(f.kind, FrameKind.SnapChunk);
  t.is(f.clusterTag, TAG);
  t.is(f.sender, 2 ** 50);
  t.deepEqual(f.payload, payload);
  t.is(f.wireBytes, whole.length);
});

test('any single flipped byte after the length prefix is caught: it never decodes as a frame', (t) => {
  const frame = heartbeatFrame();
  let caught = 0;
  for (let at = FRAME_LENGTH_BYTES; at < frame.length; at++) {
    for (const xor of [0x01, 0x80, 0xff]) {
      const bad = Buffer.from(frame);
      bad[at]! ^= xor;
      t.throws(() => decodeAll(bad), { instanceOf: FrameDecodeError });
      caught++;
    }
  }
  t.is(caught, (frame.length - FRAME_LENGTH_BYTES) * 3);
});

test('clear errors for bad CRC, magic, version, kind, short and oversized frames', (t) => {
  const frame = heartbeatFrame();
  const crc = Buffer.from(frame);
  crc[frame.length - 1]! ^= 1;
  t.throws(() => decodeAll(crc), { instanceOf: FrameDecodeError, message: /CRC mismatch/ });
  const magic = Buffer.from(frame);
  magic[4] = 0x11;
  t.throws(() => decodeAll(magic), { instanceOf: FrameDecodeError, message: /not a Raft transport frame/ });
  const version = Buffer.from(frame);
  version[4] = 0xa2;
  t.throws(() => decodeAll(version), { instanceOf: FrameDecodeError, message: /unsupported protocol version 2/ });
  const kind = encodeFrame(99 as FrameKind, TAG, 1, Buffer.alloc(0));
  t.throws(() => decodeAll(kind), { instanceOf: FrameDecodeError, message: /unknown frame kind 99/ });
  const short = Buffer.from([0, 0, 0, 3, 0xa1, 0, 0]);
  t.throws(() => decodeAll(short), { instanceOf: FrameDecodeError, message: /shorter than the 18-byte header/ });
  // The length alone condemns the frame: nothing of its body needs to arrive.
  t.throws(() => decodeAll(Buffer.from([0, 0x10, 0, 0]), 1000), { instanceOf: FrameDecodeError, message: /1048576 is outside 18\.\.1000 \(frameBytesMax\)/ });
  t.throws(() => decodeAll(Buffer.from([0xff, 0xff, 0xff, 0xff])), { instanceOf: FrameDecodeError, message: /length -1/ });
  t.throws(() => decodeAll(frame, frame.length - FRAME_LENGTH_BYTES - 1), { instanceOf: FrameDecodeError, message: /frameBytesMax/ });
  t.is(decodeAll(frame, frame.length - FRAME_LENGTH_BYTES), 1);
  t.is(FRAME_HEADER_BYTES, 18);
});

test('random bytes never crash the frame decoder', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), fc.boolean(), (raw, withMagic) => {
      const bytes = Buffer.from(raw);
      // Half the cases start like a real frame (plausible length and magic) so the checks after those run too.
      if (withMagic && bytes.length >= 5) {
        bytes.writeInt32BE(bytes.length - 4, 0);
        bytes[4] = 0xa1;
      }
      try {
        decodeAll(bytes, 1000);
      } catch (err) {
        if (!(err instanceof FrameDecodeError)) throw err;
      }
    }),
    { numRuns: 3000 },
  );
  t.pass();
});
