import test from 'ava';
import { ConfigSource, ConfigType } from '../../src/backends/backend.ts';
import { DEFAULT_LOG_CONFIG } from '../../src/log/log-config.ts';
import {
  applyConfigOps,
  checkBatchTimestamps,
  describeTopicConfigs,
  minInsyncReplicas,
  TOPIC_CONFIGS,
  timestampBounds,
  toLogConfig,
  validateTopicConfigs,
} from '../../src/log/topic-config.ts';
import { buildRecordBatch } from '../../src/protocol/records/builder.ts';
import { ErrorCode, KafkaError } from '../../src/protocol/errors.ts';

function codeOf(fn: () => unknown): number {
  try {
    fn();
  } catch (err) {
    if (err instanceof KafkaError) return err.code;
    throw err;
  }
  return ErrorCode.NONE;
}

test('every config Kafka documents for topics is known', (t) => {
  for (const name of [
    'cleanup.policy', 'compression.type', 'delete.retention.ms', 'file.delete.delay.ms', 'flush.messages', 'flush.ms',
    'index.interval.bytes', 'max.message.bytes', 'message.timestamp.type', 'min.insync.replicas', 'retention.bytes',
    'retention.ms', 'segment.bytes', 'segment.index.bytes', 'segment.ms', 'segment.jitter.ms',
    'unclean.leader.election.enable', 'message.timestamp.difference.max.ms', 'max.compaction.lag.ms',
    'min.compaction.lag.ms', 'min.cleanable.dirty.ratio', 'preallocate', 'message.downconversion.enable',
    'message.format.version', 'follower.replication.throttled.replicas', 'leader.replication.throttled.replicas',
  ]) {
    t.true(TOPIC_CONFIGS.has(name), name);
  }
});

test('values are validated by type and range and normalized', (t) => {
  t.deepEqual(validateTopicConfigs({ 'retention.ms': ' -1 ', 'preallocate': 'TRUE', 'min.cleanable.dirty.ratio': '0.25' }), {
    'retention.ms': '-1',
    'preallocate': 'true',
    'min.cleanable.dirty.ratio': '0.25',
  });
  const bad: Record<string, string>[] = [
    { 'retention.ms': '-2' },
    { 'retention.ms': 'abc' },
    { 'retention.ms': '1.5' },
    { 'retention.ms': '9223372036854775808' },
    { 'segment.bytes': '13' },
    { 'segment.bytes': '2147483648' },
    { 'max.message.bytes': '-1' },
    { 'preallocate': 'yes' },
    { 'message.timestamp.type': 'createtime' },
    { 'min.insync.replicas': '0' },
    { 'min.cleanable.dirty.ratio': '1.5' },
    { 'flush.messages': '0' },
    { 'leader.replication.throttled.replicas': '0:1,x' },
  ];
  for (const configs of bad) t.is(codeOf(() => validateTopicConfigs(configs)), ErrorCode.INVALID_CONFIG, JSON.stringify(configs));
  t.is(validateTopicConfigs({ 'flush.messages': '9223372036854775807' })['flush.messages'], '9223372036854775807');
});

test('unknown names, compaction, broker-side compression and tiered storage are INVALID_CONFIG', (t) => {
  t.is(codeOf(() => validateTopicConfigs({ 'retention.minutes': '1' })), ErrorCode.INVALID_CONFIG);
  for (const [name, value] of [
    ['cleanup.policy', 'compact'],
    ['cleanup.policy', 'compact,delete'],
    ['cleanup.policy', ''],
    ['compression.type', 'gzip'],
    ['compression.type', 'uncompressed'],
    ['compression.type', 'brotli'],
    ['remote.storage.enable', 'true'],
  ] as const) {
    const err = t.throws(() => validateTopicConfigs({ [name]: value }), { instanceOf: KafkaError });
    t.is(err!.code, ErrorCode.INVALID_CONFIG);
  }
  t.regex(t.throws(() => validateTopicConfigs({ 'cleanup.policy': 'compact' }))!.message, /compaction is not supported/);
  t.deepEqual(validateTopicConfigs({ 'cleanup.policy': 'delete', 'compression.type': 'producer' }), {
    'cleanup.policy': 'delete',
    'compression.type': 'producer',
  });
});

test('configs map onto the LogConfig over the broker defaults', (t) => {
  const broker = { ...DEFAULT_LOG_CONFIG, retentionMs: 1000, segmentBytes: 4096 };
  const cfg = toLogConfig(broker, validateTopicConfigs({
    'retention.bytes': '100',
    'max.message.bytes': '2000',
    'message.timestamp.type': 'LogAppendTime',
    'flush.messages': '9223372036854775807',
    'segment.ms': '60000',
    'index.interval.bytes': '10',
    'segment.index.bytes': '1024',
    'file.delete.delay.ms': '5',
  }));
  t.deepEqual(cfg, {
    ...broker,
    retentionBytes: 100,
    maxMessageBytes: 2000,
    messageTimestampType: 'LogAppendTime',
    flushMessages: Number.MAX_SAFE_INTEGER,
    segmentMs: 60000,
    indexIntervalBytes: 10,
    segmentIndexBytes: 1024,
    fileDeleteDelayMs: 5,
  });
  t.is(toLogConfig(broker, {}).retentionMs, 1000);
  // flush.ms beyond a timer's reach means "by count only"; 0 means "sync every append".
  t.is(toLogConfig(broker, { 'flush.ms': '9223372036854775807' }).flushMs, -1);
  const eager = toLogConfig(broker, { 'flush.ms': '0', 'flush.messages': '500' });
  t.is(eager.flushMessages, 1);
  t.is(eager.flushMs, -1);
  t.is(minInsyncReplicas({}), 1);
  t.is(minInsyncReplicas({ 'min.insync.replicas': '2' }), 2);
});

