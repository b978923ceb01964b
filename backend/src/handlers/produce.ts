// Produce (API 0): append each partition's record batch through the Backend.
//
// Partitions of one request are appended concurrently; the Backend keeps each partition's appends in call
// order, and a partition listed twice in one request is appended in request order. With acks=0 the handler
// returns NO_RESPONSE as soon as every append has been handed to the Backend, without waiting for them.
// No per-record work: the batch is checked only at its header (count, magic, compression) and passed on.
import type { AppendOptions, AppendResult, TopicInfo } from '../backends/backend.ts';
import { ErrorCode, KafkaError } from '../protocol/errors.ts';
import type { ProduceRequest, ProduceResponse } from '../protocol/generated/index.ts';
import { ApiKey } from '../protocol/generated/index.ts';
import { BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD_BYTES, BatchAttribute, BatchField, CompressionCodec, MAGIC_V2 } from '../protocol/records/batch.ts';
import { currentLeader, errorCodeFor, errorMessageFor, hasPartition, leaderEndpoints, resolveOrCreateTopic } from './common.ts';
import { NO_RESPONSE, type ApiHandler, type RequestContext } from './types.ts';

type TopicResponse = ProduceResponse['responses'][number];
type PartitionResponse = TopicResponse['partitionResponses'][number];
type TopicData = ProduceRequest['topicData'][number];
type PartitionData = TopicData['partitionData'][number];

/** The default of the v10+ tagged currentLeader field (not written), shared: no allocation per partition. */
const NO_LEADER = Object.freeze({ leaderId: -1, leaderEpoch: -1 });

/** Produce versions before this one may not carry zstd batches (KIP-110). */
const ZSTD_MIN_VERSION = 7;

export const produceHandler: ApiHandler<ProduceRequest, ProduceResponse> = {
  apiKey: ApiKey.Produce,
  // v3 is the first with RecordBatch v2, the only format we store; v11 only adds an error code.
  minVersion: 3,
  maxVersion: 11,
  handle: handleProduce,
};

async function handleProduce(request: ProduceRequest, ctx: RequestContext): Promise<ProduceResponse | typeof NO_RESPONSE> {
  const acks = request.acks;
  const options: AppendOptions = { acks, timeoutMs: request.timeoutMs, transactionalId: request.transactionalId ?? null };
  const state: RequestState = { ctx, options, version: ctx.apiVersion, inFlight: new Map(), firstFailure: null };
  const validAcks = acks === 0 || acks === 1 || acks === -1;
  const handOffs = await Promise.all(
    request.topicData.map((topic) =>
      validAcks ? handOffTopic(state, topic) : Promise.resolve(failTopic(state, topic, ErrorCode.INVALID_REQUIRED_ACKS, `Invalid acks: ${acks}`)),
    ),
  );
  if (acks === 0) return noResponse(state);
  const responses: TopicResponse[] = await Promise.all(
    handOffs.map(async (h) => ({ name: h.name, partitionResponses: await Promise.all(h.partitions) })),
  );
  return { throttleTimeMs: 0, responses, nodeEndpoints: leaderEndpoints(ctx, responses.map((t) => t.partitionResponses)) };
}

/**
 * acks=0: every append is with the Backend now and nobody waits for its outcome. A failure already known
 * (unknown topic or partition, a malformed batch) closes the connection, as Kafka does, because a producer
 * that gets no response learns about errors only that way (and then refreshes its metadata).
 */
function noResponse(state: RequestState): typeof NO_RESPONSE {
  const failure = state.firstFailure;
  if (failure !== null) throw new KafkaError(failure.code, `acks=0 produce failed: ${failure.message}`);
  return NO_RESPONSE;
}

interface RequestState {
  ctx: RequestContext;
  options: AppendOptions;
  version: number;
  /** The last append per "topic\0partition" of this request, so a partition listed twice stays in order. */
  inFlight: Map<string, Promise<PartitionResponse>>;
  /** The first partition that failed (for acks=0, which has no response to carry it). */
  firstFailure: { code: number; message: string } | null;
}

/** A topic whose partition appends have all been started. Its promises never reject. */
interface TopicHandOff {
  name: string;
  partitions: Promise<PartitionResponse>[];
}

async function handOffTopic(state: RequestState, data: TopicData): Promise<TopicHandOff> {
  let topic: TopicInfo;
  try {
    topic = await resolveOrCreateTopic(state.ctx, data.name, state.ctx.backend.autoCreateTopics);
    if (topic.internal) throw new KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, `Cannot append to internal topic ${data.name}`);
  } catch (err) {
    return failTopic(state, data, errorCodeFor(state.ctx, err, `topic ${data.name}`), errorMessageFor(err));
  }
  return { name: data.name, partitions: data.partitionData.map((p) => appendInOrder(state, topic, p)) };
}

