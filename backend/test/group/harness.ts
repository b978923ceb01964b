// Shared set-up for the group coordinator tests: a coordinator on a manual clock over a real DirectBackend
// (offsets in LMDB in a temp dir, topics t1/t2/t3 with 3/2/1 partitions), and JoinGroup helpers.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { openDirectBackend } from '../../src/backends/direct/direct-backend.ts';
import type { DirectBackend } from '../../src/backends/direct/direct-backend.ts';
import type { GroupConfig } from '../../src/group/config.ts';
import { encodeSubscription } from '../../src/group/consumer-protocol.ts';
import { GroupCoordinator } from '../../src/group/coordinator.ts';
import type { CoordinatorStatus } from '../../src/group/coordinator.ts';
import { ManualScheduler } from '../../src/group/scheduler.ts';
import { DEFAULT_LOG_CONFIG } from '../../src/log/log-config.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import type { JoinGroupInput, JoinGroupOutput, SyncGroupOutput } from '../../src/group/types.ts';
import { ErrorCode } from '../../src/protocol/errors.ts';

export interface Harness {
  coordinator: GroupCoordinator;
  clock: ManualScheduler;
  backend: DirectBackend;
  /** What the coordinator-status hook answers; tests change it. */
  status: { value: CoordinatorStatus };
}

export const TOPICS: Record<string, number> = { t1: 3, t2: 2, t3: 1 };

/** A coordinator over a fresh DirectBackend; both are closed (and the data removed) when the test ends. */
export async function setup(t: ExecutionContext, config: Partial<GroupConfig> = {}): Promise<Harness> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'takhin-group-'));
  const backend = await openDirectBackend({
    dataDir, nodeId: 1, advertisedHost: '127.0.0.1', advertisedPort: 9092, rack: null, autoCreateTopics: false,
    defaultPartitions: 1, defaultReplicationFactor: 1, topicDefaults: DEFAULT_LOG_CONFIG, retentionCheckIntervalMs: 0,
    offsetsRetentionMs: -1, offsetsRetentionCheckIntervalMs: 0, offsetMetadataBytesMax: 1 << 20,
    partitionsPerTopicMax: 100, partitionsPerBrokerMax: 1000, logger: silentLogger(),
  });
  for (const [name, numPartitions] of Object.entries(TOPICS)) {
    await backend.createTopic({ name, numPartitions, replicationFactor: 1, configs: {} }, false);
  }
  const clock = new ManualScheduler();
  const status = { value: 'self' as CoordinatorStatus };
  let n = 0;
  const coordinator = new GroupCoordinator({
    backend,
    scheduler: clock,
    config: { groupInitialRebalanceDelayMs: 0, ...config },
    coordinatorStatus: () => status.value,
    generateId: () => `m${++n}`,
  });
  t.teardown(async () => {
    coordinator.close();
    await backend.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  return { coordinator, clock, backend, status };
}

export const SESSION_MS = 10_000;
export const REBALANCE_MS = 30_000;

export function joinInput(overrides: Partial<JoinGroupInput> = {}): JoinGroupInput {
  return {
    groupId: 'g',
    memberId: '',
    groupInstanceId: null,
    sessionTimeoutMs: SESSION_MS,
    rebalanceTimeoutMs: REBALANCE_MS,
    protocolType: 'consumer',
    protocols: [{ name: 'range', metadata: encodeSubscription(['t1']) }],
    clientId: 'client',
    clientHost: '/127.0.0.1',
    requireKnownMemberId: true,
    supportSkippingAssignment: false,
    reason: null,
    ...overrides,
  };
}

/** A promise's outcome, readable synchronously once the microtasks have run (see settle()). */
export interface Tracked<T> {
  done: boolean;
  value: T | undefined;
  promise: Promise<T>;
}

export function track<T>(promise: Promise<T>): Tracked<T> {
  const t: Tracked<T> = { done: false, value: undefined, promise };
  void promise.then((v) => {
    t.done = true;
    t.value = v;
  });
  return t;
}

/** Lets resolved promises deliver their values. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The v4+ round trip: MEMBER_ID_REQUIRED with an id, then the real JoinGroup (returned still pending). */
export async function joinWithId(h: Harness, overrides: Partial<JoinGroupInput> = {}): Promise<{ memberId: string; join: Tracked<JoinGroupOutput> }> {
  const first = await h.coordinator.join(joinInput(overrides));
  if (first.errorCode !== ErrorCode.MEMBER_ID_REQUIRED) throw new Error(`expected MEMBER_ID_REQUIRED, got ${first.errorCode}`);
  const join = track(h.coordinator.join(joinInput({ ...overrides, memberId: first.memberId })));
  return { memberId: first.memberId, join };
}

/**
 * Members joining together, as clients started at the same time do: first every dynamic member gets its id
 * (MEMBER_ID_REQUIRED), then all send the real JoinGroup, so that one generation forms with all of them.
 */
export async function joinAll(h: Harness, members: Partial<JoinGroupInput>[]): Promise<Tracked<JoinGroupOutput>[]> {
  const ids: string[] = [];
  for (const m of members) {
    if (m.groupInstanceId) {
      ids.push('');
      continue;
    }
    const first = await h.coordinator.join(joinInput(m));
    if (first.errorCode !== ErrorCode.MEMBER_ID_REQUIRED) throw new Error(`expected MEMBER_ID_REQUIRED, got ${first.errorCode}`);
    ids.push(first.memberId);
  }
  return members.map((m, i) => track(h.coordinator.join(joinInput({ ...m, memberId: ids[i]! }))));
}

export interface StableMember {
  memberId: string;
  join: JoinGroupOutput;
  sync: SyncGroupOutput;
}

/**
 * Forms a Stable group: every member joins (v4 round trip), the leader assigns `assign-<memberId>` to each
 * member, everyone syncs. Returns the members in the order given.
 */
export async function formGroup(h: Harness, members: Partial<JoinGroupInput>[], groupId = 'g'): Promise<StableMember[]> {
  const joined = await joinAll(h, members.map((m) => ({ groupId, ...m })));
  // Static members join without the id round trip; a new group holds them together for the initial delay
  // (extended once more because members arrived during the first one).
  for (let i = 0; i < 10 && joined.some((j) => !j.done); i++) {
    h.clock.advance(h.coordinator.config.groupInitialRebalanceDelayMs);
    await settle();
  }
  const joins = await Promise.all(joined.map((j) => j.promise));
  for (const j of joins) if (j.errorCode !== ErrorCode.NONE) throw new Error(`join failed: ${j.errorCode}`);
  const leader = joins.find((j) => j.memberId === j.leaderId)!;
  const syncs = joins.map((j) =>
    h.coordinator.sync({
      groupId,
      generationId: j.generationId,
      memberId: j.memberId,
      groupInstanceId: null,
      protocolType: 'consumer',
      protocolName: j.protocolName,
      assignments: j === leader ? leader.members.map((m) => ({ memberId: m.memberId, assignment: Buffer.from(`assign-${m.memberId}`) })) : [],
    }),
  );
  const synced = await Promise.all(syncs);
  return joins.map((join, i) => ({ memberId: join.memberId, join, sync: synced[i]! }));
}
