// ListGroups (API 16): the groups this coordinator knows, with their state (v4+) and a state filter (KIP-518).
// v5 (group types, KIP-848) is not served: every group here is a classic group.
import type { GroupCoordinator } from '../group/coordinator.ts';
import type { ListGroupsRequest, ListGroupsResponse } from '../protocol/generated/index.ts';
import { ApiKey } from '../protocol/generated/index.ts';
import { errorCodeFor } from './common.ts';
import type { ApiHandler, RequestContext } from './types.ts';

export function createListGroupsHandler(coordinator: GroupCoordinator): ApiHandler<ListGroupsRequest, ListGroupsResponse> {
  return {
    apiKey: ApiKey.ListGroups,
    minVersion: 0,
    maxVersion: 4,
    handle: (request, ctx) => handleListGroups(coordinator, request, ctx),
  };
}

function handleListGroups(coordinator: GroupCoordinator, request: ListGroupsRequest, ctx: RequestContext): ListGroupsResponse {
  try {
    // The decoder leaves statesFilter empty before v4: no filter.
    const r = coordinator.listGroups(request.statesFilter);
    const groups = r.groups.map((g) => ({ groupId: g.groupId, protocolType: g.protocolType, groupState: g.state, groupType: 'classic' }));
    return { throttleTimeMs: 0, errorCode: r.errorCode, groups };
  } catch (err) {
    return { throttleTimeMs: 0, errorCode: errorCodeFor(ctx, err, 'groups'), groups: [] };
  }
}
