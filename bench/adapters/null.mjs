// The harness's own cost per op: a "client" that does no I/O. Every request is answered, in a
// batch, on the next turn of the event loop (as a socket's 'data' callback settles the
// replies in one chunk), with a value of the right size. What client-bench measures against it
// (CPU µs/op, ops/s) is the worker loop, key lookup, timing and histogram, plus one promise
// made and settled per op: a floor under every client's CPU/op and a ceiling on its rate.
export const name = 'null';
export const version = '-';

export async function create({ valueSize }) {
  const value = Buffer.alloc(valueSize, 'v');
  let waiting = [];
  let scheduled = false;
  const flush = () => {
    const batch = waiting;
    waiting = [];
    scheduled = false;
    for (const [resolve, v] of batch) resolve(v);
  };
  const answer = (v) => new Promise((resolve) => {
    waiting.push([resolve, v]);
    if (!scheduled) { scheduled = true; setImmediate(flush); }
  });
  return {
    get: () => answer(value),
    set: () => answer(true),
    incr: () => answer(1),
    close: async () => {},
  };
}
