// The settings of a RaftNode (node.ts), their defaults and their validation, and its metrics.
import type { Logger } from 'pino';
import type { LmdbLogStoreSettings } from './storage/lmdb-log-store.ts';
import type { SnapshotStoreSettings } from './storage/snapshot-store.ts';
import { resolveLimits } from './transport/limits.ts';
import type { TransportLimits } from './transport/limits.ts';
import type { NodeId, StateMachine } from './node-types.ts';

export interface PeerAddress {
  host: string;
  port: number;
}

export interface RaftNodeTiming {
  /** Length of one Raft tick (ms, >= 1). Election and heartbeat timeouts are counted in ticks. */
  tickMs: number;
  /** Ticks without a leader before an election; the real timeout is random in [n, 2n). > heartbeatTicks. */
  electionTicks: number;
  /** Ticks between a leader's heartbeats (>= 1). */
  heartbeatTicks: number;
  /**
   * How long a commit index that moved alone (no entries, no term or vote change) may wait for the next durable
   * write to carry it before it is written by itself (ms, >= 0). Default DEFAULT_COMMIT_WRITE_DELAY_MS. 0 = written
   * at once. Why wait: a write of its own costs an fsync round, and the next entry's write queues behind it.
   */
  commitWriteDelayMs?: number;
}

export interface RaftNodeLimits {
  /** Time a proposal or read barrier may take before it is rejected with ProposalTimeoutError (ms, >= 1). */
  proposalTimeoutMs: number;
  /** Proposals pending on this node, queued or waiting to be applied (count, >= 1); more are refused at once. */
  proposalsQueuedMax: number;
  /** Bytes of proposals proposed in one loop pass (at least one proposal is always taken). */
  proposalBatchBytesMax: number;
  /** Bytes of entries in one append message to a follower (at least one entry). 0 = one entry per message. */
  maxSizePerMsgBytes: number;
  /** Append messages in flight to one follower (count, >= 1). */
  maxInflightMsgs: number;
  /** Bytes of proposed but uncommitted entries on the leader; proposals beyond it are dropped. 0 = no limit. */
  maxUncommittedBytes: number;
  /**
   * Largest command (bytes of proposal data). Default 8 MiB. Must leave room in one transport frame
   * (transport frameBytesMax, default 16 MiB) for the entry and message headers.
   */
  proposalBytesMax?: number;
  /** Read barriers pending on this node (count, >= 1). Default 4096. */
  readBarriersPendingMax?: number;
  /** Received messages waiting for the loop (count, >= 1); more are dropped (Raft retries). Default 10000. */
  inboxMessagesMax?: number;
}

export interface RaftSnapshotPolicy {
  /** Applied entries since the last snapshot that trigger a new one (count, >= 1). */
  entriesBetweenSnapshots: number;
  /** Entries kept in the log below a new snapshot, so a slightly slow follower needs no snapshot (count, >= 0). */
  trailingEntriesKept: number;
  /** Snapshot files kept on disk (count, >= 1). */
  snapshotsRetained: number;
}

export interface RaftNodeOptions {
  nodeId: NodeId;
  /** Shared by every member; the transport refuses connections from another cluster. */
  clusterId: string;
  /** Holds log/ (LMDB) and snapshots/. The state machine keeps its own storage. */
  dataDir: string;
  /** Raft addresses of the members (this node's own entry is ignored). */
  peers: ReadonlyMap<NodeId, PeerAddress>;
  /** Where this node listens for its peers; port 0 picks a free port (read `port` after start()). */
  listen: PeerAddress;
  /** The voters of a new cluster; used only on the very first start (empty storage). */
  initialMembers: NodeId[];
  timing: RaftNodeTiming;
  checkQuorum: boolean;
  preVote: boolean;
  limits: RaftNodeLimits;
  snapshot: RaftSnapshotPolicy;
  stateMachine: StateMachine;
  logger: Logger;
  /** Uniform in [0, 1): election timeout jitter. Default Math.random. */
  random?: () => number;
  /** Overrides of the transport's limits (transport/limits.ts). */
  transport?: Partial<TransportLimits>;
  /** Overrides of the LMDB log store settings. */
  logStore?: Partial<LmdbLogStoreSettings>;
  /** Overrides of the snapshot store settings (snapshotsRetained comes from `snapshot`). */
  snapshotStore?: Partial<Omit<SnapshotStoreSettings, 'snapshotsRetained'>>;
}

