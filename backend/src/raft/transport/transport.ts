// The TCP transport between Raft nodes: what the driver uses to send the messages of a Ready and to receive
// its peers' messages. Each node dials every peer (one messages connection per peer and direction, so per-peer
// order holds); snapshots go over a connection of their own. send() never blocks and never throws on a
// network problem: Raft tolerates loss, so a message that cannot be queued is dropped, counted, and the peer
// reported unreachable (the driver calls rawNode.reportUnreachable). Callbacks run in a later tick than the
// send() that caused them, never re-entering the driver.
import net from 'node:net';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Message, NodeId } from '../core/types.ts';
import { MessageType, NONE } from '../core/types.ts';
import { checkClusterId, encodeMessage, isWireMessageType } from './codec.ts';
import { FRAME_LENGTH_BYTES, FrameKind, clusterTagOf, sealFrame } from './frame.ts';
import { InboundConnection } from './inbound.ts';
import type { InboundContext } from './inbound.ts';
import { resolveLimits } from './limits.ts';
import type { TransportLimits } from './limits.ts';
import { newCounters } from './metrics.ts';
import type { TransportCounters, TransportMetrics } from './metrics.ts';
import { PeerLink } from './peer.ts';
import type { LinkContext, PeerAddress } from './peer.ts';
import { memorySnapshotSink, memorySnapshotSource } from './snapshot.ts';
import type { SnapshotSinkFactory, SnapshotSourceFactory } from './snapshot.ts';
import { sendSnapshot } from './snapshot-sender.ts';

export interface RaftTransportOptions {
  /** This node (>= 1). */
  nodeId: NodeId;
  /** Shared by every member; a connection from another cluster is refused (1..255 UTF-8 bytes). */
  clusterId: string;
  listenHost: string;
  /** 0 picks a free port (read it from `port` after start()). */
  listenPort: number;
  /** The other members and where they listen (this node, if present, is ignored). */
  peers: ReadonlyMap<NodeId, PeerAddress>;
  logger: Logger;
  /** Missing settings take DEFAULT_TRANSPORT_LIMITS. */
  limits?: Partial<TransportLimits>;
  /** Uniform in [0, 1): jitter of the reconnect backoff. Default Math.random. */
  random?: () => number;
  /** Where an outgoing snapshot's data comes from. Default: the Snap message's snapshot.data. */
  snapshotSource?: SnapshotSourceFactory;
  /** Where an incoming snapshot's data goes. Default: one in-memory Buffer, delivered as snapshot.data. */
  snapshotSink?: SnapshotSinkFactory;
}

export type MessageHandler = (message: Message) => void;
export type UnreachableHandler = (peer: NodeId) => void;
export type SnapshotStatusHandler = (peer: NodeId, ok: boolean) => void;

type State = 'new' | 'running' | 'stopped';

interface SnapshotSend {
  abort: AbortController;
}

export class RaftTransport {
  readonly nodeId: NodeId;
  readonly clusterId: string;
  readonly limits: TransportLimits;
  private readonly listenHost: string;
  private readonly listenPort: number;
  private readonly clusterTag: number;
  private readonly log: Logger;
  private readonly counters: TransportCounters = newCounters();
  private readonly snapshotSource: SnapshotSourceFactory;
  private readonly linkContext: LinkContext;
  private readonly inboundContext: InboundContext;
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly inbound = new Set<InboundConnection>();
  /** The newest messages channel from each peer. */
  private readonly messageChannels = new Map<NodeId, InboundConnection>();
  private readonly snapshotSends = new Map<NodeId, SnapshotSend>();
  private snapshotReceives = 0;
  private server: net.Server | null = null;
  private boundPort = 0;
  private state: State = 'new';
  private messageHandler: MessageHandler | null = null;
  private unreachableHandler: UnreachableHandler | null = null;
  private snapshotStatusHandler: SnapshotStatusHandler | null = null;
  /** Peers to report unreachable at the next tick (one report per peer per tick, however many drops). */
  private readonly unreachablePending = new Set<NodeId>();
  private unreachableImmediate: NodeJS.Immediate | null = null;
  /** Messages to this node itself, delivered at the next tick in send order. */
  private localPending: Message[] = [];
  private localImmediate: NodeJS.Immediate | null = null;

