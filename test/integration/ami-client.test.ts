// AmiClient against the faithful fake AMI (test/support/fake-ami.ts) on 127.0.0.1: login accepted
// and refused, events, CoreShowChannels, reconnect after drops, restarts and shutdowns with a
// bounded backoff, a lying AMI that must cost a dropped session with a reason and not unbounded
// memory, and actions that get no answer.

import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';

import { Backoff } from '../../src/ami/backoff.js';
import { AmiActionError, AmiClient, type AmiClientEvent, type AmiClientOptions, type AmiHangup } from '../../src/ami/client.js';
import { AmiError } from '../../src/ami/codec.js';
import { Rc } from '../../src/util/errors.js';
import { readAmiTranscript } from '../support/ami-transcript.js';
import { FakeAmi, type FakeAmiOptions } from '../support/fake-ami.js';
import { waitFor } from '../support/wait.js';

interface Rig {
  fake: FakeAmi;
  client: AmiClient;
  events: AmiClientEvent[];
  downs: () => Array<Extract<AmiClientEvent, { type: 'down' }>>;
  ups: () => number;
}

const rigs: Rig[] = [];
afterEach(async () => {
  for (const r of rigs.splice(0)) {
    r.client.close();
    await r.fake.stop();
  }
});

async function rig(fakeOptions: FakeAmiOptions = {}, clientOptions: Partial<AmiClientOptions> = {}): Promise<Rig> {
  const fake = await FakeAmi.start({ badLoginDelayMs: 20, ...fakeOptions });
  const events: AmiClientEvent[] = [];
  const client = new AmiClient({
    host: '127.0.0.1', port: fake.port, username: 'bar', secret: 'bar-secret',
    backoff: { initialMs: 20, maxMs: 200 }, connectTimeoutMs: 1000, actionTimeoutMs: 1000, pingIntervalMs: 0,
    onEvent: (e) => events.push(e),
    ...clientOptions,
  });
  const r: Rig = {
    fake, client, events,
    downs: () => events.filter((e): e is Extract<AmiClientEvent, { type: 'down' }> => e.type === 'down'),
    ups: () => events.filter((e) => e.type === 'up').length,
  };
  rigs.push(r);
  client.start();
  return r;
}

