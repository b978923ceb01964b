// librdkafka's balanced consumer against a real broker process: kcat -G and python3-confluent-kafka. Offsets
// committed by one run are where the next run of the same group starts.
import test from 'ava';
import { join } from 'node:path';
import type { Admin } from 'kafkajs';
import { REPO_ROOT, startBroker, type BrokerProcess } from './helpers/broker.ts';
import { createTopic, disconnectQuietly, kafkaClient, loggedErrors, runProgram } from './helpers/groups.ts';

/** Debian's interpreter: the python3 first on PATH may be a separate build without Debian's modules. */
const PYTHON = '/usr/bin/python3';
const GROUP_SCRIPT = join(REPO_ROOT, 'integration/python/group_consume.py');
/** Per client process (ms): bounded, generous for a loaded 2-core machine. */
const PROCESS_TIMEOUT_MS = 90_000;

let broker: BrokerProcess;

test.before(async () => {
  // The same broker settings as the other group tests: sessions down to 1 s are allowed.
  broker = await startBroker({ args: ['--group-min-session-timeout-ms', '1000'] });
});

test.after.always(async () => {
  if (broker) {
    await broker.stop();
    broker.cleanup();
  }
});

async function withAdmin<T>(work: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafkaClient(broker.bootstrap, 'cg-rdkafka-admin').admin();
  try {
    await admin.connect();
    return await work(admin);
  } finally {
    await disconnectQuietly(admin);
  }
}

/** Committed offsets of `group` on `topic`, by partition (-1: none). */
async function committedOffsets(group: string, topic: string): Promise<Map<number, number>> {
  return withAdmin(async (admin) => {
    const [t] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    return new Map(t!.partitions.map((p) => [p.partition, Number(p.offset)]));
  });
}

async function highWatermarks(topic: string): Promise<Map<number, number>> {
  return withAdmin(async (admin) => new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, Number(o.high)])));
}

// ---- kcat -G ----------------------------------------------------------------------------------------------

/** One `kcat -G` run to the end of every assigned partition; returns [partition, offset, key, value] lines. */
async function kcatGroup(group: string, topic: string): Promise<[number, number, string, string][]> {
  // Without -o: the committed offset, or auto.offset.reset where there is none. (kcat -G with `-o beginning`
  // assigns every partition at its beginning, ignoring committed offsets, so it cannot show resumption.)
  const { stdout } = await runProgram('kcat', ['-b', broker.bootstrap, '-G', group, '-X', 'auto.offset.reset=earliest', '-e', '-q',
    '-f', '%p %o %k %s\n', topic], PROCESS_TIMEOUT_MS);
  return stdout.split('\n').filter((l) => l.length > 0).map((l) => {
    const [p, o, k, v] = l.split(' ');
    return [Number(p), Number(o), k!, v!];
  });
}

function kcatProduce(topic: string, from: number, to: number): Promise<unknown> {
  const lines = Array.from({ length: to - from }, (_, j) => `k${from + j}:v${from + j}`);
  return runProgram('kcat', ['-b', broker.bootstrap, '-P', '-t', topic, '-K:', '-X', 'linger.ms=5'], PROCESS_TIMEOUT_MS, lines.join('\n') + '\n');
}

