// Fetch (API 1): read stored batches for each requested partition, long-polling until min_bytes arrived.
//
// Budget (KIP-74): partitions are answered in request order; each gets at most partition_max_bytes and the
// whole response at most max_bytes, except that the first partition with data always returns at least one
// whole batch, so a batch larger than the limits never blocks a consumer. Batches are returned as the Backend
// stored them (Buffer[] written zero-copy); nothing here looks at single records.
//
// Long-poll: when fewer than min_bytes are available and max_wait_ms > 0, the handler listens to
// Backend.onAppend and reads again whenever a requested partition grows, until min_bytes is reached, the wait
// (capped by fetchWaitMaxMs) ends, or the connection closes. Any partition error answers at once.
//
// Replicas (KIP-320, KIP-392): each partition's current_leader_epoch (v9+) and the request's rack_id (v11+)
// go to the Backend, which fences stale epochs and, in cluster mode, may serve the read as a follower or point
// the client to a preferred read replica; such a partition is answered at once with no records.
//
// Fetch sessions (KIP-227, v7+): this broker never creates a session, as Kafka does when its session cache
// is full. A full fetch (session epoch 0 or -1) is served sessionless and answered with session id 0, so the
// Java client keeps sending full fetches (librdkafka and kafkajs never ask for sessions); an incremental fetch
// (epoch > 0) names a session we never handed out and gets FETCH_SESSION_ID_NOT_FOUND, which makes the
// client start over with a full fetch. The cost is only request size: every fetch lists all its partitions.
import type { ReadResult, TopicInfo } from '../backends/backend.ts';
import { ErrorCode } from '../protocol/errors.ts';
import type { FetchRequest, FetchResponse } from '../protocol/generated/index.ts';
import { ApiKey } from '../protocol/generated/index.ts';
import { BATCH_LOG_OVERHEAD_BYTES, BatchField } from '../protocol/records/batch.ts';
import { currentLeader, errorCodeFor, hasPartition, leaderEndpoints } from './common.ts';
import type { ApiHandler, RequestContext } from './types.ts';

type TopicResponse = FetchResponse['responses'][number];
type PartitionResponse = TopicResponse['partitions'][number];
type FetchTopic = FetchRequest['topics'][number];

export interface FetchHandlerOptions {
  /** The longest a fetch may wait for min_bytes (ms), whatever the client asks (max_wait_ms); 0: never wait. */
  fetchWaitMaxMs?: number;
  /** The most record bytes one response may carry (fetch.max.bytes), whatever the client asks (max_bytes). */
  fetchResponseBytesMax?: number;
}

export const DEFAULT_FETCH_WAIT_MAX_MS = 30_000;
/** Kafka's fetch.max.bytes default (55 MiB). */
export const DEFAULT_FETCH_RESPONSE_BYTES_MAX = 55 * 1024 * 1024;

/** v13+ name topics by id only. */
const TOPIC_ID_MIN_VERSION = 13;
const SESSION_MIN_VERSION = 7;
/** v9 added current_leader_epoch (KIP-320). */
const LEADER_EPOCH_MIN_VERSION = 9;
/** v11 added rack_id and preferred_read_replica (KIP-392). */
const RACK_MIN_VERSION = 11;
const FULL_FETCH_EPOCHS = new Set([0, -1]);
const READ_COMMITTED = 1;
const EMPTY_RECORDS: Buffer[] = [];
/** Errors whose partition response names the current leader (v12+ tagged current_leader, KIP-951). */
const LEADER_HINT_ERRORS = new Set<number>([ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.FENCED_LEADER_EPOCH]);
// Shared defaults of the v12+ tagged fields (the encoder skips them): no allocation per partition.
const NO_DIVERGING_EPOCH = Object.freeze({ epoch: -1, endOffset: -1n });
const NO_LEADER = Object.freeze({ leaderId: -1, leaderEpoch: -1 });
const NO_SNAPSHOT = Object.freeze({ endOffset: -1n, epoch: -1 });

