// The Kafka TCP server: one listening socket per configured host, all on the same port, feeding Connections.
//
// Lifecycle: listen() binds (so the real port is known before the backend is opened, which advertises it),
// serve(backend) starts handling requests (connections accepted before that wait, paused), stop() shuts down:
// stop accepting, let in-flight requests finish within shutdownTimeoutMs, close the connections. The caller then
// flushes and closes the backend.
import net from 'node:net';
import type { Logger } from 'pino';
import type { Backend } from '../backends/backend.ts';
import type { HandlerRegistry } from '../handlers/registry.ts';
import { Connection } from './connection.ts';
import type { ConnectionLimits, FrameHandler } from './connection.ts';
import { createDispatcher } from './dispatch.ts';

export interface ServerOptions extends ConnectionLimits {
  /** Addresses to listen on; one that this machine does not have is skipped with a warning if another binds. */
  hosts: readonly string[];
  /** The port on every host; 0 lets the first host pick one, which the others then use. */
  port: number;
  /** Open connections; one more is refused (closed at once) with a warning (count). */
  connectionsMax: number;
  /** How long stop() lets in-flight requests run before it closes connections anyway (ms); 0: at once. */
  shutdownTimeoutMs: number;
}

export interface ServerDeps {
  /** May be left out and given to serve() instead, when handlers need the backend that is opened after listen(). */
  registry?: HandlerRegistry;
  logger: Logger;
}

export interface BoundAddress {
  host: string;
  port: number;
  family: string;
}

export interface ServerStats {
  connectionsOpen: number;
  connectionsAccepted: number;
  connectionsRefused: number;
}

/** Errors that mean "this machine has no such address", as opposed to a port conflict or a permission problem. */
const ADDRESS_UNAVAILABLE = new Set(['EADDRNOTAVAIL', 'EAFNOSUPPORT', 'ENOTFOUND', 'EAI_AGAIN', 'EPROTONOSUPPORT']);

