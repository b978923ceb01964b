// The deterministic simulation of a Raft cluster. One seed decides everything: the scenario (scenario.ts),
// every fault, latency and client action, and the core's election jitter. The run is a discrete event
// loop over virtual time (event-queue.ts): nothing waits for a real clock, and a seed replays exactly.
//
// A run has two phases:
// 1. Faults: for `faultEvents` events, fault episodes (network, partitions, pauses, crashes, slow disks)
//    start and end while clients write and read and an operator changes membership and leadership.
// 2. Liveness: every fault heals (links restored, nodes resumed or restarted, disks healthy, nodes removed
//    from the cluster shut down). Within LIVENESS_BOUND_ELECTION_TIMEOUTS maximum election timeouts, a
//    leader must be elected, a proposal sent after the heal must be acknowledged, and every member must
//    apply it; otherwise the run fails with a liveness violation.
// Safety is checked at every step by the Checker; the run stops at the first violation.

import { Checker, InvariantViolation, type Invariant } from './checker.ts';
import type { CoreModule } from './core-loader.ts';
import { EventQueue } from './event-queue.ts';
import { isDriverMutation, type DriverMutation, type MutationName } from './mutations.ts';
import { Network, type NetworkEpisode } from './network.ts';
import { SimNode, isVoteGrant, type ClientReply, type ClientRequest, type NodeHost } from './node.ts';
import { Prng } from './prng.ts';
import { FAULT_KINDS, describeScenario, makeScenario, type FaultKind, type Scenario } from './scenario.ts';
import { SnapshotStore, encodeValue, fingerprint, type AppliedEntry } from './state-machine.ts';
import type { SmImage } from './disk.ts';
import { Trace, formatTime } from './trace.ts';
import {
  ConfChangeType,
  EntryType,
  MessageType,
  Role,
  type ConfChange,
  type ConfState,
  type HardState,
  type Message,
  type Snapshot,
} from '../../../src/raft/core/types.ts';

/**
 * Liveness bound: once faults heal, a proposal must commit and reach every member within this many
 * maximum election timeouts (2 * electionTick ticks each).
 */
export const LIVENESS_BOUND_ELECTION_TIMEOUTS = 10;

/** Default events of the fault phase per seed (the CI suite and campaigns pass their own). */
export const DEFAULT_FAULT_EVENTS = 6_000;

/** The liveness phase may use at most this many times the fault-phase budget of events. */
const LIVENESS_EVENTS_FACTOR = 20;

export interface RunOptions {
  seed: number;
  /** Events of the fault phase; then faults heal. */
  faultEvents?: number;
  mutation?: MutationName;
  /** Print every trace record as it happens. */
  verbose?: (line: string) => void;
  /** Trace records kept for a failure report. */
  traceTailLines?: number;
}

export interface RunStats {
  events: number;
  virtualTimeUs: number;
  faults: Record<FaultKind, number>;
  messagesSent: number;
  messagesDropped: number;
  messagesDuplicated: number;
  leadersElected: number;
  snapshotsSent: number;
  confChangesProposed: number;
  confChangesApplied: number;
  leaderTransfers: number;
  proposals: number;
  acknowledged: number;
  readsServed: number;
  committedIndex: number;
}

export interface Violation {
  invariant: Invariant;
  message: string;
  /** The command that replays this run exactly. */
  replay: string;
  traceTail: string[];
  virtualTimeUs: number;
}

export interface RunResult {
  seed: number;
  scenario: string;
  stats: RunStats;
  violation: Violation | undefined;
}

export function emptyFaultCounts(): Record<FaultKind, number> {
  const out = {} as Record<FaultKind, number>;
  for (const k of FAULT_KINDS) out[k] = 0;
  return out;
}

export function replayCommand(seed: number, faultEvents: number, mutation?: MutationName): string {
  const parts = ['npm run sim --', `--seed ${seed}`];
  if (faultEvents !== DEFAULT_FAULT_EVENTS) parts.push(`--events ${faultEvents}`);
  if (mutation !== undefined) parts.push(`--mutation ${mutation}`);
  parts.push('--verbose');
  return parts.join(' ');
}

