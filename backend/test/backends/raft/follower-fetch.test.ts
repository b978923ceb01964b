// Reads from followers (KIP-392) and leader-epoch fencing (KIP-320) on three real cluster nodes in one process
// (real RaftNodes, LMDB, partition files, TCP on 127.0.0.1): a follower serves Fetch v11+ consumers from its own
// committed log, the leader points a consumer to a follower in its rack, and kafkajs (rackId) follows that.
import test from 'ava';
import { Kafka, logLevel } from 'kafkajs';
import type { AppendOptions, ReadOptions } from '../../../src/backends/backend.ts';
import { fetchHandler } from '../../../src/handlers/fetch.ts';
import { ErrorCode } from '../../../src/protocol/errors.ts';
import type { FetchRequest } from '../../../src/protocol/generated/index.ts';
import { buildRecordBatch, decodeRecordBatch } from '../../../src/protocol/records/builder.ts';
import { openHarness, recordBytes, roundTrip, valuesOf } from '../../handlers/helpers.ts';
import { TestCluster, waitFor } from './cluster-harness.ts';
import { codeOf } from '../../error-codes.ts';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const IDS = [1, 2, 3];
const acks = (n: number): AppendOptions => ({ acks: n, timeoutMs: 5000, transactionalId: null });
const v11 = (clientRack: string, currentLeaderEpoch = -1): ReadOptions => ({ isolationLevel: 0, clientRack, currentLeaderEpoch });

function values(records: Buffer[]): string[] {
  return records.flatMap((b) => decodeRecordBatch(b).records.map((r) => `${r.offset}:${r.value}`));
}

test('followers serve Fetch v11+ from their committed log; the leader points a consumer to its rack; epochs are fenced', async (t) => {
  const cluster = await TestCluster.start(IDS);
  t.teardown(() => cluster.stop());
  const leaderId = await cluster.leader();
  const leader = cluster.node(leaderId).backend;
  const [f1, f2] = IDS.filter((id) => id !== leaderId) as [number, number];
  const follower = cluster.node(f1).backend;
  await leader.createTopic({ name: 'reads', numPartitions: 1, replicationFactor: -1, configs: {} }, false);
  for (let i = 0; i < 10; i++) await leader.append('reads', 0, buildRecordBatch([{ key: null, value: `v${i}` }]), acks(-1));
  await cluster.converged();
  const term = cluster.node(leaderId).node.leader().term;

  // A follower serves a v11+ consumer exactly what the leader serves (its applied, committed log).
  const fromLeader = await leader.read('reads', 0, 0, 1 << 20, v11(''));
  const fromFollower = await follower.read('reads', 0, 0, 1 << 20, v11(''));
  t.deepEqual(values(fromFollower.records), values(fromLeader.records));
  t.is(values(fromFollower.records).length, 10);
  t.is(fromFollower.highWatermark, 10);
  t.is(fromFollower.preferredReadReplica, undefined);
  t.true(follower.readMetrics().followerBytes >= fromFollower.bytes && fromFollower.bytes > 0);
  // Past its local end: nothing yet (the long-poll waits), not OFFSET_OUT_OF_RANGE (which resets consumers).
  const ahead = await follower.read('reads', 0, 12, 1 << 20, v11(''));
  t.is(ahead.bytes, 0);
  t.is(ahead.highWatermark, 10);
  // The leader knows the log end: past it is out of range there.
  t.is(await codeOf(() => leader.read('reads', 0, 11, 1 << 20, v11(''))), ErrorCode.OFFSET_OUT_OF_RANGE);
  // Older Fetch versions (no client metadata) are the leader's, as in Kafka.
  t.is(await codeOf(() => follower.read('reads', 0, 0, 1 << 20, { isolationLevel: 0 })), ErrorCode.NOT_LEADER_OR_FOLLOWER);
  t.is((await leader.read('reads', 0, 0, 1 << 20, { isolationLevel: 0 })).bytes, fromLeader.bytes);

  // KIP-320: the epoch is the Raft term on every node.
  t.is(await codeOf(() => follower.read('reads', 0, 0, 1 << 20, v11('', term))), ErrorCode.NONE);
  t.is(await codeOf(() => follower.read('reads', 0, 0, 1 << 20, v11('', term - 1))), ErrorCode.FENCED_LEADER_EPOCH);
  t.is(await codeOf(() => leader.read('reads', 0, 0, 1 << 20, v11('', term + 1))), ErrorCode.UNKNOWN_LEADER_EPOCH);

  // KIP-392: the harness puts node N in rack-N.
  const redirect = await leader.read('reads', 0, 0, 1 << 20, v11(`rack-${f2}`));
  t.is(redirect.preferredReadReplica, f2);
  t.is(redirect.bytes, 0);
  t.is(leader.readMetrics().redirects, 1);
  t.is((await leader.read('reads', 0, 0, 1 << 20, v11(`rack-${leaderId}`))).preferredReadReplica, undefined, 'own rack: read here');
  t.is((await leader.read('reads', 0, 0, 1 << 20, v11('elsewhere'))).preferredReadReplica, undefined, 'no member in that rack');
  // A follower never redirects: that could bounce a client around.
  t.is((await follower.read('reads', 0, 0, 1 << 20, v11(`rack-${f2}`))).preferredReadReplica, undefined);

  // A stopped follower is not chosen once the leader stops hearing from it (an election timeout: 300-600 ms).
  await cluster.stopNode(f2);
  const choice = await waitFor(() => {
    const r = cluster.node(leaderId).node.replicas();
    return r !== null && r.voters.find((v) => v.nodeId === f2)?.active === false ? true : undefined;
  }, 5000, 'the leader notices the stopped follower');
  t.true(choice);
  t.is((await leader.read('reads', 0, 0, 1 << 20, v11(`rack-${f2}`))).preferredReadReplica, undefined);

  // A follower shutting down refuses reads so its consumers move on.
  t.true(await follower.handOffLeadership(1000));
  t.is(await codeOf(() => follower.read('reads', 0, 0, 1 << 20, v11(''))), ErrorCode.NOT_LEADER_OR_FOLLOWER);
});

