// OffsetFetch (API 9): a group's committed offsets, for the listed partitions or (v2+, topics null) all of
// them. v8+ asks for several groups at once. Before v2 there is no group-level error field, so a group error
// is reported on every requested partition. v9 (KIP-848 member epochs) is not served.
import type { GroupCoordinator } from '../group/coordinator.ts';
import type { FetchedOffset, OffsetFetchOutput, TopicPartition } from '../group/types.ts';
import { ErrorCode } from '../protocol/errors.ts';
import type { OffsetFetchRequest, OffsetFetchResponse } from '../protocol/generated/index.ts';
import { ApiKey } from '../protocol/generated/index.ts';
import { errorCodeFor, toBigInt } from './common.ts';
import type { ApiHandler, RequestContext } from './types.ts';

type ResponseTopic = OffsetFetchResponse['topics'][number];

const GROUP_ERROR_MIN_VERSION = 2;
const MULTI_GROUP_MIN_VERSION = 8;

export function createOffsetFetchHandler(coordinator: GroupCoordinator): ApiHandler<OffsetFetchRequest, OffsetFetchResponse> {
  return {
    apiKey: ApiKey.OffsetFetch,
    minVersion: 0,
    maxVersion: 8,
    handle: (request, ctx) => handleOffsetFetch(coordinator, request, ctx),
  };
}

async function handleOffsetFetch(coordinator: GroupCoordinator, request: OffsetFetchRequest, ctx: RequestContext): Promise<OffsetFetchResponse> {
  if (ctx.apiVersion >= MULTI_GROUP_MIN_VERSION) {
    const groups = await Promise.all(
      request.groups.map(async (g) => {
        const r = await fetchGroup(coordinator, ctx, g.groupId, g.topics);
        return { groupId: g.groupId, topics: r.errorCode === ErrorCode.NONE ? byTopic(r.offsets) : [], errorCode: r.errorCode };
      }),
    );
    return { throttleTimeMs: 0, topics: [], errorCode: ErrorCode.NONE, groups };
  }
  const r = await fetchGroup(coordinator, ctx, request.groupId, request.topics);
  if (r.errorCode !== ErrorCode.NONE && ctx.apiVersion < GROUP_ERROR_MIN_VERSION) {
    const failed = requested(request.topics ?? []).map((p): FetchedOffset => ({ ...p, offset: -1, leaderEpoch: -1, metadata: '', errorCode: r.errorCode }));
    return { throttleTimeMs: 0, topics: byTopic(failed), errorCode: ErrorCode.NONE, groups: [] };
  }
  return { throttleTimeMs: 0, topics: r.errorCode === ErrorCode.NONE ? byTopic(r.offsets) : [], errorCode: r.errorCode, groups: [] };
}

async function fetchGroup(coordinator: GroupCoordinator, ctx: RequestContext, groupId: string,
  topics: { name: string; partitionIndexes: number[] }[] | null): Promise<OffsetFetchOutput> {
  try {
    return await coordinator.fetchOffsets(groupId, topics === null ? null : requested(topics));
  } catch (err) {
    return { errorCode: errorCodeFor(ctx, err, `offsets of group ${groupId}`), offsets: [] };
  }
}

function requested(topics: { name: string; partitionIndexes: number[] }[]): TopicPartition[] {
  return topics.flatMap((t) => t.partitionIndexes.map((partition) => ({ topic: t.name, partition })));
}

/** Groups offsets by topic, topics in order of first appearance. */
function byTopic(offsets: FetchedOffset[]): ResponseTopic[] {
  const topics = new Map<string, ResponseTopic>();
  for (const o of offsets) {
    let t = topics.get(o.topic);
    if (t === undefined) topics.set(o.topic, (t = { name: o.topic, partitions: [] }));
    t.partitions.push({
      partitionIndex: o.partition,
      committedOffset: toBigInt(o.offset),
      committedLeaderEpoch: o.leaderEpoch,
      metadata: o.metadata,
      errorCode: o.errorCode,
    });
  }
  return [...topics.values()];
}
