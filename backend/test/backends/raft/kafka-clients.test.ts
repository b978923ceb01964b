// A real Kafka client (kafkajs) against three in-process cluster nodes: auto-creation through a follower,
// an idempotent producer, a consumer group whose offsets are replicated, and a leader shutdown in between.
// (A leader that dies without a handover leaves kafkajs retrying its dead connection: kafkajs refreshes
// metadata on protocol errors, not on refused connections; librdkafka copes with both.)
import test from 'ava';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { TestCluster, waitFor } from './cluster-harness.ts';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const IDS = [1, 2, 3];

async function consumeUntil(consumer: Consumer, seen: Set<string>, count: number): Promise<void> {
  await waitFor(() => (seen.size >= count ? true : undefined), 20_000, `${count} messages consumed (have ${seen.size})`);
}

test('kafkajs produces and consumes through the cluster, across a leader shutdown', async (t) => {
  const cluster = await TestCluster.start(IDS);
  const leaderId = await cluster.leader();
  const follower = IDS.find((id) => id !== leaderId)!;
  const kafka = new Kafka({
    clientId: 'cluster-test',
    // Bootstrap through a follower only: clients must be told where the leader is.
    brokers: [`127.0.0.1:${cluster.kafkaPorts.get(follower)}`],
    logLevel: process.env.KJS_LOG ? Number(process.env.KJS_LOG) : logLevel.NOTHING,
    retry: { initialRetryTime: 50, retries: 20 },
  });
  const producer = kafka.producer({ idempotent: true, allowAutoTopicCreation: true });
  const consumer = kafka.consumer({ groupId: 'cg', sessionTimeout: 6000, heartbeatInterval: 300, maxWaitTimeInMs: 300, retry: { initialRetryTime: 50, retries: 30 } });
  t.teardown(async () => {
    await consumer.disconnect().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
    await cluster.stop();
  });

  await producer.connect();
  for (let i = 0; i < 5; i++) {
    await producer.send({ topic: 'clicks', acks: -1, messages: Array.from({ length: 10 }, (_, j) => ({ key: `k${j}`, value: `a${i}-${j}` })) });
  }
  t.truthy(cluster.node(leaderId).backend.topic('clicks'), 'auto-created through the follower');

  const seen = new Set<string>();
  await consumer.connect();
  await consumer.subscribe({ topic: 'clicks', fromBeginning: true });
  await consumer.run({ autoCommitInterval: 100, eachMessage: async ({ message }) => void seen.add(message.value!.toString()) });
  await consumeUntil(consumer, seen, 50);
  await consumer.commitOffsets([]); // flushes pending auto-commits
  await waitFor(() => {
    const committed = cluster.node(follower).fsm.offsets.fetch('cg', null);
    return committed.reduce((sum, o) => sum + o.offset, 0) === 50 ? true : undefined;
  }, 10_000, 'the group offsets replicated to a follower');

  // The leader shuts down gracefully: it hands over first, then stops; producer and group find the new leader.
  t.true(await cluster.node(leaderId).backend.handOffLeadership(5000));
  // Still serving for a moment (as main.ts does): heartbeats get NOT_COORDINATOR, fetches NOT_LEADER_OR_FOLLOWER.
  await new Promise((r) => setTimeout(r, 1500));
  await cluster.stopNode(leaderId);
  const next = await cluster.leader();
  t.not(next, leaderId);
  for (let i = 0; i < 3; i++) {
    await producer.send({ topic: 'clicks', acks: -1, messages: Array.from({ length: 10 }, (_, j) => ({ key: `k${j}`, value: `b${i}-${j}` })) });
  }
  await consumeUntil(consumer, seen, 80);
  t.is(seen.size, 80);
  const ends = cluster.node(next).fsm.topics.topic('clicks')!.logs.reduce((sum, l) => sum + l.logEndOffset, 0);
  t.is(ends, 80, 'no batch was written twice');
});
