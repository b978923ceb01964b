// The outbound messages channel to one peer: one TCP connection, kept open (redialed with exponential backoff
// while the peer is down), fed from a bounded queue. Messages sent in one tick of the event loop leave in one
// corked write (one writev), in the order they were sent. A full queue drops the new message: Raft retries what
// matters, and the transport reports the peer unreachable so the leader stops streaming to it.
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { NodeId } from '../core/types.ts';
import { Channel } from './codec.ts';
import { dial } from './dial.ts';
import type { DialedConnection } from './dial.ts';
import { backoffDelayMs } from './limits.ts';
import type { TransportLimits } from './limits.ts';
import type { PeerMetrics, TransportCounters } from './metrics.ts';

export interface PeerAddress {
  host: string;
  port: number;
}

/** What a link needs from its transport. */
export interface LinkContext {
  readonly selfId: NodeId;
  readonly clusterId: string;
  readonly clusterTag: number;
  readonly limits: TransportLimits;
  readonly random: () => number;
  readonly counters: TransportCounters;
  readonly log: Logger;
  /** Report the peer unreachable (the transport defers and deduplicates the callback). */
  unreachable(id: NodeId): void;
}

type LinkState = 'idle' | 'connecting' | 'ready' | 'closed';

export class PeerLink {
  readonly id: NodeId;
  readonly address: PeerAddress;
  private readonly ctx: LinkContext;
  private readonly log: Logger;
  // Invariant: queue holds the frames not yet written, in send order; queuedBytes is their total size.
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private state: LinkState = 'idle';
  private started = false;
  private socket: Socket | null = null;
  private dialAbort: AbortController | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private flushImmediate: NodeJS.Immediate | null = null;
  private stallTimer: NodeJS.Timeout | null = null;
  /** Frames the socket finished writing (the stall watchdog's progress mark). */
  private written = 0;
  private writtenAtStallCheck = 0;
  /** Dial failures in a row; reset by a completed handshake. */
  private failures = 0;
  private connectedBefore = false;
  private sent = 0;
  private dropped = 0;
  private readonly onWritten = (err?: Error | null): void => {
    if (err == null) this.written++;
  };

  constructor(id: NodeId, address: PeerAddress, ctx: LinkContext) {
    this.id = id;
    this.address = address;
    this.ctx = ctx;
    this.log = ctx.log.child({ peer: id });
  }

  /** Begin dialing (once); messages enqueued before wait in the queue. */
  start(): void {
    if (this.started || this.state === 'closed') return;
    this.started = true;
    this.connect();
  }

  /** Queue an encoded frame; false (and counted) when the queue is full or the link closed. */
  enqueue(frame: Buffer): boolean {
    const limits = this.ctx.limits;
    const heldBytes = this.queuedBytes + (this.socket?.writableLength ?? 0);
    if (
      this.state === 'closed' ||
      this.queue.length >= limits.peerQueueMessagesMax ||
      heldBytes + frame.length > limits.peerQueueBytesMax
    ) {
      this.dropped++;
      return false;
    }
    this.queue.push(frame);
    this.queuedBytes += frame.length;
    if (this.state === 'ready') this.scheduleFlush();
    return true;
  }

  /** Close for good: the queue is dropped, timers cleared, the socket destroyed. */
  close(): void {
    this.state = 'closed';
    this.clearTimers();
    this.dialAbort?.abort();
    this.dialAbort = null;
    this.socket?.destroy();
    this.socket = null;
    this.queue = [];
    this.queuedBytes = 0;
  }

  metrics(): PeerMetrics {
    return {
      connected: this.state === 'ready',
      queuedMessages: this.queue.length,
      queuedBytes: this.queuedBytes + (this.socket?.writableLength ?? 0),
      sent: this.sent,
      dropped: this.dropped,
      failures: this.failures,
      snapshotInFlight: false,
    };
  }

  private connect(): void {
    const { ctx } = this;
    this.state = 'connecting';
    ctx.counters.connectAttempts++;
    const abort = new AbortController();
    this.dialAbort = abort;
    dial({
      host: this.address.host,
      port: this.address.port,
      peerId: this.id,
      selfId: ctx.selfId,
      clusterId: ctx.clusterId,
      clusterTag: ctx.clusterTag,
      channel: Channel.Messages,
      connectTimeoutMs: ctx.limits.connectTimeoutMs,
      frameBytesMax: ctx.limits.frameBytesMax,
      tcpKeepAliveMs: ctx.limits.tcpKeepAliveMs,
      signal: abort.signal,
    }).then(
      (conn) => this.onDialed(conn),
      (err: Error) => this.onDialFailed(err),
    );
  }

