// The replicated Kafka state machine: applies committed Raft entries (commands.ts) to the same local building
// blocks single-node mode uses (TopicManager and its PartitionLogs, MetadataStore, OffsetStore). Every node
// applies the same entries in the same order and computes the same state:
// - offsets are assigned here, by the partition log's append, never by the proposer;
// - time comes from the command (the proposer's clock, made monotonic: max(previous, command)), never from
//   this node's clock, wherever it changes the outcome (LogAppendTime, segment.ms, commit timestamps);
// - errors a command can deterministically meet (unknown topic, corrupt batch, topic exists ...) are results
//   handed back to the proposer, identical on every node; anything else (an I/O failure, a bug, an entry that
//   does not decode) is thrown, and the driver stops this node rather than let it diverge.
//
// Layout under dataDir: state/ (meta/ LMDB + logs/ partition directories, as in single-node mode),
// state.new/ and state.old/ while a snapshot is being installed, snapshot-work/ for snapshots being streamed.
//
// The applied index and what it covers. LMDB holds, in one transaction: the applied index, the command clock,
// the next producer id, and for each partition the log end offset at that index. It is written at most every
// APPLIED_RECORD_INTERVAL_MS (and by snapshot, flush and close), not per apply: the Raft loop waits for apply,
// and an entry is durable once the Raft log holds it on a quorum, so re-applying it is the recovery, not an
// fsync in every round. For the same reason partition appends go to the OS page cache only (PartitionLog
// durableElsewhere). appliedIndex() reports what was applied in this process; after a restart it reports the
// recorded index, and the driver re-applies from there (the Raft log keeps every entry after it).
// - Partition logs: at open each is truncated back to its recorded end offset, so no batch is ever duplicated
//   or skipped by the re-application, whatever kill -9 interrupted.
// - Everything else (topics, configs, committed offsets, in LMDB) may already hold some re-applied entries.
//   Re-applying them must end in the same state, so every such effect is a write whose outcome does not depend
//   on what later entries changed: offsets are put or deleted by key, by topic name, or by their own commit
//   time against a cutoff (never by "the group's last commit"); a topic that exists with the command's id is
//   taken as created, one that is gone (or has another id) is not deleted again, and a partition count already
//   reached is not grown again. A re-applied entry's result may differ; nobody waits for it after a restart.
// - snapshot() fsyncs the partition logs before it records the index, so the driver may drop the entries it
//   covers. Only an OS crash or power loss can leave a partition log shorter than its recorded end offset (page
//   cache lost); this node cannot re-apply just the missing part, so it discards its state and reports applied
//   index 0, and the driver rebuilds it from its snapshot and log.
//
// Retention (retention.ms / retention.bytes) runs on each node by its own timer, as in Kafka: it only deletes
// whole sealed segments, so offsets and content stay identical; log start offsets may differ for a while.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Database } from 'lmdb';
import type { Logger } from 'pino';
import type { NewTopic } from '../backend.ts';
import { OffsetStore } from '../../group/offset-store.ts';
import type { LogConfig } from '../../log/log-config.ts';
import { MetadataStore } from '../../log/metadata-store.ts';
import type { PartitionLog } from '../../log/partition-log.ts';
import { TopicManager, type ManagedTopic, type PartitionAppendListener } from '../../log/topic-manager.ts';
import { ErrorCode, KafkaError } from '../../protocol/errors.ts';
import type { SnapshotChunks, StateMachine } from '../../raft/node-types.ts';
import { decodeCommand, type AppendCommand, type Command } from './commands.ts';
import { readSnapshotStream, SnapshotFormatError, writeSnapshotStream, type SnapshotFileSource, type SnapshotFileSink } from './snapshot-stream.ts';
import { AppendListeners } from '../../log/append-listeners.ts';

const STATE_DIR = 'state';
const STATE_NEW_DIR = 'state.new';
const STATE_OLD_DIR = 'state.old';
const SNAPSHOT_WORK_DIR = 'snapshot-work';
/** Written last into state.new: the installed snapshot is whole and may replace state/. */
const COMPLETE_MARKER = 'COMPLETE';
const APPLIED_DB = 'raft-fsm';
const ENDS_DB = 'raft-fsm-ends';
const APPLIED_KEY = 'applied';
const META_FILE = 'meta/data.mdb';
/** Longest time between two records of the applied index while entries are applied (ms). */
export const APPLIED_RECORD_INTERVAL_MS = 100;
/** What a snapshot may contain besides META_FILE: segment logs, producer snapshots, the log start checkpoint. */
const PARTITION_FILE = /^logs\/([a-zA-Z0-9._-]+-\d+)\/(\d{20}\.(?:log|snapshot)|log-start-offset\.checkpoint)$/;

