// The proposal envelope (node-envelope.ts) and the pending-caller registries (node-pending.ts).
import test from 'ava';
import fc from 'fast-check';
import { ENVELOPE_HEADER_BYTES, ENVELOPE_SEQ_MAX, EnvelopeDecodeError, decodeEnvelope, encodeEnvelope } from '../../src/raft/node-envelope.ts';
import { ProposalRegistry, ReadRegistry } from '../../src/raft/node-pending.ts';
import type { PendingProposal, PendingRead } from '../../src/raft/node-pending.ts';

test('an envelope round-trips node, incarnation, sequence and payload', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 2 ** 32 - 1 }),
      fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      fc.integer({ min: 0, max: ENVELOPE_SEQ_MAX }),
      fc.uint8Array({ maxLength: 64 }),
      (nodeId, incarnation, seq, payload) => {
        const data = encodeEnvelope({ nodeId, incarnation, seq }, payload);
        t.is(data.byteLength, ENVELOPE_HEADER_BYTES + payload.byteLength);
        const env = decodeEnvelope(data);
        return env.nodeId === nodeId && env.incarnation === incarnation && env.seq === seq &&
          Buffer.from(env.payload).equals(Buffer.from(payload));
      },
    ),
  );
});

test('decoding refuses short data and unknown versions; encoding refuses an out-of-range sequence', (t) => {
  t.throws(() => decodeEnvelope(new Uint8Array(ENVELOPE_HEADER_BYTES - 1)), { instanceOf: EnvelopeDecodeError });
  const data = encodeEnvelope({ nodeId: 1, incarnation: 2, seq: 3 }, new Uint8Array([9]));
  data[0] = 7;
  t.throws(() => decodeEnvelope(data), { instanceOf: EnvelopeDecodeError, message: /version 7/ });
  t.throws(() => encodeEnvelope({ nodeId: 1, incarnation: 2, seq: ENVELOPE_SEQ_MAX + 1 }, new Uint8Array(0)), { instanceOf: RangeError });
});

function proposal(seq: number, bytes: number, deadlineMs: number, log: string[]): PendingProposal {
  return {
    seq,
    data: new Uint8Array(bytes),
    term: 0,
    deadlineMs,
    settled: false,
    resolve: (v) => log.push(`${seq}:ok:${String(v)}`),
    reject: (e) => log.push(`${seq}:err:${e.message}`),
    detach: () => log.push(`${seq}:detach`),
  };
}

test('proposal registry: bounded, batches by bytes, resolves only the matching term, expires in order', (t) => {
  const log: string[] = [];
  const reg = new ProposalRegistry(3);
  reg.enqueue(proposal(1, 100, 10, log));
  reg.enqueue(proposal(2, 100, 20, log));
  reg.enqueue(proposal(3, 100, 30, log));
  t.true(reg.isFull());
  // At least one is always taken, then as many as fit.
  t.deepEqual(reg.takeQueued(50).map((p) => p.seq), [1]);
  t.deepEqual(reg.takeQueued(250).map((p) => p.seq), [2, 3]);
  t.is(reg.queuedCount, 0);
  t.is(reg.size, 0, 'taken proposals are not counted until marked in flight');
  const p1 = proposal(1, 1, 10, log);
  const p2 = proposal(2, 1, 20, log);
  reg.markInflight(p1, 5);
  reg.markInflight(p2, 5);
  t.false(reg.resolve(1, 6, 'wrong term'), 'an entry of another term resolves nothing');
  t.true(reg.resolve(1, 5, 'r1'));
  t.false(reg.resolve(1, 5, 'again'));
  reg.expire(15, () => new Error('late'));
  t.is(reg.inflightCount, 1, 'proposal 2 has time left');
  reg.expire(25, () => new Error('late'));
  t.is(reg.size, 0);
  t.deepEqual(log, ['1:detach', '1:ok:r1', '2:detach', '2:err:late']);
});

test('read registry: confirmed reads wait for the applied index and survive leadership loss', (t) => {
  const log: string[] = [];
  const read = (key: string): PendingRead => ({
    ctx: new Uint8Array([1]),
    key,
    index: -1,
    deadlineMs: 1000,
    settled: false,
    resolve: () => log.push(`${key}:ok`),
    reject: (e) => log.push(`${key}:err:${e.message}`),
    detach: () => {},
  });
  const reg = new ReadRegistry(10);
  for (const k of ['a', 'b', 'c']) reg.enqueue(read(k));
  for (const r of reg.takeQueued()) reg.markAsked(r);
  reg.readState('a', 7);
  reg.readState('b', 9);
  reg.applied(8);
  t.deepEqual(log, ['a:ok']);
  reg.rejectUnconfirmed(new Error('lost'));
  t.deepEqual(log, ['a:ok', 'c:err:lost'], 'b was confirmed at 9: it still waits');
  reg.applied(9);
  t.deepEqual(log, ['a:ok', 'c:err:lost', 'b:ok']);
  t.is(reg.size, 0);
});
