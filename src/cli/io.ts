// What a verb needs of the terminal, so tests can run verbs in process.

export interface Io {
  out(text: string): void;
  err(text: string): void;
}

/** Wrong words on the command line: exit 2 with the verb's usage. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
