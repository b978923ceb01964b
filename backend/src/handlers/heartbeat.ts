// Heartbeat (API 12): a member says it is alive; the answer tells it to rejoin when a rebalance started.
import type { GroupCoordinator } from '../group/coordinator.ts';
import type { HeartbeatRequest, HeartbeatResponse } from '../protocol/generated/index.ts';
import { ApiKey } from '../protocol/generated/index.ts';
import { errorCodeFor } from './common.ts';
import type { ApiHandler, RequestContext } from './types.ts';

export function createHeartbeatHandler(coordinator: GroupCoordinator): ApiHandler<HeartbeatRequest, HeartbeatResponse> {
  return {
    apiKey: ApiKey.Heartbeat,
    minVersion: 0,
    maxVersion: 4,
    handle: (request, ctx) => handleHeartbeat(coordinator, request, ctx),
  };
}

function handleHeartbeat(coordinator: GroupCoordinator, request: HeartbeatRequest, ctx: RequestContext): HeartbeatResponse {
  try {
    const errorCode = coordinator.heartbeat({
      groupId: request.groupId,
      generationId: request.generationId,
      memberId: request.memberId,
      groupInstanceId: request.groupInstanceId,
    });
    return { throttleTimeMs: 0, errorCode };
  } catch (err) {
    return { throttleTimeMs: 0, errorCode: errorCodeFor(ctx, err, `group ${request.groupId}`) };
  }
}
