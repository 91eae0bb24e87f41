// The sender's configuration, options and events (DESIGN.md §6).
import type { Logger } from 'pino';
import type { Listenable } from '../core/events.js';
import type { SizeLimit } from '../core/limits.js';
import type { AttachmentInput, MessageError, Status } from '../core/message.js';
import type { Charset, ModemApi, SendParams } from '../modem/types.js';
import type { OutboxApi, OutboxEvents } from '../outbox/types.js';

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
export type SenderOutbox = OutboxApi & Listenable<OutboxEvents>;
/** Resolves after `ms` (Infinity: never) or as soon as `signal` aborts; never rejects. */
export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

/**
 * Fits a message's parts to `limitBytes` (DESIGN.md §11): the parts in their order, fitted ones
 * new, and one line per changed part. Throws a named error when it cannot (MessageTooLarge, an
 * image that cannot be read).
 */
export type FitFunction = (parts: AttachmentInput[], limitBytes: number) => Promise<{ parts: AttachmentInput[]; adjustments: string[] }>;

/** Photos that fit (DESIGN.md §11), as the daemon sets them up. */
export interface SenderFitting {
  /** The carrier's or configured limit (§10), asked at each message. */
  limit: () => SizeLimit;
  /** `media.fit`. */
  enabled: boolean;
  fit: FitFunction;
}

export interface SenderOptions {
  outbox: SenderOutbox;
  modem: SenderModem;
  logger: Logger;
  clock?: () => number;
  sleep?: Sleep;
  config: SenderConfig;
  /** Without it, nothing is fitted (and a message's limit is not checked before the upload). */
  fitting?: SenderFitting;
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
