// kafkajs 2.2.4 consumer groups against a real broker process, records streaming in while membership changes:
// a member leaves and a new one joins (LeaveGroup, JoinGroup), and a member is killed (session expiry). Every
// record must arrive, none may arrive again once its offset was committed, and the rebalances must be visible
// to the clients.
import test from 'ava';
import type { Producer } from 'kafkajs';
import { startBroker, type BrokerProcess } from './helpers/broker.ts';
import {
  createTopic, disconnectQuietly, kafkaClient, loggedErrors, partitionEnd, produceSequence, waitUntil, withTimeout,
} from './helpers/groups.ts';
import { GroupRun } from './helpers/kafkajs-group.ts';
import { spawnMember, type MemberProcess } from './helpers/member-process.ts';

/** Session timeout of the members (ms): rebalances after a leave or a join must take less. */
const SESSION_TIMEOUT_MS = 10_000;
/** Records handled between two heartbeat/commit checks inside a batch, so rebalances land mid-batch. */
const RECORDS_PER_CHECK = 500;

let broker: BrokerProcess;

test.before(async () => {
  // Short sessions make rebalances quick; the broker's default minimum (6 s) would refuse them.
  broker = await startBroker({ args: ['--group-min-session-timeout-ms', '1000'] });
});

test.after.always(async () => {
  if (broker) {
    await broker.stop();
    broker.cleanup();
  }
});

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((ok) => (resolve = ok));
  return { promise, resolve };
}

/** Produces [from, to) of the sequence after `gate` opens; failures surface where the promise is awaited. */
function produceAfter(producer: Producer, topic: string, partitions: number,
  phases: { gate: Promise<void>; from: number; to: number }[]): Promise<void> {
  const producing = (async () => {
    for (const phase of phases) {
      await phase.gate;
      await produceSequence(producer, topic, partitions, phase.from, phase.to);
    }
  })();
  producing.catch(() => undefined); // awaited by the test; meanwhile a failure must not be an unhandled rejection
  return producing;
}

test.serial('three members, the leader leaves and a new member joins mid-stream: nothing lost, nothing redelivered after commit', async (t) => {
  const topic = 'cg-stream';
  const partitions = 6;
  const total = 60_000;
  /** The member leaves once this many distinct records were consumed; the new one joins at the second mark. */
  const leaveAtConsumed = 6_000;
  const joinAtConsumed = 26_000;

  const startedMs = Date.now();
  const kafka = kafkaClient(broker.bootstrap, 'cg-stream-admin');
  const admin = kafka.admin();
  const producer = kafka.producer();
  const run = new GroupRun({ bootstrap: broker.bootstrap, group: 'cg-stream-group', topic, partitions, total,
    sessionTimeoutMs: SESSION_TIMEOUT_MS, recordsPerCheck: RECORDS_PER_CHECK });
  const ledger = run.ledger;
  const diagnostics = () => run.diagnostics();
  try {
    await admin.connect();
    await createTopic(admin, topic, partitions);
    await producer.connect();

    const first = ['member-1', 'member-2', 'member-3'];
    await Promise.all(first.map((who) => run.startMember(who)));
    await run.waitForSplit(first, startedMs);
    const formedMs = Date.now();
    // The leader leaves (the harder case: the group must elect another one), and comes back as a new member.
    const leaver = run.leaderOf(first);
    if (leaver === undefined) throw new Error(`no member was told it leads the group\n${diagnostics()}`);
    const stayers = first.filter((who) => who !== leaver);
    const newcomer = `${leaver}-again`;

    // The first third streams in while the leader leaves; the rest only once the group has settled again, so
    // both rebalances happen with records still coming.
    const left = deferred();
    const joined = deferred();
    const producing = produceAfter(producer, topic, partitions, [
      { gate: Promise.resolve(), from: 0, to: 20_000 },
      { gate: left.promise, from: 20_000, to: 40_000 },
      { gate: joined.promise, from: 40_000, to: total },
    ]);

    await waitUntil(`${leaveAtConsumed} records consumed`, () => ledger.unique >= leaveAtConsumed, undefined, diagnostics);
    const leftAtConsumed = ledger.unique;
    const leaveMs = Date.now();
    await withTimeout(run.consumers.get(leaver)!.disconnect(), 20_000, `${leaver} leaving`);
    // Within the session timeout: the LeaveGroup itself must start the rebalance, not the session expiring.
    await run.waitForSplit(stayers, leaveMs, SESSION_TIMEOUT_MS);
    const leaveRebalanceMs = Date.now() - leaveMs;
    t.truthy(run.leaderOf(stayers), 'a remaining member leads the group');
    left.resolve();

    await waitUntil(`${joinAtConsumed} records consumed`, () => ledger.unique >= joinAtConsumed, undefined, diagnostics);
    const joinedAtConsumed = ledger.unique;
    const joinMs = Date.now();
    await run.startMember(newcomer);
    await run.waitForSplit([...stayers, newcomer], joinMs, SESSION_TIMEOUT_MS);
    const joinRebalanceMs = Date.now() - joinMs;
    joined.resolve();

    await withTimeout(producing, 60_000, 'producing');
    await waitUntil('every record consumed and committed',
      () => ledger.unique === total && ledger.allCommitted((p) => partitionEnd(total, partitions, p)), 60_000, diagnostics);
    const doneMs = Date.now();

    t.deepEqual(ledger.errors, [], diagnostics());
    t.deepEqual(ledger.missing(), []);
    t.is(ledger.unique, total);
    // Leave and join each made the remaining members join again: at least 3 + 2 + 3 joins, with at least
    // three generations on the commits and four member ids.
    t.true(run.joins.length >= 8, diagnostics());
    t.true(ledger.commitGenerations.size >= 3, `generations ${[...ledger.commitGenerations].join(',')}`);
    t.true(new Set(run.joins.map((j) => j.memberId)).size >= 4, 'every member had its own member id');

    // The broker's view agrees with what the clients were told.
    const [fetched] = await admin.fetchOffsets({ groupId: 'cg-stream-group', topics: [topic] });
    t.deepEqual(fetched!.partitions.map((p) => [p.partition, Number(p.offset)]).sort((a, b) => a[0]! - b[0]!),
      Array.from({ length: partitions }, (_, p) => [p, partitionEnd(total, partitions, p)]));
    t.deepEqual(loggedErrors(broker.output()), [], 'the broker logged no errors');

    t.log(`group formed in ${formedMs - startedMs} ms; ${leaver} (the leader) left at ${leftAtConsumed} consumed, rebalanced in ` +
      `${leaveRebalanceMs} ms; ${newcomer} joined at ${joinedAtConsumed} consumed, rebalanced in ${joinRebalanceMs} ms; ` +
      `all consumed ${doneMs - joinMs} ms later`);
    t.log(`joins ${run.joins.length}, rebalancing events ${run.rebalancingEvents}, commit generations ` +
      `${[...ledger.commitGenerations].sort((a, b) => a - b).join(',')}; duplicates (redelivered before their commit) ` +
      `${ledger.duplicates}; commits ${ledger.commits}; ${Date.now() - startedMs} ms`);
  } finally {
    await disconnectQuietly(...run.consumers.values(), producer, admin);
  }
});

