// Result codes: libmemcached 1.0's memcached_return_t (numbers, names and memcached_strerror()
// texts taken from libmemcached 1.1.4, test/fixtures/vectors/return-codes.json), followed by the
// codes of the Asterisk res_memcached module (README.md, "Result codes"). One closed list for the
// whole package; ARCHITECTURE.md, "Result codes", says which classes carry them.

export const Rc = {
  SUCCESS: 0,
  FAILURE: 1,
  HOST_LOOKUP_FAILURE: 2,
  CONNECTION_FAILURE: 3,
  CONNECTION_BIND_FAILURE: 4,
  WRITE_FAILURE: 5,
  READ_FAILURE: 6,
  UNKNOWN_READ_FAILURE: 7,
  PROTOCOL_ERROR: 8,
  CLIENT_ERROR: 9,
  SERVER_ERROR: 10,
  ERROR: 11,
  DATA_EXISTS: 12,
  DATA_DOES_NOT_EXIST: 13,
  NOTSTORED: 14,
  STORED: 15,
  NOTFOUND: 16,
  MEMORY_ALLOCATION_FAILURE: 17,
  PARTIAL_READ: 18,
  SOME_ERRORS: 19,
  NO_SERVERS: 20,
  END: 21,
  DELETED: 22,
  VALUE: 23,
  STAT: 24,
  ITEM: 25,
  ERRNO: 26,
  FAIL_UNIX_SOCKET: 27,
  NOT_SUPPORTED: 28,
  NO_KEY_PROVIDED: 29,
  FETCH_NOTFINISHED: 30,
  TIMEOUT: 31,
  BUFFERED: 32,
  BAD_KEY_PROVIDED: 33,
  INVALID_HOST_PROTOCOL: 34,
  SERVER_MARKED_DEAD: 35,
  UNKNOWN_STAT_KEY: 36,
  E2BIG: 37,
  INVALID_ARGUMENTS: 38,
  KEY_TOO_BIG: 39,
  AUTH_PROBLEM: 40,
  AUTH_FAILURE: 41,
  AUTH_CONTINUE: 42,
  PARSE_ERROR: 43,
  PARSE_USER_ERROR: 44,
  DEPRECATED: 45,
  IN_PROGRESS: 46,
  SERVER_TEMPORARILY_DISABLED: 47,
  SERVER_MEMORY_ALLOCATION_FAILURE: 48,
  MAXIMUM_RETURN: 49,
  // res_memcached's own codes (counted down from 127 so they never meet libmemcached's).
  BAD_VALUE: 122,
  BINARY_PROTO_NEEDED: 123,
  BAD_INCREMENT: 124,
  VALUE_TOO_LONG: 125,
  KEY_TOO_LONG: 126,
  ARGUMENT_NEEDED: 127,
} as const;

export type RcName = keyof typeof Rc;
export type RcNumber = (typeof Rc)[RcName];

