// The seam between the HTTP listener and what it serves: a handler sees one whole request (body
// already read within the listener's bounds) and answers it, or returns null when the path is
// not its own so the listener can try the next handler.

import type { IncomingHttpHeaders } from 'node:http';

export interface HttpRequest {
  method: string;
  /** The request target's path as sent, still percent-encoded (no query). */
  rawPath: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: Buffer;
  remoteAddress: string;
}

export interface HttpResponse {
  status: number;
  headers?: Record<string, string>;
  body: Buffer | string;
}

/** null: not mine. */
export type HttpHandler = (request: HttpRequest) => Promise<HttpResponse | null>;
