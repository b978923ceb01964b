// State-machine snapshots as files: snapshot-<term>-<index>.snap in one directory (both numbers zero-padded
// to 20 digits, so names sort like the snapshots).
//
// File layout (big-endian):
//   0   8  magic "TKNRSNAP"
//   8   2  format version (1)
//   10  2  flags (0; reserved)
//   12  4  header bytes (this fixed part, the ConfState, and the trailing header CRC)
//   16  8  index          24  8  term
//   32  8  data bytes     40  4  data crc32c
//   44  .. ConfState (codec.ts)
//   end-4  crc32c of the header bytes before it
//   then the data (the state machine's snapshot bytes).
//
// Installing is atomic: the bytes go to a temp file (<final>.<random>.tmp) with a placeholder header, streamed
// through a bounded buffer; then the real header (length and CRC are only known at the end) is written at
// offset 0, the file is fsynced, renamed to its final name, and the directory fsynced. A crash leaves either
// no file or a complete one; temp files left over are removed at open. The same path serves snapshots made
// locally (write) and snapshots streamed from the leader in chunks (begin -> write -> finish | abort).
//
// Loading verifies everything (magic, version, header CRC, name vs header, file size, data CRC). A file that
// fails is renamed to <final>.corrupt (kept for inspection, out of the listing and of retention) when
// loadLatest() falls back to the previous snapshot.

import { crc32c } from '@node-rs/crc32';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { SnapshotMetadata } from '../core/types.ts';
import { PayloadReader, confStateBytes, hex32, readConfState, readU64, writeConfState, writeU64 } from './codec.ts';
import { SnapshotCorruptError, StorageLimitError } from './errors.ts';
import { ensureDir, fsyncDir, unlinkIfExists } from './fs-util.ts';

export interface SnapshotStoreSettings {
  /** Snapshots kept (count, at least 1): after an install, all but the newest this many are deleted. */
  snapshotsRetained: number;
  /** Bytes per read when streaming a snapshot out, and size of the write buffer that coalesces small chunks. */
  snapshotChunkBytes: number;
  /** Largest snapshot data accepted (bytes); a write or receive going beyond it fails. */
  snapshotBytesMax: number;
  /** Largest data LoadedSnapshot.readAll() returns in one buffer (bytes); stream bigger ones with chunks(). */
  snapshotInMemoryBytesMax: number;
  /** Snapshot receives in progress at once (count, at least 1); each holds a temp file. */
  snapshotReceivesMax: number;
}

export const DEFAULT_SNAPSHOT_STORE_SETTINGS: Readonly<SnapshotStoreSettings> = {
  snapshotsRetained: 2,
  snapshotChunkBytes: 1024 * 1024,
  snapshotBytesMax: 64 * 1024 * 1024 * 1024,
  snapshotInMemoryBytesMax: 256 * 1024 * 1024,
  snapshotReceivesMax: 2,
};

export interface SnapshotInfo {
  index: number;
  term: number;
  /** File name inside the store's directory. */
  name: string;
  path: string;
}

/** What a leader announces before streaming a snapshot (from its file header). */
export interface SnapshotOffer {
  metadata: SnapshotMetadata;
  dataBytes: number;
  dataCrc32c: number;
}

/** A verified snapshot file. */
export interface LoadedSnapshot extends SnapshotOffer {
  info: SnapshotInfo;
  /**
   * The data in chunks of at most snapshotChunkBytes, read from the file (which the store may delete
   * meanwhile: the open handle keeps it readable). Verifies the CRC again at the end and throws
   * SnapshotCorruptError if the file changed since it was loaded.
   */
  chunks(): AsyncIterable<Buffer>;
  /** The whole data in one buffer; refused above snapshotInMemoryBytesMax. */
  readAll(): Promise<Buffer>;
}

