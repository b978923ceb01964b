import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import pino from 'pino';
import type { NewTopic } from '../../src/backends/backend.ts';
import { ConfigSource } from '../../src/backends/backend.ts';
import { DEFAULT_LOG_CONFIG } from '../../src/log/log-config.ts';
import { MetadataStore } from '../../src/log/metadata-store.ts';
import { TopicManager, type TopicManagerOptions } from '../../src/log/topic-manager.ts';
import { ErrorCode, KafkaError } from '../../src/protocol/errors.ts';
import { buildRecordBatch } from '../../src/protocol/records/builder.ts';
import { codeOf } from '../error-codes.ts';

const logger = pino({ level: 'silent' });
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'takhin-topics-'));
test.after.always(() => fs.rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => path.join(root, `d${dirs++}`);

interface Opened {
  dataDir: string;
  meta: MetadataStore;
  tm: TopicManager;
  close(): Promise<void>;
}

async function openTm(dataDir: string, options: Partial<TopicManagerOptions> = {}): Promise<Opened> {
  const meta = await MetadataStore.open(dataDir, logger);
  const tm = await TopicManager.open(meta, {
    dataDir,
    topicDefaults: { ...DEFAULT_LOG_CONFIG, fileDeleteDelayMs: 0 },
    defaultPartitions: 2,
    defaultReplicationFactor: 1,
    replicationFactorMax: 1,
    partitionsPerTopicMax: 100,
    partitionsPerBrokerMax: 200,
    retentionCheckIntervalMs: 0,
    logger,
    ...options,
  });
  return {
    dataDir,
    meta,
    tm,
    async close() {
      await tm.close();
      await meta.close();
    },
  };
}

const newTopic = (name: string, numPartitions = 1, configs: Record<string, string> = {}, replicationFactor = -1): NewTopic => ({
  name,
  numPartitions,
  replicationFactor,
  configs,
});

const batch = (values: string[], timestamp = Date.now()) => buildRecordBatch(values.map((value) => ({ value })), { timestamp });

const logDirs = (dataDir: string) => fs.readdirSync(path.join(dataDir, 'logs')).sort();

test('create a topic: partitions get their own directories and logs', async (t) => {
  const s = await openTm(freshDir());
  const rec = await s.tm.createTopic(newTopic('orders', 3), false);
  t.is(rec.partitionCount, 3);
  t.is(rec.topicId.length, 16);
  t.false(rec.topicId.equals(Buffer.alloc(16)));
  t.deepEqual(logDirs(s.dataDir), ['orders-0', 'orders-1', 'orders-2']);
  t.is(s.tm.topic('orders')!.logs.length, 3);
  t.is(s.tm.topicById(rec.topicId)!.record.name, 'orders');
  t.is(s.tm.partitionCount(), 3);
  const r = await s.tm.partition('orders', 2).append(batch(['a', 'b']));
  t.is(r.lastOffset, 1);
  t.is(await codeOf(Promise.resolve().then(() => s.tm.partition('orders', 3))), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  t.is(await codeOf(Promise.resolve().then(() => s.tm.partition('nope', 0))), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  // -1 partitions: the broker default.
  t.is((await s.tm.createTopic(newTopic('defaulted', -1), false)).partitionCount, 2);
  await s.close();
});

test('a restart keeps topics, ids, partition counts, configs and data', async (t) => {
  const dir = freshDir();
  const a = await openTm(dir);
  const rec = await a.tm.createTopic(newTopic('keep', 2, { 'retention.ms': '123456' }), false);
  await a.tm.partition('keep', 1).append(batch(['x', 'y', 'z']));
  await a.tm.createPartitions('keep', 4, false);
  await a.close();

  const b = await openTm(dir);
  const topic = b.tm.topic('keep')!;
  t.true(topic.record.topicId.equals(rec.topicId));
  t.is(topic.logs.length, 4);
  t.deepEqual(topic.record.configs, { 'retention.ms': '123456' });
  t.is(topic.policy.logConfig.retentionMs, 123456);
  t.is(b.tm.partition('keep', 1).logEndOffset, 3);
  t.is(b.tm.partitionCount(), 4);
  await b.close();
});

test('topic names follow Kafka rules', async (t) => {
  const s = await openTm(freshDir());
  for (const name of ['', '.', '..', 'a'.repeat(250), 'has space', 'ünï', 'a/b', 'a:b']) {
    t.is(await codeOf(s.tm.createTopic(newTopic(name), false)), ErrorCode.INVALID_TOPIC_EXCEPTION, JSON.stringify(name));
  }
  await s.tm.createTopic(newTopic('a'.repeat(249)), false);
  await s.tm.createTopic(newTopic('Ok.name_with-all.chars9'), false);
  t.is(await codeOf(s.tm.createTopic(newTopic('Ok.name_with-all.chars9'), false)), ErrorCode.TOPIC_ALREADY_EXISTS);
  // '.' and '_' collide (metric names), in both directions.
  await s.tm.createTopic(newTopic('metrics.cpu'), false);
  const err = await t.throwsAsync(s.tm.createTopic(newTopic('metrics_cpu'), false), { instanceOf: KafkaError });
  t.is(err!.code, ErrorCode.INVALID_TOPIC_EXCEPTION);
  t.regex(err!.message, /collides with existing topic: metrics\.cpu/);
  t.is(await codeOf(s.tm.createTopic(newTopic('Ok_name.with-all_chars9'), false)), ErrorCode.INVALID_TOPIC_EXCEPTION);
  // After deletion the name is free again.
  await s.tm.deleteTopic('metrics.cpu');
  await s.tm.createTopic(newTopic('metrics_cpu'), false);
  await s.close();
});

test('partition counts, replication factors and limits', async (t) => {
  const s = await openTm(freshDir(), { partitionsPerTopicMax: 10, partitionsPerBrokerMax: 15 });
  t.is(await codeOf(s.tm.createTopic(newTopic('p0', 0), false)), ErrorCode.INVALID_PARTITIONS);
  t.is(await codeOf(s.tm.createTopic(newTopic('p-2', -2), false)), ErrorCode.INVALID_PARTITIONS);
  t.is(await codeOf(s.tm.createTopic(newTopic('rf0', 1, {}, 0), false)), ErrorCode.INVALID_REPLICATION_FACTOR);
  t.is(await codeOf(s.tm.createTopic(newTopic('rf2', 1, {}, 2), false)), ErrorCode.INVALID_REPLICATION_FACTOR);
  t.is(await codeOf(s.tm.createTopic(newTopic('rf1', 1, {}, 1), false)), ErrorCode.NONE);
  t.is(await codeOf(s.tm.createTopic(newTopic('big', 11), false)), ErrorCode.INVALID_PARTITIONS);
  await s.tm.createTopic(newTopic('ten', 10), false);
  // 11 partitions exist; 5 more would pass the broker limit of 15.
  const err = await t.throwsAsync(s.tm.createTopic(newTopic('five', 5), false), { instanceOf: KafkaError });
  t.is(err!.code, ErrorCode.INVALID_PARTITIONS);
  t.regex(err!.message, /partitionsPerBrokerMax/);
  t.is(await codeOf(s.tm.createPartitions('rf1', 6, false)), ErrorCode.INVALID_PARTITIONS);
  t.is(await codeOf(s.tm.createPartitions('rf1', 5, false)), ErrorCode.NONE);
  t.false(fs.existsSync(path.join(s.dataDir, 'logs', 'five-0')));
  t.is(s.tm.partitionCount(), 15);
  await s.close();
});

test('validateOnly checks everything and changes nothing', async (t) => {
  const s = await openTm(freshDir());
  const rec = await s.tm.createTopic(newTopic('dry', 3, { 'retention.ms': '10' }), true);
  t.is(rec.partitionCount, 3);
  t.is(s.tm.topic('dry'), undefined);
  t.deepEqual(logDirs(s.dataDir), []);
  t.is(await codeOf(s.tm.createTopic(newTopic('dry', 3, { 'retention.ms': 'x' }), true)), ErrorCode.INVALID_CONFIG);
  await s.tm.createTopic(newTopic('real', 1), false);
  await s.tm.createPartitions('real', 3, true);
  t.is(s.tm.topic('real')!.logs.length, 1);
  await s.tm.alterConfigs('real', [{ name: 'retention.ms', op: 0, value: '5' }], 'incremental', true);
  t.deepEqual(s.tm.topic('real')!.record.configs, {});
  await s.close();
});

test('invalid configs refuse the topic with INVALID_CONFIG and leave nothing behind', async (t) => {
  const s = await openTm(freshDir());
  const invalid: Record<string, string>[] = [{ 'cleanup.policy': 'compact' }, { 'compression.type': 'gzip' }, { 'no.such.config': '1' }, { 'segment.bytes': '1' }];
  for (const configs of invalid) {
    t.is(await codeOf(s.tm.createTopic(newTopic('cfg', 1, configs), false)), ErrorCode.INVALID_CONFIG, JSON.stringify(configs));
  }
  t.is(s.tm.topic('cfg'), undefined);
  t.deepEqual(s.meta.topics(), []);
  t.deepEqual(logDirs(s.dataDir), []);
  await s.close();
});

test('create partitions grows a topic; shrinking or keeping the count is INVALID_PARTITIONS', async (t) => {
  const s = await openTm(freshDir());
  await s.tm.createTopic(newTopic('grow', 2), false);
  await s.tm.partition('grow', 0).append(batch(['a']));
  await s.tm.createPartitions('grow', 5, false);
  t.deepEqual(logDirs(s.dataDir), ['grow-0', 'grow-1', 'grow-2', 'grow-3', 'grow-4']);
  t.is(s.tm.partition('grow', 0).logEndOffset, 1);
  t.is((await s.tm.partition('grow', 4).append(batch(['b']))).baseOffset, 0);
  t.is(await codeOf(s.tm.createPartitions('grow', 5, false)), ErrorCode.INVALID_PARTITIONS);
  t.is(await codeOf(s.tm.createPartitions('grow', 3, false)), ErrorCode.INVALID_PARTITIONS);
  t.is(await codeOf(s.tm.createPartitions('nope', 3, false)), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  t.is(s.meta.topic('grow')!.partitionCount, 5);
  await s.close();
});

test('config changes are durable, described, and applied to the live logs', async (t) => {
  const dir = freshDir();
  const a = await openTm(dir, { topicDefaults: { ...DEFAULT_LOG_CONFIG, retentionMs: 3_600_000 } });
  await a.tm.createTopic(newTopic('cfg', 2), false);
  const big = batch(['x'.repeat(500)]);
  await a.tm.partition('cfg', 0).append(Buffer.from(big));
  await a.tm.alterConfigs('cfg', [{ name: 'max.message.bytes', op: 0, value: '200' }], 'incremental', false);
  t.is(await codeOf(a.tm.partition('cfg', 1).append(Buffer.from(big))), ErrorCode.MESSAGE_TOO_LARGE);
  const described = new Map(a.tm.describeConfigs('cfg').map((e) => [e.name, e]));
  t.like(described.get('max.message.bytes'), { value: '200', source: ConfigSource.DYNAMIC_TOPIC_CONFIG, isDefault: false });
  t.like(described.get('retention.ms'), { value: '3600000', source: ConfigSource.STATIC_BROKER_CONFIG, isDefault: false });
  t.like(described.get('segment.bytes'), { source: ConfigSource.DEFAULT_CONFIG, isDefault: true });
  t.is(await codeOf(a.tm.alterConfigs('cfg', [{ name: 'cleanup.policy', op: 0, value: 'compact' }], 'incremental', false)), ErrorCode.INVALID_CONFIG);
  t.is(await codeOf(a.tm.alterConfigs('nope', [], 'incremental', false)), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  t.is(await codeOf(Promise.resolve().then(() => a.tm.describeConfigs('nope'))), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  await a.close();

  const b = await openTm(dir, { topicDefaults: { ...DEFAULT_LOG_CONFIG, retentionMs: 3_600_000 } });
  t.is(await codeOf(b.tm.partition('cfg', 0).append(Buffer.from(big))), ErrorCode.MESSAGE_TOO_LARGE);
  // AlterConfigs (replace) resets everything not listed.
  await b.tm.alterConfigs('cfg', [{ name: 'retention.ms', op: 0, value: '1000' }], 'replace', false);
  t.deepEqual(b.tm.topic('cfg')!.record.configs, { 'retention.ms': '1000' });
  t.is((await b.tm.partition('cfg', 0).append(Buffer.from(big))).baseOffset, 1);
  await b.close();
});

test('delete removes the topic, its directories, and frees the name for a new, empty topic', async (t) => {
  const dir = freshDir();
  const s = await openTm(dir);
  const old = await s.tm.createTopic(newTopic('gone', 2), false);
  await s.tm.partition('gone', 0).append(batch(['a', 'b', 'c']));
  await s.tm.deleteTopic('gone');
  t.is(s.tm.topic('gone'), undefined);
  t.is(s.tm.topicById(old.topicId), undefined);
  t.is(s.tm.partitionCount(), 0);
  t.is(await codeOf(s.tm.deleteTopic('gone')), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  t.deepEqual(s.meta.pendingDeletions(), []);
  const again = await s.tm.createTopic(newTopic('gone', 1), false);
  t.false(again.topicId.equals(old.topicId));
  t.is(s.tm.partition('gone', 0).logEndOffset, 0);
  await s.close(); // waits for the background removal
  t.deepEqual(logDirs(dir), ['gone-0']);
  const r = await openTm(dir);
  t.true(r.tm.topic('gone')!.record.topicId.equals(again.topicId));
  await r.close();
});

test('a crash after the metadata delete finishes the deletion at start; the topic never comes back', async (t) => {
  const dir = freshDir();
  const a = await openTm(dir);
  await a.tm.createTopic(newTopic('doomed', 2), false);
  await a.tm.partition('doomed', 0).append(batch(['a']));
  await a.tm.createTopic(newTopic('kept', 1), false);
  const record = a.meta.topic('doomed')!;
  await a.close();
  // Simulate the crash: the first step (durable metadata removal) happened, the directories were not touched.
  const meta = await MetadataStore.open(dir, logger);
  await meta.removeTopic(record);
  await meta.close();
  t.deepEqual(logDirs(dir), ['doomed-0', 'doomed-1', 'kept-0']);

  const b = await openTm(dir);
  t.is(b.tm.topic('doomed'), undefined);
  t.truthy(b.tm.topic('kept'));
  t.deepEqual(b.meta.pendingDeletions(), []);
  await b.close();
  t.deepEqual(logDirs(dir), ['kept-0']);
});

test('leftover -delete directories are removed at start; unknown directories are set aside, not adopted', async (t) => {
  const dir = freshDir();
  const a = await openTm(dir);
  await a.tm.createTopic(newTopic('live', 1), false);
  await a.close();
  const logs = path.join(dir, 'logs');
  fs.mkdirSync(path.join(logs, 'old-0.0123456789abcdef0123456789abcdef-delete'));
  fs.writeFileSync(path.join(logs, 'old-0.0123456789abcdef0123456789abcdef-delete', '00000000000000000000.log'), 'data');
  fs.mkdirSync(path.join(logs, 'ghost-0'));
  fs.writeFileSync(path.join(logs, 'ghost-0', 'marker'), 'keep me');

  const b = await openTm(dir);
  const names = logDirs(dir);
  t.false(names.some((n) => n.endsWith('-delete')));
  t.false(names.includes('ghost-0'));
  const stray = names.find((n) => n.startsWith('ghost-0.') && n.endsWith('-stray'));
  t.truthy(stray);
  t.is(fs.readFileSync(path.join(logs, stray!, 'marker'), 'utf8'), 'keep me');
  // A new topic of the stray's name starts empty.
  await b.tm.createTopic(newTopic('ghost', 1), false);
  t.false(fs.existsSync(path.join(logs, 'ghost-0', 'marker')));
  await b.close();
});

test('retention deletes old segments, on demand and by the timer', async (t) => {
  const dir = freshDir();
  const clock = { now: Date.now() };
  const s = await openTm(dir, { nowMs: () => clock.now, retentionCheckIntervalMs: 25 });
  await s.tm.createTopic(newTopic('short', 1, { 'retention.ms': '60000', 'segment.bytes': '100' }), false);
  const log = s.tm.partition('short', 0);
  for (let i = 0; i < 4; i++) await log.append(batch([`record-${i}-${'x'.repeat(80)}`], clock.now));
  t.is(log.logStartOffset, 0);
  t.true(log.segmentBaseOffsets().length >= 4);
  clock.now += 60_001;
  const deadline = Date.now() + 5000;
  while (log.logStartOffset === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  // Every closed segment is past retention; the active one stays.
  t.is(log.logStartOffset, 3);
  // The append rolls the segment holding offset 3 (segment.bytes 100): closed now and past retention, it goes
  // on demand; the new active segment (offset 4, a fresh timestamp) stays.
  await log.append(batch(['new'], clock.now));
  await s.tm.runRetention();
  t.is(log.logStartOffset, 4);
  t.is(log.logEndOffset, 5);
  t.is(log.read(4, 1000).records.length, 1);
  await s.close();
});

test('append listeners hear every partition; a throwing listener does not fail the append', async (t) => {
  const s = await openTm(freshDir());
  await s.tm.createTopic(newTopic('heard', 2), false);
  const heard: string[] = [];
  s.tm.onAppend(() => {
    throw new Error('listener bug');
  });
  const off = s.tm.onAppend((topic, partition) => heard.push(`${topic}-${partition}`));
  await s.tm.partition('heard', 1).append(batch(['a']));
  await s.tm.partition('heard', 0).append(batch(['b']));
  t.deepEqual(heard, ['heard-1', 'heard-0']);
  off();
  await s.tm.partition('heard', 0).append(batch(['c']));
  t.is(heard.length, 2);
  // Partitions added later are heard too.
  s.tm.onAppend((topic, partition) => heard.push(`${topic}-${partition}`));
  await s.tm.createPartitions('heard', 3, false);
  await s.tm.partition('heard', 2).append(batch(['d']));
  t.deepEqual(heard.slice(2), ['heard-2']);
  await s.close();
});

test('auto-creation makes the topic once with broker defaults', async (t) => {
  const s = await openTm(freshDir());
  const [a, b] = await Promise.all([s.tm.createIfMissing('auto'), s.tm.createIfMissing('auto')]);
  t.is(a, b);
  t.is(a.logs.length, 2);
  t.is(await codeOf(s.tm.createIfMissing('bad name')), ErrorCode.INVALID_TOPIC_EXCEPTION);
  await s.close();
});

test('admin calls after close are refused', async (t) => {
  const s = await openTm(freshDir());
  await s.close();
  t.is(await codeOf(s.tm.createTopic(newTopic('late'), false)), ErrorCode.KAFKA_STORAGE_ERROR);
});
