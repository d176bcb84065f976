// ReadBuffer, ByteWriter and Fifo: the byte and queue plumbing under every codec and connection.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';

import { ByteWriter } from '../../src/util/byte-writer.js';
import { Fifo } from '../../src/util/fifo.js';
import { ReadBuffer } from '../../src/util/read-buffer.js';

const bytes = (text: string): Buffer => Buffer.from(text, 'latin1');

/** The bytes between the cursor and the end. */
const pending = (rb: ReadBuffer): string => rb.peek(rb.available).toString('latin1');

describe('ReadBuffer', () => {
  it('keep: a kept view stays intact whatever is appended and skipped afterwards', () => {
    const rb = new ReadBuffer();
    const kept: Array<{ view: Buffer; expected: string }> = [];
    // Own buffer (pending bytes + chunk), then views, then appends that would compact or grow it.
    rb.append(Buffer.from('ab'));
    rb.append(Buffer.from('cdefgh'));
    kept.push({ view: rb.keep(1, 3), expected: 'bcd' });
    rb.skip(5);
    for (let i = 0; i < 50; i++) {
      rb.append(Buffer.from(`<${i}:${'x'.repeat(i * 7)}>`));
      if (rb.available > 4) {
        kept.push({ view: rb.keep(0, 4), expected: rb.latin1(4) });
        rb.skip(rb.available - 2);
      }
    }
    for (const { view, expected } of kept) assert.equal(view.toString('latin1'), expected);
    assert.ok(kept.length > 40);
  });

  it('append when empty borrows the chunk, no copy', () => {
    const rb = new ReadBuffer();
    const chunk = bytes('STORED\r\n');
    rb.append(chunk);
    assert.ok(rb.buffer === chunk);
    assert.equal(rb.offset, 0);
    assert.equal(rb.available, 8);
    assert.equal(pending(rb), 'STORED\r\n');
  });

  it('an empty chunk changes nothing', () => {
    const rb = new ReadBuffer();
    const chunk = bytes('abc');
    rb.append(chunk);
    rb.append(Buffer.alloc(0));
    assert.ok(rb.buffer === chunk);
    assert.equal(pending(rb), 'abc');
  });

  it('append with pending data copies both into a buffer of its own', () => {
    const rb = new ReadBuffer();
    const first = bytes('VALUE k 0 3\r\n');
    rb.append(first);
    rb.skip(6);
    const second = bytes('abc\r\n');
    rb.append(second);
    assert.ok(rb.buffer !== first && rb.buffer !== second);
    assert.ok(rb.buffer.length >= 4096, `capacity ${rb.buffer.length}`);
    assert.equal(rb.offset, 0);
    assert.equal(pending(rb), 'k 0 3\r\nabc\r\n');
    // The caller's chunks are no longer referenced.
    first.fill(0);
    second.fill(0);
    assert.equal(pending(rb), 'k 0 3\r\nabc\r\n');
  });

  it('small appends go in place; growth keeps every pending byte', () => {
    const rb = new ReadBuffer();
    rb.append(bytes('a'));
    rb.append(bytes('b'));
    const own = rb.buffer;
    rb.append(bytes('c'));
    assert.ok(rb.buffer === own, 'appended in place');
    let expected = 'abc';
    for (let i = 0; i < 50; i++) {
      const piece = String.fromCharCode(0x41 + (i % 26)).repeat(300);
      rb.append(bytes(piece));
      expected += piece;
    }
    assert.ok(rb.buffer !== own, 'grew');
    assert.ok(rb.buffer.length >= expected.length);
    assert.equal(rb.available, expected.length);
    assert.equal(pending(rb), expected);
  });

  it('compacts in place when the pending bytes fit after moving them to the front', () => {
    const rb = new ReadBuffer();
    rb.append(bytes('0123456789'));
    rb.append(bytes('abcdefghij'));
    const own = rb.buffer;
    assert.equal(own.length, 4096);
    const filler = Buffer.alloc(4000, 0x2e);
    filler[200] = 0x0a; // a newline that becomes stale bytes past the end after compaction
    rb.append(filler);
    rb.skip(4010); // 10 bytes of filler left
    rb.append(bytes('X'.repeat(100)));
    assert.ok(rb.buffer === own, 'no new buffer');
    assert.equal(rb.offset, 0);
    assert.equal(pending(rb), '.'.repeat(10) + 'X'.repeat(100));
    assert.equal(rb.indexOf(0x0a), -1, 'stale bytes past the end are not searched');
  });

  it('indexOf is relative to the cursor and honours its limit', () => {
    const rb = new ReadBuffer();
    rb.append(bytes('abc\ndef\n'));
    assert.equal(rb.indexOf(0x0a), 3);
    assert.equal(rb.indexOf(0x0a, 4), 3);
    assert.equal(rb.indexOf(0x0a, 3), -1);
    assert.equal(rb.indexOf(0x0a, 0), -1);
    assert.equal(rb.indexOf(0x7a), -1);
    rb.skip(4);
    assert.equal(rb.indexOf(0x0a), 3);
    assert.equal(rb.indexOf(0x61), -1, 'bytes before the cursor are not searched');
    assert.equal(rb.indexOf(0x0a, 3), -1);
  });

  it('reads relative to the cursor', () => {
    const rb = new ReadBuffer();
    rb.append(Buffer.from([0xff, 0x81, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08]));
    rb.skip(1);
    assert.equal(rb.byteAt(0), 0x81);
    assert.equal(rb.readUInt8(0), 0x81);
    assert.equal(rb.readUInt16BE(1), 0x0102);
    assert.equal(rb.readUInt32BE(1), 0x0102_0304);
    assert.equal(rb.readBigUInt64BE(1), 0x0102_0304_0506_0708n);
    assert.equal(rb.byteAt(9), -1, 'past the end');
    assert.equal(rb.latin1(2), '\x81\x01');
    const copy = rb.copy(3);
    rb.buffer.fill(0);
    assert.deepStrictEqual(copy, Buffer.from([0x81, 0x01, 0x02]), 'copy() is the caller’s');
  });

  it('skip to the end resets the cursor and releases a borrowed chunk', () => {
    const rb = new ReadBuffer();
    rb.append(bytes('END\r\n'));
    rb.skip(2);
    assert.equal(rb.offset, 2);
    rb.skip(3);
    assert.equal(rb.available, 0);
    assert.equal(rb.offset, 0);
    assert.equal(rb.buffer.length, 0, 'the borrowed chunk is let go');
    const next = bytes('OK\r\n');
    rb.append(next);
    assert.ok(rb.buffer === next, 'borrows again');
  });

  it('skip to the end of its own buffer resets the cursor too', () => {
    const rb = new ReadBuffer();
    rb.append(bytes('ab'));
    rb.append(bytes('cd'));
    rb.skip(4);
    assert.equal(rb.available, 0);
    assert.equal(rb.offset, 0);
    rb.append(bytes('ef'));
    assert.equal(pending(rb), 'ef');
  });
});

