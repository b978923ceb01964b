// RaftNode under kill -9: three nodes in child processes take a stream of proposals (with frequent snapshots
// and compactions) and are all killed with SIGKILL at once, without any flush or close. After a restart every
// proposal that had been acknowledged is in every node's state machine, exactly once.
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import type { LeaderInfo, NodeId } from '../../src/raft/node-types.ts';
import type { ChildConfig, ParentMessage } from './node-child.ts';
import { waitFor } from './node-harness.ts';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'node-child.ts');
const IDS: NodeId[] = [1, 2, 3];

interface Result {
  ok: boolean;
  value?: unknown;
  error?: string;
}

class Child {
  readonly proc: ChildProcess;
  info: LeaderInfo = { leaderId: -1, term: 0, isLeader: false };
  fatal: string | undefined;
  private nextId = 1;
  private readonly waiting = new Map<number, (r: Result) => void>();
  private stateWaiter: ((s: { list: string[]; applied: number }) => void) | undefined;
  readonly started: Promise<void>;
  readonly exited: Promise<void>;

  constructor(cfg: ChildConfig) {
    this.proc = fork(CHILD, [JSON.stringify(cfg)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.exited = new Promise((resolve) => this.proc.once('exit', () => resolve()));
    // Sending to a child that was just killed fails asynchronously: the request then settles as failed.
    this.proc.on('error', () => {});
    this.started = new Promise((resolve, reject) => {
      this.proc.once('exit', (code) => reject(new Error(`child ${cfg.id} exited with ${code} before starting`)));
      this.proc.on('message', (m: { type: string; [k: string]: unknown }) => {
        if (m.type === 'started') resolve();
        else if (m.type === 'leader') this.info = m['info'] as LeaderInfo;
        else if (m.type === 'fatal') this.fatal = m['error'] as string;
        else if (m.type === 'result') {
          const id = m['id'] as number;
          this.waiting.get(id)?.(m as unknown as Result);
          this.waiting.delete(id);
        } else if (m.type === 'state') this.stateWaiter?.(m as unknown as { list: string[]; applied: number });
      });
    });
  }

  private request(m: Omit<ParentMessage & { id: number }, 'id'>): Promise<Result> {
    const id = this.nextId++;
    if (!this.proc.connected) return Promise.resolve({ ok: false, error: 'child exited' });
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      // A killed child never answers: settle as failed.
      void this.exited.then(() => {
        if (this.waiting.delete(id)) resolve({ ok: false, error: 'child exited' });
      });
      this.proc.send({ ...m, id } as ParentMessage);
    });
  }

  propose(value: string): Promise<Result> {
    return this.request({ type: 'propose', value } as Omit<ParentMessage & { id: number }, 'id'>);
  }

  read(): Promise<Result> {
    return this.request({ type: 'read' } as Omit<ParentMessage & { id: number }, 'id'>);
  }

  state(): Promise<{ list: string[]; applied: number }> {
    if (!this.proc.connected) return Promise.reject(new Error('child exited'));
    return new Promise((resolve) => {
      this.stateWaiter = resolve;
      this.proc.send({ type: 'state' } satisfies ParentMessage);
    });
  }

  async kill(): Promise<void> {
    this.proc.kill('SIGKILL');
    await this.exited;
  }
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function startAll(root: string, ports: Record<NodeId, number>): Promise<Map<NodeId, Child>> {
  const children = new Map<NodeId, Child>();
  for (const id of IDS) {
    const dir = path.join(root, `n${id}`);
    children.set(id, new Child({ id, dataDir: path.join(dir, 'raft'), smDir: path.join(dir, 'sm'), ports, entriesBetweenSnapshots: 25 }));
  }
  await Promise.all([...children.values()].map((c) => c.started));
  return children;
}

function leaderOf(children: Map<NodeId, Child>): Child | undefined {
  const leaders = [...children.values()].filter((c) => c.info.isLeader);
  return leaders.length === 1 ? leaders[0] : undefined;
}

/** Keeps `concurrency` proposals in flight to whoever is leader until stop.now; returns the acknowledged values. */
async function load(children: Map<NodeId, Child>, prefix: string, concurrency: number, stop: { now: boolean }): Promise<Set<string>> {
  const acked = new Set<string>();
  let n = 0;
  const worker = async (): Promise<void> => {
    while (!stop.now) {
      const leader = leaderOf(children);
      if (leader === undefined) {
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      const value = `${prefix}-${n++}`;
      const r = await leader.propose(value);
      if (r.ok) acked.add(value);
      else await new Promise((res) => setTimeout(res, 5));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return acked;
}

test('kill -9 of every node during a stream of proposals loses no acknowledged proposal', async (t) => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'raft-crash-'));
  const ports: Record<NodeId, number> = {};
  for (const id of IDS) ports[id] = await freePort();
  let children = await startAll(root, ports);
  t.teardown(async () => {
    for (const c of children.values()) await c.kill();
    await fs.rm(root, { recursive: true, force: true });
  });
  await waitFor(() => leaderOf(children), 10_000, 'a leader');

  const stop = { now: false };
  const loading = load(children, 'v', 16, stop);
  // Long enough for several snapshots and compactions (every 25 entries), then the power goes out.
  await new Promise((r) => setTimeout(r, 1500));
  stop.now = true;
  await Promise.all([...children.values()].map((c) => c.kill()));
  const acked = await loading;
  t.log(`${acked.size} proposals acknowledged before the kill`);
  t.true(acked.size >= 50, `only ${acked.size} proposals acknowledged`);

  children = await startAll(root, ports);
  const leader = await waitFor(() => leaderOf(children), 10_000, 'a leader after restart');
  // A proposal of the new term commits everything before it (Raft 5.4.2); the read barrier then sees it all.
  let r = await leader.propose('final');
  for (let i = 0; !r.ok && i < 50; i++) {
    await new Promise((res) => setTimeout(res, 50));
    r = await (leaderOf(children) ?? leader).propose('final');
  }
  t.true(r.ok, r.error);
  const states = [];
  for (const id of IDS) {
    const c = children.get(id)!;
    let state = await c.state();
    const deadline = Date.now() + 10_000;
    while (!state.list.includes('final') && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 20));
      state = await c.state();
    }
    states.push(state);
    t.is(c.fatal, undefined, `node ${id} failed: ${c.fatal}`);
  }
  for (const [i, s] of states.entries()) {
    const id = IDS[i]!;
    t.true(s.list.includes('final'), `node ${id} applied the final proposal`);
    const missing = [...acked].filter((v) => !s.list.includes(v));
    t.deepEqual(missing, [], `node ${id} lost acknowledged proposals`);
    t.is(new Set(s.list).size, s.list.length, `node ${id} applied a command twice`);
  }
  t.deepEqual(states[1]!.list, states[0]!.list);
  t.deepEqual(states[2]!.list, states[0]!.list);
});
