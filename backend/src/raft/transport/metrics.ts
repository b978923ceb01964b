// Counters of the Raft transport, kept as plain numbers (cheap to bump on the hot path) and read as a copy.

/** Totals since the transport was created. */
export interface TransportCounters {
  /** Message frames written to a peer's socket (not a promise of delivery). */
  messagesSent: number;
  /** Messages handed to the onMessage handler (snapshots included). */
  messagesReceived: number;
  /** Messages not sent: peer queue full, unknown peer, larger than frameBytesMax, or transport stopped. */
  messagesDropped: number;
  /** Of messagesDropped: the encoded message was larger than frameBytesMax. */
  messagesTooLarge: number;
  /** Messages to this node itself, delivered without the network. */
  messagesLocal: number;
  /** Frame bytes written to sockets, length prefixes included (messages and snapshot channels). */
  bytesSent: number;
  /** Bytes read from inbound connections. */
  bytesReceived: number;
  /** Outbound dials started (messages and snapshot channels). */
  connectAttempts: number;
  /** Messages-channel dials that failed before the handshake completed. */
  connectFailures: number;
  /** Messages-channel handshakes completed after an earlier connection was lost or a dial failed. */
  reconnects: number;
  /** Established messages-channel connections that were lost. */
  disconnects: number;
  /** Times a peer was reported unreachable to the onUnreachable handler (at most once per peer per tick). */
  unreachableReports: number;
  /** Inbound connections closed for a bad frame, a refused handshake or a protocol violation. */
  inboundRejected: number;
  snapshotsSent: number;
  snapshotsSendFailed: number;
  snapshotsReceived: number;
  snapshotsReceiveFailed: number;
}

export interface PeerMetrics {
  /** The messages channel has completed its handshake and is open. */
  connected: boolean;
  queuedMessages: number;
  /** Queued frame bytes plus bytes the socket has not sent yet. */
  queuedBytes: number;
  sent: number;
  dropped: number;
  /** Dial failures in a row (resets on a completed handshake): drives the backoff. */
  failures: number;
  snapshotInFlight: boolean;
}

export interface TransportMetrics extends TransportCounters {
  /** Keyed by node id. */
  peers: Record<string, PeerMetrics>;
  inboundConnections: number;
  snapshotsReceiving: number;
}

export function newCounters(): TransportCounters {
  return {
    messagesSent: 0,
    messagesReceived: 0,
    messagesDropped: 0,
    messagesTooLarge: 0,
    messagesLocal: 0,
    bytesSent: 0,
    bytesReceived: 0,
    connectAttempts: 0,
    connectFailures: 0,
    reconnects: 0,
    disconnects: 0,
    unreachableReports: 0,
    inboundRejected: 0,
    snapshotsSent: 0,
    snapshotsSendFailed: 0,
    snapshotsReceived: 0,
    snapshotsReceiveFailed: 0,
  };
}
