// The replicated state machine of the simulation: it records which entry it applied at each index (as a
// fingerprint: term, type and payload) and which client values it has seen. Its snapshot is the list of
// fingerprints, kept in a per-run SnapshotStore; the snapshot bytes that travel through the core are the
// id of that image (a real system would ship the image itself; sharing immutable images is equivalent
// here and keeps campaigns fast).

import { EntryType, type ConfState, type Entry } from '../../../src/raft/core/types.ts';
import type { SmImage } from './disk.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Client payloads are `v<client>.<seq>` strings; everything else (no-ops, conf changes) carries no value. */
export function encodeValue(value: string): Uint8Array {
  return encoder.encode(value);
}

export function decodeValue(entry: Entry): string | undefined {
  if (entry.type !== EntryType.Normal || entry.data.length === 0) return undefined;
  return decoder.decode(entry.data);
}

/** Identity of an entry for the checkers: two entries are "the same" iff their fingerprints are equal. */
export function fingerprint(entry: Entry): string {
  let payload = '';
  const data = entry.data;
  for (let i = 0; i < data.length; i++) payload += String.fromCharCode(data[i]!);
  return `${entry.term}/${entry.type}/${payload}`;
}

/** Term encoded in a fingerprint (its first field). */
export function fingerprintTerm(fp: string): number {
  return Number(fp.slice(0, fp.indexOf('/')));
}

export class SnapshotStore {
  private readonly images: SmImage[] = [];

  /** Store an image; returns the snapshot payload naming it. */
  put(image: SmImage): Uint8Array {
    const id = this.images.length;
    // No copy: an image's prefix never changes (StateMachine only appends, and restore() copies).
    this.images.push(image);
    const data = new Uint8Array(4);
    new DataView(data.buffer).setUint32(0, id);
    return data;
  }

  get(data: Uint8Array): SmImage {
    if (data.length !== 4) throw new Error(`snapshot payload of ${data.length} bytes is not an image id`);
    const id = new DataView(data.buffer, data.byteOffset, 4).getUint32(0);
    const image = this.images[id];
    if (image === undefined) throw new Error(`unknown snapshot image ${id}`);
    return image;
  }
}

export interface AppliedEntry {
  index: number;
  fingerprint: string;
  /** The client value carried, if any. */
  value: string | undefined;
}

export class StateMachine {
  /** log[i - 1] is the fingerprint of the entry applied at index i; log.length === applied. */
  private log: string[] = [];
  /** Membership as of `applied`, kept by the driver (it applies ConfChange entries through the core). */
  conf: ConfState | undefined = undefined;

  constructor(image?: SmImage) {
    if (image) this.restore(image);
  }

  get applied(): number {
    return this.log.length;
  }

  /** Apply the next entry. The caller (driver) guarantees entry.index === applied + 1 (checked by the checker). */
  apply(entry: Entry): AppliedEntry {
    const fp = fingerprint(entry);
    this.log.push(fp);
    return { index: entry.index, fingerprint: fp, value: decodeValue(entry) };
  }

  /** The current state as an immutable view: later applies only push past `applied`. */
  image(): SmImage {
    return { applied: this.log.length, log: this.log, conf: this.conf };
  }

  /** Replace the state with an image (restart, or a snapshot from the leader). */
  restore(image: SmImage): void {
    // Copy: the image's array may be shared with a state machine that keeps appending to it.
    this.log = image.log.slice(0, image.applied);
    this.conf = image.conf;
  }

  fingerprintAt(index: number): string | undefined {
    return this.log[index - 1];
  }
}
