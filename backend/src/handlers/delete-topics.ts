// DeleteTopics (API 20): delete topics by name (v0-5: topic_names; v6: topics, by name or by id).
import { ErrorCode, KafkaError } from '../protocol/errors.ts';
import type { DeleteTopicsRequest, DeleteTopicsResponse } from '../protocol/generated/index.ts';
import { ApiKey } from '../protocol/generated/index.ts';
import { describeError, duplicates, isZeroUuid, withTimeout, ZERO_UUID } from './common.ts';
import type { ApiHandler, RequestContext } from './types.ts';

type TopicResult = DeleteTopicsResponse['responses'][number];

const TOPIC_STATE_MIN_VERSION = 6;

/** One requested deletion, by name or by id (never both: Kafka refuses that). */
interface Target {
  name: string | null;
  topicId: Buffer;
}

export const deleteTopicsHandler: ApiHandler<DeleteTopicsRequest, DeleteTopicsResponse> = {
  apiKey: ApiKey.DeleteTopics,
  minVersion: 0,
  maxVersion: 6,
  handle: handleDeleteTopics,
};

async function handleDeleteTopics(request: DeleteTopicsRequest, ctx: RequestContext): Promise<DeleteTopicsResponse> {
  const targets: Target[] =
    ctx.apiVersion >= TOPIC_STATE_MIN_VERSION
      ? request.topics.map((t) => ({ name: t.name, topicId: t.topicId }))
      : request.topicNames.map((name) => ({ name, topicId: ZERO_UUID }));
  const dup = duplicates(targets.map(targetKey));
  const responses = await Promise.all(
    targets.map((t) =>
      dup.has(targetKey(t))
        ? Promise.resolve(result(t.name, t.topicId, ErrorCode.INVALID_REQUEST, 'Topic is listed more than once'))
        : deleteOne(ctx, t, request.timeoutMs),
    ),
  );
  return { throttleTimeMs: 0, responses };
}

function targetKey(t: Target): string {
  return isZeroUuid(t.topicId) ? `n:${t.name}` : `i:${t.topicId.toString('hex')}`;
}

async function deleteOne(ctx: RequestContext, target: Target, timeoutMs: number): Promise<TopicResult> {
  const byId = !isZeroUuid(target.topicId);
  let name = target.name;
  try {
    if (byId && target.name !== null) throw new KafkaError(ErrorCode.INVALID_REQUEST, 'Name a topic by name or by id, not both');
    const info = byId ? ctx.backend.topicById(target.topicId) : target.name === null ? undefined : ctx.backend.topic(target.name);
    if (info === undefined) {
      throw byId
        ? new KafkaError(ErrorCode.UNKNOWN_TOPIC_ID, `Unknown topic id ${target.topicId.toString('hex')}`)
        : new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `Unknown topic: ${target.name}`);
    }
    name = info.name;
    await withTimeout(ctx.backend.deleteTopic(info.name), timeoutMs, `Deleting topic ${info.name}`);
    return result(info.name, info.topicId, ErrorCode.NONE, null);
  } catch (err) {
    const { code, message } = describeError(ctx, err, `topic ${name}`);
    return result(name, target.topicId, code, message);
  }
}

function result(name: string | null, topicId: Buffer, errorCode: number, errorMessage: string | null): TopicResult {
  return { name, topicId, errorCode, errorMessage };
}
