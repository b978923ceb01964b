// Every bound of the Raft transport, with its unit. A Raft transport may lose messages (the protocol retries),
// so every queue has a hard limit and overflow means "drop and report", never "grow".

export interface TransportLimits {
  /**
   * Largest frame sent or accepted (bytes after the 4-byte length prefix: header + payload). A bigger incoming
   * frame closes the connection before its body is read; a bigger outgoing message is dropped with a warning.
   * Must hold a snapshot chunk (snapshotChunkBytes + 26 bytes of frame header and chunk offset).
   */
  frameBytesMax: number;
  /** Messages waiting for one peer's connection (count, >= 1); beyond it new messages are dropped. */
  peerQueueMessagesMax: number;
  /**
   * Bytes held for one peer (bytes, >= frameBytesMax): queued frames plus what its socket has not sent yet.
   * A message that would exceed it is dropped. This bounds the memory a dead or frozen peer can cost.
   */
  peerQueueBytesMax: number;
  /** Time to open a TCP connection to a peer and get its handshake answer (ms, >= 1). */
  connectTimeoutMs: number;
  /** Time an inbound connection has to send its handshake before it is closed (ms, >= 1). */
  handshakeTimeoutMs: number;
  /** First delay before redialing a peer after a failure (ms, >= 1); doubles per failure, with jitter. */
  reconnectBackoffMinMs: number;
  /** Largest delay between redials of a peer (ms, >= reconnectBackoffMinMs). */
  reconnectBackoffMaxMs: number;
  /**
   * Close an outbound connection whose unsent bytes made no progress for this long (ms): the peer is frozen or
   * gone without a reset, and reconnecting reports it unreachable. 0 = never (rely on TCP alone).
   */
  writeStallTimeoutMs: number;
  /** TCP keep-alive idle time before the first probe on every connection (ms); 0 = keep-alive off. */
  tcpKeepAliveMs: number;
  /** Inbound connections open at once, all peers and channels (count, >= 1); one more is closed at once. */
  inboundConnectionsMax: number;
  /** Snapshot data per chunk frame (bytes, >= 1). */
  snapshotChunkBytes: number;
  /** Largest snapshot a receiver accepts (bytes of snapshot data); a bigger one is refused before any data. */
  snapshotBytesMax: number;
  /** Time to receive a whole snapshot, from its handshake to its last byte (ms, >= 1). */
  snapshotReceiveTimeoutMs: number;
  /** Time to send a whole snapshot, from dialing to the receiver's answer (ms, >= 1). */
  snapshotSendTimeoutMs: number;
  /** Snapshots being received at once, all peers (count, >= 1); one more is refused. */
  snapshotReceivesMax: number;
}

const MiB = 1024 * 1024;

export const DEFAULT_TRANSPORT_LIMITS: Readonly<TransportLimits> = Object.freeze({
  frameBytesMax: 16 * MiB,
  peerQueueMessagesMax: 4096,
  peerQueueBytesMax: 64 * MiB,
  connectTimeoutMs: 3000,
  handshakeTimeoutMs: 3000,
  reconnectBackoffMinMs: 50,
  reconnectBackoffMaxMs: 2000,
  writeStallTimeoutMs: 15_000,
  tcpKeepAliveMs: 5000,
  inboundConnectionsMax: 64,
  snapshotChunkBytes: 1 * MiB,
  snapshotBytesMax: 1024 * MiB,
  snapshotReceiveTimeoutMs: 300_000,
  snapshotSendTimeoutMs: 300_000,
  snapshotReceivesMax: 2,
});

/** Bytes a chunk frame adds around its data: the frame header and the chunk's offset field. */
export const CHUNK_FRAME_OVERHEAD_BYTES = 18 + 8;

/** Defaults completed by `overrides`, checked; throws RangeError naming the first bad setting. */
export function resolveLimits(overrides: Partial<TransportLimits> = {}): TransportLimits {
  const limits: TransportLimits = { ...DEFAULT_TRANSPORT_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    const zeroAllowed = name === 'writeStallTimeoutMs' || name === 'tcpKeepAliveMs';
    if (!Number.isSafeInteger(value) || value < (zeroAllowed ? 0 : 1)) {
      throw new RangeError(`transport limit ${name} must be an integer >= ${zeroAllowed ? 0 : 1}, got ${value}`);
    }
  }
  if (limits.reconnectBackoffMaxMs < limits.reconnectBackoffMinMs) {
    throw new RangeError('reconnectBackoffMaxMs must be >= reconnectBackoffMinMs');
  }
  if (limits.frameBytesMax < limits.snapshotChunkBytes + CHUNK_FRAME_OVERHEAD_BYTES) {
    throw new RangeError(
      `frameBytesMax (${limits.frameBytesMax}) must hold a snapshot chunk: snapshotChunkBytes + ${CHUNK_FRAME_OVERHEAD_BYTES}`,
    );
  }
  if (limits.peerQueueBytesMax < limits.frameBytesMax) {
    throw new RangeError('peerQueueBytesMax must be >= frameBytesMax (one largest message must fit)');
  }
  return limits;
}

/**
 * Delay before redial number `failures` (>= 1): the base doubles per failure from reconnectBackoffMinMs up to
 * reconnectBackoffMaxMs; the delay is uniform in [base / 2, base] (jitter, so peers that failed together do not
 * redial together), never below reconnectBackoffMinMs. random() is in [0, 1).
 */
export function backoffDelayMs(failures: number, limits: TransportLimits, random: () => number): number {
  const { reconnectBackoffMinMs: min, reconnectBackoffMaxMs: max } = limits;
  const base = Math.min(max, min * 2 ** Math.min(Math.max(failures, 1) - 1, 30));
  return Math.max(min, Math.round(base * (0.5 + 0.5 * random())));
}
