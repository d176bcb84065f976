// Asks one memcached directly what it holds for some keys, bypassing every client's placement:
// memcached's meta get (`mg <key> v f t`, doc/protocol.txt "Meta Get") returns the value, the
// flags and the remaining TTL in one reply, `EN` for a key it does not hold; `mn` ends the batch.

import * as net from 'node:net';

export interface HeldItem {
  value: Buffer;
  flags: number;
  /** Seconds left; -1 = never expires. */
  ttl: number;
}

/** `host:port` or a Unix socket path, as in a server= line. */
export type ServerTarget = string;

function connectOptions(target: ServerTarget): net.NetConnectOpts {
  if (target.startsWith('/')) return { path: target };
  const colon = target.lastIndexOf(':');
  return { host: target.slice(0, colon), port: Number(target.slice(colon + 1)) };
}

/** The items among `keys` (text-protocol keys: printable ASCII) that this one server holds. */
export function heldItems(target: ServerTarget, keys: readonly string[]): Promise<Map<string, HeldItem>> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(connectOptions(target));
    let buffer = Buffer.alloc(0);
    socket.setTimeout(5000, () => socket.destroy(new Error(`${target}: no answer to mg within 5 s`)));
    socket.once('error', reject);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const parsed = parseMetaReplies(buffer, keys);
      if (parsed === null) return;
      socket.destroy();
      resolve(parsed);
    });
    socket.write(keys.map((k) => `mg ${k} v f t\r\n`).join('') + 'mn\r\n');
  });
}

/** The replies in key order, or null while the closing `MN` has not arrived. */
function parseMetaReplies(buffer: Buffer, keys: readonly string[]): Map<string, HeldItem> | null {
  const out = new Map<string, HeldItem>();
  let at = 0;
  for (let i = 0; i <= keys.length; i++) {
    const eol = buffer.indexOf('\r\n', at);
    if (eol === -1) return null;
    const line = buffer.toString('latin1', at, eol);
    at = eol + 2;
    if (i === keys.length) {
      if (line !== 'MN') throw new Error(`expected MN, got ${JSON.stringify(line)}`);
      return out;
    }
    if (line === 'EN') continue;
    const m = /^VA (\d+) f(\d+) t(-?\d+)$/.exec(line);
    if (!m) throw new Error(`unexpected meta reply ${JSON.stringify(line)} for ${keys[i]}`);
    const size = Number(m[1]);
    if (buffer.length < at + size + 2) return null;
    out.set(keys[i]!, { value: Buffer.from(buffer.subarray(at, at + size)), flags: Number(m[2]), ttl: Number(m[3]) });
    at += size + 2;
  }
  return null;
}

/** For every key, the one server of `targets` that holds it (an error if two do). */
export async function whereHeld(targets: readonly ServerTarget[], keys: readonly string[]): Promise<Map<string, { server: ServerTarget; item: HeldItem }>> {
  const out = new Map<string, { server: ServerTarget; item: HeldItem }>();
  const held = await Promise.all(targets.map((t) => heldItems(t, keys)));
  held.forEach((items, i) => {
    for (const [key, item] of items) {
      const other = out.get(key);
      if (other) throw new Error(`${key} is held by both ${other.server} and ${targets[i]}`);
      out.set(key, { server: targets[i]!, item });
    }
  });
  return out;
}
