// JoinGroup (API 11): a member joins (or rejoins) a classic group and waits for the rebalance. The wait is a
// long poll on the coordinator, ended early when the connection closes (ctx.signal).
import type { GroupCoordinator } from '../group/coordinator.ts';
import type { JoinGroupOutput } from '../group/types.ts';
import type { JoinGroupRequest, JoinGroupResponse } from '../protocol/generated/index.ts';
import { ApiKey } from '../protocol/generated/index.ts';
import { errorCodeFor } from './common.ts';
import type { ApiHandler, RequestContext } from './types.ts';

/** v4+: a new member first gets MEMBER_ID_REQUIRED and its id (KIP-394). */
const MEMBER_ID_REQUIRED_MIN_VERSION = 4;
/** v7+: protocol type and name may be null in the response. */
const NULLABLE_PROTOCOL_MIN_VERSION = 7;
/** v9+: the coordinator may tell a rejoining static leader to skip the assignment (KIP-814). */
const SKIP_ASSIGNMENT_MIN_VERSION = 9;

export function createJoinGroupHandler(coordinator: GroupCoordinator): ApiHandler<JoinGroupRequest, JoinGroupResponse> {
  return {
    apiKey: ApiKey.JoinGroup,
    minVersion: 0,
    maxVersion: 9,
    handle: (request, ctx) => handleJoinGroup(coordinator, request, ctx),
  };
}

async function handleJoinGroup(coordinator: GroupCoordinator, request: JoinGroupRequest, ctx: RequestContext): Promise<JoinGroupResponse> {
  const v = ctx.apiVersion;
  try {
    const result = await coordinator.join({
      groupId: request.groupId,
      memberId: request.memberId,
      groupInstanceId: request.groupInstanceId,
      sessionTimeoutMs: request.sessionTimeoutMs,
      // v0 has no rebalance timeout: Kafka uses the session timeout.
      rebalanceTimeoutMs: v >= 1 ? request.rebalanceTimeoutMs : request.sessionTimeoutMs,
      protocolType: request.protocolType,
      protocols: request.protocols,
      clientId: ctx.clientId ?? '',
      clientHost: clientHostOf(ctx.remoteAddress),
      requireKnownMemberId: v >= MEMBER_ID_REQUIRED_MIN_VERSION,
      supportSkippingAssignment: v >= SKIP_ASSIGNMENT_MIN_VERSION,
      reason: request.reason,
    }, ctx.signal);
    return toResponse(result, v);
  } catch (err) {
    const errorCode = errorCodeFor(ctx, err, `group ${request.groupId}`);
    return toResponse({ errorCode, generationId: -1, protocolType: null, protocolName: null, leaderId: '', skipAssignment: false, memberId: request.memberId, members: [] }, v);
  }
}

/** Kafka's client host: '/' and the peer's address, without the port ('/127.0.0.1'). */
export function clientHostOf(remoteAddress: string): string {
  const colon = remoteAddress.lastIndexOf(':');
  const port = colon < 0 ? '' : remoteAddress.slice(colon + 1);
  const host = port === '?' || /^\d+$/.test(port) ? remoteAddress.slice(0, colon) : remoteAddress;
  return `/${host}`;
}

function toResponse(r: JoinGroupOutput, version: number): JoinGroupResponse {
  const nullable = version >= NULLABLE_PROTOCOL_MIN_VERSION;
  return {
    throttleTimeMs: 0,
    errorCode: r.errorCode,
    generationId: r.generationId,
    protocolType: r.protocolType,
    protocolName: nullable ? r.protocolName : (r.protocolName ?? ''),
    leader: r.leaderId,
    skipAssignment: r.skipAssignment,
    memberId: r.memberId,
    members: r.members.map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId, metadata: m.metadata })),
  };
}
