// A SimClock that moves only when the test says so; timers run in time order (sim unit tests).
import type { SimClock } from '../../src/sim/line-pacer.js';

export class ManualClock implements SimClock {
  private t = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  /** Times at which timers fired, in order. */
  readonly fired: number[] = [];

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Runs the due timers in time order up to `end` (synchronously). */
  runUntil(end: number): void {
    while (this.fireNext(end));
    this.t = Math.max(this.t, end);
  }

  /** Runs everything due up to now + ms, letting promises settle in between. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    do await new Promise<void>((r) => setImmediate(r));
    while (this.fireNext(end));
    this.t = end;
    await new Promise<void>((r) => setImmediate(r));
  }

  /** Fires the earliest timer due by `end`; false when there is none. */
  private fireNext(end: number): boolean {
    let next: [number, { at: number; fn: () => void }] | undefined;
    for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
    if (!next) return false;
    this.timers.delete(next[0]);
    this.t = Math.max(this.t, next[1].at);
    this.fired.push(this.t);
    next[1].fn();
    return true;
  }
}