  private onDialed({ socket, decoder }: DialedConnection): void {
    this.dialAbort = null;
    if (this.state === 'closed') {
      socket.destroy();
      return;
    }
    if (decoder.bufferedBytes > 0) {
      socket.destroy();
      this.onDialFailed(new Error('peer sent data after its handshake answer'));
      return;
    }
    if (this.failures > 0 || this.connectedBefore) {
      this.ctx.counters.reconnects++;
      this.log.info({ failures: this.failures }, 'reconnected to raft peer');
    } else {
      this.log.debug('connected to raft peer');
    }
    this.state = 'ready';
    this.socket = socket;
    this.failures = 0;
    this.connectedBefore = true;
    // Nothing flows back on a messages channel: the peer answers over its own connection to us.
    socket.on('data', () => {
      this.log.warn('raft peer sent data on an outbound messages connection; closing it');
      socket.destroy();
    });
    socket.on('close', () => this.onSocketClosed(socket));
    socket.resume();
    this.scheduleFlush();
  }

  private onDialFailed(err: Error): void {
    this.dialAbort = null;
    if (this.state === 'closed') return;
    this.state = 'idle';
    this.failures++;
    this.ctx.counters.connectFailures++;
    // One warning when a peer becomes unreachable; the retries that follow log at debug.
    const fields = { err: err.message, failures: this.failures, host: this.address.host, port: this.address.port };
    if (this.failures === 1) this.log.warn(fields, 'cannot reach raft peer');
    else this.log.debug(fields, 'cannot reach raft peer');
    this.ctx.unreachable(this.id);
    this.scheduleReconnect();
  }

  private onSocketClosed(socket: Socket): void {
    if (this.socket !== socket) return;
    this.socket = null;
    this.clearStallTimer();
    if (this.state === 'closed') return;
    this.state = 'idle';
    this.ctx.counters.disconnects++;
    this.log.warn('connection to raft peer lost');
    this.ctx.unreachable(this.id);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const delay = backoffDelayMs(Math.max(1, this.failures), this.ctx.limits, this.ctx.random);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.state === 'idle') this.connect();
    }, delay);
  }

  private scheduleFlush(): void {
    if (this.flushImmediate === null) this.flushImmediate = setImmediate(() => this.flush());
  }

  /** Everything queued this tick goes out in one corked write. */
  private flush(): void {
    this.flushImmediate = null;
    const socket = this.socket;
    if (this.state !== 'ready' || socket === null || this.queue.length === 0) return;
    const frames = this.queue;
    const bytes = this.queuedBytes;
    this.queue = [];
    this.queuedBytes = 0;
    socket.cork();
    for (const frame of frames) socket.write(frame, this.onWritten);
    socket.uncork();
    this.sent += frames.length;
    this.ctx.counters.messagesSent += frames.length;
    this.ctx.counters.bytesSent += bytes;
    if (socket.writableLength > 0 && this.stallTimer === null) this.armStallTimer();
  }

  private armStallTimer(): void {
    const ms = this.ctx.limits.writeStallTimeoutMs;
    if (ms === 0) return;
    this.writtenAtStallCheck = this.written;
    this.stallTimer = setTimeout(() => this.checkStall(), ms);
  }

  /** Unsent bytes and no write completed for writeStallTimeoutMs: the peer stopped reading. */
  private checkStall(): void {
    this.stallTimer = null;
    const socket = this.socket;
    if (socket === null || socket.writableLength === 0) return;
    if (this.written === this.writtenAtStallCheck) {
      this.log.warn({ unsentBytes: socket.writableLength, writeStallTimeoutMs: this.ctx.limits.writeStallTimeoutMs },
        'raft peer stopped reading; closing the connection');
      socket.destroy();
      return;
    }
    this.armStallTimer();
  }

  private clearStallTimer(): void {
    if (this.stallTimer !== null) clearTimeout(this.stallTimer);
    this.stallTimer = null;
  }

  private clearTimers(): void {
    this.clearStallTimer();
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    if (this.flushImmediate !== null) clearImmediate(this.flushImmediate);
    this.flushImmediate = null;
  }
}
