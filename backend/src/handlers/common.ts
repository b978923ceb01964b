// Helpers shared by the data and admin handlers: error mapping, topic lookup with auto-creation, topic name
// rules, int64 conversion and the authorized-operations bit fields.
import type { ClusterView, TopicInfo } from '../backends/backend.ts';
import { ErrorCode, KafkaError } from '../protocol/errors.ts';
import type { RequestContext } from './types.ts';

/** Topic names longer than this are invalid (Kafka's limit, leaving room for partition directory suffixes). */
export const TOPIC_NAME_LENGTH_MAX = 249;

const TOPIC_NAME_CHARS = /^[a-zA-Z0-9._-]+$/;

/** Kafka's topic name rule: 1..249 characters of [a-zA-Z0-9._-], and not "." or "..". */
export function isValidTopicName(name: string | null | undefined): name is string {
  return (
    typeof name === 'string' &&
    name.length > 0 &&
    name.length <= TOPIC_NAME_LENGTH_MAX &&
    name !== '.' &&
    name !== '..' &&
    TOPIC_NAME_CHARS.test(name)
  );
}

/**
 * The error code for something thrown while serving one item (topic, partition, resource). A KafkaError is
 * an operating error and maps to its code; anything else is a bug: logged at error, UNKNOWN_SERVER_ERROR.
 */
export function errorCodeFor(ctx: RequestContext, err: unknown, item: string): number {
  if (err instanceof KafkaError) return err.code;
  ctx.log.error({ err, apiKey: ctx.apiKey, apiVersion: ctx.apiVersion, item }, 'handler bug while serving %s', item);
  return ErrorCode.UNKNOWN_SERVER_ERROR;
}

/** The text for a response's error_message field: the KafkaError's message, or a generic one for bugs. */
export function errorMessageFor(err: unknown): string {
  return err instanceof KafkaError ? err.message : 'Unexpected server error';
}

/** Code and message together, for responses that carry both. */
export function describeError(ctx: RequestContext, err: unknown, item: string): { code: number; message: string } {
  return { code: errorCodeFor(ctx, err, item), message: errorMessageFor(err) };
}

/** int64 from the wire to the Backend's number. Values beyond 2^53 lose precision (no real log gets there). */
export function toNumber(value: bigint): number {
  return Number(value);
}

/** The Backend's number to the wire's int64. */
export function toBigInt(value: number): bigint {
  return BigInt(value);
}

export function hasPartition(topic: TopicInfo, partition: number): boolean {
  const byIndex = topic.partitions[partition];
  if (byIndex !== undefined && byIndex.partition === partition) return true;
  return topic.partitions.some((p) => p.partition === partition);
}

export function findPartition(topic: TopicInfo, partition: number): TopicInfo['partitions'][number] | undefined {
  const byIndex = topic.partitions[partition];
  if (byIndex !== undefined && byIndex.partition === partition) return byIndex;
  return topic.partitions.find((p) => p.partition === partition);
}

/** The topic, or UNKNOWN_TOPIC_OR_PARTITION (INVALID_TOPIC_EXCEPTION for a name no topic can have). */
export function requireTopic(ctx: RequestContext, name: string | null): TopicInfo {
  const topic = name === null ? undefined : ctx.backend.topic(name);
  if (topic !== undefined) return topic;
  if (!isValidTopicName(name)) throw new KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, `Invalid topic name: ${name}`);
  throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `Unknown topic: ${name}`);
}

/**
 * The topic, created with the broker defaults when it does not exist and `autoCreate` allows it. A concurrent
 * creation of the same topic (another request, another client) is not an error: TOPIC_ALREADY_EXISTS means
 * someone else won the race, and we use their topic.
 */
export async function resolveOrCreateTopic(ctx: RequestContext, name: string | null, autoCreate: boolean): Promise<TopicInfo> {
  // An existing topic's name is valid by construction: the name check runs only on a miss (hot path).
  const existing = name === null ? undefined : ctx.backend.topic(name);
  if (existing !== undefined) return existing;
  if (!isValidTopicName(name)) throw new KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, `Invalid topic name: ${name}`);
  if (!autoCreate) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `Unknown topic: ${name}`);
  try {
    return await ctx.backend.createTopic({ name, numPartitions: -1, replicationFactor: -1, configs: {} }, false);
  } catch (err) {
    if (!(err instanceof KafkaError) || err.code !== ErrorCode.TOPIC_ALREADY_EXISTS) throw err;
    const raced = ctx.backend.topic(name);
    // Created by someone else but not applied here yet (cluster mode): a retriable error, the client retries.
    if (raced === undefined) throw new KafkaError(ErrorCode.LEADER_NOT_AVAILABLE, `Topic ${name} is being created`);
    return raced;
  }
}

/**
 * Resolves with `work`, or rejects with REQUEST_TIMED_OUT after `timeoutMs` (the request's timeout_ms; <= 0:
 * no limit). The work itself is not cancelled: like Kafka, a timed-out admin change may still complete.
 */
