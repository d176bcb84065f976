// The project's own client, binary protocol (its default). RES_MEMCACHED_PROTOCOL=text or meta
// for the others. Built first: dist/ is what ships.
import net from 'node:net';

export const name = 'res-memcached';
export const version = process.env.PROJECT_VERSION ?? 'dev';

const protocols = ['binary', 'text', 'meta'];

export async function create({ host, port }) {
  const { Client } = await import(new URL('../../dist/src/index.js', import.meta.url).href);
  const protocol = process.env.RES_MEMCACHED_PROTOCOL || 'binary';
  if (!protocols.includes(protocol)) throw new Error(`RES_MEMCACHED_PROTOCOL must be one of ${protocols.join(', ')} (got ${protocol})`);
  const client = new Client({ servers: [`${host}:${port}`], protocol });
  // A client that does not know a protocol yet may fall back to another one silently, and its
  // figures would be filed under the wrong protocol: look at the bytes of one get before the run.
  let failed = null;
  const spoke = framingOf(await sniffWrites(() => client.get(probeKey).catch((e) => { failed = e; })));
  if (spoke !== protocol || failed) {
    client.close().catch(() => {});
    throw new Error(`${protocol} protocol: the client's get was framed as ${spoke}${failed ? ` and failed: ${failed.message}` : ''}`);
  }
  return {
    get: (key) => client.get(key),          // its Item ({ value, flags }) or null; client-bench reads .value
    set: (key, value) => client.set(key, value),
    incr: (key, by) => client.incr(key, by),
    close: async () => client.close(),
  };
}

const probeKey = 'bench:probe';

/** How the get of probeKey in `bytes` was framed (a connection may write a handshake first). */
function framingOf(bytes) {
  const at = bytes.indexOf(probeKey);
  if (at < 0) return 'unknown (no get written)';
  const before = bytes.toString('latin1', Math.max(0, at - 5), at);
  if (before.endsWith('mg ')) return 'meta';
  if (before.endsWith('get ') || before.endsWith('gets ')) return 'text';
  if (at >= 24 && bytes[at - 24] === 0x80) return 'binary';    // 24-byte header, no extras
  return `unknown (${JSON.stringify(before)})`;
}

/** Every byte any socket writes while `fn` runs (Socket's _write/_writev wrapped for that call only). */
async function sniffWrites(fn) {
  const proto = net.Socket.prototype;
  const { _write, _writev } = proto;
  const seen = [];
  const note = (chunk) => { seen.push(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : Buffer.from(chunk)); };
  proto._write = function (chunk, enc, cb) { note(chunk); return _write.call(this, chunk, enc, cb); };
  proto._writev = function (chunks, cb) { for (const c of chunks) note(c.chunk); return _writev.call(this, chunks, cb); };
  try { await fn(); } finally { proto._write = _write; proto._writev = _writev; }
  return Buffer.concat(seen);
}
