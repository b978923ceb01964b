import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import pino from 'pino';
import { ConfigSource, OffsetSpec, type AppendOptions } from '../../../src/backends/backend.ts';
import { openDirectBackend, type DirectBackend, type DirectBackendOptions } from '../../../src/backends/direct/direct-backend.ts';
import { DEFAULT_LOG_CONFIG } from '../../../src/log/log-config.ts';
import { ErrorCode } from '../../../src/protocol/errors.ts';
import { buildRecordBatch, decodeRecordBatch } from '../../../src/protocol/records/builder.ts';
import { codeOf } from '../../error-codes.ts';

const logger = pino({ level: 'silent' });
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'takhin-direct-'));
test.after.always(() => fs.rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => path.join(root, `d${dirs++}`);

function options(dataDir: string, extra: Partial<DirectBackendOptions> = {}): DirectBackendOptions {
  return {
    dataDir,
    nodeId: 7,
    advertisedHost: 'broker.local',
    advertisedPort: 19092,
    rack: 'r1',
    autoCreateTopics: true,
    defaultPartitions: 3,
    defaultReplicationFactor: 1,
    topicDefaults: { ...DEFAULT_LOG_CONFIG, retentionMs: 86_400_000 },
    retentionCheckIntervalMs: 0,
    offsetsRetentionMs: 7 * 86_400_000,
    offsetsRetentionCheckIntervalMs: 0,
    offsetMetadataBytesMax: 4096,
    partitionsPerTopicMax: 1000,
    partitionsPerBrokerMax: 1000,
    logger,
    ...extra,
  };
}

const acks1: AppendOptions = { acks: 1, timeoutMs: 1000, transactionalId: null };
const newTopic = (name: string, numPartitions = 1, configs: Record<string, string> = {}) => ({ name, numPartitions, replicationFactor: -1, configs });

function values(batches: Buffer[]): { offset: number; value: string }[] {
  return batches.flatMap((b) => decodeRecordBatch(b).records.map((r) => ({ offset: r.offset, value: r.value!.toString() })));
}

async function withBackend(t: { teardown: (fn: () => Promise<void>) => void }, dataDir = freshDir(), extra: Partial<DirectBackendOptions> = {}): Promise<DirectBackend> {
  const backend = await openDirectBackend(options(dataDir, extra));
  t.teardown(() => backend.close());
  return backend;
}

test('one broker that is controller and leader of everything; the cluster id persists', async (t) => {
  const dir = freshDir();
  const a = await openDirectBackend(options(dir));
  const view = a.cluster();
  t.like(view, { nodeId: 7, controllerId: 7 });
  t.deepEqual(view.brokers, [{ nodeId: 7, host: 'broker.local', port: 19092, rack: 'r1' }]);
  t.regex(view.clusterId, /^[A-Za-z0-9_-]{22}$/);
  const info = await a.createTopic(newTopic('t', 2), false);
  t.deepEqual(info.partitions, [
    { partition: 0, leaderId: 7, leaderEpoch: 0, replicas: [7], isr: [7], offlineReplicas: [] },
    { partition: 1, leaderId: 7, leaderEpoch: 0, replicas: [7], isr: [7], offlineReplicas: [] },
  ]);
  t.false(info.internal);
  await a.close();
  await a.close(); // idempotent
  const b = await openDirectBackend(options(dir));
  t.is(b.cluster().clusterId, view.clusterId);
  t.true(b.topic('t')!.topicId.equals(info.topicId));
  t.is(b.topicById(info.topicId)!.name, 't');
  t.deepEqual(b.topics().map((x) => x.name), ['t']);
  await b.close();
});

test('a default replication factor above 1 is refused at open', async (t) => {
  await t.throwsAsync(openDirectBackend(options(freshDir(), { defaultReplicationFactor: 3 })), { message: /single node/ });
});

test('append, read, listOffset and deleteRecords end to end with real batches', async (t) => {
  const b = await withBackend(t);
  await b.createTopic(newTopic('events', 1), false);
  const t0 = 1_700_000_000_000;
  const r1 = await b.append('events', 0, buildRecordBatch([{ value: 'a', timestamp: t0 }, { value: 'b', timestamp: t0 + 10 }]), acks1);
  t.deepEqual(r1, { baseOffset: 0, lastOffset: 1, logAppendTimeMs: -1, logStartOffset: 0 });
  const r2 = await b.append('events', 0, buildRecordBatch([{ value: 'c', timestamp: t0 + 20 }, { value: 'd', timestamp: t0 + 5 }]), acks1);
  t.is(r2.baseOffset, 2);

  const read = await b.read('events', 0, 1, 1 << 20, { isolationLevel: 0 });
  t.is(read.highWatermark, 4);
  t.is(read.lastStableOffset, 4);
  t.is(read.bytes, read.records.reduce((n, r) => n + r.length, 0));
  t.deepEqual(values(read.records), [
    { offset: 0, value: 'a' },
    { offset: 1, value: 'b' },
    { offset: 2, value: 'c' },
    { offset: 3, value: 'd' },
  ]);
  // KIP-74: one whole batch even when maxBytes is smaller.
  t.is((await b.read('events', 0, 0, 1, { isolationLevel: 1 })).records.length, 1);
  t.deepEqual((await b.read('events', 0, 0, 1, { isolationLevel: 0, minOneBatch: false })).records, []);

  t.like(await b.listOffset('events', 0, OffsetSpec.LATEST, 0), { offset: 4, timestamp: -1 });
  t.like(await b.listOffset('events', 0, OffsetSpec.EARLIEST, 0), { offset: 0, timestamp: -1 });
  t.like(await b.listOffset('events', 0, t0 + 10, 0), { offset: 1, timestamp: t0 + 10 });
  t.like(await b.listOffset('events', 0, t0 + 15, 0), { offset: 2, timestamp: t0 + 20 });
  t.like(await b.listOffset('events', 0, t0 + 21, 0), { offset: -1, timestamp: -1 });
  t.like(await b.listOffset('events', 0, OffsetSpec.MAX_TIMESTAMP, 0), { offset: 2, timestamp: t0 + 20 });
  t.like(await b.listOffset('events', 0, OffsetSpec.LATEST_TIERED, 0), { offset: -1 });
  t.is(await codeOf(b.listOffset('events', 0, -7, 0)), ErrorCode.INVALID_REQUEST);

  t.is(await codeOf(b.deleteRecords('events', 0, 5)), ErrorCode.OFFSET_OUT_OF_RANGE);
  t.is(await b.deleteRecords('events', 0, 2), 2);
  t.like(await b.listOffset('events', 0, OffsetSpec.EARLIEST, 0), { offset: 2 });
  t.is(await codeOf(b.read('events', 0, 1, 1000, { isolationLevel: 0 })), ErrorCode.OFFSET_OUT_OF_RANGE);
  t.is(await b.deleteRecords('events', 0, -1), 4);
  t.is(await b.deleteRecords('events', 0, 1), 4, 'moving the start backwards is a no-op');
  const after = await b.read('events', 0, 4, 1000, { isolationLevel: 0 });
  t.deepEqual(after.records, []);
  t.is(after.logStartOffset, 4);
});

test('unknown topics and partitions; corrupt batches; transactions are refused', async (t) => {
  const b = await withBackend(t);
  await b.createTopic(newTopic('x', 1), false);
  const batch = buildRecordBatch([{ value: 'v' }]);
  t.is(await codeOf(b.append('nope', 0, Buffer.from(batch), acks1)), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  t.is(await codeOf(b.append('x', 1, Buffer.from(batch), acks1)), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  t.is(await codeOf(b.read('x', -1, 0, 100, { isolationLevel: 0 })), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  t.is(await codeOf(b.listOffset('nope', 0, -1, 0)), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  t.is(await codeOf(b.deleteRecords('nope', 0, -1)), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  const corrupt = Buffer.from(batch);
  corrupt[corrupt.length - 1]! ^= 0xff;
  t.is(await codeOf(b.append('x', 0, corrupt, acks1)), ErrorCode.CORRUPT_MESSAGE);
  t.is(await codeOf(b.append('x', 0, Buffer.from(batch), { ...acks1, transactionalId: 'tx' })), ErrorCode.INVALID_REQUEST);
  t.is((await b.read('x', 0, 0, 1000, { isolationLevel: 0 })).highWatermark, 0, 'nothing was stored');
});

test('acks=all needs min.insync.replicas <= 1; timestamp bounds are enforced', async (t) => {
  const b = await withBackend(t);
  await b.createTopic(newTopic('strict', 1, { 'min.insync.replicas': '2', 'message.timestamp.before.max.ms': '3600000' }), false);
  const batch = () => buildRecordBatch([{ value: 'v' }]);
  t.is(await codeOf(b.append('strict', 0, batch(), { ...acks1, acks: -1 })), ErrorCode.NOT_ENOUGH_REPLICAS);
  t.is((await b.append('strict', 0, batch(), acks1)).baseOffset, 0);
  const stale = buildRecordBatch([{ value: 'old', timestamp: Date.now() - 7_200_000 }]);
  t.is(await codeOf(b.append('strict', 0, stale, acks1)), ErrorCode.INVALID_TIMESTAMP);
  await b.alterTopicConfigs('strict', [{ name: 'min.insync.replicas', op: 1, value: null }], 'incremental', false);
  t.is((await b.append('strict', 0, batch(), { ...acks1, acks: -1 })).baseOffset, 1);
});

test('flush.messages=1 and LogAppendTime topics', async (t) => {
  const b = await withBackend(t);
  await b.createTopic(newTopic('synced', 1, { 'flush.messages': '1', 'message.timestamp.type': 'LogAppendTime' }), false);
  const before = Date.now();
  const r = await b.append('synced', 0, buildRecordBatch([{ value: 'v', timestamp: 5 }]), { ...acks1, acks: -1 });
  t.true(r.logAppendTimeMs >= before);
  const [batch] = (await b.read('synced', 0, 0, 1000, { isolationLevel: 0 })).records;
  t.is(decodeRecordBatch(batch!).records[0]!.timestamp, r.logAppendTimeMs);
});

test('onAppend fires for every append; a throwing listener does not break appends', async (t) => {
  const b = await withBackend(t);
  await b.createTopic(newTopic('n', 2), false);
  const heard: string[] = [];
  b.onAppend(() => {
    throw new Error('bad listener');
  });
  const off = b.onAppend((topic, partition) => heard.push(`${topic}/${partition}`));
  await b.append('n', 1, buildRecordBatch([{ value: 'a' }]), acks1);
  await b.append('n', 0, buildRecordBatch([{ value: 'b' }]), acks1);
  t.deepEqual(heard, ['n/1', 'n/0']);
  off();
  await b.append('n', 0, buildRecordBatch([{ value: 'c' }]), acks1);
  t.is(heard.length, 2);
});

test('topic admin through the backend: validateOnly, partitions, configs, delete', async (t) => {
  const b = await withBackend(t);
  const dry = await b.createTopic(newTopic('dry', -1), true);
  t.is(dry.partitions.length, 3);
  t.is(b.topic('dry'), undefined);
  await b.createTopic(newTopic('adm', 1), false);
  await b.createPartitions('adm', 4, false);
  t.is(b.topic('adm')!.partitions.length, 4);
  t.is(await codeOf(b.createTopic(newTopic('adm', 1), false)), ErrorCode.TOPIC_ALREADY_EXISTS);
  t.is(await codeOf(b.createTopic({ ...newTopic('rf', 1), replicationFactor: 3 }, false)), ErrorCode.INVALID_REPLICATION_FACTOR);
  await b.alterTopicConfigs('adm', [{ name: 'retention.ms', op: 0, value: '1000' }], 'incremental', false);
  const entry = b.describeTopicConfigs('adm').find((e) => e.name === 'retention.ms')!;
  t.like(entry, { value: '1000', source: ConfigSource.DYNAMIC_TOPIC_CONFIG });
  await b.commitOffsets('g', [{ topic: 'adm', partition: 0, offset: 1, leaderEpoch: 0, metadata: null }]);
  await b.deleteTopic('adm');
  t.is(b.topic('adm'), undefined);
  t.deepEqual(await b.fetchOffsets('g', null), [], 'offsets of a deleted topic are dropped');
  t.is(await codeOf(b.deleteTopic('adm')), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
});

test('idempotent producers: a retried batch gets its original offsets; transactional batches need a transactional id', async (t) => {
  const b = await withBackend(t);
  await b.createTopic(newTopic('idem', 1), false);
  const { producerId, producerEpoch } = await b.initProducerId(null, 60_000, -1, -1);
  const batch = (seq: number, n: number) =>
    buildRecordBatch(Array.from({ length: n }, (_, i) => ({ value: `s${seq + i}` })), { producerId, producerEpoch, baseSequence: seq });
  await b.append('idem', 0, batch(0, 3), acks1);
  const second = await b.append('idem', 0, batch(3, 2), acks1);
  const retry = await b.append('idem', 0, batch(3, 2), acks1);
  t.is(retry.baseOffset, second.baseOffset);
  t.is(retry.lastOffset, second.lastOffset);
  t.is(await codeOf(b.append('idem', 0, batch(9, 1), acks1)), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
  t.is(await codeOf(b.append('idem', 0, buildRecordBatch([{ value: 'x' }], { producerId, producerEpoch, baseSequence: 5, transactional: true }), acks1)),
    ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
  const read = await b.read('idem', 0, 0, 1 << 20, { isolationLevel: 0 });
  t.deepEqual(values(read.records).map((r) => r.value), ['s0', 's1', 's2', 's3', 's4'], 'the retry was not stored twice');
});

test('producer ids are unique and never reused after a restart; transactional ids are refused', async (t) => {
  const dir = freshDir();
  const a = await openDirectBackend(options(dir));
  const ids = await Promise.all(Array.from({ length: 20 }, () => a.initProducerId(null, 60_000, -1, -1)));
  t.is(new Set(ids.map((r) => r.producerId)).size, 20);
  for (const r of ids) t.is(r.producerEpoch, 0);
  const bumped = await a.initProducerId(null, 60_000, ids[0]!.producerId, 0);
  t.false(ids.some((r) => r.producerId === bumped.producerId), 'an idempotent re-init gets a fresh id');
  t.is(await codeOf(a.initProducerId('tx-1', 60_000, -1, -1)), ErrorCode.INVALID_REQUEST);
  const maxBefore = Math.max(bumped.producerId, ...ids.map((r) => r.producerId));
  await a.close();
  const b = await openDirectBackend(options(dir));
  const next = await b.initProducerId(null, 60_000, -1, -1);
  t.true(next.producerId > maxBefore);
  await b.close();
});

test('committed offsets survive a restart', async (t) => {
  const dir = freshDir();
  const a = await openDirectBackend(options(dir));
  await a.createTopic(newTopic('c', 2), false);
  await a.commitOffsets('grp', [
    { topic: 'c', partition: 0, offset: 10, leaderEpoch: 0, metadata: 'm0' },
    { topic: 'c', partition: 1, offset: 20, leaderEpoch: 0, metadata: null },
  ]);
  await a.close();
  const b = await openDirectBackend(options(dir));
  t.deepEqual(b.offsetGroups(), ['grp']);
  const fetched = await b.fetchOffsets('grp', [{ topic: 'c', partition: 1 }]);
  t.like(fetched[0], { topic: 'c', partition: 1, offset: 20, metadata: null });
  await b.deleteOffsets('grp', [{ topic: 'c', partition: 0 }, { topic: 'c', partition: 1 }]);
  t.deepEqual(b.offsetGroups(), []);
  t.is(await codeOf(b.commitOffsets('grp', [{ topic: 'c', partition: 0, offset: 1, leaderEpoch: 0, metadata: 'x'.repeat(4097) }])), ErrorCode.OFFSET_METADATA_TOO_LARGE);
  await b.close();
});

test('broker configs report what clients look for, with sources', async (t) => {
  const b = await withBackend(t);
  const entries = new Map(b.describeBrokerConfigs(7).map((e) => [e.name, e]));
  t.like(entries.get('num.partitions'), { value: '3', source: ConfigSource.STATIC_BROKER_CONFIG, isDefault: false, readOnly: true });
  t.like(entries.get('default.replication.factor'), { value: '1', source: ConfigSource.DEFAULT_CONFIG, isDefault: true });
  t.like(entries.get('auto.create.topics.enable'), { value: 'true', source: ConfigSource.DEFAULT_CONFIG });
  t.like(entries.get('log.retention.ms'), { value: '86400000', source: ConfigSource.STATIC_BROKER_CONFIG });
  t.like(entries.get('message.max.bytes'), { value: String(DEFAULT_LOG_CONFIG.maxMessageBytes), source: ConfigSource.DEFAULT_CONFIG });
  t.like(entries.get('offsets.retention.minutes'), { value: '10080', source: ConfigSource.DEFAULT_CONFIG });
  t.like(entries.get('advertised.listeners'), { value: 'PLAINTEXT://broker.local:19092' });
  t.is(await codeOf(() => b.describeBrokerConfigs(8)), ErrorCode.INVALID_REQUEST);
});

test('flush and close make appended data durable for the next open', async (t) => {
  const dir = freshDir();
  const a = await openDirectBackend(options(dir));
  await a.createTopic(newTopic('d', 1), false);
  for (let i = 0; i < 5; i++) await a.append('d', 0, buildRecordBatch([{ value: `v${i}` }]), acks1);
  await a.flush();
  await a.close();
  const b = await openDirectBackend(options(dir));
  const read = await b.read('d', 0, 0, 1 << 20, { isolationLevel: 0 });
  t.deepEqual(values(read.records).map((r) => r.value), ['v0', 'v1', 'v2', 'v3', 'v4']);
  await b.close();
});