export interface KafkaStateMachineOptions {
  dataDir: string;
  /** The broker's topic defaults; must be the same on every node (they decide what an append accepts). */
  topicDefaults: LogConfig;
  /** The voters of the cluster: the most replicas a topic may ask for. */
  replicationFactorMax: number;
  partitionsPerTopicMax: number;
  partitionsPerBrokerMax: number;
  /** log.retention.check.interval.ms (ms); 0 = none. Retention is local to each node, as in Kafka. */
  retentionCheckIntervalMs: number;
  /** offset.metadata.max.bytes (bytes); must be the same on every node. */
  offsetMetadataBytesMax: number;
  /** Longest time between two records of the applied index (ms); default APPLIED_RECORD_INTERVAL_MS. */
  appliedRecordIntervalMs?: number;
  logger: Logger;
}

interface AppliedRecord {
  index: number;
  /** The command clock: the largest command timestamp applied so far (ms). */
  clockMs: number;
  producerIdNext: number;
}

interface Stores {
  meta: MetadataStore;
  topics: TopicManager;
  offsets: OffsetStore;
  appliedDb: Database<AppliedRecord, string>;
  /** [topicId hex, partition] -> log end offset at the applied index. */
  endsDb: Database<number, [string, number]>;
  unsubscribe: () => void;
}

export interface FsmError {
  errorCode: number;
  message: string;
}
export interface FsmOk {
  errorCode: 0;
}
export interface FsmAppendOk extends FsmOk {
  baseOffset: number;
  lastOffset: number;
  logAppendTimeMs: number;
  logStartOffset: number;
  /** The Raft log index of the entry that carried the batch (acks=all waits for min.insync.replicas copies of it). */
  raftIndex: number;
}
export type FsmAppendItemResult = FsmAppendOk | FsmError;
/** What apply() returns for each command type (undefined for an empty entry). */
export interface FsmResults {
  createTopic: FsmOk | FsmError;
  deleteTopic: FsmOk | FsmError;
  createPartitions: FsmOk | FsmError;
  alterConfigs: FsmOk | FsmError;
  append: { items: FsmAppendItemResult[] };
  commitOffsets: FsmOk | FsmError;
  deleteOffsets: FsmOk | FsmError;
  deleteRecords: (FsmOk & { lowWatermark: number }) | FsmError;
  initProducerId: FsmOk & { producerId: number; producerEpoch: number };
  expireGroups: FsmOk & { expired: string[] };
}

const OK: FsmOk = Object.freeze({ errorCode: 0 as const });

/** A deterministic failure becomes a result; local I/O failures and bugs are thrown (fatal for the node). */
function asResult(err: unknown): FsmError {
  if (err instanceof KafkaError && err.code !== ErrorCode.KAFKA_STORAGE_ERROR && err.code !== ErrorCode.NONE) {
    return { errorCode: err.code, message: err.message };
  }
  throw err;
}

function unknownTopic(what: string): FsmError {
  return { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, message: `This server does not host this topic-partition: ${what}` };
}

export class KafkaStateMachine implements StateMachine {
  private readonly opts: KafkaStateMachineOptions;
  private readonly log: Logger;
  private readonly stateDir: string;
  private readonly workDir: string;
  private stores!: Stores;
  private applied: AppliedRecord = { index: 0, clockMs: 0, producerIdNext: 0 };
  /** Partitions appended to (or created) since the last recorded batch. */
  private dirty = new Map<string, { topicId: string; partition: number; log: PartitionLog }>();
  /** Topics deleted since the last recorded batch: their end offsets go. */
  private deleted: { topicId: string; partitionCount: number }[] = [];
  private applying = false;
  /** When the applied index was last recorded (local clock, ms). */
  private lastRecordMs = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly appendListeners = new AppendListeners();
  private closed = false;
  /** Moves each time the stores are (re)opened (a snapshot installed): cached views must be rebuilt. */
  generation = 0;

