// The send pipeline (DESIGN.md §6): one message at a time from the outbox through the modem —
// stage attachments in the module's RAM, edit, send, classify the result, retry, clean up.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import {
  HTTP_STATUS_NAMES,
  SPEC_CODES,
  classifySendResult,
  fileCode,
  specCode,
  type FileCode,
  type SendErrorClass,
} from '../core/errors.js';
import type { MessageError, MessageRecord, Status } from '../core/message.js';
import { attachmentNames } from '../core/names.js';
import { mergeSendParams, sameSendParams } from '../core/options.js';
import { AtError, AtErrorResult, ChecksumError, CmeError } from '../modem/errors.js';
import {
  SendNotAcceptedError,
  SendOutcomeUnknownError,
  type Charset,
  type ModemApi,
  type RamSpace,
  type SendParams,
  type SendResult,
} from '../modem/types.js';
import type { OutboxApi } from '../outbox/types.js';
import { isTextPart, subjectCharset, textCharset } from './charsets.js';

/** §4.3 / DESIGN.md §6: back-off after the resend and the re-activation did not help. */
export const DEFAULT_BACKOFF_MS: readonly number[] = [30_000, 120_000, 600_000];
/**
 * How long to wait after `764 MMS busy` before trying again. The module says busy while its MMS
 * engine is in another transaction (a send or a retrieval over HTTP), which takes seconds: a few
 * seconds apart keeps the AT line quiet meanwhile, and MAX_BUSY_IN_ROW of them (about 4 min) stay
 * within one default send timeout (`mms.sendTimeoutS` 300 s) before the wait counts as an attempt.
 */
export const DEFAULT_BUSY_WAIT_MS = 5_000;
/** 764 answers in a row after which a busy module counts as a failed attempt (a bound on the wait). */
export const MAX_BUSY_IN_ROW = 50;
/** Uploads tried again after a checksum mismatch before the message goes back to the queue. */
export const CHECKSUM_RETRIES = 2;
/**
 * DESIGN.md §14: uncounted returns of one message to the queue in a row after which the next one
 * counts as a failed attempt, so that a message the module keeps failing under follows maxAttempts.
 */
export const MAX_REQUEUES_IN_ROW = 10;
const PROGRESS_MIN_INTERVAL_MS = 250;
const PROGRESS_MIN_STEP = 0.05;
/** Pause after a message went back to the queue because the modem failed under it: doubles up to the max. */
const REQUEUE_PAUSE_MS = 1_000;
const REQUEUE_PAUSE_MAX_MS = 60_000;
/** Idle wait when the outbox says a retry is due but does not hand it out (never spin). */
const STALE_DUE_PAUSE_MS = 1_000;
/** Tries at deleting one leftover RAM file before it is left to the next start. */
const LEFTOVER_DELETE_TRIES = 3;

export interface SenderConfig {
  maxAttempts: number;
  /** `mms.sendTimeoutS`, used unless a message's options carry `timeout`. */
  sendTimeoutS: number;
  /** `mms.charset`: the charset of non-ASCII subjects. */
  charset: Charset;
  /** `mms.*` sendparam in force after the driver configured the module. */
  defaults: SendParams;
  /**
   * `outbox.resendAmbiguous`: retry results that leave open whether the MMSC has the message
   * (at least once) instead of making the message `unknown` (at most once).
   */
  resendAmbiguous?: boolean;
  backoffMs?: readonly number[];
  busyWaitMs?: number;
  /**
   * `mms.maxMessageBytes`: when set, the module's RAM is read once the modem is first ready, and a
   * warning logged when a message of that size could not fit (DESIGN.md §14).
   */
  maxMessageBytes?: number;
}

export type SenderModem = ModemApi & { withLock?<T>(fn: () => Promise<T>): Promise<T> };
/** The outbox with its 'added' / 'changed' events. */
export type SenderOutbox = OutboxApi & EventEmitter;
/** Resolves after `ms` (Infinity: never) or as soon as `signal` aborts; never rejects. */
export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

export interface SenderOptions {
  outbox: SenderOutbox;
  modem: SenderModem;
  logger: Logger;
  clock?: () => number;
  sleep?: Sleep;
  config: SenderConfig;
}

