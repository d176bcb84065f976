// The fake AMI server (test/support/fake-ami.ts) replayed against what Asterisk 22.10.1 sent in
// test/fixtures/ami/*.log: the recorded client bytes go in, and what comes out must be the
// recorded Asterisk bytes, exactly. Where Asterisk's output holds a clock or a random number, the
// fake is given the recorded one.

import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { after, describe, it } from 'node:test';

import { AmiDecoder, header, type AmiHeaders } from '../../src/ami/codec.js';
import { asteriskMessages, readAmiTranscript } from '../support/ami-transcript.js';
import { FakeAmi, type FakeAmiChannel, type FakeAmiOptions } from '../support/fake-ami.js';

/** Sends `input` in one write and collects what comes back until the fake closes or `quietMs` pass with nothing new. */
async function exchange(port: number, input: Buffer, quietMs = 150): Promise<{ output: Buffer; closed: boolean }> {
  const socket = createConnection({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout;
    const done = (closed: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ output: Buffer.concat(chunks), closed });
    };
    const quiet = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => done(false), quietMs);
    };
    socket.on('error', reject);
    socket.on('connect', () => {
      socket.write(input);
      quiet();
    });
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      quiet();
    });
    socket.on('end', () => done(true));
  });
}

function channelFrom(headers: AmiHeaders): FakeAmiChannel {
  const get = (n: string): string => header(headers, n) ?? '';
  return {
    Channel: get('Channel'), ChannelState: get('ChannelState'), ChannelStateDesc: get('ChannelStateDesc'), CallerIDNum: get('CallerIDNum'),
    CallerIDName: get('CallerIDName'), ConnectedLineNum: get('ConnectedLineNum'), ConnectedLineName: get('ConnectedLineName'),
    Language: get('Language'), AccountCode: get('AccountCode'), Context: get('Context'), Exten: get('Exten'), Priority: get('Priority'),
    Uniqueid: get('Uniqueid'), Linkedid: get('Linkedid'), Application: get('Application'), ApplicationData: get('ApplicationData'),
    Duration: get('Duration'), BridgeId: get('BridgeId'), createdAtMs: 0,
  };
}

function decodeMessages(bytes: Buffer): AmiHeaders[] {
  const d = new AmiDecoder({ banner: false });
  d.feed(bytes);
  const out: AmiHeaders[] = [];
  for (let f = d.next(); f !== undefined; f = d.next()) if (f.kind !== 'banner') out.push(f.headers);
  return out;
}

/** The recorded transcript's users, so the recorded Login bytes work unchanged. */
const USERS = { admin: 'admin-secret', callonly: 'call-secret' };