type SimEvent =
  | { k: 'tick'; node: number; inc: number }
  | { k: 'deliver'; msg: Message }
  | { k: 'disk'; node: number; write: number }
  | { k: 'snap-status'; node: number; inc: number; to: number; ok: boolean }
  | { k: 'unreachable'; node: number; inc: number; to: number }
  | { k: 'to-node'; node: number; req: ClientRequest }
  | { k: 'to-client'; client: number; reply: ClientReply }
  | { k: 'client'; client: number; gen: number }
  | { k: 'fault' }
  | { k: 'operator' }
  | { k: 'call'; fn: () => void }
  | { k: 'deadline' };

interface Client {
  id: number;
  seq: number;
  target: number;
  /** Bumped per operation: a timeout event of an older operation is ignored. */
  gen: number;
  pending: { kind: 'write'; value: string; sentAtUs: number } | { kind: 'read'; readId: string } | undefined;
}

export class Simulation implements NodeHost {
  readonly scenario: Scenario;
  readonly checker = new Checker();
  readonly snapshots = new SnapshotStore();
  readonly driverMutation: DriverMutation | undefined;
  readonly stats: RunStats;
  private readonly queue = new EventQueue<SimEvent>();
  private readonly rng: Prng;
  private readonly faultRng: Prng;
  private readonly clientRng: Prng;
  private readonly diskRng: Prng;
  private readonly network: Network;
  private readonly tracer: Trace;
  readonly nodes = new Map<number, SimNode>();
  private readonly clients: Client[] = [];
  private readonly acked: string[] = [];
  private readonly faultEvents: number;
  private phase: 'faults' | 'liveness' = 'faults';
  private healAtUs = 0;
  private livenessIndex = 0;
  /** Newest configuration applied anywhere, and its index. */
  private conf: ConfState;
  private confIndex = 0;
  private readonly everRemoved = new Set<number>();
  private unusedSpares: number[] = [];
  private nextEpisode = 1;
  private activeFaults = 0;
  /** Virtual time until which a leader-churn episode lasts. */
  private churnUntilUs = 0;

  constructor(
    readonly core: CoreModule,
    private readonly options: RunOptions,
  ) {
    const seed = options.seed;
    this.scenario = makeScenario(seed);
    this.faultEvents = options.faultEvents ?? DEFAULT_FAULT_EVENTS;
    this.driverMutation = isDriverMutation(options.mutation) ? options.mutation : undefined;
    this.rng = new Prng(seed);
    this.faultRng = this.rng.fork('faults');
    this.clientRng = this.rng.fork('clients');
    this.diskRng = this.rng.fork('disk');
    const s = this.scenario;
    this.network = new Network(this.rng.fork('network'), {
      latencyMinUs: s.latencyMinUs,
      latencyMaxUs: s.latencyMaxUs,
      dropProbability: s.dropProbability,
      duplicateProbability: s.duplicateProbability,
    });
    this.tracer = new Trace(options.traceTailLines ?? 400, options.verbose);
    this.stats = {
      events: 0,
      virtualTimeUs: 0,
      faults: emptyFaultCounts(),
      messagesSent: 0,
      messagesDropped: 0,
      messagesDuplicated: 0,
      leadersElected: 0,
      snapshotsSent: 0,
      confChangesProposed: 0,
      confChangesApplied: 0,
      leaderTransfers: 0,
      proposals: 0,
      acknowledged: 0,
      readsServed: 0,
      committedIndex: 0,
    };
    const voters = range(1, s.voters);
    const learners = range(s.voters + 1, s.voters + s.learners);
    this.conf = { voters, learners, votersOutgoing: [], learnersNext: [], autoLeave: false };
    this.checker.setInitialConf(this.conf);
    const bootstrap = this.bootstrapImage(this.conf);
    for (const id of [...voters, ...learners]) {
      const node = this.addNode(id, this.conf);
      if (bootstrap !== undefined) node.disk.install(bootstrap.snapshot, bootstrap.sm, bootstrap.hardState);
    }
    const firstSpare = s.voters + s.learners + 1;
    this.unusedSpares = range(firstSpare, firstSpare + s.spares - 1);
    for (let i = 1; i <= s.clients; i++) {
      this.clients.push({ id: i, seq: 0, target: this.clientRng.pick(voters), gen: 0, pending: undefined });
    }
  }

