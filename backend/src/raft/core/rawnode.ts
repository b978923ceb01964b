// The driver's handle on one Raft node: inputs (tick, step, propose, ...) and the Ready / advance cycle.
//
// The Ready contract, and why it is safe (see also Ready in types.ts):
//
//   rd = node.ready()        // everything new since the last Ready
//   persist(rd.snapshot, rd.entries, rd.hardState); sync   -- if rd.mustSync
//   send(rd.messages)
//   apply(rd.snapshot, rd.committedEntries)  // applyConfChange() for ConfChange entries
//   node.advance(rd)
//
// Persist before send: every message in a Ready may promise state that exists only in memory until the
// driver persists that same Ready: a vote (VoteResp) promises the hard state's vote, an append
// acknowledgement (AppResp) promises the entries, a leader's App carries entries it counts itself as
// holding. Each Ready carries all of the node's unpersisted state (every unstable entry, the unstable
// snapshot, the current hard state), so once it is persisted, every message in it is backed by durable
// state. Messages made between ready() and advance() wait for the next Ready, which is only handed out
// after advance(), that is after the previous one was persisted. ready() checks this (checkPersistBeforeSend).
//
// Applying after persisting: committed entries handed out may include entries of the same Ready; they are
// durable (on this node and a quorum) once step 1 is done.

import type { Config } from './config.ts';
import { encodeConfChange } from './confchange.ts';
import { ProposalDroppedError, RaftArgumentError, ReadIndexDroppedError, assert } from './errors.ts';
import type { ProgressState } from './progress.ts';
import { Raft } from './raft.ts';
import { EntryType, MessageType, NONE, Role } from './types.ts';
import type { ConfChange, ConfState, Entry, HardState, Message, NodeId, Ready, SoftState } from './types.ts';
import { isLocalMessage, isResponseMessage, newMessage } from './util.ts';

export interface ProgressStatus {
  match: number;
  next: number;
  state: ProgressState;
  recentActive: boolean;
  isLearner: boolean;
  /** Snapshot state: index of the snapshot being sent. */
  pendingSnapshot: number;
  /** App messages in flight (replicate state). */
  inflight: number;
  inflightBytes: number;
  /** Nothing is being sent to this follower right now (window full, probe outstanding, snapshot). */
  paused: boolean;
}

export interface Status {
  id: NodeId;
  hardState: HardState;
  softState: SoftState;
  applied: number;
  lastIndex: number;
  /** Only on the leader: what it knows of every member, itself included. */
  progress?: Map<NodeId, ProgressStatus>;
  leadTransferee: NodeId;
  config: ConfState;
}

export function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === NONE && hs.commit === 0;
}

function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function softStateEqual(a: SoftState, b: SoftState): boolean {
  return a.leader === b.leader && a.role === b.role;
}

export class RawNode {
  private readonly raft: Raft;
  private prevSoftState: SoftState;
  /** The hard state as of the last advanced Ready: what the driver has persisted. */
  private prevHardState: HardState;
  /** The Ready handed out and not yet given back to advance(). Invariant: at most one at a time. */
  private outstanding: Ready | undefined;

  constructor(config: Config) {
    this.raft = new Raft(config);
    this.prevSoftState = this.raft.softState();
    this.prevHardState = this.raft.hardState();
  }

  get id(): NodeId {
    return this.raft.id;
  }

  /** One unit of time passed (the driver's tick interval). */
  tick(): void {
    this.raft.tick();
  }

  /** Start an election now (pre-vote first when configured). No-op on a leader or a non-voter. */
  campaign(): void {
    this.raft.step(newMessage({ type: MessageType.Hup, from: this.raft.id }));
  }

  /**
   * Propose data for the log. Throws ProposalDroppedError when there is no leader, a leader transfer is in
   * progress, or the uncommitted limit is hit. Success does not mean it will be committed (a leader change
   * can still lose it): the driver matches proposals with committed entries.
   */
  propose(data: Uint8Array): void {
    this.proposeBatch([data]);
  }

  /** Propose several entries at once; they are appended together or dropped together. */
  proposeBatch(datas: readonly Uint8Array[]): void {
    if (datas.length === 0) return;
    const entries: Entry[] = datas.map((data) => {
      if (!(data instanceof Uint8Array)) throw new RaftArgumentError('proposal data must be a Uint8Array');
      return { index: 0, term: 0, type: EntryType.Normal, data };
    });
    this.raft.step(newMessage({ type: MessageType.Prop, from: this.raft.id, entries }));
  }

