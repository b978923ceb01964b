import test from 'ava';
import { AUTHORIZED_OPERATIONS_OMITTED, CLUSTER_AUTHORIZED_OPERATIONS } from '../../src/handlers/common.ts';
import { describeClusterHandler } from '../../src/handlers/describe-cluster.ts';
import { ErrorCode } from '../../src/protocol/errors.ts';
import { openHarness, roundTrip } from './helpers.ts';

test('v0 and v1 describe brokers, controller and cluster id', async (t) => {
  const h = await openHarness({ rack: 'r1' });
  t.teardown(() => h.close());
  for (const version of [0, 1]) {
    const res = await roundTrip(describeClusterHandler, h, version, { includeClusterAuthorizedOperations: false, endpointType: 1 });
    t.like(res, { errorCode: 0, errorMessage: null, clusterId: h.backend.cluster().clusterId, controllerId: 1, clusterAuthorizedOperations: AUTHORIZED_OPERATIONS_OMITTED });
    t.deepEqual(res.brokers, [{ brokerId: 1, host: '127.0.0.1', port: 9092, rack: 'r1' }]);
    if (version === 1) t.is(res.endpointType, 1);
  }
  const ops = await roundTrip(describeClusterHandler, h, 1, { includeClusterAuthorizedOperations: true, endpointType: 1 });
  t.is(ops.clusterAuthorizedOperations, CLUSTER_AUTHORIZED_OPERATIONS);
});

test('v1: asking this broker for controller endpoints is MISMATCHED_ENDPOINT_TYPE', async (t) => {
  const h = await openHarness();
  t.teardown(() => h.close());
  const controller = await roundTrip(describeClusterHandler, h, 1, { includeClusterAuthorizedOperations: false, endpointType: 2 });
  t.is(controller.errorCode, ErrorCode.MISMATCHED_ENDPOINT_TYPE);
  t.deepEqual(controller.brokers, []);
  const unknown = await roundTrip(describeClusterHandler, h, 1, { includeClusterAuthorizedOperations: false, endpointType: 9 });
  t.is(unknown.errorCode, ErrorCode.UNSUPPORTED_ENDPOINT_TYPE);
});
