import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import pino from 'pino';
import { kafkaUuidToString, MetadataStore, randomKafkaUuid, type TopicRecord } from '../../src/log/metadata-store.ts';

const logger = pino({ level: 'silent' });
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'takhin-meta-'));
test.after.always(() => fs.rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => path.join(root, `d${dirs++}`);

function topic(name: string, partitionCount = 3): TopicRecord {
  return { name, topicId: randomKafkaUuid(), partitionCount, replicationFactor: 1, configs: { 'retention.ms': '1000' }, createdMs: 42 };
}

test('Kafka-style uuids: 22 url-safe chars, v4 bits, never starting with a dash', (t) => {
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const id = randomKafkaUuid();
    const text = kafkaUuidToString(id);
    t.is(id.length, 16);
    t.regex(text, /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
    t.is(id[6]! >> 4, 4);
    seen.add(text);
  }
  t.is(seen.size, 2000);
});

test('the cluster id is generated once and kept across restarts', async (t) => {
  const dir = freshDir();
  const a = await MetadataStore.open(dir, logger);
  const id = a.clusterId;
  t.is(id.length, 22);
  await a.close();
  const b = await MetadataStore.open(dir, logger);
  t.is(b.clusterId, id);
  await b.close();
  const other = await MetadataStore.open(freshDir(), logger);
  t.not(other.clusterId, id);
  await other.close();
});

test('topics survive a restart with the same id, partitions and configs', async (t) => {
  const dir = freshDir();
  const a = await MetadataStore.open(dir, logger);
  const orders = topic('orders', 4);
  await a.putTopic(orders);
  await a.putTopic(topic('audit', 1));
  await a.putTopic({ ...orders, partitionCount: 6 });
  await a.close();

  const b = await MetadataStore.open(dir, logger);
  const got = b.topic('orders');
  t.truthy(got);
  t.true(got!.topicId.equals(orders.topicId));
  t.is(got!.partitionCount, 6);
  t.deepEqual(got!.configs, { 'retention.ms': '1000' });
  t.deepEqual(b.topics().map((x) => x.name).sort(), ['audit', 'orders']);
  await b.close();
});

test('removing a topic leaves a pending deletion until it is finished', async (t) => {
  const dir = freshDir();
  const a = await MetadataStore.open(dir, logger);
  const doomed = topic('doomed', 2);
  await a.putTopic(doomed);
  await a.removeTopic(doomed);
  t.is(a.topic('doomed'), undefined);
  await a.close();

  const b = await MetadataStore.open(dir, logger);
  t.is(b.topic('doomed'), undefined);
  const pending = b.pendingDeletions();
  t.is(pending.length, 1);
  t.is(pending[0]!.name, 'doomed');
  t.is(pending[0]!.partitionCount, 2);
  t.true(pending[0]!.topicId.equals(doomed.topicId));
  await b.finishDeletion(doomed.topicId);
  t.deepEqual(b.pendingDeletions(), []);
  await b.close();
});

test('producer id blocks are never handed out twice across restarts', async (t) => {
  const dir = freshDir();
  const a = await MetadataStore.open(dir, logger);
  t.is(a.producerIdBlockEnd(), 0);
  t.deepEqual(await a.reserveProducerIds(1000), { start: 0, end: 1000 });
  t.deepEqual(await a.reserveProducerIds(10), { start: 1000, end: 1010 });
  await a.close();
  const b = await MetadataStore.open(dir, logger);
  t.deepEqual(await b.reserveProducerIds(5), { start: 1010, end: 1015 });
  await b.close();
});

test('writes after close are refused', async (t) => {
  const a = await MetadataStore.open(freshDir(), logger);
  await a.close();
  await t.throwsAsync(a.putTopic(topic('late')), { message: /closed/ });
});
