// The byte format of a state machine snapshot: a sequence of files (the LMDB copy and every partition's
// segment files), streamed so that neither side ever holds a whole snapshot in memory.
//
//   header : magic "TKSS" | version u16 | index int64 | fileCount u32 | crc32c u32 (of the bytes before it)
//   file   : nameLength u16 | name (UTF-8, relative path) | size int64 | size bytes | crc32c u32 (of the bytes)
//   trailer: magic "TKSE" | fileCount u32
//
// The reader checks every CRC and the trailer; a stream that is cut short, reordered or altered is refused
// (restore then fails and the old state stays). Names are checked by the caller before anything is written.
import fs from 'node:fs/promises';
import { crc32c } from '@node-rs/crc32';

const HEADER_MAGIC = 'TKSS';
const TRAILER_MAGIC = 'TKSE';
export const SNAPSHOT_FORMAT_VERSION = 1;
const HEADER_BYTES = 4 + 2 + 8 + 4 + 4;
const TRAILER_BYTES = 4 + 4;
/** Longest file name inside a snapshot (bytes): a topic name (249) and a segment file name fit with room. */
const NAME_BYTES_MAX = 1024;
/** Read size for file bodies (bytes). */
export const SNAPSHOT_READ_CHUNK_BYTES = 1024 * 1024;

export class SnapshotFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SnapshotFormatError';
  }
}

export interface SnapshotFileSource {
  /** Relative name inside the snapshot, '/'-separated. */
  name: string;
  /** Where to read it. */
  path: string;
  /** How many bytes to send: a file may grow after the snapshot was taken (an active segment). */
  bytes: number;
}

/** Streams the header, every file (exactly `bytes` of each) and the trailer. */
export async function* writeSnapshotStream(index: number, files: readonly SnapshotFileSource[]): AsyncGenerator<Uint8Array> {
  const header = Buffer.alloc(HEADER_BYTES);
  header.write(HEADER_MAGIC, 0, 'latin1');
  header.writeUInt16BE(SNAPSHOT_FORMAT_VERSION, 4);
  header.writeBigInt64BE(BigInt(index), 6);
  header.writeUInt32BE(files.length, 14);
  header.writeUInt32BE(crc32c(header.subarray(0, 18)), 18);
  yield header;
  for (const file of files) yield* fileRecord(file);
  const trailer = Buffer.alloc(TRAILER_BYTES);
  trailer.write(TRAILER_MAGIC, 0, 'latin1');
  trailer.writeUInt32BE(files.length, 4);
  yield trailer;
}

async function* fileRecord(file: SnapshotFileSource): AsyncGenerator<Uint8Array> {
  const name = Buffer.from(file.name, 'utf8');
  if (name.length > NAME_BYTES_MAX) throw new RangeError(`snapshot file name too long: ${file.name}`);
  const head = Buffer.alloc(2 + name.length + 8);
  head.writeUInt16BE(name.length, 0);
  name.copy(head, 2);
  head.writeBigInt64BE(BigInt(file.bytes), 2 + name.length);
  yield head;
  let crc = 0;
  const handle = await fs.open(file.path, 'r');
  try {
    for (let at = 0; at < file.bytes; ) {
      const chunk = Buffer.allocUnsafe(Math.min(SNAPSHOT_READ_CHUNK_BYTES, file.bytes - at));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, at);
      if (bytesRead !== chunk.length) throw new Error(`${file.path} is shorter than the ${file.bytes} bytes of the snapshot`);
      crc = crc32c(chunk, crc);
      at += bytesRead;
      yield chunk;
    }
  } finally {
    await handle.close();
  }
  const tail = Buffer.alloc(4);
  tail.writeUInt32BE(crc, 0);
  yield tail;
}

export interface SnapshotFileSink {
  write(chunk: Buffer): Promise<void>;
  /** All bytes arrived and their CRC matched. */
  finish(): Promise<void>;
}

