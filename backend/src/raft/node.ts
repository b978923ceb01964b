// The Raft node driver: the pure core (core/), the durable log (storage/lmdb-log-store.ts), the snapshot files
// (storage/snapshot-store.ts via node-snapshots.ts), the TCP transport (transport/) and the state machine,
// driven by one serialised loop that obeys the Ready contract (core/types.ts):
//
//   take inputs   received messages -> step, ticks -> tick, queued proposals -> propose (many per pass)
//   rd = ready()
//   persist       snapshot metadata, entries and hard state in ONE durable LMDB write (the snapshot file itself
//                 is already durable: it was written when it was received or made)
//   restore       the state machine from rd.snapshot
//   send          rd.messages (only now: persist before send)
//   apply         rd.committedEntries through the state machine (ConfChange entries through the core too),
//                 then resolve the proposals of this node whose entries were applied
//   advance(rd)
//
// Group commit: the loop never runs two passes at once, so everything that arrives while one persist is on
// disk (proposals, acknowledgements, votes) is taken by the next pass and costs one fsync together.
//
// Bootstrap (first start, empty storage, this node among initialMembers): the membership is written as a
// snapshot at index 0 with no data (voters = initialMembers), as etcd does with its initial ConfState; the
// log itself starts empty. A node not among initialMembers starts with no membership (a node joining later):
// the leader sends it that base snapshot, then the ConfChange entries that added it.
//
// Restart: the hard state and entries come from LMDB, the newest verified snapshot file is reconciled with
// the log (a crash may have left a newer one than the log records), the state machine is restored from it
// only when its appliedIndex is behind, and the core resumes at applied = stateMachine.appliedIndex(). The
// membership as of that index is rebuilt from the snapshot's plus the ConfChange entries up to it.
//
// Faults: a failed disk write, a state machine that throws, or a broken invariant stops the node (fatal log,
// every pending caller rejected, transport closed) rather than acknowledge anything it cannot stand behind.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { decodeConfChange } from './core/confchange.ts';
import { ProposalDroppedError } from './core/errors.ts';
import { RawNode } from './core/rawnode.ts';
import { emptySnapshot } from './core/storage.ts';
import { EntryType, NONE, Role } from './core/types.ts';
import type { ConfState, Entry, HardState, Message, Ready, SnapshotMetadata, SoftState } from './core/types.ts';
import { bytesKey, emptyConfState } from './core/util.ts';
import { encodeEnvelope, decodeEnvelope, ENVELOPE_SEQ_MAX } from './node-envelope.ts';
import { ProposalQueueFullError, ProposalTimeoutError, ProposalTooLargeError, RaftNodeStoppedError } from './node-errors.ts';
import { DEFAULT_COMMIT_WRITE_DELAY_MS, DEFAULT_INBOX_MESSAGES_MAX, DEFAULT_PROPOSAL_BYTES_MAX, DEFAULT_READ_BARRIERS_PENDING_MAX, validateOptions } from './node-options.ts';
import type { PeerAddress, RaftNodeMetrics, RaftNodeOptions } from './node-options.ts';
import { ProposalRegistry, ReadRegistry, abortReason, listenAbort, settle } from './node-pending.ts';
import type { PendingProposal, PendingRead } from './node-pending.ts';
import { NodeSnapshots } from './node-snapshots.ts';
import { NotLeaderError } from './node-types.ts';
import type { LeaderInfo, NodeId, RaftNodeApi, ReplicaState, StateMachine } from './node-types.ts';
import { LmdbLogStore } from './storage/lmdb-log-store.ts';
import type { PersistRequest } from './storage/lmdb-log-store.ts';
import { SnapshotStore } from './storage/snapshot-store.ts';
import type { LoadedSnapshot } from './storage/snapshot-store.ts';
import { RaftTransport } from './transport/transport.ts';

type NodeState = 'new' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

/** Loop passes in a row without yielding to the event loop (a pass without disk I/O only awaits microtasks). */
const PASSES_PER_YIELD = 64;
const EMPTY = new Uint8Array(0);
/** Bytes of log entries read at once when replaying membership changes at start. */
const REPLAY_SLICE_BYTES = 16 * 1024 * 1024;

export type { PeerAddress, RaftNodeLimits, RaftNodeMetrics, RaftNodeOptions, RaftNodeTiming, RaftSnapshotPolicy } from './node-options.ts';

/** A snapshot file written in the background, to be recorded in the log store by the loop. */
interface BuiltSnapshot {
  metadata: SnapshotMetadata;
}

export class RaftNode implements RaftNodeApi {
  readonly nodeId: NodeId;
  private readonly opts: RaftNodeOptions;
  private readonly log: Logger;
  private readonly sm: StateMachine;
  /** Random per start: proposal ids of an earlier life of this node never match a caller of this one. */
  private readonly incarnation = randomBytes(4).readUInt32BE(0);
  private state: NodeState = 'new';
  private store: LmdbLogStore | undefined;
  private snaps: NodeSnapshots | undefined;
  private transport: RaftTransport | undefined;
  private raw: RawNode | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private fatalError: unknown;
  private stopping: Promise<void> | undefined;

