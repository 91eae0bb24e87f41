// The pushes already handled (DESIGN.md §12: the same push twice is one event): an append-only
// file of their keys under the state dir, fsynced per line, read at start and compacted to the
// last `keepDays`. A push whose effect is durable is journalled before its SMS is deleted, so a
// crash in between finds it here (or on the message it was applied to) and does nothing twice.
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { appendLineDurable, writeDurable } from '../core/durable.js';

const DAY_MS = 24 * 60 * 60 * 1000;

export class PushJournal {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly path: string,
    private readonly clock: () => number = Date.now,
    private readonly keepDays = 30,
  ) {}

  async start(): Promise<void> {
    this.seen.clear();
    let text = '';
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const cutoff = this.clock() - this.keepDays * DAY_MS;
    let dropped = 0;
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      try {
        const { key, at } = JSON.parse(line) as { key: unknown; at: unknown };
        if (typeof key === 'string' && typeof at === 'number' && at > cutoff) this.seen.set(key, at);
        else dropped++;
      } catch {
        // A line cut short by a crash mid-append.
        dropped++;
      }
    }
    if (dropped > 0) {
      const body = [...this.seen].map(([key, at]) => JSON.stringify({ key, at })).join('\n');
      await writeDurable(dirname(this.path), basename(this.path), body === '' ? '' : `${body}\n`);
    }
  }

  has(key: string): boolean {
    return this.seen.has(key);
  }

  async add(key: string): Promise<void> {
    if (this.seen.has(key)) return;
    const at = this.clock();
    await appendLineDurable(this.path, JSON.stringify({ key, at }));
    this.seen.set(key, at);
  }
}