const TABLE: ReadonlyArray<readonly [number, string, string]> = [
  [0, 'MEMCACHED_SUCCESS', "SUCCESS"],
  [1, 'MEMCACHED_FAILURE', "FAILURE"],
  [2, 'MEMCACHED_HOST_LOOKUP_FAILURE', "getaddrinfo() or getnameinfo() HOSTNAME LOOKUP FAILURE"],
  [3, 'MEMCACHED_CONNECTION_FAILURE', "CONNECTION FAILURE"],
  [4, 'MEMCACHED_CONNECTION_BIND_FAILURE', "CONNECTION BIND FAILURE"],
  [5, 'MEMCACHED_WRITE_FAILURE', "WRITE FAILURE"],
  [6, 'MEMCACHED_READ_FAILURE', "READ FAILURE"],
  [7, 'MEMCACHED_UNKNOWN_READ_FAILURE', "UNKNOWN READ FAILURE"],
  [8, 'MEMCACHED_PROTOCOL_ERROR', "PROTOCOL ERROR"],
  [9, 'MEMCACHED_CLIENT_ERROR', "CLIENT ERROR"],
  [10, 'MEMCACHED_SERVER_ERROR', "SERVER ERROR"],
  [11, 'MEMCACHED_ERROR', "ERROR was returned by server"],
  [12, 'MEMCACHED_DATA_EXISTS', "CONNECTION DATA EXISTS"],
  [13, 'MEMCACHED_DATA_DOES_NOT_EXIST', "CONNECTION DATA DOES NOT EXIST"],
  [14, 'MEMCACHED_NOTSTORED', "NOT STORED"],
  [15, 'MEMCACHED_STORED', "STORED"],
  [16, 'MEMCACHED_NOTFOUND', "NOT FOUND"],
  [17, 'MEMCACHED_MEMORY_ALLOCATION_FAILURE', "MEMORY ALLOCATION FAILURE"],
  [18, 'MEMCACHED_PARTIAL_READ', "PARTIAL READ"],
  [19, 'MEMCACHED_SOME_ERRORS', "SOME ERRORS WERE REPORTED"],
  [20, 'MEMCACHED_NO_SERVERS', "NO SERVERS DEFINED"],
  [21, 'MEMCACHED_END', "SERVER END"],
  [22, 'MEMCACHED_DELETED', "SERVER DELETE"],
  [23, 'MEMCACHED_VALUE', "SERVER VALUE"],
  [24, 'MEMCACHED_STAT', "STAT VALUE"],
  [25, 'MEMCACHED_ITEM', "ITEM VALUE"],
  [26, 'MEMCACHED_ERRNO', "SYSTEM ERROR"],
  [27, 'MEMCACHED_FAIL_UNIX_SOCKET', "COULD NOT OPEN UNIX SOCKET"],
  [28, 'MEMCACHED_NOT_SUPPORTED', "ACTION NOT SUPPORTED"],
  [29, 'MEMCACHED_NO_KEY_PROVIDED', "A KEY LENGTH OF ZERO WAS PROVIDED"],
  [30, 'MEMCACHED_FETCH_NOTFINISHED', "FETCH WAS NOT COMPLETED"],
  [31, 'MEMCACHED_TIMEOUT', "A TIMEOUT OCCURRED"],
  [32, 'MEMCACHED_BUFFERED', "ACTION QUEUED"],
  [33, 'MEMCACHED_BAD_KEY_PROVIDED', "A BAD KEY WAS PROVIDED/CHARACTERS OUT OF RANGE"],
  [34, 'MEMCACHED_INVALID_HOST_PROTOCOL', "THE HOST TRANSPORT PROTOCOL DOES NOT MATCH THAT OF THE CLIENT"],
  [35, 'MEMCACHED_SERVER_MARKED_DEAD', "SERVER IS MARKED DEAD"],
  [36, 'MEMCACHED_UNKNOWN_STAT_KEY', "ENCOUNTERED AN UNKNOWN STAT KEY"],
  [37, 'MEMCACHED_E2BIG', "ITEM TOO BIG"],
  [38, 'MEMCACHED_INVALID_ARGUMENTS', "INVALID ARGUMENTS"],
  [39, 'MEMCACHED_KEY_TOO_BIG', "KEY RETURNED FROM SERVER WAS TOO LARGE"],
  [40, 'MEMCACHED_AUTH_PROBLEM', "FAILED TO SEND AUTHENTICATION TO SERVER"],
  [41, 'MEMCACHED_AUTH_FAILURE', "AUTHENTICATION FAILURE"],
  [42, 'MEMCACHED_AUTH_CONTINUE', "CONTINUE AUTHENTICATION"],
  [43, 'MEMCACHED_PARSE_ERROR', "ERROR OCCURED WHILE PARSING"],
  [44, 'MEMCACHED_PARSE_USER_ERROR', "USER INITIATED ERROR OCCURED WHILE PARSING"],
  [45, 'MEMCACHED_DEPRECATED', "DEPRECATED"],
  [46, 'MEMCACHED_IN_PROGRESS', "OPERATION IN PROCESS"],
  [47, 'MEMCACHED_SERVER_TEMPORARILY_DISABLED', "SERVER HAS FAILED AND IS DISABLED UNTIL TIMED RETRY"],
  [48, 'MEMCACHED_SERVER_MEMORY_ALLOCATION_FAILURE', "SERVER FAILED TO ALLOCATE OBJECT"],
  [49, 'MEMCACHED_MAXIMUM_RETURN', "INVALID memcached_return_t"],
  [122, 'MEMCACHED_BAD_VALUE', 'VALUE CANNOT BE PASSED TO THE DIALPLAN'],
  [123, 'MEMCACHED_BINARY_PROTO_NEEDED', 'BINARY PROTOCOL NEEDED'],
  [124, 'MEMCACHED_BAD_INCREMENT', 'INCREMENT OR COUNTER VALUE IS NOT AN INTEGER'],
  [125, 'MEMCACHED_VALUE_TOO_LONG', 'VALUE TOO LONG'],
  [126, 'MEMCACHED_KEY_TOO_LONG', 'KEY TOO LONG'],
  [127, 'MEMCACHED_ARGUMENT_NEEDED', 'ARGUMENT NEEDED'],
];

const NAMES = new Map<number, string>();
const TEXTS = new Map<number, string>();
for (const [code, name, text] of TABLE) {
  NAMES.set(code, name);
  TEXTS.set(code, text);
}

/** `MEMCACHED_NOTFOUND` for 16; libmemcached's name for codes it does not know. */
export function rcName(code: number): string {
  return NAMES.get(code) ?? 'MEMCACHED_MAXIMUM_RETURN';
}

/** memcached_strerror() text. */
export function rcText(code: number): string {
  return TEXTS.get(code) ?? 'INVALID memcached_return_t';
}

/** Every code this package knows, in numeric order: for docs and tests. */
export function allRcs(): ReadonlyArray<{ code: number; name: string; text: string }> {
  return TABLE.map(([code, name, text]) => ({ code, name, text }));
}

/**
 * A failure that carries a result code: `rc` is the libmemcached-compatible number, `code` its
 * name (`MEMCACHED_TIMEOUT`), following Node's habit of string codes on errors. The base of every
 * error the package throws on purpose; the subclasses say where it came from (MemcachedError: a
 * memcached server or the embedded store; AgiError, AmiError, LeaseError, CommandError: the
 * layers named), so a catch can tell a cache failure from an Asterisk one by class, and any of
 * them still reports its code through rcOf().
 */
export class ResultError extends Error {
  readonly rc: number;
  readonly code: string;
  /** The peer's own text: a server's ERROR / CLIENT_ERROR / SERVER_ERROR reply, AMI's `Message:`. */
  readonly serverText: string | undefined;

  constructor(rc: number, message?: string, options?: { cause?: unknown; serverText?: string }) {
    super(message ?? rcText(rc), options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ResultError';
    this.rc = rc;
    this.code = rcName(rc);
    this.serverText = options?.serverText;
  }
}

/** A cache operation failed: a memcached server's answer, the connection to it, or the embedded store. */
export class MemcachedError extends ResultError {
  constructor(rc: number, message?: string, options?: { cause?: unknown; serverText?: string }) {
    super(rc, message, options);
    this.name = 'MemcachedError';
  }
}

/** The code of anything thrown: a ResultError's own (whatever its subclass), else MEMCACHED_FAILURE. */
export function rcOf(err: unknown): number {
  return err instanceof ResultError ? err.rc : Rc.FAILURE;
}
