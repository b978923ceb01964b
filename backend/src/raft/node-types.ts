// The seam between the Raft node driver (raft/node.ts) and what runs on top of it (the Kafka state machine in
// backends/raft/). The driver owns the core, the LMDB log, the snapshot files and the transport; the state
// machine owns the Kafka state (topics, partition logs, offsets, producer ids).

export type NodeId = number;

/** Thrown by propose()/readIndex() on a node that is not the leader; leaderId -1 when none is known. */
export class NotLeaderError extends Error {
  readonly leaderId: NodeId;
  constructor(leaderId: NodeId, message?: string) {
    super(message ?? `not the leader (leader: ${leaderId})`);
    this.name = 'NotLeaderError';
    this.leaderId = leaderId;
  }
}

/** A snapshot's content as a stream of chunks, so a large state never has to sit in memory whole. */
export type SnapshotChunks = AsyncIterable<Uint8Array>;

export interface StateMachine {
  /**
   * The index of the last entry whose effects are durable in the state machine's own storage. After a crash the
   * driver re-applies every committed entry after it, so apply() must never see an entry twice or miss one:
   * the state machine stores this index atomically with the state it covers.
   */
  appliedIndex(): number;
  /**
   * Apply committed entries in order (deterministic: every node computes the same state from the same
   * entries). Returns one result per entry, handed to the proposer on this node. A thrown error is fatal for
   * the node (it stops serving rather than diverge). Every log index is passed: an entry with empty `data` is
   * a no-op (a new leader's empty entry, or a membership change the driver applies itself) that only moves
   * appliedIndex (its result is ignored); a proposed command is never empty.
   */
  apply(entries: { index: number; term: number; data: Uint8Array }[]): Promise<unknown[]>;
  /**
   * Make everything applied so far durable and describe it as a snapshot stream at appliedIndex(). The
   * driver reads the chunks in the background while later apply() calls run: they must stay a consistent view
   * of the state at `index` (a copy, a read transaction, or append-only files read up to recorded sizes).
   */
  snapshot(): Promise<{ index: number; chunks: SnapshotChunks }>;
  /**
   * Replace the whole state with a snapshot taken at `index` (received from a leader or loaded at start).
   * Atomic with respect to crashes: afterwards appliedIndex() is `index`, before it the old state stays whole.
   */
  restore(index: number, chunks: SnapshotChunks): Promise<void>;
}

/** What the leader knows of one voter's replication (see RaftNodeApi.replicas). */
export interface ReplicaState {
  nodeId: NodeId;
  /** The highest log index known to be stored on that node. */
  match: number;
  /** Heard from within the last election timeout (always true for the leader itself). */
  active: boolean;
  /** The leader streams entries to it (not probing, not waiting for a snapshot). */
  replicating: boolean;
}

export interface LeaderInfo {
  leaderId: NodeId;
  term: number;
  isLeader: boolean;
}

export interface RaftNodeApi {
  readonly nodeId: NodeId;
  start(): Promise<void>;
  /** Stop ticking, close the transport and the storage; pending proposals reject. */
  stop(): Promise<void>;
  /**
   * Propose one command and resolve with the state machine's result once it was applied on this node.
   * Rejects with NotLeaderError on a follower, with an error on timeout (proposalTimeoutMs) or leadership loss.
   */
  propose(data: Uint8Array, signal?: AbortSignal): Promise<unknown>;
  /** Linearizable read barrier (ReadIndex): resolves once this leader's applied index covers the read. */
  readBarrier(signal?: AbortSignal): Promise<void>;
  leader(): LeaderInfo;
  /**
   * On the leader: its commit index and every voter's replication state (for choosing a follower a consumer
   * may read from). null on any other node.
   */
  replicas(): { commit: number; voters: ReplicaState[] } | null;
  /**
   * On the leader: the voters heard from within an election timeout, itself included (Kafka's ISR); cheap
   * enough to ask per request. null on any other node.
   */
  inSyncVoters(): NodeId[] | null;
  onLeaderChange(listener: (info: LeaderInfo) => void): () => void;
  transferLeadership(to: NodeId): void;
}
