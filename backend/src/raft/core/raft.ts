// The Raft protocol as a deterministic state machine (Ongaro & Ousterhout 2014, and Ongaro's thesis).
//
// Inputs: tick() (time), step(message) (the network and local requests). Outputs, collected for the next
// Ready: messages to send (msgs), read states, and changes to the log and hard state. No I/O, clock or
// randomness of its own: Config.random is the only source of randomness.
//
// A node's role is a pair of swapped functions: stepRole (stepFollower / stepCandidate / stepLeader) for
// messages and tickRole (tickElection / tickHeartbeat) for time. Term handling common to all roles is in
// step() before the role's function runs.

import { applyChange, decodeConfChange, encodeConfChange, isLeaveJoint, restoreMembership } from './confchange.ts';
import type { MembershipAndProgress } from './confchange.ts';
import { resolveConfig } from './config.ts';
import type { Config, ResolvedConfig } from './config.ts';
import {
  CompactedError,
  ConfChangeError,
  ProposalDroppedError,
  RaftConfigError,
  ReadIndexDroppedError,
  SnapshotTemporarilyUnavailableError,
  assert,
} from './errors.ts';
import { Inflights } from './inflights.ts';
import { RaftLog } from './log.ts';
import { Progress } from './progress.ts';
import { ReadOnly } from './readonly.ts';
import { ProgressTracker, isJoint } from './tracker.ts';
import { EntryType, MessageType, NONE, Role } from './types.ts';
import type { ConfChange, ConfState, Entry, HardState, Message, NodeId, ReadState, Snapshot, SoftState } from './types.ts';
import { bytesEqual, entrySizeBytes, newMessage, payloadSizeBytes, voteResponseType } from './util.ts';

/** Marks a Vote sent because of TimeoutNow (leader transfer): voters skip the lease check for it. */
export const CAMPAIGN_TRANSFER_CONTEXT = Uint8Array.of(0x74, 0x72, 0x61, 0x6e, 0x73, 0x66, 0x65, 0x72); // "transfer"

export type CampaignType = 'pre-election' | 'election' | 'transfer';

type StepFn = (r: Raft, m: Message) => void;
type TickFn = (r: Raft) => void;

/** An entry as proposed: the leader stamps index and term when it appends. */
interface ProposedEntry {
  type: EntryType;
  data: Uint8Array;
}

export class Raft {
  readonly id: NodeId;
  readonly cfg: ResolvedConfig;
  readonly log: RaftLog;
  readonly trk: ProgressTracker;

  // Hard state (persisted through Ready.hardState): term, vote, and log.committed.
  term = 0;
  /** Whom this node voted for in `term` (NONE = nobody yet). At most one vote per term: the election rule. */
  vote: NodeId = NONE;

  // Soft state.
  role: Role = Role.Follower;
  /** Leader of `term` as far as this node knows (NONE = unknown). */
  lead: NodeId = NONE;
  isLearner = false;

  /** Messages for the next Ready. They may depend on unpersisted state: the driver persists before sending. */
  msgs: Message[] = [];
  /** Reads confirmed for the next Ready. */
  readStates: ReadState[] = [];

  /** Leader: the node leadership is being handed to (NONE = no transfer); proposals are refused meanwhile. */
  leadTransferee: NodeId = NONE;
  /**
   * Leader: index of the last ConfChange entry this leader appended (or its last index when it took over,
   * since its log may hold unapplied changes). A new ConfChange is refused until it has been applied.
   */
  pendingConfIndex = 0;
  /** Leader: payload bytes of entries appended in this term and not yet applied. */
  uncommittedSize = 0;
  readOnly = new ReadOnly();
  /**
   * Leader: proposals were appended since the last broadcast. Appends go out once per Ready (flushAppends),
   * so that proposals made between two Readies travel to each follower in one App message.
   */
  appendsPending = false;
  /** Leader: reads that arrived before it committed an entry of its term (§6.4 step 1); queued until then. */
  pendingReadIndexMessages: Message[] = [];

  /** Ticks since the last reset: leaders count towards CheckQuorum, others towards the election timeout. */
  electionElapsed = 0;
  /** Leader: ticks since the last heartbeat. */
  heartbeatElapsed = 0;
  /** In [electionTick, 2 * electionTick), drawn from cfg.random at each reset (§5.2 randomized timeouts). */
  randomizedElectionTimeout = 0;

  stepRole: StepFn = stepFollower;
  tickRole: TickFn = tickElection;

  constructor(config: Config) {
    this.cfg = resolveConfig(config);
    this.id = this.cfg.id;
    this.log = new RaftLog(this.cfg.storage, this.cfg.maxCommittedSizePerReady);
    this.trk = new ProgressTracker({ maxInflightMsgs: this.cfg.maxInflightMsgs, maxInflightBytes: this.cfg.maxInflightBytes });
    const { hardState, confState } = this.cfg.storage.initialState();
    this.switchToConfig(restoreMembership(confState, this.changeContext()));
    this.loadHardState(hardState);
    const applied = Math.max(this.cfg.applied, this.log.applied);
    if (applied > this.log.committed) {
      throw new RaftConfigError(`applied ${applied} is beyond the persisted commit index ${this.log.committed}`);
    }
    this.log.applied = applied;
    this.becomeFollower(this.term, NONE);
  }

