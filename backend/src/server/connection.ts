// One client connection: framing, pipelining and ordered replies.
//
// Frames are taken off the socket in arrival order and given to the FrameHandler at once, so handlers START in
// request order (a Produce handler that queues its append before its first await keeps the producer's order)
// while up to inFlightRequestsMax of them run concurrently. Replies go out strictly in request order: a slot per
// request is queued, and the head of the queue is written as soon as it is done, with everything done behind it.
//
// Backpressure: when inFlightRequestsMax requests are unanswered, or the replies held for this connection (done
// but waiting for an earlier one, or in the socket's write buffer) exceed responseBytesMax, the socket is paused;
// it resumes once a reply is written or the socket drains. So a client can never make the broker hold more than
// inFlightRequestsMax requests and about responseBytesMax reply bytes (plus one reply) for one connection.
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { FrameReader, FrameSizeError } from './framing.ts';

/** An encoded reply: size prefix, header and body as chunks, written with writev without copying. */
export interface EncodedResponse {
  chunks: Buffer[];
  bytes: number;
}

/** What the FrameHandler decided for one frame: a reply (null: the protocol sends none, acks=0), now or later. */
export type FrameOutcome = EncodedResponse | null | Promise<EncodedResponse | null>;

/**
 * Thrown (or rejected) by a FrameHandler to close the connection after it has logged why: a malformed or
 * unsupported request, or a failed handler. Anything else thrown is a bug in the server and logged here.
 */
export class CloseConnection extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'CloseConnection';
  }
}

export interface ConnectionInfo {
  readonly id: number;
  readonly remoteAddress: string;
  readonly log: Logger;
  /** Aborted when the connection closes or the server begins its shutdown. */
  readonly signal: AbortSignal;
}

export type FrameHandler = (frame: Buffer, connection: ConnectionInfo) => FrameOutcome;

export interface ConnectionLimits {
  /** Largest request frame (bytes, without the size prefix); a bigger one closes the connection unread. */
  requestBytesMax: number;
  /** Requests decoded and in progress at once; beyond it the socket is paused (count, >= 1). */
  inFlightRequestsMax: number;
  /** Reply bytes held unsent before the socket is paused (bytes). */
  responseBytesMax: number;
  /** Close after this long with nothing in flight and no traffic (ms); 0: never. */
  connectionsIdleMs: number;
}

interface Slot {
  done: boolean;
  response: EncodedResponse | null;
}

type State = 'open' | 'draining' | 'closed';

function isPromise<T>(value: unknown): value is Promise<T> {
  return typeof (value as Promise<T> | null)?.then === 'function';
}

export class Connection implements ConnectionInfo {
  readonly id: number;
  readonly remoteAddress: string;
  readonly log: Logger;
  /** Resolves once the socket is closed. */
  readonly closed: Promise<void>;

  private readonly socket: Socket;
  private readonly limits: ConnectionLimits;
  private readonly handleFrame: FrameHandler;
  private readonly frames: FrameReader;
  private readonly abortController = new AbortController();
  // Invariant: queue holds one slot per accepted request not yet written, in request order.
  private readonly queue: Slot[] = [];
  /** Bytes of done replies still in the queue (waiting for an earlier reply). */
  private heldBytes = 0;
  private state: State = 'open';
  private paused = false;
  /** pump() runs; a reply completed synchronously inside it must not recurse into a second pump. */
  private pumping = false;
  private drainWaiters: (() => void)[] = [];

