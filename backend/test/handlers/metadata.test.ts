import test from 'ava';
import { AUTHORIZED_OPERATIONS_OMITTED, CLUSTER_AUTHORIZED_OPERATIONS, TOPIC_AUTHORIZED_OPERATIONS } from '../../src/handlers/common.ts';
import { metadataHandler } from '../../src/handlers/metadata.ts';
import { ErrorCode } from '../../src/protocol/errors.ts';
import type { MetadataRequest } from '../../src/protocol/generated/index.ts';
import { openHarness, roundTrip, type Harness } from './helpers.ts';

const ZERO_ID = Buffer.alloc(16);

function request(topics: (string | { id: Buffer })[] | null, opts: Partial<MetadataRequest> = {}): MetadataRequest {
  return {
    topics: topics === null ? null : topics.map((t) => (typeof t === 'string' ? { topicId: ZERO_ID, name: t } : { topicId: t.id, name: null })),
    allowAutoTopicCreation: true,
    includeClusterAuthorizedOperations: false,
    includeTopicAuthorizedOperations: false,
    ...opts,
  };
}

async function setup(t: { teardown(fn: () => Promise<void>): void }, options = {}): Promise<Harness> {
  const h = await openHarness(options);
  t.teardown(() => h.close());
  await h.backend.createTopic({ name: 'alpha', numPartitions: 2, replicationFactor: 1, configs: {} }, false);
  await h.backend.createTopic({ name: 'beta', numPartitions: 1, replicationFactor: 1, configs: {} }, false);
  return h;
}

test('v0: an empty list means all topics; brokers and partitions are described', async (t) => {
  const h = await setup(t);
  const res = await roundTrip(metadataHandler, h, 0, request([]));
  t.deepEqual(res.brokers, [{ nodeId: 1, host: '127.0.0.1', port: 9092, rack: null }]);
  t.deepEqual(res.topics.map((x) => x.name).sort(), ['alpha', 'beta']);
  const alpha = res.topics.find((x) => x.name === 'alpha')!;
  t.deepEqual(
    alpha.partitions.map((p) => [p.errorCode, p.partitionIndex, p.leaderId, p.replicaNodes, p.isrNodes]),
    [
      [0, 0, 1, [1], [1]],
      [0, 1, 1, [1], [1]],
    ],
  );
});

test('v1: null means all topics, an empty list means none; controller id is set', async (t) => {
  const h = await setup(t);
  const all = await roundTrip(metadataHandler, h, 1, request(null));
  t.is(all.topics.length, 2);
  t.is(all.controllerId, 1);
  const none = await roundTrip(metadataHandler, h, 1, request([]));
  t.deepEqual(none.topics, []);
});

test('v9: cluster id, leader epochs, offline replicas; authorized operations omitted unless asked', async (t) => {
  const h = await setup(t);
  const res = await roundTrip(metadataHandler, h, 9, request(['alpha']));
  t.is(res.clusterId, h.backend.cluster().clusterId);
  t.is(typeof res.clusterId, 'string');
  t.is(res.topics.length, 1);
  t.like(res.topics[0], { errorCode: 0, name: 'alpha', isInternal: false, topicAuthorizedOperations: AUTHORIZED_OPERATIONS_OMITTED });
  t.like(res.topics[0]!.partitions[0], { leaderEpoch: 0, offlineReplicas: [] });
  t.is(res.clusterAuthorizedOperations, AUTHORIZED_OPERATIONS_OMITTED);
  const asked = await roundTrip(metadataHandler, h, 9, request(['alpha'], { includeTopicAuthorizedOperations: true, includeClusterAuthorizedOperations: true }));
  t.is(asked.topics[0]!.topicAuthorizedOperations, TOPIC_AUTHORIZED_OPERATIONS);
  t.is(asked.clusterAuthorizedOperations, CLUSTER_AUTHORIZED_OPERATIONS);
});

test('v10+ report topic ids; v12 looks topics up by id (unknown id: UNKNOWN_TOPIC_ID)', async (t) => {
  const h = await setup(t);
  const id = h.backend.topic('beta')!.topicId;
  const v10 = await roundTrip(metadataHandler, h, 10, request(['beta']));
  t.true(v10.topics[0]!.topicId.equals(id));
  const missing = Buffer.alloc(16, 9);
  const v12 = await roundTrip(metadataHandler, h, 12, request([{ id }, { id: missing }]));
  t.like(v12.topics[0], { errorCode: 0, name: 'beta' });
  t.like(v12.topics[1], { errorCode: ErrorCode.UNKNOWN_TOPIC_ID, name: null });
  t.true(v12.topics[1]!.topicId.equals(missing));
  t.is(h.backend.topics().length, 2);
});

test('a missing topic is auto-created when allowed (v4+: only if the client allows too)', async (t) => {
  const h = await setup(t, { defaultPartitions: 3 });
  const created = await roundTrip(metadataHandler, h, 9, request(['gamma']));
  t.like(created.topics[0], { errorCode: 0, name: 'gamma' });
  t.is(created.topics[0]!.partitions.length, 3);
  const refused = await roundTrip(metadataHandler, h, 9, request(['delta'], { allowAutoTopicCreation: false }));
  t.like(refused.topics[0], { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name: 'delta' });
  t.is(h.backend.topic('delta'), undefined);
  const v3 = await roundTrip(metadataHandler, h, 3, request(['epsilon'], { allowAutoTopicCreation: false }));
  t.is(v3.topics[0]!.errorCode, 0); // v0-3 have no such flag: the broker setting decides
  t.deepEqual(h.errors, []);
});

test('without broker auto-creation a missing topic is UNKNOWN_TOPIC_OR_PARTITION; bad names INVALID_TOPIC_EXCEPTION', async (t) => {
  const h = await setup(t, { autoCreateTopics: false });
  const res = await roundTrip(metadataHandler, h, 12, request(['gamma', 'no/slash', 'alpha', 'alpha']));
  t.deepEqual(res.topics.map((x) => [x.name, x.errorCode]), [
    ['gamma', ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
    ['no/slash', ErrorCode.INVALID_TOPIC_EXCEPTION],
    ['alpha', 0],
  ]);
  t.is(h.backend.topic('gamma'), undefined);
});

test('concurrent metadata requests auto-creating one topic all succeed', async (t) => {
  const h = await setup(t);
  const all = await Promise.all(Array.from({ length: 4 }, () => roundTrip(metadataHandler, h, 12, request(['shared']))));
  t.deepEqual(all.map((r) => r.topics[0]!.errorCode), [0, 0, 0, 0]);
  t.is(new Set(all.map((r) => r.topics[0]!.topicId.toString('hex'))).size, 1);
});
