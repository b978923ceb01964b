// Payloads of the Raft transport frames (frame.ts has the framing). Numbers that grow with the log (indexes,
// terms, node ids, lengths) are unsigned LEB128 varints of at most 8 bytes holding a safe integer, so a heartbeat
// costs a few dozen bytes. Every length and count read from the wire is checked against the bytes that remain
// before anything is allocated; decoded byte fields are views of the received frame (no copy).
//
// Message payload:
//   u8 type, var to, var from, var term, var logTerm, var index, var commit, var rejectHint,
//   u8 flags (1 reject, 2 snapshot, 4 context), var entry count, entries, [context], [snapshot]
//   entry:    var index, var term, u8 type, var data length, data
//   context:  var length, bytes
//   snapshot: var index, var term, conf state (4 id lists: var count, var ids; u8 autoLeave), var data length, data
import type { ConfState, Entry, Message, NodeId, Snapshot, SnapshotMetadata } from '../core/types.ts';
import { EntryType, MessageType } from '../core/types.ts';
import { FRAME_OVERHEAD_BYTES, FrameDecodeError, readU64, writeU64 } from './frame.ts';

const FLAG_REJECT = 1;
const FLAG_SNAPSHOT = 2;
const FLAG_CONTEXT = 4;
const FLAGS_KNOWN = FLAG_REJECT | FLAG_SNAPSHOT | FLAG_CONTEXT;

/** 8 groups of 7 bits hold any safe integer (53 bits). */
const VARINT_BYTES_MAX = 8;
const MESSAGE_TYPE_MAX = MessageType.ReadIndexResp;
/** The smallest encoded entry: index, term, type and a zero length, one byte each. */
const ENTRY_BYTES_MIN = 4;
const CLUSTER_ID_BYTES_MAX = 255;
const REASON_BYTES_MAX = 1024;

/** Message types that only exist inside one node (timers, driver reports): never on the wire. */
const LOCAL_TYPES: ReadonlySet<MessageType> = new Set([
  MessageType.Hup,
  MessageType.Beat,
  MessageType.Unreachable,
  MessageType.SnapStatus,
  MessageType.CheckQuorum,
]);

export function isWireMessageType(type: number): type is MessageType {
  return Number.isInteger(type) && type >= 0 && type <= MESSAGE_TYPE_MAX && !LOCAL_TYPES.has(type);
}

// ---- Primitive writer / reader ----------------------------------------------------------------------------

