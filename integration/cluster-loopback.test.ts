// A three-node Raft cluster on free loopback ports (integration/helpers/cluster.ts), driven with real clients:
// acks=all writes survive a kill -9 of the Raft leader with every acknowledged record stored exactly once and in
// order, the three nodes end with byte-identical partition files, committed group offsets survive a failover, and
// a follower that was down while the leader compacted its Raft log catches up through a snapshot.
//
// Every node serves Fetch from its own committed log (KIP-392): after the failover, kcat (librdkafka) reads every
// partition once per node with client.rack set to that node's rack, so the leader points it at that node, and the
// nodes' /metrics prove which node served the record bytes. The nodes' segment files are also compared byte for
// byte (sha256 of the concatenated .log files per partition).
import test from 'ava';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { sleep } from './helpers/broker.ts';
import { startCluster, type Cluster } from './helpers/cluster.ts';

const PARTITIONS = 6;
const RECORDS = 50_000;
const RECORDS_PER_SEND = 500;
/** The leader is killed when this many sends have been started. */
const KILL_AT_SEND = 40;
/** Every node's partition files must be identical within this long after producing ends (ms). */
const SETTLE_TIMEOUT_MS = 60_000;
const KCAT_TIMEOUT_MS = 60_000;

const clusters: Cluster[] = [];

test.after.always(async () => {
  for (const c of clusters) await c.destroy();
});

function kafka(bootstrap: string): Kafka {
  return new Kafka({ clientId: 'cluster-loopback', brokers: bootstrap.split(','), logLevel: logLevel.NOTHING,
    connectionTimeout: 2000, requestTimeout: 15_000, retry: { retries: 30, initialRetryTime: 200, maxRetryTime: 2000 } });
}

function pad(seq: number): string {
  return String(seq).padStart(6, '0');
}

/**
 * kcat reads one partition from the beginning to the high watermark: one value per line, or "offset value" lines
 * with withOffsets. With a rack, librdkafka
 * sends client.rack and follows the leader's preferred read replica (KIP-392).
 */
function readPartition(bootstrap: string, topic: string, partition: number, rack?: string, withOffsets = false): Promise<string[]> {
  const rackArgs = rack === undefined ? [] : ['-X', `client.rack=${rack}`];
  return new Promise((ok, fail) =>
    execFile('kcat', ['-b', bootstrap, ...rackArgs, '-C', '-t', topic, '-p', String(partition), '-o', 'beginning', '-e', '-q', '-f', withOffsets ? '%o %s\n' : '%s\n'],
      { timeout: KCAT_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
        err ? fail(new Error(`kcat ${bootstrap} partition ${partition}: ${err.message}\n${stderr}`)) : ok(stdout.split('\n').filter((l) => l !== ''))));
}

/** sha256 of the concatenated .log files of one partition on one node (segments in name = base offset order). */
function partitionBytes(dataDir: string, topic: string, partition: number): number {
  const dir = join(dataDir, 'kafka', 'state', 'logs', `${topic}-${partition}`);
  return readdirSync(dir).filter((n) => n.endsWith('.log')).reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
}

/** Record bytes each node has served by Fetch so far, as leader plus as follower (from /metrics). */
async function servedBytes(cluster: Cluster): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const n of cluster.nodes) {
    const m = await cluster.metrics(n.nodeId);
    out.set(n.nodeId, (m.get('takhin_fetch_leader_bytes_total') ?? NaN) + (m.get('takhin_fetch_follower_bytes_total') ?? NaN));
  }
  return out;
}

function partitionDigest(dataDir: string, topic: string, partition: number): string {
  const dir = join(dataDir, 'kafka', 'state', 'logs', `${topic}-${partition}`);
  const hash = createHash('sha256');
  if (!existsSync(dir)) return 'missing';
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.log')).sort()) hash.update(readFileSync(join(dir, f)));
  return hash.digest('hex');
}

