// RaftNode with three real nodes in this process: real LMDB, real snapshot files, real TCP on 127.0.0.1.
import test from 'ava';
import path from 'node:path';
import { RaftNode } from '../../src/raft/node.ts';
import { NotLeaderError } from '../../src/raft/node-types.ts';
import type { LeaderInfo, NodeId } from '../../src/raft/node-types.ts';
import { RaftNodeStoppedError } from '../../src/raft/node-errors.ts';
import { LmdbLogStore } from '../../src/raft/storage/lmdb-log-store.ts';
import { TEST_TIMING, TestCluster, bytes, captureLogger, waitFor } from './node-harness.ts';
import type { ListResult } from './node-harness.ts';

const IDS: NodeId[] = [1, 2, 3];

test('three nodes elect one leader, replicate proposals and return results to the proposer', async (t) => {
  const c = await TestCluster.start(IDS);
  t.teardown(() => c.stop());
  const leaderId = await c.waitForLeader();
  const leader = c.node(leaderId);
  t.true(leader.leader().isLeader);
  t.true(leader.leader().term >= 1);

  const results: ListResult[] = [];
  for (let i = 0; i < 5; i++) results.push((await leader.propose(bytes(`item-${i}`))) as ListResult);
  t.deepEqual(results.map((r) => r.position), [0, 1, 2, 3, 4]);
  // Indexes increase, and each result names the log entry that carried the command.
  for (let i = 1; i < results.length; i++) t.true(results[i]!.index > results[i - 1]!.index);

  const last = results[results.length - 1]!.index;
  for (const id of IDS) {
    await c.waitApplied(id, last);
    t.deepEqual(c.sm(id).list(), ['item-0', 'item-1', 'item-2', 'item-3', 'item-4'], `node ${id}`);
  }
});

test('a follower rejects propose and readBarrier at once with NotLeaderError naming the leader', async (t) => {
  const c = await TestCluster.start(IDS);
  t.teardown(() => c.stop());
  const leaderId = await c.waitForLeader();
  const follower = c.node(IDS.find((id) => id !== leaderId)!);
  const err = await t.throwsAsync(follower.propose(bytes('x')), { instanceOf: NotLeaderError });
  t.is(err?.leaderId, leaderId);
  const readErr = await t.throwsAsync(follower.readBarrier(), { instanceOf: NotLeaderError });
  t.is(readErr?.leaderId, leaderId);
  // Nothing was proposed: no node applied the command.
  await c.node(leaderId).propose(bytes('after'));
  for (const id of IDS) {
    await waitFor(() => (c.sm(id).list().length === 1 ? true : undefined), 5000, `node ${id} applied one item`);
    t.deepEqual(c.sm(id).list(), ['after']);
  }
});

test('stopping the leader elects a new one; proposals continue; the restarted node catches up', async (t) => {
  const c = await TestCluster.start(IDS);
  t.teardown(() => c.stop());
  const first = await c.waitForLeader();
  await c.node(first).propose(bytes('a'));
  await c.node(first).propose(bytes('b'));

  const changes: LeaderInfo[] = [];
  const survivor = IDS.find((id) => id !== first)!;
  c.node(survivor).onLeaderChange((info) => changes.push(info));
  await c.stopMember(first);
  const second = await c.waitForLeader(5000, IDS.filter((id) => id !== first));
  t.not(second, first);
  t.true(changes.some((i) => i.leaderId === second), 'onLeaderChange reported the new leader');
  t.true(c.node(second).leader().term > 0);

  const r = (await c.node(second).propose(bytes('c'))) as ListResult;
  t.is(r.position, 2);
  await c.node(second).propose(bytes('d'));

  await c.startMember(first);
  const expected = ['a', 'b', 'c', 'd'];
  await waitFor(() => (c.sm(first).list().length === 4 ? true : undefined), 5000, 'the restarted node caught up');
  t.deepEqual(c.sm(first).list(), expected);
  // The restarted node did not apply anything twice: its list is exactly the log's commands.
  const applied = c.sm(first).appliedLog;
  t.is(new Set(applied).size, applied.length);
  t.deepEqual(c.sm(second).list(), expected);
});

