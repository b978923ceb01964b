// kafkajs admin calls on a real consumer group (describeGroups, listGroups, fetchOffsets, setOffsets,
// resetOffsets, deleteGroups) against a real broker process: what they report agrees with what the members were
// assigned and committed, and what they change is where the next members start.
import test from 'ava';
import { AssignerProtocol } from 'kafkajs';
import type { Admin, Consumer, KafkaJSDeleteGroupsError } from 'kafkajs';
import { startBroker, type BrokerProcess } from './helpers/broker.ts';
import {
  createTopic, DeliveryLedger, disconnectQuietly, kafkaClient, loggedErrors, partitionEnd, produceSequence, sleep, waitUntil,
} from './helpers/groups.ts';

const TOPIC = 'cg-admin';
const GROUP = 'cg-admin-group';
const PARTITIONS = 3;
const TOTAL = 1_500;
const PER_PARTITION = TOTAL / PARTITIONS;
/** Kafka's error codes the admin calls must report. */
const NON_EMPTY_GROUP = 68;
const GROUP_ID_NOT_FOUND = 69;
/** How long a member keeps listening after the expected records, to catch any extra one (ms). */
const QUIET_MS = 500;

let broker: BrokerProcess;
let admin: Admin;

test.before(async () => {
  broker = await startBroker({ args: ['--group-min-session-timeout-ms', '1000'] });
  const kafka = kafkaClient(broker.bootstrap, 'cg-admin-client');
  admin = kafka.admin();
  await admin.connect();
  await createTopic(admin, TOPIC, PARTITIONS);
  const producer = kafka.producer();
  await producer.connect();
  await produceSequence(producer, TOPIC, PARTITIONS, 0, TOTAL);
  await producer.disconnect();
});

test.after.always(async () => {
  await disconnectQuietly(admin);
  if (broker) {
    await broker.stop();
    broker.cleanup();
  }
});

interface Member {
  consumer: Consumer;
  /** partition -> first offset this member received. */
  first: Map<number, number>;
}

/** A group member feeding `ledger` (its commits too), started and joined. */
async function startMember(clientId: string, ledger: DeliveryLedger): Promise<Member> {
  const consumer = kafkaClient(broker.bootstrap, clientId).consumer({
    groupId: GROUP, sessionTimeout: 6_000, heartbeatInterval: 300, maxWaitTimeInMs: 200,
  });
  const first = new Map<number, number>();
  consumer.on(consumer.events.COMMIT_OFFSETS, (e) => ledger.commit(clientId, e));
  await consumer.connect();
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
  await consumer.run({
    autoCommitInterval: 100,
    eachMessage: async ({ partition, message }) => {
      const offset = Number(message.offset);
      if (!first.has(partition)) first.set(partition, offset);
      ledger.deliver(clientId, partition, offset, message.value!.toString());
    },
  });
  return { consumer, first };
}

async function committedOffsets(): Promise<number[]> {
  const [t] = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] });
  return t!.partitions.sort((a, b) => a.partition - b.partition).map((p) => Number(p.offset));
}

/** One member reads from wherever the group stands to the end; returns where each partition started. */
async function readToEnd(clientId: string, expected: number, ledger: DeliveryLedger): Promise<Map<number, number>> {
  const member = await startMember(clientId, ledger);
  try {
    await waitUntil(`${clientId} reading ${expected} records, committed to the end`,
      () => ledger.unique >= expected && ledger.allCommitted((p) => partitionEnd(TOTAL, PARTITIONS, p)), undefined, () => ledger.summary());
    await sleep(QUIET_MS);
    return member.first;
  } finally {
    await disconnectQuietly(member.consumer);
  }
}

