// RaftNode snapshots: the leader compacts its log, a follower that fell behind catches up by a streamed
// snapshot, and a node restores its state machine from its own snapshot file at start.
import fs from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import type { NodeId } from '../../src/raft/node-types.ts';
import { LmdbLogStore } from '../../src/raft/storage/lmdb-log-store.ts';
import { SnapshotStore } from '../../src/raft/storage/snapshot-store.ts';
import { TestCluster, bytes, waitFor } from './node-harness.ts';
import type { ListResult } from './node-harness.ts';

const IDS: NodeId[] = [1, 2, 3];
const SNAPSHOTS = { entriesBetweenSnapshots: 20, trailingEntriesKept: 5, snapshotsRetained: 2 };

async function proposeMany(c: TestCluster, leaderId: NodeId, prefix: string, n: number): Promise<ListResult[]> {
  const out: ListResult[] = [];
  // In small concurrent groups: several Ready batches, so the leader snapshots more than once.
  for (let i = 0; i < n; i += 10) {
    const group = Array.from({ length: Math.min(10, n - i) }, (_, k) => c.node(leaderId).propose(bytes(`${prefix}${i + k}`)));
    out.push(...((await Promise.all(group)) as ListResult[]));
  }
  return out;
}

/** Until no snapshot is being written any more: a new one starts only 20 entries past the recorded one. */
async function snapshotsSettled(c: TestCluster, id: NodeId): Promise<void> {
  await waitFor(() => {
    const m = c.node(id).metrics();
    return m.snapshotIndex > 0 && m.applied - m.snapshotIndex < SNAPSHOTS.entriesBetweenSnapshots ? true : undefined;
  }, 5000, `node ${id} snapshots settled`);
}

async function snapshotFiles(c: TestCluster, id: NodeId): Promise<string[]> {
  const dir = path.join(c.member(id).dir, 'raft', 'snapshots');
  return (await fs.readdir(dir)).filter((n) => n.endsWith('.snap')).sort();
}

test('a follower far behind catches up through a snapshot after the leader compacted its log', async (t) => {
  const c = await TestCluster.start(IDS, { snapshot: SNAPSHOTS });
  t.teardown(() => c.stop());
  const leaderId = await c.waitForLeader();
  const laggard = IDS.find((id) => id !== leaderId)!;
  await proposeMany(c, leaderId, 'a', 5);
  await c.waitApplied(laggard, c.sm(leaderId).appliedIndex());
  await c.stopMember(laggard);

  const results = await proposeMany(c, leaderId, 'b', 120);
  const leader = c.node(leaderId);
  await snapshotsSettled(c, leaderId);
  const m = leader.metrics();
  t.true(m.snapshotsCreated >= 2);
  t.true(m.snapshotIndex >= 100, `leader snapshot at ${m.snapshotIndex}`);
  // Retention: at most snapshotsRetained files (once a write in progress has finished its retention pass).
  let files: string[] = [];
  const deadline = Date.now() + 3000;
  do {
    files = await snapshotFiles(c, leaderId);
    if (files.length <= 2) break;
    await new Promise((r) => setTimeout(r, 20));
  } while (Date.now() < deadline);
  t.true(files.length >= 1 && files.length <= 2, files.join(','));

  await c.startMember(laggard);
  const last = results[results.length - 1]!.index;
  await c.waitApplied(laggard, last, 10_000);
  const node = c.node(laggard);
  t.true(node.metrics().snapshotsInstalled >= 1, 'caught up by a snapshot');
  t.true(c.sm(laggard).restores >= 1);
  const expected = c.sm(leaderId).list();
  t.is(expected.length, 125);
  t.deepEqual(c.sm(laggard).list(), expected);
  // The received snapshot is a file of the follower's own now.
  t.true((await snapshotFiles(c, laggard)).length >= 1);

  // Replication continues normally afterwards.
  const more = await proposeMany(c, leaderId, 'c', 10);
  await c.waitApplied(laggard, more[more.length - 1]!.index);
  t.deepEqual(c.sm(laggard).list(), c.sm(leaderId).list());
});

test('a node whose state machine lost its data restores it from its own snapshot file at start', async (t) => {
  const c = await TestCluster.start(IDS, { snapshot: SNAPSHOTS });
  t.teardown(() => c.stop());
  const leaderId = await c.waitForLeader();
  const results = await proposeMany(c, leaderId, 'x', 60);
  const last = results[results.length - 1]!.index;
  const victim = IDS.find((id) => id !== leaderId)!;
  await c.waitApplied(victim, last);
  await waitFor(() => (c.node(victim).metrics().snapshotsCreated >= 1 ? true : undefined), 5000, 'follower snapshot');
  const snapIndex = c.node(victim).metrics().snapshotIndex;
  await c.stopMember(victim);
  // The state machine's storage is gone; the raft log and snapshot files remain.
  await fs.rm(path.join(c.member(victim).dir, 'sm'), { recursive: true, force: true });

  await c.startMember(victim);
  t.is(c.sm(victim).restores, 1, 'restored once at start');
  t.true(c.sm(victim).appliedIndex() >= snapIndex);
  await c.waitApplied(victim, last);
  t.deepEqual(c.sm(victim).list(), c.sm(leaderId).list());
  t.is(c.sm(victim).list().length, 60);
});

