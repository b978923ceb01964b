import test from 'ava';
import type { ApiHandler } from '../../src/handlers/types.ts';
import { NO_RESPONSE } from '../../src/handlers/types.ts';
import { ErrorCode, KafkaError } from '../../src/protocol/errors.ts';
import { decodeResponseFrame, encodeRequestFrame as encode } from '../../src/protocol/frame.ts';
import { ApiKey } from '../../src/protocol/generated/index.ts';
import type {
  ApiVersionsResponse, HeartbeatRequest, HeartbeatResponse, SaslAuthenticateRequest, SaslAuthenticateResponse,
} from '../../src/protocol/generated/index.ts';
import { createRegistry } from '../../src/handlers/registry.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { KafkaServer } from '../../src/server/server.ts';
import { ERROR, TEST_LIMITS, TestClient, UNUSED_BACKEND, WARN, eventually, logsAt, rawFrame, sleep, startServer } from './harness.ts';

// Heartbeat is the vehicle for test handlers: a small request whose generationId says what the handler should do
// and whose response (throttleTimeMs) echoes it, so each reply can be matched to its request.
const HB_VERSION = 3;

function heartbeat(generationId: number, groupId = 'g'): HeartbeatRequest {
  return { groupId, generationId, memberId: 'm', groupInstanceId: null };
}

function reply(generationId: number): HeartbeatResponse {
  return { throttleTimeMs: generationId, errorCode: 0 };
}

function decodeHeartbeat(frame: Buffer): { correlationId: number; body: HeartbeatResponse } {
  return decodeResponseFrame<HeartbeatResponse>(frame, ApiKey.Heartbeat, HB_VERSION);
}

async function apiVersionsWorks(port: number): Promise<boolean> {
  const client = await TestClient.connect(port);
  try {
    client.request(ApiKey.ApiVersions, 2, 4242, {});
    const { correlationId, body } = decodeResponseFrame<ApiVersionsResponse>(await client.frame(), ApiKey.ApiVersions, 2);
    return correlationId === 4242 && body.errorCode === 0 && body.apiKeys.some((k) => k.apiKey === ApiKey.ApiVersions);
  } finally {
    client.destroy();
  }
}

test('pipelined requests are answered in request order even when handlers finish out of order', async (t) => {
  const started: number[] = [];
  let running = 0;
  let maxRunning = 0;
  const handler: ApiHandler<HeartbeatRequest, HeartbeatResponse> = {
    apiKey: ApiKey.Heartbeat,
    minVersion: 0,
    maxVersion: 4,
    async handle(request) {
      started.push(request.generationId);
      running++;
      maxRunning = Math.max(maxRunning, running);
      await sleep(request.generationId);
      running--;
      return reply(request.generationId);
    },
  };
  const s = await startServer({}, [handler]);
  t.teardown(() => s.stop());
  const client = await TestClient.connect(s.port);
  const delays = [120, 10, 70, 0, 40, 5];
  // All in one write: the server sees them pipelined.
  client.write(Buffer.concat(delays.map((d, i) => encode(ApiKey.Heartbeat, HB_VERSION, i + 1, null, heartbeat(d)))));
  for (let i = 0; i < delays.length; i++) {
    const { correlationId, body } = decodeHeartbeat(await client.frame());
    t.is(correlationId, i + 1);
    t.is(body.throttleTimeMs, delays[i]);
  }
  t.deepEqual(started, delays, 'handlers start in request order');
  t.true(maxRunning >= 3, `handlers ran concurrently (max ${maxRunning})`);
  client.destroy();
});

test('at most inFlightRequestsMax requests are handled at once; the rest wait unread', async (t) => {
  const release: (() => void)[] = [];
  let startedCount = 0;
  const handler: ApiHandler<HeartbeatRequest, HeartbeatResponse> = {
    apiKey: ApiKey.Heartbeat,
    minVersion: 0,
    maxVersion: 4,
    handle(request) {
      startedCount++;
      return new Promise((resolve) => release.push(() => resolve(reply(request.generationId))));
    },
  };
  const s = await startServer({ inFlightRequestsMax: 2 }, [handler]);
  t.teardown(() => s.stop());
  const client = await TestClient.connect(s.port);
  client.write(Buffer.concat([1, 2, 3, 4, 5].map((g) => encode(ApiKey.Heartbeat, HB_VERSION, g, null, heartbeat(g)))));
  t.true(await eventually(() => startedCount === 2));
  await sleep(50);
  t.is(startedCount, 2, 'the third request is not taken while two are in flight');
  // Finish the second first: nothing may be written before the first reply, and no new slot opens.
  release[1]!();
  await sleep(50);
  t.is(startedCount, 2);
  release[0]!();
  for (const g of [1, 2]) t.is(decodeHeartbeat(await client.frame()).body.throttleTimeMs, g);
  t.true(await eventually(() => startedCount === 4));
  release[2]!();
  release[3]!();
  t.true(await eventually(() => startedCount === 5));
  release[4]!();
  for (const g of [3, 4, 5]) t.is(decodeHeartbeat(await client.frame()).body.throttleTimeMs, g);
  client.destroy();
});

