// A discrete event queue over virtual time. Events at the same instant run in the order they were
// scheduled (the sequence number breaks ties), which keeps a run a pure function of its seed.

export interface Scheduled<E> {
  /** Virtual time in microseconds. */
  timeUs: number;
  /** Insertion order; unique per queue. */
  seq: number;
  event: E;
}

export class EventQueue<E> {
  // A binary min-heap ordered by (timeUs, seq): heap[0] is the next event.
  private readonly heap: Scheduled<E>[] = [];
  private nextSeq = 0;
  private nowUs = 0;

  /** Virtual time of the event being processed (or of the last one popped). */
  get now(): number {
    return this.nowUs;
  }

  get size(): number {
    return this.heap.length;
  }

  /** Schedule `event` at now + delayUs. Negative delays are a programming error. */
  schedule(delayUs: number, event: E): void {
    if (!(delayUs >= 0)) throw new RangeError(`negative or NaN delay ${delayUs}`);
    this.push({ timeUs: this.nowUs + Math.round(delayUs), seq: this.nextSeq++, event });
  }

  /** Remove and return the earliest event, advancing virtual time to it; undefined when empty. */
  pop(): Scheduled<E> | undefined {
    const heap = this.heap;
    if (heap.length === 0) return undefined;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      this.siftDown(0);
    }
    this.nowUs = top.timeUs;
    return top;
  }

  /** Time of the earliest event without removing it. */
  peekTime(): number | undefined {
    return this.heap[0]?.timeUs;
  }

  private push(item: Scheduled<E>): void {
    const heap = this.heap;
    heap.push(item);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(item, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = item;
  }

  private siftDown(start: number): void {
    const heap = this.heap;
    const item = heap[start]!;
    const n = heap.length;
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && before(heap[right]!, heap[left]!) ? right : left;
      if (!before(heap[child]!, item)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = item;
  }
}

function before<E>(a: Scheduled<E>, b: Scheduled<E>): boolean {
  return a.timeUs < b.timeUs || (a.timeUs === b.timeUs && a.seq < b.seq);
}
