// The driver's view of the snapshot files: it connects the SnapshotStore (storage/snapshot-store.ts) with the
// transport (which streams a snapshot to a follower, or from the leader, chunk by chunk) and with the node.
//
// - Sending: the transport asks synchronously for a Snap message's data (SnapshotSourceFactory), so every
//   snapshot the node may send is loaded (header read, data CRC verified) once when it is written, received
//   or found at start, and kept here by file name. The Snap message itself carries only the metadata.
// - Receiving: the transport announces the metadata and the size but not the file's CRC, so a receive is
//   streamed into SnapshotStore.write() (the same atomic temp-file/fsync/rename path as a local snapshot; the
//   transport's frames carry their own CRC). The message then reaches the core with empty data; when the
//   core accepts it (Ready.snapshot), the node finds the file here by term and index.
import fs from 'node:fs';
import type { Logger } from 'pino';
import type { Message, SnapshotMetadata } from './core/types.ts';
import { snapshotFileName } from './storage/snapshot-store.ts';
import type { LoadedSnapshot, SnapshotInfo, SnapshotStore } from './storage/snapshot-store.ts';
import type { SnapshotReceiveInfo, SnapshotSink, SnapshotSource } from './transport/snapshot.ts';

const EMPTY = new Uint8Array(0);

export class NodeSnapshots {
  /** Verified snapshots on disk, by file name. */
  private readonly loaded = new Map<string, LoadedSnapshot>();
  /** Called when the core wants to send a snapshot whose file is gone (the node makes a fresh one). */
  onMissing: (metadata: SnapshotMetadata) => void = () => {};

  constructor(
    readonly store: SnapshotStore,
    private readonly log: Logger,
  ) {}

  /** The loaded snapshot of `metadata`, if its file is known and verified. */
  get(metadata: Pick<SnapshotMetadata, 'term' | 'index'>): LoadedSnapshot | undefined {
    return this.loaded.get(snapshotFileName(metadata.term, metadata.index));
  }

  /** The newest snapshot on disk that verifies (corrupt ones are set aside by the store), loaded. */
  async loadLatest(): Promise<LoadedSnapshot | undefined> {
    const latest = await this.store.loadLatest();
    if (latest !== undefined) this.loaded.set(latest.info.name, latest);
    return latest;
  }

  /** Writes a snapshot the state machine made (fsync, rename) and keeps it ready to send. */
  async writeLocal(metadata: SnapshotMetadata, chunks: AsyncIterable<Uint8Array>): Promise<LoadedSnapshot> {
    return this.remember(await this.store.write(metadata, chunks));
  }

  /** Transport SnapshotSourceFactory. The bootstrap snapshot (index 0) has no data. */
  readonly source = (message: Message): SnapshotSource => {
    const meta = message.snapshot?.metadata;
    if (meta === undefined || meta.index === 0) return { bytes: 0, chunks: emptyChunks };
    let snap = this.get(meta);
    // Retention or an operator may have removed the file since it was loaded (one stat per snapshot sent).
    if (snap !== undefined && !fs.existsSync(snap.info.path)) {
      this.loaded.delete(snap.info.name);
      snap = undefined;
    }
    if (snap === undefined) {
      this.onMissing(meta);
      throw new Error(`snapshot at index ${meta.index} term ${meta.term} is not on disk (removed by retention?)`);
    }
    return { bytes: snap.dataBytes, chunks: () => snap.chunks() };
  };

  /** Transport SnapshotSinkFactory: streams into the store; the delivered message carries empty data. */
  readonly sink = (info: SnapshotReceiveInfo): SnapshotSink =>
    // The bootstrap snapshot (index 0) is only a membership: nothing to store.
    info.metadata.index === 0 ? { write: () => {}, finish: () => EMPTY, abort: () => {} } : new StoreSink(this, info);

  /** @internal Load a file just installed and forget the ones retention removed. */
  async remember(info: SnapshotInfo): Promise<LoadedSnapshot> {
    const snap = await this.store.load(info);
    this.loaded.set(info.name, snap);
    const onDisk = new Set((await this.store.list()).map((s) => s.name));
    for (const name of this.loaded.keys()) if (!onDisk.has(name)) this.loaded.delete(name);
    return snap;
  }

  /** @internal */
  get logger(): Logger {
    return this.log;
  }
}

async function* emptyChunks(): AsyncGenerator<Uint8Array> {}

interface Pushed {
  chunk: Uint8Array;
  taken: () => void;
}

/**
 * Hands the transport's chunks to SnapshotStore.write() one at a time: write(chunk) settles once the store
 * took the chunk (backpressure reaches the socket), or rejects when the store failed.
 */
class StoreSink implements SnapshotSink {
  private readonly items: Pushed[] = [];
  private ended = false;
  private error: Error | undefined;
  private wakeConsumer: (() => void) | null = null;
  private readonly writing: Promise<SnapshotInfo>;
  private readonly failed: Promise<never>;

  constructor(
    private readonly owner: NodeSnapshots,
    private readonly info: SnapshotReceiveInfo,
  ) {
    this.writing = owner.store.write(info.metadata, this.consume());
    this.failed = this.writing.then(
      () => new Promise<never>(() => {}),
      (err: unknown) => Promise.reject(err instanceof Error ? err : new Error(String(err))),
    );
    // Observed here so an early failure is never an unhandled rejection; callers see it through write/finish.
    this.failed.catch(() => {});
  }

  write(chunk: Buffer): Promise<void> {
    if (this.ended || this.error !== undefined) return Promise.reject(new Error('snapshot sink is closed'));
    const taken = new Promise<void>((resolve) => {
      this.items.push({ chunk, taken: resolve });
      this.wake();
    });
    return Promise.race([taken, this.failed]);
  }

  async finish(): Promise<Uint8Array> {
    this.ended = true;
    this.wake();
    const info = await this.writing;
    await this.owner.remember(info);
    this.owner.logger.info({ from: this.info.from, index: info.index, term: info.term, bytes: this.info.bytes }, 'raft snapshot received and stored');
    return EMPTY;
  }

  async abort(reason: Error): Promise<void> {
    this.error = reason;
    this.wake();
    await this.writing.catch(() => {});
  }

  private wake(): void {
    const w = this.wakeConsumer;
    this.wakeConsumer = null;
    w?.();
  }

  private async *consume(): AsyncGenerator<Uint8Array> {
    for (;;) {
      while (this.items.length === 0) {
        if (this.error !== undefined) throw this.error;
        if (this.ended) return;
        await new Promise<void>((resolve) => (this.wakeConsumer = resolve));
      }
      if (this.error !== undefined) throw this.error;
      const item = this.items.shift()!;
      item.taken();
      yield item.chunk;
    }
  }
}
