// Test harness: N cluster nodes in one process, each wired as main.ts wires mode raft (state machine, Raft node,
// RaftBackend, group coordinator, Kafka listener), all on 127.0.0.1 with ports picked by the OS and kept across
// restarts. Not a test file.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { openRaftClusterNode, type RaftClusterNode, type RaftClusterNodeOptions } from '../../../src/backends/raft/open-raft-backend.ts';
import type { ClusterMember } from '../../../src/config/cluster-members.ts';
import { GroupCoordinator } from '../../../src/group/coordinator.ts';
import { createGroupHandlers } from '../../../src/handlers/group-handlers.ts';
import { createRegistry } from '../../../src/handlers/registry.ts';
import { DEFAULT_LOG_CONFIG } from '../../../src/log/log-config.ts';
import { KafkaServer } from '../../../src/server/server.ts';

const logger = pino({ level: process.env.RAFT_TEST_LOG ?? 'silent' });

export interface RunningNode extends RaftClusterNode {
  server: KafkaServer;
  groups: GroupCoordinator;
}

export class TestCluster {
  readonly nodes = new Map<number, RunningNode>();
  readonly raftPorts = new Map<number, number>();
  readonly kafkaPorts = new Map<number, number>();
  readonly root = fs.mkdtempSync(path.join(os.tmpdir(), 'takhin-cluster-'));

  constructor(readonly ids: number[], private readonly overrides: Partial<RaftClusterNodeOptions> = {}) {}

  static async start(ids: number[], overrides: Partial<RaftClusterNodeOptions> = {}): Promise<TestCluster> {
    const c = new TestCluster(ids, overrides);
    // Kafka ports first: every node advertises every other node's Kafka address from the start.
    const servers = new Map<number, KafkaServer>();
    for (const id of ids) {
      const server = c.newServer(0);
      await server.listen();
      servers.set(id, server);
      c.kafkaPorts.set(id, server.port);
    }
    for (const id of ids) await c.startNode(id, servers.get(id)!);
    return c;
  }

  private newServer(port: number): KafkaServer {
    return new KafkaServer(
      { hosts: ['127.0.0.1'], port, requestBytesMax: 16 << 20, inFlightRequestsMax: 100, responseBytesMax: 64 << 20, connectionsMax: 200, connectionsIdleMs: 0, shutdownTimeoutMs: 1000 },
      { logger },
    );
  }

  members(): ClusterMember[] {
    return this.ids.map((n) => ({ nodeId: n, raftHost: '127.0.0.1', raftPort: this.raftPorts.get(n) ?? 0, kafkaHost: '127.0.0.1', kafkaPort: this.kafkaPorts.get(n)!, rack: `rack-${n}` }));
  }

  options(id: number): RaftClusterNodeOptions {
    return {
      nodeId: id,
      clusterId: 'takhin-test-cluster',
      members: this.members(),
      dataDir: this.dataDir(id),
      raftListen: { host: '127.0.0.1', port: this.raftPorts.get(id) ?? 0 },
      replicaSelector: 'rack',
      autoCreateTopics: true,
      defaultPartitions: 3,
      defaultReplicationFactor: 3,
      topicDefaults: { ...DEFAULT_LOG_CONFIG, segmentBytes: 16 * 1024 },
      retentionCheckIntervalMs: 0,
      offsetsRetentionMs: 7 * 86_400_000,
      offsetsRetentionCheckIntervalMs: 0,
      offsetMetadataBytesMax: 4096,
      partitionsPerTopicMax: 100,
      partitionsPerBrokerMax: 1000,
      // Elections after 300-600 ms: fast, yet tolerant of a busy machine (checkQuorum steps a starved leader down).
      timing: { tickMs: 10, electionTicks: 30, heartbeatTicks: 3 },
      checkQuorum: true,
      preVote: true,
      limits: { proposalTimeoutMs: 5000, proposalsQueuedMax: 10_000, proposalBatchBytesMax: 4 << 20, maxSizePerMsgBytes: 1 << 20, maxInflightMsgs: 64, maxUncommittedBytes: 64 << 20 },
      snapshot: { entriesBetweenSnapshots: 10_000, trailingEntriesKept: 100, snapshotsRetained: 2 },
      batcher: { appendCoalesceBytesMax: 1 << 20, appendCoalesceCountMax: 1000, appendProposalsInFlightMax: 2, appendQueueBytesMax: 64 << 20 },
      forwardTimeoutMs: 5000,
      transport: { reconnectBackoffMinMs: 10, reconnectBackoffMaxMs: 100, connectTimeoutMs: 1000 },
      logger: logger.child({ node: id }),
      ...this.overrides,
    };
  }

