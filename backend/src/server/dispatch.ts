// From a request frame to an encoded reply: read the header, find the handler, check the version, decode the
// body, run the handler, encode the response frame. What a client did wrong (unknown API, unsupported version,
// bytes that do not parse) is logged at warn and closes its connection, as Kafka does when it cannot parse a
// request; a handler that throws is logged at error with its stack and closes the connection too. The process
// keeps serving everyone else.
//
// The one exception is ApiVersions at a version we do not serve: the client gets a v0 reply with
// UNSUPPORTED_VERSION and our ranges (KIP-511), so that it can retry with a version we know.
import type { Backend } from '../backends/backend.ts';
import { apiVersionsResponse } from '../handlers/api-versions.ts';
import type { HandlerRegistry } from '../handlers/registry.ts';
import { NO_RESPONSE } from '../handlers/types.ts';
import type { ApiHandler, RequestContext } from '../handlers/types.ts';
import type { ApiCodec } from '../protocol/api-codec.ts';
import { Reader } from '../protocol/codec.ts';
import { ErrorCode, KafkaError, errorName } from '../protocol/errors.ts';
import { API_CODECS, ApiKey } from '../protocol/generated/index.ts';
import { encodeResponseFrame } from '../protocol/frame.ts';
import { decodeRequestHeader } from '../protocol/headers.ts';
import { CloseConnection } from './connection.ts';
import type { ConnectionInfo, EncodedResponse, FrameHandler, FrameOutcome } from './connection.ts';

/** api key int16 + api version int16 + correlation id int32: present in every request header version. */
const REQUEST_PREFIX_BYTES = 8;

export interface DispatcherDeps {
  registry: HandlerRegistry;
  backend: Backend;
}

interface Call {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  codec: ApiCodec;
}

export function createDispatcher(deps: DispatcherDeps): FrameHandler {
  return (frame, conn) => dispatch(frame, conn, deps);
}

function dispatch(frame: Buffer, conn: ConnectionInfo, deps: DispatcherDeps): FrameOutcome {
  if (frame.length < REQUEST_PREFIX_BYTES) {
    return refuse(conn, { size: frame.length }, 'request shorter than a request header');
  }
  const apiKey = frame.readInt16BE(0);
  const apiVersion = frame.readInt16BE(2);
  const correlationId = frame.readInt32BE(4);
  const handler = deps.registry.get(apiKey);
  const codec = API_CODECS.get(apiKey);
  if (handler === undefined || codec === undefined) {
    return refuse(conn, { apiKey, apiVersion, correlationId }, 'unknown or unsupported api key');
  }
  const call: Call = { apiKey, apiVersion, correlationId, codec };
  if (apiVersion < handler.minVersion || apiVersion > handler.maxVersion) {
    if (apiKey === ApiKey.ApiVersions) return unsupportedApiVersions(call, conn, deps.registry);
    return refuse(conn, { api: codec.name, apiKey, apiVersion, correlationId,
      supported: `${handler.minVersion}..${handler.maxVersion}` }, 'unsupported api version');
  }
  let clientId: string | null;
  let request: unknown;
  try {
    const reader = new Reader(frame);
    clientId = decodeRequestHeader(reader).clientId;
    request = codec.decodeRequest(reader, apiVersion);
    if (reader.remaining !== 0) throw new Error(`${reader.remaining} bytes left after the request body`);
  } catch (err) {
    return refuse(conn, { api: codec.name, apiKey, apiVersion, correlationId, reason: (err as Error).message },
      'malformed request');
  }
  return run(handler, request, call, conn, clientId, deps.backend);
}

function run(handler: ApiHandler, request: unknown, call: Call, conn: ConnectionInfo, clientId: string | null, backend: Backend): FrameOutcome {
  const ctx: RequestContext = {
    apiKey: call.apiKey,
    apiVersion: call.apiVersion,
    correlationId: call.correlationId,
    clientId,
    connectionId: conn.id,
    remoteAddress: conn.remoteAddress,
    log: conn.log,
    signal: conn.signal,
    backend,
  };
  let result: unknown;
  try {
    result = handler.handle(request, ctx);
  } catch (err) {
    return handlerFailed(err, call, conn);
  }
  if (typeof (result as Promise<unknown> | null)?.then === 'function') {
    return (result as Promise<unknown>).then(
      (response) => encodeReply(response, call, conn),
      (err: unknown) => handlerFailed(err, call, conn),
    );
  }
  return encodeReply(result, call, conn);
}

function encodeReply(response: unknown, call: Call, conn: ConnectionInfo): EncodedResponse | null {
  if (response === NO_RESPONSE) return null;
  try {
    return encodeFrame(call.codec, call.apiVersion, call.correlationId, response);
  } catch (err) {
    // A handler built a response its own version cannot carry: a bug, not the client's fault.
    conn.log.error({ err, api: call.codec.name, apiVersion: call.apiVersion, correlationId: call.correlationId },
      'cannot encode the response, closing connection');
    throw new CloseConnection('response encoding failed');
  }
}

/** int32 size + response header + body, as chunks (big record sets stay referenced, not copied). */
function encodeFrame(codec: ApiCodec, apiVersion: number, correlationId: number, body: unknown): EncodedResponse {
  const chunks = encodeResponseFrame(codec.apiKey, apiVersion, correlationId, body);
  let bytes = 0;
  for (const chunk of chunks) bytes += chunk.length;
  return { chunks, bytes };
}

/** KIP-511: a v0 body (readable by every client) with UNSUPPORTED_VERSION and every range we serve. */
function unsupportedApiVersions(call: Call, conn: ConnectionInfo, registry: HandlerRegistry): EncodedResponse {
  conn.log.debug({ apiVersion: call.apiVersion, correlationId: call.correlationId },
    'ApiVersions at an unsupported version, answering v0 with UNSUPPORTED_VERSION');
  return encodeFrame(call.codec, 0, call.correlationId, apiVersionsResponse(ErrorCode.UNSUPPORTED_VERSION, registry.ranges()));
}

function handlerFailed(err: unknown, call: Call, conn: ConnectionInfo): never {
  const where = { api: call.codec.name, apiKey: call.apiKey, apiVersion: call.apiVersion, correlationId: call.correlationId };
  if (err instanceof KafkaError) {
    // Handlers map operating errors into their response; one that escapes has no field to go to.
    conn.log.warn({ ...where, errorCode: err.code, error: errorName(err.code), reason: err.message },
      'handler failed with an error its response cannot carry, closing connection');
  } else {
    conn.log.error({ ...where, err }, 'handler threw, closing connection');
  }
  throw new CloseConnection('handler failed');
}

function refuse(conn: ConnectionInfo, details: Record<string, unknown>, message: string): never {
  conn.log.warn(details, `${message}, closing connection`);
  throw new CloseConnection(message);
}