  private constructor(opts: KafkaStateMachineOptions) {
    this.opts = opts;
    this.log = opts.logger;
    this.stateDir = path.join(opts.dataDir, STATE_DIR);
    this.workDir = path.join(opts.dataDir, SNAPSHOT_WORK_DIR);
  }

  static async open(opts: KafkaStateMachineOptions): Promise<KafkaStateMachine> {
    const fsm = new KafkaStateMachine(opts);
    await fsp.mkdir(opts.dataDir, { recursive: true });
    await fsm.finishInterruptedInstall();
    await fsp.rm(fsm.workDir, { recursive: true, force: true });
    await fsp.mkdir(fsm.workDir, { recursive: true });
    await fsm.openState();
    return fsm;
  }

  // ---- what the backend reads ----------------------------------------------------------------------------

  get topics(): TopicManager {
    return this.stores.topics;
  }

  get offsets(): OffsetStore {
    return this.stores.offsets;
  }

  /** Where the partition logs are. */
  get logDir(): string {
    return path.join(this.stateDir, 'logs');
  }

  /** The next producer id InitProducerId hands out (tests). */
  get producerIdNext(): number {
    return this.applied.producerIdNext;
  }

  /** Called after every append to any partition (Fetch long-polls); returns the unsubscribe function. */
  onAppend(listener: PartitionAppendListener): () => void {
    return this.appendListeners.add(listener);
  }

  // ---- StateMachine -------------------------------------------------------------------------------------

  appliedIndex(): number {
    return this.applied.index;
  }

  apply(entries: { index: number; term: number; data: Uint8Array }[]): Promise<unknown[]> {
    return this.exclusive(() => this.applyEntries(entries));
  }

  snapshot(): Promise<{ index: number; chunks: SnapshotChunks }> {
    return this.exclusive(() => this.captureSnapshot());
  }

  restore(index: number, chunks: SnapshotChunks): Promise<void> {
    return this.exclusive(() => this.installSnapshot(index, chunks));
  }

  /** fsyncs every partition log and records the applied index (graceful shutdown). */
  flush(): Promise<void> {
    return this.exclusive(async () => {
      await this.stores.topics.flush();
      await this.recordApplied();
    });
  }

  close(): Promise<void> {
    return this.exclusive(async () => {
      if (this.closed) return;
      this.closed = true;
      try {
        await this.recordApplied();
      } finally {
        await this.closeStores();
      }
    });
  }

  // ---- apply --------------------------------------------------------------------------------------------

  private async applyEntries(entries: { index: number; term: number; data: Uint8Array }[]): Promise<unknown[]> {
    this.assertOpen();
    const results: unknown[] = new Array(entries.length);
    this.applying = true;
    try {
      for (let i = 0; i < entries.length; i++) {
        const entry = entries[i]!;
        if (entry.index !== this.applied.index + 1) {
          throw new Error(`entry ${entry.index} handed to the state machine after ${this.applied.index}: none may be skipped or repeated`);
        }
        // An empty entry is a new leader's no-op or a membership change: it only moves the applied index.
        if (entry.data.byteLength > 0) results[i] = await this.applyCommand(decodeCommand(entry.data), entry.term, entry.index);
        this.applied.index = entry.index;
      }
    } finally {
      this.applying = false;
    }
    const interval = this.opts.appliedRecordIntervalMs ?? APPLIED_RECORD_INTERVAL_MS;
    if (entries.length > 0 && Date.now() - this.lastRecordMs >= interval) await this.recordApplied();
    return results;
  }