  // ----- NodeHost -----

  now(): number {
    return this.queue.now;
  }

  trace(node: number, what: string, detail?: unknown): void {
    this.tracer.add(this.queue.now, node, what, detail);
  }

  scheduleDisk(node: SimNode, write: number): void {
    const s = this.scenario;
    const latency = this.diskRng.int(s.diskLatencyMinUs, s.diskLatencyMaxUs) * node.diskSlowFactor;
    const at = Math.max(this.queue.now + latency, node.disk.lastCompletionUs + 1);
    node.disk.lastCompletionUs = at;
    this.queue.schedule(at - this.queue.now, { k: 'disk', node: node.id, write });
  }

  send(from: SimNode, m: Message): void {
    this.stats.messagesSent++;
    if (isVoteGrant(m)) this.checker.voteGranted(m.from, m.term, m.to);
    if (m.type === MessageType.Snap) this.stats.snapshotsSent++;
    this.trace(from.id, 'send', m);
    const fate = this.network.fate(m);
    if (fate.delaysUs.length === 0) {
      this.stats.messagesDropped++;
      this.afterLoss(from, m, fate.partitioned);
      return;
    }
    if (fate.delaysUs.length > 1) this.stats.messagesDuplicated++;
    for (const delay of fate.delaysUs) {
      this.queue.schedule(delay, { k: 'deliver', msg: { ...m, entries: m.entries.slice() } });
    }
  }

  applied(node: SimNode, entry: AppliedEntry, conf: ConfState | undefined): void {
    if (entry.index > this.stats.committedIndex) this.stats.committedIndex = entry.index;
    if (conf === undefined || entry.index <= this.confIndex) return;
    this.stats.confChangesApplied++;
    for (const id of [...this.conf.voters, ...this.conf.learners, ...this.conf.votersOutgoing]) {
      if (!isMember(conf, id)) this.everRemoved.add(id);
    }
    this.conf = conf;
    this.confIndex = entry.index;
    void node;
  }

  becameLeader(node: SimNode): void {
    if (this.phase !== 'faults' || this.queue.now >= this.churnUntilUs || !this.faultRng.chance(0.7)) return;
    // Crash it soon: after it appended its empty entry, maybe before it replicated or committed it.
    const inc = node.incarnation;
    const torn = this.faultRng.chance(0.5);
    this.later(this.faultRng.int(500, 30_000), () => {
      if (node.incarnation !== inc || node.state !== 'up') return;
      node.crash(torn);
      this.later(this.faultRng.int(10_000, 300_000), () => this.restart(node));
    });
  }

  replyToClient(client: number, reply: ClientReply): void {
    this.queue.schedule(this.network.latency(), { k: 'to-client', client, reply });
  }

  // ----- running -----

  run(): RunResult {
    const s = this.scenario;
    for (const node of this.nodes.values()) node.start();
    for (const node of this.nodes.values()) this.scheduleTick(node);
    for (const c of this.clients) this.queue.schedule(this.clientRng.int(0, s.clientGapMaxUs), { k: 'client', client: c.id, gen: c.gen });
    this.queue.schedule(this.faultRng.int(s.faultGapMinUs, s.faultGapMaxUs), { k: 'fault' });
    if (s.membershipChanges || s.leaderTransfers) this.queue.schedule(this.faultRng.int(100_000, 500_000), { k: 'operator' });
    let violation: Violation | undefined;
    try {
      this.loop();
      this.finalChecks();
    } catch (err) {
      violation = this.violationOf(err);
    }
    this.stats.virtualTimeUs = this.queue.now;
    this.stats.leadersElected = this.checker.leaderTerms;
    this.stats.acknowledged = this.checker.acknowledgedCount;
    return { seed: s.seed, scenario: describeScenario(s), stats: this.stats, violation };
  }

  private loop(): void {
    const maxEvents = this.faultEvents * (1 + LIVENESS_EVENTS_FACTOR);
    for (;;) {
      const item = this.queue.pop();
      if (item === undefined) throw new InvariantViolation('liveness', 'the event queue ran dry');
      this.stats.events++;
      this.handle(item.event);
      if (this.phase === 'faults') {
        if (this.stats.events >= this.faultEvents) this.heal();
      } else if (this.livenessReached()) {
        return;
      } else if (this.stats.events >= maxEvents) {
        throw new InvariantViolation('liveness', `no progress within ${maxEvents} events after the heal`);
      }
    }
  }

