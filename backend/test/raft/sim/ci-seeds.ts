// The seed set of the CI suite (sim.test.ts, mutations.test.ts): seeds CI_FIRST_SEED .. CI_FIRST_SEED +
// CI_SEEDS - 1, each with CI_FAULT_EVENTS fault-phase events.

export const CI_FIRST_SEED = 1;
export const CI_SEEDS = 500;
/**
 * Fault-phase events per CI seed. Measured on the 2-core dev machine (shared with other work): 500 seeds
 * x 6,000 events (3.1 million events) take 15-45 s with two worker threads, under the 2-minute limit.
 */
export const CI_FAULT_EVENTS = 6_000;
