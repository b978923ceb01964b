// What every API handler sees. Handlers know the Backend interface and the generated protocol types, nothing
// else (no sockets, no storage): the server decodes the request, calls handle(), and encodes what it returns.
import type { Logger } from 'pino';
import type { Backend } from '../backends/backend.ts';

export interface RequestContext {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
  /** Unique per connection for this process; for logs and per-connection state (fetch sessions, SASL). */
  connectionId: number;
  remoteAddress: string;
  log: Logger;
  /** Aborted when the connection closes or the server shuts down: long waits (Fetch, JoinGroup) end early. */
  signal: AbortSignal;
  backend: Backend;
}

/** Returned by a handler when the protocol sends no response (Produce with acks=0). */
export const NO_RESPONSE: unique symbol = Symbol('no-response');

export interface ApiHandler<Req = any, Res = any> {
  apiKey: number;
  /** The versions this broker advertises in ApiVersions and accepts; others are refused before handle(). */
  minVersion: number;
  maxVersion: number;
  handle(request: Req, ctx: RequestContext): Promise<Res | typeof NO_RESPONSE> | Res | typeof NO_RESPONSE;
}