describe('fake AMI replays the recorded transcripts', () => {
  const fakes: FakeAmi[] = [];
  after(async () => {
    for (const f of fakes) await f.stop();
  });
  const start = async (options: FakeAmiOptions = {}): Promise<FakeAmi> => {
    const f = await FakeAmi.start({ users: USERS, badLoginDelayMs: 20, ...options });
    fakes.push(f);
    return f;
  };

  it('login-bad.log c2 and c3: a wrong secret and an unknown user get exactly Asterisk bytes, then the connection closes', async () => {
    const fake = await start();
    const t = readAmiTranscript('login-bad.log');
    for (const conn of ['c2', 'c3', 'c4']) {
      const c = t.get(conn)!;
      const { output, closed } = await exchange(fake.port, c.toAsterisk);
      assert.equal(output.toString(), c.fromAsterisk.toString(), conn);
      assert.ok(closed, `${conn}: closed after the refusal`);
    }
  });

  it('login-bad.log c5/c6: actions before Login are denied and the session stays usable', async () => {
    const fake = await start();
    const c = readAmiTranscript('login-bad.log').get('c5')!;
    const { output } = await exchange(fake.port, c.toAsterisk);
    assert.equal(output.toString(), c.fromAsterisk.toString());
  });

  it('banner-login.log c3 (Events: off): banner, accepted, Goodbye, close: byte for byte', async () => {
    const fake = await start();
    const c = readAmiTranscript('banner-login.log').get('c3')!;
    const { output, closed } = await exchange(fake.port, c.toAsterisk);
    assert.equal(output.toString(), c.fromAsterisk.toString());
    assert.ok(closed);
  });

  it('banner-login.log c1 (Events: on): the same messages with the same headers in the same order; FullyBooted and SuccessfulAuth as recorded but for clocks and addresses', async () => {
    const fake = await start();
    const c = readAmiTranscript('banner-login.log').get('c1')!;
    const { output } = await exchange(fake.port, c.toAsterisk);
    const got = decodeMessages(output.subarray('Asterisk Call Manager/11.0.0\r\n'.length));
    const want = asteriskMessages(c).map((m) => decodeMessages(m)[0]!);
    assert.deepStrictEqual(got.map((h) => h.map(([n]) => n)), want.map((h) => h.map(([n]) => n)));
    const varying = new Set(['EventTV', 'SessionTV', 'SessionID', 'LocalAddress', 'RemoteAddress']);
    const fixed = (hs: AmiHeaders[]): AmiHeaders[] => hs.map((h) => h.filter(([n]) => !varying.has(n)));
    assert.deepStrictEqual(fixed(got), fixed(want));
  });

  it('events-call-system.log: Login with Events: call,system gets the answer and FullyBooted, and no SuccessfulAuth (security)', async () => {
    const fake = await start({ users: { bar: 'bar-secret' } });
    const c = readAmiTranscript('events-call-system.log').get('c1')!;
    const { output } = await exchange(fake.port, c.toAsterisk);
    const [accepted, fullyBooted] = asteriskMessages(c);
    assert.equal(output.toString(), `Asterisk Call Manager/11.0.0\r\n${accepted!.toString()}${fullyBooted!.toString()}`);
  });

  it('login-md5.log c1 and c2: Challenge, MD5 Login with the right and a wrong key', async () => {
    const t = readAmiTranscript('login-md5.log');
    for (const conn of ['c1', 'c2']) {
      const c = t.get(conn)!;
      const challenge = header(decodeMessages(c.fromAsterisk.subarray(30))[0]!, 'Challenge')!;
      const fake = await start({ challenge: () => challenge });
      const { output } = await exchange(fake.port, c.toAsterisk);
      assert.equal(output.toString(), c.fromAsterisk.toString(), conn);
    }
  });

  it('ping-getvar.log: Ping with and without ActionID, with the recorded clock', async () => {
    const c = readAmiTranscript('ping-getvar.log').get('c1')!;
    const msgs = asteriskMessages(c).map((m) => m.toString());
    const pings = msgs.filter((m) => m.includes('Ping: Pong')).slice(0, 2);
    assert.equal(pings.length, 2);
    for (const want of pings) {
      const ts = /Timestamp: ([0-9]+)\.([0-9]+)/.exec(want)!;
      const fake = await start({ now: () => Number(ts[1]) * 1000 + Number(ts[2]) / 1000 });
      const id = /ActionID: (.*)\r\n/.exec(want)?.[1];
      const login = 'Action: Login\r\nUsername: admin\r\nSecret: admin-secret\r\nEvents: off\r\n\r\n';
      const ping = `Action: Ping\r\n${id === undefined ? '' : `ActionID: ${id}\r\n`}\r\n`;
      const { output } = await exchange(fake.port, Buffer.from(login + ping));
      assert.ok(output.toString().endsWith(want), `${JSON.stringify(output.toString().slice(-120))} ends with ${JSON.stringify(want)}`);
    }
  });

  it('coreshowchannels.log: the six-channel list, the empty list with and without ActionID, byte for byte', async () => {
    const c = readAmiTranscript('coreshowchannels.log').get('c1')!;
    const msgs = asteriskMessages(c);
    const items = msgs.filter((m) => m.toString().startsWith('Event: CoreShowChannel\r\n'));
    assert.equal(items.length, 6);
    const fake = await start();
    for (const item of items) {
      const ch = channelFrom(decodeMessages(item)[0]!);
      fake.channels.set(ch.Uniqueid, ch);
    }
    const login = 'Action: Login\r\nUsername: admin\r\nSecret: admin-secret\r\nEvents: off\r\n\r\n';
    const full = await exchange(fake.port, Buffer.from(`${login}Action: CoreShowChannels\r\nActionID: csc-1\r\n\r\n`));
    const text = c.fromAsterisk.toString();
    const from = text.indexOf('Response: Success\r\nActionID: csc-1\r\n');
    const to = text.indexOf('ListItems: 6\r\n\r\n') + 'ListItems: 6\r\n\r\n'.length;
    assert.ok(full.output.toString().endsWith(text.slice(from, to)), 'the list as recorded');
    fake.channels.clear();
    const empty = await exchange(fake.port, Buffer.from(`${login}Action: CoreShowChannels\r\nActionID: csc-2\r\n\r\nAction: CoreShowChannels\r\n\r\nAction: Logoff\r\nActionID: logoff-1\r\n\r\n`));
    const emptyFrom = text.indexOf('Response: Success\r\nActionID: csc-2\r\n');
    assert.ok(empty.output.toString().endsWith(text.slice(emptyFrom)), 'both empty lists and the Goodbye as recorded');
  });

  it('events-call.log: each Hangup event, rebuilt from its channel, is the recorded bytes', async () => {
    const c = readAmiTranscript('events-call.log').get('c1')!;
    const hangups = asteriskMessages(c).filter((m) => m.toString().startsWith('Event: Hangup\r\n'));
    assert.ok(hangups.length >= 4, `${hangups.length} Hangup events recorded`);
    const fake = await start();
    const socket = createConnection({ host: '127.0.0.1', port: fake.port });
    const received: Buffer[] = [];
    socket.on('data', (d: Buffer) => received.push(d));
    socket.write('Action: Login\r\nUsername: admin\r\nSecret: admin-secret\r\nEvents: call\r\n\r\n');
    while (!Buffer.concat(received).toString().includes('Authentication accepted\r\n\r\n')) await new Promise((r) => setTimeout(r, 5));
    const before = Buffer.concat(received).length;
    for (const h of hangups) {
      const headers = decodeMessages(h)[0]!;
      fake.addChannel(channelFrom(headers));
      fake.hangup(header(headers, 'Uniqueid')!, Number(header(headers, 'Cause')));
    }
    await new Promise((r) => setTimeout(r, 50));
    socket.destroy();
    assert.equal(Buffer.concat(received).subarray(before).toString(), Buffer.concat(hangups).toString());
  });
});