test('admin sees the running group as its members do, and manages its offsets once it is empty', async (t) => {
  const startedMs = Date.now();
  // ---- two members read everything ----
  const ledger = new DeliveryLedger(TOPIC, PARTITIONS, TOTAL);
  const members = [await startMember('cg-admin-a', ledger), await startMember('cg-admin-b', ledger)];
  try {
    await waitUntil('everything read and committed', () => ledger.unique === TOTAL && ledger.allCommitted(() => PER_PARTITION),
      undefined, () => ledger.summary());
    t.deepEqual(ledger.errors, []);

    // describeGroups: Stable, both members, their subscriptions and assignments as the clients sent them.
    const stableDeadline = Date.now() + 20_000;
    let described = (await admin.describeGroups([GROUP])).groups[0]!;
    while ((described.state !== 'Stable' || described.members.length !== 2) && Date.now() < stableDeadline) {
      await sleep(100);
      described = (await admin.describeGroups([GROUP])).groups[0]!;
    }
    t.is(described.state, 'Stable');
    t.is(described.protocolType, 'consumer');
    t.is(described.protocol, 'RoundRobinAssigner');
    t.deepEqual(described.members.map((m) => m.clientId).sort(), ['cg-admin-a', 'cg-admin-b']);
    const assigned = described.members.flatMap((m) => AssignerProtocol.MemberAssignment.decode(m.memberAssignment)!.assignment[TOPIC] ?? []);
    t.deepEqual(assigned.sort(), [0, 1, 2], 'the assignments split the partitions');
    for (const m of described.members) {
      t.deepEqual(AssignerProtocol.MemberMetadata.decode(m.memberMetadata)!.topics, [TOPIC]);
      t.regex(m.clientHost, /127\.0\.0\.1/);
    }

    const listed = (await admin.listGroups()).groups.find((g) => g.groupId === GROUP);
    t.deepEqual(listed, { groupId: GROUP, protocolType: 'consumer' });

    // fetchOffsets agrees with the commits the members were told succeeded.
    t.deepEqual(await committedOffsets(), [0, 1, 2].map((p) => ledger.committed.get(p)));
    t.deepEqual(await committedOffsets(), [PER_PARTITION, PER_PARTITION, PER_PARTITION]);

    // A group with members can be neither deleted nor have its offsets set from outside.
    const refused = await t.throwsAsync<KafkaJSDeleteGroupsError>(admin.deleteGroups([GROUP]));
    t.deepEqual(refused?.groups.map((g) => [g.groupId, g.errorCode]), [[GROUP, NON_EMPTY_GROUP]]);
    await t.throwsAsync(admin.setOffsets({ groupId: GROUP, topic: TOPIC, partitions: [{ partition: 0, offset: '1' }] }),
      { message: /no running instances/ });
  } finally {
    await disconnectQuietly(...members.map((m) => m.consumer));
  }

  // ---- the group is empty now: its offsets stay, and admin may change them ----
  const empty = (await admin.describeGroups([GROUP])).groups[0]!;
  t.is(empty.state, 'Empty');
  t.deepEqual(empty.members, []);
  t.true((await admin.listGroups()).groups.some((g) => g.groupId === GROUP));
  t.deepEqual(await committedOffsets(), [PER_PARTITION, PER_PARTITION, PER_PARTITION]);

  const setTo = [100, 250, 499];
  await admin.setOffsets({ groupId: GROUP, topic: TOPIC, partitions: setTo.map((o, p) => ({ partition: p, offset: String(o) })) });
  t.deepEqual(await committedOffsets(), setTo);
  const afterSet = new DeliveryLedger(TOPIC, PARTITIONS, TOTAL);
  for (const [p, o] of setTo.entries()) afterSet.committed.set(p, o);
  const firstAfterSet = await readToEnd('cg-admin-after-set', setTo.reduce((n, o) => n + PER_PARTITION - o, 0), afterSet);
  t.deepEqual([...firstAfterSet.entries()].sort((a, b) => a[0] - b[0]), setTo.map((o, p) => [p, o]), 'the next member starts at the set offsets');
  t.is(afterSet.duplicates, 0);
  t.deepEqual(afterSet.errors, []);

  await admin.resetOffsets({ groupId: GROUP, topic: TOPIC, earliest: true });
  // kafkajs commits its "earliest" sentinel (-2); the broker keeps a committed offset as the client sent it.
  t.deepEqual(await committedOffsets(), [-2, -2, -2]);
  const afterReset = new DeliveryLedger(TOPIC, PARTITIONS, TOTAL);
  const firstAfterReset = await readToEnd('cg-admin-after-reset', TOTAL, afterReset);
  t.deepEqual([...firstAfterReset.entries()].sort((a, b) => a[0] - b[0]), [[0, 0], [1, 0], [2, 0]], 'reset to earliest: from the start');
  t.is(afterReset.unique, TOTAL);
  t.deepEqual(afterReset.errors, []);

  // ---- deleteGroups: the group and its offsets are gone; a second delete finds nothing ----
  const deleted = await admin.deleteGroups([GROUP]);
  t.deepEqual(deleted.map((d) => [d.groupId, d.errorCode]), [[GROUP, 0]]);
  t.false((await admin.listGroups()).groups.some((g) => g.groupId === GROUP));
  t.deepEqual(await committedOffsets(), [-1, -1, -1]);
  t.is((await admin.describeGroups([GROUP])).groups[0]!.state, 'Dead');
  const again = await t.throwsAsync<KafkaJSDeleteGroupsError>(admin.deleteGroups([GROUP]));
  t.deepEqual(again?.groups.map((g) => g.errorCode), [GROUP_ID_NOT_FOUND]);
  t.deepEqual(loggedErrors(broker.output()), [], 'the broker logged no errors');
  t.log(`admin scenario ${Date.now() - startedMs} ms`);
});
