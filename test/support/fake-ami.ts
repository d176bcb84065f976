// A test AMI server that answers the way Asterisk 22.10.1 did in test/fixtures/ami/*.log, byte for
// byte (checked by test/unit/fake-ami.test.ts against those transcripts): the banner with no empty
// line after it; Login (plain and MD5) with FullyBooted and SuccessfulAuth as action_login sends
// them; a refused Login answered after a delay (1 s in Asterisk) and closed; Permission denied
// before Login; Ping; CoreShowChannels as a list; Logoff; Hangup events with the channel headers
// in the order of ast_manager_build_channel_state_string_prefix (main/manager_channels.c).
//
// And the ways a real one can fail or lie, on demand: drop every connection, go silent, restart on
// the same port, shut down with Event: Shutdown, write raw bytes (garbage, huge lines, endless
// messages), events for channels it never had.
//
// Not emulated: Asterisk's 1022-byte input line limit and its answers to stray empty lines, event
// filters, actions other than the ones above (they get Asterisk's "Invalid/unknown command").

import { createHash } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { AmiDecoder, header, type AmiHeaders } from '../../src/ami/codec.js';

export const AMI_BANNER = 'Asterisk Call Manager/11.0.0\r\n';

/** One channel as AMI shows it; names are the AMI header names without the channel block's order. */
export interface FakeAmiChannel {
  Channel: string;
  ChannelState: string;
  ChannelStateDesc: string;
  CallerIDNum: string;
  CallerIDName: string;
  ConnectedLineNum: string;
  ConnectedLineName: string;
  Language: string;
  AccountCode: string;
  Context: string;
  Exten: string;
  Priority: string;
  Uniqueid: string;
  Linkedid: string;
  Application: string;
  ApplicationData: string;
  /** `HH:MM:SS` as CoreShowChannel prints it; computed from createdAtMs when undefined. */
  Duration?: string;
  BridgeId: string;
  createdAtMs: number;
}

/** The channel block every channel event starts with, in Asterisk's order. */
const CHANNEL_BLOCK = [
  'Channel', 'ChannelState', 'ChannelStateDesc', 'CallerIDNum', 'CallerIDName', 'ConnectedLineNum', 'ConnectedLineName',
  'Language', 'AccountCode', 'Context', 'Exten', 'Priority', 'Uniqueid', 'Linkedid',
] as const;

/** Q.850 texts Asterisk prints as Cause-txt (main/causes.c); the few the tests use. */
const CAUSE_TEXT: Record<number, string> = { 0: 'Unknown', 16: 'Normal Clearing', 17: 'User busy', 19: 'No user responding' };

export interface FakeAmiOptions {
  /** username → secret; default bar → bar-secret. */
  users?: Record<string, string>;
  /** Asterisk sleeps 1 s before refusing a Login (action_login in main/manager.c). */
  badLoginDelayMs?: number;
  /** The clock of Ping's Timestamp and the events' EventTV (ms since the epoch). */
  now?: () => number;
  /** The Challenge the next MD5 login gets (Asterisk: a random number). */
  challenge?: () => string;
  port?: number;
}

interface Session {
  readonly socket: Socket;
  readonly decoder: AmiDecoder;
  user: string | null;
  /** Event classes this session gets ('all' for every one). */
  mask: Set<string>;
  challenge: string | null;
  readonly id: string;
}

export class FakeAmi {
  readonly #options: FakeAmiOptions;
  readonly #users: Record<string, string>;
  readonly #sessions = new Set<Session>();
  readonly channels = new Map<string, FakeAmiChannel>();
  /** Every action received, in order, as header lists (for assertions). */
  readonly actions: AmiHeaders[] = [];
  /** Connections ever accepted. */
  connections = 0;
  /** When true, actions are read and never answered. */
  silent = false;
  #server: Server | null = null;
  #port = 0;
  #startedAtMs: number;

  private constructor(options: FakeAmiOptions) {
    this.#options = options;
    this.#users = options.users ?? { bar: 'bar-secret' };
    this.#startedAtMs = this.#now();
  }

  static async start(options: FakeAmiOptions = {}): Promise<FakeAmi> {
    const fake = new FakeAmi(options);
    await fake.listen(options.port ?? 0);
    return fake;
  }

  get port(): number {
    return this.#port;
  }