/** The receiving end of a snapshot streamed in chunks. */
export interface SnapshotReceiver {
  readonly offer: SnapshotOffer;
  readonly bytesReceived: number;
  /**
   * Appends a chunk. `offset`, when given, must equal the bytes received so far (a lost, repeated or
   * reordered chunk fails the receive). The chunk may be reused by the caller once the promise resolves.
   */
  write(chunk: Uint8Array, offset?: number): Promise<void>;
  /** Verifies the total length and CRC against the offer, then installs the snapshot atomically. */
  finish(): Promise<SnapshotInfo>;
  /** Drops the receive and its temp file. */
  abort(): Promise<void>;
}

const MAGIC = Buffer.from('TKNRSNAP', 'latin1');
const FORMAT_VERSION = 1;
const FIXED_HEADER_BYTES = 44;
/** Format limit on the header (ConfState of ~130k node ids): a larger value is corruption. */
const HEADER_BYTES_MAX = 1024 * 1024;
const NAME_RE = /^snapshot-(\d{20})-(\d{20})\.snap$/;
const TEMP_SUFFIX = '.tmp';
const CORRUPT_SUFFIX = '.corrupt';

export function snapshotFileName(term: number, index: number): string {
  return `snapshot-${String(term).padStart(20, '0')}-${String(index).padStart(20, '0')}.snap`;
}

export class SnapshotStore {
  readonly dir: string;
  private readonly settings: SnapshotStoreSettings;
  private readonly logger: Logger | undefined;
  private receives = 0;

  private constructor(dir: string, settings: SnapshotStoreSettings, logger: Logger | undefined) {
    this.dir = dir;
    this.settings = settings;
    this.logger = logger;
  }

  /** Opens (creating) the snapshot directory and removes the temp files an interrupted install left. */
  static async open(dir: string, settings: Partial<SnapshotStoreSettings> = {}, logger?: Logger): Promise<SnapshotStore> {
    const s = { ...DEFAULT_SNAPSHOT_STORE_SETTINGS, ...settings };
    validateSettings(s);
    const resolved = path.resolve(dir);
    await ensureDir(resolved);
    const temps = (await fs.readdir(resolved)).filter((n) => n.startsWith('snapshot-') && n.endsWith(TEMP_SUFFIX));
    for (const name of temps) await unlinkIfExists(path.join(resolved, name));
    if (temps.length > 0) {
      await fsyncDir(resolved);
      logger?.info({ dir: resolved, removed: temps }, 'removed unfinished snapshot files');
    }
    return new SnapshotStore(resolved, s, logger);
  }

  /** Snapshots on disk, oldest first (by index, then term). Corrupt and temp files are not listed. */
  async list(): Promise<SnapshotInfo[]> {
    const out: SnapshotInfo[] = [];
    for (const name of await fs.readdir(this.dir)) {
      const m = NAME_RE.exec(name);
      if (!m) continue;
      out.push({ term: Number(m[1]), index: Number(m[2]), name, path: path.join(this.dir, name) });
    }
    return out.sort((a, b) => a.index - b.index || a.term - b.term);
  }

  async latest(): Promise<SnapshotInfo | undefined> {
    const all = await this.list();
    return all[all.length - 1];
  }

  /**
   * Writes a snapshot made locally: `data` is the state machine's bytes, whole or as (async) chunks; it is
   * streamed to disk through a buffer of snapshotChunkBytes, never held whole. Resolves once installed.
   */
  async write(
    metadata: SnapshotMetadata,
    data: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  ): Promise<SnapshotInfo> {
    const w = await SnapshotFileWriter.create(this, metadata, undefined);
    try {
      if (data instanceof Uint8Array) await w.write(data);
      else for await (const chunk of data) await w.write(chunk);
      return await w.finish();
    } catch (err) {
      await w.abort();
      throw err;
    }
  }

