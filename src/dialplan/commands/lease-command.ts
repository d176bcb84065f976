// What the lease and lock commands share: NAME checked as a key with room for the engine's own
// key parts (src/leases/engine.ts), and the channel and engine a call needs.

import { LEASE_KEY_OVERHEAD, type LeaseEngine } from '../../leases/engine.js';
import { Rc } from '../../util/errors.js';
import { isRefusal, keyArgument } from '../arguments.js';
import { CommandError, refused, type CallContext, type Invocation, type Limits, type Refusal } from '../invocation.js';

/** NAME at `index`: 127 missing, 126 too long (with the engine's key parts), 33 whitespace/control. */
export function nameArgument(args: readonly Buffer[], index: number, limits: Limits): Buffer | Refusal {
  return keyArgument(args, index, { ...limits, keyPrefixBytes: limits.keyPrefixBytes + LEASE_KEY_OVERHEAD });
}

/** The engine and this channel's agi_uniqueid; rejects (127) when Asterisk sent no uniqueid. */
export function holder(call: CallContext): { leases: LeaseEngine; uniqueId: string } {
  if (call.leases === null) throw new CommandError(Rc.NOT_SUPPORTED, 'no lease engine in this daemon');
  if (call.uniqueId === null) throw new CommandError(Rc.ARGUMENT_NEEDED, 'the AGI environment has no agi_uniqueid: the channel cannot hold a lease');
  return { leases: call.leases, uniqueId: call.uniqueId };
}

/** A whole number in 1..max written with digits only (no sign, no spaces); null otherwise. */
export function boundedInteger(text: Buffer, min: number, max: number): number | null {
  const s = text.toString('latin1');
  if (!/^[0-9]{1,10}$/.test(s)) return null;
  const n = Number(s);
  return n >= min && n <= max ? n : null;
}

export const ERROR_VALUE = Buffer.from('ERROR', 'latin1');

/** A refused call whose outputs read ERROR (MCDLIMIT, MCDLOCK) rather than "". */
export function refusedAsError(outputs: readonly string[], refusal: Refusal): Invocation {
  return { ...refused(outputs, refusal.rc, refusal.message), failed: [ERROR_VALUE] };
}

/** mcdrelease / mcdunlock: free what this channel holds under NAME; 16 when it holds nothing. */
export function releaseInvocation(
  args: readonly Buffer[],
  limits: Limits,
  release: (leases: LeaseEngine, name: Buffer, uniqueId: string) => Promise<boolean>,
  notHeld: string,
): Invocation {
  const name = nameArgument(args, 0, limits);
  if (isRefusal(name)) return refused([], name.rc, name.message);
  return {
    outputs: [],
    refusal: null,
    ttlDefault: null,
    mutates: true,
    run: async (_backend, _ttl, call) => {
      const { leases, uniqueId } = holder(call);
      if (!(await release(leases, name, uniqueId))) throw new CommandError(Rc.NOTFOUND, notHeld);
      return [];
    },
  };
}
