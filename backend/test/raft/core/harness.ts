// A small hand-driven network of RawNodes for the core's tests: synchronous delivery, message filters,
// and a driver that follows the Ready contract (persist to MemoryStorage, then send, then apply).

import {
  EntryType,
  MemoryStorage,
  MessageType,
  RawNode,
  Role,
  decodeConfChange,
  emptyConfState,
} from '../../../src/raft/core/index.ts';
import type { Config, ConfState, Entry, Message, NodeId, ReadState, Ready } from '../../../src/raft/core/index.ts';

/** Deterministic PRNG (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

export type NodeOptions = Partial<Omit<Config, 'id' | 'storage'>>;

export function confOf(voters: NodeId[], learners: NodeId[] = []): ConfState {
  return { ...emptyConfState(), voters, learners };
}

export class TestNode {
  readonly id: NodeId;
  storage: MemoryStorage;
  rn: RawNode;
  /** Every committed entry applied, in order (the "state machine"). */
  applied: Entry[] = [];
  readStates: ReadState[] = [];
  /** Every Ready this node handed out (for contract checks). */
  readies: Ready[] = [];
  /** Called after persisting and before sending: lets a test observe the order of effects. */
  onPersisted?: (rd: Ready) => void;
  /**
   * A broken driver for negative tests: hand the messages out before persisting (the Ready is persisted
   * and advanced by finishDeferred(), after the network delivered them).
   */
  sendBeforePersist = false;
  private deferred: Ready | undefined;
  readonly options: NodeOptions;

  constructor(id: NodeId, storage: MemoryStorage, options: NodeOptions) {
    this.id = id;
    this.storage = storage;
    this.options = options;
    this.rn = this.makeRawNode(0);
  }

  private makeRawNode(applied: number, overrides: NodeOptions = {}): RawNode {
    return new RawNode({
      id: this.id,
      electionTick: 10,
      heartbeatTick: 1,
      storage: this.storage,
      random: seededRandom(this.id * 7919),
      maxSizePerMsg: 1024 * 1024,
      maxInflightMsgs: 256,
      applied,
      ...this.options,
      ...overrides,
    });
  }

  /**
   * Crash and restart from what was persisted (the state machine survives: applied entries are kept),
   * optionally with different options from now on.
   */
  restart(overrides: NodeOptions = {}): void {
    const last = this.applied.length > 0 ? this.applied[this.applied.length - 1]!.index : 0;
    this.rn = this.makeRawNode(last, overrides);
  }

  /** One Ready cycle following the contract. Returns the messages to send. */
  cycle(): Message[] {
    if (!this.rn.hasReady()) return [];
    const rd = this.rn.ready();
    this.readies.push(rd);
    if (this.sendBeforePersist) {
      this.deferred = rd;
      return rd.messages;
    }
    this.finish(rd);
    return rd.messages;
  }

  finishDeferred(): void {
    const rd = this.deferred;
    this.deferred = undefined;
    if (rd) this.finish(rd);
  }

  private finish(rd: Ready): void {
    if (rd.snapshot) this.storage.applySnapshot(rd.snapshot);
    this.storage.append(rd.entries);
    if (rd.hardState) this.storage.setHardState(rd.hardState);
    this.onPersisted?.(rd);
    for (const e of rd.committedEntries) {
      // Applying after persisting: every committed entry handed out is durable here.
      if (this.storage.term(e.index) !== e.term) throw new Error(`node ${this.id} applies ${e.index} before it is durable`);
      if (e.type === EntryType.ConfChange) {
        const cs = this.rn.applyConfChange(decodeConfChange(e.data));
        this.storage.setConfState(cs);
      }
      this.applied.push(e);
    }
    this.readStates.push(...rd.readStates);
    this.rn.advance(rd);
  }

  /** Applied non-empty normal entries, decoded. */
  data(): string[] {
    return this.applied.filter((e) => e.type === EntryType.Normal && e.data.byteLength > 0).map((e) => dec(e.data));
  }

  role(): Role {
    return this.rn.status().softState.role;
  }

  term(): number {
    return this.rn.status().hardState.term;
  }
}

export class Network {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Directed links that lose everything: "from->to". */
  private readonly cut = new Set<string>();
  /** Return true to drop a message. */
  filter?: (m: Message) => boolean;
  /** Every message delivered, in order. */
  readonly delivered: Message[] = [];
  /** Messages held back by `hold` (delivered later with release()). */
  held: Message[] = [];
  hold?: (m: Message) => boolean;

  constructor(ids: NodeId[], options: NodeOptions = {}, perNode: Record<number, NodeOptions> = {}, conf?: ConfState) {
    const cs = conf ?? confOf(ids);
    for (const id of ids) this.add(id, new MemoryStorage(cs), { ...options, ...(perNode[id] ?? {}) });
  }