  private loadHardState(hs: HardState): void {
    // A crash between writing a snapshot and the hard state can leave the commit index behind the snapshot.
    const commit = Math.max(hs.commit, this.log.committed);
    assert(commit <= this.log.lastIndex(), () =>
      `persisted commit ${hs.commit} is beyond the last persisted index ${this.log.lastIndex()}: entries were lost`,
    );
    this.log.committed = commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  softState(): SoftState {
    return { leader: this.lead, role: this.role };
  }

  changeContext(): { lastIndex: number; limits: ProgressTracker['limits'] } {
    return { lastIndex: this.log.lastIndex(), limits: this.trk.limits };
  }

  // ---- Roles ----------------------------------------------------------------------------------------

  becomeFollower(term: number, lead: NodeId): void {
    this.stepRole = stepFollower;
    this.tickRole = tickElection;
    this.reset(term);
    this.lead = lead;
    this.role = Role.Follower;
  }

  becomeCandidate(): void {
    assert(this.role !== Role.Leader, 'leader cannot become candidate directly');
    this.stepRole = stepCandidate;
    this.tickRole = tickElection;
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = Role.Candidate;
  }

  /** A pre-candidate asks for votes for term + 1 without changing its own term or vote (thesis §9.6). */
  becomePreCandidate(): void {
    assert(this.role !== Role.Leader, 'leader cannot become pre-candidate');
    this.stepRole = stepCandidate;
    this.tickRole = tickElection;
    this.trk.resetVotes();
    this.lead = NONE;
    this.role = Role.PreCandidate;
  }

  becomeLeader(): void {
    assert(this.role !== Role.Follower, 'follower cannot become leader directly');
    this.stepRole = stepLeader;
    this.tickRole = tickHeartbeat;
    this.reset(this.term);
    this.lead = this.id;
    this.role = Role.Leader;
    const self = this.trk.progress.get(this.id)!;
    self.becomeReplicate();
    self.recentActive = true;
    // The log may hold ConfChange entries of earlier terms that are not applied yet: no new change until
    // they are (one change in flight at a time).
    this.pendingConfIndex = this.log.lastIndex();
    // §5.4.2: a leader only commits entries of its term by counting; the empty entry gives it one at once.
    this.appendEntry([{ type: EntryType.Normal, data: new Uint8Array(0) }], true);
  }

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.trk.resetVotes();
    const lastIndex = this.log.lastIndex();
    for (const id of this.trk.memberIds()) {
      const old = this.trk.progress.get(id)!;
      const pr = new Progress(0, lastIndex + 1, new Inflights(this.cfg.maxInflightMsgs, this.cfg.maxInflightBytes), old.isLearner);
      if (id === this.id) pr.match = lastIndex;
      this.trk.progress.set(id, pr);
    }
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.appendsPending = false;
    this.readOnly = new ReadOnly();
    // Reads waiting for this node's leadership are lost with it; their clients retry.
    this.pendingReadIndexMessages = [];
  }

  private resetRandomizedElectionTimeout(): void {
    const x = this.cfg.random();
    assert(x >= 0 && x < 1, () => `config.random() returned ${x}, outside [0, 1)`);
    this.randomizedElectionTimeout = this.cfg.electionTick + Math.floor(x * this.cfg.electionTick);
  }

  pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  /** Whether this node may campaign: a voter of its configuration, not waiting for a snapshot to persist. */
  promotable(): boolean {
    const pr = this.trk.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && !this.log.hasPendingSnapshot();
  }

  tick(): void {
    this.tickRole(this);
  }

  // ---- Messages -------------------------------------------------------------------------------------

  /**
   * Queue a message for the next Ready. `from` defaults to this node; the term is this node's, except for
   * vote traffic (which carries the campaign's term) and forwarded Prop/ReadIndex (term 0: they are local
   * requests relayed to the leader, not part of any term).
   */
  send(fields: Partial<Message> & Pick<Message, 'type' | 'to'>): void {
    const m = newMessage(fields);
    if (m.from === NONE) m.from = this.id;
    const t = m.type;
    if (t === MessageType.Vote || t === MessageType.VoteResp || t === MessageType.PreVote || t === MessageType.PreVoteResp) {
      assert(m.term !== 0, () => `${MessageType[t]} must carry a term`);
    } else if (t === MessageType.Prop || t === MessageType.ReadIndex) {
      m.term = 0;
    } else {
      m.term = this.term;
    }
    this.msgs.push(m);
  }

