// What a verb needs of the terminal, so tests can run verbs in process.

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Bytes as they are (a stored value): no text encoding in between. */
  bytes(data: Buffer): void;
  /** Whether stdout is a terminal: a value then gets a newline after it. */
  isTty: boolean;
}

/** Wrong words on the command line: exit 2 with the verb's usage. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