/** Counters since start(), and the current positions. */
export interface RaftNodeMetrics {
  /** Loop passes that handled a Ready. */
  readies: number;
  /** Durable (fsynced) persists of a Ready: snapshot, entries or a term/vote change. The group-commit unit. */
  persists: number;
  /**
   * Writes of a commit index that moved alone (not awaited: the commit can be recomputed). Most ride along with
   * the next durable persist instead (see timing.commitWriteDelayMs) and are not counted here.
   */
  commitWrites: number;
  entriesPersisted: number;
  messagesSent: number;
  /** Received messages dropped because the inbox was full. */
  messagesDropped: number;
  entriesApplied: number;
  proposalsAccepted: number;
  proposalsCompleted: number;
  snapshotsCreated: number;
  snapshotsInstalled: number;
  term: number;
  commit: number;
  applied: number;
  /** Index of the snapshot the log store records (entries up to it may be compacted). */
  snapshotIndex: number;
  proposalsPending: number;
  readBarriersPending: number;
  /** Durable write rounds of the log store (each one fsync; the group-commit unit across all callers). */
  logSyncs: number;
  /** Entries the log store served from its entry cache, and read from LMDB. */
  entriesReadCached: number;
  entriesReadStored: number;
  /** Bytes the entry cache is charged now (raftEntryCacheBytesMax bounds it). */
  entryCacheBytes: number;
}

/** Read barriers pending on a node unless configured (the core's own default bound). */
export const DEFAULT_READ_BARRIERS_PENDING_MAX = 4096;
export const DEFAULT_INBOX_MESSAGES_MAX = 10_000;
export const DEFAULT_PROPOSAL_BYTES_MAX = 8 * 1024 * 1024;
/** A lost commit index is recomputed from a quorum (and raised to the applied index at start): no hurry. */
export const DEFAULT_COMMIT_WRITE_DELAY_MS = 50;
/** Room a transport frame needs around one entry's data: frame, message and entry headers, envelope. */
const FRAME_ROOM_BYTES = 64 * 1024;

/** Throws RangeError naming the first setting out of range. */
export function validateOptions(o: RaftNodeOptions): void {
  const int = (name: string, v: number, min: number): void => {
    if (!Number.isSafeInteger(v) || v < min) throw new RangeError(`raft node setting ${name} must be an integer >= ${min}, got ${v}`);
  };
  int('nodeId', o.nodeId, 1);
  int('timing.tickMs', o.timing.tickMs, 1);
  int('timing.heartbeatTicks', o.timing.heartbeatTicks, 1);
  int('timing.electionTicks', o.timing.electionTicks, o.timing.heartbeatTicks + 1);
  if (o.timing.commitWriteDelayMs !== undefined) int('timing.commitWriteDelayMs', o.timing.commitWriteDelayMs, 0);
  int('limits.proposalTimeoutMs', o.limits.proposalTimeoutMs, 1);
  int('limits.proposalsQueuedMax', o.limits.proposalsQueuedMax, 1);
  int('limits.proposalBatchBytesMax', o.limits.proposalBatchBytesMax, 1);
  int('limits.maxSizePerMsgBytes', o.limits.maxSizePerMsgBytes, 0);
  int('limits.maxInflightMsgs', o.limits.maxInflightMsgs, 1);
  int('limits.maxUncommittedBytes', o.limits.maxUncommittedBytes, 0);
  if (o.limits.proposalBytesMax !== undefined) int('limits.proposalBytesMax', o.limits.proposalBytesMax, 1);
  if (o.limits.readBarriersPendingMax !== undefined) int('limits.readBarriersPendingMax', o.limits.readBarriersPendingMax, 1);
  if (o.limits.inboxMessagesMax !== undefined) int('limits.inboxMessagesMax', o.limits.inboxMessagesMax, 1);
  int('snapshot.entriesBetweenSnapshots', o.snapshot.entriesBetweenSnapshots, 1);
  int('snapshot.trailingEntriesKept', o.snapshot.trailingEntriesKept, 0);
  int('snapshot.snapshotsRetained', o.snapshot.snapshotsRetained, 1);
  for (const id of o.initialMembers) int('initialMembers[]', id, 1);
  const proposalBytesMax = o.limits.proposalBytesMax ?? DEFAULT_PROPOSAL_BYTES_MAX;
  const frameBytesMax = resolveLimits(o.transport).frameBytesMax;
  if (proposalBytesMax + FRAME_ROOM_BYTES > frameBytesMax) {
    throw new RangeError(`limits.proposalBytesMax (${proposalBytesMax}) + ${FRAME_ROOM_BYTES} must fit in the transport's frameBytesMax (${frameBytesMax})`);
  }
}
