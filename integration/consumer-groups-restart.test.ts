// Committed group offsets survive a broker restart, graceful (SIGTERM) or not (kill -9 right after the commit
// was acknowledged): a group restarted against the same data directory resumes exactly at its committed offsets.
import test from 'ava';
import type { Consumer } from 'kafkajs';
import { startBroker, type BrokerProcess } from './helpers/broker.ts';
import {
  createTopic, DeliveryLedger, disconnectQuietly, kafkaClient, loggedErrors, produceSequence, sleep, waitUntil, withTimeout,
} from './helpers/groups.ts';
import { spawnMember, type MemberProcess } from './helpers/member-process.ts';

const PARTITIONS = 3;
const TOTAL = 3_000;
const PER_PARTITION = TOTAL / PARTITIONS;
/** Records produced after the restart (the log continues behind the committed offsets). */
const AFTER_RESTART = 30;
/** Where the group commits before the restart, by partition: inside, at the very start, and at the end. */
const COMMIT_AT = [137, 0, PER_PARTITION];
/** How long the restarted consumer keeps listening after the expected records, to catch any extra one (ms). */
const QUIET_MS = 1_000;
const BROKER_ARGS = ['--group-min-session-timeout-ms', '1000'];
/** A graceful stop with clients connected takes well under the broker's shutdownTimeoutMs (30 s) (ms). */
const STOP_WITH_CLIENTS_MS = 5_000;

interface CommitReport {
  committed: number[];
  generationId: number;
  received: number;
}

/** group-member.ts in commit mode: reads TOTAL records, commits COMMIT_AT, reports once acknowledged, waits. */
function startCommittingMember(bootstrap: string, group: string, topic: string): { member: MemberProcess; committed: Promise<CommitReport> } {
  let done!: (r: CommitReport) => void;
  let failed!: (err: Error) => void;
  const committed = new Promise<CommitReport>((ok, fail) => ((done = ok), (failed = fail)));
  const member = spawnMember(['commit', bootstrap, group, topic, String(TOTAL), JSON.stringify(COMMIT_AT)], (report) => {
    if (typeof report.error === 'string') failed(new Error(`member: ${report.error}\n${member.stderr()}`));
    else done(report as unknown as CommitReport);
  });
  void member.exited.then((code) => failed(new Error(`member exited with ${code} before committing\n${member.stderr()}`)));
  return { member, committed: withTimeout(committed, 60_000, 'the member committing') };
}

function groupConsumer(bootstrap: string, clientId: string, group: string): Consumer {
  return kafkaClient(bootstrap, clientId).consumer({ groupId: group, sessionTimeout: 6_000, heartbeatInterval: 300, maxWaitTimeInMs: 200 });
}

for (const how of ['SIGTERM', 'SIGKILL'] as const) {
  test(`committed offsets survive a broker restart (${how})`, async (t) => {
    const topic = `cg-restart-${how.toLowerCase()}`;
    const group = `${topic}-group`;
    const startedMs = Date.now();
    const b1 = await startBroker({ args: BROKER_ARGS });
    let b2: BrokerProcess | undefined;
    let member: MemberProcess | undefined;
    let after: Consumer | undefined;
    try {
      // ---- before: a member reads everything, then commits COMMIT_AT as a member of the group ----
      const kafka1 = kafkaClient(b1.bootstrap, 'cg-restart-setup');
      const admin1 = kafka1.admin();
      const producer1 = kafka1.producer();
      try {
        await admin1.connect();
        await createTopic(admin1, topic, PARTITIONS);
        await producer1.connect();
        await produceSequence(producer1, topic, PARTITIONS, 0, TOTAL);
      } finally {
        await disconnectQuietly(producer1, admin1);
      }
      // The member runs in its own process so that, for kill -9, it dies together with the broker.
      const started = startCommittingMember(b1.bootstrap, group, topic);
      member = started.member;
      const committed = await started.committed;
      t.deepEqual(committed.committed, COMMIT_AT);
      t.true(committed.generationId >= 1, 'committed as a member of a generation');

      // ---- the restart ----
      const restartMs = Date.now();
      if (how === 'SIGKILL') {
        await b1.kill(); // at once: nothing after the acknowledgement may be needed to keep the commit
        await member.kill();
      } else {
        // With the member still connected and sending (as a real deployment has): its connection must not hold
        // the shutdown until shutdownTimeoutMs.
        t.is(await b1.stop(), 0);
        t.true(Date.now() - restartMs < STOP_WITH_CLIENTS_MS, `SIGTERM took ${Date.now() - restartMs} ms with a client connected`);
        await member.kill();
      }
      b2 = await startBroker({ dataDir: b1.dataDir, port: b1.port, args: BROKER_ARGS });
      const restartedMs = Date.now() - restartMs;

      // ---- after: the broker still has the offsets, and a new member resumes exactly there ----
      const kafka2 = kafkaClient(b2.bootstrap, 'cg-restart-check');
      const admin2 = kafka2.admin();
      const producer2 = kafka2.producer();
      try {
        await admin2.connect();
        const [stored] = await admin2.fetchOffsets({ groupId: group, topics: [topic] });
        t.deepEqual(stored!.partitions.map((p) => [p.partition, Number(p.offset)]).sort((a, b) => a[0]! - b[0]!),
          COMMIT_AT.map((o, p) => [p, o]));

        const resumeMs = Date.now();
        const resumed = new DeliveryLedger(topic, PARTITIONS, TOTAL + AFTER_RESTART);
        for (const [p, o] of COMMIT_AT.entries()) resumed.committed.set(p, o); // anything below is a violation
        const firstOffsets = new Map<number, number>();
        after = groupConsumer(b2.bootstrap, 'cg-restart-after', group);
        after.on(after.events.COMMIT_OFFSETS, (e) => resumed.commit('after', e));
        await after.connect();
        // fromBeginning: if the offsets were lost, the member would start at 0 and the check below fails.
        await after.subscribe({ topic, fromBeginning: true });
        await after.run({
          eachMessage: async ({ partition, message }) => {
            const offset = Number(message.offset);
            if (!firstOffsets.has(partition)) firstOffsets.set(partition, offset);
            resumed.deliver('after', partition, offset, message.value!.toString());
          },
        });
        await producer2.connect();
        await produceSequence(producer2, topic, PARTITIONS, TOTAL, TOTAL + AFTER_RESTART);

        const expected = COMMIT_AT.reduce((n, o) => n + PER_PARTITION - o, 0) + AFTER_RESTART;
        await waitUntil(`${expected} records after the committed offsets`, () => resumed.unique >= expected, undefined, () => resumed.summary());
        await sleep(QUIET_MS);
        t.deepEqual(resumed.errors, [], resumed.summary());
        t.is(resumed.unique, expected);
        t.is(resumed.duplicates, 0);
        // The first record of each partition is the committed offset (the partition at its end resumes with
        // the first record produced after the restart).
        t.deepEqual([...firstOffsets.entries()].sort((a, b) => a[0] - b[0]), COMMIT_AT.map((o, p) => [p, o]));
        t.deepEqual([...loggedErrors(b1.output()), ...loggedErrors(b2.output())], [], 'the brokers logged no errors');
        t.log(`${how}: broker back in ${restartedMs} ms; resumed at ${COMMIT_AT.join(', ')} and read ${resumed.unique} records ` +
          `(duplicates ${resumed.duplicates}) in ${Date.now() - resumeMs} ms; test ${Date.now() - startedMs} ms`);
      } finally {
        await disconnectQuietly(producer2, admin2);
      }
    } finally {
      await member?.kill();
      await disconnectQuietly(after);
      await b2?.stop();
      await b1.kill();
      b1.cleanup();
    }
  });
}

