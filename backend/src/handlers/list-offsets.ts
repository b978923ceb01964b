// ListOffsets (API 2): the offset for a timestamp, or for one of the special timestamps (-1 latest, -2
// earliest, -3 max timestamp, -4 earliest local, -5 latest tiered), per partition.
//
// v0 answers with old_style_offsets: this broker returns the one offset the timestamp maps to (Kafka's legacy
// answer listed segment base offsets before the timestamp; every client we know asks for one offset).
import type { TopicInfo } from '../backends/backend.ts';
import { ErrorCode, KafkaError } from '../protocol/errors.ts';
import type { ListOffsetsRequest, ListOffsetsResponse } from '../protocol/generated/index.ts';
import { ApiKey } from '../protocol/generated/index.ts';
import { errorCodeFor, hasPartition } from './common.ts';
import type { ApiHandler, RequestContext } from './types.ts';

type TopicResponse = ListOffsetsResponse['topics'][number];
type PartitionResponse = TopicResponse['partitions'][number];
type RequestTopic = ListOffsetsRequest['topics'][number];
type RequestPartition = RequestTopic['partitions'][number];

/** v1+ refuse a partition listed twice (Kafka answers INVALID_REQUEST for each copy). */
const DUPLICATE_CHECK_MIN_VERSION = 1;

export const listOffsetsHandler: ApiHandler<ListOffsetsRequest, ListOffsetsResponse> = {
  apiKey: ApiKey.ListOffsets,
  // v8-v10 only add offset specs for tiered storage (-4, -5) and a timeout, which the Backend answers.
  minVersion: 0,
  maxVersion: 10,
  handle: handleListOffsets,
};

async function handleListOffsets(request: ListOffsetsRequest, ctx: RequestContext): Promise<ListOffsetsResponse> {
  const isolationLevel = ctx.apiVersion >= 2 ? request.isolationLevel : 0;
  const dup = ctx.apiVersion >= DUPLICATE_CHECK_MIN_VERSION ? duplicatePartitions(request) : new Set<string>();
  const topics = await Promise.all(
    request.topics.map(async (t): Promise<TopicResponse> => {
      const info = ctx.backend.topic(t.name);
      const partitions = await Promise.all(t.partitions.map((p) => listPartition(ctx, t.name, info, p, isolationLevel, dup)));
      return { name: t.name, partitions };
    }),
  );
  return { throttleTimeMs: 0, topics };
}

async function listPartition(
  ctx: RequestContext,
  name: string,
  info: TopicInfo | undefined,
  p: RequestPartition,
  isolationLevel: number,
  dup: Set<string>,
): Promise<PartitionResponse> {
  try {
    if (dup.has(`${name}\0${p.partitionIndex}`)) throw new KafkaError(ErrorCode.INVALID_REQUEST, 'Partition listed more than once');
    if (info === undefined || !hasPartition(info, p.partitionIndex)) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    const r = await ctx.backend.listOffset(name, p.partitionIndex, Number(p.timestamp), isolationLevel);
    const found = r.offset >= 0;
    return {
      partitionIndex: p.partitionIndex,
      errorCode: ErrorCode.NONE,
      oldStyleOffsets: found && p.maxNumOffsets > 0 ? [BigInt(r.offset)] : [],
      timestamp: BigInt(r.timestamp),
      offset: BigInt(r.offset),
      leaderEpoch: r.leaderEpoch,
    };
  } catch (err) {
    return {
      partitionIndex: p.partitionIndex,
      errorCode: errorCodeFor(ctx, err, `${name}-${p.partitionIndex}`),
      oldStyleOffsets: [],
      timestamp: -1n,
      offset: -1n,
      leaderEpoch: -1,
    };
  }
}

function duplicatePartitions(request: ListOffsetsRequest): Set<string> {
  const seen = new Set<string>();
  const dup = new Set<string>();
  for (const t of request.topics) {
    for (const p of t.partitions) {
      const key = `${t.name}\0${p.partitionIndex}`;
      if (seen.has(key)) dup.add(key);
      else seen.add(key);
    }
  }
  return dup;
}