  /** Sessions that are logged in. */
  get loggedIn(): number {
    return [...this.#sessions].filter((s) => s.user !== null).length;
  }

  async listen(port = this.#port): Promise<void> {
    const server = createServer((socket) => this.#accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.#server = server;
    this.#port = (server.address() as { port: number }).port;
  }

  /** Stops listening and cuts every session (a crashed Asterisk: EOF, no Shutdown event). */
  async stop(): Promise<void> {
    this.dropAll();
    const server = this.#server;
    this.#server = null;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** `core stop now`: Event: Shutdown to sessions that read system, then every session closes. */
  async shutdown(): Promise<void> {
    this.#broadcast([['Event', 'Shutdown'], ['Privilege', 'system,all'], ['Shutdown', 'Cleanly'], ['Restart', 'False']]);
    await new Promise((r) => setTimeout(r, 10));
    await this.stop();
  }

  /** Cuts every connection at once, keeps listening. */
  dropAll(): void {
    for (const s of this.#sessions) s.socket.destroy();
    this.#sessions.clear();
  }

  /** Writes raw bytes to every logged-in session. */
  sendRaw(bytes: Buffer | string): void {
    for (const s of this.#sessions) if (s.user !== null) s.socket.write(bytes);
  }

  /** Sends an event (headers from `Event:` on, `Privilege:` included) to sessions whose mask takes its class. */
  emit(headers: AmiHeaders): void {
    this.#broadcast(headers);
  }

  addChannel(fields: Partial<FakeAmiChannel> & { Uniqueid: string }): FakeAmiChannel {
    const channel: FakeAmiChannel = {
      Channel: `Local/s@fake-${fields.Uniqueid};1`, ChannelState: '6', ChannelStateDesc: 'Up', CallerIDNum: '<unknown>', CallerIDName: '<unknown>',
      ConnectedLineNum: '<unknown>', ConnectedLineName: '<unknown>', Language: 'en', AccountCode: '', Context: 'fake', Exten: 's', Priority: '1',
      Linkedid: fields.Uniqueid, Application: 'Wait', ApplicationData: '30', BridgeId: '', createdAtMs: this.#now(),
      ...fields,
    };
    this.channels.set(channel.Uniqueid, channel);
    return channel;
  }

  /** Ends a channel as Asterisk reports it: `Event: Hangup` with the channel block, Cause, Cause-txt. */
  hangup(uniqueid: string, cause = 16): void {
    const channel = this.channels.get(uniqueid);
    if (channel === undefined) throw new Error(`no fake channel ${uniqueid}`);
    this.channels.delete(uniqueid);
    this.#broadcast([['Event', 'Hangup'], ['Privilege', 'call,all'], ...channelBlock(channel), ['Cause', String(cause)], ['Cause-txt', CAUSE_TEXT[cause] ?? 'Unknown']]);
  }

  #now(): number {
    return this.#options.now?.() ?? Date.now();
  }

  #accept(socket: Socket): void {
    this.connections++;
    socket.setNoDelay(true);
    const session: Session = { socket, decoder: new AmiDecoder({ banner: false }), user: null, mask: new Set(), challenge: null, id: `0x7fec${(0xe0000ee0 + this.connections * 16).toString(16)}` };
    this.#sessions.add(session);
    socket.on('error', () => {});
    socket.on('close', () => this.#sessions.delete(session));
    socket.write(AMI_BANNER);
    socket.on('data', (chunk: Buffer) => {
      session.decoder.feed(chunk);
      try {
        for (let f = session.decoder.next(); f !== undefined; f = session.decoder.next()) {
          this.actions.push(f.kind === 'banner' ? [] : f.headers);
          if (!this.silent && f.kind !== 'banner') this.#action(session, f.headers);
        }
      } catch {
        socket.destroy();
      }
    });
  }

  #action(s: Session, h: AmiHeaders): void {
    const action = (header(h, 'Action') ?? '').toLowerCase();
    const id = header(h, 'ActionID');
    const reply = (response: string, ...rest: Array<[string, string]>): void => {
      s.socket.write(encodeMessage([['Response', response], ...(id === undefined ? [] : [['ActionID', id] as [string, string]]), ...rest]));
    };
    if (action === '') return reply('Error', ['Message', 'Missing action in request']);
    if (action === 'logoff') {
      reply('Goodbye', ['Message', 'Thanks for all the fish.']);
      s.socket.end();
      return;
    }
    if (action === 'challenge') {
      if ((header(h, 'AuthType') ?? '').toLowerCase() !== 'md5') return reply('Error', ['Message', 'Must specify AuthType']);
      s.challenge = this.#options.challenge?.() ?? String(Math.floor(Math.random() * 1e9));
      return reply('Success', ['Challenge', s.challenge]);
    }
    if (action === 'login') return this.#login(s, h, reply);
    if (s.user === null) return reply('Error', ['Message', 'Permission denied']);
    if (action === 'ping') return reply('Success', ['Ping', 'Pong'], ['Timestamp', timestamp(this.#now())]);
    if (action === 'coreshowchannels') return this.#coreShowChannels(s, id);
    return reply('Error', ['Message', `Invalid/unknown command: ${header(h, 'Action')}. Use Action: ListCommands to show available commands.`]);
  }

  #login(s: Session, h: AmiHeaders, reply: (response: string, ...rest: Array<[string, string]>) => void): void {
    if (s.user !== null) return reply('Success', ['Message', 'Already authenticated']);
    const user = header(h, 'Username') ?? '';
    const secret = this.#users[user];
    let ok = false;
    if (secret !== undefined) {
      if ((header(h, 'AuthType') ?? '').toLowerCase() === 'md5') {
        ok = s.challenge !== null && header(h, 'Key') === createHash('md5').update(s.challenge + secret).digest('hex');
      } else {
        ok = header(h, 'Secret') === secret;
      }
    }
    if (!ok) {
      setTimeout(() => {
        reply('Error', ['Message', 'Authentication failed']);
        s.socket.end();
      }, this.#options.badLoginDelayMs ?? 1000);
      return;
    }
    s.user = user;
    s.mask = eventMask(header(h, 'Events'));
    reply('Success', ['Message', 'Authentication accepted']);
    const now = this.#now();
    const uptime = String(Math.floor((now - this.#startedAtMs) / 1000));
    this.#sendEvent(s, [['Event', 'FullyBooted'], ['Privilege', 'system,all'], ['Uptime', uptime], ['LastReload', uptime], ['Status', 'Fully Booted']]);
    const local = `IPV4/TCP/127.0.0.1/${s.socket.localPort}`;
    const remote = `IPV4/TCP/127.0.0.1/${s.socket.remotePort}`;
    // Every session reading security sees this login, its own included (banner-login.log).
    this.#broadcast([
      ['Event', 'SuccessfulAuth'], ['Privilege', 'security,all'], ['EventTV', eventTv(now)], ['Severity', 'Informational'], ['Service', 'AMI'],
      ['EventVersion', '1'], ['AccountID', user], ['SessionID', s.id], ['LocalAddress', local], ['RemoteAddress', remote],
      ['UsingPassword', '0'], ['SessionTV', eventTv(now)],
    ]);
  }

  #coreShowChannels(s: Session, id: string | undefined): void {
    const withId = (rest: Array<[string, string]>): Array<[string, string]> => (id === undefined ? rest : [rest[0]!, ['ActionID', id], ...rest.slice(1)]);
    const out: Buffer[] = [encodeMessage([['Response', 'Success'], ...(id === undefined ? [] : [['ActionID', id] as [string, string]]), ['EventList', 'start'], ['Message', 'Channels will follow']])];
    const now = this.#now();
    for (const c of this.channels.values()) {
      out.push(encodeMessage(withId([['Event', 'CoreShowChannel'], ...channelBlock(c), ['Application', c.Application], ['ApplicationData', c.ApplicationData], ['Duration', c.Duration ?? duration(now - c.createdAtMs)], ['BridgeId', c.BridgeId]])));
    }
    out.push(encodeMessage(withId([['Event', 'CoreShowChannelsComplete'], ['EventList', 'Complete'], ['ListItems', String(this.channels.size)]])));
    s.socket.write(Buffer.concat(out));
  }

  #broadcast(headers: AmiHeaders): void {
    for (const s of this.#sessions) if (s.user !== null) this.#sendEvent(s, headers);
  }

  #sendEvent(s: Session, headers: AmiHeaders): void {
    const cls = (header(headers, 'Privilege') ?? '').split(',')[0] ?? '';
    if (s.mask.has('all') || s.mask.has(cls)) s.socket.write(encodeMessage(headers));
  }
}

function channelBlock(c: FakeAmiChannel): Array<[string, string]> {
  return CHANNEL_BLOCK.map((name) => [name, c[name]]);
}

/** Login's `Events:` (strings_to_mask in main/manager.c): absent or on = all, off = none, else a class list. */
function eventMask(value: string | undefined): Set<string> {
  const v = (value ?? 'on').trim().toLowerCase();
  if (v === 'on' || v === 'yes' || v === 'true') return new Set(['all']);
  if (v === 'off' || v === 'no' || v === 'false') return new Set();
  return new Set(v.split(',').map((c) => c.trim()));
}

function timestamp(ms: number): string {
  const usec = Math.round(ms * 1000);
  return `${Math.floor(usec / 1e6)}.${String(usec % 1e6).padStart(6, '0')}`;
}

function eventTv(ms: number): string {
  return new Date(ms).toISOString().replace('Z', '+0000');
}

function duration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`;
}

/** One message as Asterisk writes it: `Name: value\r\n` lines and the empty line. */
function encodeMessage(headers: AmiHeaders): Buffer {
  let text = '';
  for (const [name, value] of headers) text += `${name}: ${value}\r\n`;
  return Buffer.from(`${text}\r\n`, 'utf8');
}
