import test from 'ava';
import { deriveClusterId, formatHostPort, parseClusterMember, parseClusterMembers } from '../../src/config/cluster-members.ts';
import { loadConfig } from '../../src/config/load.ts';

test('member strings name the id, the Raft address, the Kafka address and optionally the rack', (t) => {
  t.deepEqual(parseClusterMember('1@127.0.0.1:8001@127.0.0.1:9092'), { nodeId: 1, raftHost: '127.0.0.1', raftPort: 8001, kafkaHost: '127.0.0.1', kafkaPort: 9092, rack: null });
  t.deepEqual(parseClusterMember(' 12@node-b.local:8002@[::1]:9093 '), { nodeId: 12, raftHost: 'node-b.local', raftPort: 8002, kafkaHost: '::1', kafkaPort: 9093, rack: null });
  t.is(parseClusterMember('3@h:1@h:2@rack=eu-west-1a').rack, 'eu-west-1a');
  const bad = ['1@127.0.0.1:8001', 'x@h:1@h:2', '1@h:0@h:2', '1@h:1@h:70000', '1@[zz]:1@h:2', '1@h:1@h:2@h:3', '99999999999@h:1@h:2',
    '1@h:1@h:2@rack=', '1@h:1@h:2@rack=a b', '1@h:1@h:2@zone=a', `1@h:1@h:2@rack=${'r'.repeat(256)}`];
  for (const bad1 of bad) {
    t.throws(() => parseClusterMember(bad1), undefined, bad1);
  }
  t.is(formatHostPort('::1', 9), '[::1]:9');
  t.is(formatHostPort('h', 9), 'h:9');
});

test('a member list has distinct ids and Raft addresses; it comes back sorted by id', (t) => {
  const ms = parseClusterMembers(['3@h:3@h:13', '1@h:1@h:11', '2@h:2@h:12']);
  t.deepEqual(ms.map((m) => m.nodeId), [1, 2, 3]);
  t.throws(() => parseClusterMembers(['1@h:1@h:11', '1@h:2@h:12']), { message: /listed twice/ });
  t.throws(() => parseClusterMembers(['1@h:1@h:11', '2@h:1@h:12']), { message: /listed twice/ });
  t.throws(() => parseClusterMembers([]), { message: /at least one/ });
});

test('the derived cluster id is the same for the same members, whatever the order, and Kafka-shaped', (t) => {
  const a = deriveClusterId(parseClusterMembers(['1@a:1@a:2', '2@b:1@b:2']));
  const b = deriveClusterId(parseClusterMembers(['2@x:5@x:6', '1@y:5@y:6']));
  t.is(a, b);
  t.regex(a, /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
  t.not(a, deriveClusterId(parseClusterMembers(['1@a:1@a:2', '3@b:1@b:2'])));
});

test('cluster settings load from flags and env, and bad members are refused with the setting named', (t) => {
  const c = loadConfig({
    argv: ['--mode', 'raft', '--node-id', '2', '--initial-members', '1@127.0.0.1:8001@127.0.0.1:9092,2@127.0.0.1:8002@127.0.0.1:9093', '--raft-address', '0.0.0.0:8002'],
    env: { TAKHIN_RAFT_TICK_MS: '50' },
    defaultsFile: null,
  });
  t.is(c.mode, 'raft');
  t.deepEqual(c.initialMembers, ['1@127.0.0.1:8001@127.0.0.1:9092', '2@127.0.0.1:8002@127.0.0.1:9093']);
  t.is(c.raftAddress, '0.0.0.0:8002');
  t.is(c.raftTickMs, 50);
  t.throws(() => loadConfig({ argv: ['--initial-members', '1@h:1@h:2,1@h:3@h:4'], env: {}, defaultsFile: null }), { message: /initialMembers.*listed twice/ });
  t.throws(() => loadConfig({ argv: ['--raft-address', 'nope'], env: {}, defaultsFile: null }), { message: /raftAddress/ });
  t.throws(() => loadConfig({ argv: ['--mode', 'paxos'], env: {}, defaultsFile: null }), { message: /mode/ });
});
