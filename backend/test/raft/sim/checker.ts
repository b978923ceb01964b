// Safety invariants, checked incrementally as the simulation reports what happens. Every check runs when
// the fact it depends on changes (a durable write, an apply, a role change), so a violation is reported at
// the event that caused it. Liveness is checked by the simulator (see simulator.ts) with the bound stated
// there. Each hook is usable on its own, so tests can feed hand-made violating histories.

import type { ConfState, Entry, HardState, NodeId, Snapshot } from '../../../src/raft/core/types.ts';
import type { DiskObserver, SimDisk, SmImage } from './disk.ts';
import { fingerprint, fingerprintTerm } from './state-machine.ts';

export type Invariant =
  | 'election-safety'
  | 'log-matching'
  | 'leader-completeness'
  | 'state-machine-safety'
  | 'committed-entry-lost'
  | 'commit-regressed'
  | 'term-regressed'
  | 'double-vote'
  | 'exactly-once'
  | 'apply-order'
  | 'linearizable-read'
  | 'ready-contract'
  | 'liveness'
  /** The core threw where it must not (an assertion, an error from step/ready/advance). */
  | 'exception';

export class InvariantViolation extends Error {
  constructor(
    readonly invariant: Invariant,
    detail: string,
  ) {
    super(`${invariant}: ${detail}`);
    this.name = 'InvariantViolation';
  }
}

/** A node's view of its own log (for leader completeness): a term, COMPACTED, or undefined (absent). */
export const COMPACTED = -1;
export type TermAt = (index: number) => number | undefined;

interface LeaderView {
  term: number;
  termAt: TermAt;
}

function fail(invariant: Invariant, detail: string): never {
  throw new InvariantViolation(invariant, detail);
}

function isQuorum(members: readonly NodeId[], inSet: (id: NodeId) => boolean): boolean {
  if (members.length === 0) return true; // an empty half of a joint config agrees with anything
  let n = 0;
  for (const id of members) if (inSet(id)) n++;
  return n > members.length / 2;
}

export class Checker implements DiskObserver {
  // election safety: the single leader of each term ever seen.
  private readonly leaderOfTerm = new Map<number, NodeId>();
  // double vote: the candidate each node granted its vote to, per term, from sent messages and durable state.
  private readonly grantedVote = new Map<string, NodeId>();
  private readonly durableVote = new Map<string, NodeId>();
  // log matching: for each (index, term) ever durable anywhere, the entry and the term of its predecessor.
  private readonly entryAt = new Map<string, { fp: string; prevTerm: number }>();
  // state machine safety: the entry applied at each index, by anyone, ever (= committed).
  private readonly committed: string[] = [];
  // leader completeness: the term in which each index was committed (the term of the first leader seen
  // with a commit index covering it). An entry of term 3 may be committed in term 7 (by counting an
  // entry of term 7 after it); only leaders of terms after 7 must hold it. Unknown = +Infinity.
  private readonly commitTerm: number[] = [];
  private commitTermUpTo = 0;
  private maxCommitted = 0;
  // exactly once: the index each client value was applied at.
  private readonly valueIndex = new Map<string, number>();
  // committed entry never lost: the disks of all nodes, and the newest applied configuration.
  private readonly disks = new Map<NodeId, SimDisk>();
  private conf: ConfState | undefined;
  private confIndex = -1;
  // in-memory commit per live node (never moves backwards while the node lives).
  private readonly liveCommit = new Map<NodeId, number>();
  private readonly leaders = new Map<NodeId, LeaderView>();
  // acknowledged writes, for the read check: highest index acknowledged so far.
  private maxAckedIndex = 0;
  acknowledgedCount = 0;
  // images already checked, by log array: the length of the prefix known to agree with `committed`.
  private readonly checkedImages = new WeakMap<readonly string[], number>();

  // ----- registration -----

  addDisk(disk: SimDisk): void {
    this.disks.set(disk.node, disk);
  }

  removeDisk(node: NodeId): void {
    this.disks.delete(node);
  }

  /** The initial configuration (index 0) before any conf change is applied. */
  setInitialConf(conf: ConfState): void {
    if (this.confIndex < 0) {
      this.conf = conf;
      this.confIndex = 0;
    }
  }

  committedAt(index: number): string | undefined {
    return this.committed[index];
  }

  get highestCommitted(): number {
    return this.maxCommitted;
  }

  get highestAcknowledged(): number {
    return this.maxAckedIndex;
  }

