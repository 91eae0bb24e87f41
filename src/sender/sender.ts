// The send pipeline (DESIGN.md §6): one message at a time from the outbox through the modem —
// stage attachments in the module's RAM, edit, send, classify the result, retry, clean up. The
// run loop and the outbox writes are here; a try's module commands are composer.ts.
import type { Logger } from 'pino';
import { TypedEmitter } from '../core/events.js';
import { LOG_EVENTS } from '../core/log-events.js';
import type { MessageError, MessageRecord, Status } from '../core/message.js';
import { Composer } from './composer.js';
import { Fitter } from './fitter.js';
import { ModemRebooted, StopRequested, judge, type TryContext } from './outcome.js';
import { DEFAULT_BACKOFF_MS, decide, type Action, type Verdict } from './policy.js';
import { ProgressRecorder } from './progress.js';
import { Stager } from './stager.js';
import type {
  AttemptOutcome,
  SenderConfig,
  SenderEvents,
  SenderModem,
  SenderOptions,
  SenderOutbox,
  Sleep,
} from './types.js';

// The sender's types, for the daemon and the tests, from the module that holds them.
export type * from './types.js';
export {
  DEFAULT_BACKOFF_MS,
  MAX_BUSY_IN_ROW,
  MAX_REQUEUES_IN_ROW,
  messageTooLargeError,
  sendResultError,
} from './policy.js';
export { CHECKSUM_RETRIES } from './stager.js';

/**
 * How long to wait after `764 MMS busy` before trying again. The module says busy while its MMS
 * engine is in another transaction (a send or a retrieval over HTTP), which takes seconds: a few
 * seconds apart keeps the AT line quiet meanwhile, and MAX_BUSY_IN_ROW of them (about 4 min) stay
 * within one default send timeout (`mms.sendTimeoutS` 300 s) before the wait counts as an attempt.
 */
export const DEFAULT_BUSY_WAIT_MS = 5_000;
/** Pause after a message went back to the queue because the modem failed under it: doubles up to the max. */
const REQUEUE_PAUSE_MS = 1_000;
const REQUEUE_PAUSE_MAX_MS = 60_000;
/** Idle wait when the outbox says a retry is due but does not hand it out (never spin). */
const STALE_DUE_PAUSE_MS = 1_000;

/** What the runner carries between the tries of one message. */
interface MessageRun {
  filesLostRetried: boolean;
  forceUpload: boolean;
  busyInRow: number;
}

const defaultSleep: Sleep = (ms, signal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    // Longer than a timer can hold: wake early, the caller re-evaluates.
    const timer = Number.isFinite(ms) ? setTimeout(done, Math.min(Math.max(ms, 0), 2 ** 31 - 1)) : undefined;
    signal.addEventListener('abort', done, { once: true });
  });

export class Sender extends TypedEmitter<SenderEvents> {
  private readonly outbox: SenderOutbox;
  private readonly modem: SenderModem;
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly sleep: Sleep;
  private readonly config: SenderConfig & { backoffMs: readonly number[]; busyWaitMs: number };

  private running = false;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private stopAbort = new AbortController();
  private idleAbort: AbortController | undefined;
  private kicked = false;
  private currentId: string | undefined;
  /** Message id → its uncounted returns to the queue in a row (DESIGN.md §14). */
  private readonly uncountedRequeues = new Map<string, number>();
  private readonly progress: ProgressRecorder;
  private readonly stager: Stager;
  private readonly composer: Composer;
  private readonly fitter: Fitter | undefined;

  private readonly onAdded = (): void => this.kick();
  private readonly onChanged = (rec: MessageRecord): void => {
    // A message cancelled while retrying still has its files in the module's RAM.
    if (rec?.status !== 'cancelled' || !Array.isArray(rec.ramFiles) || rec.ramFiles.length === 0) return;
    this.stager.cancelled(rec);
    this.kick();
  };
  private readonly onRebooted = (): void => {
    // The driver's session began a new epoch: files staged and edits made before are not trusted.
    this.log.info({ epoch: this.modem.session.epoch }, 'module restarted or port returned: RAM files are not trusted');
  };

