// The three-node cluster of docker-compose.yml, driven from this host like a user would: build the image, bring
// the containers up, wait for /readyz (Docker health checks), produce with acks=all to a 3-partition topic, kill
// the leader's container, keep producing through kafkajs' retries, then read every partition from the two
// survivors: each acknowledged record is there exactly once, in the order it was produced.
//
// Needs Docker and `docker compose` (scripts/install-docker.sh sets both up on Debian as root; .ci/run calls it).
// Without them the test fails with "Docker unavailable: ..."; it never skips. Traffic goes only to the ports
// docker-compose.yml publishes on 127.0.0.1 (9092-9094 Kafka, 9644-9646 admin) and inside the compose network.
import test from 'ava';
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { DockerComposeEnvironment, Wait, type StartedDockerComposeEnvironment } from 'testcontainers';
import { REPO_ROOT } from './helpers/broker.ts';

// Ryuk (testcontainers' reaper container) cannot be pulled here; the test downs its own project instead.
process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';

const SERVICES = ['node1', 'node2', 'node3'] as const;
/** Published Kafka port of each service (docker-compose.yml): node N <-> 127.0.0.1:9091+N. */
const KAFKA_PORTS = [9092, 9093, 9094];
const ADMIN_PORTS = [9644, 9645, 9646];
const LOCAL_BASE_IMAGE = 'takhin-node-base:local';
const IMAGE_TAG = 'it';

/** Cached rebuilds take ~30 s here; a first build with the registry (npm ci) takes longer. */
const BUILD_TIMEOUT_MS = 6 * 60_000;
/** Containers start, compile with tsx and elect a leader (ms). */
const STARTUP_TIMEOUT_MS = 120_000;
/** Producing after the kill: kafkajs retries until a new leader takes the writes (ms, the whole phase). */
const FAILOVER_PHASE_MS = 90_000;
const BATCHES_BEFORE_KILL = 20;
const BATCHES_AFTER_KILL = 20;
const RECORDS_PER_PARTITION_PER_BATCH = 5;
const PARTITIONS = 3;

interface Produced {
  partition: number;
  value: string;
  acked: boolean;
}

function run(cmd: string, args: string[], timeoutMs: number): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { cwd: REPO_ROOT, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}`.trim();
  return { ok: r.status === 0, out };
}

function portFree(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const srv = createServer();
    srv.once('error', () => ok(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => ok(true)));
  });
}

const PROJECT_PREFIX = 'takhin-it-';

/** A run that was killed before its teardown leaves its containers holding the fixed ports: remove them. */
function removeLeftovers(): void {
  const r = run('docker', ['ps', '-a', '--filter', 'label=com.docker.compose.project', '--format',
    '{{.Label "com.docker.compose.project"}}'], 30_000);
  const projects = new Set(r.out.split('\n').filter((p) => p.startsWith(PROJECT_PREFIX)));
  for (const project of projects) run('docker', ['compose', '-p', project, 'down', '-v', '-t', '0'], 120_000);
}

/** Why this machine cannot run the test, or null. */
async function dockerProblem(): Promise<string | null> {
  const info = run('docker', ['info', '--format', '{{.ServerVersion}}'], 30_000);
  if (!info.ok) return `the Docker engine does not answer (docker info: ${info.out.split('\n')[0]})`;
  const compose = run('docker', ['compose', 'version'], 30_000);
  if (!compose.ok) return `\`docker compose\` does not work (${compose.out.split('\n')[0]})`;
  if (!run('kcat', ['-V'], 10_000).ok) return 'kcat is not installed (scripts/install-test-deps.sh)';
  removeLeftovers();
  for (const port of [...KAFKA_PORTS, ...ADMIN_PORTS]) {
    if (!(await portFree(port))) return `127.0.0.1:${port} is in use; docker-compose.yml publishes it`;
  }
  return null;
}

/** Build arguments: the local base image when scripts/install-docker.sh made one, else the registry's node:20. */
function buildArgs(): { BASE_IMAGE: string; NPM_CI: string } {
  if (process.env.BASE_IMAGE !== undefined) return { BASE_IMAGE: process.env.BASE_IMAGE, NPM_CI: process.env.NPM_CI ?? 'true' };
  if (run('docker', ['image', 'inspect', LOCAL_BASE_IMAGE], 30_000).ok) return { BASE_IMAGE: LOCAL_BASE_IMAGE, NPM_CI: 'false' };
  return { BASE_IMAGE: 'node:20-bookworm-slim', NPM_CI: 'true' };
}