test('replies held for a connection beyond responseBytesMax stop it from reading', async (t) => {
  let release = () => {};
  let started = 0;
  const handler: ApiHandler<SaslAuthenticateRequest, SaslAuthenticateResponse> = {
    apiKey: ApiKey.SaslAuthenticate,
    minVersion: 0,
    maxVersion: 2,
    handle(request) {
      started++;
      const response = { errorCode: 0, errorMessage: null, authBytes: Buffer.alloc(6000, started), sessionLifetimeMs: 0n };
      // The first request is slow: every later reply is held behind it.
      if (request.authBytes.toString() === 'slow') return new Promise((resolve) => (release = () => resolve(response)));
      return response;
    },
  };
  const s = await startServer({ responseBytesMax: 10_000 }, [handler]);
  t.teardown(() => s.stop());
  const client = await TestClient.connect(s.port);
  const frames = ['slow', 'a', 'b', 'c', 'd'].map((x, i) => encode(ApiKey.SaslAuthenticate, 1, i, null, { authBytes: Buffer.from(x) }));
  client.write(Buffer.concat(frames));
  t.true(await eventually(() => started === 3));
  await sleep(50);
  t.is(started, 3, 'two held replies of 6000 bytes exceed 10000: the fourth request is not read');
  release();
  for (let i = 0; i < 5; i++) {
    const r = decodeResponseFrame<SaslAuthenticateResponse>(await client.frame(), ApiKey.SaslAuthenticate, 1);
    t.is(r.correlationId, i);
    t.is(r.body.authBytes.length, 6000);
  }
  t.is(started, 5);
  client.destroy();
});

test('NO_RESPONSE sends nothing but later replies stay in order', async (t) => {
  const handler: ApiHandler<HeartbeatRequest, HeartbeatResponse> = {
    apiKey: ApiKey.Heartbeat,
    minVersion: 0,
    maxVersion: 4,
    async handle(request) {
      await sleep(request.generationId % 7);
      // Odd generations play acks=0 Produce.
      return request.generationId % 2 === 1 ? NO_RESPONSE : reply(request.generationId);
    },
  };
  const s = await startServer({}, [handler]);
  t.teardown(() => s.stop());
  const client = await TestClient.connect(s.port);
  const gens = [11, 20, 13, 6, 2, 15, 8];
  client.write(Buffer.concat(gens.map((g, i) => encode(ApiKey.Heartbeat, HB_VERSION, 100 + i, null, heartbeat(g)))));
  const expected = gens.map((g, i) => [g, 100 + i] as const).filter(([g]) => g % 2 === 0);
  for (const [g, correlationId] of expected) {
    const r = decodeHeartbeat(await client.frame());
    t.is(r.correlationId, correlationId);
    t.is(r.body.throttleTimeMs, g);
  }
  await sleep(50);
  await t.throwsAsync(client.frame(100), { message: /no response in time/ });
  client.destroy();
});

test('an oversized frame closes only that connection, with a warning naming the client', async (t) => {
  const s = await startServer({ requestBytesMax: 1000 });
  t.teardown(() => s.stop());
  const other = await TestClient.connect(s.port);
  const bad = await TestClient.connect(s.port);
  const size = Buffer.alloc(4);
  size.writeInt32BE(1001);
  bad.write(size);
  t.true(await bad.closesWithin(2000));
  const warn = logsAt(s.logs, WARN, /request frame too large/);
  t.is(warn.length, 1);
  t.is(warn[0]!.size, 1001);
  t.regex(String(warn[0]!.remote), /^127\.0\.0\.1:\d+$/);
  t.is(warn[0]!.remote, bad.localAddress);
  // The other connection, and new ones, still work.
  other.request(ApiKey.ApiVersions, 0, 7, {});
  t.is(decodeResponseFrame(await other.frame(), ApiKey.ApiVersions, 0).correlationId, 7);
  t.true(await apiVersionsWorks(s.port));
  other.destroy();
});

