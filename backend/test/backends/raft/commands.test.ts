import test from 'ava';
import fc from 'fast-check';
import {
  APPEND_ITEM_HEADER_BYTES,
  COMMAND_HEADER_BYTES,
  CommandDecodeError,
  appendCommandBytes,
  decodeCommand,
  encodeAppend,
  encodeCommand,
  type Command,
} from '../../../src/backends/raft/commands.ts';

const uuid = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => Buffer.from(a));
const name = fc.string({ minLength: 1, maxLength: 60 });
const ts = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const safe = fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER });
const bytes = fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a));

const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({
    type: fc.constant('createTopic' as const),
    timestampMs: ts,
    name,
    topicId: uuid,
    partitions: int32,
    replicationFactor: fc.integer({ min: -32768, max: 32767 }),
    configs: fc.dictionary(name, fc.string({ maxLength: 40 })).map((d) => ({ ...d })),
  }),
  fc.record({ type: fc.constant('deleteTopic' as const), timestampMs: ts, name, topicId: uuid }),
  fc.record({ type: fc.constant('createPartitions' as const), timestampMs: ts, name, topicId: uuid, totalCount: int32 }),
  fc.record({
    type: fc.constant('alterConfigs' as const),
    timestampMs: ts,
    name,
    topicId: uuid,
    mode: fc.constantFrom('replace' as const, 'incremental' as const),
    ops: fc.array(fc.record({ name, op: fc.constantFrom(0 as const, 1 as const, 2 as const, 3 as const), value: fc.option(fc.string({ maxLength: 40 }), { nil: null }) }), { maxLength: 5 }),
  }),
  fc.record({
    type: fc.constant('append' as const),
    timestampMs: ts,
    items: fc.array(fc.record({ topicId: uuid, partition: int32, records: bytes }), { maxLength: 6 }),
  }),
  fc.record({
    type: fc.constant('commitOffsets' as const),
    timestampMs: ts,
    group: name,
    offsets: fc.array(
      fc.record({ topic: name, partition: int32, offset: safe, leaderEpoch: int32, metadata: fc.option(fc.string({ maxLength: 50 }), { nil: null }) }),
      { maxLength: 5 },
    ),
  }),
  fc.record({ type: fc.constant('deleteOffsets' as const), timestampMs: ts, group: name, partitions: fc.array(fc.record({ topic: name, partition: int32 }), { maxLength: 5 }) }),
  fc.record({ type: fc.constant('deleteRecords' as const), timestampMs: ts, topicId: uuid, partition: int32, offset: safe }),
  fc.record({ type: fc.constant('initProducerId' as const), timestampMs: ts }),
  fc.record({ type: fc.constant('expireGroups' as const), timestampMs: ts, cutoffMs: safe, groups: fc.array(name, { maxLength: 5 }) }),
);

/** Plain values for deepEqual: Buffers as hex, config maps as sorted entries. */
function plain(c: Command): unknown {
  return JSON.parse(JSON.stringify(c, (_k, v: unknown) => {
    if (v !== null && typeof v === 'object' && (v as { type?: string }).type === 'Buffer') return Buffer.from((v as { data: number[] }).data).toString('hex');
    return v;
  }));
}

test('every command survives encode -> decode unchanged', (t) => {
  fc.assert(
    fc.property(command, (c) => {
      const decoded = decodeCommand(encodeCommand(c));
      t.deepEqual(plain(decoded), plain(c));
    }),
    { numRuns: 500 },
  );
});

test('append items keep their record bytes exactly and the size is predicted exactly', (t) => {
  const items = [
    { topicId: Buffer.alloc(16, 1), partition: 0, records: Buffer.from('first batch bytes') },
    { topicId: Buffer.alloc(16, 2), partition: 7, records: Buffer.alloc(70_000, 0xab) },
  ];
  const data = encodeAppend(1_700_000_000_123, items);
  t.is(data.length, appendCommandBytes(items) - 4); // the uvarint count of 2 items takes 1 byte of the 5 reserved
  t.is(data.length, COMMAND_HEADER_BYTES + 1 + 2 * APPEND_ITEM_HEADER_BYTES + 17 + 70_000);
  const c = decodeCommand(data);
  if (c.type !== 'append') return t.fail();
  t.is(c.timestampMs, 1_700_000_000_123);
  t.deepEqual(c.items.map((i) => [i.topicId.toString('hex'), i.partition, i.records.toString('hex')]), items.map((i) => [i.topicId.toString('hex'), i.partition, i.records.toString('hex')]));
});

test('a config named __proto__ is an ordinary entry', (t) => {
  const configs = JSON.parse('{"__proto__":"x","retention.ms":"5"}') as Record<string, string>;
  const c = decodeCommand(encodeCommand({ type: 'createTopic', timestampMs: 1, name: 'a', topicId: Buffer.alloc(16, 3), partitions: 1, replicationFactor: 1, configs }));
  if (c.type !== 'createTopic') return t.fail();
  t.deepEqual(Object.entries(c.configs).sort(), [['__proto__', 'x'], ['retention.ms', '5']]);
  t.is(Object.getPrototypeOf(c.configs), null);
});

test('truncated, extended or altered commands are refused, never half-read', (t) => {
  fc.assert(
    fc.property(command, fc.nat(), (c, cut) => {
      const data = encodeCommand(c);
      const short = data.subarray(0, cut % data.length);
      t.throws(() => decodeCommand(short), { instanceOf: CommandDecodeError });
      t.throws(() => decodeCommand(Buffer.concat([data, Buffer.of(0)])), { instanceOf: CommandDecodeError });
    }),
    { numRuns: 300 },
  );
  const data = encodeCommand({ type: 'initProducerId', timestampMs: 5 });
  t.throws(() => decodeCommand(Buffer.concat([Buffer.of(2), data.subarray(1)])), { instanceOf: CommandDecodeError, message: /version 2/ });
  t.throws(() => decodeCommand(Buffer.concat([data.subarray(0, 1), Buffer.of(99), data.subarray(2)])), { instanceOf: CommandDecodeError, message: /type 99/ });
});

test('a huge count in a short command is refused before anything is allocated', (t) => {
  const head = encodeCommand({ type: 'expireGroups', timestampMs: 1, cutoffMs: 0, groups: [] });
  // Replace the count 0 with a varint of 2^31.
  const evil = Buffer.concat([head.subarray(0, head.length - 1), Buffer.of(0x80, 0x80, 0x80, 0x80, 0x08)]);
  t.throws(() => decodeCommand(evil), { instanceOf: CommandDecodeError, message: /count/ });
});

test('random bytes never decode into anything but a command or a CommandDecodeError', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (a) => {
      try {
        decodeCommand(a);
      } catch (err) {
        t.true(err instanceof CommandDecodeError, String(err));
      }
    }),
    { numRuns: 2000 },
  );
});