test.serial('a member killed mid-stream (no leave, no last commit): the others take over when its session expires', async (t) => {
  const topic = 'cg-crash';
  const group = 'cg-crash-group';
  const partitions = 4;
  const total = 20_000;
  /** The killed member's session timeout (ms): its partitions move on only once it expires. */
  const crashSessionMs = 3_000;
  /** The member is killed once it has received this many records. */
  const killAtReceived = 1_500;

  const startedMs = Date.now();
  const kafka = kafkaClient(broker.bootstrap, 'cg-crash-admin');
  const admin = kafka.admin();
  const producer = kafka.producer();
  const run = new GroupRun({ bootstrap: broker.bootstrap, group, topic, partitions, total, sessionTimeoutMs: SESSION_TIMEOUT_MS,
    recordsPerCheck: RECORDS_PER_CHECK });
  const ledger = run.ledger;
  let victim: MemberProcess | undefined;
  let victimReceived = 0;
  const victimErrors: string[] = [];
  try {
    await admin.connect();
    await createTopic(admin, topic, partitions);
    await producer.connect();

    // The victim runs in its own process, so that it can really die: no LeaveGroup, no final commit. It reports
    // each record before its offset can be committed; a commit acknowledged just before the kill may go
    // unreported, which leaves the ledger's committed offsets behind the broker's (a weaker check for that
    // moment, never a false failure).
    victim = spawnMember(['stream', broker.bootstrap, group, topic, String(crashSessionMs)], (report) => {
      if (Array.isArray(report.r)) {
        const [p, o, v] = report.r as [number, number, string];
        victimReceived++;
        ledger.deliver('victim', p, o, v);
      } else if (Array.isArray(report.c)) {
        const [generation, entries] = report.c as [number, [number, number][]];
        ledger.commitOffsets('victim', generation, entries);
      } else if (Array.isArray(report.join)) {
        run.recordJoin('victim', '', false, report.join as number[]);
      } else {
        victimErrors.push(JSON.stringify(report));
      }
    });
    await run.startMember('survivor');
    await run.waitForSplit(['survivor', 'victim'], startedMs);

    const killed = deferred();
    const producing = produceAfter(producer, topic, partitions, [
      { gate: Promise.resolve(), from: 0, to: total / 2 },
      { gate: killed.promise, from: total / 2, to: total },
    ]);
    await waitUntil(`the victim receiving ${killAtReceived} records`, () => victimReceived >= killAtReceived, undefined, () => run.diagnostics());
    const killMs = Date.now();
    await victim.kill();
    const uncommittedAtKill = ledger.unique - [...ledger.committed.values()].reduce((n, o) => n + o, 0);
    await run.waitForSplit(['survivor'], killMs, crashSessionMs + SESSION_TIMEOUT_MS);
    const takeoverMs = Date.now() - killMs;
    killed.resolve();

    await withTimeout(producing, 60_000, 'producing');
    await waitUntil('every record consumed and committed',
      () => ledger.unique === total && ledger.allCommitted((p) => partitionEnd(total, partitions, p)), 60_000, () => run.diagnostics());

    t.deepEqual(victimErrors, []);
    t.deepEqual(ledger.errors, [], run.diagnostics());
    t.deepEqual(ledger.missing(), []);
    t.is(ledger.unique, total);
    t.deepEqual(loggedErrors(broker.output()), [], 'the broker logged no errors');
    t.log(`victim killed after ${victimReceived} records (about ${uncommittedAtKill} received but not committed); survivor took over ` +
      `all partitions ${takeoverMs} ms later (session ${crashSessionMs} ms); duplicates ${ledger.duplicates}; ` +
      `commit generations ${[...ledger.commitGenerations].sort((a, b) => a - b).join(',')}; ${Date.now() - startedMs} ms`);
  } finally {
    await victim?.kill();
    await disconnectQuietly(...run.consumers.values(), producer, admin);
  }
});
