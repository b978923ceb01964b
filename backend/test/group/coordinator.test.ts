import test from 'ava';
import { encodeSubscription } from '../../src/group/consumer-protocol.ts';
import { GroupState } from '../../src/group/types.ts';
import { ErrorCode, KafkaError } from '../../src/protocol/errors.ts';
import {
  formGroup, joinAll, joinInput, joinWithId, REBALANCE_MS, SESSION_MS, settle, setup, track,
} from './harness.ts';
import type { Harness } from './harness.ts';

function heartbeat(h: Harness, memberId: string, generationId: number, groupInstanceId: string | null = null, groupId = 'g'): number {
  return h.coordinator.heartbeat({ groupId, memberId, generationId, groupInstanceId });
}

function state(h: Harness, groupId = 'g'): string {
  return h.coordinator.describeGroups([groupId])[0]!.state;
}

// ---- JoinGroup --------------------------------------------------------------------------------------------

test('a new v4 member gets MEMBER_ID_REQUIRED with its id, then joins with it', async (t) => {
  const h = await setup(t);
  const first = await h.coordinator.join(joinInput({ clientId: 'app' }));
  t.is(first.errorCode, ErrorCode.MEMBER_ID_REQUIRED);
  t.is(first.memberId, 'app-m1');
  t.is(first.generationId, -1);
  t.is(state(h), GroupState.EMPTY);

  const second = await h.coordinator.join(joinInput({ clientId: 'app', memberId: first.memberId }));
  t.is(second.errorCode, ErrorCode.NONE);
  t.is(second.memberId, 'app-m1');
  t.is(second.generationId, 1);
  t.is(second.leaderId, 'app-m1');
  t.is(second.protocolType, 'consumer');
  t.is(second.protocolName, 'range');
  t.deepEqual(second.members.map((m) => m.memberId), ['app-m1']);
  t.deepEqual(second.members[0]!.metadata, encodeSubscription(['t1']));
  t.is(state(h), GroupState.COMPLETING_REBALANCE);
});

test('before v4 a new member gets its id in the first JoinGroup', async (t) => {
  const h = await setup(t);
  const r = await h.coordinator.join(joinInput({ requireKnownMemberId: false }));
  t.is(r.errorCode, ErrorCode.NONE);
  t.is(r.memberId, 'client-m1');
  t.is(r.generationId, 1);
});

