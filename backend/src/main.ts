// Entry point of a single-node broker: `npm start -- --port 19092 --data-dir /tmp/x` (see --help).
// Order: config (a bad one exits 1 with the setting named), logger, bind the listeners (the bound port is what
// the backend advertises), open the storage, serve. SIGTERM/SIGINT: stop accepting, finish in-flight requests,
// flush and close the storage, exit 0.
import os from 'node:os';
import type { Logger } from 'pino';
import { openDirectBackend, type DirectBackend } from './backends/direct/direct-backend.ts';
import { openClusterNode } from './backends/raft/from-config.ts';
import type { RaftClusterNode } from './backends/raft/open-raft-backend.ts';
import type { Backend } from './backends/backend.ts';
import { ConfigError, configHelp, loadConfig, parseCommandLine, storageSettings } from './config/load.ts';
import type { TakhinConfig } from './config/schema.ts';
import { GroupCoordinator } from './group/coordinator.ts';
import { createGroupHandlers } from './handlers/group-handlers.ts';
import { createRegistry } from './handlers/registry.ts';
import { DataDirLock } from './log/data-dir-lock.ts';
import { AdminServer, processMetrics, type Metric } from './observability/health.ts';
import { createLogger } from './observability/logger.ts';
import { KafkaServer } from './server/server.ts';
import type { BoundAddress } from './server/server.ts';

/** How long a shutting-down cluster leader waits for another node to take over (ms). */
const LEADERSHIP_HANDOFF_WAIT_MS = 5000;
/** How long it then keeps serving redirects before it stops listening (ms). */
const LEADERSHIP_HANDOFF_GRACE_MS = 1000;

function readConfig(argv: string[]): TakhinConfig {
  try {
    if (parseCommandLine(argv).help) {
      process.stdout.write(`${configHelp()}\n`);
      process.exit(0);
    }
    return loadConfig({ argv, env: process.env });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // A configuration mistake is the operator's, not a crash: one clear message, no stack trace.
    process.stderr.write(`takhin: ${err.message}\n`);
    process.exit(1);
  }
}

function advertisedHost(config: TakhinConfig, bound: BoundAddress[]): string {
  if (config.advertisedHost !== '') return config.advertisedHost;
  const host = bound[0]!.host;
  return host === '0.0.0.0' || host === '::' ? os.hostname() : host;
}

function exitOnFatalErrors(log: Logger): void {
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught exception, exiting');
    process.exit(70);
  });
  process.on('unhandledRejection', (reason) => {
    log.fatal({ err: reason }, 'unhandled promise rejection, exiting');
    process.exit(70);
  });
}

/** What /readyz reports: set once requests are served, cleared first thing on shutdown. */
const lifecycle = { serving: false };

/** The admin HTTP endpoint, when adminPort is not -1; it answers /healthz while the storage is still opening. */
async function startAdmin(config: TakhinConfig, log: Logger, ready: () => boolean,
  metrics: () => Metric[]): Promise<AdminServer | null> {
  if (config.adminPort === -1) return null;
  const admin = new AdminServer({ host: config.adminHost, port: config.adminPort },
    { ready, metrics, logger: log.child({ component: 'admin' }) });
  const bound = await admin.listen().catch((err: Error) => {
    throw new Error(`admin endpoint ${config.adminHost}:${config.adminPort}: ${err.message}`);
  });
  log.info({ address: `${bound.address}:${bound.port}` }, 'admin endpoint listening (/healthz /readyz /metrics)');
  return admin;
}

function kafkaServerMetrics(server: KafkaServer): Metric[] {
  const s = server.stats();
  return [
    { name: 'takhin_connections_open', help: 'Open Kafka client connections.', type: 'gauge', value: s.connectionsOpen },
    { name: 'takhin_connections_accepted_total', help: 'Kafka client connections accepted.', type: 'counter',
      value: s.connectionsAccepted },
    { name: 'takhin_connections_refused_total', help: 'Kafka client connections refused (connectionsMax).',
      type: 'counter', value: s.connectionsRefused },
  ];
}

