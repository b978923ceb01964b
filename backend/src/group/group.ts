// The state of one classic group: members, generation, chosen protocol and leader, and the rules that only
// look at that state (protocol selection, which transitions are legal). Timers and the request flow live in
// the coordinator; nothing here waits or reads the clock.
import type { TimerHandle } from './scheduler.ts';
import { CONSUMER_PROTOCOL_TYPE, decodeSubscriptionTopics } from './consumer-protocol.ts';
import { GroupState } from './types.ts';
import type { GroupProtocol, GroupStateName, JoinGroupMember, JoinGroupOutput, SyncGroupOutput } from './types.ts';

/** A pending JoinGroup or SyncGroup: resolved once, by the state machine or by cancellation. */
export class Waiter<T> {
  private settled = false;
  /** Undoes the abort listener; set by whoever attached one. */
  detach: (() => void) | null = null;
  private readonly settle: (value: T) => void;

  constructor(settle: (value: T) => void) {
    this.settle = settle;
  }

  get done(): boolean {
    return this.settled;
  }

  resolve(value: T): void {
    if (this.settled) return;
    this.settled = true;
    this.detach?.();
    this.detach = null;
    this.settle(value);
  }
}

export const EMPTY_BYTES: Buffer = Buffer.alloc(0);

export class Member {
  memberId: string;
  readonly groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  rebalanceTimeoutMs: number;
  sessionTimeoutMs: number;
  readonly protocolType: string;
  /** In preference order, names unique. */
  protocols: GroupProtocol[];
  /** What the leader assigned this member in the current generation (empty before the first sync). */
  assignment: Buffer = EMPTY_BYTES;
  /** Joined but never received a JoinGroup response: it cannot heartbeat yet (see groupNewMemberJoinTimeoutMs). */
  isNew = false;
  joinWaiter: Waiter<JoinGroupOutput> | null = null;
  syncWaiter: Waiter<SyncGroupOutput> | null = null;
  /** Session expiry (or, for a new member, the join timeout). */
  sessionTimer: TimerHandle | null = null;

  constructor(init: {
    memberId: string;
    groupInstanceId: string | null;
    clientId: string;
    clientHost: string;
    rebalanceTimeoutMs: number;
    sessionTimeoutMs: number;
    protocolType: string;
    protocols: GroupProtocol[];
  }) {
    this.memberId = init.memberId;
    this.groupInstanceId = init.groupInstanceId;
    this.clientId = init.clientId;
    this.clientHost = init.clientHost;
    this.rebalanceTimeoutMs = init.rebalanceTimeoutMs;
    this.sessionTimeoutMs = init.sessionTimeoutMs;
    this.protocolType = init.protocolType;
    this.protocols = init.protocols;
  }

  get isAwaitingJoin(): boolean {
    return this.joinWaiter !== null;
  }

  get isAwaitingSync(): boolean {
    return this.syncWaiter !== null;
  }

  get isStatic(): boolean {
    return this.groupInstanceId !== null;
  }

  metadataFor(protocolName: string): Buffer {
    const p = this.protocols.find((x) => x.name === protocolName);
    if (p === undefined) throw new Error(`member ${this.memberId} does not support protocol ${protocolName}`);
    return p.metadata;
  }

  /** The first of this member's protocols (its preference order) that is among the candidates. */
  vote(candidates: Set<string>): string {
    const p = this.protocols.find((x) => candidates.has(x.name));
    if (p === undefined) throw new Error(`member ${this.memberId} supports none of the candidate protocols`);
    return p.name;
  }
}

/** Which state may follow which (Kafka's GroupState valid previous states). */
const VALID_PREVIOUS: Record<GroupStateName, GroupStateName[]> = {
  [GroupState.EMPTY]: [GroupState.PREPARING_REBALANCE],
  [GroupState.PREPARING_REBALANCE]: [GroupState.STABLE, GroupState.COMPLETING_REBALANCE, GroupState.EMPTY],
  [GroupState.COMPLETING_REBALANCE]: [GroupState.PREPARING_REBALANCE],
  [GroupState.STABLE]: [GroupState.COMPLETING_REBALANCE],
  [GroupState.DEAD]: [GroupState.STABLE, GroupState.PREPARING_REBALANCE, GroupState.COMPLETING_REBALANCE, GroupState.EMPTY, GroupState.DEAD],
};

/** Returns protocols with duplicate names dropped (the first one wins): names are keys on the wire. */
export function uniqueProtocols(protocols: GroupProtocol[]): GroupProtocol[] {
  const seen = new Set<string>();
  return protocols.filter((p) => !seen.has(p.name) && seen.add(p.name) !== undefined);
}

