// Everything about one run that is drawn from its seed before it starts: cluster shape, core settings,
// fault mix and rates, client load. A scenario is a pure function of the seed.

import { Prng } from './prng.ts';

export type FaultKind =
  | 'drop'
  | 'duplicate'
  | 'delay'
  | 'reorder'
  | 'partition-symmetric'
  | 'partition-asymmetric'
  | 'partition-partial'
  | 'pause'
  | 'crash'
  | 'crash-torn'
  | 'slow-disk'
  /** While it lasts, most newly elected leaders crash within milliseconds (the Figure 8 schedule). */
  | 'leader-churn';

export const FAULT_KINDS: readonly FaultKind[] = [
  'drop',
  'duplicate',
  'delay',
  'reorder',
  'partition-symmetric',
  'partition-asymmetric',
  'partition-partial',
  'pause',
  'crash',
  'crash-torn',
  'slow-disk',
  'leader-churn',
];

export interface Scenario {
  seed: number;
  /** Initial voters: ids 1..voters. */
  voters: number;
  /** Initial learners: the ids after the voters. */
  learners: number;
  /** Fresh nodes the operator may add later (ids after the learners). */
  spares: number;
  /** The operator changes membership (add learner, promote, demote, remove, joint replace). */
  membershipChanges: boolean;
  /** The operator asks the leader to hand over leadership now and then. */
  leaderTransfers: boolean;
  /**
   * How initial members are bootstrapped. 0: MemoryStorage(conf) alone (the membership as an empty
   * snapshot at index 0; the core sends that bootstrap snapshot to new members). 1: installed with a
   * snapshot at index 1 holding the membership, so new members always catch up through a real snapshot.
   */
  bootstrapSnapshotIndex: number;

  // Core settings (see Config in core/config.ts).
  preVote: boolean;
  checkQuorum: boolean;
  electionTick: number;
  heartbeatTick: number;
  maxSizePerMsg: number;
  maxInflightMsgs: number;
  maxInflightBytes: number;
  maxUncommittedEntriesSize: number;
  maxCommittedSizePerReady: number;

  /** Length of a tick in virtual microseconds. */
  tickUs: number;
  /** Each node's tick length is tickUs scaled by a factor in [1 - tickSkew, 1 + tickSkew]. */
  tickSkew: number;

  // Durability on the simulated disk.
  diskLatencyMinUs: number;
  diskLatencyMaxUs: number;
  /** A local snapshot every this many applied entries. */
  snapshotEveryEntries: number;
  /** Entries kept in the log before the snapshot index after compaction (for slightly slow followers). */
  compactKeepEntries: number;
  /** The driver also takes a snapshot right after applying each ConfChange. */
  snapshotOnConfChange: boolean;
  /** Probability the state machine flushes its state after applying a batch. */
  smFlushProbability: number;

  // Network.
  latencyMinUs: number;
  latencyMaxUs: number;
  dropProbability: number;
  duplicateProbability: number;

  // Faults: an episode starts every [faultGapMinUs, faultGapMaxUs] during the fault phase and lasts up to
  // faultDurationMaxUs; at most maxActiveFaults episodes overlap, so the cluster also gets calm stretches.
  faultKinds: FaultKind[];
  faultGapMinUs: number;
  faultGapMaxUs: number;
  faultDurationMaxUs: number;
  maxActiveFaults: number;

  // Clients.
  clients: number;
  /** Think time between a client's operations. */
  clientGapMinUs: number;
  clientGapMaxUs: number;
  /** Fraction of client operations that are ReadIndex reads. */
  readFraction: number;
  /** Payload padding in bytes (exercises the size limits). */
  valuePaddingBytes: number;
}

export function makeScenario(seed: number): Scenario {
  const r = new Prng(seed).fork('scenario');
  const voters = r.chance(0.5) ? 3 : 5;
  const membershipChanges = r.chance(0.25);
  const electionTick = r.pick([5, 10, 10, 20]);
  const maxSizePerMsg = r.pick([0, 256, 1024, 64 * 1024]);
  const faultKinds = FAULT_KINDS.filter(() => r.chance(0.6));
  if (faultKinds.length === 0) faultKinds.push(r.pick(FAULT_KINDS));
  const tickUs = 10_000;
  return {
    seed,
    voters,
    learners: r.chance(0.25) ? 1 : 0,
    spares: membershipChanges ? r.int(1, 2) : 0,
    membershipChanges,
    leaderTransfers: r.chance(0.3),
    bootstrapSnapshotIndex: r.pick([0, 1]),
    preVote: r.chance(0.5),
    checkQuorum: r.chance(0.5),
    electionTick,
    heartbeatTick: r.int(1, Math.max(1, Math.floor(electionTick / 4))),
    maxSizePerMsg,
    maxInflightMsgs: r.pick([1, 4, 256]),
    maxInflightBytes: r.chance(0.3) ? Math.max(maxSizePerMsg, 1) * 4 : 0,
    maxUncommittedEntriesSize: r.chance(0.3) ? r.pick([64, 1024]) : 0,
    maxCommittedSizePerReady: r.pick([0, 128, 4096]),
    tickUs,
    tickSkew: r.pick([0, 0.05]),
    diskLatencyMinUs: 50,
    diskLatencyMaxUs: r.pick([500, 2_000, 8_000]),
    snapshotEveryEntries: r.pick([5, 20, 100]),
    compactKeepEntries: r.pick([0, 2, 10]),
    snapshotOnConfChange: r.chance(0.5),
    smFlushProbability: r.pick([0, 0.2, 1]),
    latencyMinUs: 200,
    latencyMaxUs: r.pick([1_000, 5_000, 20_000]),
    dropProbability: r.pick([0, 0, 0.01, 0.05]),
    duplicateProbability: r.pick([0, 0, 0.01, 0.05]),
    faultKinds,
    faultGapMinUs: 50_000,
    faultGapMaxUs: r.pick([300_000, 1_000_000, 3_000_000]),
    faultDurationMaxUs: r.pick([300_000, 1_000_000, 2_500_000]),
    maxActiveFaults: r.int(1, 3),
    clients: r.int(1, 4),
    clientGapMinUs: 0,
    clientGapMaxUs: r.pick([2_000, 20_000, 100_000]),
    readFraction: r.pick([0, 0.2, 0.5]),
    valuePaddingBytes: r.pick([0, 0, 50, 300]),
  };
}

/** A one-line summary for reports. */
export function describeScenario(s: Scenario): string {
  return [
    `${s.voters} voters`,
    s.learners > 0 ? `${s.learners} learner` : '',
    s.membershipChanges ? `membership changes (${s.spares} spare)` : '',
    s.preVote ? 'preVote' : '',
    s.checkQuorum ? 'checkQuorum' : '',
    `electionTick ${s.electionTick}`,
    `heartbeatTick ${s.heartbeatTick}`,
    `faults ${s.faultKinds.join(',')}`,
    `${s.clients} clients`,
  ]
    .filter((x) => x !== '')
    .join(', ');
}
