// Real memcached servers for the tests: Debian's memcached on free 127.0.0.1 ports,
// started and stopped by the tests. MEMCACHED_BIN overrides the binary.

import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface MemcachedProcess {
  readonly host: string;
  readonly port: number;
  /** `127.0.0.1:PORT`, for ClientOptions.servers and server= lines. */
  readonly address: string;
  readonly pid: number;
  /** SIGSTOP: the kernel still accepts connections, nothing answers. */
  pause(): void;
  /** SIGCONT */
  resume(): void;
  /** SIGKILL and wait for the exit: connections are refused afterwards. */
  kill(): Promise<void>;
  /** Starts it again on the same port (after kill). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Waits until *our* memcached answers on the port: `stats` must report the child's pid. Test
 * files run in parallel, so a port picked free can be taken by another file's server meanwhile;
 * connecting alone would then hand this test someone else's memcached.
 */
async function waitForPort(host: string, port: number, child: ChildProcess, timeoutMs = 5000): Promise<void> {
  return waitForListener({ host, port }, `${host}:${port}`, child, timeoutMs);
}

async function waitForListener(target: net.NetConnectOpts, name: string, child: ChildProcess, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`memcached exited with ${child.exitCode}`);
    const pid = await statsPid(target);
    // 0: it answered but will not say (SASL on); the child owns the port if it is still alive.
    if (pid === child.pid || (pid === 0 && child.exitCode === null)) return;
    if (pid !== null) throw new Error(`${name} is served by another memcached (pid ${pid})`);
    if (Date.now() > deadline) throw new Error(`memcached did not listen on ${name}`);
    await sleep(20);
  }
}

/** The pid a memcached at `target` reports, 0 if it refuses to tell, null when nothing answers. */
function statsPid(target: net.NetConnectOpts): Promise<number | null> {
  return new Promise((resolve) => {
    let text = '';
    let connected = false;
    const s = net.connect(target, () => {
      connected = true;
      s.write('stats\r\n');
    });
    const done = (pid: number | null): void => {
      s.destroy();
      resolve(pid);
    };
    // A memcached with SASL (-S) does not answer the text protocol at all: it listens, though.
    s.setTimeout(300, () => done(connected ? 0 : null));
    s.once('close', () => done(connected ? 0 : null));
    s.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.includes('END\r\n')) done(Number(/STAT pid (\d+)/.exec(text)?.[1] ?? NaN) || null);
      else if (/ERROR/.test(text)) done(0);
    });
    // Reset after connecting: a TLS (-Z) port hanging up on plain text. It listens all the same.
    s.once('error', () => done(connected ? 0 : null));
  });
}

function launch(port: number, extraArgs: readonly string[], env?: NodeJS.ProcessEnv): ChildProcess {
  const bin = process.env['MEMCACHED_BIN'] ?? 'memcached';
  const args = ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-t', '1', '-m', '64', ...extraArgs];
  if (process.getuid?.() === 0) args.push('-u', 'nobody');
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'], env: env ?? process.env });
  child.stderr?.resume();
  return child;
}

export interface StartOptions {
  /** The server's environment (e.g. SASL_CONF_PATH for -S). */
  env?: NodeJS.ProcessEnv;
}

export async function startMemcached(extraArgs: readonly string[] = [], options: StartOptions = {}): Promise<MemcachedProcess> {
  const host = '127.0.0.1';
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort(host);
    let child = launch(port, extraArgs, options.env);
    try {
      await waitForPort(host, port, child);
    } catch (err) {
      lastError = err;
      child.kill('SIGKILL');
      continue;
    }
    const exited = (c: ChildProcess) =>
      c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => c.once('exit', () => r()));
    const proc: MemcachedProcess = {
      host,
      port,
      address: `${host}:${port}`,
      get pid() {
        return child.pid!;
      },
      pause: () => void child.kill('SIGSTOP'),
      resume: () => void child.kill('SIGCONT'),
      kill: async () => {
        child.kill('SIGKILL');
        await exited(child);
      },
      restart: async () => {
        child = launch(port, extraArgs, options.env);
        await waitForPort(host, port, child);
      },
      stop: async () => {
        child.kill('SIGCONT');
        child.kill('SIGKILL');
        await exited(child);
      },
    };
    return proc;
  }
  throw new Error(`could not start memcached: ${String(lastError)}`);
}

export interface SocketMemcached {
  /** The socket path: a server= line / ClientOptions.servers entry as it is. */
  readonly path: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/**
 * A memcached listening on a Unix socket only (`-s path`; memcached then opens no TCP port). The
 * directory must let the server's user (nobody, when the tests run as root) create the socket.
 */
export async function startSocketMemcached(path: string): Promise<SocketMemcached> {
  const bin = process.env['MEMCACHED_BIN'] ?? 'memcached';
  const args = ['-s', path, '-a', '0700', '-t', '1', '-m', '64'];
  if (process.getuid?.() === 0) args.push('-u', 'nobody');
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr?.resume();
  try {
    await waitForListener({ path }, path, child);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    path,
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}