/** Polls until all three nodes hold identical files for every partition; returns the digests or throws. */
async function settle(cluster: Cluster, topic: string): Promise<{ ms: number; digests: string[] }> {
  const started = Date.now();
  let last: string[][] = [];
  while (Date.now() - started < SETTLE_TIMEOUT_MS) {
    last = cluster.nodes.map((n) => Array.from({ length: PARTITIONS }, (_, p) => partitionDigest(n.dataDir, topic, p)));
    const same = last[0]!.every((d, p) => d !== 'missing' && last.every((node) => node[p] === d));
    if (same) return { ms: Date.now() - started, digests: last[0]! };
    await sleep(500);
  }
  throw new Error(`partition files still differ after ${SETTLE_TIMEOUT_MS} ms: ${JSON.stringify(last.map((n) => n.map((d) => d.slice(0, 12))))}`);
}

interface SendResult {
  acked: Set<string>;
  sent: number;
  /** When each acknowledged send resolved (ms since epoch). */
  ackTimes: number[];
}

/** Sends records seq from..to-1 (partition seq % PARTITIONS) in sequential sends; onSend runs before send i. */
async function produce(producer: Producer, topic: string, from: number, to: number, onSend?: (i: number) => void,
  recordsPerSend = RECORDS_PER_SEND): Promise<SendResult> {
  const acked = new Set<string>();
  const ackTimes: number[] = [];
  let i = 0;
  for (let start = from; start < to; start += recordsPerSend, i++) {
    onSend?.(i);
    const messages = [];
    for (let seq = start; seq < Math.min(to, start + recordsPerSend); seq++) messages.push({ partition: seq % PARTITIONS, value: pad(seq) });
    try {
      await producer.send({ topic, acks: -1, timeout: 10_000, messages });
      for (const m of messages) acked.add(m.value);
      ackTimes.push(Date.now());
    } catch {
      // Not acknowledged after every retry: each record may be stored or not, but at most once.
    }
  }
  return { acked, sent: to - from, ackTimes };
}