  constructor(socket: Socket, id: number, limits: ConnectionLimits, handleFrame: FrameHandler, log: Logger) {
    this.socket = socket;
    this.id = id;
    this.limits = limits;
    this.handleFrame = handleFrame;
    this.remoteAddress = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.log = log.child({ conn: id, remote: this.remoteAddress });
    this.frames = new FrameReader(limits.requestBytesMax);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));

    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.pump());
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'socket error'));
    socket.on('close', () => this.onClose());
    if (limits.connectionsIdleMs > 0) {
      socket.setTimeout(limits.connectionsIdleMs);
      socket.on('timeout', () => this.onIdle());
    }
  }

  get signal(): AbortSignal {
    return this.abortController.signal;
  }

  /** Requests accepted and not yet answered (written). */
  get inFlight(): number {
    return this.queue.length;
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  /**
   * Shutdown, step 1: read no more requests and abort long waits; resolves once every accepted request has been
   * answered (or the connection closed).
   */
  drain(): Promise<void> {
    if (this.state === 'open') {
      this.state = 'draining';
      this.setPaused(true);
      this.abortController.abort(new Error('server shutting down'));
    }
    if (this.state === 'closed' || this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Shutdown, step 2: send what is written, then FIN. */
  end(): void {
    if (this.state === 'closed') return;
    this.state = 'draining';
    // Read again (onData drops what arrives now): a client that sent requests after the drain began has its FIN
    // queued behind them, and a paused socket would never see it and only close at the shutdown deadline.
    this.setPaused(false);
    this.socket.end();
  }

  /** Close now, dropping unanswered requests. The reason is logged at debug (callers log the cause). */
  destroy(reason: string): void {
    if (this.state === 'closed') return;
    this.log.debug({ reason }, 'closing connection');
    this.markClosed();
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.state !== 'open') return;
    this.frames.push(chunk);
    this.pump();
  }

  /** Take as many whole frames as the limits allow, then pause or resume the socket. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      this.pumpFrames();
    } finally {
      this.pumping = false;
    }
    if (this.state === 'open') this.setPaused(!this.hasCapacity());
  }

  private pumpFrames(): void {
    while (this.state === 'open' && this.hasCapacity()) {
      let frame: Buffer | null;
      try {
        frame = this.frames.next();
      } catch (err) {
        if (!(err instanceof FrameSizeError)) throw err;
        this.log.warn({ size: err.size, requestBytesMax: this.limits.requestBytesMax }, 'request frame too large, closing connection');
        this.destroy('frame too large');
        return;
      }
      if (frame === null) return;
      this.accept(frame);
    }
  }

  private hasCapacity(): boolean {
    return (
      this.queue.length < this.limits.inFlightRequestsMax &&
      this.heldBytes + this.socket.writableLength < this.limits.responseBytesMax
    );
  }

  private setPaused(paused: boolean): void {
    if (paused === this.paused) return;
    this.paused = paused;
    if (paused) this.socket.pause();
    else this.socket.resume();
  }

  private accept(frame: Buffer): void {
    const slot: Slot = { done: false, response: null };
    this.queue.push(slot);
    let outcome: FrameOutcome;
    try {
      outcome = this.handleFrame(frame, this);
    } catch (err) {
      this.fail(err);
      return;
    }
    if (isPromise<EncodedResponse | null>(outcome)) {
      outcome.then(
        (response) => this.complete(slot, response),
        (err: unknown) => this.fail(err),
      );
    } else {
      this.complete(slot, outcome);
    }
  }

  private complete(slot: Slot, response: EncodedResponse | null): void {
    if (this.state === 'closed') return;
    slot.done = true;
    slot.response = response;
    if (response !== null) this.heldBytes += response.bytes;
    this.flush();
  }

  private fail(err: unknown): void {
    if (this.state === 'closed') return;
    if (err instanceof CloseConnection) {
      this.destroy(err.message);
      return;
    }
    this.log.error({ err }, 'unexpected error while serving a request, closing connection');
    this.destroy('internal error');
  }

  /** Write every done reply at the head of the queue, in one writev. */
  private flush(): void {
    const queue = this.queue;
    if (queue.length === 0 || !queue[0]!.done) return;
    this.socket.cork();
    while (queue.length > 0 && queue[0]!.done) {
      const { response } = queue.shift()!;
      if (response === null) continue;
      for (const chunk of response.chunks) this.socket.write(chunk);
      this.heldBytes -= response.bytes;
    }
    this.socket.uncork();
    if (queue.length === 0) this.wakeDrainWaiters();
    this.pump();
  }

  private onIdle(): void {
    // The timer only says the socket saw no traffic; a long poll (Fetch, JoinGroup) in flight is not idleness.
    if (this.state !== 'open' || this.queue.length > 0) return;
    this.log.info({ connectionsIdleMs: this.limits.connectionsIdleMs }, 'closing idle connection');
    this.destroy('idle');
  }

  private onClose(): void {
    if (this.state !== 'closed') {
      this.log.debug('connection closed by peer');
      this.markClosed();
    }
  }

  private markClosed(): void {
    this.state = 'closed';
    this.queue.length = 0;
    this.heldBytes = 0;
    if (!this.signal.aborted) this.abortController.abort(new Error('connection closed'));
    this.wakeDrainWaiters();
  }

  private wakeDrainWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const wake of waiters) wake();
  }
}
