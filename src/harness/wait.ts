// Waiting on something outside the process (a daemon's state, a broker, a file) with a deadline:
// poll, never sleep and hope. Shared by the tests and the benchmarks.
import type { EventsOf, Listenable } from '../core/events.js';

/** Polls `probe` until it returns something other than undefined/false; rejects after `ms`. */
export async function until<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  ms: number,
  what: string,
  everyMs = 50,
): Promise<T> {
  const end = Date.now() + ms;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() >= end) {
      const why = lastErr instanceof Error ? ` (last error: ${lastErr.message})` : '';
      throw new Error(`timed out after ${ms} ms waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** node:events once() for a part's typed emitter (core/events.ts): the next `event`'s arguments. */
export function nextEvent<E extends EventsOf<E>, K extends keyof E & string>(emitter: Listenable<E>, event: K): Promise<E[K]> {
  return new Promise((resolve) => emitter.once(event, (...args: E[K]) => resolve(args)));
}
