// memcached binary protocol packets for tests that play the server: parse the requests a client
// wrote (to echo their opaques) and build responses byte by byte (24-byte header, then extras,
// key, value; big-endian fields at their protocol offsets).

export interface RequestPacket {
  magic: number;
  opcode: number;
  opaque: number;
  cas: bigint;
  extras: Buffer;
  key: Buffer;
  value: Buffer;
}

/** Every request packet in `bytes`; throws when they do not add up to whole packets. */
export function parseRequests(bytes: Buffer): RequestPacket[] {
  const packets: RequestPacket[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (bytes.length - at < 24) throw new Error(`a partial request header at byte ${at}`);
    const keyLength = bytes.readUInt16BE(at + 2);
    const extrasLength = bytes.readUInt8(at + 4);
    const bodyLength = bytes.readUInt32BE(at + 8);
    const body = bytes.subarray(at + 24, at + 24 + bodyLength);
    if (body.length !== bodyLength) throw new Error(`a partial request body at byte ${at}`);
    packets.push({
      magic: bytes.readUInt8(at),
      opcode: bytes.readUInt8(at + 1),
      opaque: bytes.readUInt32BE(at + 12),
      cas: bytes.readBigUInt64BE(at + 16),
      extras: body.subarray(0, extrasLength),
      key: body.subarray(extrasLength, extrasLength + keyLength),
      value: body.subarray(extrasLength + keyLength),
    });
    at += 24 + bodyLength;
  }
  return packets;
}

export interface ResponseSpec {
  opcode: number;
  opaque: number;
  status?: number;
  cas?: bigint;
  extras?: Buffer;
  key?: Buffer | string;
  value?: Buffer | string;
  magic?: number;
}

const asBuffer = (b: Buffer | string | undefined): Buffer =>
  b === undefined ? Buffer.alloc(0) : typeof b === 'string' ? Buffer.from(b, 'latin1') : b;

export function response(spec: ResponseSpec): Buffer {
  const extras = spec.extras ?? Buffer.alloc(0);
  const key = asBuffer(spec.key);
  const value = asBuffer(spec.value);
  const header = Buffer.alloc(24);
  header.writeUInt8(spec.magic ?? 0x81, 0);
  header.writeUInt8(spec.opcode, 1);
  header.writeUInt16BE(key.length, 2);
  header.writeUInt8(extras.length, 4);
  header.writeUInt16BE(spec.status ?? 0, 6);
  header.writeUInt32BE(extras.length + key.length + value.length, 8);
  header.writeUInt32BE(spec.opaque >>> 0, 12);
  header.writeBigUInt64BE(spec.cas ?? 0n, 16);
  return Buffer.concat([header, extras, key, value]);
}

/** Four bytes of item flags: a GET hit's extras. */
export function flagsExtras(flags: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(flags >>> 0, 0);
  return b;
}
