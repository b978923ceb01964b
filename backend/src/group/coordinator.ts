// The classic consumer-group coordinator (JoinGroup / SyncGroup / Heartbeat / LeaveGroup and the offset and
// admin calls), following the behaviour of Kafka's GroupCoordinator so that real clients see what they expect:
//
//   Empty --join--> PreparingRebalance --all rejoined or rebalance timeout--> CompletingRebalance
//   CompletingRebalance --leader's SyncGroup--> Stable;  Stable / CompletingRebalance --join, leave, expiry-->
//   PreparingRebalance;  PreparingRebalance --nobody left--> Empty;  Empty --DeleteGroups--> Dead
//
// Membership lives in memory only (as in Kafka, a coordinator change makes every member rejoin); committed
// offsets are the durable part and go through the Backend. JoinGroup and SyncGroup are long polls: they return
// promises that the state machine resolves (rebalance complete, leader synced) or that end early with an error
// when the member is removed, fenced, or its connection goes away. All timing goes through the Scheduler.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Backend, CommittedOffset } from '../backends/backend.ts';
import { silentLogger } from '../observability/logger.ts';
import { ErrorCode, KafkaError } from '../protocol/errors.ts';
import { checkGroupConfig, DEFAULT_GROUP_CONFIG } from './config.ts';
import type { GroupConfig } from './config.ts';
import { CONSUMER_PROTOCOL_TYPE, decodeSubscriptionTopics } from './consumer-protocol.ts';
import { EMPTY_BYTES, Group, Member, uniqueProtocols, Waiter } from './group.ts';
import { realScheduler } from './scheduler.ts';
import type { Scheduler } from './scheduler.ts';
import { GroupState } from './types.ts';
import type {
  GroupDescription,
  GroupListing,
  GroupProtocol,
  HeartbeatInput,
  JoinGroupInput,
  JoinGroupOutput,
  LeaveGroupOutput,
  LeavingMember,
  ListGroupsOutput,
  OffsetCommitInput,
  OffsetDeleteOutput,
  OffsetFetchOutput,
  PartitionResult,
  SyncGroupInput,
  SyncGroupOutput,
  TopicPartition,
} from './types.ts';

/** What the coordinator needs from the backend: durable offsets, and topics to check commits against. */
export type GroupBackend = Pick<Backend, 'commitOffsets' | 'fetchOffsets' | 'deleteOffsets' | 'offsetGroups' | 'topic'>;

/**
 * Whether this node coordinates a group right now (cluster mode): 'self' serves it, 'loading' is catching up
 * (COORDINATOR_LOAD_IN_PROGRESS), 'other' means another node does (NOT_COORDINATOR), 'unavailable' means no
 * node does (COORDINATOR_NOT_AVAILABLE). groupId null asks about the coordinator as a whole (ListGroups).
 */
export type CoordinatorStatus = 'self' | 'loading' | 'other' | 'unavailable';

export interface GroupCoordinatorOptions {
  backend: GroupBackend;
  config?: Partial<GroupConfig>;
  scheduler?: Scheduler;
  /** Default: this node coordinates every group (single-node mode). */
  coordinatorStatus?: (groupId: string | null) => CoordinatorStatus;
  logger?: Logger;
  /** The unique part of new member ids; default randomUUID. */
  generateId?: () => string;
}

const STATUS_ERROR: Record<CoordinatorStatus, number> = {
  self: ErrorCode.NONE,
  loading: ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
  other: ErrorCode.NOT_COORDINATOR,
  unavailable: ErrorCode.COORDINATOR_NOT_AVAILABLE,
};

function joinError(memberId: string, errorCode: number): JoinGroupOutput {
  return { errorCode, generationId: -1, protocolType: null, protocolName: null, leaderId: '', skipAssignment: false, memberId, members: [] };
}

function syncError(errorCode: number): SyncGroupOutput {
  return { errorCode, protocolType: null, protocolName: null, assignment: EMPTY_BYTES };
}

/** Same protocol names in the same order with byte-identical metadata (Kafka's MemberMetadata.matches). */
function sameProtocols(a: GroupProtocol[], b: GroupProtocol[]): boolean {
  return a.length === b.length && a.every((p, i) => p.name === b[i]!.name && p.metadata.equals(b[i]!.metadata));
}

/**
 * Whether a restarted static member asks for the same thing as before, so it can take its old place without a
 * rebalance. Consumer subscriptions are compared by their topics: their other fields (owned partitions,
 * generation) legitimately differ after a restart.
 */
function sameSubscription(protocolType: string | null, a: GroupProtocol[], b: GroupProtocol[]): boolean {
  if (a.length !== b.length || a.some((p, i) => p.name !== b[i]!.name)) return false;
  return a.every((p, i) => {
    const q = b[i]!;
    if (p.metadata.equals(q.metadata)) return true;
    if (protocolType !== CONSUMER_PROTOCOL_TYPE) return false;
    const x = decodeSubscriptionTopics(p.metadata);
    const y = decodeSubscriptionTopics(q.metadata);
    return x !== null && y !== null && x.length === y.length && new Set(x).size === new Set([...x, ...y]).size;
  });
}

function partitionKey(topic: string, partition: number): string {
  return `${partition}:${topic}`;
}

export class GroupCoordinator {
  readonly config: Readonly<GroupConfig>;
  private readonly backend: GroupBackend;
  private readonly scheduler: Scheduler;
  private readonly status: (groupId: string | null) => CoordinatorStatus;
  private readonly log: Logger;
  private readonly generateId: () => string;
  private readonly groups = new Map<string, Group>();
  private closed = false;

  constructor(options: GroupCoordinatorOptions) {
    const config = { ...DEFAULT_GROUP_CONFIG, ...options.config };
    checkGroupConfig(config);
    this.config = Object.freeze(config);
    this.backend = options.backend;
    this.scheduler = options.scheduler ?? realScheduler;
    this.status = options.coordinatorStatus ?? (() => 'self');
    this.log = options.logger ?? silentLogger();
    this.generateId = options.generateId ?? randomUUID;
  }

  // ---- JoinGroup ----------------------------------------------------------------------------------------