  /** Starts receiving a snapshot announced by the leader; refused beyond snapshotReceivesMax or snapshotBytesMax. */
  async begin(offer: SnapshotOffer): Promise<SnapshotReceiver> {
    if (this.receives >= this.settings.snapshotReceivesMax) {
      throw new StorageLimitError(`${this.receives} snapshot receives in progress (snapshotReceivesMax)`);
    }
    this.receives++;
    try {
      const writer = await SnapshotFileWriter.create(this, offer.metadata, offer);
      return new Receiver(offer, writer, () => this.receives--);
    } catch (err) {
      this.receives--;
      throw err;
    }
  }

  /** Reads and verifies a snapshot file; throws SnapshotCorruptError (leaving the file alone) if it fails. */
  async load(info: SnapshotInfo): Promise<LoadedSnapshot> {
    const handle = await fs.open(info.path, 'r');
    try {
      const header = await readHeader(handle, info);
      const crc = await dataCrc(handle, info.path, header, this.settings.snapshotChunkBytes);
      if (crc !== header.dataCrc32c) {
        throw new SnapshotCorruptError(info.path, `data crc32c ${hex32(crc)}, header says ${hex32(header.dataCrc32c)}`);
      }
      return this.loaded(info, header);
    } finally {
      await handle.close();
    }
  }

  /**
   * The newest snapshot that verifies, optionally at most at index `indexMax`. A newer one that fails is
   * renamed to <name>.corrupt (kept for inspection), logged, and the previous one is tried.
   */
  async loadLatest(options: { indexMax?: number } = {}): Promise<LoadedSnapshot | undefined> {
    const indexMax = options.indexMax ?? Number.MAX_SAFE_INTEGER;
    const candidates = (await this.list()).filter((s) => s.index <= indexMax).reverse();
    for (const info of candidates) {
      try {
        return await this.load(info);
      } catch (err) {
        if (!(err instanceof SnapshotCorruptError)) throw err;
        await this.quarantine(info, err);
      }
    }
    return undefined;
  }

  // ---- Internals shared with the writer ----------------------------------------------------------------

  /** @internal */
  get limits(): SnapshotStoreSettings {
    return this.settings;
  }

  /** @internal Renames the finished temp file into place and applies retention. */
  async install(tempPath: string, metadata: SnapshotMetadata): Promise<SnapshotInfo> {
    const name = snapshotFileName(metadata.term, metadata.index);
    const info: SnapshotInfo = { index: metadata.index, term: metadata.term, name, path: path.join(this.dir, name) };
    await fs.rename(tempPath, info.path);
    await fsyncDir(this.dir);
    await this.retain(info);
    return info;
  }

  private async retain(installed: SnapshotInfo): Promise<void> {
    const all = await this.list();
    const doomed = all.slice(0, Math.max(0, all.length - this.settings.snapshotsRetained));
    const removed = doomed.filter((s) => s.name !== installed.name);
    for (const s of removed) await unlinkIfExists(s.path);
    if (removed.length > 0) await fsyncDir(this.dir);
  }

  private async quarantine(info: SnapshotInfo, err: SnapshotCorruptError): Promise<void> {
    const target = info.path + CORRUPT_SUFFIX;
    await fs.rename(info.path, target);
    await fsyncDir(this.dir);
    this.logger?.error({ err, snapshot: info.name, keptAs: target }, 'snapshot is corrupt; falling back to the previous one');
  }

  private loaded(info: SnapshotInfo, header: FileHeader): LoadedSnapshot {
    const { headerBytes, dataBytes, dataCrc32c } = header;
    const chunkBytes = this.settings.snapshotChunkBytes;
    const inMemoryMax = this.settings.snapshotInMemoryBytesMax;
    const chunks = (): AsyncIterable<Buffer> => readChunks(info.path, headerBytes, dataBytes, dataCrc32c, chunkBytes);
    return {
      info,
      metadata: header.metadata,
      dataBytes,
      dataCrc32c,
      chunks,
      async readAll(): Promise<Buffer> {
        if (dataBytes > inMemoryMax) {
          throw new StorageLimitError(`snapshot ${info.name} has ${dataBytes} bytes, above snapshotInMemoryBytesMax ${inMemoryMax}`);
        }
        const out = Buffer.allocUnsafe(dataBytes);
        let at = 0;
        for await (const c of chunks()) at += c.copy(out, at);
        return out;
      },
    };
  }
}

