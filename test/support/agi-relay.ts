// A TCP relay between the fake Asterisk and the daemon that sees each command line of the daemon
// before Asterisk does: to hang the channel up exactly when a given command passes (where a real
// hangup would fall), or to put another line in its place, so that the fake Asterisk itself gives
// the answer Asterisk gives to such a line (510 for an unknown command, a 520 usage block for a
// wrong one, 511 for a channel command on a hung-up channel).

import { connect, createServer, type AddressInfo } from 'node:net';
import type { FakeChannel } from './fake-asterisk.js';

export interface AgiRelay {
  port: number;
  close(): void;
}

/**
 * `onCommand(n, line)` runs as the daemon's n-th command line (from 1, `\n` included) reaches
 * the relay; what it returns is sent on instead (undefined: the line itself). `onConnect` runs
 * when Asterisk connects.
 */
export async function startAgiRelay(daemonPort: number, onCommand: (n: number, line: Buffer) => Buffer | void, onConnect: () => void = () => undefined): Promise<AgiRelay> {
  const relay = createServer((inbound) => {
    onConnect();
    const outbound = connect({ host: '127.0.0.1', port: daemonPort });
    inbound.pipe(outbound);
    let n = 0;
    let pending = Buffer.alloc(0);
    outbound.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (let nl = pending.indexOf(0x0a); nl !== -1; nl = pending.indexOf(0x0a)) {
        const line = pending.subarray(0, nl + 1);
        pending = pending.subarray(nl + 1);
        inbound.write(onCommand(++n, line) ?? line);
      }
    });
    outbound.on('end', () => inbound.end());
    inbound.on('end', () => outbound.end());
    inbound.on('error', () => outbound.destroy());
    outbound.on('error', () => inbound.destroy());
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  return { port: (relay.address() as AddressInfo).port, close: () => relay.close() };
}

/** Hangs `channel` up when the daemon's `atCommand`-th command line passes (0: as Asterisk connects). */
export function startHangupRelay(channel: FakeChannel, daemonPort: number, atCommand: number): Promise<AgiRelay> {
  return startAgiRelay(
    daemonPort,
    (n) => {
      if (atCommand > 0 && n === atCommand) channel.hangup();
    },
    () => {
      if (atCommand === 0) channel.hangup();
    },
  );
}