test('the leader restarts after compaction and keeps serving from its snapshot and log', async (t) => {
  const c = await TestCluster.start(IDS, { snapshot: SNAPSHOTS });
  t.teardown(() => c.stop());
  const first = await c.waitForLeader();
  await proposeMany(c, first, 'y', 50);
  await waitFor(() => (c.node(first).metrics().snapshotsCreated >= 1 ? true : undefined), 5000, 'leader snapshot');
  await c.stopMember(first);
  await c.startMember(first);
  t.is(c.sm(first).restores, 0, 'the state machine was not behind: no restore');
  const leaderId = await c.waitForLeader();
  const r = (await c.node(leaderId).propose(bytes('after-restart'))) as ListResult;
  t.is(r.position, 50);
  await c.waitApplied(first, r.index);
  t.deepEqual(c.sm(first).list(), c.sm(leaderId).list());
});

test('at start, a snapshot file newer than the log record is adopted: kept entries when the log has its index', async (t) => {
  const c = await TestCluster.start(IDS, { snapshot: { ...SNAPSHOTS, entriesBetweenSnapshots: 10_000 } });
  t.teardown(() => c.stop());
  const leaderId = await c.waitForLeader();
  const results = await proposeMany(c, leaderId, 'k', 30);
  const last = results[results.length - 1]!.index;
  const id = IDS.find((x) => x !== leaderId)!;
  await c.waitApplied(id, last);
  const sm = c.sm(id);
  const { index, chunks } = await sm.snapshot();
  await c.stopMember(id);
  // As if the node crashed after writing its snapshot file and before recording it in the log store.
  const dir = path.join(c.member(id).dir, 'raft');
  const log = await LmdbLogStore.open(path.join(dir, 'log'));
  const term = log.term(index);
  const conf = log.initialState().confState;
  t.is(log.snapshot().metadata.index, 0);
  await log.close();
  const store = await SnapshotStore.open(path.join(dir, 'snapshots'));
  await store.write({ index, term, conf }, chunks);

  await c.startMember(id);
  t.is(c.node(id).metrics().snapshotIndex, index, 'the file is the log store\'s snapshot now');
  t.is(c.sm(id).restores, 0, 'the state machine was not behind');
  const more = await proposeMany(c, leaderId, 'm', 5);
  await c.waitApplied(id, more[more.length - 1]!.index);
  t.deepEqual(c.sm(id).list(), c.sm(leaderId).list());
});

test('at start, a snapshot file beyond the log replaces it and restores the state machine', async (t) => {
  const c = await TestCluster.start(IDS, { snapshot: SNAPSHOTS });
  t.teardown(() => c.stop());
  const leaderId = await c.waitForLeader();
  const laggard = IDS.find((x) => x !== leaderId)!;
  await proposeMany(c, leaderId, 'e', 3);
  await c.waitApplied(laggard, c.sm(leaderId).appliedIndex());
  await c.stopMember(laggard);
  await proposeMany(c, leaderId, 'f', 60);
  await waitFor(() => (c.node(leaderId).metrics().snapshotsCreated >= 1 ? true : undefined), 5000, 'leader snapshot');
  // As if the laggard had stored a leader's snapshot and crashed before its log recorded it.
  const leaderSnaps = path.join(c.member(leaderId).dir, 'raft', 'snapshots');
  const newest = (await snapshotFiles(c, leaderId)).at(-1)!;
  const index = Number(/-(\d+)\.snap$/.exec(newest)![1]);
  await fs.copyFile(path.join(leaderSnaps, newest), path.join(c.member(laggard).dir, 'raft', 'snapshots', newest));
  // The other nodes are stopped too, so nothing but the file can bring the laggard forward during start().
  const others = IDS.filter((x) => x !== laggard);
  for (const o of others) await c.stopMember(o);

  await c.startMember(laggard);
  t.is(c.sm(laggard).restores, 1);
  t.is(c.sm(laggard).appliedIndex(), index);
  t.is(c.node(laggard).metrics().snapshotIndex, index);
  for (const o of others) await c.startMember(o);
  const leader2 = await c.waitForLeader();
  const r = (await c.node(leader2).propose(bytes('end'))) as ListResult;
  await c.waitApplied(laggard, r.index);
  t.deepEqual(c.sm(laggard).list(), c.sm(leader2).list());
  t.is(c.sm(laggard).list().length, 64);
});

test('when the snapshot file the leader must send is gone, it makes a new one and the follower still catches up', async (t) => {
  const c = await TestCluster.start(IDS, { snapshot: SNAPSHOTS });
  t.teardown(() => c.stop());
  const leaderId = await c.waitForLeader();
  const laggard = IDS.find((x) => x !== leaderId)!;
  await proposeMany(c, leaderId, 'g', 3);
  await c.waitApplied(laggard, c.sm(leaderId).appliedIndex());
  await c.stopMember(laggard);
  const results = await proposeMany(c, leaderId, 'h', 60);
  await snapshotsSettled(c, leaderId);
  const dir = path.join(c.member(leaderId).dir, 'raft', 'snapshots');
  for (const f of await snapshotFiles(c, leaderId)) await fs.rm(path.join(dir, f));

  await c.startMember(laggard);
  await c.waitApplied(laggard, results[results.length - 1]!.index, 10_000);
  t.deepEqual(c.sm(laggard).list(), c.sm(leaderId).list());
  t.true(c.member(leaderId).logs.some((l) => l.msg === 'snapshot to send is gone; making a new one'));
  t.true((await snapshotFiles(c, leaderId)).length >= 1, 'the leader wrote a new snapshot file');
});