function checkU53(v: number, what: string): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${what} must be a non-negative safe integer, got ${v}`);
  return v;
}

function varBytes(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}

/** Writes into a buffer sized exactly beforehand (sizes are computed by the *Bytes functions). */
class Out {
  readonly buf: Buffer;
  pos: number;

  constructor(bytes: number, at: number) {
    this.buf = Buffer.allocUnsafe(bytes);
    this.pos = at;
  }

  u8(v: number): void {
    this.buf[this.pos++] = v;
  }

  var(v: number): void {
    const buf = this.buf;
    let p = this.pos;
    // Bit operations are exact below 2^32; larger values divide.
    while (v > 0xffffffff) {
      buf[p++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    while (v >= 0x80) {
      buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[p++] = v;
    this.pos = p;
  }

  u64(v: number): void {
    writeU64(this.buf, this.pos, v);
    this.pos += 8;
  }

  bytes(b: Uint8Array): void {
    this.buf.set(b, this.pos);
    this.pos += b.byteLength;
  }
}

class In {
  private readonly buf: Buffer;
  private pos = 0;

  constructor(buf: Buffer) {
    this.buf = buf;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number, what: string): void {
    if (n > this.buf.length - this.pos) {
      throw new FrameDecodeError(`${what}: needs ${n} bytes at offset ${this.pos}, only ${this.buf.length - this.pos} remain`);
    }
  }

  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++]!;
  }

  var(what: string): number {
    const buf = this.buf;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < VARINT_BYTES_MAX; i++) {
      this.need(1, what);
      const b = buf[this.pos++]!;
      value += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (value > Number.MAX_SAFE_INTEGER) throw new FrameDecodeError(`${what}: varint above 2^53-1`);
        return value;
      }
      scale *= 0x80;
    }
    throw new FrameDecodeError(`${what}: varint longer than ${VARINT_BYTES_MAX} bytes`);
  }

  u64(what: string): number {
    this.need(8, what);
    const v = readU64(this.buf, this.pos);
    if (v === null) throw new FrameDecodeError(`${what}: above 2^53-1`);
    this.pos += 8;
    return v;
  }

  /** A count of elements of at least `minBytes` each, checked against what remains. */
  count(minBytes: number, what: string): number {
    const n = this.var(what);
    if (n * minBytes > this.remaining) {
      throw new FrameDecodeError(`${what}: ${n} elements cannot fit in the ${this.remaining} bytes that remain`);
    }
    return n;
  }

  raw(n: number, what: string): Buffer {
    this.need(n, what);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  /** varint length + bytes, zero-copy. */
  lengthPrefixed(what: string): Buffer {
    return this.raw(this.var(what), what);
  }

  end(what: string): void {
    if (this.pos !== this.buf.length) throw new FrameDecodeError(`${what}: ${this.buf.length - this.pos} unexpected bytes after it`);
  }
}

// ---- Message ----------------------------------------------------------------------------------------------

const ID_LISTS = ['voters', 'learners', 'votersOutgoing', 'learnersNext'] as const;

function confStateBytes(conf: ConfState): number {
  let n = 1;
  for (const list of ID_LISTS) {
    const ids = conf[list];
    n += varBytes(ids.length);
    for (const id of ids) n += varBytes(checkU53(id, `conf.${list}`));
  }
  return n;
}

function snapshotBytes(s: Snapshot, withData: boolean): number {
  const m = s.metadata;
  const data = withData ? s.data.byteLength : 0;
  return varBytes(checkU53(m.index, 'snapshot index')) + varBytes(checkU53(m.term, 'snapshot term')) +
    confStateBytes(m.conf) + varBytes(data) + data;
}

function entriesBytes(entries: readonly Entry[]): number {
  let n = varBytes(entries.length);
  for (const e of entries) {
    if (e.type !== EntryType.Normal && e.type !== EntryType.ConfChange) throw new RangeError(`unknown entry type ${e.type}`);
    n += varBytes(checkU53(e.index, 'entry index')) + varBytes(checkU53(e.term, 'entry term')) + 1 +
      varBytes(e.data.byteLength) + e.data.byteLength;
  }
  return n;
}

function messageBytes(m: Message, withSnapshotData: boolean): number {
  if (!isWireMessageType(m.type)) throw new RangeError(`message type ${m.type} is not sent over the network`);
  let n = 2 + entriesBytes(m.entries);
  for (const [v, what] of [[m.to, 'to'], [m.from, 'from'], [m.term, 'term'], [m.logTerm, 'logTerm'], [m.index, 'index'],
    [m.commit, 'commit'], [m.rejectHint, 'rejectHint']] as const) {
    n += varBytes(checkU53(v, what));
  }
  if (m.context !== undefined) n += varBytes(m.context.byteLength) + m.context.byteLength;
  if (m.snapshot !== undefined) n += snapshotBytes(m.snapshot, withSnapshotData);
  return n;
}

function writeConfState(out: Out, conf: ConfState): void {
  for (const list of ID_LISTS) {
    const ids = conf[list];
    out.var(ids.length);
    for (const id of ids) out.var(id);
  }
  out.u8(conf.autoLeave ? 1 : 0);
}

function writeMessage(out: Out, m: Message, withSnapshotData: boolean): void {
  out.u8(m.type);
  out.var(m.to);
  out.var(m.from);
  out.var(m.term);
  out.var(m.logTerm);
  out.var(m.index);
  out.var(m.commit);
  out.var(m.rejectHint);
  out.u8((m.reject ? FLAG_REJECT : 0) | (m.snapshot !== undefined ? FLAG_SNAPSHOT : 0) | (m.context !== undefined ? FLAG_CONTEXT : 0));
  out.var(m.entries.length);
  for (const e of m.entries) {
    out.var(e.index);
    out.var(e.term);
    out.u8(e.type);
    out.var(e.data.byteLength);
    out.bytes(e.data);
  }
  if (m.context !== undefined) {
    out.var(m.context.byteLength);
    out.bytes(m.context);
  }
  if (m.snapshot !== undefined) {
    const md = m.snapshot.metadata;
    out.var(md.index);
    out.var(md.term);
    writeConfState(out, md.conf);
    const data = withSnapshotData ? m.snapshot.data : new Uint8Array(0);
    out.var(data.byteLength);
    out.bytes(data);
  }
}

function readIds(input: In, what: string): NodeId[] {
  const n = input.count(1, what);
  const ids: NodeId[] = new Array<NodeId>(n);
  for (let i = 0; i < n; i++) ids[i] = input.var(what);
  return ids;
}

function readConfState(input: In): ConfState {
  const voters = readIds(input, 'conf voters');
  const learners = readIds(input, 'conf learners');
  const votersOutgoing = readIds(input, 'conf votersOutgoing');
  const learnersNext = readIds(input, 'conf learnersNext');
  const autoLeave = input.u8('conf autoLeave');
  if (autoLeave > 1) throw new FrameDecodeError(`conf autoLeave: invalid boolean ${autoLeave}`);
  return { voters, learners, votersOutgoing, learnersNext, autoLeave: autoLeave === 1 };
}

function readSnapshot(input: In): Snapshot {
  const index = input.var('snapshot index');
  const term = input.var('snapshot term');
  const metadata: SnapshotMetadata = { index, term, conf: readConfState(input) };
  return { metadata, data: input.lengthPrefixed('snapshot data') };
}

function readEntries(input: In): Entry[] {
  const n = input.count(ENTRY_BYTES_MIN, 'entry count');
  const entries: Entry[] = new Array<Entry>(n);
  for (let i = 0; i < n; i++) {
    const index = input.var('entry index');
    const term = input.var('entry term');
    const type = input.u8('entry type');
    if (type !== EntryType.Normal && type !== EntryType.ConfChange) throw new FrameDecodeError(`unknown entry type ${type}`);
    entries[i] = { index, term, type, data: input.lengthPrefixed('entry data') };
  }
  return entries;
}

function readMessage(input: In): Message {
  const type = input.u8('message type');
  if (!isWireMessageType(type)) {
    throw new FrameDecodeError(type > MESSAGE_TYPE_MAX ? `unknown message type ${type}` : `message type ${MessageType[type]} is local, never sent`);
  }
  const to = input.var('to');
  const from = input.var('from');
  const term = input.var('term');
  const logTerm = input.var('logTerm');
  const index = input.var('index');
  const commit = input.var('commit');
  const rejectHint = input.var('rejectHint');
  const flags = input.u8('flags');
  if ((flags & ~FLAGS_KNOWN) !== 0) throw new FrameDecodeError(`unknown message flags 0x${flags.toString(16)}`);
  const entries = readEntries(input);
  const m: Message = { type, from, to, term, logTerm, index, entries, commit, reject: (flags & FLAG_REJECT) !== 0, rejectHint };
  if ((flags & FLAG_CONTEXT) !== 0) m.context = input.lengthPrefixed('context');
  if ((flags & FLAG_SNAPSHOT) !== 0) m.snapshot = readSnapshot(input);
  return m;
}

/**
 * A Message frame's payload, in a buffer with FRAME_OVERHEAD_BYTES of room in front for sealFrame(). With
 * withSnapshotData false, the snapshot (if any) is written with empty data (SnapBegin: the data is streamed).
 * Throws RangeError on a message that cannot be sent (local type, negative or unsafe numbers).
 */
export function encodeMessage(m: Message, withSnapshotData = true, room = FRAME_OVERHEAD_BYTES): Buffer {
  const out = new Out(room + messageBytes(m, withSnapshotData), room);
  writeMessage(out, m, withSnapshotData);
  return out.buf;
}

/** Decodes a Message frame payload. Throws FrameDecodeError. */
export function decodeMessage(payload: Buffer): Message {
  const input = new In(payload);
  const m = readMessage(input);
  input.end('message');
  return m;
}

// ---- Handshake ----------------------------------------------------------------------------------------------

export enum Channel {
  /** Ordinary messages, in order, on one long-lived connection per peer. */
  Messages = 0,
  /** One snapshot per connection, so heartbeats never wait behind snapshot data. */
  Snapshot = 1,
}

export interface Hello {
  version: number;
  channel: Channel;
  /** The dialing node. */
  nodeId: NodeId;
  /** The node the dialer means to reach (catches a peer address that points at the wrong node). */
  targetId: NodeId;
  clusterId: string;
}

export function checkClusterId(clusterId: string): void {
  const n = Buffer.byteLength(clusterId, 'utf8');
  if (n < 1 || n > CLUSTER_ID_BYTES_MAX) throw new RangeError(`cluster id must be 1..${CLUSTER_ID_BYTES_MAX} UTF-8 bytes, got ${n}`);
}

/** Hello payload: u8 version, u8 channel, u64 node id, u64 target id, u8 cluster id length, cluster id (UTF-8). */
export function encodeHello(h: Hello): Buffer {
  checkClusterId(h.clusterId);
  const id = Buffer.from(h.clusterId, 'utf8');
  const out = new Out(FRAME_OVERHEAD_BYTES + 19 + id.length, FRAME_OVERHEAD_BYTES);
  out.u8(h.version);
  out.u8(h.channel);
  out.u64(checkU53(h.nodeId, 'node id'));
  out.u64(checkU53(h.targetId, 'target id'));
  out.u8(id.length);
  out.bytes(id);
  return out.buf;
}

export function decodeHello(payload: Buffer): Hello {
  const input = new In(payload);
  const version = input.u8('hello version');
  const channel = input.u8('hello channel');
  if (channel !== Channel.Messages && channel !== Channel.Snapshot) throw new FrameDecodeError(`unknown channel ${channel}`);
  const nodeId = input.u64('hello node id');
  const targetId = input.u64('hello target id');
  const clusterId = input.raw(input.u8('hello cluster id'), 'hello cluster id').toString('utf8');
  input.end('hello');
  return { version, channel, nodeId, targetId, clusterId };
}

// ---- Snapshot channel ---------------------------------------------------------------------------------------

export interface SnapBegin {
  /** Total snapshot data bytes that the chunks carry. */
  bytes: number;
  /** The Snap message; its snapshot data is empty on the wire. */
  message: Message;
}

/** SnapBegin payload: u64 data bytes, then the message without snapshot data. */
export function encodeSnapBegin(m: Message, bytes: number): Buffer {
  if (m.type !== MessageType.Snap || m.snapshot === undefined) throw new RangeError('SnapBegin needs a Snap message with a snapshot');
  const buf = encodeMessage(m, false, FRAME_OVERHEAD_BYTES + 8);
  writeU64(buf, FRAME_OVERHEAD_BYTES, checkU53(bytes, 'snapshot bytes'));
  return buf;
}

export function decodeSnapBegin(payload: Buffer): SnapBegin {
  const input = new In(payload);
  const bytes = input.u64('snapshot bytes');
  const message = readMessage(input);
  input.end('snapshot begin');
  if (message.type !== MessageType.Snap || message.snapshot === undefined) {
    throw new FrameDecodeError(`snapshot begin carries a ${MessageType[message.type]} message, not a Snap with a snapshot`);
  }
  if (message.snapshot.data.byteLength !== 0) throw new FrameDecodeError('snapshot begin carries inline snapshot data');
  return { bytes, message };
}

/** SnapChunk payload: u64 offset of the data in the snapshot, then the data (sent as its own buffer). */
export function encodeChunkOffset(offset: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  writeU64(b, 0, checkU53(offset, 'chunk offset'));
  return b;
}

export interface SnapChunk {
  offset: number;
  data: Buffer;
}

export function decodeSnapChunk(payload: Buffer): SnapChunk {
  const input = new In(payload);
  const offset = input.u64('chunk offset');
  return { offset, data: input.raw(input.remaining, 'chunk data') };
}

export interface SnapResult {
  ok: boolean;
  /** Why the receive failed (empty when ok). */
  reason: string;
}

/** SnapResult payload: u8 ok, u16 reason length, reason (UTF-8, cut to 1 KiB). */
export function encodeSnapResult(r: SnapResult): Buffer {
  const reason = Buffer.from(r.reason, 'utf8').subarray(0, REASON_BYTES_MAX);
  const out = new Out(FRAME_OVERHEAD_BYTES + 3 + reason.length, FRAME_OVERHEAD_BYTES);
  out.u8(r.ok ? 1 : 0);
  out.u8(reason.length >>> 8);
  out.u8(reason.length & 0xff);
  out.bytes(reason);
  return out.buf;
}

export function decodeSnapResult(payload: Buffer): SnapResult {
  const input = new In(payload);
  const ok = input.u8('result ok');
  if (ok > 1) throw new FrameDecodeError(`result ok: invalid boolean ${ok}`);
  const n = input.u8('result reason') * 256 + input.u8('result reason');
  const reason = input.raw(n, 'result reason').toString('utf8');
  input.end('snapshot result');
  return { ok: ok === 1, reason };
}
