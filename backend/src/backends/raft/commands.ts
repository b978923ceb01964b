// The commands of the replicated Kafka state machine: what a Raft log entry holds. Every mutation of the Kafka
// state (topics, records, committed offsets, producer ids) is one of these, proposed by the leader and applied
// by every node's state machine (fsm.ts) in log order.
//
// Encoding (version 1), big-endian, compact on purpose (it is written to every node's Raft log):
//   version u8 | type u8 | timestampMs int64 | body
// The timestamp is the proposer's clock: the state machine uses it (never its own clock) wherever time changes
// the outcome (LogAppendTime, segment.ms rolls, commit timestamps), so every node computes the same state.
// Strings are compact strings (uvarint length + 1, then UTF-8), counts are uvarints, topic ids are 16 bytes.
// Append is the hot path: record batches are copied in raw, once, behind a 24-byte item header
//   uuid topicId | int32 partition | uint32 length | the batches as received
// Decoding never trusts a length or count beyond the bytes that remain. A committed entry that does not
// decode is a programmer error (a bug or a corrupt log): decodeCommand throws CommandDecodeError and the
// caller must stop, never skip it.
import type { ConfigOp, OffsetCommitEntry } from '../backend.ts';
import { DecodeError, Reader, Writer } from '../../protocol/codec.ts';

export const COMMAND_VERSION = 1;
/** Bytes before the body: version, type, timestamp. */
export const COMMAND_HEADER_BYTES = 10;
/** Bytes of an Append item before its records: topic id, partition, length. */
export const APPEND_ITEM_HEADER_BYTES = 24;
const UUID_BYTES = 16;
const UINT32_MAX = 0xffffffff;

/** The wire code of each command type. Codes are never reused: a retired command keeps its number. */
export const CommandCode = {
  createTopic: 1,
  deleteTopic: 2,
  createPartitions: 3,
  alterConfigs: 4,
  append: 5,
  commitOffsets: 6,
  deleteOffsets: 7,
  deleteRecords: 8,
  initProducerId: 9,
  expireGroups: 10,
} as const;

export type CommandType = keyof typeof CommandCode;
const TYPE_BY_CODE = new Map<number, CommandType>(Object.entries(CommandCode).map(([name, code]) => [code, name as CommandType]));

export interface TopicPartitionRef {
  topic: string;
  partition: number;
}

export interface AppendItem {
  /** The topic's id, not its name: an append proposed before a topic was deleted and re-created fails. */
  topicId: Buffer;
  partition: number;
  /** One or more RecordBatch v2 batches, exactly as the producer sent them (validated by the proposer). */
  records: Buffer;
}

interface Base {
  /** The proposer's wall clock (ms). */
  timestampMs: number;
}

export interface CreateTopicCommand extends Base {
  type: 'createTopic';
  name: string;
  /** Chosen by the proposer (random), so every node gives the topic the same id. */
  topicId: Buffer;
  /** Resolved by the proposer (never -1), so node-local defaults cannot make nodes disagree. */
  partitions: number;
  replicationFactor: number;
  configs: Record<string, string>;
}

export interface DeleteTopicCommand extends Base {
  type: 'deleteTopic';
  name: string;
  topicId: Buffer;
}

export interface CreatePartitionsCommand extends Base {
  type: 'createPartitions';
  name: string;
  topicId: Buffer;
  totalCount: number;
}

export interface AlterConfigsCommand extends Base {
  type: 'alterConfigs';
  name: string;
  topicId: Buffer;
  mode: 'replace' | 'incremental';
  ops: ConfigOp[];
}

export interface AppendCommand extends Base {
  type: 'append';
  /** Coalesced appends, possibly to different partitions; applied in this order. */
  items: AppendItem[];
}

export interface CommitOffsetsCommand extends Base {
  type: 'commitOffsets';
  group: string;
  offsets: OffsetCommitEntry[];
}

export interface DeleteOffsetsCommand extends Base {
  type: 'deleteOffsets';
  group: string;
  partitions: TopicPartitionRef[];
}

export interface DeleteRecordsCommand extends Base {
  type: 'deleteRecords';
  topicId: Buffer;
  partition: number;
  /** -1: the high watermark at apply time. */
  offset: number;
}

export interface InitProducerIdCommand extends Base {
  type: 'initProducerId';
}

/** Offset expiry decided by the leader's coordinator; applied only to groups with no commit after cutoffMs. */
export interface ExpireGroupsCommand extends Base {
  type: 'expireGroups';
  cutoffMs: number;
  groups: string[];
}

export type Command =
  | CreateTopicCommand
  | DeleteTopicCommand
  | CreatePartitionsCommand
  | AlterConfigsCommand
  | AppendCommand
  | CommitOffsetsCommand
  | DeleteOffsetsCommand
  | DeleteRecordsCommand
  | InitProducerIdCommand
  | ExpireGroupsCommand;

export class CommandDecodeError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CommandDecodeError';
  }
}