test('replace mode keeps only the listed configs; incremental applies SET/DELETE/APPEND/SUBTRACT', (t) => {
  const current = { 'retention.ms': '1000', 'segment.ms': '5000' };
  t.deepEqual(applyConfigOps(current, [{ name: 'retention.bytes', op: 0, value: '10' }], 'replace'), { 'retention.bytes': '10' });
  t.deepEqual(
    applyConfigOps(current, [{ name: 'retention.ms', op: 1, value: null }, { name: 'max.message.bytes', op: 0, value: '77' }], 'incremental'),
    { 'segment.ms': '5000', 'max.message.bytes': '77' },
  );
  t.deepEqual(
    applyConfigOps({}, [{ name: 'leader.replication.throttled.replicas', op: 2, value: '0:1,1:1' }], 'incremental'),
    { 'leader.replication.throttled.replicas': '0:1,1:1' },
  );
  t.deepEqual(
    applyConfigOps({ 'leader.replication.throttled.replicas': '0:1,1:1' }, [{ name: 'leader.replication.throttled.replicas', op: 3, value: '0:1' }], 'incremental'),
    { 'leader.replication.throttled.replicas': '1:1' },
  );
  // APPEND compact to cleanup.policy produces 'delete,compact', which is refused.
  t.is(codeOf(() => applyConfigOps({}, [{ name: 'cleanup.policy', op: 2, value: 'compact' }], 'incremental')), ErrorCode.INVALID_CONFIG);
  t.is(codeOf(() => applyConfigOps({}, [{ name: 'retention.ms', op: 2, value: '1' }], 'incremental')), ErrorCode.INVALID_CONFIG);
  t.is(codeOf(() => applyConfigOps({}, [{ name: 'nope', op: 1, value: null }], 'incremental')), ErrorCode.INVALID_CONFIG);
  t.is(codeOf(() => applyConfigOps({}, [{ name: 'retention.ms', op: 0, value: null }], 'incremental')), ErrorCode.INVALID_CONFIG);
  t.is(
    codeOf(() => applyConfigOps({}, [{ name: 'retention.ms', op: 0, value: '1' }, { name: 'retention.ms', op: 1, value: null }], 'incremental')),
    ErrorCode.INVALID_REQUEST,
  );
  t.deepEqual(current, { 'retention.ms': '1000', 'segment.ms': '5000' }, 'the input is not modified');
});

test('describe lists every config with its source', (t) => {
  const broker = { ...DEFAULT_LOG_CONFIG, retentionMs: 1000 };
  const entries = describeTopicConfigs(broker, { 'segment.bytes': '2048' });
  t.is(entries.length, TOPIC_CONFIGS.size);
  const byName = new Map(entries.map((e) => [e.name, e]));
  t.like(byName.get('segment.bytes'), { value: '2048', isDefault: false, source: ConfigSource.DYNAMIC_TOPIC_CONFIG, type: ConfigType.INT });
  t.like(byName.get('retention.ms'), { value: '1000', isDefault: false, source: ConfigSource.STATIC_BROKER_CONFIG, type: ConfigType.LONG });
  t.like(byName.get('max.message.bytes'), { value: '1048588', isDefault: true, source: ConfigSource.DEFAULT_CONFIG });
  t.like(byName.get('cleanup.policy'), { value: 'delete', isDefault: true, source: ConfigSource.DEFAULT_CONFIG, type: ConfigType.LIST });
  t.like(byName.get('unclean.leader.election.enable'), { value: 'false', type: ConfigType.BOOLEAN, readOnly: false, sensitive: false });
  for (const e of entries) t.is(typeof e.documentation, 'string');
});

test('timestamp bounds: unlimited by default, the tighter of before/after and difference otherwise', (t) => {
  t.is(timestampBounds({}), null);
  t.deepEqual(timestampBounds({ 'message.timestamp.before.max.ms': '1000' }), { beforeMaxMs: 1000, afterMaxMs: Number.MAX_SAFE_INTEGER });
  t.deepEqual(
    timestampBounds({ 'message.timestamp.difference.max.ms': '500', 'message.timestamp.after.max.ms': '100' }),
    { beforeMaxMs: 500, afterMaxMs: 100 },
  );
});

test('batches with a first or max timestamp outside the bounds are INVALID_TIMESTAMP', (t) => {
  const now = 1_700_000_000_000;
  const bounds = { beforeMaxMs: 1000, afterMaxMs: 100 };
  const ok = buildRecordBatch([{ value: 'a', timestamp: now - 1000 }, { value: 'b', timestamp: now + 100 }]);
  const late = buildRecordBatch([{ value: 'a', timestamp: now }, { value: 'b', timestamp: now + 101 }]);
  const early = buildRecordBatch([{ value: 'a', timestamp: now - 1001 }, { value: 'b', timestamp: now }]);
  t.notThrows(() => checkBatchTimestamps(Buffer.concat([ok, ok]), bounds, now));
  for (const bad of [late, Buffer.concat([ok, early])]) {
    const err = t.throws(() => checkBatchTimestamps(bad, bounds, now), { instanceOf: KafkaError });
    t.is(err!.code, ErrorCode.INVALID_TIMESTAMP);
  }
  // A malformed payload is left to the log's validation.
  t.notThrows(() => checkBatchTimestamps(Buffer.alloc(10), bounds, now));
});
