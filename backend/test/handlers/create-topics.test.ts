import test from 'ava';
import { createTopicsHandler } from '../../src/handlers/create-topics.ts';
import { ErrorCode } from '../../src/protocol/errors.ts';
import type { CreateTopicsRequest } from '../../src/protocol/generated/index.ts';
import { openHarness, roundTrip, withOverrides, type Harness } from './helpers.ts';

interface Spec {
  name: string;
  numPartitions?: number;
  replicationFactor?: number;
  assignments?: { partitionIndex: number; brokerIds: number[] }[];
  configs?: Record<string, string | null>;
}

function request(specs: Spec[], validateOnly = false, timeoutMs = 5000): CreateTopicsRequest {
  return {
    topics: specs.map((s) => ({
      name: s.name,
      numPartitions: s.numPartitions ?? 1,
      replicationFactor: s.replicationFactor ?? 1,
      assignments: s.assignments ?? [],
      configs: Object.entries(s.configs ?? {}).map(([name, value]) => ({ name, value })),
    })),
    timeoutMs,
    validateOnly,
  };
}

async function setup(t: { teardown(fn: () => Promise<void>): void }): Promise<Harness> {
  const h = await openHarness({ defaultPartitions: 4 });
  t.teardown(() => h.close());
  return h;
}

for (const version of [0, 1, 4, 5, 7]) {
  test(`v${version}: creates topics with per-topic results`, async (t) => {
    const h = await setup(t);
    const res = await roundTrip(createTopicsHandler, h, version, request([{ name: 'a', numPartitions: 3, configs: { 'retention.ms': '1000' } }, { name: 'bad/name' }]));
    t.deepEqual(res.topics.map((x) => [x.name, x.errorCode]), [
      ['a', 0],
      ['bad/name', ErrorCode.INVALID_TOPIC_EXCEPTION],
    ]);
    t.is(h.backend.topic('a')?.partitions.length, 3);
    if (version >= 1) t.truthy(res.topics[1]!.errorMessage);
    if (version >= 5) {
      t.like(res.topics[0], { numPartitions: 3, replicationFactor: 1 });
      const retention = res.topics[0]!.configs!.find((c) => c.name === 'retention.ms');
      t.like(retention, { value: '1000', configSource: 1, readOnly: false, isSensitive: false });
      t.like(res.topics[1], { numPartitions: -1, replicationFactor: -1 });
    }
    if (version >= 7) t.true(res.topics[0]!.topicId.equals(h.backend.topic('a')!.topicId));
  });
}

test('an existing topic is TOPIC_ALREADY_EXISTS; a topic listed twice is INVALID_REQUEST', async (t) => {
  const h = await setup(t);
  await h.backend.createTopic({ name: 'a', numPartitions: 1, replicationFactor: 1, configs: {} }, false);
  const res = await roundTrip(createTopicsHandler, h, 5, request([{ name: 'a' }, { name: 'b' }, { name: 'b' }]));
  t.deepEqual(res.topics.map((x) => x.errorCode), [ErrorCode.TOPIC_ALREADY_EXISTS, ErrorCode.INVALID_REQUEST, ErrorCode.INVALID_REQUEST]);
  t.is(h.backend.topic('b'), undefined);
  t.deepEqual(h.errors, []);
});

test('validate_only checks without creating', async (t) => {
  const h = await setup(t);
  const res = await roundTrip(createTopicsHandler, h, 5, request([{ name: 'a', numPartitions: 6, configs: { 'cleanup.policy': 'delete' } }, { name: 'b', configs: { 'retention.ms': 'soon' } }], true));
  t.like(res.topics[0], { errorCode: 0, numPartitions: 6, replicationFactor: 1 });
  t.deepEqual(res.topics[0]!.configs!.map((c) => [c.name, c.value]), [['cleanup.policy', 'delete']]);
  t.is(res.topics[1]!.errorCode, ErrorCode.INVALID_CONFIG);
  t.is(h.backend.topics().length, 0);
});

test('-1 partitions / replication factor use the broker defaults; bad counts are refused', async (t) => {
  const h = await setup(t);
  const res = await roundTrip(createTopicsHandler, h, 7, request([{ name: 'd', numPartitions: -1, replicationFactor: -1 }, { name: 'z', numPartitions: 0 }, { name: 'r', replicationFactor: 3 }, { name: 'q', replicationFactor: 0 }]));
  t.like(res.topics[0], { errorCode: 0, numPartitions: 4, replicationFactor: 1 });
  t.is(res.topics[1]!.errorCode, ErrorCode.INVALID_PARTITIONS);
  t.is(res.topics[2]!.errorCode, ErrorCode.INVALID_REPLICATION_FACTOR);
  t.is(res.topics[3]!.errorCode, ErrorCode.INVALID_REPLICATION_FACTOR);
});

test('manual assignments: accepted when they match this node, else INVALID_REPLICA_ASSIGNMENT / INVALID_REQUEST', async (t) => {
  const h = await setup(t);
  const res = await roundTrip(
    createTopicsHandler,
    h,
    5,
    request([
      { name: 'ok', numPartitions: -1, replicationFactor: -1, assignments: [{ partitionIndex: 0, brokerIds: [1] }, { partitionIndex: 1, brokerIds: [1] }] },
      { name: 'elsewhere', numPartitions: -1, replicationFactor: -1, assignments: [{ partitionIndex: 0, brokerIds: [2] }] },
      { name: 'gap', numPartitions: -1, replicationFactor: -1, assignments: [{ partitionIndex: 1, brokerIds: [1] }] },
      { name: 'both', numPartitions: 2, replicationFactor: -1, assignments: [{ partitionIndex: 0, brokerIds: [1] }] },
    ]),
  );
  t.deepEqual(res.topics.map((x) => x.errorCode), [0, ErrorCode.INVALID_REPLICA_ASSIGNMENT, ErrorCode.INVALID_REPLICA_ASSIGNMENT, ErrorCode.INVALID_REQUEST]);
  t.is(h.backend.topic('ok')?.partitions.length, 2);
});

test('a creation slower than timeout_ms is REQUEST_TIMED_OUT', async (t) => {
  const h = await setup(t);
  const backend = withOverrides(h.backend, {
    createTopic: async (...args: Parameters<typeof h.backend.createTopic>) => {
      await new Promise((r) => setTimeout(r, 300));
      return h.backend.createTopic(...args);
    },
  });
  const res = await roundTrip(createTopicsHandler, h, 5, request([{ name: 'slow' }], false, 50), { backend });
  t.is(res.topics[0]!.errorCode, ErrorCode.REQUEST_TIMED_OUT);
  await new Promise((r) => setTimeout(r, 400)); // the creation itself completes, as in Kafka
  t.truthy(h.backend.topic('slow'));
});