  add(id: NodeId, storage: MemoryStorage, options: NodeOptions): TestNode {
    const n = new TestNode(id, storage, options);
    this.nodes.set(id, n);
    return n;
  }

  node(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}->${other}`);
      this.cut.add(`${other}->${id}`);
    }
  }

  cutLink(a: NodeId, b: NodeId): void {
    this.cut.add(`${a}->${b}`);
    this.cut.add(`${b}->${a}`);
  }

  heal(): void {
    this.cut.clear();
  }

  private dropped(m: Message): boolean {
    if (this.cut.has(`${m.from}->${m.to}`)) return true;
    if (!this.nodes.has(m.to)) return true;
    return this.filter?.(m) ?? false;
  }

  /** Run Ready cycles and deliver messages until nothing moves (bounded). */
  settle(maxRounds = 1000): void {
    for (let round = 0; round < maxRounds; round++) {
      const msgs: Message[] = [];
      let busy = false;
      for (const n of this.nodes.values()) {
        busy ||= n.rn.hasReady();
        msgs.push(...n.cycle());
      }
      if (!busy) return;
      this.deliver(msgs);
      for (const n of this.nodes.values()) n.finishDeferred();
    }
    throw new Error('network did not settle');
  }

  deliver(msgs: Message[]): void {
    for (const m of msgs) {
      if (this.dropped(m)) continue;
      if (this.hold?.(m)) {
        this.held.push(m);
        continue;
      }
      this.send(m);
    }
  }

  /** Deliver messages forged by the test (no sender checks). */
  inject(msgs: Message[]): void {
    for (const m of msgs) {
      this.delivered.push(m);
      this.node(m.to).rn.step(m);
    }
  }

  release(): void {
    const h = this.held;
    this.held = [];
    for (const m of h) if (!this.dropped(m)) this.send(m);
  }

  /** Messages that left a node after it persisted what they promise (checked on every send). */
  durabilityChecks = 0;

  private send(m: Message): void {
    const sender = this.nodes.get(m.from);
    if (sender) {
      checkDurableOnSend(sender.storage, m);
      this.durabilityChecks++;
    }
    this.delivered.push(m);
    this.node(m.to).rn.step(m);
  }

  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) this.node(id).rn.tick();
  }

  /** Tick every node once and settle, n times. */
  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const node of this.nodes.values()) node.rn.tick();
      this.settle();
    }
  }

  campaign(id: NodeId): void {
    this.node(id).rn.campaign();
    this.settle();
  }

  propose(id: NodeId, data: string): void {
    this.node(id).rn.propose(enc(data));
    this.settle();
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.role() === Role.Leader).map((n) => n.id);
  }

  /** Messages of a type delivered so far. */
  deliveredOf(type: MessageType): Message[] {
    return this.delivered.filter((m) => m.type === type);
  }
}

/** Drive a single Raft-level RawNode: take the Ready, persist, advance; return the messages. */
export function drain(node: TestNode): Message[] {
  const out: Message[] = [];
  while (node.rn.hasReady()) out.push(...node.cycle());
  return out;
}

/**
 * Persist before send, checked against the sender's storage (its "disk") at the moment a message leaves:
 * a granted vote or a vote request is backed by the durable hard state, an acknowledged append by durable
 * entries, an App by the leader's durable log. Throws on a violation.
 */
export function checkDurableOnSend(storage: MemoryStorage, m: Message): void {
  const hs = storage.initialState().hardState;
  const fail = (what: string) => {
    throw new Error(`node ${m.from} sent ${MessageType[m.type]} to ${m.to} before ${what} was durable ` +
      `(durable term ${hs.term} vote ${hs.vote} last ${storage.lastIndex()})`);
  };
  const durableTerm = (i: number): number | undefined => {
    if (i < storage.firstIndex() - 1 || i > storage.lastIndex()) return undefined;
    return storage.term(i);
  };
  switch (m.type) {
    case MessageType.Vote:
      if (hs.term < m.term || (hs.term === m.term && hs.vote !== m.from)) fail('the self-vote');
      break;
    case MessageType.VoteResp:
      if (!m.reject && (hs.term < m.term || (hs.term === m.term && hs.vote !== m.to))) fail('the vote');
      break;
    case MessageType.AppResp:
      if (hs.term < m.term) fail('the term');
      if (!m.reject && m.index > storage.lastIndex()) fail(`entry ${m.index}`);
      break;
    case MessageType.App:
      if (hs.term < m.term) fail('the term');
      for (const e of m.entries) {
        const t = durableTerm(e.index);
        if (t !== undefined && t !== e.term) fail(`entry ${e.index} (durable term ${t}, sent ${e.term})`);
        if (t === undefined && e.index > storage.lastIndex()) fail(`entry ${e.index}`);
      }
      break;
    default:
      if (m.term > 0 && m.type !== MessageType.PreVote && m.type !== MessageType.PreVoteResp && hs.term < m.term) {
        fail('the term');
      }
  }
}
