// The read side of every decoder in the package (memcached text, memcached binary, AGI): chunks
// go in, the decoder reads from a cursor, and the buffer grows amortised instead of concatenating
// all pending bytes on every chunk, which would copy a large reply once per chunk it arrives in.

/** The storage before the first chunk and after one is released: empty, so never written to, and shared. */
const NOTHING = Buffer.alloc(0);

export class ReadBuffer {
  #buf: Buffer = NOTHING;
  #start = 0;
  #end = 0;
  /** True when #buf is not ours to write into: a chunk we were handed, or one `keep` gave views of. */
  #borrowed = false;

  get available(): number {
    return this.#end - this.#start;
  }

  /** The underlying bytes; valid from `offset` for `available` bytes until the next append. */
  get buffer(): Buffer {
    return this.#buf;
  }

  get offset(): number {
    return this.#start;
  }

  append(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.#start === this.#end) {
      // Nothing pending: decode straight from the chunk, no copy.
      this.#buf = chunk;
      this.#start = 0;
      this.#end = chunk.length;
      this.#borrowed = true;
      return;
    }
    const pending = this.#end - this.#start;
    const need = pending + chunk.length;
    if (!this.#borrowed && this.#end + chunk.length <= this.#buf.length) {
      chunk.copy(this.#buf, this.#end);
      this.#end += chunk.length;
      return;
    }
    if (!this.#borrowed && need <= this.#buf.length) {
      this.#buf.copy(this.#buf, 0, this.#start, this.#end);
      chunk.copy(this.#buf, pending);
    } else {
      const next = Buffer.allocUnsafe(Math.max(need, pending * 2, 4096));
      this.#buf.copy(next, 0, this.#start, this.#end);
      chunk.copy(next, pending);
      this.#buf = next;
      this.#borrowed = false;
    }
    this.#start = 0;
    this.#end = need;
  }

  /** Position (relative to the cursor) of the first `byte` within `limit` bytes, or -1. */
  indexOf(byte: number, limit = Infinity): number {
    const stop = Math.min(this.#end, this.#start + limit);
    const at = this.#buf.indexOf(byte, this.#start);
    return at === -1 || at >= stop ? -1 : at - this.#start;
  }

  byteAt(relative: number): number {
    return this.#buf[this.#start + relative] ?? -1;
  }

  /** A view of the next `length` bytes (valid until the next append). */
  peek(length: number): Buffer {
    return this.#buf.subarray(this.#start, this.#start + length);
  }

  /** A copy of the next `length` bytes that the caller may keep. */
  copy(length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    this.#buf.copy(out, 0, this.#start, this.#start + length);
    return out;
  }

  /**
   * A view of `length` bytes from `relative` on that stays valid for good, without a copy: the
   * memory under it is never written again. A chunk we were handed never is (each socket read
   * gets memory of its own); our own buffer is given up for a new one at the next append that
   * would have moved bytes within it. A copy costs three times what the view does, and a
   * reply's value (an AGI answer, an environment value) is what a decoder hands out to keep.
   * The chunk's owner must not change a chunk after append().
   */
  keep(relative: number, length: number): Buffer {
    this.#borrowed = true;
    return this.#buf.subarray(this.#start + relative, this.#start + relative + length);
  }

  /** A copy of `length` bytes from `relative` on, that the caller may keep. */
  copyAt(relative: number, length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    this.#buf.copy(out, 0, this.#start + relative, this.#start + relative + length);
    return out;
  }

  latin1(length: number): string {
    return this.#buf.toString('latin1', this.#start, this.#start + length);
  }

  skip(length: number): void {
    this.#start += length;
    if (this.#start >= this.#end) {
      this.#start = 0;
      this.#end = 0;
      if (this.#borrowed) {
        this.#buf = NOTHING;
        this.#borrowed = false;
      }
    }
  }

  readUInt8(relative: number): number {
    return this.#buf.readUInt8(this.#start + relative);
  }

  readUInt16BE(relative: number): number {
    return this.#buf.readUInt16BE(this.#start + relative);
  }

  readUInt32BE(relative: number): number {
    return this.#buf.readUInt32BE(this.#start + relative);
  }

  readBigUInt64BE(relative: number): bigint {
    return this.#buf.readBigUInt64BE(this.#start + relative);
  }
}
