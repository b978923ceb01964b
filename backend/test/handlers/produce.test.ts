import test from 'ava';
import { produceHandler } from '../../src/handlers/produce.ts';
import { NO_RESPONSE } from '../../src/handlers/types.ts';
import { ErrorCode, KafkaError } from '../../src/protocol/errors.ts';
import type { ProduceRequest, ProduceResponse } from '../../src/protocol/generated/index.ts';
import { CompressionCodec } from '../../src/protocol/records/batch.ts';
import { baseOffsetsOf, batch, call, openHarness, roundTrip, valuesOf, withOverrides, type Harness } from './helpers.ts';

function produceRequest(acks: number, topics: { name: string; partitions: { index: number; records: Buffer | null }[] }[]): ProduceRequest {
  return {
    transactionalId: null,
    acks,
    timeoutMs: 5000,
    topicData: topics.map((t) => ({ name: t.name, partitionData: t.partitions })),
  };
}

function partition(res: ProduceResponse, topic: string, index: number) {
  const t = res.responses.find((r) => r.name === topic);
  const p = t?.partitionResponses.find((x) => x.index === index);
  if (p === undefined) throw new Error(`no response for ${topic}-${index}`);
  return p;
}

async function readAll(h: Harness, topic: string, partition: number) {
  const r = await h.backend.read(topic, partition, 0, 1 << 20, { isolationLevel: 0 });
  return { values: valuesOf(r.records), bases: baseOffsetsOf(r.records), hw: r.highWatermark };
}

async function withHarness(t: { teardown(fn: () => Promise<void>): void }, options = {}) {
  const h = await openHarness(options);
  t.teardown(() => h.close());
  return h;
}

for (const version of [3, 7, 9, 11]) {
  test(`v${version}: appends over the wire and reports base offsets and log start`, async (t) => {
    const h = await withHarness(t);
    await h.backend.createTopic({ name: 'orders', numPartitions: 2, replicationFactor: 1, configs: {} }, false);
    const first = await roundTrip(produceHandler, h, version, produceRequest(-1, [{ name: 'orders', partitions: [{ index: 0, records: batch(['a', 'b', 'c']) }, { index: 1, records: batch(['x']) }] }]));
    const second = await roundTrip(produceHandler, h, version, produceRequest(1, [{ name: 'orders', partitions: [{ index: 0, records: batch(['d']) }] }]));
    t.is(first.throttleTimeMs, 0);
    t.like(partition(first, 'orders', 0), { errorCode: 0, baseOffset: 0n, logAppendTimeMs: -1n, logStartOffset: version >= 5 ? 0n : -1n });
    t.like(partition(first, 'orders', 1), { errorCode: 0, baseOffset: 0n });
    t.like(partition(second, 'orders', 0), { errorCode: 0, baseOffset: 3n });
    if (version >= 8) {
      t.deepEqual(partition(second, 'orders', 0).recordErrors, []);
      t.is(partition(second, 'orders', 0).errorMessage, null);
    }
    t.deepEqual((await readAll(h, 'orders', 0)).values, ['a', 'b', 'c', 'd']);
    t.deepEqual((await readAll(h, 'orders', 1)).values, ['x']);
    t.deepEqual(h.errors, []);
  });
}

test('LogAppendTime topics report the broker timestamp', async (t) => {
  const h = await withHarness(t);
  await h.backend.createTopic({ name: 'lat', numPartitions: 1, replicationFactor: 1, configs: { 'message.timestamp.type': 'LogAppendTime' } }, false);
  const before = Date.now();
  const res = await roundTrip(produceHandler, h, 9, produceRequest(1, [{ name: 'lat', partitions: [{ index: 0, records: batch(['a'], { timestamp: 1000 }) }] }]));
  const p = partition(res, 'lat', 0);
  t.is(p.errorCode, 0);
  t.true(Number(p.logAppendTimeMs) >= before && Number(p.logAppendTimeMs) <= Date.now());
});

