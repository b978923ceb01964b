import test from 'ava';
import { createPartitionsHandler } from '../../src/handlers/create-partitions.ts';
import { ErrorCode } from '../../src/protocol/errors.ts';
import type { CreatePartitionsRequest } from '../../src/protocol/generated/index.ts';
import { openHarness, roundTrip, type Harness } from './helpers.ts';

function request(topics: { name: string; count: number; assignments?: number[][] | null }[], validateOnly = false): CreatePartitionsRequest {
  return {
    topics: topics.map((t) => ({ name: t.name, count: t.count, assignments: t.assignments === undefined || t.assignments === null ? null : t.assignments.map((brokerIds) => ({ brokerIds })) })),
    timeoutMs: 5000,
    validateOnly,
  };
}

async function setup(t: { teardown(fn: () => Promise<void>): void }): Promise<Harness> {
  const h = await openHarness();
  t.teardown(() => h.close());
  for (const name of ['a', 'b']) await h.backend.createTopic({ name, numPartitions: 2, replicationFactor: 1, configs: {} }, false);
  return h;
}

for (const version of [0, 2, 3]) {
  test(`v${version}: grows topics; not growing is INVALID_PARTITIONS; unknown topic UNKNOWN_TOPIC_OR_PARTITION`, async (t) => {
    const h = await setup(t);
    const res = await roundTrip(createPartitionsHandler, h, version, request([{ name: 'a', count: 5 }, { name: 'b', count: 2 }, { name: 'nope', count: 3 }]));
    t.deepEqual(res.results.map((r) => [r.name, r.errorCode]), [
      ['a', 0],
      ['b', ErrorCode.INVALID_PARTITIONS],
      ['nope', ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
    ]);
    t.is(res.results[0]!.errorMessage, null);
    t.regex(res.results[1]!.errorMessage ?? '', /already has 2 partitions/);
    t.is(h.backend.topic('a')?.partitions.length, 5);
    t.deepEqual(h.errors, []);
  });
}

test('shrinking is INVALID_PARTITIONS; validate_only changes nothing', async (t) => {
  const h = await setup(t);
  const res = await roundTrip(createPartitionsHandler, h, 3, request([{ name: 'a', count: 1 }, { name: 'b', count: 4 }], true));
  t.deepEqual(res.results.map((r) => r.errorCode), [ErrorCode.INVALID_PARTITIONS, 0]);
  t.is(h.backend.topic('b')?.partitions.length, 2);
});

test('assignments must cover the new partitions on this node; duplicates are INVALID_REQUEST', async (t) => {
  const h = await setup(t);
  const res = await roundTrip(
    createPartitionsHandler,
    h,
    3,
    request([
      { name: 'a', count: 4, assignments: [[1], [1]] },
      { name: 'b', count: 4, assignments: [[1]] },
    ]),
  );
  t.deepEqual(res.results.map((r) => r.errorCode), [0, ErrorCode.INVALID_REPLICA_ASSIGNMENT]);
  const dup = await roundTrip(createPartitionsHandler, h, 3, request([{ name: 'b', count: 3 }, { name: 'b', count: 4 }]));
  t.deepEqual(dup.results.map((r) => r.errorCode), [ErrorCode.INVALID_REQUEST, ErrorCode.INVALID_REQUEST]);
  const other = await roundTrip(createPartitionsHandler, h, 3, request([{ name: 'b', count: 3, assignments: [[2]] }]));
  t.is(other.results[0]!.errorCode, ErrorCode.INVALID_REPLICA_ASSIGNMENT);
  t.is(h.backend.topic('b')?.partitions.length, 2);
});
