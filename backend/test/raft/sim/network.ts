// The simulated network between Raft nodes. Every message gets a fate from the seed: dropped, delivered
// after a latency, or delivered twice. Fault episodes (see faults.ts) cut links (partitions) and raise the
// drop / duplication / delay / reordering rates while they last; overlapping episodes of one kind count
// as the strongest of them.

import { MessageType, type Message } from '../../../src/raft/core/types.ts';
import type { Prng } from './prng.ts';

export interface NetworkConfig {
  /** One-way latency of a healthy link, uniform in [latencyMinUs, latencyMaxUs]. */
  latencyMinUs: number;
  latencyMaxUs: number;
  /** Probability a message is lost on a healthy link (0 = never). */
  dropProbability: number;
  /** Probability a message is delivered twice (0 = never). Proposals are never duplicated: see fate(). */
  duplicateProbability: number;
}

export type NetworkEpisode =
  | { kind: 'drop'; probability: number }
  | { kind: 'duplicate'; probability: number }
  /** Extra latency uniform in [0, extraMaxUs]: messages arrive late, after timeouts fired. */
  | { kind: 'delay'; extraMaxUs: number }
  /** Latency spread multiplied by `factor`: later messages overtake earlier ones. */
  | { kind: 'reorder'; factor: number };

export interface Fate {
  /** Delivery delays, one per copy: [] = dropped, two items = duplicated. */
  delaysUs: number[];
  /** Dropped because the link is cut (a transport would notice and may report the peer unreachable). */
  partitioned: boolean;
}

export class Network {
  // Cut links as "from>to", with a count: overlapping partitions may cut the same link.
  private readonly cut = new Map<string, number>();
  private readonly episodes = new Map<number, NetworkEpisode>();
  private dropP: number;
  private dupP: number;
  private extraDelayMaxUs = 0;
  private spread = 1;

  constructor(
    private readonly rng: Prng,
    private readonly config: NetworkConfig,
  ) {
    this.dropP = config.dropProbability;
    this.dupP = config.duplicateProbability;
  }

  isCut(from: number, to: number): boolean {
    return this.cut.has(`${from}>${to}`);
  }

  /** Cut the directed links; returns them so the episode can restore exactly these. */
  cutLinks(links: ReadonlyArray<readonly [number, number]>): void {
    for (const [from, to] of links) {
      const key = `${from}>${to}`;
      this.cut.set(key, (this.cut.get(key) ?? 0) + 1);
    }
  }

  restoreLinks(links: ReadonlyArray<readonly [number, number]>): void {
    for (const [from, to] of links) {
      const key = `${from}>${to}`;
      const n = this.cut.get(key) ?? 0;
      if (n <= 1) this.cut.delete(key);
      else this.cut.set(key, n - 1);
    }
  }

  startEpisode(id: number, episode: NetworkEpisode): void {
    this.episodes.set(id, episode);
    this.recompute();
  }

  endEpisode(id: number): void {
    this.episodes.delete(id);
    this.recompute();
  }

  /** End every fault: links restored, rates back to zero (the liveness phase runs on a clean network). */
  heal(): void {
    this.cut.clear();
    this.episodes.clear();
    this.config.dropProbability = 0;
    this.config.duplicateProbability = 0;
    this.recompute();
  }

  /** Decide what happens to a message sent now. */
  fate(m: Message): Fate {
    if (this.isCut(m.from, m.to)) return { delaysUs: [], partitioned: true };
    if (this.dropP > 0 && this.rng.chance(this.dropP)) return { delaysUs: [], partitioned: false };
    const first = this.latency();
    // A transport carries a forwarded proposal at most once (as TCP would); Raft itself would append a
    // duplicated proposal twice, which is at-least-once delivery, not a bug of the core.
    if (m.type !== MessageType.Prop && this.dupP > 0 && this.rng.chance(this.dupP)) {
      return { delaysUs: [first, this.latency()], partitioned: false };
    }
    return { delaysUs: [first], partitioned: false };
  }

  /** Latency of a client request or reply (client links are never cut, only slow). */
  latency(): number {
    const { latencyMinUs: lo, latencyMaxUs: hi } = this.config;
    let us = lo + this.rng.next() * (hi - lo) * this.spread;
    if (this.extraDelayMaxUs > 0) us += this.rng.next() * this.extraDelayMaxUs;
    return Math.round(us);
  }

  private recompute(): void {
    this.dropP = this.config.dropProbability;
    this.dupP = this.config.duplicateProbability;
    this.extraDelayMaxUs = 0;
    this.spread = 1;
    for (const e of this.episodes.values()) {
      switch (e.kind) {
        case 'drop':
          this.dropP = Math.max(this.dropP, e.probability);
          break;
        case 'duplicate':
          this.dupP = Math.max(this.dupP, e.probability);
          break;
        case 'delay':
          this.extraDelayMaxUs = Math.max(this.extraDelayMaxUs, e.extraMaxUs);
          break;
        case 'reorder':
          this.spread = Math.max(this.spread, e.factor);
          break;
      }
    }
  }
}
