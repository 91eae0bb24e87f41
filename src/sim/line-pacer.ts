// One direction of the emulated serial line (DESIGN.md §7 "a line baud rate"): bytes pushed in
// become available only once they could have crossed a line of the given bytes per second.

export interface SimClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * Node's timers have a resolution of 1 ms and fire late by up to another; a wait under 1 ms runs
 * on the next turn of the event loop instead, so the line pacer can hit a byte's arrival to a
 * fraction of a millisecond (it re-arms until the time has come).
 */
export const systemClock: SimClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => (ms < 1 ? { immediate: setImmediate(fn) } : { timeout: setTimeout(fn, Math.floor(ms)) }),
  clearTimeout: (h) => {
    const handle = h as { immediate?: NodeJS.Immediate; timeout?: NodeJS.Timeout };
    if (handle.immediate) clearImmediate(handle.immediate);
    if (handle.timeout) clearTimeout(handle.timeout);
  },
};

interface Segment {
  buf: Buffer;
  /** When the first byte starts crossing the line (ms, clock time). */
  start: number;
  /** Bytes per second for this segment; 0 = instantly. */
  rate: number;
  taken: number;
}

/**
 * Minimal gap between two wake-ups while a long write trickles in, so timers do not fire per
 * byte. The last byte of a write is delivered at its own time, not at the next tick: a block's end
 * or a one-byte ACK held back by a tick would add a turnaround the real line does not have.
 */
export const MIN_TICK_MS = 2;
/** How early the timer for a write's end fires; the rest is waited on the event loop. */
const EXACT_LEAD_MS = 2;

export class LinePacer {
  private segs: Segment[] = [];
  private freeAt = 0;
  private timer: unknown;
  private timerAt = Infinity;
  private lastWake = -Infinity;
  /** Bytes per second; 0 means no throttle. */
  rate = 0;

  /** `onReady` is called (from a timer) whenever newly arrived bytes can be taken. */
  constructor(
    private readonly clock: SimClock,
    private readonly onReady: () => void,
  ) {}

  push(buf: Buffer): void {
    if (buf.length === 0) return;
    const now = this.clock.now();
    const start = Math.max(now, this.freeAt);
    this.segs.push({ buf, start, rate: this.rate, taken: 0 });
    this.freeAt = this.rate > 0 ? start + (buf.length * 1000) / this.rate : now;
    this.schedule();
  }

  /** Every byte that has fully crossed the line by now and was not taken yet. */
  take(): Buffer {
    const now = this.clock.now();
    const out: Buffer[] = [];
    while (this.segs.length > 0) {
      const seg = this.segs[0];
      const arrived =
        seg.rate > 0
          ? Math.min(seg.buf.length, Math.floor(((now - seg.start) * seg.rate) / 1000 + 1e-9))
          : seg.buf.length;
      if (arrived > seg.taken) {
        out.push(seg.buf.subarray(seg.taken, arrived));
        seg.taken = arrived;
      }
      if (seg.taken < seg.buf.length) break;
      this.segs.shift();
    }
    if (this.segs.length > 0) this.schedule();
    return out.length === 1 ? out[0] : Buffer.concat(out);
  }

  /** Bytes pushed and not yet taken. */
  get pending(): number {
    return this.segs.reduce((n, s) => n + s.buf.length - s.taken, 0);
  }

  /** The time at which everything pushed so far will have crossed the line. */
  get drainedAt(): number {
    return Math.max(this.freeAt, this.clock.now());
  }

  /** Forgets everything in flight (the module restarted, the port went away). */
  clear(): void {
    this.segs = [];
    this.freeAt = 0;
    this.cancelTimer();
  }

  /**
   * When to wake next: the next byte's arrival, at most every MIN_TICK_MS, and the write's end.
   * `exact` marks the end of a write, which is worth a short spin to hit on time.
   */
  private nextWake(): { at: number; exact: boolean } {
    const seg = this.segs[0];
    if (!seg) return { at: Infinity, exact: false };
    if (seg.rate <= 0) return { at: 0, exact: true };
    const next = seg.start + ((seg.taken + 1) * 1000) / seg.rate;
    const end = seg.start + (seg.buf.length * 1000) / seg.rate;
    const tick = Math.max(next, this.lastWake + MIN_TICK_MS);
    return end <= tick ? { at: end, exact: true } : { at: tick, exact: false };
  }

  private schedule(): void {
    const { at, exact } = this.nextWake();
    if (at === Infinity) return;
    if (this.timer !== undefined && this.timerAt <= at) return;
    this.cancelTimer();
    this.timerAt = at;
    // A timer fires up to a millisecond late: for a write's end, wake a millisecond early and
    // re-arm (take() finds the rest not yet arrived) on the event loop's next turns until it is due.
    const remaining = at - this.clock.now();
    const delay = exact && remaining > EXACT_LEAD_MS ? remaining - EXACT_LEAD_MS : remaining;
    this.timer = this.clock.setTimeout(
      () => {
        this.timer = undefined;
        this.timerAt = Infinity;
        this.lastWake = this.clock.now();
        this.onReady();
      },
      Math.max(0, delay),
    );
  }

  private cancelTimer(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }
}
