// The sparse offset index of one segment (<base>.index): entries of (relative offset int32, file position
// int32), big-endian, at most one per index.interval.bytes of log. Kept in memory as typed arrays; the file is
// only appended to, and read back at startup.
//
// Invariant: relOffsets and positions are both strictly increasing; every entry points at the first byte of
// a batch whose baseOffset is baseOffset + relOffset.

import fs from 'node:fs';
import { Parser } from 'binary-parser';
import { writeFully } from './file-io.ts';

export const OFFSET_INDEX_ENTRY_BYTES = 8;
const INITIAL_CAPACITY = 64;

/** Compiled once: the whole file as a flat list of int32 (rel, pos, rel, pos, ...). */
const int32Array = new Parser().array('values', { type: 'int32be', readUntil: 'eof' });
int32Array.compile();

/** Parses a file of big-endian int32 values (length must be a multiple of 4). */
export function parseInt32File(bytes: Buffer): number[] {
  return (int32Array.parse(bytes) as { values: number[] }).values;
}

export class OffsetIndex {
  readonly baseOffset: number;
  private relOffsets: Int32Array = new Int32Array(INITIAL_CAPACITY);
  private positions: Int32Array = new Int32Array(INITIAL_CAPACITY);
  private count = 0;
  /** Entries already written to the file. */
  private persisted = 0;

  constructor(baseOffset: number) {
    this.baseOffset = baseOffset;
  }

  /** Loads an index file; null when it is malformed (then the caller rebuilds it from the log). */
  static fromBytes(bytes: Buffer, baseOffset: number): OffsetIndex | null {
    if (bytes.length % OFFSET_INDEX_ENTRY_BYTES !== 0) return null;
    const values = parseInt32File(bytes);
    const index = new OffsetIndex(baseOffset);
    for (let i = 0; i < values.length; i += 2) {
      const rel = values[i]!;
      const pos = values[i + 1]!;
      if (rel < 0 || pos < 0 || (index.count > 0 && (rel <= index.lastRel() || pos <= index.lastPosition()))) return null;
      index.push(rel, pos);
    }
    index.persisted = index.count;
    return index;
  }

  get entries(): number {
    return this.count;
  }

  /** Adds an entry for the batch starting at `position` with base offset `offset`. */
  append(offset: number, position: number): void {
    const rel = offset - this.baseOffset;
    if (this.count > 0 && (rel <= this.lastRel() || position <= this.lastPosition())) {
      throw new Error(`offset index entry (${offset}, ${position}) is not after the last one`);
    }
    this.push(rel, position);
  }

  /** The file position of the last indexed batch with base offset <= offset; 0 when there is none. */
  lookup(offset: number): number {
    const i = this.slotAtOrBelow(offset - this.baseOffset);
    return i < 0 ? 0 : this.positions[i]!;
  }

  /** The last entry (absolute offset and position), or null when the index is empty. */
  last(): { offset: number; position: number } | null {
    if (this.count === 0) return null;
    return { offset: this.baseOffset + this.lastRel(), position: this.lastPosition() };
  }

  /** Writes the entries not yet in the file (one positional write). */
  persist(fd: number): void {
    if (this.persisted === this.count) return;
    const out = this.encode(this.persisted, this.count);
    writeFully(fd, out, this.persisted * OFFSET_INDEX_ENTRY_BYTES);
    this.persisted = this.count;
  }

  /** Replaces the file content with every entry. */
  rewrite(fd: number): void {
    fs.ftruncateSync(fd, 0);
    this.persisted = 0;
    this.persist(fd);
  }

  private encode(from: number, to: number): Buffer {
    const out = Buffer.allocUnsafe((to - from) * OFFSET_INDEX_ENTRY_BYTES);
    for (let i = from; i < to; i++) {
      out.writeInt32BE(this.relOffsets[i]!, (i - from) * OFFSET_INDEX_ENTRY_BYTES);
      out.writeInt32BE(this.positions[i]!, (i - from) * OFFSET_INDEX_ENTRY_BYTES + 4);
    }
    return out;
  }

  private slotAtOrBelow(rel: number): number {
    let lo = 0;
    let hi = this.count - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.relOffsets[mid]! <= rel) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  private lastRel(): number {
    return this.relOffsets[this.count - 1]!;
  }

  private lastPosition(): number {
    return this.positions[this.count - 1]!;
  }

  private push(rel: number, position: number): void {
    if (this.count === this.relOffsets.length) {
      this.relOffsets = grow(this.relOffsets);
      this.positions = grow(this.positions);
    }
    this.relOffsets[this.count] = rel;
    this.positions[this.count] = position;
    this.count++;
  }
}

function grow(a: Int32Array): Int32Array {
  const bigger = new Int32Array(a.length * 2);
  bigger.set(a);
  return bigger;
}
