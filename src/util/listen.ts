// Binding a TCP listener and reporting where it is, shared by the FastAGI and HTTP listeners.

import type { Server, Socket } from 'node:net';

/** Resolves with the bound address once listening (port 0 picks a free port); rejects with the listen error. */
export function listenTcp(server: Server, host: string, port: number, what: string): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const a = server.address();
      if (a === null || typeof a === 'string') return reject(new Error(`${what} listener has no TCP address`));
      resolve({ host: a.address, port: a.port });
    });
  });
}

/** Stops listening, cuts every socket still open, and resolves once the listener has closed. */
export async function closeCutting(server: Server, sockets: Iterable<Socket>): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const socket of sockets) socket.destroy();
  await closed;
}

/**
 * The peer's address when `isPermitted` lets it in; otherwise the socket is cut at once, before
 * a byte either way (a refused peer may not be a client at all), `onRefused` is told, and null.
 */
export function admitPeer(socket: Socket, isPermitted: (address: string) => boolean, onRefused: (address: string) => void): string | null {
  const address = socket.remoteAddress ?? '';
  if (isPermitted(address)) return address;
  onRefused(address);
  socket.destroy();
  return null;
}
