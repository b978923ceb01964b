// RaftNode faults: a state machine that throws and a disk that fills up both stop the node (fatal log, every
// caller rejected) instead of acknowledging anything; after a restart nothing acknowledged is missing.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { RaftNodeStoppedError } from '../../src/raft/node-errors.ts';
import type { NodeId } from '../../src/raft/node-types.ts';
import { TestCluster, bytes, waitFor } from './node-harness.ts';

const IDS: NodeId[] = [1, 2, 3];
const FATAL = 60;

test('a follower whose state machine throws stops; the others go on; restarted, it catches up', async (t) => {
  const c = await TestCluster.start(IDS);
  t.teardown(() => c.stop());
  const leaderId = await c.waitForLeader();
  const victim = IDS.find((id) => id !== leaderId)!;
  const fatal: unknown[] = [];
  c.node(victim).onFatal((err) => fatal.push(err));
  c.sm(victim).failNextApply = new Error('state machine disk failed');

  await c.node(leaderId).propose(bytes('one'));
  await waitFor(() => (fatal.length > 0 ? true : undefined), 5000, 'the victim failed');
  t.is((fatal[0] as Error).message, 'state machine disk failed');
  t.is(c.node(victim).failure, fatal[0]);
  t.true(c.member(victim).logs.some((l) => l.level === FATAL), 'fatal log line');
  await t.throwsAsync(c.node(victim).propose(bytes('x')), { instanceOf: RaftNodeStoppedError });
  t.false(c.node(victim).leader().isLeader);
  t.deepEqual(c.sm(victim).list(), [], 'nothing applied on the failed node');

  // Two of three still form a quorum (the failed node may have been elected meanwhile: find the leader again).
  const leader2 = await c.waitForLeader(5000, IDS.filter((id) => id !== victim));
  await c.node(leader2).propose(bytes('two'));
  await c.stopMember(victim);
  await c.startMember(victim);
  await waitFor(() => (c.sm(victim).list().length === 2 ? true : undefined), 5000, 'the victim caught up');
  t.deepEqual(c.sm(victim).list(), ['one', 'two']);
});

/** Mounting a small tmpfs needs root; where it is not allowed, the disk-full test cannot run. */
function canMountTmpfs(): boolean {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'raft-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'ignore' });
    execFileSync('umount', [dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const diskTest = canMountTmpfs() ? test : test.skip;

diskTest('a full disk fails the persist: the node stops, and after a restart it has every acknowledged proposal', async (t) => {
  const mountDir = fs.mkdtempSync(path.join(os.tmpdir(), 'raft-enospc-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mountDir]);
  const c = await TestCluster.start([1], { raftDir: () => path.join(mountDir, 'raft') });
  t.teardown(async () => {
    await c.stop();
    execFileSync('umount', [mountDir]);
    fs.rmSync(mountDir, { recursive: true, force: true });
  });
  // Room to restart later: freed once the disk has filled up.
  fs.writeFileSync(path.join(mountDir, 'reserve'), Buffer.alloc(1024 * 1024));
  await c.waitForLeader();
  const node = c.node(1);

  const acked: string[] = [];
  let failure: unknown;
  for (let i = 0; i < 200 && failure === undefined; i++) {
    const value = `${i}:`.padEnd(64 * 1024, 'x');
    try {
      await node.propose(bytes(value));
      acked.push(value);
    } catch (err) {
      failure = err;
    }
  }
  t.true(failure instanceof RaftNodeStoppedError, `failure: ${String(failure)}`);
  t.true(acked.length > 0 && acked.length < 200, `${acked.length} acknowledged`);
  t.truthy(node.failure, 'node.failure holds the disk error');
  t.true(c.member(1).logs.some((l) => l.level === FATAL), 'fatal log line');
  await t.throwsAsync(node.propose(bytes('after')), { instanceOf: RaftNodeStoppedError });

  await c.stopMember(1);
  fs.rmSync(path.join(mountDir, 'reserve'));
  await c.startMember(1);
  await c.waitForLeader();
  const list = c.sm(1).list();
  t.deepEqual(list.slice(0, acked.length), acked, 'every acknowledged proposal survived, in order');
  // The log is usable again.
  await c.node(1).propose(bytes('after restart'));
  t.is(c.sm(1).list().at(-1), 'after restart');
});
