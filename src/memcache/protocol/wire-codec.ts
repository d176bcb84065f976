// The one seam between a connection and a wire protocol (ARCHITECTURE.md, "The wire seam").
// A Connection holds one WireCodec per socket and never asks which protocol it speaks: the
// codec writes requests, cuts the byte stream into reply frames, and folds each frame into the
// request at the head of the connection's queue. text.ts, binary.ts and meta.ts implement it;
// codecs.ts maps a protocol name to its codec. No sockets here.

import type { ByteWriter } from '../../util/byte-writer.js';
import type { Command, Outcome } from './command.js';

/** The wire protocols a connection can speak. */
export type Protocol = 'text' | 'binary' | 'meta';

/** What a codec sees of a queued request. */
export interface WireRequest {
  readonly cmd: Command;
  /** Built up frame by frame by `accept`; starts as `{ rc: 0 }`. */
  out: Outcome;
  /** Set by `encode` to whatever the reply echoes (binary opaque, meta `O` token); 0 in text. */
  opaque: number;
}

/** Why a protocol cannot carry a command: the request is answered with `rc` and never sent. */
export interface Refusal {
  readonly rc: number;
  readonly message: string;
}

/** What `accept` did with a frame. */
export const Fold = {
  /** The frame belongs to the head request, which needs more frames. */
  MORE: 0,
  /** The frame completed the head request. */
  DONE: 1,
} as const;
export type Fold = (typeof Fold)[keyof typeof Fold];

export interface WireCodec<F = unknown> {
  /**
   * Null when this protocol can carry `cmd`, else why not. Asked before a request is queued,
   * so `encode` never meets a command it cannot write.
   */
  refuse(cmd: Command): Refusal | null;
  /** Appends the request's bytes to `w`, setting `req.opaque` when the protocol echoes one. */
  encode(req: WireRequest, w: ByteWriter): void;
  /** Appends received bytes. */
  feed(chunk: Buffer): void;
  /** The next complete frame, or undefined until more bytes arrive. Throws ProtocolError. */
  next(): F | undefined;
  /**
   * Folds `frame` into `head`, the oldest request written and not yet answered. Throws
   * ProtocolError (rc UNKNOWN_READ_FAILURE) when the frame cannot belong to it: the stream is
   * out of sync and the connection must go.
   */
  accept(head: WireRequest, frame: F): Fold;
}
