// Kafka's topic configs: names, types, validation, what DescribeConfigs reports, and how a topic's dynamic
// configs plus the broker's defaults become the LogConfig its partitions obey.
//
// Every config Kafka knows for a topic is accepted by name, so tools that copy a topic's configs keep working.
// Configs that change behaviour we do not have are refused with INVALID_CONFIG and a message saying so
// (cleanup.policy=compact, compression.type other than 'producer', remote.storage.enable=true); configs that
// only matter for features we lack (compaction lags, throttled replicas, preallocate ...) are validated and
// stored, and described like any other, because setting them to any valid value changes nothing here.
import { ConfigSource, ConfigType, type ConfigEntry, type ConfigOp } from '../backends/backend.ts';
import { ErrorCode, KafkaError } from '../protocol/errors.ts';
import { checkBatchAt } from '../protocol/records/batch.ts';
import { DEFAULT_LOG_CONFIG, type LogConfig } from './log-config.ts';

const INT_MIN = -2147483648;
const INT_MAX = 2147483647;
const LONG_MAX = 2n ** 63n - 1n;
/** Kafka's "no limit" default for many LONG configs. */
const LONG_MAX_TEXT = LONG_MAX.toString();
/** setTimeout cannot wait longer; a flush interval beyond it means "never by time". */
const TIMER_MS_MAX = INT_MAX;

export interface TopicConfigDef {
  name: string;
  /** ConfigType of DescribeConfigs. */
  type: number;
  doc: string;
  /** Kafka's default, as text; used when the broker has no setting of its own for this config. */
  kafkaDefault: string;
  /** The broker's default for this config (from the broker's LogConfig), when the broker has one. */
  brokerDefault?: (d: LogConfig) => string;
  /** Throws INVALID_CONFIG; returns the value in its normal form (what is stored and described). */
  validate: (value: string) => string;
  /** Applies a validated value to the partitions' LogConfig (configs without it do not affect the log). */
  apply?: (cfg: LogConfig, value: string) => void;
}

function invalid(name: string, value: string, why: string): KafkaError {
  return new KafkaError(ErrorCode.INVALID_CONFIG, `Invalid value ${value} for configuration ${name}: ${why}`);
}

function integerIn(name: string, value: string, min: bigint, max: bigint): string {
  const text = value.trim();
  if (!/^[+-]?\d+$/.test(text)) throw invalid(name, value, 'Not a number of type ' + (max === LONG_MAX ? 'LONG' : 'INT'));
  const n = BigInt(text);
  if (n < min) throw invalid(name, value, `Value must be at least ${min}`);
  if (n > max) throw invalid(name, value, `Value must be no more than ${max}`);
  return n.toString();
}

const intAtLeast = (min: number, max = INT_MAX) => (name: string) => (v: string) => integerIn(name, v, BigInt(min), BigInt(max));
const longAtLeast = (min: bigint) => (name: string) => (v: string) => integerIn(name, v, min, LONG_MAX);

const boolean = (name: string) => (v: string) => {
  const text = v.trim().toLowerCase();
  if (text !== 'true' && text !== 'false') throw invalid(name, v, 'Expected value to be either true or false');
  return text;
};

const oneOf = (allowed: string[]) => (name: string) => (v: string) => {
  const text = v.trim();
  if (!allowed.includes(text)) throw invalid(name, v, `String must be one of: ${allowed.join(', ')}`);
  return text;
};

const doubleIn = (min: number, max: number) => (name: string) => (v: string) => {
  const text = v.trim();
  const n = Number(text);
  if (text === '' || !Number.isFinite(n)) throw invalid(name, v, 'Not a number of type DOUBLE');
  if (n < min || n > max) throw invalid(name, v, `Value must be between ${min} and ${max}`);
  return String(n);
};

/** Kafka LIST values: comma-separated, blanks around items ignored. */
export function parseList(value: string): string[] {
  const text = value.trim();
  return text === '' ? [] : text.split(/\s*,\s*/);
}