interface FileHeader extends SnapshotOffer {
  headerBytes: number;
}

function encodeHeader(metadata: SnapshotMetadata, dataBytes: number, dataCrc32c: number): Buffer {
  const headerBytes = FIXED_HEADER_BYTES + confStateBytes(metadata.conf) + 4;
  if (headerBytes > HEADER_BYTES_MAX) throw new StorageLimitError(`snapshot header of ${headerBytes} bytes is too large`);
  const buf = Buffer.alloc(headerBytes);
  MAGIC.copy(buf, 0);
  buf.writeUInt16BE(FORMAT_VERSION, 8);
  buf.writeUInt16BE(0, 10);
  buf.writeUInt32BE(headerBytes, 12);
  writeU64(buf, metadata.index, 16);
  writeU64(buf, metadata.term, 24);
  writeU64(buf, dataBytes, 32);
  buf.writeUInt32BE(dataCrc32c, 40);
  writeConfState(buf, metadata.conf, FIXED_HEADER_BYTES);
  buf.writeUInt32BE(crc32c(buf.subarray(0, headerBytes - 4)), headerBytes - 4);
  return buf;
}

async function readHeader(handle: FileHandle, info: SnapshotInfo): Promise<FileHeader> {
  const bad = (why: string): SnapshotCorruptError => new SnapshotCorruptError(info.path, why);
  const size = (await handle.stat()).size;
  const fixed = await readExactly(handle, 0, Math.min(FIXED_HEADER_BYTES, size));
  if (fixed.length < FIXED_HEADER_BYTES) throw bad(`file of ${size} bytes is shorter than a header`);
  if (!fixed.subarray(0, 8).equals(MAGIC)) throw bad('bad magic');
  const version = fixed.readUInt16BE(8);
  if (version !== FORMAT_VERSION) throw bad(`format version ${version}, this build reads ${FORMAT_VERSION}`);
  const headerBytes = fixed.readUInt32BE(12);
  if (headerBytes < FIXED_HEADER_BYTES + 4 || headerBytes > Math.min(HEADER_BYTES_MAX, size)) {
    throw bad(`header length ${headerBytes} is out of range`);
  }
  const header = await readExactly(handle, 0, headerBytes);
  const stored = header.readUInt32BE(headerBytes - 4);
  const computed = crc32c(header.subarray(0, headerBytes - 4));
  if (stored !== computed) throw bad(`header crc32c ${hex32(stored)} stored, ${hex32(computed)} computed`);
  const index = readU64(header, 16);
  const term = readU64(header, 24);
  const dataBytes = readU64(header, 32);
  if (index === undefined || term === undefined || dataBytes === undefined) throw bad('header number out of range');
  if (index !== info.index || term !== info.term) throw bad(`header says term ${term} index ${index}`);
  if (size !== headerBytes + dataBytes) throw bad(`file has ${size} bytes, header says ${headerBytes + dataBytes}`);
  const r = new PayloadReader(header.subarray(FIXED_HEADER_BYTES, headerBytes - 4), `snapshot ${info.path} header`);
  const conf = readConfState(r);
  r.end();
  return { metadata: { index, term, conf }, dataBytes, dataCrc32c: header.readUInt32BE(40), headerBytes };
}

async function readExactly(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buf, done, length - done, position + done);
    if (bytesRead === 0) return buf.subarray(0, done);
    done += bytesRead;
  }
  return buf;
}