test('kcat -G consumes everything once; the next run of the group reads only what is new', async (t) => {
  const topic = 'cg-kcat';
  const group = 'cg-kcat-group';
  const first = 3_000;
  const more = 500;
  await withAdmin((admin) => createTopic(admin, topic, 3));
  await kcatProduce(topic, 0, first);

  const startedMs = Date.now();
  const run1 = await kcatGroup(group, topic);
  t.is(run1.length, first);
  t.deepEqual(run1.map((r) => r[3]).sort(), Array.from({ length: first }, (_, i) => `v${i}`).sort());
  t.true(run1.every(([, , k, v]) => k.slice(1) === v.slice(1)), 'keys and values belong together');
  // Each partition was read from its first offset, in order, without gaps.
  const byPartition = new Map<number, number[]>();
  for (const [p, o] of run1) byPartition.set(p, [...(byPartition.get(p) ?? []), o]);
  t.true(byPartition.size > 1, 'keys spread over several partitions');
  for (const offsets of byPartition.values()) t.deepEqual(offsets, offsets.map((_, i) => i));

  // kcat committed what it read on exit: the broker holds the high watermark of every partition.
  const high = await highWatermarks(topic);
  t.deepEqual(await committedOffsets(group, topic), high);

  const run2 = await kcatGroup(group, topic);
  t.deepEqual(run2, [], 'a second run of the same group reads nothing');

  await kcatProduce(topic, first, first + more);
  const run3 = await kcatGroup(group, topic);
  t.deepEqual(run3.map((r) => r[3]).sort(), Array.from({ length: more }, (_, i) => `v${first + i}`).sort());
  for (const [p, o] of run3) t.true(o >= high.get(p)!, `p${p}@${o} was already committed`);
  t.deepEqual(await committedOffsets(group, topic), await highWatermarks(topic));
  t.deepEqual(loggedErrors(broker.output()), [], 'the broker logged no errors');
  t.log(`three kcat -G runs in ${Date.now() - startedMs} ms`);
});

// ---- python3-confluent-kafka --------------------------------------------------------------------------------

interface PairResult {
  errors: string[];
  assignments: number[][] | null;
  groupFormedS: number | null;
  members: { name: string; commits: number; received: [number, number, string][] }[];
}

interface DrainResult {
  errors: string[];
  assigned: number[];
  received: [number, number, string][];
  committed: Record<string, number>;
  high: Record<string, number>;
}

async function python<T>(args: string[]): Promise<T> {
  const { stdout } = await runProgram(PYTHON, [GROUP_SCRIPT, ...args], PROCESS_TIMEOUT_MS);
  return JSON.parse(stdout) as T;
}

// range: librdkafka's default (eager: everything is revoked at each rebalance); cooperative-sticky: incremental
// rebalancing (KIP-429), where the second member's arrival moves partitions in two rounds.
for (const strategy of ['range', 'cooperative-sticky']) {
  test(`confluent-kafka (${strategy}): two members share 4 partitions, each record consumed once; a third run reads nothing`, async (t) => {
    const topic = `cg-python-${strategy}`;
    const group = `${topic}-group`;
    const count = 4_000;
    await withAdmin((admin) => createTopic(admin, topic, 4));

    const startedMs = Date.now();
    const pair = await python<PairResult>(['pair', broker.bootstrap, topic, group, String(count), strategy]);
    t.deepEqual(pair.errors, []);
    // Both members held two partitions each, disjoint.
    t.deepEqual(pair.assignments!.map((a) => a.length), [2, 2]);
    t.deepEqual(pair.assignments!.flat().sort(), [0, 1, 2, 3]);

    const received = pair.members.flatMap((m) => m.received);
    const values = received.map((r) => r[2]);
    t.is(new Set(values).size, count, 'every record arrived');
    t.is(values.length, count, 'and only once');
    for (const [i, m] of pair.members.entries()) {
      t.true(m.received.length > 0, `${m.name} received records`);
      t.true(m.commits > 0, `${m.name} committed`);
      // Each member read only its own partitions.
      t.true(m.received.every(([p]) => pair.assignments![i]!.includes(p)), `${m.name} read outside its assignment`);
    }
    t.deepEqual(await committedOffsets(group, topic), await highWatermarks(topic));

    const drained = await python<DrainResult>(['drain', broker.bootstrap, topic, group]);
    t.deepEqual(drained.errors, []);
    t.deepEqual(drained.assigned, [0, 1, 2, 3]);
    t.deepEqual(drained.received, [], 'a third run of the group reads nothing');
    const high = await highWatermarks(topic);
    t.deepEqual(new Map(Object.entries(drained.committed).map(([p, o]) => [Number(p), o])), high, 'librdkafka sees the committed offsets');
    t.deepEqual(new Map(Object.entries(drained.high).map(([p, o]) => [Number(p), o])), high);
    t.deepEqual(loggedErrors(broker.output()), [], 'the broker logged no errors');
    t.log(`group of two formed in ${pair.groupFormedS?.toFixed(2)} s; commits ${pair.members.map((m) => m.commits).join('+')}; ` +
      `both runs ${Date.now() - startedMs} ms`);
  });
}
