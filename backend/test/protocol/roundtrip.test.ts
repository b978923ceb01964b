// Every API, every version, both directions: a sample message built from the schema (independently of the
// generator) is encoded, decoded and compared. Also checks the registry against the schemas.
import test from 'ava';
import { Reader, Writer } from '../../src/protocol/codec.ts';
import * as generated from '../../src/protocol/generated/index.ts';
import { API_CODECS, ApiKey } from '../../src/protocol/generated/index.ts';
import { loadSchemas, SampleBuilder, schemasAvailable, SCHEMA_DIR, versionBounds, type Mode } from './_schemas.ts';

type Decode = (r: Reader, version: number) => unknown;
type Encode = (w: Writer, version: number, msg: unknown) => void;

function roundTrip(encode: Encode, decode: Decode, version: number, msg: unknown): { decoded: unknown; bytes: Buffer } {
  const w = new Writer({ zeroCopyBytesMin: 64 });
  encode(w, version, msg);
  const bytes = w.toBuffer();
  const r = new Reader(bytes);
  const decoded = decode(r, version);
  if (r.remaining !== 0) throw new Error(`${r.remaining} bytes left after decoding`);
  return { decoded, bytes };
}

if (!schemasAvailable()) {
  test('schema round-trips need ../shared/kafka-protocol/messages', (t) => {
    t.log(`${SCHEMA_DIR} is absent: schema-driven round-trips skipped (byte vectors still run in frame.test.ts)`);
    t.false(schemasAvailable());
  });
} else {
  const schemas = loadSchemas();
  const fns = generated as unknown as Record<string, Decode | Encode>;

  test('the registry lists every request/response pair with the schema version ranges', (t) => {
    const requests = [...schemas.values()].filter((s) => s.type === 'request');
    t.is(API_CODECS.size, requests.length);
    for (const s of requests) {
      const name = s.name.replace(/Request$/, '');
      const codec = API_CODECS.get(s.apiKey!);
      t.truthy(codec, name);
      const [lo, hi] = versionBounds(s.validVersions);
      t.is(codec!.name, name);
      t.is(codec!.minVersion, lo, name);
      t.is(codec!.maxVersion, hi, name);
      const flex = s.flexibleVersions === 'none' ? Infinity : Number(s.flexibleVersions.replace('+', ''));
      t.is(codec!.firstFlexibleVersion, flex, name);
      t.is((ApiKey as Record<string, number>)[name], s.apiKey!);
    }
    t.deepEqual([...API_CODECS.keys()], [...API_CODECS.keys()].sort((a, b) => a - b));
  });

  const messages = [...schemas.values()];
  for (const schema of messages) {
    test(`${schema.name}: every version round-trips`, (t) => {
      const decode = fns[`decode${schema.name}`] as Decode;
      const encode = fns[`encode${schema.name}`] as Encode;
      t.is(typeof decode, 'function');
      t.is(typeof encode, 'function');
      const [lo, hi] = versionBounds(schema.validVersions);
      for (let v = lo; v <= hi; v++) {
        for (const mode of ['full', 'nulls'] as Mode[]) {
          const sample = new SampleBuilder(schema, v * 31 + (mode === 'full' ? 1 : 2)).build(v, mode);
          const { decoded } = roundTrip(encode, decode, v, sample);
          t.deepEqual(decoded, sample, `${schema.name} v${v} ${mode}`);
        }
      }
      // Outside the valid range the codec refuses instead of guessing.
      t.throws(() => encode(new Writer(), hi + 1, {}), { instanceOf: RangeError });
    });
  }

  test('a field absent at a version is skipped when encoding and defaulted when decoding', (t) => {
    // ProduceRequest v2 has no transactionalId; FetchResponse v12 has topic names, v13 topic ids.
    const produce = { transactionalId: 'tx', acks: -1, timeoutMs: 1000, topicData: [] };
    const enc = roundTrip(fns.encodeProduceRequest as Encode, fns.decodeProduceRequest as Decode, 2, produce);
    t.deepEqual(enc.decoded, { ...produce, transactionalId: null });
    t.is(enc.bytes.length, 2 + 4 + 4);
  });

  test('null in a field that is not nullable at this version names the field', (t) => {
    const sample = new SampleBuilder(schemas.get('MetadataResponse')!, 1).build(11, 'full');
    (sample.topics as Record<string, unknown>[])[0]!.name = null; // nullable only from v12
    const err = t.throws(() => (fns.encodeMetadataResponse as Encode)(new Writer(), 11, sample));
    t.regex(err!.message, /MetadataResponseMetadataResponseTopic\.name.*version 11/);
    t.notThrows(() => (fns.encodeMetadataResponse as Encode)(new Writer(), 12, sample));
  });
}
