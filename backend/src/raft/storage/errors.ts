// Errors of the durable Raft storage. Like the core's errors they carry a stable `code`.

import { RaftError } from '../core/errors.ts';

/**
 * Stored bytes failed verification (CRC, length, layout) or an entry that must exist is missing. Never
 * retried or repaired silently: the node must not serve or vote from a log it cannot trust.
 */
export class StorageCorruptionError extends RaftError {
  /** The log index the corruption was found at, when it concerns one entry. */
  readonly index: number | undefined;

  constructor(message: string, index?: number) {
    super('RAFT_STORAGE_CORRUPT', message);
    this.index = index;
  }
}

/** A snapshot file (or a streamed snapshot) failed verification; `path` is left on disk for inspection. */
export class SnapshotCorruptError extends RaftError {
  readonly path: string;

  constructor(path: string, why: string) {
    super('RAFT_SNAPSHOT_CORRUPT', `snapshot ${path} is corrupt: ${why}`);
    this.path = path;
  }
}

/** The store was closed, or failed (a commit or fsync error leaves the on-disk state uncertain). */
export class StorageClosedError extends RaftError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('RAFT_STORAGE_CLOSED', message, options);
  }
}

/** A limit setting was reached (queue length, snapshot size, concurrent receives). */
export class StorageLimitError extends RaftError {
  constructor(message: string) {
    super('RAFT_STORAGE_LIMIT', message);
  }
}