/** Throttled replica lists: '*' or partitionId:brokerId pairs. */
const throttledReplicas = (name: string) => (v: string) => {
  const items = parseList(v);
  if (items.length === 1 && items[0] === '*') return '*';
  for (const item of items) {
    if (!/^\d+:\d+$/.test(item)) throw invalid(name, v, "must be '*' or a list of partitionId:brokerId");
  }
  return items.join(',');
};

/** Only 'delete' is implemented: a compacted topic would silently keep every record, so it is refused. */
const cleanupPolicy = (name: string) => (v: string) => {
  const items = parseList(v);
  for (const item of items) {
    if (item === 'compact') throw invalid(name, v, 'log compaction is not supported by this broker yet; use cleanup.policy=delete');
    if (item !== 'delete') throw invalid(name, v, 'List must contain only: compact, delete');
  }
  if (items.length === 0) throw invalid(name, v, 'the only supported policy is delete');
  return 'delete';
};

/**
 * Batches are stored exactly as the producer sent them (no per-record work on the hot path), which is what
 * 'producer' means. Any other type would require the broker to recompress every batch, so it is refused
 * rather than accepted and ignored.
 */
const compressionType = (name: string) => (v: string) => {
  const text = v.trim().toLowerCase();
  if (text === 'producer') return text;
  if (['uncompressed', 'none', 'gzip', 'snappy', 'lz4', 'zstd'].includes(text)) {
    throw invalid(name, v, "this broker stores batches as the producer compressed them; only 'producer' is supported");
  }
  throw invalid(name, v, 'String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer');
};

/** Tiered storage does not exist here; enabling it is refused. */
const remoteStorage = (name: string) => (v: string) => {
  const text = boolean(name)(v);
  if (text === 'true') throw invalid(name, v, 'tiered storage is not supported by this broker');
  return text;
};

/** message.format.version is ignored by Kafka 3.0+ brokers for v2 batches; any version-looking text is kept. */
const formatVersion = (name: string) => (v: string) => {
  const text = v.trim();
  if (!/^\d+\.\d+(\.\d+)?(-IV\d+)?$/.test(text)) throw invalid(name, v, 'not a Kafka version such as 3.0-IV1');
  return text;
};

/** A LONG config mapped onto a LogConfig number: values past 2^53 mean "unlimited" and are clamped. */
function toSafeNumber(value: string): number {
  const n = BigInt(value);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) return Number.MAX_SAFE_INTEGER;
  return Number(n);
}

type Validator = (name: string) => (v: string) => string;

interface DefSpec {
  type: number;
  doc: string;
  kafkaDefault: string;
  check: Validator;
  brokerDefault?: (d: LogConfig) => string;
  apply?: (cfg: LogConfig, value: string) => void;
}

