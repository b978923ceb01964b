// Runtime primitives of the Kafka wire format, used by the generated codecs (generated/) and by hand-written
// framing code. This is the hot path of Produce and Fetch: no closures, no per-write concatenation, and every
// length or count read from the wire is checked against the bytes that remain before anything is allocated,
// so a hostile frame cannot make the broker allocate more than the frame itself.

/** A frame could not be decoded: truncated, a length or count beyond the data, a null where none is allowed. */
export class DecodeError extends Error {
  readonly code = 'ERR_KAFKA_DECODE';
  constructor(message: string) {
    super(message);
    this.name = 'DecodeError';
  }
}

/** Shared zero-length buffer: the default of non-nullable bytes fields (a zero-length Buffer cannot be mutated). */
export const EMPTY_BUFFER: Buffer = Buffer.alloc(0);

const UUID_BYTES = 16;
const INT16_MAX = 0x7fff;
const INT32_MAX = 0x7fffffff;
const UINT32_MAX = 0xffffffff;
const TWO_32 = 2 ** 32;
/** int64 values with a high word in [-SAFE_HI, SAFE_HI) are within +-2^53: exact as a double. */
const SAFE_HI = 2 ** 21;
const SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);
/** Largest magnitude that the number fast path of varlong handles exactly (zigzag doubles it: 2^53 stays exact). */
const VARLONG_NUMBER_MAX = 2 ** 52;

/** Sequential reader over buf[offset, end). Decoded bytes, records and uuids are zero-copy subarrays of buf. */
export class Reader {
  readonly buf: Buffer;
  offset: number;
  readonly end: number;

  constructor(buf: Buffer, offset = 0, end = buf.length) {
    if (offset < 0 || end > buf.length || offset > end) {
      throw new RangeError(`Reader bounds [${offset}, ${end}) outside a buffer of ${buf.length} bytes`);
    }
    this.buf = buf;
    this.offset = offset;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  /** Reserves n bytes and returns their start offset; throws when fewer remain. */
  private take(n: number, what: string): number {
    const o = this.offset;
    if (n > this.end - o) throw this.truncated(n, what);
    this.offset = o + n;
    return o;
  }

  private truncated(n: number, what: string): DecodeError {
    return new DecodeError(`${what}: needs ${n} bytes at offset ${this.offset}, only ${this.end - this.offset} remain`);
  }

  int8(what = 'int8'): number {
    return this.buf.readInt8(this.take(1, what));
  }

  int16(what = 'int16'): number {
    return this.buf.readInt16BE(this.take(2, what));
  }

  int32(what = 'int32'): number {
    return this.buf.readInt32BE(this.take(4, what));
  }

  int64(what = 'int64'): bigint {
    const o = this.take(8, what);
    const buf = this.buf;
    const hi = buf.readInt32BE(o);
    const lo = buf.readUInt32BE(o + 4);
    // Offsets and timestamps fit in 53 bits: build the bigint from one exact double instead of bigint shifts.
    if (hi >= -SAFE_HI && hi < SAFE_HI) return BigInt(hi * TWO_32 + lo);
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  uint16(what = 'uint16'): number {
    return this.buf.readUInt16BE(this.take(2, what));
  }

  uint32(what = 'uint32'): number {
    return this.buf.readUInt32BE(this.take(4, what));
  }

  float64(what = 'float64'): number {
    return this.buf.readDoubleBE(this.take(8, what));
  }

  /** Any non-zero byte is true, as Kafka reads it. */
  bool(what = 'bool'): boolean {
    return this.buf[this.take(1, what)] !== 0;
  }

  /** 16 bytes, zero-copy. */
  uuid(what = 'uuid'): Buffer {
    const o = this.take(UUID_BYTES, what);
    return this.buf.subarray(o, o + UUID_BYTES);
  }

  /** n raw bytes, zero-copy. */
  raw(n: number, what = 'bytes'): Buffer {
    const o = this.take(n, what);
    return this.buf.subarray(o, o + n);
  }

  skip(n: number, what = 'skipped bytes'): void {
    this.take(n, what);
  }

  /**
   * Unsigned varint of at most 5 bytes whose value fits in 32 bits (Kafka's limit). Non-minimal encodings are
   * accepted as Kafka accepts them; a continuation bit on the 5th byte or a value above 2^32-1 is rejected.
   */
  uvarint(what = 'unsigned varint'): number {
    const buf = this.buf;
    const end = this.end;
    let o = this.offset;
    let value = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      if (o >= end) throw this.truncatedVarint(what);
      const b = buf[o++]!;
      value |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.offset = o;
        return value;
      }
    }
    if (o >= end) throw this.truncatedVarint(what);
    const last = buf[o++]!;
    if (last > 0x0f) throw new DecodeError(`${what}: varint at offset ${this.offset} is longer than 5 bytes or above 2^32-1`);
    this.offset = o;
    return value + last * 2 ** 28;
  }

