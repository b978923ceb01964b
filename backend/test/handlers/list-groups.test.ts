import test from 'ava';
import { ErrorCode } from '../../src/protocol/errors.ts';
import { ApiKey } from '../../src/protocol/generated/index.ts';
import type { ListGroupsRequest, ListGroupsResponse } from '../../src/protocol/generated/index.ts';
import { joinRequest, openGroupHarness } from './group-harness.ts';
import { roundTrip } from './helpers.ts';

for (const version of [0, 1, 2, 3, 4]) {
  test(`v${version}: live groups and groups with committed offsets`, async (t) => {
    const h = await openGroupHarness(t);
    await roundTrip(h.handler(ApiKey.JoinGroup), h, 3, joinRequest({ groupId: 'live' }));
    await h.backend.commitOffsets('stored', [{ topic: 't1', partition: 0, offset: 1, leaderEpoch: -1, metadata: null }]);
    const list = h.handler<ListGroupsRequest, ListGroupsResponse>(ApiKey.ListGroups);
    const r = await roundTrip(list, h, version, { statesFilter: [], typesFilter: [] });
    t.is(r.errorCode, ErrorCode.NONE);
    const rows = r.groups.map((g) => [g.groupId, g.protocolType, g.groupState]).sort();
    t.deepEqual(rows, [
      ['live', 'consumer', version >= 4 ? 'CompletingRebalance' : ''],
      ['stored', '', version >= 4 ? 'Empty' : ''],
    ]);
  });
}

test('v4: the states filter', async (t) => {
  const h = await openGroupHarness(t);
  await roundTrip(h.handler(ApiKey.JoinGroup), h, 3, joinRequest({ groupId: 'live' }));
  await h.backend.commitOffsets('stored', [{ topic: 't1', partition: 0, offset: 1, leaderEpoch: -1, metadata: null }]);
  const list = h.handler<ListGroupsRequest, ListGroupsResponse>(ApiKey.ListGroups);
  const empty = await roundTrip(list, h, 4, { statesFilter: ['Empty'], typesFilter: [] });
  t.deepEqual(empty.groups.map((g) => g.groupId), ['stored']);
  const none = await roundTrip(list, h, 4, { statesFilter: ['Stable', 'Dead'], typesFilter: [] });
  t.deepEqual(none.groups, []);
  h.status.value = 'unavailable';
  t.is((await roundTrip(list, h, 4, { statesFilter: [], typesFilter: [] })).errorCode, ErrorCode.COORDINATOR_NOT_AVAILABLE);
});