const SPECS: Record<string, DefSpec> = {
  'cleanup.policy': {
    type: ConfigType.LIST, kafkaDefault: 'delete', check: cleanupPolicy,
    doc: 'Retention policy for old segments: delete (compact is not supported yet).',
  },
  'compression.type': {
    type: ConfigType.STRING, kafkaDefault: 'producer', check: compressionType,
    doc: "Compression of stored batches; only 'producer' (keep the producer's codec) is supported.",
  },
  'compression.gzip.level': {
    type: ConfigType.INT, kafkaDefault: '-1', check: (n) => (v) => gzipLevel(n, v),
    doc: 'Broker-side gzip level; unused because batches are stored as produced.',
  },
  'compression.lz4.level': {
    type: ConfigType.INT, kafkaDefault: '9', check: intAtLeast(1, 17),
    doc: 'Broker-side lz4 level; unused because batches are stored as produced.',
  },
  'compression.zstd.level': {
    type: ConfigType.INT, kafkaDefault: '3', check: intAtLeast(-131072, 22),
    doc: 'Broker-side zstd level; unused because batches are stored as produced.',
  },
  'delete.retention.ms': {
    type: ConfigType.LONG, kafkaDefault: '86400000', check: longAtLeast(0n),
    doc: 'How long delete tombstones are kept on compacted topics (compaction is not supported yet).',
  },
  'file.delete.delay.ms': {
    type: ConfigType.LONG, kafkaDefault: '60000', check: longAtLeast(0n),
    brokerDefault: (d) => String(d.fileDeleteDelayMs),
    apply: (c, v) => { c.fileDeleteDelayMs = toSafeNumber(v); },
    doc: 'How long a deleted segment file is kept before it is removed (ms).',
  },
  'flush.messages': {
    type: ConfigType.LONG, kafkaDefault: LONG_MAX_TEXT, check: longAtLeast(1n),
    brokerDefault: (d) => String(d.flushMessages),
    apply: (c, v) => { c.flushMessages = toSafeNumber(v); },
    doc: 'Fsync the log after this many messages; 1 syncs every append before it is acknowledged.',
  },
  'flush.ms': {
    type: ConfigType.LONG, kafkaDefault: LONG_MAX_TEXT, check: longAtLeast(0n),
    brokerDefault: (d) => String(d.flushMs),
    apply: (c, v) => { const n = toSafeNumber(v); c.flushMs = n > TIMER_MS_MAX ? -1 : n; },
    // flush.ms=0 (sync as soon as possible) becomes flush.messages=1 in toLogConfig.
    doc: 'Fsync the log at least this often while it has unsynced data (ms).',
  },
  'follower.replication.throttled.replicas': {
    type: ConfigType.LIST, kafkaDefault: '', check: throttledReplicas,
    doc: 'Replicas whose follower replication is throttled (no effect on a single node).',
  },
  'index.interval.bytes': {
    type: ConfigType.INT, kafkaDefault: '4096', check: intAtLeast(0),
    brokerDefault: (d) => String(d.indexIntervalBytes),
    apply: (c, v) => { c.indexIntervalBytes = Number(v); },
    doc: 'Log bytes between two offset index entries.',
  },
  'leader.replication.throttled.replicas': {
    type: ConfigType.LIST, kafkaDefault: '', check: throttledReplicas,
    doc: 'Replicas whose leader replication is throttled (no effect on a single node).',
  },
  'local.retention.bytes': {
    type: ConfigType.LONG, kafkaDefault: '-2', check: longAtLeast(-2n),
    doc: 'Local retention with tiered storage (tiered storage is not supported).',
  },
  'local.retention.ms': {
    type: ConfigType.LONG, kafkaDefault: '-2', check: longAtLeast(-2n),
    doc: 'Local retention with tiered storage (tiered storage is not supported).',
  },
  'max.compaction.lag.ms': {
    type: ConfigType.LONG, kafkaDefault: LONG_MAX_TEXT, check: longAtLeast(1n),
    doc: 'Longest time a message stays uncompacted (compaction is not supported yet).',
  },
  'max.message.bytes': {
    type: ConfigType.INT, kafkaDefault: '1048588', check: intAtLeast(0),
    brokerDefault: (d) => String(d.maxMessageBytes),
    apply: (c, v) => { c.maxMessageBytes = Number(v); },
    doc: 'The largest record batch the topic accepts (bytes).',
  },
  'message.downconversion.enable': {
    type: ConfigType.BOOLEAN, kafkaDefault: 'true', check: boolean,
    doc: 'Down-conversion for old consumers (batches are always served as stored).',
  },
  'message.format.version': {
    type: ConfigType.STRING, kafkaDefault: '3.0-IV1', check: formatVersion,
    doc: 'Deprecated; record batches are always v2.',
  },
  'message.timestamp.after.max.ms': {
    type: ConfigType.LONG, kafkaDefault: LONG_MAX_TEXT, check: longAtLeast(0n),
    doc: 'Largest allowed lead of a CreateTime timestamp over broker time (ms).',
  },
  'message.timestamp.before.max.ms': {
    type: ConfigType.LONG, kafkaDefault: LONG_MAX_TEXT, check: longAtLeast(0n),
    doc: 'Largest allowed lag of a CreateTime timestamp behind broker time (ms).',
  },
  'message.timestamp.difference.max.ms': {
    type: ConfigType.LONG, kafkaDefault: LONG_MAX_TEXT, check: longAtLeast(0n),
    doc: 'Deprecated; largest allowed difference between a CreateTime timestamp and broker time (ms).',
  },
  'message.timestamp.type': {
    type: ConfigType.STRING, kafkaDefault: 'CreateTime', check: oneOf(['CreateTime', 'LogAppendTime']),
    brokerDefault: (d) => d.messageTimestampType,
    apply: (c, v) => { c.messageTimestampType = v as LogConfig['messageTimestampType']; },
    doc: 'CreateTime keeps producer timestamps; LogAppendTime stamps broker time on append.',
  },
  'min.cleanable.dirty.ratio': {
    type: ConfigType.DOUBLE, kafkaDefault: '0.5', check: doubleIn(0, 1),
    doc: 'Dirty ratio that triggers compaction (compaction is not supported yet).',
  },
  'min.compaction.lag.ms': {
    type: ConfigType.LONG, kafkaDefault: '0', check: longAtLeast(0n),
    doc: 'Shortest time a message stays uncompacted (compaction is not supported yet).',
  },
  'min.insync.replicas': {
    type: ConfigType.INT, kafkaDefault: '1', check: intAtLeast(1),
    doc: 'Replicas that must be in sync for an acks=all produce to succeed.',
  },
  'preallocate': {
    type: ConfigType.BOOLEAN, kafkaDefault: 'false', check: boolean,
    doc: 'Preallocate segment files (not done by this broker).',
  },
  'remote.storage.enable': {
    type: ConfigType.BOOLEAN, kafkaDefault: 'false', check: remoteStorage,
    doc: 'Tiered storage (not supported).',
  },
  'retention.bytes': {
    type: ConfigType.LONG, kafkaDefault: '-1', check: longAtLeast(-1n),
    brokerDefault: (d) => String(d.retentionBytes),
    apply: (c, v) => { c.retentionBytes = toSafeNumber(v); },
    doc: 'Delete old segments while a partition is larger than this (bytes); -1 unlimited.',
  },
  'retention.ms': {
    type: ConfigType.LONG, kafkaDefault: '604800000', check: longAtLeast(-1n),
    brokerDefault: (d) => String(d.retentionMs),
    apply: (c, v) => { c.retentionMs = toSafeNumber(v); },
    doc: 'Delete segments whose newest record is older than this (ms); -1 keeps forever.',
  },
  'segment.bytes': {
    type: ConfigType.INT, kafkaDefault: '1073741824', check: intAtLeast(14),
    brokerDefault: (d) => String(d.segmentBytes),
    apply: (c, v) => { c.segmentBytes = Number(v); },
    doc: 'Roll a new segment when the active one reaches this size (bytes).',
  },
  'segment.index.bytes': {
    type: ConfigType.INT, kafkaDefault: '10485760', check: intAtLeast(4),
    brokerDefault: (d) => String(d.segmentIndexBytes),
    apply: (c, v) => { c.segmentIndexBytes = Number(v); },
    doc: 'Largest offset index file; the segment rolls when it is full (bytes).',
  },
  'segment.jitter.ms': {
    type: ConfigType.LONG, kafkaDefault: '0', check: longAtLeast(0n),
    doc: 'Random jitter subtracted from segment.ms (not applied: segments roll at segment.ms).',
  },
  'segment.ms': {
    type: ConfigType.LONG, kafkaDefault: '604800000', check: longAtLeast(1n),
    brokerDefault: (d) => String(d.segmentMs),
    apply: (c, v) => { c.segmentMs = toSafeNumber(v); },
    doc: 'Roll a new segment when the active one is older than this (ms).',
  },
  'unclean.leader.election.enable': {
    type: ConfigType.BOOLEAN, kafkaDefault: 'false', check: boolean,
    doc: 'Allow out-of-sync replicas to become leader (no effect on a single node).',
  },
};

