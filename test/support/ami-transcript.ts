// Reads the AMI wire transcripts of test/fixtures/ami/ (format in its README.md): `<<` lines are
// what Asterisk sent, `>>` what the recording client sent, each a JSON string, per connection
// `c1`, `c2`, …; joined in order they are the exact byte streams of that connection.

import { readFileSync } from 'node:fs';
import { fixturePath } from './fixtures.js';

export interface AmiLine {
  readonly dir: '<<' | '>>';
  readonly t: number;
  readonly text: string;
}

export interface AmiConnection {
  readonly lines: AmiLine[];
  /** Every byte Asterisk sent on this connection, in order. */
  readonly fromAsterisk: Buffer;
  /** Every byte the recording client sent. */
  readonly toAsterisk: Buffer;
}

const LINE = /^(<<|>>)\s+([0-9.]+)\s+(c[0-9]+)\s+(".*")$/;

export function readAmiTranscript(file: string): Map<string, AmiConnection> {
  const lines = new Map<string, AmiLine[]>();
  for (const raw of readFileSync(fixturePath('ami', file), 'utf8').split('\n')) {
    const m = LINE.exec(raw);
    if (m === null) continue;
    const conn = m[3]!;
    if (!lines.has(conn)) lines.set(conn, []);
    lines.get(conn)!.push({ dir: m[1] as '<<' | '>>', t: Number(m[2]), text: JSON.parse(m[4]!) as string });
  }
  const out = new Map<string, AmiConnection>();
  for (const [conn, ls] of lines) {
    const join = (dir: string): Buffer => Buffer.from(ls.filter((l) => l.dir === dir).map((l) => l.text).join(''), 'utf8');
    out.set(conn, { lines: ls, fromAsterisk: join('<<'), toAsterisk: join('>>') });
  }
  return out;
}

/**
 * The messages Asterisk sent on `conn` (banner excluded), each as its exact bytes, in order:
 * for picking one response or event out of a transcript and comparing bytes.
 */
export function asteriskMessages(connection: AmiConnection): Buffer[] {
  const out: Buffer[] = [];
  let current = '';
  let banner = true;
  for (const l of connection.lines) {
    if (l.dir !== '<<') continue;
    if (banner) {
      banner = false;
      continue;
    }
    current += l.text;
    if (l.text === '\r\n') {
      out.push(Buffer.from(current, 'utf8'));
      current = '';
    }
  }
  return out;
}
