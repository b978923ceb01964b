// CreatePartitions (API 37): grow topics to a new partition count (or, with validate_only, check it).
//
// As with CreateTopics, placement belongs to the Backend: an explicit assignment for the new partitions is
// accepted only when each names every broker of the cluster (checkReplicaSet).
import type { ClusterView } from '../backends/backend.ts';
import { ErrorCode, KafkaError } from '../protocol/errors.ts';
import type { CreatePartitionsRequest, CreatePartitionsResponse } from '../protocol/generated/index.ts';
import { ApiKey } from '../protocol/generated/index.ts';
import { checkReplicaSet, describeError, duplicates, requireTopic, withTimeout } from './common.ts';
import type { ApiHandler, RequestContext } from './types.ts';

type TopicResult = CreatePartitionsResponse['results'][number];
type RequestTopic = CreatePartitionsRequest['topics'][number];

export const createPartitionsHandler: ApiHandler<CreatePartitionsRequest, CreatePartitionsResponse> = {
  apiKey: ApiKey.CreatePartitions,
  minVersion: 0,
  maxVersion: 3,
  handle: handleCreatePartitions,
};

async function handleCreatePartitions(request: CreatePartitionsRequest, ctx: RequestContext): Promise<CreatePartitionsResponse> {
  const dup = duplicates(request.topics.map((t) => t.name));
  const results = await Promise.all(
    request.topics.map((t) =>
      dup.has(t.name)
        ? Promise.resolve({ name: t.name, errorCode: ErrorCode.INVALID_REQUEST, errorMessage: `Topic ${t.name} is listed more than once` })
        : growOne(ctx, t, request.validateOnly, request.timeoutMs),
    ),
  );
  return { throttleTimeMs: 0, results };
}

async function growOne(ctx: RequestContext, t: RequestTopic, validateOnly: boolean, timeoutMs: number): Promise<TopicResult> {
  try {
    const info = requireTopic(ctx, t.name);
    const current = info.partitions.length;
    if (t.count < current) {
      throw new KafkaError(ErrorCode.INVALID_PARTITIONS, `Topic currently has ${current} partitions, which is higher than the requested ${t.count}.`);
    }
    if (t.count === current) throw new KafkaError(ErrorCode.INVALID_PARTITIONS, `Topic already has ${current} partitions.`);
    if (t.assignments !== null) checkAssignments(ctx.backend.cluster(), t.assignments, t.count - current);
    await withTimeout(ctx.backend.createPartitions(info.name, t.count, validateOnly), timeoutMs, `Creating partitions of ${info.name}`);
    return { name: t.name, errorCode: ErrorCode.NONE, errorMessage: null };
  } catch (err) {
    const { code, message } = describeError(ctx, err, `topic ${t.name}`);
    return { name: t.name, errorCode: code, errorMessage: message };
  }
}

function checkAssignments(cluster: ClusterView, assignments: NonNullable<RequestTopic['assignments']>, added: number): void {
  if (assignments.length !== added) {
    throw new KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, `Increasing the number of partitions by ${added} but ${assignments.length} assignments provided.`);
  }
  for (const a of assignments) checkReplicaSet(cluster, a.brokerIds);
}
