// What the leader knows about one follower's log, and how it sends to it (flow control).
//
// States:
// - probe: the leader does not know where the follower's log matches. It sends one App at a time and
//   waits for the answer (or the next heartbeat answer) before sending again; rejections move `next` back.
// - replicate: the follower's log matches up to `match`. The leader streams Apps optimistically (`next`
//   jumps ahead on each send), limited by the inflight window.
// - snapshot: the follower needs entries the leader compacted away. A snapshot is on its way; nothing else
//   is sent until it is reported (reportSnapshot) or the follower's answer shows it caught up.

import { Inflights } from './inflights.ts';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  /** Highest index known to be in the follower's log. Invariant: match < next. */
  match: number;
  /** Index of the next entry to send. */
  next: number;
  state: ProgressState = 'probe';
  /** In snapshot state: index of the snapshot being sent (0 after a failed send). */
  pendingSnapshot = 0;
  /** The follower answered since the last CheckQuorum round. The leader counts itself always active. */
  recentActive = false;
  /**
   * In probe state: an App went out and its answer has not come back; no further App is sent until it does
   * or a heartbeat answer shows the follower is reachable.
   */
  probeSent = false;
  inflights: Inflights;
  /** A learner receives the log but does not vote and is not counted in any quorum. */
  isLearner: boolean;

  constructor(match: number, next: number, inflights: Inflights, isLearner: boolean) {
    this.match = match;
    this.next = next;
    this.inflights = inflights;
    this.isLearner = isLearner;
  }

  /** A copy sharing nothing mutable with this one. */
  clone(): Progress {
    const p = new Progress(this.match, this.next, this.inflights.clone(), this.isLearner);
    p.state = this.state;
    p.pendingSnapshot = this.pendingSnapshot;
    p.recentActive = this.recentActive;
    p.probeSent = this.probeSent;
    return p;
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  /**
   * Back to probing, from `match + 1`; after a snapshot, from just after it (the follower has it now, or the
   * probe will tell).
   */
  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /**
   * An App carrying entries up to `lastIndex` (or none, lastIndex = next - 1) and `bytes` of entries went
   * out. In replicate state the window takes it and `next` moves past it; in probe state the leader waits.
   */
  sentEntries(count: number, lastIndex: number, bytes: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex, bytes);
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }

  /**
   * The follower acknowledged `index`. Returns true if that raised `match` (stale or repeated answers do
   * not). Any answer unblocks probing.
   */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * The follower rejected an App whose previous index was `rejected`; `matchHint` is the highest index that
   * may still match (fast backtracking). Returns false when the rejection is stale (about an App sent
   * before the current probe or below what is known to match) and must be ignored.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      // Entries were lost or the follower restarted without them: resend from the known match.
      this.next = this.match + 1;
      return true;
    }
    // Probe (or snapshot) state: only the answer to the last probe counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Nothing more may be sent to this follower for now. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}