  constructor(opts: SenderOptions) {
    super();
    this.outbox = opts.outbox;
    this.modem = opts.modem;
    this.log = opts.logger; // the daemon hands in a child with { part: 'sender' }
    this.clock = opts.clock ?? Date.now;
    this.sleep = opts.sleep ?? defaultSleep;
    this.config = {
      ...opts.config,
      backoffMs: opts.config.backoffMs?.length ? opts.config.backoffMs : DEFAULT_BACKOFF_MS,
      busyWaitMs: opts.config.busyWaitMs ?? DEFAULT_BUSY_WAIT_MS,
    };
    this.progress = new ProgressRecorder(this.outbox, this.log, this.clock);
    this.stager = new Stager({
      modem: this.modem,
      outbox: this.outbox,
      logger: this.log,
      progress: this.progress,
      locked: (fn) => this.locked(fn),
      checkpoint: (ctx) => this.checkpoint(ctx),
      stopping: () => this.stopping,
      maxMessageBytes: opts.config.maxMessageBytes,
    });
    this.composer = new Composer({
      modem: this.modem,
      outbox: this.outbox,
      stager: this.stager,
      config: this.config,
      clock: this.clock,
      checkpoint: (ctx) => this.checkpoint(ctx),
    });
    const fitting = opts.fitting;
    this.fitter = fitting
      ? new Fitter({
          outbox: this.outbox,
          modem: this.modem,
          logger: this.log,
          locked: (fn) => this.locked(fn),
          clock: this.clock,
          limit: fitting.limit,
          enabled: fitting.enabled,
          fit: fitting.fit,
        })
      : undefined;
  }

  /** Id of the message being sent now, if any. */
  get current(): string | undefined {
    return this.currentId;
  }

  /**
   * Starts taking work. `leftoverRamFiles` (from the outbox's recovery) are deleted from the
   * module once it is ready, and removed from the messages that journalled them.
   */
  start(leftoverRamFiles: string[]): void {
    if (this.running) return;
    this.running = true;
    this.stopping = false;
    this.kicked = false;
    this.stopAbort = new AbortController();
    this.stager.addLeftovers(leftoverRamFiles);
    this.outbox.on('added', this.onAdded);
    this.outbox.on('changed', this.onChanged);
    this.modem.on('rebooted', this.onRebooted);
    this.loop = this.run().catch((err: unknown) => this.log.error({ err }, 'sender loop ended'));
  }