  /** Zigzag-encoded signed 32-bit varint. */
  varint(what = 'varint'): number {
    const u = this.uvarint(what);
    return (u >>> 1) ^ -(u & 1);
  }

  /** Zigzag-encoded signed 64-bit varint (at most 10 bytes). */
  varlong(what = 'varlong'): bigint {
    const buf = this.buf;
    const end = this.end;
    let o = this.offset;
    // Up to 7 bytes (49 bits) accumulate exactly in a double: the common case (small deltas) avoids bigint math.
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 7; i++) {
      if (o >= end) throw this.truncatedVarint(what);
      const b = buf[o++]!;
      value += (b & 0x7f) * scale;
      if (b < 0x80) {
        this.offset = o;
        return BigInt(value % 2 === 0 ? value / 2 : -(value + 1) / 2);
      }
      scale *= 128;
    }
    let big = BigInt(value);
    for (let shift = 49n; shift < 70n; shift += 7n) {
      if (o >= end) throw this.truncatedVarint(what);
      const b = buf[o++]!;
      if (shift === 63n && b > 1) break;
      big |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) {
        this.offset = o;
        return (big >> 1n) ^ -(big & 1n);
      }
    }
    throw new DecodeError(`${what}: varlong at offset ${this.offset} is longer than 10 bytes or above 2^64-1`);
  }

  private truncatedVarint(what: string): DecodeError {
    return new DecodeError(`${what}: truncated varint at offset ${this.offset}`);
  }

  /** int16 length + UTF-8; null (-1) is an error. */
  string(what = 'string'): string {
    const s = this.nullableString(what);
    if (s === null) throw nullError(what);
    return s;
  }

  /** int16 length + UTF-8, -1 = null. */
  nullableString(what = 'nullable string'): string | null {
    const n = this.int16(what);
    if (n < 0) {
      if (n === -1) return null;
      throw new DecodeError(`${what}: invalid string length ${n}`);
    }
    const o = this.take(n, what);
    return this.buf.toString('utf8', o, o + n);
  }

  /** Unsigned varint (length + 1) + UTF-8; null (0) is an error. */
  compactString(what = 'compact string'): string {
    const s = this.compactNullableString(what);
    if (s === null) throw nullError(what);
    return s;
  }

  compactNullableString(what = 'compact nullable string'): string | null {
    const u = this.uvarint(what);
    if (u === 0) return null;
    const n = u - 1;
    if (n > INT16_MAX) throw new DecodeError(`${what}: string length ${n} exceeds ${INT16_MAX}`);
    const o = this.take(n, what);
    return this.buf.toString('utf8', o, o + n);
  }

  /** int32 length + bytes, zero-copy; null (-1) is an error. */
  bytes(what = 'bytes'): Buffer {
    const b = this.nullableBytes(what);
    if (b === null) throw nullError(what);
    return b;
  }

  nullableBytes(what = 'nullable bytes'): Buffer | null {
    const n = this.int32(what);
    if (n < 0) {
      if (n === -1) return null;
      throw new DecodeError(`${what}: invalid bytes length ${n}`);
    }
    return this.raw(n, what);
  }

  compactBytes(what = 'compact bytes'): Buffer {
    const b = this.compactNullableBytes(what);
    if (b === null) throw nullError(what);
    return b;
  }

  compactNullableBytes(what = 'compact nullable bytes'): Buffer | null {
    const u = this.uvarint(what);
    if (u === 0) return null;
    return this.raw(u - 1, what);
  }

  /**
   * int32 element count, -1 for null. Each element takes at least minElementBytes (>= 1) on the wire, so a count
   * that cannot fit in the remaining bytes is rejected before the caller allocates or loops.
   */
  arrayLength(minElementBytes: number, what = 'array'): number {
    const n = this.int32(what);
    if (n < 0) {
      if (n === -1) return -1;
      throw new DecodeError(`${what}: invalid array length ${n}`);
    }
    this.checkCount(n, minElementBytes, what);
    return n;
  }

  /** Unsigned varint (count + 1), 0 = null (returned as -1); same bound as arrayLength. */
  compactArrayLength(minElementBytes: number, what = 'compact array'): number {
    const u = this.uvarint(what);
    if (u === 0) return -1;
    const n = u - 1;
    this.checkCount(n, minElementBytes, what);
    return n;
  }

  private checkCount(n: number, minElementBytes: number, what: string): void {
    if (n * minElementBytes > this.end - this.offset) {
      throw new DecodeError(
        `${what}: ${n} elements need at least ${n * minElementBytes} bytes, only ${this.end - this.offset} remain`,
      );
    }
  }

  /** Skips a whole tagged-field section (a struct with no tagged fields known at this version). */
  skipTaggedFields(what = 'tagged fields'): void {
    const count = this.uvarint(what);
    for (let i = 0; i < count; i++) {
      this.uvarint(what);
      this.skip(this.uvarint(what), what);
    }
  }

  /** Reads a tagged field's size and returns the offset where the field ends, checked against the data. */
  taggedFieldEnd(what = 'tagged field'): number {
    const size = this.uvarint(what);
    if (size > this.end - this.offset) throw this.truncated(size, what);
    return this.offset + size;
  }

  /** After decoding a known tagged field: its declared size must match what its value used. */
  expectOffset(end: number, what = 'tagged field'): void {
    if (this.offset !== end) {
      throw new DecodeError(`${what}: declared size does not match its value (ends at ${this.offset}, expected ${end})`);
    }
  }
}

