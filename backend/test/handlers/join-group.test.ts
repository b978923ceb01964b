import test from 'ava';
import { clientHostOf } from '../../src/handlers/join-group.ts';
import { ErrorCode } from '../../src/protocol/errors.ts';
import { ApiKey } from '../../src/protocol/generated/index.ts';
import type { JoinGroupRequest, JoinGroupResponse } from '../../src/protocol/generated/index.ts';
import { joinRequest, openGroupHarness } from './group-harness.ts';
import type { GroupHarness } from './group-harness.ts';
import { roundTrip } from './helpers.ts';

function join(h: GroupHarness, version: number, overrides: Partial<JoinGroupRequest> = {}, signal?: AbortSignal): Promise<JoinGroupResponse> {
  return roundTrip(h.handler<JoinGroupRequest, JoinGroupResponse>(ApiKey.JoinGroup), h, version, joinRequest(overrides), signal ? { signal } : {});
}

for (const version of [0, 1, 2, 3]) {
  test(`v${version}: a new member gets its id and generation in one JoinGroup`, async (t) => {
    const h = await openGroupHarness(t);
    const r = await join(h, version);
    t.is(r.errorCode, ErrorCode.NONE);
    t.regex(r.memberId, /^handler-test-/);
    t.is(r.generationId, 1);
    t.is(r.leader, r.memberId);
    t.is(r.protocolName, 'range');
    t.is(r.members.length, 1);
    t.is(r.protocolType, null, 'not on the wire before v7');
  });
}

for (const version of [4, 5, 6, 7, 8, 9]) {
  test(`v${version}: MEMBER_ID_REQUIRED first, then the join with that id`, async (t) => {
    const h = await openGroupHarness(t);
    const first = await join(h, version);
    t.is(first.errorCode, ErrorCode.MEMBER_ID_REQUIRED);
    t.is(first.generationId, -1);
    t.regex(first.memberId, /^handler-test-/);
    // Before v7 the protocol name is not nullable: an error carries ''.
    t.is(first.protocolName, version >= 7 ? null : '');
    const r = await join(h, version, { memberId: first.memberId, reason: version >= 8 ? 'starting' : null });
    t.is(r.errorCode, ErrorCode.NONE);
    t.is(r.memberId, first.memberId);
    t.is(r.generationId, 1);
    t.is(r.protocolType, version >= 7 ? 'consumer' : null);
    t.is(r.protocolName, 'range');
    t.false(r.skipAssignment);
  });
}

test('v0: the session timeout doubles as rebalance timeout', async (t) => {
  const h = await openGroupHarness(t);
  const a = await join(h, 0, { sessionTimeoutMs: 10_000 });
  // b joins: a must rejoin within 10 s (its v0 "rebalance timeout") or be dropped.
  const b = join(h, 0);
  h.clock.advance(10_000);
  const rb = await b;
  t.is(rb.generationId, 2);
  t.deepEqual(rb.members.map((m) => m.memberId), [rb.memberId]);
  t.not(rb.memberId, a.memberId);
});

test('v5+: static members report their group.instance.id to the leader; v9 skips the assignment on a static leader rejoin', async (t) => {
  const h = await openGroupHarness(t, { groupInitialRebalanceDelayMs: 100 });
  const pa = join(h, 9, { groupInstanceId: 'ia' });
  const pb = join(h, 5, { groupInstanceId: 'ib' });
  h.clock.advance(100);
  await new Promise((r) => setImmediate(r));
  h.clock.advance(100);
  const [a, b] = await Promise.all([pa, pb]);
  t.is(a.leader, a.memberId);
  t.deepEqual(a.members.map((m) => m.groupInstanceId), ['ia', 'ib']);
  t.deepEqual(b.members, []);
  // Stable it: the leader syncs.
  const sync = h.handler(ApiKey.SyncGroup);
  await roundTrip(sync, h, 5, { groupId: 'g', generationId: 1, memberId: a.memberId, groupInstanceId: 'ia', protocolType: 'consumer', protocolName: 'range', assignments: [] });
  const again = await join(h, 9, { groupInstanceId: 'ia' });
  t.is(again.errorCode, ErrorCode.NONE);
  t.true(again.skipAssignment);
  t.is(again.leader, again.memberId);
  t.is(again.members.length, 2);
  const old = await roundTrip(h.handler(ApiKey.Heartbeat), h, 4, { groupId: 'g', generationId: 1, memberId: a.memberId, groupInstanceId: 'ia' });
  t.is(old.errorCode, ErrorCode.FENCED_INSTANCE_ID);
});

test('errors: invalid session timeout, inconsistent protocol, not coordinator', async (t) => {
  const h = await openGroupHarness(t);
  t.is((await join(h, 5, { sessionTimeoutMs: 10 })).errorCode, ErrorCode.INVALID_SESSION_TIMEOUT);
  t.is((await join(h, 5, { protocols: [] })).errorCode, ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
  t.is((await join(h, 2, { groupId: '' })).errorCode, ErrorCode.INVALID_GROUP_ID);
  h.status.value = 'other';
  const r = await join(h, 7);
  t.is(r.errorCode, ErrorCode.NOT_COORDINATOR);
  t.is(r.protocolName, null);
  t.deepEqual(h.errors, []);
});

test('a JoinGroup waiting for the rebalance ends when its connection closes, and the member goes', async (t) => {
  const h = await openGroupHarness(t);
  const a = await join(h, 3);
  // b's join starts a rebalance that waits for a to rejoin; b's connection closes meanwhile.
  const ctl = new AbortController();
  const b = join(h, 3, {}, ctl.signal);
  ctl.abort();
  t.is((await b).errorCode, ErrorCode.COORDINATOR_NOT_AVAILABLE);
  const again = await join(h, 3, { memberId: a.memberId });
  t.is(again.generationId, 2);
  t.deepEqual(again.members.map((m) => m.memberId), [a.memberId]);
});

test('the client host is the peer address without its port, as Kafka shows it', (t) => {
  t.is(clientHostOf('127.0.0.1:51234'), '/127.0.0.1');
  t.is(clientHostOf('::ffff:10.0.0.7:9'), '/::ffff:10.0.0.7');
  t.is(clientHostOf('?:?'), '/?');
  t.is(clientHostOf('127.0.0.1'), '/127.0.0.1');
});