  private handle(e: SimEvent): void {
    switch (e.k) {
      case 'tick':
        return this.onTick(e.node, e.inc);
      case 'deliver':
        return this.deliver(e.msg);
      case 'disk': {
        const node = this.nodes.get(e.node)!;
        if (node.disk.complete(e.write)) node.synced(e.write);
        return;
      }
      case 'snap-status':
        return this.withNode(e, e.node, e.inc, (n) => n.raw!.reportSnapshot(e.to, e.ok));
      case 'unreachable':
        return this.withNode(e, e.node, e.inc, (n) => n.raw!.reportUnreachable(e.to));
      case 'to-node':
        this.nodes.get(e.node)?.request(e.req);
        return;
      case 'to-client':
        return this.onReply(this.clients[e.client - 1]!, e.reply);
      case 'client': {
        const c = this.clients[e.client - 1]!;
        if (e.gen !== c.gen) return;
        if (c.pending !== undefined) {
          // Timed out: forget it (a late ack still counts) and try another node.
          this.trace(0, 'client-timeout', `c${c.id} ${c.pending.kind}`);
          c.pending = undefined;
          c.target = this.clientRng.pick([...this.nodes.keys()]);
        }
        return this.clientNext(c);
      }
      case 'fault':
        return this.injectFault();
      case 'operator':
        return this.operate();
      case 'call':
        return e.fn();
      case 'deadline':
        if (!this.livenessReached()) throw new InvariantViolation('liveness', this.livenessReport());
        return;
    }
  }

  /**
   * A transport report for node `id`: lost if the node restarted since (its progress was reset anyway),
   * delivered once it runs again if it is paused (the core relies on every snapshot being reported).
   */
  private withNode(e: SimEvent, id: number, inc: number, fn: (n: SimNode) => void): void {
    const n = this.nodes.get(id);
    if (n === undefined || n.incarnation !== inc || n.state !== 'up') return;
    if (n.paused) {
      this.queue.schedule(n.tickUs, e);
      return;
    }
    fn(n);
    n.drive();
  }

  private onTick(id: number, inc: number): void {
    const node = this.nodes.get(id)!;
    if (node.incarnation !== inc || node.state !== 'up') return;
    node.tick();
    this.scheduleTick(node);
  }

  private scheduleTick(node: SimNode): void {
    this.queue.schedule(node.tickUs, { k: 'tick', node: node.id, inc: node.incarnation });
  }

  private deliver(m: Message): void {
    const to = this.nodes.get(m.to);
    // A message in flight when its link was cut is lost with it.
    const lost = to === undefined || to.state !== 'up' || this.network.isCut(m.from, m.to);
    if (lost) {
      this.stats.messagesDropped++;
      if (m.type === MessageType.Snap) this.reportSnapshotOutcome(m, false);
      return;
    }
    this.trace(m.to, 'recv', m);
    to.step(m);
    if (m.type === MessageType.Snap) this.reportSnapshotOutcome(m, true);
  }

  /** The transport of a lost message: snapshots report failure, cut links may report the peer unreachable. */
  private afterLoss(from: SimNode, m: Message, partitioned: boolean): void {
    if (m.type === MessageType.Snap) this.reportSnapshotOutcome(m, false);
    else if (partitioned && this.faultRng.chance(0.3)) {
      this.queue.schedule(this.network.latency(), { k: 'unreachable', node: from.id, inc: from.incarnation, to: m.to });
    }
  }

  private reportSnapshotOutcome(m: Message, ok: boolean): void {
    const from = this.nodes.get(m.from);
    if (from === undefined) return;
    this.queue.schedule(this.network.latency(), { k: 'snap-status', node: m.from, inc: from.incarnation, to: m.to, ok });
  }

