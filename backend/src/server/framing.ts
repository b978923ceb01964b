// Size-prefixed framing: int32 size, then that many bytes (request header + body). Chunks are kept as they came
// off the socket; a frame that lies inside one chunk is returned as a view of it (no copy, so a Produce request's
// record batches reach the log as the bytes the client sent), and only a frame spanning chunks is copied once.

/** A frame announced a size outside [0, frameBytesMax]: the connection must be closed before reading it. */
export class FrameSizeError extends Error {
  readonly size: number;
  constructor(size: number, frameBytesMax: number) {
    super(`frame of ${size} bytes is outside 0..${frameBytesMax} (requestBytesMax)`);
    this.name = 'FrameSizeError';
    this.size = size;
  }
}

export const SIZE_PREFIX_BYTES = 4;

export class FrameReader {
  private readonly frameBytesMax: number;
  // Invariant: chunks[0] starts at byte `head`; `buffered` counts bytes from there to the end of the last chunk.
  private chunks: Buffer[] = [];
  private head = 0;
  private buffered = 0;

  constructor(frameBytesMax: number) {
    this.frameBytesMax = frameBytesMax;
  }

  get bufferedBytes(): number {
    return this.buffered;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** The next whole frame without its size prefix, or null until more bytes arrive. Throws FrameSizeError. */
  next(): Buffer | null {
    if (this.buffered < SIZE_PREFIX_BYTES) return null;
    const size = this.peekSize();
    if (size < 0 || size > this.frameBytesMax) throw new FrameSizeError(size, this.frameBytesMax);
    if (this.buffered < SIZE_PREFIX_BYTES + size) return null;
    this.skip(SIZE_PREFIX_BYTES);
    return this.take(size);
  }

  private peekSize(): number {
    const first = this.chunks[0]!;
    if (first.length - this.head >= SIZE_PREFIX_BYTES) return first.readInt32BE(this.head);
    const bytes = Buffer.allocUnsafe(SIZE_PREFIX_BYTES);
    this.copyOut(bytes, SIZE_PREFIX_BYTES, false);
    return bytes.readInt32BE(0);
  }

  private skip(n: number): void {
    let left = n;
    while (left > 0) {
      const first = this.chunks[0]!;
      const available = first.length - this.head;
      if (available > left) {
        this.head += left;
        break;
      }
      left -= available;
      this.chunks.shift();
      this.head = 0;
    }
    this.buffered -= n;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    if (first === undefined || n === 0) return Buffer.alloc(0);
    if (first.length - this.head >= n) {
      const frame = first.subarray(this.head, this.head + n);
      this.skip(n);
      return frame;
    }
    const frame = Buffer.allocUnsafe(n);
    this.copyOut(frame, n, true);
    return frame;
  }

  /** Copy the first n buffered bytes into target; consume them when `consume`. */
  private copyOut(target: Buffer, n: number, consume: boolean): void {
    let written = 0;
    let index = 0;
    let offset = this.head;
    while (written < n) {
      const chunk = this.chunks[index]!;
      const count = Math.min(chunk.length - offset, n - written);
      chunk.copy(target, written, offset, offset + count);
      written += count;
      offset += count;
      if (offset === chunk.length) {
        index++;
        offset = 0;
      }
    }
    if (consume) {
      this.chunks.splice(0, index);
      this.head = offset;
      this.buffered -= n;
    }
  }
}
