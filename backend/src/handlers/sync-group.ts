// SyncGroup (API 14): the leader hands in the assignment; every member waits for its own share. The wait is
// a long poll on the coordinator, ended early when the connection closes (ctx.signal).
import type { GroupCoordinator } from '../group/coordinator.ts';
import type { SyncGroupRequest, SyncGroupResponse } from '../protocol/generated/index.ts';
import { ApiKey } from '../protocol/generated/index.ts';
import { EMPTY_BUFFER } from '../protocol/codec.ts';
import { errorCodeFor } from './common.ts';
import type { ApiHandler, RequestContext } from './types.ts';

export function createSyncGroupHandler(coordinator: GroupCoordinator): ApiHandler<SyncGroupRequest, SyncGroupResponse> {
  return {
    apiKey: ApiKey.SyncGroup,
    minVersion: 0,
    maxVersion: 5,
    handle: (request, ctx) => handleSyncGroup(coordinator, request, ctx),
  };
}

async function handleSyncGroup(coordinator: GroupCoordinator, request: SyncGroupRequest, ctx: RequestContext): Promise<SyncGroupResponse> {
  try {
    const r = await coordinator.sync({
      groupId: request.groupId,
      generationId: request.generationId,
      memberId: request.memberId,
      groupInstanceId: request.groupInstanceId,
      // Only v5+ sends these; the decoder leaves them null before.
      protocolType: request.protocolType,
      protocolName: request.protocolName,
      assignments: request.assignments,
    }, ctx.signal);
    return { throttleTimeMs: 0, errorCode: r.errorCode, protocolType: r.protocolType, protocolName: r.protocolName, assignment: r.assignment };
  } catch (err) {
    const errorCode = errorCodeFor(ctx, err, `group ${request.groupId}`);
    return { throttleTimeMs: 0, errorCode, protocolType: null, protocolName: null, assignment: EMPTY_BUFFER };
  }
}
