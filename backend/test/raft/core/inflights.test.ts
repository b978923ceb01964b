import test from 'ava';
import { Inflights, RaftAssertionError } from '../../../src/raft/core/index.ts';

test('inflights: full by count, freeLE frees acknowledged messages in order, wraps around', (t) => {
  const inf = new Inflights(3, 0);
  inf.add(5, 10);
  inf.add(7, 10);
  inf.add(9, 10);
  t.true(inf.full());
  t.throws(() => inf.add(10, 1), { instanceOf: RaftAssertionError });
  inf.freeLE(6);
  t.is(inf.count(), 2);
  t.is(inf.bytes(), 20);
  inf.add(11, 5);
  inf.freeLE(9);
  t.is(inf.count(), 1);
  inf.add(12, 1);
  inf.add(13, 1);
  t.true(inf.full());
  inf.freeLE(100);
  t.is(inf.count(), 0);
  t.is(inf.bytes(), 0);
});

test('inflights: full by bytes; 0 means no byte limit; indexes must increase', (t) => {
  const inf = new Inflights(100, 50);
  inf.add(1, 30);
  t.false(inf.full());
  inf.add(2, 30);
  t.true(inf.full());
  inf.freeFirstOne();
  t.false(inf.full());
  t.throws(() => inf.add(2, 1), { instanceOf: RaftAssertionError });
  const unlimited = new Inflights(2, 0);
  unlimited.add(1, 1e9);
  t.false(unlimited.full());
});
