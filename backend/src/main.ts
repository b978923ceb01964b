// Entry point of a single-node broker: `npm start -- --port 19092 --data-dir /tmp/x` (see --help).
// Order: config (a bad one exits 1 with the setting named), logger, bind the listeners (the bound port is what
// the backend advertises), open the storage, serve. SIGTERM/SIGINT: stop accepting, finish in-flight requests,
// flush and close the storage, exit 0.
import os from 'node:os';
import type { Logger } from 'pino';
import { openDirectBackend, type DirectBackend } from './backends/direct/direct-backend.ts';
import type { Backend } from './backends/backend.ts';
import { ConfigError, configHelp, loadConfig, parseCommandLine, topicDefaults } from './config/load.ts';
import type { TakhinConfig } from './config/schema.ts';
import { GroupCoordinator } from './group/coordinator.ts';
import { createGroupHandlers } from './handlers/group-handlers.ts';
import { createRegistry } from './handlers/registry.ts';
import { createLogger } from './observability/logger.ts';
import { KafkaServer } from './server/server.ts';
import type { BoundAddress } from './server/server.ts';

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

function shutdownOnSignals(log: Logger, server: KafkaServer, backend: Backend, groups: GroupCoordinator): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal during shutdown, exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    void (async () => {
      // Pending JoinGroup/SyncGroup waits end first, so they do not hold the server's drain until its timeout.
      groups.close();
      await server.stop();
      await backend.flush();
      await backend.close();
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

  let backend: DirectBackend;
  try {
    backend = await openDirectBackend({
      dataDir: config.dataDir,
      nodeId: config.nodeId,
      advertisedHost: host,
      advertisedPort: port,
      rack: config.rack === '' ? null : config.rack,
      autoCreateTopics: config.autoCreateTopics,
      defaultPartitions: config.numPartitions,
      defaultReplicationFactor: config.defaultReplicationFactor,
      topicDefaults: topicDefaults(config),
      retentionCheckIntervalMs: config.logRetentionCheckIntervalMs,
      offsetsRetentionMs: config.offsetsRetentionMs,
      offsetsRetentionCheckIntervalMs: config.offsetsRetentionCheckIntervalMs,
      offsetMetadataBytesMax: config.offsetMetadataBytesMax,
      partitionsPerTopicMax: config.partitionsPerTopicMax,
      partitionsPerBrokerMax: config.partitionsPerBrokerMax,
      logger: log,
    });
  } catch (err) {
    log.fatal({ err, dataDir: config.dataDir }, 'cannot open the storage backend');
    await server.stop();
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
  });
  // Offsets of a group with live members never expire, however old its last commit.
  backend.setActiveGroupProbe((group) => groups.hasActiveMembers(group));
  server.serve(backend, createRegistry({ fetchWaitMaxMs: config.fetchWaitMaxMs }, createGroupHandlers(groups)));
  shutdownOnSignals(log, server, backend, groups);
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
