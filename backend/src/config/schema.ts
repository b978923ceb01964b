// Every broker setting: its name, meaning and unit, format, default, environment variable and command-line flag.
// Names are flat so that the rule is mechanical: setting `dataDir` <- env TAKHIN_DATA_DIR <- flag --data-dir.
// Topic defaults follow Kafka's broker config names (log.segment.bytes -> logSegmentBytes).
import type convict from 'convict';
import { DEFAULT_LOG_CONFIG } from '../log/log-config.ts';
import { DEFAULT_GROUP_CONFIG } from '../group/config.ts';
import { BOOL, HOST, HOST_LIST, HOST_PORT, INT, INT32_MAX, MEMBER_LIST, NON_EMPTY, STRING } from './formats.ts';

export interface TakhinConfig {
  nodeId: number;
  hosts: string[];
  port: number;
  advertisedHost: string;
  advertisedPort: number;
  rack: string;
  dataDir: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  logFormat: 'auto' | 'json' | 'pretty';

  autoCreateTopics: boolean;
  numPartitions: number;
  defaultReplicationFactor: number;
  partitionsPerTopicMax: number;
  partitionsPerBrokerMax: number;

  logSegmentBytes: number;
  logRollMs: number;
  logRetentionMs: number;
  logRetentionBytes: number;
  messageMaxBytes: number;
  logIndexIntervalBytes: number;
  logIndexSizeMaxBytes: number;
  logFlushIntervalMessages: number;
  logFlushIntervalMs: number;
  logMessageTimestampType: 'CreateTime' | 'LogAppendTime';
  fileDeleteDelayMs: number;
  logRetentionCheckIntervalMs: number;

  offsetsRetentionMs: number;
  offsetsRetentionCheckIntervalMs: number;
  offsetMetadataBytesMax: number;

  groupMinSessionTimeoutMs: number;
  groupMaxSessionTimeoutMs: number;
  groupInitialRebalanceDelayMs: number;
  groupMaxSize: number;
  groupNewMemberJoinTimeoutMs: number;
  groupEmptyRetentionMs: number;

  requestBytesMax: number;
  inFlightRequestsMax: number;
  responseBytesMax: number;
  connectionsMax: number;
  connectionsIdleMs: number;
  shutdownTimeoutMs: number;
  fetchWaitMaxMs: number;

  adminHost: string;
  adminPort: number;

  mode: 'direct' | 'raft';
  clusterId: string;
  initialMembers: string[];
  replicaSelector: 'rack' | 'none';
  raftAddress: string;
  raftTickMs: number;
  raftElectionTicks: number;
  raftHeartbeatTicks: number;
  raftCommitWriteDelayMs: number;
  raftSyncCommitBytesMax: number;
  raftEntryCacheBytesMax: number;
  raftCheckQuorum: boolean;
  raftPreVote: boolean;
  proposalTimeoutMs: number;
  raftProposalsQueuedMax: number;
  raftProposalBatchBytesMax: number;
  raftMessageBytesMax: number;
  raftInflightMessagesMax: number;
  raftUncommittedBytesMax: number;
  snapshotEntriesBetween: number;
  snapshotTrailingEntries: number;
  snapshotsRetained: number;
  appendCoalesceBytesMax: number;
  appendCoalesceCountMax: number;
  appendProposalsInFlightMax: number;
  appendQueueBytesMax: number;
}

export type SettingName = keyof TakhinConfig;

/** Env variable of a setting: TAKHIN_ + UPPER_SNAKE of its name. */
export function envName(name: string): string {
  return `TAKHIN_${name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()}`;
}

/** Command-line flag (without the dashes) of a setting: kebab-case of its name. */
export function argName(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
}

type Setting = Omit<convict.SchemaObj, 'env' | 'arg'>;

const MAX_LONG = Number.MAX_SAFE_INTEGER;
const DAY_MS = 24 * 3600 * 1000;

function int(doc: string, def: number, min: number, max: number, extra: Partial<Setting> = {}): Setting {
  return { doc, format: INT, default: def, min, max, ...extra };
}

