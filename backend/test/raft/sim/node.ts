// One simulated Raft node: a RawNode, its simulated disk, its state machine, and the driver loop that
// obeys the Ready contract (core/types.ts): persist the snapshot, entries and HardState and wait for the
// simulated sync; only then send the messages, apply the committed entries and call advance().

import type { Checker, TermAt } from './checker.ts';
import { COMPACTED, InvariantViolation } from './checker.ts';
import type { CoreModule, MemoryStorageInstance, RawNodeInstance } from './core-loader.ts';
import { SimDisk, type DiskOp, type SmImage } from './disk.ts';
import type { Prng } from './prng.ts';
import type { Scenario } from './scenario.ts';
import { StateMachine, type AppliedEntry, type SnapshotStore } from './state-machine.ts';
import {
  EntryType,
  MessageType,
  Role,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type ReadState,
  type Ready,
} from '../../../src/raft/core/types.ts';
import type { DriverMutation } from './mutations.ts';

/** What a node needs from the simulation around it. */
export interface NodeHost {
  readonly core: CoreModule;
  readonly scenario: Scenario;
  readonly checker: Checker;
  readonly snapshots: SnapshotStore;
  readonly driverMutation: DriverMutation | undefined;
  now(): number;
  trace(node: number, what: string, detail?: unknown): void;
  /** Schedule the completion of a disk write after the disk's latency. */
  scheduleDisk(node: SimNode, write: number): void;
  send(from: SimNode, m: Message): void;
  applied(node: SimNode, entry: AppliedEntry, conf: ConfState | undefined): void;
  replyToClient(client: number, reply: ClientReply): void;
  /** The node just became leader (its first Ready as leader is being handled). */
  becameLeader(node: SimNode): void;
}

export type ClientRequest =
  | { kind: 'propose'; client: number; value: string; data: Uint8Array }
  | { kind: 'read'; client: number; readId: string; ackedAtStart: number };

export type ClientReply =
  | { kind: 'ack'; value: string; index: number }
  | { kind: 'dropped'; value: string; leaderHint: number }
  | { kind: 'read-ok'; readId: string; index: number }
  | { kind: 'read-dropped'; readId: string; leaderHint: number };

interface PendingRead {
  client: number;
  readId: string;
  ackedAtStart: number;
  /** Set when the ReadState arrived: the read is served once the state machine reaches it. */
  index: number | undefined;
}

interface Inflight {
  rd: Ready;
  write: number;
  /** The sync finished while the node was paused: finish the Ready on resume. */
  synced: boolean;
  sentEarly: boolean;
}

export type NodeState = 'up' | 'down' | 'stopped';

const encoder = new TextEncoder();

/** Messages and client requests held for a paused node, at most (older ones are dropped, like a full socket buffer). */
const PAUSED_INBOX_MESSAGES_MAX = 10_000;

export class SimNode {
  state: NodeState = 'down';
  paused = false;
  /** Bumped by each crash: events of an earlier incarnation (ticks, sync completions) are ignored. */
  incarnation = 0;
  raw: RawNodeInstance | undefined;
  storage: MemoryStorageInstance | undefined;
  sm = new StateMachine();
  role: Role = Role.Follower;
  /** The node's current term and leader as of its last Ready. */
  term = 0;
  lead = 0;
  private hardState: HardState = { term: 0, vote: 0, commit: 0 };
  /** The commit index of the HardState last written to the core's storage. */
  private storedCommit = 0;
  private inflight: Inflight | undefined;
  /** Entries of the Ready handed out and not yet written to the core's storage. */
  private unpersisted: readonly Entry[] = [];
  private readonly held: Array<{ msg?: Message; req?: ClientRequest }> = [];
  private lastSnapIndex = 0;
  /**
   * Take a snapshot at the next opportunity because a ConfChange was applied (Scenario.snapshotOnConfChange):
   * a joining node then catches up from a snapshot that already includes it.
   */
  private snapshotAfterConfChange = false;
  /** Values proposed through this node, by client: acknowledged to it when applied here. */
  private readonly proposals = new Map<string, number>();
  private readonly reads = new Map<string, PendingRead>();
  /** Disk latency multiplier while a slow-disk fault is active (1 = healthy). */
  diskSlowFactor = 1;
  /** Tick period of this node (scenario tick with this node's clock skew). */
  readonly tickUs: number;

