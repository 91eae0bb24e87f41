// The send pipeline's retry policy (DESIGN.md §6, §14, docs/reliability.md) as a pure function:
// `decide(result, state)` says what to do with the outcome of one try; the runner applies it.
import {
  HTTP_STATUS_NAMES,
  SPEC_CODES,
  classifySendResult,
  fileCode,
  specCode,
  type FileCode,
  type SendErrorClass,
} from '../core/errors.js';
import type { MessageError } from '../core/message.js';
import type { RamSpace } from '../modem/types.js';

/** §4.3 / DESIGN.md §6: back-off after the resend and the re-activation did not help. */
export const DEFAULT_BACKOFF_MS: readonly number[] = [30_000, 120_000, 600_000];
/** 764 answers in a row after which a busy module counts as a failed attempt (a bound on the wait). */
export const MAX_BUSY_IN_ROW = 50;
/**
 * DESIGN.md §14: uncounted returns of one message to the queue in a row after which the next one
 * counts as a failed attempt, so that a message the module keeps failing under follows maxAttempts.
 */
export const MAX_REQUEUES_IN_ROW = 10;

/** An answer of the module or the MMSC: a `+QMMSEND` result, a refusal, an edit or FILE command's code. */
export interface ResultVerdict {
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
}
/** The modem failed under the message before AT+QMMSEND was accepted. */
export interface RequeueVerdict {
  kind: 'requeue';
  /** For the log. */
  reason: string;
  /** For the message's error, which clients see. */
  publicReason: string;
  /** The +CME ERROR code behind it, if any. */
  code?: number;
  /** Counts towards MAX_REQUEUES_IN_ROW (a stop does not). */
  counts: boolean;
}
/** AT+QMMSEND was accepted but no result came (timeout, lost answer). */
export interface UnknownVerdict {
  kind: 'unknown';
  reason: string;
}
/** The classified outcome of one try. */
export type Verdict = ResultVerdict | UnknownVerdict | RequeueVerdict;

/** What the policy knows about the message and its run besides the outcome. */
export interface PolicyState {
  /** This try's number (attempts counted so far, this one included). */
  attempt: number;
  maxAttempts: number;
  /** 764 answers in a row in this run, before this outcome. */
  busyInRow: number;
  /** Uncounted returns to the queue in a row, before this outcome. */
  requeuesInRow: number;
  /** 761/763 already led to a re-upload in this run. */
  filesLostRetried: boolean;
  /** `outbox.resendAmbiguous`. */
  resendAmbiguous: boolean;
  /** Back-off ladder after the resend and the re-activation. */
  backoffMs: readonly number[];
}

/** The counters of the state after the action (the runner keeps them). */
export interface PolicyNext {
  busyInRow: number;
  /** 0: forget the message's uncounted returns. */
  requeuesInRow: number;
  filesLostRetried: boolean;
}

export type Action = (
  | { kind: 'sent' }
  /** May have been sent: final, never sent again on its own. */
  | { kind: 'unknown'; error: MessageError }
  | { kind: 'fail'; error: MessageError }
  /** Back to `queued`, the try not counted; `error` unset for a stop. */
  | { kind: 'requeue-uncounted'; error?: MessageError; reason: string }
  /** 764: wait the busy pause, then send again; the try not counted. */
  | { kind: 'busy-wait'; error: MessageError }
  /** 761/763: upload the attachments again (once), then send again. */
  | { kind: 'reupload-once'; error: MessageError }
  /** First failure (§4.3): send again at once. */
  | { kind: 'retry-now'; error: MessageError }
  /** Second failure (§4.3): re-activate the PDP context, then send again. */
  | { kind: 'reactivate-then-retry'; error: MessageError }
  /** Later failures: `retrying` until `ms` from now. */
  | { kind: 'back-off'; ms: number; error: MessageError }
) & { next: PolicyNext };

const SPEC_CODE_SET: ReadonlySet<number> = new Set(SPEC_CODES.map((c) => c.code));

/** Whether `code` is one of the spec's send result codes (§5, table 2). */
export function isSpecCode(code: number): boolean {
  return SPEC_CODE_SET.has(code);
}

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

/**
 * DESIGN.md §14, the FILE table: RAM too small (403, 420, 423) fails the message as
 * MessageTooLarge; 400/425 (and the others that cannot succeed) fail it at once; the rest count
 * as a failed attempt — 407 among them, once the upload after deleting the old file met it again.
 */
