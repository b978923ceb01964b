// Each mutation (mutations.ts) breaks one safety rule on purpose; the simulator must catch every one of
// them within the CI seed set. The seeds run in order until the first violation, so the figures logged
// (seeds and events until caught) are exact and reproducible: `npm run sim -- --seeds 500 --mutation NAME`.

import test from 'ava';
import { CI_FAULT_EVENTS, CI_FIRST_SEED, CI_SEEDS } from './ci-seeds.ts';
import { applyPatch, loadCore } from './core-loader.ts';
import { CORE_PATCHES, MUTATIONS, type CoreMutation } from './mutations.ts';
import { runSeed } from './simulator.ts';
import { readFileSync } from 'node:fs';

for (const mutation of MUTATIONS) {
  test(`mutation ${mutation} is caught within the CI seed set`, async (t) => {
    t.timeout(60_000);
    const core = await loadCore(mutation);
    let events = 0;
    for (let seed = CI_FIRST_SEED; seed < CI_FIRST_SEED + CI_SEEDS; seed++) {
      const result = runSeed(core, { seed, faultEvents: CI_FAULT_EVENTS, mutation, traceTailLines: 0 });
      events += result.stats.events;
      if (result.violation !== undefined) {
        t.log(`caught at seed ${seed} (${seed - CI_FIRST_SEED + 1} seeds, ${events} events): ` +
          `${result.violation.message.split('\n')[0]!.slice(0, 240)}`);
        t.log(`replay: ${result.violation.replay}`);
        t.pass();
        return;
      }
    }
    t.fail(`mutation ${mutation} survived ${CI_SEEDS} seeds (${events} events)`);
  });
}

test('every core patch still applies to the current core source', (t) => {
  for (const [mutation, patch] of Object.entries(CORE_PATCHES)) {
    const source = readFileSync(new URL(`../../../src/raft/core/${patch.file}`, import.meta.url), 'utf8');
    const patched = applyPatch(source, mutation as CoreMutation);
    t.not(patched, source, mutation);
  }
});