export function createFetchHandler(options: FetchHandlerOptions = {}): ApiHandler<FetchRequest, FetchResponse> {
  const limits = {
    waitMaxMs: options.fetchWaitMaxMs ?? DEFAULT_FETCH_WAIT_MAX_MS,
    responseBytesMax: options.fetchResponseBytesMax ?? DEFAULT_FETCH_RESPONSE_BYTES_MAX,
  };
  return {
    apiKey: ApiKey.Fetch,
    // v4 is the first that reads only RecordBatch v2 (what we store); v13+ use topic ids, resolved here.
    minVersion: 4,
    maxVersion: 17,
    handle: (request, ctx) => handleFetch(request, ctx, limits),
  };
}

export const fetchHandler: ApiHandler<FetchRequest, FetchResponse> = createFetchHandler();

interface Limits {
  waitMaxMs: number;
  responseBytesMax: number;
}

/** One requested partition, resolved once per request. */
interface PlannedPartition {
  topicIndex: number;
  topic: string;
  partition: number;
  fetchOffset: number;
  maxBytes: number;
  /** Set when the partition cannot be read at all (unknown topic or partition). */
  errorCode: number;
  /** current_leader_epoch (v9+), -1: unchecked. */
  currentLeaderEpoch: number;
}

interface Plan {
  partitions: PlannedPartition[];
  topics: FetchTopic[];
  maxBytes: number;
  isolationLevel: number;
  /** The client's rack (v11+ rack_id); undefined for older versions, which only a leader serves (KIP-392). */
  clientRack: string | undefined;
  /** topic name -> requested partitions, for the onAppend listener (no allocation per append). */
  watched: Map<string, Set<number>>;
}

interface Assembled {
  responses: TopicResponse[];
  bytes: number;
  /** A partition failed or points elsewhere (preferred read replica): answer now, do not long-poll. */
  answerNow: boolean;
}

async function handleFetch(request: FetchRequest, ctx: RequestContext, limits: Limits): Promise<FetchResponse> {
  const version = ctx.apiVersion;
  if (version >= SESSION_MIN_VERSION && !FULL_FETCH_EPOCHS.has(request.sessionEpoch)) {
    return response(ErrorCode.FETCH_SESSION_ID_NOT_FOUND, [], ctx);
  }
  const plan = makePlan(request, ctx, limits);
  const waitMs = Math.min(Math.max(request.maxWaitMs, 0), limits.waitMaxMs);
  const result = waitMs > 0 && request.minBytes > 0 ? await readWithWait(plan, ctx, request.minBytes, waitMs) : await readAll(plan, ctx);
  return response(ErrorCode.NONE, result.responses, ctx);
}

function response(errorCode: number, responses: TopicResponse[], ctx: RequestContext): FetchResponse {
  return { throttleTimeMs: 0, errorCode, sessionId: 0, responses, nodeEndpoints: leaderEndpoints(ctx, responses.map((t) => t.partitions)) };
}

function makePlan(request: FetchRequest, ctx: RequestContext, limits: Limits): Plan {
  const useTopicIds = ctx.apiVersion >= TOPIC_ID_MIN_VERSION;
  const partitions: PlannedPartition[] = [];
  const watched = new Map<string, Set<number>>();
  request.topics.forEach((t, topicIndex) => {
    const info = useTopicIds ? ctx.backend.topicById(t.topicId) : ctx.backend.topic(t.topic);
    const unknownTopic = useTopicIds ? ErrorCode.UNKNOWN_TOPIC_ID : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
    const name = info?.name ?? t.topic;
    for (const p of t.partitions) {
      const errorCode = partitionError(info, p.partition, unknownTopic);
      partitions.push({
        topicIndex, topic: name, partition: p.partition, fetchOffset: Number(p.fetchOffset), maxBytes: Math.max(p.partitionMaxBytes, 0), errorCode,
        currentLeaderEpoch: ctx.apiVersion >= LEADER_EPOCH_MIN_VERSION ? p.currentLeaderEpoch : -1,
      });
      if (errorCode !== ErrorCode.NONE) continue;
      let set = watched.get(name);
      if (set === undefined) watched.set(name, (set = new Set()));
      set.add(p.partition);
    }
  });
  return {
    partitions,
    topics: request.topics,
    maxBytes: Math.min(Math.max(request.maxBytes, 0), limits.responseBytesMax),
    isolationLevel: request.isolationLevel,
    clientRack: ctx.apiVersion >= RACK_MIN_VERSION ? request.rackId : undefined,
    watched,
  };
}