export function withTimeout<T>(work: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  if (!(timeoutMs > 0)) return work;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new KafkaError(ErrorCode.REQUEST_TIMED_OUT, `${what} timed out after ${timeoutMs} ms`)), timeoutMs);
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/** The 16 zero bytes that mean "no topic id" on the wire. */
export const ZERO_UUID: Buffer = Buffer.alloc(16);

export function isZeroUuid(id: Buffer | null | undefined): boolean {
  return id === null || id === undefined || id.equals(ZERO_UUID);
}

/** authorized_operations when the client did not ask for them. */
export const AUTHORIZED_OPERATIONS_OMITTED = -2147483648;

// ACL operation codes (org.apache.kafka.common.acl.AclOperation).
const AclOp = {
  READ: 3,
  WRITE: 4,
  CREATE: 5,
  DELETE: 6,
  ALTER: 7,
  DESCRIBE: 8,
  CLUSTER_ACTION: 9,
  DESCRIBE_CONFIGS: 10,
  ALTER_CONFIGS: 11,
  IDEMPOTENT_WRITE: 12,
} as const;

function bitField(ops: number[]): number {
  return ops.reduce((bits, op) => bits | (1 << op), 0);
}

/**
 * This broker has no authorizer, so like Kafka without one it reports every operation the resource type
 * supports as authorized.
 */
export const TOPIC_AUTHORIZED_OPERATIONS = bitField([
  AclOp.READ, AclOp.WRITE, AclOp.CREATE, AclOp.DELETE, AclOp.ALTER, AclOp.DESCRIBE, AclOp.DESCRIBE_CONFIGS,
  AclOp.ALTER_CONFIGS,
]);

export const CLUSTER_AUTHORIZED_OPERATIONS = bitField([
  AclOp.CREATE, AclOp.CLUSTER_ACTION, AclOp.DESCRIBE_CONFIGS, AclOp.ALTER_CONFIGS, AclOp.IDEMPOTENT_WRITE,
  AclOp.ALTER, AclOp.DESCRIBE,
]);

/** DescribeConfigs / AlterConfigs resource types (org.apache.kafka.common.config.ConfigResource.Type). */
export const ResourceType = {
  UNKNOWN: 0,
  TOPIC: 2,
  BROKER: 4,
  BROKER_LOGGER: 8,
  CLIENT_METRICS: 16,
  GROUP: 32,
} as const;

/** Names that appear more than once in `names` (requests that list the same resource twice are refused). */
export function duplicates(names: Iterable<string | null>): Set<string | null> {
  const seen = new Set<string | null>();
  const dup = new Set<string | null>();
  for (const name of names) {
    if (seen.has(name)) dup.add(name);
    else seen.add(name);
  }
  return dup;
}

/** KIP-951: with NOT_LEADER_OR_FOLLOWER, tell the client who leads now so it need not refresh metadata first. */
export function currentLeader(ctx: RequestContext, topic: string, partition: number): { leaderId: number; leaderEpoch: number } {
  const info = ctx.backend.topic(topic);
  const p = info === undefined ? undefined : findPartition(info, partition);
  return p === undefined ? { leaderId: -1, leaderEpoch: -1 } : { leaderId: p.leaderId, leaderEpoch: p.leaderEpoch };
}

/** KIP-951: the endpoints of the leaders named in the partitions' currentLeader fields (Produce v10+, Fetch v16+). */
export function leaderEndpoints(
  ctx: RequestContext,
  partitionLists: { errorCode: number; currentLeader?: { leaderId: number } | null }[][],
): { nodeId: number; host: string; port: number; rack: string | null }[] {
  let leaders: Set<number> | undefined;
  for (const partitions of partitionLists) {
    for (const p of partitions) {
      if (p.errorCode !== ErrorCode.NOT_LEADER_OR_FOLLOWER) continue;
      const id = p.currentLeader?.leaderId ?? -1;
      if (id >= 0) (leaders ??= new Set()).add(id);
    }
  }
  if (leaders === undefined) return [];
  const wanted = leaders;
  return ctx.backend
    .cluster()
    .brokers.filter((b) => wanted.has(b.nodeId))
    .map((b) => ({ nodeId: b.nodeId, host: b.host, port: b.port, rack: b.rack }));
}

/**
 * Replica placement belongs to the Backend (every partition lives on every node of the cluster), so a
 * manual assignment (CreateTopics, CreatePartitions) is accepted only when it names exactly those brokers.
 */
export function checkReplicaSet(cluster: ClusterView, brokerIds: number[]): void {
  const all = cluster.brokers.map((b) => b.nodeId).sort((a, b) => a - b);
  const ids = [...brokerIds].sort((a, b) => a - b);
  if (ids.length !== all.length || ids.some((id, i) => id !== all[i])) {
    throw new KafkaError(
      ErrorCode.INVALID_REPLICA_ASSIGNMENT,
      `Manual replica placement is not supported: every partition is replicated on all brokers [${all.join(', ')}]`,
    );
  }
}