  constructor(
    readonly id: number,
    private readonly host: NodeHost,
    /** Membership this node was bootstrapped with; an empty one for nodes added later. */
    readonly bootstrapConf: ConfState,
    /** Randomness for the core (election timeouts) and for this node's disk tears. */
    readonly rng: Prng,
  ) {
    this.disk = new SimDisk(id, host.checker, host.driverMutation !== 'no-truncate');
    const skew = host.scenario.tickSkew;
    this.tickUs = Math.round(host.scenario.tickUs * (1 - skew + 2 * skew * rng.next()));
  }

  readonly disk: SimDisk;

  get isLive(): boolean {
    return this.state === 'up' && !this.paused;
  }

  // ----- lifecycle -----

  /** Start (or restart) from what the disk holds: in-memory state is rebuilt, nothing else survives. */
  start(): void {
    const { core, checker } = this.host;
    const disk = this.disk;
    const storage = new core.MemoryStorage(this.bootstrapConf);
    if (disk.snapshot !== undefined) storage.applySnapshot(disk.snapshot);
    if (disk.entries.length > 0) storage.append(disk.entries);
    // A torn write may have kept a snapshot but not the HardState written after it; a durable snapshot is
    // committed by definition, so the commit index is at least its index.
    const hs = { ...disk.hardState, commit: Math.max(disk.hardState.commit, disk.snapIndex) };
    storage.setHardState(hs);
    const image = disk.sm;
    this.sm = new StateMachine(image);
    if (this.sm.conf === undefined) this.sm.conf = this.bootstrapConf;
    if (image.applied > disk.snapIndex && image.conf !== undefined) storage.setConfState(image.conf);
    checker.restored(this.id, image);
    this.storage = storage;
    this.hardState = hs;
    this.storedCommit = hs.commit;
    this.lastSnapIndex = disk.snapIndex;
    this.raw = this.newRawNode(storage, image.applied);
    this.state = 'up';
    this.paused = false;
    this.role = Role.Follower;
    this.term = hs.term;
    this.lead = 0;
    checker.commit(this.id, hs.commit, true);
    this.host.trace(this.id, 'start', `term ${hs.term} vote ${hs.vote} commit ${hs.commit} applied ${image.applied} ` +
      `snap ${disk.snapIndex} last ${disk.lastIndex}`);
  }

  private newRawNode(storage: MemoryStorageInstance, applied: number): RawNodeInstance {
    const s = this.host.scenario;
    const rng = this.rng;
    return new this.host.core.RawNode({
      id: this.id,
      electionTick: s.electionTick,
      heartbeatTick: s.heartbeatTick,
      storage,
      applied,
      preVote: s.preVote,
      checkQuorum: s.checkQuorum,
      maxSizePerMsg: s.maxSizePerMsg,
      maxInflightMsgs: s.maxInflightMsgs,
      maxInflightBytes: s.maxInflightBytes,
      maxUncommittedEntriesSize: s.maxUncommittedEntriesSize,
      maxCommittedSizePerReady: s.maxCommittedSizePerReady,
      random: () => rng.next(),
      readOnlyOption: 'safe',
    });
  }

  /** Power loss: memory is gone, pending writes are lost or torn. */
  crash(torn: boolean): void {
    this.incarnation++;
    const r = this.disk.crash(this.rng, torn ? 'torn' : 'lose');
    this.state = 'down';
    this.dropMemory();
    this.host.trace(this.id, 'crash', `${torn ? 'torn' : 'lose'}: kept ${r.keptOps} lost ${r.lostOps} pending ops`);
  }

  /** Shut down for good (a node removed from the cluster is decommissioned once faults heal). */
  stop(): void {
    this.incarnation++;
    this.state = 'stopped';
    this.dropMemory();
    this.host.trace(this.id, 'stop');
  }

  private dropMemory(): void {
    this.raw = undefined;
    this.storage = undefined;
    this.inflight = undefined;
    this.unpersisted = [];
    this.held.length = 0;
    this.proposals.clear();
    this.reads.clear();
    this.paused = false;
    if (this.role === Role.Leader) this.host.checker.notLeader(this.id);
    this.role = Role.Follower;
  }