test('a frame exactly at requestBytesMax is read', async (t) => {
  const s = await startServer({ requestBytesMax: 64 }, []);
  t.teardown(() => s.stop());
  const client = await TestClient.connect(s.port);
  // ApiVersions v0 header (8) + client id string (2 + n) with no body: make the frame exactly 64 bytes.
  const frame = encode(ApiKey.ApiVersions, 0, 1, 'x'.repeat(64 - 10), {});
  t.is(frame.length, 68);
  client.write(frame);
  t.is(decodeResponseFrame(await client.frame(), ApiKey.ApiVersions, 0).correlationId, 1);
  client.destroy();
});

const BAD_REQUESTS: [string, Buffer, RegExp][] = [
  ['a header shorter than 8 bytes', (() => { const b = Buffer.alloc(9); b.writeInt32BE(5); return b; })(), /shorter than a request header/],
  ['an unknown api key', rawFrame(999, 0, 1, Buffer.from([0, 0])), /unknown or unsupported api key/],
  ['an api key with a codec but no handler', rawFrame(ApiKey.LeaderAndIsr, 0, 1, Buffer.from([0, 0])), /unknown or unsupported api key/],
  ['a version outside the handler range', rawFrame(ApiKey.Heartbeat, 99, 1, Buffer.from([0, 0])), /unsupported api version/],
  ['a negative version', rawFrame(ApiKey.Heartbeat, -1, 1, Buffer.from([0, 0])), /unsupported api version/],
  ['a client id longer than the frame', rawFrame(ApiKey.ApiVersions, 1, 1, Buffer.from([0, 50, 65])), /malformed request/],
  ['a truncated body', rawFrame(ApiKey.Heartbeat, 1, 1, Buffer.from([0, 1, 65, 0, 5, 65])), /malformed request/],
  ['bytes after the body', withTrailingByte(encode(ApiKey.ApiVersions, 1, 1, 'c', {})), /malformed request/],
];

function withTrailingByte(frame: Buffer): Buffer {
  const out = Buffer.concat([frame, Buffer.from([1])]);
  out.writeInt32BE(out.length - 4, 0);
  return out;
}

for (const [name, bytes, message] of BAD_REQUESTS) {
  test(`${name} closes the connection with a warning; the server keeps serving`, async (t) => {
    const handler: ApiHandler<HeartbeatRequest, HeartbeatResponse> = {
      apiKey: ApiKey.Heartbeat, minVersion: 0, maxVersion: 4, handle: (r) => reply(r.generationId),
    };
    const s = await startServer({}, [handler]);
    t.teardown(() => s.stop());
    const client = await TestClient.connect(s.port);
    client.write(bytes);
    t.true(await client.closesWithin(2000));
    const warns = logsAt(s.logs, WARN, message);
    t.is(warns.length, 1, JSON.stringify(s.logs));
    t.is(warns[0]!.remote, client.localAddress);
    t.true(await apiVersionsWorks(s.port));
  });
}

test('the warning for a bad request names api key, version and reason', async (t) => {
  const s = await startServer({}, []);
  t.teardown(() => s.stop());
  const client = await TestClient.connect(s.port);
  client.write(rawFrame(ApiKey.ApiVersions, 2, 9, Buffer.from([0, 40])));
  t.true(await client.closesWithin(2000));
  const [warn] = logsAt(s.logs, WARN, /malformed request/);
  t.is(warn?.apiKey, ApiKey.ApiVersions);
  t.is(warn?.apiVersion, 2);
  t.is(warn?.correlationId, 9);
  t.regex(String(warn?.reason), /clientId|needs|remain/);
});

