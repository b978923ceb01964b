import test from 'ava';
import { encodeSubscription } from '../../src/group/consumer-protocol.ts';
import { ErrorCode } from '../../src/protocol/errors.ts';
import { ApiKey } from '../../src/protocol/generated/index.ts';
import type { OffsetDeleteRequest, OffsetDeleteResponse } from '../../src/protocol/generated/index.ts';
import { joinRequest, openGroupHarness } from './group-harness.ts';
import { roundTrip } from './helpers.ts';

function request(groupId: string): OffsetDeleteRequest {
  return { groupId, topics: [
    { name: 't1', partitions: [{ partitionIndex: 0 }, { partitionIndex: 1 }] },
    { name: 't2', partitions: [{ partitionIndex: 0 }] },
    { name: 'nope', partitions: [{ partitionIndex: 0 }] },
  ] };
}

test('v0: topics the group consumes are refused, the others deleted, unknown ones reported', async (t) => {
  const h = await openGroupHarness(t);
  await h.backend.commitOffsets('g', [
    { topic: 't1', partition: 0, offset: 1, leaderEpoch: -1, metadata: null },
    { topic: 't2', partition: 0, offset: 2, leaderEpoch: -1, metadata: null },
  ]);
  await roundTrip(h.handler(ApiKey.JoinGroup), h, 3, joinRequest({ protocols: [{ name: 'range', metadata: encodeSubscription(['t1']) }] }));
  const del = h.handler<OffsetDeleteRequest, OffsetDeleteResponse>(ApiKey.OffsetDelete);
  const r = await roundTrip(del, h, 0, request('g'));
  t.is(r.errorCode, ErrorCode.NONE);
  t.deepEqual(r.topics.map((x) => [x.name, x.partitions.map((p) => [p.partitionIndex, p.errorCode])]), [
    ['t1', [[0, ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC], [1, ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC]]],
    ['t2', [[0, ErrorCode.NONE]]],
    ['nope', [[0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]]],
  ]);
  t.deepEqual((await h.backend.fetchOffsets('g', null)).map((o) => o.topic), ['t1']);
});

test('v0: an unknown group is GROUP_ID_NOT_FOUND with no partitions', async (t) => {
  const h = await openGroupHarness(t);
  const r = await roundTrip(h.handler<OffsetDeleteRequest, OffsetDeleteResponse>(ApiKey.OffsetDelete), h, 0, request('nope'));
  t.is(r.errorCode, ErrorCode.GROUP_ID_NOT_FOUND);
  t.deepEqual(r.topics, []);
});
