// Builds one cluster node: the Kafka state machine, the Raft node driving it, and the Backend on top.
// Layout under dataDir: raft/ (the Raft log and snapshot files, owned by the node) and kafka/ (the state
// machine's topics, partition logs and offsets).
import path from 'node:path';
import type { Logger } from 'pino';
import type { ClusterMember } from '../../config/cluster-members.ts';
import type { LogConfig } from '../../log/log-config.ts';
import { RaftNode, type RaftNodeLimits, type RaftNodeTiming, type RaftSnapshotPolicy } from '../../raft/node.ts';
import type { LmdbLogStoreSettings } from '../../raft/storage/lmdb-log-store.ts';
import type { TransportLimits } from '../../raft/transport/limits.ts';
import type { AppendBatcherLimits } from './append-batcher.ts';
import { KafkaStateMachine } from './fsm.ts';
import { RaftBackend } from './raft-backend.ts';

export interface RaftClusterNodeOptions {
  nodeId: number;
  clusterId: string;
  /** Every voter (this node included): Raft and Kafka addresses. */
  members: readonly ClusterMember[];
  dataDir: string;
  /** Where the Raft transport listens (port 0: any free port, tests). */
  raftListen: { host: string; port: number };
  /** KIP-392 replica selection on the leader (see RaftBackendOptions.replicaSelector). */
  replicaSelector: 'rack' | 'none';
  autoCreateTopics: boolean;
  defaultPartitions: number;
  defaultReplicationFactor: number;
  topicDefaults: LogConfig;
  retentionCheckIntervalMs: number;
  offsetsRetentionMs: number;
  offsetsRetentionCheckIntervalMs: number;
  offsetMetadataBytesMax: number;
  partitionsPerTopicMax: number;
  partitionsPerBrokerMax: number;
  timing: RaftNodeTiming;
  checkQuorum: boolean;
  preVote: boolean;
  limits: RaftNodeLimits;
  snapshot: RaftSnapshotPolicy;
  batcher: AppendBatcherLimits;
  /** How long a follower waits for a topic creation it forwarded to the leader (ms). */
  forwardTimeoutMs: number;
  transport?: Partial<TransportLimits>;
  /** Raft log store settings (group commit, commit mode); defaults where absent. */
  logStore?: Partial<LmdbLogStoreSettings>;
  logger: Logger;
}

export interface RaftClusterNode {
  backend: RaftBackend;
  node: RaftNode;
  fsm: KafkaStateMachine;
}

/** Opens the state machine, starts the Raft node (which replays what the state machine has not applied). */
export async function openRaftClusterNode(o: RaftClusterNodeOptions): Promise<RaftClusterNode> {
  const logger = o.logger;
  const fsm = await KafkaStateMachine.open({
    dataDir: path.join(o.dataDir, 'kafka'),
    topicDefaults: o.topicDefaults,
    replicationFactorMax: o.members.length,
    partitionsPerTopicMax: o.partitionsPerTopicMax,
    partitionsPerBrokerMax: o.partitionsPerBrokerMax,
    retentionCheckIntervalMs: o.retentionCheckIntervalMs,
    offsetMetadataBytesMax: o.offsetMetadataBytesMax,
    logger: logger.child({ component: 'fsm' }),
  });
  const peers = new Map(o.members.map((m) => [m.nodeId, { host: m.raftHost, port: m.raftPort }]));
  const node = new RaftNode({
    nodeId: o.nodeId,
    clusterId: o.clusterId,
    dataDir: path.join(o.dataDir, 'raft'),
    peers,
    listen: o.raftListen,
    initialMembers: o.members.map((m) => m.nodeId),
    timing: o.timing,
    checkQuorum: o.checkQuorum,
    preVote: o.preVote,
    limits: o.limits,
    snapshot: o.snapshot,
    stateMachine: fsm,
    logger,
    ...(o.transport ? { transport: o.transport } : {}),
    ...(o.logStore ? { logStore: o.logStore } : {}),
  });
  try {
    await node.start();
  } catch (err) {
    await fsm.close();
    throw err;
  }
  try {
    const backend = new RaftBackend({
      node,
      fsm,
      clusterId: o.clusterId,
      members: o.members,
      replicaSelector: o.replicaSelector,
      logDir: fsm.logDir,
      autoCreateTopics: o.autoCreateTopics,
      defaultPartitions: o.defaultPartitions,
      defaultReplicationFactor: o.defaultReplicationFactor,
      topicDefaults: o.topicDefaults,
      retentionCheckIntervalMs: o.retentionCheckIntervalMs,
      offsetsRetentionMs: o.offsetsRetentionMs,
      offsetsRetentionCheckIntervalMs: o.offsetsRetentionCheckIntervalMs,
      offsetMetadataBytesMax: o.offsetMetadataBytesMax,
      forwardTimeoutMs: o.forwardTimeoutMs,
      ...o.batcher,
      logger: logger.child({ component: 'raft-backend' }),
    });
    return { backend, node, fsm };
  } catch (err) {
    await node.stop();
    await fsm.close();
    throw err;
  }
}
