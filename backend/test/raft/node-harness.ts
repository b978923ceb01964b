// Test harness for RaftNode: a small deterministic state machine (an append-only list of strings kept in its
// own LMDB environment, the applied index stored in the same transaction as the items it covers) and helpers
// to run clusters of real RaftNodes (real LMDB, real snapshot files, real TCP on 127.0.0.1). Not a test file.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import pino from 'pino';
import type { Logger } from 'pino';
import { RaftNode } from '../../src/raft/node.ts';
import type { RaftNodeOptions } from '../../src/raft/node.ts';
import type { NodeId, SnapshotChunks, StateMachine } from '../../src/raft/node-types.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface ListResult {
  /** Position of the item in the list (0-based). */
  position: number;
  index: number;
}

/**
 * The list's state: items[i] was appended by log entry entryIndex[i]. Entries with empty data (a leader's
 * no-op, a membership change) only move the applied index.
 */
export class ListStateMachine implements StateMachine {
  private applied: number;
  private count: number;
  /** Entries applied so far by this instance (not restored ones): a test checks nothing is applied twice. */
  readonly appliedLog: number[] = [];
  restores = 0;
  /** Fault injection: the next apply() throws this (like a state machine whose own disk failed). */
  failNextApply: Error | undefined;

  private constructor(
    private readonly root: RootDatabase,
    private readonly items: Database<string, number>,
  ) {
    this.applied = (root.get('applied') as number | undefined) ?? 0;
    this.count = (root.get('count') as number | undefined) ?? 0;
  }

  static async open(dir: string): Promise<ListStateMachine> {
    await fs.mkdir(dir, { recursive: true });
    const root = open({ path: dir, overlappingSync: false, maxDbs: 4 });
    const items = root.openDB<string, number>('items', {});
    return new ListStateMachine(root, items);
  }

  appliedIndex(): number {
    return this.applied;
  }

  async apply(entries: { index: number; term: number; data: Uint8Array }[]): Promise<unknown[]> {
    if (entries.length === 0) return [];
    if (this.failNextApply !== undefined) throw this.failNextApply;
    const results: unknown[] = [];
    let count = this.count;
    const writes: [number, string][] = [];
    for (const e of entries) {
      if (e.index !== this.applied + results.length + 1) {
        throw new Error(`entry ${e.index} applied out of order (applied ${this.applied + results.length})`);
      }
      if (e.data.byteLength === 0) {
        results.push(undefined);
        continue;
      }
      writes.push([count, decoder.decode(e.data)]);
      results.push({ position: count, index: e.index } satisfies ListResult);
      count++;
    }
    const last = entries[entries.length - 1]!.index;
    await this.root.transaction(() => {
      for (const [pos, item] of writes) this.items.put(pos, item);
      this.root.put('count', count);
      this.root.put('applied', last);
    });
    await this.root.flushed;
    this.count = count;
    this.applied = last;
    for (const e of entries) this.appliedLog.push(e.index);
    return results;
  }

  async snapshot(): Promise<{ index: number; chunks: SnapshotChunks }> {
    // Everything applied is already durable; the content is read now, so later applies do not leak in.
    const body = encoder.encode(JSON.stringify({ applied: this.applied, items: this.list() }));
    const index = this.applied;
    return {
      index,
      chunks: (async function* () {
        // Several chunks, to exercise streaming.
        for (let at = 0; at < body.byteLength; at += 1000) yield body.subarray(at, at + 1000);
      })(),
    };
  }

  async restore(index: number, chunks: SnapshotChunks): Promise<void> {
    const parts: Uint8Array[] = [];
    for await (const c of chunks) parts.push(c);
    const state = JSON.parse(decoder.decode(Buffer.concat(parts))) as { applied: number; items: string[] };
    if (state.applied !== index) throw new Error(`snapshot content is at ${state.applied}, not ${index}`);
    await this.root.transaction(() => {
      this.items.clearSync();
      state.items.forEach((item, pos) => this.items.put(pos, item));
      this.root.put('count', state.items.length);
      this.root.put('applied', index);
    });
    await this.root.flushed;
    this.count = state.items.length;
    this.applied = index;
    this.restores++;
  }

  list(): string[] {
    const out: string[] = [];
    for (const { value } of this.items.getRange({ start: 0, end: this.count })) out.push(value);
    return out;
  }

  async close(): Promise<void> {
    await this.root.close();
  }
}

export const CLUSTER_ID = 'node-test';

/** Fast timing for tests: a 10 ms tick, election after 300-600 ms (tolerates a busy shared machine), heartbeat every 20 ms. */
export const TEST_TIMING = { tickMs: 10, electionTicks: 30, heartbeatTicks: 2 };

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export function captureLogger(lines: LogLine[], level = 'info'): Logger {
  return pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
}

export interface Member {
  id: NodeId;
  dir: string;
  port: number;
  node: RaftNode | null;
  sm: ListStateMachine | null;
  logs: LogLine[];
}

export type OptionOverrides = Partial<Pick<RaftNodeOptions, 'checkQuorum' | 'preVote' | 'timing'>> & {
  limits?: Partial<RaftNodeOptions['limits']>;
  snapshot?: Partial<RaftNodeOptions['snapshot']>;
  /** Where member `id` keeps its raft data (default <member dir>/raft). */
  raftDir?: (id: NodeId) => string;
};