  // ----- roles and votes -----

  /** A node is leader of `term` (reported whenever its status says so). */
  leader(node: NodeId, term: number, termAt: TermAt): void {
    const known = this.leaderOfTerm.get(term);
    if (known !== undefined && known !== node) {
      fail('election-safety', `nodes ${known} and ${node} were both leader of term ${term}`);
    }
    if (known === undefined) {
      this.leaderOfTerm.set(term, node);
      this.checkLeaderHasCommitted(node, term, termAt, 1);
    }
    this.leaders.set(node, { term, termAt });
  }

  /**
   * The commit index of `node`, leader of `term`, advanced over `entries` (taken from its log): they are
   * committed, in `term` at the latest, whether or not anyone applies them before crashing.
   */
  leaderCommit(node: NodeId, term: number, entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const commit = entries[entries.length - 1]!.index;
    for (const e of entries) this.committedEntry(node, e.index, fingerprint(e), 'leader commit');
    for (let i = commit; i > 0; i--) {
      if (i <= this.commitTermUpTo && !(this.commitTermOf(i) > term)) break;
      this.setCommitTerm(i, term);
    }
    if (commit > this.commitTermUpTo) this.commitTermUpTo = commit;
  }

  /** The node is no longer leader (stepped down, crashed or stopped). */
  notLeader(node: NodeId): void {
    this.leaders.delete(node);
  }

  /** A vote (not a pre-vote) granted in a message that left `node`. */
  voteGranted(node: NodeId, term: number, candidate: NodeId): void {
    const key = `${node}:${term}`;
    const known = this.grantedVote.get(key);
    if (known !== undefined && known !== candidate) {
      fail('double-vote', `node ${node} granted its term-${term} vote to ${known} and to ${candidate}`);
    }
    this.grantedVote.set(key, candidate);
  }

  // ----- durable state (DiskObserver) -----

  hardStateDurable(node: NodeId, prev: HardState, next: HardState): void {
    if (next.term < prev.term) fail('term-regressed', `node ${node} durable term ${prev.term} -> ${next.term}`);
    if (next.commit < prev.commit) {
      fail('commit-regressed', `node ${node} durable commit ${prev.commit} -> ${next.commit}`);
    }
    if (next.vote !== 0) {
      const key = `${node}:${next.term}`;
      const known = this.durableVote.get(key);
      if (known !== undefined && known !== next.vote) {
        fail('double-vote', `node ${node} durably voted for ${known} and ${next.vote} in term ${next.term}`);
      }
      this.durableVote.set(key, next.vote);
    }
  }

  entriesDurable(node: NodeId, entries: readonly Entry[], prevTerm: number, following?: Entry): void {
    let prev = prevTerm;
    for (const e of entries) {
      const key = `${e.index}:${e.term}`;
      const fp = fingerprint(e);
      const known = this.entryAt.get(key);
      if (known === undefined) {
        this.entryAt.set(key, { fp, prevTerm: prev });
      } else if (known.fp !== fp || known.prevTerm !== prev) {
        fail(
          'log-matching',
          `node ${node} stored index ${e.index} term ${e.term} as ${fp} after term ${prev}; ` +
            `elsewhere it is ${known.fp} after term ${known.prevTerm}`,
        );
      }
      const committed = this.committed[e.index];
      if (committed !== undefined && fingerprintTerm(committed) === e.term && committed !== fp) {
        fail('log-matching', `node ${node} stored ${fp} at ${e.index}, where ${committed} was committed`);
      }
      prev = e.term;
    }
    // An entry left after the batch must still follow the entry it was created after.
    if (following !== undefined) {
      const known = this.entryAt.get(`${following.index}:${following.term}`);
      if (known !== undefined && known.prevTerm !== prev) {
        fail('log-matching', `node ${node} keeps index ${following.index} term ${following.term} after term ${prev}; ` +
          `it was created after term ${known.prevTerm}`);
      }
    }
  }

  truncated(node: NodeId, fromIndex: number, removed: readonly Entry[]): void {
    // Removing an uncommitted entry is normal; removing a committed one is fine only while a quorum
    // still holds it (e.g. a lagging follower restoring a snapshot that covers it).
    for (const e of removed) {
      if (e.index > this.maxCommitted) break;
      this.checkStillDurable(e.index);
    }
    void fromIndex;
  }