function gzipLevel(name: string, v: string): string {
  const text = integerIn(name, v, BigInt(INT_MIN), BigInt(INT_MAX));
  const n = Number(text);
  if (n !== -1 && (n < 1 || n > 9)) throw invalid(name, v, 'Value must be -1 or between 1 and 9');
  return text;
}

/** Every topic config, by name, sorted (DescribeConfigs lists them in this order). */
export const TOPIC_CONFIGS: ReadonlyMap<string, TopicConfigDef> = new Map(
  Object.keys(SPECS)
    .sort()
    .map((name) => {
      const s = SPECS[name]!;
      const def: TopicConfigDef = { name, type: s.type, doc: s.doc, kafkaDefault: s.kafkaDefault, validate: s.check(name) };
      if (s.brokerDefault) def.brokerDefault = s.brokerDefault;
      if (s.apply) def.apply = s.apply;
      return [name, def];
    }),
);

function defOf(name: string): TopicConfigDef {
  const def = TOPIC_CONFIGS.get(name);
  if (def === undefined) throw new KafkaError(ErrorCode.INVALID_CONFIG, `Unknown topic config name: ${name}`);
  return def;
}

/** Validates a set of topic configs (CreateTopics); returns them normalized. Throws INVALID_CONFIG. */
export function validateTopicConfigs(configs: Record<string, string | null>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(configs)) {
    const def = defOf(name);
    if (value === null) throw new KafkaError(ErrorCode.INVALID_CONFIG, `Null value not supported for topic config ${name}`);
    out[name] = def.validate(value);
  }
  return out;
}

