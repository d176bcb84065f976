// Steady dialplan load for the reliability tests: N channels, each running AGI sessions back to
// back through the Asterisk-faithful client until told to stop, every session recorded (when it
// started and ended, AGISTATUS, MCDRESULT). Also the results file behind RELIABILITY.md.

import { appendFileSync } from 'node:fs';
import { FakeChannel } from './fake-asterisk.js';

export interface SessionRecord {
  readonly channel: number;
  readonly startMs: number;
  readonly endMs: number;
  readonly status: string;
  readonly rc: string | undefined;
}

export interface Load {
  readonly sessions: SessionRecord[];
  /** Stops starting sessions and resolves when the running ones are done. */
  stop(): Promise<void>;
}

/**
 * Starts `channels` loops; `call(channel, i)` returns [url, args] for the i-th session of a
 * channel. Sessions that throw (the fake's own safety timeout) are recorded with status 'STUCK'.
 */
export function startLoad(channels: number, call: (channel: number, i: number) => [string, string[]], variables: Record<string, string> = {}): Load {
  const sessions: SessionRecord[] = [];
  let stopping = false;
  const loops = Array.from({ length: channels }, async (_, channel) => {
    for (let i = 0; !stopping; i++) {
      const ch = new FakeChannel({ variables });
      const [url, args] = call(channel, i);
      const startMs = Date.now();
      let status: string;
      try {
        status = (await ch.agi(url, args, { sessionTimeoutMs: 15_000 })).status;
      } catch {
        status = 'STUCK';
      }
      sessions.push({ channel, startMs, endMs: Date.now(), status, rc: ch.getVar('MCDRESULT') });
      if (status === 'FAILURE') await new Promise((r) => setTimeout(r, 20));
    }
  });
  return {
    sessions,
    stop: async () => {
      stopping = true;
      await Promise.all(loops);
    },
  };
}

/** Counts of MCDRESULT values among the records. */
export function codeCounts(records: readonly SessionRecord[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of records) counts[r.rc ?? '(unset)'] = (counts[r.rc ?? '(unset)'] ?? 0) + 1;
  return counts;
}

export function longestMs(records: readonly SessionRecord[]): number {
  return records.reduce((m, r) => Math.max(m, r.endMs - r.startMs), 0);
}

export interface ReliabilityRow {
  area: string;
  case: string;
  done: string;
  measured: string;
  outcome: string;
}

/** Appends a row for RELIABILITY.md when RELIABILITY_OUT names a file (npm run reliability). */
export function recordRow(row: ReliabilityRow): void {
  const out = process.env['RELIABILITY_OUT'];
  if (out) appendFileSync(out, JSON.stringify(row) + '\n');
}
