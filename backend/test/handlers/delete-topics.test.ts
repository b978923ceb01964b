import test from 'ava';
import { deleteTopicsHandler } from '../../src/handlers/delete-topics.ts';
import { ErrorCode } from '../../src/protocol/errors.ts';
import type { DeleteTopicsRequest } from '../../src/protocol/generated/index.ts';
import { openHarness, roundTrip, type Harness } from './helpers.ts';

const ZERO_ID = Buffer.alloc(16);

async function setup(t: { teardown(fn: () => Promise<void>): void }): Promise<Harness> {
  const h = await openHarness();
  t.teardown(() => h.close());
  for (const name of ['a', 'b', 'c']) await h.backend.createTopic({ name, numPartitions: 1, replicationFactor: 1, configs: {} }, false);
  return h;
}

function byNames(names: string[]): DeleteTopicsRequest {
  return { topics: names.map((name) => ({ name, topicId: ZERO_ID })), topicNames: names, timeoutMs: 5000 };
}

for (const version of [0, 4, 5]) {
  test(`v${version}: deletes by name; unknown names are UNKNOWN_TOPIC_OR_PARTITION`, async (t) => {
    const h = await setup(t);
    const res = await roundTrip(deleteTopicsHandler, h, version, byNames(['a', 'nope']));
    t.deepEqual(res.responses.map((r) => [r.name, r.errorCode]), [
      ['a', 0],
      ['nope', ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
    ]);
    if (version >= 5) t.truthy(res.responses[1]!.errorMessage);
    t.is(h.backend.topic('a'), undefined);
    t.truthy(h.backend.topic('b'));
    t.deepEqual(h.errors, []);
  });
}

test('v6: deletes by name or by id; unknown id is UNKNOWN_TOPIC_ID; both at once is INVALID_REQUEST', async (t) => {
  const h = await setup(t);
  const bId = h.backend.topic('b')!.topicId;
  const cId = h.backend.topic('c')!.topicId;
  const missing = Buffer.alloc(16, 5);
  const res = await roundTrip(deleteTopicsHandler, h, 6, {
    topics: [
      { name: 'a', topicId: ZERO_ID },
      { name: null, topicId: bId },
      { name: null, topicId: missing },
      { name: 'c', topicId: cId },
    ],
    topicNames: [],
    timeoutMs: 5000,
  });
  t.deepEqual(res.responses.map((r) => [r.name, r.errorCode]), [
    ['a', 0],
    ['b', 0],
    [null, ErrorCode.UNKNOWN_TOPIC_ID],
    ['c', ErrorCode.INVALID_REQUEST],
  ]);
  t.true(res.responses[1]!.topicId.equals(bId));
  t.is(h.backend.topic('b'), undefined);
  t.truthy(h.backend.topic('c'));
});

test('a topic listed twice is INVALID_REQUEST and is not deleted', async (t) => {
  const h = await setup(t);
  const res = await roundTrip(deleteTopicsHandler, h, 4, byNames(['a', 'a', 'b']));
  t.deepEqual(res.responses.map((r) => r.errorCode), [ErrorCode.INVALID_REQUEST, ErrorCode.INVALID_REQUEST, 0]);
  t.truthy(h.backend.topic('a'));
});