  step(m: Message): void {
    if (m.term > this.term) {
      if (!this.stepHigherTerm(m)) return;
    } else if (m.term !== 0 && m.term < this.term) {
      this.stepLowerTerm(m);
      return;
    }
    switch (m.type) {
      case MessageType.Hup:
        this.hup(this.cfg.preVote ? 'pre-election' : 'election');
        return;
      case MessageType.Vote:
      case MessageType.PreVote:
        this.handleVoteRequest(m);
        return;
      default:
        this.stepRole(this, m);
    }
  }

  /** A message from a later term. Returns false when it must be ignored. */
  private stepHigherTerm(m: Message): boolean {
    if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
      const force = bytesEqual(m.context, CAMPAIGN_TRANSFER_CONTEXT);
      const heardFromLeader = this.lead !== NONE && this.electionElapsed < this.cfg.electionTick;
      // A node that heard from a live leader within the minimum election timeout ignores the request, so a
      // node rejoining from a partition cannot depose a healthy leader. For votes this is the lease of
      // CheckQuorum (thesis §4.2.3); a pre-vote is never granted while a leader is alive (thesis §9.6).
      const inLease = heardFromLeader && (this.cfg.checkQuorum || m.type === MessageType.PreVote);
      if (!force && inLease) return false;
    }
    if (m.type === MessageType.PreVote) {
      // A pre-vote is for a term the candidate does not have yet: no term change here.
      return true;
    }
    if (m.type === MessageType.PreVoteResp && !m.reject) {
      // Granted pre-votes carry the future term; the pre-candidate moves to it when it wins the pre-vote.
      return true;
    }
    const isLeaderMessage = m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap;
    this.becomeFollower(m.term, isLeaderMessage ? m.from : NONE);
    return true;
  }

  private stepLowerTerm(m: Message): void {
    if ((this.cfg.checkQuorum || this.cfg.preVote) && (m.type === MessageType.Heartbeat || m.type === MessageType.App)) {
      // A stale leader is talking to us. With CheckQuorum or PreVote this node's higher term may come from a
      // partition during which it could not disrupt anyone; without this answer, the stale leader (whose
      // followers ignore our pre-votes) would keep the cluster stuck. The answer carries our term and
      // deposes it.
      this.send({ type: MessageType.AppResp, to: m.from });
    } else if (m.type === MessageType.PreVote) {
      // Tell the pre-candidate our term so it can catch up instead of retrying forever.
      this.send({ type: MessageType.PreVoteResp, to: m.from, term: this.term, reject: true });
    }
    // Anything else from an earlier term is stale: ignore it.
  }

  private handleVoteRequest(m: Message): void {
    const canVote =
      // A repeated request from the node we voted for (our answer may have been lost).
      this.vote === m.from ||
      // Not voted in this term and no leader known for it.
      (this.vote === NONE && this.lead === NONE) ||
      // A pre-vote for a later term binds nothing.
      (m.type === MessageType.PreVote && m.term > this.term);
    const respType = voteResponseType(m.type);
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      // Granted answers carry the request's term: for a pre-vote that is the term the candidate will use.
      this.send({ type: respType, to: m.from, term: m.term });
      if (m.type === MessageType.Vote) {
        // Only a real vote is recorded (persisted in the hard state before the answer leaves: see Ready).
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: respType, to: m.from, term: this.term, reject: true });
    }
  }

  // ---- Elections ------------------------------------------------------------------------------------

  hup(type: CampaignType): void {
    if (this.role === Role.Leader) return;
    if (!this.promotable()) return;
    // A committed but unapplied ConfChange may remove this node or change the quorum: wait until applied.
    if (this.hasUnappliedConfChanges()) return;
    this.campaign(type);
  }

  private hasUnappliedConfChanges(): boolean {
    let lo = Math.max(this.log.applied + 1, this.log.firstIndex());
    const hi = this.log.committed + 1;
    while (lo < hi) {
      const page = this.log.slice(lo, hi, this.cfg.maxSizePerMsg);
      for (const e of page) if (e.type === EntryType.ConfChange) return true;
      lo += page.length;
    }
    return false;
  }

  campaign(type: CampaignType): void {
    let voteType: MessageType;
    let term: number;
    if (type === 'pre-election') {
      this.becomePreCandidate();
      voteType = MessageType.PreVote;
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteType = MessageType.Vote;
      term = this.term;
    }
    // Our own vote. In a single-voter configuration it decides the election at once.
    this.trk.recordVote(this.id, true);
    if (this.trk.tallyVotes().result === 'won') {
      if (type === 'pre-election') this.campaign('election');
      else this.becomeLeader();
      return;
    }
    const context = type === 'transfer' ? CAMPAIGN_TRANSFER_CONTEXT : undefined;
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.trk.voterIds()) {
      if (id === this.id) continue;
      this.send({ type: voteType, to: id, term, index: lastIndex, logTerm: lastTerm, ...(context ? { context } : {}) });
    }
  }

  // ---- Leader: appending and replicating ----------------------------------------------------------

  /**
   * Append entries of this term to the leader's log. Returns false (appending nothing) when they would pass
   * maxUncommittedEntriesSize; `force` skips that limit for entries the core itself must append.
   */
  appendEntry(proposed: readonly ProposedEntry[], force = false): boolean {
    const li = this.log.lastIndex();
    const entries: Entry[] = proposed.map((e, i) => ({ index: li + 1 + i, term: this.term, type: e.type, data: e.data }));
    const size = payloadSizeBytes(entries);
    const limit = this.cfg.maxUncommittedEntriesSize;
    // A proposal alone larger than the limit passes when nothing is uncommitted, so it can progress at all.
    if (!force && limit > 0 && this.uncommittedSize > 0 && size > 0 && this.uncommittedSize + size > limit) return false;
    this.uncommittedSize += size;
    const last = this.log.append(entries);
    // The leader counts its own log in the quorum. Safe because nothing derived from it (commit index,
    // messages, applying) is visible before the driver has persisted these entries: see Ready.
    this.trk.progress.get(this.id)!.maybeUpdate(last);
    this.maybeCommit();
    return true;
  }

  reduceUncommittedSize(entries: readonly Entry[]): void {
    if (this.uncommittedSize === 0) return;
    this.uncommittedSize = Math.max(0, this.uncommittedSize - payloadSizeBytes(entries));
  }

  /** Advance the commit index to what a quorum stores, if that entry is of this term (§5.4.2). */
  maybeCommit(): boolean {
    return this.log.maybeCommit(this.trk.committed(), this.term);
  }

  /** Send the entries proposals appended since the last Ready (batched: one App per follower). */
  flushAppends(): void {
    if (!this.appendsPending) return;
    this.appendsPending = false;
    if (this.role === Role.Leader) this.bcastAppend();
  }

  /** Send every follower what it lacks: at least one App (for the commit index), then fill its window. */
  bcastAppend(): void {
    for (const id of this.trk.memberIds()) {
      if (id === this.id) continue;
      this.sendAppend(id);
      while (this.maybeSendAppend(id, false)) {
        // each call sends one size-limited App until the window is full or nothing is left
      }
    }
  }

  sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /**
   * Send the follower the entries it needs next (a snapshot if they were compacted). With sendIfEmpty
   * false nothing is sent when there are no new entries. Returns whether a message was sent.
   */
  maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    // Followers only acknowledge entries of the leader's log, which the leader never truncates.
    assert(pr.next <= this.log.lastIndex() + 1, () => `progress of ${to}: next ${pr.next} beyond ${this.log.lastIndex()}`);
    const prevIndex = pr.next - 1;
    let prevTerm: number;
    let entries: Entry[];
    try {
      prevTerm = this.log.term(prevIndex);
      entries = this.log.entriesFrom(pr.next, this.appendBudgetBytes(pr));
    } catch (err) {
      if (err instanceof CompactedError) return this.maybeSendSnapshot(to, pr);
      throw err;
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    let bytes = 0;
    for (const e of entries) bytes += entrySizeBytes(e);
    this.send({ type: MessageType.App, to, index: prevIndex, logTerm: prevTerm, entries, commit: this.log.committed });
    const lastIndex = entries.length > 0 ? entries[entries.length - 1]!.index : prevIndex;
    pr.sentEntries(entries.length, lastIndex, bytes);
    return true;
  }

  /** Bytes the next App to `pr` may carry: maxSizePerMsg, and no more than the inflight byte budget left. */
  private appendBudgetBytes(pr: Progress): number {
    if (this.cfg.maxInflightBytes === 0) return this.cfg.maxSizePerMsg;
    return Math.min(this.cfg.maxSizePerMsg, Math.max(0, this.cfg.maxInflightBytes - pr.inflights.bytes()));
  }

  /**
   * A follower has nothing matching our log, not even its first entry. It may be a node joining the cluster,
   * which has no configuration yet and cannot rebuild one by replaying the log (a cluster bootstrapped with
   * a configuration in storage, MemoryStorage(conf), does not have it in the log). So it starts from our
   * snapshot: a real one, or the bootstrap snapshot (index 0, empty data, the initial configuration) while
   * nothing was snapshotted. Only when neither carries a configuration do entries from index 1 go out.
   * Returns whether a message was sent (nothing is sent while the snapshot is temporarily unavailable).
   */
  sendBaseToEmptyFollower(to: NodeId, pr: Progress): boolean {
    let snap: Snapshot;
    try {
      snap = this.log.snapshot();
    } catch (err) {
      if (err instanceof SnapshotTemporarilyUnavailableError) return false;
      throw err;
    }
    const { index, conf } = snap.metadata;
    if (index === 0 && conf.voters.length + conf.learners.length === 0) return this.maybeSendAppend(to, true);
    this.send({ type: MessageType.Snap, to, snapshot: snap });
    pr.becomeSnapshot(index);
    return true;
  }

  private maybeSendSnapshot(to: NodeId, pr: Progress): boolean {
    // A snapshot is large: only send it to a follower known to be reachable.
    if (!pr.recentActive) return false;
    let snap: Snapshot;
    try {
      snap = this.log.snapshot();
    } catch (err) {
      if (err instanceof SnapshotTemporarilyUnavailableError) return false;
      throw err;
    }
    assert(snap.metadata.index > 0, 'entries are compacted but the snapshot is empty');
    this.send({ type: MessageType.Snap, to, snapshot: snap });
    pr.becomeSnapshot(snap.metadata.index);
    return true;
  }

  bcastHeartbeat(context?: Uint8Array): void {
    const ctx = context ?? this.readOnly.lastPendingContext();
    for (const id of this.trk.memberIds()) {
      if (id === this.id) continue;
      const pr = this.trk.progress.get(id)!;
      // Never tell a follower to commit beyond what it is known to hold.
      const commit = Math.min(pr.match, this.log.committed);
      this.send({ type: MessageType.Heartbeat, to: id, commit, ...(ctx ? { context: ctx } : {}) });
    }
  }

  // ---- Follower: taking entries -----------------------------------------------------------------------

  handleAppendEntries(m: Message): void {
    if (this.trk.memberIds().length === 0) {
      // No configuration: a node joining the cluster. Entries would be applied on top of nothing (a wrong
      // membership), so it refuses them all until a snapshot gives it a base (sendBaseToEmptyFollower).
      this.send({ type: MessageType.AppResp, to: m.from, index: m.index, reject: true, rejectHint: 0, logTerm: 0 });
      return;
    }
    if (m.index < this.log.committed) {
      // Already committed here (a duplicate or delayed App): tell the leader how far we are.
      this.send({ type: MessageType.AppResp, to: m.from, index: this.log.committed });
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.send({ type: MessageType.AppResp, to: m.from, index: lastNew });
      return;
    }
    // Rejected: our log has no entry (m.index, m.logTerm). Give the leader a hint so it can skip whole
    // terms instead of probing one index per round trip: the last index that may match and its term.
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send({
      type: MessageType.AppResp,
      to: m.from,
      index: m.index,
      reject: true,
      rejectHint: hint.index,
      logTerm: hint.term,
    });
  }

  handleHeartbeat(m: Message): void {
    this.log.commitTo(m.commit);
    this.send({ type: MessageType.HeartbeatResp, to: m.from, ...(m.context ? { context: m.context } : {}) });
  }

  handleSnapshot(m: Message): void {
    if (m.snapshot === undefined) return;
    if (this.restore(m.snapshot)) {
      this.send({ type: MessageType.AppResp, to: m.from, index: this.log.lastIndex() });
    } else {
      this.send({ type: MessageType.AppResp, to: m.from, index: this.log.committed });
    }
  }

  /** Take a leader's snapshot as our log. Returns false when it is not newer than what we have. */
  restore(snap: Snapshot): boolean {
    const { index, term, conf } = snap.metadata;
    if (index === 0) return this.restoreBootstrap(snap);
    if (index <= this.log.committed) return false;
    assert(this.role === Role.Follower, 'only a follower restores a snapshot');
    // A configuration without this node: taking it would make us a member of a cluster that excludes us.
    // Unless we have no configuration at all: a joining node takes any base; the change adding it follows.
    const member = [...conf.voters, ...conf.learners, ...conf.votersOutgoing].includes(this.id);
    if (!member && this.trk.memberIds().length > 0) return false;
    if (this.log.matchTerm(index, term)) {
      // Our log already has the snapshot's last entry, hence (Log Matching) everything before it.
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(snap);
    this.switchToConfig(restoreMembership(conf, this.changeContext()));
    return true;
  }

  /**
   * Take the bootstrap snapshot (see sendBaseToEmptyFollower): only a node with no configuration and an
   * empty log (one joining the cluster) needs it. It does not contain this node; the ConfChange entries that
   * added it come later in the log.
   */
  private restoreBootstrap(snap: Snapshot): boolean {
    if (this.trk.memberIds().length > 0 || this.log.lastIndex() !== 0 || this.log.hasPendingSnapshot()) return false;
    assert(this.role === Role.Follower, 'only a follower restores a snapshot');
    this.log.restore(snap);
    this.switchToConfig(restoreMembership(snap.metadata.conf, this.changeContext()));
    return true;
  }

  // ---- Membership -------------------------------------------------------------------------------------

  /** Whether the leader may append `cc` now (one change in flight; joint configurations entered once). */
  confChangeAllowed(cc: ConfChange): boolean {
    if (this.pendingConfIndex > this.log.applied) return false;
    const joint = isJoint(this.trk.membership);
    const leave = isLeaveJoint(cc);
    if (joint !== leave) return false;
    try {
      applyChange(this.currentConfig(), cc, this.changeContext());
      return true;
    } catch (err) {
      if (err instanceof ConfChangeError) return false;
      throw err;
    }
  }

  currentConfig(): MembershipAndProgress {
    return { membership: this.trk.membership, progress: this.trk.progress };
  }

  /** The driver applied a ConfChange entry: switch to the configuration it describes. */
  applyConfChange(cc: ConfChange): ConfState {
    return this.switchToConfig(applyChange(this.currentConfig(), cc, this.changeContext()));
  }

  switchToConfig(next: MembershipAndProgress): ConfState {
    this.trk.setConfig(next.membership, next.progress);
    const cs = this.trk.confState();
    const self = this.trk.progress.get(this.id);
    this.isLearner = self?.isLearner ?? false;
    if ((self === undefined || self.isLearner) && this.role === Role.Leader) {
      // Removed or demoted: a leader outside the voters would keep the others from electing a real one.
      this.becomeFollower(this.term, NONE);
      return cs;
    }
    if (this.role !== Role.Leader || cs.voters.length === 0) return cs;
    // The quorum changed: something may be committed now. New members need to be probed.
    if (this.maybeCommit()) {
      this.bcastAppend();
    } else {
      for (const id of this.trk.memberIds()) if (id !== this.id) this.maybeSendAppend(id, false);
    }
    if (this.leadTransferee !== NONE && !this.trk.isVoter(this.leadTransferee)) this.abortLeaderTransfer();
    return cs;
  }

  // ---- Reads, transfer ----------------------------------------------------------------------------------

  committedEntryInCurrentTerm(): boolean {
    return this.log.termOrZero(this.log.committed) === this.term;
  }

  /** Answer a confirmed read: locally as a ReadState, or to the follower that forwarded it. */
  respondToReadIndex(request: Message, index: number): void {
    const context = request.context ?? new Uint8Array(0);
    if (request.from === NONE || request.from === this.id) {
      this.readStates.push({ index, requestCtx: context });
    } else {
      this.send({ type: MessageType.ReadIndexResp, to: request.from, index, context });
    }
  }

  /** Start confirming a read at the current commit index with a heartbeat round carrying its context. */
  confirmReadIndex(m: Message): void {
    const limit = this.cfg.maxPendingReadIndex;
    if (limit > 0 && this.readOnly.size() >= limit) throw new ReadIndexDroppedError('pending-limit');
    const context = m.context!;
    this.readOnly.addRequest(this.log.committed, m, context);
    this.readOnly.recvAck(this.id, context);
    this.bcastHeartbeat(context);
  }

  releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0) return;
    assert(this.committedEntryInCurrentTerm(), 'releasing reads before committing in the current term');
    const pending = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of pending) {
      try {
        this.confirmReadIndex(m);
      } catch (err) {
        if (!(err instanceof ReadIndexDroppedError)) throw err;
      }
    }
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  /** Leave the joint configuration once it is applied, if it asked for that (autoLeave). */
  maybeAutoLeave(): void {
    if (this.role !== Role.Leader || !this.trk.membership.autoLeave) return;
    if (this.log.applied < this.pendingConfIndex) return;
    const data = encodeConfChange({ changes: [], joint: false });
    this.appendEntry([{ type: EntryType.ConfChange, data }], true);
    this.pendingConfIndex = this.log.lastIndex();
    this.bcastAppend();
  }

  /** The driver applied up to `index` (Ready.committedEntries, or a restored snapshot). */
  appliedTo(index: number, appliedEntries: readonly Entry[]): void {
    this.log.appliedTo(index);
    this.reduceUncommittedSize(appliedEntries);
    this.maybeAutoLeave();
  }
}

