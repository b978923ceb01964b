// Helpers for the consumer-group integration tests: a numbered record sequence whose every record says where it
// must land (value i -> partition i % P, offset floor(i / P)), a ledger that checks what consumers receive
// against what was committed, bounded waits, and running external clients (kcat, python) with a time limit.
import { execFile } from 'node:child_process';
import { Kafka, logLevel } from 'kafkajs';
import type { Admin, Consumer, ConsumerCommitOffsetsEvent, Producer } from 'kafkajs';

/** Default wait for a condition in these tests (ms): generous for a loaded 2-core machine, still bounded. */
export const WAIT_MS = 45_000;

export function kafkaClient(bootstrap: string, clientId: string): Kafka {
  return new Kafka({
    clientId,
    brokers: [bootstrap],
    logLevel: logLevel.NOTHING,
    // A few quick retries: a real failure must surface within the test's time budget.
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1_000 },
  });
}

export async function createTopic(admin: Admin, topic: string, partitions: number): Promise<void> {
  const created = await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
  if (!created) throw new Error(`topic ${topic} already exists`);
}

/**
 * Produces values from..to-1 of the sequence: value i (key `k<i>`) goes to partition i % partitions. Produced in
 * order, one batch at a time, so on a fresh topic value i lands at offset floor(i / partitions).
 */