/** crc32c of the data region, read in chunks (one buffer of chunkBytes at a time). */
async function dataCrc(handle: FileHandle, file: string, header: FileHeader, chunkBytes: number): Promise<number> {
  let crc = 0;
  for (let at = 0; at < header.dataBytes; ) {
    const chunk = await readExactly(handle, header.headerBytes + at, Math.min(chunkBytes, header.dataBytes - at));
    if (chunk.length === 0) throw new SnapshotCorruptError(file, `data ends at ${at} of ${header.dataBytes} bytes`);
    crc = crc32c(chunk, crc);
    at += chunk.length;
  }
  return crc;
}

async function* readChunks(
  file: string,
  start: number,
  dataBytes: number,
  dataCrc32c: number,
  chunkBytes: number,
): AsyncGenerator<Buffer> {
  const handle = await fs.open(file, 'r');
  try {
    let crc = 0;
    for (let at = 0; at < dataBytes; ) {
      const chunk = await readExactly(handle, start + at, Math.min(chunkBytes, dataBytes - at));
      if (chunk.length === 0) throw new SnapshotCorruptError(file, `data ends at ${at} of ${dataBytes} bytes`);
      crc = crc32c(chunk, crc);
      at += chunk.length;
      // The last chunk is only handed out once the whole data verified.
      if (at === dataBytes && crc !== dataCrc32c) {
        throw new SnapshotCorruptError(file, `data changed since it was loaded (crc32c ${hex32(crc)})`);
      }
      yield chunk;
    }
  } finally {
    await handle.close();
  }
}

/**
 * Writes one snapshot file: a placeholder header, then the data through a buffer of snapshotChunkBytes, then
 * the real header; finish() syncs and installs. Calls are serialized; after a failure every call rejects and
 * the temp file is gone.
 */
class SnapshotFileWriter {
  private buffer: Buffer;
  private buffered = 0;
  /** File position of the next unbuffered byte. */
  private position: number;
  private crc = 0;
  received = 0;
  private done = false;

  private constructor(
    private readonly store: SnapshotStore,
    private readonly metadata: SnapshotMetadata,
    private readonly expected: SnapshotOffer | undefined,
    private readonly handle: FileHandle,
    readonly tempPath: string,
    private readonly headerBytes: number,
  ) {
    this.buffer = Buffer.allocUnsafe(store.limits.snapshotChunkBytes);
    this.position = headerBytes;
  }

  static async create(store: SnapshotStore, metadata: SnapshotMetadata, expected: SnapshotOffer | undefined): Promise<SnapshotFileWriter> {
    const max = store.limits.snapshotBytesMax;
    if (expected !== undefined && expected.dataBytes > max) {
      throw new StorageLimitError(`snapshot of ${expected.dataBytes} bytes exceeds snapshotBytesMax ${max}`);
    }
    const placeholder = encodeHeader(metadata, 0, 0);
    const name = snapshotFileName(metadata.term, metadata.index);
    const tempPath = path.join(store.dir, `${name}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`);
    const handle = await fs.open(tempPath, 'wx');
    try {
      await handle.write(placeholder, 0, placeholder.length, 0);
    } catch (err) {
      await handle.close();
      await unlinkIfExists(tempPath);
      throw err;
    }
    return new SnapshotFileWriter(store, metadata, expected, handle, tempPath, placeholder.length);
  }

  async write(chunk: Uint8Array): Promise<void> {
    const total = this.received + chunk.byteLength;
    const max = this.expected?.dataBytes ?? this.store.limits.snapshotBytesMax;
    if (total > max) {
      const why = this.expected ? `more data than the ${max} bytes announced` : `exceeds snapshotBytesMax ${max}`;
      throw this.expected ? new SnapshotCorruptError(this.tempPath, why) : new StorageLimitError(`snapshot ${why}`);
    }
    this.crc = crc32c(chunk, this.crc);
    this.received = total;
    if (this.buffered + chunk.byteLength > this.buffer.length) await this.flush();
    if (chunk.byteLength >= this.buffer.length) {
      await this.writeAt(chunk);
    } else {
      this.buffer.set(chunk, this.buffered);
      this.buffered += chunk.byteLength;
    }
  }

