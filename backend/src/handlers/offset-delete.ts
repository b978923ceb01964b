// OffsetDelete (API 47): removes committed offsets of a group, refusing topics a live consumer group is
// subscribed to (GROUP_SUBSCRIBED_TO_TOPIC).
import type { GroupCoordinator } from '../group/coordinator.ts';
import type { OffsetDeleteOutput } from '../group/types.ts';
import type { OffsetDeleteRequest, OffsetDeleteResponse } from '../protocol/generated/index.ts';
import { ApiKey } from '../protocol/generated/index.ts';
import { errorCodeFor } from './common.ts';
import type { ApiHandler, RequestContext } from './types.ts';

export function createOffsetDeleteHandler(coordinator: GroupCoordinator): ApiHandler<OffsetDeleteRequest, OffsetDeleteResponse> {
  return {
    apiKey: ApiKey.OffsetDelete,
    minVersion: 0,
    maxVersion: 0,
    handle: (request, ctx) => handleOffsetDelete(coordinator, request, ctx),
  };
}

async function handleOffsetDelete(coordinator: GroupCoordinator, request: OffsetDeleteRequest, ctx: RequestContext): Promise<OffsetDeleteResponse> {
  const partitions = request.topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.partitionIndex })));
  let r: OffsetDeleteOutput;
  try {
    r = await coordinator.deleteOffsets(request.groupId, partitions);
  } catch (err) {
    r = { errorCode: errorCodeFor(ctx, err, `offsets of group ${request.groupId}`), partitions: [] };
  }
  // A group-level error answers for the whole request (as Kafka does): no per-partition results.
  if (r.partitions.length === 0) return { errorCode: r.errorCode, throttleTimeMs: 0, topics: [] };
  let i = 0;
  const topics = request.topics.map((t) => ({
    name: t.name,
    partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: r.partitions[i++]!.errorCode })),
  }));
  return { errorCode: r.errorCode, throttleTimeMs: 0, topics };
}
