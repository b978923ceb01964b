import test from 'ava';
import { Group, Member, uniqueProtocols } from '../../src/group/group.ts';
import { GroupState } from '../../src/group/types.ts';
import type { GroupProtocol } from '../../src/group/types.ts';

function member(id: string, names: string[], instance: string | null = null): Member {
  return new Member({
    memberId: id, groupInstanceId: instance, clientId: 'c', clientHost: 'h', rebalanceTimeoutMs: 1000 * names.length,
    sessionTimeoutMs: 10, protocolType: 'consumer', protocols: names.map((name) => ({ name, metadata: Buffer.from(name) })),
  });
}

test('selectProtocol takes the most preferred protocol among those all members support; ties go to the leader', (t) => {
  const g = new Group('g');
  g.add(member('a', ['x', 'y']), null);
  g.add(member('b', ['y', 'x']), null);
  t.is(g.selectProtocol(), 'x');
  g.add(member('c', ['y', 'x', 'z']), null);
  t.is(g.selectProtocol(), 'y');
  g.add(member('d', ['x']), null);
  t.is(g.selectProtocol(), 'x');
});

test('supportsProtocols: type and a commonly supported protocol; any non-empty set for an empty group', (t) => {
  const g = new Group('g');
  const p = (names: string[]): GroupProtocol[] => names.map((name) => ({ name, metadata: Buffer.alloc(0) }));
  t.true(g.supportsProtocols('consumer', p(['x'])));
  t.false(g.supportsProtocols('', p(['x'])));
  t.false(g.supportsProtocols('consumer', []));
  g.add(member('a', ['x', 'y']), null);
  g.add(member('b', ['y']), null);
  t.true(g.supportsProtocols('consumer', p(['z', 'y'])));
  t.false(g.supportsProtocols('consumer', p(['x'])));
  t.false(g.supportsProtocols('connect', p(['y'])));
  g.remove('b');
  t.true(g.supportsProtocols('consumer', p(['x'])));
});

test('the leader is the first member; when it goes, the next in join order takes over', (t) => {
  const g = new Group('g');
  for (const id of ['a', 'b', 'c']) g.add(member(id, ['x']), null);
  t.is(g.leaderId, 'a');
  g.remove('b');
  g.remove('a');
  t.is(g.leaderId, 'c');
  g.remove('c');
  t.is(g.leaderId, null);
});

test('static members: replacement keeps leadership and fences the old id', (t) => {
  const g = new Group('g');
  g.add(member('a', ['x'], 'ia'), null);
  g.add(member('b', ['x'], 'ib'), null);
  g.replaceStaticMember('ia', 'a', 'a2');
  t.is(g.leaderId, 'a2');
  t.is(g.staticMemberId('ia'), 'a2');
  t.true(g.isStaticMemberFenced('ia', 'a'));
  t.false(g.isStaticMemberFenced('ia', 'a2'));
  t.false(g.has('a'));
  t.deepEqual([...g.members.keys()], ['b', 'a2']);
});

test('illegal state transitions throw; rebalance timeout is the members\' largest', (t) => {
  const g = new Group('g');
  t.throws(() => g.transitionTo(GroupState.STABLE));
  g.add(member('a', ['x']), null);
  g.add(member('b', ['x', 'y', 'z']), null);
  t.is(g.rebalanceTimeoutMs(), 3000);
  g.transitionTo(GroupState.PREPARING_REBALANCE);
  t.throws(() => g.transitionTo(GroupState.PREPARING_REBALANCE));
});

test('uniqueProtocols keeps the first of duplicate names', (t) => {
  const r = uniqueProtocols([{ name: 'a', metadata: Buffer.from('1') }, { name: 'a', metadata: Buffer.from('2') }, { name: 'b', metadata: Buffer.alloc(0) }]);
  t.deepEqual(r.map((p) => [p.name, p.metadata.toString()]), [['a', '1'], ['b', '']]);
});
