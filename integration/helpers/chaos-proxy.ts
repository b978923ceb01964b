// A TCP proxy for fault tests: listens on 127.0.0.1, forwards every connection to a target, and can drop ALL
// connections at once (TCP reset on both sides). It follows the Kafka framing in both directions (size prefix,
// then the request header: api key, version, correlation id; responses: correlation id), so it can drop "mid-
// flight" precisely: once armed, it drops everything at the moment the broker's response to a Produce request
// arrives, and that response never reaches the client. The batch is then in the log but the producer does not
// know it, so its retry must be recognised as a duplicate.
import { createServer, connect, type Server, type Socket } from 'node:net';

const API_KEY_PRODUCE = 0;
/** size + apiKey + apiVersion + correlationId */
const REQUEST_HEADER_BYTES = 12;
/** size + correlationId */
const RESPONSE_HEADER_BYTES = 8;

/** Splits a byte stream into Kafka frames and reports the first `headerBytes` of each (size prefix included). */
class FrameScanner {
  private header = Buffer.alloc(0);
  /** Bytes of the current frame still to skip after its header was seen. */
  private skip = 0;
  private readonly headerBytes: number;

  constructor(headerBytes: number) {
    this.headerBytes = headerBytes;
  }

  /** Calls onHeader for every frame header completed by `chunk`. */
  feed(chunk: Buffer, onHeader: (header: Buffer) => void): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - pos);
        this.skip -= n;
        pos += n;
        continue;
      }
      const need = this.headerBytes - this.header.length;
      const take = chunk.subarray(pos, pos + need);
      this.header = Buffer.concat([this.header, take]);
      pos += take.length;
      if (this.header.length < this.headerBytes) return;
      const frameBytes = 4 + this.header.readInt32BE(0);
      this.skip = frameBytes - this.headerBytes;
      onHeader(this.header);
      this.header = Buffer.alloc(0);
    }
  }
}

interface Link {
  client: Socket;
  upstream: Socket;
  /** correlation id -> api key of requests sent upstream and not answered yet (Kafka answers in order). */
  pending: Map<number, number>;
}

export interface ChaosStats {
  connections: number;
  /** dropAll() calls that closed at least one connection. */
  drops: number;
  /** Drops triggered by a Produce response, which was swallowed (the records were appended, not acknowledged). */
  dropsOnProduceResponse: number;
  /** Produce requests whose response was lost in drops (answered or not by the broker). */
  produceRequestsLost: number;
  produceRequestsForwarded: number;
}

export class ChaosProxy {
  readonly port: number;
  private readonly server: Server;
  private readonly links = new Set<Link>();
  private armed = false;
  readonly stats: ChaosStats = { connections: 0, drops: 0, dropsOnProduceResponse: 0, produceRequestsLost: 0, produceRequestsForwarded: 0 };

  private constructor(server: Server, port: number) {
    this.server = server;
    this.port = port;
  }

  static async start(listenPort: number, targetPort: number, targetHost = '127.0.0.1'): Promise<ChaosProxy> {
    let proxy: ChaosProxy | null = null;
    const server = createServer((client) => proxy!.accept(client, targetHost, targetPort));
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(listenPort, '127.0.0.1', () => ok());
    });
    proxy = new ChaosProxy(server, listenPort);
    return proxy;
  }

  /** The next Produce response from the broker drops every connection (and is never delivered). */
  armDropOnProduceResponse(): void {
    this.armed = true;
  }

  disarm(): void {
    this.armed = false;
  }

  /** Resets every connection now; returns how many were open. */
  dropAll(): number {
    const count = this.links.size;
    for (const link of this.links) {
      for (const req of link.pending.values()) if (req === API_KEY_PRODUCE) this.stats.produceRequestsLost++;
      link.client.resetAndDestroy();
      link.upstream.resetAndDestroy();
    }
    this.links.clear();
    if (count > 0) this.stats.drops++;
    return count;
  }

  async close(): Promise<void> {
    this.armed = false;
    this.dropAll();
    await new Promise<void>((ok) => this.server.close(() => ok()));
  }

  private accept(client: Socket, host: string, port: number): void {
    this.stats.connections++;
    const upstream = connect({ host, port });
    const link: Link = { client, upstream, pending: new Map() };
    this.links.add(link);
    const requests = new FrameScanner(REQUEST_HEADER_BYTES);
    const responses = new FrameScanner(RESPONSE_HEADER_BYTES);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.on('data', (chunk: Buffer) => {
      requests.feed(chunk, (h) => {
        const apiKey = h.readInt16BE(4);
        link.pending.set(h.readInt32BE(8), apiKey);
        if (apiKey === API_KEY_PRODUCE) this.stats.produceRequestsForwarded++;
      });
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      let dropNow = false;
      responses.feed(chunk, (h) => {
        const correlationId = h.readInt32BE(4);
        if (link.pending.get(correlationId) === API_KEY_PRODUCE && this.armed) dropNow = true;
        if (!dropNow) link.pending.delete(correlationId);
      });
      if (dropNow) {
        this.armed = false;
        this.stats.dropsOnProduceResponse++;
        this.dropAll();
        return;
      }
      client.write(chunk);
    });
    const end = (): void => {
      if (!this.links.delete(link)) return;
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  }
}