/**
 * The dynamic configs after applying `ops` to `current`. 'replace' (AlterConfigs) keeps only the listed
 * configs (a DELETE op there just leaves its config out); 'incremental' (IncrementalAlterConfigs) applies
 * SET / DELETE / APPEND / SUBTRACT one by one.
 * Throws INVALID_CONFIG for unknown names or bad values, INVALID_REQUEST for a name listed twice.
 */
export function applyConfigOps(current: Record<string, string>, ops: ConfigOp[], mode: 'replace' | 'incremental'): Record<string, string> {
  const seen = new Set<string>();
  for (const op of ops) {
    if (seen.has(op.name)) throw new KafkaError(ErrorCode.INVALID_REQUEST, `Error due to duplicate config keys: ${op.name}`);
    seen.add(op.name);
  }
  if (mode === 'replace') {
    const next: Record<string, string | null> = {};
    for (const op of ops) if (op.op !== 1) next[op.name] = op.value;
    return validateTopicConfigs(next);
  }
  const next = { ...current };
  for (const op of ops) applyIncremental(next, op);
  return next;
}

function applyIncremental(configs: Record<string, string>, op: ConfigOp): void {
  const def = defOf(op.name);
  if (op.op === 1) {
    delete configs[op.name];
    return;
  }
  if (op.value === null) throw new KafkaError(ErrorCode.INVALID_CONFIG, `Null value not supported for topic config ${op.name}`);
  if (op.op === 0) {
    configs[op.name] = def.validate(op.value);
    return;
  }
  if (def.type !== ConfigType.LIST) {
    const verb = op.op === 2 ? 'append' : 'subtract';
    throw new KafkaError(ErrorCode.INVALID_CONFIG, `Config value ${verb} is not allowed for config key: ${op.name}`);
  }
  const items = parseList(configs[op.name] ?? def.kafkaDefault);
  const given = parseList(op.value);
  const result = op.op === 2 ? [...items, ...given.filter((g) => !items.includes(g))] : items.filter((i) => !given.includes(i));
  configs[op.name] = def.validate(result.join(','));
}

/** The LogConfig of a topic: the broker's defaults overridden by the topic's (validated) dynamic configs. */
export function toLogConfig(brokerDefaults: LogConfig, dynamic: Record<string, string>): LogConfig {
  const cfg: LogConfig = { ...brokerDefaults };
  for (const [name, value] of Object.entries(dynamic)) TOPIC_CONFIGS.get(name)?.apply?.(cfg, value);
  if (cfg.flushMs === 0) {
    // "Flush at least every 0 ms" is a sync of every append, which the log expresses as flushMessages=1
    // (its flushMs has no 0: -1 means "by count only").
    cfg.flushMessages = 1;
    cfg.flushMs = -1;
  }
  return cfg;
}

