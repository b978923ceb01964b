// CreateTopics (API 19): create topics (or, with validate_only, check that they could be created).
//
// Replica placement belongs to the Backend, so a manual assignment is accepted only when it says nothing the
// Backend would not do anyway: partitions 0..n-1, each replicated on every broker of the cluster (a single
// node: [nodeId]). Anything else is INVALID_REPLICA_ASSIGNMENT with a message saying why.
import { ConfigSource, type ClusterView, type ConfigEntry, type NewTopic, type TopicInfo } from '../backends/backend.ts';
import { ErrorCode, KafkaError } from '../protocol/errors.ts';
import type { CreateTopicsRequest, CreateTopicsResponse } from '../protocol/generated/index.ts';
import { ApiKey } from '../protocol/generated/index.ts';
import { checkReplicaSet, describeError, duplicates, isValidTopicName, withTimeout, ZERO_UUID } from './common.ts';
import type { ApiHandler, RequestContext } from './types.ts';

type TopicResult = CreateTopicsResponse['topics'][number];
type CreatableTopic = CreateTopicsRequest['topics'][number];

export const createTopicsHandler: ApiHandler<CreateTopicsRequest, CreateTopicsResponse> = {
  apiKey: ApiKey.CreateTopics,
  minVersion: 0,
  maxVersion: 7,
  handle: handleCreateTopics,
};

async function handleCreateTopics(request: CreateTopicsRequest, ctx: RequestContext): Promise<CreateTopicsResponse> {
  const dup = duplicates(request.topics.map((t) => t.name));
  const validateOnly = ctx.apiVersion >= 1 && request.validateOnly;
  const topics = await Promise.all(
    request.topics.map((t) =>
      dup.has(t.name)
        ? Promise.resolve(errorResult(t.name, ErrorCode.INVALID_REQUEST, `Topic ${t.name} is listed more than once`))
        : createOne(ctx, t, validateOnly, request.timeoutMs),
    ),
  );
  return { throttleTimeMs: 0, topics };
}

async function createOne(ctx: RequestContext, t: CreatableTopic, validateOnly: boolean, timeoutMs: number): Promise<TopicResult> {
  try {
    if (!isValidTopicName(t.name)) throw new KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, `Invalid topic name: ${t.name}`);
    const newTopic = toNewTopic(ctx, t);
    const info = await withTimeout(ctx.backend.createTopic(newTopic, validateOnly), timeoutMs, `Creating topic ${t.name}`);
    return successResult(ctx, info, validateOnly, newTopic);
  } catch (err) {
    const { code, message } = describeError(ctx, err, `topic ${t.name}`);
    return errorResult(t.name, code, message);
  }
}

function toNewTopic(ctx: RequestContext, t: CreatableTopic): NewTopic {
  const configs: Record<string, string> = {};
  for (const c of t.configs) {
    if (c.name in configs) throw new KafkaError(ErrorCode.INVALID_REQUEST, `Config ${c.name} is set more than once`);
    if (c.value === null) throw new KafkaError(ErrorCode.INVALID_CONFIG, `Null value not supported for topic config ${c.name}`);
    configs[c.name] = c.value;
  }
  if (t.assignments.length > 0) return { name: t.name, ...fromAssignments(ctx.backend.cluster(), t), configs };
  if (t.numPartitions === 0 || t.numPartitions < -1) {
    throw new KafkaError(ErrorCode.INVALID_PARTITIONS, `Number of partitions must be larger than 0 (or -1 for the default)`);
  }
  if (t.replicationFactor === 0 || t.replicationFactor < -1) {
    throw new KafkaError(ErrorCode.INVALID_REPLICATION_FACTOR, `Replication factor must be larger than 0 (or -1 for the default)`);
  }
  return { name: t.name, numPartitions: t.numPartitions, replicationFactor: t.replicationFactor, configs };
}

/** A manual assignment, accepted only when it matches the Backend's own placement (every broker, every partition). */
function fromAssignments(cluster: ClusterView, t: CreatableTopic): { numPartitions: number; replicationFactor: number } {
  if (t.numPartitions !== -1 || t.replicationFactor !== -1) {
    throw new KafkaError(ErrorCode.INVALID_REQUEST, 'Both num_partitions or replication_factor and a replica assignment were set');
  }
  const indexes = new Set<number>();
  for (const a of t.assignments) {
    if (a.partitionIndex < 0 || a.partitionIndex >= t.assignments.length || indexes.has(a.partitionIndex)) {
      throw new KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, 'Partitions in a replica assignment must be 0..n-1, each once');
    }
    indexes.add(a.partitionIndex);
    checkReplicaSet(cluster, a.brokerIds);
  }
  return { numPartitions: t.assignments.length, replicationFactor: cluster.brokers.length };
}

function successResult(ctx: RequestContext, info: TopicInfo, validateOnly: boolean, requested: NewTopic): TopicResult {
  const result: TopicResult = {
    name: info.name,
    topicId: validateOnly ? ZERO_UUID : info.topicId,
    errorCode: ErrorCode.NONE,
    errorMessage: null,
    topicConfigErrorCode: ErrorCode.NONE,
    numPartitions: info.partitions.length,
    replicationFactor: info.partitions[0]?.replicas.length ?? requested.replicationFactor,
    configs: null,
  };
  // The topic exists now: a failure to describe its configs is reported apart, not as a failed creation.
  try {
    result.configs = createdConfigs(ctx, info.name, validateOnly, requested);
  } catch (err) {
    result.topicConfigErrorCode = describeError(ctx, err, `configs of ${info.name}`).code;
  }
  return result;
}

/**
 * v5+ return the topic's effective configs. After a real creation they come from the Backend; with
 * validate_only the topic does not exist, so the answer is the configs the request sets (the rest would be
 * the broker defaults, which DescribeConfigs on the broker shows).
 */
function createdConfigs(ctx: RequestContext, name: string, validateOnly: boolean, requested: NewTopic): TopicResult['configs'] {
  if (validateOnly) {
    return Object.entries(requested.configs).map(([key, value]) => ({ name: key, value, readOnly: false, configSource: ConfigSource.DYNAMIC_TOPIC_CONFIG, isSensitive: false }));
  }
  return ctx.backend.describeTopicConfigs(name).map(configResult);
}

function configResult(e: ConfigEntry): NonNullable<TopicResult['configs']>[number] {
  return { name: e.name, value: e.sensitive ? null : e.value, readOnly: e.readOnly, configSource: e.source, isSensitive: e.sensitive };
}

function errorResult(name: string, errorCode: number, errorMessage: string): TopicResult {
  return {
    name,
    topicId: ZERO_UUID,
    errorCode,
    errorMessage,
    topicConfigErrorCode: ErrorCode.NONE,
    numPartitions: -1,
    replicationFactor: -1,
    configs: [],
  };
}
