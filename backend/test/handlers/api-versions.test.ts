// ApiVersions on a real server, compared byte for byte with frames built here by hand from the wire format
// (not with the generated codec, so a codec bug cannot hide itself).
import test from 'ava';
import { createRegistry } from '../../src/handlers/registry.ts';
import type { ApiRange } from '../../src/handlers/api-versions.ts';
import { API_VERSIONS_MAX, isValidClientSoftware } from '../../src/handlers/api-versions.ts';
import type { ApiHandler } from '../../src/handlers/types.ts';
import { encodeRequestFrame } from '../../src/protocol/frame.ts';
import { ApiKey } from '../../src/protocol/generated/index.ts';
import { TestClient, startServer } from '../server/harness.ts';
import type { TestServer } from '../server/harness.ts';

// A second registered API, so the answer lists more than ApiVersions itself.
const HEARTBEAT: ApiHandler = {
  apiKey: ApiKey.Heartbeat, minVersion: 0, maxVersion: 4, handle: () => ({ throttleTimeMs: 0, errorCode: 0 }),
};

function int16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

function sized(parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([int32(body.length), body]);
}

/** Response frame: header v0 (correlation id only, always for ApiVersions) + body of `version`. */
function expectedReply(version: number, correlationId: number, errorCode: number, ranges: readonly ApiRange[]): Buffer {
  const flexible = version >= 3;
  const entries = ranges.map((r) =>
    Buffer.concat([int16(r.apiKey), int16(r.minVersion), int16(r.maxVersion), flexible ? Buffer.from([0]) : Buffer.alloc(0)]),
  );
  const parts = [int32(correlationId), int16(errorCode)];
  // Compact array: unsigned varint count + 1 (fewer than 127 APIs: one byte).
  parts.push(flexible ? Buffer.from([ranges.length + 1]) : int32(ranges.length), ...entries);
  if (version >= 1) parts.push(int32(0));
  if (flexible) parts.push(Buffer.from([0]));
  return sized(parts);
}

async function roundTrip(s: TestServer, request: Buffer): Promise<Buffer> {
  const client = await TestClient.connect(s.port);
  try {
    client.write(request);
    return await client.frame();
  } finally {
    client.destroy();
  }
}

const ranges = createRegistry({ fetchWaitMaxMs: 1 }, [HEARTBEAT]).ranges();

test('the advertised ranges come from the registry, sorted by api key', (t) => {
  t.deepEqual(ranges.filter((r) => r.apiKey === ApiKey.ApiVersions || r.apiKey === ApiKey.Heartbeat), [
    { apiKey: ApiKey.Heartbeat, minVersion: 0, maxVersion: 4 },
    { apiKey: ApiKey.ApiVersions, minVersion: 0, maxVersion: API_VERSIONS_MAX },
  ]);
  t.deepEqual([...ranges].sort((a, b) => a.apiKey - b.apiKey), [...ranges]);
});

for (const version of [0, 1, 2, 3]) {
  test(`ApiVersions v${version}: exact reply bytes`, async (t) => {
    const s = await startServer({}, [HEARTBEAT]);
    t.teardown(() => s.stop());
    const body = version >= 3 ? { clientSoftwareName: 'takhin-test', clientSoftwareVersion: '1.0.0' } : {};
    const reply = await roundTrip(s, encodeRequestFrame(ApiKey.ApiVersions, version, 0x1234 + version, 'client-1', body));
    t.deepEqual(reply, expectedReply(version, 0x1234 + version, 0, ranges));
  });
}

test('ApiVersions v3 request bytes built by hand (librdkafka style) are understood', async (t) => {
  const s = await startServer({}, [HEARTBEAT]);
  t.teardown(() => s.stop());
  const name = Buffer.from('librdkafka');
  const ver = Buffer.from('2.0.2');
  const request = sized([
    int16(ApiKey.ApiVersions), int16(3), int32(77),
    int16(7), Buffer.from('rdkafka'), Buffer.from([0]), // header v2: client id (non-compact), no tagged fields
    Buffer.from([name.length + 1]), name, Buffer.from([ver.length + 1]), ver, Buffer.from([0]),
  ]);
  t.deepEqual(await roundTrip(s, request), expectedReply(3, 77, 0, ranges));
});

test('KIP-511: ApiVersions v127 gets a v0 reply with UNSUPPORTED_VERSION and our ranges', async (t) => {
  const s = await startServer({}, [HEARTBEAT]);
  t.teardown(() => s.stop());
  // A future version's request: flexible header v2 and a body we cannot know; neither is parsed.
  const request = sized([int16(ApiKey.ApiVersions), int16(127), int32(5), int16(4), Buffer.from('java'), Buffer.from([0]),
    Buffer.from([3, 0x41, 0x42, 2, 0x31, 0, 0xff, 0xee])]);
  t.deepEqual(await roundTrip(s, request), expectedReply(0, 5, 35, ranges));
});

test('KIP-511: ApiVersions v4 (known to the codec, above what we serve) falls back the same way', async (t) => {
  const s = await startServer({}, [HEARTBEAT]);
  t.teardown(() => s.stop());
  const request = encodeRequestFrame(ApiKey.ApiVersions, 4, 6, 'java', { clientSoftwareName: 'apache-kafka-java', clientSoftwareVersion: '4.0.0' });
  t.deepEqual(await roundTrip(s, request), expectedReply(0, 6, 35, ranges));
});

test('KIP-511 fallback keeps the connection open for the retry at a known version', async (t) => {
  const s = await startServer({}, [HEARTBEAT]);
  t.teardown(() => s.stop());
  const client = await TestClient.connect(s.port);
  client.write(sized([int16(ApiKey.ApiVersions), int16(9), int32(1), int16(-1), Buffer.from([0])]));
  t.deepEqual(await client.frame(), expectedReply(0, 1, 35, ranges));
  client.write(encodeRequestFrame(ApiKey.ApiVersions, 3, 2, null, { clientSoftwareName: 'a', clientSoftwareVersion: 'b' }));
  t.deepEqual(await client.frame(), expectedReply(3, 2, 0, ranges));
  client.destroy();
});

test('ApiVersions v3 with an invalid client software name or version: INVALID_REQUEST and no ranges', async (t) => {
  const s = await startServer({}, [HEARTBEAT]);
  t.teardown(() => s.stop());
  for (const [name, version] of [['bad name', '1.0'], ['ok', ''], ['-lead', '1'], ['ok', 'trail.'], ['', '1']] as const) {
    const request = encodeRequestFrame(ApiKey.ApiVersions, 3, 9, null, { clientSoftwareName: name, clientSoftwareVersion: version });
    t.deepEqual(await roundTrip(s, request), expectedReply(3, 9, 42, []), `${name} / ${version}`);
  }
});

test('client software names follow Kafka\'s rule', (t) => {
  for (const ok of ['a', 'librdkafka', 'apache-kafka-java', '2.0.2', 'confluent-kafka-python', 'A.b-9']) t.true(isValidClientSoftware(ok), ok);
  for (const bad of ['', '-a', 'a-', '.a', 'a.', 'a b', 'a_b', 'é']) t.false(isValidClientSoftware(bad), bad);
});
