// Where snapshot data comes from when sending, and where it goes when receiving. The transport never needs a
// whole snapshot in memory: a sender reads a SnapshotSource chunk by chunk (awaiting socket backpressure between
// chunks), and a receiver hands each chunk to a SnapshotSink (awaiting it before reading more). The defaults keep
// the data in memory (the core's Snapshot.data); a file-backed snapshot store plugs in its own factories.
import type { Message, NodeId, SnapshotMetadata } from '../core/types.ts';

/** The data of one outgoing snapshot. */
export interface SnapshotSource {
  /** Total data bytes, known before the first chunk (announced to the receiver, which checks its limit). */
  readonly bytes: number;
  /**
   * The data in order, in chunks of any size (the transport cuts them to snapshotChunkBytes). A yielded chunk
   * must not be modified afterwards: the socket may still hold it. Called at most once per source.
   */
  chunks(): AsyncIterable<Uint8Array>;
  /** Called once when the send ends, however it ended (close a file). */
  close?(): void | Promise<void>;
}

/** Builds the source for a Snap message the driver sends; the default reads message.snapshot.data. */
export type SnapshotSourceFactory = (message: Message) => SnapshotSource;

/** What a receiver knows before the first data byte. */
export interface SnapshotReceiveInfo {
  from: NodeId;
  metadata: SnapshotMetadata;
  /** Total data bytes announced by the sender (already checked against snapshotBytesMax). */
  bytes: number;
}

/** Receives the data of one incoming snapshot. */
export interface SnapshotSink {
  /**
   * The next chunk, in order. No further chunk is read from the socket until a returned promise settles; a
   * rejection fails the receive. The chunk is not reused by the transport: the sink may keep it.
   */
  write(chunk: Buffer): void | Promise<void>;
  /**
   * Every byte arrived. Returns what the delivered message carries as snapshot.data: the bytes themselves for
   * the memory sink; a store that kept the data elsewhere may return an empty array.
   */
  finish(): Uint8Array | Promise<Uint8Array>;
  /** The receive failed (bad stream, timeout, shutdown): discard what was written. Never throws. */
  abort(reason: Error): void | Promise<void>;
}

export type SnapshotSinkFactory = (info: SnapshotReceiveInfo) => SnapshotSink;

/** The default source: the in-memory data of the Snap message. */
export function memorySnapshotSource(message: Message): SnapshotSource {
  const data = message.snapshot?.data ?? new Uint8Array(0);
  return {
    bytes: data.byteLength,
    async *chunks() {
      if (data.byteLength > 0) yield data;
    },
  };
}

/** The default sink: one buffer of the announced size, filled in place (no concatenation at the end). */
export class MemorySnapshotSink implements SnapshotSink {
  private buf: Buffer | null;
  private filled = 0;

  constructor(info: SnapshotReceiveInfo) {
    this.buf = Buffer.allocUnsafe(info.bytes);
  }

  write(chunk: Buffer): void {
    const buf = this.buf;
    if (buf === null) throw new Error('snapshot sink already finished or aborted');
    if (this.filled + chunk.length > buf.length) throw new Error('snapshot data exceeds its announced size');
    chunk.copy(buf, this.filled);
    this.filled += chunk.length;
  }

  finish(): Uint8Array {
    const buf = this.buf;
    if (buf === null || this.filled !== buf.length) throw new Error(`snapshot sink holds ${this.filled} of ${buf?.length ?? 0} bytes`);
    this.buf = null;
    return buf;
  }

  abort(): void {
    this.buf = null;
  }
}

export const memorySnapshotSink: SnapshotSinkFactory = (info) => new MemorySnapshotSink(info);

/** Cuts a stream of chunks of any size into pieces of at most `pieceBytes` (views, no copy). */
export async function* cutChunks(chunks: AsyncIterable<Uint8Array>, pieceBytes: number): AsyncGenerator<Uint8Array> {
  for await (const chunk of chunks) {
    for (let at = 0; at < chunk.byteLength; at += pieceBytes) {
      yield chunk.subarray(at, Math.min(chunk.byteLength, at + pieceBytes));
    }
  }
}