/** min.insync.replicas of a topic (dynamic value, else Kafka's default). */
export function minInsyncReplicas(dynamic: Record<string, string>): number {
  return Number(dynamic['min.insync.replicas'] ?? SPECS['min.insync.replicas']!.kafkaDefault);
}

/** How far CreateTime timestamps may lie behind / ahead of broker time (ms). */
export interface TimestampBounds {
  beforeMaxMs: number;
  afterMaxMs: number;
}

/**
 * The timestamp bounds of a CreateTime topic (message.timestamp.before/after.max.ms, and the deprecated
 * message.timestamp.difference.max.ms for both), or null when they are unlimited (the default), so the produce
 * path pays nothing for them unless a topic sets them.
 */
export function timestampBounds(dynamic: Record<string, string>): TimestampBounds | null {
  const limit = (name: string) => toSafeNumber(dynamic[name] ?? LONG_MAX_TEXT);
  const difference = limit('message.timestamp.difference.max.ms');
  const beforeMaxMs = Math.min(limit('message.timestamp.before.max.ms'), difference);
  const afterMaxMs = Math.min(limit('message.timestamp.after.max.ms'), difference);
  if (beforeMaxMs === Number.MAX_SAFE_INTEGER && afterMaxMs === Number.MAX_SAFE_INTEGER) return null;
  return { beforeMaxMs, afterMaxMs };
}

/**
 * Throws INVALID_TIMESTAMP when a batch of a produce payload has a timestamp outside the bounds. Checked on
 * each batch's first and largest timestamps from its header, so no record is decoded. Malformed batches are
 * skipped here: the log's own validation rejects them with the precise error.
 */
export function checkBatchTimestamps(payload: Buffer, bounds: TimestampBounds, nowMs: number): void {
  const earliest = nowMs - bounds.beforeMaxMs;
  const latest = nowMs + bounds.afterMaxMs;
  for (let position = 0; position < payload.length; ) {
    const check = checkBatchAt(payload, position, { verifyCrc: false, maxBatchBytes: 0 });
    if (!check.ok) return;
    const { baseTimestamp, maxTimestamp } = check.view;
    for (const ts of [baseTimestamp, maxTimestamp]) {
      if (ts < earliest || ts > latest) {
        throw new KafkaError(
          ErrorCode.INVALID_TIMESTAMP,
          `Timestamp ${ts} of a record is out of range: broker time is ${nowMs}, allowed ${bounds.beforeMaxMs} ms before and ${bounds.afterMaxMs} ms after`,
        );
      }
    }
    position += check.view.size;
  }
}

/** DescribeConfigs for a topic: every topic config with its effective value and where it comes from. */
export function describeTopicConfigs(brokerDefaults: LogConfig, dynamic: Record<string, string>): ConfigEntry[] {
  const out: ConfigEntry[] = [];
  for (const def of TOPIC_CONFIGS.values()) out.push(describeOne(def, brokerDefaults, dynamic[def.name]));
  return out;
}

function describeOne(def: TopicConfigDef, brokerDefaults: LogConfig, dynamicValue: string | undefined): ConfigEntry {
  const entry = { name: def.name, readOnly: false, sensitive: false, type: def.type, documentation: def.doc };
  if (dynamicValue !== undefined) {
    return { ...entry, value: dynamicValue, isDefault: false, source: ConfigSource.DYNAMIC_TOPIC_CONFIG };
  }
  if (def.brokerDefault !== undefined) {
    // The broker's own setting counts as static broker config when it differs from the built-in default.
    const value = def.brokerDefault(brokerDefaults);
    const isStatic = value !== def.brokerDefault(DEFAULT_LOG_CONFIG);
    return { ...entry, value, isDefault: !isStatic, source: isStatic ? ConfigSource.STATIC_BROKER_CONFIG : ConfigSource.DEFAULT_CONFIG };
  }
  return { ...entry, value: def.kafkaDefault, isDefault: true, source: ConfigSource.DEFAULT_CONFIG };
}
