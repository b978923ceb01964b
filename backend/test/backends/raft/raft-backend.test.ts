// Three real cluster nodes in one process (real RaftNodes, LMDB, partition files, TCP on 127.0.0.1): writes
// through the leader's Backend are replicated to identical local logs; followers send clients to the leader.
import fs from 'node:fs';
import test from 'ava';
import type { AppendOptions } from '../../../src/backends/backend.ts';
import type { RaftClusterNode } from '../../../src/backends/raft/open-raft-backend.ts';
import { ErrorCode, KafkaError } from '../../../src/protocol/errors.ts';
import { buildRecordBatch, decodeRecordBatch } from '../../../src/protocol/records/builder.ts';
import { partitionFiles, TestCluster, waitFor } from './cluster-harness.ts';
import { codeOf } from '../../error-codes.ts';

const IDS = [1, 2, 3];
const acks = (n: number): AppendOptions => ({ acks: n, timeoutMs: 5000, transactionalId: null });

function keysOf(n: RaftClusterNode, topic: string, partition: number): string[] {
  const log = n.fsm.topics.partition(topic, partition);
  const out: string[] = [];
  for (const b of log.read(log.logStartOffset, 1 << 30).records) for (const r of decodeRecordBatch(b).records) out.push(`${r.offset}:${r.key}`);
  return out;
}

function batch(tag: string, count = 2): Buffer {
  return buildRecordBatch(Array.from({ length: count }, (_, i) => ({ key: `${tag}.${i}`, value: `${tag}.${i}:${'x'.repeat(200)}` })));
}