  /**
   * Propose a membership change. The leader replaces it with an empty entry (the change does not happen)
   * while another change is not yet applied or when it does not fit the current configuration.
   */
  proposeConfChange(cc: ConfChange): void {
    const data = encodeConfChange(cc);
    const entries: Entry[] = [{ index: 0, term: 0, type: EntryType.ConfChange, data }];
    this.raft.step(newMessage({ type: MessageType.Prop, from: this.raft.id, entries }));
  }

  /**
   * A message from a peer. Local message types are ignored (a peer cannot fire our timers); answers from
   * nodes outside the configuration are dropped; proposals or reads the leader cannot take are dropped.
   */
  step(m: Message): void {
    if (isLocalMessage(m.type)) return;
    assert(m.to === this.raft.id, () => `message for ${m.to} delivered to ${this.raft.id}`);
    if (m.from === NONE) return;
    if (isResponseMessage(m.type) && !this.raft.trk.progress.has(m.from)) return;
    try {
      this.raft.step(m);
    } catch (err) {
      // A forwarded proposal or read that cannot be served: the remote caller times out and retries.
      if (err instanceof ProposalDroppedError || err instanceof ReadIndexDroppedError) return;
      throw err;
    }
  }

  /**
   * Request a linearizable read. `context` (non-empty, unique per request) comes back in a ReadState of a
   * later Ready, with the index the application must have applied before serving the read. Returns false
   * when the request was dropped at once (no leader known, too many pending); a true result can still get
   * lost (leader change, lost message): callers need a timeout.
   */
  readIndex(context: Uint8Array): boolean {
    if (!(context instanceof Uint8Array) || context.byteLength === 0) {
      throw new RaftArgumentError('read context must be a non-empty Uint8Array');
    }
    try {
      this.raft.step(newMessage({ type: MessageType.ReadIndex, context }));
      return true;
    } catch (err) {
      if (err instanceof ReadIndexDroppedError) return false;
      throw err;
    }
  }

  /** Ask the leader (this node or the one it knows) to hand leadership to `to`. */
  transferLeader(to: NodeId): void {
    if (!Number.isSafeInteger(to) || to <= NONE) throw new RaftArgumentError(`invalid transferee ${to}`);
    this.raft.step(newMessage({ type: MessageType.TransferLeader, from: to }));
  }

  /** The transport could not reach `id`: the leader stops streaming to it and probes instead. */
  reportUnreachable(id: NodeId): void {
    this.raft.step(newMessage({ type: MessageType.Unreachable, from: id }));
  }