function clusterMetrics(cluster: RaftClusterNode): Metric[] {
  const leader = cluster.node.leader();
  const raft = cluster.node.metrics();
  const reads = cluster.backend.readMetrics();
  const gauge = (name: string, help: string, value: number): Metric => ({ name, help, type: 'gauge', value });
  const counter = (name: string, help: string, value: number): Metric => ({ name, help, type: 'counter', value });
  return [
    gauge('takhin_raft_leader_id', 'The Raft leader this node knows (-1: none).', leader.leaderId),
    gauge('takhin_raft_is_leader', '1 while this node leads.', leader.isLeader ? 1 : 0),
    gauge('takhin_raft_term', 'Current Raft term (= every partition\'s leader epoch).', raft.term),
    gauge('takhin_raft_commit_index', 'Highest Raft log index known committed.', raft.commit),
    gauge('takhin_raft_applied_index', 'Highest Raft log index applied to the local partition logs.', raft.applied),
    gauge('takhin_raft_snapshot_index', 'Index of the latest local snapshot.', raft.snapshotIndex),
    counter('takhin_raft_persists_total', 'Durable (fsynced) Raft log writes.', raft.persists),
    counter('takhin_raft_entries_applied_total', 'Raft entries applied.', raft.entriesApplied),
    counter('takhin_raft_log_syncs_total', 'Raft log write rounds, one fsync each (group commit).', raft.logSyncs),
    counter('takhin_raft_entries_read_cached_total', 'Raft entries read from the in-memory entry cache.', raft.entriesReadCached),
    counter('takhin_raft_entries_read_stored_total', 'Raft entries read back from LMDB.', raft.entriesReadStored),
    gauge('takhin_raft_entry_cache_bytes', 'Bytes held by the Raft entry cache.', raft.entryCacheBytes),
    counter('takhin_fetch_leader_bytes_total', 'Record bytes served by Fetch while leading.', reads.leaderBytes),
    counter('takhin_fetch_follower_bytes_total', 'Record bytes served by Fetch as a follower (KIP-392).', reads.followerBytes),
    counter('takhin_fetch_preferred_replica_redirects_total', 'Fetches pointed to a follower in the client\'s rack.', reads.redirects),
  ];
}

function shutdownOnSignals(log: Logger, server: KafkaServer, backend: Backend, groups: GroupCoordinator,
  admin: AdminServer | null, beforeStop: () => Promise<unknown> = async () => undefined): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal during shutdown, exiting now');
      process.exit(1);
    }
    stopping = true;
    lifecycle.serving = false;
    log.info({ signal }, 'shutting down');
    void (async () => {
      // Cluster mode: a leader hands over first, while it still answers (clients follow its redirects).
      await beforeStop().catch((err: unknown) => log.warn({ err }, 'preparing the shutdown failed'));
      // Pending JoinGroup/SyncGroup waits end first, so they do not hold the server's drain until its timeout.
      groups.close();
      await server.stop();
      await backend.flush();
      await backend.close();
      await admin?.stop();
      log.info('stopped');
      process.exit(0);
    })();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

