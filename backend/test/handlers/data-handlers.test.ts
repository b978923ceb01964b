import test from 'ava';
import { createDataHandlers, dataHandlers } from '../../src/handlers/data-handlers.ts';
import { registryProblems } from '../../src/handlers/registry.ts';
import { ApiKey } from '../../src/protocol/generated/index.ts';

test('every data handler has a codec and a version range the codec supports (and that is stable)', (t) => {
  t.deepEqual(registryProblems(dataHandlers), []);
});

test('the advertised ranges are the ones promised', (t) => {
  const ranges = Object.fromEntries(dataHandlers.map((h) => [h.apiKey, [h.minVersion, h.maxVersion]]));
  t.deepEqual(ranges, {
    [ApiKey.Produce]: [3, 11],
    [ApiKey.Fetch]: [4, 17],
    [ApiKey.ListOffsets]: [0, 10],
    [ApiKey.Metadata]: [0, 12],
    [ApiKey.CreateTopics]: [0, 7],
    [ApiKey.DeleteTopics]: [0, 6],
    [ApiKey.DeleteRecords]: [0, 2],
    [ApiKey.InitProducerId]: [0, 5],
    [ApiKey.DescribeConfigs]: [0, 4],
    [ApiKey.AlterConfigs]: [0, 2],
    [ApiKey.CreatePartitions]: [0, 3],
    [ApiKey.IncrementalAlterConfigs]: [0, 1],
    [ApiKey.DescribeCluster]: [0, 1],
  });
});

test('createDataHandlers builds a fresh Fetch handler with the given limits', (t) => {
  const a = createDataHandlers({ fetchWaitMaxMs: 100 });
  const fetch = a.find((h) => h.apiKey === ApiKey.Fetch);
  t.truthy(fetch);
  t.not(fetch, dataHandlers.find((h) => h.apiKey === ApiKey.Fetch));
});
