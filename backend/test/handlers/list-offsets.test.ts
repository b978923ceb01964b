import test from 'ava';
import { listOffsetsHandler } from '../../src/handlers/list-offsets.ts';
import { ErrorCode } from '../../src/protocol/errors.ts';
import type { ListOffsetsRequest } from '../../src/protocol/generated/index.ts';
import { batch, openHarness, roundTrip, type Harness } from './helpers.ts';

function request(topics: { name: string; partitions: { partitionIndex: number; timestamp: number; maxNumOffsets?: number }[] }[], isolationLevel = 0): ListOffsetsRequest {
  return {
    replicaId: -1,
    isolationLevel,
    topics: topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, currentLeaderEpoch: -1, timestamp: BigInt(p.timestamp), maxNumOffsets: p.maxNumOffsets ?? 1 })),
    })),
    timeoutMs: 0,
  };
}

async function setup(t: { teardown(fn: () => Promise<void>): void }): Promise<Harness> {
  const h = await openHarness();
  t.teardown(() => h.close());
  await h.backend.createTopic({ name: 'events', numPartitions: 2, replicationFactor: 1, configs: {} }, false);
  const opts = { acks: 1, timeoutMs: 1000, transactionalId: null };
  await h.backend.append('events', 0, batch(['a', 'b'], { timestamp: 1000 }), opts);
  await h.backend.append('events', 0, batch(['c'], { timestamp: 5000 }), opts);
  await h.backend.append('events', 0, batch(['d'], { timestamp: 3000 }), opts);
  return h;
}

for (const version of [1, 4, 6, 7, 10]) {
  test(`v${version}: latest, earliest, by timestamp${version >= 7 ? ', max timestamp' : ''}`, async (t) => {
    const h = await setup(t);
    // v1+ refuse a partition listed twice, so each spec gets its own request.
    const dup = await roundTrip(listOffsetsHandler, h, version, request([{ name: 'events', partitions: [{ partitionIndex: 0, timestamp: -1 }, { partitionIndex: 0, timestamp: -2 }] }]));
    t.deepEqual(dup.topics[0]!.partitions.map((p) => p.errorCode), [ErrorCode.INVALID_REQUEST, ErrorCode.INVALID_REQUEST]);
    const ask = async (timestamp: number) => (await roundTrip(listOffsetsHandler, h, version, request([{ name: 'events', partitions: [{ partitionIndex: 0, timestamp }] }]))).topics[0]!.partitions[0]!;
    t.like(await ask(-1), { errorCode: 0, offset: 4n, timestamp: -1n });
    t.like(await ask(-2), { errorCode: 0, offset: 0n });
    t.like(await ask(2000), { errorCode: 0, offset: 2n, timestamp: 5000n });
    t.like(await ask(9999), { errorCode: 0, offset: -1n, timestamp: -1n });
    if (version >= 4) t.is((await ask(-1)).leaderEpoch, 0);
    if (version >= 7) t.like(await ask(-3), { errorCode: 0, offset: 2n, timestamp: 5000n });
  });
}

test('v0 answers with old-style offsets', async (t) => {
  const h = await setup(t);
  const res = await roundTrip(listOffsetsHandler, h, 0, request([{ name: 'events', partitions: [{ partitionIndex: 0, timestamp: -1, maxNumOffsets: 1 }, { partitionIndex: 1, timestamp: -2, maxNumOffsets: 1 }] }]));
  t.deepEqual(res.topics[0]!.partitions.map((p) => [p.errorCode, p.oldStyleOffsets]), [
    [0, [4n]],
    [0, [0n]],
  ]);
});

test('unknown topics and partitions are UNKNOWN_TOPIC_OR_PARTITION', async (t) => {
  const h = await setup(t);
  const res = await roundTrip(listOffsetsHandler, h, 7, request([{ name: 'events', partitions: [{ partitionIndex: 5, timestamp: -1 }] }, { name: 'nope', partitions: [{ partitionIndex: 0, timestamp: -1 }] }]));
  t.like(res.topics[0]!.partitions[0], { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, offset: -1n, timestamp: -1n });
  t.is(res.topics[1]!.partitions[0]!.errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  t.deepEqual(h.errors, []);
});

test('earliest follows DeleteRecords; read_committed latest is the last stable offset', async (t) => {
  const h = await setup(t);
  await h.backend.deleteRecords('events', 0, 2);
  const res = await roundTrip(listOffsetsHandler, h, 7, request([{ name: 'events', partitions: [{ partitionIndex: 0, timestamp: -2 }, { partitionIndex: 1, timestamp: -1 }] }], 1));
  t.is(res.topics[0]!.partitions[0]!.offset, 2n);
  t.is(res.topics[0]!.partitions[1]!.offset, 0n);
});