test('a handed-out member id that is never used expires after the session timeout', async (t) => {
  const h = await setup(t);
  const first = await h.coordinator.join(joinInput());
  h.clock.advance(SESSION_MS);
  const late = await h.coordinator.join(joinInput({ memberId: first.memberId }));
  t.is(late.errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
});

test('three members: everyone waits for the last join, the leader gets the members, followers wait for its sync', async (t) => {
  const h = await setup(t);
  const ids = [];
  for (const clientId of ['a', 'b', 'c']) ids.push((await h.coordinator.join(joinInput({ clientId }))).memberId);
  const a = { memberId: ids[0]!, join: track(h.coordinator.join(joinInput({ clientId: 'a', memberId: ids[0]! }))) };
  const b = { memberId: ids[1]!, join: track(h.coordinator.join(joinInput({ clientId: 'b', memberId: ids[1]! }))) };
  await settle();
  // c has its id but has not rejoined yet: nothing completes until it does.
  t.false(a.join.done);
  t.false(b.join.done);
  t.is(state(h), GroupState.PREPARING_REBALANCE);
  const c = { memberId: ids[2]!, join: track(h.coordinator.join(joinInput({ clientId: 'c', memberId: ids[2]! }))) };
  const [ja, jb, jc] = await Promise.all([a.join.promise, b.join.promise, c.join.promise]);
  for (const j of [ja, jb, jc]) {
    t.is(j.errorCode, ErrorCode.NONE);
    t.is(j.generationId, 1);
    t.is(j.leaderId, a.memberId);
  }
  t.deepEqual(ja.members.map((m) => m.memberId), [a.memberId, b.memberId, c.memberId]);
  t.deepEqual(jb.members, []);
  t.deepEqual(jc.members, []);

  const sb = track(h.coordinator.sync({ groupId: 'g', generationId: 1, memberId: b.memberId, groupInstanceId: null, protocolType: null, protocolName: null, assignments: [] }));
  const sc = track(h.coordinator.sync({ groupId: 'g', generationId: 1, memberId: c.memberId, groupInstanceId: null, protocolType: 'consumer', protocolName: 'range', assignments: [] }));
  await settle();
  t.false(sb.done);
  t.false(sc.done);
  const sa = await h.coordinator.sync({
    groupId: 'g', generationId: 1, memberId: a.memberId, groupInstanceId: null, protocolType: 'consumer', protocolName: 'range',
    // c is left out on purpose: it gets an empty assignment.
    assignments: [{ memberId: a.memberId, assignment: Buffer.from('A') }, { memberId: b.memberId, assignment: Buffer.from('B') }],
  });
  await settle();
  t.is(sa.errorCode, ErrorCode.NONE);
  t.deepEqual(sa.assignment, Buffer.from('A'));
  t.deepEqual(sb.value?.assignment, Buffer.from('B'));
  t.is(sb.value?.protocolName, 'range');
  t.deepEqual(sc.value?.assignment, Buffer.alloc(0));
  t.is(state(h), GroupState.STABLE);

  const desc = h.coordinator.describeGroups(['g'])[0]!;
  t.is(desc.protocolName, 'range');
  t.deepEqual(desc.members.map((m) => m.assignment.toString()), ['A', 'B', '']);
  t.deepEqual(desc.members[0]!.metadata, encodeSubscription(['t1']));
});

test('the protocol is one every member supports, chosen by the members\' preferences', async (t) => {
  const h = await setup(t);
  const meta = Buffer.from('x');
  const both = [{ name: 'range', metadata: meta }, { name: 'roundrobin', metadata: meta }];
  const rrFirst = [{ name: 'roundrobin', metadata: meta }, { name: 'range', metadata: meta }];
  const joined = await formGroup(h, [{ protocols: rrFirst }, { protocols: both }, { protocols: both }]);
  t.is(joined[0]!.join.protocolName, 'range');

  const h2 = await setup(t);
  const onlyRr = [{ name: 'roundrobin', metadata: meta }];
  const joined2 = await formGroup(h2, [{ protocols: both }, { protocols: both }, { protocols: onlyRr }]);
  t.is(joined2[0]!.join.protocolName, 'roundrobin');
});

test('INCONSISTENT_GROUP_PROTOCOL for another protocol type, no common protocol, or no protocols', async (t) => {
  const h = await setup(t);
  await formGroup(h, [{}]);
  const otherType = await h.coordinator.join(joinInput({ protocolType: 'connect' }));
  t.is(otherType.errorCode, ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
  const noCommon = await h.coordinator.join(joinInput({ protocols: [{ name: 'sticky', metadata: Buffer.alloc(0) }] }));
  t.is(noCommon.errorCode, ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
  const none = await h.coordinator.join(joinInput({ groupId: 'fresh', protocols: [] }));
  t.is(none.errorCode, ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
  const noType = await h.coordinator.join(joinInput({ groupId: 'fresh', protocolType: '' }));
  t.is(noType.errorCode, ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
});

test('INVALID_SESSION_TIMEOUT outside the configured bounds, INVALID_GROUP_ID for an empty id', async (t) => {
  const h = await setup(t, { groupMinSessionTimeoutMs: 6000, groupMaxSessionTimeoutMs: 60_000 });
  t.is((await h.coordinator.join(joinInput({ sessionTimeoutMs: 5999 }))).errorCode, ErrorCode.INVALID_SESSION_TIMEOUT);
  t.is((await h.coordinator.join(joinInput({ sessionTimeoutMs: 60_001 }))).errorCode, ErrorCode.INVALID_SESSION_TIMEOUT);
  t.is((await h.coordinator.join(joinInput({ sessionTimeoutMs: 60_000 }))).errorCode, ErrorCode.MEMBER_ID_REQUIRED);
  t.is((await h.coordinator.join(joinInput({ groupId: '' }))).errorCode, ErrorCode.INVALID_GROUP_ID);
  t.is((await h.coordinator.join(joinInput({ groupId: 'x'.repeat(1025) }))).errorCode, ErrorCode.INVALID_GROUP_ID);
});

test('an unknown member id gets UNKNOWN_MEMBER_ID', async (t) => {
  const h = await setup(t);
  t.is((await h.coordinator.join(joinInput({ memberId: 'ghost' }))).errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
  await formGroup(h, [{}]);
  t.is((await h.coordinator.join(joinInput({ memberId: 'ghost' }))).errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
});

test('GROUP_MAX_SIZE_REACHED beyond groupMaxSize, counting handed-out ids', async (t) => {
  const h = await setup(t, { groupMaxSize: 2 });
  await formGroup(h, [{}, {}]);
  const third = await h.coordinator.join(joinInput());
  t.is(third.errorCode, ErrorCode.GROUP_MAX_SIZE_REACHED);
  t.is(third.memberId, '');

  const h2 = await setup(t, { groupMaxSize: 2 });
  t.is((await h2.coordinator.join(joinInput())).errorCode, ErrorCode.MEMBER_ID_REQUIRED);
  t.is((await h2.coordinator.join(joinInput())).errorCode, ErrorCode.MEMBER_ID_REQUIRED);
  t.is((await h2.coordinator.join(joinInput())).errorCode, ErrorCode.GROUP_MAX_SIZE_REACHED);
});

// ---- rebalances -------------------------------------------------------------------------------------------

test('a new member joining a stable group starts a rebalance; members rejoin and the generation moves on', async (t) => {
  const h = await setup(t);
  const [a, b] = await formGroup(h, [{ clientId: 'a' }, { clientId: 'b' }]);
  const c = await joinWithId(h, { clientId: 'c', protocols: [{ name: 'range', metadata: encodeSubscription(['t2']) }] });
  t.is(state(h), GroupState.PREPARING_REBALANCE);
  t.is(heartbeat(h, a!.memberId, 1), ErrorCode.REBALANCE_IN_PROGRESS);
  t.is(heartbeat(h, b!.memberId, 1), ErrorCode.REBALANCE_IN_PROGRESS);
  const ra = track(h.coordinator.join(joinInput({ memberId: a!.memberId })));
  await settle();
  t.false(ra.done);
  const rb = await h.coordinator.join(joinInput({ memberId: b!.memberId }));
  await settle();
  t.is(rb.generationId, 2);
  t.is(ra.value?.generationId, 2);
  t.is(ra.value?.leaderId, a!.memberId);
  t.deepEqual(ra.value?.members.map((m) => m.memberId), [a!.memberId, b!.memberId, c.memberId]);
  t.is((await c.join.promise).generationId, 2);
  t.is(state(h), GroupState.COMPLETING_REBALANCE);
  // A heartbeat of the old generation is refused; the new one is accepted while waiting for the sync.
  t.is(heartbeat(h, a!.memberId, 1), ErrorCode.ILLEGAL_GENERATION);
  t.is(heartbeat(h, a!.memberId, 2), ErrorCode.NONE);
});

test('a rebalance during CompletingRebalance fails the pending syncs with REBALANCE_IN_PROGRESS', async (t) => {
  const h = await setup(t);
  const [, b] = await Promise.all((await joinAll(h, [{ clientId: 'a' }, { clientId: 'b' }])).map((j) => j.promise));
  const sb = track(h.coordinator.sync({ groupId: 'g', generationId: 1, memberId: b.memberId, groupInstanceId: null, protocolType: null, protocolName: null, assignments: [] }));
  await joinWithId(h, { clientId: 'c' });
  await settle();
  t.is(sb.value?.errorCode, ErrorCode.REBALANCE_IN_PROGRESS);
  t.is(state(h), GroupState.PREPARING_REBALANCE);
});

test('the leader rejoining a stable group rebalances; a follower with unchanged metadata gets the current generation', async (t) => {
  const h = await setup(t);
  const [a, b] = await formGroup(h, [{}, {}]);
  const follower = await h.coordinator.join(joinInput({ memberId: b!.memberId }));
  t.is(follower.errorCode, ErrorCode.NONE);
  t.is(follower.generationId, 1);
  t.is(follower.leaderId, a!.memberId);
  t.is(state(h), GroupState.STABLE);

  const leader = track(h.coordinator.join(joinInput({ memberId: a!.memberId })));
  await settle();
  t.false(leader.done);
  t.is(state(h), GroupState.PREPARING_REBALANCE);
});

test('a member that changes its subscription triggers a rebalance', async (t) => {
  const h = await setup(t);
  const [, b] = await formGroup(h, [{}, {}]);
  const changed = track(h.coordinator.join(joinInput({ memberId: b!.memberId, protocols: [{ name: 'range', metadata: encodeSubscription(['t1', 't2']) }] })));
  await settle();
  t.false(changed.done);
  t.is(state(h), GroupState.PREPARING_REBALANCE);
});

test('LeaveGroup removes members, elects a new leader, and answers per member', async (t) => {
  const h = await setup(t);
  const [a, b, c] = await formGroup(h, [{}, {}, {}]);
  const res = h.coordinator.leave('g', [
    { memberId: a!.memberId, groupInstanceId: null, reason: 'shutdown' },
    { memberId: 'ghost', groupInstanceId: null, reason: null },
  ]);
  t.is(res.errorCode, ErrorCode.NONE);
  t.deepEqual(res.members.map((m) => m.errorCode), [ErrorCode.NONE, ErrorCode.UNKNOWN_MEMBER_ID]);
  t.is(state(h), GroupState.PREPARING_REBALANCE);
  const [jb, jc] = await Promise.all([
    h.coordinator.join(joinInput({ memberId: b!.memberId })),
    h.coordinator.join(joinInput({ memberId: c!.memberId })),
  ]);
  t.is(jb.generationId, 2);
  t.is(jb.leaderId, b!.memberId);
  t.deepEqual(jb.members.map((m) => m.memberId), [b!.memberId, c!.memberId]);
  t.is(jc.leaderId, b!.memberId);
  t.deepEqual(h.coordinator.leave('nope', [{ memberId: 'x', groupInstanceId: null, reason: null }]).members[0]!.errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
});

test('the last member leaving makes the group Empty with the next generation', async (t) => {
  const h = await setup(t);
  const [a] = await formGroup(h, [{}]);
  h.coordinator.leave('g', [{ memberId: a!.memberId, groupInstanceId: null, reason: null }]);
  const d = h.coordinator.describeGroups(['g'])[0]!;
  t.is(d.state, GroupState.EMPTY);
  t.is(d.protocolType, 'consumer');
  t.deepEqual(d.members, []);
  t.false(h.coordinator.hasActiveMembers('g'));
});

test('a member whose session expires is removed and the group rebalances', async (t) => {
  const h = await setup(t);
  const [a, b] = await formGroup(h, [{}, {}]);
  t.true(h.coordinator.hasActiveMembers('g'));
  h.clock.advance(SESSION_MS / 2);
  t.is(heartbeat(h, a!.memberId, 1), ErrorCode.NONE);
  h.clock.advance(SESSION_MS / 2 - 1);
  t.is(heartbeat(h, a!.memberId, 1), ErrorCode.NONE);
  t.is(heartbeat(h, b!.memberId, 1), ErrorCode.NONE);
  h.clock.advance(SESSION_MS / 2);
  t.is(heartbeat(h, a!.memberId, 1), ErrorCode.NONE);
  // b's last heartbeat was a whole session ago: gone, and a is told to rejoin.
  h.clock.advance(SESSION_MS / 2);
  t.is(heartbeat(h, a!.memberId, 1), ErrorCode.REBALANCE_IN_PROGRESS);
  t.is(heartbeat(h, b!.memberId, 1), ErrorCode.UNKNOWN_MEMBER_ID);
  const ja = await h.coordinator.join(joinInput({ memberId: a!.memberId }));
  t.is(ja.generationId, 2);
  t.deepEqual(ja.members.map((m) => m.memberId), [a!.memberId]);
});

test('an offset commit counts as a sign of life for the session', async (t) => {
  const h = await setup(t);
  const [a] = await formGroup(h, [{}]);
  for (let i = 0; i < 3; i++) {
    h.clock.advance(SESSION_MS - 1);
    const r = await h.coordinator.commitOffsets({ groupId: 'g', generationId: 1, memberId: a!.memberId, groupInstanceId: null,
      offsets: [{ topic: 't1', partition: 0, offset: i, leaderEpoch: -1, metadata: null }] });
    t.is(r[0]!.errorCode, ErrorCode.NONE);
  }
  t.is(heartbeat(h, a!.memberId, 1), ErrorCode.NONE);
});

test('a member that does not rejoin within the rebalance timeout is removed', async (t) => {
  const h = await setup(t);
  const [a, b] = await formGroup(h, [{ clientId: 'a' }, { clientId: 'b' }]);
  const c = await joinWithId(h, { clientId: 'c' });
  const ra = track(h.coordinator.join(joinInput({ memberId: a!.memberId })));
  // b keeps heartbeating (so its session stays alive) but never rejoins.
  for (let elapsed = 0; elapsed < REBALANCE_MS - 5000; elapsed += 5000) {
    h.clock.advance(5000);
    t.is(heartbeat(h, b!.memberId, 1), ErrorCode.REBALANCE_IN_PROGRESS);
  }
  await settle();
  t.false(ra.done);
  h.clock.advance(5000);
  await settle();
  t.is(ra.value?.generationId, 2);
  t.deepEqual(ra.value?.members.map((m) => m.memberId), [a!.memberId, c.memberId]);
  t.is(heartbeat(h, b!.memberId, 1), ErrorCode.UNKNOWN_MEMBER_ID);
});

test('the leader not rejoining in time hands leadership to a member that did', async (t) => {
  const h = await setup(t);
  const [a, b] = await formGroup(h, [{}, {}]);
  await joinWithId(h, {});
  const rb = track(h.coordinator.join(joinInput({ memberId: b!.memberId })));
  h.clock.advance(REBALANCE_MS);
  await settle();
  t.is(rb.value?.leaderId, b!.memberId);
  t.is(rb.value?.members.length, 2);
  t.is(heartbeat(h, a!.memberId, 1), ErrorCode.UNKNOWN_MEMBER_ID);
});

test('members that do not send SyncGroup within the rebalance timeout are removed', async (t) => {
  const h = await setup(t);
  const [a, b] = await Promise.all((await joinAll(h, [{ clientId: 'a' }, { clientId: 'b' }])).map((j) => j.promise));
  const ja = a!;
  const sa = await h.coordinator.sync({ groupId: 'g', generationId: 1, memberId: a.memberId, groupInstanceId: null, protocolType: null, protocolName: null,
    assignments: ja.members.map((m) => ({ memberId: m.memberId, assignment: Buffer.from('x') })) });
  t.is(sa.errorCode, ErrorCode.NONE);
  t.is(state(h), GroupState.STABLE);
  // a heartbeats; b never syncs.
  for (let elapsed = 0; elapsed < REBALANCE_MS; elapsed += 5000) {
    h.clock.advance(5000);
    heartbeat(h, a.memberId, 1);
  }
  t.is(state(h), GroupState.PREPARING_REBALANCE);
  t.is(heartbeat(h, b.memberId, 1), ErrorCode.UNKNOWN_MEMBER_ID);
});

test('group.initial.rebalance.delay.ms holds the first generation while members keep arriving', async (t) => {
  const h = await setup(t, { groupInitialRebalanceDelayMs: 3000 });
  const a = await joinWithId(h, { clientId: 'a' });
  h.clock.advance(2000);
  const b = await joinWithId(h, { clientId: 'b' });
  h.clock.advance(1000);
  await settle();
  // The first delay ended, but b arrived during it: another delay starts.
  t.false(a.join.done);
  t.false(b.join.done);
  h.clock.advance(2999);
  await settle();
  t.false(a.join.done);
  h.clock.advance(1);
  await settle();
  t.is(a.join.value?.generationId, 1);
  t.is(a.join.value?.members.length, 2);
  t.is(b.join.value?.generationId, 1);
});

test('the initial delay never extends past the rebalance timeout', async (t) => {
  const h = await setup(t, { groupInitialRebalanceDelayMs: 3000 });
  const first = await joinWithId(h, { rebalanceTimeoutMs: 7000 });
  for (let i = 0; i < 5; i++) {
    h.clock.advance(2000);
    await joinWithId(h, { rebalanceTimeoutMs: 7000 });
  }
  await settle();
  t.true(first.join.done);
  t.is(first.join.value?.generationId, 1);
});

// ---- static membership ------------------------------------------------------------------------------------

test('a restarted static member takes its old place without a rebalance; the old id is fenced', async (t) => {
  const h = await setup(t, { groupInitialRebalanceDelayMs: 100 });
  const [a, b] = await formGroup(h, [{ groupInstanceId: 'ia', clientId: 'a' }, { groupInstanceId: 'ib', clientId: 'b' }]);
  t.is(a!.join.leaderId, a!.memberId);
  t.regex(a!.memberId, /^ia-/);

  const again = await h.coordinator.join(joinInput({ groupInstanceId: 'ia', clientId: 'a' }));
  t.is(again.errorCode, ErrorCode.NONE);
  t.not(again.memberId, a!.memberId);
  t.is(again.generationId, 1);
  // Before v9 the old leader id is returned, so the restarted leader does not compute an assignment.
  t.is(again.leaderId, a!.memberId);
  t.deepEqual(again.members, []);
  t.is(state(h), GroupState.STABLE);
  t.is(heartbeat(h, b!.memberId, 1, 'ib'), ErrorCode.NONE);

  t.is(heartbeat(h, a!.memberId, 1, 'ia'), ErrorCode.FENCED_INSTANCE_ID);
  t.is(heartbeat(h, again.memberId, 1, 'ia'), ErrorCode.NONE);
  const s = await h.coordinator.sync({ groupId: 'g', generationId: 1, memberId: again.memberId, groupInstanceId: 'ia', protocolType: null, protocolName: null, assignments: [] });
  t.deepEqual(s.assignment, Buffer.from(`assign-${a!.memberId}`));
  const commit = await h.coordinator.commitOffsets({ groupId: 'g', generationId: 1, memberId: a!.memberId, groupInstanceId: 'ia',
    offsets: [{ topic: 't1', partition: 0, offset: 1, leaderEpoch: -1, metadata: null }] });
  t.is(commit[0]!.errorCode, ErrorCode.FENCED_INSTANCE_ID);
});

test('v9: a restarted static leader is told to skip the assignment and gets the members', async (t) => {
  const h = await setup(t, { groupInitialRebalanceDelayMs: 100 });
  const [a] = await formGroup(h, [{ groupInstanceId: 'ia' }, { groupInstanceId: 'ib' }]);
  const again = await h.coordinator.join(joinInput({ groupInstanceId: 'ia', supportSkippingAssignment: true }));
  t.is(again.errorCode, ErrorCode.NONE);
  t.is(again.leaderId, again.memberId);
  t.true(again.skipAssignment);
  t.is(again.members.length, 2);
  t.true(again.members.some((m) => m.memberId === again.memberId && m.groupInstanceId === 'ia'));
  t.false(again.members.some((m) => m.memberId === a!.memberId));
});

test('a static member rejoining with a new subscription triggers a rebalance', async (t) => {
  const h = await setup(t, { groupInitialRebalanceDelayMs: 100 });
  await formGroup(h, [{ groupInstanceId: 'ia' }, { groupInstanceId: 'ib' }]);
  const again = track(h.coordinator.join(joinInput({ groupInstanceId: 'ia', protocols: [{ name: 'range', metadata: encodeSubscription(['t2']) }] })));
  await settle();
  t.false(again.done);
  t.is(state(h), GroupState.PREPARING_REBALANCE);
});

test('a static member\'s subscription with other owned partitions counts as unchanged', async (t) => {
  const h = await setup(t, { groupInitialRebalanceDelayMs: 100 });
  await formGroup(h, [{ groupInstanceId: 'ia' }]);
  // Same topics, different user data (as after a restart): no rebalance.
  const again = await h.coordinator.join(joinInput({ groupInstanceId: 'ia', protocols: [{ name: 'range', metadata: encodeSubscription(['t1'], Buffer.from('new')) }] }));
  t.is(again.errorCode, ErrorCode.NONE);
  t.is(state(h), GroupState.STABLE);
});

test('the replaced member\'s pending JoinGroup is answered with FENCED_INSTANCE_ID', async (t) => {
  const h = await setup(t, { groupInitialRebalanceDelayMs: 100 });
  const [a] = await formGroup(h, [{ groupInstanceId: 'ia' }, { groupInstanceId: 'ib' }]);
  // a rejoins (as leader: starts a rebalance and waits), then a second instance with the same id appears.
  const old = track(h.coordinator.join(joinInput({ groupInstanceId: 'ia', memberId: a!.memberId })));
  await settle();
  t.false(old.done);
  const replacement = track(h.coordinator.join(joinInput({ groupInstanceId: 'ia' })));
  await settle();
  t.is(old.value?.errorCode, ErrorCode.FENCED_INSTANCE_ID);
  t.false(replacement.done);
});

test('a static member that does not rejoin stays in the group through the rebalance', async (t) => {
  const h = await setup(t, { groupInitialRebalanceDelayMs: 100 });
  // b is down (restarting) during the rebalance; its session outlasts the rebalance timeout.
  const [a, b] = await formGroup(h, [{ groupInstanceId: 'ia' }, { groupInstanceId: 'ib', sessionTimeoutMs: 2 * REBALANCE_MS }]);
  const ra = track(h.coordinator.join(joinInput({ groupInstanceId: 'ia', memberId: a!.memberId })));
  h.clock.advance(REBALANCE_MS);
  await settle();
  t.is(ra.value?.generationId, 2);
  t.deepEqual(ra.value?.members.map((m) => m.memberId), [a!.memberId, b!.memberId]);
  // b learns about the new generation when it heartbeats.
  t.is(heartbeat(h, b!.memberId, 1, 'ib'), ErrorCode.ILLEGAL_GENERATION);
});

test('LeaveGroup removes a static member by its instance id alone', async (t) => {
  const h = await setup(t, { groupInitialRebalanceDelayMs: 100 });
  await formGroup(h, [{ groupInstanceId: 'ia' }, { groupInstanceId: 'ib' }]);
  const res = h.coordinator.leave('g', [
    { memberId: '', groupInstanceId: 'ib', reason: 'admin' },
    { memberId: '', groupInstanceId: 'nobody', reason: null },
  ]);
  t.deepEqual(res.members.map((m) => [m.groupInstanceId, m.errorCode]), [['ib', ErrorCode.NONE], ['nobody', ErrorCode.UNKNOWN_MEMBER_ID]]);
  t.is(h.coordinator.describeGroups(['g'])[0]!.members.length, 1);
});

// ---- heartbeat and sync errors ----------------------------------------------------------------------------

test('Heartbeat errors: unknown group or member, wrong generation, bad group id', async (t) => {
  const h = await setup(t);
  t.is(heartbeat(h, 'x', 1, null, 'nope'), ErrorCode.UNKNOWN_MEMBER_ID);
  const [a] = await formGroup(h, [{}]);
  t.is(heartbeat(h, a!.memberId, 1), ErrorCode.NONE);
  t.is(heartbeat(h, 'x', 1), ErrorCode.UNKNOWN_MEMBER_ID);
  t.is(heartbeat(h, a!.memberId, 7), ErrorCode.ILLEGAL_GENERATION);
  t.is(heartbeat(h, a!.memberId, 1, 'not-static'), ErrorCode.UNKNOWN_MEMBER_ID);
  t.is(heartbeat(h, a!.memberId, 1, null, ''), ErrorCode.INVALID_GROUP_ID);
});

test('SyncGroup errors: unknown member, wrong generation, wrong protocol, rebalance in progress', async (t) => {
  const h = await setup(t);
  const sync = (memberId: string, generationId: number, protocolName: string | null = null, groupId = 'g') =>
    h.coordinator.sync({ groupId, generationId, memberId, groupInstanceId: null, protocolType: null, protocolName, assignments: [] });
  t.is((await sync('x', 1, null, 'nope')).errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
  const [a] = await formGroup(h, [{}]);
  t.is((await sync('x', 1)).errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
  t.is((await sync(a!.memberId, 2)).errorCode, ErrorCode.ILLEGAL_GENERATION);
  t.is((await sync(a!.memberId, 1, 'roundrobin')).errorCode, ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
  t.is((await sync(a!.memberId, 1, 'range')).errorCode, ErrorCode.NONE);
  await joinWithId(h, {});
  t.is((await sync(a!.memberId, 1)).errorCode, ErrorCode.REBALANCE_IN_PROGRESS);
});

// ---- coordinator status and connections -------------------------------------------------------------------

test('NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE / loading come from the coordinator-status hook', async (t) => {
  const h = await setup(t);
  const [a] = await formGroup(h, [{}]);
  h.status.value = 'other';
  t.is((await h.coordinator.join(joinInput())).errorCode, ErrorCode.NOT_COORDINATOR);
  t.is(heartbeat(h, a!.memberId, 1), ErrorCode.NOT_COORDINATOR);
  t.is((await h.coordinator.commitOffsets({ groupId: 'g', generationId: -1, memberId: '', groupInstanceId: null,
    offsets: [{ topic: 't1', partition: 0, offset: 1, leaderEpoch: -1, metadata: null }] }))[0]!.errorCode, ErrorCode.NOT_COORDINATOR);
  t.is((await h.coordinator.fetchOffsets('g', null)).errorCode, ErrorCode.NOT_COORDINATOR);
  t.deepEqual(h.coordinator.listGroups(), { errorCode: ErrorCode.NONE, groups: [] });
  h.status.value = 'unavailable';
  t.is(heartbeat(h, a!.memberId, 1), ErrorCode.COORDINATOR_NOT_AVAILABLE);
  t.is(h.coordinator.listGroups().errorCode, ErrorCode.COORDINATOR_NOT_AVAILABLE);
  h.status.value = 'loading';
  t.is(heartbeat(h, a!.memberId, 1), ErrorCode.NONE);
  const s = await h.coordinator.sync({ groupId: 'g', generationId: 1, memberId: a!.memberId, groupInstanceId: null, protocolType: null, protocolName: null, assignments: [] });
  t.is(s.errorCode, ErrorCode.REBALANCE_IN_PROGRESS);
  t.is((await h.coordinator.join(joinInput())).errorCode, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
});

test('a dynamic member whose connection closes during JoinGroup is removed and the rebalance goes on', async (t) => {
  const h = await setup(t);
  const [a, b] = await formGroup(h, [{}, {}]);
  const ctl = new AbortController();
  const ja = track(h.coordinator.join(joinInput({ memberId: a!.memberId }), ctl.signal));
  await settle();
  t.false(ja.done);
  ctl.abort();
  await settle();
  t.is(ja.value?.errorCode, ErrorCode.COORDINATOR_NOT_AVAILABLE);
  // Only b is left, and it rejoins: the rebalance completes without waiting for the timeout.
  const jb = await h.coordinator.join(joinInput({ memberId: b!.memberId }));
  t.is(jb.generationId, 2);
  t.deepEqual(jb.members.map((m) => m.memberId), [b!.memberId]);
});

test('a SyncGroup whose connection closes is answered and the member stays', async (t) => {
  const h = await setup(t);
  const [, b] = await Promise.all((await joinAll(h, [{ clientId: "a" }, { clientId: "b" }])).map((j) => j.promise));
  const ctl = new AbortController();
  const sb = track(h.coordinator.sync({ groupId: 'g', generationId: 1, memberId: b.memberId, groupInstanceId: null, protocolType: null, protocolName: null, assignments: [] }, ctl.signal));
  ctl.abort();
  await settle();
  t.is(sb.value?.errorCode, ErrorCode.COORDINATOR_NOT_AVAILABLE);
  t.is(heartbeat(h, b.memberId, 1), ErrorCode.NONE);
});

test('unloadGroups answers pending calls with NOT_COORDINATOR and forgets the groups', async (t) => {
  const h = await setup(t);
  const [a] = await formGroup(h, [{}, {}]);
  const rejoin = track(h.coordinator.join(joinInput({ memberId: a!.memberId })));
  await settle();
  t.false(rejoin.done);
  h.coordinator.unloadGroups();
  await settle();
  t.is(rejoin.value?.errorCode, ErrorCode.NOT_COORDINATOR);
  t.is(state(h), GroupState.DEAD);
  t.is(h.clock.pendingCount(), 0);
});

test('an Empty group is forgotten after groupEmptyRetentionMs', async (t) => {
  const h = await setup(t, { groupEmptyRetentionMs: 60_000 });
  const [a] = await formGroup(h, [{}]);
  h.coordinator.leave('g', [{ memberId: a!.memberId, groupInstanceId: null, reason: null }]);
  t.is(state(h), GroupState.EMPTY);
  h.clock.advance(59_999);
  t.is(state(h), GroupState.EMPTY);
  h.clock.advance(1);
  t.is(state(h), GroupState.DEAD);
  t.deepEqual(h.coordinator.listGroups().groups, []);
});

// ---- offsets ----------------------------------------------------------------------------------------------

function commit(h: Harness, generationId: number, memberId: string, groupId = 'g', offset = 10) {
  return h.coordinator.commitOffsets({ groupId, generationId, memberId, groupInstanceId: null,
    offsets: [{ topic: 't1', partition: 0, offset, leaderEpoch: 3, metadata: 'm' }] });
}

test('a simple commit (generation -1, no member) is accepted for an unknown or Empty group only', async (t) => {
  const h = await setup(t);
  t.is((await commit(h, -1, '', 'solo'))[0]!.errorCode, ErrorCode.NONE);
  const f = await h.coordinator.fetchOffsets('solo', [{ topic: 't1', partition: 0 }]);
  t.deepEqual(f.offsets, [{ topic: 't1', partition: 0, offset: 10, leaderEpoch: 3, metadata: 'm', errorCode: ErrorCode.NONE }]);

  const [a] = await formGroup(h, [{}]);
  t.is((await commit(h, -1, ''))[0]!.errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
  h.coordinator.leave('g', [{ memberId: a!.memberId, groupInstanceId: null, reason: null }]);
  t.is((await commit(h, -1, ''))[0]!.errorCode, ErrorCode.NONE);
});

test('member commits are checked against generation and membership', async (t) => {
  const h = await setup(t);
  t.is((await commit(h, 1, 'x', 'unknown-group'))[0]!.errorCode, ErrorCode.ILLEGAL_GENERATION);
  const [a] = await formGroup(h, [{}]);
  t.is((await commit(h, 1, a!.memberId))[0]!.errorCode, ErrorCode.NONE);
  t.is((await commit(h, 2, a!.memberId))[0]!.errorCode, ErrorCode.ILLEGAL_GENERATION);
  t.is((await commit(h, 1, 'ghost'))[0]!.errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
  // PreparingRebalance: commits of the current generation are still accepted.
  const b = await joinWithId(h, {});
  t.is((await commit(h, 1, a!.memberId, 'g', 11))[0]!.errorCode, ErrorCode.NONE);
  // CompletingRebalance: the member must sync first.
  await h.coordinator.join(joinInput({ memberId: a!.memberId }));
  await b.join.promise;
  t.is((await commit(h, 2, a!.memberId))[0]!.errorCode, ErrorCode.REBALANCE_IN_PROGRESS);
  const stored = await h.coordinator.fetchOffsets('g', null);
  t.deepEqual(stored.offsets.map((o) => o.offset), [11]);
});

test('commit checks each partition: unknown topic or partition, metadata too large', async (t) => {
  const h = await setup(t, { offsetMetadataBytesMax: 8 });
  const r = await h.coordinator.commitOffsets({ groupId: 'g', generationId: -1, memberId: '', groupInstanceId: null, offsets: [
    { topic: 't1', partition: 0, offset: 1, leaderEpoch: -1, metadata: '12345678' },
    { topic: 't1', partition: 1, offset: 1, leaderEpoch: -1, metadata: '123456789' },
    { topic: 't1', partition: 9, offset: 1, leaderEpoch: -1, metadata: null },
    { topic: 'nope', partition: 0, offset: 1, leaderEpoch: -1, metadata: null },
    { topic: 't2', partition: 1, offset: 5, leaderEpoch: -1, metadata: null },
  ] });
  t.deepEqual(r.map((x) => x.errorCode), [
    ErrorCode.NONE, ErrorCode.OFFSET_METADATA_TOO_LARGE, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.NONE,
  ]);
  const all = await h.coordinator.fetchOffsets('g', null);
  t.deepEqual(all.offsets.map((o) => `${o.topic}-${o.partition}`).sort(), ['t1-0', 't2-1']);
});

test('OffsetFetch answers -1 for partitions without a commit', async (t) => {
  const h = await setup(t);
  await commit(h, -1, '', 'g');
  const f = await h.coordinator.fetchOffsets('g', [{ topic: 't1', partition: 0 }, { topic: 't1', partition: 1 }, { topic: 'gone', partition: 0 }]);
  t.is(f.errorCode, ErrorCode.NONE);
  t.deepEqual(f.offsets.map((o) => [o.offset, o.metadata]), [[10, 'm'], [-1, ''], [-1, '']]);
  t.deepEqual((await h.coordinator.fetchOffsets('other', null)).offsets, []);
});

test('a backend failure on commit becomes the partitions\' error code', async (t) => {
  const h = await setup(t);
  h.backend.commitOffsets = async () => {
    throw new KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE, 'no quorum');
  };
  t.is((await commit(h, -1, ''))[0]!.errorCode, ErrorCode.COORDINATOR_NOT_AVAILABLE);
});

// ---- OffsetDelete -----------------------------------------------------------------------------------------

test('OffsetDelete refuses topics the consumer group subscribes to and deletes the others', async (t) => {
  const h = await setup(t);
  await h.coordinator.commitOffsets({ groupId: 'g', generationId: -1, memberId: '', groupInstanceId: null, offsets: [
    { topic: 't1', partition: 0, offset: 1, leaderEpoch: -1, metadata: null },
    { topic: 't2', partition: 0, offset: 2, leaderEpoch: -1, metadata: null },
  ] });
  await formGroup(h, [{ protocols: [{ name: 'range', metadata: encodeSubscription(['t1']) }] }]);
  const r = await h.coordinator.deleteOffsets('g', [{ topic: 't1', partition: 0 }, { topic: 't2', partition: 0 }, { topic: 'nope', partition: 0 }]);
  t.is(r.errorCode, ErrorCode.NONE);
  t.deepEqual(r.partitions.map((p) => p.errorCode), [ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC, ErrorCode.NONE, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]);
  const left = await h.coordinator.fetchOffsets('g', null);
  t.deepEqual(left.offsets.map((o) => o.topic), ['t1']);
});

test('OffsetDelete: unknown group, group known only by its offsets, non-consumer group with members', async (t) => {
  const h = await setup(t);
  t.is((await h.coordinator.deleteOffsets('nope', [{ topic: 't1', partition: 0 }])).errorCode, ErrorCode.GROUP_ID_NOT_FOUND);
  await commit(h, -1, '', 'stored');
  const r = await h.coordinator.deleteOffsets('stored', [{ topic: 't1', partition: 0 }]);
  t.deepEqual(r.partitions.map((p) => p.errorCode), [ErrorCode.NONE]);
  t.deepEqual((await h.coordinator.fetchOffsets('stored', null)).offsets, []);

  await formGroup(h, [{ protocolType: 'connect' }], 'conn');
  t.is((await h.coordinator.deleteOffsets('conn', [{ topic: 't1', partition: 0 }])).errorCode, ErrorCode.NON_EMPTY_GROUP);
});

// ---- admin ------------------------------------------------------------------------------------------------

test('DeleteGroups: only empty groups; offsets go with the group', async (t) => {
  const h = await setup(t);
  await formGroup(h, [{}], 'busy');
  await commit(h, -1, '', 'idle');
  const [m] = await formGroup(h, [{}], 'left');
  h.coordinator.leave('left', [{ memberId: m!.memberId, groupInstanceId: null, reason: null }]);
  const res = await h.coordinator.deleteGroups(['busy', 'idle', 'left', 'nope', 'idle']);
  t.deepEqual(res, [
    { groupId: 'busy', errorCode: ErrorCode.NON_EMPTY_GROUP },
    { groupId: 'idle', errorCode: ErrorCode.NONE },
    { groupId: 'left', errorCode: ErrorCode.NONE },
    { groupId: 'nope', errorCode: ErrorCode.GROUP_ID_NOT_FOUND },
  ]);
  t.deepEqual(h.backend.offsetGroups(), []);
  t.deepEqual(h.coordinator.listGroups().groups.map((g) => g.groupId), ['busy']);
  t.is(state(h, 'idle'), GroupState.DEAD);
});

test('ListGroups lists live groups and groups known by their offsets, with a state filter', async (t) => {
  const h = await setup(t);
  await formGroup(h, [{}], 'stable');
  await joinWithId(h, { groupId: 'forming' });
  await commit(h, -1, '', 'offsets-only');
  const all = h.coordinator.listGroups();
  t.is(all.errorCode, ErrorCode.NONE);
  t.deepEqual(all.groups.map((g) => [g.groupId, g.state, g.protocolType]).sort(), [
    ['forming', GroupState.COMPLETING_REBALANCE, 'consumer'],
    ['offsets-only', GroupState.EMPTY, ''],
    ['stable', GroupState.STABLE, 'consumer'],
  ]);
  t.deepEqual(h.coordinator.listGroups(['stable', 'EMPTY']).groups.map((g) => g.groupId).sort(), ['offsets-only', 'stable']);
  t.deepEqual(h.coordinator.listGroups(['Dead']).groups, []);
});

test('DescribeGroups: unknown groups are Dead, offset-only groups Empty, members without metadata unless Stable', async (t) => {
  const h = await setup(t);
  await commit(h, -1, '', 'offsets-only');
  const a = await joinWithId(h, { groupId: 'forming', clientId: 'cli' });
  await a.join.promise;
  const [unknown, offsetsOnly, forming, bad] = h.coordinator.describeGroups(['nope', 'offsets-only', 'forming', 'x'.repeat(2000)]);
  t.deepEqual(unknown, { errorCode: 0, groupId: 'nope', state: GroupState.DEAD, protocolType: '', protocolName: '', members: [] });
  t.is(offsetsOnly!.state, GroupState.EMPTY);
  t.is(forming!.state, GroupState.COMPLETING_REBALANCE);
  t.is(forming!.protocolName, '');
  t.deepEqual(forming!.members, [{ memberId: a.memberId, groupInstanceId: null, clientId: 'cli', clientHost: '/127.0.0.1', metadata: Buffer.alloc(0), assignment: Buffer.alloc(0) }]);
  t.is(bad!.errorCode, ErrorCode.INVALID_GROUP_ID);
});