  /**
   * Resolves when the member's place in the next generation is settled (or at once with an error,
   * MEMBER_ID_REQUIRED, or the current generation). `signal` aborting (the connection closed) ends the wait;
   * a dynamic member is then removed, since it can no longer learn its generation.
   */
  join(input: JoinGroupInput, signal?: AbortSignal): Promise<JoinGroupOutput> {
    return new Promise<JoinGroupOutput>((resolve) => {
      const waiter = new Waiter(resolve);
      this.doJoin(input, waiter);
      if (!waiter.done && signal !== undefined) this.watchAbort(signal, waiter, () => this.onJoinAborted(input.groupId, waiter));
    });
  }

  private doJoin(input: JoinGroupInput, waiter: Waiter<JoinGroupOutput>): void {
    const err = this.groupError(input.groupId, false);
    if (err !== ErrorCode.NONE) return waiter.resolve(joinError(input.memberId, err));
    const cfg = this.config;
    if (input.sessionTimeoutMs < cfg.groupMinSessionTimeoutMs || input.sessionTimeoutMs > cfg.groupMaxSessionTimeoutMs) {
      return waiter.resolve(joinError(input.memberId, ErrorCode.INVALID_SESSION_TIMEOUT));
    }
    const isUnknown = input.memberId === '';
    let group = this.groups.get(input.groupId);
    if (group === undefined) {
      if (!isUnknown) return waiter.resolve(joinError(input.memberId, ErrorCode.UNKNOWN_MEMBER_ID));
      group = this.createGroup(input.groupId);
    }
    if (!this.acceptJoiningMember(group, input.memberId)) {
      const existing = group.members.get(input.memberId);
      if (existing !== undefined) this.removeMemberAndUpdateGroup(group, existing, 'the group is full');
      return waiter.resolve(joinError('', ErrorCode.GROUP_MAX_SIZE_REACHED));
    }
    const protocols = uniqueProtocols(input.protocols);
    if (group.is(GroupState.DEAD)) {
      // Being deleted right now: the client finds the coordinator again and retries.
      waiter.resolve(joinError(input.memberId, ErrorCode.COORDINATOR_NOT_AVAILABLE));
    } else if (!group.supportsProtocols(input.protocolType, protocols)) {
      waiter.resolve(joinError(input.memberId, ErrorCode.INCONSISTENT_GROUP_PROTOCOL));
    } else if (isUnknown) {
      this.joinNewMember(group, input, protocols, waiter);
    } else {
      this.joinKnownMember(group, input, protocols, waiter);
    }
    this.tryCompleteJoin(group);
  }

  /**
   * Kafka's admission rule. A member already waiting in a rebalance is kept; otherwise a rebalancing group
   * counts those that rejoined (so late rejoiners are the ones refused when the limit was lowered), and a
   * settled group counts its members. Handed-out but unused member ids count too, which bounds them.
   */
  private acceptJoiningMember(group: Group, memberId: string): boolean {
    const max = this.config.groupMaxSize;
    const pending = memberId === '' ? group.pendingMembers.size : 0;
    switch (group.state) {
      case GroupState.EMPTY:
        return pending < max;
      case GroupState.DEAD:
        return true;
      case GroupState.PREPARING_REBALANCE:
        return (group.members.get(memberId)?.isAwaitingJoin ?? false) || group.numAwaitingJoin + pending < max;
      default:
        return group.has(memberId) || group.size + pending < max;
    }
  }

  private joinNewMember(group: Group, input: JoinGroupInput, protocols: GroupProtocol[], waiter: Waiter<JoinGroupOutput>): void {
    const memberId = `${input.groupInstanceId ?? input.clientId}-${this.generateId()}`;
    if (input.groupInstanceId !== null) {
      const oldMemberId = group.staticMemberId(input.groupInstanceId);
      if (oldMemberId !== undefined) return this.replaceStaticMember(group, input, protocols, oldMemberId, memberId, waiter);
    } else if (input.requireKnownMemberId) {
      // KIP-394: hand out the id first, so a client that times out and retries does not leave a ghost member.
      const timer = this.scheduler.setTimeout(() => this.removePendingMember(group, memberId), input.sessionTimeoutMs);
      group.pendingMembers.set(memberId, timer);
      return waiter.resolve(joinError(memberId, ErrorCode.MEMBER_ID_REQUIRED));
    }
    this.addMemberAndRebalance(group, input, protocols, memberId, waiter);
  }

  private joinKnownMember(group: Group, input: JoinGroupInput, protocols: GroupProtocol[], waiter: Waiter<JoinGroupOutput>): void {
    const { memberId, groupInstanceId } = input;
    const pendingTimer = group.pendingMembers.get(memberId);
    if (pendingTimer !== undefined) {
      // Ids are handed out to dynamic members only; a static member never has a pending id.
      if (groupInstanceId !== null) return waiter.resolve(joinError(memberId, ErrorCode.UNKNOWN_MEMBER_ID));
      this.scheduler.clearTimeout(pendingTimer);
      return this.addMemberAndRebalance(group, input, protocols, memberId, waiter);
    }
    if (group.isStaticMemberFenced(groupInstanceId, memberId)) return waiter.resolve(joinError(memberId, ErrorCode.FENCED_INSTANCE_ID));
    const member = group.members.get(memberId);
    if (member === undefined || (groupInstanceId !== null && group.staticMemberId(groupInstanceId) === undefined)) {
      return waiter.resolve(joinError(memberId, ErrorCode.UNKNOWN_MEMBER_ID));
    }
    switch (group.state) {
      case GroupState.PREPARING_REBALANCE:
        return this.updateMemberAndRebalance(group, member, input, protocols, waiter, 'member rejoining during rebalance');
      case GroupState.COMPLETING_REBALANCE:
        // Same metadata: it probably lost the JoinGroup response; repeat it rather than start over.
        if (sameProtocols(member.protocols, protocols)) return waiter.resolve(this.currentGeneration(group, member, group.isLeader(memberId)));
        return this.updateMemberAndRebalance(group, member, input, protocols, waiter, 'member metadata changed');
      case GroupState.STABLE:
        // The leader rejoining asks for a new assignment (e.g. partitions were added): always rebalance.
        if (group.isLeader(memberId) || !sameProtocols(member.protocols, protocols)) {
          return this.updateMemberAndRebalance(group, member, input, protocols, waiter, 'leader rejoined or member metadata changed');
        }
        return waiter.resolve(this.currentGeneration(group, member, false));
      default:
        // No members in an Empty group; the member must start over.
        return waiter.resolve(joinError(memberId, ErrorCode.UNKNOWN_MEMBER_ID));
    }
  }