function appendInOrder(state: RequestState, topic: TopicInfo, data: PartitionData): Promise<PartitionResponse> {
  const key = `${topic.name}\0${data.index}`;
  const previous = state.inFlight.get(key);
  const next = previous === undefined ? appendPartition(state, topic, data) : previous.then(() => appendPartition(state, topic, data));
  state.inFlight.set(key, next);
  return next;
}

/** Checks the partition and calls Backend.append synchronously, so acks=0 can return right after. */
function appendPartition(state: RequestState, topic: TopicInfo, data: PartitionData): Promise<PartitionResponse> {
  let pending: Promise<AppendResult>;
  try {
    if (!hasPartition(topic, data.index)) {
      throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `Topic ${topic.name} has no partition ${data.index}`);
    }
    pending = state.ctx.backend.append(topic.name, data.index, checkRecords(data.records, state.version), state.options);
  } catch (err) {
    return Promise.resolve(failPartition(state, topic.name, data.index, err));
  }
  return pending.then(
    (result) => successResponse(data.index, result),
    (err: unknown) => failPartition(state, topic.name, data.index, err),
  );
}

/** Also remembered for acks=0 (a Backend failure counts only if it is known before the handler returns). */
function failPartition(state: RequestState, topic: string, index: number, err: unknown): PartitionResponse {
  const code = errorCodeFor(state.ctx, err, `${topic}-${index}`);
  const message = errorMessageFor(err);
  state.firstFailure ??= { code, message };
  return errorResponse(state, topic, index, code, message);
}

/**
 * Kafka's rules for Produce v3+: exactly one RecordBatch v2 per partition, and no zstd before v7. CRC, sizes
 * and the rest of the batch are the Backend's to validate.
 */
function checkRecords(records: Buffer | Buffer[] | null | undefined, version: number): Buffer {
  const batch = Array.isArray(records) ? Buffer.concat(records) : records;
  if (batch === null || batch === undefined || batch.length === 0) {
    throw new KafkaError(ErrorCode.INVALID_RECORD, 'Produce requests must have exactly one record batch per partition');
  }
  if (batch.length < BATCH_HEADER_BYTES) throw new KafkaError(ErrorCode.CORRUPT_MESSAGE, 'Record batch is shorter than its header');
  if (batch.readInt8(BatchField.MAGIC) !== MAGIC_V2) {
    throw new KafkaError(ErrorCode.INVALID_RECORD, 'Produce requests v3+ may only contain record batches with magic 2');
  }
  if (BATCH_LOG_OVERHEAD_BYTES + batch.readInt32BE(BatchField.BATCH_LENGTH) < batch.length) {
    throw new KafkaError(ErrorCode.INVALID_RECORD, 'Produce requests must have exactly one record batch per partition');
  }
  if (version < ZSTD_MIN_VERSION && (batch.readInt16BE(BatchField.ATTRIBUTES) & BatchAttribute.COMPRESSION_MASK) === CompressionCodec.ZSTD) {
    throw new KafkaError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, `zstd needs Produce v${ZSTD_MIN_VERSION} or later`);
  }
  return batch;
}

function successResponse(index: number, result: AppendResult): PartitionResponse {
  return {
    index,
    errorCode: ErrorCode.NONE,
    baseOffset: BigInt(result.baseOffset),
    logAppendTimeMs: BigInt(result.logAppendTimeMs),
    logStartOffset: BigInt(result.logStartOffset),
    recordErrors: [],
    errorMessage: null,
    currentLeader: NO_LEADER,
  };
}

function errorResponse(state: RequestState, topic: string, index: number, errorCode: number, message: string): PartitionResponse {
  return {
    index,
    errorCode,
    baseOffset: -1n,
    logAppendTimeMs: -1n,
    logStartOffset: -1n,
    recordErrors: [],
    errorMessage: message,
    currentLeader: errorCode === ErrorCode.NOT_LEADER_OR_FOLLOWER ? currentLeader(state.ctx, topic, index) : NO_LEADER,
  };
}

function failTopic(state: RequestState, data: TopicData, code: number, message: string): TopicHandOff {
  state.firstFailure ??= { code, message };
  return {
    name: data.name,
    partitions: data.partitionData.map((p) => Promise.resolve(errorResponse(state, data.name, p.index, code, message))),
  };
}