  dataDir(id: number): string {
    return path.join(this.root, `node${id}`);
  }

  /** Starts (or restarts, on the same ports and data) a node, wired like main.ts. */
  async startNode(id: number, server?: KafkaServer): Promise<RunningNode> {
    if (server === undefined) {
      server = this.newServer(this.kafkaPorts.get(id)!);
      await server.listen();
    }
    const n = await openRaftClusterNode(this.options(id));
    this.raftPorts.set(id, n.node.port);
    for (const [other, o] of this.nodes) {
      o.node.setPeerAddress(id, { host: '127.0.0.1', port: n.node.port });
      n.node.setPeerAddress(other, { host: '127.0.0.1', port: this.raftPorts.get(other)! });
    }
    const groups = new GroupCoordinator({
      backend: n.backend,
      config: { groupInitialRebalanceDelayMs: 0 },
      coordinatorStatus: (groupId) => n.backend.coordinatorStatus(groupId),
    });
    n.backend.onLeadershipLost(() => groups.unloadGroups());
    n.backend.setActiveGroupProbe((g) => groups.hasActiveMembers(g));
    server.serve(n.backend, createRegistry({ fetchWaitMaxMs: 5000 }, createGroupHandlers(groups, { coordinatorNode: () => n.backend.coordinatorNode() })));
    const running: RunningNode = { ...n, server, groups };
    this.nodes.set(id, running);
    return running;
  }

  async stopNode(id: number): Promise<void> {
    const n = this.nodes.get(id);
    if (n === undefined) return;
    this.nodes.delete(id);
    n.groups.close();
    await n.server.stop();
    await n.backend.close();
  }

  async stop(): Promise<void> {
    for (const id of [...this.nodes.keys()]) await this.stopNode(id);
    fs.rmSync(this.root, { recursive: true, force: true });
  }

  node(id: number): RunningNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`node ${id} is not running`);
    return n;
  }

  brokers(): string[] {
    return this.ids.map((id) => `127.0.0.1:${this.kafkaPorts.get(id)}`);
  }

  /** One leader that every running node knows, ready to coordinate. */
  async leader(timeoutMs = 10_000): Promise<number> {
    return waitFor(() => {
      const running = [...this.nodes.entries()];
      const leaders = running.filter(([, n]) => n.node.leader().isLeader).map(([id]) => id);
      if (leaders.length !== 1) return undefined;
      const lead = leaders[0]!;
      const agreed = running.every(([, n]) => n.backend.cluster().controllerId === lead);
      return agreed && this.node(lead).backend.coordinatorStatus(null) === 'self' ? lead : undefined;
    }, timeoutMs, 'one ready leader known to every node');
  }

  /** Every running node applied the same, non-zero index. */
  async converged(timeoutMs = 10_000): Promise<void> {
    await waitFor(() => {
      const applied = [...this.nodes.values()].map((n) => n.fsm.appliedIndex());
      return applied.every((a) => a === applied[0]) && applied[0]! > 0 ? true : undefined;
    }, timeoutMs, 'every node applied the same index');
  }
}

export async function waitFor<T>(probe: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Every segment .log file of a node's partitions: "topic-p/name" -> bytes. */
export function partitionFiles(dataDir: string): Map<string, Buffer> {
  const logs = path.join(dataDir, 'kafka', 'state', 'logs');
  const out = new Map<string, Buffer>();
  for (const dir of fs.readdirSync(logs).sort()) {
    for (const name of fs.readdirSync(path.join(logs, dir)).sort()) {
      if (name.endsWith('.log')) out.set(`${dir}/${name}`, fs.readFileSync(path.join(logs, dir, name)));
    }
  }
  return out;
}
