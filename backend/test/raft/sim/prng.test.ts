import test from 'ava';
import { Prng } from './prng.ts';

test('same seed, same sequence; different seeds differ', (t) => {
  const a = new Prng(12345);
  const b = new Prng(12345);
  const c = new Prng(12346);
  const seqA = Array.from({ length: 100 }, () => a.u32());
  const seqB = Array.from({ length: 100 }, () => b.u32());
  const seqC = Array.from({ length: 100 }, () => c.u32());
  t.deepEqual(seqA, seqB);
  t.notDeepEqual(seqA, seqC);
});

test('high bits of a large seed matter', (t) => {
  const a = new Prng(2 ** 40 + 7);
  const b = new Prng(7);
  t.not(a.u32(), b.u32());
});

test('forked streams are deterministic and independent of each other by name', (t) => {
  const x = new Prng(99).fork('network');
  const y = new Prng(99).fork('network');
  const z = new Prng(99).fork('disk');
  const xs = Array.from({ length: 20 }, () => x.u32());
  t.deepEqual(xs, Array.from({ length: 20 }, () => y.u32()));
  t.notDeepEqual(xs, Array.from({ length: 20 }, () => z.u32()));
});

test('next() is uniform enough: mean and bucket counts', (t) => {
  const r = new Prng(1);
  const buckets = new Array<number>(10).fill(0);
  let sum = 0;
  const n = 100_000;
  for (let i = 0; i < n; i++) {
    const v = r.next();
    t.true(v >= 0 && v < 1);
    sum += v;
    buckets[Math.floor(v * 10)]!++;
  }
  t.true(Math.abs(sum / n - 0.5) < 0.01);
  for (const b of buckets) t.true(Math.abs(b - n / 10) < n / 100, `bucket ${b}`);
});

test('int() stays in its inclusive range and hits both ends', (t) => {
  const r = new Prng(5);
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) {
    const v = r.int(3, 7);
    t.true(v >= 3 && v <= 7);
    seen.add(v);
  }
  t.deepEqual([...seen].sort(), [3, 4, 5, 6, 7]);
  t.throws(() => r.int(2, 1));
});

test('shuffled() is a permutation; chance(0)/chance(1) are certain', (t) => {
  const r = new Prng(8);
  const items = [1, 2, 3, 4, 5, 6, 7, 8];
  t.deepEqual(r.shuffled(items).sort(), items);
  for (let i = 0; i < 100; i++) {
    t.false(r.chance(0));
    t.true(r.chance(1));
  }
});

test('a non-integer seed is rejected', (t) => {
  t.throws(() => new Prng(1.5), { instanceOf: RangeError });
});
