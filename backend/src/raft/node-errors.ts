// Errors a RaftNode hands to callers of propose() and readBarrier(), besides NotLeaderError (node-types.ts)
// and the core's ProposalDroppedError (leader transfer in progress, uncommitted backlog full). Each has a
// stable `code`; `retriable` says whether the same request may simply be sent again (possibly to the leader).
//
// "Outcome unknown": a proposal rejected after it entered the log (timeout, leadership lost, node stopped)
// may still be committed and applied later. Callers that must not apply a command twice make it idempotent
// (Kafka: producer id + sequence numbers).

export class RaftNodeError extends Error {
  readonly code: string;
  readonly retriable: boolean;

  constructor(code: string, message: string, retriable: boolean, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.retriable = retriable;
  }
}

/** Not applied within proposalTimeoutMs (or the read not confirmed in time). Outcome unknown for proposals. */
export class ProposalTimeoutError extends RaftNodeError {
  constructor(timeoutMs: number, what: 'proposal' | 'read barrier' = 'proposal') {
    super('RAFT_PROPOSAL_TIMEOUT', `${what} not completed within ${timeoutMs} ms (proposalTimeoutMs)`, true);
  }
}

/** Too many proposals (or read barriers) pending on this node; nothing was proposed. */
export class ProposalQueueFullError extends RaftNodeError {
  constructor(what: string, max: number) {
    super('RAFT_QUEUE_FULL', `${max} ${what} already pending on this node`, true);
  }
}

/** The node is stopped or stopping (or failed); it serves nothing. Outcome unknown for proposals in flight. */
export class RaftNodeStoppedError extends RaftNodeError {
  constructor(reason: string, options?: { cause?: unknown }) {
    super('RAFT_NODE_STOPPED', `raft node stopped: ${reason}`, false, options);
  }
}

/** A command larger than proposalBytesMax: it could never be replicated (one message carries one entry whole). */
export class ProposalTooLargeError extends RaftNodeError {
  constructor(bytes: number, max: number) {
    super('RAFT_PROPOSAL_TOO_LARGE', `proposal of ${bytes} bytes exceeds proposalBytesMax (${max} bytes)`, false);
  }
}
