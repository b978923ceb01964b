// OffsetCommit (API 8): a group's consumed positions, checked against its membership by the coordinator and
// stored durably through the backend. v0 has no generation or member id: a commit from outside group
// management. v9 (KIP-848 consumer groups) is not served.
import type { GroupCoordinator } from '../group/coordinator.ts';
import type { OffsetCommitInput } from '../group/types.ts';
import type { OffsetCommitRequest, OffsetCommitResponse } from '../protocol/generated/index.ts';
import { ApiKey } from '../protocol/generated/index.ts';
import { errorCodeFor, toNumber } from './common.ts';
import type { ApiHandler, RequestContext } from './types.ts';

export function createOffsetCommitHandler(coordinator: GroupCoordinator): ApiHandler<OffsetCommitRequest, OffsetCommitResponse> {
  return {
    apiKey: ApiKey.OffsetCommit,
    minVersion: 0,
    maxVersion: 8,
    handle: (request, ctx) => handleOffsetCommit(coordinator, request, ctx),
  };
}

async function handleOffsetCommit(coordinator: GroupCoordinator, request: OffsetCommitRequest, ctx: RequestContext): Promise<OffsetCommitResponse> {
  const offsets: OffsetCommitInput['offsets'] = [];
  for (const t of request.topics) {
    for (const p of t.partitions) {
      offsets.push({
        topic: t.name,
        partition: p.partitionIndex,
        offset: toNumber(p.committedOffset),
        leaderEpoch: p.committedLeaderEpoch,
        metadata: p.committedMetadata,
      });
    }
  }
  let codes: number[];
  try {
    const results = await coordinator.commitOffsets({
      groupId: request.groupId,
      // The decoder fills in the schema defaults (-1, '', null) for versions without these fields.
      generationId: request.generationIdOrMemberEpoch,
      memberId: request.memberId,
      groupInstanceId: request.groupInstanceId,
      offsets,
    });
    codes = results.map((r) => r.errorCode);
  } catch (err) {
    const code = errorCodeFor(ctx, err, `offsets of group ${request.groupId}`);
    codes = offsets.map(() => code);
  }
  // Results come back in request order: walk the request again to rebuild its shape.
  let i = 0;
  const topics = request.topics.map((t) => ({
    name: t.name,
    partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: codes[i++]! })),
  }));
  return { throttleTimeMs: 0, topics };
}