  constructor(options: RaftTransportOptions) {
    if (!Number.isSafeInteger(options.nodeId) || options.nodeId <= NONE) throw new RangeError(`invalid node id ${options.nodeId}`);
    checkClusterId(options.clusterId);
    this.nodeId = options.nodeId;
    this.clusterId = options.clusterId;
    this.clusterTag = clusterTagOf(options.clusterId);
    this.limits = resolveLimits(options.limits);
    this.listenHost = options.listenHost;
    this.listenPort = options.listenPort;
    this.log = options.logger.child({ component: 'raft-transport', node: options.nodeId });
    this.snapshotSource = options.snapshotSource ?? memorySnapshotSource;
    const base = {
      selfId: this.nodeId,
      clusterId: this.clusterId,
      clusterTag: this.clusterTag,
      limits: this.limits,
      counters: this.counters,
      log: this.log,
    };
    this.linkContext = { ...base, random: options.random ?? Math.random, unreachable: (id) => this.reportUnreachable(id) };
    this.inboundContext = {
      ...base,
      sinkFactory: options.snapshotSink ?? memorySnapshotSink,
      isMember: (id) => this.links.has(id),
      claimMessagesChannel: (id, conn) => this.claimMessagesChannel(id, conn),
      acquireSnapshotSlot: () => this.acquireSnapshotSlot(),
      releaseSnapshotSlot: () => void this.snapshotReceives--,
      deliver: (m) => this.deliver(m),
      closed: (conn) => this.onInboundClosed(conn),
    };
    for (const [id, address] of options.peers) this.addPeer(id, address);
  }

  /** The port listened on (the real one when listenPort was 0); 0 before start(). */
  get port(): number {
    return this.boundPort;
  }

  /** Listen for peers and start dialing them. Rejects if the address cannot be bound. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`transport already ${this.state}`);
    const server = net.createServer({ noDelay: true }, (socket) => this.onConnection(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.listenHost, port: this.listenPort }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.log.error({ err }, 'raft transport listener failed'));
    this.server = server;
    this.boundPort = (server.address() as net.AddressInfo).port;
    this.state = 'running';
    this.log.info({ host: this.listenHost, port: this.boundPort }, 'raft transport listening');
    for (const link of this.links.values()) link.start();
  }

  /** Close every connection, abort snapshot transfers, clear every timer. No callback runs afterwards. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    for (const link of this.links.values()) link.close();
    for (const send of this.snapshotSends.values()) send.abort.abort(new Error('transport stopped'));
    this.snapshotSends.clear();
    for (const conn of this.inbound) conn.close('transport stopped');
    if (this.unreachableImmediate !== null) clearImmediate(this.unreachableImmediate);
    if (this.localImmediate !== null) clearImmediate(this.localImmediate);
    this.unreachableImmediate = null;
    this.localImmediate = null;
    this.unreachablePending.clear();
    this.localPending = [];
    const server = this.server;
    this.server = null;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The handler of every received message (and of messages this node sends itself). Replaces the previous one. */
  onMessage(handler: MessageHandler): void {
    this.messageHandler = handler;
  }

  /** Called when a peer could not be reached or a message to it was dropped (driver: rawNode.reportUnreachable). */
  onUnreachable(handler: UnreachableHandler): void {
    this.unreachableHandler = handler;
  }

  /** Called once per Snap message sent: ok once the receiver has it (driver: rawNode.reportSnapshot). */
  onSnapshotStatus(handler: SnapshotStatusHandler): void {
    this.snapshotStatusHandler = handler;
  }