  /**
   * Stops taking work and lets the message in hand reach a safe point: before AT+QMMSEND was
   * accepted it goes back to `queued`; after, its result is awaited (the driver's send timeout),
   * else it becomes `unknown`.
   */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.stopping = true;
    this.stopAbort.abort();
    this.idleAbort?.abort();
    this.outbox.off('added', this.onAdded);
    await this.loop;
    await this.progress.settled();
    this.outbox.off('changed', this.onChanged);
    this.modem.off('rebooted', this.onRebooted);
    this.loop = undefined;
    this.running = false;
  }

  /** Something was queued (or is due): look at the outbox now instead of at the next timer. */
  kick(): void {
    this.kicked = true;
    this.idleAbort?.abort();
  }

  private async run(): Promise<void> {
    let requeuesInRow = 0;
    while (!this.stopping) {
      try {
        // §4.1/§4.2: no SIM or no network makes messages wait, never fail.
        await this.modem.whenReady(this.stopAbort.signal);
      } catch (err) {
        if (this.stopping) break;
        this.log.warn({ err }, 'waiting for the modem failed');
        await this.sleep(REQUEUE_PAUSE_MS, this.stopAbort.signal);
        continue;
      }
      if (this.stopping) break;
      await this.stager.whenReady();
      if (this.stopping) break;
      const rec = this.outbox.next(this.clock());
      if (!rec) {
        await this.idle();
        continue;
      }
      let outcome: AttemptOutcome;
      try {
        outcome = await this.process(rec);
      } catch (err) {
        this.log.error({ err, id: rec.id }, 'message handling failed');
        outcome = 'requeued';
      } finally {
        this.currentId = undefined;
      }
      if (outcome === 'requeued') {
        requeuesInRow += 1;
        const pause = Math.min(REQUEUE_PAUSE_MS * 2 ** (requeuesInRow - 1), REQUEUE_PAUSE_MAX_MS);
        await this.sleep(pause, this.stopAbort.signal);
      } else {
        requeuesInRow = 0;
      }
    }
  }

  /** Sleeps until the earliest retry is due, a kick, or stop. */
  private async idle(): Promise<void> {
    if (this.kicked) {
      this.kicked = false;
      return;
    }
    const due = this.outbox.nextDueAt();
    const now = this.clock();
    const ms = due === undefined ? Infinity : due > now ? due - now : STALE_DUE_PAUSE_MS;
    if (this.stopping) return;
    const ac = new AbortController();
    this.idleAbort = ac;
    await this.sleep(ms, ac.signal);
    this.idleAbort = undefined;
    this.kicked = false;
  }

  /** Tries one message until it is final, waits for a later retry, or goes back to the queue. */
  private async process(first: MessageRecord): Promise<AttemptOutcome> {
    const id = first.id;
    this.currentId = id;
    const run: MessageRun = { filesLostRetried: false, forceUpload: false, busyInRow: 0 };
    for (let tryNo = 0; ; tryNo++) {
      const cur = this.outbox.get(id);
      const expected = tryNo === 0 ? cur?.status === 'queued' || cur?.status === 'retrying' : cur?.status === 'sending';
      if (!cur || !expected) {
        // Cancelled or removed between next() and now: never pick it (the outbox owns cancel).
        this.log.info({ id, status: cur?.status }, 'message no longer to be sent');
        return 'parked';
      }
      if (tryNo > 0 && (this.stopping || this.modem.status.state !== 'ready')) {
        return this.park(cur, this.stopping ? 'stopping' : `modem ${this.modem.status.state}`);
      }
      const outcome = await this.tryOnce(cur, run);
      switch (outcome) {
        case 'resend':
        case 'reupload':
          break;
        case 'busy':
          await this.sleep(this.config.busyWaitMs, this.stopAbort.signal);
          break;
        case 'reactivate':
          // §4.3: the resend failed too: deactivate and activate the context, then send again.
          try {
            await this.modem.reactivatePdp();
          } catch (err) {
            this.log.warn({ id, err, at: 'reactivate' }, 'PDP re-activation failed');
            const now = this.outbox.get(id);
            return now ? this.park(now, 'PDP re-activation failed') : 'parked';
          }
          break;
        default:
          return outcome;
      }
    }
  }

  /** Puts a message in hand aside without counting anything: it is picked again when due. */
  private async park(cur: MessageRecord, reason: string): Promise<AttemptOutcome> {
    const status: Status = cur.attempts > 0 ? 'retrying' : 'queued';
    await this.outbox.update(cur.id, {
      status,
      notBefore: status === 'retrying' ? this.clock() : undefined,
      sendAccepted: false,
      progress: 0,
    });
    this.log.info({ id: cur.id, status, reason }, 'message put aside');
    return 'parked';
  }

  /** One try: mark `sending`, stage, edit, send; then apply the §6 rules to what happened. */
  private async tryOnce(cur: MessageRecord, run: MessageRun): Promise<AttemptOutcome> {
    const id = cur.id;
    const attemptsBefore = cur.attempts;
    const attempt = attemptsBefore + 1;
    const started = this.clock();
    const rec = await this.outbox.update(id, {
      status: 'sending',
      attempts: attempt,
      progress: 0,
      sendAccepted: false,
      notBefore: undefined,
    });
    this.emit('attempt', { id, attempt });
    this.log.info({ id, attempt }, LOG_EVENTS.sending);

    const ctx: TryContext = { epoch: this.modem.session.epoch, accepted: false, step: 'stage' };
    let verdict: Verdict;
    try {
      // §11: fitted (once, durably) before the first upload; outside the modem's lock but for
      // its one AT+QFLDS, since re-encoding takes a second or two.
      const ready = this.fitter ? await this.fitter.prepare(rec) : rec;
      const r = await this.locked(() => this.composer.sendOnce(ready, ctx, run));
      verdict = { kind: 'result', err: r.err, httpStatus: r.httpStatus, mmscResponse: r.mmscResponse, afterSend: true };
    } catch (err) {
      verdict = judge(err, ctx);
      this.log.warn({ id, attempt, at: ctx.step, err }, 'try ended with an exception');
    }
    await this.progress.settled();

    const action = decide(verdict, {
      attempt,
      maxAttempts: this.config.maxAttempts,
      busyInRow: run.busyInRow,
      requeuesInRow: this.uncountedRequeues.get(id) ?? 0,
      filesLostRetried: run.filesLostRetried,
      resendAmbiguous: this.config.resendAmbiguous ?? false,
      backoffMs: this.config.backoffMs,
    });
    run.busyInRow = action.next.busyInRow;
    run.filesLostRetried = action.next.filesLostRetried;
    if (action.next.requeuesInRow === 0) this.uncountedRequeues.delete(id);
    else this.uncountedRequeues.set(id, action.next.requeuesInRow);
    return this.apply(id, attempt, attemptsBefore, action, run, started);
  }

  /** Applies the policy's action to the outbox (DESIGN.md §6, §14). */
  private async apply(
    id: string,
    attempt: number,
    attemptsBefore: number,
    action: Action,
    run: MessageRun,
    started: number,
  ): Promise<AttemptOutcome> {
    switch (action.kind) {
      case 'sent':
        await this.finish(id, 'sent', undefined);
        this.report(id, attempt, 'sent', 'sent', undefined, started);
        return 'sent';
      case 'unknown':
      case 'fail': {
        const status = action.kind === 'fail' ? 'failed' : 'unknown';
        await this.finish(id, status, action.error);
        this.report(id, attempt, status, status, action.error, started);
        return status;
      }
      case 'requeue-uncounted': {
        // Behind the other due messages (the outbox's order), with the reason as its error.
        const error = action.error ? { error: action.error } : {};
        await this.outbox.update(id, { status: 'queued', attempts: attemptsBefore, progress: 0, sendAccepted: false, ...error });
        this.report(id, attempt, 'requeued', 'queued', action.error, started, action.reason);
        return 'requeued';
      }
      case 'busy-wait':
        await this.outbox.update(id, { attempts: attemptsBefore, sendAccepted: false, error: action.error });
        this.report(id, attempt, 'busy', 'sending', action.error, started);
        return 'busy';
      case 'reupload-once':
        run.forceUpload = true;
        await this.outbox.update(id, { sendAccepted: false, error: action.error });
        this.report(id, attempt, 'reupload', 'sending', action.error, started);
        return 'reupload';
      case 'retry-now':
      case 'reactivate-then-retry': {
        const outcome: AttemptOutcome = action.kind === 'retry-now' ? 'resend' : 'reactivate';
        await this.outbox.update(id, { sendAccepted: false, error: action.error });
        this.report(id, attempt, outcome, 'sending', action.error, started);
        return outcome;
      }
      case 'back-off':
        await this.outbox.update(id, {
          status: 'retrying',
          notBefore: this.clock() + action.ms,
          sendAccepted: false,
          progress: 0,
          error: action.error,
        });
        this.report(id, attempt, 'retrying', 'retrying', action.error, started);
        return 'retrying';
    }
  }

  /** A final state, then the module's edit buffer and RAM files are cleaned up (§6). */
  private async finish(id: string, status: 'sent' | 'failed' | 'unknown', error: MessageError | undefined): Promise<void> {
    this.uncountedRequeues.delete(id);
    await this.outbox.update(id, {
      status,
      error,
      notBefore: undefined,
      ...(status === 'sent' ? { progress: 1 } : {}),
    });
    await this.stager.cleanup(id);
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    return this.modem.withLock ? this.modem.withLock(fn) : fn();
  }

  /** Between two module commands: stop asked for, or the module restarted under us? */
  private checkpoint(ctx: TryContext): void {
    if (this.stopping) throw new StopRequested();
    if (ctx.epoch !== this.modem.session.epoch) throw new ModemRebooted();
  }

  /**
   * The message whose `AT+QMMSEND` the module accepted and whose result is awaited, and until
   * when (clock ms) at most; undefined when no result is awaited. A stop waits for that result
   * (the service manager is asked for the time, see ServiceSupervisor).
   */
  get awaitingResult(): { readonly id: string; readonly until: number } | undefined {
    return this.composer.awaitingResult;
  }

  private report(
    id: string,
    attempt: number,
    outcome: AttemptOutcome,
    status: Status,
    error: MessageError | undefined,
    started: number,
    reason?: string,
  ): void {
    const durationMs = this.clock() - started;
    const fields = { id, attempt, outcome, status, code: error?.code, httpStatus: error?.httpStatus, reason, durationMs };
    if (outcome === 'sent') this.log.info(fields, LOG_EVENTS.sendResult);
    else this.log.warn({ ...fields, name: error?.name }, LOG_EVENTS.sendResult);
    this.emit('result', { id, attempt, outcome, status, error, durationMs });
  }
}