const SETTINGS: Record<SettingName, Setting> = {
  // ---- identity and network -------------------------------------------------------------------------------
  nodeId: int('node.id: this broker\'s id in Metadata and in the cluster.', 0, 0, INT32_MAX),
  hosts: {
    doc: 'Addresses to listen on (IP or host name), comma-separated in env/flags. An address this machine does not ' +
      'have (e.g. ::1 without IPv6) is skipped with a warning as long as one other works.',
    format: HOST_LIST,
    default: ['127.0.0.1'],
  },
  port: int('TCP port to listen on, the same on every host; 0 picks a free port (tests).', 9092, 0, 65535),
  advertisedHost: {
    doc: 'Host clients are told to connect to (Metadata). Empty: the first listen host, or the machine\'s host ' +
      'name when that is a wildcard (0.0.0.0, ::).',
    format: HOST,
    allowEmpty: true,
    default: '',
  },
  advertisedPort: int('Port clients are told to connect to; 0: the bound listen port.', 0, 0, 65535),
  rack: { doc: 'broker.rack; empty: no rack.', format: STRING, default: '' },
  dataDir: {
    doc: 'Directory holding all logs and metadata (relative paths resolve from the working directory).',
    format: NON_EMPTY,
    default: './data',
  },
  logLevel: {
    doc: 'Process log level.',
    format: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    default: 'info',
  },
  logFormat: {
    doc: 'Process log format: json, pretty (human-readable), or auto (pretty when stdout is a terminal).',
    format: ['auto', 'json', 'pretty'],
    default: 'auto',
  },

  // ---- topics ---------------------------------------------------------------------------------------------
  autoCreateTopics: {
    doc: 'auto.create.topics.enable: Metadata and Produce requests for an unknown topic create it.',
    format: BOOL,
    default: true,
  },
  numPartitions: int('num.partitions: partitions of a topic created without a count (count).', 1, 1, INT32_MAX),
  defaultReplicationFactor: int('default.replication.factor: replicas of a topic created without one (count); a ' +
    'single node accepts only 1.', 1, 1, 32767),
  partitionsPerTopicMax: int('Largest partition count one topic may have (count).', 10_000, 1, INT32_MAX),
  partitionsPerBrokerMax: int('Largest number of partitions this broker hosts over all topics (count).', 50_000, 1, INT32_MAX),

  // ---- topic defaults (LogConfig; a topic's own config overrides them) -------------------------------------
  logSegmentBytes: int('log.segment.bytes: roll a segment when it would grow past this (bytes).',
    DEFAULT_LOG_CONFIG.segmentBytes, 14, INT32_MAX),
  logRollMs: int('log.roll.ms: roll a segment when its first batch is older than this (ms).',
    DEFAULT_LOG_CONFIG.segmentMs, 1, MAX_LONG),
  logRetentionMs: int('log.retention.ms: delete segments whose newest record is older than this (ms); -1 keeps forever.',
    DEFAULT_LOG_CONFIG.retentionMs, -1, MAX_LONG),
  logRetentionBytes: int('log.retention.bytes: delete oldest segments while a partition is larger (bytes); -1 unlimited.',
    DEFAULT_LOG_CONFIG.retentionBytes, -1, MAX_LONG),
  messageMaxBytes: int('message.max.bytes: largest record batch accepted (bytes, whole batch).',
    DEFAULT_LOG_CONFIG.maxMessageBytes, 0, INT32_MAX),
  logIndexIntervalBytes: int('log.index.interval.bytes: log bytes between two sparse index entries (bytes).',
    DEFAULT_LOG_CONFIG.indexIntervalBytes, 0, INT32_MAX),
  logIndexSizeMaxBytes: int('log.index.size.max.bytes: largest offset index file; the segment rolls when full (bytes).',
    DEFAULT_LOG_CONFIG.segmentIndexBytes, 4, INT32_MAX),
  logFlushIntervalMessages: int('log.flush.interval.messages: fsync after this many appended messages (count); 1 syncs ' +
    'every append before acknowledging it.', DEFAULT_LOG_CONFIG.flushMessages, 1, MAX_LONG),
  logFlushIntervalMs: int('log.flush.interval.ms: fsync at least this often while data is unsynced (ms); -1: only by ' +
    'message count (0 is refused: use log.flush.interval.messages=1 to sync every append).',
    DEFAULT_LOG_CONFIG.flushMs, -1, MAX_LONG, { excluded: [0] }),
  logMessageTimestampType: {
    doc: 'log.message.timestamp.type: CreateTime keeps producer timestamps, LogAppendTime stamps the broker\'s.',
    format: ['CreateTime', 'LogAppendTime'],
    default: DEFAULT_LOG_CONFIG.messageTimestampType,
  },
  fileDeleteDelayMs: int('file.delete.delay.ms: a deleted segment\'s files stay renamed this long before removal (ms).',
    DEFAULT_LOG_CONFIG.fileDeleteDelayMs, 0, MAX_LONG),
  logRetentionCheckIntervalMs: int('log.retention.check.interval.ms: how often retention is enforced (ms); 0: never ' +
    '(segments are then only deleted by DeleteRecords).', 5 * 60_000, 0, MAX_LONG),

  // ---- consumer offsets -----------------------------------------------------------------------------------
  offsetsRetentionMs: int('offsets.retention.minutes, in ms: committed offsets of a group with no members expire ' +
    'after this (ms); -1: never.', 7 * DAY_MS, -1, MAX_LONG, { excluded: [0] }),
  offsetsRetentionCheckIntervalMs: int('offsets.retention.check.interval.ms: how often expired offsets are removed ' +
    '(ms); 0: never.', 10 * 60_000, 0, MAX_LONG),
  offsetMetadataBytesMax: int('offset.metadata.max.bytes: largest metadata string of a committed offset (bytes).',
    4096, 0, INT32_MAX),

  // ---- consumer groups ------------------------------------------------------------------------------------
  groupMinSessionTimeoutMs: int('group.min.session.timeout.ms: shortest session timeout a member may ask for (ms).',
    DEFAULT_GROUP_CONFIG.groupMinSessionTimeoutMs, 0, INT32_MAX),
  groupMaxSessionTimeoutMs: int('group.max.session.timeout.ms: longest session timeout a member may ask for (ms).',
    DEFAULT_GROUP_CONFIG.groupMaxSessionTimeoutMs, 0, INT32_MAX),
  groupInitialRebalanceDelayMs: int('group.initial.rebalance.delay.ms: how long an empty group waits for more members ' +
    'before forming its first generation (ms); 0: no wait (dev).', DEFAULT_GROUP_CONFIG.groupInitialRebalanceDelayMs, 0, INT32_MAX),
  groupMaxSize: int('group.max.size: members one group may have (count).', DEFAULT_GROUP_CONFIG.groupMaxSize, 1, INT32_MAX),
  groupNewMemberJoinTimeoutMs: int('How long a new member may wait in JoinGroup before it is dropped (ms).',
    DEFAULT_GROUP_CONFIG.groupNewMemberJoinTimeoutMs, 0, INT32_MAX),
  groupEmptyRetentionMs: int('How long an empty group keeps its in-memory state (ms); its offsets stay (0: forget at once).',
    DEFAULT_GROUP_CONFIG.groupEmptyRetentionMs, 0, MAX_LONG),

  // ---- server limits --------------------------------------------------------------------------------------
  requestBytesMax: int('socket.request.max.bytes: largest request frame; a bigger one closes the connection (bytes).',
    100 * 1024 * 1024, 64, INT32_MAX),
  inFlightRequestsMax: int('Requests of one connection decoded and handled concurrently; beyond it the server stops ' +
    'reading that socket until a response is sent (count).', 100, 1, 100_000),
  responseBytesMax: int('Encoded responses one connection may hold unsent (waiting for an earlier response or the ' +
    'socket); beyond it the server stops reading that socket (bytes). One response may exceed it alone.',
  100 * 1024 * 1024, 1024, MAX_LONG),
  connectionsMax: int('max.connections: open client connections; new ones beyond it are refused (count).',
    4096, 1, INT32_MAX),
  connectionsIdleMs: int('connections.max.idle.ms: close a connection with no request in flight and no traffic for ' +
    'this long (ms); 0: never.', 10 * 60_000, 0, MAX_LONG),
  shutdownTimeoutMs: int('On SIGTERM/SIGINT, how long in-flight requests may still run before connections are ' +
    'closed anyway (ms); 0: close at once.', 30_000, 0, MAX_LONG),
  fetchWaitMaxMs: int('Cap on a Fetch request\'s max_wait_ms (ms): a long poll never waits longer than this.',
    30_000, 0, INT32_MAX),

  // ---- admin HTTP endpoint (/healthz, /readyz, /metrics) ----------------------------------------------------
  adminHost: {
    doc: 'Address the admin HTTP endpoint listens on (IP or host name); keep it private: it has no authentication.',
    format: HOST,
    default: '127.0.0.1',
  },
  adminPort: int('TCP port of the admin HTTP endpoint (GET /healthz, /readyz, /metrics); -1: disabled (the default, ' +
    'so several dev brokers can share a machine); 0: a free port picked by the OS (tests; the bound port is logged).',
  -1, -1, 65535),

  // ---- cluster mode (mode=raft) ---------------------------------------------------------------------------
  // Every node of a cluster must use the same topic defaults, numPartitions, defaultReplicationFactor,
  // offsetMetadataBytesMax and partition limits: the replicated state machine applies them on every node.
  mode: {
    doc: 'direct: a single node (no replication). raft: a node of a Raft cluster (initialMembers); every write is ' +
      'replicated to a majority before it is acknowledged.',
    format: ['direct', 'raft'],
    default: 'direct',
  },
  clusterId: {
    doc: 'Cluster id reported to clients (raft mode), the same on every node; empty: derived from the member ids.',
    format: STRING,
    default: '',
  },
  initialMembers: {
    doc: 'The voters of the cluster (raft mode), one "nodeId@raftHost:raftPort@kafkaHost:kafkaPort[@rack=RACK]" per ' +
      'node (IPv6 hosts in brackets), comma-separated in env/flags. The Raft address is where peers reach the node, ' +
      'the Kafka address what Metadata advertises for it, the rack its broker.rack. Must list this node (nodeId >= 1).',
    format: MEMBER_LIST,
    default: [],
  },
  replicaSelector: {
    doc: 'KIP-392 on the leader (raft mode): rack points a consumer whose client.rack matches another member\'s rack ' +
      'to that member (a replicating follower heard from within an election timeout); none: consumers read from the ' +
      'leader. Followers serve Fetch v11+ either way.',
    format: ['rack', 'none'],
    default: 'rack',
  },
  raftAddress: {
    doc: 'host:port the Raft transport listens on; empty: this node\'s Raft address from initialMembers.',
    format: HOST_PORT,
    default: '',
  },
  raftTickMs: int('Length of one Raft tick (ms); election and heartbeat timeouts count ticks.', 100, 1, 60_000),
  raftElectionTicks: int('Ticks without hearing from a leader before a follower starts an election (count; the real ' +
    'timeout is random in [n, 2n)); must exceed raftHeartbeatTicks.', 10, 2, 100_000),
  raftHeartbeatTicks: int('Ticks between a leader\'s heartbeats (count).', 1, 1, 100_000),
  raftCommitWriteDelayMs: int('How long a Raft commit index that moved alone may wait to ride along with the next ' +
    'durable log write before it is written by itself (ms; 0: at once). Losing it is harmless (it is recomputed).', 50, 0, 60_000),
  raftSyncCommitBytesMax: int('Raft log writes of at most this many bytes commit and fsync on the event loop thread, ' +
    'larger ones on LMDB\'s writer thread (bytes; 0: only writes without entries). Small synchronous commits avoid two ' +
    'thread hand-offs per write; large ones would block the event loop.', 1024 * 1024, 0, INT32_MAX),
  raftEntryCacheBytesMax: int('Newest Raft log entries kept in memory so applying and replicating them reads no LMDB ' +
    '(bytes, entry size plus a per-entry overhead estimate; 0: off). 64 MiB holds about 1.5 s of the highest ingest ' +
    'measured here.', 64 * 1024 * 1024, 0, INT32_MAX),
  raftCheckQuorum: {
    doc: 'A leader that has not heard from a majority for an election timeout steps down (avoids a stale leader).',
    format: BOOL,
    default: true,
  },
  raftPreVote: {
    doc: 'Pre-vote (Raft thesis 9.6): a node that cannot win an election does not disrupt the cluster by raising its term.',
    format: BOOL,
    default: true,
  },
  proposalTimeoutMs: int('How long a replicated write (or a read barrier) may take before it fails with ' +
    'REQUEST_TIMED_OUT (ms); its outcome is then unknown.', 10_000, 1, INT32_MAX),
  raftProposalsQueuedMax: int('Replicated writes pending on this node, queued or waiting to be applied (count); ' +
    'more are refused at once.', 10_000, 1, INT32_MAX),
  raftProposalBatchBytesMax: int('Bytes of pending writes the Raft loop proposes in one pass (bytes; one write is ' +
    'always taken).', 16 * 1024 * 1024, 1, INT32_MAX),
  raftMessageBytesMax: int('Bytes of log entries in one append message to a follower (bytes; one entry always fits; ' +
    '0: one entry per message).', 1024 * 1024, 0, INT32_MAX),
  raftInflightMessagesMax: int('Append messages in flight to one follower (count).', 256, 1, 100_000),
  raftUncommittedBytesMax: int('Bytes of proposed but uncommitted entries the leader holds; writes beyond it are ' +
    'refused until followers catch up (bytes; 0: no limit).', 1024 * 1024 * 1024, 0, MAX_LONG),
  snapshotEntriesBetween: int('Applied entries between two snapshots of the state machine (count).', 10_000, 1, INT32_MAX),
  snapshotTrailingEntries: int('Log entries kept below a snapshot, so a slightly slow follower catches up from the log ' +
    'instead of a snapshot (count).', 5_000, 0, INT32_MAX),
  snapshotsRetained: int('Snapshot files kept on disk (count).', 2, 1, 100),
  appendCoalesceBytesMax: int('Largest Raft entry of coalesced appends (bytes); also the largest single append a ' +
    'cluster accepts (a bigger batch is MESSAGE_TOO_LARGE). At most 8 MiB (the Raft frame limit is 16 MiB).',
  4 * 1024 * 1024, 64 * 1024, 8 * 1024 * 1024),
  appendCoalesceCountMax: int('Most appends one Raft entry carries (count).', 4096, 1, 1_000_000),
  appendProposalsInFlightMax: int('Append entries being replicated at once; appends arriving meanwhile wait and are ' +
    'coalesced into the next entry (count).', 4, 1, 1024),
  appendQueueBytesMax: int('Bytes of appends waiting to be proposed; beyond it appends fail with REQUEST_TIMED_OUT ' +
    '(bytes).', 256 * 1024 * 1024, 1024 * 1024, MAX_LONG),
};

/** The convict schema: SETTINGS with env and arg filled in from each name. */
export function configSchema(): convict.Schema<TakhinConfig> {
  const schema: Record<string, convict.SchemaObj> = {};
  for (const [name, setting] of Object.entries(SETTINGS)) {
    schema[name] = { ...setting, env: envName(name), arg: argName(name) } as convict.SchemaObj;
  }
  return schema as unknown as convict.Schema<TakhinConfig>;
}

export function settingNames(): SettingName[] {
  return Object.keys(SETTINGS) as SettingName[];
}

export function settingDoc(name: SettingName): Setting {
  return SETTINGS[name];
}