  private async applyCommand(cmd: Command, term: number, index: number): Promise<unknown> {
    if (cmd.timestampMs > this.applied.clockMs) this.applied.clockMs = cmd.timestampMs;
    const s = this.stores;
    switch (cmd.type) {
      case 'append':
        return this.applyAppend(cmd, term, index);
      case 'createTopic':
        return this.run(() => this.createTopic(cmd.name, cmd.topicId, { name: cmd.name, numPartitions: cmd.partitions, replicationFactor: cmd.replicationFactor, configs: cmd.configs }));
      case 'deleteTopic':
        return this.run(() => this.deleteTopic(cmd.name, cmd.topicId));
      case 'createPartitions':
        return this.run(async () => {
          const t = this.topicWithId(cmd.name, cmd.topicId);
          if (t === undefined) return unknownTopic(cmd.name);
          const from = t.record.partitionCount;
          await s.topics.createPartitions(cmd.name, cmd.totalCount, false);
          this.markPartitions(t, from);
          return OK;
        });
      case 'alterConfigs':
        return this.run(async () => {
          if (this.topicWithId(cmd.name, cmd.topicId) === undefined) return unknownTopic(cmd.name);
          await s.topics.alterConfigs(cmd.name, cmd.ops, cmd.mode, false);
          return OK;
        });
      case 'commitOffsets':
        return this.run(async () => (await s.offsets.commit(cmd.group, cmd.offsets), OK));
      case 'deleteOffsets':
        return this.run(async () => (await s.offsets.deletePartitions(cmd.group, cmd.partitions), OK));
      case 'deleteRecords':
        return this.run(async () => {
          const log = s.topics.topicById(cmd.topicId)?.logs[cmd.partition];
          if (log === undefined) return unknownTopic(`${cmd.topicId.toString('base64url')}-${cmd.partition}`);
          return { errorCode: 0, lowWatermark: await log.deleteRecordsBefore(cmd.offset) };
        });
      case 'initProducerId':
        return { errorCode: 0, producerId: this.applied.producerIdNext++, producerEpoch: 0 };
      case 'expireGroups':
        return this.run(async () => {
          // Offset by offset: one committed after the cutoff (since the leader decided) stays, and the outcome
          // never depends on a later entry (see the file head).
          const expired: string[] = [];
          for (const group of cmd.groups) {
            const old = s.offsets.fetch(group, null).filter((o) => o.commitTimestampMs <= cmd.cutoffMs);
            if (old.length === 0) continue;
            await s.offsets.deletePartitions(group, old.map((o) => ({ topic: o.topic, partition: o.partition })));
            if (s.offsets.lastCommitMs(group) === undefined) expired.push(group);
          }
          return { errorCode: 0, expired };
        });
    }
  }

  private async run<T>(fn: () => Promise<T>): Promise<T | FsmError> {
    try {
      return await fn();
    } catch (err) {
      return asResult(err);
    }
  }

  private async applyAppend(cmd: AppendCommand, term: number, raftIndex: number): Promise<FsmResults['append']> {
    const topics = this.stores.topics;
    const items: FsmAppendItemResult[] = new Array(cmd.items.length);
    for (let i = 0; i < cmd.items.length; i++) {
      const item = cmd.items[i]!;
      const t = topics.topicById(item.topicId);
      const log = t?.logs[item.partition];
      if (t === undefined || log === undefined) {
        items[i] = unknownTopic(`${item.topicId.toString('base64url')}-${item.partition}`);
        continue;
      }
      try {
        // The log stamps offsets into the batch in place: the entry's bytes must stay as they are (the driver
        // may still send them to a follower), so the log gets its own copy.
        const r = await log.append(Buffer.from(item.records), { leaderEpoch: term });
        items[i] = { errorCode: 0, baseOffset: r.baseOffset, lastOffset: r.lastOffset, logAppendTimeMs: r.logAppendTimeMs, logStartOffset: r.logStartOffset, raftIndex };
      } catch (err) {
        items[i] = asResult(err);
      }
      this.markDirty(t.record.topicId, item.partition, log);
    }
    return { items };
  }

  private async createTopic(name: string, topicId: Buffer, spec: NewTopic): Promise<FsmOk | FsmError> {
    // Re-applied after a crash that came after the topic was stored: it is already there, with this id.
    if (this.topicWithId(name, topicId) !== undefined) return OK;
    await this.stores.topics.createTopic(spec, false, topicId);
    this.markPartitions(this.stores.topics.topic(name)!, 0);
    return OK;
  }

  private async deleteTopic(name: string, topicId: Buffer): Promise<FsmOk | FsmError> {
    // The committed offsets of the name go whatever the topic's state (a blind delete, safe to re-apply; see
    // the file head): Kafka drops them with the topic, so a new topic of that name starts clean.
    await this.stores.offsets.deleteTopic(name);
    const t = this.topicWithId(name, topicId);
    if (t === undefined) return unknownTopic(name);
    await this.stores.topics.deleteTopic(name);
    const id = topicId.toString('hex');
    for (const key of [...this.dirty.keys()]) if (this.dirty.get(key)!.topicId === id) this.dirty.delete(key);
    this.deleted.push({ topicId: id, partitionCount: t.record.partitionCount });
    return OK;
  }

  private topicWithId(name: string, topicId: Buffer): ManagedTopic | undefined {
    const t = this.stores.topics.topic(name);
    return t !== undefined && t.record.topicId.equals(topicId) ? t : undefined;
  }