// ---- Ticks ------------------------------------------------------------------------------------------

/** Followers and (pre-)candidates: start an election when nothing was heard for the election timeout. */
export function tickElection(r: Raft): void {
  r.electionElapsed++;
  if (r.promotable() && r.pastElectionTimeout()) {
    r.electionElapsed = 0;
    r.step(newMessage({ type: MessageType.Hup, from: r.id }));
  }
}

/** Leaders: heartbeats every heartbeatTick; CheckQuorum and transfer timeout every electionTick. */
export function tickHeartbeat(r: Raft): void {
  r.heartbeatElapsed++;
  r.electionElapsed++;
  if (r.electionElapsed >= r.cfg.electionTick) {
    r.electionElapsed = 0;
    if (r.cfg.checkQuorum) r.step(newMessage({ type: MessageType.CheckQuorum, from: r.id }));
    // A transfer that has not finished within an election timeout failed: accept proposals again.
    if (r.role === Role.Leader && r.leadTransferee !== NONE) r.abortLeaderTransfer();
  }
  if (r.role !== Role.Leader) return;
  if (r.heartbeatElapsed >= r.cfg.heartbeatTick) {
    r.heartbeatElapsed = 0;
    r.step(newMessage({ type: MessageType.Beat, from: r.id }));
  }
}