  /** A known group.instance.id joining with no member id: the restarted instance takes the old member's place. */
  private replaceStaticMember(group: Group, input: JoinGroupInput, protocols: GroupProtocol[], oldMemberId: string, newMemberId: string,
    waiter: Waiter<JoinGroupOutput>): void {
    const member = group.get(oldMemberId);
    const unchanged = sameSubscription(group.protocolType, member.protocols, protocols);
    const oldLeaderId = group.leaderId;
    // Whoever still holds the old id is a zombie of the same instance: fence its pending calls now.
    group.completeJoin(member, joinError(oldMemberId, ErrorCode.FENCED_INSTANCE_ID));
    group.completeSync(member, syncError(ErrorCode.FENCED_INSTANCE_ID));
    group.replaceStaticMember(input.groupInstanceId!, oldMemberId, newMemberId);
    this.log.info({ groupId: group.groupId, groupInstanceId: input.groupInstanceId, oldMemberId, newMemberId }, 'static member replaced');
    this.updateMember(group, member, input, protocols);
    this.touchSession(group, member);
    if (group.is(GroupState.STABLE) && unchanged) {
      waiter.resolve(this.staticRejoinResult(group, member, oldLeaderId, input.supportSkippingAssignment));
      return;
    }
    group.setJoinWaiter(member, waiter);
    // CompletingRebalance: the leader may be assigning to the old id, so the assignment must be redone.
    if (group.is(GroupState.STABLE) || group.is(GroupState.COMPLETING_REBALANCE)) {
      this.prepareRebalance(group, `static member ${input.groupInstanceId} rejoined with changed metadata or during a sync`);
    }
  }

  /**
   * A static member rejoining a stable group without changes keeps its assignment. Before v9 it must not act
   * as leader (a stable group would not pass on a new assignment), so it is told the old leader id; v9+
   * clients get the members and skipAssignment instead (KIP-814).
   */
  private staticRejoinResult(group: Group, member: Member, oldLeaderId: string | null, supportSkip: boolean): JoinGroupOutput {
    const isLeader = group.isLeader(member.memberId);
    const result = this.currentGeneration(group, member, supportSkip && isLeader);
    if (supportSkip) return { ...result, skipAssignment: isLeader };
    return { ...result, leaderId: oldLeaderId ?? '' };
  }

  private addMemberAndRebalance(group: Group, input: JoinGroupInput, protocols: GroupProtocol[], memberId: string,
    waiter: Waiter<JoinGroupOutput>): void {
    const member = new Member({
      memberId,
      groupInstanceId: input.groupInstanceId,
      clientId: input.clientId,
      clientHost: input.clientHost,
      rebalanceTimeoutMs: Math.max(0, input.rebalanceTimeoutMs),
      sessionTimeoutMs: input.sessionTimeoutMs,
      protocolType: input.protocolType,
      protocols,
    });
    member.isNew = true;
    if (group.is(GroupState.PREPARING_REBALANCE) && group.initialDelayRemainingMs !== null) group.newMemberAdded = true;
    group.add(member, waiter);
    // A new member cannot heartbeat before its JoinGroup response: this timer drops it if it never gets one.
    this.touchSession(group, member, this.config.groupNewMemberJoinTimeoutMs);
    this.maybePrepareRebalance(group, `member ${memberId} joined`);
  }

  private updateMemberAndRebalance(group: Group, member: Member, input: JoinGroupInput, protocols: GroupProtocol[],
    waiter: Waiter<JoinGroupOutput>, reason: string): void {
    // A second JoinGroup from the same member supersedes the first (the client gave up on it).
    group.completeJoin(member, joinError(member.memberId, ErrorCode.REBALANCE_IN_PROGRESS));
    this.updateMember(group, member, input, protocols);
    group.setJoinWaiter(member, waiter);
    this.maybePrepareRebalance(group, `${reason} (${member.memberId})`);
  }

  private updateMember(group: Group, member: Member, input: JoinGroupInput, protocols: GroupProtocol[]): void {
    group.updateProtocols(member, protocols);
    member.rebalanceTimeoutMs = Math.max(0, input.rebalanceTimeoutMs);
    member.sessionTimeoutMs = input.sessionTimeoutMs;
    member.clientId = input.clientId;
    member.clientHost = input.clientHost;
  }

  /** The JoinGroup answer for the current generation; the member list only when `withMembers`. */
  private currentGeneration(group: Group, member: Member, withMembers: boolean): JoinGroupOutput {
    return {
      errorCode: ErrorCode.NONE,
      generationId: group.generationId,
      protocolType: group.protocolType,
      protocolName: group.protocolName,
      leaderId: group.leaderId ?? '',
      skipAssignment: false,
      memberId: member.memberId,
      members: withMembers ? group.memberMetadata() : [],
    };
  }

  private onJoinAborted(groupId: string, waiter: Waiter<JoinGroupOutput>): void {
    const group = this.groups.get(groupId);
    const member = group === undefined ? undefined : [...group.members.values()].find((m) => m.joinWaiter === waiter);
    if (group === undefined || member === undefined) return waiter.resolve(joinError('', ErrorCode.COORDINATOR_NOT_AVAILABLE));
    group.completeJoin(member, joinError(member.memberId, ErrorCode.COORDINATOR_NOT_AVAILABLE));
    // A static member is expected to come back (KIP-345); a dynamic one would only hold up the rebalance.
    if (!member.isStatic) this.removeMemberAndUpdateGroup(group, member, 'connection closed during JoinGroup');
  }

  // ---- rebalance ----------------------------------------------------------------------------------------