test('acks other than 0, 1 and -1 fail every partition with INVALID_REQUIRED_ACKS and append nothing', async (t) => {
  const h = await withHarness(t);
  await h.backend.createTopic({ name: 'orders', numPartitions: 2, replicationFactor: 1, configs: {} }, false);
  const res = (await call(produceHandler, h, 9, produceRequest(2, [{ name: 'orders', partitions: [{ index: 0, records: batch(['a']) }, { index: 1, records: batch(['b']) }] }]))) as ProduceResponse;
  t.is(partition(res, 'orders', 0).errorCode, ErrorCode.INVALID_REQUIRED_ACKS);
  t.is(partition(res, 'orders', 1).errorCode, ErrorCode.INVALID_REQUIRED_ACKS);
  t.is(partition(res, 'orders', 0).baseOffset, -1n);
  t.is(typeof partition(res, 'orders', 0).errorMessage, 'string');
  t.is((await readAll(h, 'orders', 0)).hw, 0);
});

test('an unknown topic is auto-created when the broker allows it', async (t) => {
  const h = await withHarness(t, { defaultPartitions: 3 });
  const res = (await call(produceHandler, h, 9, produceRequest(1, [{ name: 'fresh', partitions: [{ index: 2, records: batch(['a']) }] }]))) as ProduceResponse;
  t.is(partition(res, 'fresh', 2).errorCode, 0);
  t.is(h.backend.topic('fresh')?.partitions.length, 3);
  t.deepEqual((await readAll(h, 'fresh', 2)).values, ['a']);
});

test('concurrent produces to the same new topic both succeed (TOPIC_ALREADY_EXISTS is not an error)', async (t) => {
  const h = await withHarness(t);
  const requests = Array.from({ length: 5 }, (_, i) => call(produceHandler, h, 9, produceRequest(1, [{ name: 'race', partitions: [{ index: 0, records: batch([`m${i}`]) }] }])));
  const responses = (await Promise.all(requests)) as ProduceResponse[];
  t.deepEqual(responses.map((r) => partition(r, 'race', 0).errorCode), [0, 0, 0, 0, 0]);
  t.deepEqual([...(await readAll(h, 'race', 0)).values].sort(), ['m0', 'm1', 'm2', 'm3', 'm4']);
});

