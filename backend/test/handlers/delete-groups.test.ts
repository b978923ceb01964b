import test from 'ava';
import { ErrorCode } from '../../src/protocol/errors.ts';
import { ApiKey } from '../../src/protocol/generated/index.ts';
import type { DeleteGroupsRequest, DeleteGroupsResponse } from '../../src/protocol/generated/index.ts';
import { joinRequest, openGroupHarness } from './group-harness.ts';
import { roundTrip } from './helpers.ts';

for (const version of [0, 1, 2]) {
  test(`v${version}: empty groups go with their offsets; others are refused`, async (t) => {
    const h = await openGroupHarness(t);
    await roundTrip(h.handler(ApiKey.JoinGroup), h, 3, joinRequest({ groupId: 'live' }));
    await h.backend.commitOffsets('stored', [{ topic: 't1', partition: 0, offset: 1, leaderEpoch: -1, metadata: null }]);
    const del = h.handler<DeleteGroupsRequest, DeleteGroupsResponse>(ApiKey.DeleteGroups);
    const r = await roundTrip(del, h, version, { groupsNames: ['live', 'stored', 'nope'] });
    t.deepEqual(r.results.map((x) => [x.groupId, x.errorCode]), [
      ['live', ErrorCode.NON_EMPTY_GROUP],
      ['stored', ErrorCode.NONE],
      ['nope', ErrorCode.GROUP_ID_NOT_FOUND],
    ]);
    t.deepEqual(await h.backend.fetchOffsets('stored', null), []);
    t.deepEqual(h.backend.offsetGroups(), []);
  });
}
