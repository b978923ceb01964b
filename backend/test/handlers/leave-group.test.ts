import test from 'ava';
import { ErrorCode } from '../../src/protocol/errors.ts';
import { ApiKey } from '../../src/protocol/generated/index.ts';
import type { JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse } from '../../src/protocol/generated/index.ts';
import { joinRequest, openGroupHarness } from './group-harness.ts';
import type { GroupHarness } from './group-harness.ts';
import { roundTrip } from './helpers.ts';

async function joinOne(h: GroupHarness, groupInstanceId: string | null = null): Promise<JoinGroupResponse> {
  return (await roundTrip(h.handler(ApiKey.JoinGroup), h, 5, joinRequest({ groupInstanceId }))) as JoinGroupResponse;
}

for (const version of [0, 1, 2]) {
  test(`v${version}: one member leaves; its error is the response's error`, async (t) => {
    const h = await openGroupHarness(t);
    const leave = h.handler<LeaveGroupRequest, LeaveGroupResponse>(ApiKey.LeaveGroup);
    const unknown = await roundTrip(leave, h, version, { groupId: 'g', memberId: 'ghost', members: [] });
    t.is(unknown.errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
    const a = await joinOne(h);
    const ok = await roundTrip(leave, h, version, { groupId: 'g', memberId: a.memberId, members: [] });
    t.is(ok.errorCode, ErrorCode.NONE);
    t.deepEqual(ok.members, []);
    t.is(h.coordinator.describeGroups(['g'])[0]!.state, 'Empty');
  });
}

for (const version of [3, 4, 5]) {
  test(`v${version}: members leave in a batch with an error each; static members by instance id`, async (t) => {
    const h = await openGroupHarness(t);
    const leave = h.handler<LeaveGroupRequest, LeaveGroupResponse>(ApiKey.LeaveGroup);
    const a = await joinOne(h, 'ia');
    const r = await roundTrip(leave, h, version, { groupId: 'g', memberId: '', members: [
      { memberId: '', groupInstanceId: 'ia', reason: version >= 5 ? 'scaling down' : null },
      { memberId: 'ghost', groupInstanceId: null, reason: null },
    ] });
    t.is(r.errorCode, ErrorCode.NONE);
    t.deepEqual(r.members.map((m) => [m.memberId, m.groupInstanceId, m.errorCode]), [
      ['', 'ia', ErrorCode.NONE],
      ['ghost', null, ErrorCode.UNKNOWN_MEMBER_ID],
    ]);
    t.false(h.coordinator.hasActiveMembers('g'));
    void a;
    h.status.value = 'loading';
    const loading = await roundTrip(leave, h, version, { groupId: 'g', memberId: '', members: [{ memberId: 'x', groupInstanceId: null, reason: null }] });
    t.is(loading.errorCode, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
    t.deepEqual(loading.members, []);
  });
}
