// DescribeCluster (API 60): the brokers, the controller and the cluster id (the admin client's view, KIP-700).
import { ErrorCode } from '../protocol/errors.ts';
import type { DescribeClusterRequest, DescribeClusterResponse } from '../protocol/generated/index.ts';
import { ApiKey } from '../protocol/generated/index.ts';
import { AUTHORIZED_OPERATIONS_OMITTED, CLUSTER_AUTHORIZED_OPERATIONS } from './common.ts';
import type { ApiHandler, RequestContext } from './types.ts';

/** KIP-919 endpoint types: this process only has broker listeners. */
const EndpointType = { BROKER: 1, CONTROLLER: 2 } as const;

export const describeClusterHandler: ApiHandler<DescribeClusterRequest, DescribeClusterResponse> = {
  apiKey: ApiKey.DescribeCluster,
  minVersion: 0,
  maxVersion: 1,
  handle: handleDescribeCluster,
};

function handleDescribeCluster(request: DescribeClusterRequest, ctx: RequestContext): DescribeClusterResponse {
  const cluster = ctx.backend.cluster();
  const response: DescribeClusterResponse = {
    throttleTimeMs: 0,
    errorCode: ErrorCode.NONE,
    errorMessage: null,
    endpointType: EndpointType.BROKER,
    clusterId: cluster.clusterId,
    controllerId: cluster.controllerId,
    brokers: cluster.brokers.map((b) => ({ brokerId: b.nodeId, host: b.host, port: b.port, rack: b.rack })),
    clusterAuthorizedOperations: request.includeClusterAuthorizedOperations ? CLUSTER_AUTHORIZED_OPERATIONS : AUTHORIZED_OPERATIONS_OMITTED,
  };
  const wanted = ctx.apiVersion >= 1 ? request.endpointType : EndpointType.BROKER;
  if (wanted !== EndpointType.BROKER) {
    response.errorCode = wanted === EndpointType.CONTROLLER ? ErrorCode.MISMATCHED_ENDPOINT_TYPE : ErrorCode.UNSUPPORTED_ENDPOINT_TYPE;
    response.errorMessage = `The request was sent to a broker endpoint, but endpoint type ${wanted} was wanted`;
    response.brokers = [];
  }
  return response;
}
