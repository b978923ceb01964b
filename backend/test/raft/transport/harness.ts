// Test harness for the Raft transport: real transports on 127.0.0.1 port 0 with their log lines captured, and
// raw sockets that speak the frame format by hand (for corrupt input). Not a test file itself.
import net from 'node:net';
import pino from 'pino';
import type { Message, NodeId } from '../../../src/raft/core/types.ts';
import { MessageType } from '../../../src/raft/core/types.ts';
import { newMessage } from '../../../src/raft/core/util.ts';
import { Channel, encodeHello } from '../../../src/raft/transport/codec.ts';
import { FrameDecoder, FrameKind, PROTOCOL_VERSION, clusterTagOf, sealFrame } from '../../../src/raft/transport/frame.ts';
import type { Frame } from '../../../src/raft/transport/frame.ts';
import type { TransportLimits } from '../../../src/raft/transport/limits.ts';
import { RaftTransport } from '../../../src/raft/transport/transport.ts';
import type { RaftTransportOptions } from '../../../src/raft/transport/transport.ts';

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export const WARN = 40;
export const CLUSTER = 'test-cluster';

/** Small and fast: backoff in tens of ms, small frames so limits are reached with little data. */
export const TEST_LIMITS: Partial<TransportLimits> = {
  frameBytesMax: 256 * 1024,
  peerQueueMessagesMax: 1000,
  peerQueueBytesMax: 1024 * 1024,
  connectTimeoutMs: 1000,
  handshakeTimeoutMs: 1000,
  reconnectBackoffMinMs: 20,
  reconnectBackoffMaxMs: 200,
  snapshotChunkBytes: 128 * 1024,
  snapshotBytesMax: 64 * 1024 * 1024,
  snapshotReceiveTimeoutMs: 10_000,
  snapshotSendTimeoutMs: 10_000,
};

export interface TestNode {
  id: NodeId;
  transport: RaftTransport;
  port: number;
  received: Message[];
  unreachable: NodeId[];
  snapshotStatus: { peer: NodeId; ok: boolean }[];
  logs: LogLine[];
}

export type NodeOptions = Partial<Omit<RaftTransportOptions, 'nodeId' | 'logger' | 'limits'>> & { limits?: Partial<TransportLimits> };

export async function startNode(id: NodeId, options: NodeOptions = {}): Promise<TestNode> {
  const logs: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  const transport = new RaftTransport({
    nodeId: id,
    clusterId: CLUSTER,
    listenHost: '127.0.0.1',
    listenPort: 0,
    peers: new Map(),
    ...options,
    limits: { ...TEST_LIMITS, ...options.limits },
    logger,
  });
  const node: TestNode = { id, transport, port: 0, received: [], unreachable: [], snapshotStatus: [], logs };
  transport.onMessage((m) => node.received.push(m));
  transport.onUnreachable((peer) => node.unreachable.push(peer));
  transport.onSnapshotStatus((peer, ok) => node.snapshotStatus.push({ peer, ok }));
  await transport.start();
  node.port = transport.port;
  return node;
}

/** Nodes 1..n, every one a peer of every other. */
export async function startCluster(n: number, options: NodeOptions = {}): Promise<TestNode[]> {
  const nodes: TestNode[] = [];
  for (let id = 1; id <= n; id++) nodes.push(await startNode(id, options));
  connectAll(nodes);
  return nodes;
}

export function connectAll(nodes: TestNode[]): void {
  for (const a of nodes) for (const b of nodes) if (a !== b) a.transport.addPeer(b.id, { host: '127.0.0.1', port: b.port });
}

export async function stopAll(nodes: TestNode[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.transport.stop()));
}

export function app(from: NodeId, to: NodeId, index: number, data: Uint8Array = new Uint8Array(0)): Message {
  return newMessage({ type: MessageType.App, from, to, term: 1, index, entries: [{ index: index + 1, term: 1, type: 0, data }] });
}

export function heartbeat(from: NodeId, to: NodeId, commit: number): Message {
  return newMessage({ type: MessageType.Heartbeat, from, to, term: 1, commit });
}

export function logsAt(logs: LogLine[], level: number, msg: RegExp): LogLine[] {
  return logs.filter((l) => l.level === level && msg.test(l.msg));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Poll until `check` holds. */
export async function eventually(check: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

/** A port nothing listens on (bound, then released). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A raw connection speaking frames by hand. */
export class RawPeer {
  readonly socket: net.Socket;
  readonly frames: Frame[] = [];
  readonly closed: Promise<void>;
  private readonly decoder = new FrameDecoder(1 << 30);

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      this.decoder.push(chunk);
      for (let f = this.decoder.next(); f !== null; f = this.decoder.next()) this.frames.push(f);
    });
  }

  static async connect(port: number): Promise<RawPeer> {
    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawPeer(socket);
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Sends a Hello; resolves true once the HelloAck came back, false if the connection was closed instead. */
  async hello(fields: { nodeId: NodeId; targetId: NodeId; clusterId?: string; channel?: Channel }): Promise<boolean> {
    const clusterId = fields.clusterId ?? CLUSTER;
    const payload = encodeHello({
      version: PROTOCOL_VERSION,
      channel: fields.channel ?? Channel.Messages,
      nodeId: fields.nodeId,
      targetId: fields.targetId,
      clusterId,
    });
    this.write(sealFrame(payload, FrameKind.Hello, clusterTagOf(clusterId), fields.nodeId));
    const acked = await Promise.race([
      eventually(() => this.frames.some((f) => f.kind === FrameKind.HelloAck), 3000),
      this.closed.then(() => false),
    ]);
    return acked && this.frames.some((f) => f.kind === FrameKind.HelloAck);
  }

  /** Resolves true if the other side closes within timeoutMs. */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    return Promise.race([this.closed.then(() => true), sleep(timeoutMs).then(() => false)]);
  }

  destroy(): void {
    this.socket.destroy();
  }
}