function outOfRange(type: string, v: number): RangeError {
  return new RangeError(`${type} out of range: ${v}`);
}

/** The DecodeError for a null length in a field that is not nullable at this version. */
export function nullError(what: string): DecodeError {
  return new DecodeError(`${what}: null is not allowed at this version`);
}

/** Thrown by generated encoders when a field holds null at a version where it is not nullable. */
export function nullFieldError(what: string, version: number): Error {
  return new Error(`${what}: null is not allowed at version ${version}`);
}

/** True when all 16 bytes are zero (Kafka's Uuid.ZERO_UUID, the default of uuid fields). */
export function isZeroUuid(u: Buffer): boolean {
  for (let i = 0; i < u.length; i++) if (u[i] !== 0) return false;
  return true;
}

/** Byte length of a records value (a Buffer list is written as one field whose length is the sum). */
export function recordsLength(v: Buffer | Buffer[]): number {
  if (Buffer.isBuffer(v)) return v.length;
  let n = 0;
  for (const b of v) n += b.length;
  return n;
}

export interface WriterOptions {
  /** Initial scratch capacity in bytes; the scratch buffer doubles when full. */
  initialBytes?: number;
  /**
   * Byte, bytes and records payloads of at least this many bytes are kept by reference as separate chunks
   * instead of being copied (0 = always by reference). The caller must not modify them until the chunks are sent.
   */
  zeroCopyBytesMin?: number;
}

const WRITER_INITIAL_BYTES = 256;
const WRITER_ZERO_COPY_BYTES_MIN = 8192;

/**
 * Appends to a growing scratch buffer. Large payloads are referenced, not copied, so toChunks() returns a list
 * suited to socket.writev / cork+write; toBuffer() concatenates only when there is more than one chunk.
 */
export class Writer {
  private buf: Buffer;
  /** Write position in buf. */
  private pos = 0;
  /** Start in buf of the bytes not yet moved into chunks (buf[start, pos) is the open section). */
  private start = 0;
  /** Completed sections in order: subarrays of earlier scratch buffers and referenced payloads. */
  private readonly chunks: Buffer[] = [];
  private chunkedBytes = 0;
  private readonly zeroCopyBytesMin: number;

  constructor(options: WriterOptions = {}) {
    this.buf = Buffer.allocUnsafe(options.initialBytes ?? WRITER_INITIAL_BYTES);
    this.zeroCopyBytesMin = options.zeroCopyBytesMin ?? WRITER_ZERO_COPY_BYTES_MIN;
  }

  /** Total bytes written so far. */
  get length(): number {
    return this.chunkedBytes + this.pos - this.start;
  }