function listenOn(server: net.Server, host: string, port: number, ipv6Only: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen({ host, port, ipv6Only, backlog: 511 }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Connection ids are unique in the process (RequestContext.connectionId), across servers. */
let nextConnectionId = 1;

export class KafkaServer {
  private readonly options: ServerOptions;
  private readonly registry: HandlerRegistry | undefined;
  private readonly log: Logger;
  private readonly listeners: net.Server[] = [];
  private readonly bound: BoundAddress[] = [];
  private readonly connections = new Set<Connection>();
  /** Accepted before serve(): they wait, paused, for the backend. */
  private waiting: net.Socket[] = [];
  private frameHandler: FrameHandler | null = null;
  private accepted = 0;
  private refused = 0;
  private stopping: Promise<void> | null = null;

  constructor(options: ServerOptions, deps: ServerDeps) {
    this.options = options;
    this.registry = deps.registry;
    this.log = deps.logger.child({ component: 'server' });
  }

  /** Bind every host. Throws if none can be bound or on any error other than an unavailable address. */
  async listen(): Promise<BoundAddress[]> {
    if (this.listeners.length > 0) throw new Error('KafkaServer.listen() called twice');
    let port = this.options.port;
    // An IPv6 wildcard is dual-stack by default and would collide with an IPv4 wildcard on the same port.
    const ipv4Wildcard = this.options.hosts.includes('0.0.0.0');
    for (const host of this.options.hosts) {
      const server = net.createServer({ noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000, pauseOnConnect: true });
      server.on('connection', (socket) => this.onConnection(socket));
      try {
        await listenOn(server, host, port, ipv4Wildcard && host === '::');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? '';
        if (!ADDRESS_UNAVAILABLE.has(code)) {
          await this.closeListeners();
          throw err;
        }
        this.log.warn({ host, port, code }, 'cannot listen on this address, skipping it');
        continue;
      }
      server.on('error', (err) => this.log.error({ err, host }, 'listener error'));
      const address = server.address() as net.AddressInfo;
      port = address.port;
      this.listeners.push(server);
      this.bound.push({ host, port: address.port, family: address.family });
    }
    if (this.listeners.length === 0) {
      throw new Error(`could not listen on any of ${this.options.hosts.join(', ')} (port ${this.options.port})`);
    }
    return this.addresses();
  }

  /** Start serving requests with this backend (and this registry, when the constructor was given none). */
  serve(backend: Backend, registry: HandlerRegistry | undefined = this.registry): void {
    if (this.frameHandler !== null) throw new Error('KafkaServer.serve() called twice');
    if (registry === undefined) throw new Error('KafkaServer.serve() needs a handler registry');
    this.frameHandler = createDispatcher({ registry, backend });
    const waiting = this.waiting;
    this.waiting = [];
    for (const socket of waiting) {
      if (!socket.destroyed) this.startConnection(socket);
    }
  }

  /** listen() then serve(). */
  async start(backend: Backend): Promise<BoundAddress[]> {
    const addresses = await this.listen();
    this.serve(backend);
    return addresses;
  }

  addresses(): BoundAddress[] {
    return this.bound.map((a) => ({ ...a }));
  }

  /** The bound port (the same on every host). */
  get port(): number {
    const first = this.bound[0];
    if (first === undefined) throw new Error('KafkaServer is not listening');
    return first.port;
  }

  stats(): ServerStats {
    return {
      connectionsOpen: this.connections.size + this.waiting.length,
      connectionsAccepted: this.accepted,
      connectionsRefused: this.refused,
    };
  }

  private onConnection(socket: net.Socket): void {
    const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    if (this.stopping !== null) {
      socket.destroy();
      return;
    }
    if (this.connections.size + this.waiting.length >= this.options.connectionsMax) {
      this.refused++;
      this.log.warn({ remote, connectionsMax: this.options.connectionsMax }, 'too many connections, refusing one');
      socket.destroy();
      return;
    }
    this.accepted++;
    if (this.frameHandler === null) {
      this.waiting.push(socket);
      socket.once('close', () => {
        this.waiting = this.waiting.filter((s) => s !== socket);
      });
      return;
    }
    this.startConnection(socket);
  }

  private startConnection(socket: net.Socket): void {
    const id = nextConnectionId++;
    const connection = new Connection(socket, id, this.options, this.frameHandler!, this.log);
    this.connections.add(connection);
    connection.closed.then(() => this.connections.delete(connection));
    connection.log.debug('connection accepted');
    // Accepted sockets start paused (pauseOnConnect) so nothing is read before the Connection listens.
    socket.resume();
  }

  /**
   * Graceful shutdown: stop accepting, stop reading requests, let the accepted ones finish (their signal is
   * aborted so long polls answer early) for at most shutdownTimeoutMs, then close every connection.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    const deadline = Date.now() + this.options.shutdownTimeoutMs;
    const listenersClosed = this.closeListeners();
    for (const socket of this.waiting) socket.destroy();
    this.waiting = [];
    const connections = [...this.connections];
    const drained = await within(Promise.all(connections.map((c) => c.drain())), deadline);
    if (!drained) {
      const busy = connections.filter((c) => !c.isClosed && c.inFlight > 0);
      this.log.warn({ connections: busy.length, shutdownTimeoutMs: this.options.shutdownTimeoutMs },
        'shutdown timeout: closing connections with requests still in flight');
    }
    for (const c of connections) c.end();
    // A peer that does not read its replies must not hold the shutdown: past the deadline, cut it off.
    const ended = await within(Promise.all(connections.map((c) => c.closed)), Math.max(deadline, Date.now() + 1000));
    if (!ended) for (const c of connections) c.destroy('shutdown');
    await listenersClosed;
    this.log.info('server stopped');
  }

  private async closeListeners(): Promise<void> {
    const listeners = this.listeners.splice(0);
    await Promise.all(
      listeners.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
    );
  }
}

/** Whether `promise` settled before the wall-clock deadline (ms since the epoch). */
async function within(promise: Promise<unknown>, deadline: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
