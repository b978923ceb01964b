import test from 'ava';
import { Inflights, Progress } from '../../../src/raft/core/index.ts';

const pr = (match: number, next: number, max = 4, maxBytes = 0) => new Progress(match, next, new Inflights(max, maxBytes), false);

test('progress: probe sends one message then waits; any answer or heartbeat resumes', (t) => {
  const p = pr(0, 5);
  t.false(p.isPaused());
  p.sentEntries(2, 6, 10);
  t.true(p.isPaused());
  t.is(p.next, 5, 'probe does not move next optimistically');
  t.true(p.maybeUpdate(6));
  t.false(p.isPaused());
  t.is(p.match, 6);
  t.is(p.next, 7);
});

test('progress: replicate streams and is paused only by a full window', (t) => {
  const p = pr(5, 6, 2);
  p.becomeReplicate();
  p.sentEntries(3, 8, 30);
  t.is(p.next, 9);
  t.false(p.isPaused());
  p.sentEntries(1, 9, 10);
  t.true(p.isPaused());
  p.inflights.freeLE(8);
  t.false(p.isPaused());
});

test('progress: maybeDecrTo ignores stale rejections and uses the hint', (t) => {
  const probe = pr(3, 10);
  t.false(probe.maybeDecrTo(5, 5), 'rejection of something other than the last probe is stale');
  t.true(probe.maybeDecrTo(9, 6));
  t.is(probe.next, 7);
  t.true(probe.maybeDecrTo(6, 0));
  t.is(probe.next, 4, 'never below match + 1');
  const rep = pr(5, 6);
  rep.becomeReplicate();
  rep.sentEntries(4, 9, 40);
  t.false(rep.maybeDecrTo(5, 5), 'at or below match: stale');
  t.true(rep.maybeDecrTo(7, 7));
  t.is(rep.next, 6);
});

test('progress: snapshot state pauses; becomeProbe resumes after the snapshot', (t) => {
  const p = pr(2, 3);
  p.becomeSnapshot(20);
  t.true(p.isPaused());
  p.becomeProbe();
  t.is(p.state, 'probe');
  t.is(p.next, 21);
  const failed = pr(2, 3);
  failed.becomeSnapshot(20);
  failed.pendingSnapshot = 0;
  failed.becomeProbe();
  t.is(failed.next, 3);
});