test('kafkajs with a rackId consumes from the follower in its rack, and keeps up as records arrive', async (t) => {
  const cluster = await TestCluster.start(IDS);
  const leaderId = await cluster.leader();
  const target = IDS.find((id) => id !== leaderId)!;
  const kafka = new Kafka({ clientId: 'rack-test', brokers: cluster.brokers(), logLevel: logLevel.NOTHING, retry: { initialRetryTime: 50, retries: 20 } });
  const admin = kafka.admin();
  const producer = kafka.producer();
  const consumer = kafka.consumer({ groupId: 'near', rackId: `rack-${target}`, maxWaitTimeInMs: 200, retry: { initialRetryTime: 50, retries: 30 } });
  t.teardown(async () => {
    await consumer.disconnect().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
    await cluster.stop();
  });
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: 'near', numPartitions: 3 }], waitForLeaders: true });
  await producer.connect();
  const sent: string[] = [];
  const send = async (from: number, count: number): Promise<void> => {
    const messages = Array.from({ length: count }, (_, i) => ({ key: `k${(from + i) % 7}`, value: `m${from + i}` }));
    sent.push(...messages.map((m) => m.value));
    await producer.send({ topic: 'near', acks: -1, messages });
  };
  await send(0, 300);

  const seen: string[] = [];
  const byPartition = new Map<number, number[]>();
  await consumer.connect();
  await consumer.subscribe({ topic: 'near', fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      seen.push(message.value!.toString());
      const offsets = byPartition.get(partition) ?? [];
      offsets.push(Number(message.offset));
      byPartition.set(partition, offsets);
    },
  });
  await waitFor(() => (seen.length >= 300 ? true : undefined), 20_000, `300 records consumed (have ${seen.length})`);
  // Records produced now reach the consumer through the follower's long-poll, woken when it applies them.
  await send(300, 200);
  await waitFor(() => (seen.length >= 500 ? true : undefined), 20_000, `500 records consumed (have ${seen.length})`);

  t.deepEqual([...seen].sort(), [...sent].sort(), 'every record exactly once');
  for (const [p, offsets] of byPartition) t.deepEqual(offsets, offsets.map((_, i) => i), `partition ${p} in order from 0`);
  const near = cluster.node(target).backend.readMetrics();
  const lead = cluster.node(leaderId).backend.readMetrics();
  t.true(lead.redirects >= 1, 'the leader pointed the consumer to its rack');
  t.true(near.followerBytes > 0, 'the follower in the consumer\'s rack served the records');
  t.is(lead.leaderBytes, 0, 'the leader served no records to this consumer');
});

