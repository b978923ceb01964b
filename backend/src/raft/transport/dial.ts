// Opening a connection to a peer: TCP connect, send Hello, wait for HelloAck from the node we meant to reach.
// Shared by the messages link (peer.ts) and the snapshot sender (snapshot-sender.ts).
import net from 'node:net';
import type { Socket } from 'node:net';
import type { NodeId } from '../core/types.ts';
import { encodeHello } from './codec.ts';
import type { Channel } from './codec.ts';
import { FrameDecoder, FrameKind, PROTOCOL_VERSION, sealFrame } from './frame.ts';

/** Dialing or the handshake failed; the message says why. */
export class DialError extends Error {
  readonly code = 'ERR_RAFT_TRANSPORT_DIAL';
  constructor(message: string) {
    super(message);
    this.name = 'DialError';
  }
}

export interface DialRequest {
  host: string;
  port: number;
  peerId: NodeId;
  selfId: NodeId;
  clusterId: string;
  clusterTag: number;
  channel: Channel;
  connectTimeoutMs: number;
  frameBytesMax: number;
  /** TCP keep-alive initial delay (ms); 0 = off. */
  tcpKeepAliveMs: number;
  /** Aborting destroys the socket and rejects with a DialError. */
  signal?: AbortSignal;
}

export interface DialedConnection {
  /** Paused, with an 'error' listener that ignores errors: the owner adds its own listeners, then resumes it. */
  socket: Socket;
  /** Holds any bytes that arrived after HelloAck. */
  decoder: FrameDecoder;
}

function ignoreError(): void {
  // Errors are followed by 'close', where the owner handles the end of the connection.
}

/** Connects and completes the handshake within connectTimeoutMs. Rejects with a DialError. */
export function dial(req: DialRequest): Promise<DialedConnection> {
  return new Promise((resolve, reject) => {
    if (req.signal?.aborted === true) {
      reject(new DialError('dial aborted'));
      return;
    }
    const socket = net.connect({ host: req.host, port: req.port });
    socket.setNoDelay(true);
    socket.on('error', ignoreError);
    const decoder = new FrameDecoder(req.frameBytesMax);
    let settled = false;

    const cleanup = (): void => {
      settled = true;
      clearTimeout(timer);
      req.signal?.removeEventListener('abort', onAbort);
      socket.off('connect', onConnect);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    const fail = (err: Error): void => {
      if (settled) return;
      cleanup();
      socket.destroy();
      reject(err instanceof DialError ? err : new DialError(err.message));
    };
    const onAbort = (): void => fail(new DialError('dial aborted'));
    const onConnect = (): void => {
      if (req.tcpKeepAliveMs > 0) socket.setKeepAlive(true, req.tcpKeepAliveMs);
      const hello = encodeHello({
        version: PROTOCOL_VERSION,
        channel: req.channel,
        nodeId: req.selfId,
        targetId: req.peerId,
        clusterId: req.clusterId,
      });
      socket.write(sealFrame(hello, FrameKind.Hello, req.clusterTag, req.selfId));
    };
    const onData = (chunk: Buffer): void => {
      decoder.push(chunk);
      let frame;
      try {
        frame = decoder.next();
      } catch (err) {
        fail(new DialError(`bad handshake answer: ${(err as Error).message}`));
        return;
      }
      if (frame === null) return;
      if (frame.kind !== FrameKind.HelloAck || frame.payload.length !== 0) {
        fail(new DialError(`expected a handshake answer, got frame kind ${frame.kind}`));
      } else if (frame.clusterTag !== req.clusterTag || frame.sender !== req.peerId) {
        fail(new DialError(`answer from node ${frame.sender} (cluster tag ${frame.clusterTag}), expected node ${req.peerId}`));
      } else {
        cleanup();
        socket.pause();
        resolve({ socket, decoder });
      }
    };
    const onError = (err: NodeJS.ErrnoException): void => fail(new DialError(`${err.code ?? err.message} (${req.host}:${req.port})`));
    const onClose = (): void => fail(new DialError('closed by the peer during the handshake'));
    const timer = setTimeout(
      () => fail(new DialError(`no handshake answer within ${req.connectTimeoutMs} ms (connectTimeoutMs)`)),
      req.connectTimeoutMs,
    );
    req.signal?.addEventListener('abort', onAbort, { once: true });
    socket.on('connect', onConnect);
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
  });
}