export async function produceSequence(producer: Producer, topic: string, partitions: number, from: number, to: number,
  batchSize = 1_200): Promise<void> {
  for (let start = from; start < to; start += batchSize) {
    const end = Math.min(start + batchSize, to);
    const messages = [];
    for (let i = start; i < end; i++) messages.push({ key: `k${i}`, value: String(i), partition: i % partitions });
    await producer.send({ topic, acks: -1, messages });
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((ok) => setTimeout(ok, ms));
}

/** Polls `cond` until it holds; throws after `timeoutMs` with `what` and the optional diagnostics. */
export async function waitUntil(what: string, cond: () => boolean, timeoutMs = WAIT_MS, diagnostics?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${diagnostics ? `\n${diagnostics()}` : ''}`);
    await sleep(25);
  }
}

/** `work`, or an error naming `what` if it takes longer than `timeoutMs`. */
export async function withTimeout<T>(work: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error(`${what} took longer than ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Disconnects clients, bounded, ignoring errors: for finally blocks, where the test's own failure matters. */
export async function disconnectQuietly(...clients: (Consumer | Producer | Admin | undefined)[]): Promise<void> {
  await Promise.all(clients.map((c) => (c === undefined ? undefined : withTimeout(c.disconnect(), 15_000, 'disconnect').catch(() => undefined))));
}

export interface ProcessResult {
  stdout: string;
  stderr: string;
}

/** Runs a program to completion within `timeoutMs`; a non-zero exit or a timeout rejects with its stderr. */
export function runProgram(file: string, args: string[], timeoutMs: number, input?: string): Promise<ProcessResult> {
  return new Promise((ok, fail) => {
    const child = execFile(file, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      if (err) fail(new Error(`${file} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else ok({ stdout, stderr });
    });
    if (input !== undefined) child.stdin!.end(input);
    else child.stdin!.end();
  });
}

/** Events a DeliveryLedger keeps for failure messages (the latest ones). */
const TRACE_LINES_MAX = 200;

/**
 * Every record a group receives, checked against the sequence produced by produceSequence and against the
 * offsets the group has committed so far (as acknowledged to the clients):
 * - a record's value must match its partition and offset (nothing misplaced or corrupted);
 * - a record below its partition's committed offset must never be delivered again (a committed position is
 *   never lost; redelivery of records not yet committed is at-least-once and only counted);
 * - a commit must never move a partition's offset backwards.
 */
export class DeliveryLedger {
  /** How many times each value of the sequence was delivered. */
  private readonly counts: Uint16Array;
  /** partition -> committed offset (the next record to consume), as last acknowledged to a client. */
  readonly committed = new Map<number, number>();
  readonly errors: string[] = [];
  duplicates = 0;
  unique = 0;
  commits = 0;
  /** Generation ids seen on acknowledged commits. */
  readonly commitGenerations = new Set<number>();
  /** Notable events for failure messages (commits, and each consumer's jumps within a partition), bounded. */
  private readonly trace: string[] = [];
  /** `who/partition` -> the last offset that consumer received there. */
  private readonly lastOffsets = new Map<string, number>();
  private readonly createdMs = Date.now();

  constructor(readonly topic: string, readonly partitions: number, readonly total: number) {
    this.counts = new Uint16Array(total);
  }

  /** Records a delivery; `who` names the consumer, for error messages. */
  deliver(who: string, partition: number, offset: number, value: string): void {
    const i = Number(value);
    const inPlace = Number.isSafeInteger(i) && i >= 0 && i < this.total && i % this.partitions === partition &&
      Math.floor(i / this.partitions) === offset;
    if (!inPlace) {
      return this.error(`${who}: record p${partition}@${offset} has unexpected value ${JSON.stringify(value)}`);
    }
    const key = `${who}/${partition}`;
    const last = this.lastOffsets.get(key);
    if (last !== offset - 1) {
      this.note(`${who} p${partition}: ${last ?? 'start'} -> ${offset} (committed ${this.committed.get(partition) ?? 'none'})`);
    }
    this.lastOffsets.set(key, offset);
    const committed = this.committed.get(partition) ?? 0;
    if (offset < committed) this.error(`${who}: p${partition}@${offset} delivered again after offset ${committed} was committed`);
    if (this.counts[i]! > 0) this.duplicates++;
    else this.unique++;
    this.counts[i] = Math.min(this.counts[i]! + 1, 0xffff);
  }

  /** Records an acknowledged commit (kafkajs COMMIT_OFFSETS instrumentation event). */
  commit(who: string, event: ConsumerCommitOffsetsEvent): void {
    const entries = event.payload.topics.filter((t) => t.topic === this.topic)
      // kafkajs builds this list from object keys: the partition may be a string.
      .flatMap((t) => t.partitions.map((p): [number, number] => [Number(p.partition), Number(p.offset)]));
    this.commitOffsets(who, event.payload.groupGenerationId, entries);
  }

  /** Records an acknowledged commit of [partition, offset] entries in generation `generationId`. */
  commitOffsets(who: string, generationId: number, entries: [number, number][]): void {
    this.commits++;
    this.commitGenerations.add(generationId);
    this.note(`${who} committed ${entries.map(([p, o]) => `p${p}=${o}`).join(' ')} (generation ${generationId})`);
    for (const [partition, offset] of entries) {
      const before = this.committed.get(partition) ?? 0;
      if (offset < before) this.error(`${who}: commit moved p${partition} back from ${before} to ${offset}`);
      this.committed.set(partition, offset);
    }
  }

  /** Values never delivered (at most `limit` of them). */
  missing(limit = 20): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.total && out.length < limit; i++) if (this.counts[i] === 0) out.push(i);
    return out;
  }

  /** Whether every partition's committed offset reached `end(partition)`. */
  allCommitted(end: (partition: number) => number): boolean {
    for (let p = 0; p < this.partitions; p++) if ((this.committed.get(p) ?? 0) < end(p)) return false;
    return true;
  }

  summary(): string {
    const committed = [...this.committed.entries()].sort((a, b) => a[0] - b[0]).map(([p, o]) => `p${p}=${o}`).join(' ');
    const errors = this.errors.length > 0 ? `: ${this.errors.slice(0, 5).join('; ')}` : '';
    return `${this.trace.join('\n')}\nunique ${this.unique}/${this.total}, duplicates ${this.duplicates}, commits ${this.commits}, ` +
      `committed ${committed}, errors ${this.errors.length}${errors}`;
  }

  private note(event: string): void {
    if (this.trace.length >= TRACE_LINES_MAX) this.trace.shift();
    this.trace.push(`${Date.now() - this.createdMs} ms ${event}`);
  }

  private error(message: string): void {
    // Bounded: one systematic fault would otherwise repeat for every record.
    if (this.errors.length < 1_000) this.errors.push(message);
  }
}

/** The number of records partition p holds after produceSequence(0, total). */
export function partitionEnd(total: number, partitions: number, partition: number): number {
  return Math.floor(total / partitions) + (partition < total % partitions ? 1 : 0);
}

/** The broker's log lines at level error or fatal (pino JSON, level >= 50): a handler that threw shows here. */
export function loggedErrors(output: string): string[] {
  return output.split('\n').filter((line) => {
    if (!line.startsWith('{')) return line.trim().length > 0 && /error|fatal/i.test(line);
    try {
      return (JSON.parse(line) as { level?: number }).level! >= 50;
    } catch {
      return true; // a torn line is worth a look
    }
  });
}
