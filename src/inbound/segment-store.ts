// Segments of concatenated WAP pushes on disk until their set is complete (DESIGN.md §12): one
// durable file per segment under the state dir, so a set survives a daemon restart and its SMS can
// leave the module's small storage as soon as the segment is safe. An incomplete set is dropped
// after 24 h, with a log line. Completion is reassembly.ts's pure decision.
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { fsyncDir, writeDurable } from '../core/durable.js';
import { reassemble, segmentKey, type Segment } from './reassembly.js';

/** §12: an incomplete set is dropped this long after its first segment arrived. */
export const SEGMENT_MAX_AGE_MS = 24 * 60 * 60 * 1000;

export interface StoredSegment extends Segment {
  /** Unix ms the segment was stored. */
  receivedAt: number;
}

export interface CompleteSet {
  key: string;
  /** The joined user data (the WSP push). */
  data: Buffer;
}

export interface SegmentStoreOptions {
  dir: string;
  logger: Logger;
  clock?: () => number;
  maxAgeMs?: number;
}

/** A segment as kept on disk: its user data in hex. */
type SegmentFile = Omit<StoredSegment, 'data'> & { data: string };

function groupName(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 24);
}

export class SegmentStore {
  private readonly groups = new Map<string, Map<number, StoredSegment>>();
  private readonly clock: () => number;
  private readonly maxAgeMs: number;

  constructor(private readonly o: SegmentStoreOptions) {
    this.clock = o.clock ?? Date.now;
    this.maxAgeMs = o.maxAgeMs ?? SEGMENT_MAX_AGE_MS;
  }

  /** Loads the segments kept before; a file that cannot be read is logged and removed. */
  async start(): Promise<void> {
    await mkdir(this.o.dir, { recursive: true });
    this.groups.clear();
    for (const name of await readdir(this.o.dir)) {
      const path = join(this.o.dir, name);
      if (name.startsWith('.')) {
        if (name.endsWith('.tmp')) await unlink(path).catch(() => undefined);
        continue;
      }
      try {
        const f = JSON.parse(await readFile(path, 'utf8')) as SegmentFile;
        const s: StoredSegment = { ...f, data: Buffer.from(f.data, 'hex') };
        if (!Number.isInteger(s.seq) || !Number.isInteger(s.total) || typeof s.originator !== 'string') throw new Error('not a segment');
        this.hold(s);
      } catch (err) {
        this.o.logger.error({ err, file: path }, 'unreadable SMS segment file removed');
        await unlink(path).catch(() => undefined);
      }
    }
  }

  /** Sets whose segments are all here (after start: those a restart interrupted). */
  complete(): CompleteSet[] {
    return this.decide().flatMap((d) => (d.complete ? [{ key: d.key, data: d.data }] : []));
  }

  /** Segments held, for status and tests. */
  get size(): number {
    let n = 0;
    for (const g of this.groups.values()) n += g.size;
    return n;
  }

  /**
   * Stores one segment durably. `duplicate`: its sequence number was already held (nothing
   * written). `complete`: the set it belongs to, when this segment completed it.
   */
  async add(segment: Segment): Promise<{ duplicate: boolean; complete?: CompleteSet }> {
    const key = segmentKey(segment);
    const held = this.groups.get(key);
    if (held?.has(segment.seq) || segment.seq < 1 || segment.seq > segment.total) return { duplicate: true };
    const s: StoredSegment = { ...segment, receivedAt: this.clock() };
    const file: SegmentFile = { ...s, data: s.data.toString('hex') };
    await writeDurable(this.o.dir, `${groupName(key)}-${s.seq}.json`, JSON.stringify(file));
    this.hold(s);
    const set = this.decide().find((d) => d.key === key);
    return set?.complete ? { duplicate: false, complete: { key, data: set.data } } : { duplicate: false };
  }

  /** Removes a set's files (after what it carried is durable, or it was kept aside). */
  async remove(key: string): Promise<void> {
    const g = this.groups.get(key);
    if (!g) return;
    for (const seq of g.keys()) {
      await unlink(join(this.o.dir, `${groupName(key)}-${seq}.json`)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    }
    this.groups.delete(key);
    await fsyncDir(this.o.dir);
  }

  /** Drops every incomplete set whose first segment is older than the limit; returns how many. */
  async expire(): Promise<number> {
    const cutoff = this.clock() - this.maxAgeMs;
    let dropped = 0;
    for (const d of this.decide()) {
      if (d.complete) continue;
      const g = this.groups.get(d.key)!;
      const first = Math.min(...[...g.values()].map((s) => s.receivedAt));
      if (first > cutoff) continue;
      const s = [...g.values()][0];
      this.o.logger.warn(
        { originator: s.originator, ref: s.ref, total: s.total, held: g.size, missing: d.missing, since: new Date(first).toISOString() },
        'incomplete WAP push dropped: its other segments never came',
      );
      await this.remove(d.key);
      dropped++;
    }
    return dropped;
  }

  private hold(s: StoredSegment): void {
    const key = segmentKey(s);
    let g = this.groups.get(key);
    if (!g) {
      g = new Map();
      this.groups.set(key, g);
    }
    if (!g.has(s.seq)) g.set(s.seq, s);
  }

  private decide(): ReturnType<typeof reassemble<StoredSegment>> {
    return reassemble([...this.groups.values()].flatMap((g) => [...g.values()]));
  }
}
