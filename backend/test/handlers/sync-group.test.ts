import test from 'ava';
import { ErrorCode } from '../../src/protocol/errors.ts';
import { ApiKey } from '../../src/protocol/generated/index.ts';
import type { JoinGroupResponse, SyncGroupRequest, SyncGroupResponse } from '../../src/protocol/generated/index.ts';
import { joinRequest, openGroupHarness } from './group-harness.ts';
import type { GroupHarness } from './group-harness.ts';
import { roundTrip } from './helpers.ts';

/** Two members joined with JoinGroup v3 (no id round trip), rejoined together into generation 2. */
async function twoMembers(h: GroupHarness): Promise<[JoinGroupResponse, JoinGroupResponse]> {
  const joinH = h.handler(ApiKey.JoinGroup);
  const a1 = await roundTrip(joinH, h, 3, joinRequest());
  const pb = roundTrip(joinH, h, 3, joinRequest());
  const pa = roundTrip(joinH, h, 3, joinRequest({ memberId: a1.memberId }));
  const [a, b] = await Promise.all([pa, pb]);
  return [a as JoinGroupResponse, b as JoinGroupResponse];
}

function syncRequest(memberId: string, generationId: number, assignments: SyncGroupRequest['assignments'] = [], extra: Partial<SyncGroupRequest> = {}): SyncGroupRequest {
  return { groupId: 'g', generationId, memberId, groupInstanceId: null, protocolType: null, protocolName: null, assignments, ...extra };
}

for (const version of [0, 1, 2, 3, 4, 5]) {
  test(`v${version}: followers wait for the leader's assignment`, async (t) => {
    const h = await openGroupHarness(t);
    const [a, b] = await twoMembers(h);
    t.is(a.leader, a.memberId);
    const sync = h.handler<SyncGroupRequest, SyncGroupResponse>(ApiKey.SyncGroup);
    const v5 = version >= 5 ? { protocolType: 'consumer', protocolName: 'range' } : {};
    const follower = roundTrip(sync, h, version, syncRequest(b.memberId, 2, [], v5));
    const leader = await roundTrip(sync, h, version, syncRequest(a.memberId, 2, [
      { memberId: a.memberId, assignment: Buffer.from('for-a') },
      { memberId: b.memberId, assignment: Buffer.from('for-b') },
    ], v5));
    const fb = await follower;
    t.is(leader.errorCode, ErrorCode.NONE);
    t.deepEqual(leader.assignment, Buffer.from('for-a'));
    t.deepEqual(fb.assignment, Buffer.from('for-b'));
    t.is(fb.protocolType, version >= 5 ? 'consumer' : null);
    t.is(fb.protocolName, version >= 5 ? 'range' : null);
  });
}

test('errors: wrong generation, unknown member, inconsistent protocol (v5), rebalance in progress', async (t) => {
  const h = await openGroupHarness(t);
  const [a] = await twoMembers(h);
  const sync = h.handler<SyncGroupRequest, SyncGroupResponse>(ApiKey.SyncGroup);
  t.is((await roundTrip(sync, h, 3, syncRequest(a.memberId, 7))).errorCode, ErrorCode.ILLEGAL_GENERATION);
  t.is((await roundTrip(sync, h, 3, syncRequest('ghost', 2))).errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
  const bad = await roundTrip(sync, h, 5, syncRequest(a.memberId, 2, [], { protocolType: 'consumer', protocolName: 'sticky' }));
  t.is(bad.errorCode, ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
  t.is(bad.protocolName, null);
  // a rejoins with another subscription: a new rebalance starts.
  void roundTrip(h.handler(ApiKey.JoinGroup), h, 3, joinRequest({ memberId: a.memberId, protocols: [{ name: 'range', metadata: Buffer.from([0, 0, 0, 0, 0, 0]) }] }));
  t.is((await roundTrip(sync, h, 4, syncRequest(a.memberId, 2))).errorCode, ErrorCode.REBALANCE_IN_PROGRESS);
  t.deepEqual(h.errors, []);
});
