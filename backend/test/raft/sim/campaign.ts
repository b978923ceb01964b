// Runs many seeds, in worker threads so that every core is used. Seeds are handed out in small chunks
// (a worker that gets slow seeds does not hold up the others); each chunk comes back as summed figures
// plus the failing runs in full.

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { loadCore } from './core-loader.ts';
import type { MutationName } from './mutations.ts';
import type { FaultKind } from './scenario.ts';
import { DEFAULT_FAULT_EVENTS, emptyFaultCounts, runSeed, type RunResult, type RunStats } from './simulator.ts';

export interface CampaignOptions {
  firstSeed: number;
  seeds: number;
  faultEvents?: number;
  mutation?: MutationName;
  /** Worker threads; 0 = run in this thread. Default: one per core. */
  workers?: number;
  /** Seeds per chunk handed to a worker. */
  chunkSeeds?: number;
  /** Stop handing out seeds after this many failing seeds (0 = never stop early). */
  stopAfterFailures?: number;
  onProgress?: (p: CampaignProgress) => void;
}

export interface CampaignTotals {
  seeds: number;
  events: number;
  virtualTimeUs: number;
  faults: Record<FaultKind, number>;
  messagesSent: number;
  messagesDropped: number;
  messagesDuplicated: number;
  leadersElected: number;
  snapshotsSent: number;
  confChangesProposed: number;
  confChangesApplied: number;
  leaderTransfers: number;
  proposals: number;
  acknowledged: number;
  readsServed: number;
}

export interface CampaignProgress {
  totals: CampaignTotals;
  failures: RunResult[];
  wallMs: number;
}

export interface CampaignResult extends CampaignProgress {
  /** The first failing seed in seed order, if any (its events count is exact: no later seed was needed). */
  firstFailure: RunResult | undefined;
}

export function emptyTotals(): CampaignTotals {
  return {
    seeds: 0,
    events: 0,
    virtualTimeUs: 0,
    faults: emptyFaultCounts(),
    messagesSent: 0,
    messagesDropped: 0,
    messagesDuplicated: 0,
    leadersElected: 0,
    snapshotsSent: 0,
    confChangesProposed: 0,
    confChangesApplied: 0,
    leaderTransfers: 0,
    proposals: 0,
    acknowledged: 0,
    readsServed: 0,
  };
}

export function addStats(t: CampaignTotals, s: RunStats): void {
  t.seeds++;
  t.events += s.events;
  t.virtualTimeUs += s.virtualTimeUs;
  for (const k of Object.keys(s.faults) as FaultKind[]) t.faults[k] += s.faults[k];
  t.messagesSent += s.messagesSent;
  t.messagesDropped += s.messagesDropped;
  t.messagesDuplicated += s.messagesDuplicated;
  t.leadersElected += s.leadersElected;
  t.snapshotsSent += s.snapshotsSent;
  t.confChangesProposed += s.confChangesProposed;
  t.confChangesApplied += s.confChangesApplied;
  t.leaderTransfers += s.leaderTransfers;
  t.proposals += s.proposals;
  t.acknowledged += s.acknowledged;
  t.readsServed += s.readsServed;
}

export function mergeTotals(into: CampaignTotals, from: CampaignTotals): void {
  for (const key of Object.keys(from) as Array<keyof CampaignTotals>) {
    if (key === 'faults') {
      for (const k of Object.keys(from.faults) as FaultKind[]) into.faults[k] += from.faults[k];
    } else {
      into[key] += from[key];
    }
  }
}

/** Messages between the campaign and its workers. */
export type ToWorker = { type: 'run'; firstSeed: number; count: number } | { type: 'exit' };
export type FromWorker =
  | { type: 'ready' }
  | { type: 'chunk'; totals: CampaignTotals; failures: RunResult[] }
  | { type: 'error'; message: string };

export interface WorkerSetup {
  faultEvents: number;
  mutation: MutationName | undefined;
}

/** Run seeds [firstSeed, firstSeed + count) in this thread. */
export async function runChunk(setup: WorkerSetup, firstSeed: number, count: number): Promise<{ totals: CampaignTotals; failures: RunResult[] }> {
  const core = await loadCore(setup.mutation);
  const totals = emptyTotals();
  const failures: RunResult[] = [];
  for (let seed = firstSeed; seed < firstSeed + count; seed++) {
    const result = runSeed(core, { seed, faultEvents: setup.faultEvents, mutation: setup.mutation, traceTailLines: 200 });
    addStats(totals, result.stats);
    if (result.violation !== undefined) failures.push(result);
  }
  return { totals, failures };
}

export async function runCampaign(options: CampaignOptions): Promise<CampaignResult> {
  const start = performance.now();
  const setup: WorkerSetup = { faultEvents: options.faultEvents ?? DEFAULT_FAULT_EVENTS, mutation: options.mutation };
  const workers = options.workers ?? availableParallelism();
  const chunk = options.chunkSeeds ?? 20;
  const totals = emptyTotals();
  const failures: RunResult[] = [];
  const end = options.firstSeed + options.seeds;
  let next = options.firstSeed;
  const stop = (): boolean => options.stopAfterFailures !== undefined && options.stopAfterFailures > 0 &&
    failures.length >= options.stopAfterFailures;
  const progress = (): void => options.onProgress?.({ totals, failures, wallMs: performance.now() - start });
  const take = (): [number, number] | undefined => {
    if (next >= end || stop()) return undefined;
    const from = next;
    const count = Math.min(chunk, end - next);
    next += count;
    return [from, count];
  };

  if (workers === 0) {
    for (let job = take(); job; job = take()) {
      const r = await runChunk(setup, job[0], job[1]);
      mergeTotals(totals, r.totals);
      failures.push(...r.failures);
      progress();
    }
  } else {
    await Promise.all(Array.from({ length: workers }, () => runWorker(setup, take, (r) => {
      mergeTotals(totals, r.totals);
      failures.push(...r.failures);
      progress();
    })));
  }
  failures.sort((a, b) => a.seed - b.seed);
  return { totals, failures, wallMs: performance.now() - start, firstFailure: failures[0] };
}

function runWorker(
  setup: WorkerSetup,
  take: () => [number, number] | undefined,
  onChunk: (r: { totals: CampaignTotals; failures: RunResult[] }) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const worker = startWorker(setup);
    const feed = (): void => {
      const job = take();
      if (job === undefined) {
        worker.postMessage({ type: 'exit' } satisfies ToWorker);
        return;
      }
      worker.postMessage({ type: 'run', firstSeed: job[0], count: job[1] } satisfies ToWorker);
    };
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'error') {
        reject(new Error(m.message));
        void worker.terminate();
        return;
      }
      if (m.type === 'chunk') onChunk(m);
      feed();
    });
    worker.on('error', reject);
    worker.on('exit', () => resolve());
  });
}

/** A worker thread running campaign-worker.ts; tsx is registered in it first (workers do not inherit it). */
function startWorker(setup: WorkerSetup): Worker {
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./campaign-worker.ts', import.meta.url).href;
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { eval: true, execArgv: [], workerData: setup });
}
