import test from 'ava';
import { ErrorCode } from '../../src/protocol/errors.ts';
import { ApiKey } from '../../src/protocol/generated/index.ts';
import type { OffsetFetchRequest, OffsetFetchResponse } from '../../src/protocol/generated/index.ts';
import { openGroupHarness } from './group-harness.ts';
import type { GroupHarness } from './group-harness.ts';
import { roundTrip } from './helpers.ts';

async function seed(h: GroupHarness): Promise<void> {
  await h.backend.commitOffsets('g', [
    { topic: 't1', partition: 0, offset: 10, leaderEpoch: 3, metadata: 'm0' },
    { topic: 't1', partition: 2, offset: 12, leaderEpoch: 3, metadata: null },
    { topic: 't2', partition: 0, offset: 20, leaderEpoch: -1, metadata: '' },
  ]);
  await h.backend.commitOffsets('h', [{ topic: 't2', partition: 0, offset: 99, leaderEpoch: -1, metadata: 'x' }]);
}

function single(groupId: string, topics: OffsetFetchRequest['topics'], requireStable = false): OffsetFetchRequest {
  return { groupId, topics, groups: [], requireStable };
}

for (const version of [0, 1, 2, 3, 4, 5, 6, 7]) {
  test(`v${version}: committed offsets of the listed partitions, -1 where none`, async (t) => {
    const h = await openGroupHarness(t);
    await seed(h);
    const fetch = h.handler<OffsetFetchRequest, OffsetFetchResponse>(ApiKey.OffsetFetch);
    const r = await roundTrip(fetch, h, version, single('g', [{ name: 't1', partitionIndexes: [0, 1] }], version >= 7));
    t.deepEqual(r.topics[0]!.partitions.map((p) => [p.partitionIndex, p.committedOffset, p.committedLeaderEpoch, p.metadata, p.errorCode]), [
      [0, 10n, version >= 5 ? 3 : -1, 'm0', 0],
      [1, -1n, -1, '', 0],
    ]);
    t.deepEqual(r.groups, []);
  });
}

for (const version of [2, 5, 7]) {
  test(`v${version}: topics null fetches every committed offset; group errors are top-level`, async (t) => {
    const h = await openGroupHarness(t);
    await seed(h);
    const fetch = h.handler<OffsetFetchRequest, OffsetFetchResponse>(ApiKey.OffsetFetch);
    const r = await roundTrip(fetch, h, version, single('g', null));
    t.is(r.errorCode, ErrorCode.NONE);
    const flat = r.topics.flatMap((x) => x.partitions.map((p) => `${x.name}-${p.partitionIndex}=${p.committedOffset}`)).sort();
    t.deepEqual(flat, ['t1-0=10', 't1-2=12', 't2-0=20']);
    h.status.value = 'other';
    const moved = await roundTrip(fetch, h, version, single('g', null));
    t.is(moved.errorCode, ErrorCode.NOT_COORDINATOR);
    t.deepEqual(moved.topics, []);
  });
}

test('v0-v1: a group error is reported on every requested partition', async (t) => {
  const h = await openGroupHarness(t);
  h.status.value = 'loading';
  const fetch = h.handler<OffsetFetchRequest, OffsetFetchResponse>(ApiKey.OffsetFetch);
  for (const version of [0, 1]) {
    const r = await roundTrip(fetch, h, version, single('g', [{ name: 't1', partitionIndexes: [0, 1] }]));
    t.deepEqual(r.topics[0]!.partitions.map((p) => [p.partitionIndex, p.committedOffset, p.errorCode]), [
      [0, -1n, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS],
      [1, -1n, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS],
    ]);
  }
});

test('v8: several groups in one request, each with its own topics or all of them', async (t) => {
  const h = await openGroupHarness(t);
  await seed(h);
  const fetch = h.handler<OffsetFetchRequest, OffsetFetchResponse>(ApiKey.OffsetFetch);
  const r = await roundTrip(fetch, h, 8, {
    groupId: '', topics: [], requireStable: true,
    groups: [
      { groupId: 'g', memberId: null, memberEpoch: -1, topics: [{ name: 't2', partitionIndexes: [0] }] },
      { groupId: 'h', memberId: null, memberEpoch: -1, topics: null },
      { groupId: 'empty', memberId: null, memberEpoch: -1, topics: null },
      { groupId: 'x'.repeat(2000), memberId: null, memberEpoch: -1, topics: null },
    ],
  });
  t.deepEqual(r.topics, []);
  t.deepEqual(r.groups.map((g) => [g.groupId.slice(0, 5), g.errorCode, g.topics.flatMap((x) => x.partitions.map((p) => `${x.name}-${p.partitionIndex}=${p.committedOffset}`))]), [
    ['g', 0, ['t2-0=20']],
    ['h', 0, ['t2-0=99']],
    ['empty', 0, []],
    ['xxxxx', ErrorCode.INVALID_GROUP_ID, []],
  ]);
});
