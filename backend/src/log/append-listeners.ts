// The "something was appended to topic-partition" fan-out that wakes Fetch long-polls. Every layer between the
// partition logs and the handlers (topic manager, state machine, backends) re-publishes it, with one rule: a
// listener that throws must not fail the append that already happened, so its error is logged and swallowed.
import type { Logger } from 'pino';

export type PartitionAppendListener = (topic: string, partition: number) => void;

export class AppendListeners {
  private readonly listeners = new Set<PartitionAppendListener>();

  /** Returns the unsubscribe function. */
  add(listener: PartitionAppendListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  notify(topic: string, partition: number, log: Logger): void {
    for (const listener of this.listeners) {
      try {
        listener(topic, partition);
      } catch (err) {
        log.error({ err, topic, partition }, 'append listener failed');
      }
    }
  }
}