  /** The snapshot every initial member is installed with (see Scenario.bootstrapSnapshotIndex). */
  private bootstrapImage(conf: ConfState): { snapshot: Snapshot; sm: SmImage; hardState: HardState } | undefined {
    const index = this.scenario.bootstrapSnapshotIndex;
    if (index === 0) return undefined;
    // As if entries 1..index were empty entries of term 1, committed and applied by every initial member.
    const log = range(1, index).map((i) => fingerprint({ index: i, term: 1, type: EntryType.Normal, data: new Uint8Array(0) }));
    const sm: SmImage = { applied: index, log, conf };
    const snapshot: Snapshot = { metadata: { index, term: 1, conf }, data: this.snapshots.put(sm) };
    return { snapshot, sm, hardState: { term: 1, vote: 0, commit: index } };
  }

  private addNode(id: number, bootstrap: ConfState): SimNode {
    const node = new SimNode(id, this, bootstrap, this.rng.fork(`node-${id}`));
    this.nodes.set(id, node);
    this.checker.addDisk(node.disk);
    return node;
  }

  // ----- faults -----

  private injectFault(): void {
    if (this.phase !== 'faults') return;
    const s = this.scenario;
    const r = this.faultRng;
    this.queue.schedule(r.int(s.faultGapMinUs, s.faultGapMaxUs), { k: 'fault' });
    if (this.activeFaults >= s.maxActiveFaults) return;
    const kind = r.pick(s.faultKinds);
    const durationUs = r.int(10_000, s.faultDurationMaxUs);
    const running = [...this.nodes.values()].filter((n) => n.state !== 'stopped');
    // Node faults need a node in the right state; when there is none this episode does not happen.
    const candidates = running.filter((n) => n.state === 'up' && !(kind === 'pause' && n.paused));
    if (candidates.length === 0) return;
    // Half of the node faults hit the leader: that is where the interesting failures are.
    const leader = this.currentLeader();
    const node = leader !== undefined && candidates.includes(leader) && r.chance(0.5) ? leader : r.pick(candidates);
    this.stats.faults[kind]++;
    this.activeFaults++;
    this.later(durationUs, () => this.activeFaults--);
    this.trace(kind === 'pause' || kind.startsWith('crash') || kind === 'slow-disk' ? node.id : 0, 'fault',
      `${kind} for ${formatTime(durationUs).trim()}`);
    switch (kind) {
      case 'drop':
        return this.networkEpisode({ kind, probability: r.pick([0.2, 0.5, 0.9]) }, durationUs);
      case 'duplicate':
        return this.networkEpisode({ kind, probability: r.pick([0.1, 0.3]) }, durationUs);
      case 'delay':
        return this.networkEpisode({ kind, extraMaxUs: r.pick([50_000, 300_000, 1_000_000]) }, durationUs);
      case 'reorder':
        return this.networkEpisode({ kind, factor: r.pick([5, 20]) }, durationUs);
      case 'partition-symmetric':
      case 'partition-asymmetric':
      case 'partition-partial':
        return this.partition(kind, running.map((n) => n.id), durationUs, this.currentLeader()?.id);
      case 'pause':
        node.pause();
        return this.later(durationUs, () => node.resume());
      case 'crash':
      case 'crash-torn':
        node.crash(kind === 'crash-torn');
        return this.later(durationUs, () => this.restart(node));
      case 'leader-churn':
        this.churnUntilUs = Math.max(this.churnUntilUs, this.queue.now + durationUs);
        return;
      case 'slow-disk': {
        const factor = r.pick([10, 50, 200]);
        node.diskSlowFactor = Math.max(node.diskSlowFactor, factor);
        this.trace(node.id, 'slow-disk', `x${factor}`);
        return this.later(durationUs, () => {
          node.diskSlowFactor = 1;
        });
      }
    }
  }

  private networkEpisode(episode: NetworkEpisode, durationUs: number): void {
    const id = this.nextEpisode++;
    this.network.startEpisode(id, episode);
    this.later(durationUs, () => this.network.endEpisode(id));
  }

