// Single-node mode: the Backend straight onto the local topic manager, offset store and metadata store. This
// node is the only broker, the controller, and the leader (epoch 0) of every partition; nothing is replicated,
// so "durable" means fsynced on this machine, as the topic's flush policy says.
import type { Logger } from 'pino';
import { OffsetStore, type ActiveGroupProbe } from '../../group/offset-store.ts';
import type { LogConfig } from '../../log/log-config.ts';
import { MetadataStore, type TopicRecord } from '../../log/metadata-store.ts';
import { checkBatchTimestamps } from '../../log/topic-config.ts';
import { TopicManager, type ManagedTopic } from '../../log/topic-manager.ts';
import { ErrorCode, KafkaError } from '../../protocol/errors.ts';
import { BATCH_LOG_OVERHEAD_BYTES, BatchAttribute, BatchField } from '../../protocol/records/batch.ts';
import {
  type AppendListener,
  type AppendOptions,
  type AppendResult,
  type Backend,
  type ClusterView,
  type CommittedOffset,
  type ConfigEntry,
  type ConfigOp,
  type ListOffsetResult,
  type NewTopic,
  type OffsetCommitEntry,
  type PartitionInfo,
  type ProducerIdResult,
  type ReadOptions,
  type ReadResult,
  type TopicInfo,
} from '../backend.ts';
import { checkLeaderEpoch } from '../leader-epoch.ts';
import { listLogOffset } from '../list-offset.ts';
import { describeBrokerConfigs } from './broker-configs.ts';
import { ProducerIdAllocator } from './producer-ids.ts';
import { AppendListeners } from '../../log/append-listeners.ts';

/** Kafka's offsets.retention.check.interval.ms default (ms). */
const OFFSETS_RETENTION_CHECK_INTERVAL_MS = 600_000;
/** Every partition here has one leader epoch: this node has led it since it was created. */
const LEADER_EPOCH = 0;

export interface DirectBackendOptions {
  dataDir: string;
  nodeId: number;
  advertisedHost: string;
  advertisedPort: number;
  rack: string | null;
  /** auto.create.topics.enable. */
  autoCreateTopics: boolean;
  /** num.partitions: partitions of a topic created with -1. */
  defaultPartitions: number;
  /** default.replication.factor; must be 1 on a single node. */
  defaultReplicationFactor: number;
  topicDefaults: LogConfig;
  /** log.retention.check.interval.ms (ms); 0 = no periodic retention. */
  retentionCheckIntervalMs: number;
  /** offsets.retention.minutes in ms; -1 keeps committed offsets forever. */
  offsetsRetentionMs: number;
  /** How often offset expiry runs (ms); default 600000 (Kafka's offsets.retention.check.interval.ms); 0 = never. */
  offsetsRetentionCheckIntervalMs?: number;
  /** offset.metadata.max.bytes (bytes). */
  offsetMetadataBytesMax: number;
  partitionsPerTopicMax: number;
  partitionsPerBrokerMax: number;
  logger: Logger;
  nowMs?: () => number;
}

