// Cluster mode: the Backend on top of Raft. Every mutation is a command proposed through the Raft node and
// resolves with the state machine's result once the command is committed and applied on this node (so a
// produce response carries the offsets the state machine assigned). Reads (read, listOffset, topics, offsets)
// come from this node's local state, which every node builds from the same committed log.
//
// Routing: the Raft leader is the leader of every partition (leaderEpoch = the Raft term), the controller and
// the group coordinator; replicas and ISR are all voters. A follower does not forward mutations: it refuses
// them with the error that makes a Kafka client refresh its metadata and go to the leader, namely
// NOT_LEADER_OR_FOLLOWER (Produce, DeleteRecords), NOT_COORDINATOR (offsets, InitProducerId) and NOT_CONTROLLER
// (topic admin). Clients already route these to the node Metadata names, so forwarding would only add a hop.
// One exception: topic creation is forwarded to the leader's Kafka listener (forwarder.ts), because clients
// auto-create topics with a Metadata or Produce request to whichever broker they talk to, and librdkafka
// fails the messages of a topic whose auto-creation answers NOT_CONTROLLER. Forwarding cannot loop: a node
// believes X leads only for its current term, in which X won, so along a chain of forwards terms only grow.
//
// Reads: every node serves Fetch from its own local log, which holds exactly the committed entries it has
// applied: a follower's data is a prefix of the leader's, never anything uncommitted. As in Kafka (KIP-392),
// a follower serves consumers that send Fetch v11+ (which carries client metadata), a fetch past its local end
// waits (long-poll) until it has applied that far, and older Fetch versions get NOT_LEADER_OR_FOLLOWER. The
// leader points a consumer whose client.rack matches another node's rack to that node (preferred read
// replica) when the node is replicating and heard from recently. A follower that knows no leader (partitioned,
// election under way) or is shutting down answers NOT_LEADER_OR_FOLLOWER so its clients move on. ListOffsets
// stays on the leader (Kafka's rule: its answer must match the leader's view of the log end).
// Metadata, OffsetFetch (through the coordinator) and configs are answered locally by any node.
//
// Acks: acks=1 and acks=-1 both answer after commit (a majority of voters has the batch) and apply; acks=0
// answers at once. acks=-1 refuses a topic whose min.insync.replicas exceeds the voters (NOT_ENOUGH_REPLICAS).
import type { Logger } from 'pino';
import {
  type AppendListener,
  type AppendOptions,
  type AppendResult,
  type Backend,
  type BrokerInfo,
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
import type { ClusterMember } from '../../config/cluster-members.ts';
import type { ActiveGroupProbe } from '../../group/offset-store.ts';
import type { CoordinatorStatus } from '../../group/coordinator.ts';
import type { LogConfig } from '../../log/log-config.ts';
import { randomKafkaUuid, type TopicRecord } from '../../log/metadata-store.ts';
import { checkBatchTimestamps } from '../../log/topic-config.ts';
import type { LogReadResult, PartitionLog } from '../../log/partition-log.ts';
import type { ManagedTopic } from '../../log/topic-manager.ts';
import { ErrorCode, KafkaError } from '../../protocol/errors.ts';
import { validateProducePayload } from '../../protocol/records/batch.ts';
import { NotLeaderError, type LeaderInfo, type RaftNodeApi } from '../../raft/node-types.ts';
import { ApiKey, type CreateTopicsRequest, type CreateTopicsResponse } from '../../protocol/generated/index.ts';
import { describeBrokerConfigs } from '../direct/broker-configs.ts';
import { checkLeaderEpoch } from '../leader-epoch.ts';
import { listLogOffset } from '../list-offset.ts';
import { AppendBatcher, type AppendBatcherLimits } from './append-batcher.ts';
import { KafkaForwarder } from './forwarder.ts';
import { appendCommandBytes, encodeCommand, type Command } from './commands.ts';
import type { FsmAppendOk, FsmError, FsmOk, FsmResults, KafkaStateMachine } from './fsm.ts';
import { AppendListeners } from '../../log/append-listeners.ts';

/** Groups one ExpireGroups command names at most (count): a big backlog expires over several passes. */
const EXPIRE_GROUPS_PER_COMMAND_MAX = 1000;
/**
 * How often an acks=all append waiting for more copies than a majority (min.insync.replicas) looks at the
 * followers' match indexes (ms). Only such topics wait; a follower's ack takes about a millisecond here.
 */
const MIN_INSYNC_POLL_MS = 1;
/** Wait between attempts to confirm a new leadership with a read barrier (ms). */
const LEADER_READY_RETRY_MS = 100;
/** What an acks=0 append answers: nobody reads it (the handler sends no response). */
const ACKS0_RESULT: AppendResult = Object.freeze({ baseOffset: -1, lastOffset: -1, logAppendTimeMs: -1, logStartOffset: -1 });
/** CreateTopics version used to forward a topic creation (v4: error messages, non-flexible). */
const FORWARD_CREATE_TOPICS_VERSION = 4;
/** Forwarded requests pending at once (count). */
const FORWARD_PENDING_MAX = 64;
/** Largest response a forwarded request may get (bytes): a CreateTopics answer for one topic is tiny. */
const FORWARD_RESPONSE_BYTES_MAX = 1024 * 1024;
/** After a forwarded creation succeeded, how often this node looks for the topic in its own state (ms). */
const FORWARD_APPLY_POLL_MS = 10;

export interface RaftBackendOptions extends AppendBatcherLimits {
  node: RaftNodeApi;
  fsm: KafkaStateMachine;
  clusterId: string;
  /** Every voter, this node included. */
  members: readonly ClusterMember[];
  /**
   * KIP-392 replica selection on the leader: 'rack' points a consumer whose client.rack matches another
   * member's rack to that member; 'none' never points anywhere (consumers read from the leader unless their
   * metadata is stale). Followers serve Fetch v11+ either way.
   */
  replicaSelector: 'rack' | 'none';
  /** Where the partition logs are (DescribeConfigs log.dirs). */
  logDir: string;
  autoCreateTopics: boolean;
  /** num.partitions: partitions of a topic created with -1 (resolved here, on the proposer). */
  defaultPartitions: number;
  /** default.replication.factor for -1; at most the number of voters. */
  defaultReplicationFactor: number;
  topicDefaults: LogConfig;
  retentionCheckIntervalMs: number;
  /** offsets.retention.minutes in ms; -1 keeps committed offsets forever. */
  offsetsRetentionMs: number;
  /** How often the leader looks for expired offsets (ms); 0 = never. */
  offsetsRetentionCheckIntervalMs: number;
  offsetMetadataBytesMax: number;
  /** How long a topic creation forwarded to the leader may take, and then be applied here (ms). */
  forwardTimeoutMs: number;
  logger: Logger;
  nowMs?: () => number;
}

export class RaftBackend implements Backend {
  readonly autoCreateTopics: boolean;
  readonly batcher: AppendBatcher;
  private readonly opts: RaftBackendOptions;
  private readonly node: RaftNodeApi;
  private readonly fsm: KafkaStateMachine;
  private readonly log: Logger;
  private readonly nowMs: () => number;
  private readonly brokers: readonly BrokerInfo[];
  private readonly voters: readonly number[];
  private readonly self: ClusterMember;
  private leaderInfo: LeaderInfo;
  /** The leadership (term) whose read barrier completed: the local state holds everything committed before it. */
  private readyTerm = -1;
  private leaderSinceMs = 0;
  private readonly lastActiveMs = new Map<string, number>();
  private probe: ActiveGroupProbe = () => false;
  private readonly leadershipLostListeners = new Set<() => void>();
  private readonly appendListeners = new AppendListeners();
  private readonly unsubscribeLeader: () => void;
  private readonly unsubscribeAppends: () => void;
  private expiryTimer: NodeJS.Timeout | null = null;
  private expiring = false;
  private infoKey = '';
  private isr: readonly number[] = [];
  /** The other members of each rack (KIP-392 replica selection). */
  private readonly othersByRack = new Map<string, Set<number>>();
  /** Voters that make a Raft majority: a committed entry is on at least this many. */
  private readonly quorum: number;
  private infoByName = new Map<string, TopicInfo>();
  private infoById = new Map<string, TopicInfo>();
  private closing: Promise<void> | null = null;
  /** Set by beginShutdown: reads are refused (NOT_LEADER_OR_FOLLOWER) so clients move to other nodes. */
  private draining = false;
  private readonly readStats = { leaderBytes: 0, followerBytes: 0, redirects: 0 };
  private readonly forwarder: KafkaForwarder;

  constructor(opts: RaftBackendOptions) {
    this.opts = opts;
    this.node = opts.node;
    this.fsm = opts.fsm;
    this.log = opts.logger;
    this.nowMs = opts.nowMs ?? Date.now;
    this.autoCreateTopics = opts.autoCreateTopics;
    const self = opts.members.find((m) => m.nodeId === opts.node.nodeId);
    if (self === undefined) throw new Error(`node ${opts.node.nodeId} is not one of the cluster members`);
    if (opts.defaultReplicationFactor > opts.members.length) {
      throw new Error(`default replication factor ${opts.defaultReplicationFactor} exceeds the ${opts.members.length} voters`);
    }
    this.self = self;
    this.brokers = Object.freeze(opts.members.map((m) => Object.freeze({ nodeId: m.nodeId, host: m.kafkaHost, port: m.kafkaPort, rack: m.rack })));
    this.voters = Object.freeze(opts.members.map((m) => m.nodeId));
    for (const m of opts.members) {
      if (m.rack === null || m.nodeId === self.nodeId) continue;
      const ids = this.othersByRack.get(m.rack) ?? new Set<number>();
      this.othersByRack.set(m.rack, ids.add(m.nodeId));
    }
    this.isr = this.voters;
    this.quorum = Math.floor(this.voters.length / 2) + 1;
    const limits: AppendBatcherLimits = {
      appendCoalesceBytesMax: opts.appendCoalesceBytesMax,
      appendCoalesceCountMax: opts.appendCoalesceCountMax,
      appendProposalsInFlightMax: opts.appendProposalsInFlightMax,
      appendQueueBytesMax: opts.appendQueueBytesMax,
    };
    this.batcher = new AppendBatcher(limits, (data) => this.proposeRaw(data, ErrorCode.NOT_LEADER_OR_FOLLOWER) as Promise<FsmResults['append']>, this.nowMs);
    this.forwarder = new KafkaForwarder({
      requestTimeoutMs: opts.forwardTimeoutMs,
      pendingMax: FORWARD_PENDING_MAX,
      responseBytesMax: FORWARD_RESPONSE_BYTES_MAX,
      clientId: `takhin-forward-${self.nodeId}`,
      logger: opts.logger,
    });
    this.unsubscribeAppends = this.fsm.onAppend((topic, partition) => this.notifyAppend(topic, partition));
    this.leaderInfo = opts.node.leader();
    this.unsubscribeLeader = opts.node.onLeaderChange((info) => this.onLeaderChange(info));
    this.onLeaderChange(this.leaderInfo, true);
    if (opts.offsetsRetentionCheckIntervalMs > 0 && opts.offsetsRetentionMs >= 0) {
      this.expiryTimer = setInterval(() => void this.expireOffsets(), Math.min(opts.offsetsRetentionCheckIntervalMs, 2147483647));
      this.expiryTimer.unref();
    }
  }

  // ---- routing ------------------------------------------------------------------------------------------

  cluster(): ClusterView {
    return { clusterId: this.opts.clusterId, nodeId: this.self.nodeId, controllerId: this.leaderInfo.leaderId, brokers: this.brokers as BrokerInfo[] };
  }

  /** For the GroupCoordinator: this node coordinates every group while it leads (once caught up). */
  coordinatorStatus(_groupId: string | null): CoordinatorStatus {
    const l = this.leaderInfo;
    if (!l.isLeader) return l.leaderId >= 0 ? 'other' : 'unavailable';
    return this.readyTerm === l.term ? 'self' : 'loading';
  }

  /** For FindCoordinator: the leader (-1 when there is none: COORDINATOR_NOT_AVAILABLE). */
  coordinatorNode(): number {
    return this.leaderInfo.leaderId;
  }

  /** Called when this node stops leading (the group coordinator unloads its groups). Returns the unsubscribe. */
  onLeadershipLost(listener: () => void): () => void {
    this.leadershipLostListeners.add(listener);
    return () => this.leadershipLostListeners.delete(listener);
  }

  /** The group coordinator says which groups have members, for offset expiry. */
  setActiveGroupProbe(probe: ActiveGroupProbe): void {
    this.probe = probe;
  }

  private onLeaderChange(info: LeaderInfo, initial = false): void {
    const before = this.leaderInfo;
    this.leaderInfo = info;
    this.infoKey = '';
    if (info.isLeader && (initial || !before.isLeader || before.term !== info.term)) {
      this.leaderSinceMs = this.nowMs();
      this.lastActiveMs.clear();
      void this.confirmLeadership(info.term);
    }
    if (!initial && before.isLeader && (!info.isLeader || before.term !== info.term)) {
      this.readyTerm = -1;
      this.batcher.failQueued(new KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, `node ${this.self.nodeId} is no longer the leader`));
      // Fetch long-polls waiting here wake up and read again: Fetch v11+ consumers keep reading here as from
      // any follower; older ones get NOT_LEADER_OR_FOLLOWER and refresh their metadata now rather than later.
      this.notifyEveryPartition();
      for (const listener of this.leadershipLostListeners) {
        try {
          listener();
        } catch (err) {
          this.log.error({ err }, 'leadership-lost listener failed');
        }
      }
    }
  }

  /**
   * A new leader may not have applied everything its predecessors committed yet: a read barrier makes the
   * local state current before it serves group coordination (COORDINATOR_LOAD_IN_PROGRESS until then).
   */
  private async confirmLeadership(term: number): Promise<void> {
    while (!this.closing && this.leaderInfo.isLeader && this.leaderInfo.term === term) {
      try {
        await this.node.readBarrier();
        if (this.leaderInfo.isLeader && this.leaderInfo.term === term) {
          this.readyTerm = term;
          this.log.info({ term }, 'leading: local state is current');
        }
        return;
      } catch (err) {
        this.log.debug({ err, term }, 'read barrier after election failed; retrying');
        await new Promise((r) => setTimeout(r, LEADER_READY_RETRY_MS).unref());
      }
    }
  }

  private requireLeader(notLeaderCode: number, what: string): void {
    const l = this.leaderInfo;
    if (l.isLeader) return;
    const leader = l.leaderId >= 0 ? `node ${l.leaderId} is` : 'no node is';
    throw new KafkaError(notLeaderCode, `${what}: this node (${this.self.nodeId}) is not the leader; ${leader}`);
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
    if (!this.leaderInfo.isLeader && !validateOnly && this.leaderInfo.leaderId >= 0) return this.forwardCreateTopic(topic);
    this.requireLeader(ErrorCode.NOT_CONTROLLER, `create topic ${topic.name}`);
    // Defaults are resolved here, once: the command carries concrete values every node applies alike.
    const spec: NewTopic = {
      name: topic.name,
      numPartitions: topic.numPartitions === -1 ? this.opts.defaultPartitions : topic.numPartitions,
      replicationFactor: topic.replicationFactor === -1 ? this.opts.defaultReplicationFactor : topic.replicationFactor,
      configs: topic.configs,
    };
    // The state machine checks again when it applies; checking first keeps refused requests out of the log.
    const record = await this.fsm.topics.createTopic(spec, true);
    if (validateOnly) return this.infoOf(record);
    const result = await this.propose({
      type: 'createTopic',
      timestampMs: this.nowMs(),
      name: spec.name,
      topicId: randomKafkaUuid(),
      partitions: spec.numPartitions,
      replicationFactor: spec.replicationFactor,
      configs: { ...spec.configs },
    }, ErrorCode.NOT_CONTROLLER);
    throwIfFailed(result);
    const created = this.topic(spec.name);
    if (created === undefined) throw new KafkaError(ErrorCode.LEADER_NOT_AVAILABLE, `topic ${spec.name} was deleted right after its creation`);
    return created;
  }

  /** A follower's topic creation, done by the leader; resolves once this node applied it too. */
  private async forwardCreateTopic(topic: NewTopic): Promise<TopicInfo> {
    const leader = this.brokers.find((b) => b.nodeId === this.leaderInfo.leaderId);
    if (leader === undefined) throw new KafkaError(ErrorCode.NOT_CONTROLLER, `create topic ${topic.name}: the leader is not a known broker`);
    const timeoutMs = this.opts.forwardTimeoutMs;
    const request: CreateTopicsRequest = {
      topics: [{
        name: topic.name,
        numPartitions: topic.numPartitions,
        replicationFactor: topic.replicationFactor,
        assignments: [],
        configs: Object.entries(topic.configs).map(([name, value]) => ({ name, value })),
      }],
      timeoutMs,
      validateOnly: false,
    };
    const response = await this.forwarder.request<CreateTopicsResponse>(leader, ApiKey.CreateTopics, FORWARD_CREATE_TOPICS_VERSION, request);
    const result = response.topics.find((t) => t.name === topic.name);
    if (result === undefined) throw new KafkaError(ErrorCode.LEADER_NOT_AVAILABLE, `the leader did not answer for topic ${topic.name}`);
    // The leader's own redirect means leadership moved on: a retriable answer for this client.
    if (result.errorCode === ErrorCode.NOT_CONTROLLER) throw new KafkaError(ErrorCode.LEADER_NOT_AVAILABLE, `topic ${topic.name}: leadership moved`);
    if (result.errorCode !== ErrorCode.NONE) throw new KafkaError(result.errorCode, result.errorMessage ?? undefined);
    const deadline = this.nowMs() + timeoutMs;
    for (;;) {
      const created = this.topic(topic.name);
      if (created !== undefined) return created;
      if (this.nowMs() >= deadline || this.closing) throw new KafkaError(ErrorCode.LEADER_NOT_AVAILABLE, `topic ${topic.name} is being created`);
      await new Promise((r) => setTimeout(r, FORWARD_APPLY_POLL_MS));
    }
  }

  async deleteTopic(name: string): Promise<void> {
    this.requireLeader(ErrorCode.NOT_CONTROLLER, `delete topic ${name}`);
    const t = this.requireTopic(name);
    throwIfFailed(await this.propose({ type: 'deleteTopic', timestampMs: this.nowMs(), name, topicId: t.record.topicId }, ErrorCode.NOT_CONTROLLER));
  }

  async createPartitions(name: string, totalCount: number, validateOnly: boolean): Promise<void> {
    this.requireLeader(ErrorCode.NOT_CONTROLLER, `create partitions of ${name}`);
    const t = this.requireTopic(name);
    await this.fsm.topics.createPartitions(name, totalCount, true);
    if (validateOnly) return;
    throwIfFailed(await this.propose({ type: 'createPartitions', timestampMs: this.nowMs(), name, topicId: t.record.topicId, totalCount }, ErrorCode.NOT_CONTROLLER));
  }

  describeTopicConfigs(name: string): ConfigEntry[] {
    return this.fsm.topics.describeConfigs(name);
  }

  async alterTopicConfigs(name: string, ops: ConfigOp[], mode: 'replace' | 'incremental', validateOnly: boolean): Promise<void> {
    this.requireLeader(ErrorCode.NOT_CONTROLLER, `alter configs of ${name}`);
    const t = this.requireTopic(name);
    await this.fsm.topics.alterConfigs(name, ops, mode, true);
    if (validateOnly) return;
    const command: Command = { type: 'alterConfigs', timestampMs: this.nowMs(), name, topicId: t.record.topicId, mode, ops: ops.map((o) => ({ ...o })) };
    throwIfFailed(await this.propose(command, ErrorCode.NOT_CONTROLLER));
  }

  describeBrokerConfigs(nodeId: number): ConfigEntry[] {
    if (nodeId !== this.self.nodeId) {
      throw new KafkaError(ErrorCode.INVALID_REQUEST, `Unexpected broker id, expected ${this.self.nodeId}, but received ${nodeId}`);
    }
    const o = this.opts;
    return describeBrokerConfigs({
      nodeId,
      advertisedHost: this.self.kafkaHost,
      advertisedPort: this.self.kafkaPort,
      rack: this.self.rack,
      logDir: o.logDir,
      autoCreateTopics: o.autoCreateTopics,
      defaultPartitions: o.defaultPartitions,
      defaultReplicationFactor: o.defaultReplicationFactor,
      topicDefaults: o.topicDefaults,
      retentionCheckIntervalMs: o.retentionCheckIntervalMs,
      offsetsRetentionMs: o.offsetsRetentionMs,
      offsetMetadataBytesMax: o.offsetMetadataBytesMax,
    });
  }

  // ---- records ------------------------------------------------------------------------------------------

  /**
   * Checks the append here (leader, partition, acks, timestamps, batch framing and CRC), so refused batches
   * never enter the log, then hands it to the batcher. With acks=0 a refusal is thrown synchronously (the
   * Produce handler then closes the connection, as Kafka does, so the client refreshes its metadata).
   */
  append(topic: string, partition: number, records: Buffer, options: AppendOptions): Promise<AppendResult> {
    let t: ManagedTopic;
    try {
      t = this.checkAppend(topic, partition, records, options);
    } catch (err) {
      if (options.acks === 0) throw err;
      return Promise.reject(err);
    }
    // acks=all with min.insync.replicas above a majority waits for more copies than the commit proves.
    const copies = options.acks === -1 && t.policy.minInsyncReplicas > this.quorum ? t.policy.minInsyncReplicas : 0;
    const deadlineMs = copies > 0 ? this.nowMs() + options.timeoutMs : 0;
    const pending = this.batcher.submit({ topicId: t.record.topicId, partition, records }, options.timeoutMs).then(async (r) => {
      if (r.errorCode !== 0) throw new KafkaError(r.errorCode, (r as FsmError).message);
      const ok = r as FsmAppendOk;
      if (copies > 0) await this.awaitCopies(ok.raftIndex, copies, deadlineMs, `${topic}-${partition}`);
      return { baseOffset: ok.baseOffset, lastOffset: ok.lastOffset, logAppendTimeMs: ok.logAppendTimeMs, logStartOffset: ok.logStartOffset };
    });
    if (options.acks !== 0) return pending;
    pending.catch((err: unknown) => this.log.debug({ err, topic, partition }, 'acks=0 append failed'));
    return Promise.resolve(ACKS0_RESULT);
  }

  /** The topic the append goes to, once every check passed. */
  private checkAppend(topic: string, partition: number, records: Buffer, options: AppendOptions): ManagedTopic {
    if (options.transactionalId !== null) throw new KafkaError(ErrorCode.INVALID_REQUEST, 'transactions are not supported yet');
    this.requireLeader(ErrorCode.NOT_LEADER_OR_FOLLOWER, `${topic}-${partition}`);
    const t = this.requirePartition(topic, partition);
    const policy = t.policy;
    if (options.acks === -1 && policy.minInsyncReplicas > this.voters.length) {
      throw new KafkaError(ErrorCode.NOT_ENOUGH_REPLICAS, `${topic} needs ${policy.minInsyncReplicas} in-sync replicas; the cluster has ${this.voters.length} voters`);
    }
    // Kafka's check before an acks=all append: the in-sync replicas (voters heard from recently) must reach
    // min.insync.replicas, or nothing is written.
    if (options.acks === -1 && policy.minInsyncReplicas > 1) {
      const isr = this.inSyncReplicas().length;
      if (isr < policy.minInsyncReplicas) {
        throw new KafkaError(ErrorCode.NOT_ENOUGH_REPLICAS, `${topic}-${partition}: ${isr} in-sync replicas, min.insync.replicas is ${policy.minInsyncReplicas}`);
      }
    }
    if (policy.timestampBounds !== null) checkBatchTimestamps(records, policy.timestampBounds, this.nowMs());
    validateProducePayload(records, policy.logConfig.maxMessageBytes);
    if (appendCommandBytes([{ topicId: t.record.topicId, partition, records }]) > this.opts.appendCoalesceBytesMax) {
      // One append must fit in one Raft entry (appendCoalesceBytesMax, bounded by the Raft frame size).
      throw new KafkaError(ErrorCode.MESSAGE_TOO_LARGE, `a ${records.length}-byte append exceeds appendCoalesceBytesMax (${this.opts.appendCoalesceBytesMax} bytes)`);
    }
    return t;
  }

  async read(topic: string, partition: number, offset: number, maxBytes: number, options: ReadOptions): Promise<ReadResult> {
    const what = `${topic}-${partition}`;
    const l = this.leaderInfo;
    if (!l.isLeader) this.checkFollowerRead(options, what);
    const log = this.requirePartition(topic, partition).logs[partition]!;
    checkLeaderEpoch(options.currentLeaderEpoch, l.term, what);
    if (l.isLeader && options.clientRack !== undefined && options.clientRack !== '') {
      const preferred = this.preferredReadReplica(options.clientRack);
      if (preferred >= 0) {
        this.readStats.redirects++;
        return { ...nothingRead(log), preferredReadReplica: preferred };
      }
    }
    // A follower may not have applied as far as the client already read (from the leader, or from a follower
    // further ahead): nothing to read yet rather than OFFSET_OUT_OF_RANGE, which would make the client reset
    // its position. The Fetch long-poll wakes up when this node applies more.
    if (!l.isLeader && offset > log.logEndOffset) return nothingRead(log);
    // No transactions: READ_COMMITTED sees what READ_UNCOMMITTED sees. Everything applied is committed.
    const r = l.isLeader ? log.read(offset, maxBytes, options.minOneBatch ?? true) : this.followerLogRead(log, offset, maxBytes, options, what);
    if (l.isLeader) this.readStats.leaderBytes += r.bytes;
    else this.readStats.followerBytes += r.bytes;
    return { records: r.records, bytes: r.bytes, highWatermark: r.highWatermark, lastStableOffset: r.lastStableOffset, logStartOffset: r.logStartOffset };
  }

  /**
   * A follower whose local state is unavailable (being replaced by a snapshot from the leader, or a failed
   * disk) sends the client to the leader instead of answering KAFKA_STORAGE_ERROR, which not every client
   * retries elsewhere.
   */
  private followerLogRead(log: PartitionLog, offset: number, maxBytes: number, options: ReadOptions, what: string): LogReadResult {
    try {
      return log.read(offset, maxBytes, options.minOneBatch ?? true);
    } catch (err) {
      if (err instanceof KafkaError && err.code === ErrorCode.KAFKA_STORAGE_ERROR) {
        throw new KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, `${what}: node ${this.self.nodeId} cannot read its local log now (${err.message})`, { cause: err });
      }
      throw err;
    }
  }

  /**
   * acks=all with min.insync.replicas above a Raft majority (e.g. 3 of 3): a commit only proves a majority holds
   * the entry, so wait until `copies` voters have it (their match index), as Kafka waits for every in-sync
   * replica. The write is committed either way: if the in-sync replicas shrink below `copies` meanwhile the answer
   * is NOT_ENOUGH_REPLICAS_AFTER_APPEND, past the request's timeout REQUEST_TIMED_OUT (both retriable; an
   * idempotent producer's retry is answered as a duplicate).
   */
  private async awaitCopies(raftIndex: number, copies: number, deadlineMs: number, what: string): Promise<void> {
    for (;;) {
      const status = this.node.replicas();
      if (status === null) throw new KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, `${what}: leadership moved before ${copies} replicas confirmed the write`);
      if (status.voters.filter((v) => v.match >= raftIndex).length >= copies) return;
      const active = status.voters.filter((v) => v.active).length;
      if (active < copies) throw new KafkaError(ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND, `${what}: written, but only ${active} replicas are in sync (min.insync.replicas ${copies})`);
      if (this.nowMs() >= deadlineMs) throw new KafkaError(ErrorCode.REQUEST_TIMED_OUT, `${what}: written, but ${copies} replicas did not confirm it in time`);
      await new Promise((r) => setTimeout(r, MIN_INSYNC_POLL_MS));
    }
  }

  /**
   * Whether a follower may serve this read: only v11+ consumers (clientRack present: Kafka's rule, older
   * clients expect the leader), and only while it follows a known leader and is not shutting down; otherwise
   * NOT_LEADER_OR_FOLLOWER sends the client to the leader.
   */
  private checkFollowerRead(options: ReadOptions, what: string): void {
    const l = this.leaderInfo;
    if (options.clientRack !== undefined && l.leaderId >= 0 && !this.draining) return;
    const why = options.clientRack === undefined ? 'Fetch below v11 is served by the leader only' : this.draining ? 'this node is shutting down' : 'no leader is known';
    throw new KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, `${what}: node ${this.self.nodeId} is a follower and ${why}`);
  }

  /**
   * KIP-392 on the leader: a member in the client's rack that the leader is streaming entries to and heard
   * from within an election timeout (Kafka's in-sync replica, in Raft terms), highest match first; -1 when the
   * leader itself is in that rack or no member qualifies. A chosen follower that has not applied as far as the
   * client's offset yet makes it wait briefly (see read), never skip data.
   */
  private preferredReadReplica(clientRack: string): number {
    if (this.opts.replicaSelector !== 'rack' || this.self.rack === clientRack) return -1;
    const inRack = this.othersByRack.get(clientRack);
    if (inRack === undefined) return -1;
    const status = this.node.replicas();
    if (status === null) return -1;
    let best: { nodeId: number; match: number } | null = null;
    for (const v of status.voters) {
      if (!v.active || !v.replicating || !inRack.has(v.nodeId)) continue;
      if (best === null || v.match > best.match || (v.match === best.match && v.nodeId < best.nodeId)) best = v;
    }
    return best?.nodeId ?? -1;
  }

  /** Fetch figures for /metrics: record bytes served as leader and as follower, and KIP-392 redirects. */
  readMetrics(): Readonly<{ leaderBytes: number; followerBytes: number; redirects: number }> {
    return { ...this.readStats };
  }

  /** After every append applied here, and for every partition when this node stops leading (see onLeaderChange). */
  onAppend(listener: AppendListener): () => void {
    return this.appendListeners.add(listener);
  }

  private notifyAppend(topic: string, partition: number): void {
    this.appendListeners.notify(topic, partition, this.log);
  }

  async listOffset(topic: string, partition: number, timestamp: number, _isolationLevel: number): Promise<ListOffsetResult> {
    this.requireLeader(ErrorCode.NOT_LEADER_OR_FOLLOWER, `${topic}-${partition}`);
    return listLogOffset(this.requirePartition(topic, partition).logs[partition]!, timestamp, this.leaderInfo.term);
  }

  async deleteRecords(topic: string, partition: number, offset: number): Promise<number> {
    this.requireLeader(ErrorCode.NOT_LEADER_OR_FOLLOWER, `${topic}-${partition}`);
    const t = this.requirePartition(topic, partition);
    const result = await this.propose({ type: 'deleteRecords', timestampMs: this.nowMs(), topicId: t.record.topicId, partition, offset }, ErrorCode.NOT_LEADER_OR_FOLLOWER);
    throwIfFailed(result);
    return (result as { lowWatermark: number }).lowWatermark;
  }

  // ---- producers ----------------------------------------------------------------------------------------

  /** A fresh id (epoch 0) for every idempotent producer, allocated by the state machine (see DirectBackend). */
  async initProducerId(transactionalId: string | null, _transactionTimeoutMs: number, _producerId: number, _producerEpoch: number): Promise<ProducerIdResult> {
    if (transactionalId !== null) throw new KafkaError(ErrorCode.INVALID_REQUEST, 'transactions are not supported yet');
    this.requireLeader(ErrorCode.NOT_COORDINATOR, 'InitProducerId');
    const r = await this.propose({ type: 'initProducerId', timestampMs: this.nowMs() }, ErrorCode.NOT_COORDINATOR);
    return { producerId: r.producerId, producerEpoch: r.producerEpoch };
  }

  // ---- consumer group offsets ---------------------------------------------------------------------------

  async commitOffsets(group: string, offsets: OffsetCommitEntry[]): Promise<void> {
    this.requireLeader(ErrorCode.NOT_COORDINATOR, `commit offsets of ${group}`);
    if (offsets.length === 0) return;
    const command: Command = { type: 'commitOffsets', timestampMs: this.nowMs(), group, offsets: offsets.map((o) => ({ ...o })) };
    throwIfFailed(await this.propose(command, ErrorCode.NOT_COORDINATOR));
  }

  async fetchOffsets(group: string, partitions: { topic: string; partition: number }[] | null): Promise<CommittedOffset[]> {
    return this.fsm.offsets.fetch(group, partitions);
  }

  async deleteOffsets(group: string, partitions: { topic: string; partition: number }[]): Promise<void> {
    this.requireLeader(ErrorCode.NOT_COORDINATOR, `delete offsets of ${group}`);
    if (partitions.length === 0) return;
    const command: Command = { type: 'deleteOffsets', timestampMs: this.nowMs(), group, partitions: partitions.map((p) => ({ topic: p.topic, partition: p.partition })) };
    throwIfFailed(await this.propose(command, ErrorCode.NOT_COORDINATOR));
  }

  offsetGroups(): string[] {
    return this.fsm.offsets.groups();
  }

  /**
   * Offset expiry (offsets.retention.minutes) is decided by the leader, which knows the groups' members, and
   * replicated: a group expires when it has had no members and no commit for offsetsRetentionMs. Activity is
   * only known since this node began leading, so a leader change can delay expiry, never hasten it. Returns the
   * groups whose offsets were dropped.
   */
  async expireOffsets(): Promise<string[]> {
    const retentionMs = this.opts.offsetsRetentionMs;
    if (this.expiring || retentionMs < 0 || this.coordinatorStatus(null) !== 'self') return [];
    this.expiring = true;
    try {
      const now = this.nowMs();
      const cutoffMs = now - retentionMs;
      const groups: string[] = [];
      for (const group of this.fsm.offsets.groups()) {
        if (this.probe(group)) {
          this.lastActiveMs.set(group, now);
          continue;
        }
        const lastCommit = this.fsm.offsets.lastCommitMs(group);
        const lastActive = this.lastActiveMs.get(group) ?? this.leaderSinceMs;
        if (lastCommit !== undefined && Math.max(lastCommit, lastActive) <= cutoffMs) groups.push(group);
        if (groups.length >= EXPIRE_GROUPS_PER_COMMAND_MAX) break;
      }
      if (groups.length === 0) return [];
      const r = await this.propose({ type: 'expireGroups', timestampMs: now, cutoffMs, groups }, ErrorCode.NOT_COORDINATOR);
      for (const g of r.expired) this.lastActiveMs.delete(g);
      if (r.expired.length > 0) this.log.info({ groups: r.expired }, 'expired committed offsets of inactive groups');
      return r.expired;
    } catch (err) {
      this.log.warn({ err }, 'offset expiry failed');
      return [];
    } finally {
      this.expiring = false;
    }
  }

  // ---- lifecycle ----------------------------------------------------------------------------------------

  /**
   * Graceful shutdown (Kafka's controlled shutdown): from now on this node refuses reads, so consumers
   * fetching here move to another node, and a leader hands leadership to another voter and waits (at most
   * timeoutMs) until it moved, while this node still answers clients, so they learn the new leader from its
   * redirects instead of from failed connections. Resolves whether this node no longer leads.
   */
  async handOffLeadership(timeoutMs: number): Promise<boolean> {
    if (!this.draining) {
      this.draining = true;
      // Fetch long-polls waiting here read again and get NOT_LEADER_OR_FOLLOWER (see checkFollowerRead).
      this.notifyEveryPartition();
    }
    if (!this.leaderInfo.isLeader || this.voters.length < 2) return !this.leaderInfo.isLeader;
    const target = this.voters.find((id) => id !== this.self.nodeId)!;
    this.log.info({ to: target }, 'handing leadership over before shutdown');
    this.node.transferLeadership(target);
    const deadline = this.nowMs() + timeoutMs;
    while (this.leaderInfo.isLeader && this.nowMs() < deadline) await new Promise((r) => setTimeout(r, LEADER_READY_RETRY_MS / 10));
    return !this.leaderInfo.isLeader;
  }

  private notifyEveryPartition(): void {
    for (const t of this.fsm.topics.topics()) for (let p = 0; p < t.logs.length; p++) this.notifyAppend(t.record.name, p);
  }

  /** Makes everything applied durable in the local state (the Raft log already is). */
  async flush(): Promise<void> {
    await this.fsm.flush();
  }

  /** Stops the Raft node and closes the state machine (this backend owns both). */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    if (this.expiryTimer !== null) clearInterval(this.expiryTimer);
    this.unsubscribeLeader();
    this.unsubscribeAppends();
    this.batcher.failQueued(new KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, 'the broker is shutting down'));
    this.forwarder.close();
    try {
      await this.node.stop();
    } finally {
      await this.fsm.close();
    }
  }

  // ---- internals ----------------------------------------------------------------------------------------

  private async propose<K extends Command['type']>(command: Command & { type: K }, notLeaderCode: number): Promise<FsmResults[K]> {
    return (await this.proposeRaw(encodeCommand(command), notLeaderCode)) as FsmResults[K];
  }

  private async proposeRaw(data: Buffer, notLeaderCode: number): Promise<unknown> {
    try {
      return await this.node.propose(data);
    } catch (err) {
      throw this.proposalError(err, notLeaderCode);
    }
  }

  /**
   * Raft failures as the Kafka error a client retries on: not the leader (or no longer, or not yet, or a
   * leadership transfer) sends the client to the leader; a timeout or a full queue is REQUEST_TIMED_OUT (the
   * outcome may be unknown: idempotent producers dedupe a retried batch). Anything else is a bug.
   */
  private proposalError(err: unknown, notLeaderCode: number): unknown {
    if (err instanceof KafkaError) return err;
    if (err instanceof NotLeaderError) return new KafkaError(notLeaderCode, err.message, { cause: err });
    const code = (err as { code?: unknown })?.code;
    const message = (err as Error)?.message ?? String(err);
    switch (code) {
      case 'RAFT_PROPOSAL_TIMEOUT':
      case 'RAFT_QUEUE_FULL':
        return new KafkaError(ErrorCode.REQUEST_TIMED_OUT, message, { cause: err });
      case 'RAFT_PROPOSAL_DROPPED':
      case 'RAFT_NODE_STOPPED':
      case 'RAFT_LEADERSHIP_LOST':
        return new KafkaError(notLeaderCode, message, { cause: err });
    }
    if ((err as { retriable?: unknown })?.retriable === true) {
      return new KafkaError(this.leaderInfo.isLeader ? ErrorCode.REQUEST_TIMED_OUT : notLeaderCode, message, { cause: err });
    }
    return err;
  }

  private requireTopic(name: string): ManagedTopic {
    const t = this.fsm.topics.topic(name);
    if (t === undefined) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `This server does not host this topic: ${name}`);
    return t;
  }

  private requirePartition(topic: string, partition: number): ManagedTopic {
    const t = this.fsm.topics.topic(topic);
    if (t === undefined || t.logs[partition] === undefined) {
      throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `This server does not host this topic-partition: ${topic}-${partition}`);
    }
    return t;
  }

  private refreshInfo(): void {
    const tm = this.fsm.topics;
    const isr = this.inSyncReplicas();
    const key = `${this.fsm.generation}/${tm.version}/${this.leaderInfo.leaderId}/${this.leaderInfo.term}/${isr.join(',')}`;
    if (key === this.infoKey) return;
    this.isr = isr;
    const byName = new Map<string, TopicInfo>();
    const byId = new Map<string, TopicInfo>();
    for (const t of tm.topics()) {
      const info = this.infoOf(t.record);
      byName.set(info.name, info);
      byId.set(info.topicId.toString('hex'), info);
    }
    this.infoByName = byName;
    this.infoById = byId;
    this.infoKey = key;
  }

  /**
   * Kafka's ISR in Raft terms, as the leader sees it: the voters it heard from within an election timeout
   * (itself included), so Metadata shows a dead node leaving the ISR and coming back. Other nodes cannot know
   * and report every voter.
   */
  private inSyncReplicas(): readonly number[] {
    const active = this.leaderInfo.isLeader ? this.node.inSyncVoters() : null;
    if (active === null || active.length === this.voters.length) return this.voters;
    return this.voters.filter((id) => active.includes(id));
  }

  private infoOf(record: TopicRecord): TopicInfo {
    const { leaderId, term } = this.leaderInfo;
    const partitions: PartitionInfo[] = [];
    for (let p = 0; p < record.partitionCount; p++) {
      partitions.push({ partition: p, leaderId, leaderEpoch: term, replicas: [...this.voters], isr: [...this.isr], offlineReplicas: [] });
    }
    return { name: record.name, topicId: record.topicId, internal: false, partitions };
  }
}

/** A read that returns no records, with the log's current offsets. */
function nothingRead(log: PartitionLog): ReadResult {
  return { records: [], bytes: 0, highWatermark: log.highWatermark, lastStableOffset: log.highWatermark, logStartOffset: log.logStartOffset };
}

function throwIfFailed(result: FsmOk | FsmError | { errorCode: number; message?: string }): void {
  if (result.errorCode !== 0) throw new KafkaError(result.errorCode, (result as FsmError).message);
}