/** kcat reads one partition from the beginning to its end (the high watermark): one value per line. */
function readPartition(bootstrap: string, topic: string, partition: number): Promise<string[]> {
  return new Promise((ok, fail) =>
    execFile('kcat', ['-b', bootstrap, '-C', '-t', topic, '-p', String(partition), '-o', 'beginning', '-e', '-q',
      '-f', '%s\n'], { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
      err ? fail(new Error(`kcat partition ${partition}: ${err.message}\n${stderr}`)) : ok(stdout.split('\n').filter((l) => l !== ''))));
}

function containerLogs(env: StartedDockerComposeEnvironment | null, project: string): string {
  const ps = run('docker', ['ps', '-a', '--filter', `label=com.docker.compose.project=${project}`, '--format', '{{.Names}}'], 30_000);
  if (!ps.ok) return env === null ? '' : `docker ps failed: ${ps.out}`;
  return ps.out.split('\n').filter((n) => n !== '').map((name) =>
    `---- ${name}\n${run('docker', ['logs', '--tail', '40', name], 30_000).out}`).join('\n');
}

/** The container of a compose service (compose v2 names it <project>-<service>-1, v1 <project>_<service>_1). */
function containerId(project: string, service: string): string {
  const r = run('docker', ['ps', '-q', '--filter', `label=com.docker.compose.project=${project}`,
    '--filter', `label=com.docker.compose.service=${service}`], 30_000);
  if (!r.ok || r.out === '') throw new Error(`no running container for service ${service}: ${r.out}`);
  return r.out.split('\n')[0]!;
}

/** Sends one batch: RECORDS_PER_PARTITION_PER_BATCH records to every partition, values p<partition>-<seq>. */
async function sendBatch(producer: Producer, topic: string, batch: number, produced: Produced[]): Promise<boolean> {
  const messages = [];
  for (let p = 0; p < PARTITIONS; p++) {
    for (let i = 0; i < RECORDS_PER_PARTITION_PER_BATCH; i++) {
      messages.push({ partition: p, value: `p${p}-${String(batch * RECORDS_PER_PARTITION_PER_BATCH + i).padStart(6, '0')}` });
    }
  }
  let acked = false;
  try {
    await producer.send({ topic, acks: -1, timeout: 10_000, messages });
    acked = true;
  } catch {
    // Not acknowledged after every retry: each record may or may not be stored, but at most once (idempotence).
  }
  for (const m of messages) produced.push({ partition: m.partition, value: m.value, acked });
  return acked;
}

test('a compose cluster keeps every acknowledged record when the leader container is killed', async (t) => {
  t.timeout(BUILD_TIMEOUT_MS + STARTUP_TIMEOUT_MS + FAILOVER_PHASE_MS + 120_000);
  const problem = await dockerProblem();
  if (problem !== null) {
    t.fail(`Docker unavailable: ${problem}. Run scripts/install-docker.sh as root (.ci/run does) to set up Docker.`);
    return;
  }

  const args = buildArgs();
  let started = Date.now();
  const build = run('docker', ['build', '-q', '--build-arg', `BASE_IMAGE=${args.BASE_IMAGE}`, '--build-arg', `NPM_CI=${args.NPM_CI}`,
    '-t', `takhin-ts:${IMAGE_TAG}`, '.'], BUILD_TIMEOUT_MS);
  if (!build.ok) {
    t.fail(`docker build failed (base ${args.BASE_IMAGE}, NPM_CI=${args.NPM_CI}):\n${build.out}`);
    return;
  }
  t.log(`image built in ${Date.now() - started} ms (base ${args.BASE_IMAGE})`);
  // The image this tag named before is now untagged: remove it (the layers it shares with the new one stay).
  run('docker', ['image', 'prune', '-f', '--filter', 'label=org.opencontainers.image.title=takhin-ts'], 60_000);

  const project = `${PROJECT_PREFIX}${randomBytes(4).toString('hex')}`;
  let env: StartedDockerComposeEnvironment | null = null;
  try {
    started = Date.now();
    env = await new DockerComposeEnvironment(REPO_ROOT, 'docker-compose.yml')
      .withProjectName(project)
      .withEnvironment({ ...args, IMAGE_TAG })
      // The image has no shell for testcontainers' port probe; its HEALTHCHECK polls /readyz.
      .withDefaultWaitStrategy(Wait.forHealthCheck())
      .withStartupTimeout(STARTUP_TIMEOUT_MS)
      .up();
    t.log(`compose up and healthy in ${Date.now() - started} ms`);

    for (const port of ADMIN_PORTS) {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(5_000) });
      t.is(res.status, 200, `readyz on ${port}`);
    }
    await failover(t, project);
  } catch (err) {
    t.log(containerLogs(env, project));
    throw err;
  } finally {
    if (env !== null) await env.down({ timeout: 10_000 });
    else run('docker', ['compose', '-p', project, 'down', '-v', '-t', '5'], 60_000);
  }
});

