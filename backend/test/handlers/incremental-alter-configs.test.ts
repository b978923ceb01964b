import test from 'ava';
import { ConfigSource } from '../../src/backends/backend.ts';
import { incrementalAlterConfigsHandler } from '../../src/handlers/incremental-alter-configs.ts';
import { ErrorCode } from '../../src/protocol/errors.ts';
import type { IncrementalAlterConfigsRequest } from '../../src/protocol/generated/index.ts';
import { openHarness, roundTrip, type Harness } from './helpers.ts';

type Op = [name: string, op: number, value: string | null];

function request(resources: { type: number; name: string; ops: Op[] }[], validateOnly = false): IncrementalAlterConfigsRequest {
  return {
    resources: resources.map((r) => ({ resourceType: r.type, resourceName: r.name, configs: r.ops.map(([name, configOperation, value]) => ({ name, configOperation, value })) })),
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

for (const version of [0, 1]) {
  test(`v${version}: SET and DELETE change only the named configs`, async (t) => {
    const h = await setup(t);
    const res = await roundTrip(incrementalAlterConfigsHandler, h, version, request([{ type: 2, name: 'e', ops: [['retention.ms', 0, '120000'], ['segment.ms', 1, null], ['max.message.bytes', 0, '2000000']] }]));
    t.like(res.responses[0], { errorCode: 0, errorMessage: null, resourceType: 2, resourceName: 'e' });
    t.deepEqual(dynamic(h, 'e'), { 'retention.ms': '120000', 'max.message.bytes': '2000000' });
    t.deepEqual(h.errors, []);
  });
}

test('unknown operations, null values for SET, duplicate keys and broker resources are INVALID_REQUEST', async (t) => {
  const h = await setup(t);
  const res = await roundTrip(
    incrementalAlterConfigsHandler,
    h,
    1,
    request([
      { type: 2, name: 'e', ops: [['retention.ms', 7, '1']] },
      { type: 4, name: '1', ops: [['log.retention.ms', 0, '1']] },
    ]),
  );
  t.deepEqual(res.responses.map((r) => r.errorCode), [ErrorCode.INVALID_REQUEST, ErrorCode.INVALID_REQUEST]);
  const nullSet = await roundTrip(incrementalAlterConfigsHandler, h, 1, request([{ type: 2, name: 'e', ops: [['retention.ms', 0, null]] }]));
  t.is(nullSet.responses[0]!.errorCode, ErrorCode.INVALID_REQUEST);
  const dupKeys = await roundTrip(incrementalAlterConfigsHandler, h, 1, request([{ type: 2, name: 'e', ops: [['retention.ms', 0, '1'], ['retention.ms', 1, null]] }]));
  t.is(dupKeys.responses[0]!.errorCode, ErrorCode.INVALID_REQUEST);
  t.deepEqual(dynamic(h, 'e'), { 'retention.ms': '60000', 'segment.ms': '100000' });
});

test('APPEND on a non-list config and bad values are INVALID_CONFIG; validate_only changes nothing', async (t) => {
  const h = await setup(t);
  const res = await roundTrip(incrementalAlterConfigsHandler, h, 1, request([{ type: 2, name: 'e', ops: [['retention.ms', 2, '5']] }]));
  t.is(res.responses[0]!.errorCode, ErrorCode.INVALID_CONFIG);
  const dry = await roundTrip(incrementalAlterConfigsHandler, h, 1, request([{ type: 2, name: 'e', ops: [['retention.ms', 0, '5']] }], true));
  t.is(dry.responses[0]!.errorCode, 0);
  t.deepEqual(dynamic(h, 'e'), { 'retention.ms': '60000', 'segment.ms': '100000' });
});
