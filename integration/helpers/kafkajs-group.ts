// A kafkajs consumer group under observation: members started in this process (one Kafka client each, as
// separate processes would have) feed one DeliveryLedger, and every join is recorded with its assignment, so a
// test can wait for a given split of the partitions and count the rebalances.
import type { Consumer, ConsumerGroupJoinEvent } from 'kafkajs';
import { DeliveryLedger, kafkaClient, waitUntil } from './groups.ts';

export interface Join {
  who: string;
  atMs: number;
  memberId: string;
  isLeader: boolean;
  partitions: number[];
}

export interface GroupRunOptions {
  bootstrap: string;
  group: string;
  topic: string;
  partitions: number;
  total: number;
  /** Session timeout of members started here (ms). */
  sessionTimeoutMs: number;
  /** Records handled between two commit/heartbeat checks inside a batch, so rebalances land mid-batch. */
  recordsPerCheck: number;
}

export class GroupRun {
  readonly ledger: DeliveryLedger;
  readonly joins: Join[] = [];
  readonly consumers = new Map<string, Consumer>();
  rebalancingEvents = 0;
  private readonly startedMs = Date.now();

  constructor(private readonly opts: GroupRunOptions) {
    this.ledger = new DeliveryLedger(opts.topic, opts.partitions, opts.total);
  }

  /** Starts a member named `who` (its client id) and resolves once it has joined and runs. */
  async startMember(who: string): Promise<Consumer> {
    const { topic, recordsPerCheck } = this.opts;
    const consumer = kafkaClient(this.opts.bootstrap, who).consumer({
      groupId: this.opts.group,
      sessionTimeout: this.opts.sessionTimeoutMs,
      rebalanceTimeout: 15_000,
      heartbeatInterval: 300,
      // Idle partitions must not hold the fetch loop (and with it heartbeats and rejoins) for long.
      maxWaitTimeInMs: 200,
    });
    consumer.on(consumer.events.GROUP_JOIN, (e: ConsumerGroupJoinEvent) => this.recordJoin(who, e.payload.memberId, e.payload.isLeader,
      e.payload.memberAssignment[topic] ?? []));
    consumer.on(consumer.events.COMMIT_OFFSETS, (e) => this.ledger.commit(who, e));
    consumer.on(consumer.events.REBALANCING, () => this.rebalancingEvents++);
    this.consumers.set(who, consumer);
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: true,
      autoCommitInterval: 200,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }) => {
        let handled = 0;
        for (const m of batch.messages) {
          if (!isRunning() || isStale()) break;
          this.ledger.deliver(who, batch.partition, Number(m.offset), m.value?.toString() ?? '');
          resolveOffset(m.offset);
          if (++handled % recordsPerCheck === 0) {
            await commitOffsetsIfNecessary();
            await heartbeat();
          }
        }
        await commitOffsetsIfNecessary();
        await heartbeat();
      },
    });
    return consumer;
  }

  /** A join of a member running elsewhere (another process), told to this run. */
  recordJoin(who: string, memberId: string, isLeader: boolean, partitions: number[]): void {
    this.joins.push({ who, atMs: Date.now(), memberId, isLeader, partitions: [...partitions].sort((a, b) => a - b) });
  }

  /** The latest assignment of each named member, or null unless each has joined since `sinceMs`. */
  latestSince(names: string[], sinceMs: number): number[][] | null {
    const out: number[][] = [];
    for (const who of names) {
      const last = this.joins.filter((j) => j.who === who).at(-1);
      if (last === undefined || last.atMs < sinceMs) return null;
      out.push(last.partitions);
    }
    return out;
  }

  /** Whether `names` (each joined since `sinceMs`) split all partitions, each exactly once, each member some. */
  splitSince(names: string[], sinceMs: number): boolean {
    const assignments = this.latestSince(names, sinceMs);
    if (assignments === null) return false;
    const all = assignments.flat().sort((a, b) => a - b);
    return all.length === this.opts.partitions && all.every((p, i) => p === i) && assignments.every((a) => a.length > 0);
  }

  /** Waits until `names` split the partitions among them, having joined since `sinceMs`. */
  waitForSplit(names: string[], sinceMs: number, timeoutMs?: number): Promise<void> {
    return waitUntil(`${names.join(', ')} sharing all partitions`, () => this.splitSince(names, sinceMs), timeoutMs, () => this.diagnostics());
  }

  leaderOf(names: string[]): string | undefined {
    return names.find((who) => this.joins.filter((j) => j.who === who).at(-1)?.isLeader === true);
  }

  diagnostics(): string {
    const missing = this.ledger.missing().map((v) => `p${v % this.opts.partitions}@${Math.floor(v / this.opts.partitions)}`);
    const joins = JSON.stringify(this.joins.map((j) => [j.who, j.atMs - this.startedMs, j.partitions]));
    return `${this.ledger.summary()}\nmissing (first ones): ${missing.join(' ')}\njoins [who, ms, partitions]: ${joins}`;
  }
}