function partitionError(info: TopicInfo | undefined, partition: number, unknownTopic: number): number {
  if (info === undefined) return unknownTopic;
  return hasPartition(info, partition) ? ErrorCode.NONE : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
}

/**
 * Reads every partition once, in request order, within the byte budget. Reads are sequential like Kafka's:
 * each partition's limit depends on what the earlier ones returned, and a spent budget reads nothing.
 */
async function readAll(plan: Plan, ctx: RequestContext): Promise<Assembled> {
  const responses: TopicResponse[] = plan.topics.map((t) => ({ topic: t.topic, topicId: t.topicId, partitions: [] }));
  let remaining = plan.maxBytes;
  let bytes = 0;
  let answerNow = false;
  let minOneBatch = true;
  for (const p of plan.partitions) {
    const out = responses[p.topicIndex]!.partitions;
    const limit = Math.min(p.maxBytes, remaining);
    const read = p.errorCode !== ErrorCode.NONE ? p.errorCode : await readPartition(ctx, p, limit, plan, minOneBatch);
    if (typeof read === 'number') {
      answerNow = true;
      out.push(errorPartition(ctx, p, read));
      continue;
    }
    if (read.preferredReadReplica !== undefined && read.preferredReadReplica >= 0) answerNow = true;
    // The Backend may return more than asked (at least one batch): keep to the budget here as well.
    const records = takeBatches(read.records, read.bytes, limit, minOneBatch);
    const taken = records === read.records ? read.bytes : sizeOf(records);
    if (taken > 0) minOneBatch = false;
    remaining = Math.max(remaining - taken, 0);
    bytes += taken;
    out.push(dataPartition(p, read, records, plan.isolationLevel));
  }
  return { responses, bytes, answerNow };
}

/** The read, or the error code it failed with. */
async function readPartition(ctx: RequestContext, p: PlannedPartition, limit: number, plan: Plan, minOneBatch: boolean): Promise<ReadResult | number> {
  try {
    const options = { isolationLevel: plan.isolationLevel, minOneBatch, currentLeaderEpoch: p.currentLeaderEpoch };
    return await ctx.backend.read(p.topic, p.partition, p.fetchOffset, limit, plan.clientRack === undefined ? options : { ...options, clientRack: plan.clientRack });
  } catch (err) {
    return errorCodeFor(ctx, err, `${p.topic}-${p.partition}`);
  }
}

/**
 * The prefix of `records` that fits in `budget` bytes, cut only at batch boundaries; with minOneBatch at least
 * the first batch (KIP-74). Each Buffer holds whole batches; one that straddles the budget is cut by walking
 * its batch headers (per batch, never per record) into a zero-copy subarray.
 */
export function takeBatches(records: Buffer[], totalBytes: number, budget: number, minOneBatch: boolean): Buffer[] {
  if (totalBytes <= budget) return records;
  const taken: Buffer[] = [];
  let used = 0;
  for (const chunk of records) {
    if (used + chunk.length <= budget) {
      taken.push(chunk);
      used += chunk.length;
      continue;
    }
    const cut = batchPrefixBytes(chunk, budget - used, minOneBatch && used === 0);
    if (cut > 0) taken.push(chunk.subarray(0, cut));
    break;
  }
  return taken;
}

