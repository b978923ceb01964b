// DescribeConfigs for the broker resource: the broker settings clients and tools look at, under Kafka's names.
// None can be changed at runtime (no dynamic broker configs yet), so all are read-only; a value that differs
// from Kafka's default is reported as STATIC_BROKER_CONFIG, otherwise as DEFAULT_CONFIG.
import { ConfigSource, ConfigType, type ConfigEntry } from '../backend.ts';
import { DEFAULT_LOG_CONFIG, type LogConfig } from '../../log/log-config.ts';

export interface BrokerConfigInput {
  nodeId: number;
  advertisedHost: string;
  advertisedPort: number;
  rack: string | null;
  logDir: string;
  autoCreateTopics: boolean;
  defaultPartitions: number;
  defaultReplicationFactor: number;
  topicDefaults: LogConfig;
  retentionCheckIntervalMs: number;
  offsetsRetentionMs: number;
  offsetMetadataBytesMax: number;
}

interface Row {
  name: string;
  type: number;
  value: string | null;
  /** Kafka's default; undefined when the setting has none (always reported as set by this broker). */
  kafkaDefault?: string | null;
  doc: string;
}

const MINUTE_MS = 60_000;

function rows(b: BrokerConfigInput): Row[] {
  const d = b.topicDefaults;
  const k = DEFAULT_LOG_CONFIG;
  const { INT, LONG, STRING, BOOLEAN, LIST } = ConfigType;
  return [
    { name: 'advertised.listeners', type: STRING, value: `PLAINTEXT://${b.advertisedHost}:${b.advertisedPort}`, doc: 'The address clients are told to connect to.' },
    { name: 'auto.create.topics.enable', type: BOOLEAN, value: String(b.autoCreateTopics), kafkaDefault: 'true', doc: 'Metadata and Produce requests for an unknown topic create it.' },
    { name: 'broker.id', type: INT, value: String(b.nodeId), doc: 'The id of this broker.' },
    { name: 'broker.rack', type: STRING, value: b.rack, kafkaDefault: null, doc: 'The rack of this broker.' },
    { name: 'compression.type', type: STRING, value: 'producer', kafkaDefault: 'producer', doc: 'Batches are stored as the producer compressed them.' },
    { name: 'default.replication.factor', type: INT, value: String(b.defaultReplicationFactor), kafkaDefault: '1', doc: 'Replicas of a topic created without a replication factor.' },
    { name: 'delete.topic.enable', type: BOOLEAN, value: 'true', kafkaDefault: 'true', doc: 'Topics can be deleted.' },
    { name: 'log.cleanup.policy', type: LIST, value: 'delete', kafkaDefault: 'delete', doc: 'Old segments are deleted (compaction is not supported yet).' },
    { name: 'log.dirs', type: STRING, value: b.logDir, doc: 'Where partition logs are stored.' },
    { name: 'log.flush.interval.messages', type: LONG, value: String(d.flushMessages), kafkaDefault: String(k.flushMessages), doc: 'Fsync a partition after this many messages.' },
    { name: 'log.flush.interval.ms', type: LONG, value: String(d.flushMs), kafkaDefault: String(k.flushMs), doc: 'Fsync a partition at least this often while it has unsynced data (ms).' },
    { name: 'log.index.interval.bytes', type: INT, value: String(d.indexIntervalBytes), kafkaDefault: String(k.indexIntervalBytes), doc: 'Log bytes between offset index entries.' },
    { name: 'log.index.size.max.bytes', type: INT, value: String(d.segmentIndexBytes), kafkaDefault: String(k.segmentIndexBytes), doc: 'Largest offset index file (bytes).' },
    { name: 'log.message.timestamp.type', type: STRING, value: d.messageTimestampType, kafkaDefault: k.messageTimestampType, doc: 'CreateTime or LogAppendTime.' },
    { name: 'log.retention.bytes', type: LONG, value: String(d.retentionBytes), kafkaDefault: String(k.retentionBytes), doc: 'Largest partition size before old segments are deleted (bytes).' },
    { name: 'log.retention.check.interval.ms', type: LONG, value: String(b.retentionCheckIntervalMs), kafkaDefault: '300000', doc: 'How often retention runs (ms).' },
    { name: 'log.retention.ms', type: LONG, value: String(d.retentionMs), kafkaDefault: String(k.retentionMs), doc: 'Age after which segments are deleted (ms).' },
    { name: 'log.roll.ms', type: LONG, value: String(d.segmentMs), kafkaDefault: String(k.segmentMs), doc: 'Age after which a new segment is rolled (ms).' },
    { name: 'log.segment.bytes', type: INT, value: String(d.segmentBytes), kafkaDefault: String(k.segmentBytes), doc: 'Size at which a new segment is rolled (bytes).' },
    { name: 'log.segment.delete.delay.ms', type: LONG, value: String(d.fileDeleteDelayMs), kafkaDefault: String(k.fileDeleteDelayMs), doc: 'Delay before a deleted segment file is removed (ms).' },
    { name: 'message.max.bytes', type: INT, value: String(d.maxMessageBytes), kafkaDefault: String(k.maxMessageBytes), doc: 'Largest record batch accepted (bytes).' },
    { name: 'min.insync.replicas', type: INT, value: '1', kafkaDefault: '1', doc: 'Replicas that must be in sync for acks=all.' },
    { name: 'node.id', type: INT, value: String(b.nodeId), doc: 'The id of this node.' },
    { name: 'num.partitions', type: INT, value: String(b.defaultPartitions), kafkaDefault: '1', doc: 'Partitions of a topic created without a count.' },
    { name: 'offset.metadata.max.bytes', type: INT, value: String(b.offsetMetadataBytesMax), kafkaDefault: '4096', doc: 'Largest metadata string of a committed offset (bytes).' },
    { name: 'offsets.retention.minutes', type: INT, value: String(Math.floor(b.offsetsRetentionMs / MINUTE_MS)), kafkaDefault: '10080', doc: 'Committed offsets of a group without members expire after this (minutes).' },
    { name: 'unclean.leader.election.enable', type: BOOLEAN, value: 'false', kafkaDefault: 'false', doc: 'Out-of-sync replicas may not become leader.' },
  ];
}

export function describeBrokerConfigs(input: BrokerConfigInput): ConfigEntry[] {
  return rows(input).map((r) => {
    const isDefault = r.kafkaDefault !== undefined && r.kafkaDefault === r.value;
    return {
      name: r.name,
      value: r.value,
      readOnly: true,
      isDefault,
      source: isDefault ? ConfigSource.DEFAULT_CONFIG : ConfigSource.STATIC_BROKER_CONFIG,
      sensitive: false,
      type: r.type,
      documentation: r.doc,
    };
  });
}