  private partition(kind: FaultKind, ids: number[], durationUs: number, leader: number | undefined): void {
    const r = this.faultRng;
    const links: Array<[number, number]> = [];
    // Half of the time the leader is the node cut off (or on the minority side).
    const victim = leader !== undefined && r.chance(0.5) ? leader : r.pick(ids);
    if (kind === 'partition-symmetric') {
      // Two sides; every link across is cut both ways.
      const shuffled = [victim, ...r.shuffled(ids.filter((id) => id !== victim))];
      const cut = r.int(1, Math.max(1, Math.floor(ids.length / 2)));
      const a = shuffled.slice(0, cut);
      const b = shuffled.slice(cut);
      for (const x of a) for (const y of b) links.push([x, y], [y, x]);
    } else if (kind === 'partition-asymmetric') {
      // One node can send but not receive, or receive but not send.
      const x = victim;
      const outgoing = r.chance(0.5);
      for (const y of ids) if (y !== x) links.push(outgoing ? [x, y] : [y, x]);
    } else {
      // Some pairs cannot talk, others can: reachability is not transitive.
      for (const x of ids) for (const y of ids) if (x < y && r.chance(0.4)) links.push([x, y], [y, x]);
    }
    this.trace(0, 'partition', links.map(([x, y]) => `${x}>${y}`).join(' '));
    this.network.cutLinks(links);
    this.later(durationUs, () => this.network.restoreLinks(links));
  }

  private restart(node: SimNode): void {
    if (node.state !== 'down') return;
    node.start();
    this.scheduleTick(node);
  }

  private later(delayUs: number, fn: () => void): void {
    this.queue.schedule(delayUs, { k: 'call', fn });
  }

  // ----- clients -----

  private clientNext(c: Client): void {
    const s = this.scenario;
    const r = this.clientRng;
    c.gen++;
    const target = this.nodes.get(c.target);
    if (target === undefined || target.state === 'stopped') c.target = r.pick(this.memberIds());
    let req: ClientRequest;
    let to = c.target;
    // After the heal, clients write until one write is acknowledged: that is the liveness probe.
    const probing = this.phase === 'liveness' && this.livenessIndex === 0;
    if (!probing && r.chance(s.readFraction)) {
      const readId = `r${c.id}.${++c.seq}`;
      c.pending = { kind: 'read', readId };
      req = { kind: 'read', client: c.id, readId, ackedAtStart: this.checker.highestAcknowledged };
      // Reads go to any node half of the time (a load balancer): a stale leader must not serve them.
      if (r.chance(0.5)) to = r.pick(this.memberIds());
    } else {
      const value = `v${c.id}.${++c.seq}${'.'.repeat(s.valuePaddingBytes)}`;
      c.pending = { kind: 'write', value, sentAtUs: this.queue.now };
      req = { kind: 'propose', client: c.id, value, data: encodeValue(value) };
      this.stats.proposals++;
    }
    this.trace(0, 'client', `c${c.id} ${req.kind} ${req.kind === 'read' ? req.readId : req.value.slice(0, 12)} to n${to}`);
    this.queue.schedule(this.network.latency(), { k: 'to-node', node: to, req });
    this.queue.schedule(this.clientTimeoutUs(), { k: 'client', client: c.id, gen: c.gen });
  }

  private clientTimeoutUs(): number {
    const s = this.scenario;
    return 2 * 2 * s.electionTick * s.tickUs;
  }

  private onReply(c: Client, reply: ClientReply): void {
    const r = this.clientRng;
    const p = c.pending;
    this.trace(0, 'client-reply', `c${c.id} ${JSON.stringify(reply).slice(0, 80)}`);
    switch (reply.kind) {
      case 'ack':
        this.checker.ack(reply.value, reply.index);
        this.acked.push(reply.value);
        if (p?.kind === 'write' && p.value === reply.value) {
          if (this.phase === 'liveness' && p.sentAtUs >= this.healAtUs && this.livenessIndex === 0) {
            this.livenessIndex = reply.index;
            this.trace(0, 'liveness', `write acknowledged at ${reply.index} after the heal`);
          }
          return this.clientDone(c);
        }
        return;
      case 'read-ok':
        this.stats.readsServed++;
        if (p?.kind === 'read' && p.readId === reply.readId) this.clientDone(c);
        return;
      case 'dropped':
      case 'read-dropped': {
        const id = reply.kind === 'dropped' ? reply.value : reply.readId;
        const pendingId = p === undefined ? undefined : p.kind === 'write' ? p.value : p.readId;
        if (id !== pendingId) return;
        c.pending = undefined;
        c.target = reply.leaderHint !== 0 ? reply.leaderHint : r.pick(this.memberIds());
        // Back off a little when no leader is known, so a leaderless cluster is not flooded.
        c.gen++;
        const backoff = reply.leaderHint !== 0 ? 0 : r.int(1_000, this.scenario.tickUs);
        this.queue.schedule(backoff, { k: 'client', client: c.id, gen: c.gen });
        return;
      }
    }
  }

