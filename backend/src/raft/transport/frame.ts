// Framing of the Raft transport. Every frame:
//
//   int32  length        bytes that follow (header + payload), 18 .. frameBytesMax
//   uint8  magic/version high nibble 0xA (a Raft transport frame), low nibble the protocol version
//   uint32 crc32c        over every byte after this field (kind, cluster tag, sender, payload)
//   uint8  kind          FrameKind
//   uint32 cluster tag   crc32c of the cluster id: a frame from another cluster is refused on every frame
//   uint64 sender        node id of the sender (a safe integer)
//   payload              depends on kind (codec.ts)
//
// The CRC covers the header fields too, so a flipped bit in the kind or sender is caught like one in the payload.
import { crc32c } from '@node-rs/crc32';
import type { NodeId } from '../core/types.ts';
import { FrameReader, FrameSizeError } from '../../server/framing.ts';

export const PROTOCOL_VERSION = 1;
const MAGIC = 0xa0;
const MAGIC_MASK = 0xf0;

export const FRAME_LENGTH_BYTES = 4;
/** magic/version, crc, kind, cluster tag, sender. */
export const FRAME_HEADER_BYTES = 18;
/** Length prefix plus header: what a frame adds to its payload. */
export const FRAME_OVERHEAD_BYTES = FRAME_LENGTH_BYTES + FRAME_HEADER_BYTES;

// Offsets inside a frame buffer that starts with the length prefix.
const AT_MAGIC = 4;
const AT_CRC = 5;
const AT_KIND = 9;
const AT_TAG = 10;
const AT_SENDER = 14;

const TWO_32 = 2 ** 32;

export enum FrameKind {
  /** Dialer -> listener, first frame of a connection: who I am, which cluster, which channel (codec.ts Hello). */
  Hello = 1,
  /** Listener -> dialer: handshake accepted. Empty payload. */
  HelloAck = 2,
  /** One Raft message (messages channel). */
  Message = 3,
  /** Snapshot channel: the Snap message without its data, and the data's total size. */
  SnapBegin = 4,
  /** Snapshot channel: a piece of snapshot data at an offset. */
  SnapChunk = 5,
  /** Snapshot channel, receiver -> sender: how the receive ended. */
  SnapResult = 6,
}

const FRAME_KIND_MAX = FrameKind.SnapResult;

/** A frame or payload could not be decoded, or broke the protocol. The connection is closed; nothing of it is used. */
export class FrameDecodeError extends Error {
  readonly code = 'ERR_RAFT_TRANSPORT_DECODE';
  constructor(message: string) {
    super(message);
    this.name = 'FrameDecodeError';
  }
}

export interface Frame {
  kind: FrameKind;
  clusterTag: number;
  sender: NodeId;
  /** A view of the received bytes (not copied). */
  payload: Buffer;
  /** Bytes on the wire, length prefix included. */
  wireBytes: number;
}

/** The per-frame cluster check: crc32c of the cluster id's UTF-8 bytes. */
export function clusterTagOf(clusterId: string): number {
  return crc32c(clusterId) >>> 0;
}

export function writeU64(buf: Buffer, at: number, v: number): void {
  const hi = Math.floor(v / TWO_32);
  buf.writeUInt32BE(hi, at);
  buf.writeUInt32BE(v - hi * TWO_32, at + 4);
}

/** A uint64 that must be a safe integer (< 2^53); null when it is not. */
export function readU64(buf: Buffer, at: number): number | null {
  const hi = buf.readUInt32BE(at);
  if (hi > 0x1fffff) return null;
  return hi * TWO_32 + buf.readUInt32BE(at + 4);
}

function fillHeader(frame: Buffer, kind: FrameKind, clusterTag: number, sender: NodeId, payloadBytes: number): void {
  frame.writeInt32BE(FRAME_HEADER_BYTES + payloadBytes, 0);
  frame[AT_MAGIC] = MAGIC | PROTOCOL_VERSION;
  frame[AT_KIND] = kind;
  frame.writeUInt32BE(clusterTag >>> 0, AT_TAG);
  writeU64(frame, AT_SENDER, sender);
}

/**
 * Completes a frame built in place: `frame` holds FRAME_OVERHEAD_BYTES of room, then the payload. Writes the
 * length, header and CRC; returns the same buffer.
 */
