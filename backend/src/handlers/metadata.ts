// Metadata (API 3): brokers, controller, cluster id and the requested topics with their partitions.
//
// All topics: topics null (v1+) or empty (v0). Listed topics missing here are created with the broker
// defaults when the broker allows auto-creation and the client does too (allow_auto_topic_creation, v4+;
// older versions always allow it). v12 may name topics by id instead of name.
import type { ClusterView, TopicInfo } from '../backends/backend.ts';
import { ErrorCode, KafkaError } from '../protocol/errors.ts';
import type { MetadataRequest, MetadataResponse } from '../protocol/generated/index.ts';
import { ApiKey } from '../protocol/generated/index.ts';
import {
  AUTHORIZED_OPERATIONS_OMITTED,
  CLUSTER_AUTHORIZED_OPERATIONS,
  TOPIC_AUTHORIZED_OPERATIONS,
  ZERO_UUID,
  errorCodeFor,
  isZeroUuid,
  resolveOrCreateTopic,
} from './common.ts';
import type { ApiHandler, RequestContext } from './types.ts';

type TopicResponse = MetadataResponse['topics'][number];
type PartitionResponse = TopicResponse['partitions'][number];
type RequestTopic = NonNullable<MetadataRequest['topics']>[number];

const ALLOW_AUTO_CREATE_MIN_VERSION = 4;
const TOPIC_ID_LOOKUP_MIN_VERSION = 12;

export const metadataHandler: ApiHandler<MetadataRequest, MetadataResponse> = {
  apiKey: ApiKey.Metadata,
  minVersion: 0,
  maxVersion: 12,
  handle: handleMetadata,
};

async function handleMetadata(request: MetadataRequest, ctx: RequestContext): Promise<MetadataResponse> {
  const version = ctx.apiVersion;
  const cluster = ctx.backend.cluster();
  const allTopics = request.topics === null || (version === 0 && request.topics.length === 0);
  const operations = request.includeTopicAuthorizedOperations ? TOPIC_AUTHORIZED_OPERATIONS : AUTHORIZED_OPERATIONS_OMITTED;
  let topics: TopicResponse[];
  if (allTopics) {
    topics = ctx.backend.topics().map((t) => topicResponse(t, operations));
  } else {
    const autoCreate = ctx.backend.autoCreateTopics && (version < ALLOW_AUTO_CREATE_MIN_VERSION || request.allowAutoTopicCreation);
    topics = await Promise.all(uniqueTopics(request.topics!).map((t) => describeTopic(ctx, t, autoCreate, operations)));
  }
  return {
    throttleTimeMs: 0,
    brokers: brokers(cluster),
    clusterId: cluster.clusterId,
    controllerId: cluster.controllerId,
    topics,
    clusterAuthorizedOperations: request.includeClusterAuthorizedOperations ? CLUSTER_AUTHORIZED_OPERATIONS : AUTHORIZED_OPERATIONS_OMITTED,
  };
}

function brokers(cluster: ClusterView): MetadataResponse['brokers'] {
  return cluster.brokers.map((b) => ({ nodeId: b.nodeId, host: b.host, port: b.port, rack: b.rack }));
}

/** A topic listed twice is answered once (by id when it has one, else by name). */
function uniqueTopics(topics: RequestTopic[]): RequestTopic[] {
  const seen = new Set<string>();
  return topics.filter((t) => {
    const key = isZeroUuid(t.topicId) ? `n:${t.name}` : `i:${t.topicId.toString('hex')}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

async function describeTopic(ctx: RequestContext, requested: RequestTopic, autoCreate: boolean, operations: number): Promise<TopicResponse> {
  const byId = !isZeroUuid(requested.topicId);
  try {
    if (byId || requested.name === null) return describeTopicById(ctx, requested, operations);
    const info = await resolveOrCreateTopic(ctx, requested.name, autoCreate);
    return topicResponse(info, operations);
  } catch (err) {
    return errorTopic(errorCodeFor(ctx, err, `topic ${requested.name}`), requested.name ?? '', ZERO_UUID, operations);
  }
}

/** v12 looks topics up by id (never auto-creating); earlier versions may not send ids (Kafka: INVALID_REQUEST). */
function describeTopicById(ctx: RequestContext, requested: RequestTopic, operations: number): TopicResponse {
  if (ctx.apiVersion < TOPIC_ID_LOOKUP_MIN_VERSION) {
    throw new KafkaError(ErrorCode.INVALID_REQUEST, `Metadata v${ctx.apiVersion} requests must name topics`);
  }
  const info = isZeroUuid(requested.topicId) ? undefined : ctx.backend.topicById(requested.topicId);
  if (info === undefined) return errorTopic(ErrorCode.UNKNOWN_TOPIC_ID, null, requested.topicId, operations);
  return topicResponse(info, operations);
}

function topicResponse(info: TopicInfo, operations: number): TopicResponse {
  return {
    errorCode: ErrorCode.NONE,
    name: info.name,
    topicId: info.topicId,
    isInternal: info.internal,
    partitions: info.partitions.map(partitionResponse),
    topicAuthorizedOperations: operations,
  };
}

function partitionResponse(p: TopicInfo['partitions'][number]): PartitionResponse {
  return {
    // Kafka flags a partition without a live leader so clients back off and refresh.
    errorCode: p.leaderId < 0 ? ErrorCode.LEADER_NOT_AVAILABLE : ErrorCode.NONE,
    partitionIndex: p.partition,
    leaderId: p.leaderId,
    leaderEpoch: p.leaderEpoch,
    replicaNodes: p.replicas,
    isrNodes: p.isr,
    offlineReplicas: p.offlineReplicas,
  };
}

function errorTopic(errorCode: number, name: string | null, topicId: Buffer, operations: number): TopicResponse {
  return { errorCode, name, topicId, isInternal: false, partitions: [], topicAuthorizedOperations: operations };
}
