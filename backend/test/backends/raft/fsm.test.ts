// The replicated state machine applied directly (no Raft): determinism across nodes, crash recovery by
// truncation + re-application, snapshots, and deterministic errors as results.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import pino from 'pino';
import { encodeCommand, type Command } from '../../../src/backends/raft/commands.ts';
import { KafkaStateMachine, type FsmResults, type KafkaStateMachineOptions } from '../../../src/backends/raft/fsm.ts';
import { DEFAULT_LOG_CONFIG } from '../../../src/log/log-config.ts';
import { ErrorCode } from '../../../src/protocol/errors.ts';
import { buildRecordBatch, decodeRecordBatch } from '../../../src/protocol/records/builder.ts';

const logger = pino({ level: 'silent' });
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'takhin-fsm-'));
test.after.always(() => fs.rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => path.join(root, `n${dirs++}`);

const T0 = 1_700_000_000_000;
const TOPIC_A = Buffer.alloc(16, 0xa1);
const TOPIC_B = Buffer.alloc(16, 0xb2);

function options(dataDir: string): KafkaStateMachineOptions {
  return {
    dataDir,
    // Small segments, so the runs below roll segments and exercise truncation across them.
    topicDefaults: { ...DEFAULT_LOG_CONFIG, segmentBytes: 4096, retentionMs: -1 },
    replicationFactorMax: 3,
    partitionsPerTopicMax: 100,
    partitionsPerBrokerMax: 1000,
    retentionCheckIntervalMs: 0,
    offsetMetadataBytesMax: 4096,
    logger,
  };
}

const open = (dir: string) => KafkaStateMachine.open(options(dir));

/** Entries with consecutive indexes, as the driver hands them over. */
class EntryLog {
  constructor(private next = 1) {}
  entries: { index: number; term: number; data: Uint8Array }[] = [];
  add(cmd: Command, term = 1): { index: number; term: number; data: Uint8Array } {
    const e = { index: this.next++, term, data: encodeCommand(cmd) };
    this.entries.push(e);
    return e;
  }
  /** A leader's no-op. */
  noop(term: number): void {
    this.entries.push({ index: this.next++, term, data: new Uint8Array(0) });
  }
  slice(from: number, to = Infinity) {
    return this.entries.filter((e) => e.index >= from && e.index <= to);
  }
}

function batch(tag: string, count: number, pad = 100): Buffer {
  return buildRecordBatch(
    Array.from({ length: count }, (_, i) => ({ key: `${tag}-${i}`, value: `${tag}-${i}:${'v'.repeat(pad)}` })),
    { timestamp: T0 },
  );
}

function createTopics(log: EntryLog): void {
  log.add({ type: 'createTopic', timestampMs: T0, name: 'alpha', topicId: TOPIC_A, partitions: 2, replicationFactor: 3, configs: {} });
  log.add({ type: 'createTopic', timestampMs: T0 + 1, name: 'beta', topicId: TOPIC_B, partitions: 1, replicationFactor: -1, configs: { 'message.timestamp.type': 'LogAppendTime' } });
}

/** A run of appends (several coalesced per command), commits and producer ids. */
function workload(log: EntryLog, from: number, count: number): void {
  for (let i = from; i < from + count; i++) {
    log.add({
      type: 'append',
      timestampMs: T0 + 1000 * i,
      items: [
        { topicId: TOPIC_A, partition: i % 2, records: batch(`a${i}`, 1 + (i % 3)) },
        { topicId: TOPIC_B, partition: 0, records: batch(`b${i}`, 2) },
      ],
    }, 1 + Math.floor(i / 10));
    if (i % 4 === 0) log.add({ type: 'commitOffsets', timestampMs: T0 + 1000 * i + 1, group: 'g1', offsets: [{ topic: 'alpha', partition: 0, offset: i, leaderEpoch: 1, metadata: `m${i}` }] });
    if (i % 5 === 0) log.add({ type: 'initProducerId', timestampMs: T0 + 1000 * i + 2 });
  }
}

async function applyAll(fsm: KafkaStateMachine, entries: { index: number; term: number; data: Uint8Array }[], batchSize = 7): Promise<unknown[]> {
  const out: unknown[] = [];
  for (let i = 0; i < entries.length; i += batchSize) out.push(...(await fsm.apply(entries.slice(i, i + batchSize))));
  return out;
}

/** Every segment file of every partition: name -> bytes (hex digest is enough to compare). */
function partitionFiles(dataDir: string): Map<string, Buffer> {
  const logs = path.join(dataDir, 'state', 'logs');
  const out = new Map<string, Buffer>();
  for (const dir of fs.readdirSync(logs).sort()) {
    for (const name of fs.readdirSync(path.join(logs, dir)).sort()) {
      if (name.endsWith('.log')) out.set(`${dir}/${name}`, fs.readFileSync(path.join(logs, dir, name)));
    }
  }
  return out;
}

/** The records of a partition, as (offset, key) pairs, read through the log. */
function recordsOf(fsm: KafkaStateMachine, topic: string, partition: number): string[] {
  const log = fsm.topics.partition(topic, partition);
  const out: string[] = [];
  for (const b of log.read(log.logStartOffset, 1 << 30).records) {
    const d = decodeRecordBatch(b);
    for (const r of d.records) out.push(`${r.offset}:${r.key?.toString()}`);
  }
  return out;
}

function stateOf(fsm: KafkaStateMachine) {
  return {
    applied: fsm.appliedIndex(),
    producerIdNext: fsm.producerIdNext,
    topics: fsm.topics.topics().map((t) => ({ name: t.record.name, id: t.record.topicId.toString('hex'), partitions: t.record.partitionCount, configs: t.record.configs, createdMs: t.record.createdMs })),
    ends: fsm.topics.topics().flatMap((t) => t.logs.map((l) => [t.record.name, l.logStartOffset, l.logEndOffset])),
    offsets: fsm.offsets.fetch('g1', null),
    groups: fsm.offsets.groups(),
    alpha0: recordsOf(fsm, 'alpha', 0),
    alpha1: recordsOf(fsm, 'alpha', 1),
    beta0: recordsOf(fsm, 'beta', 0),
  };
}

test('two nodes applying the same entries hold byte-identical partition files and return the same results', async (t) => {
  const log = new EntryLog();
  createTopics(log);
  workload(log, 0, 60);
  const copies = log.entries.map((e) => Buffer.from(e.data));
  const dirA = freshDir();
  const dirB = freshDir();
  const a = await open(dirA);
  const b = await open(dirB);
  // Different batching of the same entries, and node B applies later (its own clock differs): no difference.
  const ra = await applyAll(a, log.entries, 5);
  await new Promise((r) => setTimeout(r, 20));
  const rb = await applyAll(b, log.entries, 13);
  t.deepEqual(ra, rb);
  t.deepEqual(stateOf(a), stateOf(b));
  // The entries' bytes are untouched (the driver may still send them to followers).
  t.true(log.entries.every((e, i) => Buffer.from(e.data).equals(copies[i]!)));
  await a.flush();
  await b.flush();
  const fa = partitionFiles(dirA);
  const fb = partitionFiles(dirB);
  t.true(fa.size > 4, 'segments rolled');
  t.deepEqual([...fa.keys()], [...fb.keys()]);
  for (const [name, bytes] of fa) t.true(bytes.equals(fb.get(name)!), name);
  // Offsets are assigned by the state machine, consecutively per partition.
  const appends = ra.filter((r): r is FsmResults['append'] => r !== undefined && 'items' in (r as object));
  const firstBeta = appends[0]!.items[1]!;
  const secondBeta = appends[1]!.items[1]!;
  t.like(firstBeta, { errorCode: 0, baseOffset: 0, lastOffset: 1 });
  t.like(secondBeta, { errorCode: 0, baseOffset: 2, lastOffset: 3 });
  // beta uses LogAppendTime: the time stamped is the command's, not the applier's.
  t.is((secondBeta as { logAppendTimeMs: number }).logAppendTimeMs, T0 + 1000);
  const stored = decodeRecordBatch(b.topics.partition('beta', 0).read(2, 1 << 20).records[0]!);
  t.is(stored.header.maxTimestamp, T0 + 1000);
  t.is(stored.header.partitionLeaderEpoch, 1, 'the entry term is the batch leader epoch');
  // Producer ids are allocated by the state machine: 0, 1, 2 ... in log order.
  const pids = ra.filter((r) => r !== undefined && 'producerId' in (r as object)).map((r) => (r as { producerId: number }).producerId);
  t.deepEqual(pids, Array.from({ length: 12 }, (_, i) => i));
  // Commit timestamps come from the command.
  t.is(a.offsets.fetch('g1', null)[0]!.commitTimestampMs, T0 + 56_001);
  await a.close();
  await b.close();
});

test('deterministic failures are results, the same on every node; nothing is half-applied', async (t) => {
  const log = new EntryLog();
  createTopics(log);
  const corrupt = batch('x', 2);
  corrupt[corrupt.length - 1] ^= 0xff; // breaks the CRC
  log.add({ type: 'createTopic', timestampMs: T0, name: 'alpha', topicId: Buffer.alloc(16, 9), partitions: 1, replicationFactor: 1, configs: {} });
  log.add({ type: 'createTopic', timestampMs: T0, name: 'gamma', topicId: Buffer.alloc(16, 8), partitions: 1, replicationFactor: 4, configs: {} });
  log.add({ type: 'createTopic', timestampMs: T0, name: 'delta', topicId: Buffer.alloc(16, 7), partitions: 1, replicationFactor: 1, configs: { 'retention.ms': 'soon' } });
  log.add({
    type: 'append',
    timestampMs: T0,
    items: [
      { topicId: TOPIC_A, partition: 0, records: corrupt },
      { topicId: TOPIC_A, partition: 5, records: batch('y', 1) },
      { topicId: Buffer.alloc(16, 0x55), partition: 0, records: batch('z', 1) },
      { topicId: TOPIC_A, partition: 0, records: batch('ok', 3) },
    ],
  });
  log.add({ type: 'deleteRecords', timestampMs: T0, topicId: TOPIC_A, partition: 0, offset: 10 });
  log.add({ type: 'deleteTopic', timestampMs: T0, name: 'beta', topicId: Buffer.alloc(16, 1) });
  log.add({ type: 'createPartitions', timestampMs: T0, name: 'alpha', topicId: TOPIC_A, totalCount: 1 });
  const results = [];
  for (const dir of [freshDir(), freshDir()]) {
    const fsm = await open(dir);
    results.push(await fsm.apply(log.entries));
    t.deepEqual(recordsOf(fsm, 'alpha', 0), ['0:ok-0', '1:ok-1', '2:ok-2']);
    t.is(fsm.topics.topic('beta')!.record.topicId.toString('hex'), TOPIC_B.toString('hex'), 'a deletion of another id left the topic');
    t.is(fsm.topics.topic('gamma'), undefined);
    await fsm.close();
  }
  t.deepEqual(results[0], results[1]);
  const codes = (results[0] as { errorCode?: number; items?: { errorCode: number }[] }[]).slice(2).map((r) => r.items?.map((i) => i.errorCode) ?? r.errorCode);
  t.deepEqual(codes, [
    ErrorCode.TOPIC_ALREADY_EXISTS,
    ErrorCode.INVALID_REPLICATION_FACTOR,
    ErrorCode.INVALID_CONFIG,
    [ErrorCode.CORRUPT_MESSAGE, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, 0],
    ErrorCode.OFFSET_OUT_OF_RANGE,
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    ErrorCode.INVALID_PARTITIONS,
  ]);
});

test('an entry that does not decode, or comes out of order, stops the state machine instead of being skipped', async (t) => {
  const fsm = await open(freshDir());
  await t.throwsAsync(fsm.apply([{ index: 1, term: 1, data: Uint8Array.of(1, 77, 0, 0, 0, 0, 0, 0, 0, 0) }]), { name: 'CommandDecodeError' });
  t.is(fsm.appliedIndex(), 0);
  await t.throwsAsync(fsm.apply([{ index: 2, term: 1, data: new Uint8Array(0) }]), { message: /none may be skipped/ });
  await fsm.apply([{ index: 1, term: 1, data: new Uint8Array(0) }]);
  t.is(fsm.appliedIndex(), 1);
  await t.throwsAsync(fsm.apply([{ index: 1, term: 1, data: new Uint8Array(0) }]), { message: /none may be skipped or repeated/ });
  await fsm.close();
});

test('after a crash that left appends beyond the recorded index, the logs are cut back and re-applied without duplicates', async (t) => {
  const log = new EntryLog();
  createTopics(log);
  workload(log, 0, 30);
  const recorded = log.entries.length;
  workload(log, 30, 25);
  log.add({ type: 'deleteRecords', timestampMs: T0 + 99_000, topicId: TOPIC_B, partition: 0, offset: 70 });
  log.noop(6);
  workload(log, 60, 5);

  // The reference node applies everything without a crash.
  const refDir = freshDir();
  const ref = await open(refDir);
  const refResults = await applyAll(ref, log.entries);
  await ref.flush();

  // The crashed node recorded only up to `recorded`, but its partition files (page cache survives kill -9)
  // already hold the appends of later entries: simulated by giving it the reference node's longer files.
  const dir = freshDir();
  let fsm = await open(dir);
  await applyAll(fsm, log.slice(1, recorded));
  await fsm.close();
  const crashedLogs = path.join(dir, 'state', 'logs');
  fs.rmSync(crashedLogs, { recursive: true });
  fs.cpSync(path.join(refDir, 'state', 'logs'), crashedLogs, { recursive: true });
  t.true(fs.readFileSync(path.join(crashedLogs, 'beta-0', 'log-start-offset.checkpoint'), 'utf8').includes('70'));

  fsm = await open(dir);
  t.is(fsm.appliedIndex(), recorded);
  const ends = fsm.topics.topics().flatMap((x) => x.logs.map((l) => l.logEndOffset));
  t.true(ends.every((e, i) => e < ref.topics.topics().flatMap((x) => x.logs.map((l) => l.logEndOffset))[i]!), 'every partition was cut back');
  // beta-0 ended at 60 at the recorded index; DeleteRecords(70) had moved its start past that: it comes back
  // to the cut (the re-applied DeleteRecords moves it again).
  t.like(fsm.topics.partition('beta', 0), { logStartOffset: 60, logEndOffset: 60 });
  const replayed = await applyAll(fsm, log.slice(recorded + 1), 4);
  // Re-applied entries give the results the reference node gave, except the log start offset reported
  // between the cut and the re-applied DeleteRecords (only the proposer, gone with the crash, would see it).
  const withoutStart = (rs: unknown[]) => JSON.parse(JSON.stringify(rs, (k, v: unknown) => (k === 'logStartOffset' ? undefined : v)));
  t.deepEqual(withoutStart(replayed), withoutStart(refResults.slice(recorded)));
  t.deepEqual(stateOf(fsm), stateOf(ref));
  await fsm.flush();
  const fa = partitionFiles(refDir);
  const fb = partitionFiles(dir);
  t.deepEqual([...fb.keys()], [...fa.keys()]);
  for (const [name, bytes] of fa) t.true(bytes.equals(fb.get(name)!), name);
  await fsm.close();
  await ref.close();
});

test('a partition log shorter than its recorded end (power loss) discards the state for a rebuild', async (t) => {
  const log = new EntryLog();
  createTopics(log);
  workload(log, 0, 10);
  const dir = freshDir();
  let fsm = await open(dir);
  await fsm.apply(log.entries);
  const applied = fsm.appliedIndex();
  await fsm.close();
  // The page cache lost the tail of a segment the applied index covers.
  const seg = path.join(dir, 'state', 'logs', 'beta-0', '00000000000000000000.log');
  fs.truncateSync(seg, fs.statSync(seg).size - 200);
  fsm = await open(dir);
  t.true(applied > 0);
  t.is(fsm.appliedIndex(), 0);
  t.deepEqual(fsm.topics.topics(), []);
  // Rebuilt from the log (or a snapshot), it is whole again.
  await fsm.apply(log.entries);
  t.is(recordsOf(fsm, 'beta', 0).length, 20);
  await fsm.close();
});

test('snapshot -> restore into a fresh node yields the same state, and both continue identically', async (t) => {
  const log = new EntryLog();
  createTopics(log);
  workload(log, 0, 40);
  log.add({ type: 'deleteRecords', timestampMs: T0 + 50_000, topicId: TOPIC_A, partition: 1, offset: 12 });
  log.add({ type: 'alterConfigs', timestampMs: T0 + 50_001, name: 'alpha', topicId: TOPIC_A, mode: 'incremental', ops: [{ name: 'retention.ms', op: 0, value: '123456' }] });
  const dirA = freshDir();
  const a = await open(dirA);
  await applyAll(a, log.entries);
  const snap = await a.snapshot();
  t.is(snap.index, log.entries.length);
  // Applies after the snapshot was taken must not leak into it.
  const more = new EntryLog(log.entries.length + 1);
  workload(more, 40, 5);
  await a.apply(more.entries);
  // Stream in small pieces, as the transport would.
  const chunks: Uint8Array[] = [];
  for await (const c of snap.chunks) for (let at = 0; at < c.byteLength; at += 3000) chunks.push(c.subarray(at, at + 3000));
  t.deepEqual(fs.readdirSync(path.join(dirA, 'snapshot-work')), [], 'the links are removed once streamed');

  const dirB = freshDir();
  const b = await open(dirB);
  await b.apply([{ index: 1, term: 1, data: encodeCommand({ type: 'createTopic', timestampMs: 1, name: 'stale', topicId: Buffer.alloc(16, 4), partitions: 1, replicationFactor: 1, configs: {} }) }]);
  await b.restore(snap.index, (async function* () {
    yield* chunks;
  })());
  t.is(b.appliedIndex(), snap.index);
  t.is(b.topics.topic('stale'), undefined, 'the old state is gone');
  t.is(b.topics.partition('alpha', 1).logStartOffset, 12);
  t.is(b.topics.topic('alpha')!.record.configs['retention.ms'], '123456');
  t.deepEqual(b.topics.topic('alpha')!.record.topicId, TOPIC_A);
  await b.apply(more.entries);
  t.deepEqual(stateOf(b), stateOf(a));
  t.false(fs.existsSync(path.join(dirB, 'state.new')));
  // And it survives a restart of the restored node.
  await b.close();
  const b2 = await open(dirB);
  t.deepEqual(stateOf(b2), stateOf(a));
  await b2.close();
  await a.close();
});

test('a corrupt or cut snapshot stream is refused and the old state stays', async (t) => {
  const log = new EntryLog();
  createTopics(log);
  workload(log, 0, 5);
  const a = await open(freshDir());
  await a.apply(log.entries);
  const snap = await a.snapshot();
  const whole: Buffer[] = [];
  for await (const c of snap.chunks) whole.push(Buffer.from(c));
  const bytes = Buffer.concat(whole);
  const b = await open(freshDir());
  await b.apply(log.slice(1, 1));
  const flipped = Buffer.from(bytes);
  flipped[Math.floor(bytes.length / 2)] ^= 0x01;
  await t.throwsAsync(b.restore(snap.index, (async function* () { yield flipped; })()), { name: 'SnapshotFormatError' });
  await t.throwsAsync(b.restore(snap.index, (async function* () { yield bytes.subarray(0, bytes.length - 5); })()), { name: 'SnapshotFormatError' });
  await t.throwsAsync(b.restore(snap.index + 1, (async function* () { yield bytes; })()), { message: /expected/ });
  t.is(b.appliedIndex(), 1);
  t.truthy(b.topics.topic('alpha'));
  await b.apply(log.slice(2));
  t.deepEqual(stateOf(b), stateOf(a));
  await a.close();
  await b.close();
});

test('an installation interrupted after the new state was complete is finished at the next open', async (t) => {
  const log = new EntryLog();
  createTopics(log);
  workload(log, 0, 5);
  const a = await open(freshDir());
  await a.apply(log.entries);
  const snap = await a.snapshot();
  const dirB = freshDir();
  const b = await open(dirB);
  await b.restore(snap.index, snap.chunks);
  await b.close();
  // Pretend the crash came between "state.new complete" and the swap: move state back to state.new.
  fs.renameSync(path.join(dirB, 'state'), path.join(dirB, 'state.new'));
  fs.writeFileSync(path.join(dirB, 'state.new', 'COMPLETE'), 'complete\n');
  fs.mkdirSync(path.join(dirB, 'state'));
  const b2 = await open(dirB);
  t.deepEqual(stateOf(b2), stateOf(a));
  await b2.close();
  // An incomplete one is dropped.
  fs.mkdirSync(path.join(dirB, 'state.new', 'logs'), { recursive: true });
  const b3 = await open(dirB);
  t.false(fs.existsSync(path.join(dirB, 'state.new')));
  t.deepEqual(stateOf(b3), stateOf(a));
  await b3.close();
  await a.close();
});

test('expireGroups drops the offsets committed before the cutoff (command clock); later ones stay', async (t) => {
  const log = new EntryLog();
  const commit = (group: string, at: number, partition = 0) => log.add({ type: 'commitOffsets', timestampMs: at, group, offsets: [{ topic: 'alpha', partition, offset: 1, leaderEpoch: -1, metadata: null }] });
  commit('stale', T0);
  commit('fresh', T0);
  commit('fresh', T0, 1);
  commit('fresh', T0 + 5000); // committed after the leader looked
  log.add({ type: 'expireGroups', timestampMs: T0 + 6000, cutoffMs: T0 + 1000, groups: ['stale', 'fresh', 'unknown'] });
  const fsm = await open(freshDir());
  const results = await fsm.apply(log.entries);
  t.deepEqual(results[4], { errorCode: 0, expired: ['stale'] });
  t.deepEqual(fsm.offsets.groups(), ['fresh']);
  t.deepEqual(fsm.offsets.fetch('fresh', null).map((o) => [o.partition, o.commitTimestampMs]), [[0, T0 + 5000]]);
  await fsm.close();
});

test('re-applying entries over LMDB state that already holds them (crash between records) ends in the same state', async (t) => {
  // The tricky sequences: offsets of a topic that is deleted and re-created, expiry racing a commit, a
  // partition count grown, configs changed, appends and producer ids all along.
  const X1 = Buffer.alloc(16, 0x11);
  const X2 = Buffer.alloc(16, 0x12);
  const log = new EntryLog();
  createTopics(log);
  workload(log, 0, 6);
  const recorded = log.entries.length;
  workload(log, 6, 2); // appends and a producer id; no commit of g1 before the expiry below
  const commitX = (at: number, offset: number, topics: string[]) => log.add({ type: 'commitOffsets', timestampMs: at, group: 'gx', offsets: topics.map((topic) => ({ topic, partition: 0, offset, leaderEpoch: -1, metadata: null })) });
  log.add({ type: 'createTopic', timestampMs: T0 + 10_000, name: 'x', topicId: X1, partitions: 1, replicationFactor: 1, configs: {} });
  log.add({ type: 'append', timestampMs: T0 + 10_001, items: [{ topicId: X1, partition: 0, records: batch('x1', 3) }] });
  commitX(T0 + 10_002, 3, ['x', 'alpha']);
  log.add({ type: 'deleteTopic', timestampMs: T0 + 10_003, name: 'x', topicId: X1 });
  log.add({ type: 'createTopic', timestampMs: T0 + 10_004, name: 'x', topicId: X2, partitions: 1, replicationFactor: 1, configs: { 'retention.ms': '1000' } });
  log.add({ type: 'append', timestampMs: T0 + 10_005, items: [{ topicId: X2, partition: 0, records: batch('x2', 2) }] });
  log.add({ type: 'expireGroups', timestampMs: T0 + 10_006, cutoffMs: T0 + 10_001, groups: ['gx', 'g1'] });
  commitX(T0 + 10_007, 2, ['alpha']);
  log.add({ type: 'createPartitions', timestampMs: T0 + 10_008, name: 'alpha', topicId: TOPIC_A, totalCount: 4 });
  log.add({ type: 'alterConfigs', timestampMs: T0 + 10_009, name: 'x', topicId: X2, mode: 'incremental', ops: [{ name: 'cleanup.policy', op: 2, value: 'delete' }, { name: 'retention.ms', op: 1, value: null }] });
  log.add({ type: 'deleteOffsets', timestampMs: T0 + 10_010, group: 'g2', partitions: [{ topic: 'alpha', partition: 0 }] });
  log.add({ type: 'commitOffsets', timestampMs: T0 + 10_011, group: 'g1', offsets: [{ topic: 'alpha', partition: 1, offset: 9, leaderEpoch: -1, metadata: null }] });

  const refDir = freshDir();
  const ref = await open(refDir);
  await applyAll(ref, log.entries, 3);
  // The crashed node recorded its applied index after `recorded` and never again (no timer fired), but its
  // LMDB and partition files hold everything up to the end when it dies.
  const dir = freshDir();
  const crashed = await KafkaStateMachine.open({ ...options(dir), appliedRecordIntervalMs: 1e12 });
  await crashed.apply(log.slice(1, recorded));
  await applyAll(crashed, log.slice(recorded + 1), 3);
  await crashed.topics.flush();
  const copy = freshDir();
  fs.cpSync(dir, copy, { recursive: true });
  await crashed.close();

  const again = await open(copy);
  t.is(again.appliedIndex(), recorded);
  await applyAll(again, log.slice(recorded + 1), 3);
  const summary = (f: KafkaStateMachine) => ({
    ...stateOf(f),
    gx: f.offsets.fetch('gx', null),
    x: f.topics.topic('x')!.record,
    x0: recordsOf(f, 'x', 0),
    alpha3: recordsOf(f, 'alpha', 3),
  });
  t.deepEqual(summary(again), summary(ref));
  t.deepEqual(summary(ref).gx.map((o) => [o.topic, o.offset]), [['alpha', 2]]);
  t.deepEqual(summary(ref).offsets.map((o) => [o.topic, o.partition]), [['alpha', 1]], 'g1: expired, then committed again');
  await again.close();
  await ref.close();
});

test('idempotent-producer expiry follows the command clock on every node, whatever local sweeps run in between', async (t) => {
  const log = new EntryLog();
  createTopics(log);
  const DAY = 24 * 3600 * 1000;
  const pbatch = buildRecordBatch([{ key: 'k', value: 'v' }, { key: 'k', value: 'w' }], { timestamp: T0, producerId: 7, producerEpoch: 0, baseSequence: 0 });
  const appendAt = (ms: number) => log.add({ type: 'append', timestampMs: ms, items: [{ topicId: TOPIC_A, partition: 0, records: Buffer.from(pbatch) }] });
  appendAt(T0);
  appendAt(T0 + DAY - 1000); // a retry 1 s before the producer expires: a duplicate everywhere
  appendAt(T0 + DAY + 11 * 60_000); // after expiry (and a sweep interval): an unknown producer, appended again
  const a = await open(freshDir());
  const b = await open(freshDir());
  const ra = await applyAll(a, log.entries, 1);
  // Node B sweeps between every entry; its wall clock is years past T0.
  const rb: unknown[] = [];
  for (const e of log.entries) {
    await b.topics.runRetention();
    rb.push(...(await b.apply([e])));
  }
  t.deepEqual(rb, ra);
  const appends = ra.slice(2) as FsmResults['append'][];
  t.deepEqual(appends.map((r) => (r.items[0] as { baseOffset: number }).baseOffset), [0, 0, 2]);
  t.deepEqual(recordsOf(b, 'alpha', 0), recordsOf(a, 'alpha', 0));
  await a.close();
  await b.close();
});
