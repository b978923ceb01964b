import test from 'ava';
import { HandlerRegistry, createRegistry, registryProblems } from '../../src/handlers/registry.ts';
import type { ApiHandler } from '../../src/handlers/types.ts';
import { API_CODECS, ApiKey } from '../../src/protocol/generated/index.ts';

function handler(apiKey: number, minVersion: number, maxVersion: number): ApiHandler {
  return { apiKey, minVersion, maxVersion, handle: () => ({}) };
}

test('the broker registry is valid against the generated codecs and starts with ApiVersions', (t) => {
  const registry = createRegistry({ fetchWaitMaxMs: 500 });
  t.truthy(registry.get(ApiKey.ApiVersions));
  for (const range of registry.ranges()) {
    const codec = API_CODECS.get(range.apiKey)!;
    t.true(range.minVersion >= codec.minVersion && range.maxVersion <= codec.maxVersion, codec.name);
  }
});

test('overrides replace a handler of the same key or add one', (t) => {
  const own = handler(ApiKey.ApiVersions, 0, 1);
  const registry = createRegistry({ fetchWaitMaxMs: 500 }, [own, handler(ApiKey.Heartbeat, 0, 4)]);
  t.is(registry.get(ApiKey.ApiVersions), own);
  t.deepEqual(registry.ranges().find((r) => r.apiKey === ApiKey.ApiVersions), { apiKey: 18, minVersion: 0, maxVersion: 1 });
  t.truthy(registry.get(ApiKey.Heartbeat));
});

test('ranges outside the codec, duplicates, unknown keys and inverted ranges are refused', (t) => {
  t.deepEqual(registryProblems([handler(ApiKey.Heartbeat, 0, 4)]), []);
  t.regex(registryProblems([handler(ApiKey.Heartbeat, 0, 5)])[0]!, /Heartbeat: versions 0..5 outside the codec's 0..4/);
  t.regex(registryProblems([handler(ApiKey.Heartbeat, -1, 2)])[0]!, /outside the codec/);
  t.regex(registryProblems([handler(ApiKey.Heartbeat, 3, 2)])[0]!, /invalid version range 3..2/);
  t.regex(registryProblems([handler(ApiKey.Heartbeat, 0, 1), handler(ApiKey.Heartbeat, 0, 1)])[0]!, /registered twice/);
  t.regex(registryProblems([handler(999, 0, 0)])[0]!, /api key 999: no generated codec/);
  t.throws(() => new HandlerRegistry([handler(ApiKey.Heartbeat, 0, 9)]), { message: /invalid handler registry/ });
});

test('an unstable latest schema version must not be advertised', (t) => {
  const unstable = [...API_CODECS.values()].find((c) => c.latestVersionUnstable);
  if (unstable === undefined) {
    t.pass('no unstable version in this schema snapshot');
    return;
  }
  t.regex(registryProblems([handler(unstable.apiKey, unstable.minVersion, unstable.maxVersion)])[0]!, /unstable/);
  t.deepEqual(registryProblems([handler(unstable.apiKey, unstable.minVersion, unstable.maxVersion - 1)]), []);
});
