import test from 'ava';
import { createFetchHandler, fetchHandler, takeBatches } from '../../src/handlers/fetch.ts';
import { ErrorCode } from '../../src/protocol/errors.ts';
import type { FetchRequest, FetchResponse } from '../../src/protocol/generated/index.ts';
import { baseOffsetsOf, batch, call, openHarness, recordBytes, roundTrip, valuesOf, withOverrides, type Harness } from './helpers.ts';

const ZERO_ID = Buffer.alloc(16);

interface Want {
  topic: string;
  topicId?: Buffer;
  partitions: { partition: number; fetchOffset: number; partitionMaxBytes?: number }[];
}

function fetchRequest(wants: Want[], opts: Partial<Pick<FetchRequest, 'maxWaitMs' | 'minBytes' | 'maxBytes' | 'isolationLevel' | 'sessionId' | 'sessionEpoch'>> = {}): FetchRequest {
  return {
    clusterId: null,
    replicaId: -1,
    replicaState: { replicaId: -1, replicaEpoch: -1n },
    maxWaitMs: opts.maxWaitMs ?? 0,
    minBytes: opts.minBytes ?? 0,
    maxBytes: opts.maxBytes ?? 0x7fffffff,
    isolationLevel: opts.isolationLevel ?? 0,
    sessionId: opts.sessionId ?? 0,
    sessionEpoch: opts.sessionEpoch ?? -1,
    topics: wants.map((w) => ({
      topic: w.topic,
      topicId: w.topicId ?? ZERO_ID,
      partitions: w.partitions.map((p) => ({
        partition: p.partition,
        currentLeaderEpoch: -1,
        fetchOffset: BigInt(p.fetchOffset),
        lastFetchedEpoch: -1,
        logStartOffset: -1n,
        partitionMaxBytes: p.partitionMaxBytes ?? 1 << 20,
        replicaDirectoryId: ZERO_ID,
      })),
    })),
    forgottenTopicsData: [],
    rackId: '',
  };
}

function part(res: FetchResponse, topicIndex: number, partition: number) {
  const p = res.responses[topicIndex]?.partitions.find((x) => x.partitionIndex === partition);
  if (p === undefined) throw new Error(`no partition ${partition} in topic #${topicIndex}`);
  return p;
}

async function setup(t: { teardown(fn: () => Promise<void>): void }, partitions = 2): Promise<Harness> {
  const h = await openHarness();
  t.teardown(() => h.close());
  await h.backend.createTopic({ name: 'events', numPartitions: partitions, replicationFactor: 1, configs: {} }, false);
  return h;
}

async function append(h: Harness, partition: number, values: string[], topic = 'events') {
  return h.backend.append(topic, partition, batch(values), { acks: 1, timeoutMs: 1000, transactionalId: null });
}

for (const version of [4, 7, 11, 12]) {
  test(`v${version}: reads batches over the wire with offsets and topics in request order`, async (t) => {
    const h = await setup(t);
    await append(h, 0, ['a', 'b']);
    await append(h, 0, ['c']);
    await append(h, 1, ['x']);
    const res = await roundTrip(fetchHandler, h, version, fetchRequest([{ topic: 'events', partitions: [{ partition: 1, fetchOffset: 0 }, { partition: 0, fetchOffset: 1 }] }]));
    t.deepEqual(res.responses.map((r) => r.topic), ['events']);
    t.deepEqual(res.responses[0]!.partitions.map((p) => p.partitionIndex), [1, 0]);
    const p0 = part(res, 0, 0);
    t.is(p0.errorCode, 0);
    t.is(p0.highWatermark, 3n);
    t.is(p0.lastStableOffset, 3n);
    t.is(p0.logStartOffset, version >= 5 ? 0n : -1n);
    t.is(p0.abortedTransactions, null);
    t.deepEqual(valuesOf(p0.records), ['a', 'b', 'c']); // the batch holding offset 1 comes whole
    t.deepEqual(valuesOf(part(res, 0, 1).records), ['x']);
    if (version >= 7) {
      t.is(res.errorCode, 0);
      t.is(res.sessionId, 0);
    }
    if (version >= 11) t.is(p0.preferredReadReplica, -1);
    t.deepEqual(h.errors, []);
  });
}

