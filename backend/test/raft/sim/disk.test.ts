import test from 'ava';
import { EntryType, type Entry } from '../../../src/raft/core/types.ts';
import { SimDisk } from './disk.ts';
import { Prng } from './prng.ts';

function ent(index: number, term: number): Entry {
  return { index, term, type: EntryType.Normal, data: new Uint8Array([index]) };
}

function ents(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(ent(i, term));
  return out;
}

test('a write is not durable until its sync completes', (t) => {
  const d = new SimDisk(1);
  const id = d.submit([{ kind: 'entries', entries: ents(1, 3, 1) }, { kind: 'hardState', hardState: { term: 1, vote: 2, commit: 0 } }]);
  t.is(d.lastIndex, 0);
  t.true(d.complete(id));
  t.is(d.lastIndex, 3);
  t.deepEqual(d.hardState, { term: 1, vote: 2, commit: 0 });
});

test('completing a later write makes earlier ones durable too (FIFO sync)', (t) => {
  const d = new SimDisk(1);
  d.submit([{ kind: 'entries', entries: ents(1, 2, 1) }]);
  const second = d.submit([{ kind: 'entries', entries: ents(3, 4, 1) }]);
  d.complete(second);
  t.is(d.lastIndex, 4);
  t.is(d.pendingWrites, 0);
});

test('an overlapping append replaces the conflicting suffix', (t) => {
  const removed: number[] = [];
  const d = new SimDisk(1, {
    entriesDurable() {},
    hardStateDurable() {},
    snapshotDurable() {},
    truncated(_n, from, rem) {
      removed.push(from, rem.length);
    },
  });
  d.complete(d.submit([{ kind: 'entries', entries: ents(1, 5, 1) }]));
  d.complete(d.submit([{ kind: 'entries', entries: ents(3, 3, 2) }]));
  t.is(d.lastIndex, 3);
  t.is(d.term(3), 2);
  t.is(d.term(2), 1);
  t.deepEqual(removed, [3, 3]);
  t.throws(() => d.complete(d.submit([{ kind: 'entries', entries: ents(9, 9, 2) }])), { message: /gap/ });
});

test('a crash in lose mode drops every pending write', (t) => {
  const d = new SimDisk(1);
  d.complete(d.submit([{ kind: 'entries', entries: ents(1, 2, 1) }]));
  const lost = d.submit([{ kind: 'entries', entries: ents(3, 6, 1) }]);
  const r = d.crash(new Prng(1), 'lose');
  t.is(d.lastIndex, 2);
  t.is(r.lostOps, 1);
  t.false(d.complete(lost), 'a lost write cannot complete later');
});

test('a torn crash keeps a prefix of the pending operations, possibly mid-batch', (t) => {
  const lengths = new Set<number>();
  let hardStateKeptWithoutAllEntries = false;
  for (let seed = 1; seed <= 200; seed++) {
    const d = new SimDisk(1);
    d.submit([
      { kind: 'entries', entries: ents(1, 4, 1) },
      { kind: 'hardState', hardState: { term: 1, vote: 1, commit: 0 } },
    ]);
    d.crash(new Prng(seed), 'torn');
    lengths.add(d.lastIndex);
    // The hard state comes after the entries in the write: it survives only if all entries did.
    if (d.hardState.term === 1 && d.lastIndex < 4) hardStateKeptWithoutAllEntries = true;
  }
  t.deepEqual([...lengths].sort(), [0, 1, 2, 3, 4]);
  t.false(hardStateKeptWithoutAllEntries);
});

test('a restored snapshot replaces the log; a saved one keeps the entries after it', (t) => {
  const d = new SimDisk(1);
  d.complete(d.submit([{ kind: 'entries', entries: ents(1, 10, 1) }]));
  const conf = { voters: [1], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
  const sm = { applied: 6, log: ['a', 'b', 'c', 'd', 'e', '1/0/x'], conf };
  d.complete(d.submit([{ kind: 'saveSnapshot', snapshot: { metadata: { index: 6, term: 1, conf }, data: new Uint8Array() }, sm }]));
  t.is(d.snapIndex, 6);
  t.is(d.lastIndex, 10);
  t.is(d.term(6), 1);
  t.is(d.term(5), undefined);
  t.is(d.sm.applied, 6);
  const sm2 = { applied: 20, log: [], conf };
  d.complete(d.submit([{ kind: 'restoreSnapshot', snapshot: { metadata: { index: 20, term: 3, conf }, data: new Uint8Array() }, sm: sm2 }]));
  t.is(d.snapIndex, 20);
  t.is(d.lastIndex, 20);
  t.is(d.sm.applied, 20);
  // Appending after the snapshot works; entries at or below it are ignored.
  d.complete(d.submit([{ kind: 'entries', entries: ents(19, 22, 3) }]));
  t.is(d.lastIndex, 22);
  t.is(d.term(21), 3);
});