test('readBarrier on the leader resolves once everything acknowledged before it is applied there', async (t) => {
  const c = await TestCluster.start(IDS);
  t.teardown(() => c.stop());
  const leaderId = await c.waitForLeader();
  const leader = c.node(leaderId);
  const r = (await leader.propose(bytes('x'))) as ListResult;
  await leader.readBarrier();
  t.true(c.sm(leaderId).appliedIndex() >= r.index);
  // Concurrent barriers with proposals: each barrier resolves with the state at least as new as its start.
  const proposals = Array.from({ length: 20 }, (_, i) => leader.propose(bytes(`p${i}`)));
  const results = (await Promise.all(proposals)) as ListResult[];
  await leader.readBarrier();
  t.true(c.sm(leaderId).appliedIndex() >= Math.max(...results.map((x) => x.index)));
  t.is(c.sm(leaderId).list().length, 21);
});

test('group commit: 200 concurrent proposals cost far fewer persists than proposals', async (t) => {
  const c = await TestCluster.start(IDS);
  t.teardown(() => c.stop());
  const leaderId = await c.waitForLeader();
  const leader = c.node(leaderId);
  await leader.propose(bytes('warm-up'));
  const before = leader.metrics();
  const results = (await Promise.all(Array.from({ length: 200 }, (_, i) => leader.propose(bytes(`g${i}`))))) as ListResult[];
  const after = leader.metrics();
  t.is(new Set(results.map((r) => r.position)).size, 200);
  t.is(after.proposalsCompleted - before.proposalsCompleted, 200);
  const persists = after.persists - before.persists;
  t.log(`200 proposals: ${persists} persists on the leader`);
  t.true(persists >= 1);
  t.true(persists <= 20, `${persists} persists for 200 proposals`);
  for (const id of IDS) await c.waitApplied(id, results[199]!.index);
  t.deepEqual(c.sm(1).list(), c.sm(2).list());
  t.deepEqual(c.sm(1).list(), c.sm(3).list());
});

test('a commit index that moved alone rides with the next durable write; stop writes the last one', async (t) => {
  // A delay longer than the test: every commit-only Ready must be carried by a later persist, never written alone.
  const c = await TestCluster.start(IDS, { timing: { ...TEST_TIMING, commitWriteDelayMs: 60_000 } });
  t.teardown(() => c.stop());
  const leaderId = await c.waitForLeader();
  const leader = c.node(leaderId);
  const before = leader.metrics();
  let last = 0;
  for (let i = 0; i < 20; i++) last = ((await leader.propose(bytes(`s${i}`))) as ListResult).index;
  const after = leader.metrics();
  t.true(after.persists - before.persists >= 20, 'one durable persist per sequential proposal');
  for (const id of IDS) {
    await c.waitApplied(id, last);
    t.is(c.node(id).metrics().commitWrites, 0, `node ${id} wrote no commit index by itself`);
  }
  // stop() writes the deferred commit index: the reopened log records the last entry as committed.
  await c.stopMember(leaderId);
  const store = await LmdbLogStore.open(path.join(c.member(leaderId).dir, 'raft', 'log'));
  t.true(store.initialState().hardState.commit >= last, `commit ${store.initialState().hardState.commit} < ${last}`);
  await store.close();
});

test('a commit index that moved alone is written by itself after commitWriteDelayMs', async (t) => {
  const c = await TestCluster.start(IDS, { timing: { ...TEST_TIMING, commitWriteDelayMs: 20 } });
  t.teardown(() => c.stop());
  const leaderId = await c.waitForLeader();
  const leader = c.node(leaderId);
  const r = (await leader.propose(bytes('one'))) as ListResult;
  // Nothing else is proposed: the commit of that entry has no later write to ride with.
  await waitFor(() => (leader.metrics().commitWrites >= 1 ? true : undefined), 2000, 'a commit write of its own');
  for (const id of IDS) await c.waitApplied(id, r.index);
  t.true(leader.metrics().commit >= r.index);
  const opts = c.options(1, c.sm(1), captureLogger([]));
  t.throws(() => new RaftNode({ ...opts, timing: { ...opts.timing, commitWriteDelayMs: -1 } }), { instanceOf: RangeError, message: /commitWriteDelayMs/ });
});

test('stop rejects pending proposals and further calls with RaftNodeStoppedError', async (t) => {
  const c = await TestCluster.start(IDS);
  t.teardown(() => c.stop());
  const leaderId = await c.waitForLeader();
  const leader = c.node(leaderId);
  // Stop the followers so nothing can commit, then stop the leader with the proposal pending.
  for (const id of IDS) if (id !== leaderId) await c.stopMember(id);
  const pending = leader.propose(bytes('never'));
  await new Promise((r) => setTimeout(r, 50));
  await c.stopMember(leaderId);
  await t.throwsAsync(pending, { instanceOf: Error });
  await t.throwsAsync(leader.propose(bytes('late')), { instanceOf: RaftNodeStoppedError });
});
