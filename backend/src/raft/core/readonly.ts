// Pending linearizable reads on a leader (ReadIndex, Raft thesis §6.4, the "safe" option).
//
// A read arriving when the commit index is C is served once (1) a heartbeat round that started after the
// read arrived was acknowledged by a quorum, proving this node was still leader at that moment, and
// (2) the application has applied up to C. (1) is tracked here; (2) is the driver's job with the ReadState.

import type { Message, NodeId } from './types.ts';
import { bytesKey } from './util.ts';

export interface ReadIndexStatus {
  /** The original request: from NONE or self for a local read, a follower's id for a forwarded one. */
  request: Message;
  /** Commit index when the read arrived. */
  index: number;
  /** Nodes that answered a heartbeat carrying this read's context (the leader included). */
  acks: Set<NodeId>;
}

export class ReadOnly {
  /** Requests by context key. Invariant: the keys of `pending` are exactly the entries of `queue`. */
  private readonly pending = new Map<string, ReadIndexStatus>();
  /** Context keys in arrival order; a quorum for one confirms every read that arrived before it too. */
  private queue: string[] = [];

  size(): number {
    return this.queue.length;
  }

  /** Register a read arriving at commit index `index`. A context already pending is ignored. */
  addRequest(index: number, request: Message, context: Uint8Array): void {
    const key = bytesKey(context);
    if (this.pending.has(key)) return;
    this.pending.set(key, { request, index, acks: new Set() });
    this.queue.push(key);
  }

  /** A heartbeat answer echoing `context` came from `from`: the acks so far, or undefined if not pending. */
  recvAck(from: NodeId, context: Uint8Array): ReadonlySet<NodeId> | undefined {
    const rs = this.pending.get(bytesKey(context));
    if (rs === undefined) return undefined;
    rs.acks.add(from);
    return rs.acks;
  }

  /**
   * The read with `context` is confirmed: remove and return it and every read queued before it (a quorum
   * heartbeat round that started after them confirms them as well).
   */
  advance(context: Uint8Array): ReadIndexStatus[] {
    const key = bytesKey(context);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const done = this.queue.slice(0, at + 1);
    this.queue = this.queue.slice(at + 1);
    const result: ReadIndexStatus[] = [];
    for (const k of done) {
      result.push(this.pending.get(k)!);
      this.pending.delete(k);
    }
    return result;
  }

  /** Context of the newest pending read, to piggyback on regular heartbeats (a lost round gets retried). */
  lastPendingContext(): Uint8Array | undefined {
    if (this.queue.length === 0) return undefined;
    const key = this.queue[this.queue.length - 1]!;
    const rs = this.pending.get(key)!;
    return rs.request.context;
  }
}