  /**
   * Queue a message for its peer; never blocks. Dropped (and counted) when the peer is unknown, its queue is
   * full or the message is larger than frameBytesMax. Throws RangeError only for a programming error: a local
   * message type (Hup, Beat, ...) or fields that are not safe non-negative integers.
   */
  send(message: Message): void {
    if (!isWireMessageType(message.type)) throw new RangeError(`message type ${MessageType[message.type]} is never sent`);
    if (this.state === 'stopped') {
      this.counters.messagesDropped++;
      return;
    }
    if (message.to === this.nodeId) {
      this.sendLocal(message);
      return;
    }
    const link = this.links.get(message.to);
    if (link === undefined) {
      this.counters.messagesDropped++;
      this.log.debug({ to: message.to, type: MessageType[message.type] }, 'message to a node that is not a peer dropped');
      if (message.type === MessageType.Snap) this.reportSnapshot(message.to, false);
      return;
    }
    if (message.type === MessageType.Snap) {
      this.startSnapshot(link, message);
      return;
    }
    const frame = sealFrame(encodeMessage(message), FrameKind.Message, this.clusterTag, this.nodeId);
    if (frame.length - FRAME_LENGTH_BYTES > this.limits.frameBytesMax) {
      this.counters.messagesDropped++;
      this.counters.messagesTooLarge++;
      this.log.warn({ to: message.to, type: MessageType[message.type], bytes: frame.length, frameBytesMax: this.limits.frameBytesMax },
        'raft message larger than frameBytesMax dropped (lower the core maxSizePerMsg)');
      return;
    }
    if (!link.enqueue(frame)) {
      this.counters.messagesDropped++;
      this.reportUnreachable(message.to);
    }
  }

  /** Add a member (or move it to a new address). Its messages channel is dialed at once when running. */
  addPeer(id: NodeId, address: PeerAddress): void {
    if (!Number.isSafeInteger(id) || id <= NONE) throw new RangeError(`invalid peer id ${id}`);
    if (id === this.nodeId) return;
    const existing = this.links.get(id);
    if (existing !== undefined) {
      if (existing.address.host === address.host && existing.address.port === address.port) return;
      existing.close();
    }
    const link = new PeerLink(id, { host: address.host, port: address.port }, this.linkContext);
    this.links.set(id, link);
    if (this.state === 'running') link.start();
  }

  /** Remove a member: its queue is dropped, its connections (both directions) and snapshot transfers closed. */
  removePeer(id: NodeId): void {
    const link = this.links.get(id);
    if (link === undefined) return;
    link.close();
    this.links.delete(id);
    // A removed peer gets no snapshot status: the core no longer tracks it.
    this.snapshotSends.get(id)?.abort.abort(new Error(`peer ${id} removed`));
    this.snapshotSends.delete(id);
    for (const conn of this.inbound) if (conn.peer === id) conn.close(`node ${id} removed from the cluster`);
  }

  /** A copy of the counters, with per-peer state. */
  metrics(): TransportMetrics {
    const peers: TransportMetrics['peers'] = {};
    for (const [id, link] of this.links) peers[id] = { ...link.metrics(), snapshotInFlight: this.snapshotSends.has(id) };
    return { ...this.counters, peers, inboundConnections: this.inbound.size, snapshotsReceiving: this.snapshotReceives };
  }

  // ---- Outgoing ---------------------------------------------------------------------------------------------

  private sendLocal(message: Message): void {
    this.counters.messagesLocal++;
    this.localPending.push(message);
    this.localImmediate ??= setImmediate(() => {
      this.localImmediate = null;
      const batch = this.localPending;
      this.localPending = [];
      for (const m of batch) this.deliver(m);
    });
  }

