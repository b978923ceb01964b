// kafkajs 2.2.4 (admin + producer) against a real broker process.
import test from 'ava';
import { Kafka, logLevel, CompressionTypes } from 'kafkajs';
import { startBroker, type BrokerProcess } from './helpers/broker.ts';

let broker: BrokerProcess;
let kafka: Kafka;

test.before(async () => {
  broker = await startBroker();
  kafka = new Kafka({ clientId: 'it-kafkajs', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 3 } });
});

test.after.always(async () => {
  if (broker) {
    await broker.stop();
    broker.cleanup();
  }
});

test('admin creates, describes, lists offsets of and deletes topics', async (t) => {
  const admin = kafka.admin();
  await admin.connect();
  try {
    t.true(await admin.createTopics({ topics: [{ topic: 'adm-a', numPartitions: 3 }, { topic: 'adm-b', numPartitions: 1 }], waitForLeaders: true }));
    // A second create of the same topic is refused (createTopics resolves false when it already exists).
    await t.throwsAsync(admin.createTopics({ topics: [{ topic: 'adm-a', numPartitions: 3 }], validateOnly: false, waitForLeaders: false }).then((created) => {
      if (!created) throw new Error('already exists');
    }));

    const md = await admin.fetchTopicMetadata({ topics: ['adm-a', 'adm-b'] });
    const a = md.topics.find((x) => x.name === 'adm-a')!;
    t.is(a.partitions.length, 3);
    t.deepEqual(a.partitions.map((p) => p.partitionId).sort(), [0, 1, 2]);
    t.true(a.partitions.every((p) => p.leader >= 0));

    const listed = await admin.listTopics();
    t.true(listed.includes('adm-a') && listed.includes('adm-b'));

    const producer = kafka.producer();
    await producer.connect();
    const res = await producer.send({
      topic: 'adm-a',
      acks: -1,
      messages: Array.from({ length: 30 }, (_, i) => ({ key: `k${i}`, value: `v${i}`, partition: i % 3 })),
    });
    t.is(res.length, 3);
    await producer.send({ topic: 'adm-a', compression: CompressionTypes.GZIP, messages: [{ value: 'gz', partition: 0 }] });
    await producer.disconnect();

    const offsets = await admin.fetchTopicOffsets('adm-a');
    const byPartition = new Map(offsets.map((o) => [o.partition, o]));
    t.is(byPartition.get(0)!.high, '11');
    t.is(byPartition.get(1)!.high, '10');
    t.is(byPartition.get(2)!.high, '10');
    t.true(offsets.every((o) => o.low === '0'));

    await admin.deleteTopics({ topics: ['adm-b'] });
    const after = await admin.listTopics();
    t.false(after.includes('adm-b'));
    t.true(after.includes('adm-a'));
  } finally {
    await admin.disconnect();
  }
});

test('admin reports invalid topics with their error', async (t) => {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const err = await t.throwsAsync(admin.createTopics({ topics: [{ topic: 'bad topic name!', numPartitions: 1 }] }));
    t.regex(String((err as any)?.errors?.[0]?.type ?? err?.message), /INVALID_TOPIC_EXCEPTION|invalid/i);
  } finally {
    await admin.disconnect();
  }
});
