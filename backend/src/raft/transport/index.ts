// Public surface of the Raft TCP transport.
export { RaftTransport } from './transport.ts';
export type { MessageHandler, RaftTransportOptions, SnapshotStatusHandler, UnreachableHandler } from './transport.ts';
export { DEFAULT_TRANSPORT_LIMITS, backoffDelayMs, resolveLimits } from './limits.ts';
export type { TransportLimits } from './limits.ts';
export type { PeerMetrics, TransportCounters, TransportMetrics } from './metrics.ts';
export type { PeerAddress } from './peer.ts';
export { MemorySnapshotSink, memorySnapshotSink, memorySnapshotSource } from './snapshot.ts';
export type { SnapshotReceiveInfo, SnapshotSink, SnapshotSinkFactory, SnapshotSource, SnapshotSourceFactory } from './snapshot.ts';
export { FrameDecodeError } from './frame.ts';
export { DialError } from './dial.ts';