  pause(): void {
    this.paused = true;
    this.host.trace(this.id, 'pause');
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.host.trace(this.id, 'resume');
    if (this.state !== 'up') return;
    const held = this.held.splice(0);
    if (this.inflight?.synced) this.finishInflight();
    for (const h of held) {
      if (this.state !== 'up' || this.paused) break;
      if (h.msg) this.step(h.msg);
      else if (h.req) this.request(h.req);
    }
    this.drive();
  }

  // ----- inputs -----

  tick(): void {
    if (!this.isLive) return;
    this.raw!.tick();
    this.drive();
  }

  step(m: Message): void {
    if (this.state !== 'up') return;
    if (this.paused) {
      this.hold({ msg: m });
      return;
    }
    this.raw!.step(m);
    this.drive();
  }

  request(req: ClientRequest): void {
    if (this.state !== 'up') return;
    if (this.paused) {
      this.hold({ req });
      return;
    }
    if (req.kind === 'propose') this.propose(req);
    else this.readIndex(req);
    this.drive();
  }

  private hold(item: { msg?: Message; req?: ClientRequest }): void {
    if (this.held.length >= PAUSED_INBOX_MESSAGES_MAX) this.held.shift();
    this.held.push(item);
  }

  private propose(req: Extract<ClientRequest, { kind: 'propose' }>): void {
    try {
      this.raw!.propose(req.data);
      this.proposals.set(req.value, req.client);
    } catch (err) {
      if (!(err instanceof this.host.core.ProposalDroppedError)) throw err;
      this.host.replyToClient(req.client, { kind: 'dropped', value: req.value, leaderHint: this.lead });
    }
  }

  private readIndex(req: Extract<ClientRequest, { kind: 'read' }>): void {
    if (!this.raw!.readIndex(encoder.encode(req.readId))) {
      this.host.replyToClient(req.client, { kind: 'read-dropped', readId: req.readId, leaderHint: this.lead });
      return;
    }
    this.reads.set(req.readId, { client: req.client, readId: req.readId, ackedAtStart: req.ackedAtStart, index: undefined });
  }

  /** The sync of disk write `write` completed (the disk itself is already updated by the caller). */
  synced(write: number): void {
    const inflight = this.inflight;
    if (inflight === undefined || inflight.write !== write) return;
    inflight.synced = true;
    if (this.isLive) {
      this.finishInflight();
      this.drive();
    }
  }

  // ----- the driver loop -----

  /** Take Ready batches while there are any and no earlier batch is waiting for its sync. */
  drive(): void {
    while (this.isLive && this.inflight === undefined && this.raw!.hasReady()) {
      const rd = this.raw!.ready();
      this.unpersisted = rd.entries;
      this.observe(rd);
      const ops = persistOps(rd, this.host.snapshots);
      const mutation = this.host.driverMutation;
      if (ops.length === 0) {
        this.finish(rd, false);
        continue;
      }
      const write = this.disk.submit(ops);
      this.host.scheduleDisk(this, write);
      if (mutation === 'apply-unpersisted') this.applyEarly(rd.entries);
      // Persist before send: messages wait for the sync unless the mutation breaks that rule on purpose.
      const sentEarly = mutation === 'send-before-persist';
      if (sentEarly) this.sendAll(rd.messages);
      if (!rd.mustSync || mutation === 'skip-fsync') {
        this.finish(rd, sentEarly);
        continue;
      }
      this.inflight = { rd, write, synced: false, sentEarly };
      return;
    }
  }

  private finishInflight(): void {
    const inflight = this.inflight!;
    this.inflight = undefined;
    this.finish(inflight.rd, inflight.sentEarly);
  }

