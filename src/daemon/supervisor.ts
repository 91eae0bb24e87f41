// The daemon's side of systemd (Type=notify): READY=1 once the modem is initialised or the daemon
// has settled into a clear waiting state, STATUS= kept current, WATCHDOG=1 only while the event
// loop AND the AT channel are alive, STOPPING=1 on shutdown, and EXTEND_TIMEOUT_USEC while a stop
// waits for the result of a send the module accepted.
import type { Logger } from 'pino';
import { LOG_EVENTS } from '../core/log-events.js';
import type { ModemState, ModemStatus } from '../modem/types.js';
import type { SdNotifier } from './sd-notify.js';

/** What the supervisor needs of the daemon. */
export interface Supervised {
  modemStatus(): ModemStatus;
  queueLength(): number;
  on(event: 'modemStatus' | 'added' | 'changed' | 'removed', listener: () => void): unknown;
  off(event: 'modemStatus' | 'added' | 'changed' | 'removed', listener: () => void): unknown;
  /** True when the AT channel answered recently or answers a probe now; false when wedged. */
  atAlive(maxAgeMs: number, probeTimeoutMs: number): Promise<boolean>;
  /** The message whose accepted send awaits its result, and until when at most (unix ms). */
  awaitingResult(): { id: string; until: number } | undefined;
}

/** How often a stopping daemon looks for an accepted send whose result it must wait for. */
const STOP_CHECK_MS = 1_000;
/** Slack beyond the result's deadline asked of the service manager for the rest of the stop. */
const STOP_SLACK_MS = 10_000;

/** States in which the daemon has settled: READY=1 may be sent (STATUS= says which). */
const SETTLED: ReadonlySet<ModemState> = new Set(['ready', 'sim-missing', 'sim-locked', 'absent', 'searching', 'error', 'unconfigured', 'context-in-use']);

export interface SupervisorOptions {
  daemon: Supervised;
  notifier: SdNotifier;
  logger: Logger;
  /** How long to wait for a settled state before READY=1 anyway (a slow network). */
  readyDeadlineMs?: number;
}

export class ServiceSupervisor {
  private ready = false;
  private lastStatus = '';
  private watchdogTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private readonly onChange = (): void => this.update();
  private probing = false;
  private stopTimer: NodeJS.Timeout | undefined;
  private extendedFor: string | undefined;

  constructor(private readonly opts: SupervisorOptions) {}

  start(): void {
    const { daemon } = this.opts;
    for (const e of ['modemStatus', 'added', 'changed', 'removed'] as const) daemon.on(e, this.onChange);
    this.deadlineTimer = setTimeout(() => this.sendReady('start-up deadline passed'), this.opts.readyDeadlineMs ?? 60_000);
    this.deadlineTimer.unref();
    const wdMs = this.opts.notifier.watchdogMs;
    if (wdMs !== undefined) {
      const every = Math.max(100, Math.floor(wdMs / 2));
      this.watchdogTimer = setInterval(() => void this.watchdogTick(every), every);
    }
    this.update();
  }

  async stopping(): Promise<void> {
    clearInterval(this.watchdogTimer);
    clearTimeout(this.deadlineTimer);
    for (const e of ['modemStatus', 'added', 'changed', 'removed'] as const) this.opts.daemon.off(e, this.onChange);
    await this.opts.notifier.notify({ STOPPING: '1', STATUS: 'stopping' });
    // A message the module is sending must not be cut off by TimeoutStopSec: its result decides
    // between `sent` and a retry, and a kill here would leave it `unknown`. While the stop waits
    // for that result, systemd is asked for the time (EXTEND_TIMEOUT_USEC, sd_notify(3)).
    this.extendStop();
    this.stopTimer = setInterval(() => this.extendStop(), STOP_CHECK_MS);
  }

  /** The stop is over (or the process exits): no more extensions. */
  stopped(): void {
    clearInterval(this.stopTimer);
  }

  private extendStop(): void {
    const waiting = this.opts.daemon.awaitingResult();
    if (!waiting) return;
    const key = `${waiting.id}@${waiting.until}`;
    if (key === this.extendedFor) return;
    this.extendedFor = key;
    const ms = Math.max(0, waiting.until - Date.now()) + STOP_SLACK_MS;
    const waitS = Math.ceil(ms / 1000);
    this.opts.logger.info({ id: waiting.id, waitS }, 'stop waits for the result of the message being sent');
    void this.opts.notifier.notify({
      EXTEND_TIMEOUT_USEC: String(ms * 1000),
      STATUS: `stopping: waiting for the send result of ${waiting.id} (at most ${waitS} s)`,
    });
  }

  statusText(): string {
    const s = this.opts.daemon.modemStatus();
    const q = this.opts.daemon.queueLength();
    const what: Record<ModemState, string> = {
      absent: 'waiting for the modem port',
      initializing: 'initialising the modem',
      'sim-missing': 'waiting: no SIM card',
      'sim-locked': 'waiting: SIM locked (PIN)',
      searching: 'waiting for network registration',
      registered: 'registered, activating data context',
      ready: 'modem ready',
      error: `modem error${s.detail ? `: ${s.detail}` : ''}`,
      // DESIGN.md §10: the reason names the key to set.
      unconfigured: `waiting: ${s.detail ?? 'no MMSC'}`,
      'context-in-use': `waiting: ${s.detail ?? 'the data context is in use'}`,
    };
    const op = s.operator ? `, ${s.operator}` : '';
    const sig = s.signal >= 0 ? `, signal ${s.signal}/31` : '';
    return `${what[s.state]}${s.state === 'ready' ? `${op}${sig}` : ''}; ${q} queued`;
  }

  private update(): void {
    const status = this.statusText();
    const state = this.opts.daemon.modemStatus().state;
    if (!this.ready && SETTLED.has(state)) {
      this.sendReady(status);
      return;
    }
    if (status !== this.lastStatus) {
      this.lastStatus = status;
      void this.opts.notifier.notify({ STATUS: status });
    }
  }

  private sendReady(status: string): void {
    if (this.ready) return;
    this.ready = true;
    clearTimeout(this.deadlineTimer);
    this.lastStatus = status;
    this.opts.logger.info({ status }, LOG_EVENTS.ready);
    void this.opts.notifier.notify({ READY: '1', STATUS: status });
  }

  private async watchdogTick(everyMs: number): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      // The event loop runs (we are here); the AT channel must have answered within two periods,
      // or answer a probe now. A wedged channel stops the pings and systemd restarts us.
      const alive = await this.opts.daemon.atAlive(2 * everyMs, Math.max(50, Math.floor(everyMs * 0.8)));
      if (alive) await this.opts.notifier.notify({ WATCHDOG: '1' });
      else this.opts.logger.warn('AT channel not answering: withholding the watchdog ping');
    } finally {
      this.probing = false;
    }
  }
}