  snapshotDurable(node: NodeId, snapshot: Snapshot, sm: SmImage): void {
    this.checkImage(node, sm, `durable snapshot ${snapshot.metadata.index}`);
    const fp = sm.log[snapshot.metadata.index - 1];
    if (fp !== undefined && fingerprintTerm(fp) !== snapshot.metadata.term) {
      fail('state-machine-safety', `node ${node} snapshot at ${snapshot.metadata.index} has term ` +
        `${snapshot.metadata.term} but its image ends with ${fp}`);
    }
  }

  // ----- applies -----

  /**
   * `node`'s state machine applied `entry`; smAppliedBefore is its applied index just before. Entries
   * are applied exactly once each, in index order, and one index carries one entry everywhere.
   */
  applied(
    node: NodeId,
    smAppliedBefore: number,
    entry: Entry,
    fp: string,
    value: string | undefined,
    nodeTerm = Number.POSITIVE_INFINITY,
  ): void {
    if (entry.index !== smAppliedBefore + 1) {
      fail('apply-order', `node ${node} applied index ${entry.index} after ${smAppliedBefore}`);
    }
    // The node learnt the commit from a leader of its term or an earlier one.
    if (this.commitTermOf(entry.index) > nodeTerm) this.commitTerm[entry.index] = nodeTerm;
    this.committedEntry(node, entry.index, fp, 'applied');
    if (value !== undefined) {
      const at = this.valueIndex.get(value);
      if (at === undefined) this.valueIndex.set(value, entry.index);
      else if (at !== entry.index) {
        fail('exactly-once', `value ${value} applied at index ${at} and again at ${entry.index}`);
      }
    }
  }

  /** A state machine replaced its state with an image (restart or snapshot): it must agree with history. */
  restored(node: NodeId, image: SmImage): void {
    this.checkImage(node, image, 'restored image');
  }

  /** A newer configuration was applied at `index`. */
  confApplied(index: number, conf: ConfState): void {
    if (index <= this.confIndex) return;
    this.conf = conf;
    this.confIndex = index;
    for (let i = 1; i <= this.maxCommitted; i++) if (this.committed[i] !== undefined) this.checkStillDurable(i);
  }

  /** The in-memory commit index of a live node. restarted: the node just came up from its disk. */
  commit(node: NodeId, commit: number, restarted = false): void {
    const prev = this.liveCommit.get(node);
    if (!restarted && prev !== undefined && commit < prev) {
      fail('commit-regressed', `node ${node} commit ${prev} -> ${commit}`);
    }
    this.liveCommit.set(node, commit);
  }

  // ----- clients -----

  /** A client learnt that `value` was applied at `index`. */
  ack(value: string, index: number): void {
    const at = this.valueIndex.get(value);
    if (at !== index) fail('exactly-once', `value ${value} acknowledged at ${index} but applied at ${at}`);
    this.acknowledgedCount++;
    if (index > this.maxAckedIndex) this.maxAckedIndex = index;
  }

  /**
   * A read that started when ackedAtStart was the highest acknowledged index returned the state of `node`
   * at appliedIndex: it must include every write acknowledged before it started.
   */
  readServed(node: NodeId, readId: string, ackedAtStart: number, appliedIndex: number): void {
    if (appliedIndex < ackedAtStart) {
      fail('linearizable-read', `read ${readId} on node ${node} saw index ${appliedIndex} but index ` +
        `${ackedAtStart} was acknowledged before it started`);
    }
  }

  /** Every acknowledged value was applied (checked at the end of a run). */
  checkAcknowledgedApplied(values: Iterable<string>): void {
    for (const v of values) {
      if (!this.valueIndex.has(v)) fail('exactly-once', `acknowledged value ${v} was never applied`);
    }
  }

  /** Log matching by a full scan over every pair of durable logs (run at the end of a simulation). */
  checkDurableLogsMatch(disks: readonly SimDisk[]): void {
    for (let x = 0; x < disks.length; x++) {
      for (let y = x + 1; y < disks.length; y++) {
        const a = disks[x]!;
        const b = disks[y]!;
        const lo = Math.max(a.snapIndex, b.snapIndex) + 1;
        let i = Math.min(a.lastIndex, b.lastIndex);
        while (i >= lo && a.term(i) !== b.term(i)) i--;
        for (let j = i; j >= lo; j--) {
          const fa = fingerprint(a.entry(j)!);
          const fb = fingerprint(b.entry(j)!);
          if (fa !== fb) {
            fail('log-matching', `durable logs of nodes ${a.node} and ${b.node} agree at index ${i} but differ at ` +
              `${j}: ${fa} / ${fb}`);
          }
        }
      }
    }
  }