test('without auto-creation an unknown topic is UNKNOWN_TOPIC_OR_PARTITION', async (t) => {
  const h = await withHarness(t, { autoCreateTopics: false });
  const res = (await call(produceHandler, h, 9, produceRequest(1, [{ name: 'nope', partitions: [{ index: 0, records: batch(['a']) }] }]))) as ProduceResponse;
  t.is(partition(res, 'nope', 0).errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  t.is(h.backend.topic('nope'), undefined);
});

test('an invalid topic name is INVALID_TOPIC_EXCEPTION; an unknown partition only fails that partition', async (t) => {
  const h = await withHarness(t);
  await h.backend.createTopic({ name: 'orders', numPartitions: 1, replicationFactor: 1, configs: {} }, false);
  const res = (await call(
    produceHandler,
    h,
    9,
    produceRequest(1, [
      { name: 'bad name!', partitions: [{ index: 0, records: batch(['a']) }] },
      { name: 'orders', partitions: [{ index: 0, records: batch(['ok']) }, { index: 7, records: batch(['b']) }] },
    ]),
  )) as ProduceResponse;
  t.is(partition(res, 'bad name!', 0).errorCode, ErrorCode.INVALID_TOPIC_EXCEPTION);
  t.is(partition(res, 'orders', 0).errorCode, 0);
  t.is(partition(res, 'orders', 7).errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  t.is(h.backend.topic('bad name!'), undefined);
  t.deepEqual(h.errors, []);
});

test('records null, empty or with two batches are INVALID_RECORD; zstd before v7 is UNSUPPORTED_COMPRESSION_TYPE', async (t) => {
  const h = await withHarness(t);
  await h.backend.createTopic({ name: 'orders', numPartitions: 5, replicationFactor: 1, configs: {} }, false);
  const zstd = batch(['z']);
  zstd.writeInt16BE(CompressionCodec.ZSTD, 21); // header check only: the handler must refuse before the CRC matters
  const res = (await call(
    produceHandler,
    h,
    5,
    produceRequest(1, [
      {
        name: 'orders',
        partitions: [
          { index: 0, records: null },
          { index: 1, records: Buffer.alloc(0) },
          { index: 2, records: Buffer.concat([batch(['a']), batch(['b'])]) },
          { index: 3, records: zstd },
          { index: 4, records: batch(['fine']) },
        ],
      },
    ]),
  )) as ProduceResponse;
  t.is(partition(res, 'orders', 0).errorCode, ErrorCode.INVALID_RECORD);
  t.is(partition(res, 'orders', 1).errorCode, ErrorCode.INVALID_RECORD);
  t.is(partition(res, 'orders', 2).errorCode, ErrorCode.INVALID_RECORD);
  t.is(partition(res, 'orders', 3).errorCode, ErrorCode.UNSUPPORTED_COMPRESSION_TYPE);
  t.is(partition(res, 'orders', 4).errorCode, 0);
  for (const p of [0, 1, 2, 3]) t.is((await readAll(h, 'orders', p)).hw, 0);
});

test('a corrupt batch fails only its own partition, with an error message from v8', async (t) => {
  const h = await withHarness(t);
  await h.backend.createTopic({ name: 'orders', numPartitions: 2, replicationFactor: 1, configs: {} }, false);
  const corrupt = batch(['a', 'b']);
  corrupt[corrupt.length - 1] ^= 0xff; // breaks the CRC
  const res = await roundTrip(produceHandler, h, 8, produceRequest(-1, [{ name: 'orders', partitions: [{ index: 0, records: corrupt }, { index: 1, records: batch(['ok']) }] }]));
  const bad = partition(res, 'orders', 0);
  t.is(bad.errorCode, ErrorCode.CORRUPT_MESSAGE);
  t.is(bad.baseOffset, -1n);
  t.truthy(bad.errorMessage);
  t.is(partition(res, 'orders', 1).errorCode, 0);
  t.is((await readAll(h, 'orders', 0)).hw, 0);
  t.deepEqual(h.errors, []);
});

test('acks=0 sends no response, and the appends happen', async (t) => {
  const h = await withHarness(t);
  await h.backend.createTopic({ name: 'fire', numPartitions: 1, replicationFactor: 1, configs: {} }, false);
  const res = await call(produceHandler, h, 9, produceRequest(0, [{ name: 'fire', partitions: [{ index: 0, records: batch(['a', 'b']) }] }]));
  t.is(res, NO_RESPONSE);
  // The append was handed over before the handler returned; it completes without anyone awaiting it.
  for (let i = 0; i < 100 && (await readAll(h, 'fire', 0)).hw < 2; i++) await new Promise((r) => setTimeout(r, 10));
  t.deepEqual((await readAll(h, 'fire', 0)).values, ['a', 'b']);
});

test('acks=0 returns before the append completes', async (t) => {
  const h = await withHarness(t);
  await h.backend.createTopic({ name: 'slow', numPartitions: 1, replicationFactor: 1, configs: {} }, false);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let called = 0;
  const backend = withOverrides(h.backend, {
    append: async (...args: Parameters<typeof h.backend.append>) => {
      called++;
      await gate;
      return h.backend.append(...args);
    },
  });
  const res = await call(produceHandler, h, 9, produceRequest(0, [{ name: 'slow', partitions: [{ index: 0, records: batch(['a']) }] }]), { backend });
  t.is(res, NO_RESPONSE);
  t.is(called, 1);
  release();
});

test('partitions are appended concurrently; one partition listed twice keeps request order', async (t) => {
  const h = await withHarness(t);
  await h.backend.createTopic({ name: 'orders', numPartitions: 2, replicationFactor: 1, configs: {} }, false);
  let inFlight = 0;
  let maxInFlight = 0;
  const backend = withOverrides(h.backend, {
    append: async (...args: Parameters<typeof h.backend.append>) => {
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      await new Promise((r) => setTimeout(r, 20));
      try {
        return await h.backend.append(...args);
      } finally {
        inFlight--;
      }
    },
  });
  const res = (await call(
    produceHandler,
    h,
    9,
    produceRequest(1, [
      { name: 'orders', partitions: [{ index: 0, records: batch(['first']) }, { index: 1, records: batch(['p1']) }] },
      { name: 'orders', partitions: [{ index: 0, records: batch(['second']) }] },
    ]),
    { backend },
  )) as ProduceResponse;
  t.is(maxInFlight, 2);
  t.deepEqual(res.responses[0]!.partitionResponses.map((p) => p.baseOffset), [0n, 0n]);
  t.is(res.responses[1]!.partitionResponses[0]!.baseOffset, 1n);
  t.deepEqual((await readAll(h, 'orders', 0)).values, ['first', 'second']);
});

test('a non-Kafka error is logged as a bug and reported as UNKNOWN_SERVER_ERROR for that partition only', async (t) => {
  const h = await withHarness(t);
  await h.backend.createTopic({ name: 'orders', numPartitions: 2, replicationFactor: 1, configs: {} }, false);
  const backend = withOverrides(h.backend, {
    append: async (topic: string, p: number, records: Buffer, options) => {
      if (p === 0) throw new TypeError('boom');
      if (p === 1 && records.length < 0) throw new KafkaError(ErrorCode.NONE);
      return h.backend.append(topic, p, records, options);
    },
  });
  const res = (await call(produceHandler, h, 9, produceRequest(1, [{ name: 'orders', partitions: [{ index: 0, records: batch(['a']) }, { index: 1, records: batch(['b']) }] }]), { backend })) as ProduceResponse;
  t.is(partition(res, 'orders', 0).errorCode, ErrorCode.UNKNOWN_SERVER_ERROR);
  t.is(partition(res, 'orders', 1).errorCode, 0);
  t.is(h.errors.length, 1);
});

test('NOT_LEADER_OR_FOLLOWER carries the current leader and its endpoint from v10 (KIP-951)', async (t) => {
  const h = await withHarness(t);
  await h.backend.createTopic({ name: 'orders', numPartitions: 1, replicationFactor: 1, configs: {} }, false);
  const backend = withOverrides(h.backend, {
    append: async () => {
      throw new KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    },
  });
  const res = await roundTrip(produceHandler, h, 10, produceRequest(1, [{ name: 'orders', partitions: [{ index: 0, records: batch(['a']) }] }]), { backend });
  t.is(partition(res, 'orders', 0).errorCode, ErrorCode.NOT_LEADER_OR_FOLLOWER);
  t.deepEqual(partition(res, 'orders', 0).currentLeader, { leaderId: 1, leaderEpoch: 0 });
  t.deepEqual(res.nodeEndpoints, [{ nodeId: 1, host: '127.0.0.1', port: 9092, rack: null }]);
});

test('acks=0 closes the connection (the handler throws a KafkaError) when a partition is known to have failed', async (t) => {
  const h = await withHarness(t, { autoCreateTopics: false });
  await h.backend.createTopic({ name: 'fire', numPartitions: 1, replicationFactor: 1, configs: {} }, false);
  const unknown = call(produceHandler, h, 9, produceRequest(0, [{ name: 'nope', partitions: [{ index: 0, records: batch(['a']) }] }]));
  const err = await t.throwsAsync(unknown as Promise<unknown>, { instanceOf: KafkaError });
  t.is(err?.code, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  const twoBatches = call(produceHandler, h, 9, produceRequest(0, [{ name: 'fire', partitions: [{ index: 0, records: Buffer.concat([batch(['a']), batch(['b'])]) }] }]));
  t.is((await t.throwsAsync(twoBatches as Promise<unknown>, { instanceOf: KafkaError }))?.code, ErrorCode.INVALID_RECORD);
  t.is((await readAll(h, 'fire', 0)).hw, 0);
  t.deepEqual(h.errors, []);
});