/** N members on 127.0.0.1; each node's port is known once it listened (port 0), then told to the others. */
export class TestCluster {
  readonly members = new Map<NodeId, Member>();

  private constructor(
    readonly root: string,
    private readonly overrides: OptionOverrides,
  ) {}

  static async start(ids: NodeId[], overrides: OptionOverrides = {}): Promise<TestCluster> {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'raft-node-'));
    const c = new TestCluster(root, overrides);
    for (const id of ids) c.members.set(id, { id, dir: path.join(root, `n${id}`), port: 0, node: null, sm: null, logs: [] });
    for (const id of ids) await c.startMember(id);
    return c;
  }

  member(id: NodeId): Member {
    const m = this.members.get(id);
    if (m === undefined) throw new Error(`no member ${id}`);
    return m;
  }

  node(id: NodeId): RaftNode {
    const n = this.member(id).node;
    if (n === null) throw new Error(`member ${id} is not running`);
    return n;
  }

  sm(id: NodeId): ListStateMachine {
    const s = this.member(id).sm;
    if (s === null) throw new Error(`member ${id} is not running`);
    return s;
  }

  running(): Member[] {
    return [...this.members.values()].filter((m) => m.node !== null);
  }

  options(id: NodeId, sm: StateMachine, logger: Logger): RaftNodeOptions {
    const o = this.overrides;
    const m = this.member(id);
    const peers = new Map<NodeId, { host: string; port: number }>();
    for (const p of this.members.values()) peers.set(p.id, { host: '127.0.0.1', port: p.port });
    return {
      nodeId: id,
      clusterId: CLUSTER_ID,
      dataDir: o.raftDir?.(id) ?? path.join(m.dir, 'raft'),
      peers,
      listen: { host: '127.0.0.1', port: m.port },
      initialMembers: [...this.members.keys()],
      timing: { ...TEST_TIMING, ...o.timing },
      checkQuorum: o.checkQuorum ?? true,
      preVote: o.preVote ?? true,
      limits: {
        proposalTimeoutMs: 5000,
        proposalsQueuedMax: 10_000,
        proposalBatchBytesMax: 1024 * 1024,
        maxSizePerMsgBytes: 256 * 1024,
        maxInflightMsgs: 64,
        maxUncommittedBytes: 64 * 1024 * 1024,
        ...o.limits,
      },
      snapshot: { entriesBetweenSnapshots: 10_000, trailingEntriesKept: 100, snapshotsRetained: 2, ...o.snapshot },
      stateMachine: sm,
      logger,
      transport: { reconnectBackoffMinMs: 10, reconnectBackoffMaxMs: 100, connectTimeoutMs: 1000 },
    };
  }

  /** Starts (or restarts) a member on its previous port (a fresh one the first time), and tells the others. */
  async startMember(id: NodeId): Promise<RaftNode> {
    const m = this.member(id);
    if (m.node !== null) throw new Error(`member ${id} already running`);
    const sm = await ListStateMachine.open(path.join(m.dir, 'sm'));
    const node = new RaftNode(this.options(id, sm, captureLogger(m.logs)));
    await node.start();
    m.node = node;
    m.sm = sm;
    if (m.port !== node.port) {
      m.port = node.port;
      for (const other of this.running()) {
        if (other.id !== id) other.node!.setPeerAddress(id, { host: '127.0.0.1', port: m.port });
      }
    }
    // A first start learns the others' ports here (they may have started before us).
    for (const other of this.members.values()) {
      if (other.id !== id && other.port !== 0) node.setPeerAddress(other.id, { host: '127.0.0.1', port: other.port });
    }
    return node;
  }

  async stopMember(id: NodeId): Promise<void> {
    const m = this.member(id);
    await m.node?.stop();
    await m.sm?.close();
    m.node = null;
    m.sm = null;
  }

  async stop(): Promise<void> {
    for (const m of this.members.values()) await this.stopMember(m.id);
    if (process.env.NODE_TEST_DUMP) for (const m of this.members.values()) for (const l of m.logs) if (l.level >= 40) console.error(m.id, JSON.stringify(l));
    await fs.rm(this.root, { recursive: true, force: true });
  }

  /** Waits until the running (not failed) members agree on one leader (among `among`, default any) and returns it. */
  async waitForLeader(timeoutMs = 5000, among?: NodeId[]): Promise<NodeId> {
    return waitFor(() => {
      const running = this.running().filter((m) => m.node!.failure === undefined);
      const leaders = running.filter((m) => m.node!.leader().isLeader).map((m) => m.id);
      if (leaders.length !== 1) return undefined;
      const lead = leaders[0]!;
      if (among !== undefined && !among.includes(lead)) return undefined;
      return running.every((m) => m.node!.leader().leaderId === lead) ? lead : undefined;
    }, timeoutMs, 'a leader known to every running member');
  }

  /** Waits until member `id` has applied at least `index`. */
  async waitApplied(id: NodeId, index: number, timeoutMs = 5000): Promise<void> {
    await waitFor(() => (this.sm(id).appliedIndex() >= index ? true : undefined), timeoutMs, `member ${id} applied ${index}`);
  }
}

export function bytes(s: string): Uint8Array {
  return encoder.encode(s);
}

export async function waitFor<T>(probe: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
