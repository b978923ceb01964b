// Problems of the core found by the simulator, each as the smallest scenario that shows it, on a
// fault-free in-memory cluster. An open problem is a `test.failing` (it passes while the problem exists
// and AVA flags it once fixed); a fixed one stays as a plain regression test.
//
// All three were about a node joining the cluster with an empty storage, found by the campaign (seeds 27,
// 64 and 11 of the first versions of the simulator) and fixed in the core (Raft.sendBaseToEmptyFollower,
// Raft.restore accepting any snapshot on a node without configuration).

import test from 'ava';
import {
  ConfChangeType,
  EntryType,
  MemoryStorage,
  RawNode,
  decodeConfChange,
  type ConfState,
  type Message,
} from '../../../src/raft/core/index.ts';

function conf(voters: number[], learners: number[] = []): ConfState {
  return { voters, learners, votersOutgoing: [], learnersNext: [], autoLeave: false };
}

/** A fault-free cluster driven by hand: every Ready is persisted, sent and applied at once. */
class MiniCluster {
  readonly storages = new Map<number, MemoryStorage>();
  readonly nodes = new Map<number, RawNode>();
  readonly applied = new Map<number, number>();
  readonly errors: string[] = [];
  private inbox: Message[] = [];

  add(id: number, bootstrap: ConfState): void {
    const storage = new MemoryStorage(bootstrap);
    this.storages.set(id, storage);
    this.applied.set(id, 0);
    let x = id;
    this.nodes.set(id, new RawNode({ id, electionTick: 10, heartbeatTick: 1, storage, random: () => (x = (x * 7919 + 13) % 1000) / 1000 }));
  }

  /** Handle Readys and deliver messages until nothing is left. */
  stabilize(maxRounds = 200): void {
    for (let round = 0; round < maxRounds; round++) {
      let busy = false;
      for (const [id, node] of this.nodes) {
        while (node.hasReady()) {
          busy = true;
          this.handleReady(id, node);
        }
      }
      const msgs = this.inbox;
      this.inbox = [];
      for (const m of msgs) this.nodes.get(m.to)?.step(m);
      if (!busy && msgs.length === 0) return;
    }
  }

  tickAll(ticks: number): void {
    for (let i = 0; i < ticks; i++) {
      for (const node of this.nodes.values()) node.tick();
      this.stabilize();
    }
  }

  private handleReady(id: number, node: RawNode): void {
    const storage = this.storages.get(id)!;
    const rd = node.ready();
    if (rd.snapshot !== undefined) storage.applySnapshot(rd.snapshot);
    storage.append(rd.entries);
    if (rd.hardState !== undefined) storage.setHardState(rd.hardState);
    this.inbox.push(...rd.messages);
    if (rd.snapshot !== undefined) this.applied.set(id, rd.snapshot.metadata.index);
    for (const e of rd.committedEntries) {
      if (e.type === EntryType.ConfChange) {
        try {
          node.applyConfChange(decodeConfChange(e.data));
        } catch (err) {
          this.errors.push(`node ${id} applying entry ${e.index}: ${(err as Error).message}`);
        }
      }
      this.applied.set(id, e.index);
    }
    node.advance(rd);
  }
}

function startCluster(): MiniCluster {
  const c = new MiniCluster();
  for (const id of [1, 2, 3]) c.add(id, conf([1, 2, 3]));
  c.nodes.get(1)!.campaign();
  c.stabilize();
  for (let i = 0; i < 5; i++) c.nodes.get(1)!.propose(new TextEncoder().encode(`v${i}`));
  c.stabilize();
  return c;
}

// Fixed: a node added to a cluster bootstrapped with MemoryStorage(conf) (the initial membership as an
// empty snapshot at index 0) starts with an empty log while the leader's log still starts at index 1.
// It used to get plain entries and never learn the initial membership, so applying the ConfChange that
// added it failed ("removed all voters"); the leader now sends it the bootstrap snapshot first.
test('fixed: a node added while the leader log starts at index 1 can apply the ConfChange that added it', (t) => {
  const c = startCluster();
  c.add(4, conf([]));
  c.nodes.get(1)!.proposeConfChange({ changes: [{ type: ConfChangeType.AddLearnerNode, nodeId: 4 }], joint: false });
  c.tickAll(5);
  t.deepEqual(c.errors, []);
  t.is(c.applied.get(4), c.applied.get(1));
});

// Fixed: a follower ignored a snapshot whose membership does not include it (Raft.restore). If the
// leader's newest snapshot predated the ConfChange that added a node, the new node rejected every copy the
// leader sent (one per heartbeat round trip) and could not catch up until the leader's driver happened to
// take a newer snapshot. Now a follower with no configuration of its own takes any snapshot.
test('fixed: a node added after the leader\'s last snapshot catches up', (t) => {
  const c = startCluster();
  // The leader snapshots and compacts before node 4 exists.
  const leaderStorage = c.storages.get(1)!;
  const at = c.applied.get(1)!;
  leaderStorage.createSnapshot(at, conf([1, 2, 3]), new Uint8Array(0));
  leaderStorage.compact(at);
  c.add(4, conf([]));
  c.nodes.get(1)!.proposeConfChange({ changes: [{ type: ConfChangeType.AddLearnerNode, nodeId: 4 }], joint: false });
  c.tickAll(30);
  t.deepEqual(c.errors, []);
  t.is(c.applied.get(4), c.applied.get(1));
});

// Fixed: the bootstrap snapshot (index 0) was only sent while the storage's snapshot was still the
// bootstrap one. A driver that took a snapshot without compacting everything before it (keeping entries
// for slow followers) leaves the log starting at index 1 with a snapshot at index > 0: the leader sent a
// new node plain entries from index 1, and the node failed to apply the first ConfChange ("removed all
// voters"). Now a follower that matches nothing gets the storage's snapshot, whatever its index.
test('fixed: a node added after a snapshot that left index 1 in the log can apply its ConfChange', (t) => {
  const c = startCluster();
  const leaderStorage = c.storages.get(1)!;
  leaderStorage.createSnapshot(c.applied.get(1)!, conf([1, 2, 3]), new Uint8Array(0));
  c.add(4, conf([]));
  c.nodes.get(1)!.proposeConfChange({ changes: [{ type: ConfChangeType.AddLearnerNode, nodeId: 4 }], joint: false });
  c.tickAll(5);
  t.deepEqual(c.errors, []);
  t.is(c.applied.get(4), c.applied.get(1));
});