  // Inputs, taken by the loop at the start of each pass.
  private inbox: Message[] = [];
  private ticksPending = 0;
  private readonly unreachable = new Set<NodeId>();
  private snapshotReports: { peer: NodeId; ok: boolean }[] = [];
  /** A commit index that moved alone, not yet written (see persist()); written by commitWriteTimer at the latest. */
  private deferredHardState: HardState | undefined;
  private commitWriteTimer: NodeJS.Timeout | undefined;
  /** A requested leadership transfer not yet handed to the core (only the latest request counts). */
  private transferTo: NodeId | undefined;
  private built: BuiltSnapshot[] = [];
  private wakeLoop: (() => void) | null = null;
  private loopDone: Promise<void> = Promise.resolve();

  // What the loop knows (updated from Ready batches).
  private role: Role = Role.Follower;
  private lead: NodeId = NONE;
  private term = 0;
  private commit = 0;
  private applied = 0;
  /** Membership as of `applied`. */
  private confState: ConfState = emptyConfState();
  private info: LeaderInfo = { leaderId: -1, term: 0, isLeader: false };
  /**
   * Tick timer firings so far, and the firing at which a message from each peer last arrived (for replicas()).
   * Counted in ticks, not wall time: when this process stalls (GC, a loaded machine) its ticks stall too, so a
   * stall of its own never makes it think its peers went quiet.
   */
  private tickCount = 0;
  private readonly lastHeardTick = new Map<NodeId, number>();
  private readonly leaderListeners = new Set<(info: LeaderInfo) => void>();
  private readonly fatalListeners = new Set<(err: unknown) => void>();

  // Callers.
  private nextSeq = 1;
  private readonly proposals: ProposalRegistry;
  private readonly reads: ReadRegistry;
  private readonly proposalBytesMax: number;

  // Snapshots.
  private snapshotIndex = 0;
  /** The background write of a local snapshot, if one is running. */
  private snapshotWrite: Promise<void> | undefined;
  /** Make a snapshot at the next chance, whatever the entry count (the file the core wants to send is gone). */
  private snapshotWanted = false;

  private readonly counters = {
    readies: 0,
    persists: 0,
    commitWrites: 0,
    entriesPersisted: 0,
    messagesSent: 0,
    messagesDropped: 0,
    entriesApplied: 0,
    proposalsAccepted: 0,
    proposalsCompleted: 0,
    snapshotsCreated: 0,
    snapshotsInstalled: 0,
  };

  constructor(options: RaftNodeOptions) {
    validateOptions(options);
    this.opts = options;
    this.nodeId = options.nodeId;
    this.sm = options.stateMachine;
    this.log = options.logger.child({ component: 'raft-node', node: options.nodeId });
    this.proposals = new ProposalRegistry(options.limits.proposalsQueuedMax);
    this.reads = new ReadRegistry(options.limits.readBarriersPendingMax ?? DEFAULT_READ_BARRIERS_PENDING_MAX);
    this.proposalBytesMax = options.limits.proposalBytesMax ?? DEFAULT_PROPOSAL_BYTES_MAX;
  }

  /** The port the transport listens on (the real one when listen.port was 0); 0 before start(). */
  get port(): number {
    return this.transport?.port ?? 0;
  }

