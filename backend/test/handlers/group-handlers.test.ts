import test from 'ava';
import { GroupCoordinator } from '../../src/group/coordinator.ts';
import { ManualScheduler } from '../../src/group/scheduler.ts';
import { createGroupHandlers } from '../../src/handlers/group-handlers.ts';
import { createRegistry, registryProblems } from '../../src/handlers/registry.ts';
import { ApiKey } from '../../src/protocol/generated/index.ts';
import { openHarness } from './helpers.ts';

test('the group handlers fit the generated codecs and register with the broker\'s', async (t) => {
  const h = await openHarness();
  t.teardown(() => h.close());
  const coordinator = new GroupCoordinator({ backend: h.backend, scheduler: new ManualScheduler() });
  const handlers = createGroupHandlers(coordinator);
  t.deepEqual(registryProblems(handlers), []);
  t.deepEqual(handlers.map((x) => [x.apiKey, x.minVersion, x.maxVersion]), [
    [ApiKey.OffsetCommit, 0, 8],
    [ApiKey.OffsetFetch, 0, 8],
    [ApiKey.FindCoordinator, 0, 5],
    [ApiKey.JoinGroup, 0, 9],
    [ApiKey.Heartbeat, 0, 4],
    [ApiKey.LeaveGroup, 0, 5],
    [ApiKey.SyncGroup, 0, 5],
    [ApiKey.DescribeGroups, 0, 5],
    [ApiKey.ListGroups, 0, 4],
    [ApiKey.DeleteGroups, 0, 2],
    [ApiKey.OffsetDelete, 0, 0],
  ]);
  const registry = createRegistry({ fetchWaitMaxMs: 500 }, handlers);
  t.is(registry.get(ApiKey.JoinGroup), handlers[3]);
  coordinator.close();
});

test('FindCoordinator answers with the node the lookup names', async (t) => {
  const h = await openHarness();
  t.teardown(() => h.close());
  const coordinator = new GroupCoordinator({ backend: h.backend, scheduler: new ManualScheduler() });
  const seen: [number, string][] = [];
  const find = createGroupHandlers(coordinator, { coordinatorNode: (keyType, key, cluster) => (seen.push([keyType, key]), cluster.nodeId) })
    .find((x) => x.apiKey === ApiKey.FindCoordinator)!;
  const r = await find.handle({ key: 'g', keyType: 1, coordinatorKeys: [] }, h.ctx(ApiKey.FindCoordinator, 3));
  t.is(r.nodeId, 1);
  t.deepEqual(seen, [[1, 'g']]);
  coordinator.close();
});
