// The window of App messages sent to one follower and not yet acknowledged, bounded by a message count and
// by the bytes of their entries. The leader stops sending entries to a follower whose window is full, which
// bounds the memory a slow follower can make the leader's transport hold.

import { assert } from './errors.ts';

export class Inflights {
  /** Maximum number of messages in flight (> 0). */
  readonly maxMessages: number;
  /** Maximum bytes of entries in flight; 0 = no byte limit (the count limit still applies). */
  readonly maxBytes: number;
  /**
   * Ring buffer: the i-th oldest message in flight (0 <= i < count) is at slot (start + i) % capacity, with
   * the last index it carried and its size. Indexes increase from the oldest to the newest. Grown lazily up
   * to maxMessages so idle followers cost little.
   */
  private indexes: number[] = [];
  private sizes: number[] = [];
  private start = 0;
  private n = 0;
  /** Sum of sizes of the messages in flight. */
  private totalBytes = 0;

  constructor(maxMessages: number, maxBytes: number) {
    assert(Number.isSafeInteger(maxMessages) && maxMessages > 0, 'inflights: maxMessages must be > 0');
    assert(Number.isSafeInteger(maxBytes) && maxBytes >= 0, 'inflights: maxBytes must be >= 0');
    this.maxMessages = maxMessages;
    this.maxBytes = maxBytes;
  }

  /** Copy (the progress tracker clones progress when the configuration changes). */
  clone(): Inflights {
    const c = new Inflights(this.maxMessages, this.maxBytes);
    c.indexes = [...this.indexes];
    c.sizes = [...this.sizes];
    c.start = this.start;
    c.n = this.n;
    c.totalBytes = this.totalBytes;
    return c;
  }

  /** Record a message carrying entries up to `index`, of `bytes`. The window must not be full. */
  add(index: number, bytes: number): void {
    assert(!this.full(), 'inflights: add to a full window');
    if (this.n > 0) {
      const newest = this.indexes[this.slot(this.n - 1)]!;
      assert(index > newest, () => `inflights: index ${index} not after ${newest}`);
    }
    if (this.n === this.indexes.length) this.grow();
    const s = this.slot(this.n);
    this.indexes[s] = index;
    this.sizes[s] = bytes;
    this.n++;
    this.totalBytes += bytes;
  }

  /** The follower acknowledged everything up to `index`: free the messages that carried no more. */
  freeLE(index: number): void {
    while (this.n > 0) {
      const s = this.start;
      if (this.indexes[s]! > index) break;
      this.totalBytes -= this.sizes[s]!;
      this.start = (this.start + 1) % this.indexes.length;
      this.n--;
    }
    if (this.n === 0) this.start = 0;
  }

  /** Free the oldest message (to let one message through to a follower whose acknowledgements were lost). */
  freeFirstOne(): void {
    if (this.n === 0) return;
    this.freeLE(this.indexes[this.start]!);
  }

  /** No more messages may be added: the count limit is reached, or the byte limit is reached or passed. */
  full(): boolean {
    return this.n >= this.maxMessages || (this.maxBytes > 0 && this.totalBytes >= this.maxBytes);
  }

  count(): number {
    return this.n;
  }

  bytes(): number {
    return this.totalBytes;
  }

  reset(): void {
    this.start = 0;
    this.n = 0;
    this.totalBytes = 0;
  }

  private slot(i: number): number {
    return (this.start + i) % this.indexes.length;
  }

  /** Double the ring (up to maxMessages), unrolling it so the oldest message is at slot 0. */
  private grow(): void {
    const capacity = Math.min(Math.max(this.indexes.length * 2, 4), this.maxMessages);
    const indexes = new Array<number>(capacity);
    const sizes = new Array<number>(capacity);
    for (let i = 0; i < this.n; i++) {
      indexes[i] = this.indexes[this.slot(i)]!;
      sizes[i] = this.sizes[this.slot(i)]!;
    }
    this.indexes = indexes;
    this.sizes = sizes;
    this.start = 0;
  }
}
