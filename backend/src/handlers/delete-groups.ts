// DeleteGroups (API 42): removes groups without members, with their committed offsets.
import type { GroupCoordinator } from '../group/coordinator.ts';
import type { DeleteGroupsRequest, DeleteGroupsResponse } from '../protocol/generated/index.ts';
import { ApiKey } from '../protocol/generated/index.ts';
import { errorCodeFor } from './common.ts';
import type { ApiHandler, RequestContext } from './types.ts';

export function createDeleteGroupsHandler(coordinator: GroupCoordinator): ApiHandler<DeleteGroupsRequest, DeleteGroupsResponse> {
  return {
    apiKey: ApiKey.DeleteGroups,
    minVersion: 0,
    maxVersion: 2,
    handle: (request, ctx) => handleDeleteGroups(coordinator, request, ctx),
  };
}

async function handleDeleteGroups(coordinator: GroupCoordinator, request: DeleteGroupsRequest, ctx: RequestContext): Promise<DeleteGroupsResponse> {
  // One at a time, so that one group's failure is reported for that group only.
  const results: DeleteGroupsResponse['results'] = [];
  for (const groupId of new Set(request.groupsNames)) {
    try {
      results.push(...(await coordinator.deleteGroups([groupId])));
    } catch (err) {
      results.push({ groupId, errorCode: errorCodeFor(ctx, err, `group ${groupId}`) });
    }
  }
  return { throttleTimeMs: 0, results };
}
