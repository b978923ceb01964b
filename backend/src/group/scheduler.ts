// Time for the group coordinator, injected so that tests drive it by hand: every session, rebalance and delay
// timer of the coordinator goes through a Scheduler, and nothing in group/ reads the clock any other way.

/** An opaque timer handle, only meaningful to the scheduler that made it. */
export type TimerHandle = { readonly __timer: true };

export interface Scheduler {
  /** Milliseconds on a clock that never goes backwards (for state timestamps). */
  nowMs(): number;
  /** Runs `fn` once, `delayMs` from now (0: as soon as possible, never synchronously). */
  setTimeout(fn: () => void, delayMs: number): TimerHandle;
  /** Cancels a timer; a timer that already ran or was cancelled is ignored. */
  clearTimeout(handle: TimerHandle): void;
}

/** Node's timers fire at once for delays above this (2^31 - 1 ms, about 24.8 days). */
const NODE_TIMER_DELAY_MAX_MS = 2 ** 31 - 1;

/**
 * Real timers, unref'd so that a pending session timeout never keeps the process alive. Delays beyond Node's
 * limit are clamped to it (a member may ask for a rebalance timeout of Integer.MAX_VALUE ms).
 */
export const realScheduler: Scheduler = {
  nowMs: () => performance.timeOrigin + performance.now(),
  setTimeout(fn, delayMs) {
    const t = setTimeout(fn, Math.min(NODE_TIMER_DELAY_MAX_MS, Math.max(0, delayMs)));
    t.unref();
    return t as unknown as TimerHandle;
  },
  clearTimeout(handle) {
    clearTimeout(handle as unknown as NodeJS.Timeout);
  },
};

interface ManualTimer {
  dueMs: number;
  /** Creation order: timers due at the same time run in the order they were set. */
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A scheduler whose clock moves only when advance() is called: deterministic tests of timeouts. Timers due
 * at or before the new time run in due order; timers they set that fall inside the window run too.
 */
export class ManualScheduler implements Scheduler {
  private now: number;
  private seq = 0;
  private timers: ManualTimer[] = [];

  constructor(startMs = 1_000_000) {
    this.now = startMs;
  }

  nowMs(): number {
    return this.now;
  }

  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    const timer: ManualTimer = { dueMs: this.now + Math.max(0, delayMs), seq: this.seq++, fn, cancelled: false };
    this.timers.push(timer);
    return timer as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle): void {
    (handle as unknown as ManualTimer).cancelled = true;
  }

  /** Timers set and neither run nor cancelled. */
  pendingCount(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }

  /** Moves the clock forward by `ms`, running every timer that falls due on the way. */
  advance(ms: number): void {
    const target = this.now + ms;
    for (;;) {
      const next = this.nextDue(target);
      if (next === undefined) break;
      this.timers.splice(this.timers.indexOf(next), 1);
      this.now = Math.max(this.now, next.dueMs);
      next.fn();
    }
    this.now = target;
  }

  private nextDue(limitMs: number): ManualTimer | undefined {
    this.timers = this.timers.filter((t) => !t.cancelled);
    let best: ManualTimer | undefined;
    for (const t of this.timers) {
      if (t.dueMs > limitMs) continue;
      if (best === undefined || t.dueMs < best.dueMs || (t.dueMs === best.dueMs && t.seq < best.seq)) best = t;
    }
    return best;
  }
}
