// Getting the AT line back after a timeout: resynchronise with a probe whose answer is distinct
// (a late OK of the timed-out command is not taken for the next command's), or, when the module may
// sit in data mode, leave it with "+++" framed by silence first (DESIGN.md §6). Knows no vendor.
import type { Logger } from 'pino';
import { ClosedError } from './errors.js';

/** The probe: a 27.007 query with a distinct answer. */
export const RESYNC_COMMAND = 'AT+CMEE?';
export const RESYNC_PREFIX = '+CMEE:';
const RESYNC_TRIES = 3;
export const ESCAPE_SEQUENCE = '+++';

export interface RecoveryOptions {
  log: Logger;
  /** Silence before and after "+++". */
  escapeGuardMs: number;
  /** Timeout of each probe. */
  resyncTimeoutMs: number;
  /** Writes bytes on the line (no answer awaited); throws ClosedError when it cannot. */
  write: (label: string, bytes: Buffer) => Promise<void>;
  /** Sends the probe and waits for its own answer; throws TimeoutError, ClosedError … */
  probe: (timeoutMs: number) => Promise<void>;
  /** When the last byte went either way (ms since the epoch). */
  lastActivityAt: () => number;
}

interface Delay {
  timer: NodeJS.Timeout;
  reject: (e: Error) => void;
}

export class LineRecovery {
  /** A command timed out: its late answer may still come. */
  needResync = false;
  /** The module may be in data mode, deaf to AT. */
  needEscape = false;
  /** Between "+++" and the probe: what the module says then (an upload's result) is for no one. */
  escaping = false;
  private readonly delays = new Set<Delay>();

  constructor(private readonly o: RecoveryOptions) {}

  /** What the last failure left to do, before the next command. */
  async run(): Promise<void> {
    if (this.needEscape) await this.escape();
    else if (this.needResync) await this.resync();
  }

  async escape(): Promise<void> {
    this.needEscape = false;
    // §6: "+++" is an escape only when framed by about a second of silence.
    await this.waitForSilence(this.o.escapeGuardMs);
    this.o.log.debug({ at: ESCAPE_SEQUENCE }, 'tx');
    this.escaping = true;
    try {
      await this.o.write(ESCAPE_SEQUENCE, Buffer.from(ESCAPE_SEQUENCE, 'ascii'));
      // A fifth more than the guard: the module's own guard timer starts when "+++" reaches it.
      await this.delay(Math.ceil(this.o.escapeGuardMs * 1.2));
      // If the module was not in data mode, "+++" sits in its command buffer: end that line here
      // (its ERROR is dropped) so that the probe arrives on a line of its own.
      await this.o.write(ESCAPE_SEQUENCE, Buffer.from('\r', 'ascii'));
      this.needResync = true;
      await this.resync();
    } finally {
      this.escaping = false;
    }
  }

  /**
   * Sends the probe until its own answer ("+CMEE: n" then OK) comes back; a stray OK or ERROR
   * of the timed-out command arriving first is not taken for it.
   */
  async resync(): Promise<void> {
    for (let attempt = 1; attempt <= RESYNC_TRIES; attempt++) {
      try {
        await this.o.probe(this.o.resyncTimeoutMs);
        this.needResync = false;
        this.o.log.debug({ attempt }, 'line resynchronised');
        return;
      } catch (err) {
        if (err instanceof ClosedError) throw err;
        this.o.log.debug({ err, attempt }, 'resynchronisation probe failed');
      }
    }
    // Give the next command its chance; if the module is gone it times out and we come back here.
    this.needResync = false;
    this.o.log.warn({ tries: RESYNC_TRIES }, 'could not resynchronise the AT line');
  }

  /** The port closed: the silences of an escape in progress end with ClosedError. */
  failDelays(reason: string): void {
    for (const d of [...this.delays]) {
      clearTimeout(d.timer);
      this.delays.delete(d);
      d.reject(new ClosedError(ESCAPE_SEQUENCE, reason));
    }
  }

  private async waitForSilence(ms: number): Promise<void> {
    // Bounded: a module that never stops talking still gets its "+++" eventually.
    for (let i = 0; i < 10; i++) {
      // Silence both ways: the module counts the guard from the last byte it received.
      const quietFor = Date.now() - this.o.lastActivityAt();
      if (quietFor >= ms) return;
      await this.delay(ms - quietFor);
    }
  }

  private delay(ms: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const d: Delay = {
        timer: setTimeout(() => {
          this.delays.delete(d);
          resolve();
        }, ms),
        reject,
      };
      this.delays.add(d);
    });
  }
}