test('v13 and v17 name topics by id; an unknown id is UNKNOWN_TOPIC_ID', async (t) => {
  const h = await setup(t);
  await append(h, 0, ['a']);
  const id = h.backend.topic('events')!.topicId;
  const missing = Buffer.alloc(16, 7);
  for (const version of [13, 17]) {
    const res = await roundTrip(fetchHandler, h, version, fetchRequest([{ topic: '', topicId: id, partitions: [{ partition: 0, fetchOffset: 0 }] }, { topic: '', topicId: missing, partitions: [{ partition: 0, fetchOffset: 0 }] }]));
    t.true(res.responses[0]!.topicId.equals(id));
    t.deepEqual(valuesOf(part(res, 0, 0).records), ['a']);
    t.true(res.responses[1]!.topicId.equals(missing));
    t.is(part(res, 1, 0).errorCode, ErrorCode.UNKNOWN_TOPIC_ID);
  }
});

test('unknown topic or partition, and offsets out of range, are per-partition errors with -1 offsets', async (t) => {
  const h = await setup(t, 1);
  await append(h, 0, ['a']);
  const res = await roundTrip(
    fetchHandler,
    h,
    12,
    fetchRequest([
      { topic: 'events', partitions: [{ partition: 0, fetchOffset: 5 }, { partition: 3, fetchOffset: 0 }, { partition: 0, fetchOffset: 0 }] },
      { topic: 'nope', partitions: [{ partition: 0, fetchOffset: 0 }] },
    ]),
  );
  const [outOfRange, unknownPartition, ok] = res.responses[0]!.partitions;
  t.like(outOfRange, { errorCode: ErrorCode.OFFSET_OUT_OF_RANGE, highWatermark: -1n, logStartOffset: -1n, lastStableOffset: -1n });
  t.is(recordBytes(outOfRange!.records), 0);
  t.is(unknownPartition!.errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  t.deepEqual(valuesOf(ok!.records), ['a']);
  t.is(part(res, 1, 0).errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  t.deepEqual(h.errors, []);
});

test('fetching at the high watermark returns no records and no error', async (t) => {
  const h = await setup(t, 1);
  await append(h, 0, ['a']);
  const res = await roundTrip(fetchHandler, h, 12, fetchRequest([{ topic: 'events', partitions: [{ partition: 0, fetchOffset: 1 }] }]));
  t.like(part(res, 0, 0), { errorCode: 0, highWatermark: 1n });
  t.is(recordBytes(part(res, 0, 0).records), 0);
});

test('max_bytes bounds the response, but the first partition with data returns at least one batch (KIP-74)', async (t) => {
  const h = await setup(t, 3);
  const big = 'x'.repeat(2000);
  await append(h, 0, [big]);
  await append(h, 0, [big]);
  await append(h, 1, [big]);
  await append(h, 2, ['small']);
  const reads: [number, number, boolean | undefined][] = [];
  const backend = withOverrides(h.backend, {
    read: (topic, partition, offset, maxBytes, options) => {
      reads.push([partition, maxBytes, options.minOneBatch]);
      return h.backend.read(topic, partition, offset, maxBytes, options);
    },
  });
  const res = (await call(
    fetchHandler,
    h,
    12,
    fetchRequest([{ topic: 'events', partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 100 }, { partition: 1, fetchOffset: 0 }, { partition: 2, fetchOffset: 0 }] }], { maxBytes: 500 }),
    { backend },
  )) as FetchResponse;
  // In order; once a partition returned data the others are read without KIP-74's one-batch minimum.
  t.deepEqual(reads, [
    [0, 100, true],
    [1, 0, false],
    [2, 0, false],
  ]);
  // Partition 0: limits are 100 / 500 bytes, but it is the first with data: exactly one whole batch.
  t.deepEqual(baseOffsetsOf(part(res, 0, 0).records), [0]);
  // Partition 1: the budget is spent and its batch is larger: nothing, but its offsets are reported.
  t.is(recordBytes(part(res, 0, 1).records), 0);
  t.is(part(res, 0, 1).highWatermark, 1n);
  // Partition 2 too: the budget is spent even for a small batch.
  t.is(recordBytes(part(res, 0, 2).records), 0);
});