async function failover(t: import('ava').ExecutionContext, project: string): Promise<void> {
  const topic = `failover-${randomBytes(3).toString('hex')}`;
  const kafka = new Kafka({
    clientId: 'it-compose',
    brokers: KAFKA_PORTS.map((p) => `127.0.0.1:${p}`),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3_000,
    requestTimeout: 10_000,
    retry: { retries: 12, initialRetryTime: 250, maxRetryTime: 4_000 },
  });
  const admin = kafka.admin();
  await admin.connect();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  const produced: Produced[] = [];
  let killedPort = 0;
  let leaderId = -1;
  try {
    t.true(await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 3 }], waitForLeaders: true }),
      'topic created');
    await producer.connect();
    for (let b = 0; b < BATCHES_BEFORE_KILL; b++) t.true(await sendBatch(producer, topic, b, produced), `batch ${b} acknowledged`);

    const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
    leaderId = metadata.topics[0]!.partitions.find((p) => p.partitionId === 0)!.leader;
    const brokers = (await admin.describeCluster()).brokers;
    const leader = brokers.find((b) => b.nodeId === leaderId);
    if (leader === undefined) throw new Error(`partition 0 leader ${leaderId} is not among the brokers ${JSON.stringify(brokers)}`);
    killedPort = leader.port;
    const service = SERVICES[KAFKA_PORTS.indexOf(killedPort)];
    if (service === undefined) throw new Error(`leader ${leaderId} advertises ${leader.host}:${leader.port}, not a published port`);
    const kill = run('docker', ['kill', containerId(project, service)], 30_000);
    if (!kill.ok) throw new Error(`docker kill ${service}: ${kill.out}`);
    t.log(`killed ${service} (node ${leaderId}, leader of partition 0) after ${produced.length} records`);

    const killedAt = Date.now();
    const deadline = killedAt + FAILOVER_PHASE_MS;
    let ackedAfterKill = 0;
    let firstAckMs = -1;
    for (let b = BATCHES_BEFORE_KILL; b < BATCHES_BEFORE_KILL + BATCHES_AFTER_KILL && Date.now() < deadline; b++) {
      if (await sendBatch(producer, topic, b, produced)) {
        ackedAfterKill++;
        if (firstAckMs < 0) firstAckMs = Date.now() - killedAt;
      }
    }
    t.log(`after the kill: ${ackedAfterKill} of ${BATCHES_AFTER_KILL} batches acknowledged, the first after ${firstAckMs} ms`);
    t.true(ackedAfterKill > 0, 'the survivors took writes after the leader died');
    const after = await admin.fetchTopicMetadata({ topics: [topic] });
    for (const p of after.topics[0]!.partitions) {
      t.not(p.leader, leaderId, `partition ${p.partitionId} left the killed node`);
      t.true(p.leader >= 0, `partition ${p.partitionId} has a leader`);
    }
  } finally {
    await producer.disconnect().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }

  const survivors = KAFKA_PORTS.filter((p) => p !== killedPort).map((p) => `127.0.0.1:${p}`).join(',');
  for (let p = 0; p < PARTITIONS; p++) {
    const log = await readPartition(survivors, topic, p);
    const mine = produced.filter((r) => r.partition === p);
    t.log(`partition ${p}: ${log.length} records read, ${mine.filter((r) => r.acked).length} of ${mine.length} acknowledged`);
    const seen = new Map<string, number>();
    for (const v of log) seen.set(v, (seen.get(v) ?? 0) + 1);
    const lost = mine.filter((r) => r.acked && !seen.has(r.value)).map((r) => r.value);
    t.deepEqual(lost, [], `partition ${p}: acknowledged records missing`);
    t.deepEqual([...seen].filter(([, n]) => n > 1).map(([v]) => v), [], `partition ${p}: records stored twice`);
    const known = new Set(mine.map((r) => r.value));
    t.deepEqual(log.filter((v) => !known.has(v)), [], `partition ${p}: records nobody produced`);
    // Values carry their sequence number zero-padded, so produce order is string order.
    t.deepEqual(log, [...log].sort(), `partition ${p}: records out of produce order`);
  }
}
