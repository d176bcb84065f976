// Protocol name → its codec: the one place that lists the wire protocols. A connection makes a
// fresh codec for every socket it opens, so no decoder state outlives a connection.

import { BinaryCodec } from './binary.js';
import { TextCodec } from './text.js';
import type { Protocol, WireCodec } from './wire-codec.js';

const CODECS: Record<Protocol, () => WireCodec> = {
  text: () => new TextCodec(),
  binary: () => new BinaryCodec(),
  meta: () => new TextCodec(), // replaced by MetaCodec when protocol/meta.ts lands
};

export function createCodec(protocol: Protocol): WireCodec {
  return CODECS[protocol]();
}
