// The AMI codec against real Asterisk 22 bytes (test/fixtures/ami/*.log), fed whole, byte by byte
// and split at every position (test/support/decode-ways.ts); its bounds against a lying peer; and
// the encoder's refusal to let a caller's string become a header or an action of its own.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { AmiDecoder, AmiEncodeError, AmiProtocolError, encodeAction, header, type AmiFrame, type AmiHeaders } from '../../src/ami/codec.js';
import { asteriskMessages, readAmiTranscript } from '../support/ami-transcript.js';
import { decodeAllWays } from '../support/decode-ways.js';

/** Every value of `name`, in order (`Multi:`, `AppData:`). */
function headerValues(headers: AmiHeaders, name: string): string[] {
  const want = name.toLowerCase();
  return headers.filter(([n]) => n.toLowerCase() === want).map(([, v]) => v);
}

const make = (): AmiDecoder => new AmiDecoder();

function decodeWhole(bytes: Buffer, decoder = new AmiDecoder()): AmiFrame[] {
  decoder.feed(bytes);
  const frames: AmiFrame[] = [];
  for (let f = decoder.next(); f !== undefined; f = decoder.next()) frames.push(f);
  return frames;
}

describe('AMI decoder on real transcripts', () => {
  it('the bad-login connection: banner, then the error, every way it can be cut', () => {
    const c2 = readAmiTranscript('login-bad.log').get('c2')!;
    const frames = decodeAllWays(make, c2.fromAsterisk);
    assert.deepStrictEqual(frames, [
      { kind: 'banner', line: 'Asterisk Call Manager/11.0.0' },
      { kind: 'response', response: 'Error', actionId: 'bad-1', headers: [['Response', 'Error'], ['ActionID', 'bad-1'], ['Message', 'Authentication failed']] },
    ]);
  });

  it('CoreShowChannels: the list start, six items with their Uniqueids, the Complete event, every way it can be cut', () => {
    const c1 = readAmiTranscript('coreshowchannels.log').get('c1')!;
    // The part from the banner to the first Complete: a few KB, so every split stays cheap.
    const text = c1.fromAsterisk.toString('utf8');
    const end = text.indexOf('ListItems: 6\r\n\r\n') + 'ListItems: 6\r\n\r\n'.length;
    const frames = decodeAllWays(make, Buffer.from(text.slice(0, end), 'utf8'));
    const items = frames.filter((f) => f.kind === 'event' && f.event === 'CoreShowChannel');
    assert.equal(items.length, 6);
    for (const item of items) {
      assert.equal(item.kind === 'event' && item.actionId, 'csc-1');
      assert.match(header(item.kind === 'event' ? item.headers : [], 'Uniqueid') ?? '', /^[0-9]+\.[0-9]+$/);
    }
    const last = frames.at(-1)!;
    assert.equal(last.kind === 'event' && last.event, 'CoreShowChannelsComplete');
  });

  it('events-call-system.log (a whole call seen with Events: call,system), every way it can be cut', () => {
    const c1 = readAmiTranscript('events-call-system.log').get('c1')!;
    const frames = decodeAllWays(make, c1.fromAsterisk);
    const names = frames.flatMap((f) => (f.kind === 'event' ? [f.event] : []));
    assert.equal(names[0], 'FullyBooted');
    assert.deepStrictEqual(names.filter((n) => n === 'Hangup').length, 2);
    assert.ok(!names.includes('Newexten') && !names.includes('SuccessfulAuth'), 'dialplan and security classes are masked');
  });

  for (const file of ['banner-login.log', 'events-call.log', 'events-call-system.log', 'ping-getvar.log', 'restart.log', 'login-md5.log']) {
    it(`${file}: every connection decodes, whole and byte by byte, to exactly Asterisk's messages`, () => {
      for (const [conn, c] of readAmiTranscript(file)) {
        const whole = decodeWhole(c.fromAsterisk);
        const bytewise: AmiFrame[] = [];
        const d = new AmiDecoder();
        for (const b of c.fromAsterisk) {
          d.feed(Buffer.of(b));
          for (let f = d.next(); f !== undefined; f = d.next()) bytewise.push(f);
        }
        assert.deepStrictEqual(bytewise, whole, `${file} ${conn}`);
        assert.equal(whole[0]?.kind, 'banner');
        const messages = asteriskMessages(c);
        assert.equal(whole.length - 1, messages.length, `${file} ${conn}: one frame per message`);
        // Each frame's headers, written back as Asterisk writes them, are the message's bytes.
        whole.slice(1).forEach((f, i) => {
          assert.notEqual(f.kind, 'other');
          const headers = f.kind === 'banner' ? [] : f.headers;
          assert.equal(headers.map(([n, v]) => `${n}: ${v}\r\n`).join('') + '\r\n', messages[i]!.toString('utf8'));
        });
      }
    });
  }

  it('keeps repeated headers and values holding ": " (split at the first colon)', () => {
    const frames = decodeWhole(readAmiTranscript('events-call.log').get('c1')!.fromAsterisk);
    const ue = frames.find((f) => f.kind === 'event' && f.event === 'UserEvent');
    assert.ok(ue !== undefined && ue.kind === 'event');
    assert.deepStrictEqual(headerValues(ue.headers, 'Multi'), ['one', 'two']);
    const appData = frames.flatMap((f) => (f.kind === 'event' ? headerValues(f.headers, 'AppData') : []));
    assert.ok(appData.includes('UserEvent(CallEvent,Foo: bar)'), 'AppData with ": " kept whole');
    // OriginateResponse is an event even though it carries Response: and ActionID:.
    const or = frames.find((f) => f.kind === 'event' && f.event === 'OriginateResponse');
    assert.ok(or !== undefined && or.kind === 'event' && header(or.headers, 'Response') !== undefined);
  });

  it('takes bare LF line ends, matches header names in any case, keeps trailing spaces', () => {
    const frames = decodeWhole(Buffer.from('Asterisk Call Manager/11.0.0\nresponse: Success\nactionid: x  \nMessage:   hi \n\n'));
    assert.deepStrictEqual(frames[1], { kind: 'response', response: 'Success', actionId: 'x  ', headers: [['response', 'Success'], ['actionid', 'x  '], ['Message', 'hi ']] });
  });
});

