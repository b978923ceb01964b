// The one interface the Kafka handlers talk to. DirectBackend implements it straight onto the local topic
// manager; RaftBackend (cluster mode) implements the mutating calls by proposing commands through Raft and
// waiting until the replicated state machine applied them, and the reading calls from the same local logs.
//
// Rules that keep both implementations interchangeable:
// - Mutations are async and resolve only once the change is applied (and, where the call says so, durable).
// - Operating errors are thrown as KafkaError with the protocol error code; handlers map them per topic or
//   partition. Anything else thrown is a bug.
// - Offsets and timestamps are plain numbers (safe integers: 2^53 offsets is far beyond any log); producer
//   ids fit as well. Handlers convert to and from the wire's int64 (bigint).
// - Nothing here knows about request versions or wire encodings.

export interface BrokerInfo {
  nodeId: number;
  host: string;
  port: number;
  rack: string | null;
}

export interface ClusterView {
  clusterId: string;
  /** The node that answers this request. */
  nodeId: number;
  /** The node admin requests (CreateTopics ...) should go to; -1 when unknown (no leader). */
  controllerId: number;
  brokers: BrokerInfo[];
}

export interface PartitionInfo {
  partition: number;
  /** -1 when the partition has no leader right now. */
  leaderId: number;
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
  offlineReplicas: number[];
}

export interface TopicInfo {
  name: string;
  /** 16 bytes; never all zero for an existing topic. */
  topicId: Buffer;
  internal: boolean;
  partitions: PartitionInfo[];
}

export interface NewTopic {
  name: string;
  /** -1: the broker default (num.partitions). */
  numPartitions: number;
  /** -1: the broker default. In single-node mode anything above 1 is INVALID_REPLICATION_FACTOR. */
  replicationFactor: number;
  configs: Record<string, string>;
}

/** Where a config value comes from (DescribeConfigs ConfigSource). */
export const ConfigSource = {
  UNKNOWN: 0,
  DYNAMIC_TOPIC_CONFIG: 1,
  DYNAMIC_BROKER_LOGGER_CONFIG: 2,
  DYNAMIC_BROKER_CONFIG: 3,
  DYNAMIC_DEFAULT_BROKER_CONFIG: 4,
  STATIC_BROKER_CONFIG: 5,
  DEFAULT_CONFIG: 6,
  DYNAMIC_CLIENT_METRICS_CONFIG: 7,
} as const;

/** DescribeConfigs ConfigType. */
export const ConfigType = {
  UNKNOWN: 0,
  BOOLEAN: 1,
  STRING: 2,
  INT: 3,
  SHORT: 4,
  LONG: 5,
  DOUBLE: 6,
  LIST: 7,
  CLASS: 8,
  PASSWORD: 9,
} as const;

export interface ConfigEntry {
  name: string;
  value: string | null;
  readOnly: boolean;
  isDefault: boolean;
  source: number;
  sensitive: boolean;
  type: number;
  documentation: string | null;
}

/** One IncrementalAlterConfigs operation; AlterConfigs (non-incremental) is expressed as 'replace-all'. */
export interface ConfigOp {
  name: string;
  /** 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT (the wire values). */
  op: 0 | 1 | 2 | 3;
  value: string | null;
}

export interface AppendOptions {
  /** 0, 1 or -1 (all). acks=0 callers do not await durability; the backend may still apply synchronously. */
  acks: number;
  /** How long the caller is willing to wait for replication (Produce timeout_ms). */
  timeoutMs: number;
  transactionalId: string | null;
}

export interface AppendResult {
  baseOffset: number;
  lastOffset: number;
  /** -1 unless the topic uses LogAppendTime. */
  logAppendTimeMs: number;
  logStartOffset: number;
}

export interface ReadOptions {
  /** 0 READ_UNCOMMITTED, 1 READ_COMMITTED. */
  isolationLevel: number;
  /**
   * KIP-74: return the first batch even when it is larger than maxBytes (default true). Fetch passes false
   * once an earlier partition of the response returned data, so a spent budget reads nothing.
   */
  minOneBatch?: boolean;
  /**
   * The leader epoch the client believes current (Fetch v9+ current_leader_epoch); -1 or absent: not checked.
   * Older than the partition's epoch: FENCED_LEADER_EPOCH; newer: UNKNOWN_LEADER_EPOCH (KIP-320).
   */
  currentLeaderEpoch?: number;
  /**
   * The consumer's rack (Fetch v11+ rack_id, '' when it has none). Present only for v11+ consumers, which may
   * read from a follower (KIP-392): a follower serves them, and a leader may point them to a follower in
   * their rack (ReadResult.preferredReadReplica). Absent: an older client, which only the leader serves.
   */
  clientRack?: string;
}

