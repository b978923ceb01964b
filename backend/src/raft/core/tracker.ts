// The membership configuration in force and, on a leader, the progress of every member; votes of an
// election in progress.

import { Inflights } from './inflights.ts';
import { Progress } from './progress.ts';
import { jointCommittedIndex, jointVoteResult } from './quorum.ts';
import type { VoteResult } from './quorum.ts';
import type { ConfState, NodeId } from './types.ts';
import { sortedIds } from './util.ts';

/**
 * Membership. Invariants (checked by checkMembership):
 * - outgoing is empty unless the configuration is joint; learnersNext and autoLeave only exist while joint;
 * - no node is both a voter (incoming or outgoing) and a learner;
 * - learnersNext are outgoing voters that become learners when the joint configuration is left;
 * - every member (any of the four sets) has a Progress.
 */
export interface Membership {
  incoming: Set<NodeId>;
  outgoing: Set<NodeId>;
  learners: Set<NodeId>;
  learnersNext: Set<NodeId>;
  autoLeave: boolean;
}

export function emptyMembership(): Membership {
  return { incoming: new Set(), outgoing: new Set(), learners: new Set(), learnersNext: new Set(), autoLeave: false };
}

export function cloneMembership(m: Membership): Membership {
  return {
    incoming: new Set(m.incoming),
    outgoing: new Set(m.outgoing),
    learners: new Set(m.learners),
    learnersNext: new Set(m.learnersNext),
    autoLeave: m.autoLeave,
  };
}

export function isJoint(m: Membership): boolean {
  return m.outgoing.size > 0;
}

export function membershipToConfState(m: Membership): ConfState {
  return {
    voters: sortedIds(m.incoming),
    learners: sortedIds(m.learners),
    votersOutgoing: sortedIds(m.outgoing),
    learnersNext: sortedIds(m.learnersNext),
    autoLeave: m.autoLeave,
  };
}

export type ProgressMap = Map<NodeId, Progress>;

export interface InflightLimits {
  maxInflightMsgs: number;
  /** 0 = no byte limit. */
  maxInflightBytes: number;
}

export function newProgress(lastIndex: number, isLearner: boolean, limits: InflightLimits): Progress {
  const pr = new Progress(0, lastIndex + 1, new Inflights(limits.maxInflightMsgs, limits.maxInflightBytes), isLearner);
  // A new member counts as active so that CheckQuorum does not depose the leader before it could answer.
  pr.recentActive = true;
  return pr;
}

export class ProgressTracker {
  membership: Membership = emptyMembership();
  /** Invariant: has exactly the members of `membership` (see checkMembership). */
  progress: ProgressMap = new Map();
  /** Votes received in the current (pre-)election: true = granted. */
  votes = new Map<NodeId, boolean>();
  readonly limits: InflightLimits;
  /** Members sorted by id, recomputed on every configuration switch (deterministic iteration order). */
  private ids: NodeId[] = [];

  constructor(limits: InflightLimits) {
    this.limits = limits;
  }

  setConfig(membership: Membership, progress: ProgressMap): void {
    this.membership = membership;
    this.progress = progress;
    this.ids = sortedIds(progress.keys());
  }

  confState(): ConfState {
    return membershipToConfState(this.membership);
  }

  /** Every member (voters and learners), sorted by id. */
  memberIds(): readonly NodeId[] {
    return this.ids;
  }

  /** Voters of both halves, sorted by id. */
  voterIds(): NodeId[] {
    return sortedIds(new Set([...this.membership.incoming, ...this.membership.outgoing]));
  }

  isVoter(id: NodeId): boolean {
    return this.membership.incoming.has(id) || this.membership.outgoing.has(id);
  }

  /** Exactly one voter and not joint: that voter decides alone. */
  isSingleton(): boolean {
    return this.membership.incoming.size === 1 && this.membership.outgoing.size === 0;
  }

  /** Highest index stored on a quorum of voters (both halves when joint). */
  committed(): number {
    return jointCommittedIndex(this.membership, (id) => this.progress.get(id)?.match);
  }

  /** Whether a quorum of voters was active since the last check (the leader counts itself active). */
  quorumActive(): boolean {
    const active = new Map<NodeId, boolean>();
    for (const [id, pr] of this.progress) if (!pr.isLearner) active.set(id, pr.recentActive);
    return jointVoteResult(this.membership, active) === 'won';
  }

  /** Whether the given set of acknowledging nodes is a quorum. */
  isQuorum(acks: ReadonlySet<NodeId>): boolean {
    const votes = new Map<NodeId, boolean>();
    for (const id of acks) votes.set(id, true);
    return jointVoteResult(this.membership, votes) === 'won';
  }

  resetVotes(): void {
    this.votes = new Map();
  }

  /** The first vote of a node counts; later (duplicate) answers do not change it. */
  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const [id, pr] of this.progress) {
      if (pr.isLearner) continue;
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    return { granted, rejected, result: jointVoteResult(this.membership, this.votes) };
  }
}