export async function openDirectBackend(opts: DirectBackendOptions): Promise<DirectBackend> {
  if (opts.defaultReplicationFactor !== 1) {
    throw new Error(`default replication factor ${opts.defaultReplicationFactor} cannot be met by a single node; set it to 1`);
  }
  const logger = opts.logger;
  const meta = await MetadataStore.open(opts.dataDir, logger.child({ component: 'metadata' }));
  let topics: TopicManager | undefined;
  try {
    topics = await TopicManager.open(meta, {
      dataDir: opts.dataDir,
      topicDefaults: opts.topicDefaults,
      defaultPartitions: opts.defaultPartitions,
      defaultReplicationFactor: opts.defaultReplicationFactor,
      replicationFactorMax: 1,
      partitionsPerTopicMax: opts.partitionsPerTopicMax,
      partitionsPerBrokerMax: opts.partitionsPerBrokerMax,
      retentionCheckIntervalMs: opts.retentionCheckIntervalMs,
      logger: logger.child({ component: 'topics' }),
      ...(opts.nowMs ? { nowMs: opts.nowMs } : {}),
    });
    const offsets = OffsetStore.open(meta.root, {
      offsetsRetentionMs: opts.offsetsRetentionMs,
      offsetsRetentionCheckIntervalMs: opts.offsetsRetentionCheckIntervalMs ?? OFFSETS_RETENTION_CHECK_INTERVAL_MS,
      offsetMetadataBytesMax: opts.offsetMetadataBytesMax,
      logger: logger.child({ component: 'offsets' }),
      ...(opts.nowMs ? { nowMs: opts.nowMs } : {}),
    });
    return new DirectBackend(opts, meta, topics, offsets);
  } catch (err) {
    await topics?.close();
    await meta.close();
    throw err;
  }
}

export class DirectBackend implements Backend {
  readonly autoCreateTopics: boolean;
  readonly metadata: MetadataStore;
  readonly topicManager: TopicManager;
  readonly offsetStore: OffsetStore;
  private readonly opts: DirectBackendOptions;
  private readonly nowMs: () => number;
  private readonly clusterView: ClusterView;
  private readonly producerIds: ProducerIdAllocator;
  private readonly appendListeners = new AppendListeners();
  private readonly unsubscribeAppends: () => void;
  /** TopicInfo views, rebuilt when the topic manager's version moves (Metadata requests are frequent). */
  private infoVersion = -1;
  private infoByName = new Map<string, TopicInfo>();
  private infoById = new Map<string, TopicInfo>();
  private closing: Promise<void> | null = null;

  constructor(opts: DirectBackendOptions, meta: MetadataStore, topics: TopicManager, offsets: OffsetStore) {
    this.opts = opts;
    this.nowMs = opts.nowMs ?? Date.now;
    this.autoCreateTopics = opts.autoCreateTopics;
    this.metadata = meta;
    this.topicManager = topics;
    this.offsetStore = offsets;
    this.producerIds = new ProducerIdAllocator(meta);
    this.clusterView = Object.freeze({
      clusterId: meta.clusterId,
      nodeId: opts.nodeId,
      controllerId: opts.nodeId,
      brokers: Object.freeze([Object.freeze({ nodeId: opts.nodeId, host: opts.advertisedHost, port: opts.advertisedPort, rack: opts.rack })]),
    }) as ClusterView;
    this.unsubscribeAppends = topics.onAppend((topic, partition) => this.notifyAppend(topic, partition));
  }

  /** The group coordinator says which groups have members, for offset expiry (see OffsetStore). */
  setActiveGroupProbe(probe: ActiveGroupProbe): void {
    this.offsetStore.setActiveGroupProbe(probe);
  }

  cluster(): ClusterView {
    return this.clusterView;
  }

  // ---- topics -------------------------------------------------------------------------------------------

  topics(): TopicInfo[] {
    this.refreshInfo();
    return [...this.infoByName.values()];
  }

  topic(name: string): TopicInfo | undefined {
    this.refreshInfo();
    return this.infoByName.get(name);
  }

  topicById(topicId: Buffer): TopicInfo | undefined {
    this.refreshInfo();
    return this.infoById.get(topicId.toString('hex'));
  }

  async createTopic(topic: NewTopic, validateOnly: boolean): Promise<TopicInfo> {
    const record = await this.topicManager.createTopic(topic, validateOnly);
    return (validateOnly ? undefined : this.topic(record.name)) ?? this.infoOf(record);
  }

  async deleteTopic(name: string): Promise<void> {
    await this.topicManager.deleteTopic(name);
    // Kafka drops the committed offsets of a deleted topic, so a new topic of that name starts clean.
    await this.offsetStore.deleteTopic(name);
  }