/** Bytes of the leading whole batches of `chunk` that fit in `budget` (at least one batch if minOneBatch). */
function batchPrefixBytes(chunk: Buffer, budget: number, minOneBatch: boolean): number {
  let end = 0;
  while (end + BATCH_LOG_OVERHEAD_BYTES <= chunk.length) {
    const next = end + BATCH_LOG_OVERHEAD_BYTES + chunk.readInt32BE(end + BatchField.BATCH_LENGTH);
    if (next > chunk.length) break;
    if (next > budget && !(minOneBatch && end === 0)) break;
    end = next;
  }
  return end;
}

function sizeOf(records: Buffer[]): number {
  let n = 0;
  for (const r of records) n += r.length;
  return n;
}

function dataPartition(p: PlannedPartition, read: ReadResult, records: Buffer[], isolationLevel: number): PartitionResponse {
  return {
    partitionIndex: p.partition,
    errorCode: ErrorCode.NONE,
    highWatermark: BigInt(read.highWatermark),
    lastStableOffset: BigInt(read.lastStableOffset),
    logStartOffset: BigInt(read.logStartOffset),
    divergingEpoch: NO_DIVERGING_EPOCH,
    currentLeader: NO_LEADER,
    snapshotId: NO_SNAPSHOT,
    // Kafka: null for read_uncommitted; read_committed lists the aborted transactions in range (we keep none).
    abortedTransactions: isolationLevel === READ_COMMITTED ? [] : null,
    preferredReadReplica: read.preferredReadReplica ?? -1,
    records,
  };
}

/** Like Kafka, a partition that could not be read reports -1 for its offsets and no records. */
function errorPartition(ctx: RequestContext, p: PlannedPartition, errorCode: number): PartitionResponse {
  return {
    partitionIndex: p.partition,
    errorCode,
    highWatermark: -1n,
    lastStableOffset: -1n,
    logStartOffset: -1n,
    divergingEpoch: NO_DIVERGING_EPOCH,
    currentLeader: LEADER_HINT_ERRORS.has(errorCode) ? currentLeader(ctx, p.topic, p.partition) : NO_LEADER,
    snapshotId: NO_SNAPSHOT,
    abortedTransactions: null,
    preferredReadReplica: -1,
    records: EMPTY_RECORDS,
  };
}

/**
 * Reads, then while below minBytes waits for an append to a requested partition (or the deadline, or the
 * connection closing) and reads again. The listener is installed before the first read so no append slips
 * between a read and the wait.
 */
async function readWithWait(plan: Plan, ctx: RequestContext, minBytes: number, waitMs: number): Promise<Assembled> {
  const deadline = performance.now() + waitMs;
  const waiter = new AppendWaiter(plan.watched);
  const unsubscribe = ctx.backend.onAppend(waiter.listener);
  try {
    let result = await readAll(plan, ctx);
    while (result.bytes < minBytes && !result.answerNow && plan.watched.size > 0) {
      const left = deadline - performance.now();
      if (left <= 0 || ctx.signal.aborted) break;
      if (!(await waiter.wait(left, ctx.signal))) break;
      result = await readAll(plan, ctx);
    }
    return result;
  } finally {
    unsubscribe();
  }
}

/** Turns onAppend calls for watched partitions into a wake-up; appends while nobody waits are remembered. */
class AppendWaiter {
  private pending = false;
  private wake: (() => void) | null = null;

  constructor(private readonly watched: Map<string, Set<number>>) {}

  readonly listener = (topic: string, partition: number): void => {
    if (this.watched.get(topic)?.has(partition) !== true) return;
    this.pending = true;
    this.wake?.();
  };

  /** Resolves true when a watched partition grew (since the last call), false on timeout or abort. */
  wait(timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve(true);
    }
    return new Promise<boolean>((resolve) => {
      const finish = (appended: boolean): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.wake = null;
        this.pending = false;
        resolve(appended);
      };
      const onAbort = (): void => finish(false);
      const timer = setTimeout(() => finish(false), timeoutMs);
      signal.addEventListener('abort', onAbort, { once: true });
      this.wake = () => finish(true);
    });
  }
}
