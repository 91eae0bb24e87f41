// The AT channel's link to the module: opens a transport, reopens a new one with backoff after a
// failed open or a lost port, and hands received bytes on. Knows no command.
import type { Logger } from 'pino';
import type { Transport } from './types.js';

export interface LinkOptions {
  /** Makes a NEW transport for every (re)open. */
  openTransport: () => Transport;
  log: Logger;
  reopenMinMs: number;
  reopenMaxMs: number;
  /** A transport is open (first time or again). */
  opened: () => void;
  data: (chunk: Buffer) => void;
  /** The open transport closed by itself (not through stop()); a reopen is scheduled after this. */
  lost: (err: Error | undefined, port: string) => void;
}

export class Link {
  private transport: Transport | undefined;
  private detach: (() => void) | undefined;
  private started = false;
  private stopped = true;
  private reopenTimer: NodeJS.Timeout | undefined;
  private backoffMs: number;
  /** Bumped on every close: a job begun on an older transport must not write to a newer one. */
  generation = 0;

  constructor(private readonly o: LinkOptions) {
    this.backoffMs = o.reopenMinMs;
  }

  /** A transport is attached and open. */
  get isOpen(): boolean {
    return this.transport?.isOpen ?? false;
  }

  /** Opens the transport once; on failure keeps retrying in the background with backoff. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.stopped = false;
    this.backoffMs = this.o.reopenMinMs;
    await this.tryOpen();
  }

  /**
   * Stops reopening and closes the transport; `dropped` runs once it is detached, before the
   * close is awaited. Resolves whether a transport was attached.
   */
  async stop(dropped: () => void): Promise<boolean> {
    this.stopped = true;
    this.started = false;
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    this.reopenTimer = undefined;
    const t = this.transport;
    this.drop();
    dropped();
    if (t) {
      try {
        await t.close();
      } catch (err) {
        this.o.log.warn({ err, port: t.description }, 'closing the transport failed');
      }
    }
    return t !== undefined;
  }

  /** An open transport of `generation` is there to write to. */
  writable(generation: number): boolean {
    return this.isOpen && generation === this.generation;
  }

  /** Writes to the current transport; check writable() first. */
  async write(bytes: Buffer): Promise<void> {
    const t = this.transport;
    if (!t) throw new Error('not open');
    await t.write(bytes);
  }

  private async tryOpen(): Promise<void> {
    if (this.stopped) return;
    const t = this.o.openTransport();
    const onData = (chunk: Buffer): void => {
      if (this.transport === t) this.o.data(chunk);
    };
    const onClose = (err?: Error): void => {
      if (this.transport === t) this.onClose(t, err);
    };
    t.on('data', onData);
    t.on('close', onClose);
    const detach = (): void => {
      t.off('data', onData);
      t.off('close', onClose);
    };
    try {
      await t.open();
    } catch (err) {
      detach();
      this.o.log.warn({ err, port: t.description, retryInMs: this.backoffMs }, 'cannot open the modem port');
      this.scheduleReopen();
      return;
    }
    // stop() during the open, a start() racing a reopen, or a port that closed at once.
    if (this.stopped || this.transport || !t.isOpen) {
      detach();
      if (this.stopped || this.transport) await t.close().catch(() => undefined);
      else this.scheduleReopen();
      return;
    }
    this.transport = t;
    this.detach = detach;
    this.backoffMs = this.o.reopenMinMs;
    this.o.log.info({ port: t.description }, 'modem port open');
    this.o.opened();
  }

  private scheduleReopen(): void {
    if (this.stopped || this.reopenTimer) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.o.reopenMaxMs);
    this.reopenTimer = setTimeout(() => {
      this.reopenTimer = undefined;
      void this.tryOpen();
    }, delay);
  }

  private onClose(t: Transport, err?: Error): void {
    this.drop();
    this.o.lost(err, t.description);
    this.scheduleReopen();
  }

  private drop(): void {
    this.detach?.();
    this.detach = undefined;
    this.transport = undefined;
    this.generation++;
  }
}
