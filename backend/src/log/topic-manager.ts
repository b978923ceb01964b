// The topic manager owns every partition log of this node (<dataDir>/logs/<topic>-<partition>/) and the topic
// metadata that says which logs exist. It creates, grows, reconfigures and deletes topics, opens all logs at
// start, runs retention on a timer and flushes on close.
//
// Ordering rules that keep a crash harmless (the metadata store is the source of truth):
// - create / grow: the metadata is written durably first, then the logs are opened (which creates their
//   directories). A crash in between leaves a topic whose missing directories are created at the next start.
// - delete: the topic leaves the metadata in the same transaction that records a pending deletion; then its
//   logs are closed, their directories renamed to <topic>-<p>.<id>-delete, and the pending entry cleared.
//   A crash anywhere after the first step finishes the deletion at the next start, so a deleted topic never
//   comes back. -delete directories are removed in the background, and at start.
// - directories under logs/ that belong to no topic and no pending deletion ("strays") are renamed to
//   <dir>.<random>-stray and left for an operator: a later topic of the same name must start empty, but
//   data of unknown origin is not ours to destroy.
// Admin operations run one at a time (a promise chain), so they never interleave their steps.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { ConfigEntry, ConfigOp, NewTopic } from '../backends/backend.ts';
import { ErrorCode, KafkaError } from '../protocol/errors.ts';
import type { LogConfig } from './log-config.ts';
import type { MetadataStore, TopicRecord } from './metadata-store.ts';
import { randomKafkaUuid } from './metadata-store.ts';
import { PartitionLog } from './partition-log.ts';
import {
  applyConfigOps,
  describeTopicConfigs,
  minInsyncReplicas,
  timestampBounds,
  toLogConfig,
  validateTopicConfigs,
  type TimestampBounds,
} from './topic-config.ts';
import { AppendListeners, type PartitionAppendListener } from './append-listeners.ts';

/** Kafka's limit; with '-<partition>' a directory name stays within the usual 255-byte file name limit. */
export const TOPIC_NAME_LENGTH_MAX = 249;
/** Longest directory name most file systems accept (bytes; topic names are ASCII). */
const FILE_NAME_LENGTH_MAX = 255;
/** Partition logs opened in parallel at start (bounded so a broker with many partitions does not exhaust fds). */
const LOG_OPEN_CONCURRENCY = 8;
const DELETE_SUFFIX = '-delete';
const STRAY_SUFFIX = '-stray';
const LEGAL_NAME = /^[a-zA-Z0-9._-]+$/;
/** setInterval cannot wait longer (ms); longer retention intervals are capped to it. */
const TIMER_MS_MAX = 2147483647;

export interface TopicManagerOptions {
  dataDir: string;
  /** The broker's topic defaults; a topic's dynamic configs override them. */
  topicDefaults: LogConfig;
  /** num.partitions: partitions of a topic created with numPartitions -1. */
  defaultPartitions: number;
  /** default.replication.factor: used for replicationFactor -1. */
  defaultReplicationFactor: number;
  /** The most replicas a partition can have: the number of brokers (1 in single-node mode). */
  replicationFactorMax: number;
  /** Largest partition count of one topic (count). */
  partitionsPerTopicMax: number;
  /** Largest number of partitions over all topics of this broker (count). */
  partitionsPerBrokerMax: number;
  /** How often retention runs over every partition (ms); 0 = no timer (runRetention can still be called). */
  retentionCheckIntervalMs: number;
  logger: Logger;
  /** The clock of topic creation times and of every partition log (cluster mode: the replicated command clock). */
  nowMs?: () => number;
  /** The clock of idempotent-producer expiry (PartitionLogOptions.producerNowMs); default nowMs. */
  producerNowMs?: () => number;
  /** Cluster mode: appends are durable in the Raft log first (PartitionLogOptions.durableElsewhere). Default false. */
  durableElsewhere?: boolean;
}