  private clientDone(c: Client): void {
    c.pending = undefined;
    c.gen++;
    const s = this.scenario;
    this.queue.schedule(this.clientRng.int(s.clientGapMinUs, s.clientGapMaxUs), { k: 'client', client: c.id, gen: c.gen });
  }

  private memberIds(): number[] {
    const ids = [...this.nodes.values()].filter((n) => n.state !== 'stopped' && isMember(this.conf, n.id)).map((n) => n.id);
    return ids.length > 0 ? ids : [...this.nodes.keys()];
  }

  // ----- operator: leadership transfers and membership changes -----

  private operate(): void {
    if (this.phase !== 'faults') return;
    const s = this.scenario;
    const r = this.faultRng;
    this.queue.schedule(r.int(100_000, 1_000_000), { k: 'operator' });
    const leader = this.currentLeader();
    if (leader === undefined) return;
    if (s.leaderTransfers && (!s.membershipChanges || r.chance(0.3))) {
      const others = this.conf.voters.filter((id) => id !== leader.id);
      if (others.length === 0) return;
      const to = r.pick(others);
      this.stats.leaderTransfers++;
      this.trace(leader.id, 'transfer', `to ${to}`);
      leader.raw!.transferLeader(to);
      leader.drive();
      return;
    }
    if (!s.membershipChanges) return;
    const cc = this.chooseConfChange();
    if (cc === undefined) return;
    for (const c of cc.changes) {
      if (!this.nodes.has(c.nodeId)) {
        // A fresh node starts empty and learns everything from the leader.
        const node = this.addNode(c.nodeId, { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false });
        this.unusedSpares = this.unusedSpares.filter((id) => id !== c.nodeId);
        node.start();
        this.scheduleTick(node);
      }
    }
    this.stats.confChangesProposed++;
    this.trace(leader.id, 'conf-change', cc);
    try {
      leader.raw!.proposeConfChange(cc);
    } catch (err) {
      if (!(err instanceof this.core.ProposalDroppedError)) throw err;
    }
    leader.drive();
  }

  private chooseConfChange(): ConfChange | undefined {
    const r = this.faultRng;
    const conf = this.conf;
    if (conf.votersOutgoing.length > 0) {
      // Joint: leave it explicitly unless the leader does it by itself.
      return conf.autoLeave ? undefined : { changes: [], joint: false };
    }
    const voters = conf.voters;
    const learners = conf.learners.filter((id) => !this.everRemoved.has(id));
    const options: Array<() => ConfChange> = [];
    const single = (type: ConfChangeType, nodeId: number): ConfChange => ({ changes: [{ type, nodeId }], joint: false });
    const spare = this.unusedSpares[0];
    if (spare !== undefined) options.push(() => single(ConfChangeType.AddLearnerNode, spare));
    if (learners.length > 0) {
      options.push(() => single(ConfChangeType.AddNode, r.pick(learners)));
      options.push(() => single(ConfChangeType.RemoveNode, r.pick(learners)));
      if (voters.length >= 3) {
        // Swap a learner in for a voter through a joint configuration.
        options.push(() => ({
          changes: [
            { type: ConfChangeType.AddNode, nodeId: r.pick(learners) },
            { type: r.chance(0.5) ? ConfChangeType.RemoveNode : ConfChangeType.AddLearnerNode, nodeId: r.pick(voters) },
          ],
          joint: true,
          autoLeave: r.chance(0.7),
        }));
      }
    }
    if (voters.length > 3) {
      options.push(() => single(ConfChangeType.RemoveNode, r.pick(voters)));
      options.push(() => single(ConfChangeType.AddLearnerNode, r.pick(voters)));
    }
    if (options.length === 0) return undefined;
    return r.pick(options)();
  }