export interface ReadResult {
  /** Whole RecordBatch v2 batches, as stored, starting with the batch that contains the requested offset. */
  records: Buffer[];
  /** Total bytes in records. */
  bytes: number;
  highWatermark: number;
  lastStableOffset: number;
  logStartOffset: number;
  /**
   * KIP-392: the node the client should fetch this partition from instead (-1 or absent: read here). When set,
   * records is empty and the client repeats the fetch there.
   */
  preferredReadReplica?: number;
}

export interface ListOffsetResult {
  offset: number;
  timestamp: number;
  leaderEpoch: number;
}

/** ListOffsets special timestamps. */
export const OffsetSpec = {
  LATEST: -1,
  EARLIEST: -2,
  MAX_TIMESTAMP: -3,
  EARLIEST_LOCAL: -4,
  LATEST_TIERED: -5,
} as const;

export interface ProducerIdResult {
  producerId: number;
  producerEpoch: number;
}

export interface OffsetCommitEntry {
  topic: string;
  partition: number;
  offset: number;
  leaderEpoch: number;
  metadata: string | null;
}

export interface CommittedOffset {
  topic: string;
  partition: number;
  offset: number;
  leaderEpoch: number;
  metadata: string | null;
  commitTimestampMs: number;
}

export type AppendListener = (topic: string, partition: number) => void;

export interface Backend {
  /** The cluster as this node sees it right now (brokers, controller, this node's id). */
  cluster(): ClusterView;

  // ---- topics -------------------------------------------------------------------------------------------
  topics(): TopicInfo[];
  topic(name: string): TopicInfo | undefined;
  topicById(topicId: Buffer): TopicInfo | undefined;
  /** Whether Metadata and Produce for an unknown topic create it (auto.create.topics.enable). */
  readonly autoCreateTopics: boolean;
  /** Throws TOPIC_ALREADY_EXISTS, INVALID_TOPIC_EXCEPTION, INVALID_PARTITIONS, INVALID_CONFIG ... */
  createTopic(topic: NewTopic, validateOnly: boolean): Promise<TopicInfo>;
  deleteTopic(name: string): Promise<void>;
  /** Grow a topic to `totalCount` partitions. */
  createPartitions(name: string, totalCount: number, validateOnly: boolean): Promise<void>;
  describeTopicConfigs(name: string): ConfigEntry[];
  /** mode 'replace': AlterConfigs semantics (unlisted dynamic configs are reset). 'incremental': apply ops. */
  alterTopicConfigs(name: string, ops: ConfigOp[], mode: 'replace' | 'incremental', validateOnly: boolean): Promise<void>;
  describeBrokerConfigs(nodeId: number): ConfigEntry[];

  // ---- records ------------------------------------------------------------------------------------------
  /**
   * Append one or more RecordBatch v2 batches (validated here: magic, CRC, sizes) to a partition. Resolves with
   * the offsets assigned once the append is applied and, for acks != 0, as durable as the flush policy says.
   */
  append(topic: string, partition: number, records: Buffer, options: AppendOptions): Promise<AppendResult>;
  /** Read from `offset`, at most maxBytes but at least one whole batch when there is one, unless options.minOneBatch is false (KIP-74). */
  read(topic: string, partition: number, offset: number, maxBytes: number, options: ReadOptions): Promise<ReadResult>;
  /** Called after every append to any partition (for Fetch long-polls). Returns the unsubscribe function. */
  onAppend(listener: AppendListener): () => void;
  listOffset(topic: string, partition: number, timestamp: number, isolationLevel: number): Promise<ListOffsetResult>;
  /** DeleteRecords: move the log start offset up to `offset` (-1: the high watermark). Resolves the new low watermark. */
  deleteRecords(topic: string, partition: number, offset: number): Promise<number>;

  // ---- producers ----------------------------------------------------------------------------------------
  /** InitProducerId. producerId/epoch are -1 for a new producer, or the current ones to bump the epoch (KIP-360). */
  initProducerId(transactionalId: string | null, transactionTimeoutMs: number, producerId: number, producerEpoch: number): Promise<ProducerIdResult>;

  // ---- consumer group offsets (the coordinator's durable state) -----------------------------------------
  commitOffsets(group: string, offsets: OffsetCommitEntry[]): Promise<void>;
  /** null partitions: every committed offset of the group. */
  fetchOffsets(group: string, partitions: { topic: string; partition: number }[] | null): Promise<CommittedOffset[]>;
  deleteOffsets(group: string, partitions: { topic: string; partition: number }[]): Promise<void>;
  /** Groups that have committed offsets (for ListGroups / DescribeGroups of empty groups). */
  offsetGroups(): string[];

  // ---- lifecycle ----------------------------------------------------------------------------------------
  /** Make everything acknowledged so far durable (graceful shutdown). */
  flush(): Promise<void>;
  close(): Promise<void>;
}
