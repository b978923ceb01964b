import test from 'ava';
import { AppendBatcher, type AppendBatcherLimits } from '../../../src/backends/raft/append-batcher.ts';
import { decodeCommand, type AppendItem } from '../../../src/backends/raft/commands.ts';
import type { FsmResults } from '../../../src/backends/raft/fsm.ts';
import { ErrorCode, KafkaError } from '../../../src/protocol/errors.ts';

const LIMITS: AppendBatcherLimits = { appendCoalesceBytesMax: 1000, appendCoalesceCountMax: 3, appendProposalsInFlightMax: 1, appendQueueBytesMax: 10_000 };

/** A fake proposer that records each command and lets the test settle it. */
class Proposals {
  readonly sent: { items: AppendItem[]; settle: (r: FsmResults['append'] | Error) => void }[] = [];
  readonly propose = (data: Buffer): Promise<FsmResults['append']> => {
    const cmd = decodeCommand(data);
    if (cmd.type !== 'append') throw new Error('not an append');
    return new Promise((resolve, reject) => {
      this.sent.push({ items: cmd.items, settle: (r) => (r instanceof Error ? reject(r) : resolve(r)) });
    });
  };
  /** Answers the i-th command with consecutive offsets per item. */
  ok(i: number): void {
    const s = this.sent[i]!;
    s.settle({ items: s.items.map((_, k) => ({ errorCode: 0, baseOffset: 100 * i + k, lastOffset: 100 * i + k, logAppendTimeMs: -1, logStartOffset: 0, raftIndex: i + 1 })) });
  }
}

const item = (tag: string, bytes = 10): AppendItem => ({ topicId: Buffer.alloc(16, 1), partition: 0, records: Buffer.alloc(bytes, tag.charCodeAt(0)) });
/** Lets queued callbacks and the batcher's deferred pump run. */
const tick = async () => {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
};

test('appends arriving while a proposal is in flight are coalesced into the next one, within the count limit', async (t) => {
  const p = new Proposals();
  const b = new AppendBatcher(LIMITS, p.propose);
  const first = b.submit(item('a'), 0);
  await tick();
  t.is(p.sent.length, 1);
  const later = ['b', 'c', 'd', 'e'].map((x) => b.submit(item(x), 0));
  await tick();
  t.is(p.sent.length, 1, 'one proposal in flight at a time');
  p.ok(0);
  t.like(await first, { errorCode: 0, baseOffset: 0 });
  await tick();
  t.is(p.sent.length, 2);
  t.deepEqual(p.sent[1]!.items.map((i) => String.fromCharCode(i.records[0]!)), ['b', 'c', 'd'], 'at most appendCoalesceCountMax per entry');
  p.ok(1);
  await tick();
  t.deepEqual(p.sent[2]!.items.map((i) => String.fromCharCode(i.records[0]!)), ['e']);
  p.ok(2);
  const results = await Promise.all(later);
  t.deepEqual(results.map((r) => (r as { baseOffset: number }).baseOffset), [100, 101, 102, 200]);
  t.is(b.proposals, 3);
  t.is(b.appendsProposed, 5);
});

test('appends submitted in the same turn share one entry; the byte limit splits them; a big one goes alone', async (t) => {
  const p = new Proposals();
  const b = new AppendBatcher({ ...LIMITS, appendCoalesceCountMax: 100, appendProposalsInFlightMax: 4 }, p.propose);
  const all = [b.submit(item('a', 400), 0), b.submit(item('b', 400), 0), b.submit(item('c', 400), 0), b.submit(item('d', 5000), 0)];
  await tick();
  t.deepEqual(p.sent.map((s) => s.items.map((i) => String.fromCharCode(i.records[0]!)).join('')), ['ab', 'c', 'd']);
  p.sent.forEach((_, i) => p.ok(i));
  t.is((await Promise.all(all)).length, 4);
});

test('a failed proposal fails its appends; queued appends fail on leadership loss; the queue is bounded', async (t) => {
  const p = new Proposals();
  const b = new AppendBatcher(LIMITS, p.propose);
  const inFlight = b.submit(item('a'), 0);
  await tick();
  const queued = b.submit(item('b'), 0);
  t.is(b.queued, 1);
  b.failQueued(new KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, 'lost'));
  await t.throwsAsync(queued, { instanceOf: KafkaError, message: 'lost' });
  p.sent[0]!.settle(new KafkaError(ErrorCode.REQUEST_TIMED_OUT, 'timeout'));
  await t.throwsAsync(inFlight, { message: 'timeout' });

  const small = new AppendBatcher({ ...LIMITS, appendQueueBytesMax: 100 }, p.propose);
  const x = small.submit(item('x', 60), 0);
  const y = small.submit(item('y', 60), 0);
  await t.throwsAsync(y, { instanceOf: KafkaError, message: /appendQueueBytesMax/ });
  await tick();
  p.ok(p.sent.length - 1);
  t.like(await x, { errorCode: 0 });
});

test('an append that waited past its timeout is refused before it is proposed', async (t) => {
  let now = 1000;
  const p = new Proposals();
  const b = new AppendBatcher(LIMITS, p.propose, () => now);
  const first = b.submit(item('a'), 0);
  await tick();
  const late = b.submit(item('b'), 50);
  const patient = b.submit(item('c'), 0);
  now += 100;
  p.ok(0);
  await first;
  await t.throwsAsync(late, { instanceOf: KafkaError, message: /not written/ });
  await tick();
  t.deepEqual(p.sent[1]!.items.map((i) => String.fromCharCode(i.records[0]!)), ['c']);
  p.ok(1);
  t.like(await patient, { errorCode: 0 });
});

test('a result that does not match the appends is an error for all of them', async (t) => {
  const b = new AppendBatcher(LIMITS, async () => ({ items: [] }));
  await t.throwsAsync(b.submit(item('a'), 0), { message: /0 results for 1 appends/ });
  t.throws(() => new AppendBatcher({ ...LIMITS, appendCoalesceCountMax: 0 }, async () => ({ items: [] })), { instanceOf: RangeError });
});