test('over the wire: a leader long-poll for a rack-matched consumer answers at once with preferred_read_replica; a follower long-poll wakes when it applies', async (t) => {
  const cluster = await TestCluster.start(IDS);
  const h = await openHarness();
  t.teardown(async () => {
    await h.close();
    await cluster.stop();
  });
  const leaderId = await cluster.leader();
  const leader = cluster.node(leaderId).backend;
  const followerId = IDS.find((id) => id !== leaderId)!;
  await leader.createTopic({ name: 'poll', numPartitions: 1, replicationFactor: -1, configs: {} }, false);
  await leader.append('poll', 0, buildRecordBatch([{ key: null, value: 'first' }]), acks(-1));
  await cluster.converged();
  const term = cluster.node(leaderId).node.leader().term;
  const request = (fetchOffset: number, rackId: string, currentLeaderEpoch = term): FetchRequest => ({
    clusterId: null, replicaId: -1, replicaState: { replicaId: -1, replicaEpoch: -1n }, maxWaitMs: 20_000, minBytes: 1,
    maxBytes: 1 << 20, isolationLevel: 0, sessionId: 0, sessionEpoch: -1, forgottenTopicsData: [], rackId,
    topics: [{ topic: 'poll', topicId: Buffer.alloc(16), partitions: [{ partition: 0, currentLeaderEpoch, fetchOffset: BigInt(fetchOffset), lastFetchedEpoch: -1, logStartOffset: -1n, partitionMaxBytes: 1 << 20, replicaDirectoryId: Buffer.alloc(16) }] }],
  });
  const started = Date.now();
  // Past the end with a 20 s wait: only the redirect can answer this before the wait is over.
  const redirected = await roundTrip(fetchHandler, h, 12, request(1, `rack-${followerId}`), { backend: leader });
  t.true(Date.now() - started < 10_000, 'answered before max_wait_ms');
  const p = redirected.responses[0]!.partitions[0]!;
  t.is(p.errorCode, ErrorCode.NONE);
  t.is(p.preferredReadReplica, followerId);
  t.is(recordBytes(p.records), 0);

  // The follower holds the wait until the leader's next append is applied there.
  const polling = roundTrip(fetchHandler, h, 12, request(1, `rack-${followerId}`), { backend: cluster.node(followerId).backend });
  await new Promise((r) => setTimeout(r, 200));
  await leader.append('poll', 0, buildRecordBatch([{ key: null, value: 'second' }]), acks(-1));
  const woken = (await polling).responses[0]!.partitions[0]!;
  t.is(woken.errorCode, ErrorCode.NONE);
  t.deepEqual(valuesOf(woken.records), ['second']);
  t.is(woken.highWatermark, 2n);

  // A stale epoch is refused per partition and names the current leader (v12+ current_leader).
  const fenced = (await roundTrip(fetchHandler, h, 12, request(0, '', term - 1), { backend: cluster.node(followerId).backend })).responses[0]!.partitions[0]!;
  t.is(fenced.errorCode, ErrorCode.FENCED_LEADER_EPOCH);
  t.deepEqual(fenced.currentLeader, { leaderId, leaderEpoch: term });
  // Fetch v10 carries no client metadata: a follower sends it to the leader.
  const old = (await roundTrip(fetchHandler, h, 10, request(0, ''), { backend: cluster.node(followerId).backend })).responses[0]!.partitions[0]!;
  t.is(old.errorCode, ErrorCode.NOT_LEADER_OR_FOLLOWER);
});

