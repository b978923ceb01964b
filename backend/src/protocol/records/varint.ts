// Varints as RecordBatch v2 records use them: base-128 little-endian groups, zigzag for signed values.
// Values are plain numbers: varint is int32, varlong is exact for |n| <= 2^52 (zigzag doubles the magnitude;
// timestamps and timestamp deltas are far below that).

import { ErrorCode, KafkaError } from '../errors.ts';

/** An int32 varint never needs more than 5 bytes, an int64 varlong more than 10. */
const VARINT_BYTES_MAX = 5;
const VARLONG_BYTES_MAX = 10;
const TWO_POW_32 = 4294967296;

export function zigzagEncode(n: number): number {
  return n >= 0 ? n * 2 : -n * 2 - 1;
}

export function zigzagDecode(u: number): number {
  return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
}

/** Bytes the unsigned varint of `u` (0 <= u < 2^53) takes. */
export function sizeOfUnsignedVarint(u: number): number {
  let size = 1;
  while (u >= 128) {
    u = Math.floor(u / 128);
    size++;
  }
  return size;
}

export function sizeOfVarint(n: number): number {
  return sizeOfUnsignedVarint(zigzagEncode(n));
}

/** Writes the unsigned varint of `u` at `pos`; returns the position after it. */
export function writeUnsignedVarint(buf: Buffer, pos: number, u: number): number {
  while (u >= 128) {
    buf[pos++] = (u % 128) | 0x80;
    u = Math.floor(u / 128);
  }
  buf[pos++] = u;
  return pos;
}

/** Writes a zigzag varint/varlong; returns the position after it. */
export function writeVarint(buf: Buffer, pos: number, n: number): number {
  return writeUnsignedVarint(buf, pos, zigzagEncode(n));
}

/** Writes a signed int64 (|n| < 2^53) big-endian without going through BigInt. */
export function writeInt64BE(buf: Buffer, pos: number, n: number): void {
  const hi = Math.floor(n / TWO_POW_32);
  buf.writeInt32BE(hi, pos);
  buf.writeUInt32BE(n - hi * TWO_POW_32, pos + 4);
}

/** Reads a signed int64 big-endian as a number (exact while |n| < 2^53). */
export function readInt64BE(buf: Buffer, pos: number): number {
  return buf.readInt32BE(pos) * TWO_POW_32 + buf.readUInt32BE(pos + 4);
}

/** A cursor over a buffer that reads record fields. Malformed input throws KafkaError CORRUPT_MESSAGE. */
export class ByteReader {
  pos: number;
  readonly buf: Buffer;
  readonly end: number;

  constructor(buf: Buffer, pos = 0, end = buf.length) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  readUnsignedVarint(maxBytes = VARLONG_BYTES_MAX): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < maxBytes; i++) {
      if (this.pos >= this.end) throw corrupt('varint runs past the end of the record');
      const b = this.buf[this.pos++]!;
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return value;
      scale *= 128;
    }
    throw corrupt(`varint longer than ${maxBytes} bytes`);
  }

  readVarint(): number {
    return zigzagDecode(this.readUnsignedVarint(VARINT_BYTES_MAX));
  }

  readVarlong(): number {
    return zigzagDecode(this.readUnsignedVarint(VARLONG_BYTES_MAX));
  }

  readInt8(): number {
    this.need(1);
    return this.buf.readInt8(this.pos++);
  }

  /** A varint length followed by that many bytes; -1 is null. Returns a view, not a copy. */
  readVarBytes(): Buffer | null {
    const len = this.readVarint();
    if (len < 0) return null;
    this.need(len);
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }

  private need(n: number): void {
    if (n < 0 || this.pos + n > this.end) throw corrupt('field runs past the end of the record');
  }
}

function corrupt(message: string): KafkaError {
  return new KafkaError(ErrorCode.CORRUPT_MESSAGE, message);
}
