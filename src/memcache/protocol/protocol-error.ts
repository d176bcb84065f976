// The error every codec throws when the bytes from a server cannot be framed or cannot answer
// the request waiting for them: the stream is broken and the connection must go.

import { MemcachedError, Rc } from '../../util/errors.js';

export class ProtocolError extends MemcachedError {
  constructor(message: string, rc: number = Rc.PROTOCOL_ERROR) {
    super(rc, message);
    this.name = 'ProtocolError';
  }
}
