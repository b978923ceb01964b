// DescribeGroups (API 15): state, protocol and members of classic groups. Member metadata and assignments are
// only filled in for Stable groups (as in Kafka); an unknown group is reported Dead without an error.
import type { GroupCoordinator } from '../group/coordinator.ts';
import type { GroupDescription } from '../group/types.ts';
import type { DescribeGroupsRequest, DescribeGroupsResponse } from '../protocol/generated/index.ts';
import { ApiKey } from '../protocol/generated/index.ts';
import { AUTHORIZED_OPERATIONS_OMITTED, errorCodeFor } from './common.ts';
import type { ApiHandler, RequestContext } from './types.ts';

type DescribedGroup = DescribeGroupsResponse['groups'][number];

/**
 * Without an authorizer every operation a group supports is allowed: READ (3), DELETE (6), DESCRIBE (8)
 * (org.apache.kafka.common.acl.AclOperation codes).
 */
export const GROUP_AUTHORIZED_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8);

export function createDescribeGroupsHandler(coordinator: GroupCoordinator): ApiHandler<DescribeGroupsRequest, DescribeGroupsResponse> {
  return {
    apiKey: ApiKey.DescribeGroups,
    minVersion: 0,
    maxVersion: 5,
    handle: (request, ctx) => handleDescribeGroups(coordinator, request, ctx),
  };
}

function handleDescribeGroups(coordinator: GroupCoordinator, request: DescribeGroupsRequest, ctx: RequestContext): DescribeGroupsResponse {
  const ops = request.includeAuthorizedOperations ? GROUP_AUTHORIZED_OPERATIONS : AUTHORIZED_OPERATIONS_OMITTED;
  const groups = request.groups.map((groupId): DescribedGroup => {
    try {
      return toDescribed(coordinator.describeGroups([groupId])[0]!, ops);
    } catch (err) {
      const errorCode = errorCodeFor(ctx, err, `group ${groupId}`);
      return { errorCode, groupId, groupState: '', protocolType: '', protocolData: '', members: [], authorizedOperations: ops };
    }
  });
  return { throttleTimeMs: 0, groups };
}

function toDescribed(d: GroupDescription, authorizedOperations: number): DescribedGroup {
  return {
    errorCode: d.errorCode,
    groupId: d.groupId,
    groupState: d.state,
    protocolType: d.protocolType,
    protocolData: d.protocolName,
    members: d.members.map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      clientId: m.clientId,
      clientHost: m.clientHost,
      memberMetadata: m.metadata,
      memberAssignment: m.assignment,
    })),
    authorizedOperations,
  };
}
