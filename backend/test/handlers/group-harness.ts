// Set-up for the group API handler tests: the handler harness (a real DirectBackend) plus a GroupCoordinator
// over it on a manual clock, and the group handlers built by createGroupHandlers.
import type { ExecutionContext } from 'ava';
import type { GroupConfig } from '../../src/group/config.ts';
import { encodeSubscription } from '../../src/group/consumer-protocol.ts';
import { GroupCoordinator } from '../../src/group/coordinator.ts';
import type { CoordinatorStatus } from '../../src/group/coordinator.ts';
import { ManualScheduler } from '../../src/group/scheduler.ts';
import { createGroupHandlers } from '../../src/handlers/group-handlers.ts';
import type { ApiHandler } from '../../src/handlers/types.ts';
import type { JoinGroupRequest } from '../../src/protocol/generated/index.ts';
import { openHarness } from './helpers.ts';
import type { Harness } from './helpers.ts';

export interface GroupHarness extends Harness {
  coordinator: GroupCoordinator;
  clock: ManualScheduler;
  status: { value: CoordinatorStatus };
  /** The handler of an api key, as createGroupHandlers built it. */
  handler<Req = any, Res = any>(apiKey: number): ApiHandler<Req, Res>;
}

export async function openGroupHarness(t: ExecutionContext, config: Partial<GroupConfig> = {}): Promise<GroupHarness> {
  const h = await openHarness();
  for (const [name, numPartitions] of [['t1', 3], ['t2', 1]] as const) {
    await h.backend.createTopic({ name, numPartitions, replicationFactor: 1, configs: {} }, false);
  }
  const clock = new ManualScheduler();
  const status = { value: 'self' as CoordinatorStatus };
  const coordinator = new GroupCoordinator({
    backend: h.backend,
    scheduler: clock,
    config: { groupInitialRebalanceDelayMs: 0, ...config },
    coordinatorStatus: () => status.value,
  });
  const handlers = new Map(createGroupHandlers(coordinator).map((x) => [x.apiKey, x]));
  t.teardown(async () => {
    coordinator.close();
    await h.close();
  });
  return {
    ...h,
    coordinator,
    clock,
    status,
    handler(apiKey) {
      const x = handlers.get(apiKey);
      if (x === undefined) throw new Error(`no group handler for api key ${apiKey}`);
      return x;
    },
  };
}

export function joinRequest(overrides: Partial<JoinGroupRequest> = {}): JoinGroupRequest {
  return {
    groupId: 'g',
    sessionTimeoutMs: 10_000,
    rebalanceTimeoutMs: 30_000,
    memberId: '',
    groupInstanceId: null,
    protocolType: 'consumer',
    protocols: [{ name: 'range', metadata: encodeSubscription(['t1']) }],
    reason: null,
    ...overrides,
  };
}