describe('ByteWriter', () => {
  it('decimal writes the digits String() would, growing the buffer as needed', () => {
    const values = [0, 7, 9, 10, 11, 99, 100, 101, 1234567, 4294967295, 4294967296, Number.MAX_SAFE_INTEGER];
    const w = new ByteWriter(1);
    for (const n of values) {
      w.decimal(n);
      w.byte(0x2c);
    }
    assert.equal(Buffer.concat(w.take()).toString('latin1'), values.map((n) => `${n},`).join(''));
  });

  it('uint64 writes big-endian 8 bytes on both sides of 2^32', () => {
    const values = [0n, 1n, 0xffff_ffffn, 0x1_0000_0000n, 0x1234_5678_9abc_def0n, 2n ** 64n - 1n];
    const w = new ByteWriter(1);
    for (const n of values) w.uint64(n);
    const out = Buffer.concat(w.take());
    assert.deepEqual(values.map((_, i) => out.readBigUInt64BE(i * 8)), values);
  });

  it('uint64Decimal writes every unsigned 64-bit number as String() would', () => {
    const values = [0n, 1n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n];
    const w = new ByteWriter(1);
    for (const n of values) {
      w.uint64Decimal(n);
      w.byte(0x2c);
    }
    assert.equal(Buffer.concat(w.take()).toString('latin1'), values.map((n) => `${n},`).join(''));
  });

  it('small pieces of every kind coalesce into one chunk', () => {
    const w = new ByteWriter();
    w.latin1('get ');
    w.bytes(bytes('key'));
    w.byte(0x20);
    w.uint16(0x0102);
    w.uint32(-1);
    w.uint32(0x0a0b_0c0d);
    w.uint64(0xffff_ffff_ffff_fffen);
    w.bytes(new Uint8Array([1, 2, 3]));
    assert.equal(w.pendingBytes, 4 + 3 + 1 + 2 + 4 + 4 + 8 + 3);
    const chunks = w.take();
    assert.equal(chunks.length, 1);
    assert.equal(
      chunks[0]!.toString('hex'),
      bytes('get key ').toString('hex') + '0102' + 'ffffffff' + '0a0b0c0d' + 'fffffffffffffffe' + '010203',
    );
  });

  it('grows past its initial capacity', () => {
    const w = new ByteWriter(4);
    const text = 'x'.repeat(1000);
    w.latin1(text);
    w.uint64(1n);
    const chunks = w.take();
    assert.equal(chunks.length, 1);
    assert.deepStrictEqual(chunks[0], Buffer.concat([bytes(text), Buffer.from([0, 0, 0, 0, 0, 0, 0, 1])]));
  });

  it('a piece of 16 KiB or more is passed by reference as its own chunk', () => {
    const big = Buffer.alloc(16 * 1024, 0x61);
    const w = new ByteWriter();
    w.latin1('set k 0 0 16384\r\n');
    w.bytes(big);
    w.latin1('\r\n');
    assert.equal(w.pendingBytes, 17 + 16384 + 2);
    const chunks = w.take();
    assert.equal(chunks.length, 3);
    assert.deepStrictEqual(chunks[0], bytes('set k 0 0 16384\r\n'));
    assert.ok(chunks[1] === big, 'the very Buffer, not a copy');
    assert.deepStrictEqual(chunks[2], bytes('\r\n'));
  });

  it('a piece just under 16 KiB is copied', () => {
    const piece = Buffer.alloc(16 * 1024 - 1, 0x62);
    const w = new ByteWriter();
    w.byte(0x21);
    w.bytes(piece);
    const chunks = w.take();
    assert.equal(chunks.length, 1);
    assert.ok(chunks[0] !== piece);
    assert.deepStrictEqual(chunks[0], Buffer.concat([bytes('!'), piece]));
  });

  it('large pieces back to back leave no empty chunks; a large Uint8Array shares its memory', () => {
    const a = Buffer.alloc(20_000, 1);
    const backing = new Uint8Array(30_000).fill(2);
    const b = backing.subarray(5, 20_005);
    const w = new ByteWriter();
    w.bytes(a);
    w.bytes(b);
    const chunks = w.take();
    assert.equal(chunks.length, 2);
    assert.ok(chunks[0] === a);
    assert.ok(chunks[1]!.buffer === backing.buffer, 'no copy');
    assert.equal(chunks[1]!.byteOffset, 5);
    assert.equal(chunks[1]!.length, 20_000);
  });

  it('take() resets the writer, and what it handed out stays intact', () => {
    const w = new ByteWriter();
    w.latin1('first');
    const [first] = w.take();
    assert.deepStrictEqual(w.take(), []);
    assert.equal(w.pendingBytes, 0);
    w.latin1('SECOND');
    assert.deepStrictEqual(w.take(), [bytes('SECOND')]);
    assert.deepStrictEqual(first, bytes('first'), 'the staging buffer is reused, the taken chunk is not');
  });

  it(
    'an initial capacity of 0 still grows',
    () => {
      const module = new URL('../../src/util/byte-writer.js', import.meta.url).href;
      const script = `import { ByteWriter } from ${JSON.stringify(module)};
        const w = new ByteWriter(0); w.latin1('ok'); process.stdout.write(Buffer.concat(w.take()));`;
      const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { timeout: 2000, encoding: 'latin1' });
      assert.equal(child.signal, null, 'the child hung and was killed');
      assert.equal(child.stdout, 'ok');
    },
  );
});

