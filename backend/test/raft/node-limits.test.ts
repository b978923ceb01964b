// RaftNode admission and waiting: timeouts, leadership loss, abort signals, bounded queues, the uncommitted
// limit, and leadership transfer. Three real nodes (LMDB, TCP on 127.0.0.1).
import test from 'ava';
import { ProposalDroppedError } from '../../src/raft/core/errors.ts';
import { ProposalQueueFullError, ProposalTimeoutError, ProposalTooLargeError } from '../../src/raft/node-errors.ts';
import { NotLeaderError } from '../../src/raft/node-types.ts';
import type { NodeId } from '../../src/raft/node-types.ts';
import { TestCluster, bytes, waitFor } from './node-harness.ts';
import type { ListResult } from './node-harness.ts';

const IDS: NodeId[] = [1, 2, 3];

/** A leader alone: its followers are stopped, so nothing it proposes can commit. */
async function isolatedLeader(c: TestCluster): Promise<NodeId> {
  const leaderId = await c.waitForLeader();
  await c.node(leaderId).propose(bytes('committed'));
  for (const id of IDS) if (id !== leaderId) await c.stopMember(id);
  return leaderId;
}

test('a proposal and a read barrier that cannot complete time out after proposalTimeoutMs', async (t) => {
  const c = await TestCluster.start(IDS, { checkQuorum: false, limits: { proposalTimeoutMs: 300 } });
  t.teardown(() => c.stop());
  const leader = c.node(await isolatedLeader(c));
  const started = Date.now();
  const err = await t.throwsAsync(leader.propose(bytes('stuck')), { instanceOf: ProposalTimeoutError });
  const elapsed = Date.now() - started;
  t.true(elapsed >= 280 && elapsed < 2000, `timed out after ${elapsed} ms`);
  t.is(err?.code, 'RAFT_PROPOSAL_TIMEOUT');
  t.true(err?.retriable);
  await t.throwsAsync(leader.readBarrier(), { instanceOf: ProposalTimeoutError });
  t.is(leader.metrics().proposalsPending, 0);
});

test('a leader that loses its quorum steps down and rejects pending proposals with NotLeaderError', async (t) => {
  const c = await TestCluster.start(IDS, { checkQuorum: true, limits: { proposalTimeoutMs: 10_000 } });
  t.teardown(() => c.stop());
  const leaderId = await isolatedLeader(c);
  const leader = c.node(leaderId);
  const err = await t.throwsAsync(leader.propose(bytes('orphan')), { instanceOf: NotLeaderError });
  t.regex(err?.message ?? '', /leadership lost|not the leader/);
  await waitFor(() => (leader.leader().isLeader ? undefined : true), 2000, 'step down visible in leader()');
  await t.throwsAsync(leader.propose(bytes('late')), { instanceOf: NotLeaderError });
});

test('an abort signal rejects a waiting proposal with its reason; an aborted signal rejects at once', async (t) => {
  const c = await TestCluster.start(IDS, { checkQuorum: false });
  t.teardown(() => c.stop());
  const leader = c.node(await isolatedLeader(c));
  const ac = new AbortController();
  const pending = leader.propose(bytes('abandoned'), ac.signal);
  setTimeout(() => ac.abort(new Error('client went away')), 50);
  await t.throwsAsync(pending, { message: 'client went away' });
  t.is(leader.metrics().proposalsPending, 0);
  await t.throwsAsync(leader.propose(bytes('x'), AbortSignal.abort(new Error('already'))), { message: 'already' });
  await t.throwsAsync(leader.readBarrier(AbortSignal.abort(new Error('already read'))), { message: 'already read' });
});

test('proposalsQueuedMax bounds pending proposals; empty and oversized proposals are refused', async (t) => {
  const c = await TestCluster.start(IDS, {
    checkQuorum: false,
    limits: { proposalsQueuedMax: 3, proposalTimeoutMs: 500, proposalBytesMax: 1000 },
  });
  t.teardown(() => c.stop());
  const leader = c.node(await isolatedLeader(c));
  const pending = [1, 2, 3].map((i) => leader.propose(bytes(`p${i}`)));
  const err = await t.throwsAsync(leader.propose(bytes('p4')), { instanceOf: ProposalQueueFullError });
  t.true(err?.retriable);
  await t.throwsAsync(leader.propose(new Uint8Array(0)), { instanceOf: RangeError });
  const big = await t.throwsAsync(leader.propose(new Uint8Array(1001)), { instanceOf: ProposalTooLargeError });
  t.false(big?.retriable);
  for (const p of pending) await t.throwsAsync(p, { instanceOf: ProposalTimeoutError });
  // Room again once they settled.
  await t.throwsAsync(leader.propose(bytes('p5')), { instanceOf: ProposalTimeoutError });
});

test('proposals beyond maxUncommittedBytes are dropped with the core\'s ProposalDroppedError', async (t) => {
  const c = await TestCluster.start(IDS, { checkQuorum: false, limits: { maxUncommittedBytes: 1000, proposalTimeoutMs: 500 } });
  t.teardown(() => c.stop());
  const leader = c.node(await isolatedLeader(c));
  const first = leader.propose(new Uint8Array(600).fill(1));
  const second = leader.propose(new Uint8Array(600).fill(2));
  const err = await t.throwsAsync(second, { instanceOf: ProposalDroppedError });
  t.is(err?.reason, 'uncommitted-limit');
  await t.throwsAsync(first, { instanceOf: ProposalTimeoutError });
});

test('transferLeadership hands leadership to the named node', async (t) => {
  const c = await TestCluster.start(IDS);
  t.teardown(() => c.stop());
  const leaderId = await c.waitForLeader();
  await c.node(leaderId).propose(bytes('before'));
  const target = IDS.find((id) => id !== leaderId)!;
  await c.waitApplied(target, c.sm(leaderId).appliedIndex());
  c.node(leaderId).transferLeadership(target);
  await c.waitForLeader(3000, [target]);
  const r = (await c.node(target).propose(bytes('after'))) as ListResult;
  t.is(r.position, 1);
  await t.throwsAsync(c.node(leaderId).propose(bytes('old leader')), { instanceOf: NotLeaderError });
});
