import test from 'ava';
import { ConfigSource } from '../../src/backends/backend.ts';
import { describeConfigsHandler } from '../../src/handlers/describe-configs.ts';
import { ErrorCode } from '../../src/protocol/errors.ts';
import type { DescribeConfigsRequest } from '../../src/protocol/generated/index.ts';
import { openHarness, roundTrip, type Harness } from './helpers.ts';

function request(resources: { type: number; name: string; keys?: string[] | null }[], includeSynonyms = false, includeDocumentation = false): DescribeConfigsRequest {
  return {
    resources: resources.map((r) => ({ resourceType: r.type, resourceName: r.name, configurationKeys: r.keys ?? null })),
    includeSynonyms,
    includeDocumentation,
  };
}

async function setup(t: { teardown(fn: () => Promise<void>): void }): Promise<Harness> {
  const h = await openHarness();
  t.teardown(() => h.close());
  await h.backend.createTopic({ name: 'e', numPartitions: 1, replicationFactor: 1, configs: { 'retention.ms': '60000' } }, false);
  return h;
}

for (const version of [0, 1, 3, 4]) {
  test(`v${version}: topic configs with sources, filtered by key`, async (t) => {
    const h = await setup(t);
    const res = await roundTrip(describeConfigsHandler, h, version, request([{ type: 2, name: 'e', keys: ['retention.ms', 'segment.bytes', 'no.such.key'] }], true, true));
    const result = res.results[0]!;
    t.like(result, { errorCode: 0, errorMessage: null, resourceType: 2, resourceName: 'e' });
    t.deepEqual(result.configs.map((c) => c.name).sort(), ['retention.ms', 'segment.bytes']);
    const retention = result.configs.find((c) => c.name === 'retention.ms')!;
    t.like(retention, { value: '60000', readOnly: false, isSensitive: false });
    if (version === 0) t.false(retention.isDefault);
    if (version >= 1) {
      t.is(retention.configSource, ConfigSource.DYNAMIC_TOPIC_CONFIG);
      t.deepEqual(retention.synonyms, [{ name: 'retention.ms', value: '60000', source: ConfigSource.DYNAMIC_TOPIC_CONFIG }]);
    }
    if (version >= 3) {
      t.is(retention.configType, 5); // LONG
      t.truthy(retention.documentation);
    }
  });
}

test('all topic configs when no keys are given (null or empty); no synonyms or docs unless asked', async (t) => {
  const h = await setup(t);
  const res = await roundTrip(describeConfigsHandler, h, 4, request([{ type: 2, name: 'e' }, { type: 2, name: 'e', keys: [] }]));
  t.true(res.results[0]!.configs.length > 10);
  t.is(res.results[1]!.configs.length, res.results[0]!.configs.length);
  t.true(res.results[0]!.configs.every((c) => c.synonyms.length === 0 && c.documentation === null));
});

test('broker configs: this node by id, dynamic defaults for "", other ids and unknown types INVALID_REQUEST', async (t) => {
  const h = await setup(t);
  const res = await roundTrip(
    describeConfigsHandler,
    h,
    4,
    request([
      { type: 4, name: '1', keys: ['broker.id', 'log.retention.ms'] },
      { type: 4, name: '' },
      { type: 4, name: '2' },
      { type: 4, name: 'x' },
      { type: 8, name: '1' },
      { type: 2, name: 'nope' },
      { type: 2, name: 'bad/name' },
    ]),
  );
  t.deepEqual(res.results.map((r) => r.errorCode), [
    0,
    0,
    ErrorCode.INVALID_REQUEST,
    ErrorCode.INVALID_REQUEST,
    ErrorCode.INVALID_REQUEST,
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    ErrorCode.INVALID_TOPIC_EXCEPTION,
  ]);
  t.deepEqual(res.results[0]!.configs.find((c) => c.name === 'broker.id')?.value, '1');
  t.deepEqual(res.results[1]!.configs, []);
  t.truthy(res.results[2]!.errorMessage);
  t.deepEqual(h.errors, []);
});
