// A minimal Kafka client for one job: a follower forwards a request (topic creation) to the leader's Kafka
// listener, as Kafka brokers forward to their controller (KIP-590). One connection to the current target,
// requests pipelined by correlation id, every request bounded in time, the pending count and response size
// bounded. Anything unexpected closes the connection and fails what was pending; the next request redials.
import net from 'node:net';
import type { Logger } from 'pino';
import { ErrorCode, KafkaError } from '../../protocol/errors.ts';
import { decodeResponseFrame, encodeRequestFrame } from '../../protocol/frame.ts';

export interface ForwarderOptions {
  /** How long one forwarded request may take (ms). */
  requestTimeoutMs: number;
  /** Requests waiting for an answer at once (count); more are refused at once. */
  pendingMax: number;
  /** Largest response frame accepted (bytes); a bigger one closes the connection. */
  responseBytesMax: number;
  clientId: string;
  logger: Logger;
}

interface Pending {
  apiKey: number;
  version: number;
  timer: NodeJS.Timeout;
  resolve(body: unknown): void;
  reject(err: unknown): void;
}

interface Connection {
  key: string;
  socket: net.Socket;
  ready: Promise<void>;
  buffered: Buffer;
  pending: Map<number, Pending>;
}

const INT32_MAX = 2147483647;

function unavailable(message: string): KafkaError {
  return new KafkaError(ErrorCode.LEADER_NOT_AVAILABLE, message);
}

export class KafkaForwarder {
  private readonly opts: ForwarderOptions;
  private conn: Connection | null = null;
  private nextCorrelationId = 1;
  private closed = false;

  constructor(opts: ForwarderOptions) {
    this.opts = opts;
  }

  /** Sends one request to host:port and resolves with the decoded response body. */
  async request<T>(target: { host: string; port: number }, apiKey: number, version: number, body: unknown): Promise<T> {
    if (this.closed) throw unavailable('the broker is shutting down');
    const conn = this.connection(target);
    if (conn.pending.size >= this.opts.pendingMax) throw unavailable(`${this.opts.pendingMax} forwarded requests already pending`);
    const correlationId = this.nextCorrelationId;
    this.nextCorrelationId = correlationId === INT32_MAX ? 1 : correlationId + 1;
    const frame = encodeRequestFrame(apiKey, version, correlationId, this.opts.clientId, body);
    const answer = new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        conn.pending.delete(correlationId);
        reject(new KafkaError(ErrorCode.REQUEST_TIMED_OUT, `forwarded request to ${conn.key} timed out after ${this.opts.requestTimeoutMs} ms`));
      }, this.opts.requestTimeoutMs);
      timer.unref();
      conn.pending.set(correlationId, { apiKey, version, timer, resolve: resolve as (b: unknown) => void, reject });
    });
    conn.ready.then(
      () => conn.socket.write(frame),
      () => undefined, // the failure already rejected every pending request
    );
    return answer;
  }

  close(): void {
    this.closed = true;
    if (this.conn !== null) this.drop(this.conn, unavailable('the broker is shutting down'));
  }

  private connection(target: { host: string; port: number }): Connection {
    const key = `${target.host}:${target.port}`;
    if (this.conn !== null && this.conn.key === key && !this.conn.socket.destroyed) return this.conn;
    if (this.conn !== null) this.drop(this.conn, unavailable('the leader moved'));
    const socket = net.connect({ host: target.host, port: target.port, noDelay: true });
    const conn: Connection = { key, socket, ready: Promise.resolve(), buffered: Buffer.alloc(0), pending: new Map() };
    conn.ready = new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    conn.ready.catch(() => undefined);
    socket.on('error', (err) => this.drop(conn, unavailable(`cannot reach the leader at ${key}: ${err.message}`)));
    socket.on('close', () => this.drop(conn, unavailable(`connection to the leader at ${key} closed`)));
    socket.on('data', (chunk: Buffer) => this.onData(conn, chunk));
    this.conn = conn;
    return conn;
  }

  private onData(conn: Connection, chunk: Buffer): void {
    conn.buffered = conn.buffered.length === 0 ? chunk : Buffer.concat([conn.buffered, chunk]);
    while (conn.buffered.length >= 4) {
      const size = conn.buffered.readInt32BE(0);
      if (size < 4 || size > this.opts.responseBytesMax) {
        this.drop(conn, unavailable(`the leader at ${conn.key} sent a ${size}-byte frame`));
        return;
      }
      if (conn.buffered.length < 4 + size) return;
      const frame = conn.buffered.subarray(0, 4 + size);
      conn.buffered = conn.buffered.subarray(4 + size);
      const correlationId = frame.readInt32BE(4);
      const p = conn.pending.get(correlationId);
      if (p === undefined) continue; // timed out meanwhile
      conn.pending.delete(correlationId);
      clearTimeout(p.timer);
      try {
        p.resolve(decodeResponseFrame(Buffer.from(frame), p.apiKey, p.version).body);
      } catch (err) {
        p.reject(err);
        this.drop(conn, unavailable(`unreadable response from the leader at ${conn.key}`));
        return;
      }
    }
  }

  private drop(conn: Connection, err: KafkaError): void {
    if (this.conn === conn) this.conn = null;
    const pending = [...conn.pending.values()];
    conn.pending.clear();
    for (const p of pending) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    if (!conn.socket.destroyed) conn.socket.destroy();
    if (pending.length > 0) this.opts.logger.debug({ err: err.message, pending: pending.length }, 'forwarded requests failed');
  }
}