describe('AMI decoder bounds (a lying AMI)', () => {
  const banner = 'Asterisk Call Manager/11.0.0\r\n';

  it('a 100 KB line is a protocol error before it is all buffered', () => {
    const d = new AmiDecoder();
    d.feed(Buffer.from(banner));
    assert.equal(d.next()?.kind, 'banner');
    d.feed(Buffer.from('Event: X\r\nHuge: '));
    assert.equal(d.next(), undefined);
    assert.throws(() => {
      for (let i = 0; i < 100; i++) {
        d.feed(Buffer.alloc(1024, 0x61));
        d.next();
      }
    }, (e: unknown) => e instanceof AmiProtocolError && /longer than 65536 bytes/.test(e.message));
  });

  it('10,000 headers in one message is a protocol error at header 1025', () => {
    const d = new AmiDecoder();
    d.feed(Buffer.from(banner + 'Event: X\r\n' + 'H: v\r\n'.repeat(10_000)));
    d.next();
    assert.throws(() => d.next(), (e: unknown) => e instanceof AmiProtocolError && /more than 1024 headers/.test(e.message));
  });

  it('a never-ending message is cut at maxMessageBytes', () => {
    const d = new AmiDecoder({ maxMessageBytes: 10_000, maxHeaders: 1_000_000 });
    d.feed(Buffer.from(banner + 'Event: X\r\n'));
    d.next();
    assert.throws(() => {
      for (let i = 0; i < 1000; i++) {
        d.feed(Buffer.from('Header: a value of some length\r\n'));
        d.next();
      }
    }, (e: unknown) => e instanceof AmiProtocolError && /longer than 10000 bytes/.test(e.message));
  });

  it('a line with no colon is a protocol error', () => {
    assert.throws(() => decodeWhole(Buffer.from(banner + 'garbage garbage\r\n\r\n')), AmiProtocolError);
  });

  it('random bytes only ever give frames or an AmiProtocolError, the same whichever way they are cut', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(300), { maxLength: 4 }), (bytes, cuts) => {
        const data = Buffer.concat([Buffer.from(banner), Buffer.from(bytes)]);
        const run = (points: number[]): string => {
          const d = new AmiDecoder({ maxLineBytes: 64, maxHeaders: 8, maxMessageBytes: 256 });
          const out: string[] = [];
          let from = 0;
          try {
            for (const at of [...points.filter((p) => p < data.length).sort((a, b) => a - b), data.length]) {
              d.feed(data.subarray(from, Math.max(from, at)));
              from = Math.max(from, at);
              for (let f = d.next(); f !== undefined; f = d.next()) out.push(JSON.stringify(f));
            }
          } catch (e) {
            assert.ok(e instanceof AmiProtocolError, String(e));
            out.push('error');
          }
          return out.join('\n');
        };
        assert.equal(run(cuts), run([]));
      }),
      { numRuns: 300 },
    );
  });
});

