// The envelope around every application command in the Raft log. It names the node and the proposal that put
// the command there, so that when the entry is applied everywhere, only the proposing node (in the same
// incarnation: a restart picks a new random one) hands the result to a waiting caller. Entries proposed by
// other nodes, or by an earlier life of this node, are applied the same way but resolve nothing.
//
// Layout (big-endian): version u8 | nodeId u32 | incarnation u32 | seq u48 | payload
import type { NodeId } from './node-types.ts';

export const ENVELOPE_VERSION = 1;
export const ENVELOPE_HEADER_BYTES = 1 + 4 + 4 + 6;
/** Largest proposal sequence number (u48): at a million proposals a second, 8.9 years per incarnation. */
export const ENVELOPE_SEQ_MAX = 2 ** 48 - 1;

export interface ProposalId {
  nodeId: NodeId;
  incarnation: number;
  seq: number;
}

export interface Envelope extends ProposalId {
  payload: Uint8Array;
}

/** A committed entry that is not a valid envelope: the log holds something this code never wrote. */
export class EnvelopeDecodeError extends Error {
  readonly code = 'RAFT_ENVELOPE_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'EnvelopeDecodeError';
  }
}

/** One copy of the payload into a buffer with the header in front (entry data must be one Uint8Array). */
export function encodeEnvelope(id: ProposalId, payload: Uint8Array): Uint8Array {
  if (!Number.isInteger(id.seq) || id.seq < 0 || id.seq > ENVELOPE_SEQ_MAX) throw new RangeError(`proposal seq ${id.seq} out of range`);
  const out = Buffer.allocUnsafe(ENVELOPE_HEADER_BYTES + payload.byteLength);
  out.writeUInt8(ENVELOPE_VERSION, 0);
  out.writeUInt32BE(id.nodeId, 1);
  out.writeUInt32BE(id.incarnation >>> 0, 5);
  out.writeUIntBE(id.seq, 9, 6);
  out.set(payload, ENVELOPE_HEADER_BYTES);
  return out;
}

/** The payload is a view into `data` (no copy). */
export function decodeEnvelope(data: Uint8Array): Envelope {
  if (data.byteLength < ENVELOPE_HEADER_BYTES) {
    throw new EnvelopeDecodeError(`entry of ${data.byteLength} bytes is shorter than the ${ENVELOPE_HEADER_BYTES}-byte envelope header`);
  }
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const version = buf.readUInt8(0);
  if (version !== ENVELOPE_VERSION) throw new EnvelopeDecodeError(`unknown envelope version ${version}`);
  return {
    nodeId: buf.readUInt32BE(1),
    incarnation: buf.readUInt32BE(5),
    seq: buf.readUIntBE(9, 6),
    payload: data.subarray(ENVELOPE_HEADER_BYTES),
  };
}