test('a handler that throws is logged with its stack and closes only its connection', async (t) => {
  const handler: ApiHandler<HeartbeatRequest, HeartbeatResponse> = {
    apiKey: ApiKey.Heartbeat,
    minVersion: 0,
    maxVersion: 4,
    handle(request) {
      if (request.groupId === 'sync-boom') throw new RangeError('sync bug');
      if (request.groupId === 'boom') return Promise.reject(new TypeError('handler bug'));
      if (request.groupId === 'kafka') return Promise.reject(new KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE));
      return reply(request.generationId);
    },
  };
  const s = await startServer({}, [handler]);
  t.teardown(() => s.stop());
  const good = await TestClient.connect(s.port);
  for (const group of ['boom', 'sync-boom', 'kafka']) {
    const bad = await TestClient.connect(s.port);
    bad.request(ApiKey.Heartbeat, HB_VERSION, 1, heartbeat(1, group));
    t.true(await bad.closesWithin(2000), group);
  }
  const [error] = logsAt(s.logs, ERROR, /handler threw/);
  t.regex(String((error?.err as { stack?: string } | undefined)?.stack), /TypeError: handler bug\n\s+at /);
  t.is(logsAt(s.logs, ERROR, /handler threw/).length, 2);
  t.is(logsAt(s.logs, WARN, /handler failed with an error/)[0]?.error, 'COORDINATOR_NOT_AVAILABLE');
  good.request(ApiKey.Heartbeat, HB_VERSION, 2, heartbeat(5));
  t.is(decodeHeartbeat(await good.frame()).body.throttleTimeMs, 5);
  good.destroy();
});

test('idle connections are closed; one waiting for a slow reply is not', async (t) => {
  const handler: ApiHandler<HeartbeatRequest, HeartbeatResponse> = {
    apiKey: ApiKey.Heartbeat,
    minVersion: 0,
    maxVersion: 4,
    async handle(request) {
      await sleep(request.generationId);
      return reply(request.generationId);
    },
  };
  const s = await startServer({ connectionsIdleMs: 150 }, [handler]);
  t.teardown(() => s.stop());
  const idle = await TestClient.connect(s.port);
  const busy = await TestClient.connect(s.port);
  busy.request(ApiKey.Heartbeat, HB_VERSION, 1, heartbeat(500));
  t.true(await idle.closesWithin(2000));
  t.false(busy.closedYet);
  t.is(decodeHeartbeat(await busy.frame(2000)).body.throttleTimeMs, 500);
  // Once answered, it is idle too.
  t.true(await busy.closesWithin(2000));
  t.true(logsAt(s.logs, 30, /closing idle connection/).length >= 2);
});

test('graceful shutdown answers the request in flight, then closes', async (t) => {
  let signalAborted = false;
  const handler: ApiHandler<HeartbeatRequest, HeartbeatResponse> = {
    apiKey: ApiKey.Heartbeat,
    minVersion: 0,
    maxVersion: 4,
    async handle(request, ctx) {
      await sleep(request.generationId);
      signalAborted = ctx.signal.aborted;
      return reply(request.generationId);
    },
  };
  const s = await startServer({}, [handler]);
  const client = await TestClient.connect(s.port);
  client.request(ApiKey.Heartbeat, HB_VERSION, 1, heartbeat(300));
  await sleep(30);
  let stopped = false;
  const stopping = s.stop().then(() => {
    stopped = true;
  });
  await sleep(50);
  t.false(stopped, 'stop waits for the request in flight');
  await t.throwsAsync(TestClient.connect(s.port), undefined, 'no longer accepting');
  t.is(decodeHeartbeat(await client.frame(2000)).body.throttleTimeMs, 300);
  t.true(signalAborted, 'the request saw the shutdown on its signal');
  await stopping;
  t.true(await client.closesWithin(1000));
  t.is(s.server.stats().connectionsOpen, 0);
});

test('graceful shutdown closes at once a client that sent more requests after it began', async (t) => {
  // Real clients keep sending (heartbeats, commits, fetches) until they see the FIN. Those requests stay unread;
  // the client's own FIN arrives behind them and must still be seen, not waited for until the deadline.
  const handler: ApiHandler<HeartbeatRequest, HeartbeatResponse> = {
    apiKey: ApiKey.Heartbeat,
    minVersion: 0,
    maxVersion: 4,
    async handle(request) {
      await sleep(request.generationId);
      return reply(request.generationId);
    },
  };
  const s = await startServer({ shutdownTimeoutMs: 5000 }, [handler]);
  const client = await TestClient.connect(s.port);
  client.request(ApiKey.Heartbeat, HB_VERSION, 1, heartbeat(200));
  await sleep(30);
  const begin = Date.now();
  const stopping = s.stop();
  await sleep(30);
  client.request(ApiKey.Heartbeat, HB_VERSION, 2, heartbeat(1)); // arrives while draining: never read
  t.is(decodeHeartbeat(await client.frame(2000)).body.throttleTimeMs, 200);
  await stopping;
  t.true(Date.now() - begin < 2000, `stop took ${Date.now() - begin} ms, shutdownTimeoutMs is 5000`);
  t.true(await client.closesWithin(1000));
  t.is(s.server.stats().connectionsOpen, 0);
});