export function fileVerdict(file: FileCode, ram?: { needed: number; space?: RamSpace }): ResultVerdict {
  const base = { kind: 'result', err: file.code, httpStatus: 0, afterSend: false } as const;
  switch (file.class) {
    case 'ram-too-small':
      return { ...base, cls: 'permanent', error: messageTooLargeError(ram?.needed, ram?.space, file.code) };
    case 'permanent':
      return { ...base, cls: 'permanent', error: { code: file.code, name: file.name } };
    case 'attempt':
    case 'file-exists':
      return { ...base, cls: 'transient', error: { code: file.code, name: file.name } };
  }
}

/** DESIGN.md §6, §14: what to do with the outcome of one try. */
export function decide(v: Verdict, s: PolicyState): Action {
  const keep: PolicyNext = { busyInRow: s.busyInRow, requeuesInRow: s.requeuesInRow, filesLostRetried: s.filesLostRetried };
  if (v.kind === 'unknown') {
    // §6: accepted but no result: may have been sent; never sent again on its own.
    return { kind: 'unknown', error: { code: 0, name: `Result unknown: ${v.reason}` }, next: { ...keep, requeuesInRow: 0 } };
  }
  if (v.kind === 'requeue') return decideRequeue(v, s, keep);
  return decideResult(v, s, { ...keep, requeuesInRow: 0 });
}

/**
 * §6: before AT+QMMSEND was accepted the message did not leave: back to the queue, not counted,
 * with the reason as its error. §14: the tenth such return in a row counts as a failed attempt
 * instead, so that a message the module keeps failing under ends after maxAttempts.
 */
function decideRequeue(v: RequeueVerdict, s: PolicyState, keep: PolicyNext): Action {
  if (!v.counts) return { kind: 'requeue-uncounted', reason: v.reason, next: keep };
  const inRow = s.requeuesInRow + 1;
  const code = v.code ?? 0;
  if (inRow >= MAX_REQUEUES_IN_ROW) {
    const error: MessageError = { code, name: `Not sent ${inRow} times in a row: ${v.publicReason}` };
    return decideResult(
      { kind: 'result', err: code, httpStatus: 0, afterSend: false, cls: 'transient', error },
      s,
      { ...keep, requeuesInRow: 0 },
    );
  }
  const error: MessageError = { code, name: `Not sent, back in the queue: ${v.publicReason}` };
  return { kind: 'requeue-uncounted', error, reason: v.reason, next: { ...keep, requeuesInRow: inRow } };
}

function decideResult(v: ResultVerdict, s: PolicyState, next: PolicyNext): Action {
  // §6: only +QMMSEND: 0,200 means the MMSC took the message.
  if (v.err === 0 && v.httpStatus === 200) return { kind: 'sent', next };
  const error = v.error ?? sendResultError(v.err, v.httpStatus, v.mmscResponse, v.fallbackName);
  let cls = v.cls ?? classifySendResult(v.err, v.httpStatus);

  if (cls === 'busy') {
    const busyInRow = s.busyInRow + 1;
    next = { ...next, busyInRow };
    // §6: 764 waits and retries without counting as a failure of the message.
    if (busyInRow <= MAX_BUSY_IN_ROW) return { kind: 'busy-wait', error, next };
    cls = 'transient';
  } else {
    next = { ...next, busyInRow: 0 };
  }

  if (cls === 'ambiguous') {
    // The request may have reached the MMSC before the failure (the context dropped, the answer
    // was lost): sending again could deliver it twice. Like a lost result (§6), the message
    // becomes `unknown`, with the module's code saying what happened.
    if (v.afterSend && !s.resendAmbiguous) return { kind: 'unknown', error, next };
    // A refusal or an edit command's error: nothing went out. Or the user chose resends.
    cls = 'transient';
  }

  if (cls === 'permanent' || s.attempt >= s.maxAttempts) return { kind: 'fail', error, next };
  if (cls === 'files-lost' && !s.filesLostRetried) {
    // §6: 761/763: the module lost its RAM files: upload them again once, then send again.
    return { kind: 'reupload-once', error, next: { ...next, filesLostRetried: true } };
  }
  // §4.3: resend, then re-activate the context and resend, then back off.
  if (s.attempt <= 2) return { kind: s.attempt === 1 ? 'retry-now' : 'reactivate-then-retry', error, next };
  const ladder = s.backoffMs;
  return { kind: 'back-off', ms: ladder[Math.min(s.attempt - 3, ladder.length - 1)], error, next };
}