describe('AmiClient', () => {
  it('logs in, says up with the banner, and sends Login with the event mask', async () => {
    const r = await rig();
    await waitFor(() => r.client.state === 'up', 2000, 'up');
    assert.deepStrictEqual(r.events[0], { type: 'up', banner: 'Asterisk Call Manager/11.0.0' });
    const login = r.fake.actions.find((a) => a.some(([n, v]) => n === 'Action' && v === 'Login'))!;
    assert.deepStrictEqual(login.filter(([n]) => n !== 'ActionID'), [['Action', 'Login'], ['Username', 'bar'], ['Secret', 'bar-secret'], ['Events', 'call,system']]);
    // FullyBooted (system) reaches the client as an event.
    await waitFor(() => r.events.some((e) => e.type === 'event' && e.event === 'FullyBooted'), 1000, 'FullyBooted');
  });

  it('logs in with MD5 (Challenge + Key) without sending the secret', async () => {
    const r = await rig({}, { authType: 'md5' });
    await waitFor(() => r.client.state === 'up', 2000, 'up');
    assert.ok(!r.fake.actions.some((a) => a.some(([n]) => n === 'Secret')), 'no Secret header on the wire');
  });

  it('a refused login is a down event with a log-able reason, retried with backoff, and works once the secret is right', async () => {
    const users: Record<string, string> = { bar: 'other' };
    const r = await rig({ users });
    await waitFor(() => r.downs().length >= 2, 3000, 'two refusals');
    const d = r.downs()[0]!;
    assert.equal(d.kind, 'login-refused');
    assert.match(d.reason, /AMI login refused for user "bar" at 127\.0\.0\.1:[0-9]+: Authentication failed/);
    assert.ok(d.retryInMs !== null && d.retryInMs >= 10 && d.retryInMs <= 20);
    assert.equal(r.client.state === 'up', false);
    await assert.rejects(r.client.action('Ping'), (e: unknown) => e instanceof AmiError && e.rc === Rc.CONNECTION_FAILURE && /Authentication failed/.test(e.message));
    users.bar = 'bar-secret';
    await waitFor(() => r.client.state === 'up', 3000, 'up after the secret is fixed');
  });

  it('delivers Hangup events with Uniqueid, Linkedid, Channel and Cause, also for channels it never saw', async () => {
    const r = await rig();
    await waitFor(() => r.client.state === 'up', 2000, 'up');
    r.fake.addChannel({ Uniqueid: '1796121759.1', Linkedid: '1796121759.0', Channel: 'Local/s@ami-call-00000000;2' });
    r.fake.hangup('1796121759.1', 17);
    r.fake.emit([['Event', 'Hangup'], ['Privilege', 'call,all'], ['Channel', 'PJSIP/ghost-1'], ['Uniqueid', 'never.seen'], ['Linkedid', 'never.seen'], ['Cause', 'x']]);
    const hangups = (): AmiHangup[] => r.events.flatMap((e) => (e.type === 'hangup' ? [e.hangup] : []));
    await waitFor(() => hangups().length === 2, 1000, 'two hangups');
    assert.deepStrictEqual(hangups(), [
      { uniqueid: '1796121759.1', linkedid: '1796121759.0', channel: 'Local/s@ami-call-00000000;2', cause: 17 },
      { uniqueid: 'never.seen', linkedid: 'never.seen', channel: 'PJSIP/ghost-1', cause: undefined },
    ]);
    assert.equal(r.client.state, 'up', 'unknown channels are not an error of the link');
  });

  it('a whole call as a real Asterisk sent it (events-call-system.log) gives one hangup per channel, ;2 then ;1', async () => {
    const r = await rig();
    await waitFor(() => r.client.state === 'up', 2000, 'up');
    const recorded = readAmiTranscript('events-call-system.log').get('c1')!.fromAsterisk.toString();
    // Everything after the Login answer and FullyBooted: the call's events and Shutdown.
    r.fake.sendRaw(recorded.slice(recorded.indexOf('Event: Newchannel')));
    await waitFor(() => r.events.some((e) => e.type === 'event' && e.event === 'Shutdown'), 1000, 'Shutdown');
    const hangups = r.events.flatMap((e) => (e.type === 'hangup' ? [e.hangup] : []));
    assert.deepStrictEqual(hangups.map((h) => [h.channel.replace(/-[0-9a-f]{8};/, '-X;'), h.cause, h.linkedid === hangups[1]!.uniqueid]), [
      ['Local/s@amitest-X;2', 16, true],
      ['Local/s@amitest-X;1', 16, true],
    ]);
  });

  it('coreShowChannels() returns the live channels, and an empty list when there are none', async () => {
    const r = await rig();
    await waitFor(() => r.client.state === 'up', 2000, 'up');
    assert.deepStrictEqual(await r.client.coreShowChannels(), []);
    r.fake.addChannel({ Uniqueid: '1.2', Linkedid: '1.2', Channel: 'Local/s@x-1;1' });
    r.fake.addChannel({ Uniqueid: '1.3', Linkedid: '1.2', Channel: 'Local/s@x-1;2' });
    // An event in the middle of the list is still an event, not an item.
    const pending = r.client.coreShowChannels();
    r.fake.emit([['Event', 'Reload'], ['Privilege', 'system,all'], ['Module', 'All'], ['Status', '0']]);
    const channels = await pending;
    assert.deepStrictEqual(channels.map((c) => [c.uniqueid, c.linkedid, c.channel]), [['1.2', '1.2', 'Local/s@x-1;1'], ['1.3', '1.2', 'Local/s@x-1;2']]);
    assert.equal(r.client.pendingActions, 0);
  });

  it('Response: Error rejects with AmiActionError carrying Asterisk text; the session stays up', async () => {
    const r = await rig();
    await waitFor(() => r.client.state === 'up', 2000, 'up');
    await assert.rejects(r.client.action('NoSuchAction'), (e: unknown) => e instanceof AmiActionError && /Invalid\/unknown command: NoSuchAction/.test(e.serverText ?? ''));
    const pong = await r.client.action('Ping');
    assert.equal(pong.response, 'Success');
    assert.equal(r.client.state, 'up');
  });

  it('a value with CR/LF is refused before anything is written', async () => {
    const r = await rig();
    await waitFor(() => r.client.state === 'up', 2000, 'up');
    const before = r.fake.actions.length;
    await assert.rejects(r.client.action('Getvar', [['Variable', 'X\r\nAction: Originate']]), (e: unknown) => e instanceof AmiError && e.rc === Rc.INVALID_ARGUMENTS);
    await r.client.action('Ping');
    assert.equal(r.fake.actions.length, before + 1, 'only the Ping reached AMI');
  });

  it('reconnects after the server drops the connection, and says up again (time to reconcile)', async () => {
    const r = await rig();
    await waitFor(() => r.client.state === 'up', 2000, 'up');
    r.fake.dropAll();
    await waitFor(() => r.downs().length === 1, 1000, 'down');
    assert.equal(r.downs()[0]!.kind, 'closed-by-peer');
    await waitFor(() => r.ups() === 2, 2000, 'up again');
    assert.equal(r.fake.connections, 2);
  });

  it('reconnects after Asterisk restarts on the same port (Shutdown event, refused connects, then back)', async () => {
    const r = await rig();
    await waitFor(() => r.client.state === 'up', 2000, 'up');
    await r.fake.shutdown();
    await waitFor(() => r.downs().length >= 3, 3000, 'down and refused twice');
    assert.match(r.downs()[0]!.reason, /shutting down/);
    assert.ok(r.downs().slice(1).every((d) => d.kind === 'connect-failed' && /ECONNREFUSED/.test(d.reason)), JSON.stringify(r.downs()));
    await r.fake.listen();
    await waitFor(() => r.ups() === 2, 3000, 'up after the restart');
    // backoff: { initialMs: 20, maxMs: 200 }: every wait within the cap, and growing while refused.
    const waits = r.downs().map((d) => d.retryInMs!);
    assert.ok(waits.every((w) => w >= 10 && w <= 200), JSON.stringify(waits));
    if (waits.length >= 5) assert.ok(waits[4]! >= 100, `the fifth wait has doubled up to the cap: ${JSON.stringify(waits)}`);
  });

  it('an action that gets no answer times out, and the silent session is dropped and replaced', async () => {
    const r = await rig();
    await waitFor(() => r.client.state === 'up', 2000, 'up');
    r.fake.silent = true;
    const started = Date.now();
    await assert.rejects(r.client.action('Ping', [], { timeoutMs: 100 }), (e: unknown) => e instanceof AmiError && e.rc === Rc.TIMEOUT);
    assert.ok(Date.now() - started < 500);
    assert.equal(r.downs()[0]?.kind, 'timeout');
    r.fake.silent = false;
    await waitFor(() => r.ups() === 2, 2000, 'up again');
  });

  it('a silent server is noticed by the keepalive Ping', async () => {
    const r = await rig({}, { pingIntervalMs: 50, actionTimeoutMs: 100 });
    await waitFor(() => r.client.state === 'up', 2000, 'up');
    r.fake.silent = true;
    await waitFor(() => r.downs().some((d) => d.kind === 'timeout' && /Ping/.test(d.reason)), 2000, 'keepalive timeout');
  });

  it('a server that never sends its banner or never answers Login fails the connect within connectTimeoutMs', async () => {
    const r = await rig({}, { connectTimeoutMs: 150 });
    r.fake.silent = true;
    // The fake sends its banner but never answers the Login.
    await waitFor(() => r.downs().length >= 1, 2000, 'down');
    assert.match(r.downs()[0]!.reason, /did not finish the login within 150 ms/);
  });

  it('fails actions at once when not up, and bounds the actions waiting', async () => {
    const r = await rig({}, { maxPendingActions: 3 });
    await assert.rejects(new AmiClient({ host: '127.0.0.1', port: 1, username: 'x', secret: 'y' }).action('Ping'), /AMI is idle/);
    await waitFor(() => r.client.state === 'up', 2000, 'up');
    r.fake.silent = true;
    const waiting = [1, 2, 3].map(() => r.client.action('Ping', [], { timeoutMs: 5000 }).catch((e: unknown) => e));
    await assert.rejects(r.client.action('Ping'), /3 actions already wait/);
    r.client.close();
    for (const e of await Promise.all(waiting)) assert.ok(e instanceof AmiError && /closed/.test(e.message));
    assert.equal(r.client.state, 'closed');
  });

  for (const [name, bytes] of [
    ['garbage', Buffer.from('\x00\x01 this is not AMI \xff\xfe\r\n\r\n', 'latin1')],
    ['a 100 KB header line', Buffer.from(`Event: X\r\nPrivilege: call,all\r\nHuge: ${'A'.repeat(100 * 1024)}\r\n\r\n`)],
    ['10,000 headers', Buffer.from(`Event: X\r\nPrivilege: call,all\r\n${'H: v\r\n'.repeat(10_000)}\r\n`)],
    ['a never-ending message', Buffer.from(`Event: X\r\nPrivilege: call,all\r\n${'Header: a value that goes on\r\n'.repeat(1000)}`)],
    ['a message that is neither Response nor Event', Buffer.from('Foo: bar\r\n\r\n')],
  ] as const) {
    it(`a lying AMI (${name}) costs the session, with a reason, and the client comes back`, async () => {
      const r = await rig({}, { decoder: { maxHeaders: 1024, maxMessageBytes: 16 * 1024, maxLineBytes: 64 * 1024 } });
      await waitFor(() => r.client.state === 'up', 2000, 'up');
      r.fake.sendRaw(bytes);
      await waitFor(() => r.downs().length >= 1, 2000, 'down');
      const d = r.downs()[0]!;
      assert.equal(d.kind, 'protocol-error', d.reason);
      assert.match(d.reason, /AMI at 127\.0\.0\.1:[0-9]+ (sent bad data|sent a message)/);
      await waitFor(() => r.ups() === 2, 2000, 'up again');
    });
  }

  it('a server that is not AMI is refused at its greeting', async () => {
    const { createServer } = await import('node:net');
    const server = createServer((s) => s.end('220 smtp.example ESMTP\r\n'));
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
    const events: AmiClientEvent[] = [];
    const client = new AmiClient({ host: '127.0.0.1', port: (server.address() as { port: number }).port, username: 'a', secret: 'b', backoff: { initialMs: 1000, maxMs: 1000 }, onEvent: (e) => events.push(e) });
    client.start();
    await waitFor(() => events.length > 0, 2000, 'down');
    client.close();
    server.close();
    assert.ok(events[0]?.type === 'down' && /is not AMI/.test(events[0].reason), JSON.stringify(events));
  });
});

describe('Backoff', () => {
  it('doubles from initialMs, never passes maxMs, jitters within [base/2, base], and resets', () => {
    const lows = new Backoff({ initialMs: 500, maxMs: 30_000 }, () => 0);
    const highs = new Backoff({ initialMs: 500, maxMs: 30_000 }, () => 1);
    const lo = Array.from({ length: 12 }, () => lows.next());
    const hi = Array.from({ length: 12 }, () => highs.next());
    assert.deepStrictEqual(hi, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000, 30000, 30000]);
    assert.deepStrictEqual(lo, hi.map((h) => h / 2));
    for (let i = 0; i < 1000; i++) highs.next();
    assert.equal(highs.next(), 30_000, 'no overflow after many attempts');
    highs.reset();
    assert.equal(highs.next(), 500);
    assert.throws(() => new Backoff({ initialMs: 0, maxMs: 10 }), RangeError);
  });
});
