// `res-memcached install`: puts the daemon in place as a systemd service — memcached.conf (from
// the shipped memcached.conf.sample, never over an existing one), extensions_mcd.conf (a changed
// shipped copy goes beside the old one as .new), the state directory for the embedded store's
// snapshot (src/daemon/snapshots.ts), and res-memcached.service. Every path is under --root
// (default /), so a test or an image build can install into a folder. A second run changes
// nothing and says so.

import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError, type Io } from './io.js';

export interface InstallOptions {
  /** Where / is: every file goes under it. */
  root: string;
  /** The service user: given with --user (must exist), else `asterisk` when it exists. */
  user: string | undefined;
  /** Replace a changed extensions_mcd.conf or unit instead of writing .new beside it. */
  force: boolean;
  /** The command the unit runs, as the target system sees it (absolute). */
  execStart: string;
}

export const DEFAULT_SERVICE_USER = 'asterisk';
export const CONFIG_DIR = '/etc/asterisk';
export const STATE_DIR = '/var/lib/res-memcached';
export const UNIT_PATH = '/etc/systemd/system/res-memcached.service';

interface Account {
  name: string;
  uid: number;
  gid: number;
  group: string;
}

/** The package's root: dist/src/cli/ is three levels below it, in a checkout and once installed. */
function packageRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

/**
 * The command for ExecStart=: the installed `res-memcached` bin this process was started through
 * (npm links it into <prefix>/bin), else — run as `node dist/src/cli/main.js` from a checkout —
 * this node and that script, both absolute. A path under --root is written as the target system
 * will see it.
 */
export function resolveExecStart(root: string, argv1: string | undefined = process.argv[1]): string {
  const script = argv1 === undefined ? fileURLToPath(new URL('./main.js', import.meta.url)) : resolve(argv1);
  const command = /(^|[/\\])res-memcached$/.test(script) ? script : `${process.execPath} ${realpathOr(script)}`;
  return command
    .split(' ')
    .map((part) => targetPath(root, part))
    .join(' ');
}

