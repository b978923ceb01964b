// Quorum arithmetic, kept apart from the protocol so the simulator and property tests can check it alone.
//
// A majority configuration is a set of voters; a decision needs more than half of them. A joint
// configuration (Raft thesis §4.3) is two majority configurations, incoming and outgoing; a decision needs a
// majority of each. An empty majority configuration imposes no constraint (it agrees to everything), which
// is what makes a joint configuration with an empty outgoing half behave like its incoming half.

import type { NodeId } from './types.ts';

export type VoteResult = 'won' | 'lost' | 'pending';

/** What a node has acknowledged (an index), or undefined when it has not answered yet. */
export type AckedIndexer = (id: NodeId) => number | undefined;

export interface JointVoters {
  incoming: ReadonlySet<NodeId> | readonly NodeId[];
  outgoing: ReadonlySet<NodeId> | readonly NodeId[];
}

function size(voters: ReadonlySet<NodeId> | readonly NodeId[]): number {
  return 'size' in voters ? voters.size : voters.length;
}

/** Smallest number of voters that is more than half of n. */
export function majoritySize(n: number): number {
  return Math.floor(n / 2) + 1;
}

/**
 * The largest index acknowledged by a majority of `voters` (a missing ack counts as 0). For an empty
 * configuration: +Infinity (no constraint; see the header).
 */
export function majorityCommittedIndex(
  voters: ReadonlySet<NodeId> | readonly NodeId[],
  acked: AckedIndexer,
): number {
  const n = size(voters);
  if (n === 0) return Number.POSITIVE_INFINITY;
  const indexes: number[] = [];
  for (const id of voters) indexes.push(acked(id) ?? 0);
  // Sorted descending, the q-th largest index (q = majority) is held by at least q voters.
  indexes.sort((a, b) => b - a);
  return indexes[majoritySize(n) - 1]!;
}

/**
 * The outcome of an election so far: 'won' when a majority granted, 'lost' when a majority can no longer be
 * reached, 'pending' otherwise. Votes from non-voters are ignored. An empty configuration wins.
 */
export function majorityVoteResult(
  voters: ReadonlySet<NodeId> | readonly NodeId[],
  votes: ReadonlyMap<NodeId, boolean>,
): VoteResult {
  const n = size(voters);
  if (n === 0) return 'won';
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const q = majoritySize(n);
  if (granted >= q) return 'won';
  if (granted + missing >= q) return 'pending';
  return 'lost';
}

/** Committed index of a joint configuration: what both halves have committed. */
export function jointCommittedIndex(voters: JointVoters, acked: AckedIndexer): number {
  return Math.min(majorityCommittedIndex(voters.incoming, acked), majorityCommittedIndex(voters.outgoing, acked));
}

/** A joint election is won when both halves are won, lost when either half is lost. */
export function jointVoteResult(voters: JointVoters, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const a = majorityVoteResult(voters.incoming, votes);
  const b = majorityVoteResult(voters.outgoing, votes);
  if (a === b) return a;
  if (a === 'lost' || b === 'lost') return 'lost';
  return 'pending';
}