  /** The Ready's state is durable: mirror it in the core's storage, send, apply, advance. */
  private finish(rd: Ready, sentEarly: boolean): void {
    const storage = this.storage!;
    if (rd.snapshot !== undefined) {
      storage.applySnapshot(rd.snapshot);
      const image = snapshotImage(this.host.snapshots, rd.snapshot);
      this.sm.restore(image);
      this.host.checker.restored(this.id, image);
      this.lastSnapIndex = rd.snapshot.metadata.index;
      this.host.trace(this.id, 'restore-snap', `${rd.snapshot.metadata.index}/${rd.snapshot.metadata.term}`);
    }
    if (rd.entries.length > 0) storage.append(rd.entries);
    this.unpersisted = [];
    if (rd.hardState !== undefined) {
      const before = this.storedCommit;
      this.storedCommit = rd.hardState.commit;
      storage.setHardState(rd.hardState);
      this.host.checker.commit(this.id, rd.hardState.commit);
      // A leader's commit index covers entries a quorum has made durable: they are committed now, even if
      // this node crashes before applying them. Reported once this Ready is persisted, because the leader
      // counts its own log in the quorum.
      if (this.role === Role.Leader && rd.hardState.commit > before) {
        this.host.checker.leaderCommit(this.id, this.term, this.logEntries(before + 1, rd.hardState.commit));
      }
    }
    if (!sentEarly) this.sendAll(rd.messages);
    for (const e of rd.committedEntries) this.apply(e);
    for (const rs of rd.readStates) this.readState(rs);
    this.raw!.advance(rd);
    this.maybeSnapshot();
    this.maybeFlush();
    this.serveReads();
  }

  private sendAll(messages: readonly Message[]): void {
    for (const m of messages) this.host.send(this, m);
  }

  /** Check the batch against the Ready contract and report roles and terms to the checker. */
  private observe(rd: Ready): void {
    const hs = rd.hardState;
    if (hs !== undefined) {
      const changed = hs.term !== this.hardState.term || hs.vote !== this.hardState.vote;
      if (changed && !rd.mustSync) {
        throw new InvariantViolation('ready-contract', `node ${this.id}: term/vote changed but mustSync is false`);
      }
      this.hardState = hs;
      this.term = hs.term;
    }
    if ((rd.entries.length > 0 || rd.snapshot !== undefined) && !rd.mustSync) {
      throw new InvariantViolation('ready-contract', `node ${this.id}: entries to persist but mustSync is false`);
    }
    const n = rd.committedEntries.length;
    if (n > 0) {
      const last = rd.committedEntries[n - 1]!.index;
      if (last > this.hardState.commit) {
        throw new InvariantViolation('ready-contract', `node ${this.id}: committed entry ${last} beyond commit ` +
          `${this.hardState.commit}`);
      }
    }
    const ss = rd.softState;
    if (ss !== undefined) {
      const wasLeader = this.role === Role.Leader;
      this.role = ss.role;
      this.lead = ss.leader;
      if (ss.role === Role.Leader) {
        this.host.trace(this.id, 'leader', `term ${this.term}`);
        this.host.checker.leader(this.id, this.term, this.termAt());
        this.host.becameLeader(this);
      } else if (wasLeader) {
        this.host.checker.notLeader(this.id);
      }
    }
  }

  /**
   * This node's log: the entries of the Ready being persisted (not yet in the core's storage) over the
   * storage; COMPACTED below the snapshot.
   */
  termAt(): TermAt {
    return (i: number) => {
      const pending = this.unpersisted;
      if (pending.length > 0 && i >= pending[0]!.index && i <= pending[pending.length - 1]!.index) {
        return pending[i - pending[0]!.index]!.term;
      }
      const storage = this.storage;
      if (storage === undefined) return undefined;
      if (i < storage.firstIndex() - 1) return COMPACTED;
      if (i > storage.lastIndex()) return undefined;
      return storage.term(i);
    };
  }

  /** Entries lo..hi of this node's persisted log (those not compacted away). */
  private logEntries(lo: number, hi: number): Entry[] {
    const storage = this.storage!;
    const from = Math.max(lo, storage.firstIndex());
    return from <= hi ? storage.entries(from, hi + 1, Number.MAX_SAFE_INTEGER) : [];
  }

  // ----- applying -----