function realpathOr(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** `<root>/usr/bin/x` → `/usr/bin/x`; a path outside the root is kept. */
function targetPath(root: string, path: string): string {
  const rel = relative(resolve(root), path);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return path;
  return `/${rel.split(sep).join('/')}`;
}

/** A user from <root>/etc/passwd, or (installing into /) from the name service (getent: LDAP, sssd...). */
export function findAccount(root: string, name: string): Account | null {
  const line = passwdLine(root, name);
  if (line === null) return null;
  const [, , uid, gid] = line.split(':');
  const account = { name, uid: Number(uid), gid: Number(gid), group: name };
  const groupName = groupOf(root, account.gid);
  return { ...account, group: groupName ?? String(account.gid) };
}

function passwdLine(root: string, name: string): string | null {
  const fromFile = readLines(join(root, 'etc', 'passwd')).find((l) => l.split(':')[0] === name);
  if (fromFile !== undefined) return fromFile;
  if (resolve(root) !== '/') return null;
  try {
    return execFileSync('getent', ['passwd', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || null;
  } catch {
    return null;
  }
}

function groupOf(root: string, gid: number): string | null {
  const line = readLines(join(root, 'etc', 'group')).find((l) => l.split(':')[2] === String(gid));
  return line === undefined ? null : (line.split(':')[0] ?? null);
}

function readLines(path: string): string[] {
  try {
    return readFileSync(path, 'utf8').split('\n');
  } catch {
    return [];
  }
}

/** The systemd unit. Keys and why each hardening option is there or not: systemd.exec(5). */
export function unitText(execStart: string, account: Account | null): string {
  const who =
    account === null
      ? [
          `# No "${DEFAULT_SERVICE_USER}" user on this machine: systemd runs the daemon as a transient user`,
          '# (it needs no file of its own beyond StateDirectory=). Re-run `res-memcached install`',
          '# once Asterisk is installed to run it as Asterisk\'s user instead.',
          'DynamicUser=yes',
        ]
      : [`User=${account.name}`, `Group=${account.group}`];
  return `# Written by \`res-memcached install\`. Local changes belong in a drop-in
# (systemctl edit res-memcached): a newer install writes a changed unit beside this one as .new.
[Unit]
Description=res-memcached: memcached for the Asterisk dialplan (FastAGI)
Documentation=https://www.npmjs.com/package/res-memcached
After=network-online.target
Wants=network-online.target
# Up before Asterisk, so the first calls find the FastAGI port open.
Before=asterisk.service

[Service]
Type=exec
${who.join('\n')}
ExecStart=${execStart} --config ${CONFIG_DIR}/memcached.conf
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
# The embedded store's snapshot: systemd creates /var/lib/res-memcached for the service user and
# names it in $STATE_DIRECTORY, which the daemon uses.
StateDirectory=res-memcached
StateDirectoryMode=0750

# Hardening. /etc/asterisk stays readable; only the state directory is writable.
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
# The FastAGI port (4573) is not privileged: no capability at all.
CapabilityBoundingSet=
# No MemoryDenyWriteExecute=yes: V8 makes its code space writable and executable at start
# (mprotect PROT_WRITE|PROT_EXEC), which that option refuses, and node aborts before running.

[Install]
WantedBy=multi-user.target
`;
}

type Outcome = 'created' | 'unchanged' | 'kept' | 'new-beside' | 'replaced';

interface Step {
  path: string;
  outcome: Outcome;
  note?: string;
}

/** Installs; returns 0, or 1 when a file could not be written (the error says which). */
export function runInstall(options: InstallOptions, io: Io): number {
  const { root } = options;
  const account = options.user === undefined ? findAccount(root, DEFAULT_SERVICE_USER) : findAccount(root, options.user);
  if (options.user !== undefined && account === null) {
    throw new UsageError(`--user ${options.user}: no such user${resolve(root) === '/' ? '' : ` in ${join(root, 'etc', 'passwd')}`}`);
  }
  const shipped = packageRoot();
  const asRoot = process.getuid?.() === 0;
  const steps: Step[] = [];

  const confDir = join(root, CONFIG_DIR);
  mkdirSync(confDir, { recursive: true, mode: 0o755 });
  // Readable by the service's group only: the file may hold SASL passwords (memcached.conf.sample).
  const confMode = account === null ? 0o644 : 0o640;
  steps.push(placeOnce(join(confDir, 'memcached.conf'), readFileSync(join(shipped, 'memcached.conf.sample')), confMode, asRoot ? account : null));
  steps.push(placeShipped(join(confDir, 'extensions_mcd.conf'), readFileSync(join(shipped, 'extensions_mcd.conf')), 0o644, options.force));

  const stateDir = join(root, STATE_DIR);
  if (existsSync(stateDir)) steps.push({ path: stateDir, outcome: 'unchanged' });
  else {
    mkdirSync(stateDir, { recursive: true, mode: 0o750 });
    if (asRoot && account !== null) chownSync(stateDir, account.uid, account.gid);
    steps.push({ path: stateDir, outcome: 'created', note: account !== null && asRoot ? `owned by ${account.name}` : undefined });
  }

  const unitPath = join(root, UNIT_PATH);
  mkdirSync(dirname(unitPath), { recursive: true, mode: 0o755 });
  steps.push(placeShipped(unitPath, Buffer.from(unitText(options.execStart, account)), 0o644, options.force));

  for (const s of steps) io.out(describe(s));
  const changed = steps.some((s) => s.outcome !== 'unchanged' && s.outcome !== 'kept');
  if (!changed) io.out('\nNothing changed: everything was already installed.\n');
  io.out(nextSteps(account, steps));
  return 0;
}

/** A file the administrator owns once written: created when missing, never touched again. */
function placeOnce(path: string, content: Buffer, mode: number, owner: Account | null): Step {
  if (existsSync(path)) return { path, outcome: 'kept', note: 'exists, left as it is' };
  writeFileSync(path, content, { mode, flag: 'wx' });
  if (owner !== null) chownSync(path, 0, owner.gid);
  return { path, outcome: 'created', note: 'from memcached.conf.sample' };
}

/**
 * A file we ship: created when missing; left alone when identical; when it differs (a newer
 * release, or local edits), the shipped one goes beside it as .new for the administrator to
 * compare — or replaces it with --force.
 */
function placeShipped(path: string, content: Buffer, mode: number, force: boolean): Step {
  if (!existsSync(path)) {
    writeFileSync(path, content, { mode });
    return { path, outcome: 'created' };
  }
  if (readFileSync(path).equals(content)) return { path, outcome: 'unchanged' };
  if (force) {
    writeFileSync(path, content, { mode });
    return { path, outcome: 'replaced', note: '--force' };
  }
  const beside = `${path}.new`;
  if (existsSync(beside) && readFileSync(beside).equals(content)) return { path, outcome: 'kept', note: `differs from the shipped one, which is already beside it as ${beside}` };
  writeFileSync(beside, content, { mode });
  return { path, outcome: 'new-beside', note: `differs from the shipped one: wrote ${beside}; compare (diff ${path} ${beside}) and merge, or re-run with --force to replace it` };
}

function describe(s: Step): string {
  const verb = s.outcome === 'new-beside' ? 'kept' : s.outcome;
  return `${verb.padEnd(10)} ${s.path}${s.note === undefined ? '' : ` (${s.note})`}\n`;
}

function nextSteps(account: Account | null, steps: Step[]): string {
  const stale = steps.filter((s) => s.outcome === 'new-beside');
  return `
Next:
  systemctl daemon-reload && systemctl enable --now res-memcached
  journalctl -u res-memcached -n 5     # the start line: listener, config, backend
  Add to /etc/asterisk/extensions.conf (top level, outside any context):
    #include extensions_mcd.conf
  asterisk -rx "dialplan reload"
  asterisk -rx "channel originate Local/mcdtest@mcd-selftest-dial application Wait 10"
                                       # the self-test: PASS on the Asterisk console
  Edit /etc/asterisk/memcached.conf (server= lines for a memcached cluster; none: the embedded
  store), then: systemctl reload res-memcached
${account === null ? `  The unit runs with DynamicUser=yes: no "${DEFAULT_SERVICE_USER}" user here. Re-run after installing Asterisk.\n` : ''}${stale.length > 0 ? `  Merge the .new file${stale.length > 1 ? 's' : ''} above.\n` : ''}`;
}

/** --root given as it is; its files are checked before anything is written. */
export function checkRoot(root: string): string {
  const abs = resolve(root);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) throw new UsageError(`--root ${root}: not a directory`);
  return abs;
}
