// Sending one snapshot over its own connection, so heartbeats on the messages channel never wait behind it:
// dial (Snapshot channel), SnapBegin (the Snap message without data, and the data size), the data as SnapChunk
// frames of at most snapshotChunkBytes (read from the SnapshotSource as the socket drains, never all at once),
// then wait for the receiver's SnapResult. The whole send is bounded by snapshotSendTimeoutMs.
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Message, NodeId } from '../core/types.ts';
import { Channel, decodeSnapResult, encodeChunkOffset, encodeSnapBegin } from './codec.ts';
import type { SnapResult } from './codec.ts';
import { dial } from './dial.ts';
import type { DialedConnection } from './dial.ts';
import { FrameDecodeError, FrameKind, frameHead, sealFrame } from './frame.ts';
import type { TransportLimits } from './limits.ts';
import type { TransportCounters } from './metrics.ts';
import type { PeerAddress } from './peer.ts';
import { cutChunks } from './snapshot.ts';
import type { SnapshotSource } from './snapshot.ts';

export interface SnapshotSendContext {
  readonly selfId: NodeId;
  readonly clusterId: string;
  readonly clusterTag: number;
  readonly limits: TransportLimits;
  readonly counters: TransportCounters;
  readonly log: Logger;
}

export interface SnapshotSendRequest {
  peerId: NodeId;
  address: PeerAddress;
  message: Message;
  source: SnapshotSource;
  /** Aborted when the transport stops or the peer is removed. */
  signal: AbortSignal;
}

/** Resolves once the receiver confirmed the snapshot; rejects with the reason otherwise. Closes the source. */
export async function sendSnapshot(ctx: SnapshotSendContext, req: SnapshotSendRequest): Promise<void> {
  const abort = new AbortController();
  const onOuterAbort = (): void => abort.abort(req.signal.reason);
  req.signal.addEventListener('abort', onOuterAbort, { once: true });
  if (req.signal.aborted) onOuterAbort();
  const ms = ctx.limits.snapshotSendTimeoutMs;
  const timer = setTimeout(() => abort.abort(new Error(`snapshot not sent within ${ms} ms (snapshotSendTimeoutMs)`)), ms);
  let socket: Socket | null = null;
  abort.signal.addEventListener('abort', () => socket?.destroy(), { once: true });
  try {
    ctx.counters.connectAttempts++;
    const conn = await dial({
      host: req.address.host,
      port: req.address.port,
      peerId: req.peerId,
      selfId: ctx.selfId,
      clusterId: ctx.clusterId,
      clusterTag: ctx.clusterTag,
      channel: Channel.Snapshot,
      connectTimeoutMs: ctx.limits.connectTimeoutMs,
      frameBytesMax: ctx.limits.frameBytesMax,
      tcpKeepAliveMs: ctx.limits.tcpKeepAliveMs,
      signal: abort.signal,
    });
    socket = conn.socket;
    if (abort.signal.aborted) throw abort.signal.reason;
    await streamAndAwaitResult(ctx, req, conn, abort.signal);
    conn.socket.end();
  } catch (err) {
    socket?.destroy();
    throw abort.signal.aborted ? toError(abort.signal.reason) : err;
  } finally {
    clearTimeout(timer);
    req.signal.removeEventListener('abort', onOuterAbort);
    await closeSource(ctx, req.source);
  }
}

async function streamAndAwaitResult(
  ctx: SnapshotSendContext,
  req: SnapshotSendRequest,
  { socket, decoder }: DialedConnection,
  signal: AbortSignal,
): Promise<void> {
  let answer: SnapResult | null = null;
  // Aborted when the receiver answers: a refusal can come before all data is written; stop writing at once.
  const answered = new AbortController();
  const result = new Promise<SnapResult>((resolve, reject) => {
    const onFrames = (): void => {
      try {
        const frame = decoder.next();
        if (frame === null) return;
        if (frame.kind !== FrameKind.SnapResult || frame.sender !== req.peerId || frame.clusterTag !== ctx.clusterTag) {
          throw new FrameDecodeError(`expected a snapshot result from node ${req.peerId}, got frame kind ${frame.kind}`);
        }
        answer = decodeSnapResult(frame.payload);
        answered.abort();
        resolve(answer);
      } catch (err) {
        reject(err);
        socket.destroy();
      }
    };
    socket.on('data', (chunk: Buffer) => {
      decoder.push(chunk);
      onFrames();
    });
    socket.on('close', () => reject(new Error('snapshot connection closed before the receiver answered')));
    onFrames();
  });
  result.catch(() => undefined); // awaited below; a rejection while streaming must not be "unhandled"
  socket.resume();
  try {
    await streamData(ctx, req, socket, AbortSignal.any([signal, answered.signal]), () => answer !== null);
  } catch (err) {
    // A receiver that refuses the snapshot answers and closes while we still write: its reason is the better one.
    if (answer === null) throw err;
  }
  const r = await result;
  if (!r.ok) throw new Error(`receiver refused the snapshot: ${r.reason}`);
}

async function streamData(
  ctx: SnapshotSendContext,
  req: SnapshotSendRequest,
  socket: Socket,
  signal: AbortSignal,
  answered: () => boolean,
): Promise<void> {
  const { clusterTag, selfId, counters } = ctx;
  const total = req.source.bytes;
  const begin = sealFrame(encodeSnapBegin(req.message, total), FrameKind.SnapBegin, clusterTag, selfId);
  socket.write(begin);
  counters.bytesSent += begin.length;
  let offset = 0;
  for await (const piece of cutChunks(req.source.chunks(), ctx.limits.snapshotChunkBytes)) {
    if (answered()) return;
    if (signal.aborted) throw toError(signal.reason);
    if (offset + piece.byteLength > total) throw new Error(`snapshot source yields more than the ${total} bytes it announced`);
    const offsetField = encodeChunkOffset(offset);
    const head = frameHead(FrameKind.SnapChunk, clusterTag, selfId, [offsetField, piece]);
    socket.cork();
    socket.write(head);
    socket.write(offsetField);
    const more = socket.write(piece);
    socket.uncork();
    offset += piece.byteLength;
    counters.bytesSent += head.length + offsetField.length + piece.byteLength;
    if (!more) await drained(socket, signal);
  }
  if (offset !== total && !answered()) throw new Error(`snapshot source yielded ${offset} of the ${total} bytes it announced`);
}

/** Resolves when the socket wants more data; rejects if it closes or the send is aborted first. */
function drained(socket: Socket, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const closedError = (): Error => new Error('snapshot connection closed while sending');
    if (socket.destroyed || signal.aborted) {
      reject(closedError());
      return;
    }
    const done = (err?: Error): void => {
      socket.off('drain', onDrain);
      socket.off('close', onClose);
      signal.removeEventListener('abort', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = (): void => done();
    const onClose = (): void => done(closedError());
    socket.on('drain', onDrain);
    socket.on('close', onClose);
    signal.addEventListener('abort', onClose, { once: true });
  });
}

async function closeSource(ctx: SnapshotSendContext, source: SnapshotSource): Promise<void> {
  try {
    await source.close?.();
  } catch (err) {
    ctx.log.warn({ err: (err as Error).message }, 'closing a snapshot source failed');
  }
}

function toError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason));
}