/** What a topic's configs mean for the produce path, derived once per config change. */
export interface TopicPolicy {
  logConfig: LogConfig;
  minInsyncReplicas: number;
  /** Bounds on CreateTime timestamps; null when unlimited or when the topic uses LogAppendTime. */
  timestampBounds: TimestampBounds | null;
}

/** A live topic: its metadata, its policy and one open log per partition (index = partition id). */
export interface ManagedTopic {
  readonly record: TopicRecord;
  readonly policy: Readonly<TopicPolicy>;
  readonly logs: readonly PartitionLog[];
}

interface LiveTopic {
  record: TopicRecord;
  policy: TopicPolicy;
  logs: PartitionLog[];
}

function policyOf(topicDefaults: LogConfig, configs: Record<string, string>): TopicPolicy {
  const logConfig = toLogConfig(topicDefaults, configs);
  return {
    logConfig,
    minInsyncReplicas: minInsyncReplicas(configs),
    timestampBounds: logConfig.messageTimestampType === 'CreateTime' ? timestampBounds(configs) : null,
  };
}

export type { PartitionAppendListener } from './append-listeners.ts';

/** Kafka's topic name rules; throws INVALID_TOPIC_EXCEPTION with Kafka's wording. */
export function validateTopicName(name: string): void {
  const fail = (msg: string) => new KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, msg);
  if (name.length === 0) throw fail("Topic name is illegal, it can't be empty");
  if (name === '.' || name === '..') throw fail('Topic name cannot be "." or ".."');
  if (name.length > TOPIC_NAME_LENGTH_MAX) {
    throw fail(`Topic name is illegal, it can't be longer than ${TOPIC_NAME_LENGTH_MAX} characters, topic name: ${name.slice(0, 300)}`);
  }
  if (!LEGAL_NAME.test(name)) {
    throw fail(`Topic name "${name}" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'`);
  }
}

/** Kafka's metric names replace '.' with '_', so two names equal after that substitution collide. */
function collisionKey(name: string): string {
  return name.replaceAll('.', '_');
}

export function partitionDirName(topic: string, partition: number): string {
  return `${topic}-${partition}`;
}

export class TopicManager {
  private readonly meta: MetadataStore;
  private readonly opts: TopicManagerOptions;
  private readonly log: Logger;
  private readonly nowMs: () => number;
  private readonly logsDir: string;
  private readonly live = new Map<string, LiveTopic>();
  private readonly byId = new Map<string, LiveTopic>();
  private readonly byCollisionKey = new Map<string, string>();
  private readonly appendListeners = new AppendListeners();
  private readonly backgroundDeletes = new Set<Promise<void>>();
  private partitionTotal = 0;
  private adminChain: Promise<unknown> = Promise.resolve();
  private retentionTimer: NodeJS.Timeout | null = null;
  private retentionRunning: Promise<void> | null = null;
  private retentionQueued: Promise<void> | null = null;
  private closed = false;
  private changes = 0;

  private constructor(meta: MetadataStore, opts: TopicManagerOptions) {
    this.meta = meta;
    this.opts = opts;
    this.log = opts.logger;
    this.nowMs = opts.nowMs ?? Date.now;
    this.logsDir = path.join(opts.dataDir, 'logs');
  }

  /** Finishes interrupted deletions, sets strays aside, opens every partition log, starts the retention timer. */
  static async open(meta: MetadataStore, opts: TopicManagerOptions): Promise<TopicManager> {
    const tm = new TopicManager(meta, opts);
    await fs.mkdir(tm.logsDir, { recursive: true });
    try {
      await tm.finishPendingDeletions();
      await tm.sweepLogsDir();
      await tm.openAll();
    } catch (err) {
      await tm.closeLogs();
      throw err;
    }
    if (opts.retentionCheckIntervalMs > 0) {
      tm.retentionTimer = setInterval(() => void tm.runRetention(), Math.min(opts.retentionCheckIntervalMs, TIMER_MS_MAX));
      tm.retentionTimer.unref();
    }
    return tm;
  }