  private maybePrepareRebalance(group: Group, reason: string): void {
    if (group.canRebalance()) this.prepareRebalance(group, reason);
  }

  private prepareRebalance(group: Group, reason: string): void {
    // Members waiting for an assignment of a generation that will not happen must rejoin.
    if (group.is(GroupState.COMPLETING_REBALANCE)) this.propagateAssignmentError(group, ErrorCode.REBALANCE_IN_PROGRESS);
    this.clearTimer(group, 'syncTimer');
    this.clearTimer(group, 'emptyTimer');
    const wasEmpty = group.is(GroupState.EMPTY);
    group.transitionTo(GroupState.PREPARING_REBALANCE);
    const rebalanceTimeoutMs = group.rebalanceTimeoutMs();
    const delayMs = this.config.groupInitialRebalanceDelayMs;
    this.log.info({ groupId: group.groupId, generationId: group.generationId, reason }, 'preparing to rebalance group');
    if (wasEmpty && delayMs > 0) {
      group.initialDelayRemainingMs = Math.max(rebalanceTimeoutMs - delayMs, 0);
      group.newMemberAdded = false;
      this.armJoinTimer(group, delayMs);
    } else {
      group.initialDelayRemainingMs = null;
      this.armJoinTimer(group, rebalanceTimeoutMs);
      this.tryCompleteJoin(group);
    }
  }

  private armJoinTimer(group: Group, delayMs: number): void {
    this.clearTimer(group, 'joinTimer');
    group.joinTimer = this.scheduler.setTimeout(() => this.onJoinTimer(group), delayMs);
  }

  private onJoinTimer(group: Group): void {
    group.joinTimer = null;
    if (this.groups.get(group.groupId) !== group || !group.is(GroupState.PREPARING_REBALANCE)) return;
    const remaining = group.initialDelayRemainingMs;
    if (remaining !== null && remaining > 0 && group.newMemberAdded) {
      // Members are still arriving: wait another delay, but never beyond the rebalance timeout in total.
      const delayMs = Math.min(this.config.groupInitialRebalanceDelayMs, remaining);
      group.initialDelayRemainingMs = remaining - delayMs;
      group.newMemberAdded = false;
      return this.armJoinTimer(group, delayMs);
    }
    this.completeJoin(group);
  }

  /** Completes the join phase early once everyone is in (never during the initial delay). */
  private tryCompleteJoin(group: Group): void {
    if (group.is(GroupState.PREPARING_REBALANCE) && group.initialDelayRemainingMs === null && group.hasAllMembersJoined()) {
      this.completeJoin(group);
    }
  }

  private completeJoin(group: Group): void {
    this.clearTimer(group, 'joinTimer');
    group.initialDelayRemainingMs = null;
    for (const member of [...group.members.values()]) {
      // Static members are kept: they may be restarting, and their session timeout decides.
      if (!member.isAwaitingJoin && !member.isStatic) this.removeMember(group, member);
    }
    if (!group.electJoinedLeader() && group.size > 0) {
      // Only static members that have not rejoined are left: wait for them (or their session expiry).
      this.log.warn({ groupId: group.groupId }, 'rebalance could not complete: no member rejoined');
      return this.armJoinTimer(group, group.rebalanceTimeoutMs());
    }
    group.initNextGeneration();
    if (group.is(GroupState.EMPTY)) {
      this.log.info({ groupId: group.groupId, generationId: group.generationId }, 'group is now empty');
      return this.scheduleEmptyExpiry(group);
    }
    this.log.info({ groupId: group.groupId, generationId: group.generationId, members: group.size, protocol: group.protocolName },
      'stabilized group');
    for (const member of group.members.values()) {
      group.completeJoin(member, this.currentGeneration(group, member, group.isLeader(member.memberId)));
      this.touchSession(group, member);
      member.isNew = false;
      group.pendingSyncMembers.add(member.memberId);
    }
    // Members that never send SyncGroup are removed after the rebalance timeout.
    const generationId = group.generationId;
    this.clearTimer(group, 'syncTimer');
    group.syncTimer = this.scheduler.setTimeout(() => this.onPendingSyncExpired(group, generationId), group.rebalanceTimeoutMs());
  }

  private onPendingSyncExpired(group: Group, generationId: number): void {
    group.syncTimer = null;
    if (this.groups.get(group.groupId) !== group || group.generationId !== generationId) return;
    if (!group.is(GroupState.COMPLETING_REBALANCE) && !group.is(GroupState.STABLE)) return;
    if (group.pendingSyncMembers.size === 0) return;
    const late = [...group.pendingSyncMembers];
    for (const memberId of late) this.removeMember(group, group.get(memberId));
    this.prepareRebalance(group, `members did not sync in time: ${late.join(', ')}`);
  }

  // ---- SyncGroup ----------------------------------------------------------------------------------------

  /** Resolves with the member's assignment once the leader has sent it (at once for a Stable group). */
  sync(input: SyncGroupInput, signal?: AbortSignal): Promise<SyncGroupOutput> {
    return new Promise<SyncGroupOutput>((resolve) => {
      const waiter = new Waiter(resolve);
      this.doSync(input, waiter);
      if (!waiter.done && signal !== undefined) this.watchAbort(signal, waiter, () => this.onSyncAborted(input.groupId, waiter));
    });
  }