// ---- encoding ------------------------------------------------------------------------------------------

export function encodeCommand(command: Command): Buffer {
  if (command.type === 'append') return encodeAppend(command.timestampMs, command.items);
  const w = new Writer({ initialBytes: 128, zeroCopyBytesMin: Number.MAX_SAFE_INTEGER });
  writeHeader(w, command.type, command.timestampMs);
  switch (command.type) {
    case 'createTopic':
      w.compactString(command.name);
      w.uuid(command.topicId);
      w.int32(command.partitions);
      w.int16(command.replicationFactor);
      writeStringMap(w, command.configs);
      break;
    case 'deleteTopic':
      w.compactString(command.name);
      w.uuid(command.topicId);
      break;
    case 'createPartitions':
      w.compactString(command.name);
      w.uuid(command.topicId);
      w.int32(command.totalCount);
      break;
    case 'alterConfigs':
      w.compactString(command.name);
      w.uuid(command.topicId);
      w.int8(command.mode === 'replace' ? 0 : 1);
      w.uvarint(command.ops.length);
      for (const op of command.ops) {
        w.compactString(op.name);
        w.int8(op.op);
        w.compactNullableString(op.value);
      }
      break;
    case 'commitOffsets':
      w.compactString(command.group);
      w.uvarint(command.offsets.length);
      for (const o of command.offsets) {
        w.compactString(o.topic);
        w.int32(o.partition);
        writeSafeInt(w, o.offset);
        w.int32(o.leaderEpoch);
        w.compactNullableString(o.metadata);
      }
      break;
    case 'deleteOffsets':
      w.compactString(command.group);
      w.uvarint(command.partitions.length);
      for (const p of command.partitions) {
        w.compactString(p.topic);
        w.int32(p.partition);
      }
      break;
    case 'deleteRecords':
      w.uuid(command.topicId);
      w.int32(command.partition);
      writeSafeInt(w, command.offset);
      break;
    case 'initProducerId':
      break;
    case 'expireGroups':
      writeSafeInt(w, command.cutoffMs);
      w.uvarint(command.groups.length);
      for (const g of command.groups) w.compactString(g);
      break;
  }
  return w.toBuffer();
}

/** Bytes an Append command with these items takes (for the batcher's limits). */
export function appendCommandBytes(items: readonly AppendItem[]): number {
  let total = COMMAND_HEADER_BYTES + 5;
  for (const item of items) total += APPEND_ITEM_HEADER_BYTES + item.records.length;
  return total;
}

/** The hot path: one allocation of the exact size, each batch copied once. */
export function encodeAppend(timestampMs: number, items: readonly AppendItem[]): Buffer {
  const out = Buffer.allocUnsafe(appendCommandBytes(items));
  let p = writeHeaderInto(out, CommandCode.append, timestampMs);
  p = writeUvarintInto(out, p, items.length);
  for (const item of items) {
    if (item.topicId.length !== UUID_BYTES) throw new RangeError(`topic id must be ${UUID_BYTES} bytes`);
    if (item.records.length > UINT32_MAX) throw new RangeError('records too large for one append item');
    p += item.topicId.copy(out, p);
    p = out.writeInt32BE(item.partition, p);
    p = out.writeUInt32BE(item.records.length, p);
    p += item.records.copy(out, p);
  }
  return out.subarray(0, p);
}

function writeHeader(w: Writer, type: CommandType, timestampMs: number): void {
  w.int8(COMMAND_VERSION);
  w.int8(CommandCode[type]);
  writeSafeInt(w, timestampMs);
}

function writeHeaderInto(out: Buffer, code: number, timestampMs: number): number {
  checkSafeInt(timestampMs);
  out[0] = COMMAND_VERSION;
  out[1] = code;
  const hi = Math.floor(timestampMs / 2 ** 32);
  out.writeInt32BE(hi, 2);
  out.writeUInt32BE(timestampMs - hi * 2 ** 32, 6);
  return COMMAND_HEADER_BYTES;
}

