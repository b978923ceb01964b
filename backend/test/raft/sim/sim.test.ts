// The CI slice of the deterministic simulation: a fixed set of seeds, every one of which must run without
// violating any invariant (checker.ts) and reach liveness after the heal (simulator.ts). A failure prints
// the command that replays the seed exactly. Long campaigns: `npm run sim -- --seeds 100000`.

import test from 'ava';
import { runCampaign } from './campaign.ts';
import { CI_FAULT_EVENTS, CI_FIRST_SEED, CI_SEEDS } from './ci-seeds.ts';
import { FAULT_KINDS } from './scenario.ts';
import { loadCore } from './core-loader.ts';
import { formatViolation, runSeed } from './simulator.ts';

test(`seeds ${CI_FIRST_SEED}..${CI_FIRST_SEED + CI_SEEDS - 1}: every invariant holds and the cluster recovers`, async (t) => {
  t.timeout(150_000);
  const result = await runCampaign({ firstSeed: CI_FIRST_SEED, seeds: CI_SEEDS, faultEvents: CI_FAULT_EVENTS, workers: 2 });
  const s = result.totals;
  t.log(`${s.seeds} seeds, ${s.events} events, ${(result.wallMs / 1000).toFixed(1)} s; faults ${JSON.stringify(s.faults)}`);
  t.log(`${s.leadersElected} leader terms, ${s.acknowledged} writes acknowledged, ${s.readsServed} reads, ` +
    `${s.snapshotsSent} snapshots sent, ${s.confChangesApplied} conf changes applied, ${s.leaderTransfers} transfers`);
  for (const f of result.failures.slice(0, 5)) t.log(formatViolation(f, 40));
  t.deepEqual(
    result.failures.map((f) => `seed ${f.seed}: ${f.violation!.invariant}; replay: ${f.violation!.replay}`),
    [],
  );
  t.is(s.seeds, CI_SEEDS);
  // The seed set must actually exercise what it claims to: every fault kind, elections, snapshots,
  // membership changes, reads and acknowledged writes.
  for (const kind of FAULT_KINDS) t.true(s.faults[kind] > 0, `no ${kind} fault injected`);
  t.true(s.leadersElected > CI_SEEDS, 'leader elections');
  t.true(s.snapshotsSent > 0, 'snapshots sent to followers');
  t.true(s.confChangesApplied > 0, 'membership changes applied');
  t.true(s.leaderTransfers > 0, 'leader transfers');
  t.true(s.readsServed > 0, 'linearizable reads served');
  t.true(s.acknowledged > CI_SEEDS, 'writes acknowledged');
});

test('a seed replays exactly: same events, same trace, same figures', async (t) => {
  const core = await loadCore();
  const a = runSeed(core, { seed: 4242, faultEvents: 3_000, traceTailLines: 300 });
  const b = runSeed(core, { seed: 4242, faultEvents: 3_000, traceTailLines: 300 });
  const c = runSeed(core, { seed: 4243, faultEvents: 3_000, traceTailLines: 300 });
  t.deepEqual(a.stats, b.stats);
  t.deepEqual(a.scenario, b.scenario);
  t.notDeepEqual(a.stats, c.stats);
  const trace: string[] = [];
  const d = runSeed(core, { seed: 4242, faultEvents: 3_000, verbose: (line) => trace.push(line) });
  t.deepEqual(d.stats, a.stats);
  t.true(trace.length > 1_000);
});
