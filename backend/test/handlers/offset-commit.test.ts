import test from 'ava';
import { ErrorCode } from '../../src/protocol/errors.ts';
import { ApiKey } from '../../src/protocol/generated/index.ts';
import type { JoinGroupResponse, OffsetCommitRequest, OffsetCommitResponse } from '../../src/protocol/generated/index.ts';
import { joinRequest, openGroupHarness } from './group-harness.ts';
import { roundTrip } from './helpers.ts';

function commitRequest(generation: number, memberId: string, extra: Partial<OffsetCommitRequest> = {}): OffsetCommitRequest {
  return {
    groupId: 'g',
    generationIdOrMemberEpoch: generation,
    memberId,
    groupInstanceId: null,
    retentionTimeMs: -1n,
    topics: [
      { name: 't1', partitions: [
        { partitionIndex: 0, committedOffset: 42n, committedLeaderEpoch: 5, commitTimestamp: -1n, committedMetadata: 'meta' },
        { partitionIndex: 9, committedOffset: 1n, committedLeaderEpoch: -1, commitTimestamp: -1n, committedMetadata: null },
      ] },
      { name: 'nope', partitions: [{ partitionIndex: 0, committedOffset: 1n, committedLeaderEpoch: -1, commitTimestamp: -1n, committedMetadata: null }] },
    ],
    ...extra,
  };
}

for (const version of [0, 1, 2, 3, 4, 5, 6, 7, 8]) {
  test(`v${version}: offsets are stored durably, errors per partition, in request order`, async (t) => {
    const h = await openGroupHarness(t);
    const commit = h.handler<OffsetCommitRequest, OffsetCommitResponse>(ApiKey.OffsetCommit);
    // v0 cannot name a generation: a commit from outside group management, fine for a group without members.
    const r = await roundTrip(commit, h, version, commitRequest(-1, ''));
    t.deepEqual(r.topics.map((x) => [x.name, x.partitions.map((p) => [p.partitionIndex, p.errorCode])]), [
      ['t1', [[0, ErrorCode.NONE], [9, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]]],
      ['nope', [[0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]]],
    ]);
    t.is(r.throttleTimeMs, 0);
    const stored = await h.backend.fetchOffsets('g', null);
    t.is(stored.length, 1);
    t.is(stored[0]!.offset, 42);
    t.is(stored[0]!.metadata, 'meta');
    // The leader epoch is on the wire from v6.
    t.is(stored[0]!.leaderEpoch, version >= 6 ? 5 : -1);
  });
}

for (const version of [1, 5, 7, 8]) {
  test(`v${version}: a member commits with its generation; stale or foreign commits are refused`, async (t) => {
    const h = await openGroupHarness(t);
    // JoinGroup v5: a static member joins in one go; v3: a dynamic member gets its id at once.
    const a = (await roundTrip(h.handler(ApiKey.JoinGroup), h, version >= 7 ? 5 : 3, joinRequest({ groupInstanceId: version >= 7 ? 'i' : null }))) as JoinGroupResponse;
    await roundTrip(h.handler(ApiKey.SyncGroup), h, 3, { groupId: 'g', generationId: 1, memberId: a.memberId, groupInstanceId: null, protocolType: null, protocolName: null, assignments: [] });
    const commit = h.handler<OffsetCommitRequest, OffsetCommitResponse>(ApiKey.OffsetCommit);
    const one = (generation: number, memberId: string, groupInstanceId: string | null = null) =>
      roundTrip(commit, h, version, { ...commitRequest(generation, memberId, { groupInstanceId }), topics: [commitRequest(0, '').topics[0]!] })
        .then((r) => r.topics[0]!.partitions[0]!.errorCode);
    t.is(await one(1, a.memberId, version >= 7 ? 'i' : null), ErrorCode.NONE);
    t.is(await one(2, a.memberId), ErrorCode.ILLEGAL_GENERATION);
    t.is(await one(1, 'ghost'), ErrorCode.UNKNOWN_MEMBER_ID);
    t.is(await one(-1, ''), ErrorCode.UNKNOWN_MEMBER_ID);
    if (version >= 7) t.is(await one(1, 'other', 'i'), ErrorCode.FENCED_INSTANCE_ID);
    t.deepEqual(h.errors, []);
  });
}