  // ---- Lifecycle ----------------------------------------------------------------------------------------

  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`raft node ${this.nodeId} cannot start: it is ${this.state}`);
    this.state = 'starting';
    try {
      await this.open();
      await this.recover();
      this.createRawNode();
      await this.startTransport();
    } catch (err) {
      this.state = 'stopped';
      await this.closeResources();
      throw err;
    }
    this.state = 'running';
    const t = this.opts.timing;
    this.tickTimer = setInterval(() => this.onTick(), t.tickMs);
    this.tickTimer.unref();
    this.log.info({ term: this.term, commit: this.commit, applied: this.applied, snapshotIndex: this.snapshotIndex,
      voters: this.confState.voters, port: this.port, incarnation: this.incarnation }, 'raft node started');
    this.loopDone = this.runLoop();
  }

  /**
   * Stops ticking, lets the pass in progress finish its disk work, closes transport and storage. Pending callers
   * reject with RaftNodeStoppedError. Also required after a failure (it releases the storage).
   */
  stop(): Promise<void> {
    if (this.state === 'new') this.state = 'stopped';
    if (this.state === 'starting') return Promise.reject(new Error('raft node is starting; await start() before stop()'));
    this.stopping ??= this.state === 'stopped' ? Promise.resolve() : this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    this.state = 'stopping';
    this.halt(new RaftNodeStoppedError('stopped'));
    await this.loopDone;
    await this.snapshotWrite;
    // Not needed for safety (see persist()), but a restart then starts from the latest commit index.
    if (this.fatalError === undefined) this.writeDeferredCommit();
    await this.closeResources();
    this.state = 'stopped';
    this.log.info('raft node stopped');
  }

  /** Called once if the node fails (disk write, state machine, invariant); it serves nothing afterwards. */
  onFatal(listener: (err: unknown) => void): () => void {
    this.fatalListeners.add(listener);
    return () => this.fatalListeners.delete(listener);
  }

  /** The error that stopped the node, if it failed. */
  get failure(): unknown {
    return this.fatalError;
  }

  /** Adds a peer or moves it to a new address (the transport redials it). */
  setPeerAddress(id: NodeId, address: PeerAddress): void {
    this.transport?.addPeer(id, address);
  }

  // ---- RaftNodeApi --------------------------------------------------------------------------------------

  propose(data: Uint8Array, signal?: AbortSignal): Promise<unknown> {
    if (!(data instanceof Uint8Array) || data.byteLength === 0) {
      // Empty entries are the core's no-ops; a command is never empty.
      return Promise.reject(new RangeError('a proposal must be a non-empty Uint8Array'));
    }
    if (data.byteLength > this.proposalBytesMax) return Promise.reject(new ProposalTooLargeError(data.byteLength, this.proposalBytesMax));
    const refused = this.refuse(this.proposals.isFull(), 'proposals', this.proposals.max, signal);
    if (refused !== undefined) return Promise.reject(refused);
    const seq = this.takeSeq();
    const envelope = encodeEnvelope({ nodeId: this.nodeId, incarnation: this.incarnation, seq }, data);
    return new Promise<unknown>((resolve, reject) => {
      const p: PendingProposal = {
        seq,
        data: envelope,
        term: 0,
        deadlineMs: performance.now() + this.opts.limits.proposalTimeoutMs,
        settled: false,
        resolve,
        reject,
        detach: () => {},
      };
      p.detach = listenAbort(signal, (reason) => {
        this.proposals.remove(seq);
        settle(p, { error: reason });
      });
      this.proposals.enqueue(p);
      this.wake();
    });
  }

  readBarrier(signal?: AbortSignal): Promise<void> {
    const refused = this.refuse(this.reads.isFull(), 'read barriers', this.reads.max, signal);
    if (refused !== undefined) return Promise.reject(refused);
    const ctx = encodeEnvelope({ nodeId: this.nodeId, incarnation: this.incarnation, seq: this.takeSeq() }, EMPTY);
    const key = bytesKey(ctx);
    return new Promise<void>((resolve, reject) => {
      const r: PendingRead = {
        ctx,
        key,
        index: -1,
        deadlineMs: performance.now() + this.opts.limits.proposalTimeoutMs,
        settled: false,
        resolve,
        reject,
        detach: () => {},
      };
      r.detach = listenAbort(signal, (reason) => {
        this.reads.remove(key);
        settle(r, { error: reason });
      });
      this.reads.enqueue(r);
      this.wake();
    });
  }

  leader(): LeaderInfo {
    return { ...this.info };
  }

  replicas(): { commit: number; voters: ReplicaState[] } | null {
    const raw = this.raw;
    if (raw === undefined || this.state !== 'running') return null;
    const status = raw.status();
    if (status.progress === undefined) return null;
    const voters: ReplicaState[] = [];
    for (const [nodeId, pr] of status.progress) {
      if (pr.isLearner) continue;
      const self = nodeId === this.nodeId;
      voters.push({ nodeId, match: pr.match, active: this.heardRecently(nodeId), replicating: self || pr.state === 'replicate' });
    }
    return { commit: status.hardState.commit, voters };
  }

  inSyncVoters(): NodeId[] | null {
    if (this.state !== 'running' || this.role !== Role.Leader) return null;
    return this.confState.voters.filter((id) => this.heardRecently(id));
  }

  /**
   * This node, or a peer heard from within the last electionTicks ticks. Not the core's recentActive:
   * CheckQuorum clears it every election timeout, so it flickers.
   */
  private heardRecently(nodeId: NodeId): boolean {
    return nodeId === this.nodeId || (this.lastHeardTick.get(nodeId) ?? -Infinity) >= this.tickCount - this.opts.timing.electionTicks;
  }

  onLeaderChange(listener: (info: LeaderInfo) => void): () => void {
    this.leaderListeners.add(listener);
    return () => this.leaderListeners.delete(listener);
  }

  /**
   * Asks the leader to hand leadership to `to` (forwarded when this node is a follower). Best effort: watch
   * onLeaderChange; a transfer that does not finish within an election timeout is abandoned.
   */
  transferLeadership(to: NodeId): void {
    if (!Number.isSafeInteger(to) || to <= NONE) throw new RangeError(`invalid transferee ${to}`);
    if (this.state !== 'running') return;
    this.transferTo = to;
    this.wake();
  }

  metrics(): RaftNodeMetrics {
    return {
      ...this.counters,
      term: this.term,
      commit: this.commit,
      applied: this.applied,
      snapshotIndex: this.store?.snapshot().metadata.index ?? 0,
      proposalsPending: this.proposals.size,
      readBarriersPending: this.reads.size,
      logSyncs: this.store?.stats.syncs ?? 0,
      entriesReadCached: this.store?.stats.entriesReadCached ?? 0,
      entriesReadStored: this.store?.stats.entriesReadStored ?? 0,
      entryCacheBytes: this.store?.entryCacheUsage().bytes ?? 0,
    };
  }

  // ---- Start --------------------------------------------------------------------------------------------

  private async open(): Promise<void> {
    const dir = this.opts.dataDir;
    await fs.mkdir(dir, { recursive: true });
    this.store = await LmdbLogStore.open(path.join(dir, 'log'), this.opts.logStore);
    const snapshotStore = await SnapshotStore.open(
      path.join(dir, 'snapshots'),
      { ...this.opts.snapshotStore, snapshotsRetained: this.opts.snapshot.snapshotsRetained },
      this.log,
    );
    this.snaps = new NodeSnapshots(snapshotStore, this.log);
    this.snaps.onMissing = (meta) => {
      this.log.warn({ index: meta.index, term: meta.term }, 'snapshot to send is gone; making a new one');
      this.snapshotWanted = true;
      this.wake();
    };
  }

  /** Brings log store, snapshot files and state machine into agreement (see the file head). */
  private async recover(): Promise<void> {
    const store = this.store!;
    let latest = await this.snaps!.loadLatest();
    if (this.isPristine(latest)) await this.bootstrap();
    if (latest !== undefined && latest.metadata.index > store.snapshot().metadata.index) await this.adoptSnapshotFile(latest);
    const snap = store.snapshot().metadata;
    if (this.sm.appliedIndex() < snap.index) {
      latest = this.snaps!.get(snap);
      if (latest === undefined) throw new Error(`snapshot file for index ${snap.index} term ${snap.term} is missing`);
      await this.restoreStateMachine(latest);
    }
    const applied = this.sm.appliedIndex();
    if (applied > store.lastIndex()) {
      throw new Error(`state machine applied ${applied} but the raft log ends at ${store.lastIndex()}: wrong or lost data directory`);
    }
    const hs = store.initialState().hardState;
    // The commit index is written lazily (it can be recomputed), the state machine's progress eagerly: a
    // crash can leave the stored commit behind what was applied. Applied entries were committed.
    if (applied > hs.commit) await store.persist({ hardState: { ...hs, commit: applied } });
    // The core builds its membership from initialState(): make it the snapshot's; the ConfChange entries
    // after the snapshot up to `applied` are replayed once the core exists (replayConfChanges).
    await store.persist({ confState: snap.conf });
    this.applied = applied;
    this.snapshotIndex = snap.index;
    this.term = hs.term;
    this.commit = Math.max(hs.commit, applied);
  }

  private isPristine(latest: LoadedSnapshot | undefined): boolean {
    const store = this.store!;
    const { hardState, confState } = store.initialState();
    return latest === undefined && store.lastIndex() === 0 && hardState.term === 0 && confState.voters.length === 0 &&
      confState.learners.length === 0 && this.sm.appliedIndex() === 0;
  }

  private async bootstrap(): Promise<void> {
    const members = [...new Set(this.opts.initialMembers)].sort((a, b) => a - b);
    if (!members.includes(this.nodeId)) {
      this.log.info({ initialMembers: members }, 'new node outside the initial members: waiting to be added');
      return;
    }
    const conf: ConfState = { ...emptyConfState(), voters: members };
    await this.store!.persist({ snapshot: emptySnapshot(conf) });
    this.log.info({ voters: members }, 'bootstrapped a new cluster membership');
  }

  /**
   * A snapshot file newer than the log's snapshot record: a crash came between writing the file and recording
   * it (local snapshot), or a received snapshot was stored but not yet taken. Either way its content is
   * committed state. If the log holds its last entry, only record it (the entries stay); otherwise it
   * replaces the log, as when a follower takes a leader's snapshot.
   */
  private async adoptSnapshotFile(latest: LoadedSnapshot): Promise<void> {
    const store = this.store!;
    const meta = latest.metadata;
    const hs = store.initialState().hardState;
    let matches = false;
    if (meta.index >= store.firstIndex() - 1 && meta.index <= store.lastIndex()) matches = store.term(meta.index) === meta.term;
    if (matches) {
      if (hs.commit < meta.index) await store.persist({ hardState: { ...hs, commit: meta.index } });
      await store.createSnapshot(meta.index, meta.conf);
    } else {
      await store.persist({ snapshot: { metadata: meta }, hardState: { ...hs, commit: Math.max(hs.commit, meta.index) } });
    }
    this.log.info({ index: meta.index, term: meta.term, kept: matches }, 'snapshot file adopted by the log at start');
  }

  private createRawNode(): void {
    const o = this.opts;
    this.raw = new RawNode({
      id: this.nodeId,
      electionTick: o.timing.electionTicks,
      heartbeatTick: o.timing.heartbeatTicks,
      storage: this.store!,
      applied: this.applied,
      preVote: o.preVote,
      checkQuorum: o.checkQuorum,
      maxSizePerMsg: o.limits.maxSizePerMsgBytes,
      maxInflightMsgs: o.limits.maxInflightMsgs,
      maxUncommittedEntriesSize: o.limits.maxUncommittedBytes,
      maxPendingReadIndex: this.reads.max,
      random: o.random ?? Math.random,
      // Only the leader takes proposals (NotLeaderError tells the caller where to go).
      disableProposalForwarding: true,
    });
    this.confState = this.raw.status().config;
    this.replayConfChanges();
  }

  /** Membership changes the state machine already applied but the core's starting membership lacks. */
  private replayConfChanges(): void {
    const store = this.store!;
    for (let lo = store.firstIndex(); lo <= this.applied; ) {
      // In slices: the entries may be large (Kafka batches) and there may be many.
      const slice = store.entries(lo, this.applied + 1, REPLAY_SLICE_BYTES);
      for (const e of slice) {
        if (e.type === EntryType.ConfChange) this.confState = this.raw!.applyConfChange(decodeConfChange(e.data));
      }
      lo += slice.length;
    }
  }

  private async startTransport(): Promise<void> {
    const o = this.opts;
    const t = new RaftTransport({
      nodeId: this.nodeId,
      clusterId: o.clusterId,
      listenHost: o.listen.host,
      listenPort: o.listen.port,
      peers: o.peers,
      logger: o.logger,
      ...(o.transport !== undefined ? { limits: o.transport } : {}),
      ...(o.random !== undefined ? { random: o.random } : {}),
      snapshotSource: this.snaps!.source,
      snapshotSink: this.snaps!.sink,
    });
    t.onMessage((m) => this.receive(m));
    t.onUnreachable((peer) => {
      this.unreachable.add(peer);
      this.wake();
    });
    t.onSnapshotStatus((peer, ok) => {
      this.snapshotReports.push({ peer, ok });
      this.wake();
    });
    this.transport = t;
    await t.start();
  }

  // ---- Inputs -------------------------------------------------------------------------------------------

  private receive(m: Message): void {
    if (this.state !== 'running') return;
    this.lastHeardTick.set(m.from, this.tickCount);
    if (this.inbox.length >= (this.opts.limits.inboxMessagesMax ?? DEFAULT_INBOX_MESSAGES_MAX)) {
      this.counters.messagesDropped++;
      return;
    }
    this.inbox.push(m);
    this.wake();
  }

  private onTick(): void {
    if (this.state !== 'running') return;
    this.tickCount++;
    // Ticks missed while a pass was busy are not all replayed: a burst of ticks after a long disk write would
    // time out a leader whose heartbeats are waiting in the inbox.
    this.ticksPending = Math.min(this.ticksPending + 1, Math.max(1, Math.floor(this.opts.timing.electionTicks / 2)));
    const now = performance.now();
    const timeoutMs = this.opts.limits.proposalTimeoutMs;
    this.proposals.expire(now, () => new ProposalTimeoutError(timeoutMs));
    this.reads.expire(now, () => new ProposalTimeoutError(timeoutMs, 'read barrier'));
    this.wake();
  }

  private wake(): void {
    const w = this.wakeLoop;
    this.wakeLoop = null;
    w?.();
  }

  private hasInputs(): boolean {
    return this.inbox.length > 0 || this.ticksPending > 0 || this.unreachable.size > 0 || this.snapshotReports.length > 0 ||
      this.transferTo !== undefined || this.built.length > 0 || this.proposals.queuedCount > 0 || this.reads.queuedCount > 0 ||
      (this.snapshotWanted && this.snapshotWrite === undefined);
  }

  private refuse(full: boolean, what: string, max: number, signal: AbortSignal | undefined): Error | undefined {
    if (this.state !== 'running') return new RaftNodeStoppedError(this.state === 'failed' ? 'failed' : `node is ${this.state}`, { cause: this.fatalError });
    if (this.role !== Role.Leader) return new NotLeaderError(this.leaderHint());
    if (signal?.aborted) return abortReason(signal);
    if (full) return new ProposalQueueFullError(what, max);
    return undefined;
  }

  private takeSeq(): number {
    const seq = this.nextSeq;
    // 2^48 ids per start: not reachable in practice; wrapping would only risk a stale match after restarts.
    this.nextSeq = seq >= ENVELOPE_SEQ_MAX ? 1 : seq + 1;
    return seq;
  }

  private leaderHint(): NodeId {
    return this.lead === NONE ? -1 : this.lead;
  }

  // ---- The loop -----------------------------------------------------------------------------------------

  private async runLoop(): Promise<void> {
    let passes = 0;
    try {
      while (this.state === 'running') {
        await this.takeInputs();
        if (this.state !== 'running') break;
        const raw = this.raw!;
        if (raw.hasReady()) {
          await this.handleReady(raw.ready());
          if (++passes % PASSES_PER_YIELD === 0) await new Promise<void>((resolve) => setImmediate(resolve));
          continue;
        }
        if (!this.hasInputs()) await new Promise<void>((resolve) => (this.wakeLoop = resolve));
      }
    } catch (err) {
      this.fail(err);
    }
  }

  private async takeInputs(): Promise<void> {
    const raw = this.raw!;
    const inbox = this.inbox;
    this.inbox = [];
    for (const m of inbox) raw.step(m);
    for (const peer of this.unreachable) raw.reportUnreachable(peer);
    this.unreachable.clear();
    const reports = this.snapshotReports;
    this.snapshotReports = [];
    for (const r of reports) raw.reportSnapshot(r.peer, r.ok);
    for (; this.ticksPending > 0; this.ticksPending--) raw.tick();
    if (this.transferTo !== undefined) raw.transferLeader(this.transferTo);
    this.transferTo = undefined;
    if (this.built.length > 0) await this.recordBuiltSnapshots();
    if (this.snapshotWanted && this.snapshotWrite === undefined) await this.startSnapshot(true);
    if (this.proposals.queuedCount > 0 || this.reads.queuedCount > 0) this.submitQueued();
  }

  /** Proposes queued proposals (up to proposalBatchBytesMax) and asks for queued reads, as the leader. */
  private submitQueued(): void {
    const raw = this.raw!;
    const status = raw.status();
    if (status.softState.role !== Role.Leader) {
      const lead = status.softState.leader;
      const err = new NotLeaderError(lead === NONE ? -1 : lead);
      this.proposals.rejectQueued(err);
      for (const r of this.reads.takeQueued()) settle(r, { error: err });
      return;
    }
    const term = status.hardState.term;
    for (const p of this.proposals.takeQueued(this.opts.limits.proposalBatchBytesMax)) {
      if (p.settled) continue;
      try {
        raw.propose(p.data);
      } catch (err) {
        settle(p, { error: this.droppedError(err, status.leadTransferee) });
        continue;
      }
      this.proposals.markInflight(p, term);
      this.counters.proposalsAccepted++;
    }
    for (const r of this.reads.takeQueued()) {
      if (r.settled) continue;
      if (!raw.readIndex(r.ctx)) {
        // The leader refuses a read only when its own pending-read bound is reached.
        settle(r, { error: new ProposalQueueFullError('read barriers', this.reads.max) });
        continue;
      }
      this.reads.markAsked(r);
    }
  }

  /** What a caller gets when the core refuses a proposal. */
  private droppedError(err: unknown, transferee: NodeId): Error {
    if (!(err instanceof ProposalDroppedError)) throw err;
    if (err.reason === 'leader-transfer') return new NotLeaderError(transferee === NONE ? -1 : transferee, 'leadership is being transferred');
    if (err.reason === 'uncommitted-limit') return err;
    return new NotLeaderError(this.leaderHint());
  }

  private async handleReady(rd: Ready): Promise<void> {
    this.counters.readies++;
    if (rd.softState !== undefined) this.noteSoftState(rd.softState);
    if (rd.hardState !== undefined) {
      this.term = rd.hardState.term;
      this.commit = rd.hardState.commit;
    }
    await this.persist(rd);
    if (this.state !== 'running') return;
    if (rd.snapshot !== undefined) {
      await this.installSnapshot(rd.snapshot.metadata);
      if (this.state !== 'running') return;
    }
    this.publishLeaderInfo();
    for (const m of rd.messages) this.transport!.send(m);
    this.counters.messagesSent += rd.messages.length;
    if (rd.committedEntries.length > 0) {
      await this.applyCommitted(rd.committedEntries);
      if (this.state !== 'running') return;
    }
    for (const rs of rd.readStates) this.reads.readState(bytesKey(rs.requestCtx), rs.index);
    this.raw!.advance(rd);
    this.reads.applied(this.applied);
    if (this.applied - this.snapshotIndex >= this.opts.snapshot.entriesBetweenSnapshots && this.snapshotWrite === undefined) {
      await this.startSnapshot(false);
    }
  }

  /** Leadership lost: what was proposed here may or may not commit; callers retry at the new leader. */
  private noteSoftState(ss: SoftState): void {
    const wasLeader = this.role === Role.Leader;
    this.role = ss.role;
    this.lead = ss.leader;
    if (wasLeader && ss.role !== Role.Leader) {
      const err = new NotLeaderError(this.leaderHint(), `leadership lost (new leader: ${this.leaderHint()})`);
      this.proposals.rejectAll(err);
      this.reads.rejectUnconfirmed(err);
    }
  }

  private publishLeaderInfo(): void {
    const next: LeaderInfo = { leaderId: this.leaderHint(), term: this.term, isLeader: this.role === Role.Leader };
    const prev = this.info;
    if (next.leaderId === prev.leaderId && next.term === prev.term && next.isLeader === prev.isLeader) return;
    this.info = next;
    if (next.leaderId !== prev.leaderId || next.isLeader !== prev.isLeader) this.log.info(next, 'raft leader changed');
    for (const l of this.leaderListeners) {
      try {
        l({ ...next });
      } catch (err) {
        this.log.error({ err }, 'leader change listener threw');
      }
    }
  }

  /**
   * Snapshot metadata, entries and hard state in one LMDB transaction. Durable (awaited) when the Ready says
   * so. A Ready that only moves the commit index is not written now: a lost commit index is recomputed from
   * the quorum, and recover() raises it to what was applied. It rides along with the next durable persist, or
   * is written by itself (not awaited) commitWriteDelayMs later if none comes first.
   */
  private async persist(rd: Ready): Promise<void> {
    const req: PersistRequest = {};
    if (rd.snapshot !== undefined) req.snapshot = rd.snapshot;
    if (rd.entries.length > 0) req.entries = rd.entries;
    if (rd.hardState !== undefined) req.hardState = rd.hardState;
    if (req.snapshot === undefined && req.entries === undefined && req.hardState === undefined) return;
    if (!rd.mustSync) {
      this.deferCommitWrite(req.hardState!);
      return;
    }
    // A Ready's hard state is the whole current one: it supersedes a deferred commit; without one, the
    // deferred commit (same term and vote) goes in this write.
    req.hardState ??= this.deferredHardState;
    this.clearDeferredCommit();
    if (rd.snapshot !== undefined && rd.snapshot.metadata.index > 0) {
      // The data was stored when it was received; the core only ever takes a snapshot it got from the transport.
      if (this.snaps!.get(rd.snapshot.metadata) === undefined) {
        throw new Error(`snapshot at index ${rd.snapshot.metadata.index} term ${rd.snapshot.metadata.term} was taken by the core but its file is missing`);
      }
    }
    this.counters.persists++;
    this.counters.entriesPersisted += rd.entries.length;
    await this.store!.persist(req);
  }

  private deferCommitWrite(hs: HardState): void {
    this.deferredHardState = hs;
    const delayMs = this.opts.timing.commitWriteDelayMs ?? DEFAULT_COMMIT_WRITE_DELAY_MS;
    if (delayMs === 0) {
      this.writeDeferredCommit();
      return;
    }
    if (this.commitWriteTimer !== undefined) return;
    this.commitWriteTimer = setTimeout(() => {
      this.commitWriteTimer = undefined;
      if (this.state === 'running') this.writeDeferredCommit();
    }, delayMs);
    this.commitWriteTimer.unref();
  }

  /**
   * Queues the deferred commit index as a write of its own (not awaited). The store writes calls in order, so
   * a later persist() or createSnapshot() sees it: a snapshot may only be recorded at a persisted commit.
   */
  private writeDeferredCommit(): void {
    const hs = this.deferredHardState;
    this.clearDeferredCommit();
    if (hs === undefined) return;
    this.counters.commitWrites++;
    this.store!.persist({ hardState: hs }).catch((err: unknown) => this.fail(err));
  }

  private clearDeferredCommit(): void {
    this.deferredHardState = undefined;
    if (this.commitWriteTimer !== undefined) clearTimeout(this.commitWriteTimer);
    this.commitWriteTimer = undefined;
  }

  /** The core took a leader's snapshot (now in the log store): load it into the state machine. */
  private async installSnapshot(meta: SnapshotMetadata): Promise<void> {
    this.confState = meta.conf;
    this.snapshotIndex = meta.index;
    if (meta.index === 0) return; // the bootstrap snapshot: membership only, no data
    // A local snapshot still streaming the state machine's data must finish before the state is replaced.
    await this.snapshotWrite;
    const snap = this.snaps!.get(meta)!;
    await this.restoreStateMachine(snap);
    this.applied = meta.index;
    this.counters.snapshotsInstalled++;
  }

  private async restoreStateMachine(snap: LoadedSnapshot): Promise<void> {
    const { index, term } = snap.metadata;
    this.log.info({ index, term, bytes: snap.dataBytes }, 'restoring the state machine from a snapshot');
    await this.sm.restore(index, snap.chunks());
    const applied = this.sm.appliedIndex();
    if (applied !== index) throw new Error(`state machine restored to ${index} reports appliedIndex ${applied}`);
  }

  /**
   * Applies committed entries in one state machine call. No-ops (a new leader's empty entry) and membership
   * changes reach it as entries with empty data, so its appliedIndex follows the log exactly.
   */
  private async applyCommitted(entries: Entry[]): Promise<void> {
    const batch: { index: number; term: number; data: Uint8Array }[] = [];
    const mine: (number | undefined)[] = [];
    for (const e of entries) {
      if (e.index <= this.applied) throw new Error(`entry ${e.index} handed out again (applied ${this.applied})`);
      let data: Uint8Array = EMPTY;
      let seq: number | undefined;
      if (e.type === EntryType.ConfChange) {
        this.applyConfChange(e);
      } else if (e.data.byteLength > 0) {
        const env = decodeEnvelope(e.data);
        data = env.payload;
        if (env.nodeId === this.nodeId && env.incarnation === this.incarnation) seq = env.seq;
      }
      batch.push({ index: e.index, term: e.term, data });
      mine.push(seq);
    }
    const results = await this.sm.apply(batch);
    if (!Array.isArray(results) || results.length !== batch.length) {
      throw new Error(`state machine returned ${Array.isArray(results) ? results.length : 'no'} results for ${batch.length} entries`);
    }
    this.applied = entries[entries.length - 1]!.index;
    this.counters.entriesApplied += entries.length;
    for (let i = 0; i < entries.length; i++) {
      const seq = mine[i];
      if (seq !== undefined && this.proposals.resolve(seq, entries[i]!.term, results[i])) this.counters.proposalsCompleted++;
    }
  }

  private applyConfChange(e: Entry): void {
    const before = new Set(members(this.confState));
    this.confState = this.raw!.applyConfChange(decodeConfChange(e.data));
    const after = new Set(members(this.confState));
    for (const id of before) {
      if (!after.has(id) && id !== this.nodeId) this.transport!.removePeer(id);
    }
    this.log.info({ index: e.index, voters: this.confState.voters, learners: this.confState.learners }, 'membership changed');
  }

  // ---- Snapshots ----------------------------------------------------------------------------------------

  /**
   * Asks the state machine for its state at `applied` (while the loop waits, so nothing is applied meanwhile)
   * and writes it to a snapshot file in the background; the loop records it in the log and compacts later.
   * `rewrite`: also when nothing was applied since the last snapshot (its file is gone and must be remade).
   */
  private async startSnapshot(rewrite: boolean): Promise<void> {
    this.snapshotWanted = false;
    if (this.applied < this.snapshotIndex || (this.applied === this.snapshotIndex && !rewrite) || this.applied === 0) return;
    const { index, chunks } = await this.sm.snapshot();
    if (index !== this.applied) {
      this.log.error({ index, applied: this.applied }, 'state machine snapshot is not at the applied index; skipped');
      return;
    }
    const metadata: SnapshotMetadata = { index, term: this.store!.term(index), conf: this.confState };
    this.snapshotWrite = this.snaps!.writeLocal(metadata, chunks).then(
      () => {
        this.built.push({ metadata });
        this.wake();
      },
      (err: unknown) => this.log.warn({ err, index }, 'writing a snapshot failed; retrying after more entries'),
    ).finally(() => {
      this.snapshotWrite = undefined;
    });
    // Failed or not, the next attempt waits for another entriesBetweenSnapshots entries.
    this.snapshotIndex = index;
  }

  /** Records finished snapshot files in the log store and compacts the log below them. */
  private async recordBuiltSnapshots(): Promise<void> {
    const built = this.built;
    this.built = [];
    const store = this.store!;
    // The snapshot's index was applied, hence committed; the store checks it against its persisted commit.
    this.writeDeferredCommit();
    for (const { metadata } of built) {
      if (metadata.index <= store.snapshot().metadata.index) continue; // a newer one from the leader meanwhile
      await store.createSnapshot(metadata.index, metadata.conf);
      this.counters.snapshotsCreated++;
      const compactTo = metadata.index - this.opts.snapshot.trailingEntriesKept;
      if (compactTo >= store.firstIndex()) await store.compact(compactTo);
      this.log.info({ index: metadata.index, term: metadata.term, compactedTo: Math.max(compactTo, store.firstIndex() - 1) }, 'snapshot recorded');
    }
  }

  // ---- Failure and shutdown -----------------------------------------------------------------------------

  private fail(err: unknown): void {
    observeCommitError(err);
    if (this.state !== 'running') {
      if (this.state === 'stopping') this.log.warn({ err }, 'raft node error while stopping');
      return;
    }
    this.state = 'failed';
    this.fatalError = err;
    this.log.fatal({ err }, 'raft node failed: it stops serving');
    this.halt(new RaftNodeStoppedError('failed', { cause: err }));
    // Peers must stop counting on this node: closing the transport makes it look down, so they elect another.
    void this.transport?.stop();
    for (const l of this.fatalListeners) {
      try {
        l(err);
      } catch (listenerErr) {
        this.log.error({ err: listenerErr }, 'fatal listener threw');
      }
    }
  }

  /** No more ticks or inputs; every caller rejected; the loop exits after its current await. */
  private halt(reason: Error): void {
    if (this.tickTimer !== undefined) clearInterval(this.tickTimer);
    this.tickTimer = undefined;
    if (this.commitWriteTimer !== undefined) clearTimeout(this.commitWriteTimer);
    this.commitWriteTimer = undefined;
    this.proposals.rejectAll(reason);
    this.reads.rejectAll(reason);
    this.inbox = [];
    this.role = Role.Follower;
    this.lead = NONE;
    this.publishLeaderInfo();
    this.wake();
  }

  private async closeResources(): Promise<void> {
    await this.transport?.stop().catch((err: unknown) => this.log.warn({ err }, 'closing the transport failed'));
    await this.store?.close().catch((err: unknown) => this.log.warn({ err }, 'closing the raft log store failed'));
  }
}

/**
 * lmdb-js rejects a failed commit with an error whose `commitError` promise rejects again later; nobody else
 * awaits it, and an unobserved rejection would end the process instead of letting the node stop cleanly.
 */
function observeCommitError(err: unknown): void {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const pending = (e as { commitError?: unknown }).commitError;
    if (pending instanceof Promise) pending.catch(() => {});
  }
}

function members(cs: ConfState): NodeId[] {
  return [...cs.voters, ...cs.learners, ...cs.votersOutgoing, ...cs.learnersNext];
}
