import test from 'ava';
import { ErrorCode } from '../../src/protocol/errors.ts';
import { ApiKey } from '../../src/protocol/generated/index.ts';
import type { HeartbeatRequest, HeartbeatResponse, JoinGroupResponse } from '../../src/protocol/generated/index.ts';
import { joinRequest, openGroupHarness } from './group-harness.ts';
import { roundTrip } from './helpers.ts';

for (const version of [0, 1, 2, 3, 4]) {
  test(`v${version}: heartbeats keep a member in; errors tell it what to do`, async (t) => {
    const h = await openGroupHarness(t);
    const a = (await roundTrip(h.handler(ApiKey.JoinGroup), h, 3, joinRequest())) as JoinGroupResponse;
    const hb = h.handler<HeartbeatRequest, HeartbeatResponse>(ApiKey.Heartbeat);
    const beat = (memberId: string, generationId: number, groupId = 'g') =>
      roundTrip(hb, h, version, { groupId, generationId, memberId, groupInstanceId: null });
    for (let i = 0; i < 3; i++) {
      h.clock.advance(8000);
      t.is((await beat(a.memberId, 1)).errorCode, ErrorCode.NONE);
    }
    t.is((await beat(a.memberId, 2)).errorCode, ErrorCode.ILLEGAL_GENERATION);
    t.is((await beat('ghost', 1)).errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
    t.is((await beat(a.memberId, 1, 'nope')).errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
    // Another member joins: a is told to rejoin.
    void roundTrip(h.handler(ApiKey.JoinGroup), h, 3, joinRequest());
    t.is((await beat(a.memberId, 1)).errorCode, ErrorCode.REBALANCE_IN_PROGRESS);
    const r = await beat(a.memberId, 1);
    t.is(r.throttleTimeMs, 0);
  });
}

test('v3+: a fenced static member is told so', async (t) => {
  const h = await openGroupHarness(t);
  const a = (await roundTrip(h.handler(ApiKey.JoinGroup), h, 5, joinRequest({ groupInstanceId: 'i' }))) as JoinGroupResponse;
  const hb = h.handler<HeartbeatRequest, HeartbeatResponse>(ApiKey.Heartbeat);
  t.is((await roundTrip(hb, h, 3, { groupId: 'g', generationId: 1, memberId: a.memberId, groupInstanceId: 'i' })).errorCode, ErrorCode.NONE);
  t.is((await roundTrip(hb, h, 3, { groupId: 'g', generationId: 1, memberId: 'other', groupInstanceId: 'i' })).errorCode, ErrorCode.FENCED_INSTANCE_ID);
});
