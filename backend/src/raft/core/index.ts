// Public surface of the pure Raft core. Nothing here imports anything outside backend/src/raft/core.

export * from './types.ts';
export * from './errors.ts';
export * from './config.ts';
export * from './storage.ts';
export * from './quorum.ts';
export * from './inflights.ts';
export * from './progress.ts';
export * from './tracker.ts';
export * from './confchange.ts';
export * from './readonly.ts';
export * from './log.ts';
export * from './raft.ts';
export * from './rawnode.ts';
export * from './util.ts';