  private markPartitions(t: ManagedTopic, from: number): void {
    for (let p = from; p < t.logs.length; p++) this.markDirty(t.record.topicId, p, t.logs[p]!);
  }

  private markDirty(topicId: Buffer, partition: number, log: PartitionLog): void {
    const id = topicId.toString('hex');
    this.dirty.set(`${id}:${partition}`, { topicId: id, partition, log });
  }

  /** One durable LMDB transaction: the applied index, clock, producer id mark and changed end offsets. */
  private async recordApplied(): Promise<void> {
    const s = this.stores;
    this.lastRecordMs = Date.now();
    const applied = { ...this.applied };
    const dirty = [...this.dirty.values()];
    const deleted = this.deleted;
    this.dirty = new Map();
    this.deleted = [];
    // Synchronous: the end offsets are read in the same synchronous run as the applied index was copied (an
    // async transaction's callback would run later, after more applies), and LMDB commits and fsyncs before the
    // call returns, without the two thread hand-offs of an async lmdb-js transaction (it runs inside the Raft
    // loop's apply). The environment has overlappingSync off: `flushed` then resolves at once; it is the guard
    // should that ever change.
    s.meta.root.transactionSync(() => {
      for (const d of deleted) for (let p = 0; p < d.partitionCount; p++) s.endsDb.remove([d.topicId, p]);
      for (const d of dirty) s.endsDb.put([d.topicId, d.partition], d.log.logEndOffset);
      s.appliedDb.put(APPLIED_KEY, applied);
    });
    await s.meta.root.flushed;
  }

  // ---- open, recovery -----------------------------------------------------------------------------------

  private nowMs = (): number => (this.applying ? this.applied.clockMs : Date.now());

  private async openStores(): Promise<Stores> {
    const logger = this.log;
    const meta = await MetadataStore.open(this.stateDir, logger.child({ component: 'metadata' }));
    let topics: TopicManager | undefined;
    try {
      topics = await TopicManager.open(meta, {
        dataDir: this.stateDir,
        topicDefaults: this.opts.topicDefaults,
        // Commands carry resolved counts; these only serve a -1 that a command never holds.
        defaultPartitions: 1,
        defaultReplicationFactor: 1,
        replicationFactorMax: this.opts.replicationFactorMax,
        partitionsPerTopicMax: this.opts.partitionsPerTopicMax,
        partitionsPerBrokerMax: this.opts.partitionsPerBrokerMax,
        retentionCheckIntervalMs: this.opts.retentionCheckIntervalMs,
        logger: logger.child({ component: 'topics' }),
        nowMs: this.nowMs,
        // Producer expiry on the command clock only (also for sweeps between entries): identical on every node.
        producerNowMs: () => this.applied.clockMs,
        durableElsewhere: true,
      });
      const offsets = OffsetStore.open(meta.root, {
        // Expiry is decided by the leader and replicated (expireGroups), never by a local timer.
        offsetsRetentionMs: -1,
        offsetsRetentionCheckIntervalMs: 0,
        offsetMetadataBytesMax: this.opts.offsetMetadataBytesMax,
        logger: logger.child({ component: 'offsets' }),
        nowMs: this.nowMs,
      });
      const unsubscribe = topics.onAppend((topic, partition) => this.notifyAppend(topic, partition));
      return {
        meta,
        topics,
        offsets,
        appliedDb: meta.root.openDB<AppliedRecord, string>(APPLIED_DB, {}),
        endsDb: meta.root.openDB<number, [string, number]>(ENDS_DB, {}),
        unsubscribe,
      };
    } catch (err) {
      await topics?.close();
      await meta.close();
      throw err;
    }
  }

  /** Opens state/, cuts every partition back to the recorded point; discards the state if that is impossible. */
  private async openState(): Promise<void> {
    let stores = await this.openStores();
    if (!(await this.reconcile(stores))) {
      await closeStoresQuietly(stores, this.log);
      this.log.error({ dir: this.stateDir }, 'partition logs lost data the applied index covers (OS crash or power loss?): discarding the state machine; the driver rebuilds it from its snapshot and log');
      await fsp.rm(this.stateDir, { recursive: true, force: true });
      stores = await this.openStores();
    }
    this.stores = stores;
    this.applied = { ...(stores.appliedDb.get(APPLIED_KEY) ?? { index: 0, clockMs: 0, producerIdNext: 0 }) };
    this.dirty = new Map();
    this.deleted = [];
    this.generation++;
    this.log.info({ appliedIndex: this.applied.index, topics: stores.topics.topics().length }, 'state machine opened');
  }

