// Upload progress of the message in hand (DESIGN.md §6): recorded as `progress` (not durable),
// throttled so that a fast upload does not flood the outbox and its clients with changes.
import type { Logger } from 'pino';
import type { OutboxApi } from '../outbox/types.js';

const PROGRESS_MIN_INTERVAL_MS = 250;
const PROGRESS_MIN_STEP = 0.05;

export class ProgressRecorder {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly outbox: Pick<OutboxApi, 'update'>,
    private readonly log: Logger,
    private readonly clock: () => number,
  ) {}

  /** Upload progress as `progress` (not durable), at most every 250 ms unless 5 % further. */
  reporter(id: string, total: number): (bytes: number) => void {
    let last = 0;
    let lastAt = this.clock();
    return (bytes) => {
      const p = total > 0 ? Math.min(1, bytes / total) : 1;
      if (p <= last) return;
      const now = this.clock();
      if (p < 1 && p - last < PROGRESS_MIN_STEP && now - lastAt < PROGRESS_MIN_INTERVAL_MS) return;
      last = p;
      lastAt = now;
      const value = Math.round(p * 1000) / 1000;
      this.chain = this.chain
        .then(() => this.outbox.update(id, { progress: value }, { durable: false }))
        .catch((err: unknown) => this.log.warn({ id, at: 'stage', err }, 'recording progress failed'));
    };
  }

  /** Resolves once the progress writes made so far are done. */
  settled(): Promise<unknown> {
    return this.chain;
  }
}
