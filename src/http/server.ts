// The HTTP listener (node:http) for monitoring and, later, other doors: permit/deny at connect as
// the FastAGI listener does (src/agi/server.ts), a cap on open connections, keep-alive, and every
// request bounded: request line + headers by maxHeaderSize (431 from node's parser), the whole
// request by requestTimeout and the headers by headersTimeout (a client trickling bytes is cut;
// node checks both every connectionsCheckingInterval), the body by maxBodyBytes (413, read no
// further). Routing is one seam: an ordered list of handlers, each answering or passing (null).

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { admitPeer, closeCutting, listenTcp } from '../util/listen.js';
import type { HttpHandler, HttpRequest, HttpResponse } from './types.js';

export type { HttpHandler, HttpRequest, HttpResponse } from './types.js';

export type HttpServerEvent =
  | { type: 'refused'; address: string }
  | { type: 'busy'; address: string; connections: number }
  | { type: 'handler-error'; address: string; path: string; error: unknown };

export interface HttpServerPolicy {
  isPermitted(address: string): boolean;
  maxConnections: number;
}

export interface HttpServerOptions extends HttpServerPolicy {
  host: string;
  port: number;
  /** Deadline of a whole request, headers and body (ms). */
  requestTimeoutMs: number;
  /** Deadline of the request line and headers (ms); at most requestTimeoutMs. */
  headersTimeoutMs: number;
  /** An idle keep-alive connection is closed after this (ms). */
  keepAliveTimeoutMs: number;
  /** Request line + headers (bytes); node answers 431 beyond. */
  maxHeaderBytes: number;
  /** Request body (bytes); 413 beyond. */
  maxBodyBytes: number;
  /** How often node looks for requests past their deadlines (ms); the cut comes at most this late. */
  checkIntervalMs?: number;
  onEvent?(event: HttpServerEvent): void;
}

/** The defaults the daemon uses for what [http] does not configure. */
export const HTTP_BOUNDS = {
  maxHeaderBytes: 16 * 1024,
  // 64 KiB for a value plus room for its percent-encoding slack and form framing.
  maxBodyBytes: 64 * 1024 + 1024,
  maxHeadersCount: 64,
  maxRequestsPerSocket: 10_000,
} as const;

export class HttpServer {
  readonly #server: Server;
  readonly #options: HttpServerOptions;
  #policy: HttpServerPolicy;
  readonly #handlers: HttpHandler[] = [];
  readonly #sockets = new Set<Socket>();

  constructor(options: HttpServerOptions, handlers: readonly HttpHandler[] = []) {
    this.#options = options;
    this.#policy = options;
    this.#handlers.push(...handlers);
    this.#server = createServer(
      {
        maxHeaderSize: options.maxHeaderBytes,
        requestTimeout: options.requestTimeoutMs,
        headersTimeout: Math.min(options.headersTimeoutMs, options.requestTimeoutMs),
        keepAliveTimeout: options.keepAliveTimeoutMs,
        connectionsCheckingInterval: options.checkIntervalMs ?? 1000,
        noDelay: true,
      },
      (req, res) => void this.#serve(req, res),
    );
    this.#server.maxHeadersCount = HTTP_BOUNDS.maxHeadersCount;
    this.#server.maxRequestsPerSocket = HTTP_BOUNDS.maxRequestsPerSocket;
    // Refused and over-cap peers are cut here, before node's parser sees a byte.
    this.#server.on('connection', (socket: Socket) => this.#accept(socket));
    // A malformed request, or one over a bound: node's own answer (400, 431, 408) then the cut.
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => clientError(err, socket));
  }

  /** Resolves with the bound address once listening (port 0 picks a free port). */
  listen(): Promise<{ host: string; port: number }> {
    return listenTcp(this.#server, this.#options.host, this.#options.port, 'HTTP');
  }

  /** Appends a handler, asked after those before it. */
  addHandler(handler: HttpHandler): void {
    this.#handlers.push(handler);
  }

  /** The ACL and cap for connections accepted from now on (a reload). */
  setPolicy(policy: HttpServerPolicy): void {
    this.#policy = policy;
  }

  get connections(): number {
    return this.#sockets.size;
  }

  /** Stops listening and cuts every connection (monitoring requests are not worth waiting for). */
  async close(): Promise<void> {
    await closeCutting(this.#server, this.#sockets);
  }

  #accept(socket: Socket): void {
    const policy = this.#policy;
    const address = admitPeer(socket, policy.isPermitted, (refused) => this.#options.onEvent?.({ type: 'refused', address: refused }));
    if (address === null) return;
    if (this.#sockets.size >= policy.maxConnections) {
      this.#options.onEvent?.({ type: 'busy', address, connections: this.#sockets.size });
      socket.destroy();
      return;
    }
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
  }

  async #serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const address = req.socket.remoteAddress ?? '';
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const rawPath = q < 0 ? target : target.slice(0, q);
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > this.#options.maxBodyBytes) return tooLarge(res);
    const body = await readBody(req, this.#options.maxBodyBytes);
    if (body === null) return tooLarge(res);
    const request: HttpRequest = {
      method: req.method ?? 'GET',
      rawPath,
      query: new URLSearchParams(q < 0 ? '' : target.slice(q + 1)),
      headers: req.headers,
      body,
      remoteAddress: address,
    };
    let response: HttpResponse | null = null;
    try {
      for (const handler of this.#handlers) {
        response = await handler(request);
        if (response !== null) break;
      }
    } catch (error) {
      this.#options.onEvent?.({ type: 'handler-error', address, path: rawPath, error });
      response = { status: 500, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'internal error\n' };
    }
    response ??= { status: 404, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'not found\n' };
    send(res, response);
  }
}

/** The body, or null once it passes `max` (the rest is not read: the connection is closed after the 413). */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let length = 0;
    let done = false;
    const finish = (value: Buffer | null): void => {
      if (done) return;
      done = true;
      req.off('data', onData);
      resolve(value);
    };
    const onData = (chunk: Buffer): void => {
      length += chunk.length;
      if (length > max) {
        req.pause();
        return finish(null);
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => finish(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length)));
    // Aborted or cut by requestTimeout: nobody is left to answer.
    req.once('error', () => finish(null));
    req.once('close', () => finish(null));
  });
}

function tooLarge(res: ServerResponse): void {
  if (res.destroyed) return;
  // The unread rest of the body would be parsed as the next request: close instead.
  res.shouldKeepAlive = false;
  send(res, { status: 413, headers: { 'content-type': 'text/plain; charset=utf-8', connection: 'close' }, body: 'request body too large\n' });
}

function send(res: ServerResponse, response: HttpResponse): void {
  if (res.destroyed || res.headersSent) return;
  const body = typeof response.body === 'string' ? Buffer.from(response.body, 'utf8') : response.body;
  res.writeHead(response.status, { ...response.headers, 'content-length': String(body.length) });
  res.end(body);
}

/** node's usual answer to a bad request (src: lib/_http_server.js socketOnError), but never more than once per socket. */
function clientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (socket.writable && !socket.destroyed && (socket as Socket & { _httpMessage?: unknown })._httpMessage == null) {
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    socket.destroySoon();
    return;
  }
  socket.destroy();
}
