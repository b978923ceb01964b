import test from 'ava';
import fc from 'fast-check';
import type { Message } from '../../../src/raft/core/types.ts';
import { EntryType, MessageType } from '../../../src/raft/core/types.ts';
import { newMessage } from '../../../src/raft/core/util.ts';
import {
  Channel,
  decodeHello,
  decodeMessage,
  decodeSnapBegin,
  decodeSnapChunk,
  decodeSnapResult,
  encodeHello,
  encodeMessage,
  encodeSnapBegin,
  encodeSnapResult,
  isWireMessageType,
} from '../../../src/raft/transport/codec.ts';
import { FRAME_OVERHEAD_BYTES, FrameDecodeError, FrameDecoder, FrameKind, sealFrame } from '../../../src/raft/transport/frame.ts';

const WIRE_TYPES = Object.values(MessageType).filter((v): v is MessageType => typeof v === 'number' && isWireMessageType(v));

const u53 = fc.oneof(fc.nat({ max: 300 }), fc.maxSafeNat());
const bytes = fc.uint8Array({ maxLength: 300 });
const ids = fc.array(u53, { maxLength: 5 });
const entry = fc.record({ index: u53, term: u53, type: fc.constantFrom(EntryType.Normal, EntryType.ConfChange), data: bytes });
const snapshot = fc.record({
  metadata: fc.record({
    index: u53,
    term: u53,
    conf: fc.record({ voters: ids, learners: ids, votersOutgoing: ids, learnersNext: ids, autoLeave: fc.boolean() }),
  }),
  data: bytes,
});
const arbitraryMessage: fc.Arbitrary<Message> = fc.record(
  {
    type: fc.constantFrom(...WIRE_TYPES),
    from: u53,
    to: u53,
    term: u53,
    logTerm: u53,
    index: u53,
    entries: fc.array(entry, { maxLength: 6 }),
    commit: u53,
    reject: fc.boolean(),
    rejectHint: u53,
    snapshot,
    context: bytes,
  },
  { requiredKeys: ['type', 'from', 'to', 'term', 'logTerm', 'index', 'entries', 'commit', 'reject', 'rejectHint'] },
);

/** Byte fields as Buffers (decoded ones are Buffer views, generated ones Uint8Arrays), one key order. */
function normalize(m: Message): unknown {
  return {
    ...m,
    entries: m.entries.map((e) => ({ index: e.index, term: e.term, type: e.type, data: Buffer.from(e.data) })),
    snapshot: m.snapshot === undefined ? undefined : { metadata: m.snapshot.metadata, data: Buffer.from(m.snapshot.data) },
    context: m.context === undefined ? undefined : Buffer.from(m.context),
  };
}

function frameOf(m: Message): Buffer {
  return sealFrame(encodeMessage(m), FrameKind.Message, 0x1234abcd, 7);
}

test('every message field survives encode, framing in random pieces, and decode', (t) => {
  fc.assert(
    fc.property(fc.array(arbitraryMessage, { minLength: 1, maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1 }), (messages, cuts) => {
      const stream = Buffer.concat(messages.map(frameOf));
      const decoder = new FrameDecoder(1 << 20);
      const out: Message[] = [];
      for (let at = 0, i = 0; at < stream.length; i++) {
        const n = cuts[i % cuts.length]!;
        decoder.push(stream.subarray(at, at + n));
        at += n;
        for (let f = decoder.next(); f !== null; f = decoder.next()) {
          t.is(f.kind, FrameKind.Message);
          t.is(f.sender, 7);
          t.is(f.clusterTag, 0x1234abcd);
          out.push(decodeMessage(f.payload));
        }
      }
      t.deepEqual(out.map(normalize), messages.map(normalize));
    }),
    { numRuns: 300 },
  );
});

test('absent and empty optional fields stay distinct', (t) => {
  const base = newMessage({ type: MessageType.ReadIndex, from: 1, to: 2 });
  t.false('context' in decodeMessage(encodeMessage(base).subarray(FRAME_OVERHEAD_BYTES)));
  const empty = decodeMessage(encodeMessage({ ...base, context: new Uint8Array(0) }).subarray(FRAME_OVERHEAD_BYTES));
  t.is(empty.context?.byteLength, 0);
});

