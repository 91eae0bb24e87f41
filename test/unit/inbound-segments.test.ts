// The segment store (DESIGN.md §12): segments on disk survive a restart, a set completes in any
// order, a duplicate writes nothing, and an incomplete set is dropped after 24 h (manual clock).
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Segment } from '../../src/inbound/reassembly.js';
import { SEGMENT_MAX_AGE_MS, SegmentStore } from '../../src/inbound/segment-store.js';

let dir: string;
let now: number;
const clock = (): number => now;
const logger = pino({ level: 'silent' });

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mmsd-segments-'));
  now = 1_800_000_000_000;
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function seg(seq: number, data: string, extra: Partial<Segment> = {}): Segment {
  return { originator: '+491710000000', port: 2948, ref: 7, refBits: 8, total: 3, seq, data: Buffer.from(data), ...extra };
}

async function open(): Promise<SegmentStore> {
  const s = new SegmentStore({ dir, logger, clock });
  await s.start();
  return s;
}

const files = async (): Promise<string[]> => (await readdir(dir)).filter((f) => !f.startsWith('.'));

describe('SegmentStore', () => {
  it('completes a set across a restart, in any order, and a duplicate adds nothing', async () => {
    const a = await open();
    expect(await a.add(seg(3, 'C'))).toEqual({ duplicate: false });
    expect(await a.add(seg(1, 'A'))).toEqual({ duplicate: false });
    expect(await a.add(seg(1, 'A'))).toEqual({ duplicate: true });
    expect(await files()).toHaveLength(2);
    // A restart: a new store over the same folder.
    const b = await open();
    expect(b.size).toBe(2);
    const r = await b.add(seg(2, 'B'));
    expect(r.complete?.data.toString()).toBe('ABC');
    await b.remove(r.complete!.key);
    expect(await files()).toHaveLength(0);
  });

  it('keeps sets of other senders and references apart', async () => {
    const s = await open();
    await s.add(seg(1, 'x', { total: 2 }));
    const other = await s.add(seg(2, 'y', { total: 2, ref: 8 }));
    expect(other.complete).toBeUndefined();
    const done = await s.add(seg(2, 'z', { total: 2 }));
    expect(done.complete?.data.toString()).toBe('xz');
  });

  it('drops an incomplete set 24 h after its first segment, not before; a complete set stays', async () => {
    const s = await open();
    await s.add(seg(1, 'A'));
    await s.add(seg(1, 'P', { total: 1, ref: 9 }));
    now += SEGMENT_MAX_AGE_MS - 1;
    await s.add(seg(2, 'B'));
    expect(await s.expire()).toBe(0);
    now += 1;
    expect(await s.expire()).toBe(1);
    expect(s.size).toBe(1);
    expect(s.complete().map((c) => c.data.toString())).toEqual(['P']);
    expect(await files()).toHaveLength(1);
  });

  it('removes a file that is no segment at start', async () => {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dir, 'junk.json'), '{not json');
    const s = await open();
    expect(s.size).toBe(0);
    expect(await files()).toHaveLength(0);
  });
});