  private doSync(input: SyncGroupInput, waiter: Waiter<SyncGroupOutput>): void {
    const err = this.groupError(input.groupId, false);
    // While loading, the rebalance in flight is lost: REBALANCE_IN_PROGRESS makes the member rejoin (older
    // clients do not know COORDINATOR_LOAD_IN_PROGRESS here).
    if (err === ErrorCode.COORDINATOR_LOAD_IN_PROGRESS) return waiter.resolve(syncError(ErrorCode.REBALANCE_IN_PROGRESS));
    if (err !== ErrorCode.NONE) return waiter.resolve(syncError(err));
    const group = this.groups.get(input.groupId);
    if (group === undefined) return waiter.resolve(syncError(ErrorCode.UNKNOWN_MEMBER_ID));
    const invalid = this.validateSync(group, input);
    if (invalid !== ErrorCode.NONE) return waiter.resolve(syncError(invalid));
    switch (group.state) {
      case GroupState.EMPTY:
        return waiter.resolve(syncError(ErrorCode.UNKNOWN_MEMBER_ID));
      case GroupState.PREPARING_REBALANCE:
        return waiter.resolve(syncError(ErrorCode.REBALANCE_IN_PROGRESS));
      case GroupState.COMPLETING_REBALANCE:
        return this.syncCompleting(group, group.get(input.memberId), input, waiter);
      default: {
        const member = group.get(input.memberId);
        group.pendingSyncMembers.delete(member.memberId);
        waiter.resolve({ errorCode: ErrorCode.NONE, protocolType: group.protocolType, protocolName: group.protocolName, assignment: member.assignment });
        this.touchSession(group, member);
      }
    }
  }

  private validateSync(group: Group, input: SyncGroupInput): number {
    if (group.is(GroupState.DEAD)) return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    const memberError = this.validateCurrentMember(group, input.memberId, input.groupInstanceId);
    if (memberError !== ErrorCode.NONE) return memberError;
    if (input.generationId !== group.generationId) return ErrorCode.ILLEGAL_GENERATION;
    if (input.protocolType !== null && input.protocolType !== group.protocolType) return ErrorCode.INCONSISTENT_GROUP_PROTOCOL;
    if (input.protocolName !== null && input.protocolName !== group.protocolName) return ErrorCode.INCONSISTENT_GROUP_PROTOCOL;
    return ErrorCode.NONE;
  }

  private syncCompleting(group: Group, member: Member, input: SyncGroupInput, waiter: Waiter<SyncGroupOutput>): void {
    group.completeSync(member, syncError(ErrorCode.REBALANCE_IN_PROGRESS));
    member.syncWaiter = waiter;
    group.pendingSyncMembers.delete(member.memberId);
    if (!group.isLeader(member.memberId)) return;
    const assignments = new Map(input.assignments.map((a) => [a.memberId, a.assignment]));
    for (const m of group.members.values()) m.assignment = assignments.get(m.memberId) ?? EMPTY_BYTES;
    group.transitionTo(GroupState.STABLE);
    this.log.info({ groupId: group.groupId, generationId: group.generationId }, 'assignment received from the leader');
    for (const m of group.members.values()) {
      const ok = { errorCode: ErrorCode.NONE, protocolType: group.protocolType, protocolName: group.protocolName, assignment: m.assignment };
      // The session restarts once the assignment is out: waiting for it does not count against the member.
      if (group.completeSync(m, ok)) this.touchSession(group, m);
    }
  }

  /** Tells every member waiting in SyncGroup that this generation failed; their assignments are void. */
  private propagateAssignmentError(group: Group, errorCode: number): void {
    for (const m of group.members.values()) {
      m.assignment = EMPTY_BYTES;
      if (group.completeSync(m, syncError(errorCode))) this.touchSession(group, m);
    }
  }

  private onSyncAborted(groupId: string, waiter: Waiter<SyncGroupOutput>): void {
    const group = this.groups.get(groupId);
    const member = group === undefined ? undefined : [...group.members.values()].find((m) => m.syncWaiter === waiter);
    // The member stays: without the response it will rejoin, or its session expires.
    if (member !== undefined) member.syncWaiter = null;
    waiter.resolve(syncError(ErrorCode.COORDINATOR_NOT_AVAILABLE));
  }

  // ---- Heartbeat and LeaveGroup -------------------------------------------------------------------------

  /** The Heartbeat error code: NONE, REBALANCE_IN_PROGRESS (rejoin), or why the member is not in the group. */
  heartbeat(input: HeartbeatInput): number {
    const err = this.groupError(input.groupId, false);
    // Loading: membership will be rebuilt anyway; answer blindly so members do not churn (as Kafka does).
    if (err === ErrorCode.COORDINATOR_LOAD_IN_PROGRESS) return ErrorCode.NONE;
    if (err !== ErrorCode.NONE) return err;
    const group = this.groups.get(input.groupId);
    if (group === undefined) return ErrorCode.UNKNOWN_MEMBER_ID;
    if (group.is(GroupState.DEAD)) return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    const memberError = this.validateCurrentMember(group, input.memberId, input.groupInstanceId);
    if (memberError !== ErrorCode.NONE) return memberError;
    if (input.generationId !== group.generationId) return ErrorCode.ILLEGAL_GENERATION;
    if (group.is(GroupState.EMPTY)) return ErrorCode.UNKNOWN_MEMBER_ID;
    this.touchSession(group, group.get(input.memberId));
    return group.is(GroupState.PREPARING_REBALANCE) ? ErrorCode.REBALANCE_IN_PROGRESS : ErrorCode.NONE;
  }