describe('Fifo', () => {
  it('push, peek, at, shift, length', () => {
    const q = new Fifo<string>();
    assert.equal(q.length, 0);
    assert.equal(q.peek(), undefined);
    assert.equal(q.shift(), undefined);
    q.push('a');
    q.push('b');
    q.push('c');
    assert.equal(q.length, 3);
    assert.equal(q.peek(), 'a');
    assert.equal(q.at(0), 'a');
    assert.equal(q.at(2), 'c');
    assert.equal(q.at(3), undefined);
    assert.equal(q.shift(), 'a');
    assert.equal(q.peek(), 'b');
    assert.equal(q.at(1), 'c');
    assert.equal(q.length, 2);
    assert.equal(q.shift(), 'b');
    assert.equal(q.shift(), 'c');
    assert.equal(q.shift(), undefined);
    assert.equal(q.length, 0);
    q.push('d');
    assert.equal(q.peek(), 'd');
    assert.equal(q.length, 1);
  });

  it('drain returns everything oldest first and empties the queue', () => {
    const q = new Fifo<number>();
    for (let i = 0; i < 5; i++) q.push(i);
    q.shift();
    assert.deepStrictEqual(q.drain(), [1, 2, 3, 4]);
    assert.equal(q.length, 0);
    assert.equal(q.peek(), undefined);
    assert.deepStrictEqual(q.drain(), []);
    q.push(9);
    assert.deepStrictEqual(q.drain(), [9]);
  });

  it('keeps order through the compaction after more than 1024 shifts', () => {
    const q = new Fifo<number>();
    for (let i = 0; i < 3000; i++) q.push(i);
    for (let i = 0; i < 1600; i++) assert.equal(q.shift(), i);
    assert.equal(q.length, 1400);
    assert.equal(q.peek(), 1600);
    assert.equal(q.at(0), 1600);
    assert.equal(q.at(1399), 2999);
    assert.equal(q.at(1400), undefined);
    for (let i = 3000; i < 3100; i++) q.push(i);
    assert.equal(q.shift(), 1600);
    assert.deepStrictEqual(
      q.drain(),
      Array.from({ length: 1499 }, (_, i) => 1601 + i),
    );
  });

  it('a queue that never empties keeps order (repeated compactions)', () => {
    const q = new Fifo<number>();
    let next = 0;
    let expected = 0;
    for (let i = 0; i < 3; i++) q.push(next++);
    for (let round = 0; round < 10_000; round++) {
      q.push(next++);
      assert.equal(q.shift(), expected++);
      assert.equal(q.length, 3);
      assert.equal(q.at(2), next - 1);
    }
    assert.deepStrictEqual(q.drain(), [expected, expected + 1, expected + 2]);
  });
});