  private currentLeader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes.values()) {
      if (n.isLive && n.role === Role.Leader && (best === undefined || n.term > best.term)) best = n;
    }
    return best;
  }

  // ----- heal and liveness -----

  private heal(): void {
    this.phase = 'liveness';
    this.healAtUs = this.queue.now;
    this.trace(0, 'heal', `after ${this.stats.events} events`);
    this.network.heal();
    for (const node of this.nodes.values()) {
      node.diskSlowFactor = 1;
      // Writes queued behind a slow disk complete at healthy speed from now on.
      const pending = node.disk.lastPendingWrite;
      if (pending !== undefined) {
        node.disk.lastCompletionUs = this.queue.now;
        this.scheduleDisk(node, pending);
      }
      if (node.state === 'stopped') continue;
      if (!isMember(this.conf, node.id)) {
        node.stop();
        this.checker.notLeader(node.id);
        continue;
      }
      if (node.state === 'down') this.restart(node);
      else if (node.paused) node.resume();
    }
    const s = this.scenario;
    const boundUs = LIVENESS_BOUND_ELECTION_TIMEOUTS * 2 * s.electionTick * s.tickUs;
    this.queue.schedule(boundUs, { k: 'deadline' });
  }

  private livenessReached(): boolean {
    if (this.livenessIndex === 0) return false;
    for (const n of this.nodes.values()) {
      if (n.state === 'stopped' || !isMember(this.conf, n.id)) continue;
      if (n.sm.applied < this.livenessIndex) return false;
    }
    return true;
  }

  private livenessReport(): string {
    const s = this.scenario;
    const nodes = [...this.nodes.values()]
      .map((n) => `n${n.id}:${n.state}${n.paused ? '/paused' : ''} ${Role[n.role]} t${n.term} applied ${n.sm.applied}`)
      .join('; ');
    return `${LIVENESS_BOUND_ELECTION_TIMEOUTS} election timeouts (${LIVENESS_BOUND_ELECTION_TIMEOUTS * 2 * s.electionTick} ticks) ` +
      `after the heal, ${this.livenessIndex === 0 ? 'no write sent after the heal was acknowledged' :
        `write at ${this.livenessIndex} not applied everywhere`}. Config voters ${this.conf.voters} learners ` +
      `${this.conf.learners}${this.conf.votersOutgoing.length > 0 ? ` outgoing ${this.conf.votersOutgoing}` : ''}. ${nodes}`;
  }

  private finalChecks(): void {
    this.checker.checkAcknowledgedApplied(this.acked);
    this.checker.checkDurableLogsMatch([...this.nodes.values()].map((n) => n.disk));
  }

  private violationOf(err: unknown): Violation {
    const invariant: Invariant = err instanceof InvariantViolation ? err.invariant : 'exception';
    const message = err instanceof Error ? (err instanceof InvariantViolation ? err.message : `${err.name}: ${err.message}\n${err.stack ?? ''}`) : String(err);
    return {
      invariant,
      message,
      replay: replayCommand(this.options.seed, this.faultEvents, this.options.mutation),
      traceTail: this.tracer.tail(this.options.traceTailLines ?? 400),
      virtualTimeUs: this.queue.now,
    };
  }
}

function range(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let i = lo; i <= hi; i++) out.push(i);
  return out;
}

function isMember(conf: ConfState, id: number): boolean {
  return conf.voters.includes(id) || conf.learners.includes(id) || conf.votersOutgoing.includes(id) || conf.learnersNext.includes(id);
}

/** Run one seed against `core`. */
export function runSeed(core: CoreModule, options: RunOptions): RunResult {
  return new Simulation(core, options).run();
}

/** A failing run, as printed by the CLI and the CI test. */
export function formatViolation(result: RunResult, tailLines = 60): string {
  const v = result.violation!;
  return [
    `seed ${result.seed} violated ${v.invariant} at ${formatTime(v.virtualTimeUs).trim()} (${result.scenario})`,
    v.message,
    `replay: ${v.replay}`,
    `last ${Math.min(tailLines, v.traceTail.length)} trace records:`,
    ...v.traceTail.slice(-tailLines).map((l) => `  ${l}`),
  ].join('\n');
}
