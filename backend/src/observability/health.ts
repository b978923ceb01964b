// The admin HTTP endpoint (node:http) that orchestrators and scripts poll; it never touches the Kafka path.
//   GET /healthz  200 while the process runs and its event loop answers (liveness: restart me if this fails).
//   GET /readyz   200 when ready() says the broker can serve clients (direct mode: storage open and serving;
//                 raft mode: a leader is known), 503 otherwise (readiness: send me no traffic yet).
//   GET /metrics  the metrics() snapshot in Prometheus text format (version 0.0.4), when a source is given.
// HEAD works wherever GET does; other methods get 405, other paths 404. Bodies are short text lines.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';

export interface Metric {
  /** Prometheus name, [a-zA-Z_:][a-zA-Z0-9_:]* (e.g. takhin_connections_open). */
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  value: number;
}

export interface AdminServerOptions {
  host: string;
  /** 0 lets the OS pick a free port (tests); read it from port after listen(). */
  port: number;
  /** Connections open at once; further ones are closed as soon as they are accepted (count). */
  connectionsMax?: number;
  /** Time a client may take to send its whole request (ms). */
  requestTimeoutMs?: number;
  /** Idle time before a kept-alive connection is closed (ms). */
  keepAliveTimeoutMs?: number;
}

export interface AdminServerDeps {
  /** Readiness, asked on every /readyz; must be cheap and must not throw. */
  ready: () => boolean;
  /** Metrics snapshot for /metrics; none: /metrics is 404. */
  metrics?: () => Metric[];
  logger: Logger;
}

/** Few clients poll health (an orchestrator, a script): a small cap keeps a flood from costing the broker. */
export const ADMIN_CONNECTIONS_MAX = 32;
export const ADMIN_REQUEST_TIMEOUT_MS = 5_000;
export const ADMIN_KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** Request headers larger than this are refused with 431 (bytes); health probes send a few hundred. */
const ADMIN_HEADER_BYTES_MAX = 8 * 1024;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/** Prometheus text exposition of a snapshot; a malformed name is a programmer error. */
export function renderMetrics(metrics: readonly Metric[]): string {
  let out = '';
  for (const m of metrics) {
    if (!METRIC_NAME.test(m.name)) throw new Error(`invalid metric name ${JSON.stringify(m.name)}`);
    const help = m.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
    out += `# HELP ${m.name} ${help}\n# TYPE ${m.name} ${m.type}\n${m.name} ${formatValue(m.value)}\n`;
  }
  return out;
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

export class AdminServer {
  private readonly server: http.Server;
  private bound: AddressInfo | null = null;

  constructor(private readonly options: AdminServerOptions, private readonly deps: AdminServerDeps) {
    this.server = http.createServer({ maxHeaderSize: ADMIN_HEADER_BYTES_MAX }, (req, res) => this.handle(req, res));
    this.server.maxConnections = options.connectionsMax ?? ADMIN_CONNECTIONS_MAX;
    this.server.requestTimeout = options.requestTimeoutMs ?? ADMIN_REQUEST_TIMEOUT_MS;
    this.server.headersTimeout = this.server.requestTimeout;
    this.server.keepAliveTimeout = options.keepAliveTimeoutMs ?? ADMIN_KEEP_ALIVE_TIMEOUT_MS;
  }

  /** Binds; rejects on a port conflict or an address this machine does not have. */
  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: this.options.host, port: this.options.port }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.bound = this.server.address() as AddressInfo;
    this.server.on('error', (err) => this.deps.logger.error({ err }, 'admin server error'));
    return { ...this.bound };
  }

  get port(): number {
    if (this.bound === null) throw new Error('AdminServer is not listening');
    return this.bound.port;
  }

  /** Stops accepting and closes every connection (health probes hold nothing worth draining). */
  async stop(): Promise<void> {
    if (this.bound === null) return;
    this.bound = null;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      reply(res, 405, 'method not allowed: use GET\n', { allow: 'GET, HEAD' });
      return;
    }
    switch (path) {
      case '/healthz':
        reply(res, 200, 'ok\n');
        return;
      case '/readyz':
        if (this.isReady()) reply(res, 200, 'ready\n');
        else reply(res, 503, 'not ready\n');
        return;
      case '/metrics':
        this.replyMetrics(res);
        return;
      default:
        reply(res, 404, 'not found: try /healthz, /readyz or /metrics\n');
    }
  }

  private isReady(): boolean {
    try {
      return this.deps.ready();
    } catch (err) {
      // A throwing probe is a bug; answering "not ready" keeps the process up and the log says why.
      this.deps.logger.error({ err }, 'readiness check threw');
      return false;
    }
  }

  private replyMetrics(res: http.ServerResponse): void {
    if (this.deps.metrics === undefined) {
      reply(res, 404, 'no metrics\n');
      return;
    }
    let body: string;
    try {
      body = renderMetrics(this.deps.metrics());
    } catch (err) {
      this.deps.logger.error({ err }, 'metrics snapshot failed');
      reply(res, 500, 'metrics unavailable\n');
      return;
    }
    reply(res, 200, body, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
  }
}

/** Process-wide figures every broker can export, whatever its mode. */
export function processMetrics(): Metric[] {
  const mem = process.memoryUsage();
  return [
    { name: 'takhin_process_uptime_seconds', help: 'Seconds since the process started.', type: 'gauge', value: process.uptime() },
    { name: 'takhin_process_resident_memory_bytes', help: 'Resident set size (bytes).', type: 'gauge', value: mem.rss },
    { name: 'takhin_process_heap_used_bytes', help: 'V8 heap in use (bytes).', type: 'gauge', value: mem.heapUsed },
  ];
}

function reply(res: http.ServerResponse, status: number, body: string, headers: http.OutgoingHttpHeaders = {}): void {
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...headers,
  });
  // end() with a body on HEAD is fine: node:http sends the headers only.
  res.end(body);
}
