// A front door's listeners on the daemon's context: each guarded (a listener that throws is logged,
// and the daemon's emit goes on to the next one), and all removed again when the door stops.
import type { FrontDoorContext } from './types.js';

type Listener = (...args: unknown[]) => void;

export class ContextListeners {
  private readonly added: [string, Listener][] = [];

  /** `failed` is told what a listener threw, and for which event. */
  constructor(
    private readonly ctx: FrontDoorContext,
    private readonly failed: (err: unknown, event: string) => void,
  ) {}

  on(event: string, fn: Listener): void {
    const guarded: Listener = (...args) => {
      try {
        fn(...args);
      } catch (err) {
        this.failed(err, event);
      }
    };
    this.ctx.on(event, guarded);
    this.added.push([event, guarded]);
  }

  /** Removes every listener added. */
  clear(): void {
    for (const [event, fn] of this.added) this.ctx.off(event, fn);
    this.added.length = 0;
  }
}