test.serial('acks=all records survive a kill -9 of the Raft leader; all nodes hold identical partitions', async (t) => {
  t.timeout(240_000);
  const t0 = Date.now();
  const cluster = await startCluster();
  clusters.push(cluster);
  const leader = await cluster.leaderId();
  t.log(`cluster up, leader ${leader}, in ${Date.now() - t0} ms`);

  const topic = 'loopback-failover';
  const admin = kafka(cluster.bootstrap).admin();
  await admin.connect();
  t.true(await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 3 }], waitForLeaders: true }));
  const md = await admin.fetchTopicMetadata({ topics: [topic] });
  t.deepEqual(md.topics[0]!.partitions.map((p) => p.replicas.length), Array(PARTITIONS).fill(3));
  await admin.disconnect();

  const producer = kafka(cluster.bootstrap).producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  let failover: Promise<{ killed: number; newLeader: number; electionMs: number; killedAt: number }> | null = null;
  const produceStarted = Date.now();
  const result = await produce(producer, topic, 0, RECORDS, (i) => {
    if (i !== KILL_AT_SEND) return;
    failover = (async () => {
      const killed = await cluster.leaderId();
      const killedAt = Date.now();
      await cluster.kill(killed);
      const newLeader = await cluster.leaderId(30_000, killed);
      const electionMs = Date.now() - killedAt;
      await cluster.restart(killed);
      return { killed, newLeader, electionMs, killedAt };
    })();
  });
  const produceMs = Date.now() - produceStarted;
  await producer.disconnect();
  t.not(failover, null);
  const fo = await failover!;
  t.log(`killed leader ${fo.killed}; node ${fo.newLeader} leads ${fo.electionMs} ms later; restarted`);
  const sendsAfterKill = result.ackTimes.filter((at) => at > fo.killedAt).length;
  t.log(`produced ${result.sent} records in ${produceMs} ms, ${result.acked.size} acknowledged; ${sendsAfterKill} sends acknowledged after the kill`);
  t.true(sendsAfterKill > 0, 'the kill did not happen mid-stream');
  t.true(result.acked.size > RECORDS / 2, `too few acknowledged: ${result.acked.size}`);

  const { ms, digests } = await settle(cluster, topic);
  t.log(`all three nodes byte-identical ${ms} ms after producing ended`);

  // Every acknowledged record, consumed from each of the three nodes: exactly once and in order per partition.
  const storedBytes = Array.from({ length: PARTITIONS }, (_, p) => partitionBytes(cluster.nodes[0]!.dataDir, topic, p)).reduce((a, b) => a + b, 0);
  const leaderNow = await cluster.leaderId();
  /** Per node, per partition: the "offset value" lines that node served. */
  const servedLines: string[][][] = [];
  for (const node of cluster.nodes) {
    const before = await servedBytes(cluster);
    const seen = new Set<string>();
    const lines: string[][] = [];
    for (let p = 0; p < PARTITIONS; p++) {
      const read = await readPartition(node.bootstrap, topic, p, node.rack, true);
      lines.push(read);
      let prev = -1;
      for (const line of read) {
        const v = line.slice(line.indexOf(' ') + 1);
        const seq = Number(v);
        if (seq % PARTITIONS !== p) t.fail(`node ${node.nodeId}: record ${v} in partition ${p}`);
        if (!(seq > prev)) t.fail(`node ${node.nodeId}, partition ${p}: ${v} after ${pad(prev)} (duplicate or out of order)`);
        prev = seq;
        seen.add(v);
      }
    }
    const missing = [...result.acked].filter((v) => !seen.has(v));
    t.deepEqual(missing.slice(0, 20), [], `node ${node.nodeId}: ${missing.length} acknowledged records missing`);
    const after = await servedBytes(cluster);
    const served = cluster.nodes.map((n) => after.get(n.nodeId)! - before.get(n.nodeId)!);
    t.log(`node ${node.nodeId} (${node.nodeId === leaderNow ? 'leader' : 'follower'}): ${seen.size} records read back; record bytes served per node ${served.join(' / ')} (stored ${storedBytes})`);
    t.true(served[node.nodeId - 1]! >= storedBytes, `node ${node.nodeId} served ${served[node.nodeId - 1]} of ${storedBytes} bytes`);
    for (const other of cluster.nodes) if (other !== node) t.is(served[other.nodeId - 1], 0, `node ${other.nodeId} served records meant for node ${node.nodeId}`);
    servedLines.push(lines);
  }
  // The same records at the same offsets from every node.
  for (let p = 0; p < PARTITIONS; p++) {
    for (let n = 1; n < servedLines.length; n++) {
      if (servedLines[n]![p]!.join('\n') !== servedLines[0]![p]!.join('\n')) t.fail(`partition ${p}: node ${n + 1} serves other offsets or records than node 1`);
    }
  }
  t.log(`end offsets per partition, the same on every node: ${servedLines[0]!.map((l) => l.length === 0 ? '-' : l[l.length - 1]!.split(' ')[0]).join(' ')}`);
  t.log(`partition digests ${digests.map((d) => d.slice(0, 8)).join(' ')}`);
  // The Raft write and read path as /metrics shows it: group commit, and applies served from the entry cache.
  for (const n of cluster.nodes) {
    const m = await cluster.metrics(n.nodeId);
    t.true(m.get('takhin_raft_log_syncs_total')! > 0 && m.get('takhin_raft_applied_index')! > 0, `node ${n.nodeId} raft metrics`);
    t.log(`node ${n.nodeId}: ${m.get('takhin_raft_log_syncs_total')} log syncs, entries read ${m.get('takhin_raft_entries_read_cached_total')} cached / ${m.get('takhin_raft_entries_read_stored_total')} from LMDB, cache ${m.get('takhin_raft_entry_cache_bytes')} bytes`);
  }
});

