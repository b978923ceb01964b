import test from 'ava';
import { EventQueue } from './event-queue.ts';
import { Prng } from './prng.ts';

test('events come out in time order, ties in scheduling order, and time advances', (t) => {
  const q = new EventQueue<string>();
  q.schedule(30, 'c');
  q.schedule(10, 'a1');
  q.schedule(20, 'b');
  q.schedule(10, 'a2');
  const out: string[] = [];
  const times: number[] = [];
  for (let e = q.pop(); e; e = q.pop()) {
    out.push(e.event);
    times.push(q.now);
  }
  t.deepEqual(out, ['a1', 'a2', 'b', 'c']);
  t.deepEqual(times, [10, 10, 20, 30]);
});

test('delays are relative to the current virtual time', (t) => {
  const q = new EventQueue<number>();
  q.schedule(100, 1);
  q.pop();
  q.schedule(5, 2);
  t.is(q.peekTime(), 105);
});

test('matches a sort of 10,000 random events', (t) => {
  const r = new Prng(3);
  const q = new EventQueue<number>();
  const expected: Array<[number, number]> = [];
  for (let i = 0; i < 10_000; i++) {
    const at = r.int(0, 500);
    q.schedule(at, i);
    expected.push([at, i]);
  }
  expected.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const got: number[] = [];
  for (let e = q.pop(); e; e = q.pop()) got.push(e.event);
  t.deepEqual(got, expected.map(([, i]) => i));
  t.is(q.size, 0);
});

test('negative delays are refused', (t) => {
  const q = new EventQueue<number>();
  t.throws(() => q.schedule(-1, 0), { instanceOf: RangeError });
  t.throws(() => q.schedule(Number.NaN, 0), { instanceOf: RangeError });
});
