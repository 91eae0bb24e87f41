// How the health monitor's work runs (DESIGN.md §6): one task at a time, each bound to the
// generation it was queued in, and given up once a newer bring-up, a disconnect or stop passed it.
import type { Logger } from 'pino';
import { AtErrorResult, CmeError } from '../at/errors.js';

/** Thrown inside a task that a newer bring-up (or a disconnect, or stop) made obsolete. */
export class Superseded extends Error {
  override name = 'Superseded';
}

/**
 * Bring-up, polls and recovery run one after the other. A task learns its generation when it
 * starts and calls `check(gen)` between its steps: once the generation has moved on (or the
 * monitor stopped), the check throws `Superseded` and the task ends quietly.
 */
export class TaskChain {
  private generation = 0;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    /** Whether the owner still runs; a stopped owner's tasks are superseded too. */
    private readonly running: () => boolean,
    /** A task of the current generation failed with something other than `Superseded`. */
    private readonly onError: (e: unknown) => void,
  ) {}

  /** A newer epoch: tasks queued before are skipped, running ones stop at their next check. */
  supersede(): void {
    this.generation++;
  }

  /** Queues a task bound to the current generation; it is skipped once that has passed. */
  enqueue<T>(task: (gen: number) => Promise<T>): Promise<T | undefined> {
    const gen = this.generation;
    const run = this.chain.then(async () => {
      if (gen !== this.generation) return undefined;
      try {
        return await task(gen);
      } catch (e) {
        if (!(e instanceof Superseded) && gen === this.generation) this.onError(e);
        return undefined;
      }
    });
    this.chain = run.then(() => undefined);
    return run;
  }

  /** Throws `Superseded` when `gen` is no longer the current generation or the owner stopped. */
  check(gen: number): void {
    if (gen !== this.generation || !this.running()) throw new Superseded();
  }
}

/**
 * Runs a command whose ERROR/CME answer is not fatal here (logged); other failures propagate.
 * `alsoClosed`: any error but `Superseded` is tolerated (a module that resets before its OK).
 */
export async function tolerate<T>(logger: Logger, fn: () => Promise<T>, alsoClosed = false): Promise<T | undefined> {
  try {
    return await fn();
  } catch (e) {
    const tolerated = e instanceof AtErrorResult || e instanceof CmeError || (alsoClosed && e instanceof Error && e.name !== 'Superseded');
    if (!tolerated) throw e;
    logger.warn({ err: e }, 'command failed; going on');
    return undefined;
  }
}
