// Protocol name → its codec and what it can carry: the one place that lists the wire protocols.
// A connection makes a fresh codec for every socket it opens, so no decoder state outlives a
// connection; the cluster reads the traits to decide what to check or emulate before sending.

import { BinaryCodec, refuseBinary } from './binary.js';
import type { Command } from './command.js';
import { MetaCodec, refuseMeta } from './meta.js';
import { refuseText, TextCodec } from './text.js';
import type { Protocol, Refusal, WireCodec } from './wire-codec.js';

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

/** Why a protocol cannot carry a command, or null: the rule its codec's refuse() applies. */
export type RefusalRule = (cmd: Command) => Refusal | null;

interface WireProtocol {
  readonly create: () => WireCodec;
  readonly refuse: RefusalRule;
  readonly traits: WireTraits;
}

const PROTOCOLS: Record<Protocol, WireProtocol> = {
  text: { create: () => new TextCodec(), refuse: refuseText, traits: { anyKeyByte: false, counterWithInitial: false, quietWrites: false } },
  binary: { create: () => new BinaryCodec(), refuse: refuseBinary, traits: { anyKeyByte: false, counterWithInitial: true, quietWrites: true } },
  meta: { create: () => new MetaCodec(), refuse: refuseMeta, traits: { anyKeyByte: true, counterWithInitial: true, quietWrites: true } },
};

export function createCodec(protocol: Protocol): WireCodec {
  return PROTOCOLS[protocol].create();
}

/** The protocol's refusal rule, for checking a command before there is a connection to ask. */
export function refusalRule(protocol: Protocol): RefusalRule {
  return PROTOCOLS[protocol].refuse;
}

export function wireTraits(protocol: Protocol): WireTraits {
  return PROTOCOLS[protocol].traits;
}
