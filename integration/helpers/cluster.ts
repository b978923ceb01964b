// Starts a three-node takhin-ts Raft cluster on free loopback ports (never the fixed 9092.. / 8001.. ports of
// configs/cluster, so it cannot collide with a dev cluster), each node with its own temporary data directory, and
// lets a test kill, stop and restart single nodes with the same ports and data.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { freePort, sleep, startBroker, type BrokerProcess } from './broker.ts';

/** How long the cluster may take to elect a leader that answers Metadata with a controller (ms). */
const LEADER_WAIT_MS = 60_000;

export interface ClusterNode {
  nodeId: number;
  kafkaPort: number;
  raftPort: number;
  /** The admin HTTP port (/healthz, /readyz, /metrics). */
  adminPort: number;
  /** broker.rack: rack-<nodeId>. */
  rack: string;
  dataDir: string;
  bootstrap: string;
  /** The running process, or null while the node is down. */
  proc: BrokerProcess | null;
}

export interface Cluster {
  nodes: ClusterNode[];
  /** All three bootstrap addresses, comma-separated. */
  bootstrap: string;
  node(nodeId: number): ClusterNode;
  kill(nodeId: number): Promise<void>;
  stop(nodeId: number): Promise<void>;
  /** Starts a node that is down again, same ports and data directory; env adds to the cluster's environment. */
  restart(nodeId: number, env?: Record<string, string>): Promise<void>;
  /** The controller id Metadata reports (the Raft leader), asked of the running nodes; waits up to timeoutMs. */
  leaderId(timeoutMs?: number, exclude?: number): Promise<number>;
  /** One node's /metrics as name -> value (unlabelled metrics only). */
  metrics(nodeId: number): Promise<Map<string, number>>;
  /** Everything every node printed, for failure messages. */
  output(): string;
  /** Kills every process and removes every data directory. */
  destroy(): Promise<void>;
}

export interface ClusterOptions {
  /** Extra CLI flags given to every node. */
  args?: string[];
  env?: Record<string, string>;
}

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const nodes: ClusterNode[] = [];
  for (const nodeId of [1, 2, 3]) {
    const kafkaPort = await freePort();
    const raftPort = await freePort();
    const adminPort = await freePort();
    nodes.push({ nodeId, kafkaPort, raftPort, adminPort, rack: `rack-${nodeId}`, dataDir: mkdtempSync(join(tmpdir(), `takhin-cluster-n${nodeId}-`)),
      bootstrap: `127.0.0.1:${kafkaPort}`, proc: null });
  }
  const members = nodes.map((n) => `${n.nodeId}@127.0.0.1:${n.raftPort}@127.0.0.1:${n.kafkaPort}@rack=${n.rack}`).join(',');
  const logs = new Map<number, string[]>();

  const launch = async (n: ClusterNode, env?: Record<string, string>): Promise<void> => {
    n.proc = await startBroker({
      port: n.kafkaPort,
      dataDir: n.dataDir,
      env: { ...options.env, ...env },
      args: ['--mode', 'raft', '--node-id', String(n.nodeId), '--initial-members', members,
        '--raft-address', `127.0.0.1:${n.raftPort}`, '--admin-port', String(n.adminPort), '--hosts', '127.0.0.1', '--default-replication-factor', '3',
        '--group-initial-rebalance-delay-ms', '0', ...(options.args ?? [])],
    });
  };
  const down = (n: ClusterNode): void => {
    if (n.proc !== null) logs.set(n.nodeId, [...(logs.get(n.nodeId) ?? []), n.proc.output()]);
    n.proc = null;
  };
  const node = (nodeId: number): ClusterNode => {
    const n = nodes.find((x) => x.nodeId === nodeId);
    if (n === undefined) throw new Error(`no node ${nodeId}`);
    return n;
  };

  const cluster: Cluster = {
    nodes,
    bootstrap: nodes.map((n) => n.bootstrap).join(','),
    node,
    async kill(nodeId) {
      const n = node(nodeId);
      await n.proc?.kill();
      down(n);
    },
    async stop(nodeId) {
      const n = node(nodeId);
      await n.proc?.stop();
      down(n);
    },
    async restart(nodeId, env) {
      const n = node(nodeId);
      if (n.proc !== null) throw new Error(`node ${nodeId} is still running`);
      await launch(n, env);
    },
    async leaderId(timeoutMs = LEADER_WAIT_MS, exclude = -1) {
      const deadline = Date.now() + timeoutMs;
      let last = '';
      while (Date.now() < deadline) {
        for (const n of nodes) {
          if (n.proc === null) continue;
          const id = await controllerOf(n.bootstrap).catch((e: Error) => { last = e.message; return -1; });
          if (id > 0 && id !== exclude && node(id).proc !== null) return id;
        }
        await sleep(200);
      }
      throw new Error(`no leader within ${timeoutMs} ms (last error: ${last})\n${cluster.output()}`);
    },
    async metrics(nodeId) {
      const res = await fetch(`http://127.0.0.1:${node(nodeId).adminPort}/metrics`);
      if (!res.ok) throw new Error(`node ${nodeId} /metrics: HTTP ${res.status}`);
      const out = new Map<string, number>();
      for (const line of (await res.text()).split('\n')) {
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*) (\S+)$/.exec(line);
        if (m !== null) out.set(m[1]!, Number(m[2]));
      }
      return out;
    },
    output() {
      return nodes.map((n) => `---- node ${n.nodeId}\n${[...(logs.get(n.nodeId) ?? []), n.proc?.output() ?? ''].join('\n-- restart --\n').slice(-4000)}`).join('\n');
    },
    async destroy() {
      await Promise.all(nodes.map(async (n) => { await n.proc?.kill().catch(() => undefined); }));
      for (const n of nodes) rmSync(n.dataDir, { recursive: true, force: true });
    },
  };

  try {
    await Promise.all(nodes.map((n) => launch(n)));
  } catch (e) {
    await cluster.destroy();
    throw e;
  }
  return cluster;
}

/** The controller id one node reports in Metadata (asked of that node only). */
async function controllerOf(bootstrap: string): Promise<number> {
  const admin = new Kafka({ clientId: 'cluster-probe', brokers: [bootstrap], logLevel: logLevel.NOTHING,
    connectionTimeout: 1000, requestTimeout: 2000, retry: { retries: 0 } }).admin();
  try {
    await admin.connect();
    const c = await admin.describeCluster();
    return c.controller ?? -1;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