  /** false when a partition log ends before its recorded end offset. */
  private async reconcile(s: Stores): Promise<boolean> {
    const live = new Set<string>();
    for (const t of s.topics.topics()) {
      const id = t.record.topicId.toString('hex');
      live.add(id);
      for (let p = 0; p < t.logs.length; p++) {
        const log = t.logs[p]!;
        // No record: the topic (or partition) was created by an entry after the applied index; it is empty then.
        const recorded = s.endsDb.get([id, p]) ?? 0;
        if (log.logEndOffset < recorded) {
          this.log.error({ topic: t.record.name, partition: p, logEndOffset: log.logEndOffset, recorded }, 'partition log is shorter than its recorded end offset');
          return false;
        }
        if (log.logEndOffset > recorded) await log.truncateTo(recorded);
      }
    }
    const stale: [string, number][] = [];
    for (const key of s.endsDb.getKeys()) if (!live.has(key[0])) stale.push(key);
    if (stale.length > 0) {
      await s.meta.root.transaction(() => {
        for (const key of stale) s.endsDb.remove(key);
      });
    }
    return true;
  }

  private async closeStores(): Promise<void> {
    await closeStoresQuietly(this.stores, this.log);
  }

  /** A crash while a snapshot was being installed: finish the swap if the new state was whole, else drop it. */
  private async finishInterruptedInstall(): Promise<void> {
    const root = this.opts.dataDir;
    const fresh = path.join(root, STATE_NEW_DIR);
    const old = path.join(root, STATE_OLD_DIR);
    if (fs.existsSync(fresh)) {
      if (fs.existsSync(path.join(fresh, COMPLETE_MARKER))) {
        this.log.warn('finishing an interrupted snapshot installation');
        await this.swapInNewState();
      } else {
        await fsp.rm(fresh, { recursive: true, force: true });
      }
    }
    await fsp.rm(old, { recursive: true, force: true });
    await fsp.rm(path.join(this.stateDir, COMPLETE_MARKER), { force: true });
  }

  /** state -> state.old, state.new -> state, each rename made durable; then state.old is removed. */
  private async swapInNewState(): Promise<void> {
    const root = this.opts.dataDir;
    const old = path.join(root, STATE_OLD_DIR);
    if (fs.existsSync(this.stateDir)) {
      await fsp.rm(old, { recursive: true, force: true });
      await fsp.rename(this.stateDir, old);
    }
    await fsp.rename(path.join(root, STATE_NEW_DIR), this.stateDir);
    await syncDir(root);
    await fsp.rm(old, { recursive: true, force: true });
    await fsp.rm(path.join(this.stateDir, COMPLETE_MARKER), { force: true });
  }

  // ---- snapshots ----------------------------------------------------------------------------------------

  /**
   * Everything applied is made durable, then the state is captured without copying data: an LMDB copy, and
   * hard links to every segment file (with the byte length it has now: an active segment keeps growing), every
   * producer state snapshot and log start checkpoint. Files deleted later (retention, a topic deletion) stay
   * readable through their links until the stream ends.
   */
  private async captureSnapshot(): Promise<{ index: number; chunks: SnapshotChunks }> {
    this.assertOpen();
    const s = this.stores;
    await s.topics.flush();
    await this.recordApplied();
    const index = this.applied.index;
    const work = await fsp.mkdtemp(path.join(this.workDir, `${index}-`));
    let files: SnapshotFileSource[];
    try {
      await fsp.mkdir(path.join(work, 'meta'));
      await s.meta.root.backup(path.join(work, 'meta'), false);
      const metaPath = path.join(work, META_FILE);
      files = [{ name: META_FILE, path: metaPath, bytes: fs.statSync(metaPath).size }];
      for (const t of s.topics.topics()) for (const log of t.logs) files.push(...linkPartitionFiles(log, work));
    } catch (err) {
      await fsp.rm(work, { recursive: true, force: true });
      throw err;
    }
    this.log.info({ index, files: files.length }, 'state machine snapshot taken');
    return { index, chunks: streamThenRemove(index, files, work) };
  }

