import test from 'ava';
import { deleteRecordsHandler } from '../../src/handlers/delete-records.ts';
import { ErrorCode } from '../../src/protocol/errors.ts';
import type { DeleteRecordsRequest } from '../../src/protocol/generated/index.ts';
import { batch, openHarness, roundTrip } from './helpers.ts';

function request(topics: { name: string; partitions: [number, number][] }[]): DeleteRecordsRequest {
  return {
    topics: topics.map((t) => ({ name: t.name, partitions: t.partitions.map(([partitionIndex, offset]) => ({ partitionIndex, offset: BigInt(offset) })) })),
    timeoutMs: 5000,
  };
}

for (const version of [0, 2]) {
  test(`v${version}: moves the log start offset; -1 means the high watermark; errors per partition`, async (t) => {
    const h = await openHarness();
    t.teardown(() => h.close());
    await h.backend.createTopic({ name: 'e', numPartitions: 3, replicationFactor: 1, configs: {} }, false);
    const opts = { acks: 1, timeoutMs: 1000, transactionalId: null };
    for (const p of [0, 1, 2]) await h.backend.append('e', p, batch(['a', 'b', 'c']), opts);
    const res = await roundTrip(deleteRecordsHandler, h, version, request([{ name: 'e', partitions: [[0, 2], [1, -1], [2, 10], [7, 0]] }, { name: 'nope', partitions: [[0, 0]] }]));
    t.deepEqual(res.topics[0]!.partitions.map((p) => [p.partitionIndex, p.errorCode, p.lowWatermark]), [
      [0, 0, 2n],
      [1, 0, 3n],
      [2, ErrorCode.OFFSET_OUT_OF_RANGE, -1n],
      [7, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1n],
    ]);
    t.is(res.topics[1]!.partitions[0]!.errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    t.is((await h.backend.read('e', 0, 2, 1 << 20, { isolationLevel: 0 })).logStartOffset, 2);
    const below = await roundTrip(deleteRecordsHandler, h, version, request([{ name: 'e', partitions: [[0, -5]] }]));
    t.is(below.topics[0]!.partitions[0]!.errorCode, ErrorCode.OFFSET_OUT_OF_RANGE);
    t.deepEqual(h.errors, []);
  });
}
