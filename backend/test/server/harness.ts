// Test harness for the server: a real KafkaServer on 127.0.0.1 port 0, its log lines captured as objects, and a
// raw socket client that reads whole frames. Not a test file itself (no .test.ts suffix).
import net from 'node:net';
import pino from 'pino';
import type { Backend } from '../../src/backends/backend.ts';
import { HandlerRegistry, createRegistry } from '../../src/handlers/registry.ts';
import type { ApiHandler } from '../../src/handlers/types.ts';
import { encodeRequestFrame } from '../../src/protocol/frame.ts';
import { KafkaServer } from '../../src/server/server.ts';
import type { ServerOptions } from '../../src/server/server.ts';

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export const WARN = 40;
export const ERROR = 50;

/**
 * The server tests exercise framing, ordering and limits, never storage: any use of the backend is a failure
 * of the test itself, so it throws loudly.
 */
export const UNUSED_BACKEND = new Proxy({} as Backend, {
  get(_target, prop) {
    if (prop === 'then') return undefined;
    throw new Error(`server test touched backend.${String(prop)}`);
  },
});

export const TEST_LIMITS: Omit<ServerOptions, 'hosts' | 'port'> = {
  requestBytesMax: 64 * 1024,
  inFlightRequestsMax: 16,
  responseBytesMax: 1024 * 1024,
  connectionsMax: 50,
  connectionsIdleMs: 0,
  shutdownTimeoutMs: 5000,
};

export interface TestServer {
  server: KafkaServer;
  port: number;
  logs: LogLine[];
  stop(): Promise<void>;
}

/** handlers: added to (or replacing) the broker's; or a whole registry of exactly the handlers a test wants. */
export async function startServer(
  options: Partial<ServerOptions> = {},
  handlers: ApiHandler[] | HandlerRegistry = [],
): Promise<TestServer> {
  const logs: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  const registry = handlers instanceof HandlerRegistry ? handlers : createRegistry({ fetchWaitMaxMs: 1000 }, handlers);
  const server = new KafkaServer({ hosts: ['127.0.0.1'], port: 0, ...TEST_LIMITS, ...options }, { registry, logger });
  await server.start(UNUSED_BACKEND);
  return { server, port: server.port, logs, stop: () => server.stop() };
}

export function logsAt(logs: LogLine[], level: number, msg: RegExp): LogLine[] {
  return logs.filter((l) => l.level === level && msg.test(l.msg));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Poll until `check` holds (for effects that happen on the server side of a socket). */
export async function eventually(check: () => boolean, timeoutMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

/** A raw client: writes bytes, reads whole response frames (size prefix included). */
export class TestClient {
  readonly socket: net.Socket;
  readonly closed: Promise<void>;
  /** The client's own address as the server logs it (socket.localPort is gone once the socket closes). */
  readonly localAddress: string;
  private buffered = Buffer.alloc(0);
  private frames: Buffer[] = [];
  private waiters: (() => void)[] = [];
  private isClosed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.localAddress = `${socket.localAddress}:${socket.localPort}`;
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.isClosed = true;
        this.wake();
        resolve();
      }),
    );
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      while (this.buffered.length >= 4 && this.buffered.length >= 4 + this.buffered.readInt32BE(0)) {
        const size = 4 + this.buffered.readInt32BE(0);
        this.frames.push(this.buffered.subarray(0, size));
        this.buffered = this.buffered.subarray(size);
      }
      this.wake();
    });
  }

  static connect(port: number, host = '127.0.0.1'): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host, noDelay: true });
      socket.once('connect', () => resolve(new TestClient(socket)));
      socket.once('error', reject);
    });
  }

  get closedYet(): boolean {
    return this.isClosed;
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  request(apiKey: number, version: number, correlationId: number, body: unknown, clientId: string | null = 'test'): void {
    this.write(encodeRequestFrame(apiKey, version, correlationId, clientId, body));
  }

  /** The next response frame; rejects if the connection closes first or nothing arrives in time. */
  async frame(timeoutMs = 3000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length === 0) {
      if (this.isClosed) throw new Error('connection closed before a response');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no response in time');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.frames.shift()!;
  }

  /** Whether the server closes the connection within the timeout. */
  async closesWithin(timeoutMs = 3000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const result = await Promise.race([this.closed.then(() => true), timeout]);
    clearTimeout(timer);
    return result;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/** A raw request frame: size prefix + the given header fields + body bytes (for malformed requests). */
export function rawFrame(apiKey: number, version: number, correlationId: number, rest: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(12);
  head.writeInt32BE(8 + rest.length, 0);
  head.writeInt16BE(apiKey, 4);
  head.writeInt16BE(version, 6);
  head.writeInt32BE(correlationId, 8);
  return Buffer.concat([head, rest]);
}
