// A front door's listeners on the daemon's context: each guarded (a listener that throws is logged,
// and the daemon's emit goes on to the next one), and all removed again when the door stops.
import type { FrontDoorContext, FrontDoorEvents } from './types.js';

type Event = keyof FrontDoorEvents;
type Listener<K extends Event> = (...args: FrontDoorEvents[K]) => void;

export class ContextListeners {
  /** Each pair's listener takes the arguments of its own event. */
  private readonly added: { [K in Event]: [K, Listener<K>] }[Event][] = [];

  /** `failed` is told what a listener threw, and for which event. */
  constructor(
    private readonly ctx: FrontDoorContext,
    private readonly failed: (err: unknown, event: Event) => void,
  ) {}

  on<K extends Event>(event: K, fn: Listener<K>): void {
    const guarded: Listener<K> = (...args) => {
      try {
        fn(...args);
      } catch (err) {
        this.failed(err, event);
      }
    };
    this.ctx.on(event, guarded);
    this.added.push([event, guarded] as { [E in Event]: [E, Listener<E>] }[Event]);
  }

  /** Removes every listener added. */
  clear(): void {
    for (const [event, fn] of this.added) this.ctx.off(event, fn as Listener<typeof event>);
    this.added.length = 0;
  }
}