  private apply(e: Entry): void {
    // Already applied ahead of commit by the apply-unpersisted mutation.
    if (e.index <= this.sm.applied && this.host.driverMutation === 'apply-unpersisted') return;
    const before = this.sm.applied;
    const applied = this.sm.apply(e);
    this.host.checker.applied(this.id, before, e, applied.fingerprint, applied.value, this.term);
    let conf: ConfState | undefined;
    if (e.type === EntryType.ConfChange) {
      const cc = this.host.core.decodeConfChange(e.data);
      conf = this.raw!.applyConfChange(cc);
      this.sm.conf = conf;
      this.snapshotAfterConfChange = this.host.scenario.snapshotOnConfChange;
      this.host.checker.confApplied(e.index, conf);
      this.host.trace(this.id, 'conf', `${e.index}: voters ${conf.voters} learners ${conf.learners}` +
        (conf.votersOutgoing.length > 0 ? ` outgoing ${conf.votersOutgoing}` : ''));
    }
    this.host.applied(this, applied, conf);
    if (applied.value !== undefined) {
      const client = this.proposals.get(applied.value);
      if (client !== undefined) {
        this.proposals.delete(applied.value);
        this.host.replyToClient(client, { kind: 'ack', value: applied.value, index: e.index });
      }
    }
  }

  /** Mutation 'apply-unpersisted': apply entries as soon as they are appended, before they commit. */
  private applyEarly(entries: readonly Entry[]): void {
    for (const e of entries) {
      if (e.index !== this.sm.applied + 1) continue;
      const before = this.sm.applied;
      const applied = this.sm.apply(e);
      this.host.checker.applied(this.id, before, e, applied.fingerprint, applied.value);
    }
  }

  private maybeSnapshot(): void {
    const s = this.host.scenario;
    const applied = this.sm.applied;
    const storage = this.storage!;
    const due = applied - this.lastSnapIndex >= s.snapshotEveryEntries || this.snapshotAfterConfChange;
    if (!due || applied <= this.lastSnapIndex || this.sm.conf === undefined) return;
    if (applied > this.hardState.commit || applied > storage.lastIndex()) return;
    this.snapshotAfterConfChange = false;
    const image = this.sm.image();
    const data = this.host.snapshots.put(image);
    const snapshot = storage.createSnapshot(applied, this.sm.conf, data);
    const compactTo = applied - s.compactKeepEntries;
    if (compactTo >= storage.firstIndex()) storage.compact(compactTo);
    this.lastSnapIndex = applied;
    this.host.scheduleDisk(this, this.disk.submit([{ kind: 'saveSnapshot', snapshot, sm: image }]));
    this.host.trace(this.id, 'snapshot', `${applied}, compacted to ${compactTo}`);
  }

  private maybeFlush(): void {
    if (this.sm.applied <= this.disk.sm.applied) return;
    if (!this.rng.chance(this.host.scenario.smFlushProbability)) return;
    this.host.scheduleDisk(this, this.disk.submit([{ kind: 'smFlush', sm: this.sm.image() }]));
  }

  // ----- reads -----

  private readState(rs: ReadState): void {
    const readId = new TextDecoder().decode(rs.requestCtx);
    const read = this.reads.get(readId);
    if (read !== undefined) read.index = rs.index;
  }

  private serveReads(): void {
    if (this.reads.size === 0) return;
    const applied = this.sm.applied;
    for (const [id, read] of this.reads) {
      if (read.index === undefined || read.index > applied) continue;
      this.reads.delete(id);
      this.host.checker.readServed(this.id, read.readId, read.ackedAtStart, applied);
      this.host.replyToClient(read.client, { kind: 'read-ok', readId: read.readId, index: applied });
    }
  }
}

/**
 * The image behind a snapshot payload, with the snapshot's membership. The bootstrap snapshot (index 0,
 * sent to a node joining with an empty log) carries only the initial membership.
 */
function snapshotImage(store: SnapshotStore, snapshot: NonNullable<Ready['snapshot']>): SmImage {
  const { index, conf } = snapshot.metadata;
  if (index === 0) return { applied: 0, log: [], conf };
  return { applied: index, log: store.get(snapshot.data).log, conf };
}

/** The disk operations that persist a Ready: snapshot, then entries, then HardState. */
function persistOps(rd: Ready, store: SnapshotStore): DiskOp[] {
  const ops: DiskOp[] = [];
  if (rd.snapshot !== undefined) {
    ops.push({ kind: 'restoreSnapshot', snapshot: rd.snapshot, sm: snapshotImage(store, rd.snapshot) });
  }
  if (rd.entries.length > 0) ops.push({ kind: 'entries', entries: rd.entries });
  if (rd.hardState !== undefined) ops.push({ kind: 'hardState', hardState: rd.hardState });
  return ops;
}

export function isVoteGrant(m: Message): boolean {
  return m.type === MessageType.VoteResp && !m.reject;
}