  /** Terms in which some node was leader. */
  get leaderTerms(): number {
    return this.leaderOfTerm.size;
  }

  // ----- internals -----

  private checkImage(node: NodeId, image: SmImage, what: string): void {
    // Images of one state machine share its append-only array, so only the unchecked tail is compared.
    const from = (this.checkedImages.get(image.log) ?? 0) + 1;
    for (let i = from; i <= image.applied; i++) {
      const fp = image.log[i - 1]!;
      const known = this.committed[i];
      if (known === undefined) {
        this.committed[i] = fp;
        if (i > this.maxCommitted) this.maxCommitted = i;
        this.checkLeadersHold(i);
      } else if (known !== fp) {
        fail('state-machine-safety', `node ${node} ${what} has ${fp} at ${i}, committed is ${known}`);
      }
    }
    if (image.applied >= from) this.checkedImages.set(image.log, image.applied);
  }

  /** `fp` is committed at `index`: one entry per index, ever. */
  private committedEntry(node: NodeId, index: number, fp: string, how: string): void {
    const known = this.committed[index];
    if (known === undefined) {
      this.committed[index] = fp;
      if (index > this.maxCommitted) this.maxCommitted = index;
      this.checkLeadersHold(index);
      this.checkStillDurable(index);
    } else if (known !== fp) {
      fail('state-machine-safety', `node ${node} ${how} ${fp} at ${index}, but ${known} was committed there`);
    }
  }

  private commitTermOf(index: number): number {
    return this.commitTerm[index] ?? Number.POSITIVE_INFINITY;
  }

  /** Index `index` is known to be committed in `term` (or earlier): newer leaders must all hold it. */
  private setCommitTerm(index: number, term: number): void {
    if (!(term < this.commitTermOf(index))) return;
    this.commitTerm[index] = term;
    this.checkLeadersHold(index);
  }

  /** Every current leader of a term after the one `index` was committed in holds it. */
  private checkLeadersHold(index: number): void {
    const fp = this.committed[index];
    const term = this.commitTermOf(index);
    if (fp === undefined || term === Number.POSITIVE_INFINITY) return;
    const entryTerm = fingerprintTerm(fp);
    for (const [node, view] of this.leaders) {
      if (view.term > term) this.checkLeaderHas(node, view.term, view.termAt, index, entryTerm);
    }
  }

  private checkLeaderHasCommitted(node: NodeId, term: number, termAt: TermAt, from: number): void {
    for (let i = from; i <= this.maxCommitted; i++) {
      const fp = this.committed[i];
      if (fp === undefined || !(this.commitTermOf(i) < term)) continue;
      this.checkLeaderHas(node, term, termAt, i, fingerprintTerm(fp));
    }
  }

  private checkLeaderHas(node: NodeId, leaderTerm: number, termAt: TermAt, index: number, term: number): void {
    const has = termAt(index);
    if (has === COMPACTED || has === term) return;
    fail('leader-completeness', `leader ${node} of term ${leaderTerm} has ${has === undefined ? 'no entry' :
      `term ${has}`} at index ${index}, where an entry of term ${term} was committed in term ` +
      `${this.commitTermOf(index)}`);
  }

  /** No quorum of the newest configuration may lack committed entry `index` in its durable state. */
  private checkStillDurable(index: number): void {
    const conf = this.conf;
    const fp = this.committed[index];
    if (conf === undefined || fp === undefined) return;
    const term = fingerprintTerm(fp);
    const lacks = (id: NodeId): boolean => {
      const disk = this.disks.get(id);
      if (disk === undefined) return true;
      if (index <= disk.snapIndex) return false;
      return disk.term(index) !== term;
    };
    if (isQuorum(conf.voters, lacks) && (conf.votersOutgoing.length === 0 || isQuorum(conf.votersOutgoing, lacks))) {
      const lacking = [...new Set([...conf.voters, ...conf.votersOutgoing])].filter(lacks);
      fail('committed-entry-lost', `committed entry ${fp} at index ${index} is missing from the durable ` +
        `state of nodes ${lacking.join(',')}, a quorum of voters ${conf.voters.join(',')}` +
        (conf.votersOutgoing.length > 0 ? ` / outgoing ${conf.votersOutgoing.join(',')}` : ''));
    }
  }
}
