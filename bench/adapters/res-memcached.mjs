// The project's own client, binary protocol (its default). RES_MEMCACHED_PROTOCOL=text for the
// text protocol. Built first: dist/ is what ships.
export const name = 'res-memcached';
export const version = process.env.PROJECT_VERSION ?? 'dev';

export async function create({ host, port }) {
  const { Client } = await import(new URL('../../dist/src/index.js', import.meta.url).href);
  const protocol = process.env.RES_MEMCACHED_PROTOCOL === 'text' ? 'text' : 'binary';
  const client = new Client({ servers: [`${host}:${port}`], protocol });
  return {
    get: async (key) => (await client.get(key))?.value ?? null,
    set: (key, value) => client.set(key, value),
    incr: (key, by) => client.incr(key, by),
    close: async () => client.close(),
  };
}
