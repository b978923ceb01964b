// Test support for the handler tests: a real DirectBackend in a temp dir, a RequestContext whose logger
// records error logs (so tests can prove that operating errors are not logged as bugs), wire round trips
// through the generated codecs, and RecordBatch bytes from the records builder.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { Backend } from '../../src/backends/backend.ts';
import { openDirectBackend, type DirectBackend, type DirectBackendOptions } from '../../src/backends/direct/direct-backend.ts';
import type { ApiHandler, RequestContext } from '../../src/handlers/types.ts';
import { NO_RESPONSE } from '../../src/handlers/types.ts';
import { DEFAULT_LOG_CONFIG } from '../../src/log/log-config.ts';
import type { ApiCodec } from '../../src/protocol/api-codec.ts';
import { Reader, Writer } from '../../src/protocol/codec.ts';
import { API_CODECS } from '../../src/protocol/generated/index.ts';
import { buildRecordBatch, decodeRecordBatch, type RecordInput } from '../../src/protocol/records/builder.ts';

export interface Harness {
  backend: DirectBackend;
  /** Error-level log lines written by handlers (bugs). */
  errors: Record<string, unknown>[];
  ctx(apiKey: number, apiVersion: number, overrides?: Partial<RequestContext>): RequestContext;
  close(): Promise<void>;
}

export async function openHarness(options: Partial<DirectBackendOptions> = {}): Promise<Harness> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'takhin-handlers-'));
  const errors: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        const entry = JSON.parse(line) as Record<string, unknown>;
        if ((entry.level as number) >= 50) errors.push(entry);
      }
      done();
    },
  });
  const logger = pino({ level: 'error' }, sink);
  const backend = await openDirectBackend({
    dataDir,
    nodeId: 1,
    advertisedHost: '127.0.0.1',
    advertisedPort: 9092,
    rack: null,
    autoCreateTopics: true,
    defaultPartitions: 1,
    defaultReplicationFactor: 1,
    topicDefaults: DEFAULT_LOG_CONFIG,
    retentionCheckIntervalMs: 0,
    offsetsRetentionMs: -1,
    offsetsRetentionCheckIntervalMs: 0,
    offsetMetadataBytesMax: 4096,
    partitionsPerTopicMax: 1000,
    partitionsPerBrokerMax: 10_000,
    logger,
    ...options,
  });
  let correlationId = 0;
  return {
    backend,
    errors,
    ctx(apiKey, apiVersion, overrides = {}) {
      return {
        apiKey,
        apiVersion,
        correlationId: ++correlationId,
        clientId: 'handler-test',
        connectionId: 1,
        remoteAddress: '127.0.0.1',
        log: logger,
        signal: new AbortController().signal,
        backend,
        ...overrides,
      };
    },
    async close() {
      await backend.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A backend whose calls can be replaced one by one, to inject faults a real backend cannot produce on demand. */
export function withOverrides(backend: Backend, overrides: Partial<Backend>): Backend {
  return new Proxy(backend, {
    get(target, prop, receiver) {
      if (prop in overrides) return (overrides as Record<string | symbol, unknown>)[prop];
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

function codecOf(handler: ApiHandler): ApiCodec<any, any> {
  const codec = API_CODECS.get(handler.apiKey);
  if (codec === undefined) throw new Error(`no codec for api key ${handler.apiKey}`);
  return codec;
}

/**
 * Serves `request` the way the server does at `version`: encode the request as a client would, decode it,
 * call the handler, encode its response, and decode that as a client would.
 */
export async function roundTrip<Req, Res>(handler: ApiHandler<Req, Res>, h: Harness, version: number, request: Req, overrides: Partial<RequestContext> = {}): Promise<Res> {
  const codec = codecOf(handler);
  const wr = new Writer();
  codec.encodeRequest(wr, version, request);
  const reqBytes = Buffer.from(wr.toBuffer());
  const rr = new Reader(reqBytes);
  const decoded = codec.decodeRequest(rr, version) as Req;
  if (rr.remaining !== 0) throw new Error(`request left ${rr.remaining} bytes undecoded`);
  const response = await handler.handle(decoded, h.ctx(handler.apiKey, version, overrides));
  if (response === NO_RESPONSE) throw new Error('handler sent no response');
  const ws = new Writer();
  codec.encodeResponse(ws, version, response);
  const resBytes = Buffer.from(ws.toBuffer());
  const rs = new Reader(resBytes);
  const out = codec.decodeResponse(rs, version) as Res;
  if (rs.remaining !== 0) throw new Error(`response left ${rs.remaining} bytes undecoded`);
  return out;
}

/** Calls the handler directly (no wire), for behaviour tests. */
export async function call<Req, Res>(handler: ApiHandler<Req, Res>, h: Harness, version: number, request: Req, overrides: Partial<RequestContext> = {}): Promise<Res | typeof NO_RESPONSE> {
  return handler.handle(request, h.ctx(handler.apiKey, version, overrides));
}

export function batch(values: string[], options: Parameters<typeof buildRecordBatch>[1] = {}): Buffer {
  const records: RecordInput[] = values.map((v) => ({ key: null, value: v }));
  return buildRecordBatch(records, options);
}

/** The record values of fetched data (one or more whole batches, possibly in several buffers). */
export function valuesOf(records: Buffer | Buffer[] | null): string[] {
  if (records === null) return [];
  const buf = Array.isArray(records) ? Buffer.concat(records) : records;
  const out: string[] = [];
  let pos = 0;
  while (pos + 12 <= buf.length) {
    const size = 12 + buf.readInt32BE(pos + 8);
    for (const r of decodeRecordBatch(buf.subarray(pos, pos + size)).records) out.push(r.value?.toString() ?? '<null>');
    pos += size;
  }
  return out;
}

/** The base offsets of the batches in fetched data. */
export function baseOffsetsOf(records: Buffer | Buffer[] | null): number[] {
  if (records === null) return [];
  const buf = Array.isArray(records) ? Buffer.concat(records) : records;
  const out: number[] = [];
  for (let pos = 0; pos + 12 <= buf.length; pos += 12 + buf.readInt32BE(pos + 8)) out.push(Number(buf.readBigInt64BE(pos)));
  return out;
}

export function recordBytes(records: Buffer | Buffer[] | null): number {
  if (records === null) return 0;
  return Array.isArray(records) ? records.reduce((n, b) => n + b.length, 0) : records.length;
}