test('three nodes: writes through the leader reach identical logs everywhere; followers redirect; failover continues the offsets', async (t) => {
  const cluster = await TestCluster.start(IDS);
  t.teardown(() => cluster.stop());
  const leaderId = await cluster.leader();
  const leader = cluster.node(leaderId).backend;
  const followers = IDS.filter((id) => id !== leaderId);

  // Routing as clients see it.
  const view = cluster.node(followers[0]!).backend.cluster();
  t.is(view.controllerId, leaderId);
  t.is(view.nodeId, followers[0]);
  t.deepEqual(view.brokers.map((b) => [b.nodeId, b.port]), IDS.map((id) => [id, cluster.kafkaPorts.get(id)]));
  t.is(cluster.node(followers[0]!).backend.coordinatorStatus('g'), 'other');
  t.is(cluster.node(followers[0]!).backend.coordinatorNode(), leaderId);
  const logDirs = leader.describeBrokerConfigs(leaderId).find((c) => c.name === 'log.dirs')!.value!;
  t.true(fs.existsSync(logDirs) && logDirs.startsWith(cluster.dataDir(leaderId)), logDirs);
  t.is(await codeOf(async () => leader.describeBrokerConfigs(followers[0]!)), ErrorCode.INVALID_REQUEST);

  // Admin goes through the leader; a follower sends other changes there, but forwards a creation itself
  // (auto-creation reaches whichever broker a client talks to).
  t.is(await codeOf(() => cluster.node(followers[0]!).backend.createPartitions('orders', 5, false)), ErrorCode.NOT_CONTROLLER);
  const viaFollower = await cluster.node(followers[0]!).backend.createTopic({ name: 'auto', numPartitions: -1, replicationFactor: -1, configs: { 'retention.ms': '60000' } }, false);
  t.is(viaFollower.partitions.length, 3);
  t.is(leader.topic('auto')!.topicId.toString('hex'), viaFollower.topicId.toString('hex'));
  t.is(leader.describeTopicConfigs('auto').find((c) => c.name === 'retention.ms')!.value, '60000');
  t.is(await codeOf(() => cluster.node(followers[1]!).backend.createTopic({ name: 'auto', numPartitions: 1, replicationFactor: -1, configs: {} }, false)), ErrorCode.TOPIC_ALREADY_EXISTS);
  t.is(await codeOf(() => cluster.node(followers[1]!).backend.deleteTopic('auto')), ErrorCode.NOT_CONTROLLER);
  const created = await leader.createTopic({ name: 'orders', numPartitions: 3, replicationFactor: -1, configs: {} }, false);
  t.is(created.partitions.length, 3);
  t.deepEqual(created.partitions[0], { partition: 0, leaderId, leaderEpoch: cluster.node(leaderId).node.leader().term, replicas: IDS, isr: IDS, offlineReplicas: [] });
  t.is(await codeOf(() => leader.createTopic({ name: 'orders', numPartitions: 1, replicationFactor: -1, configs: {} }, false)), ErrorCode.TOPIC_ALREADY_EXISTS);
  t.is(await codeOf(() => leader.createTopic({ name: 'wide', numPartitions: 1, replicationFactor: 4, configs: {} }, false)), ErrorCode.INVALID_REPLICATION_FACTOR);

  // Many concurrent appends: the offsets the state machine assigned come back, and they are coalesced.
  const proposalsBefore = leader.batcher.proposals;
  const results = await Promise.all(Array.from({ length: 300 }, (_, i) => leader.append('orders', i % 3, batch(`m${i}`), acks(i % 2 === 0 ? 1 : -1))));
  for (let p = 0; p < 3; p++) {
    const offsets = results.filter((_, i) => i % 3 === p).map((r) => r.baseOffset).sort((a, b) => a - b);
    t.deepEqual(offsets, Array.from({ length: 100 }, (_, i) => 2 * i), `partition ${p} got consecutive offsets`);
  }
  t.true(leader.batcher.proposals - proposalsBefore < 300, `${leader.batcher.proposals - proposalsBefore} Raft entries for 300 appends`);
  // acks=0 answers at once; the append still happens.
  const a0 = await leader.append('orders', 0, batch('zero'), acks(0));
  t.is(a0.baseOffset, -1);

  // Followers refuse writes with the errors that send clients to the leader.
  const follower = cluster.node(followers[1]!).backend;
  t.is(await codeOf(() => follower.append('orders', 0, batch('f'), acks(1))), ErrorCode.NOT_LEADER_OR_FOLLOWER);
  t.throws(() => follower.append('orders', 0, batch('f'), acks(0)), { instanceOf: KafkaError, message: /not the leader/ });
  t.is(await codeOf(() => follower.commitOffsets('g', [{ topic: 'orders', partition: 0, offset: 1, leaderEpoch: -1, metadata: null }])), ErrorCode.NOT_COORDINATOR);
  t.is(await codeOf(() => follower.initProducerId(null, 1000, -1, -1)), ErrorCode.NOT_COORDINATOR);
  t.is(await codeOf(() => follower.deleteRecords('orders', 0, 1)), ErrorCode.NOT_LEADER_OR_FOLLOWER);
  t.is(await codeOf(() => leader.append('orders', 7, batch('f'), acks(1))), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  const corrupt = batch('c');
  corrupt[corrupt.length - 1] ^= 1;
  t.is(await codeOf(() => leader.append('orders', 0, corrupt, acks(1))), ErrorCode.CORRUPT_MESSAGE);

  // Offsets and producer ids are replicated too.
  await leader.commitOffsets('g', [{ topic: 'orders', partition: 1, offset: 42, leaderEpoch: 3, metadata: 'meta' }]);
  const pids = await Promise.all([1, 2, 3].map(() => leader.initProducerId(null, 1000, -1, -1)));
  t.is(new Set(pids.map((p) => p.producerId)).size, 3);

  await cluster.converged();
  for (const id of IDS) {
    const n = cluster.node(id);
    t.deepEqual(await n.backend.fetchOffsets('g', null), await leader.fetchOffsets('g', null), `offsets on node ${id}`);
    t.deepEqual(keysOf(n, 'orders', 1), keysOf(cluster.node(leaderId), 'orders', 1));
    t.is(n.fsm.producerIdNext, cluster.node(leaderId).fsm.producerIdNext);
  }
  for (const id of IDS) await cluster.node(id).backend.flush();
  const reference = partitionFiles(cluster.dataDir(leaderId));
  t.true(reference.size >= 3);
  for (const id of followers) {
    const files = partitionFiles(cluster.dataDir(id));
    t.deepEqual([...files.keys()], [...reference.keys()]);
    for (const [name, bytes] of reference) t.true(bytes.equals(files.get(name)!), `node ${id} ${name}`);
  }

  // Failover: the leader goes away, another takes over, and offsets continue where the log ended.
  const endBefore = cluster.node(followers[0]!).fsm.topics.partition('orders', 2).logEndOffset;
  await cluster.stopNode(leaderId);
  const next = await cluster.leader();
  t.true(followers.includes(next));
  const r = await cluster.node(next).backend.append('orders', 2, batch('after'), acks(-1));
  t.is(r.baseOffset, endBefore);
  t.true(cluster.node(next).backend.topic('orders')!.partitions[2]!.leaderEpoch > created.partitions[2]!.leaderEpoch, 'the leader epoch moved with the term');

  // The old leader comes back as a follower and catches up to the same content.
  await cluster.startNode(leaderId);
  await cluster.converged();
  t.deepEqual(keysOf(cluster.node(leaderId), 'orders', 2), keysOf(cluster.node(next), 'orders', 2));
  t.is(cluster.node(leaderId).backend.cluster().controllerId, next);

  // Leadership handed back: the node that loses it tells its group coordinator, and stops coordinating.
  let lost = 0;
  cluster.node(next).backend.onLeadershipLost(() => lost++);
  cluster.node(next).node.transferLeadership(leaderId);
  await waitFor(() => (cluster.node(leaderId).node.leader().isLeader ? true : undefined), 10_000, 'the transfer');
  t.is(lost, 1);
  t.not(cluster.node(next).backend.coordinatorStatus('g'), 'self');
  await waitFor(() => (cluster.node(next).backend.coordinatorStatus('g') === 'other' ? true : undefined), 5000, 'the old leader to learn the new one');
  await cluster.leader();
  const again = await cluster.node(leaderId).backend.append('orders', 2, batch('back'), acks(1));
  t.is(again.baseOffset, r.lastOffset + 1);
});

test('a follower that missed compacted entries is rebuilt from the leader\'s state machine snapshot', async (t) => {
  const cluster = await TestCluster.start(IDS, { snapshot: { entriesBetweenSnapshots: 20, trailingEntriesKept: 5, snapshotsRetained: 2 } });
  t.teardown(() => cluster.stop());
  const leaderId = await cluster.leader();
  const leader = cluster.node(leaderId).backend;
  const lagging = IDS.find((id) => id !== leaderId)!;
  await leader.createTopic({ name: 'snap', numPartitions: 2, replicationFactor: -1, configs: {} }, false);
  await cluster.stopNode(lagging);
  // One entry per append (each awaited), so the log passes several snapshot points and is compacted.
  for (let i = 0; i < 120; i++) await leader.append('snap', i % 2, batch(`s${i}`, 1), acks(-1));
  await leader.deleteRecords('snap', 0, 10);
  await leader.commitOffsets('g', [{ topic: 'snap', partition: 0, offset: 33, leaderEpoch: -1, metadata: 'm' }]);
  await waitFor(() => (cluster.node(leaderId).node.metrics().snapshotsCreated >= 3 ? true : undefined), 10_000, 'leader snapshots');

  const back = await cluster.startNode(lagging);
  await cluster.converged();
  t.true(back.node.metrics().snapshotsInstalled >= 1, 'caught up through a snapshot, not the log');
  const ref = cluster.node(leaderId);
  for (const p of [0, 1]) t.deepEqual(keysOf(back, 'snap', p), keysOf(ref, 'snap', p));
  t.is(back.fsm.topics.partition('snap', 0).logStartOffset, 10);
  t.deepEqual(await back.backend.fetchOffsets('g', null), await leader.fetchOffsets('g', null));
  t.is(back.backend.topic('snap')!.topicId.toString('hex'), leader.topic('snap')!.topicId.toString('hex'));
  // And it keeps applying after the snapshot.
  const r = await leader.append('snap', 1, batch('after', 1), acks(-1));
  await cluster.converged();
  t.is(back.fsm.topics.partition('snap', 1).logEndOffset, r.lastOffset + 1);
});

test('offset expiry is decided by the leader and replicated; a group committing meanwhile keeps its offsets', async (t) => {
  const cluster = await TestCluster.start(IDS, { offsetsRetentionMs: 400 });
  t.teardown(() => cluster.stop());
  const leaderId = await cluster.leader();
  const leader = cluster.node(leaderId).backend;
  await leader.createTopic({ name: 'exp', numPartitions: 1, replicationFactor: -1, configs: {} }, false);
  const commit = (group: string) => leader.commitOffsets(group, [{ topic: 'exp', partition: 0, offset: 5, leaderEpoch: -1, metadata: null }]);
  await commit('old');
  await commit('busy');
  await new Promise((r) => setTimeout(r, 450));
  await commit('busy');
  t.deepEqual(await leader.expireOffsets(), ['old']);
  await cluster.converged();
  for (const id of IDS) t.deepEqual(cluster.node(id).backend.offsetGroups(), ['busy'], `node ${id}`);
  // A follower never expires anything itself.
  const follower = cluster.node(IDS.find((id) => id !== leaderId)!).backend;
  await new Promise((r) => setTimeout(r, 450));
  t.deepEqual(await follower.expireOffsets(), []);
  t.deepEqual(follower.offsetGroups(), ['busy']);
});

test('min.insync.replicas: acks=all waits for that many copies, and is refused while fewer replicas are in sync', async (t) => {
  const cluster = await TestCluster.start(IDS);
  t.teardown(() => cluster.stop());
  const leaderId = await cluster.leader();
  const leader = cluster.node(leaderId).backend;
  await leader.createTopic({ name: 'all3', numPartitions: 1, replicationFactor: -1, configs: { 'min.insync.replicas': '3' } }, false);
  await leader.createTopic({ name: 'two', numPartitions: 1, replicationFactor: -1, configs: { 'min.insync.replicas': '2' } }, false);
  for (let i = 0; i < 20; i++) {
    await leader.append('all3', 0, batch(`w${i}`), acks(-1));
    // Answered only once all three hold it: a majority commit alone would not guarantee the third copy.
    const status = cluster.node(leaderId).node.replicas()!;
    t.true(status.voters.every((v) => v.match >= status.commit), `write ${i}: matches ${status.voters.map((v) => v.match)} vs commit ${status.commit}`);
  }
  const down = IDS.find((id) => id !== leaderId)!;
  await cluster.stopNode(down);
  await waitFor(() => (leader.topic('all3')!.partitions[0]!.isr.length === 2 ? true : undefined), 5000, 'the ISR without the stopped node');
  t.is(await codeOf(() => leader.append('all3', 0, batch('refused'), acks(-1))), ErrorCode.NOT_ENOUGH_REPLICAS);
  // As in Kafka, min.insync.replicas only binds acks=all; a topic needing 2 copies still takes acks=all writes.
  t.is(await codeOf(() => leader.append('all3', 0, batch('one'), acks(1))), ErrorCode.NONE);
  t.is(await codeOf(() => leader.append('two', 0, batch('ok'), acks(-1))), ErrorCode.NONE);
  t.is(leader.topic('all3')!.partitions[0]!.isr.length, 2);
  t.deepEqual(keysOf(cluster.node(leaderId), 'all3', 0).filter((k) => k.includes('refused')), [], 'a refused write is not stored');
});