  private async installSnapshot(index: number, chunks: SnapshotChunks): Promise<void> {
    this.assertOpen();
    const fresh = path.join(this.opts.dataDir, STATE_NEW_DIR);
    await fsp.rm(fresh, { recursive: true, force: true });
    await fsp.mkdir(fresh, { recursive: true });
    const dirs = new Set<string>([fresh]);
    let current: OpenFileSink | null = null;
    try {
      await readSnapshotStream(chunks, {
        header: (info) => {
          if (info.index !== index) throw new SnapshotFormatError(`snapshot holds index ${info.index}, expected ${index}`);
        },
        file: async (name, _bytes) => {
          if (name !== META_FILE && !PARTITION_FILE.test(name)) throw new SnapshotFormatError(`unexpected file in snapshot: ${JSON.stringify(name)}`);
          const target = path.join(fresh, ...name.split('/'));
          await fsp.mkdir(path.dirname(target), { recursive: true });
          for (let d = path.dirname(target); d.startsWith(fresh) && d !== fresh; d = path.dirname(d)) dirs.add(d);
          await current?.close();
          current = await fileSink(target);
          return current;
        },
      });
      for (const dir of dirs) await syncDir(dir);
      await writeMarker(path.join(fresh, COMPLETE_MARKER));
      await syncDir(fresh);
    } catch (err) {
      await (current as OpenFileSink | null)?.close().catch(() => undefined);
      await fsp.rm(fresh, { recursive: true, force: true });
      throw err;
    }
    await this.closeStores();
    await this.swapInNewState();
    await this.openState();
    if (this.applied.index !== index) throw new Error(`installed snapshot records applied index ${this.applied.index}, expected ${index}`);
    this.log.info({ index, topics: this.stores.topics.topics().length }, 'state machine restored from a snapshot');
  }

  // ---- internals ----------------------------------------------------------------------------------------

  /** apply, snapshot, restore, flush and close run one at a time. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('the state machine is closed');
  }

  private notifyAppend(topic: string, partition: number): void {
    this.appendListeners.notify(topic, partition, this.log);
  }
}

/** Hard links of one partition's snapshot-worthy files into work/logs/<dir>/ (synchronous: nothing moves meanwhile). */
function linkPartitionFiles(log: PartitionLog, work: string): SnapshotFileSource[] {
  const dirName = path.basename(log.dir);
  const target = path.join(work, 'logs', dirName);
  fs.mkdirSync(target, { recursive: true });
  const out: SnapshotFileSource[] = [];
  for (const name of fs.readdirSync(log.dir).sort()) {
    const rel = `logs/${dirName}/${name}`;
    if (!PARTITION_FILE.test(rel)) continue;
    const snapshotOffset = /^(\d{20})\.snapshot$/.exec(name);
    if (snapshotOffset !== null && Number(snapshotOffset[1]) > log.logEndOffset) continue;
    const link = path.join(target, name);
    fs.linkSync(path.join(log.dir, name), link);
    out.push({ name: rel, path: link, bytes: fs.statSync(link).size });
  }
  return out;
}

async function* streamThenRemove(index: number, files: SnapshotFileSource[], work: string): AsyncGenerator<Uint8Array> {
  try {
    yield* writeSnapshotStream(index, files);
  } finally {
    await fsp.rm(work, { recursive: true, force: true });
  }
}

interface OpenFileSink extends SnapshotFileSink {
  /** Closes the file if still open (idempotent). */
  close(): Promise<void>;
}

async function fileSink(target: string): Promise<OpenFileSink> {
  const handle = await fsp.open(target, 'wx');
  let position = 0;
  let open = true;
  const close = async () => {
    if (!open) return;
    open = false;
    await handle.close();
  };
  return {
    async write(chunk) {
      await handle.write(chunk, 0, chunk.length, position);
      position += chunk.length;
    },
    async finish() {
      try {
        await handle.sync();
      } finally {
        await close();
      }
    },
    close,
  };
}

async function writeMarker(file: string): Promise<void> {
  const handle = await fsp.open(file, 'w');
  try {
    await handle.writeFile('complete\n');
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fsp.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function closeStoresQuietly(s: Stores, logger: Logger): Promise<void> {
  s.unsubscribe();
  s.offsets.close();
  try {
    await s.topics.close();
  } catch (err) {
    logger.error({ err }, 'closing the topic manager failed');
  }
  await s.meta.close();
}
