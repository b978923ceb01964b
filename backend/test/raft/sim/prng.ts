// The simulator's only source of randomness: xoshiro128** (Blackman & Vigna), seeded through splitmix32.
// One run is a pure function of its seed, so every random choice (faults, latencies, client actions, the
// core's election jitter) comes from a Prng derived from that seed. Independent streams (network, disk,
// node 3's core, ...) are forked by name so that adding a draw in one place does not shift every other
// decision of the run.

/** One splitmix32 step: returns [output, next state]. Good for spreading a small seed over 128 bits. */
function splitmix32(state: number): [number, number] {
  const next = (state + 0x9e3779b9) | 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z ^= z >>> 16;
  return [z >>> 0, next];
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** FNV-1a over a stream name: maps 'network' / 'node-3' to a 32-bit stream id. */
function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class Prng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  /** seed: any safe integer (both 32-bit halves are used); stream: an extra 32-bit salt. */
  constructor(seed: number, stream = 0) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 0x1_0000_0000) >>> 0;
    let st = (lo ^ Math.imul(hi, 0x27d4eb2f) ^ Math.imul(stream >>> 0, 0x165667b1)) | 0;
    let out: number;
    [out, st] = splitmix32(st);
    this.s0 = out;
    [out, st] = splitmix32(st);
    this.s1 = out;
    [out, st] = splitmix32(st);
    this.s2 = out;
    [out, st] = splitmix32(st);
    this.s3 = out;
    // xoshiro's all-zero state is a fixed point; splitmix32 cannot produce four zeros, but stay explicit.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** A new independent generator derived from this one's next outputs and a stream name. */
  fork(name: string): Prng {
    const a = this.u32();
    const b = this.u32();
    return new Prng(a * 0x20_0000 + (b >>> 11), hashName(name));
  }

  /** Uniform 32-bit unsigned integer. */
  u32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1), 32 bits of precision (enough for every decision the simulator makes). */
  next(): number {
    return this.u32() / 0x1_0000_0000;
  }

  /** Uniform integer in [lo, hi] (both inclusive). */
  int(lo: number, hi: number): number {
    if (hi < lo) throw new RangeError(`empty range [${lo}, ${hi}]`);
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** True with probability p. chance(0) never draws true, chance(1) always does. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** Fisher-Yates shuffle of a copy. */
  shuffled<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      const tmp = out[i]!;
      out[i] = out[j]!;
      out[j] = tmp;
    }
    return out;
  }
}
