// libmemcached's other users, as Debian ships them (php-memcached, python3-pylibmc,
// libmemcached-tools; all on libmemcached 1.1.4), run as child processes by the interop tests.
// scripts/test.sh installs them; a missing one is an error here, never a skip.

import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './fixtures.js';

/** Debian's python3 (pylibmc lives in its dist-packages), whatever `python3` is first on PATH. */
export const DEBIAN_PYTHON = '/usr/bin/python3';

export interface ProgramResult {
  stdout: Buffer;
  stderr: string;
}

/**
 * Runs a program to its end with `input` on stdin (none: stdin closed); rejects on a non-zero
 * exit, with its stderr.
 */
export function runProgram(command: string, args: readonly string[], input?: string, timeoutMs = 20_000): Promise<ProgramResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], timeout: timeoutMs });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => out.push(c));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) resolve({ stdout: Buffer.concat(out), stderr });
      else reject(new Error(`${command} ${args.join(' ')} exited with ${code ?? signal}: ${stderr.trim()}`));
    });
    // A program that exits without reading all of stdin (EPIPE) is judged by its exit code.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input);
  });
}

function neighbourScript(name: string): string {
  return join(repoRoot(), 'test', 'support', 'neighbours', name);
}

/** Runs jobs in one PHP process (test/support/neighbours/php-memcached.php). */
export async function runPhp<T = unknown>(jobs: readonly unknown[]): Promise<T[][]> {
  const { stdout } = await runProgram('php', [neighbourScript('php-memcached.php')], JSON.stringify(jobs));
  return JSON.parse(stdout.toString('utf8')) as T[][];
}

/** Runs jobs in one Python process (test/support/neighbours/pylibmc-client.py). */
export async function runPylibmc<T = unknown>(jobs: readonly unknown[]): Promise<T[][]> {
  const { stdout } = await runProgram(DEBIAN_PYTHON, [neighbourScript('pylibmc-client.py')], JSON.stringify(jobs));
  return JSON.parse(stdout.toString('utf8')) as T[][];
}

/**
 * Throws, naming what is missing and how to get it, unless PHP with the memcached extension,
 * pylibmc and libmemcached-tools' memccp/memccat are all here.
 */
export function requireNeighbours(): void {
  const missing: string[] = [];
  const php = spawnSync('php', ['-r', 'exit(class_exists("Memcached") ? 0 : 1);']);
  if (php.status !== 0) missing.push('php-cli + php-memcached');
  const py = spawnSync(DEBIAN_PYTHON, ['-c', 'import pylibmc']);
  if (py.status !== 0) missing.push('python3-pylibmc');
  for (const tool of ['memccp', 'memccat']) {
    if (spawnSync(tool, ['--version']).error !== undefined) missing.push(`libmemcached-tools (${tool})`);
  }
  if (missing.length > 0) {
    throw new Error(`libmemcached neighbours missing: ${missing.join(', ')}; scripts/test.sh installs them (apt-get install php-cli php-memcached python3-pylibmc libmemcached-tools)`);
  }
}

/** A neighbour's answer to a get: the value's type in that language and its bytes. */
export interface NeighbourValue {
  type: string;
  b64: string;
}
