// Deterministic simulation of the Raft core (backend/test/raft/sim/). Usage:
//
//   npm run sim -- --seed 12345 [--verbose]           replay one seed (prints the trace with --verbose)
//   npm run sim -- --seeds 100000 --first-seed 1      a campaign over many seeds, on every core
//
// Options:
//   --events N        fault-phase events per seed (default: DEFAULT_FAULT_EVENTS in simulator.ts)
//   --mutation NAME   break a safety rule on purpose (see mutations.ts); the run should then fail
//   --workers N       worker threads for a campaign (default: one per core; 0 = this thread)
//   --stop-after N    stop a campaign after N failing seeds (default 0 = never)
//   --json            print the campaign summary as JSON as well
//
// Exit status: 0 when no invariant was violated, 1 otherwise, 2 on bad arguments.

import { parseArgs } from 'node:util';
import { loadCore } from '../backend/test/raft/sim/core-loader.ts';
import { runCampaign, type CampaignProgress, type CampaignTotals } from '../backend/test/raft/sim/campaign.ts';
import { MUTATIONS, isMutation, type MutationName } from '../backend/test/raft/sim/mutations.ts';
import { DEFAULT_FAULT_EVENTS, formatViolation, runSeed } from '../backend/test/raft/sim/simulator.ts';

function usage(message: string): never {
  console.error(`sim: ${message}`);
  console.error('usage: npm run sim -- (--seed S [--verbose] | --seeds N [--first-seed S]) [--events N] [--mutation NAME] [--workers N]');
  console.error(`mutations: ${MUTATIONS.join(', ')}`);
  process.exit(2);
}

function intOption(value: string | undefined, name: string, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) usage(`--${name} must be an integer >= ${min}, got '${value}'`);
  return n;
}

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    seeds: { type: 'string' },
    'first-seed': { type: 'string' },
    events: { type: 'string' },
    mutation: { type: 'string' },
    workers: { type: 'string' },
    'stop-after': { type: 'string' },
    verbose: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
  strict: true,
});

const faultEvents = intOption(values.events, 'events', DEFAULT_FAULT_EVENTS, 1);
let mutation: MutationName | undefined;
if (values.mutation !== undefined) {
  if (!isMutation(values.mutation)) usage(`unknown mutation '${values.mutation}'`);
  mutation = values.mutation;
}

if (values.seed !== undefined) {
  if (values.seeds !== undefined) usage('--seed and --seeds exclude each other');
  process.exitCode = await replay(intOption(values.seed, 'seed', 0), values.verbose);
} else {
  const seeds = intOption(values.seeds, 'seeds', 1000, 1);
  const firstSeed = intOption(values['first-seed'], 'first-seed', 1);
  process.exitCode = await campaign(firstSeed, seeds);
}

async function replay(seed: number, verbose: boolean): Promise<number> {
  const core = await loadCore(mutation);
  const started = performance.now();
  const result = runSeed(core, {
    seed,
    faultEvents,
    mutation,
    ...(verbose ? { verbose: (line: string) => console.log(line) } : {}),
  });
  const wall = ((performance.now() - started) / 1000).toFixed(2);
  const s = result.stats;
  console.log(`seed ${seed}: ${result.scenario}`);
  console.log(`${s.events} events, ${(s.virtualTimeUs / 1e6).toFixed(2)} s virtual, ${wall} s wall; ` +
    `faults ${JSON.stringify(s.faults)}; ${s.leadersElected} leader terms, committed ${s.committedIndex}, ` +
    `${s.acknowledged} writes acknowledged, ${s.readsServed} reads served`);
  if (result.violation === undefined) {
    console.log('no violation');
    return 0;
  }
  console.log(formatViolation(result, verbose ? 0 : 80));
  return 1;
}

async function campaign(firstSeed: number, seeds: number): Promise<number> {
  const workers = values.workers === undefined ? undefined : intOption(values.workers, 'workers', 0);
  const stopAfterFailures = intOption(values['stop-after'], 'stop-after', 0);
  console.log(`campaign: seeds ${firstSeed}..${firstSeed + seeds - 1}, ${faultEvents} fault-phase events per seed` +
    (mutation ? `, mutation ${mutation}` : ''));
  let lastPrint = 0;
  let reported = 0;
  const onProgress = (p: CampaignProgress): void => {
    while (reported < p.failures.length) {
      const f = p.failures[reported++]!;
      console.log(`FAIL seed ${f.seed}: ${f.violation!.invariant}; replay: ${f.violation!.replay}`);
    }
    if (p.wallMs - lastPrint < 5000 && p.totals.seeds < seeds) return;
    lastPrint = p.wallMs;
    const rate = p.totals.seeds / (p.wallMs / 1000);
    const eta = (seeds - p.totals.seeds) / rate;
    console.log(`  ${p.totals.seeds}/${seeds} seeds, ${p.totals.events} events, ${p.failures.length} failing, ` +
      `${(p.wallMs / 1000).toFixed(0)} s, ${rate.toFixed(1)} seeds/s, eta ${eta.toFixed(0)} s`);
  };
  const result = await runCampaign({
    firstSeed,
    seeds,
    faultEvents,
    mutation,
    ...(workers !== undefined ? { workers } : {}),
    stopAfterFailures,
    onProgress,
  });
  const t = result.totals;
  console.log('');
  console.log(summary(t, result.failures.length, result.wallMs, firstSeed, seeds));
  if (result.firstFailure !== undefined) {
    console.log('');
    console.log(formatViolation(result.firstFailure, 60));
  }
  if (values.json) {
    console.log(JSON.stringify({ firstSeed, seedsRequested: seeds, faultEvents, mutation, wallMs: Math.round(result.wallMs),
      totals: t, failingSeeds: result.failures.map((f) => ({ seed: f.seed, invariant: f.violation!.invariant, replay: f.violation!.replay })) }));
  }
  return result.failures.length === 0 ? 0 : 1;
}

function summary(t: CampaignTotals, violations: number, wallMs: number, firstSeed: number, seeds: number): string {
  const faults = Object.entries(t.faults).map(([k, n]) => `    ${k.padEnd(22)} ${n}`).join('\n');
  const faultTotal = Object.values(t.faults).reduce((a, b) => a + b, 0);
  return [
    `seeds run:        ${t.seeds} (${firstSeed}..${firstSeed + seeds - 1})`,
    `total events:     ${t.events}`,
    `virtual time:     ${(t.virtualTimeUs / 1e6).toFixed(0)} s`,
    `faults injected:  ${faultTotal}`,
    faults,
    `messages:         ${t.messagesSent} sent, ${t.messagesDropped} dropped, ${t.messagesDuplicated} duplicated`,
    `leader terms:     ${t.leadersElected}; leader transfers ${t.leaderTransfers}; snapshots sent ${t.snapshotsSent}`,
    `conf changes:     ${t.confChangesProposed} proposed, ${t.confChangesApplied} applied`,
    `clients:          ${t.proposals} writes sent, ${t.acknowledged} acknowledged, ${t.readsServed} reads served`,
    `violations:       ${violations}`,
    `wall time:        ${(wallMs / 1000).toFixed(1)} s`,
  ].join('\n');
}
