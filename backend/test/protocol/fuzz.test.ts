// Hostile input: random bytes and mutated valid frames (bit flips, truncation, huge counts and lengths) fed to
// the request header decoder and every request decoder. Each either decodes or throws DecodeError, never another
// exception, and what it returns is bounded by the input size (counts are checked before allocation).
import test from 'ava';
import fc from 'fast-check';
import { DecodeError, Reader } from '../../src/protocol/codec.ts';
import type { ApiCodec } from '../../src/protocol/api-codec.ts';
import { encodeRequestFrame } from '../../src/protocol/frame.ts';
import * as generated from '../../src/protocol/generated/index.ts';
import { API_CODECS } from '../../src/protocol/generated/index.ts';
import { decodeRequestHeader } from '../../src/protocol/headers.ts';
import { loadSchemas, SampleBuilder, schemasAvailable } from './_schemas.ts';

const codecs = [...API_CODECS.values()];
const schemas = schemasAvailable() ? loadSchemas() : null;

/** A valid request: schema-built with non-default values when the schemas are here, else all defaults. */
function sampleRequest(codec: ApiCodec, version: number, seed: number): unknown {
  const schema = schemas?.get(`${codec.name}Request`);
  if (schema !== undefined) return new SampleBuilder(schema, seed).build(version, 'full');
  const make = (generated as unknown as Record<string, () => unknown>)[`default${codec.name}Request`]!;
  return make();
}

/** Array elements plus string characters in a decoded value: what decoding allocated in proportion to input. */
function weight(v: unknown, input: Buffer): number {
  if (typeof v === 'string') return v.length;
  if (Buffer.isBuffer(v)) {
    // Decoded bytes are views into the input; only defaults (16-byte zero uuids, empty buffers) are new.
    if (v.buffer !== input.buffer && v.length > 16) throw new Error(`a ${v.length}-byte buffer was copied`);
    return 0;
  }
  if (Array.isArray(v)) return v.reduce((n: number, x) => n + 1 + weight(x, input), 0);
  if (v !== null && typeof v === 'object') return Object.values(v).reduce((n: number, x) => n + weight(x, input), 0);
  return 0;
}

/** Decode like the server does; only DecodeError may escape, and the result must be bounded by the input. */
function decodeLikeServer(frame: Buffer, bodyCodec: ApiCodec, bodyVersion: number): void {
  const check = (fn: () => unknown): void => {
    try {
      const out = fn();
      const w = weight(out, frame);
      if (w > 2 * frame.length + 16) throw new Error(`decoded weight ${w} for ${frame.length} input bytes`);
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
    }
  };
  check(() => {
    const r = new Reader(frame);
    const h = decodeRequestHeader(r);
    const codec = API_CODECS.get(h.apiKey);
    if (codec === undefined || h.apiVersion < codec.minVersion || h.apiVersion > codec.maxVersion) return h;
    return codec.decodeRequest(r, h.apiVersion);
  });
  // The body decoder at the intended version, whatever the (possibly mutated) header says.
  check(() => bodyCodec.decodeRequest(new Reader(frame, Math.min(frame.length, 8)), bodyVersion));
}

const apiAndVersion = fc
  .integer({ min: 0, max: codecs.length - 1 })
  .chain((i) => fc.tuple(fc.constant(codecs[i]!), fc.integer({ min: codecs[i]!.minVersion, max: codecs[i]!.maxVersion })));

test('random bytes: header and every request decoder either decode or throw DecodeError', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 96 }), fc.integer({ min: 0, max: 1000 }), (bytes, pick) => {
      const buf = Buffer.from(bytes);
      for (const codec of codecs) {
        const version = codec.minVersion + (pick % (codec.maxVersion - codec.minVersion + 1));
        decodeLikeServer(buf, codec, version);
      }
    }),
    { numRuns: 200, seed: 0x5eed },
  );
  t.pass();
});

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'huge32'; at: number; value: number }
  | { kind: 'byte'; at: number; value: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('huge32' as const), at: fc.nat(), value: fc.constantFrom(0x7fffffff, 0x80000000, 0xfffffffe, 0x00ffffff) }),
  fc.record({ kind: fc.constant('byte' as const), at: fc.nat(), value: fc.constantFrom(0xff, 0x7f, 0x80, 0xfe, 0x00) }),
);

function mutate(frame: Buffer, ms: Mutation[]): Buffer {
  let out = Buffer.from(frame);
  for (const m of ms) {
    if (out.length === 0) break;
    const at = m.at % out.length;
    if (m.kind === 'flip') out[at]! ^= 1 << m.bit;
    else if (m.kind === 'truncate') out = out.subarray(0, at);
    else if (m.kind === 'byte') out[at] = m.value;
    else if (at + 4 <= out.length) out.writeUInt32BE(m.value, at);
  }
  return out;
}

test('mutated valid frames of every API: bit flips, truncation, huge counts', (t) => {
  fc.assert(
    fc.property(apiAndVersion, fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.nat(), ([codec, version], ms, seed) => {
      const frame = encodeRequestFrame(codec.apiKey, version, 1, 'fuzz', sampleRequest(codec, version, seed));
      // Skip the size prefix: the server strips it before decoding.
      decodeLikeServer(mutate(frame.subarray(4), ms), codec, version);
    }),
    { numRuns: 1800, seed: 0xf00d },
  );
  t.pass();
});

test('a huge count in any request position fails fast without allocating', (t) => {
  // Every 4-byte window of a valid Produce and Fetch request set to 2^31-1, decoded in full.
  for (const apiKey of [0, 1, 3]) {
    const codec = API_CODECS.get(apiKey)!;
    for (const version of [codec.minVersion, codec.maxVersion]) {
      const frame = encodeRequestFrame(apiKey, version, 1, 'c', sampleRequest(codec, version, 7)).subarray(4);
      const started = process.hrtime.bigint();
      const heapBefore = process.memoryUsage().heapUsed;
      for (let at = 0; at + 4 <= frame.length; at++) {
        const m = Buffer.from(frame);
        m.writeInt32BE(0x7fffffff, at);
        decodeLikeServer(m, codec, version);
      }
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      t.true(ms < 2000, `${codec.name} v${version}: ${ms} ms`);
      t.true(process.memoryUsage().heapUsed - heapBefore < 256 * 1024 * 1024, 'no large allocation');
    }
  }
});