/** What became of one try of a message. */
export type AttemptOutcome =
  | 'sent'
  | 'failed'
  | 'unknown'
  /** Failed; sent again at once (§4.3). */
  | 'resend'
  /** Failed a second time; the PDP context is re-activated, then sent again (§4.3). */
  | 'reactivate'
  /** 761/763: attachments uploaded again, then sent again. */
  | 'reupload'
  /** Failed; waits for `notBefore`. */
  | 'retrying'
  /** 764: waits `busyWaitMs`, the try not counted. */
  | 'busy'
  /** The modem failed under it before AT+QMMSEND was accepted: back to `queued`, not counted. */
  | 'requeued'
  /** Put aside (stopping, or the modem stopped being ready between tries). */
  | 'parked';

export interface AttemptEvent {
  id: string;
  attempt: number;
}

export interface ResultEvent {
  id: string;
  attempt: number;
  outcome: AttemptOutcome;
  status: Status;
  error?: MessageError;
  durationMs: number;
}

export interface SenderEvents {
  attempt: [AttemptEvent];
  result: [ResultEvent];
}

/** Stop was asked for before AT+QMMSEND: a safe point, the message goes back to the queue. */
class StopRequested extends Error {
  override name = 'StopRequested';
  constructor() {
    super('sender stopping');
  }
}

/** The module restarted (or the port came back) mid-message: its edit buffer and RAM are gone. */
class ModemRebooted extends Error {
  override name = 'ModemRebooted';
  constructor() {
    super('module restarted mid-message');
  }
}

/**
 * The module's RAM cannot hold the message's attachments, even after leftovers were deleted
 * (DESIGN.md §14): the message fails as MessageTooLarge.
 */
class RamTooSmall extends Error {
  override name = 'RamTooSmall';
  constructor(readonly error: MessageError) {
    super(error.name);
  }
}

interface MessageRun {
  filesLostRetried: boolean;
  forceUpload: boolean;
  busyInRow: number;
}

interface TryContext {
  /** `Sender.epoch` when the try began; a change means the module restarted under it. */
  epoch: number;
  accepted: boolean;
  step: 'stage' | 'edit' | 'send';
  /** Bytes this try uploads, and the RAM drive as AT+QFLDS last showed it (if it answered). */
  ram?: { needed: number; space?: RamSpace };
}

type ResultVerdict = {
  kind: 'result';
  err: number;
  httpStatus: number;
  mmscResponse?: string;
  /** Name when `err` is not a code of the spec's table (AT+QMMSEND refused). */
  fallbackName?: string;
  /** The `+QMMSEND` result of an accepted send (not a refusal or an edit command's error). */
  afterSend: boolean;
  /** How to treat it, when not by the spec's tables (a FILE command's error, DESIGN.md §14). */
  cls?: SendErrorClass;
  /** What the user sees, when not the spec's name for `err`. */
  error?: MessageError;
};
type RequeueVerdict = {
  kind: 'requeue';
  /** For the log. */
  reason: string;
  /** For the message's error, which clients see. */
  publicReason: string;
  /** The +CME ERROR code behind it, if any. */
  code?: number;
  /** Counts towards MAX_REQUEUES_IN_ROW (a stop does not). */
  counts: boolean;
};
type Verdict = ResultVerdict | { kind: 'unknown'; reason: string } | RequeueVerdict;

const SPEC_CODE_SET: ReadonlySet<number> = new Set(SPEC_CODES.map((c) => c.code));

/** The error a user sees for a send result: the spec's name for the code (§5), else HTTP's (§6). */
export function sendResultError(
  err: number,
  httpStatus: number,
  mmscResponse?: string,
  fallbackName?: string,
): MessageError {
  let name: string;
  if (SPEC_CODE_SET.has(err)) name = specCode(err).name;
  else if (fallbackName !== undefined) name = err !== 0 ? `${fallbackName} (${err})` : fallbackName;
  else if (err === 0) name = `HTTP ${httpStatus} ${HTTP_STATUS_NAMES[httpStatus] ?? 'response'}`;
  else name = specCode(err).name;
  const e: MessageError = { code: err, name };
  if (httpStatus) e.httpStatus = httpStatus;
  if (mmscResponse !== undefined && mmscResponse !== '') e.mmscResponse = mmscResponse;
  return e;
}

/**
 * DESIGN.md §14: what a user sees when the module's RAM cannot hold a message: MessageTooLarge with
 * the sizes, after the FILE code and its name when the module answered one (`423 File too large`).
 */