  /** Removes members (LeaveGroup v3+ batches them; member id '' removes a static member by instance id). */
  leave(groupId: string, leaving: LeavingMember[]): LeaveGroupOutput {
    const err = this.groupError(groupId, false);
    if (err !== ErrorCode.NONE) return { errorCode: err, members: [] };
    const group = this.groups.get(groupId);
    const answer = (m: LeavingMember, errorCode: number) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId, errorCode });
    if (group === undefined) return { errorCode: ErrorCode.NONE, members: leaving.map((m) => answer(m, ErrorCode.UNKNOWN_MEMBER_ID)) };
    if (group.is(GroupState.DEAD)) return { errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, members: [] };
    return { errorCode: ErrorCode.NONE, members: leaving.map((m) => answer(m, this.leaveOne(group, m))) };
  }

  private leaveOne(group: Group, m: LeavingMember): number {
    const reason = `left the group${m.reason === null ? '' : `: ${m.reason}`}`;
    if (m.memberId === '') {
      const current = m.groupInstanceId === null ? undefined : group.staticMemberId(m.groupInstanceId);
      if (current === undefined) return ErrorCode.UNKNOWN_MEMBER_ID;
      this.removeMemberAndUpdateGroup(group, group.get(current), reason);
      return ErrorCode.NONE;
    }
    if (group.pendingMembers.has(m.memberId)) {
      this.removePendingMember(group, m.memberId);
      return ErrorCode.NONE;
    }
    const invalid = this.validateCurrentMember(group, m.memberId, m.groupInstanceId);
    if (invalid !== ErrorCode.NONE) return invalid;
    this.removeMemberAndUpdateGroup(group, group.get(m.memberId), reason);
    return ErrorCode.NONE;
  }

  // ---- membership helpers -------------------------------------------------------------------------------

  /** The member named by (member id, instance id) is current: FENCED_INSTANCE_ID or UNKNOWN_MEMBER_ID if not. */
  private validateCurrentMember(group: Group, memberId: string, groupInstanceId: string | null): number {
    if (groupInstanceId !== null) {
      const current = group.staticMemberId(groupInstanceId);
      if (current === undefined) return ErrorCode.UNKNOWN_MEMBER_ID;
      return current === memberId ? ErrorCode.NONE : ErrorCode.FENCED_INSTANCE_ID;
    }
    return group.has(memberId) ? ErrorCode.NONE : ErrorCode.UNKNOWN_MEMBER_ID;
  }

  /** Restarts the member's session timer (heartbeat, commit, join or sync response). */
  private touchSession(group: Group, member: Member, timeoutMs = member.sessionTimeoutMs): void {
    if (member.sessionTimer !== null) this.scheduler.clearTimeout(member.sessionTimer);
    member.sessionTimer = this.scheduler.setTimeout(() => this.onSessionExpired(group, member), timeoutMs);
  }

  private onSessionExpired(group: Group, member: Member): void {
    member.sessionTimer = null;
    if (this.groups.get(group.groupId) !== group || group.members.get(member.memberId) !== member) return;
    // A known member waiting in JoinGroup or SyncGroup cannot heartbeat; the rebalance timers cover it.
    if (!member.isNew && (member.isAwaitingJoin || member.isAwaitingSync)) return this.touchSession(group, member);
    this.log.info({ groupId: group.groupId, memberId: member.memberId }, member.isNew ? 'new member join timed out' : 'member session expired');
    this.removeMemberAndUpdateGroup(group, member, `session of ${member.memberId} expired`);
  }

  /** Takes a member out and lets the group react (rebalance, or complete the one in progress). */
  private removeMemberAndUpdateGroup(group: Group, member: Member, reason: string): void {
    this.removeMember(group, member);
    if (group.is(GroupState.STABLE) || group.is(GroupState.COMPLETING_REBALANCE)) this.prepareRebalance(group, reason);
    else this.tryCompleteJoin(group);
  }

  /** Takes a member out, answering its pending calls with UNKNOWN_MEMBER_ID so its client rejoins. */
  private removeMember(group: Group, member: Member): void {
    group.completeJoin(member, joinError('', ErrorCode.UNKNOWN_MEMBER_ID));
    group.completeSync(member, syncError(ErrorCode.UNKNOWN_MEMBER_ID));
    if (member.sessionTimer !== null) this.scheduler.clearTimeout(member.sessionTimer);
    member.sessionTimer = null;
    group.remove(member.memberId);
  }

  private removePendingMember(group: Group, memberId: string): void {
    const timer = group.pendingMembers.get(memberId);
    if (timer === undefined) return;
    this.scheduler.clearTimeout(timer);
    group.pendingMembers.delete(memberId);
    this.tryCompleteJoin(group);
  }

  // ---- group lifecycle ----------------------------------------------------------------------------------

  private createGroup(groupId: string): Group {
    const group = new Group(groupId);
    this.groups.set(groupId, group);
    this.scheduleEmptyExpiry(group);
    return group;
  }

  private scheduleEmptyExpiry(group: Group): void {
    this.clearTimer(group, 'emptyTimer');
    group.emptyTimer = this.scheduler.setTimeout(() => this.onEmptyExpired(group), this.config.groupEmptyRetentionMs);
  }

  private onEmptyExpired(group: Group): void {
    group.emptyTimer = null;
    if (this.groups.get(group.groupId) !== group || !group.is(GroupState.EMPTY)) return;
    // Handed-out member ids expire within a session timeout; keep the group until they are gone.
    if (group.pendingMembers.size > 0) return this.scheduleEmptyExpiry(group);
    this.groups.delete(group.groupId);
    group.transitionTo(GroupState.DEAD);
  }

  private clearTimer(group: Group, name: 'joinTimer' | 'syncTimer' | 'emptyTimer'): void {
    const timer = group[name];
    if (timer !== null) this.scheduler.clearTimeout(timer);
    group[name] = null;
  }

  private watchAbort<T>(signal: AbortSignal, waiter: Waiter<T>, onAbort: () => void): void {
    if (signal.aborted) return onAbort();
    const listener = (): void => onAbort();
    signal.addEventListener('abort', listener, { once: true });
    waiter.detach = () => signal.removeEventListener('abort', listener);
  }

  /** NONE, or the error for a request about `groupId` (bad id, or this node does not coordinate it). */
  private groupError(groupId: string | null, allowEmptyId: boolean): number {
    if (groupId === null || (groupId === '' && !allowEmptyId)) return ErrorCode.INVALID_GROUP_ID;
    if (Buffer.byteLength(groupId, 'utf8') > this.config.groupIdBytesMax) return ErrorCode.INVALID_GROUP_ID;
    if (this.closed) return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    return STATUS_ERROR[this.status(groupId)];
  }

  /** Whether a group has members or is forming (for offset expiry: offsets of active groups never expire). */
  hasActiveMembers(groupId: string): boolean {
    const group = this.groups.get(groupId);
    return group !== undefined && (group.size > 0 || group.pendingMembers.size > 0);
  }

  /**
   * Drops every group, answering pending JoinGroup/SyncGroup calls with `errorCode`: call it when this node
   * stops coordinating (NOT_COORDINATOR makes clients find the new coordinator and rejoin there).
   */
  unloadGroups(errorCode: number = ErrorCode.NOT_COORDINATOR): void {
    for (const group of this.groups.values()) {
      for (const name of ['joinTimer', 'syncTimer', 'emptyTimer'] as const) this.clearTimer(group, name);
      for (const timer of group.pendingMembers.values()) this.scheduler.clearTimeout(timer);
      group.pendingMembers.clear();
      for (const member of [...group.members.values()]) {
        group.completeJoin(member, joinError(member.memberId, errorCode));
        group.completeSync(member, syncError(errorCode));
        this.removeMember(group, member);
      }
      group.transitionTo(GroupState.DEAD);
    }
    this.groups.clear();
  }

  /** Shutdown: pending calls end with COORDINATOR_NOT_AVAILABLE, and every later call gets it too. */
  close(): void {
    this.closed = true;
    this.unloadGroups(ErrorCode.COORDINATOR_NOT_AVAILABLE);
  }

  // ---- offsets ------------------------------------------------------------------------------------------

  /**
   * OffsetCommit. Members commit with their generation; a commit with generation -1 and no member id comes
   * from outside group management and is only accepted while the group has no members.
   */
  async commitOffsets(input: OffsetCommitInput): Promise<PartitionResult[]> {
    const all = (errorCode: number): PartitionResult[] => input.offsets.map((o) => ({ topic: o.topic, partition: o.partition, errorCode }));
    const err = this.groupError(input.groupId, true);
    if (err !== ErrorCode.NONE) return all(err);
    const group = this.groups.get(input.groupId);
    const invalid = this.validateCommit(group, input);
    if (invalid !== ErrorCode.NONE) return all(invalid);
    if (group !== undefined && input.memberId !== '' && group.has(input.memberId)) {
      // A commit shows the member is alive (Stable or PreparingRebalance; others were refused above).
      this.touchSession(group, group.get(input.memberId));
    }
    const results: PartitionResult[] = [];
    const accepted: OffsetCommitInput['offsets'] = [];
    for (const o of input.offsets) {
      const errorCode = this.checkCommitEntry(o);
      if (errorCode === ErrorCode.NONE) accepted.push(o);
      results.push({ topic: o.topic, partition: o.partition, errorCode });
    }
    if (accepted.length === 0) return results;
    const stored = await this.settle(this.backend.commitOffsets(input.groupId, accepted));
    return results.map((r) => (r.errorCode === ErrorCode.NONE ? { ...r, errorCode: stored } : r));
  }

  private validateCommit(group: Group | undefined, input: OffsetCommitInput): number {
    if (group?.is(GroupState.DEAD)) return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    const claimsMembership = input.generationId >= 0 || input.memberId !== '' || input.groupInstanceId !== null;
    if (!claimsMembership) {
      // A simple commit: only members may commit into a group that has members.
      return group === undefined || group.is(GroupState.EMPTY) ? ErrorCode.NONE : ErrorCode.UNKNOWN_MEMBER_ID;
    }
    // Membership in a group this coordinator does not know: a commit from an older generation.
    if (group === undefined) return input.generationId >= 0 ? ErrorCode.ILLEGAL_GENERATION : ErrorCode.UNKNOWN_MEMBER_ID;
    const memberError = this.validateCurrentMember(group, input.memberId, input.groupInstanceId);
    if (memberError !== ErrorCode.NONE) return memberError;
    if (input.generationId !== group.generationId) return ErrorCode.ILLEGAL_GENERATION;
    // The member has the new generation but not its assignment yet: it must not commit for the old one.
    if (group.is(GroupState.COMPLETING_REBALANCE)) return ErrorCode.REBALANCE_IN_PROGRESS;
    return ErrorCode.NONE;
  }

  private checkCommitEntry(o: OffsetCommitInput['offsets'][number]): number {
    if (o.metadata !== null && Buffer.byteLength(o.metadata, 'utf8') > this.config.offsetMetadataBytesMax) {
      return ErrorCode.OFFSET_METADATA_TOO_LARGE;
    }
    const topic = this.backend.topic(o.topic);
    if (topic === undefined || !topic.partitions.some((p) => p.partition === o.partition)) return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
    return ErrorCode.NONE;
  }

  /** OffsetFetch: the committed offsets (all of them when `partitions` is null); -1 where nothing is committed. */
  async fetchOffsets(groupId: string, partitions: TopicPartition[] | null): Promise<OffsetFetchOutput> {
    const err = this.groupError(groupId, true);
    if (err !== ErrorCode.NONE) return { errorCode: err, offsets: [] };
    const stored = await this.backend.fetchOffsets(groupId, partitions);
    if (partitions === null) return { errorCode: ErrorCode.NONE, offsets: stored.map((c) => fetched(c)) };
    const byKey = new Map(stored.map((c) => [partitionKey(c.topic, c.partition), c]));
    return {
      errorCode: ErrorCode.NONE,
      offsets: partitions.map((p) => {
        const c = byKey.get(partitionKey(p.topic, p.partition));
        if (c !== undefined) return fetched(c);
        return { topic: p.topic, partition: p.partition, offset: -1, leaderEpoch: -1, metadata: '', errorCode: ErrorCode.NONE };
      }),
    };
  }

  /**
   * OffsetDelete: removes committed offsets of a group with no members, or of topics that no member of a
   * consumer group subscribes to (GROUP_SUBSCRIBED_TO_TOPIC for the others).
   */
  async deleteOffsets(groupId: string, partitions: TopicPartition[]): Promise<OffsetDeleteOutput> {
    const err = this.groupError(groupId, false);
    if (err !== ErrorCode.NONE) return { errorCode: err, partitions: [] };
    const group = this.groups.get(groupId);
    let isSubscribed: (topic: string) => boolean;
    if (group === undefined || group.is(GroupState.DEAD)) {
      if (group !== undefined || !this.backend.offsetGroups().includes(groupId)) return { errorCode: ErrorCode.GROUP_ID_NOT_FOUND, partitions: [] };
      isSubscribed = () => false;
    } else if (group.is(GroupState.EMPTY)) {
      isSubscribed = () => false;
    } else if (group.protocolType === CONSUMER_PROTOCOL_TYPE) {
      isSubscribed = (topic) => group.isSubscribedToTopic(topic);
    } else {
      return { errorCode: ErrorCode.NON_EMPTY_GROUP, partitions: [] };
    }
    const results = partitions.map((p) => ({ topic: p.topic, partition: p.partition, errorCode: this.deletableError(p, isSubscribed) }));
    const eligible = results.filter((r) => r.errorCode === ErrorCode.NONE).map((r) => ({ topic: r.topic, partition: r.partition }));
    if (eligible.length === 0) return { errorCode: ErrorCode.NONE, partitions: results };
    const deleted = await this.settle(this.backend.deleteOffsets(groupId, eligible));
    return { errorCode: ErrorCode.NONE, partitions: results.map((r) => (r.errorCode === ErrorCode.NONE ? { ...r, errorCode: deleted } : r)) };
  }

  private deletableError(p: TopicPartition, isSubscribed: (topic: string) => boolean): number {
    const topic = this.backend.topic(p.topic);
    if (topic === undefined || !topic.partitions.some((x) => x.partition === p.partition)) return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
    return isSubscribed(p.topic) ? ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC : ErrorCode.NONE;
  }

  /** The error code of a backend write: NONE, or the KafkaError's code. Anything else is a bug and rethrown. */
  private async settle(work: Promise<void>): Promise<number> {
    try {
      await work;
      return ErrorCode.NONE;
    } catch (err) {
      if (err instanceof KafkaError) return err.code;
      throw err;
    }
  }

  // ---- admin --------------------------------------------------------------------------------------------

  /** DescribeGroups. An unknown group is reported Dead with no error (as Kafka does up to v5). */
  describeGroups(groupIds: string[]): GroupDescription[] {
    let offsetGroups: Set<string> | undefined;
    return groupIds.map((groupId) => {
      const err = this.groupError(groupId, true);
      if (err !== ErrorCode.NONE) return { errorCode: err, groupId, state: '', protocolType: '', protocolName: '', members: [] };
      const group = this.groups.get(groupId);
      if (group !== undefined) return describe(group);
      offsetGroups ??= new Set(this.backend.offsetGroups());
      const state = offsetGroups.has(groupId) ? GroupState.EMPTY : GroupState.DEAD;
      return { errorCode: ErrorCode.NONE, groupId, state, protocolType: '', protocolName: '', members: [] };
    });
  }

  /** ListGroups, optionally only groups in the given states (names compared case-insensitively). */
  listGroups(statesFilter: string[] = []): ListGroupsOutput {
    if (this.closed) return { errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, groups: [] };
    const status = this.status(null);
    if (status === 'unavailable') return { errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, groups: [] };
    // Another node coordinates: it lists the groups, this one has none.
    if (status === 'other') return { errorCode: ErrorCode.NONE, groups: [] };
    const listings: GroupListing[] = [];
    for (const g of this.groups.values()) {
      if (!g.is(GroupState.DEAD)) listings.push({ groupId: g.groupId, protocolType: g.protocolType ?? '', state: g.state });
    }
    for (const groupId of this.backend.offsetGroups()) {
      if (!this.groups.has(groupId)) listings.push({ groupId, protocolType: '', state: GroupState.EMPTY });
    }
    const wanted = new Set(statesFilter.map((s) => s.toLowerCase()));
    const groups = wanted.size === 0 ? listings : listings.filter((l) => wanted.has(l.state.toLowerCase()));
    return { errorCode: STATUS_ERROR[status], groups };
  }

  /** DeleteGroups: only groups without members (NON_EMPTY_GROUP otherwise); their committed offsets go too. */
  async deleteGroups(groupIds: string[]): Promise<{ groupId: string; errorCode: number }[]> {
    const results: { groupId: string; errorCode: number }[] = [];
    for (const groupId of new Set(groupIds)) results.push({ groupId, errorCode: await this.deleteGroup(groupId) });
    return results;
  }

  private async deleteGroup(groupId: string): Promise<number> {
    const err = this.groupError(groupId, true);
    if (err !== ErrorCode.NONE) return err;
    let group = this.groups.get(groupId);
    if (group === undefined) {
      if (!this.backend.offsetGroups().includes(groupId)) return ErrorCode.GROUP_ID_NOT_FOUND;
      // Held as Dead while the offsets go, so that a concurrent join or commit is refused meanwhile.
      group = this.createGroup(groupId);
    }
    if (group.is(GroupState.DEAD)) return ErrorCode.GROUP_ID_NOT_FOUND;
    if (!group.is(GroupState.EMPTY)) return ErrorCode.NON_EMPTY_GROUP;
    this.clearTimer(group, 'emptyTimer');
    for (const timer of group.pendingMembers.values()) this.scheduler.clearTimeout(timer);
    group.pendingMembers.clear();
    group.transitionTo(GroupState.DEAD);
    try {
      return await this.settle(this.deleteAllOffsets(groupId));
    } finally {
      if (this.groups.get(groupId) === group) this.groups.delete(groupId);
      this.log.info({ groupId }, 'group deleted');
    }
  }

  private async deleteAllOffsets(groupId: string): Promise<void> {
    const offsets = await this.backend.fetchOffsets(groupId, null);
    if (offsets.length > 0) await this.backend.deleteOffsets(groupId, offsets.map((o) => ({ topic: o.topic, partition: o.partition })));
  }
}

function fetched(c: CommittedOffset): OffsetFetchOutput['offsets'][number] {
  return { topic: c.topic, partition: c.partition, offset: c.offset, leaderEpoch: c.leaderEpoch, metadata: c.metadata, errorCode: ErrorCode.NONE };
}

function describe(group: Group): GroupDescription {
  const stable = group.is(GroupState.STABLE) && group.protocolName !== null;
  const protocolName = stable ? group.protocolName! : '';
  return {
    errorCode: ErrorCode.NONE,
    groupId: group.groupId,
    state: group.state,
    protocolType: group.protocolType ?? '',
    protocolName,
    members: [...group.members.values()].map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      clientId: m.clientId,
      clientHost: m.clientHost,
      metadata: stable ? m.metadataFor(protocolName) : EMPTY_BYTES,
      assignment: stable ? m.assignment : EMPTY_BYTES,
    })),
  };
}
