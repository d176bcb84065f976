// The lease engine on the embedded store (the suite itself: test/support/lease-behaviour.ts).

import { MemoryStore } from '../../src/store/memory-store.js';
import { defineLeaseBehaviour } from '../support/lease-behaviour.js';

defineLeaseBehaviour('the embedded MemoryStore', async () => {
  const store = new MemoryStore();
  return {
    // Every daemon of a single box shares the one store.
    open: async () => store,
    close: async () => store.close(),
  };
});