export function sealFrame(frame: Buffer, kind: FrameKind, clusterTag: number, sender: NodeId): Buffer {
  fillHeader(frame, kind, clusterTag, sender, frame.length - FRAME_OVERHEAD_BYTES);
  frame.writeUInt32BE(crc32c(frame.subarray(AT_KIND)), AT_CRC);
  return frame;
}

/** Length prefix and header for a payload sent as separate buffers (snapshot data: written without a copy). */
export function frameHead(kind: FrameKind, clusterTag: number, sender: NodeId, payload: readonly Uint8Array[]): Buffer {
  let payloadBytes = 0;
  for (const part of payload) payloadBytes += part.byteLength;
  const head = Buffer.allocUnsafe(FRAME_OVERHEAD_BYTES);
  fillHeader(head, kind, clusterTag, sender, payloadBytes);
  let crc = crc32c(head.subarray(AT_KIND));
  for (const part of payload) crc = crc32c(part, crc);
  head.writeUInt32BE(crc >>> 0, AT_CRC);
  return head;
}

/** A whole frame in one buffer (copies the payload: for small frames). */
export function encodeFrame(kind: FrameKind, clusterTag: number, sender: NodeId, payload: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_OVERHEAD_BYTES + payload.byteLength);
  frame.set(payload, FRAME_OVERHEAD_BYTES);
  return sealFrame(frame, kind, clusterTag, sender);
}

/** Decodes one frame body (the bytes after the length prefix). Throws FrameDecodeError. */
export function decodeFrame(body: Buffer): Frame {
  if (body.length < FRAME_HEADER_BYTES) {
    throw new FrameDecodeError(`frame of ${body.length} bytes is shorter than the ${FRAME_HEADER_BYTES}-byte header`);
  }
  const magic = body[0]!;
  if ((magic & MAGIC_MASK) !== MAGIC) {
    throw new FrameDecodeError(`not a Raft transport frame (magic byte 0x${magic.toString(16)})`);
  }
  if ((magic & ~MAGIC_MASK) !== PROTOCOL_VERSION) {
    throw new FrameDecodeError(`unsupported protocol version ${magic & ~MAGIC_MASK} (this node speaks ${PROTOCOL_VERSION})`);
  }
  const expected = body.readUInt32BE(AT_CRC - FRAME_LENGTH_BYTES);
  const actual = crc32c(body.subarray(AT_KIND - FRAME_LENGTH_BYTES)) >>> 0;
  if (expected !== actual) {
    throw new FrameDecodeError(`frame CRC mismatch: header says 0x${expected.toString(16)}, data gives 0x${actual.toString(16)}`);
  }
  const kind = body[AT_KIND - FRAME_LENGTH_BYTES]!;
  if (kind < FrameKind.Hello || kind > FRAME_KIND_MAX) throw new FrameDecodeError(`unknown frame kind ${kind}`);
  const sender = readU64(body, AT_SENDER - FRAME_LENGTH_BYTES);
  if (sender === null) throw new FrameDecodeError('sender node id is not a safe integer');
  return {
    kind,
    clusterTag: body.readUInt32BE(AT_TAG - FRAME_LENGTH_BYTES),
    sender,
    payload: body.subarray(FRAME_HEADER_BYTES),
    wireBytes: FRAME_LENGTH_BYTES + body.length,
  };
}

/** Cuts a byte stream into decoded frames. A frame is rejected by its length before its body is buffered. */
export class FrameDecoder {
  private readonly reader: FrameReader;
  private readonly frameBytesMax: number;

  constructor(frameBytesMax: number) {
    this.frameBytesMax = frameBytesMax;
    this.reader = new FrameReader(frameBytesMax);
  }

  get bufferedBytes(): number {
    return this.reader.bufferedBytes;
  }

  push(chunk: Buffer): void {
    this.reader.push(chunk);
  }

  /** The next whole frame, or null until more bytes arrive. Throws FrameDecodeError. */
  next(): Frame | null {
    let body: Buffer | null;
    try {
      body = this.reader.next();
    } catch (err) {
      if (!(err instanceof FrameSizeError)) throw err;
      throw new FrameDecodeError(`frame length ${err.size} is outside ${FRAME_HEADER_BYTES}..${this.frameBytesMax} (frameBytesMax)`);
    }
    return body === null ? null : decodeFrame(body);
  }
}