  async finish(): Promise<SnapshotInfo> {
    await this.flush();
    if (this.expected !== undefined) {
      if (this.received !== this.expected.dataBytes) {
        throw new SnapshotCorruptError(this.tempPath, `received ${this.received} of ${this.expected.dataBytes} bytes`);
      }
      if (this.crc !== this.expected.dataCrc32c) {
        throw new SnapshotCorruptError(this.tempPath, `data crc32c ${hex32(this.crc)}, announced ${hex32(this.expected.dataCrc32c)}`);
      }
    }
    const header = encodeHeader(this.metadata, this.received, this.crc);
    if (header.length !== this.headerBytes) throw new Error('snapshot header changed size');
    await this.handle.write(header, 0, header.length, 0);
    await this.handle.sync();
    await this.handle.close();
    this.done = true;
    return this.store.install(this.tempPath, this.metadata);
  }

  /** Closes and removes the temp file; safe to call more than once and after a failure. */
  async abort(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.handle.close().catch(() => {});
    }
    await unlinkIfExists(this.tempPath);
  }

  private async flush(): Promise<void> {
    if (this.buffered === 0) return;
    const n = this.buffered;
    this.buffered = 0;
    await this.writeAt(this.buffer.subarray(0, n));
  }

  private async writeAt(bytes: Uint8Array): Promise<void> {
    let done = 0;
    while (done < bytes.byteLength) {
      const { bytesWritten } = await this.handle.write(bytes, done, bytes.byteLength - done, this.position);
      done += bytesWritten;
      this.position += bytesWritten;
    }
  }
}

class Receiver implements SnapshotReceiver {
  private tail: Promise<unknown> = Promise.resolve();
  private failure: unknown;
  private ended = false;

  constructor(
    readonly offer: SnapshotOffer,
    private readonly writer: SnapshotFileWriter,
    private readonly release: () => void,
  ) {}

  get bytesReceived(): number {
    return this.writer.received;
  }

  write(chunk: Uint8Array, offset?: number): Promise<void> {
    return this.serialize(async () => {
      if (offset !== undefined && offset !== this.writer.received) {
        throw new SnapshotCorruptError(this.writer.tempPath, `chunk at offset ${offset}, expected ${this.writer.received}`);
      }
      await this.writer.write(chunk);
    });
  }

  finish(): Promise<SnapshotInfo> {
    return this.serialize(async () => {
      const info = await this.writer.finish();
      this.end();
      return info;
    });
  }

  abort(): Promise<void> {
    this.failure ??= new Error('snapshot receive aborted');
    return this.tail.then(
      () => this.cleanup(),
      () => this.cleanup(),
    );
  }

  /** Runs `op` after the previous one; the first failure ends the receive and removes the temp file. */
  private serialize<T>(op: () => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.failure !== undefined) throw this.failure;
      if (this.ended) throw new Error('snapshot receive already finished');
      try {
        return await op();
      } catch (err) {
        this.failure = err;
        await this.cleanup();
        throw err;
      }
    };
    const result = this.tail.then(run, run);
    this.tail = result.catch(() => {});
    return result;
  }

  private async cleanup(): Promise<void> {
    await this.writer.abort();
    this.end();
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.release();
  }
}

function validateSettings(s: SnapshotStoreSettings): void {
  const check = (name: keyof SnapshotStoreSettings, min: number): void => {
    const v = s[name];
    if (!Number.isSafeInteger(v) || v < min) {
      throw new RangeError(`snapshot store setting ${name} must be an integer >= ${min}, got ${v}`);
    }
  };
  check('snapshotsRetained', 1);
  check('snapshotChunkBytes', 1);
  check('snapshotBytesMax', 0);
  check('snapshotInMemoryBytesMax', 0);
  check('snapshotReceivesMax', 1);
}
