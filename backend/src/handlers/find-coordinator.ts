// FindCoordinator (API 10): which broker coordinates a group (key type 0) or a transactional id (key type 1).
// v4+ batches keys (KIP-699). Which node that is comes from a hook: in single-node mode the node answering.
import type { ClusterView } from '../backends/backend.ts';
import { ErrorCode, errorName } from '../protocol/errors.ts';
import type { FindCoordinatorRequest, FindCoordinatorResponse } from '../protocol/generated/index.ts';
import { ApiKey } from '../protocol/generated/index.ts';
import type { ApiHandler, RequestContext } from './types.ts';

type Coordinator = FindCoordinatorResponse['coordinators'][number];

export const CoordinatorKeyType = { GROUP: 0, TRANSACTION: 1 } as const;

/** First version that batches keys in coordinatorKeys / coordinators. */
const BATCHED_MIN_VERSION = 4;

/**
 * The node that coordinates `key` of `keyType`, or -1 when none does right now (COORDINATOR_NOT_AVAILABLE).
 * Cluster mode passes its own (the node that leads the group and transaction state).
 */
export type CoordinatorNodeLookup = (keyType: number, key: string, cluster: ClusterView) => number;

/** Single-node mode: this node coordinates everything. */
export const thisNodeCoordinates: CoordinatorNodeLookup = (_keyType, _key, cluster) => cluster.nodeId;

export function createFindCoordinatorHandler(lookup: CoordinatorNodeLookup = thisNodeCoordinates): ApiHandler<FindCoordinatorRequest, FindCoordinatorResponse> {
  return {
    apiKey: ApiKey.FindCoordinator,
    // v6 adds share-group keys (KIP-932), which this broker does not have.
    minVersion: 0,
    maxVersion: 5,
    handle: (request, ctx) => handleFindCoordinator(request, ctx, lookup),
  };
}

function handleFindCoordinator(request: FindCoordinatorRequest, ctx: RequestContext, lookup: CoordinatorNodeLookup): FindCoordinatorResponse {
  const cluster = ctx.backend.cluster();
  // v0 has no key type: it only finds group coordinators.
  const keyType = ctx.apiVersion >= 1 ? request.keyType : CoordinatorKeyType.GROUP;
  if (ctx.apiVersion >= BATCHED_MIN_VERSION) {
    const coordinators = request.coordinatorKeys.map((key) => findOne(key, keyType, cluster, lookup));
    return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, errorMessage: null, nodeId: -1, host: '', port: -1, coordinators };
  }
  const one = findOne(request.key, keyType, cluster, lookup);
  return { throttleTimeMs: 0, errorCode: one.errorCode, errorMessage: one.errorMessage, nodeId: one.nodeId, host: one.host, port: one.port, coordinators: [] };
}

function findOne(key: string, keyType: number, cluster: ClusterView, lookup: CoordinatorNodeLookup): Coordinator {
  const failed = (errorCode: number, errorMessage: string): Coordinator => ({ key, nodeId: -1, host: '', port: -1, errorCode, errorMessage });
  if (keyType !== CoordinatorKeyType.GROUP && keyType !== CoordinatorKeyType.TRANSACTION) {
    return failed(ErrorCode.INVALID_REQUEST, `Unsupported coordinator key type ${keyType}`);
  }
  const nodeId = lookup(keyType, key, cluster);
  const broker = cluster.brokers.find((b) => b.nodeId === nodeId);
  if (nodeId < 0 || broker === undefined) return failed(ErrorCode.COORDINATOR_NOT_AVAILABLE, errorName(ErrorCode.COORDINATOR_NOT_AVAILABLE));
  return { key, nodeId, host: broker.host, port: broker.port, errorCode: ErrorCode.NONE, errorMessage: null };
}
