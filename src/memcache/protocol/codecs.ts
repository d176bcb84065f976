// Protocol name → its codec and what it can carry: the one place that lists the wire protocols.
// A connection makes a fresh codec for every socket it opens, so no decoder state outlives a
// connection; the cluster reads the traits to decide what to check or emulate before sending.

import { BinaryCodec } from './binary.js';
import { MetaCodec } from './meta.js';
import { TextCodec } from './text.js';
import type { Protocol, WireCodec } from './wire-codec.js';

export interface WireTraits {
  /**
   * Keys may hold any byte: the codec encodes them (meta's base64 `b` keys). Otherwise a key
   * with whitespace or a control byte is refused before it is placed (it could end a line).
   */
  readonly anyKeyByte: boolean;
  /** incr/decr can create a missing counter with an initial value and TTL in one request. */
  readonly counterWithInitial: boolean;
  /**
   * A batch of sets can travel as one quiet run (storeMany) whose failures still come back.
   * Otherwise the client sends the sets one by one, pipelined.
   */
  readonly quietWrites: boolean;
}

interface WireProtocol {
  readonly create: () => WireCodec;
  readonly traits: WireTraits;
}

const PROTOCOLS: Record<Protocol, WireProtocol> = {
  text: { create: () => new TextCodec(), traits: { anyKeyByte: false, counterWithInitial: false, quietWrites: false } },
  binary: { create: () => new BinaryCodec(), traits: { anyKeyByte: false, counterWithInitial: true, quietWrites: true } },
  meta: { create: () => new MetaCodec(), traits: { anyKeyByte: true, counterWithInitial: true, quietWrites: true } },
};

export function createCodec(protocol: Protocol): WireCodec {
  return PROTOCOLS[protocol].create();
}

export function wireTraits(protocol: Protocol): WireTraits {
  return PROTOCOLS[protocol].traits;
}
