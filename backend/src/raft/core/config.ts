// Configuration of one Raft node. Time is counted in ticks (the driver decides how long a tick is);
// sizes are in bytes as counted by entrySizeBytes (util.ts).

import { RaftConfigError } from './errors.ts';
import type { Storage } from './storage.ts';
import type { NodeId } from './types.ts';
import { NONE } from './types.ts';

export type ReadOnlyOption = 'safe';

export interface Config {
  /** This node's id; never NONE (0). */
  id: NodeId;
  /**
   * Ticks a follower waits without hearing from a leader before it starts an election. The actual timeout
   * is drawn at random in [electionTick, 2 * electionTick) each time the timer is reset. Must be greater than
   * heartbeatTick (10x is usual).
   */
  electionTick: number;
  /** Ticks between the leader's heartbeats. > 0. */
  heartbeatTick: number;
  /** The persisted log. The core only reads it; the driver writes it following the Ready contract. */
  storage: Storage;
  /**
   * Index the application has already applied (on restart); committed entries up to it are not handed out
   * again. 0 = from the snapshot. Must not exceed the persisted commit index.
   */
  applied?: number;
  /** Run a pre-vote round (no term change) before a real election, so a partitioned node cannot disrupt. */
  preVote?: boolean;
  /**
   * The leader steps down when it has not heard from a quorum within an election timeout, and followers
   * that heard from a leader within the election timeout ignore (pre)vote requests (the leader lease).
   */
  checkQuorum?: boolean;
  /** Bytes of entries in one App message (at least one entry is always sent). 0 = one entry per message. */
  maxSizePerMsg?: number;
  /** App messages in flight to one follower in replicate state. > 0. */
  maxInflightMsgs?: number;
  /** Bytes of entries in flight to one follower. 0 = no byte limit (maxInflightMsgs still applies). */
  maxInflightBytes?: number;
  /**
   * Bytes of payload of entries the leader appended but has not committed; proposals beyond it are dropped
   * (ProposalDroppedError). 0 = no limit. A single proposal larger than the limit is accepted when nothing
   * is uncommitted, so that it can make progress at all.
   */
  maxUncommittedEntriesSize?: number;
  /** Bytes of committed entries in one Ready (at least one entry). 0 = same as maxSizePerMsg. */
  maxCommittedSizePerReady?: number;
  /** Reads pending on a leader (waiting for a heartbeat quorum or for a commit in its term). 0 = no limit. */
  maxPendingReadIndex?: number;
  /** Uniform random numbers in [0, 1) for election timeouts; seeded by the driver for reproducibility. */
  random: () => number;
  /** How ReadIndex is confirmed. Only 'safe' (a heartbeat round to a quorum) exists. */
  readOnlyOption?: ReadOnlyOption;
  /** Followers drop proposals instead of forwarding them to the leader (ProposalDroppedError). */
  disableProposalForwarding?: boolean;
}

/** A Config with every optional field filled in. */
export type ResolvedConfig = Required<Config>;

export const DEFAULT_MAX_SIZE_PER_MSG = 1024 * 1024;
export const DEFAULT_MAX_INFLIGHT_MSGS = 256;
export const DEFAULT_MAX_PENDING_READ_INDEX = 4096;

/** Fills defaults and throws RaftConfigError on anything a caller should never pass. */
export function resolveConfig(c: Config): ResolvedConfig {
  const r: ResolvedConfig = {
    id: c.id,
    electionTick: c.electionTick,
    heartbeatTick: c.heartbeatTick,
    storage: c.storage,
    applied: c.applied ?? 0,
    preVote: c.preVote ?? false,
    checkQuorum: c.checkQuorum ?? false,
    maxSizePerMsg: c.maxSizePerMsg ?? DEFAULT_MAX_SIZE_PER_MSG,
    maxInflightMsgs: c.maxInflightMsgs ?? DEFAULT_MAX_INFLIGHT_MSGS,
    maxInflightBytes: c.maxInflightBytes ?? 0,
    maxUncommittedEntriesSize: c.maxUncommittedEntriesSize ?? 0,
    maxCommittedSizePerReady: c.maxCommittedSizePerReady ?? 0,
    maxPendingReadIndex: c.maxPendingReadIndex ?? DEFAULT_MAX_PENDING_READ_INDEX,
    random: c.random,
    readOnlyOption: c.readOnlyOption ?? 'safe',
    disableProposalForwarding: c.disableProposalForwarding ?? false,
  };
  if (r.maxCommittedSizePerReady === 0) r.maxCommittedSizePerReady = r.maxSizePerMsg;
  validate(r);
  return r;
}

function nonNegativeInt(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RaftConfigError(`${name} must be an integer >= 0, got ${v}`);
}

function positiveInt(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v <= 0) throw new RaftConfigError(`${name} must be an integer > 0, got ${v}`);
}

function validate(r: ResolvedConfig): void {
  if (!Number.isSafeInteger(r.id) || r.id <= NONE) throw new RaftConfigError(`id must be an integer > 0, got ${r.id}`);
  positiveInt('heartbeatTick', r.heartbeatTick);
  positiveInt('electionTick', r.electionTick);
  if (r.electionTick <= r.heartbeatTick) {
    throw new RaftConfigError(`electionTick (${r.electionTick}) must be greater than heartbeatTick (${r.heartbeatTick})`);
  }
  if (r.storage === undefined || r.storage === null) throw new RaftConfigError('storage is required');
  if (typeof r.random !== 'function') throw new RaftConfigError('random is required');
  nonNegativeInt('applied', r.applied);
  nonNegativeInt('maxSizePerMsg', r.maxSizePerMsg);
  positiveInt('maxInflightMsgs', r.maxInflightMsgs);
  nonNegativeInt('maxInflightBytes', r.maxInflightBytes);
  if (r.maxInflightBytes > 0 && r.maxInflightBytes < r.maxSizePerMsg) {
    throw new RaftConfigError(`maxInflightBytes (${r.maxInflightBytes}) must be >= maxSizePerMsg (${r.maxSizePerMsg})`);
  }
  nonNegativeInt('maxUncommittedEntriesSize', r.maxUncommittedEntriesSize);
  nonNegativeInt('maxCommittedSizePerReady', r.maxCommittedSizePerReady);
  nonNegativeInt('maxPendingReadIndex', r.maxPendingReadIndex);
  if (r.readOnlyOption !== 'safe') throw new RaftConfigError(`readOnlyOption '${String(r.readOnlyOption)}' is not supported`);
}