  // ---- lookups ------------------------------------------------------------------------------------------

  topics(): ManagedTopic[] {
    return [...this.live.values()];
  }

  topic(name: string): ManagedTopic | undefined {
    return this.live.get(name);
  }

  topicById(topicId: Buffer): ManagedTopic | undefined {
    return this.byId.get(topicId.toString('hex'));
  }

  /** The log of a partition; throws UNKNOWN_TOPIC_OR_PARTITION. */
  partition(topic: string, partition: number): PartitionLog {
    const log = this.live.get(topic)?.logs[partition];
    if (log === undefined) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `no such partition: ${topic}-${partition}`);
    return log;
  }

  /** Moves on every change to the set of topics, partitions or configs (lets callers cache views). */
  get version(): number {
    return this.changes;
  }

  /** Partitions over all topics. */
  partitionCount(): number {
    return this.partitionTotal;
  }

  /** Registers a listener called after every append to any partition; returns the unsubscribe function. */
  onAppend(listener: PartitionAppendListener): () => void {
    return this.appendListeners.add(listener);
  }

  // ---- admin --------------------------------------------------------------------------------------------

  /**
   * Creates a topic (or, with validateOnly, only checks that it could be created). Throws
   * INVALID_TOPIC_EXCEPTION, TOPIC_ALREADY_EXISTS, INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR,
   * INVALID_CONFIG. `topicId` is for cluster mode, where the id is chosen once for all nodes.
   */
  createTopic(spec: NewTopic, validateOnly: boolean, topicId?: Buffer): Promise<TopicRecord> {
    return this.serially(() => this.doCreateTopic(spec, validateOnly, topicId));
  }

  /** Auto-creation (auto.create.topics.enable): the topic with broker defaults, or the existing one. */
  async createIfMissing(name: string): Promise<ManagedTopic> {
    const existing = this.live.get(name);
    if (existing) return existing;
    try {
      await this.createTopic({ name, numPartitions: -1, replicationFactor: -1, configs: {} }, false);
    } catch (err) {
      if (!(err instanceof KafkaError && err.code === ErrorCode.TOPIC_ALREADY_EXISTS)) throw err;
    }
    const created = this.live.get(name);
    if (created === undefined) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic ${name} was deleted meanwhile`);
    return created;
  }

  /** Deletes a topic and its data (see the file head for the crash-safe order). Throws UNKNOWN_TOPIC_OR_PARTITION. */
  deleteTopic(name: string): Promise<void> {
    return this.serially(() => this.doDeleteTopic(name));
  }

  /** Grows a topic to totalCount partitions. Throws UNKNOWN_TOPIC_OR_PARTITION, INVALID_PARTITIONS. */
  createPartitions(name: string, totalCount: number, validateOnly: boolean): Promise<void> {
    return this.serially(() => this.doCreatePartitions(name, totalCount, validateOnly));
  }

  /** Changes a topic's dynamic configs and applies them to its live logs. Throws INVALID_CONFIG ... */
  alterConfigs(name: string, ops: ConfigOp[], mode: 'replace' | 'incremental', validateOnly: boolean): Promise<void> {
    return this.serially(() => this.doAlterConfigs(name, ops, mode, validateOnly));
  }

  /** Every topic config with its value and source. Throws UNKNOWN_TOPIC_OR_PARTITION. */
  describeConfigs(name: string): ConfigEntry[] {
    const t = this.requireTopic(name);
    return describeTopicConfigs(this.opts.topicDefaults, t.record.configs);
  }

  // ---- maintenance --------------------------------------------------------------------------------------

  /** One retention pass over every partition (also run by the timer); errors are logged per partition. */
  runRetention(): Promise<void> {
    // A pass already running may have looked at a partition before the caller's change (a roll that just
    // closed a segment): wait for it, then run one more pass, shared by every caller that arrives meanwhile.
    if (this.retentionRunning) {
      this.retentionQueued ??= this.retentionRunning.then(() => {
        this.retentionQueued = null;
        return this.runRetention();
      });
      return this.retentionQueued;
    }
    this.retentionRunning = this.retentionPass().finally(() => {
      this.retentionRunning = null;
    });
    return this.retentionRunning;
  }

  /** fsyncs every partition log. */
  async flush(): Promise<void> {
    for (const t of this.live.values()) for (const log of t.logs) await log.flush();
  }

  /** Stops the timers, waits for admin work and background deletions, flushes and closes every log. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    await this.adminChain.catch(() => undefined);
    await this.retentionRunning;
    await this.closeLogs();
    await Promise.all(this.backgroundDeletes);
  }

  // ---- internals: admin steps ---------------------------------------------------------------------------

  private serially<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.adminChain.then(async () => {
      if (this.closed) throw new KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, 'the broker is shutting down');
      try {
        return await fn();
      } catch (err) {
        if (err instanceof KafkaError) throw err;
        // Metadata or file system failures: the client gets a storage error, the operator the details.
        this.log.error({ err }, 'topic admin operation failed');
        throw storageError('topic operation failed', err);
      }
    });
    this.adminChain = run.catch(() => undefined);
    return run;
  }

  private async doCreateTopic(spec: NewTopic, validateOnly: boolean, topicId?: Buffer): Promise<TopicRecord> {
    validateTopicName(spec.name);
    if (this.live.has(spec.name)) throw new KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, `Topic '${spec.name}' already exists.`);
    const rival = this.byCollisionKey.get(collisionKey(spec.name));
    if (rival !== undefined) {
      throw new KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, `Topic '${spec.name}' collides with existing topic: ${rival}`);
    }
    const partitionCount = spec.numPartitions === -1 ? this.opts.defaultPartitions : spec.numPartitions;
    if (!Number.isInteger(partitionCount) || partitionCount <= 0) {
      throw new KafkaError(ErrorCode.INVALID_PARTITIONS, 'Number of partitions was set to an invalid non-positive value.');
    }
    this.checkPartitionLimits(spec.name, partitionCount, partitionCount);
    const replicationFactor = this.checkReplicationFactor(spec.replicationFactor);
    const configs = validateTopicConfigs(spec.configs);
    const record: TopicRecord = {
      name: spec.name,
      topicId: validateOnly ? Buffer.alloc(16) : (topicId ?? randomKafkaUuid()),
      partitionCount,
      replicationFactor,
      configs,
      createdMs: this.nowMs(),
    };
    if (validateOnly) return record;
    if (this.byId.has(record.topicId.toString('hex'))) {
      throw new KafkaError(ErrorCode.INVALID_REQUEST, `topic id ${record.topicId.toString('base64url')} is already in use`);
    }

    await this.meta.putTopic(record);
    const topic: LiveTopic = { record, policy: policyOf(this.opts.topicDefaults, configs), logs: [] };
    try {
      topic.logs = await this.openLogs(record.name, 0, partitionCount, topic.policy.logConfig, true);
    } catch (err) {
      // The logs could not be created: undo the metadata so the topic does not exist half-made.
      await this.meta.removeTopic(record);
      await this.retireDirs(record.name, record.topicId, partitionCount).catch(() => undefined);
      await this.meta.finishDeletion(record.topicId);
      throw storageError(`cannot create the logs of topic ${record.name}`, err);
    }
    this.register(topic);
    this.log.info({ topic: record.name, topicId: record.topicId.toString('base64url'), partitions: partitionCount }, 'topic created');
    return record;
  }

  private async doDeleteTopic(name: string): Promise<void> {
    const topic = this.requireTopic(name);
    await this.meta.removeTopic(topic.record);
    this.unregister(topic);
    for (const log of topic.logs) await closeQuietly(log, this.log);
    try {
      await this.retireDirs(topic.record.name, topic.record.topicId, topic.record.partitionCount);
      await this.meta.finishDeletion(topic.record.topicId);
    } catch (err) {
      // The topic is deleted (durably); its pending deletion is retried at the next start.
      this.log.error({ err, topic: name }, 'cleanup after topic deletion failed; retried at the next start');
    }
    this.log.info({ topic: name }, 'topic deleted');
  }

  private async doCreatePartitions(name: string, totalCount: number, validateOnly: boolean): Promise<void> {
    const topic = this.requireTopic(name);
    const current = topic.record.partitionCount;
    if (!Number.isInteger(totalCount) || totalCount <= 0) {
      throw new KafkaError(ErrorCode.INVALID_PARTITIONS, `Number of partitions must be positive, was ${totalCount}.`);
    }
    if (totalCount === current) throw new KafkaError(ErrorCode.INVALID_PARTITIONS, `Topic already has ${current} partitions.`);
    if (totalCount < current) {
      throw new KafkaError(ErrorCode.INVALID_PARTITIONS, `Topic currently has ${current} partitions, which is higher than the requested ${totalCount}.`);
    }
    this.checkPartitionLimits(name, totalCount, totalCount - current);
    if (validateOnly) return;

    const record: TopicRecord = { ...topic.record, partitionCount: totalCount };
    await this.meta.putTopic(record);
    let added: PartitionLog[];
    try {
      added = await this.openLogs(name, current, totalCount, topic.policy.logConfig, true);
    } catch (err) {
      await this.meta.putTopic(topic.record);
      throw storageError(`cannot create the new partitions of topic ${name}`, err);
    }
    topic.record = record;
    topic.logs = [...topic.logs, ...added];
    this.partitionTotal += totalCount - current;
    this.changes++;
    this.log.info({ topic: name, from: current, to: totalCount }, 'partitions added');
  }

  private async doAlterConfigs(name: string, ops: ConfigOp[], mode: 'replace' | 'incremental', validateOnly: boolean): Promise<void> {
    const topic = this.requireTopic(name);
    const configs = applyConfigOps(topic.record.configs, ops, mode);
    const policy = policyOf(this.opts.topicDefaults, configs);
    if (validateOnly) return;
    const record: TopicRecord = { ...topic.record, configs };
    await this.meta.putTopic(record);
    topic.record = record;
    topic.policy = policy;
    for (const log of topic.logs) log.updateConfig(policy.logConfig);
    this.changes++;
    this.log.info({ topic: name, configs }, 'topic configs changed');
  }

  private checkReplicationFactor(requested: number): number {
    const rf = requested === -1 ? this.opts.defaultReplicationFactor : requested;
    if (!Number.isInteger(rf) || rf <= 0) {
      throw new KafkaError(ErrorCode.INVALID_REPLICATION_FACTOR, 'Replication factor must be larger than 0, or -1 to use the default value.');
    }
    if (rf > this.opts.replicationFactorMax) {
      throw new KafkaError(
        ErrorCode.INVALID_REPLICATION_FACTOR,
        `Unable to replicate the partition ${rf} time(s): The target replication factor of ${rf} cannot be reached because only ${this.opts.replicationFactorMax} broker(s) are registered.`,
      );
    }
    return rf;
  }

  private checkPartitionLimits(name: string, topicTotal: number, adding: number): void {
    if (topicTotal > this.opts.partitionsPerTopicMax) {
      throw new KafkaError(ErrorCode.INVALID_PARTITIONS, `A topic can have at most ${this.opts.partitionsPerTopicMax} partitions (partitionsPerTopicMax); requested ${topicTotal}.`);
    }
    if (this.partitionTotal + adding > this.opts.partitionsPerBrokerMax) {
      throw new KafkaError(
        ErrorCode.INVALID_PARTITIONS,
        `This broker can host at most ${this.opts.partitionsPerBrokerMax} partitions (partitionsPerBrokerMax); it has ${this.partitionTotal} and ${adding} more were requested.`,
      );
    }
    if (partitionDirName(name, topicTotal - 1).length > FILE_NAME_LENGTH_MAX) {
      throw new KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, `Topic name ${name} is too long for ${topicTotal} partitions (directory names are limited to ${FILE_NAME_LENGTH_MAX} characters).`);
    }
  }

  private requireTopic(name: string): LiveTopic {
    const t = this.live.get(name);
    if (t === undefined) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `This server does not host this topic: ${name}`);
    return t;
  }

  private register(topic: LiveTopic): void {
    this.live.set(topic.record.name, topic);
    this.byId.set(topic.record.topicId.toString('hex'), topic);
    this.byCollisionKey.set(collisionKey(topic.record.name), topic.record.name);
    this.partitionTotal += topic.record.partitionCount;
    this.changes++;
  }

  private unregister(topic: LiveTopic): void {
    this.live.delete(topic.record.name);
    this.byId.delete(topic.record.topicId.toString('hex'));
    this.byCollisionKey.delete(collisionKey(topic.record.name));
    this.partitionTotal -= topic.record.partitionCount;
    this.changes++;
  }

  // ---- internals: logs and directories ------------------------------------------------------------------

  /**
   * Opens the logs of partitions [from, to) of a topic. `fresh`: the partitions are new, so a directory
   * already there (left by something we do not know) is set aside rather than adopted.
   */
  private async openLogs(topic: string, from: number, to: number, config: LogConfig, fresh: boolean): Promise<PartitionLog[]> {
    const logs: PartitionLog[] = new Array(to - from);
    const partitions = Array.from({ length: to - from }, (_, i) => from + i);
    try {
      await forEachLimited(partitions, LOG_OPEN_CONCURRENCY, async (p) => {
        const dir = path.join(this.logsDir, partitionDirName(topic, p));
        if (fresh) await this.setAsideIfPresent(dir);
        logs[p - from] = await this.openLog(topic, p, dir, config);
      });
    } catch (err) {
      for (const log of logs) if (log) await closeQuietly(log, this.log);
      throw err;
    }
    return logs;
  }

  private async openLog(topic: string, partition: number, dir: string, config: LogConfig): Promise<PartitionLog> {
    const logger = this.log.child({ topic, partition });
    const log = await PartitionLog.open(dir, config, {
      logger,
      nowMs: this.nowMs,
      ...(this.opts.producerNowMs !== undefined ? { producerNowMs: this.opts.producerNowMs } : {}),
      durableElsewhere: this.opts.durableElsewhere ?? false,
    });
    log.onAppend(() => this.notifyAppend(topic, partition));
    return log;
  }

  private notifyAppend(topic: string, partition: number): void {
    this.appendListeners.notify(topic, partition, this.log);
  }

  private async openAll(): Promise<void> {
    for (const record of this.meta.topics()) {
      const policy = policyOf(this.opts.topicDefaults, record.configs);
      const logs = await this.openLogs(record.name, 0, record.partitionCount, policy.logConfig, false);
      this.register({ record, policy, logs });
    }
    this.log.info({ topics: this.live.size, partitions: this.partitionTotal }, 'partition logs opened');
  }

  private async closeLogs(): Promise<void> {
    for (const t of this.live.values()) for (const log of t.logs) await closeQuietly(log, this.log);
  }

  /** Renames the partition directories of a deleted topic out of the way and removes them in the background. */
  private async retireDirs(name: string, topicId: Buffer, partitionCount: number): Promise<void> {
    const retired: string[] = [];
    for (let p = 0; p < partitionCount; p++) {
      const from = path.join(this.logsDir, partitionDirName(name, p));
      // The topic part is shortened so the name fits in 255 bytes; id + partition keep it unique.
      const to = path.join(this.logsDir, `${name.slice(0, 180)}-${p}.${topicId.toString('hex')}${DELETE_SUFFIX}`);
      if (await renameIfPresent(from, to)) retired.push(to);
    }
    await syncDir(this.logsDir);
    for (const dir of retired) this.removeInBackground(dir);
  }

  private removeInBackground(dir: string): void {
    const job = fs
      .rm(dir, { recursive: true, force: true })
      .catch((err: unknown) => this.log.error({ err, dir }, 'cannot remove a deleted partition directory'))
      .finally(() => this.backgroundDeletes.delete(job));
    this.backgroundDeletes.add(job);
  }

  private async setAsideIfPresent(dir: string): Promise<void> {
    const stray = `${dir}.${randomBytes(8).toString('hex')}${STRAY_SUFFIX}`;
    if (await renameIfPresent(dir, stray)) {
      await syncDir(this.logsDir);
      this.log.warn({ dir, movedTo: stray }, 'a directory for a new partition already existed; set aside');
    }
  }

  private async finishPendingDeletions(): Promise<void> {
    for (const pending of this.meta.pendingDeletions()) {
      // A topic of that name created since owns the directories now (cannot happen: deletion finishes first).
      if (this.meta.topic(pending.name) === undefined) {
        await this.retireDirs(pending.name, pending.topicId, pending.partitionCount);
      }
      await this.meta.finishDeletion(pending.topicId);
      this.log.info({ topic: pending.name }, 'finished an interrupted topic deletion');
    }
  }

  /** Removes leftover -delete directories; sets aside directories that belong to no topic. */
  private async sweepLogsDir(): Promise<void> {
    const expected = new Set<string>();
    for (const t of this.meta.topics()) for (let p = 0; p < t.partitionCount; p++) expected.add(partitionDirName(t.name, p));
    let setAside = false;
    for (const entry of await fs.readdir(this.logsDir, { withFileTypes: true })) {
      if (!entry.isDirectory() || expected.has(entry.name) || entry.name.endsWith(STRAY_SUFFIX)) continue;
      const dir = path.join(this.logsDir, entry.name);
      if (entry.name.endsWith(DELETE_SUFFIX)) {
        await fs.rm(dir, { recursive: true, force: true });
        continue;
      }
      const stray = `${dir}.${randomBytes(8).toString('hex')}${STRAY_SUFFIX}`;
      await fs.rename(dir, stray);
      setAside = true;
      this.log.warn({ dir, movedTo: stray }, 'partition directory belongs to no topic; set aside');
    }
    if (setAside) await syncDir(this.logsDir);
  }

  private async retentionPass(): Promise<void> {
    const now = this.nowMs();
    for (const t of [...this.live.values()]) {
      for (let p = 0; p < t.logs.length; p++) {
        if (this.closed || this.live.get(t.record.name) !== t) break;
        try {
          t.logs[p]!.applyRetention(now);
        } catch (err) {
          this.log.error({ err, topic: t.record.name, partition: p }, 'retention failed');
        }
        // Retention does synchronous file work; let requests in between partitions.
        await nextTurn();
      }
    }
  }
}

function storageError(message: string, cause: unknown): KafkaError {
  return new KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, `${message}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
}

async function closeQuietly(log: PartitionLog, logger: Logger): Promise<void> {
  try {
    await log.close();
  } catch (err) {
    logger.error({ err }, 'closing a partition log failed');
  }
}

async function renameIfPresent(from: string, to: string): Promise<boolean> {
  try {
    await fs.rename(from, to);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** fsyncs a directory so renames and creations in it survive a power loss. */
async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Runs fn over items, at most `limit` at a time; after a failure starts no new item, waits, then throws it. */
async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | null = null;
  const worker = async () => {
    while (failure === null && next < items.length) {
      try {
        await fn(items[next++]!);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== null) throw (failure as { err: unknown }).err;
}
