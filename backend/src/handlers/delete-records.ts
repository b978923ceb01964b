// DeleteRecords (API 21): move partitions' log start offsets up (offset -1: to the high watermark).
import type { TopicInfo } from '../backends/backend.ts';
import { ErrorCode, KafkaError } from '../protocol/errors.ts';
import type { DeleteRecordsRequest, DeleteRecordsResponse } from '../protocol/generated/index.ts';
import { ApiKey } from '../protocol/generated/index.ts';
import { errorCodeFor, hasPartition, withTimeout } from './common.ts';
import type { ApiHandler, RequestContext } from './types.ts';

type PartitionResult = DeleteRecordsResponse['topics'][number]['partitions'][number];

/** The offset that means "up to the high watermark". */
const HIGH_WATERMARK = -1;

export const deleteRecordsHandler: ApiHandler<DeleteRecordsRequest, DeleteRecordsResponse> = {
  apiKey: ApiKey.DeleteRecords,
  minVersion: 0,
  maxVersion: 2,
  handle: handleDeleteRecords,
};

async function handleDeleteRecords(request: DeleteRecordsRequest, ctx: RequestContext): Promise<DeleteRecordsResponse> {
  const topics = await Promise.all(
    request.topics.map(async (t) => {
      const info = ctx.backend.topic(t.name);
      const partitions = await Promise.all(t.partitions.map((p) => deleteOne(ctx, t.name, info, p.partitionIndex, Number(p.offset), request.timeoutMs)));
      return { name: t.name, partitions };
    }),
  );
  return { throttleTimeMs: 0, topics };
}

async function deleteOne(
  ctx: RequestContext,
  name: string,
  info: TopicInfo | undefined,
  partition: number,
  offset: number,
  timeoutMs: number,
): Promise<PartitionResult> {
  try {
    if (info === undefined || !hasPartition(info, partition)) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    if (offset < 0 && offset !== HIGH_WATERMARK) throw new KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE, `Cannot delete records before offset ${offset}`);
    const low = await withTimeout(ctx.backend.deleteRecords(name, partition, offset), timeoutMs, `Deleting records of ${name}-${partition}`);
    return { partitionIndex: partition, lowWatermark: BigInt(low), errorCode: ErrorCode.NONE };
  } catch (err) {
    return { partitionIndex: partition, lowWatermark: -1n, errorCode: errorCodeFor(ctx, err, `${name}-${partition}`) };
  }
}