  /** One snapshot in flight per peer: the core sends the next only after reportSnapshot, so another is a stale duplicate. */
  private startSnapshot(link: PeerLink, message: Message): void {
    const peer = link.id;
    if (this.snapshotSends.has(peer)) {
      this.counters.messagesDropped++;
      this.log.warn({ peer }, 'a snapshot is already being sent to this peer; the new one is dropped');
      this.reportSnapshot(peer, false);
      return;
    }
    let source;
    try {
      source = this.snapshotSource(message);
    } catch (err) {
      this.counters.snapshotsSendFailed++;
      this.log.warn({ peer, err: (err as Error).message }, 'cannot open the snapshot to send');
      this.reportSnapshot(peer, false);
      return;
    }
    const send: SnapshotSend = { abort: new AbortController() };
    this.snapshotSends.set(peer, send);
    const index = message.snapshot?.metadata.index;
    this.log.info({ peer, index, bytes: source.bytes }, 'sending raft snapshot');
    sendSnapshot(this.linkContext, { peerId: peer, address: link.address, message, source, signal: send.abort.signal }).then(
      () => {
        this.counters.snapshotsSent++;
        this.log.info({ peer, index }, 'raft snapshot sent');
        this.endSnapshot(peer, send, true);
      },
      (err: Error) => {
        this.counters.snapshotsSendFailed++;
        this.log.warn({ peer, index, err: err.message }, 'sending raft snapshot failed');
        this.endSnapshot(peer, send, false);
      },
    );
  }

  private endSnapshot(peer: NodeId, send: SnapshotSend, ok: boolean): void {
    if (this.snapshotSends.get(peer) !== send) return; // stopped or peer removed: nobody to tell
    this.snapshotSends.delete(peer);
    this.reportSnapshot(peer, ok);
    if (!ok) this.reportUnreachable(peer);
  }

  private reportSnapshot(peer: NodeId, ok: boolean): void {
    // Always a later tick than the send() that caused it.
    setImmediate(() => {
      if (this.state !== 'stopped') this.snapshotStatusHandler?.(peer, ok);
    });
  }

  private reportUnreachable(peer: NodeId): void {
    if (this.state === 'stopped') return;
    this.unreachablePending.add(peer);
    this.unreachableImmediate ??= setImmediate(() => {
      this.unreachableImmediate = null;
      const peers = [...this.unreachablePending];
      this.unreachablePending.clear();
      for (const id of peers) {
        if (!this.links.has(id)) continue;
        this.counters.unreachableReports++;
        this.unreachableHandler?.(id);
      }
    });
  }

  // ---- Incoming ---------------------------------------------------------------------------------------------

  private onConnection(socket: Socket): void {
    if (this.state !== 'running') {
      socket.destroy();
      return;
    }
    if (this.inbound.size >= this.limits.inboundConnectionsMax) {
      this.log.warn({ remote: `${socket.remoteAddress}:${socket.remotePort}`, inboundConnectionsMax: this.limits.inboundConnectionsMax },
        'too many inbound raft connections; closing the new one');
      this.counters.inboundRejected++;
      socket.destroy();
      return;
    }
    this.inbound.add(new InboundConnection(socket, this.inboundContext));
  }

  private claimMessagesChannel(id: NodeId, conn: InboundConnection): void {
    // The peer dials one messages connection to us: a new one means the old is dead (peer restarted, lost FIN).
    this.messageChannels.get(id)?.close('replaced by a newer connection from the same node');
    this.messageChannels.set(id, conn);
  }

  private acquireSnapshotSlot(): boolean {
    if (this.snapshotReceives >= this.limits.snapshotReceivesMax) return false;
    this.snapshotReceives++;
    return true;
  }

  private onInboundClosed(conn: InboundConnection): void {
    this.inbound.delete(conn);
    if (this.messageChannels.get(conn.peer) === conn) this.messageChannels.delete(conn.peer);
  }

  private deliver(message: Message): void {
    if (this.state === 'stopped') return;
    const handler = this.messageHandler;
    if (handler === null) {
      this.counters.messagesDropped++;
      return;
    }
    this.counters.messagesReceived++;
    try {
      handler(message);
    } catch (err) {
      this.log.error({ err, type: MessageType[message.type], from: message.from }, 'raft message handler threw');
    }
  }
}