test.serial('committed group offsets survive a leader failover', async (t) => {
  t.timeout(120_000);
  const cluster = clusters[0];
  if (cluster === undefined) return t.fail('the first test did not start a cluster');
  const topic = 'loopback-failover';
  const group = 'loopback-group';
  const admin = kafka(cluster.bootstrap).admin();
  await admin.connect();
  const offsets = Array.from({ length: PARTITIONS }, (_, p) => ({ partition: p, offset: String(100 + p * 7) }));
  await admin.setOffsets({ groupId: group, topic, partitions: offsets });
  await admin.disconnect();

  const killed = await cluster.leaderId();
  const killedAt = Date.now();
  await cluster.kill(killed);
  const newLeader = await cluster.leaderId(30_000, killed);
  t.log(`killed leader ${killed}; node ${newLeader} leads ${Date.now() - killedAt} ms later`);

  const survivors = cluster.nodes.filter((n) => n.proc !== null).map((n) => n.bootstrap).join(',');
  const admin2 = kafka(survivors).admin();
  await admin2.connect();
  try {
    const fetched = await admin2.fetchOffsets({ groupId: group, topics: [topic] });
    const got = fetched[0]!.partitions.map((p) => ({ partition: p.partition, offset: p.offset })).sort((a, b) => a.partition - b.partition);
    t.deepEqual(got, offsets);
  } finally {
    await admin2.disconnect();
    await cluster.restart(killed);
  }
});

/** Raft entries between two snapshots and entries kept behind one, small so a short outage forces compaction. */
const SNAPSHOT_ARGS = ['--snapshot-entries-between', '200', '--snapshot-trailing-entries', '50'];
const SNAPSHOT_RECORDS = 6_000;
const SNAPSHOT_RECORDS_PER_SEND = 10;

test.serial('a follower down while the leader compacts catches up through a snapshot', async (t) => {
  t.timeout(180_000);
  const cluster = await startCluster({ args: SNAPSHOT_ARGS });
  clusters.push(cluster);
  const leader = await cluster.leaderId();
  const follower = cluster.nodes.find((n) => n.nodeId !== leader)!.nodeId;
  const topic = 'loopback-snapshot';
  const admin = kafka(cluster.bootstrap).admin();
  await admin.connect();
  t.true(await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 3 }], waitForLeaders: true }));
  await admin.disconnect();

  await cluster.stop(follower);
  const survivors = cluster.nodes.filter((n) => n.proc !== null).map((n) => n.bootstrap).join(',');
  const producer = kafka(survivors).producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const started = Date.now();
  const result = await produce(producer, topic, 0, SNAPSHOT_RECORDS, undefined, SNAPSHOT_RECORDS_PER_SEND);
  await producer.disconnect();
  t.log(`follower ${follower} down; ${result.acked.size}/${result.sent} records acknowledged in ${Date.now() - started} ms`);
  t.is(result.acked.size, SNAPSHOT_RECORDS);

  await cluster.restart(follower, { TAKHIN_LOG_LEVEL: 'info' });
  const { ms } = await settle(cluster, topic);
  t.log(`follower ${follower} byte-identical ${ms} ms after restart`);
  // The restarted follower logs this when it takes the leader's snapshot instead of log entries.
  const installed = cluster.node(follower).proc!.output().split('\n').filter((l) => l.includes('raft snapshot received and stored'));
  t.log(installed[0] ?? 'no snapshot installed');
  t.true(installed.length > 0, `the restarted follower installed no snapshot:\n${cluster.output()}`);

  const seen = new Set<string>();
  for (let p = 0; p < PARTITIONS; p++) for (const v of await readPartition(cluster.node(await cluster.leaderId()).bootstrap, topic, p)) seen.add(v);
  t.is(seen.size, SNAPSHOT_RECORDS);
});