function writeUvarintInto(out: Buffer, p: number, v: number): number {
  while (v >= 0x80) {
    out[p++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[p++] = v;
  return p;
}

function writeStringMap(w: Writer, map: Record<string, string>): void {
  const entries = Object.entries(map);
  w.uvarint(entries.length);
  for (const [k, v] of entries) {
    w.compactString(k);
    w.compactString(v);
  }
}

function checkSafeInt(v: number): void {
  if (!Number.isSafeInteger(v)) throw new RangeError(`not a safe integer: ${v}`);
}

function writeSafeInt(w: Writer, v: number): void {
  checkSafeInt(v);
  w.int64(BigInt(v));
}

// ---- decoding ------------------------------------------------------------------------------------------

/** Decodes one committed entry's data; throws CommandDecodeError for anything but a whole, valid command. */
export function decodeCommand(data: Uint8Array): Command {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const r = new Reader(buf);
  try {
    const version = r.int8('version');
    if (version !== COMMAND_VERSION) throw new CommandDecodeError(`unknown command version ${version}`);
    const code = r.int8('type');
    const type = TYPE_BY_CODE.get(code);
    if (type === undefined) throw new CommandDecodeError(`unknown command type ${code}`);
    const timestampMs = readSafeInt(r, 'timestampMs');
    const command = decodeBody(r, type, timestampMs);
    if (r.remaining !== 0) throw new CommandDecodeError(`${r.remaining} bytes after a ${type} command`);
    return command;
  } catch (err) {
    if (err instanceof CommandDecodeError) throw err;
    if (err instanceof DecodeError) throw new CommandDecodeError(`malformed command: ${err.message}`, { cause: err });
    throw err;
  }
}

function decodeBody(r: Reader, type: CommandType, timestampMs: number): Command {
  switch (type) {
    case 'createTopic':
      return {
        type,
        timestampMs,
        name: r.compactString('name'),
        topicId: r.uuid('topicId'),
        partitions: r.int32('partitions'),
        replicationFactor: r.int16('replicationFactor'),
        configs: readStringMap(r),
      };
    case 'deleteTopic':
      return { type, timestampMs, name: r.compactString('name'), topicId: r.uuid('topicId') };
    case 'createPartitions':
      return { type, timestampMs, name: r.compactString('name'), topicId: r.uuid('topicId'), totalCount: r.int32('totalCount') };
    case 'alterConfigs':
      return decodeAlterConfigs(r, timestampMs);
    case 'append':
      return { type, timestampMs, items: readList(r, APPEND_ITEM_HEADER_BYTES, readAppendItem) };
    case 'commitOffsets':
      return { type, timestampMs, group: r.compactString('group'), offsets: readList(r, 18, readOffsetEntry) };
    case 'deleteOffsets':
      return { type, timestampMs, group: r.compactString('group'), partitions: readList(r, 5, readPartitionRef) };
    case 'deleteRecords':
      return { type, timestampMs, topicId: r.uuid('topicId'), partition: r.int32('partition'), offset: readSafeInt(r, 'offset') };
    case 'initProducerId':
      return { type, timestampMs };
    case 'expireGroups': {
      const cutoffMs = readSafeInt(r, 'cutoffMs');
      return { type, timestampMs, cutoffMs, groups: readList(r, 1, (x) => x.compactString('group')) };
    }
  }
}

function decodeAlterConfigs(r: Reader, timestampMs: number): AlterConfigsCommand {
  const name = r.compactString('name');
  const topicId = r.uuid('topicId');
  const mode = r.int8('mode');
  if (mode !== 0 && mode !== 1) throw new CommandDecodeError(`unknown alter configs mode ${mode}`);
  const ops = readList(r, 3, (x): ConfigOp => {
    const opName = x.compactString('config name');
    const op = x.int8('config op');
    if (op < 0 || op > 3) throw new CommandDecodeError(`unknown config op ${op}`);
    return { name: opName, op: op as ConfigOp['op'], value: x.compactNullableString('config value') };
  });
  return { type: 'alterConfigs', timestampMs, name, topicId, mode: mode === 0 ? 'replace' : 'incremental', ops };
}

function readAppendItem(r: Reader): AppendItem {
  const topicId = r.uuid('topicId');
  const partition = r.int32('partition');
  const length = r.uint32('records length');
  return { topicId, partition, records: r.raw(length, 'records') };
}

function readOffsetEntry(r: Reader): OffsetCommitEntry {
  return {
    topic: r.compactString('topic'),
    partition: r.int32('partition'),
    offset: readSafeInt(r, 'offset'),
    leaderEpoch: r.int32('leaderEpoch'),
    metadata: r.compactNullableString('metadata'),
  };
}

function readPartitionRef(r: Reader): TopicPartitionRef {
  return { topic: r.compactString('topic'), partition: r.int32('partition') };
}

/** A uvarint count, refused when even the smallest elements could not fit in what remains. */
function readList<T>(r: Reader, minElementBytes: number, read: (r: Reader) => T): T[] {
  const count = r.uvarint('count');
  if (count * minElementBytes > r.remaining) throw new CommandDecodeError(`count ${count} exceeds the ${r.remaining} bytes left`);
  const out: T[] = new Array(count);
  for (let i = 0; i < count; i++) out[i] = read(r);
  return out;
}

function readStringMap(r: Reader): Record<string, string> {
  // No prototype: a key named __proto__ is then an ordinary entry, never a prototype change.
  const map = Object.create(null) as Record<string, string>;
  for (const [k, v] of readList(r, 2, (x) => [x.compactString('config name'), x.compactString('config value')] as const)) {
    if (Object.hasOwn(map, k)) throw new CommandDecodeError(`config ${k} listed twice`);
    map[k] = v;
  }
  return map;
}

function readSafeInt(r: Reader, what: string): number {
  const v = r.int64(what);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw new CommandDecodeError(`${what} ${v} is not a safe integer`);
  return Number(v);
}
