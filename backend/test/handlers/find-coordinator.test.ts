import test from 'ava';
import { createFindCoordinatorHandler } from '../../src/handlers/find-coordinator.ts';
import { ErrorCode } from '../../src/protocol/errors.ts';
import { openHarness, roundTrip } from './helpers.ts';

test('v0-v3: this node is the coordinator of groups and transactional ids', async (t) => {
  const h = await openHarness();
  t.teardown(() => h.close());
  const handler = createFindCoordinatorHandler();
  for (const version of [0, 1, 2, 3]) {
    for (const keyType of version === 0 ? [0] : [0, 1]) {
      const r = await roundTrip(handler, h, version, { key: 'my-group', keyType, coordinatorKeys: [] });
      t.is(r.errorCode, ErrorCode.NONE, `v${version}`);
      t.deepEqual([r.nodeId, r.host, r.port], [1, '127.0.0.1', 9092], `v${version}`);
      t.deepEqual(r.coordinators, []);
      if (version >= 1) t.is(r.errorMessage, null);
    }
  }
});

test('v4-v5: batched keys get one answer each', async (t) => {
  const h = await openHarness();
  t.teardown(() => h.close());
  const handler = createFindCoordinatorHandler();
  for (const version of [4, 5]) {
    const r = await roundTrip(handler, h, version, { key: '', keyType: 0, coordinatorKeys: ['a', 'b'] });
    t.deepEqual(r.coordinators.map((c) => [c.key, c.nodeId, c.host, c.port, c.errorCode]), [
      ['a', 1, '127.0.0.1', 9092, 0],
      ['b', 1, '127.0.0.1', 9092, 0],
    ]);
  }
});

test('an unknown key type is INVALID_REQUEST; no coordinator is COORDINATOR_NOT_AVAILABLE', async (t) => {
  const h = await openHarness();
  t.teardown(() => h.close());
  const bad = await roundTrip(createFindCoordinatorHandler(), h, 3, { key: 'g', keyType: 2, coordinatorKeys: [] });
  t.is(bad.errorCode, ErrorCode.INVALID_REQUEST);
  t.is(bad.nodeId, -1);
  t.truthy(bad.errorMessage);
  const none = createFindCoordinatorHandler(() => -1);
  const r = await roundTrip(none, h, 4, { key: '', keyType: 0, coordinatorKeys: ['g'] });
  t.is(r.coordinators[0]!.errorCode, ErrorCode.COORDINATOR_NOT_AVAILABLE);
  const unknownNode = createFindCoordinatorHandler(() => 42);
  t.is((await roundTrip(unknownNode, h, 2, { key: 'g', keyType: 0, coordinatorKeys: [] })).errorCode, ErrorCode.COORDINATOR_NOT_AVAILABLE);
});