test('graceful shutdown gives up on a request after shutdownTimeoutMs', async (t) => {
  const handler: ApiHandler<HeartbeatRequest, HeartbeatResponse> = {
    apiKey: ApiKey.Heartbeat, minVersion: 0, maxVersion: 4, handle: () => new Promise(() => {}),
  };
  const s = await startServer({ shutdownTimeoutMs: 200 }, [handler]);
  const client = await TestClient.connect(s.port);
  client.request(ApiKey.Heartbeat, HB_VERSION, 1, heartbeat(1));
  await sleep(30);
  const begin = Date.now();
  await s.stop();
  t.true(Date.now() - begin < 3000);
  t.true(await client.closesWithin(1000));
  t.is(logsAt(s.logs, WARN, /shutdown timeout/).length, 1);
});

test('connections beyond connectionsMax are refused with a warning', async (t) => {
  const s = await startServer({ connectionsMax: 2 });
  t.teardown(() => s.stop());
  const a = await TestClient.connect(s.port);
  const b = await TestClient.connect(s.port);
  t.true(await eventually(() => s.server.stats().connectionsOpen === 2));
  const c = await TestClient.connect(s.port);
  t.true(await c.closesWithin(2000));
  t.is(s.server.stats().connectionsRefused, 1);
  t.is(logsAt(s.logs, WARN, /too many connections/)[0]?.connectionsMax, 2);
  a.destroy();
  t.true(await eventually(() => s.server.stats().connectionsOpen === 1));
  t.true(await apiVersionsWorks(s.port));
  b.destroy();
});

test('the server listens on every host it can and reports the bound port', async (t) => {
  const s = await startServer({ hosts: ['127.0.0.1', '::1'] });
  t.teardown(() => s.stop());
  const addresses = s.server.addresses();
  t.true(addresses.length >= 1);
  t.true(addresses.every((a) => a.port === s.port && s.port > 0));
  if (addresses.some((a) => a.host === '::1')) {
    const client = await TestClient.connect(s.port, '::1');
    client.request(ApiKey.ApiVersions, 1, 3, {});
    t.is(decodeResponseFrame(await client.frame(), ApiKey.ApiVersions, 1).correlationId, 3);
    client.destroy();
  } else {
    t.is(logsAt(s.logs, WARN, /cannot listen on this address/).length, 1);
  }
});

test('an address this machine does not have is skipped with a warning; none at all fails', async (t) => {
  // 192.0.2.1 is TEST-NET-1 (RFC 5737): never assigned to a local interface, so bind fails with EADDRNOTAVAIL.
  const s = await startServer({ hosts: ['192.0.2.1', '127.0.0.1'] });
  t.teardown(() => s.stop());
  t.deepEqual(s.server.addresses().map((a) => a.host), ['127.0.0.1']);
  t.is(logsAt(s.logs, WARN, /cannot listen on this address/)[0]?.host, '192.0.2.1');
  t.true(await apiVersionsWorks(s.port));
  await t.throwsAsync(startServer({ hosts: ['192.0.2.1'] }), { message: /could not listen/ });
});

test('a port in use fails listen()', async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  await t.throwsAsync(startServer({ port: s.port }), { code: 'EADDRINUSE' } as never);
});

test('connections accepted between listen() and serve() wait, then are served', async (t) => {
  const registry = createRegistry({ fetchWaitMaxMs: 1000 });
  const server = new KafkaServer({ hosts: ['127.0.0.1'], port: 0, ...TEST_LIMITS }, { registry, logger: silentLogger() });
  await server.listen();
  t.teardown(() => server.stop());
  const client = await TestClient.connect(server.port);
  client.request(ApiKey.ApiVersions, 1, 1, {});
  await t.throwsAsync(client.frame(100), { message: /no response in time/ });
  t.is(server.stats().connectionsOpen, 1);
  server.serve(UNUSED_BACKEND);
  t.is(decodeResponseFrame(await client.frame(), ApiKey.ApiVersions, 1).correlationId, 1);
  client.destroy();
});
