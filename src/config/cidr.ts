// IP networks for the FastAGI listener's permit=/deny= lines, written as Asterisk admins write
// them in manager.conf or sip.conf: `10.0.0.0/8`, `10.0.0.0/255.0.0.0`, a bare address
// (`10.1.2.3` = /32, `::1` = /128), `::/0`. Host names are refused: an ACL must not depend on DNS.
//
// Matching follows Asterisk's ast_apply_ha(): an IPv4 network also covers IPv4-mapped IPv6
// addresses (`::ffff:127.0.0.1`, as Node reports IPv4 clients of a dual-stack listener), and an
// IPv6 network sees an IPv4 client as its mapped address. A native IPv6 client never matches an
// IPv4 network, so `0.0.0.0/0` means "every IPv4 client", and `::/0` means everyone.

export type IpFamily = 4 | 6;

export interface IpAddress {
  readonly family: IpFamily;
  /** The address as an unsigned 32-bit (IPv4) or 128-bit (IPv6) integer. */
  readonly value: bigint;
}

export class CidrError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CidrError';
  }
}

const V4_BITS = 32;
const V6_BITS = 128;
/** ::ffff:0:0/96, the IPv4-mapped IPv6 prefix. */
const MAPPED_PREFIX = 0xffffn << 32n;
const MAPPED_MASK = ((1n << 96n) - 1n) << 32n;

export class Cidr {
  /** The address bits of the network (host bits cleared). */
  readonly network: bigint;

  constructor(
    readonly family: IpFamily,
    network: bigint,
    readonly mask: bigint,
    /** null for a non-contiguous dotted mask (Asterisk accepts those; they match bitwise). */
    readonly prefixLength: number | null,
    /** The network was written with host bits set (`10.1.2.3/8`): they are ignored, as Asterisk does. */
    readonly hostBitsSet: boolean,
    /** As written in the config. */
    readonly text: string,
  ) {
    this.network = network & mask;
  }

  /** Whether `address` (as Node reports a remote address) lies in this network. */
  matches(address: string): boolean {
    const ip = parseIp(stripZone(address.trim()));
    if (ip === null) return false;
    const value = this.family === 4 ? asIpv4(ip) : asIpv6(ip);
    return value !== null && (value & this.mask) === this.network;
  }

  toString(): string {
    return this.text;
  }

  /** bigint fields do not serialise: print the network as written. */
  toJSON(): string {
    return this.text;
  }
}

/** Parses `addr`, `addr/len`, IPv4 `addr/dotted.mask`, or `[v6addr]/len`; throws CidrError. */
export function parseCidr(input: string): Cidr {
  const text = input.trim();
  if (text === '') throw new CidrError('empty network');
  const parts = text.split('/');
  if (parts.length > 2) throw new CidrError(`${JSON.stringify(text)}: more than one '/'`);
  const addressText = unbracket(parts[0] ?? '');
  const ip = parseIp(addressText);
  if (ip === null) {
    throw new CidrError(`${JSON.stringify(text)}: not an IPv4 or IPv6 address (host names are not allowed here)`);
  }
  const { mask, prefixLength } = parseMask(parts[1], ip.family, text);
  return new Cidr(ip.family, ip.value, mask, prefixLength, (ip.value & mask) !== ip.value, text);
}

/** A numeric IPv4 or IPv6 address (no zone, no brackets), or null. */
export function parseIp(text: string): IpAddress | null {
  if (text.includes(':')) {
    const value = parseIpv6(text);
    return value === null ? null : { family: 6, value };
  }
  const value = parseIpv4(text);
  return value === null ? null : { family: 4, value };
}

/** Whether `text` is a loopback address (127.0.0.0/8, ::1, ::ffff:127.x.x.x). */
export function isLoopback(text: string): boolean {
  return LOOPBACK_V4.matches(text) || LOOPBACK_V6.matches(text);
}