test('Metadata\'s ISR is the voters the leader heard from recently: a stopped node leaves it and returns after a restart', async (t) => {
  const cluster = await TestCluster.start(IDS);
  t.teardown(() => cluster.stop());
  const leaderId = await cluster.leader();
  const leader = cluster.node(leaderId).backend;
  await leader.createTopic({ name: 'isr', numPartitions: 1, replicationFactor: -1, configs: {} }, false);
  t.deepEqual(leader.topic('isr')!.partitions[0]!.isr, IDS);
  // Steady: sampled for five election timeouts, it never flickers (CheckQuorum rounds must not show).
  const sizes = new Set<number>();
  for (let i = 0; i < 150; i++) {
    sizes.add(leader.topic('isr')!.partitions[0]!.isr.length);
    await new Promise((r) => setTimeout(r, 10));
  }
  t.deepEqual([...sizes], [3]);
  const down = IDS.find((id) => id !== leaderId)!;
  await cluster.stopNode(down);
  const shrunk = await waitFor(() => {
    const isr = leader.topic('isr')!.partitions[0]!.isr;
    return isr.length === 2 ? isr : undefined;
  }, 5000, 'the ISR without the stopped node');
  t.deepEqual(shrunk, IDS.filter((id) => id !== down));
  t.deepEqual(leader.topic('isr')!.partitions[0]!.replicas, IDS, 'replicas stay every voter');
  await cluster.startNode(down);
  await waitFor(() => (leader.topic('isr')!.partitions[0]!.isr.length === 3 ? true : undefined), 10_000, 'the ISR with the restarted node');
  t.deepEqual(leader.topic('isr')!.partitions[0]!.isr, IDS);
});

test('a follower whose local log cannot be read sends the consumer to the leader', async (t) => {
  const cluster = await TestCluster.start(IDS);
  t.teardown(() => cluster.stop());
  const leaderId = await cluster.leader();
  const leader = cluster.node(leaderId).backend;
  const followerId = IDS.find((id) => id !== leaderId)!;
  await leader.createTopic({ name: 'gone', numPartitions: 1, replicationFactor: -1, configs: {} }, false);
  await leader.append('gone', 0, buildRecordBatch([{ key: null, value: 'x' }]), acks(-1));
  await cluster.converged();
  // What a snapshot installation (or a failed disk) leaves for a moment: the partition log is closed.
  await cluster.node(followerId).fsm.topics.partition('gone', 0).close();
  t.is(await codeOf(() => cluster.node(followerId).backend.read('gone', 0, 0, 1 << 20, v11(''))), ErrorCode.NOT_LEADER_OR_FOLLOWER);
  t.is((await leader.read('gone', 0, 0, 1 << 20, v11(''))).bytes > 0, true);
});

// Default kafkajs retry settings on purpose: how fast it gives up on a dead follower is its retry budget.
test('kafkajs reading from the follower in its rack carries on through the leader when that follower goes away', async (t) => {
  const cluster = await TestCluster.start(IDS);
  const leaderId = await cluster.leader();
  const target = IDS.find((id) => id !== leaderId)!;
  const kafka = new Kafka({ clientId: 'rack-loss', brokers: cluster.brokers(), logLevel: process.env.KJS_LOG ? Number(process.env.KJS_LOG) : logLevel.NOTHING });
  const producer = kafka.producer();
  const consumer = kafka.consumer({ groupId: 'near-loss', rackId: `rack-${target}`, maxWaitTimeInMs: 200 });
  t.teardown(async () => {
    await consumer.disconnect().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
    await cluster.stop();
  });
  await producer.connect();
  const send = async (from: number, count: number): Promise<void> => {
    await producer.send({ topic: 'near-loss', acks: -1, messages: Array.from({ length: count }, (_, i) => ({ value: `m${from + i}` })) });
  };
  await send(0, 100);
  const seen = new Set<string>();
  await consumer.connect();
  await consumer.subscribe({ topic: 'near-loss', fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void seen.add(message.value!.toString()) });
  await waitFor(() => (seen.size >= 100 ? true : undefined), 20_000, `100 records consumed (have ${seen.size})`);
  t.true(cluster.node(target).backend.readMetrics().followerBytes > 0, 'read from the follower first');
  await cluster.stopNode(target);
  const stoppedAt = Date.now();
  await send(100, 100);
  await waitFor(() => (seen.size >= 200 ? true : undefined), 60_000, `200 records consumed after the follower left (have ${seen.size})`);
  t.log(`recovered after ${Date.now() - stoppedAt} ms`);
  t.is(seen.size, 200);
  // kafkajs retries the dead follower until its retry budget is spent, then restarts the consumer; the leader
  // no longer points it there (it stopped hearing from that node) and serves it itself.
  t.true(cluster.node(leaderId).backend.readMetrics().leaderBytes > 0, 'the leader served the rest');
});
