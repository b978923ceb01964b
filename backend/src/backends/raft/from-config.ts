// Cluster mode from the broker configuration: checks what only makes sense together (this node among the
// members, timing, replication factor) and maps the flat settings onto the node's options.
import type { Logger } from 'pino';
import { deriveClusterId, formatHostPort, parseClusterMembers } from '../../config/cluster-members.ts';
import { parseHostPort } from '../../config/formats.ts';
import { storageSettings } from '../../config/load.ts';
import type { TakhinConfig } from '../../config/schema.ts';
import { openRaftClusterNode, type RaftClusterNode, type RaftClusterNodeOptions } from './open-raft-backend.ts';

/** Bytes a Raft frame adds around one entry's command (envelope, entry and message headers), generously. */
const RAFT_FRAME_OVERHEAD_BYTES = 64 * 1024;
/** The transport's frame limit (raft/transport/limits.ts default): an entry must fit in one frame. */
const RAFT_FRAME_BYTES_MAX = 16 * 1024 * 1024;

export class ClusterConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClusterConfigError';
  }
}

export function clusterNodeOptions(config: TakhinConfig, logger: Logger): RaftClusterNodeOptions {
  const fail = (msg: string): never => {
    throw new ClusterConfigError(`mode raft: ${msg}`);
  };
  if (config.initialMembers.length === 0) fail('initialMembers must list the cluster (e.g. "1@127.0.0.1:8001@127.0.0.1:9092")');
  let members;
  try {
    members = parseClusterMembers(config.initialMembers);
  } catch (err) {
    return fail(`initialMembers: ${(err as Error).message}`);
  }
  if (config.nodeId < 1) fail(`nodeId must be >= 1 (got ${config.nodeId}); 0 means "no node" in Raft`);
  const self = members.find((m) => m.nodeId === config.nodeId);
  if (self === undefined) return fail(`nodeId ${config.nodeId} is not one of initialMembers (${members.map((m) => m.nodeId).join(', ')})`);
  // broker.rack may be given by the member string (every node then knows it) or by this node's rack setting.
  const ownRack = config.rack === '' ? null : config.rack;
  if (ownRack !== null && self.rack !== null && ownRack !== self.rack) {
    fail(`rack ${ownRack} differs from this node's rack in initialMembers (${self.rack})`);
  }
  if (ownRack !== null && self.rack === null) members = members.map((m) => (m === self ? { ...m, rack: ownRack } : m));
  const listen = config.raftAddress === '' ? { host: self.raftHost, port: self.raftPort } : parseHostPort(config.raftAddress);
  if (listen === null) return fail(`raftAddress ${config.raftAddress} is not host:port`);
  if (config.raftElectionTicks <= config.raftHeartbeatTicks) fail('raftElectionTicks must be greater than raftHeartbeatTicks');
  if (config.defaultReplicationFactor > members.length) {
    fail(`defaultReplicationFactor ${config.defaultReplicationFactor} exceeds the ${members.length} members`);
  }
  if (config.appendCoalesceBytesMax + RAFT_FRAME_OVERHEAD_BYTES > RAFT_FRAME_BYTES_MAX) {
    fail(`appendCoalesceBytesMax ${config.appendCoalesceBytesMax} does not fit in a Raft frame`);
  }
  if (config.advertisedHost !== '' || config.advertisedPort !== 0) {
    logger.warn({ advertised: formatHostPort(self.kafkaHost, self.kafkaPort) }, 'mode raft advertises the Kafka address of initialMembers; advertisedHost/advertisedPort are ignored');
  }
  return {
    nodeId: config.nodeId,
    clusterId: config.clusterId !== '' ? config.clusterId : deriveClusterId(members),
    members,
    dataDir: config.dataDir,
    raftListen: listen,
    ...storageSettings(config),
    timing: {
      tickMs: config.raftTickMs,
      electionTicks: config.raftElectionTicks,
      heartbeatTicks: config.raftHeartbeatTicks,
      commitWriteDelayMs: config.raftCommitWriteDelayMs,
    },
    logStore: { syncCommitBytesMax: config.raftSyncCommitBytesMax, entryCacheBytesMax: config.raftEntryCacheBytesMax },
    checkQuorum: config.raftCheckQuorum,
    preVote: config.raftPreVote,
    limits: {
      proposalTimeoutMs: config.proposalTimeoutMs,
      proposalsQueuedMax: config.raftProposalsQueuedMax,
      proposalBatchBytesMax: config.raftProposalBatchBytesMax,
      maxSizePerMsgBytes: config.raftMessageBytesMax,
      maxInflightMsgs: config.raftInflightMessagesMax,
      maxUncommittedBytes: config.raftUncommittedBytesMax,
    },
    snapshot: {
      entriesBetweenSnapshots: config.snapshotEntriesBetween,
      trailingEntriesKept: config.snapshotTrailingEntries,
      snapshotsRetained: config.snapshotsRetained,
    },
    forwardTimeoutMs: config.proposalTimeoutMs,
    replicaSelector: config.replicaSelector,
    batcher: {
      appendCoalesceBytesMax: config.appendCoalesceBytesMax,
      appendCoalesceCountMax: config.appendCoalesceCountMax,
      appendProposalsInFlightMax: config.appendProposalsInFlightMax,
      appendQueueBytesMax: config.appendQueueBytesMax,
    },
    logger,
  };
}

/** Opens this node of the cluster described by the configuration (state machine, Raft node, Backend). */
export function openClusterNode(config: TakhinConfig, logger: Logger): Promise<RaftClusterNode> {
  return openRaftClusterNode(clusterNodeOptions(config, logger));
}
