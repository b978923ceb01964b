// Inputs and outputs of the group coordinator: plain values, no wire versions. The handlers translate the
// generated request/response types to and from these.

export const GroupState = {
  EMPTY: 'Empty',
  PREPARING_REBALANCE: 'PreparingRebalance',
  COMPLETING_REBALANCE: 'CompletingRebalance',
  STABLE: 'Stable',
  DEAD: 'Dead',
} as const;

/** The state names as Kafka reports them in DescribeGroups and ListGroups. */
export type GroupStateName = (typeof GroupState)[keyof typeof GroupState];

/** One protocol a member supports (an assignor name and its metadata, e.g. a consumer subscription). */
export interface GroupProtocol {
  name: string;
  metadata: Buffer;
}

export interface JoinGroupInput {
  groupId: string;
  /** '' for a member joining for the first time. */
  memberId: string;
  /** group.instance.id of a static member (KIP-345), else null. */
  groupInstanceId: string | null;
  sessionTimeoutMs: number;
  /** JoinGroup v0 has none: pass the session timeout, as Kafka does. */
  rebalanceTimeoutMs: number;
  protocolType: string;
  /** In the member's order of preference. */
  protocols: GroupProtocol[];
  clientId: string;
  clientHost: string;
  /** JoinGroup v4+: a new member without id first gets MEMBER_ID_REQUIRED and its id (KIP-394). */
  requireKnownMemberId: boolean;
  /** JoinGroup v9+: a static leader rejoining a stable group may be told to skip the assignment (KIP-814). */
  supportSkippingAssignment: boolean;
  reason: string | null;
}

export interface JoinGroupMember {
  memberId: string;
  groupInstanceId: string | null;
  metadata: Buffer;
}

export interface JoinGroupOutput {
  errorCode: number;
  /** -1 with an error. */
  generationId: number;
  protocolType: string | null;
  protocolName: string | null;
  leaderId: string;
  skipAssignment: boolean;
  memberId: string;
  /** Every member with its metadata for the chosen protocol; only the leader gets them. */
  members: JoinGroupMember[];
}

export interface SyncGroupInput {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
  /** SyncGroup v5+; null when the client did not send it. */
  protocolType: string | null;
  protocolName: string | null;
  /** Sent by the leader only: each member's assignment. */
  assignments: { memberId: string; assignment: Buffer }[];
}

export interface SyncGroupOutput {
  errorCode: number;
  protocolType: string | null;
  protocolName: string | null;
  assignment: Buffer;
}

export interface HeartbeatInput {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
}

export interface LeavingMember {
  /** '' to remove a static member by its instance id (admin removal). */
  memberId: string;
  groupInstanceId: string | null;
  reason: string | null;
}

export interface LeaveGroupOutput {
  /** A group-level error (coordinator errors); members is empty then. */
  errorCode: number;
  members: { memberId: string; groupInstanceId: string | null; errorCode: number }[];
}

export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface OffsetCommitInput {
  groupId: string;
  /** -1 (with memberId '') for a commit from outside group management (a "simple" consumer). */
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
  offsets: { topic: string; partition: number; offset: number; leaderEpoch: number; metadata: string | null }[];
}

export interface PartitionResult {
  topic: string;
  partition: number;
  errorCode: number;
}

export interface FetchedOffset {
  topic: string;
  partition: number;
  /** -1 when nothing is committed. */
  offset: number;
  leaderEpoch: number;
  /** '' when nothing is committed. */
  metadata: string | null;
  errorCode: number;
}

export interface OffsetFetchOutput {
  errorCode: number;
  offsets: FetchedOffset[];
}

export interface OffsetDeleteOutput {
  errorCode: number;
  partitions: PartitionResult[];
}

export interface DescribedMember {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  /** Metadata for the chosen protocol and the assignment: only filled in for a Stable group. */
  metadata: Buffer;
  assignment: Buffer;
}

export interface GroupDescription {
  errorCode: number;
  groupId: string;
  /** '' with an error. */
  state: GroupStateName | '';
  protocolType: string;
  /** The chosen protocol for a Stable group, else ''. */
  protocolName: string;
  members: DescribedMember[];
}

export interface GroupListing {
  groupId: string;
  protocolType: string;
  state: GroupStateName;
}

export interface ListGroupsOutput {
  errorCode: number;
  groups: GroupListing[];
}
