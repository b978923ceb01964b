// LeaveGroup (API 13): members leave a group. v0-2 name one member; v3+ batch them with per-member errors
// (KIP-345), and a member id of '' removes a static member by its group.instance.id.
import type { GroupCoordinator } from '../group/coordinator.ts';
import type { LeavingMember } from '../group/types.ts';
import { ErrorCode } from '../protocol/errors.ts';
import type { LeaveGroupRequest, LeaveGroupResponse } from '../protocol/generated/index.ts';
import { ApiKey } from '../protocol/generated/index.ts';
import { errorCodeFor } from './common.ts';
import type { ApiHandler, RequestContext } from './types.ts';

const BATCHED_MIN_VERSION = 3;

export function createLeaveGroupHandler(coordinator: GroupCoordinator): ApiHandler<LeaveGroupRequest, LeaveGroupResponse> {
  return {
    apiKey: ApiKey.LeaveGroup,
    minVersion: 0,
    maxVersion: 5,
    handle: (request, ctx) => handleLeaveGroup(coordinator, request, ctx),
  };
}

function handleLeaveGroup(coordinator: GroupCoordinator, request: LeaveGroupRequest, ctx: RequestContext): LeaveGroupResponse {
  const batched = ctx.apiVersion >= BATCHED_MIN_VERSION;
  const leaving: LeavingMember[] = batched
    ? request.members.map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId, reason: m.reason }))
    : [{ memberId: request.memberId, groupInstanceId: null, reason: null }];
  let result;
  try {
    result = coordinator.leave(request.groupId, leaving);
  } catch (err) {
    return { throttleTimeMs: 0, errorCode: errorCodeFor(ctx, err, `group ${request.groupId}`), members: [] };
  }
  if (batched) return { throttleTimeMs: 0, errorCode: result.errorCode, members: result.members };
  // Before v3 the one member's error is the response's error (as Kafka does).
  const memberError = result.members.find((m) => m.errorCode !== ErrorCode.NONE)?.errorCode ?? ErrorCode.NONE;
  return { throttleTimeMs: 0, errorCode: result.errorCode !== ErrorCode.NONE ? result.errorCode : memberError, members: [] };
}
