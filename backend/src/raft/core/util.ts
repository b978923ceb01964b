// Small helpers shared by the core's modules: entry sizes, message construction, message classes.

import { MessageType, NONE } from './types.ts';
import type { ConfState, Entry, Message } from './types.ts';

/**
 * Bytes an entry is charged for in message and Ready size limits: its payload plus a fixed header
 * (index 8, term 8, type 1, length 4, rounded up), so that empty entries are not free in a message.
 */
export const ENTRY_HEADER_BYTES = 24;

export function entrySizeBytes(entry: Entry): number {
  return entry.data.byteLength + ENTRY_HEADER_BYTES;
}

/**
 * Bytes an entry is charged for in the uncommitted-entries limit: its payload only, so that the empty
 * entries the core appends itself (new leader's no-op, leaving a joint config) always fit.
 */
export function payloadSizeBytes(entries: readonly Entry[]): number {
  let total = 0;
  for (const e of entries) total += e.data.byteLength;
  return total;
}

/**
 * The longest prefix of `entries` whose total entrySizeBytes is at most maxBytes, but never less than one
 * entry (a single entry larger than the limit must still be able to make progress). 0 = one entry.
 */
export function limitSize(entries: Entry[], maxBytes: number): Entry[] {
  if (entries.length === 0) return entries;
  let size = entrySizeBytes(entries[0]!);
  let n = 1;
  while (n < entries.length) {
    size += entrySizeBytes(entries[n]!);
    if (size > maxBytes) break;
    n++;
  }
  return n === entries.length ? entries : entries.slice(0, n);
}

/** A message with every field at its zero value, then `fields`. */
export function newMessage(fields: Partial<Message> & Pick<Message, 'type'>): Message {
  return {
    from: NONE,
    to: NONE,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    ...fields,
  };
}

/** Messages the core makes for itself; RawNode.step ignores them when they come from the network. */
export function isLocalMessage(type: MessageType): boolean {
  return (
    type === MessageType.Hup ||
    type === MessageType.Beat ||
    type === MessageType.Unreachable ||
    type === MessageType.SnapStatus ||
    type === MessageType.CheckQuorum
  );
}

/** Answers a leader or candidate only takes from nodes it tracks. */
export function isResponseMessage(type: MessageType): boolean {
  return (
    type === MessageType.AppResp ||
    type === MessageType.VoteResp ||
    type === MessageType.HeartbeatResp ||
    type === MessageType.Unreachable ||
    type === MessageType.PreVoteResp
  );
}

export function voteResponseType(type: MessageType): MessageType {
  if (type === MessageType.Vote) return MessageType.VoteResp;
  if (type === MessageType.PreVote) return MessageType.PreVoteResp;
  throw new Error(`not a vote request: ${MessageType[type]}`);
}

export function emptyConfState(): ConfState {
  return { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
}

export function bytesEqual(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A string key for a byte string (map keys for read contexts). Latin-1: one char per byte, reversible. */
export function bytesKey(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.byteLength; i++) s += String.fromCharCode(bytes[i]!);
  return s;
}

export function sortedIds(ids: Iterable<number>): number[] {
  return [...ids].sort((a, b) => a - b);
}