test('a running kafkajs member rides through a graceful broker restart and goes on from its committed offsets', async (t) => {
  const topic = 'cg-restart-live';
  const group = `${topic}-group`;
  const startedMs = Date.now();
  const b1 = await startBroker({ args: BROKER_ARGS });
  let b2: BrokerProcess | undefined;
  let member: Consumer | undefined;
  const ledger = new DeliveryLedger(topic, PARTITIONS, 2 * TOTAL);
  const joins: number[] = [];
  try {
    const setup = kafkaClient(b1.bootstrap, 'cg-restart-live-setup');
    const admin = setup.admin();
    const producer1 = setup.producer();
    try {
      await admin.connect();
      await createTopic(admin, topic, PARTITIONS);
      await producer1.connect();
      await produceSequence(producer1, topic, PARTITIONS, 0, TOTAL);
    } finally {
      await disconnectQuietly(producer1, admin);
    }
    member = groupConsumer(b1.bootstrap, 'cg-restart-live-member', group);
    member.on(member.events.COMMIT_OFFSETS, (e) => ledger.commit('member', e));
    member.on(member.events.GROUP_JOIN, () => joins.push(Date.now()));
    await member.connect();
    await member.subscribe({ topic, fromBeginning: true });
    await member.run({
      autoCommitInterval: 100,
      eachMessage: async ({ partition, message }) => ledger.deliver('member', partition, Number(message.offset), message.value!.toString()),
    });
    await waitUntil('the first half read and committed', () => ledger.unique === TOTAL && ledger.allCommitted(() => PER_PARTITION),
      undefined, () => ledger.summary());

    const stopMs = Date.now();
    t.is(await b1.stop(), 0);
    const stoppedInMs = Date.now() - stopMs;
    t.true(stoppedInMs < STOP_WITH_CLIENTS_MS, `SIGTERM took ${stoppedInMs} ms with a client connected`);
    b2 = await startBroker({ dataDir: b1.dataDir, port: b1.port, args: BROKER_ARGS });
    const producer2 = kafkaClient(b2.bootstrap, 'cg-restart-live-producer').producer();
    try {
      await producer2.connect();
      await produceSequence(producer2, topic, PARTITIONS, TOTAL, 2 * TOTAL);
    } finally {
      await disconnectQuietly(producer2);
    }
    // The member finds the broker again by itself (kafkajs restarts a consumer after connection errors), joins
    // the group anew (the broker forgot its member id) and starts from the committed offsets.
    await waitUntil('the second half read and committed', () => ledger.unique === 2 * TOTAL && ledger.allCommitted(() => 2 * PER_PARTITION),
      60_000, () => ledger.summary());
    t.deepEqual(ledger.errors, [], ledger.summary());
    t.deepEqual(ledger.missing(), []);
    t.true(joins.some((at) => at > stopMs), 'the member joined again after the restart');
    t.deepEqual([...loggedErrors(b1.output()), ...loggedErrors(b2.output())], [], 'the brokers logged no errors');
    t.log(`stopped in ${stoppedInMs} ms with the member connected; after the restart it read the rest with ${ledger.duplicates} ` +
      `duplicates; test ${Date.now() - startedMs} ms`);
  } finally {
    await disconnectQuietly(member);
    await b2?.stop();
    await b1.kill();
    b1.cleanup();
  }
});
