import test from 'ava';
import { encodeSubscription } from '../../src/group/consumer-protocol.ts';
import { GROUP_AUTHORIZED_OPERATIONS } from '../../src/handlers/describe-groups.ts';
import { AUTHORIZED_OPERATIONS_OMITTED } from '../../src/handlers/common.ts';
import { ErrorCode } from '../../src/protocol/errors.ts';
import { ApiKey } from '../../src/protocol/generated/index.ts';
import type { DescribeGroupsRequest, DescribeGroupsResponse, JoinGroupResponse } from '../../src/protocol/generated/index.ts';
import { joinRequest, openGroupHarness } from './group-harness.ts';
import { roundTrip } from './helpers.ts';

for (const version of [0, 1, 2, 3, 4, 5]) {
  test(`v${version}: a stable group with member metadata and assignments; unknown groups are Dead`, async (t) => {
    const h = await openGroupHarness(t);
    const a = (await roundTrip(h.handler(ApiKey.JoinGroup), h, 5, joinRequest({ groupInstanceId: 'inst' }))) as JoinGroupResponse;
    await roundTrip(h.handler(ApiKey.SyncGroup), h, 3, { groupId: 'g', generationId: 1, memberId: a.memberId, groupInstanceId: 'inst',
      protocolType: null, protocolName: null, assignments: [{ memberId: a.memberId, assignment: Buffer.from('asg') }] });
    const describe = h.handler<DescribeGroupsRequest, DescribeGroupsResponse>(ApiKey.DescribeGroups);
    const r = await roundTrip(describe, h, version, { groups: ['g', 'nope'], includeAuthorizedOperations: version >= 3 });
    const [g, nope] = r.groups;
    t.is(g!.errorCode, ErrorCode.NONE);
    t.is(g!.groupState, 'Stable');
    t.is(g!.protocolType, 'consumer');
    t.is(g!.protocolData, 'range');
    t.deepEqual(g!.members.map((m) => [m.memberId, m.groupInstanceId, m.clientId, m.clientHost]), [
      [a.memberId, version >= 4 ? 'inst' : null, 'handler-test', '/127.0.0.1'],
    ]);
    t.deepEqual(g!.members[0]!.memberMetadata, encodeSubscription(['t1']));
    t.deepEqual(g!.members[0]!.memberAssignment, Buffer.from('asg'));
    t.is(g!.authorizedOperations, version >= 3 ? GROUP_AUTHORIZED_OPERATIONS : AUTHORIZED_OPERATIONS_OMITTED);
    t.deepEqual([nope!.groupState, nope!.members], ['Dead', []]);
  });
}

test('a group that is rebalancing shows no metadata; a bad group id gets INVALID_GROUP_ID', async (t) => {
  const h = await openGroupHarness(t);
  await roundTrip(h.handler(ApiKey.JoinGroup), h, 3, joinRequest());
  const describe = h.handler<DescribeGroupsRequest, DescribeGroupsResponse>(ApiKey.DescribeGroups);
  const r = await roundTrip(describe, h, 5, { groups: ['g', 'y'.repeat(1500)], includeAuthorizedOperations: false });
  t.is(r.groups[0]!.groupState, 'CompletingRebalance');
  t.is(r.groups[0]!.protocolData, '');
  t.deepEqual(r.groups[0]!.members[0]!.memberMetadata, Buffer.alloc(0));
  t.is(r.groups[1]!.errorCode, ErrorCode.INVALID_GROUP_ID);
});
