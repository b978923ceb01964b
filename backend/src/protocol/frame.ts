// Whole frames (int32 size, header, body) for the client side: tests, benchmarks and cluster forwarding; and
// the response frame the server writes. Frame size limits are the caller's: these helpers trust their input
// sizes only after checking them against the buffer.
import { DecodeError, Reader, Writer } from './codec.ts';
import { API_CODECS } from './generated/index.ts';
import type { ApiCodec } from './api-codec.ts';
import {
  decodeRequestHeader,
  decodeResponseHeader,
  encodeRequestHeader,
  encodeResponseHeader,
  type DecodedRequestHeader,
} from './headers.ts';

const SIZE_BYTES = 4;

function codecOf(apiKey: number): ApiCodec {
  const codec = API_CODECS.get(apiKey);
  if (codec === undefined) throw new RangeError(`unknown apiKey ${apiKey}`);
  return codec;
}

/** A complete request frame: int32 size + request header + body. */
export function encodeRequestFrame(
  apiKey: number, version: number, correlationId: number, clientId: string | null, body: unknown,
): Buffer {
  const codec = codecOf(apiKey);
  const w = new Writer();
  w.int32(0);
  encodeRequestHeader(w, apiKey, version, correlationId, clientId);
  codec.encodeRequest(w, version, body);
  w.patchInt32(0, w.length - SIZE_BYTES);
  return w.toBuffer();
}

/**
 * A complete response frame as chunks for writev (large records stay referenced, not copied): int32 size +
 * response header + body.
 */
export function encodeResponseFrame(apiKey: number, version: number, correlationId: number, body: unknown): Buffer[] {
  const codec = codecOf(apiKey);
  const w = new Writer();
  w.int32(0);
  encodeResponseHeader(w, apiKey, version, correlationId);
  codec.encodeResponse(w, version, body);
  w.patchInt32(0, w.length - SIZE_BYTES);
  return w.toChunks();
}

/** Checks the size prefix against the buffer and returns a reader positioned after it. */
function frameReader(frame: Buffer): Reader {
  if (frame.length < SIZE_BYTES) throw new DecodeError(`frame: ${frame.length} bytes, shorter than its size field`);
  const size = frame.readInt32BE(0);
  if (size !== frame.length - SIZE_BYTES) {
    throw new DecodeError(`frame: size field says ${size} bytes, ${frame.length - SIZE_BYTES} follow it`);
  }
  return new Reader(frame, SIZE_BYTES);
}

function expectEnd(r: Reader, what: string): void {
  if (r.remaining !== 0) throw new DecodeError(`${what}: ${r.remaining} unexpected bytes after the body`);
}

/** Decodes a complete response frame (size prefix included) of the given API and version. */
export function decodeResponseFrame<T = unknown>(
  frame: Buffer, apiKey: number, version: number,
): { correlationId: number; body: T } {
  const codec = codecOf(apiKey);
  const r = frameReader(frame);
  const correlationId = decodeResponseHeader(r, apiKey, version);
  const body = codec.decodeResponse(r, version) as T;
  expectEnd(r, `${codec.name}Response v${version}`);
  return { correlationId, body };
}

/** Decodes a complete request frame (size prefix included); unknown APIs and versions are a DecodeError. */
export function decodeRequestFrame<T = unknown>(frame: Buffer): { header: DecodedRequestHeader; body: T } {
  const r = frameReader(frame);
  const header = decodeRequestHeader(r);
  const codec = API_CODECS.get(header.apiKey);
  if (codec === undefined) throw new DecodeError(`request: unknown apiKey ${header.apiKey}`);
  if (header.apiVersion < codec.minVersion || header.apiVersion > codec.maxVersion) {
    throw new DecodeError(`${codec.name}Request: unsupported version ${header.apiVersion}`);
  }
  const body = codec.decodeRequest(r, header.apiVersion) as T;
  expectEnd(r, `${codec.name}Request v${header.apiVersion}`);
  return { header, body };
}
