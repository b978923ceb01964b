// Binary encodings of what the Raft storage keeps on disk: log entries (LMDB values keyed by index), the hard
// state and other small records (LMDB meta values), and the ConfState shared with the snapshot file header.
//
// Every stored value carries a CRC32C (Castagnoli) so that a flipped bit is detected on read and reported with
// the index or record it belongs to, never returned as data. The CRC of an entry also covers its key (the
// index), so a value stored or copied under the wrong key is detected too.
//
// Numbers: indexes, terms and node ids are safe integers (< 2^53), stored as big-endian unsigned 64-bit.

import { crc32c } from '@node-rs/crc32';
import type { ConfState, Entry, EntryType, HardState, SnapshotMetadata } from '../core/types.ts';
import { StorageCorruptionError } from './errors.ts';

const TWO_32 = 2 ** 32;
/** The high 32-bit word of a safe integer is below 2^21. */
const SAFE_HIGH_WORD_LIMIT = 2 ** 21;

/** Bytes of an LMDB entry key: the index as big-endian u64, so LMDB's key order is the log's order. */
export const ENTRY_KEY_BYTES = 8;

/**
 * Layout of an entry value (all big-endian):
 *   0  u32  crc32c over the key bytes, then value[4..end)
 *   4  u64  term
 *   12 u8   type (EntryType)
 *   13 u32  data length
 *   17 ...  data
 */
export const ENTRY_VALUE_HEADER_BYTES = 17;
const ENTRY_TERM_AT = 4;
const ENTRY_TYPE_AT = 12;
const ENTRY_LENGTH_AT = 13;
/** Entry types this build knows; anything else in a stored entry is corruption. */
const ENTRY_TYPES_KNOWN = 2;

export function writeU64(buf: Buffer, value: number, offset: number): void {
  buf.writeUInt32BE(Math.floor(value / TWO_32), offset);
  // `>>> 0` is value mod 2^32 for any integer up to 2^53.
  buf.writeUInt32BE(value >>> 0, offset + 4);
}

/** Reads a big-endian u64; undefined when it is not a safe integer (only corruption produces one). */
export function readU64(buf: Buffer, offset: number): number | undefined {
  const high = buf.readUInt32BE(offset);
  if (high >= SAFE_HIGH_WORD_LIMIT) return undefined;
  return high * TWO_32 + buf.readUInt32BE(offset + 4);
}

export function entryKey(index: number): Buffer {
  const key = Buffer.allocUnsafe(ENTRY_KEY_BYTES);
  writeU64(key, index, 0);
  return key;
}

export function entryKeyIndex(key: Buffer): number {
  const index = key.length === ENTRY_KEY_BYTES ? readU64(key, 0) : undefined;
  if (index === undefined) throw new StorageCorruptionError(`log key ${key.toString('hex')} is not an index`);
  return index;
}

/** The stored value of `entry` (its key is entryKey(entry.index)). */
export function encodeEntry(entry: Entry, key: Buffer = entryKey(entry.index)): Buffer {
  const value = Buffer.allocUnsafe(ENTRY_VALUE_HEADER_BYTES + entry.data.byteLength);
  writeU64(value, entry.term, ENTRY_TERM_AT);
  value.writeUInt8(entry.type, ENTRY_TYPE_AT);
  value.writeUInt32BE(entry.data.byteLength, ENTRY_LENGTH_AT);
  value.set(entry.data, ENTRY_VALUE_HEADER_BYTES);
  value.writeUInt32BE(entryCrc(key, value), 0);
  return value;
}

/**
 * Decodes and verifies a stored entry. Throws StorageCorruptionError naming the index when the value is
 * truncated, its length field disagrees with its size, its CRC does not match, or a field is out of range.
 * The returned data is a view of `value` (LMDB hands out copies, so nobody else holds it).
 */
export function decodeEntry(index: number, key: Buffer, value: Buffer): Entry {
  if (value.length < ENTRY_VALUE_HEADER_BYTES) throw corruptEntry(index, `value of ${value.length} bytes is truncated`);
  const dataBytes = value.readUInt32BE(ENTRY_LENGTH_AT);
  if (dataBytes !== value.length - ENTRY_VALUE_HEADER_BYTES) {
    throw corruptEntry(index, `data length ${dataBytes} but ${value.length - ENTRY_VALUE_HEADER_BYTES} bytes stored`);
  }
  const stored = value.readUInt32BE(0);
  const computed = entryCrc(key, value);
  if (stored !== computed) throw corruptEntry(index, `crc32c ${hex32(stored)} stored, ${hex32(computed)} computed`);
  const term = readU64(value, ENTRY_TERM_AT);
  const type = value.readUInt8(ENTRY_TYPE_AT);
  if (term === undefined || type >= ENTRY_TYPES_KNOWN) throw corruptEntry(index, 'term or type out of range');
  return { index, term, type: type as EntryType, data: value.subarray(ENTRY_VALUE_HEADER_BYTES) };
}

function entryCrc(key: Buffer, value: Buffer): number {
  return crc32c(value.subarray(4), crc32c(key));
}

function corruptEntry(index: number, why: string): StorageCorruptionError {
  return new StorageCorruptionError(`raft log entry ${index} is corrupt: ${why}`, index);
}

