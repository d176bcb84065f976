// Which file the embedded store is saved to (src/daemon/snapshots.ts resolveSnapshotPath): the
// service's state directory, $STATE_DIRECTORY under systemd, the user's state directory with a
// warning when the default cannot be written, and a configured path always as given.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { pino, type Logger } from 'pino';

import { resolveSnapshotPath } from '../../src/daemon/snapshots.js';

const dir = mkdtempSync(join(tmpdir(), 'res-memcached-snapshot-path-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// A folder that can never be made, even by root: its parent is a file.
const blocker = join(dir, 'a-file');
writeFileSync(blocker, '');
const unwritable = join(blocker, 'res-memcached', 'store.snapshot');

function capture(): { log: Logger; lines: Array<{ level: number; msg: string }> } {
  const lines: Array<{ level: number; msg: string }> = [];
  return { log: pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l)) }), lines };
}

const saved = { STATE_DIRECTORY: process.env['STATE_DIRECTORY'], XDG_STATE_HOME: process.env['XDG_STATE_HOME'] };
afterEach(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

describe('the snapshot file', () => {
  test('the default, when its folder can be made and written: as is, nothing logged', () => {
    delete process.env['STATE_DIRECTORY'];
    const { log, lines } = capture();
    const path = join(dir, 'var-lib', 'res-memcached', 'store.snapshot');
    assert.equal(resolveSnapshotPath({ path, configured: false, intervalMs: 60_000 }, log), path);
    assert.deepEqual(lines, []);
  });

  test('under systemd: $STATE_DIRECTORY (the first of several) takes the default\'s place', () => {
    process.env['STATE_DIRECTORY'] = `${join(dir, 'systemd-state')}:${join(dir, 'other')}`;
    const { log } = capture();
    assert.equal(resolveSnapshotPath({ path: unwritable, configured: false, intervalMs: 60_000 }, log), join(dir, 'systemd-state', 'store.snapshot'));
  });

  test('the default cannot be written: the user\'s state directory, with a warning', () => {
    delete process.env['STATE_DIRECTORY'];
    process.env['XDG_STATE_HOME'] = join(dir, 'xdg');
    const { log, lines } = capture();
    assert.equal(resolveSnapshotPath({ path: unwritable, configured: false, intervalMs: 60_000 }, log), join(dir, 'xdg', 'res-memcached', 'store.snapshot'));
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.level, 40);
    assert.match(lines[0]!.msg, /cannot write .*a-file\/res-memcached.*saved to .*xdg\/res-memcached\/store\.snapshot/);
  });

  test('neither can be written: no snapshots, an error says so', () => {
    delete process.env['STATE_DIRECTORY'];
    process.env['XDG_STATE_HOME'] = join(blocker, 'xdg');
    const { log, lines } = capture();
    assert.equal(resolveSnapshotPath({ path: unwritable, configured: false, intervalMs: 60_000 }, log), null);
    assert.equal(lines[0]!.level, 50);
    assert.match(lines[0]!.msg, /will not survive a restart/);
  });

  test('a configured path is used as given, even unwritable (an error at start; each snapshot then fails loudly); $STATE_DIRECTORY does not override it', () => {
    process.env['STATE_DIRECTORY'] = join(dir, 'systemd-state');
    const { log, lines } = capture();
    assert.equal(resolveSnapshotPath({ path: unwritable, configured: true, intervalMs: 60_000 }, log), unwritable);
    assert.equal(lines[0]!.level, 50);
    assert.match(lines[0]!.msg, /embedded_snapshot=.*cannot be written/);
  });
});