export class Group {
  readonly groupId: string;
  state: GroupStateName = GroupState.EMPTY;
  /** Incremented every time a rebalance completes (also when it ends with no members). */
  generationId = 0;
  /** Set by the first member of an empty group; kept while empty (ListGroups reports it). */
  protocolType: string | null = null;
  /** The protocol chosen for the current generation; null when the generation has no members. */
  protocolName: string | null = null;
  leaderId: string | null = null;
  /** In join order: the first one becomes leader when the leader goes. */
  readonly members = new Map<string, Member>();
  /** group.instance.id -> the member id currently holding it. */
  readonly staticMembers = new Map<string, string>();
  /** Member ids handed out with MEMBER_ID_REQUIRED, not joined yet -> their expiry timer. */
  readonly pendingMembers = new Map<string, TimerHandle>();
  /** Members of the current generation that have not sent SyncGroup yet. */
  readonly pendingSyncMembers = new Set<string>();
  /** Protocol name -> how many members support it. */
  private readonly supportedProtocols = new Map<string, number>();
  /** Members whose JoinGroup is waiting for the rebalance to complete. Invariant: counts members with joinWaiter. */
  numAwaitingJoin = 0;
  /** During the initial rebalance delay: whether someone joined since the last delay started. */
  newMemberAdded = false;
  /** Topics the members of the current generation subscribe to (consumer groups); null when unknown. */
  subscribedTopics: Set<string> | null = null;

  // Timers, owned by the coordinator.
  /** Completes the PreparingRebalance phase (rebalance timeout, or the initial delay). */
  joinTimer: TimerHandle | null = null;
  /** Whether the running join timer is an initial delay (a new group), and how much more it may be extended. */
  initialDelayRemainingMs: number | null = null;
  /** Removes members that did not send SyncGroup in time. */
  syncTimer: TimerHandle | null = null;
  /** Forgets an Empty group. */
  emptyTimer: TimerHandle | null = null;

  constructor(groupId: string) {
    this.groupId = groupId;
  }

  is(state: GroupStateName): boolean {
    return this.state === state;
  }

  transitionTo(next: GroupStateName): void {
    if (!VALID_PREVIOUS[next].includes(this.state)) {
      throw new Error(`group ${this.groupId}: illegal transition ${this.state} -> ${next}`);
    }
    this.state = next;
  }

  /** Empty, Stable and CompletingRebalance groups can start a rebalance; one already preparing cannot. */
  canRebalance(): boolean {
    return VALID_PREVIOUS[GroupState.PREPARING_REBALANCE].includes(this.state);
  }

  get size(): number {
    return this.members.size;
  }

  has(memberId: string): boolean {
    return this.members.has(memberId);
  }

  get(memberId: string): Member {
    const m = this.members.get(memberId);
    if (m === undefined) throw new Error(`group ${this.groupId} has no member ${memberId}`);
    return m;
  }

  isLeader(memberId: string): boolean {
    return this.leaderId === memberId;
  }

  /** The member id holding a group.instance.id, if any. */
  staticMemberId(groupInstanceId: string): string | undefined {
    return this.staticMembers.get(groupInstanceId);
  }

  /** Whether a request naming (instance id, member id) comes from a member that was replaced. */
  isStaticMemberFenced(groupInstanceId: string | null, memberId: string): boolean {
    if (groupInstanceId === null) return false;
    const current = this.staticMembers.get(groupInstanceId);
    return current !== undefined && current !== memberId;
  }

  add(member: Member, waiter: Waiter<JoinGroupOutput> | null): void {
    if (this.members.size === 0) this.protocolType = member.protocolType;
    this.members.set(member.memberId, member);
    this.countProtocols(member.protocols, 1);
    if (this.leaderId === null) this.leaderId = member.memberId;
    if (member.groupInstanceId !== null) this.staticMembers.set(member.groupInstanceId, member.memberId);
    this.pendingMembers.delete(member.memberId);
    this.setJoinWaiter(member, waiter);
  }

  remove(memberId: string): Member | undefined {
    const member = this.members.get(memberId);
    if (member === undefined) return undefined;
    this.members.delete(memberId);
    this.countProtocols(member.protocols, -1);
    this.setJoinWaiter(member, null);
    if (member.groupInstanceId !== null && this.staticMembers.get(member.groupInstanceId) === memberId) {
      this.staticMembers.delete(member.groupInstanceId);
    }
    if (this.leaderId === memberId) this.leaderId = this.members.keys().next().value ?? null;
    this.pendingSyncMembers.delete(memberId);
    return member;
  }

  /** Moves a static member to a new member id (KIP-345), keeping its assignment and leadership. */
  replaceStaticMember(groupInstanceId: string, oldMemberId: string, newMemberId: string): Member {
    const member = this.get(oldMemberId);
    this.members.delete(oldMemberId);
    member.memberId = newMemberId;
    this.members.set(newMemberId, member);
    if (this.leaderId === oldMemberId) this.leaderId = newMemberId;
    this.staticMembers.set(groupInstanceId, newMemberId);
    if (this.pendingSyncMembers.delete(oldMemberId)) this.pendingSyncMembers.add(newMemberId);
    return member;
  }

  updateProtocols(member: Member, protocols: GroupProtocol[]): void {
    this.countProtocols(member.protocols, -1);
    member.protocols = protocols;
    this.countProtocols(protocols, 1);
  }