// ---- Step functions -----------------------------------------------------------------------------------

export function stepFollower(r: Raft, m: Message): void {
  switch (m.type) {
    case MessageType.Prop:
      if (r.lead === NONE) throw new ProposalDroppedError('no-leader');
      if (r.cfg.disableProposalForwarding) throw new ProposalDroppedError('forwarding-disabled');
      r.send({ ...m, to: r.lead });
      return;
    case MessageType.App:
      r.electionElapsed = 0;
      r.lead = m.from;
      r.handleAppendEntries(m);
      return;
    case MessageType.Heartbeat:
      r.electionElapsed = 0;
      r.lead = m.from;
      r.handleHeartbeat(m);
      return;
    case MessageType.Snap:
      r.electionElapsed = 0;
      r.lead = m.from;
      r.handleSnapshot(m);
      return;
    case MessageType.TransferLeader:
      // `from` names the transferee; forwarding keeps it.
      if (r.lead === NONE) return;
      r.send({ ...m, to: r.lead });
      return;
    case MessageType.TimeoutNow:
      // The leader chose us: campaign now, skipping pre-vote and the voters' lease (thesis §3.10).
      r.hup('transfer');
      return;
    case MessageType.ReadIndex:
      if (r.lead === NONE) throw new ReadIndexDroppedError('no-leader');
      r.send({ ...m, to: r.lead });
      return;
    case MessageType.ReadIndexResp:
      if (m.context === undefined || m.context.byteLength === 0) return;
      r.readStates.push({ index: m.index, requestCtx: m.context });
      return;
    default:
      return;
  }
}