test('partition_max_bytes limits each partition to whole batches that fit', async (t) => {
  const h = await setup(t, 2);
  for (let i = 0; i < 5; i++) await append(h, 0, [`m${i}`.padEnd(100, '.')]);
  await append(h, 1, ['later']);
  const one = (await h.backend.read('events', 0, 0, 1, { isolationLevel: 0 })).bytes; // one batch
  const res = (await call(fetchHandler, h, 12, fetchRequest([{ topic: 'events', partitions: [{ partition: 1, fetchOffset: 0 }, { partition: 0, fetchOffset: 0, partitionMaxBytes: one * 3 + 10 }] }]))) as FetchResponse;
  t.deepEqual(baseOffsetsOf(part(res, 0, 0).records), [0, 1, 2]);
  t.deepEqual(valuesOf(part(res, 0, 1).records), ['later']);
});

test('takeBatches cuts at batch boundaries, zero-copy, and keeps one batch when asked', (t) => {
  const b1 = batch(['a'.repeat(50)]);
  const b2 = batch(['b'.repeat(50)]);
  const chunk = Buffer.concat([b1, b2]);
  t.deepEqual(takeBatches([chunk], chunk.length, chunk.length, false), [chunk]);
  const cut = takeBatches([chunk], chunk.length, b1.length + 10, false);
  t.is(cut.length, 1);
  t.is(cut[0]!.length, b1.length);
  t.is(cut[0]!.buffer, chunk.buffer);
  t.deepEqual(takeBatches([chunk], chunk.length, 10, false), []);
  t.is(takeBatches([chunk], chunk.length, 10, true)[0]!.length, b1.length);
  t.deepEqual(takeBatches([b1, b2], chunk.length, b1.length + 10, false), [b1]);
});

test('long-poll: a fetch below min_bytes waits for an append and then returns it', async (t) => {
  const h = await setup(t, 2);
  const order: string[] = [];
  const pending = (call(fetchHandler, h, 12, fetchRequest([{ topic: 'events', partitions: [{ partition: 0, fetchOffset: 0 }] }], { maxWaitMs: 5000, minBytes: 1 })) as Promise<FetchResponse>).then((r) => {
    order.push('fetch');
    return r;
  });
  await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(order, []);
  await append(h, 1, ['other partition']); // not requested: must not end the wait
  await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(order, []);
  order.push('append');
  const started = Date.now();
  await append(h, 0, ['hello']);
  const res = await pending;
  t.deepEqual(order, ['append', 'fetch']);
  t.true(Date.now() - started < 1000);
  t.deepEqual(valuesOf(part(res, 0, 0).records), ['hello']);
});

test('long-poll: waits until min_bytes accumulate across appends', async (t) => {
  const h = await setup(t, 1);
  const one = batch(['p'.repeat(200)]).length;
  const pending = call(fetchHandler, h, 12, fetchRequest([{ topic: 'events', partitions: [{ partition: 0, fetchOffset: 0 }] }], { maxWaitMs: 5000, minBytes: one * 2 })) as Promise<FetchResponse>;
  let done = false;
  void pending.then(() => (done = true));
  await append(h, 0, ['p'.repeat(200)]);
  await new Promise((r) => setTimeout(r, 50));
  t.false(done);
  await append(h, 0, ['p'.repeat(200)]);
  const res = await pending;
  t.deepEqual(baseOffsetsOf(part(res, 0, 0).records), [0, 1]);
});

test('long-poll: returns empty after max_wait_ms when nothing arrives, and unsubscribes', async (t) => {
  const h = await setup(t, 1);
  let subscribed = 0;
  const backend = withOverrides(h.backend, {
    onAppend: (listener) => {
      subscribed++;
      const off = h.backend.onAppend(listener);
      return () => {
        subscribed--;
        off();
      };
    },
  });
  const started = performance.now();
  const res = (await call(fetchHandler, h, 12, fetchRequest([{ topic: 'events', partitions: [{ partition: 0, fetchOffset: 0 }] }], { maxWaitMs: 300, minBytes: 1 }), { backend })) as FetchResponse;
  const elapsed = performance.now() - started;
  t.true(elapsed >= 290 && elapsed < 2000, `waited ${elapsed} ms`);
  t.is(part(res, 0, 0).errorCode, 0);
  t.is(recordBytes(part(res, 0, 0).records), 0);
  t.is(subscribed, 0);
});