export interface SnapshotReadHandlers {
  /** Called once with the header; throw to refuse the snapshot. */
  header(info: { index: number; fileCount: number }): void;
  /** A sink for the next file; throw to refuse its name. */
  file(name: string, bytes: number): Promise<SnapshotFileSink>;
}

/** Reads a whole stream into the handlers; throws SnapshotFormatError for anything malformed. */
export async function readSnapshotStream(chunks: AsyncIterable<Uint8Array>, handlers: SnapshotReadHandlers): Promise<void> {
  const input = new ChunkReader(chunks);
  const header = await input.take(HEADER_BYTES, 'header');
  if (header.toString('latin1', 0, 4) !== HEADER_MAGIC) throw new SnapshotFormatError('not a state machine snapshot (bad magic)');
  if (header.readUInt32BE(18) !== crc32c(header.subarray(0, 18))) throw new SnapshotFormatError('snapshot header CRC mismatch');
  const version = header.readUInt16BE(4);
  if (version !== SNAPSHOT_FORMAT_VERSION) throw new SnapshotFormatError(`unknown snapshot format version ${version}`);
  const index = safeNumber(header.readBigInt64BE(6), 'snapshot index');
  const fileCount = header.readUInt32BE(14);
  handlers.header({ index, fileCount });
  for (let i = 0; i < fileCount; i++) await readFile(input, handlers);
  const trailer = await input.take(TRAILER_BYTES, 'trailer');
  if (trailer.toString('latin1', 0, 4) !== TRAILER_MAGIC || trailer.readUInt32BE(4) !== fileCount) {
    throw new SnapshotFormatError('snapshot trailer missing or wrong');
  }
  if (!(await input.atEnd())) throw new SnapshotFormatError('bytes after the snapshot trailer');
}

async function readFile(input: ChunkReader, handlers: SnapshotReadHandlers): Promise<void> {
  const nameLength = (await input.take(2, 'file name length')).readUInt16BE(0);
  if (nameLength === 0 || nameLength > NAME_BYTES_MAX) throw new SnapshotFormatError(`file name of ${nameLength} bytes`);
  const name = (await input.take(nameLength, 'file name')).toString('utf8');
  const bytes = safeNumber((await input.take(8, 'file size')).readBigInt64BE(0), 'file size');
  if (bytes < 0) throw new SnapshotFormatError(`negative size of ${name}`);
  const sink = await handlers.file(name, bytes);
  let crc = 0;
  await input.forEach(bytes, async (chunk) => {
    crc = crc32c(chunk, crc);
    await sink.write(chunk);
  });
  if ((await input.take(4, 'file CRC')).readUInt32BE(0) !== crc) throw new SnapshotFormatError(`CRC mismatch in ${name}`);
  await sink.finish();
}

function safeNumber(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw new SnapshotFormatError(`${what} ${v} out of range`);
  return Number(v);
}

/** Exact-size reads over an async iterable of chunks of any size. */
class ChunkReader {
  private readonly it: AsyncIterator<Uint8Array>;
  private buf: Buffer = Buffer.alloc(0);
  private done = false;

  constructor(chunks: AsyncIterable<Uint8Array>) {
    this.it = chunks[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const next = await this.it.next();
    if (next.done) {
      this.done = true;
      return false;
    }
    const chunk = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    return true;
  }

  /** Exactly n bytes (small reads: headers). */
  async take(n: number, what: string): Promise<Buffer> {
    while (this.buf.length < n) {
      if (!(await this.fill())) throw new SnapshotFormatError(`snapshot cut short in the ${what}`);
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Hands exactly n bytes to fn in the pieces they arrive in (file bodies, never gathered in memory). */
  async forEach(n: number, fn: (chunk: Buffer) => Promise<void>): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.fill())) throw new SnapshotFormatError('snapshot cut short in a file');
      const piece = this.buf.subarray(0, Math.min(left, this.buf.length));
      this.buf = this.buf.subarray(piece.length);
      left -= piece.length;
      await fn(piece);
    }
  }

  async atEnd(): Promise<boolean> {
    while (this.buf.length === 0) {
      if (!(await this.fill())) return true;
    }
    return false;
  }
}