describe('AMI encoder', () => {
  it('writes an action as Asterisk reads it', () => {
    assert.equal(
      encodeAction('Login', 'login-1', [['Username', 'admin'], ['Secret', 'admin-secret'], ['Events', 'off']]).toString(),
      'Action: Login\r\nActionID: login-1\r\nUsername: admin\r\nSecret: admin-secret\r\nEvents: off\r\n\r\n',
    );
  });

  it('refuses CR, LF and NUL in any value, so no string can inject a header or an action', () => {
    for (const evil of ['x\r\nAction: Originate', 'x\nChannel: foo', 'x\r', 'a\0b']) {
      assert.throws(() => encodeAction('Getvar', 'g-1', [['Variable', evil]]), AmiEncodeError);
      assert.throws(() => encodeAction(evil, 'g-1'), AmiEncodeError);
      assert.throws(() => encodeAction('Ping', evil), AmiEncodeError);
    }
    assert.throws(() => encodeAction('Ping', 'p', [['Bad Name', 'v']]), AmiEncodeError);
    assert.throws(() => encodeAction('Ping', 'p', [['Colon:', 'v']]), AmiEncodeError);
  });

  it('refuses what Asterisk would cut: a line over 1022 bytes, a message over 128 lines', () => {
    assert.doesNotThrow(() => encodeAction('Getvar', 'g', [['Variable', 'x'.repeat(1022 - 'Variable: '.length)]]));
    assert.throws(() => encodeAction('Getvar', 'g', [['Variable', 'x'.repeat(1023 - 'Variable: '.length)]]), AmiEncodeError);
    const many = Array.from({ length: 126 }, (_, i) => [`H${i}`, 'v'] as const);
    assert.doesNotThrow(() => encodeAction('Ping', 'p', many));
    assert.throws(() => encodeAction('Ping', 'p', [...many, ['One', 'more']]), AmiEncodeError);
  });

  it('whatever the value, the encoded action decodes back to exactly its headers', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.stringMatching(/^[A-Za-z][A-Za-z0-9_-]{0,10}$/), fc.string({ maxLength: 40, unit: 'binary-ascii' })), { maxLength: 10 }), (headers) => {
        let bytes: Buffer;
        try {
          bytes = encodeAction('Ping', 'id-1', headers);
        } catch (e) {
          assert.ok(e instanceof AmiEncodeError);
          assert.ok(headers.some(([, v]) => /[\r\n\0]/.test(v)));
          return;
        }
        const d = new AmiDecoder({ banner: false });
        d.feed(bytes);
        const f = d.next();
        assert.equal(d.next(), undefined, 'one action is one message');
        assert.equal(f?.kind, 'other');
        // The decoder skips spaces after the colon, as Asterisk does; trailing ones stay.
        assert.deepStrictEqual(f.headers, [['Action', 'Ping'], ['ActionID', 'id-1'], ...headers.map(([n, v]) => [n, v.replace(/^ +/, '')])]);
      }),
      { numRuns: 300 },
    );
  });
});
