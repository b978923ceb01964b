import test from 'ava';
import { initProducerIdHandler } from '../../src/handlers/init-producer-id.ts';
import { ErrorCode, KafkaError } from '../../src/protocol/errors.ts';
import type { InitProducerIdRequest } from '../../src/protocol/generated/index.ts';
import { openHarness, roundTrip, withOverrides } from './helpers.ts';

function request(transactionalId: string | null, producerId = -1n, producerEpoch = -1): InitProducerIdRequest {
  return { transactionalId, transactionTimeoutMs: 60_000, producerId, producerEpoch };
}

test('idempotent producers get distinct producer ids at every version', async (t) => {
  const h = await openHarness();
  t.teardown(() => h.close());
  const ids = new Set<bigint>();
  for (const version of [0, 2, 3, 4, 5]) {
    const res = await roundTrip(initProducerIdHandler, h, version, request(null));
    t.is(res.errorCode, 0);
    t.true(res.producerId >= 0n);
    t.is(res.producerEpoch, 0);
    ids.add(res.producerId);
  }
  t.is(ids.size, 5);
  t.deepEqual(h.errors, []);
});

test('v3+: producer id and epoch must be given together; backend errors are reported with -1 ids', async (t) => {
  const h = await openHarness();
  t.teardown(() => h.close());
  const half = await roundTrip(initProducerIdHandler, h, 4, request(null, 5n, -1));
  t.like(half, { errorCode: ErrorCode.INVALID_REQUEST, producerId: -1n, producerEpoch: -1 });
  const bump = await roundTrip(initProducerIdHandler, h, 4, request(null, 5n, 3));
  t.is(bump.errorCode, 0);
  const txn = await roundTrip(initProducerIdHandler, h, 4, request('tx-1'));
  t.like(txn, { errorCode: ErrorCode.INVALID_REQUEST, producerId: -1n, producerEpoch: -1 }); // no transactions yet
});

test('PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v4', async (t) => {
  const h = await openHarness();
  t.teardown(() => h.close());
  const backend = withOverrides(h.backend, {
    initProducerId: async () => {
      throw new KafkaError(ErrorCode.PRODUCER_FENCED);
    },
  });
  t.is((await roundTrip(initProducerIdHandler, h, 3, request('tx', 7n, 1), { backend })).errorCode, ErrorCode.INVALID_PRODUCER_EPOCH);
  t.is((await roundTrip(initProducerIdHandler, h, 4, request('tx', 7n, 1), { backend })).errorCode, ErrorCode.PRODUCER_FENCED);
});
