// The sparse time index of one segment (<base>.timeindex): entries of (timestamp int64, relative offset
// int32), big-endian. An entry (T, o) says: the largest timestamp among the batches up to this index point is T,
// first reached by the batch with base offset baseOffset + o. Entries are added with the offset index entries
// (when the maximum grew) and once more when the segment is sealed.
//
// Invariant: timestamps strictly increase and relative offsets never decrease. So every batch before the
// entry's index point has maxTimestamp <= T, which is what lets a timestamp search start at o.

import fs from 'node:fs';
import { writeFully } from './file-io.ts';
import { parseInt32File } from './offset-index.ts';

export const TIME_INDEX_ENTRY_BYTES = 12;
const INITIAL_CAPACITY = 64;
const TWO_POW_32 = 4294967296;

export class TimeIndex {
  readonly baseOffset: number;
  // Timestamps are kept as float64: exact for every millisecond timestamp below 2^53.
  private timestamps: Float64Array = new Float64Array(INITIAL_CAPACITY);
  private relOffsets: Int32Array = new Int32Array(INITIAL_CAPACITY);
  private count = 0;
  private persisted = 0;

  constructor(baseOffset: number) {
    this.baseOffset = baseOffset;
  }

  /** Loads a time index file; null when it is malformed. */
  static fromBytes(bytes: Buffer, baseOffset: number): TimeIndex | null {
    if (bytes.length % TIME_INDEX_ENTRY_BYTES !== 0) return null;
    // Parsed as int32 triples (timestamp high, timestamp low, relative offset): no BigInt per entry.
    const values = parseInt32File(bytes);
    const index = new TimeIndex(baseOffset);
    for (let i = 0; i < values.length; i += 3) {
      const ts = values[i]! * TWO_POW_32 + (values[i + 1]! >>> 0);
      const rel = values[i + 2]!;
      if (rel < 0 || (index.count > 0 && (ts <= index.lastTimestamp || rel < index.lastRel()))) return null;
      index.push(ts, rel);
    }
    index.persisted = index.count;
    return index;
  }

  get entries(): number {
    return this.count;
  }

  /** The newest entry's timestamp, -1 when empty. */
  get lastTimestamp(): number {
    return this.count === 0 ? -1 : this.timestamps[this.count - 1]!;
  }

  /** The newest entry's absolute offset, -1 when empty. */
  get lastOffset(): number {
    return this.count === 0 ? -1 : this.baseOffset + this.lastRel();
  }

  /** Adds (timestamp, offset) when the timestamp is larger than the last entry's; returns whether it did. */
  maybeAppend(timestamp: number, offset: number): boolean {
    if (timestamp <= this.lastTimestamp) return false;
    const rel = offset - this.baseOffset;
    if (this.count > 0 && rel < this.lastRel()) throw new Error(`time index offset ${offset} goes backwards`);
    this.push(timestamp, rel);
    return true;
  }

  /**
   * Where a search for the first batch with maxTimestamp >= target may start: the offset of the last entry
   * whose timestamp is below the target (everything before it is older), or the segment's base offset.
   */
  searchStartOffset(target: number): number {
    let lo = 0;
    let hi = this.count - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.timestamps[mid]! < target) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found < 0 ? this.baseOffset : this.baseOffset + this.relOffsets[found]!;
  }

  persist(fd: number): void {
    if (this.persisted === this.count) return;
    const out = Buffer.allocUnsafe((this.count - this.persisted) * TIME_INDEX_ENTRY_BYTES);
    for (let i = this.persisted; i < this.count; i++) {
      const at = (i - this.persisted) * TIME_INDEX_ENTRY_BYTES;
      const ts = this.timestamps[i]!;
      const hi = Math.floor(ts / TWO_POW_32);
      out.writeInt32BE(hi, at);
      out.writeUInt32BE(ts - hi * TWO_POW_32, at + 4);
      out.writeInt32BE(this.relOffsets[i]!, at + 8);
    }
    writeFully(fd, out, this.persisted * TIME_INDEX_ENTRY_BYTES);
    this.persisted = this.count;
  }

  rewrite(fd: number): void {
    fs.ftruncateSync(fd, 0);
    this.persisted = 0;
    this.persist(fd);
  }

  private lastRel(): number {
    return this.relOffsets[this.count - 1]!;
  }

  private push(ts: number, rel: number): void {
    if (this.count === this.timestamps.length) {
      const t = new Float64Array(this.count * 2);
      t.set(this.timestamps);
      this.timestamps = t;
      const r = new Int32Array(this.count * 2);
      r.set(this.relOffsets);
      this.relOffsets = r;
    }
    this.timestamps[this.count] = ts;
    this.relOffsets[this.count] = rel;
    this.count++;
  }
}