  /** The written bytes as a list of chunks (no copy). Writing may continue afterwards. */
  toChunks(): Buffer[] {
    if (this.pos === this.start) return this.chunks.slice();
    return [...this.chunks, this.buf.subarray(this.start, this.pos)];
  }

  /** The written bytes as one Buffer (copies only when there are several chunks). */
  toBuffer(): Buffer {
    if (this.chunks.length === 0) return this.buf.subarray(this.start, this.pos);
    return Buffer.concat(this.toChunks(), this.length);
  }

  private ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }

  private grow(n: number): void {
    const open = this.pos - this.start;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, open + n));
    this.buf.copy(next, 0, this.start, this.pos);
    this.buf = next;
    this.start = 0;
    this.pos = open;
  }

  /** Overwrites an int32 written earlier at absolute position `at` (e.g. a frame size placeholder). */
  patchInt32(at: number, value: number): void {
    if (at >= this.chunkedBytes) {
      this.buf.writeInt32BE(value, this.start + at - this.chunkedBytes);
      return;
    }
    let chunkStart = 0;
    for (const chunk of this.chunks) {
      if (at < chunkStart + chunk.length) {
        if (at + 4 > chunkStart + chunk.length) throw new RangeError(`patchInt32: position ${at} spans two chunks`);
        chunk.writeInt32BE(value, at - chunkStart);
        return;
      }
      chunkStart += chunk.length;
    }
  }

  // Integers are stored byte by byte (a Uint8Array store keeps the low 8 bits) after a cheap exact range check:
  // measurably faster than Buffer's write*BE, and still refuses values that do not fit the wire type.
  int8(v: number): void {
    if ((v << 24) >> 24 !== v) throw outOfRange('int8', v);
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  int16(v: number): void {
    if ((v << 16) >> 16 !== v) throw outOfRange('int16', v);
    this.ensure(2);
    const buf = this.buf;
    const p = this.pos;
    buf[p] = v >>> 8;
    buf[p + 1] = v;
    this.pos = p + 2;
  }

  int32(v: number): void {
    if ((v | 0) !== v) throw outOfRange('int32', v);
    this.ensure(4);
    const buf = this.buf;
    const p = this.pos;
    buf[p] = v >>> 24;
    buf[p + 1] = v >>> 16;
    buf[p + 2] = v >>> 8;
    buf[p + 3] = v;
    this.pos = p + 4;
  }

  int64(v: bigint): void {
    this.ensure(8);
    if (v >= -SAFE_BIG && v <= SAFE_BIG) {
      // Exact in a double: split into a signed high and an unsigned low word without bigint arithmetic.
      const n = Number(v);
      const hi = Math.floor(n / TWO_32);
      this.buf.writeInt32BE(hi, this.pos);
      this.buf.writeUInt32BE(n - hi * TWO_32, this.pos + 4);
      this.pos += 8;
      return;
    }
    this.pos = this.buf.writeBigInt64BE(v, this.pos);
  }

  uint16(v: number): void {
    this.ensure(2);
    this.pos = this.buf.writeUInt16BE(v, this.pos);
  }

  uint32(v: number): void {
    this.ensure(4);
    this.pos = this.buf.writeUInt32BE(v, this.pos);
  }

  float64(v: number): void {
    this.ensure(8);
    this.pos = this.buf.writeDoubleBE(v, this.pos);
  }

  bool(v: boolean): void {
    this.ensure(1);
    this.buf[this.pos++] = v ? 1 : 0;
  }

  uuid(v: Buffer): void {
    if (v.length !== UUID_BYTES) throw new RangeError(`uuid must be ${UUID_BYTES} bytes, got ${v.length}`);
    this.ensure(UUID_BYTES);
    this.pos += v.copy(this.buf, this.pos);
  }

  /** Unsigned varint, 0 .. 2^32-1. */
  uvarint(v: number): void {
    if (!(v >= 0 && v <= UINT32_MAX) || !Number.isInteger(v)) throw new RangeError(`uvarint out of range: ${v}`);
    this.ensure(5);
    const buf = this.buf;
    let p = this.pos;
    while (v >= 0x80) {
      buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[p++] = v;
    this.pos = p;
  }

  /** Zigzag signed 32-bit varint. */
  varint(v: number): void {
    if (!(v >= -0x80000000 && v <= INT32_MAX) || !Number.isInteger(v)) throw new RangeError(`varint out of range: ${v}`);
    this.uvarint(((v << 1) ^ (v >> 31)) >>> 0);
  }

  /** Zigzag signed 64-bit varint. */
  varlong(v: bigint): void {
    this.ensure(10);
    const buf = this.buf;
    let p = this.pos;
    if (v > -VARLONG_NUMBER_MAX && v < VARLONG_NUMBER_MAX) {
      const n = Number(v);
      let u = n >= 0 ? n * 2 : -n * 2 - 1;
      while (u >= 0x80) {
        buf[p++] = (u % 128) | 0x80;
        u = Math.floor(u / 128);
      }
      buf[p++] = u;
    } else {
      let u = BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
      while (u >= 0x80n) {
        buf[p++] = Number(u & 0x7fn) | 0x80;
        u >>= 7n;
      }
      buf[p++] = Number(u);
    }
    this.pos = p;
  }

  /** int16 length + UTF-8. */
  string(s: string): void {
    // A UTF-16 code unit takes at most 3 UTF-8 bytes: reserve that, write, then fill in the real length.
    this.ensure(2 + s.length * 3);
    const n = this.buf.write(s, this.pos + 2, 'utf8');
    if (n > INT16_MAX) throw new RangeError(`string of ${n} bytes exceeds the int16 length limit`);
    this.buf.writeInt16BE(n, this.pos);
    this.pos += 2 + n;
  }

  nullableString(s: string | null): void {
    if (s === null) this.int16(-1);
    else this.string(s);
  }

  /** Unsigned varint (length + 1) + UTF-8. */
  compactString(s: string): void {
    // Up to 42 code units fit in 126 bytes, so the length takes one varint byte and can be written afterwards.
    if (s.length <= 42) {
      this.ensure(1 + s.length * 3);
      const n = this.buf.write(s, this.pos + 1, 'utf8');
      this.buf[this.pos] = n + 1;
      this.pos += 1 + n;
      return;
    }
    const n = Buffer.byteLength(s, 'utf8');
    if (n > INT16_MAX) throw new RangeError(`string of ${n} bytes exceeds the length limit ${INT16_MAX}`);
    this.uvarint(n + 1);
    this.ensure(n);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  compactNullableString(s: string | null): void {
    if (s === null) this.uvarint(0);
    else this.compactString(s);
  }

  /** Appends raw bytes: copied when small, kept by reference at or above zeroCopyBytesMin. */
  raw(b: Buffer): void {
    if (b.length >= this.zeroCopyBytesMin && b.length > 0) {
      if (this.pos > this.start) {
        this.chunks.push(this.buf.subarray(this.start, this.pos));
        this.chunkedBytes += this.pos - this.start;
        this.start = this.pos;
      }
      this.chunks.push(b);
      this.chunkedBytes += b.length;
      return;
    }
    this.ensure(b.length);
    this.pos += b.copy(this.buf, this.pos);
  }

  /** int32 length + bytes. */
  bytes(b: Buffer): void {
    this.int32(b.length);
    this.raw(b);
  }

  nullableBytes(b: Buffer | null): void {
    if (b === null) this.int32(-1);
    else this.bytes(b);
  }

  compactBytes(b: Buffer): void {
    this.uvarint(b.length + 1);
    this.raw(b);
  }

  compactNullableBytes(b: Buffer | null): void {
    if (b === null) this.uvarint(0);
    else this.compactBytes(b);
  }

  /** A records field: one length (the sum for a Buffer list) then the data, zero-copy above the threshold. */
  records(v: Buffer | Buffer[] | null, compact: boolean): void {
    if (v === null) {
      if (compact) this.uvarint(0);
      else this.int32(-1);
      return;
    }
    const n = recordsLength(v);
    if (compact) this.uvarint(n + 1);
    else this.int32(n);
    if (Buffer.isBuffer(v)) this.raw(v);
    else for (const b of v) this.raw(b);
  }

  /** int32 element count, -1 = null. */
  arrayLength(n: number): void {
    this.int32(n);
  }

  /** Unsigned varint (count + 1), -1 = null (written as 0). */
  compactArrayLength(n: number): void {
    this.uvarint(n + 1);
  }

  /** Appends everything another writer holds (used for tagged fields, whose size precedes their value). */
  append(other: Writer): void {
    for (const chunk of other.toChunks()) this.raw(chunk);
  }
}
