// One direction of the emulated serial line (DESIGN.md §7 "a line baud rate"): bytes pushed in
// become available only once they could have crossed a line of the given bytes per second.

export interface SimClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: SimClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

interface Segment {
  buf: Buffer;
  /** When the first byte starts crossing the line (ms, clock time). */
  start: number;
  /** Bytes per second for this segment; 0 = instantly. */
  rate: number;
  taken: number;
}

/** Minimal gap between two wake-ups of a throttled line, so timers do not spin per byte. */
const MIN_TICK_MS = 2;

export class LinePacer {
  private segs: Segment[] = [];
  private freeAt = 0;
  private timer: unknown;
  private timerAt = Infinity;
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

  private nextArrival(): number {
    const seg = this.segs[0];
    if (!seg) return Infinity;
    if (seg.rate <= 0) return 0;
    return seg.start + ((seg.taken + 1) * 1000) / seg.rate;
  }

  private schedule(): void {
    const at = this.nextArrival();
    if (at === Infinity) return;
    const now = this.clock.now();
    const when = at <= now ? now : Math.max(at, now + MIN_TICK_MS);
    if (this.timer !== undefined && this.timerAt <= when) return;
    this.cancelTimer();
    this.timerAt = when;
    this.timer = this.clock.setTimeout(
      () => {
        this.timer = undefined;
        this.timerAt = Infinity;
        this.onReady();
      },
      Math.max(0, Math.ceil(when - now)),
    );
  }

  private cancelTimer(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }
}
