// A TCP relay between the fake Asterisk and the daemon that hangs the channel up at a chosen
// moment: when the daemon's `atCommand`-th command line passes through (0: as soon as Asterisk
// connects). That puts the HANGUP notification exactly where a real hangup would fall.

import { connect, createServer, type AddressInfo } from 'node:net';
import type { FakeChannel } from './fake-asterisk.js';

export async function startHangupRelay(channel: FakeChannel, daemonPort: number, atCommand: number): Promise<{ port: number; close(): void }> {
  const relay = createServer((inbound) => {
    if (atCommand === 0) channel.hangup();
    const outbound = connect({ host: '127.0.0.1', port: daemonPort });
    inbound.pipe(outbound);
    let lines = 0;
    outbound.on('data', (chunk: Buffer) => {
      lines += chunk.toString('latin1').split('\n').length - 1;
      if (atCommand > 0 && lines >= atCommand) channel.hangup();
      inbound.write(chunk);
    });
    outbound.on('end', () => inbound.end());
    inbound.on('end', () => outbound.end());
    inbound.on('error', () => outbound.destroy());
    outbound.on('error', () => inbound.destroy());
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  return { port: (relay.address() as AddressInfo).port, close: () => relay.close() };
}
