import test from 'ava';
import { ConfigSource } from '../../src/backends/backend.ts';
import { alterConfigsHandler } from '../../src/handlers/alter-configs.ts';
import { ErrorCode } from '../../src/protocol/errors.ts';
import type { AlterConfigsRequest } from '../../src/protocol/generated/index.ts';
import { openHarness, roundTrip, type Harness } from './helpers.ts';

function request(resources: { type: number; name: string; configs: Record<string, string | null> }[], validateOnly = false): AlterConfigsRequest {
  return {
    resources: resources.map((r) => ({ resourceType: r.type, resourceName: r.name, configs: Object.entries(r.configs).map(([name, value]) => ({ name, value })) })),
    validateOnly,
  };
}

async function setup(t: { teardown(fn: () => Promise<void>): void }): Promise<Harness> {
  const h = await openHarness();
  t.teardown(() => h.close());
  await h.backend.createTopic({ name: 'e', numPartitions: 1, replicationFactor: 1, configs: { 'retention.ms': '60000', 'segment.ms': '100000' } }, false);
  return h;
}

function dynamic(h: Harness, name: string): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const c of h.backend.describeTopicConfigs(name)) if (c.source === ConfigSource.DYNAMIC_TOPIC_CONFIG) out[c.name] = c.value;
  return out;
}

for (const version of [0, 1, 2]) {
  test(`v${version}: replaces a topic's dynamic configs (unlisted ones are reset)`, async (t) => {
    const h = await setup(t);
    const res = await roundTrip(alterConfigsHandler, h, version, request([{ type: 2, name: 'e', configs: { 'retention.ms': '120000', 'cleanup.policy': null } }]));
    t.like(res.responses[0], { errorCode: 0, errorMessage: null, resourceType: 2, resourceName: 'e' });
    t.deepEqual(dynamic(h, 'e'), { 'retention.ms': '120000' });
    t.deepEqual(h.errors, []);
  });
}

test('bad values are INVALID_CONFIG; validate_only changes nothing', async (t) => {
  const h = await setup(t);
  const bad = await roundTrip(alterConfigsHandler, h, 2, request([{ type: 2, name: 'e', configs: { 'retention.ms': 'forever' } }]));
  t.is(bad.responses[0]!.errorCode, ErrorCode.INVALID_CONFIG);
  t.truthy(bad.responses[0]!.errorMessage);
  const dry = await roundTrip(alterConfigsHandler, h, 2, request([{ type: 2, name: 'e', configs: { 'retention.ms': '5' } }], true));
  t.is(dry.responses[0]!.errorCode, 0);
  t.deepEqual(dynamic(h, 'e'), { 'retention.ms': '60000', 'segment.ms': '100000' });
});

test('broker resources, unknown topics, duplicates and unknown types are refused per resource', async (t) => {
  const h = await setup(t);
  const res = await roundTrip(
    alterConfigsHandler,
    h,
    2,
    request([
      { type: 4, name: '1', configs: { 'log.retention.ms': '1' } },
      { type: 2, name: 'nope', configs: {} },
      { type: 3, name: 'x', configs: {} },
      { type: 2, name: 'e', configs: { 'retention.ms': '1' } },
      { type: 2, name: 'e', configs: { 'retention.ms': '2' } },
    ]),
  );
  t.deepEqual(res.responses.map((r) => r.errorCode), [
    ErrorCode.INVALID_REQUEST,
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    ErrorCode.INVALID_REQUEST,
    ErrorCode.INVALID_REQUEST,
    ErrorCode.INVALID_REQUEST,
  ]);
  t.deepEqual(dynamic(h, 'e'), { 'retention.ms': '60000', 'segment.ms': '100000' });
});