  async createPartitions(name: string, totalCount: number, validateOnly: boolean): Promise<void> {
    return this.topicManager.createPartitions(name, totalCount, validateOnly);
  }

  describeTopicConfigs(name: string): ConfigEntry[] {
    return this.topicManager.describeConfigs(name);
  }

  async alterTopicConfigs(name: string, ops: ConfigOp[], mode: 'replace' | 'incremental', validateOnly: boolean): Promise<void> {
    return this.topicManager.alterConfigs(name, ops, mode, validateOnly);
  }

  describeBrokerConfigs(nodeId: number): ConfigEntry[] {
    if (nodeId !== this.opts.nodeId) {
      throw new KafkaError(ErrorCode.INVALID_REQUEST, `Unexpected broker id, expected ${this.opts.nodeId}, but received ${nodeId}`);
    }
    const o = this.opts;
    return describeBrokerConfigs({ ...o, logDir: `${o.dataDir}/logs` });
  }

  // ---- records ------------------------------------------------------------------------------------------

  async append(topic: string, partition: number, records: Buffer, options: AppendOptions): Promise<AppendResult> {
    if (options.transactionalId !== null) {
      throw new KafkaError(ErrorCode.INVALID_REQUEST, 'transactions are not supported yet');
    }
    // Kafka's answer to transactional batches without a transactional id. Without this check they would pass as
    // idempotent batches and be visible to read_committed consumers with no commit ever written.
    if (hasTransactionalBatch(records)) {
      throw new KafkaError(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, 'transactional record batches need a transactional id');
    }
    const t = this.requirePartition(topic, partition);
    const policy = t.policy;
    // With one replica, acks=all can only meet min.insync.replicas <= 1 (Kafka answers the same way).
    if (options.acks === -1 && policy.minInsyncReplicas > 1) {
      throw new KafkaError(ErrorCode.NOT_ENOUGH_REPLICAS, `${topic} needs ${policy.minInsyncReplicas} in-sync replicas; this node is the only one`);
    }
    if (policy.timestampBounds !== null) checkBatchTimestamps(records, policy.timestampBounds, this.nowMs());
    const r = await t.logs[partition]!.append(records, { leaderEpoch: LEADER_EPOCH });
    return { baseOffset: r.baseOffset, lastOffset: r.lastOffset, logAppendTimeMs: r.logAppendTimeMs, logStartOffset: r.logStartOffset };
  }

  async read(topic: string, partition: number, offset: number, maxBytes: number, options: ReadOptions): Promise<ReadResult> {
    // No transactions exist, so READ_COMMITTED sees what READ_UNCOMMITTED sees (last stable = high watermark).
    const log = this.requirePartition(topic, partition).logs[partition]!;
    checkLeaderEpoch(options.currentLeaderEpoch, LEADER_EPOCH, `${topic}-${partition}`);
    const r = log.read(offset, maxBytes, options.minOneBatch ?? true);
    return { records: r.records, bytes: r.bytes, highWatermark: r.highWatermark, lastStableOffset: r.lastStableOffset, logStartOffset: r.logStartOffset };
  }

  onAppend(listener: AppendListener): () => void {
    return this.appendListeners.add(listener);
  }

  async listOffset(topic: string, partition: number, timestamp: number, _isolationLevel: number): Promise<ListOffsetResult> {
    return listLogOffset(this.requirePartition(topic, partition).logs[partition]!, timestamp, LEADER_EPOCH);
  }

  /** -1 means the high watermark; past it is OFFSET_OUT_OF_RANGE (checked by the log). */
  async deleteRecords(topic: string, partition: number, offset: number): Promise<number> {
    const log = this.requirePartition(topic, partition).logs[partition]!;
    return log.deleteRecordsBefore(offset);
  }

  // ---- producers ----------------------------------------------------------------------------------------