test('random payloads never crash the decoders: they decode or throw FrameDecodeError', (t) => {
  const decoders = [decodeMessage, decodeHello, decodeSnapBegin, decodeSnapChunk, decodeSnapResult];
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (raw) => {
      for (const decode of decoders) {
        try {
          decode(Buffer.from(raw));
        } catch (err) {
          if (!(err instanceof FrameDecodeError)) throw err;
        }
      }
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('mutated message payloads decode or throw FrameDecodeError, never anything else', (t) => {
  fc.assert(
    fc.property(arbitraryMessage, fc.nat(), fc.integer({ min: 1, max: 255 }), (m, at, xor) => {
      const payload = Buffer.from(encodeMessage(m).subarray(FRAME_OVERHEAD_BYTES));
      if (payload.length === 0) return;
      payload[at % payload.length]! ^= xor;
      try {
        decodeMessage(payload);
      } catch (err) {
        if (!(err instanceof FrameDecodeError)) throw err;
      }
    }),
    { numRuns: 1000 },
  );
  t.pass();
});

function payloadOf(m: Message): Buffer {
  return encodeMessage(m).subarray(FRAME_OVERHEAD_BYTES);
}

test('unknown and local message types are refused with a clear error', (t) => {
  const payload = Buffer.from(payloadOf(newMessage({ type: MessageType.Heartbeat, from: 1, to: 2 })));
  payload[0] = 99;
  t.throws(() => decodeMessage(payload), { instanceOf: FrameDecodeError, message: /unknown message type 99/ });
  payload[0] = MessageType.Hup;
  t.throws(() => decodeMessage(payload), { instanceOf: FrameDecodeError, message: /message type Hup is local/ });
  t.throws(() => encodeMessage(newMessage({ type: MessageType.Beat })), { instanceOf: RangeError });
});

test('truncation, trailing bytes, oversized counts and bad entry types are refused', (t) => {
  const m = newMessage({ type: MessageType.App, from: 1, to: 2, entries: [{ index: 5, term: 2, type: EntryType.Normal, data: Buffer.from('abc') }] });
  const payload = payloadOf(m);
  t.throws(() => decodeMessage(payload.subarray(0, payload.length - 1)), { instanceOf: FrameDecodeError, message: /entry data/ });
  t.throws(() => decodeMessage(Buffer.concat([payload, Buffer.from([0])])), { instanceOf: FrameDecodeError, message: /unexpected bytes/ });
  // The entry count sits after type, 7 one-byte varints and the flags: claim 100 entries in a few bytes.
  const lying = Buffer.from(payload);
  lying[9] = 100;
  t.throws(() => decodeMessage(lying), { instanceOf: FrameDecodeError, message: /100 elements cannot fit/ });
  const badType = Buffer.from(payload);
  badType[12] = 7; // entry: index 5, term 2, then the type byte
  t.throws(() => decodeMessage(badType), { instanceOf: FrameDecodeError, message: /unknown entry type 7/ });
  const badFlags = Buffer.from(payload);
  badFlags[8] = 0x80;
  t.throws(() => decodeMessage(badFlags), { instanceOf: FrameDecodeError, message: /unknown message flags/ });
});

test('numbers that are not safe non-negative integers cannot be encoded', (t) => {
  for (const term of [-1, 1.5, 2 ** 53, Number.NaN]) {
    t.throws(() => encodeMessage(newMessage({ type: MessageType.App, term })), { instanceOf: RangeError });
  }
  // A 9-byte varint or one above 2^53-1 is refused on decode.
  const payload = Buffer.from([MessageType.App, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
  t.throws(() => decodeMessage(payload), { instanceOf: FrameDecodeError, message: /above 2\^53-1/ });
  const long = Buffer.from([MessageType.App, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
  t.throws(() => decodeMessage(long), { instanceOf: FrameDecodeError, message: /longer than 8 bytes/ });
  const max = newMessage({ type: MessageType.App, term: Number.MAX_SAFE_INTEGER, index: 2 ** 40 });
  const back = decodeMessage(payloadOf(max));
  t.is(back.term, Number.MAX_SAFE_INTEGER);
  t.is(back.index, 2 ** 40);
});

test('hello, snapshot begin and snapshot result round trip', (t) => {
  const hello = { version: 1, channel: Channel.Snapshot, nodeId: 3, targetId: 2 ** 40, clusterId: 'prod-éu' };
  t.deepEqual(decodeHello(encodeHello(hello).subarray(FRAME_OVERHEAD_BYTES)), hello);
  t.throws(() => encodeHello({ ...hello, clusterId: '' }), { instanceOf: RangeError });
  t.throws(() => encodeHello({ ...hello, clusterId: 'x'.repeat(256) }), { instanceOf: RangeError });

  const conf = { voters: [1, 2, 3], learners: [4], votersOutgoing: [], learnersNext: [], autoLeave: false };
  const snap = newMessage({ type: MessageType.Snap, from: 1, to: 2, term: 4, snapshot: { metadata: { index: 90, term: 3, conf }, data: Buffer.alloc(10, 1) } });
  const begin = decodeSnapBegin(encodeSnapBegin(snap, 10).subarray(FRAME_OVERHEAD_BYTES));
  t.is(begin.bytes, 10);
  t.deepEqual(begin.message.snapshot?.metadata, snap.snapshot!.metadata);
  t.is(begin.message.snapshot?.data.byteLength, 0, 'the data is streamed, not inline');
  t.throws(() => decodeSnapBegin(encodeSnapBegin(newMessage({ ...snap, type: MessageType.App }), 0).subarray(FRAME_OVERHEAD_BYTES)), { instanceOf: RangeError });

  t.deepEqual(decodeSnapResult(encodeSnapResult({ ok: false, reason: 'too big' }).subarray(FRAME_OVERHEAD_BYTES)), { ok: false, reason: 'too big' });
  t.is(decodeSnapResult(encodeSnapResult({ ok: true, reason: 'x'.repeat(5000) }).subarray(FRAME_OVERHEAD_BYTES)).reason.length, 1024);
});