export function stepCandidate(r: Raft, m: Message): void {
  // A pre-candidate counts PreVoteResp, a candidate VoteResp; the other kind is a leftover: ignore it.
  const myVoteResp = r.role === Role.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
  switch (m.type) {
    case MessageType.Prop:
      throw new ProposalDroppedError('no-leader');
    case MessageType.ReadIndex:
      throw new ReadIndexDroppedError('no-leader');
    case MessageType.App:
      // Someone won this term (a message of a later term made us a follower already in step()).
      r.becomeFollower(m.term, m.from);
      r.handleAppendEntries(m);
      return;
    case MessageType.Heartbeat:
      r.becomeFollower(m.term, m.from);
      r.handleHeartbeat(m);
      return;
    case MessageType.Snap:
      r.becomeFollower(m.term, m.from);
      r.handleSnapshot(m);
      return;
    case myVoteResp: {
      r.trk.recordVote(m.from, !m.reject);
      const { result } = r.trk.tallyVotes();
      if (result === 'won') {
        if (r.role === Role.PreCandidate) {
          r.campaign('election');
        } else {
          r.becomeLeader();
          r.bcastAppend();
        }
      } else if (result === 'lost') {
        // A pre-candidate keeps its term: losing a pre-vote changes nothing durable.
        r.becomeFollower(r.term, NONE);
      }
      return;
    }
    default:
      return;
  }
}