export function messageTooLargeError(needed: number | undefined, space: RamSpace | undefined, code?: number): MessageError {
  const ram = space ? `, which has ${space.free} free of ${space.total}` : '';
  const what =
    needed === undefined
      ? "MessageTooLarge: the module's RAM cannot hold the attachments"
      : `MessageTooLarge: the attachments need ${needed} bytes of the module's RAM${ram}`;
  if (code === undefined) return { code: 0, name: what };
  return { code, name: `${fileCode(code)?.name ?? `Error ${code}`} (${what})` };
}

function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A reason a client is shown: an AT command by its name only (its arguments carry message data). */
function publicReasonOf(err: unknown): string {
  if (err instanceof AtError && err.message.startsWith(err.command)) {
    return err.command.replace(/=.*$/s, '') + err.message.slice(err.command.length);
  }
  return reasonOf(err);
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

export class Sender extends EventEmitter<SenderEvents> {
  private readonly outbox: SenderOutbox;
  private readonly modem: SenderModem;
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly sleep: Sleep;
  private readonly config: SenderConfig & { backoffMs: readonly number[]; busyWaitMs: number };
  private awaited: { readonly id: string; readonly until: number } | undefined;

  private running = false;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private stopAbort = new AbortController();
  private idleAbort: AbortController | undefined;
  private kicked = false;
  private currentId: string | undefined;
  /** Bumped on every 'rebooted': files staged under an older epoch are not trusted. */
  private epoch = 0;
  /** Message id → epoch in which all its attachments were last staged completely. */
  private readonly stagedEpoch = new Map<string, number>();
  /** sendparam the module has now; undefined when unsure. */
  private paramsInForce: SendParams | undefined;
  /** RAM files to delete once the modem is ready → failed tries so far. */
  private readonly pendingDeletes = new Map<string, number>();
  /** Message id → its uncounted returns to the queue in a row (DESIGN.md §14). */
  private readonly uncountedRequeues = new Map<string, number>();
  /** The RAM's size was checked against maxMessageBytes (once per start). */
  private ramChecked = false;
  private progressChain: Promise<unknown> = Promise.resolve();

  private readonly onAdded = (): void => this.kick();
  private readonly onChanged = (rec: MessageRecord): void => {
    // A message cancelled while retrying still has its files in the module's RAM.
    if (rec?.status !== 'cancelled' || !Array.isArray(rec.ramFiles) || rec.ramFiles.length === 0) return;
    for (const name of rec.ramFiles) if (!this.pendingDeletes.has(name)) this.pendingDeletes.set(name, 0);
    this.stagedEpoch.delete(rec.id);
    this.kick();
  };
  private readonly onRebooted = (): void => {
    this.epoch += 1;
    // §2.1: settings are not saved; the driver applies the configured ones again after RDY.
    this.paramsInForce = this.config.defaults;
    this.log.info({ epoch: this.epoch }, 'module restarted or port returned: RAM files are not trusted');
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
    // DESIGN.md §6: the driver applies the configured sendparam when it sets the module up.
    this.paramsInForce = opts.config.defaults;
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
    for (const name of leftoverRamFiles) this.pendingDeletes.set(name, 0);
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
    await this.progressChain;
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
      if (!this.ramChecked) await this.checkRamCapacity();
      await this.deleteLeftovers();
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
    this.log.info({ id, attempt }, 'sending');

    const ctx: TryContext = { epoch: this.epoch, accepted: false, step: 'stage' };
    let verdict: Verdict;
    try {
      const r = await this.locked(() => this.sendOnce(rec, ctx, run));
      verdict = { kind: 'result', err: r.err, httpStatus: r.httpStatus, mmscResponse: r.mmscResponse, afterSend: true };
    } catch (err) {
      verdict = this.judge(err, ctx);
      this.log.warn({ id, attempt, at: ctx.step, err }, 'try ended with an exception');
    }
    await this.progressChain;

    if (verdict.kind === 'unknown') {
      // §6: accepted but no result: may have been sent; never sent again on its own.
      const error: MessageError = { code: 0, name: `Result unknown: ${verdict.reason}` };
      await this.finish(id, 'unknown', error);
      this.report(id, attempt, 'unknown', 'unknown', error, started);
      return 'unknown';
    }
    if (verdict.kind === 'requeue') return this.requeue(id, attempt, attemptsBefore, verdict, run, started);
    this.uncountedRequeues.delete(id);
    return this.applyResult(id, attempt, attemptsBefore, verdict, run, started);
  }

  /**
   * §6: before AT+QMMSEND was accepted the message did not leave: back to the queue, not counted,
   * behind the other due messages (the outbox's order), with the reason as its error. §14: the
   * tenth such return in a row counts as a failed attempt instead, so that a message the module
   * keeps failing under ends after maxAttempts rather than going round for ever.
   */
  private async requeue(
    id: string,
    attempt: number,
    attemptsBefore: number,
    v: RequeueVerdict,
    run: MessageRun,
    started: number,
  ): Promise<AttemptOutcome> {
    if (!v.counts) {
      await this.outbox.update(id, { status: 'queued', attempts: attemptsBefore, progress: 0, sendAccepted: false });
      this.report(id, attempt, 'requeued', 'queued', undefined, started, v.reason);
      return 'requeued';
    }
    const inRow = (this.uncountedRequeues.get(id) ?? 0) + 1;
    const code = v.code ?? 0;
    if (inRow >= MAX_REQUEUES_IN_ROW) {
      this.uncountedRequeues.delete(id);
      const error: MessageError = { code, name: `Not sent ${inRow} times in a row: ${v.publicReason}` };
      return this.applyResult(id, attempt, attemptsBefore, { kind: 'result', err: code, httpStatus: 0, afterSend: false, cls: 'transient', error }, run, started);
    }
    this.uncountedRequeues.set(id, inRow);
    const error: MessageError = { code, name: `Not sent, back in the queue: ${v.publicReason}` };
    await this.outbox.update(id, { status: 'queued', attempts: attemptsBefore, progress: 0, sendAccepted: false, error });
    this.report(id, attempt, 'requeued', 'queued', error, started, v.reason);
    return 'requeued';
  }

  /** What an exception from a try means (DESIGN.md §6, §14). */
  private judge(err: unknown, ctx: TryContext): Verdict {
    if (err instanceof SendOutcomeUnknownError) return { kind: 'unknown', reason: err.message };
    if (ctx.accepted) return { kind: 'unknown', reason: reasonOf(err) };
    if (err instanceof RamTooSmall) {
      return { kind: 'result', err: err.error.code, httpStatus: 0, afterSend: false, cls: 'permanent', error: err.error };
    }
    if (err instanceof SendNotAcceptedError) {
      // Refused with a code: classified like a result (764 busy, 75x permanent …). Refused without
      // one (ERROR, port closed): the module's trouble, not the message's (§4.1) — back to the queue.
      if (err.code === undefined) return { kind: 'requeue', reason: err.message, publicReason: err.message, counts: true };
      return { kind: 'result', err: err.code, httpStatus: 0, fallbackName: 'Send not accepted', afterSend: false };
    }
    if (err instanceof CmeError) {
      // A code of the spec's table answered to an edit command is classified like a send result,
      // so that e.g. 757 fails at once and 763 re-uploads rather than looping through the queue.
      if (SPEC_CODE_SET.has(err.code)) return { kind: 'result', err: err.code, httpStatus: 0, afterSend: false };
      // §14: a FILE command's error is the message's (its size, its files), not the module's trouble.
      const file = fileCode(err.code);
      if (file) return this.fileVerdict(file, ctx);
    }
    return {
      kind: 'requeue',
      reason: reasonOf(err),
      publicReason: publicReasonOf(err),
      ...(err instanceof CmeError ? { code: err.code } : {}),
      counts: !(err instanceof StopRequested),
    };
  }

  /**
   * DESIGN.md §14, the FILE table: RAM too small (403, 420, 423) fails the message as
   * MessageTooLarge; 400/425 (and the others that cannot succeed) fail it at once; the rest count
   * as a failed attempt — 407 among them, once the upload after deleting the old file met it again.
   */
  private fileVerdict(file: FileCode, ctx: TryContext): ResultVerdict {
    const base = { kind: 'result', err: file.code, httpStatus: 0, afterSend: false } as const;
    switch (file.class) {
      case 'ram-too-small':
        return { ...base, cls: 'permanent', error: messageTooLargeError(ctx.ram?.needed, ctx.ram?.space, file.code) };
      case 'permanent':
        return { ...base, cls: 'permanent', error: { code: file.code, name: file.name } };
      case 'attempt':
      case 'file-exists':
        return { ...base, cls: 'transient', error: { code: file.code, name: file.name } };
    }
  }

  private async applyResult(
    id: string,
    attempt: number,
    attemptsBefore: number,
    v: ResultVerdict,
    run: MessageRun,
    started: number,
  ): Promise<AttemptOutcome> {
    // §6: only +QMMSEND: 0,200 means the MMSC took the message.
    if (v.err === 0 && v.httpStatus === 200) {
      await this.finish(id, 'sent', undefined);
      this.report(id, attempt, 'sent', 'sent', undefined, started);
      return 'sent';
    }
    const error = v.error ?? sendResultError(v.err, v.httpStatus, v.mmscResponse, v.fallbackName);
    let cls = v.cls ?? classifySendResult(v.err, v.httpStatus);

    if (cls === 'busy') {
      run.busyInRow += 1;
      if (run.busyInRow <= MAX_BUSY_IN_ROW) {
        // §6: 764 waits and retries without counting as a failure of the message.
        await this.outbox.update(id, { attempts: attemptsBefore, sendAccepted: false, error });
        this.report(id, attempt, 'busy', 'sending', error, started);
        return 'busy';
      }
      cls = 'transient';
    } else {
      run.busyInRow = 0;
    }

    if (cls === 'ambiguous') {
      if (v.afterSend && !this.config.resendAmbiguous) {
        // The request may have reached the MMSC before the failure (the context dropped, the
        // answer was lost): sending again could deliver it twice. Like a lost result (§6), the
        // message becomes `unknown`, with the module's code saying what happened.
        await this.finish(id, 'unknown', error);
        this.report(id, attempt, 'unknown', 'unknown', error, started);
        return 'unknown';
      }
      // A refusal or an edit command's error: nothing went out. Or the user chose resends.
      cls = 'transient';
    }

    if (cls === 'permanent' || attempt >= this.config.maxAttempts) {
      await this.finish(id, 'failed', error);
      this.report(id, attempt, 'failed', 'failed', error, started);
      return 'failed';
    }
    if (cls === 'files-lost' && !run.filesLostRetried) {
      // §6: 761/763: the module lost its RAM files: upload them again once, then send again.
      run.filesLostRetried = true;
      run.forceUpload = true;
      await this.outbox.update(id, { sendAccepted: false, error });
      this.report(id, attempt, 'reupload', 'sending', error, started);
      return 'reupload';
    }
    // §4.3: resend, then re-activate the context and resend, then back off.
    if (attempt <= 2) {
      const outcome: AttemptOutcome = attempt === 1 ? 'resend' : 'reactivate';
      await this.outbox.update(id, { sendAccepted: false, error });
      this.report(id, attempt, outcome, 'sending', error, started);
      return outcome;
    }
    const ladder = this.config.backoffMs;
    const delay = ladder[Math.min(attempt - 3, ladder.length - 1)];
    await this.outbox.update(id, {
      status: 'retrying',
      notBefore: this.clock() + delay,
      sendAccepted: false,
      progress: 0,
      error,
    });
    this.report(id, attempt, 'retrying', 'retrying', error, started);
    return 'retrying';
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
    await this.cleanup(id);
  }

  /** AT+QMMSEDIT=0 and AT+QFDEL of every journalled file; failures are logged and retried later. */
  private async cleanup(id: string): Promise<void> {
    this.stagedEpoch.delete(id);
    const names = this.outbox.get(id)?.ramFiles ?? [];
    const left: string[] = [];
    try {
      await this.locked(async () => {
        try {
          await this.modem.mmsClear();
        } catch (err) {
          this.log.warn({ id, at: 'cleanup', err }, 'clearing the MMS edit buffer failed');
        }
        for (const name of names) {
          try {
            await this.modem.deleteFile(name);
          } catch (err) {
            this.log.warn({ id, at: 'cleanup', file: name, err }, 'deleting a RAM file failed');
            left.push(name);
          }
        }
      });
    } catch (err) {
      this.log.warn({ id, at: 'cleanup', err }, 'cleanup failed');
      left.splice(0, left.length, ...names);
    }
    if (names.length === 0) return;
    // Names not deleted stay journalled (a later start deletes them) and are tried again when ready.
    for (const name of left) if (!this.pendingDeletes.has(name)) this.pendingDeletes.set(name, 0);
    try {
      await this.outbox.update(id, { ramFiles: left });
    } catch (err) {
      this.log.warn({ id, at: 'cleanup', err }, 'clearing the RAM journal failed');
    }
  }

  /** Leftovers of a crash, of a cancelled message, or of a cleanup that failed (§6). */
  private async deleteLeftovers(): Promise<void> {
    if (this.pendingDeletes.size === 0) return;
    const gone = new Set<string>();
    for (const [name, tries] of [...this.pendingDeletes]) {
      if (this.stopping) break;
      try {
        await this.modem.deleteFile(name);
        gone.add(name);
        this.pendingDeletes.delete(name);
      } catch (err) {
        if (tries + 1 >= LEFTOVER_DELETE_TRIES) this.pendingDeletes.delete(name);
        else this.pendingDeletes.set(name, tries + 1);
        this.log.warn({ at: 'leftovers', file: name, err }, 'deleting a leftover RAM file failed');
      }
    }
    if (gone.size === 0) return;
    this.log.info({ at: 'leftovers', files: [...gone] }, 'leftover RAM files deleted');
    for (const rec of this.outbox.list()) {
      if (!rec.ramFiles.some((n) => gone.has(n))) continue;
      try {
        await this.outbox.update(rec.id, { ramFiles: rec.ramFiles.filter((n) => !gone.has(n)) });
      } catch (err) {
        this.log.warn({ id: rec.id, at: 'leftovers', err }, 'clearing the RAM journal failed');
      }
    }
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    return this.modem.withLock ? this.modem.withLock(fn) : fn();
  }

  /** Between two module commands: stop asked for, or the module restarted under us? */
  private checkpoint(ctx: TryContext): void {
    if (this.stopping) throw new StopRequested();
    if (ctx.epoch !== this.epoch) throw new ModemRebooted();
  }

  /** DESIGN.md §6, one message: clear, upload, edit (charset rules), AT+QMMSEND. */
  private async sendOnce(rec: MessageRecord, ctx: TryContext, run: MessageRun): Promise<SendResult> {
    const m = this.modem;
    ctx.step = 'stage';
    this.checkpoint(ctx);
    await m.mmsClear();
    const names = await this.stage(rec, ctx, run);

    ctx.step = 'edit';
    const params = mergeSendParams(this.config.defaults, rec.options);
    if (!sameSendParams(params, this.paramsInForce)) {
      this.checkpoint(ctx);
      this.paramsInForce = undefined;
      await m.setSendParams(params);
      this.paramsInForce = params;
    }
    let charset: Charset | undefined;
    const useCharset = async (cs: Charset): Promise<void> => {
      if (cs === charset) return;
      this.checkpoint(ctx);
      charset = undefined;
      await m.setCharset(cs);
      charset = cs;
    };
    // §6: addresses always under "ASCII" (firmware may read them as hex otherwise).
    await useCharset('ASCII');
    const kinds = [
      ['to', rec.to],
      ['cc', rec.cc],
      ['bcc', rec.bcc],
    ] as const;
    for (const [kind, list] of kinds) {
      for (const address of list) {
        this.checkpoint(ctx);
        await m.addRecipient(kind, address);
      }
    }
    if (rec.subject !== '') {
      // §3.3: the module stores the charset in force with the title.
      const cs = subjectCharset(rec.subject, this.config.charset);
      await useCharset(cs);
      this.checkpoint(ctx);
      await m.setSubject(rec.subject, cs);
      charset = undefined; // the driver may set the charset itself for the title
    }
    for (const [i, att] of rec.attachments.entries()) {
      // §2.2: a text part is stored with the charset in force: set it to the text's own.
      if (isTextPart(att.contentType)) await useCharset(textCharset(att.contentType));
      this.checkpoint(ctx);
      await m.addAttachment(names[i]);
    }

    ctx.step = 'send';
    this.checkpoint(ctx);
    const timeoutS = rec.options.timeout ?? this.config.sendTimeoutS;
    // The context dropped (or the network went) while the message was being prepared: the module
    // would take AT+QMMSEND and then report 769, which cannot be told from a drop during the post
    // and would make the message `unknown`. Known now, it is plainly not sent: back to the queue
    // (checked before the journal write below, which it would only have to undo).
    const { state, detail } = m.status;
    if (state !== 'ready') throw new SendNotAcceptedError(`not sent: the modem is ${state}${detail ? ` (${detail})` : ''}`);
    // §6: crash recovery turns an accepted `sending` message into `unknown`. Journalled before
    // the command is written, not after its OK: a crash between the module's OK and our write
    // would otherwise requeue a message the module is sending, and send it twice. A refusal
    // clears the flag again (requeue and retry paths write `sendAccepted: false`).
    await this.outbox.update(rec.id, { sendAccepted: true });
    this.checkpoint(ctx);
    try {
      return await m.send(timeoutS, (resultWaitMs) => {
        ctx.accepted = true;
        this.awaited = { id: rec.id, until: this.clock() + resultWaitMs };
        return Promise.resolve();
      });
    } finally {
      this.awaited = undefined;
    }
  }

  /**
   * The message whose `AT+QMMSEND` the module accepted and whose result is awaited, and until
   * when (clock ms) at most; undefined when no result is awaited. A stop waits for that result
   * (the service manager is asked for the time, see ServiceSupervisor).
   */
  get awaitingResult(): { readonly id: string; readonly until: number } | undefined {
    return this.awaited;
  }

  /**
   * Puts the attachments in the module's RAM: names journalled first, files still there from an
   * earlier try of this message (same name and size, same module lifetime) reused.
   */
  private async stage(rec: MessageRecord, ctx: TryContext, run: MessageRun): Promise<string[]> {
    const id = rec.id;
    // The RAM file names are the names the message carries (a part is named after its file); made
    // again, as validation made them, for records spooled by an older version.
    const names = attachmentNames(rec.attachments);
    await this.evictOthers(id, ctx);
    const mayExist = rec.ramFiles.length > 0;
    const journal = [...new Set([...rec.ramFiles, ...names])];
    if (journal.length !== rec.ramFiles.length || journal.some((n, i) => n !== rec.ramFiles[i])) {
      // §6: the names are durably in the spool before anything is uploaded.
      await this.outbox.update(id, { ramFiles: journal });
    }
    const trusted = !run.forceUpload && this.stagedEpoch.get(id) === ctx.epoch;
    run.forceUpload = false;
    this.stagedEpoch.delete(id);
    this.checkpoint(ctx);
    const inRam = mayExist ? await this.modem.listFiles() : new Map<string, number>();
    const reused = rec.attachments.map((att, i) => trusted && inRam.get(names[i]) === att.size);
    // AT+QFUPL does not overwrite: a stale or partial file of that name goes first (its room too).
    for (const [i, name] of names.entries()) {
      if (reused[i] || !inRam.has(name)) continue;
      this.checkpoint(ctx);
      await this.modem.deleteFile(name);
    }
    const needed = rec.attachments.reduce((sum, att, i) => (reused[i] ? sum : sum + att.size), 0);
    if (needed > 0) await this.makeRoom(id, names.filter((_, i) => reused[i]), needed, ctx);

    const total = rec.attachments.reduce((s, a) => s + a.size, 0);
    const progress = this.progressReporter(id, total);
    let done = 0;
    for (const [i, att] of rec.attachments.entries()) {
      const name = names[i];
      if (reused[i]) {
        this.log.debug({ id, file: name, at: 'stage' }, 'reusing file already in RAM');
        done += att.size;
        progress(done);
        continue;
      }
      this.checkpoint(ctx);
      const data = await this.outbox.readAttachment(id, i);
      const base = done;
      await this.upload(id, name, data, ctx, (sent) => progress(base + sent));
      done += att.size;
    }
    progress(total);
    this.stagedEpoch.set(id, ctx.epoch);
    return names;
  }

  /**
   * DESIGN.md §14: one AT+QFLDS before the uploads; attachments the RAM cannot hold fail the
   * message as MessageTooLarge instead of being uploaded. When the RAM would hold them but other
   * files take the room (a clean-up that failed, a lost journal: files no message journalled), those
   * go first; only one message's files stay in the module at a time (see evictOthers).
   */
  private async makeRoom(id: string, keep: readonly string[], needed: number, ctx: TryContext): Promise<void> {
    this.checkpoint(ctx);
    let space: RamSpace;
    try {
      space = await this.modem.ramSpace();
    } catch (err) {
      // A module that cannot tell: the upload's own answer decides (423, 420 …).
      if (!(err instanceof CmeError || err instanceof AtErrorResult)) throw err;
      this.log.warn({ id, at: 'stage', err }, 'reading the RAM space failed; uploading anyway');
      ctx.ram = { needed };
      return;
    }
    ctx.ram = { needed, space };
    if (needed <= space.free) return;
    if (needed <= space.total) {
      this.checkpoint(ctx);
      const others = [...(await this.modem.listFiles())].filter(([name]) => !keep.includes(name));
      for (const [name] of others) {
        this.checkpoint(ctx);
        await this.modem.deleteFile(name);
      }
      const freed = others.reduce((sum, [, size]) => sum + size, 0);
      if (others.length > 0) {
        this.log.warn({ id, at: 'stage', files: others.map(([name]) => name), freed }, 'files no message journalled took the RAM: deleted');
      }
      space = { free: space.free + freed, total: space.total };
      ctx.ram = { needed, space };
      if (needed <= space.free) return;
    }
    throw new RamTooSmall(messageTooLargeError(needed, space));
  }

  /**
   * Once per start, when the modem is first ready: a warning when `mms.maxMessageBytes` is more
   * than the module's RAM holds (such messages will fail as MessageTooLarge, DESIGN.md §14).
   */
  private async checkRamCapacity(): Promise<void> {
    this.ramChecked = true;
    const max = this.config.maxMessageBytes;
    if (max === undefined) return;
    try {
      const space = await this.locked(() => this.modem.ramSpace());
      if (max > space.total) {
        this.log.warn(
          { maxMessageBytes: max, ramTotal: space.total, ramFree: space.free },
          "mms.maxMessageBytes is more than the module's RAM holds: larger messages will fail as MessageTooLarge",
        );
      } else {
        this.log.debug({ maxMessageBytes: max, ramTotal: space.total, ramFree: space.free }, 'module RAM checked');
      }
    } catch (err) {
      this.log.warn({ err }, "reading the module's RAM size failed");
    }
  }

  /**
   * Parts are named after themselves in RAM, so files another message kept for a re-send (it is
   * backing off) could clash with ours: only one message's files stay in the module at a time.
   */
  private async evictOthers(id: string, ctx: TryContext): Promise<void> {
    for (const other of this.outbox.list()) {
      if (other.id === id || other.ramFiles.length === 0) continue;
      this.stagedEpoch.delete(other.id);
      for (const name of other.ramFiles) {
        this.checkpoint(ctx);
        await this.modem.deleteFile(name);
      }
      await this.outbox.update(other.id, { ramFiles: [] });
      this.log.debug({ id: other.id, at: 'stage', for: id }, 'RAM files of a backing-off message evicted');
    }
  }

  /**
   * One upload, tried again after a checksum mismatch (the module saw broken bytes, §6), and once
   * after `407 File already existed` (§14: a file of that name we did not know of), each time
   * after deleting what is there.
   */
  private async upload(
    id: string,
    name: string,
    data: Buffer,
    ctx: TryContext,
    onProgress: (sent: number) => void,
  ): Promise<void> {
    let checksumRetries = 0;
    let replaced = false;
    for (;;) {
      try {
        await this.modem.uploadFile(name, data, (sent) => onProgress(sent));
        return;
      } catch (err) {
        if (err instanceof CmeError && fileCode(err.code)?.class === 'file-exists' && !replaced) {
          replaced = true;
          this.log.warn({ id, at: 'upload', file: name, code: err.code }, 'a file of that name is in RAM already: deleting it, uploading again');
        } else if (err instanceof ChecksumError && checksumRetries < CHECKSUM_RETRIES) {
          checksumRetries += 1;
          this.log.warn({ id, at: 'upload', file: name, retry: checksumRetries }, 'upload checksum mismatch, uploading again');
        } else {
          throw err;
        }
        this.checkpoint(ctx);
        await this.modem.deleteFile(name);
      }
    }
  }

  /** Upload progress as `progress` (not durable), at most every 250 ms unless 5 % further. */
  private progressReporter(id: string, total: number): (bytes: number) => void {
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
      this.progressChain = this.progressChain
        .then(() => this.outbox.update(id, { progress: value }, { durable: false }))
        .catch((err: unknown) => this.log.warn({ id, at: 'stage', err }, 'recording progress failed'));
    };
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
    if (outcome === 'sent') this.log.info(fields, 'send result');
    else this.log.warn({ ...fields, name: error?.name }, 'send result');
    this.emit('result', { id, attempt, outcome, status, error, durationMs });
  }
}