test('long-poll: fetchWaitMaxMs caps the wait; a closing connection ends it; errors answer at once', async (t) => {
  const h = await setup(t, 1);
  const capped = createFetchHandler({ fetchWaitMaxMs: 100 });
  let started = performance.now();
  await call(capped, h, 12, fetchRequest([{ topic: 'events', partitions: [{ partition: 0, fetchOffset: 0 }] }], { maxWaitMs: 60_000, minBytes: 1 }));
  t.true(performance.now() - started < 2000);

  const abort = new AbortController();
  started = performance.now();
  const pending = call(fetchHandler, h, 12, fetchRequest([{ topic: 'events', partitions: [{ partition: 0, fetchOffset: 0 }] }], { maxWaitMs: 60_000, minBytes: 1 }), { signal: abort.signal });
  setTimeout(() => abort.abort(), 50);
  await pending;
  t.true(performance.now() - started < 2000);

  started = performance.now();
  const res = (await call(fetchHandler, h, 12, fetchRequest([{ topic: 'events', partitions: [{ partition: 0, fetchOffset: 0 }, { partition: 9, fetchOffset: 0 }] }], { maxWaitMs: 60_000, minBytes: 1 }))) as FetchResponse;
  t.true(performance.now() - started < 2000);
  t.is(part(res, 0, 9).errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
});

test('fetch sessions: full fetches are sessionless (session id 0); incremental ones get FETCH_SESSION_ID_NOT_FOUND', async (t) => {
  const h = await setup(t, 1);
  await append(h, 0, ['a']);
  const want = [{ topic: 'events', partitions: [{ partition: 0, fetchOffset: 0 }] }];
  const initial = await roundTrip(fetchHandler, h, 12, fetchRequest(want, { sessionId: 0, sessionEpoch: 0 }));
  t.is(initial.sessionId, 0);
  t.is(initial.errorCode, 0);
  t.deepEqual(valuesOf(part(initial, 0, 0).records), ['a']);
  const incremental = await roundTrip(fetchHandler, h, 12, fetchRequest(want, { sessionId: 123, sessionEpoch: 1 }));
  t.is(incremental.errorCode, ErrorCode.FETCH_SESSION_ID_NOT_FOUND);
  t.deepEqual(incremental.responses, []);
});

test('read_committed reports an empty aborted-transaction list', async (t) => {
  const h = await setup(t, 1);
  await append(h, 0, ['a']);
  const res = await roundTrip(fetchHandler, h, 11, fetchRequest([{ topic: 'events', partitions: [{ partition: 0, fetchOffset: 0 }] }], { isolationLevel: 1 }));
  t.deepEqual(part(res, 0, 0).abortedTransactions, []);
  t.deepEqual(valuesOf(part(res, 0, 0).records), ['a']);
});

test('current_leader_epoch (v9+) is checked against the single node\'s epoch 0 (KIP-320)', async (t) => {
  const h = await setup(t, 1);
  await append(h, 0, ['a']);
  const withEpoch = (epoch: number): FetchRequest => {
    const r = fetchRequest([{ topic: 'events', partitions: [{ partition: 0, fetchOffset: 0 }] }]);
    r.topics[0]!.partitions[0]!.currentLeaderEpoch = epoch;
    return r;
  };
  t.deepEqual(valuesOf(part(await roundTrip(fetchHandler, h, 12, withEpoch(0)), 0, 0).records), ['a']);
  t.is(part(await roundTrip(fetchHandler, h, 12, withEpoch(3)), 0, 0).errorCode, ErrorCode.UNKNOWN_LEADER_EPOCH);
  // v8 has no such field on the wire: whatever the struct says is not sent, so nothing is checked.
  t.is(part(await roundTrip(fetchHandler, h, 8, withEpoch(3)), 0, 0).errorCode, ErrorCode.NONE);
});
