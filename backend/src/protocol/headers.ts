// The header-version rules, kept in one place. A request's header version follows the request version:
// v2 (tagged fields) when flexible, else v1 (client id), and v0 only for ControlledShutdown v0. A response uses
// header v1 when flexible, else v0, except ApiVersions, which always answers with v0 so that a client can read
// the reply even when it asked for a version the broker does not know (KIP-511).
import { DecodeError, type Reader, type Writer } from './codec.ts';
import {
  API_CODECS,
  ApiKey,
  decodeRequestHeader as decodeRequestHeaderFields,
  decodeResponseHeader as decodeResponseHeaderFields,
  encodeRequestHeader as encodeRequestHeaderFields,
  encodeResponseHeader as encodeResponseHeaderFields,
} from './generated/index.ts';

export interface DecodedRequestHeader {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  /** null when the client sent none (-1) or the header has no client id (v0, or an unknown apiKey). */
  clientId: string | null;
  /** 0, 1 or 2; 0 as well for an unknown apiKey, where only the v0 fields could be read. */
  headerVersion: number;
}

function firstFlexibleVersion(apiKey: number): number {
  const codec = API_CODECS.get(apiKey);
  if (codec === undefined) throw new RangeError(`unknown apiKey ${apiKey}`);
  return codec.firstFlexibleVersion;
}

/** Request header version for a request; throws RangeError for an unknown apiKey. */
export function requestHeaderVersion(apiKey: number, apiVersion: number): number {
  if (apiKey === ApiKey.ControlledShutdown && apiVersion === 0) return 0;
  return apiVersion >= firstFlexibleVersion(apiKey) ? 2 : 1;
}

/** Response header version for a response; throws RangeError for an unknown apiKey. */
export function responseHeaderVersion(apiKey: number, apiVersion: number): number {
  if (apiKey === ApiKey.ApiVersions) return 0;
  return apiVersion >= firstFlexibleVersion(apiKey) ? 1 : 0;
}

/**
 * Reads a request header. The api key and version come first in every header version, so they decide how the
 * rest is read (versions outside the API's range still follow its flexible rule: a newer client's ApiVersions
 * must be readable). For an unknown apiKey only the v0 fields are read, so the server can log and close.
 */
export function decodeRequestHeader(r: Reader): DecodedRequestHeader {
  if (r.remaining < 4) throw new DecodeError(`request header: needs 4 bytes, only ${r.remaining} remain`);
  const apiKey = r.buf.readInt16BE(r.offset);
  const apiVersion = r.buf.readInt16BE(r.offset + 2);
  const headerVersion = API_CODECS.has(apiKey) ? requestHeaderVersion(apiKey, apiVersion) : 0;
  const h = decodeRequestHeaderFields(r, headerVersion);
  return {
    apiKey,
    apiVersion,
    correlationId: h.correlationId,
    clientId: headerVersion === 0 ? null : h.clientId,
    headerVersion,
  };
}

/** Writes a request header in the version the request needs (client side: tests, forwarding). */
export function encodeRequestHeader(
  w: Writer, apiKey: number, apiVersion: number, correlationId: number, clientId: string | null,
): void {
  encodeRequestHeaderFields(w, requestHeaderVersion(apiKey, apiVersion), {
    requestApiKey: apiKey,
    requestApiVersion: apiVersion,
    correlationId,
    clientId,
  });
}

/** Writes a response header in the version the response needs. */
export function encodeResponseHeader(w: Writer, apiKey: number, apiVersion: number, correlationId: number): void {
  encodeResponseHeaderFields(w, responseHeaderVersion(apiKey, apiVersion), { correlationId });
}

/** Reads a response header (client side) and returns its correlation id. */
export function decodeResponseHeader(r: Reader, apiKey: number, apiVersion: number): number {
  return decodeResponseHeaderFields(r, responseHeaderVersion(apiKey, apiVersion)).correlationId;
}