export function stepLeader(r: Raft, m: Message): void {
  switch (m.type) {
    case MessageType.Beat:
      r.bcastHeartbeat();
      return;
    case MessageType.CheckQuorum:
      if (!r.trk.quorumActive()) r.becomeFollower(r.term, NONE);
      // Everyone must prove again during the next round that it is alive.
      for (const id of r.trk.memberIds()) if (id !== r.id) r.trk.progress.get(id)!.recentActive = false;
      return;
    case MessageType.Prop:
      leaderPropose(r, m);
      return;
    case MessageType.ReadIndex:
      leaderReadIndex(r, m);
      return;
    default:
      break;
  }
  // Everything else comes from a peer this leader must track.
  const pr = r.trk.progress.get(m.from);
  if (pr === undefined) return;
  switch (m.type) {
    case MessageType.AppResp:
      leaderHandleAppendResponse(r, pr, m);
      return;
    case MessageType.HeartbeatResp:
      leaderHandleHeartbeatResponse(r, pr, m);
      return;
    case MessageType.SnapStatus:
      if (pr.state !== 'snapshot') return;
      if (m.reject) pr.pendingSnapshot = 0;
      pr.becomeProbe();
      // Success: wait for the follower's answer to the snapshot before probing. Failure: wait for the next
      // heartbeat answer before trying again.
      pr.probeSent = true;
      return;
    case MessageType.Unreachable:
      // Whatever was in flight is probably lost: go back to one message at a time.
      if (pr.state === 'replicate') pr.becomeProbe();
      return;
    case MessageType.TransferLeader:
      leaderTransfer(r, pr, m.from);
      return;
    default:
      return;
  }
}

function leaderPropose(r: Raft, m: Message): void {
  // A proposal without entries can only be a malformed forwarded one.
  if (m.entries.length === 0) return;
  if (!r.trk.progress.has(r.id)) throw new ProposalDroppedError('not-in-config');
  // §3.10: no new entries while handing leadership over, so the transferee can catch up.
  if (r.leadTransferee !== NONE) throw new ProposalDroppedError('leader-transfer');
  let confIndexInBatch = -1;
  const entries: ProposedEntry[] = m.entries.map((e, i) => {
    if (e.type !== EntryType.ConfChange) return { type: e.type, data: e.data };
    const cc = decodeOrUndefined(e.data);
    if (confIndexInBatch < 0 && cc !== undefined && r.confChangeAllowed(cc)) {
      confIndexInBatch = i;
      return { type: e.type, data: e.data };
    }
    // Refused (another change in flight, or invalid): keep the slot as an empty entry so the proposer's
    // entry count is unchanged; the change simply never happens.
    return { type: EntryType.Normal, data: new Uint8Array(0) };
  });
  const firstIndex = r.log.lastIndex() + 1;
  if (!r.appendEntry(entries)) throw new ProposalDroppedError('uncommitted-limit');
  if (confIndexInBatch >= 0) r.pendingConfIndex = firstIndex + confIndexInBatch;
  r.appendsPending = true;
}

