// The AT channel's command queue: one job at a time, in order; a recovery (escape, resync) may run
// before a job. Knows no command.
import { AtError, ClosedError } from './errors.js';

interface Job {
  cmd: string;
  /** A recovery job recovers the line itself; it must not be preceded by another recovery. */
  recovery: boolean;
  run: () => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

export interface QueueHooks {
  /** Jobs are taken (the port is open); otherwise enqueue() fails with ClosedError at once. */
  accepting: () => boolean;
  /** A job begins (before its recovery). */
  starting: () => void;
  /** Runs before every job that is no recovery itself: what a timeout left to clean up. */
  recover: () => Promise<void>;
}

export class JobQueue {
  private readonly jobs: Job[] = [];
  private pumping = false;

  constructor(private readonly hooks: QueueHooks) {}

  enqueue<T>(cmd: string, recovery: boolean, run: () => Promise<T>): Promise<T> {
    if (!this.hooks.accepting()) return Promise.reject(new ClosedError(cmd, 'not connected'));
    return new Promise<T>((resolve, reject) => {
      this.jobs.push({ cmd, recovery, run, resolve: resolve as (v: unknown) => void, reject });
      void this.pump();
    });
  }

  /** Every job not yet begun fails with ClosedError (it was never written). */
  failQueued(reason: string): void {
    for (const job of this.jobs.splice(0)) job.reject(new ClosedError(job.cmd, reason));
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (let job = this.jobs.shift(); job; job = this.jobs.shift()) {
        this.hooks.starting();
        try {
          if (!job.recovery) await this.hooks.recover();
          job.resolve(await job.run());
        } catch (err) {
          job.reject(err instanceof Error ? err : new AtError(String(err), job.cmd));
        }
      }
    } finally {
      this.pumping = false;
    }
  }
}
