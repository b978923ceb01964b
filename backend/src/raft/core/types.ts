// The data the pure Raft core exchanges with its driver. The core never touches the clock, randomness, disk
// or network: time enters as tick(), randomness through Config.random, messages through step(), and
// everything the driver must do comes out in a Ready batch (see ready.ts / rawnode.ts).
//
// Indexes and terms are plain numbers (safe integers). Index 0 / term 0 mean "none"; the first real entry
// has index 1. Node id 0 means "no node" (no vote, no leader).

export type NodeId = number;

export const NONE: NodeId = 0;

export enum EntryType {
  /** Application data (possibly empty: the no-op a new leader appends to commit in its own term). */
  Normal = 0,
  /** A ConfChange encoded with encodeConfChange(); applied by the driver calling applyConfChange(). */
  ConfChange = 1,
}

export interface Entry {
  index: number;
  term: number;
  type: EntryType;
  data: Uint8Array;
}

/** What must be on stable storage before any message of the same Ready is sent (persist before send). */
export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

/**
 * Membership. Outside a joint configuration votersOutgoing is empty. During joint consensus (Raft thesis
 * 4.3) decisions need a majority of `voters` AND a majority of `votersOutgoing`. learnersNext are voters of
 * the outgoing config that become learners when the joint config is left (a node cannot be voter and
 * learner at once).
 */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
  votersOutgoing: NodeId[];
  learnersNext: NodeId[];
  /** Leave the joint configuration automatically once it is committed. */
  autoLeave: boolean;
}

export enum ConfChangeType {
  AddNode = 0,
  RemoveNode = 1,
  AddLearnerNode = 2,
}

export interface ConfChangeSingle {
  type: ConfChangeType;
  nodeId: NodeId;
}

/**
 * A membership change. One change (of any number of singles) is in flight at a time. A change of one voter
 * may be applied directly; anything else goes through a joint configuration. An empty `changes` list on a
 * joint configuration means "leave the joint configuration".
 */
export interface ConfChange {
  changes: ConfChangeSingle[];
  /** Force joint consensus even for a single change. */
  joint: boolean;
  /**
   * Only when the change enters a joint configuration: leave it automatically once the joint configuration
   * is applied (the leader proposes the empty ConfChange itself). Default true; false means the operator
   * leaves explicitly by proposing an empty ConfChange. (Added by the core: not in the first contract.)
   */
  autoLeave?: boolean;
}

export interface SnapshotMetadata {
  index: number;
  term: number;
  conf: ConfState;
}

export interface Snapshot {
  metadata: SnapshotMetadata;
  /** Opaque application state at metadata.index. */
  data: Uint8Array;
}

export enum MessageType {
  /** Local: the election timer fired (driver never sends it). */
  Hup = 0,
  /** Local: leader heartbeat timer fired. */
  Beat = 1,
  /** Local or forwarded from a follower: append these entries. */
  Prop = 2,
  App = 3,
  AppResp = 4,
  Vote = 5,
  VoteResp = 6,
  PreVote = 7,
  PreVoteResp = 8,
  Snap = 9,
  Heartbeat = 10,
  HeartbeatResp = 11,
  /** Local: the driver reports a follower unreachable (transport failure) -> probe it. */
  Unreachable = 12,
  /** Local: the driver reports how sending a snapshot ended (reject = failed). */
  SnapStatus = 13,
  /** Local: the leader checks quorum (CheckQuorum). */
  CheckQuorum = 14,
  /** Ask the leader to transfer leadership to `from`. */
  TransferLeader = 15,
  /** Leader to transferee: start an election now, ignoring the lease. */
  TimeoutNow = 16,
  ReadIndex = 17,
  ReadIndexResp = 18,
}

export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  /** App: term of the entry before `entries`; Vote: last log term; AppResp reject: term at rejectHint. */
  logTerm: number;
  /** App: index of the entry before `entries`; Vote: last log index; AppResp: last matched index. */
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  /** AppResp reject: the follower's guess at the highest index that may match (fast backtracking). */
  rejectHint: number;
  snapshot?: Snapshot;
  /** ReadIndex request context, echoed in the ReadState; also the campaign type marker for TimeoutNow. */
  context?: Uint8Array;
}

/** A linearizable read becomes safe once the applied index reaches `index`. */
export interface ReadState {
  index: number;
  requestCtx: Uint8Array;
}

export enum Role {
  Follower = 0,
  PreCandidate = 1,
  Candidate = 2,
  Leader = 3,
}

export interface SoftState {
  leader: NodeId;
  role: Role;
}

/**
 * One batch of work for the driver. Contract (asserted by the core and by the simulator):
 * 1. Write `snapshot` (if any), then `entries` (which may overwrite a suffix of the log), then `hardState`,
 *    and sync them: that is "persist".
 * 2. Only after persisting, send `messages` (persist before send: a vote or an append acknowledgement must
 *    never reach a peer before the state it promises is durable).
 * 3. Apply `committedEntries` in order (they are already durable on a quorum), then call advance(ready).
 *    If `snapshot` is set, restore the state machine from it before applying `committedEntries`; every
 *    ConfChange entry is applied by calling RawNode.applyConfChange().
 * Only one Ready is handed out at a time: ready() throws until advance() got the previous one back.
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  entries: Entry[];
  snapshot?: Snapshot;
  committedEntries: Entry[];
  messages: Message[];
  readStates: ReadState[];
  /** True when hardState/entries/snapshot must be synced before messages go out. */
  mustSync: boolean;
}