export function hex32(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

// ---- Small records (LMDB meta values) -------------------------------------------------------------------

/**
 * A record value is [u32 crc32c][payload]; the CRC covers the record's name (its key) and then the payload, so
 * a record under the wrong key fails verification like a flipped bit does.
 */
export function sealRecord(name: string, payload: Buffer): Buffer {
  const value = Buffer.allocUnsafe(4 + payload.length);
  payload.copy(value, 4);
  value.writeUInt32BE(crc32c(payload, crc32c(name)), 0);
  return value;
}

/** The payload of a record sealed under `name`; throws StorageCorruptionError naming it when it fails its CRC. */
export function openRecord(name: string, value: Buffer): Buffer {
  if (value.length < 4) throw new StorageCorruptionError(`raft storage record '${name}' is truncated`);
  const payload = value.subarray(4);
  const stored = value.readUInt32BE(0);
  const computed = crc32c(payload, crc32c(name));
  if (stored !== computed) {
    throw new StorageCorruptionError(
      `raft storage record '${name}' is corrupt: crc32c ${hex32(stored)} stored, ${hex32(computed)} computed`,
    );
  }
  return payload;
}

/** Sequential reader of a record payload that turns every out-of-range read into corruption of `what`. */
export class PayloadReader {
  private pos = 0;

  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
  ) {}

  u8(): number {
    this.need(1);
    return this.buf.readUInt8(this.pos++);
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  u64(): number {
    this.need(8);
    const v = readU64(this.buf, this.pos);
    if (v === undefined) throw new StorageCorruptionError(`${this.what}: a number is not a safe integer`);
    this.pos += 8;
    return v;
  }

  /** Asserts the whole payload was consumed (trailing bytes mean a layout mismatch). */
  end(): void {
    if (this.pos !== this.buf.length) {
      throw new StorageCorruptionError(`${this.what}: ${this.buf.length - this.pos} unexpected trailing bytes`);
    }
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new StorageCorruptionError(`${this.what}: truncated`);
  }
}

export function encodeHardState(hs: HardState): Buffer {
  const buf = Buffer.allocUnsafe(24);
  writeU64(buf, hs.term, 0);
  writeU64(buf, hs.vote, 8);
  writeU64(buf, hs.commit, 16);
  return buf;
}

export function decodeHardState(payload: Buffer): HardState {
  const r = new PayloadReader(payload, 'raft hard state');
  const hs = { term: r.u64(), vote: r.u64(), commit: r.u64() };
  r.end();
  return hs;
}

/** The compacted prefix of the log ends at (index, term): firstIndex() = index + 1, term(index) = term. */
export interface LogStart {
  index: number;
  term: number;
}

export function encodeLogStart(ls: LogStart): Buffer {
  const buf = Buffer.allocUnsafe(16);
  writeU64(buf, ls.index, 0);
  writeU64(buf, ls.term, 8);
  return buf;
}

export function decodeLogStart(payload: Buffer): LogStart {
  const r = new PayloadReader(payload, 'raft log start');
  const ls = { index: r.u64(), term: r.u64() };
  r.end();
  return ls;
}

/** ConfState: u8 autoLeave, then voters, learners, votersOutgoing, learnersNext, each u32 count + u64 ids. */
export function confStateBytes(cs: ConfState): number {
  return 1 + 4 * 4 + 8 * (cs.voters.length + cs.learners.length + cs.votersOutgoing.length + cs.learnersNext.length);
}

export function writeConfState(buf: Buffer, cs: ConfState, offset: number): number {
  let pos = buf.writeUInt8(cs.autoLeave ? 1 : 0, offset);
  for (const ids of [cs.voters, cs.learners, cs.votersOutgoing, cs.learnersNext]) {
    pos = buf.writeUInt32BE(ids.length, pos);
    for (const id of ids) {
      writeU64(buf, id, pos);
      pos += 8;
    }
  }
  return pos;
}

export function readConfState(r: PayloadReader): ConfState {
  const autoLeave = r.u8() === 1;
  const lists: number[][] = [];
  for (let l = 0; l < 4; l++) {
    const n = r.u32();
    const ids: number[] = [];
    for (let i = 0; i < n; i++) ids.push(r.u64());
    lists.push(ids);
  }
  return { voters: lists[0]!, learners: lists[1]!, votersOutgoing: lists[2]!, learnersNext: lists[3]!, autoLeave };
}

export function encodeConfState(cs: ConfState): Buffer {
  const buf = Buffer.allocUnsafe(confStateBytes(cs));
  writeConfState(buf, cs, 0);
  return buf;
}

export function decodeConfState(payload: Buffer): ConfState {
  const r = new PayloadReader(payload, 'raft conf state');
  const cs = readConfState(r);
  r.end();
  return cs;
}

export function encodeSnapshotMetadata(m: SnapshotMetadata): Buffer {
  const buf = Buffer.allocUnsafe(16 + confStateBytes(m.conf));
  writeU64(buf, m.index, 0);
  writeU64(buf, m.term, 8);
  writeConfState(buf, m.conf, 16);
  return buf;
}

export function decodeSnapshotMetadata(payload: Buffer): SnapshotMetadata {
  const r = new PayloadReader(payload, 'raft snapshot metadata');
  const m = { index: r.u64(), term: r.u64(), conf: readConfState(r) };
  r.end();
  return m;
}

export function copyConfState(cs: ConfState): ConfState {
  return {
    voters: [...cs.voters],
    learners: [...cs.learners],
    votersOutgoing: [...cs.votersOutgoing],
    learnersNext: [...cs.learnersNext],
    autoLeave: cs.autoLeave,
  };
}
