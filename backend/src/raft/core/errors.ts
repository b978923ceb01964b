// Errors of the Raft core. Each has a stable `code` so callers branch on the code, not on the message.
//
// Two kinds:
// - Operating errors the caller is expected to handle: CompactedError / UnavailableError /
//   SnapshotTemporarilyUnavailableError (storage lookups, handled inside the core), ProposalDroppedError
//   (retry later or elsewhere), SnapOutOfDateError (a stale snapshot offered to storage).
// - Programmer errors: RaftConfigError (invalid Config) and RaftAssertionError (an invariant broke: the core
//   or its driver has a bug, and continuing could lose or corrupt data, so the caller should crash).

export class RaftError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The requested index is older than the storage's first index (it was compacted into a snapshot). */
export class CompactedError extends RaftError {
  constructor(index: number, firstIndex: number) {
    super('RAFT_COMPACTED', `index ${index} is compacted (first available index ${firstIndex})`);
  }
}

/** The requested index is beyond the storage's last index. */
export class UnavailableError extends RaftError {
  constructor(index: number, lastIndex: number) {
    super('RAFT_UNAVAILABLE', `index ${index} is unavailable (last index ${lastIndex})`);
  }
}

/** The storage is building a snapshot; the leader retries later. */
export class SnapshotTemporarilyUnavailableError extends RaftError {
  constructor() {
    super('RAFT_SNAPSHOT_TEMPORARILY_UNAVAILABLE', 'snapshot is temporarily unavailable');
  }
}

/** A snapshot older than (or as old as) the one the storage already has. */
export class SnapOutOfDateError extends RaftError {
  constructor(index: number, current: number) {
    super('RAFT_SNAP_OUT_OF_DATE', `snapshot at index ${index} is not newer than the current one at ${current}`);
  }
}

export type ProposalDropReason =
  | 'no-leader'
  | 'forwarding-disabled'
  | 'leader-transfer'
  | 'uncommitted-limit'
  | 'not-in-config';

/**
 * The proposal was not appended to any log. Nothing about it will be committed; the caller may retry
 * (after a leader is known, after the transfer, once the uncommitted backlog shrinks).
 */
export class ProposalDroppedError extends RaftError {
  readonly reason: ProposalDropReason;

  constructor(reason: ProposalDropReason) {
    super('RAFT_PROPOSAL_DROPPED', `raft proposal dropped: ${reason}`);
    this.reason = reason;
  }
}

/** A ReadIndex request was not queued or forwarded (no leader known, or too many reads pending). */
export class ReadIndexDroppedError extends RaftError {
  constructor(reason: 'no-leader' | 'pending-limit') {
    super('RAFT_READ_INDEX_DROPPED', `raft read index dropped: ${reason}`);
  }
}

export class RaftConfigError extends RaftError {
  constructor(message: string) {
    super('RAFT_CONFIG_INVALID', message);
  }
}

/** A ConfChange that cannot be applied to the current configuration, or bytes that do not decode to one. */
export class ConfChangeError extends RaftError {
  constructor(message: string) {
    super('RAFT_CONF_CHANGE_INVALID', message);
  }
}

/** A caller passed an argument the API never accepts (an empty read context, a node id of 0). */
export class RaftArgumentError extends RaftError {
  constructor(message: string) {
    super('RAFT_INVALID_ARGUMENT', message);
  }
}

export class RaftAssertionError extends RaftError {
  constructor(message: string) {
    super('RAFT_ASSERTION', message);
  }
}

/** Throws RaftAssertionError when `condition` is false. For invariants, never for input validation. */
export function assert(condition: boolean, message: string | (() => string)): asserts condition {
  if (!condition) throw new RaftAssertionError(typeof message === 'string' ? message : message());
}
