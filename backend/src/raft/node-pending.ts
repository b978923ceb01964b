// Callers waiting on a RaftNode: proposals (queued until the loop proposes them, then in flight until their
// entry is applied) and read barriers (queued, then waiting for the leader's ReadState, then for the applied
// index to reach it). Both are bounded (a full registry rejects new work at once) and expire at a deadline.
//
// Deadlines are checked on every tick instead of one timer per caller: with a fixed timeout, insertion order
// is deadline order, so a sweep stops at the first caller that has time left (Maps iterate in insertion
// order). An AbortSignal settles its caller at once.

export interface Waiter<T> {
  readonly deadlineMs: number;
  settled: boolean;
  resolve(value: T): void;
  reject(err: Error): void;
  /** Removes the abort listener; called once when the waiter settles. */
  detach(): void;
}

export interface PendingProposal extends Waiter<unknown> {
  readonly seq: number;
  /** The envelope (node-envelope.ts) that goes into the log. */
  readonly data: Uint8Array;
  /** The term the leader proposed it in; 0 while queued. Only an entry of that term resolves it. */
  term: number;
}

export interface PendingRead extends Waiter<void> {
  /** Unique per read (node-envelope ids: incarnation and sequence), the core's ReadIndex request context. */
  readonly ctx: Uint8Array;
  readonly key: string;
  /** The index the leader must have applied before the read is safe; -1 until the ReadState arrived. */
  index: number;
}

/** Settle and forget; safe to call on an already settled waiter. */
export function settle<T>(w: Waiter<T>, outcome: { value: T } | { error: Error }): void {
  if (w.settled) return;
  w.settled = true;
  w.detach();
  if ('error' in outcome) w.reject(outcome.error);
  else w.resolve(outcome.value);
}

/** Wires an AbortSignal to `onAbort`; returns the function that unwires it. */
export function listenAbort(signal: AbortSignal | undefined, onAbort: (reason: Error) => void): () => void {
  if (signal === undefined) return () => {};
  const listener = (): void => onAbort(abortReason(signal));
  signal.addEventListener('abort', listener, { once: true });
  return () => signal.removeEventListener('abort', listener);
}

export function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new Error(`aborted: ${String(r)}`);
}

/** Drops from `map` and rejects every waiter whose deadline passed (map in deadline order). */
function expireMap<W extends Waiter<unknown>>(map: Map<unknown, W>, nowMs: number, error: () => Error): void {
  for (const [key, w] of map) {
    if (w.deadlineMs > nowMs) return;
    map.delete(key);
    settle(w, { error: error() });
  }
}

function rejectMap<W extends Waiter<unknown>>(map: Map<unknown, W>, error: Error): void {
  const all = [...map.values()];
  map.clear();
  for (const w of all) settle(w, { error });
}

export class ProposalRegistry {
  /** Waiting for the loop to propose them, in arrival order (= seq order = deadline order). */
  private readonly queued = new Map<number, PendingProposal>();
  /** Proposed, waiting for their entry to be applied on this node. */
  private readonly inflight = new Map<number, PendingProposal>();

  /** `max`: proposals queued and in flight together (count, >= 1). */
  constructor(readonly max: number) {
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`proposalsQueuedMax must be an integer >= 1, got ${max}`);
  }

  get size(): number {
    return this.queued.size + this.inflight.size;
  }

  get queuedCount(): number {
    return this.queued.size;
  }

  get inflightCount(): number {
    return this.inflight.size;
  }

  isFull(): boolean {
    return this.size >= this.max;
  }

  enqueue(p: PendingProposal): void {
    this.queued.set(p.seq, p);
  }

  /** The caller gave up (abort): forget it wherever it is. */
  remove(seq: number): void {
    this.queued.delete(seq);
    this.inflight.delete(seq);
  }

  /**
   * Removes and returns the oldest queued proposals: at least one (when any), then as many as fit in
   * `bytesMax` bytes of envelope data together.
   */
  takeQueued(bytesMax: number): PendingProposal[] {
    const out: PendingProposal[] = [];
    let bytes = 0;
    for (const p of this.queued.values()) {
      if (out.length > 0 && bytes + p.data.byteLength > bytesMax) break;
      out.push(p);
      bytes += p.data.byteLength;
    }
    for (const p of out) this.queued.delete(p.seq);
    return out;
  }

  markInflight(p: PendingProposal, term: number): void {
    p.term = term;
    this.inflight.set(p.seq, p);
  }

  /** The entry of proposal `seq` (of term `term`) was applied with `result`. False when nobody waits for it. */
  resolve(seq: number, term: number, result: unknown): boolean {
    const p = this.inflight.get(seq);
    if (p === undefined || p.term !== term) return false;
    this.inflight.delete(seq);
    settle(p, { value: result });
    return true;
  }

  rejectQueued(error: Error): void {
    rejectMap(this.queued, error);
  }

  rejectInflight(error: Error): void {
    rejectMap(this.inflight, error);
  }

  rejectAll(error: Error): void {
    this.rejectQueued(error);
    this.rejectInflight(error);
  }

  expire(nowMs: number, error: () => Error): void {
    expireMap(this.queued, nowMs, error);
    expireMap(this.inflight, nowMs, error);
  }
}

export class ReadRegistry {
  /** Waiting for the loop to ask the core. */
  private readonly queued = new Map<string, PendingRead>();
  /** Asked; waiting for the ReadState (by context key) and then for the applied index. */
  private readonly asked = new Map<string, PendingRead>();

  /** `max`: read barriers pending on this node (count, >= 1). */
  constructor(readonly max: number) {
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`readBarriersPendingMax must be an integer >= 1, got ${max}`);
  }

  get size(): number {
    return this.queued.size + this.asked.size;
  }

  get queuedCount(): number {
    return this.queued.size;
  }

  isFull(): boolean {
    return this.size >= this.max;
  }

  enqueue(r: PendingRead): void {
    this.queued.set(r.key, r);
  }

  remove(key: string): void {
    this.queued.delete(key);
    this.asked.delete(key);
  }

  takeQueued(): PendingRead[] {
    const out = [...this.queued.values()];
    this.queued.clear();
    return out;
  }

  markAsked(r: PendingRead): void {
    this.asked.set(r.key, r);
  }

  /** The core confirmed read `key` at `index`. */
  readState(key: string, index: number): void {
    const r = this.asked.get(key);
    if (r !== undefined) r.index = index;
  }

  /** Resolves every read whose index is known and covered by `applied`. */
  applied(applied: number): void {
    for (const [key, r] of this.asked) {
      if (r.index < 0 || r.index > applied) continue;
      this.asked.delete(key);
      settle(r, { value: undefined });
    }
  }

  rejectAll(error: Error): void {
    rejectMap(this.queued, error);
    rejectMap(this.asked, error);
  }

  /**
   * Leadership lost: reads not yet confirmed can no longer be (reject them); a read the leader confirmed at an
   * index stays linearizable once that index is applied, so it keeps waiting.
   */
  rejectUnconfirmed(error: Error): void {
    rejectMap(this.queued, error);
    for (const [key, r] of this.asked) {
      if (r.index >= 0) continue;
      this.asked.delete(key);
      settle(r, { error });
    }
  }

  expire(nowMs: number, error: () => Error): void {
    expireMap(this.queued, nowMs, error);
    expireMap(this.asked, nowMs, error);
  }
}