  /**
   * A new producer id with epoch 0 for every idempotent producer (Kafka's TransactionCoordinator does the same
   * for a null transactionalId). Kafka does the same when transactionalId is
   * null, even when the client passes its current id and epoch: the Java client bumps an idempotent epoch
   * itself and asks the broker only when it needs a fresh id. Bumping a client-supplied id here would let a
   * client claim an id it was never given, so a fresh, never-reused id is the safe answer.
   */
  async initProducerId(transactionalId: string | null, _transactionTimeoutMs: number, _producerId: number, _producerEpoch: number): Promise<ProducerIdResult> {
    if (transactionalId !== null) throw new KafkaError(ErrorCode.INVALID_REQUEST, 'transactions are not supported yet');
    return { producerId: await this.producerIds.allocate(), producerEpoch: 0 };
  }

  // ---- consumer group offsets ---------------------------------------------------------------------------

  async commitOffsets(group: string, offsets: OffsetCommitEntry[]): Promise<void> {
    return this.offsetStore.commit(group, offsets);
  }

  async fetchOffsets(group: string, partitions: { topic: string; partition: number }[] | null): Promise<CommittedOffset[]> {
    return this.offsetStore.fetch(group, partitions);
  }

  async deleteOffsets(group: string, partitions: { topic: string; partition: number }[]): Promise<void> {
    return this.offsetStore.deletePartitions(group, partitions);
  }

  offsetGroups(): string[] {
    return this.offsetStore.groups();
  }

  // ---- lifecycle ----------------------------------------------------------------------------------------

  async flush(): Promise<void> {
    await this.topicManager.flush();
    await this.metadata.flush();
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.unsubscribeAppends();
    this.offsetStore.close();
    try {
      await this.topicManager.close();
    } finally {
      await this.metadata.close();
    }
  }

  // ---- internals ----------------------------------------------------------------------------------------

  private requirePartition(topic: string, partition: number): ManagedTopic {
    const t = this.topicManager.topic(topic);
    if (t === undefined || t.logs[partition] === undefined) {
      throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `This server does not host this topic-partition: ${topic}-${partition}`);
    }
    return t;
  }

  private notifyAppend(topic: string, partition: number): void {
    this.appendListeners.notify(topic, partition, this.opts.logger);
  }

  private refreshInfo(): void {
    if (this.infoVersion === this.topicManager.version) return;
    const byName = new Map<string, TopicInfo>();
    const byId = new Map<string, TopicInfo>();
    for (const t of this.topicManager.topics()) {
      const info = this.infoOf(t.record);
      byName.set(info.name, info);
      byId.set(info.topicId.toString('hex'), info);
    }
    this.infoByName = byName;
    this.infoById = byId;
    this.infoVersion = this.topicManager.version;
  }

  private infoOf(record: TopicRecord): TopicInfo {
    const nodeId = this.opts.nodeId;
    const partitions: PartitionInfo[] = [];
    for (let p = 0; p < record.partitionCount; p++) {
      partitions.push({ partition: p, leaderId: nodeId, leaderEpoch: LEADER_EPOCH, replicas: [nodeId], isr: [nodeId], offlineReplicas: [] });
    }
    return { name: record.name, topicId: record.topicId, internal: false, partitions };
  }
}

/** Whether any batch header of a produce payload has the transactional bit (headers only, by batch length). */
function hasTransactionalBatch(records: Buffer): boolean {
  let pos = 0;
  while (pos + BatchField.ATTRIBUTES + 2 <= records.length) {
    if ((records.readInt16BE(pos + BatchField.ATTRIBUTES) & BatchAttribute.TRANSACTIONAL) !== 0) return true;
    const size = records.readInt32BE(pos + BatchField.BATCH_LENGTH) + BATCH_LOG_OVERHEAD_BYTES;
    if (size <= BatchField.ATTRIBUTES) return false; // malformed: the log's validation refuses it with the right code
    pos += size;
  }
  return false;
}
