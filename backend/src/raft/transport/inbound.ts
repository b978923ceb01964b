// One accepted connection. Its first frame must be a Hello from a member of this cluster that meant to reach
// this node; then it is either a messages channel (Message frames, delivered in order as they arrive) or a
// snapshot channel (one SnapBegin, SnapChunks written to a SnapshotSink with backpressure, then a SnapResult
// back to the sender). Anything else (bad frame, wrong cluster, unknown node, a message that is not for us) is
// logged at warn and closes the connection; nothing of that connection is delivered after the bad frame.
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Message, NodeId } from '../core/types.ts';
import { MessageType, NONE } from '../core/types.ts';
import { Channel, decodeHello, decodeMessage, decodeSnapBegin, decodeSnapChunk, encodeSnapResult } from './codec.ts';
import { FRAME_OVERHEAD_BYTES, FrameDecodeError, FrameDecoder, FrameKind, PROTOCOL_VERSION, sealFrame } from './frame.ts';
import type { Frame } from './frame.ts';
import type { TransportLimits } from './limits.ts';
import type { TransportCounters } from './metrics.ts';
import type { SnapshotSink, SnapshotSinkFactory } from './snapshot.ts';

export interface InboundContext {
  readonly selfId: NodeId;
  readonly clusterId: string;
  readonly clusterTag: number;
  readonly limits: TransportLimits;
  readonly counters: TransportCounters;
  readonly log: Logger;
  readonly sinkFactory: SnapshotSinkFactory;
  isMember(id: NodeId): boolean;
  /** A messages channel from `id` completed its handshake: the transport closes older ones from that node. */
  claimMessagesChannel(id: NodeId, conn: InboundConnection): void;
  /** Take one of the snapshotReceivesMax receive slots; false when none is free. */
  acquireSnapshotSlot(): boolean;
  releaseSnapshotSlot(): void;
  deliver(message: Message): void;
  closed(conn: InboundConnection): void;
}

type Phase = 'hello' | 'messages' | 'snapshotBegin' | 'snapshotData' | 'snapshotFinishing' | 'done' | 'closed';

interface SnapshotReceive {
  message: Message;
  bytes: number;
  received: number;
  sink: SnapshotSink;
}

/** A reason to close the connection, logged at warn by the caller. */
class Rejection extends Error {}

export class InboundConnection {
  /** The node on the other side once the handshake is done; NONE before. */
  peer: NodeId = NONE;
  private readonly socket: Socket;
  private readonly ctx: InboundContext;
  private log: Logger;
  private readonly remote: string;
  private readonly decoder: FrameDecoder;
  private phase: Phase = 'hello';
  /** A sink call is pending: no frame is processed (and the socket is paused) until it settles. */
  private busy = false;
  private timer: NodeJS.Timeout | null = null;
  private slotHeld = false;
  private snap: SnapshotReceive | null = null;

