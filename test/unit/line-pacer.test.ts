// LinePacer on a manual clock: bytes arrive no earlier than the line allows, a write's last byte
// and a lone ACK at their own time (not at the next tick), and a long write wakes at most every tick.
import { describe, expect, it } from 'vitest';
import { LinePacer, MIN_TICK_MS } from '../../src/sim/line-pacer.js';
import { ManualClock } from './manual-clock.js';

function setup(rate: number): { clock: ManualClock; pacer: LinePacer; got: { at: number; bytes: number }[] } {
  const clock = new ManualClock();
  const got: { at: number; bytes: number }[] = [];
  const pacer: LinePacer = new LinePacer(clock, () => {
    const b = pacer.take();
    if (b.length > 0) got.push({ at: clock.now(), bytes: b.length });
  });
  pacer.rate = rate;
  return { clock, pacer, got };
}

describe('LinePacer', () => {
  it('delivers a 1024-byte block in full exactly when its last byte has crossed the line', () => {
    const { clock, pacer, got } = setup(11_520); // 115,200 baud
    pacer.push(Buffer.alloc(1024));
    const end = (1024 * 1000) / 11_520; // 88.9 ms
    clock.runUntil(end - 0.001);
    expect(got.reduce((n, g) => n + g.bytes, 0)).toBeLessThan(1024);
    clock.runUntil(end + 0.001);
    expect(got.reduce((n, g) => n + g.bytes, 0)).toBe(1024);
    expect(got.at(-1)!.at).toBeCloseTo(end, 6);
  });

  it('wakes at most every MIN_TICK_MS while a long write trickles in', () => {
    const { clock, pacer } = setup(11_520);
    pacer.push(Buffer.alloc(1024));
    clock.runUntil(100);
    const gaps = clock.fired.slice(1).map((t, i) => t - clock.fired[i]);
    // The last gap may be shorter: the write's end is delivered on time.
    for (const g of gaps.slice(0, -1)) expect(g).toBeGreaterThanOrEqual(MIN_TICK_MS - 1e-9);
    expect(clock.fired.length).toBeLessThanOrEqual(Math.ceil(89 / MIN_TICK_MS) + 2);
  });

  it('delivers a lone byte (an ACK) one byte time after it was written, not a tick later', () => {
    const { clock, pacer, got } = setup(92_160); // 921,600 baud: 10.9 µs per byte
    pacer.push(Buffer.alloc(1024));
    clock.runUntil(20);
    got.length = 0;
    pacer.push(Buffer.from('A'));
    clock.runUntil(25);
    expect(got).toHaveLength(1);
    expect(got[0].at - 20).toBeCloseTo(1000 / 92_160, 6);
  });

  it('queues writes behind each other at the line rate', () => {
    const { clock, pacer, got } = setup(1000); // 1 byte per ms
    pacer.push(Buffer.alloc(10));
    pacer.push(Buffer.alloc(10));
    expect(pacer.drainedAt).toBe(20);
    clock.runUntil(30);
    expect(got.reduce((n, g) => n + g.bytes, 0)).toBe(20);
    expect(got.at(-1)!.at).toBe(20);
    expect(pacer.pending).toBe(0);
  });

  it('without a rate, delivers at once; clear() forgets what is in flight', () => {
    const { clock, pacer, got } = setup(0);
    pacer.push(Buffer.from('OK'));
    clock.runUntil(0);
    expect(got).toEqual([{ at: 0, bytes: 2 }]);
    pacer.rate = 100;
    pacer.push(Buffer.alloc(50));
    pacer.clear();
    clock.runUntil(1000);
    expect(got).toHaveLength(1);
    expect(pacer.pending).toBe(0);
  });
});
