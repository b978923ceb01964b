// Deliberate bugs, to prove the simulator catches broken safety rules. Selected only by the simulator
// harness (`--mutation NAME` on scripts/sim.ts, or the mutation test); production code never sees them.
//
// Two kinds:
// - driver mutations break the Ready contract or the disk in the simulated driver (node.ts, disk.ts);
// - core mutations patch a private copy of backend/src/raft/core/ (see core-loader.ts): one source edit
//   each, located by an exact snippet so that a change to the core makes the patch fail loudly instead of
//   silently testing nothing.

export type DriverMutation =
  /** Send a Ready's messages before its state is synced (a vote or an ack can outlive a crash that loses it). */
  | 'send-before-persist'
  /** Treat every write as synced at once (fsync dropped): the node goes on while the data is still volatile. */
  | 'skip-fsync'
  /** Apply entries to the state machine as soon as they are appended, before they are committed. */
  | 'apply-unpersisted'
  /** The disk overwrites conflicting entries in place but keeps the stale entries after them. */
  | 'no-truncate';

export interface CorePatch {
  /** File inside backend/src/raft/core/. */
  file: string;
  /** Exact snippet to replace; must occur exactly once. */
  find: string;
  replace: string;
}

export type CoreMutation =
  /** Commit by counting replicas of an entry from an earlier term (the Figure 8 bug, §5.4.2). */
  | 'commit-previous-term'
  /** Grant a vote even after voting for someone else in the same term. */
  | 'double-vote'
  /** Grant votes without the candidate's log being at least as up to date (§5.4.1). */
  | 'skip-up-to-date-check'
  /** Compute the commit index from the most advanced replica instead of a majority. */
  | 'commit-without-quorum'
  /** Answer ReadIndex at once, without the heartbeat round proving leadership (§6.4). */
  | 'read-without-heartbeat';

export type MutationName = DriverMutation | CoreMutation;

export const DRIVER_MUTATIONS: readonly DriverMutation[] = [
  'send-before-persist',
  'skip-fsync',
  'apply-unpersisted',
  'no-truncate',
];

export const CORE_PATCHES: Readonly<Record<CoreMutation, CorePatch>> = {
  'commit-previous-term': {
    file: 'log.ts',
    find: 'if (maxIndex > this.committed && this.termOrZero(maxIndex) === term) {',
    replace: 'if (maxIndex > this.committed && this.termOrZero(maxIndex) > 0) {',
  },
  'double-vote': {
    file: 'raft.ts',
    find: 'const canVote =\n',
    replace: 'const canVote = true ||\n',
  },
  'skip-up-to-date-check': {
    file: 'log.ts',
    find: 'return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());',
    replace: 'return lastTerm >= 0 || myTerm >= 0 || lastIndex >= 0;',
  },
  'commit-without-quorum': {
    file: 'quorum.ts',
    find: 'return indexes[majoritySize(n) - 1]!;',
    replace: 'return indexes[0]!;',
  },
  'read-without-heartbeat': {
    file: 'raft.ts',
    find: '  r.confirmReadIndex(m);\n}',
    replace: '  r.respondToReadIndex(m, r.log.committed);\n}',
  },
};

export const MUTATIONS: readonly MutationName[] = [
  ...DRIVER_MUTATIONS,
  ...(Object.keys(CORE_PATCHES) as CoreMutation[]),
];

export function isMutation(name: string): name is MutationName {
  return (MUTATIONS as readonly string[]).includes(name);
}

export function isDriverMutation(name: MutationName | undefined): name is DriverMutation {
  return name !== undefined && (DRIVER_MUTATIONS as readonly string[]).includes(name);
}
