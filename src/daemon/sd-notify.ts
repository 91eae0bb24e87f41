// systemd's notify protocol (sd_notify(3)): READY=1, STATUS=, WATCHDOG=1, STOPPING=1,
// EXTEND_TIMEOUT_USEC=.
// Node has no AF_UNIX datagram socket, so each message is handed to systemd's own
// `systemd-notify --no-block` (the unit sets NotifyAccess=all so that a child may speak for us;
// --no-block skips the barrier that would wait for an ack). The npm package `systemd-notify` does
// the same but carries a proprietary licence; `unix-dgram` would be a native build on every
// router. A spawn every WatchdogSec/2 costs a few ms.
import { spawn } from 'node:child_process';
import type { Logger } from 'pino';

export interface NotifierOptions {
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** Path of the systemd-notify tool. */
  command?: string;
}

export class SdNotifier {
  private readonly socket: string | undefined;
  private readonly command: string;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly opts: NotifierOptions) {
    this.socket = opts.env.NOTIFY_SOCKET;
    this.command = opts.command ?? 'systemd-notify';
  }

  /** True when started by systemd with Type=notify (NOTIFY_SOCKET set). */
  get enabled(): boolean {
    return this.socket !== undefined && this.socket !== '';
  }

  /** Watchdog interval requested by the unit (WATCHDOG_USEC), in ms; undefined when off. */
  get watchdogMs(): number | undefined {
    const usec = Number(this.opts.env.WATCHDOG_USEC);
    if (!Number.isFinite(usec) || usec <= 0) return undefined;
    const pid = this.opts.env.WATCHDOG_PID;
    if (pid !== undefined && pid !== '' && Number(pid) !== process.pid) return undefined;
    return Math.floor(usec / 1000);
  }

  /** Sends `KEY=value` assignments in one datagram, in order with earlier ones; never throws. */
  notify(fields: Record<string, string>): Promise<void> {
    if (!this.enabled) return Promise.resolve();
    const args = Object.entries(fields).map(([k, v]) => `${k}=${v.replace(/\n/g, ' ')}`);
    this.chain = this.chain.then(() => this.run(args));
    return this.chain;
  }

  private run(args: string[]): Promise<void> {
    return new Promise((resolve) => {
      const child = spawn(this.command, ['--no-block', ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: this.opts.env });
      let stderr = '';
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      child.on('error', (err) => {
        this.opts.logger.warn({ err: err.message, args }, 'sd_notify failed');
        resolve();
      });
      child.on('close', (code) => {
        if (code !== 0) this.opts.logger.warn({ code, stderr: stderr.trim(), args }, 'sd_notify failed');
        resolve();
      });
    });
  }
}
