import { fileURLToPath } from 'node:url';
import test from 'ava';
import pino from 'pino';
import { ClusterConfigError, clusterNodeOptions } from '../../../src/backends/raft/from-config.ts';
import { loadConfig } from '../../../src/config/load.ts';

const logger = pino({ level: 'silent' });
const nodeFile = (n: number) => fileURLToPath(new URL(`../../../../configs/cluster/node${n}.json`, import.meta.url));

test('configs/cluster/node1..3.json describe one three-node cluster on 127.0.0.1', (t) => {
  const options = [1, 2, 3].map((n) => clusterNodeOptions(loadConfig({ argv: ['--config', nodeFile(n)], env: {} }), logger));
  options.forEach((o, i) => {
    const n = i + 1;
    t.is(o.nodeId, n);
    t.deepEqual(o.raftListen, { host: '127.0.0.1', port: 8000 + n });
    t.is(o.dataDir, `./data/cluster/node${n}`);
    t.deepEqual(o.members.map((m) => [m.nodeId, m.raftPort, m.kafkaPort, m.rack]), [[1, 8001, 9092, 'rack-1'], [2, 8002, 9093, 'rack-2'], [3, 8003, 9094, 'rack-3']]);
    t.is(o.replicaSelector, 'rack');
    t.is(o.timing.commitWriteDelayMs, 50);
    t.deepEqual(o.logStore, { syncCommitBytesMax: 1024 * 1024, entryCacheBytesMax: 64 * 1024 * 1024 });
    t.is(o.defaultReplicationFactor, 3);
  });
  t.is(new Set(options.map((o) => o.clusterId)).size, 1, 'every node derives the same cluster id');
  const c1 = loadConfig({ argv: ['--config', nodeFile(1)], env: {} });
  t.is(c1.port, 9092);
  t.deepEqual(c1.hosts, ['127.0.0.1']);
});

test('settings that cannot make a cluster node are refused with a clear message', (t) => {
  const base = ['--mode', 'raft', '--initial-members', '1@127.0.0.1:8001@127.0.0.1:9092,2@127.0.0.1:8002@127.0.0.1:9093'];
  const fails = (argv: string[], message: RegExp) => t.throws(() => clusterNodeOptions(loadConfig({ argv, env: {}, defaultsFile: null }), logger), { instanceOf: ClusterConfigError, message });
  fails(['--mode', 'raft', '--node-id', '1'], /initialMembers must list/);
  fails([...base, '--node-id', '0'], /nodeId must be >= 1/);
  fails([...base, '--node-id', '5'], /not one of initialMembers/);
  fails([...base, '--node-id', '1', '--raft-election-ticks', '2', '--raft-heartbeat-ticks', '2'], /raftElectionTicks/);
  fails([...base, '--node-id', '1', '--default-replication-factor', '3'], /exceeds the 2 members/);
  const ok = clusterNodeOptions(loadConfig({ argv: [...base, '--node-id', '2', '--raft-address', '0.0.0.0:7000'], env: {}, defaultsFile: null }), logger);
  t.deepEqual(ok.raftListen, { host: '0.0.0.0', port: 7000 });
  // broker.rack: from the member string, or from this node's rack setting; the two must agree.
  const racked = ['--mode', 'raft', '--initial-members', '1@h:8001@h:9092@rack=a,2@h:8002@h:9093'];
  fails([...racked, '--node-id', '1', '--rack', 'b'], /rack b differs from this node's rack in initialMembers \(a\)/);
  const own = clusterNodeOptions(loadConfig({ argv: [...racked, '--node-id', '2', '--rack', 'c', '--replica-selector', 'none'], env: {}, defaultsFile: null }), logger);
  t.deepEqual(own.members.map((m) => m.rack), ['a', 'c']);
  t.is(own.replicaSelector, 'none');
  t.throws(() => loadConfig({ argv: [...racked, '--replica-selector', 'nearest'], env: {}, defaultsFile: null }), { message: /replicaSelector/ });
});