async function main(): Promise<void> {
  const config = readConfig(process.argv.slice(2));
  const log = createLogger({ level: config.logLevel, format: config.logFormat });
  exitOnFatalErrors(log);
  // Before anything binds or opens: a second broker on the same data directory would corrupt it.
  let lock: DataDirLock;
  try {
    lock = DataDirLock.acquire(config.dataDir, log);
  } catch (err) {
    log.fatal({ err, dataDir: config.dataDir }, (err as Error).message);
    process.exit(1);
  }
  // Any exit releases it, including fatal errors; kill -9 leaves it, and the next start takes it over.
  process.on('exit', () => lock.release());

  const server = new KafkaServer(
    {
      hosts: config.hosts,
      port: config.port,
      requestBytesMax: config.requestBytesMax,
      inFlightRequestsMax: config.inFlightRequestsMax,
      responseBytesMax: config.responseBytesMax,
      connectionsMax: config.connectionsMax,
      connectionsIdleMs: config.connectionsIdleMs,
      shutdownTimeoutMs: config.shutdownTimeoutMs,
    },
    { logger: log },
  );
  const bound = await server.listen();
  const host = advertisedHost(config, bound);
  const port = config.advertisedPort !== 0 ? config.advertisedPort : server.port;
  let cluster: RaftClusterNode | null = null;
  // Ready: serving, and in cluster mode a Raft leader is known (writes and admin requests can succeed).
  const ready = () => lifecycle.serving && (cluster === null || cluster.node.leader().leaderId !== -1);
  const admin = await startAdmin(config, log, ready,
    () => [...processMetrics(), ...kafkaServerMetrics(server), ...(cluster !== null ? clusterMetrics(cluster) : [])]);

  let backend: DirectBackend | RaftClusterNode['backend'];
  try {
    // mode raft: this node of a Raft cluster (state machine + Raft node + RaftBackend); it advertises the Kafka
    // addresses of initialMembers.
    if (config.mode === 'raft') cluster = await openClusterNode(config, log);
    backend = cluster !== null ? cluster.backend : await openDirectBackend({
      dataDir: config.dataDir,
      nodeId: config.nodeId,
      advertisedHost: host,
      advertisedPort: port,
      ...storageSettings(config),
      logger: log,
    });
  } catch (err) {
    log.fatal({ err, dataDir: config.dataDir }, 'cannot open the storage backend');
    await server.stop();
    await admin?.stop();
    process.exit(1);
  }
  // The group coordinator keeps its durable state (committed offsets) behind the Backend interface.
  const groups = new GroupCoordinator({
    backend,
    config: {
      groupMinSessionTimeoutMs: config.groupMinSessionTimeoutMs,
      groupMaxSessionTimeoutMs: config.groupMaxSessionTimeoutMs,
      groupInitialRebalanceDelayMs: config.groupInitialRebalanceDelayMs,
      groupMaxSize: config.groupMaxSize,
      groupNewMemberJoinTimeoutMs: config.groupNewMemberJoinTimeoutMs,
      groupEmptyRetentionMs: config.groupEmptyRetentionMs,
      offsetMetadataBytesMax: config.offsetMetadataBytesMax,
    },
    logger: log.child({ component: 'groups' }),
    // Cluster mode: the Raft leader coordinates every group; followers answer NOT_COORDINATOR.
    ...(cluster !== null ? { coordinatorStatus: (groupId: string | null) => cluster.backend.coordinatorStatus(groupId) } : {}),
  });
  if (cluster !== null) {
    // Members must rejoin at the new leader; a node that failed (disk, state machine) must not linger.
    cluster.backend.onLeadershipLost(() => groups.unloadGroups());
    cluster.node.onFatal(() => {
      log.fatal('the raft node failed; exiting');
      process.exit(70);
    });
  }
  // Offsets of a group with live members never expire, however old its last commit.
  backend.setActiveGroupProbe((group) => groups.hasActiveMembers(group));
  const groupHandlers = createGroupHandlers(groups, cluster !== null ? { coordinatorNode: () => cluster.backend.coordinatorNode() } : {});
  server.serve(backend, createRegistry({ fetchWaitMaxMs: config.fetchWaitMaxMs }, groupHandlers));
  shutdownOnSignals(log, server, backend, groups, admin, async () => {
    // Kafka's controlled shutdown: another node takes over, and this one keeps answering for a moment, so
    // clients follow its redirects (NOT_LEADER_OR_FOLLOWER, NOT_COORDINATOR) instead of failed connections.
    // A follower refuses reads from now on, so its consumers move to another node before it goes away.
    if (cluster === null) return;
    if (await cluster.backend.handOffLeadership(LEADERSHIP_HANDOFF_WAIT_MS)) await new Promise((r) => setTimeout(r, LEADERSHIP_HANDOFF_GRACE_MS));
  });
  lifecycle.serving = true;
  log.info(
    { addresses: bound.map((a) => (a.family === 'IPv6' ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`)),
      advertised: `${host}:${port}`, nodeId: config.nodeId, dataDir: config.dataDir },
    'listening',
  );
}

main().catch((err: unknown) => {
  // Failing before the logger exists (or while binding: port in use) is reported plainly.
  process.stderr.write(`takhin: cannot start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