  /** Sets or clears the member's pending JoinGroup, keeping numAwaitingJoin in step. */
  setJoinWaiter(member: Member, waiter: Waiter<JoinGroupOutput> | null): void {
    if (member.joinWaiter !== null) this.numAwaitingJoin--;
    member.joinWaiter = waiter;
    if (waiter !== null) this.numAwaitingJoin++;
  }

  /** Answers the member's pending JoinGroup, if it has one. */
  completeJoin(member: Member, result: JoinGroupOutput): boolean {
    const waiter = member.joinWaiter;
    if (waiter === null) return false;
    this.setJoinWaiter(member, null);
    waiter.resolve(result);
    return true;
  }

  /** Answers the member's pending SyncGroup, if it has one. */
  completeSync(member: Member, result: SyncGroupOutput): boolean {
    const waiter = member.syncWaiter;
    if (waiter === null) return false;
    member.syncWaiter = null;
    waiter.resolve(result);
    return true;
  }

  /** Every member has rejoined and no handed-out member id is still expected. */
  hasAllMembersJoined(): boolean {
    return this.members.size === this.numAwaitingJoin && this.pendingMembers.size === 0;
  }

  /** The largest rebalance timeout of the members: how long a rebalance waits for them. */
  rebalanceTimeoutMs(): number {
    let max = 0;
    for (const m of this.members.values()) max = Math.max(max, m.rebalanceTimeoutMs);
    return max;
  }

  /**
   * Whether a joining member's protocols fit the group: an empty group takes any non-empty set; otherwise the
   * protocol type must match and at least one protocol must be supported by every current member.
   */
  supportsProtocols(protocolType: string, protocols: GroupProtocol[]): boolean {
    if (this.members.size === 0) return protocolType.length > 0 && protocols.length > 0;
    return this.protocolType === protocolType && protocols.some((p) => this.supportedProtocols.get(p.name) === this.members.size);
  }

  /** The protocol every member supports that most members prefer; ties go to the leader's preference. */
  selectProtocol(): string {
    const candidates = new Set<string>();
    for (const [name, count] of this.supportedProtocols) if (count === this.members.size) candidates.add(name);
    const votes = new Map<string, number>();
    for (const m of this.members.values()) {
      const choice = m.vote(candidates);
      votes.set(choice, (votes.get(choice) ?? 0) + 1);
    }
    const leader = this.leaderId === null ? undefined : this.members.get(this.leaderId);
    const order = leader?.protocols.map((p) => p.name) ?? [...candidates];
    let best: string | undefined;
    for (const name of order) {
      const n = votes.get(name) ?? 0;
      if (n > 0 && (best === undefined || n > (votes.get(best) ?? 0))) best = name;
    }
    if (best === undefined) throw new Error(`group ${this.groupId}: no protocol to select`);
    return best;
  }

  /**
   * Keeps the leader if it rejoined, else makes the first rejoined member leader. False when nobody rejoined
   * (only static members that did not rejoin are left): the rebalance cannot complete yet.
   */
  electJoinedLeader(): boolean {
    if (this.leaderId === null) return false;
    if (this.get(this.leaderId).isAwaitingJoin) return true;
    for (const m of this.members.values()) {
      if (m.isAwaitingJoin) {
        this.leaderId = m.memberId;
        return true;
      }
    }
    return false;
  }

  /** Starts the next generation: CompletingRebalance with the chosen protocol, or Empty without members. */
  initNextGeneration(): void {
    this.generationId++;
    if (this.members.size > 0) {
      this.protocolName = this.selectProtocol();
      this.transitionTo(GroupState.COMPLETING_REBALANCE);
    } else {
      this.protocolName = null;
      this.transitionTo(GroupState.EMPTY);
    }
    this.subscribedTopics = this.computeSubscribedTopics();
    this.pendingSyncMembers.clear();
  }

  /** What the leader gets in its JoinGroup response: each member with its metadata for the chosen protocol. */
  memberMetadata(): JoinGroupMember[] {
    const protocol = this.protocolName;
    if (protocol === null) return [];
    return [...this.members.values()].map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      metadata: m.metadataFor(protocol),
    }));
  }

  /** Consumer groups: whether some member of the current generation subscribes to the topic. */
  isSubscribedToTopic(topic: string): boolean {
    return this.subscribedTopics?.has(topic) ?? false;
  }

  private computeSubscribedTopics(): Set<string> | null {
    if (this.protocolType !== CONSUMER_PROTOCOL_TYPE) return null;
    if (this.protocolName === null) return new Set();
    const topics = new Set<string>();
    for (const m of this.members.values()) {
      const decoded = decodeSubscriptionTopics(m.metadataFor(this.protocolName));
      // Like Kafka: an unreadable subscription makes the topics unknown rather than failing the rebalance.
      if (decoded === null) return null;
      for (const t of decoded) topics.add(t);
    }
    return topics;
  }

  private countProtocols(protocols: GroupProtocol[], delta: number): void {
    for (const p of protocols) {
      const n = (this.supportedProtocols.get(p.name) ?? 0) + delta;
      if (n === 0) this.supportedProtocols.delete(p.name);
      else this.supportedProtocols.set(p.name, n);
    }
  }
}
