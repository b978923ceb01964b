import test from 'ava';
import { ManualScheduler, realScheduler } from '../../src/group/scheduler.ts';

test('the manual scheduler runs due timers in time order, including timers they set', (t) => {
  const s = new ManualScheduler(0);
  const log: string[] = [];
  s.setTimeout(() => log.push(`b@${s.nowMs()}`), 20);
  s.setTimeout(() => {
    log.push(`a@${s.nowMs()}`);
    s.setTimeout(() => log.push(`c@${s.nowMs()}`), 5);
  }, 10);
  const d = s.setTimeout(() => log.push('d'), 15);
  s.clearTimeout(d);
  s.advance(14);
  t.deepEqual(log, ['a@10']);
  t.is(s.nowMs(), 14);
  s.advance(100);
  t.deepEqual(log, ['a@10', 'c@15', 'b@20']);
  t.is(s.nowMs(), 114);
  t.is(s.pendingCount(), 0);
});

test('timers due at the same time run in the order they were set', (t) => {
  const s = new ManualScheduler(0);
  const log: number[] = [];
  for (let i = 0; i < 5; i++) s.setTimeout(() => log.push(i), 7);
  s.advance(7);
  t.deepEqual(log, [0, 1, 2, 3, 4]);
});

test('real timers fire, can be cleared, and clamp huge delays instead of firing at once', async (t) => {
  const fired: string[] = [];
  // The scheduler's timers are unref'd: something must keep the test process alive meanwhile.
  const keepAlive = setInterval(() => {}, 1000);
  const cleared = realScheduler.setTimeout(() => fired.push('cleared'), 5);
  realScheduler.clearTimeout(cleared);
  const huge = realScheduler.setTimeout(() => fired.push('huge'), 2 ** 40);
  await new Promise<void>((resolve) => realScheduler.setTimeout(() => resolve(), 20));
  realScheduler.clearTimeout(huge);
  clearInterval(keepAlive);
  t.deepEqual(fired, []);
  t.true(realScheduler.nowMs() > 1_600_000_000_000);
});
