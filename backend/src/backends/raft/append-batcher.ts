// Coalesces appends into Append commands. Every Raft entry costs a round of fsyncs and messages, so appends
// that arrive while earlier proposals are in flight are gathered and proposed together, as one entry, when a
// proposal slot frees up (the group commit of the replicated log). An append that finds a free slot is still
// held until the current turn of the event loop ends, so the partitions of one Produce request (and requests
// read in the same turn) share an entry too.
//
// Limits: appendProposalsInFlightMax proposals at once; each carries at most appendCoalesceCountMax appends
// and appendCoalesceBytesMax bytes (a single larger append still goes, alone); at most appendQueueBytesMax
// bytes wait for a slot (beyond it an append is refused at once), and an append that waited past its deadline
// (the Produce timeout) is refused before it is proposed, so its outcome is known: not written.
import { ErrorCode, KafkaError } from '../../protocol/errors.ts';
import { APPEND_ITEM_HEADER_BYTES, encodeAppend, type AppendItem } from './commands.ts';
import type { FsmAppendItemResult, FsmResults } from './fsm.ts';

export interface AppendBatcherLimits {
  /** Most bytes of appended batches one Append command carries (bytes); one bigger append goes alone. */
  appendCoalesceBytesMax: number;
  /** Most appends one Append command carries (count). */
  appendCoalesceCountMax: number;
  /** Append proposals in flight at once (count); later appends wait and are coalesced. */
  appendProposalsInFlightMax: number;
  /** Bytes of appends waiting for a proposal slot; an append beyond it is refused (bytes). */
  appendQueueBytesMax: number;
}

export const DEFAULT_APPEND_BATCHER_LIMITS: AppendBatcherLimits = {
  appendCoalesceBytesMax: 4 * 1024 * 1024,
  appendCoalesceCountMax: 4096,
  appendProposalsInFlightMax: 4,
  appendQueueBytesMax: 256 * 1024 * 1024,
};

/** Proposes one encoded Append command; resolves with the state machine's result for it. */
export type ProposeAppend = (data: Buffer) => Promise<FsmResults['append']>;

interface Waiting {
  item: AppendItem;
  bytes: number;
  /** Clock time after which it is refused instead of proposed (ms); Infinity: none. */
  deadlineMs: number;
  resolve(result: FsmAppendItemResult): void;
  reject(err: unknown): void;
}

export function checkBatcherLimits(limits: AppendBatcherLimits): void {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be an integer >= 1, got ${value}`);
  }
}

export class AppendBatcher {
  private readonly limits: AppendBatcherLimits;
  private readonly propose: ProposeAppend;
  private readonly nowMs: () => number;
  private queue: Waiting[] = [];
  private queueHead = 0;
  private queuedBytes = 0;
  private inFlight = 0;
  private pumpScheduled = false;
  /** Proposals made and appends carried (metrics, tests). */
  proposals = 0;
  appendsProposed = 0;

  constructor(limits: AppendBatcherLimits, propose: ProposeAppend, nowMs: () => number = Date.now) {
    checkBatcherLimits(limits);
    this.limits = limits;
    this.propose = propose;
    this.nowMs = nowMs;
  }

  /** Appends waiting for a proposal slot. */
  get queued(): number {
    return this.queue.length - this.queueHead;
  }

  /** Queues an append; resolves with the state machine's result for it (offsets, or its error). */
  submit(item: AppendItem, timeoutMs: number): Promise<FsmAppendItemResult> {
    const bytes = APPEND_ITEM_HEADER_BYTES + item.records.length;
    if (this.queuedBytes + bytes > this.limits.appendQueueBytesMax && this.queued > 0) {
      return Promise.reject(new KafkaError(ErrorCode.REQUEST_TIMED_OUT, `${this.queuedBytes} bytes of appends are already waiting for replication (appendQueueBytesMax)`));
    }
    return new Promise<FsmAppendItemResult>((resolve, reject) => {
      const deadlineMs = timeoutMs > 0 ? this.nowMs() + timeoutMs : Infinity;
      this.queue.push({ item, bytes, deadlineMs, resolve, reject });
      this.queuedBytes += bytes;
      this.schedulePump();
    });
  }

  /** Refuses every append not yet proposed (leadership lost, shutdown); proposals in flight settle on their own. */
  failQueued(err: Error): void {
    const waiting = this.takeAll();
    for (const w of waiting) w.reject(err);
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.limits.appendProposalsInFlightMax && this.queued > 0) {
      const batch = this.takeBatch();
      if (batch.length > 0) this.send(batch);
    }
  }

  /** The next appends to propose together, within the count and byte limits; expired ones are refused. */
  private takeBatch(): Waiting[] {
    const now = this.nowMs();
    const batch: Waiting[] = [];
    let bytes = 0;
    while (this.queued > 0 && batch.length < this.limits.appendCoalesceCountMax) {
      const next = this.queue[this.queueHead]!;
      if (batch.length > 0 && bytes + next.bytes > this.limits.appendCoalesceBytesMax) break;
      this.queue[this.queueHead++] = undefined as unknown as Waiting;
      this.queuedBytes -= next.bytes;
      if (next.deadlineMs <= now) {
        next.reject(new KafkaError(ErrorCode.REQUEST_TIMED_OUT, 'the append waited past its timeout for replication and was not written'));
        continue;
      }
      batch.push(next);
      bytes += next.bytes;
    }
    this.compact();
    return batch;
  }

  private send(batch: Waiting[]): void {
    this.inFlight++;
    this.proposals++;
    this.appendsProposed += batch.length;
    let data: Buffer;
    try {
      data = encodeAppend(this.nowMs(), batch.map((w) => w.item));
    } catch (err) {
      this.inFlight--;
      for (const w of batch) w.reject(err);
      return;
    }
    this.propose(data).then(
      (result) => {
        const items = result?.items;
        if (!Array.isArray(items) || items.length !== batch.length) {
          const err = new Error(`the state machine answered ${items?.length ?? 'nothing'} results for ${batch.length} appends`);
          for (const w of batch) w.reject(err);
          return;
        }
        batch.forEach((w, i) => w.resolve(items[i]!));
      },
      (err: unknown) => {
        for (const w of batch) w.reject(err);
      },
    ).finally(() => {
      this.inFlight--;
      if (this.queued > 0) this.schedulePump();
    });
  }

  private takeAll(): Waiting[] {
    const all = this.queue.slice(this.queueHead);
    this.queue = [];
    this.queueHead = 0;
    this.queuedBytes = 0;
    return all;
  }

  /** Drops the consumed head of the queue array once it dominates (amortised O(1) per append). */
  private compact(): void {
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
  }
}