function decodeOrUndefined(data: Uint8Array): ConfChange | undefined {
  try {
    return decodeConfChange(data);
  } catch (err) {
    if (err instanceof ConfChangeError) return undefined;
    throw err;
  }
}

function leaderReadIndex(r: Raft, m: Message): void {
  if (m.context === undefined || m.context.byteLength === 0) return;
  if (r.trk.isSingleton()) {
    // Alone, this node is the quorum: its commit index is safe to read at once.
    r.respondToReadIndex(m, r.log.committed);
    return;
  }
  if (!r.committedEntryInCurrentTerm()) {
    // §6.4: a new leader does not know the commit index until it commits an entry of its term (its empty
    // entry). Until then its commit index may be behind what an earlier leader acknowledged.
    const limit = r.cfg.maxPendingReadIndex;
    if (limit > 0 && r.pendingReadIndexMessages.length >= limit) throw new ReadIndexDroppedError('pending-limit');
    r.pendingReadIndexMessages.push(m);
    return;
  }
  r.confirmReadIndex(m);
}

function leaderHandleAppendResponse(r: Raft, pr: Progress, m: Message): void {
  pr.recentActive = true;
  if (m.reject) {
    // Fast backtracking: the follower's log has term m.logTerm at m.rejectHint. Our last index with a term
    // <= that is the highest that can match; everything between is skipped in one round trip.
    let nextProbe = m.rejectHint;
    if (m.logTerm > 0) nextProbe = r.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
    if (pr.maybeDecrTo(m.index, nextProbe)) {
      if (pr.state === 'replicate') pr.becomeProbe();
      // Nothing matches, not even the start of the log: the follower may have no configuration at all.
      if (pr.next === 1) r.sendBaseToEmptyFollower(m.from, pr);
      else r.sendAppend(m.from);
    }
    return;
  }
  const wasPaused = pr.isPaused();
  // In probe or snapshot state an answer at `match` (no news) still proves where the logs match.
  const noNews = pr.match === m.index && pr.state !== 'replicate';
  if (!pr.maybeUpdate(m.index) && !noNews) return;
  if (pr.state === 'probe') {
    pr.becomeReplicate();
  } else if (pr.state === 'snapshot' && pr.match + 1 >= r.log.firstIndex()) {
    // The follower caught up far enough (by the snapshot or otherwise) to continue from the log.
    pr.becomeProbe();
    pr.becomeReplicate();
  } else if (pr.state === 'replicate') {
    pr.inflights.freeLE(m.index);
  }
  if (r.maybeCommit()) {
    r.releasePendingReadIndexMessages();
    r.bcastAppend();
  } else if (wasPaused) {
    // The window had been closed; the follower may be missing the latest commit index.
    r.sendAppend(m.from);
  }
  // Fill the window with what the follower still lacks.
  while (r.maybeSendAppend(m.from, false)) {
    // each call sends one size-limited App
  }
  if (m.from === r.leadTransferee && pr.match === r.log.lastIndex()) {
    // The transferee caught up: tell it to campaign now.
    r.send({ type: MessageType.TimeoutNow, to: m.from });
  }
}

function leaderHandleHeartbeatResponse(r: Raft, pr: Progress, m: Message): void {
  pr.recentActive = true;
  pr.probeSent = false;
  // Answers may have been lost with a full window: let one App through; if entries are missing the
  // follower rejects it and replication falls back to probing.
  if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
  if (pr.match < r.log.lastIndex()) r.sendAppend(m.from);
  if (m.context === undefined || m.context.byteLength === 0) return;
  const acks = r.readOnly.recvAck(m.from, m.context);
  if (acks === undefined || !r.trk.isQuorum(acks)) return;
  for (const rs of r.readOnly.advance(m.context)) r.respondToReadIndex(rs.request, rs.index);
}

function leaderTransfer(r: Raft, pr: Progress, transferee: NodeId): void {
  if (pr.isLearner) return;
  if (r.leadTransferee !== NONE) {
    if (r.leadTransferee === transferee) return;
    r.abortLeaderTransfer();
  }
  if (transferee === r.id) return;
  // The transfer must finish within an election timeout (tickHeartbeat aborts it then).
  r.electionElapsed = 0;
  r.leadTransferee = transferee;
  if (pr.match === r.log.lastIndex()) {
    r.send({ type: MessageType.TimeoutNow, to: transferee });
  } else {
    r.sendAppend(transferee);
  }
}
