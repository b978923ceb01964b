// Random and mutated frames against a running server: whatever arrives, the server answers or closes that one
// connection, never throws, never leaks a connection, and keeps serving normal requests afterwards.
import test from 'ava';
import fc from 'fast-check';
import { createApiVersionsHandler } from '../../src/handlers/api-versions.ts';
import { HandlerRegistry } from '../../src/handlers/registry.ts';
import type { ApiHandler } from '../../src/handlers/types.ts';
import { decodeResponseFrame, encodeRequestFrame } from '../../src/protocol/frame.ts';
import { ApiKey } from '../../src/protocol/generated/index.ts';
import type { ApiVersionsResponse, HeartbeatRequest, SaslAuthenticateRequest } from '../../src/protocol/generated/index.ts';
import { ERROR, TestClient, WARN, eventually, rawFrame, startServer } from './harness.ts';

const heartbeatEcho: ApiHandler<HeartbeatRequest> = {
  apiKey: ApiKey.Heartbeat, minVersion: 0, maxVersion: 4,
  handle: (r) => ({ throttleTimeMs: r.generationId, errorCode: 0 }),
};
const saslEcho: ApiHandler<SaslAuthenticateRequest> = {
  apiKey: ApiKey.SaslAuthenticate, minVersion: 0, maxVersion: 2,
  handle: async (r) => ({ errorCode: 0, errorMessage: null, authBytes: r.authBytes, sessionLifetimeMs: 0n }),
};

function fuzzRegistry(): HandlerRegistry {
  let registry: HandlerRegistry | undefined;
  registry = new HandlerRegistry([createApiVersionsHandler(() => registry!.ranges()), heartbeatEcho, saslEcho]);
  return registry;
}

const clientId = fc.option(fc.string({ maxLength: 20 }), { nil: null });
const correlationId = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const softwareName = fc.stringMatching(/^[a-z0-9.-]{0,12}$/);

const validFrame = fc.oneof(
  fc.tuple(fc.integer({ min: 0, max: 3 }), correlationId, clientId, softwareName, softwareName).map(([v, c, id, n, sv]) =>
    encodeRequestFrame(ApiKey.ApiVersions, v, c, id, { clientSoftwareName: n, clientSoftwareVersion: sv })),
  fc.tuple(fc.integer({ min: 0, max: 4 }), correlationId, clientId, fc.string({ maxLength: 30 }), fc.integer()).map(([v, c, id, g, gen]) =>
    encodeRequestFrame(ApiKey.Heartbeat, v, c, id, { groupId: g, generationId: gen | 0, memberId: g, groupInstanceId: v >= 3 ? g : null })),
  fc.tuple(fc.integer({ min: 0, max: 2 }), correlationId, clientId, fc.uint8Array({ maxLength: 200 })).map(([v, c, id, b]) =>
    encodeRequestFrame(ApiKey.SaslAuthenticate, v, c, id, { authBytes: Buffer.from(b) })),
);

type Mutation =
  | { kind: 'flip'; at: number; byte: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'append'; bytes: Uint8Array }
  | { kind: 'fix-size' };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 20 }) }),
  fc.constant({ kind: 'fix-size' as const }),
);

function mutate(frame: Buffer, mutations: Mutation[]): Buffer {
  let out = Buffer.from(frame);
  for (const m of mutations) {
    if (m.kind === 'flip' && out.length > 0) out[m.at % out.length] = m.byte;
    else if (m.kind === 'truncate') out = out.subarray(0, m.at % (out.length + 1));
    else if (m.kind === 'append') out = Buffer.concat([out, m.bytes]);
    else if (m.kind === 'fix-size' && out.length >= 4) out.writeInt32BE(out.length - 4, 0);
  }
  return out;
}

const mutatedFrame = fc.tuple(validFrame, fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([f, ms]) => mutate(f, ms));
const randomHeaderFrame = fc
  .tuple(fc.integer({ min: -2, max: 80 }), fc.integer({ min: -2, max: 20 }), correlationId, fc.uint8Array({ maxLength: 120 }))
  .map(([key, version, c, rest]) => rawFrame(key, version, c, Buffer.from(rest)));
const garbage = fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b));

const connectionBytes = fc
  .array(fc.oneof({ weight: 2, arbitrary: validFrame }, { weight: 4, arbitrary: mutatedFrame },
    { weight: 2, arbitrary: randomHeaderFrame }, { weight: 1, arbitrary: garbage }), { minLength: 1, maxLength: 4 })
  .map((frames) => Buffer.concat(frames));

test('random and mutated frames never take the server down', async (t) => {
  const s = await startServer({ requestBytesMax: 4096, inFlightRequestsMax: 4 }, fuzzRegistry());
  t.teardown(() => s.stop());
  await fc.assert(
    fc.asyncProperty(connectionBytes, fc.integer({ min: 1, max: 64 }), async (bytes, split) => {
      const client = await TestClient.connect(s.port);
      // Two writes: the server must also cope with frames split at an arbitrary point.
      client.write(bytes.subarray(0, split));
      client.write(bytes.subarray(split));
      // Half-close: the server answers what it can, then closes; a connection left open here is a leak.
      client.socket.end();
      return client.closesWithin(3000);
    }),
    { numRuns: 300 },
  );
  t.true(await eventually(() => s.server.stats().connectionsOpen === 0), 'every connection was closed');
  const outcomes: Record<string, number> = {};
  for (const l of s.logs) outcomes[l.msg] = (outcomes[l.msg] ?? 0) + 1;
  t.log(outcomes);
  t.true(s.logs.filter((l) => l.level === WARN).length > 0, 'the fuzzer did produce bad requests');
  t.deepEqual(s.logs.filter((l) => l.level >= ERROR), [], 'no handler or encoder error');

  const client = await TestClient.connect(s.port);
  client.request(ApiKey.ApiVersions, 3, 99, { clientSoftwareName: 'after-fuzz', clientSoftwareVersion: '1' });
  const { correlationId: id, body } = decodeResponseFrame<ApiVersionsResponse>(await client.frame(), ApiKey.ApiVersions, 3);
  t.is(id, 99);
  t.is(body.errorCode, 0);
  t.deepEqual(body.apiKeys.map((k) => k.apiKey), [ApiKey.Heartbeat, ApiKey.ApiVersions, ApiKey.SaslAuthenticate]);
  client.destroy();
  t.is(process.exitCode ?? 0, 0);
});