  constructor(socket: Socket, ctx: InboundContext) {
    this.socket = socket;
    this.ctx = ctx;
    this.remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.log = ctx.log.child({ remote: this.remote });
    this.decoder = new FrameDecoder(ctx.limits.frameBytesMax);
    socket.setNoDelay(true);
    if (ctx.limits.tcpKeepAliveMs > 0) socket.setKeepAlive(true, ctx.limits.tcpKeepAliveMs);
    const ms = ctx.limits.handshakeTimeoutMs;
    this.timer = setTimeout(() => this.reject(`no handshake within ${ms} ms (handshakeTimeoutMs)`), ms);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'raft connection error'));
    socket.on('close', () => this.onClose());
  }

  /** Close without a warning (shutdown, membership change, replaced by a newer connection). */
  close(reason: string): void {
    if (this.phase === 'closed') return;
    this.log.debug({ reason }, 'closing raft connection');
    this.failSnapshot(reason);
    this.phase = 'closed';
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.ctx.counters.bytesReceived += chunk.length;
    if (this.phase === 'closed' || this.phase === 'done') return;
    this.decoder.push(chunk);
    this.pump();
  }

  private pump(): void {
    try {
      while (!this.busy && this.phase !== 'closed' && this.phase !== 'done') {
        const frame = this.decoder.next();
        if (frame === null) return;
        this.onFrame(frame);
      }
    } catch (err) {
      if (err instanceof FrameDecodeError || err instanceof Rejection) this.reject(err.message);
      else this.fail(err as Error);
    }
  }

  private onFrame(frame: Frame): void {
    if (this.phase === 'hello') {
      this.onHello(frame);
      return;
    }
    if (frame.clusterTag !== this.ctx.clusterTag || frame.sender !== this.peer) {
      throw new Rejection(`frame from node ${frame.sender} (cluster tag ${frame.clusterTag}) on the connection of node ${this.peer}`);
    }
    const expected: FrameKind =
      this.phase === 'messages' ? FrameKind.Message : this.phase === 'snapshotBegin' ? FrameKind.SnapBegin : FrameKind.SnapChunk;
    if (frame.kind !== expected || this.phase === 'snapshotFinishing') {
      throw new Rejection(`unexpected frame kind ${FrameKind[frame.kind]} in phase ${this.phase}`);
    }
    if (this.phase === 'messages') this.onMessage(decodeMessage(frame.payload));
    else if (this.phase === 'snapshotBegin') this.onSnapBegin(frame);
    else this.onSnapChunk(frame);
  }

  private onHello(frame: Frame): void {
    const { ctx } = this;
    if (frame.kind !== FrameKind.Hello) throw new Rejection(`first frame is ${FrameKind[frame.kind]}, not a handshake`);
    const hello = decodeHello(frame.payload);
    if (hello.version !== PROTOCOL_VERSION) throw new Rejection(`protocol version ${hello.version}, expected ${PROTOCOL_VERSION}`);
    if (hello.clusterId !== ctx.clusterId || frame.clusterTag !== ctx.clusterTag) {
      throw new Rejection(`wrong cluster id ${JSON.stringify(hello.clusterId)} from node ${hello.nodeId}`);
    }
    if (hello.nodeId !== frame.sender) throw new Rejection(`handshake names node ${hello.nodeId}, frame sender is ${frame.sender}`);
    if (hello.nodeId === ctx.selfId || hello.nodeId === NONE) throw new Rejection(`handshake from node id ${hello.nodeId}`);
    if (!ctx.isMember(hello.nodeId)) throw new Rejection(`node ${hello.nodeId} is not a member of the cluster`);
    if (hello.targetId !== ctx.selfId) throw new Rejection(`node ${hello.nodeId} meant to reach node ${hello.targetId}`);
    if (hello.channel === Channel.Snapshot) {
      if (!ctx.acquireSnapshotSlot()) {
        throw new Rejection(`snapshot from node ${hello.nodeId} refused: ${ctx.limits.snapshotReceivesMax} already being received (snapshotReceivesMax)`);
      }
      this.slotHeld = true;
    }
    this.clearTimer();
    this.peer = hello.nodeId;
    this.log = this.log.child({ peer: this.peer });
    this.socket.write(sealFrame(Buffer.alloc(FRAME_OVERHEAD_BYTES), FrameKind.HelloAck, ctx.clusterTag, ctx.selfId));
    if (hello.channel === Channel.Messages) {
      this.phase = 'messages';
      ctx.claimMessagesChannel(this.peer, this);
      return;
    }
    this.phase = 'snapshotBegin';
    const ms = ctx.limits.snapshotReceiveTimeoutMs;
    this.timer = setTimeout(() => this.refuseSnapshot(`snapshot not received within ${ms} ms (snapshotReceiveTimeoutMs)`), ms);
  }

  /** A message must be addressed to this node and come from the node that shook hands. */
  private checkMessage(m: Message): void {
    if (m.to !== this.ctx.selfId) throw new Rejection(`${MessageType[m.type]} addressed to node ${m.to}`);
    // A forwarded TransferLeader keeps the transferee in `from`; every other message comes from its sender.
    if (m.from !== this.peer && m.type !== MessageType.TransferLeader) {
      throw new Rejection(`${MessageType[m.type]} claims to come from node ${m.from}`);
    }
  }

  private onMessage(m: Message): void {
    this.checkMessage(m);
    if (m.type === MessageType.Snap) throw new Rejection('Snap message on the messages channel');
    this.ctx.deliver(m);
  }

  private onSnapBegin(frame: Frame): void {
    const { bytes, message } = decodeSnapBegin(frame.payload);
    this.checkMessage(message);
    const max = this.ctx.limits.snapshotBytesMax;
    if (bytes > max) {
      this.refuseSnapshot(`snapshot of ${bytes} bytes exceeds snapshotBytesMax (${max} bytes)`);
      return;
    }
    let sink: SnapshotSink;
    try {
      sink = this.ctx.sinkFactory({ from: this.peer, metadata: message.snapshot!.metadata, bytes });
    } catch (err) {
      this.refuseSnapshot(`cannot open a snapshot sink: ${(err as Error).message}`);
      return;
    }
    this.snap = { message, bytes, received: 0, sink };
    this.phase = 'snapshotData';
    this.log.info({ bytes, index: message.snapshot!.metadata.index }, 'receiving raft snapshot');
    if (bytes === 0) this.finishSnapshot();
  }

  private onSnapChunk(frame: Frame): void {
    const snap = this.snap!;
    const { offset, data } = decodeSnapChunk(frame.payload);
    if (offset !== snap.received) throw new Rejection(`snapshot chunk at offset ${offset}, expected ${snap.received}`);
    if (offset + data.length > snap.bytes) throw new Rejection(`snapshot data beyond the ${snap.bytes} bytes announced`);
    snap.received += data.length;
    let pending: void | Promise<void>;
    try {
      pending = snap.sink.write(data);
    } catch (err) {
      this.refuseSnapshot(`snapshot sink failed: ${(err as Error).message}`);
      return;
    }
    if (pending === undefined) {
      if (snap.received === snap.bytes) this.finishSnapshot();
      return;
    }
    this.busy = true;
    this.socket.pause();
    pending.then(
      () => {
        this.busy = false;
        if (this.snap !== snap) return;
        this.socket.resume();
        if (snap.received === snap.bytes) this.finishSnapshot();
        else this.pump();
      },
      (err: Error) => this.refuseSnapshot(`snapshot sink failed: ${err.message}`),
    );
  }

  private finishSnapshot(): void {
    const snap = this.snap!;
    this.phase = 'snapshotFinishing';
    this.busy = true;
    Promise.resolve()
      .then(() => snap.sink.finish())
      .then(
        (data) => {
          if (this.snap !== snap) return;
          this.snap = null;
          this.clearTimer();
          this.ctx.counters.snapshotsReceived++;
          const message: Message = { ...snap.message, snapshot: { ...snap.message.snapshot!, data } };
          this.log.info({ bytes: snap.bytes }, 'received raft snapshot');
          this.ctx.deliver(message);
          this.endWith(true, '');
        },
        (err: Error) => this.refuseSnapshot(`snapshot sink failed to finish: ${err.message}`),
      );
  }

  /** The snapshot cannot be taken: warn, tell the sender why, close. */
  private refuseSnapshot(reason: string): void {
    if (this.phase === 'closed' || this.phase === 'done') return;
    this.log.warn({ reason }, 'raft snapshot refused');
    this.ctx.counters.inboundRejected++;
    if (this.snap === null) this.ctx.counters.snapshotsReceiveFailed++;
    this.failSnapshot(reason);
    this.endWith(false, reason);
  }

  /** Send the SnapResult and half-close; the sender closes once it has read it (or we do after a grace time). */
  private endWith(ok: boolean, reason: string): void {
    this.phase = 'done';
    this.busy = false;
    this.clearTimer();
    const { clusterTag, selfId, limits } = this.ctx;
    this.socket.end(sealFrame(encodeSnapResult({ ok, reason }), FrameKind.SnapResult, clusterTag, selfId));
    // Read (and discard) what the sender still writes until it closes, so our close is a FIN, not a reset that
    // could destroy the result before the sender reads it.
    this.socket.resume();
    this.timer = setTimeout(() => this.socket.destroy(), limits.handshakeTimeoutMs);
  }

  private failSnapshot(reason: string): void {
    const snap = this.snap;
    if (snap === null) return;
    this.snap = null;
    this.ctx.counters.snapshotsReceiveFailed++;
    Promise.resolve()
      .then(() => snap.sink.abort(new Error(reason)))
      .catch((err: Error) => this.log.warn({ err: err.message }, 'aborting a snapshot sink failed'));
  }

  /** A protocol violation: warn, close, deliver nothing more. */
  private reject(reason: string): void {
    if (this.phase === 'closed') return;
    this.log.warn({ reason, peer: this.peer === NONE ? undefined : this.peer }, 'rejected raft connection');
    this.ctx.counters.inboundRejected++;
    this.close(reason);
  }

  /** A bug on our side (a handler or sink threw something unexpected): logged at error, the connection closed. */
  private fail(err: Error): void {
    this.log.error({ err }, 'raft connection failed');
    this.close(err.message);
  }

  private onClose(): void {
    if (this.snap !== null) this.log.warn({ received: this.snap.received, bytes: this.snap.bytes }, 'raft snapshot stream ended early');
    this.failSnapshot('connection closed');
    this.phase = 'closed';
    this.clearTimer();
    if (this.slotHeld) {
      this.slotHeld = false;
      this.ctx.releaseSnapshotSlot();
    }
    this.ctx.closed(this);
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