function parseMask(maskText: string | undefined, family: IpFamily, text: string): { mask: bigint; prefixLength: number | null } {
  const bits = family === 4 ? V4_BITS : V6_BITS;
  if (maskText === undefined) return { mask: prefixMask(bits, bits), prefixLength: bits };
  if (/^[0-9]{1,3}$/.test(maskText)) {
    const length = Number(maskText);
    if (length > bits) throw new CidrError(`${JSON.stringify(text)}: prefix length ${length} is more than ${bits}`);
    return { mask: prefixMask(length, bits), prefixLength: length };
  }
  // Asterisk's own samples write IPv4 masks dotted: permit=192.168.0.0/255.255.0.0
  const dotted = family === 4 ? parseIpv4(maskText) : null;
  if (dotted === null) throw new CidrError(`${JSON.stringify(text)}: bad mask ${JSON.stringify(maskText)}`);
  return { mask: dotted, prefixLength: contiguousLength(dotted, bits) };
}

function prefixMask(length: number, bits: number): bigint {
  const all = (1n << BigInt(bits)) - 1n;
  return (all << BigInt(bits - length)) & all;
}

/** The prefix length a mask stands for, or null when its one-bits are not contiguous. */
function contiguousLength(mask: bigint, bits: number): number | null {
  for (let length = 0; length <= bits; length++) {
    if (prefixMask(length, bits) === mask) return length;
  }
  return null;
}

function unbracket(text: string): string {
  return text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
}

/** fe80::1%eth0 → fe80::1 (Node reports link-local peers with their zone). */
function stripZone(text: string): string {
  const percent = text.indexOf('%');
  return percent === -1 ? text : text.slice(0, percent);
}

function asIpv4(ip: IpAddress): bigint | null {
  if (ip.family === 4) return ip.value;
  return (ip.value & MAPPED_MASK) === MAPPED_PREFIX ? ip.value & 0xffffffffn : null;
}

function asIpv6(ip: IpAddress): bigint {
  return ip.family === 6 ? ip.value : MAPPED_PREFIX | ip.value;
}

/** Dotted quad, decimal, no leading zeros (inet_pton's rule: 010 is not octal, it is refused). */
function parseIpv4(text: string): bigint | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let value = 0n;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return null;
    const octet = Number(part);
    if (octet > 255) return null;
    value = (value << 8n) | BigInt(octet);
  }
  return value;
}

/** RFC 4291 text form: up to 8 hex groups, one `::`, an optional dotted IPv4 tail. */
function parseIpv6(text: string): bigint | null {
  const gap = text.indexOf('::');
  if (gap !== -1 && text.indexOf('::', gap + 1) !== -1) return null;
  const headText = gap === -1 ? text : text.slice(0, gap);
  const tailText = gap === -1 ? '' : text.slice(gap + 2);
  const head = parseGroups(headText, gap === -1);
  const tail = parseGroups(tailText, true);
  if (head === null || tail === null) return null;
  const count = head.length + tail.length;
  if (gap === -1 ? count !== 8 : count > 7) return null;
  const groups = [...head, ...new Array<number>(8 - count).fill(0), ...tail];
  return groups.reduce((acc, group) => (acc << 16n) | BigInt(group), 0n);
}

/** Colon-separated 16-bit groups; the last may be a dotted IPv4 address (two groups). */
function parseGroups(text: string, mayEndInIpv4: boolean): number[] | null {
  if (text === '') return [];
  const parts = text.split(':');
  const groups: number[] = [];
  for (const [i, part] of parts.entries()) {
    if (part.includes('.') && mayEndInIpv4 && i === parts.length - 1) {
      const v4 = parseIpv4(part);
      if (v4 === null) return null;
      groups.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
    } else if (/^[0-9a-fA-F]{1,4}$/.test(part)) {
      groups.push(parseInt(part, 16));
    } else {
      return null;
    }
  }
  return groups;
}

const LOOPBACK_V4 = parseCidr('127.0.0.0/8');
const LOOPBACK_V6 = parseCidr('::1/128');
