// An in-memory stand-in for a memcached server's socket, handed to Connection through its
// socketFactory option. The test plays the server: it decides when the socket connects, reads
// exactly what the connection wrote (one entry per write() call, so batching is visible),
// pushes reply bytes in whatever chunks it likes, makes write() report backpressure until it
// emits 'drain', and fails or closes the socket the way a kernel would (an errno-coded 'error'
// followed by 'close'). No timers of its own: everything happens when the test says so.

import { Duplex } from 'node:stream';

import type { Address, SocketFactory, TlsSettings } from '../../src/memcache/connection.js';

export class MemorySocket extends Duplex {
  /** Every write() call's bytes, in order (copied: the connection may reuse its buffers). */
  readonly writes: Buffer[] = [];
  /** How many times end() was called. */
  endCalls = 0;
  /** The error destroy() was given, when there was one. */
  destroyError: Error | null = null;
  #blocked = false;

  constructor(
    readonly address: Address,
    readonly tlsSettings: TlsSettings | null,
  ) {
    super();
  }

  override _read(): void {
    // Replies come only from reply().
  }

  override _write(_chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    callback();
  }

  override write(chunk: any, encoding?: any, callback?: any): boolean {
    this.writes.push(Buffer.from(chunk as Uint8Array));
    const accepted = super.write(chunk, encoding, callback);
    return accepted && !this.#blocked;
  }

  override end(...args: any[]): this {
    this.endCalls++;
    return (super.end as (...a: unknown[]) => this).apply(this, args);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.destroyError = error;
    callback(error);
  }

  /** Everything written so far, as one buffer. */
  get sent(): Buffer {
    return Buffer.concat(this.writes);
  }

  /** The TCP (or TLS) handshake completed. */
  connect(event: 'connect' | 'secureConnect' = 'connect'): void {
    this.emit(event);
  }

  /** The server sends these bytes (as one chunk). */
  reply(bytes: Buffer | string): void {
    this.push(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  }

  /** From now on write() returns false, as a socket whose send buffer is full does. */
  block(): void {
    this.#blocked = true;
  }

  /** The send buffer emptied: write() accepts again and 'drain' is emitted. */
  unblock(): void {
    this.#blocked = false;
    this.emit('drain');
  }

  /** The kernel reports an error with this errno code: 'error', then 'close'. */
  fail(code: string, message = `${code} (simulated)`): void {
    const err = Object.assign(new Error(message), { code, errno: -1, syscall: 'read' }) as NodeJS.ErrnoException;
    this.destroy(err);
  }

  /** The server closed the connection cleanly: 'close' without an error. */
  hangUp(): void {
    this.destroy();
  }
}

/** A socketFactory that records every socket it makes. */
export class MemorySockets {
  readonly sockets: MemorySocket[] = [];
  /** Emit 'connect' on the next tick after the socket is made. */
  autoConnect: boolean;
  /** Make the factory throw instead of returning a socket. */
  throwOnCreate: Error | null = null;

  constructor(options: { autoConnect?: boolean } = {}) {
    this.autoConnect = options.autoConnect ?? false;
  }

  readonly factory: SocketFactory = (address, tlsSettings) => {
    if (this.throwOnCreate !== null) throw this.throwOnCreate;
    const socket = new MemorySocket(address, tlsSettings);
    this.sockets.push(socket);
    if (this.autoConnect) process.nextTick(() => socket.connect(tlsSettings === null ? 'connect' : 'secureConnect'));
    return socket;
  };

  /** The most recent socket (the test fails when there is none). */
  get last(): MemorySocket {
    const socket = this.sockets[this.sockets.length - 1];
    if (socket === undefined) throw new Error('no socket was made');
    return socket;
  }
}

/** Lets the stream machinery deliver what was pushed and the connection run its next-tick flush. */
export function settled(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