  /** How sending a snapshot to `id` ended. The leader resumes probing it either way. */
  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.step(newMessage({ type: MessageType.SnapStatus, from: id, reject: !ok }));
  }

  /** Whether ready() would return something. False while a Ready is outstanding (advance() it first). */
  hasReady(): boolean {
    if (this.outstanding !== undefined) return false;
    const r = this.raft;
    if (r.appendsPending && r.role === Role.Leader) return true;
    if (!softStateEqual(r.softState(), this.prevSoftState)) return true;
    const hs = r.hardState();
    if (!isEmptyHardState(hs) && !hardStateEqual(hs, this.prevHardState)) return true;
    return (
      r.log.hasPendingSnapshot() ||
      r.msgs.length > 0 ||
      r.log.unstable.entries.length > 0 ||
      r.log.hasNextCommittedEntries() ||
      r.readStates.length > 0
    );
  }

  /** The next batch of work. Throws if the previous Ready was not advanced (one at a time). */
  ready(): Ready {
    assert(this.outstanding === undefined, 'ready() called again before advance() of the previous Ready');
    const r = this.raft;
    r.flushAppends();
    const rd: Ready = {
      entries: [...r.log.unstable.entries],
      committedEntries: r.log.nextCommittedEntries(),
      messages: r.msgs,
      readStates: r.readStates,
      mustSync: false,
    };
    r.msgs = [];
    r.readStates = [];
    const ss = r.softState();
    if (!softStateEqual(ss, this.prevSoftState)) {
      rd.softState = ss;
      this.prevSoftState = ss;
    }
    const hs = r.hardState();
    if (!hardStateEqual(hs, this.prevHardState)) rd.hardState = hs;
    if (r.log.unstable.snapshot !== undefined) rd.snapshot = r.log.unstable.snapshot;
    // A changed commit index alone needs no sync: it can be recomputed from a quorum after a crash.
    rd.mustSync =
      rd.entries.length > 0 ||
      rd.snapshot !== undefined ||
      hs.term !== this.prevHardState.term ||
      hs.vote !== this.prevHardState.vote;
    this.checkPersistBeforeSend(rd);
    this.outstanding = rd;
    return rd;
  }

  /** The driver persisted, sent and applied `rd` (the Ready last handed out). */
  advance(rd: Ready): void {
    assert(rd === this.outstanding, 'advance() got a Ready that is not the one handed out');
    this.outstanding = undefined;
    const r = this.raft;
    if (rd.hardState !== undefined) this.prevHardState = rd.hardState;
    this.markStable(rd.entries);
    if (rd.snapshot !== undefined) r.log.stableSnapTo(rd.snapshot.metadata.index);
    let applied = 0;
    if (rd.committedEntries.length > 0) applied = rd.committedEntries[rd.committedEntries.length - 1]!.index;
    if (rd.snapshot !== undefined) applied = Math.max(applied, rd.snapshot.metadata.index);
    if (applied > r.log.applied) r.appliedTo(applied, rd.committedEntries);
  }

  /**
   * The driver persisted `written`. Forget, from the unstable log, the newest of them that is still there
   * with the same term and everything before it. Usually that is the last one; when a new leader replaced
   * some of them meanwhile, only the prefix before the replacement is stable (Log Matching: the same index
   * and term mean the same entries up to there), and the replacement is written by the next Ready.
   */
  private markStable(written: readonly Entry[]): void {
    const unstable = this.raft.log.unstable;
    for (let i = written.length - 1; i >= 0; i--) {
      const e = written[i]!;
      if (unstable.maybeTerm(e.index) === e.term) {
        unstable.stableTo(e.index, e.term);
        return;
      }
    }
  }

  /** Apply a committed ConfChange entry (call while applying Ready.committedEntries, in log order). */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  status(): Status {
    const r = this.raft;
    const status: Status = {
      id: r.id,
      hardState: r.hardState(),
      softState: r.softState(),
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      leadTransferee: r.leadTransferee,
      config: r.trk.confState(),
    };
    if (r.role === Role.Leader) {
      status.progress = new Map();
      for (const id of r.trk.memberIds()) {
        const pr = r.trk.progress.get(id)!;
        status.progress.set(id, {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          recentActive: pr.recentActive,
          isLearner: pr.isLearner,
          pendingSnapshot: pr.pendingSnapshot,
          inflight: pr.inflights.count(),
          inflightBytes: pr.inflights.bytes(),
          paused: pr.isPaused(),
        });
      }
    }
    return status;
  }

  /**
   * Asserts that every message of `rd` is backed by state that is durable once `rd` is persisted (see the
   * header). A failure is a bug in the core.
   */
  private checkPersistBeforeSend(rd: Ready): void {
    const r = this.raft;
    const unstable = r.log.unstable;
    assert(rd.entries.length === unstable.entries.length, 'Ready must carry every unpersisted entry');
    assert(rd.snapshot === unstable.snapshot, 'Ready must carry the unpersisted snapshot');
    const durable = rd.hardState ?? this.prevHardState;
    const lastIndex = r.log.lastIndex();
    for (const m of rd.messages) {
      switch (m.type) {
        case MessageType.PreVote:
        case MessageType.PreVoteResp:
          // Pre-votes use a future term and bind nothing.
          break;
        case MessageType.Vote:
          assert(durable.term > m.term || (durable.term === m.term && durable.vote === r.id), () =>
            `vote request for term ${m.term} sent without a durable self-vote (hard state ${JSON.stringify(durable)})`,
          );
          break;
        case MessageType.VoteResp:
          if (!m.reject) {
            assert(durable.term > m.term || (durable.term === m.term && durable.vote === m.to), () =>
              `vote for ${m.to} in term ${m.term} sent before it is durable (hard state ${JSON.stringify(durable)})`,
            );
          }
          break;
        case MessageType.AppResp:
          assert(m.term <= durable.term, 'AppResp from a term that is not durable');
          assert(m.reject || m.term < durable.term || m.index <= lastIndex, () =>
            `AppResp acknowledges ${m.index} beyond the log (${lastIndex})`,
          );
          break;
        default:
          assert(m.term <= durable.term, () => `${MessageType[m.type]} of term ${m.term} beyond durable term ${durable.term}`);
      }
    }
  }
}
