// The message as a front door receives it, as the outbox keeps it and as both front doors show it
// (DESIGN.md §4, §5).
import type { DeliveryState } from './inbound.js';
import type { SendOptions } from './options.js';

export type { SendOptions } from './options.js';

export const STATUSES = ['queued', 'sending', 'retrying', 'sent', 'delivered', 'failed', 'cancelled', 'unknown'] as const;
export type Status = (typeof STATUSES)[number];

/**
 * States a message never leaves on its own. `sent` is final for sending; only delivery reports
 * move it on, to `delivered` once every recipient retrieved it (DESIGN.md §12).
 */
export const FINAL_STATUSES: ReadonlySet<Status> = new Set(['sent', 'delivered', 'failed', 'cancelled', 'unknown']);

/**
 * Final states a client may send again as a new message (`Resend`): their attachment bytes stay in
 * the spool until retention removes the message; other final states drop them at once.
 */
export const RESENDABLE_STATUSES: ReadonlySet<Status> = new Set(['unknown', 'failed']);

/** A send request as a front door received it, before validation (DESIGN.md §4, §5). */
export interface RawSendRequest {
  id?: unknown;
  to?: unknown;
  cc?: unknown;
  bcc?: unknown;
  subject?: unknown;
  /** Each: { name, contentType?, data: Buffer } or { path, name?, contentType? }. */
  attachments?: unknown;
  /** Keys of SEND_OPTIONS (core/options.ts). */
  options?: unknown;
}

/** An attachment as submitted, after validation: bytes are in hand (path attachments read). */
export interface AttachmentInput {
  /** File name as the recipient sees it (attachmentNames, core/names.ts). */
  name: string;
  contentType: string;
  data: Buffer;
}

/** A validated send request, ready for the outbox. */
export interface SendRequest {
  /** Client id (idempotency key); generated when absent. */
  id?: string;
  to: string[];
  cc: string[];
  bcc: string[];
  subject: string;
  attachments: AttachmentInput[];
  options: SendOptions;
}

/** The error a message carries: a spec code with its name, or a daemon-side reason. */
export interface MessageError {
  /** Spec §5 `<err>` code (751..777), or 0 for daemon-side errors. */
  code: number;
  /** Spec §5 name ("Server response failed") or a daemon-side name. */
  name: string;
  httpStatus?: number;
  mmscResponse?: string;
}

export interface AttachmentMeta {
  name: string;
  contentType: string;
  size: number;
  sha256: string;
  /** Name of the file in the spool (attachment bytes); removed at `sent`/`cancelled`, or by retention. */
  file: string;
}

/** What the outbox stores and the front doors publish. */
export interface MessageRecord {
  id: string;
  status: Status;
  to: string[];
  cc: string[];
  bcc: string[];
  subject: string;
  attachments: AttachmentMeta[];
  options: SendOptions;
  attempts: number;
  /** 0..1 while attachments upload. */
  progress: number;
  error?: MessageError;
  /** Unix ms. */
  created: number;
  updated: number;
  /** Unix ms before which a retrying message is not tried again. */
  notBefore?: number;
  /**
   * Unix ms when it last went back to the queue without a counted attempt (`sending` → `queued`):
   * it then waits behind the messages due before it (DESIGN.md §14: none holds up the others).
   */
  requeuedAt?: number;
  /** RAM file names journalled before upload (DESIGN.md §6), still possibly in the module. */
  ramFiles: string[];
  /**
   * True from just before AT+QMMSEND is written for the current attempt: the module may have
   * accepted it, so a crash from here on makes the message `unknown`, never a second send.
   * A refusal of the command clears it again.
   */
  sendAccepted: boolean;
  /**
   * DESIGN.md §11: set once the message's images were fitted, with one line per changed part.
   * From then on the attachments are the fitted bytes, and the message is never fitted again.
   */
  adjustments?: string[];
  /** Unix ms when it became `sent` (DESIGN.md §12: a report matches only what was sent before it). */
  sentAt?: number;
  /**
   * DESIGN.md §12: recipient (To, Cc and Bcc as given) → delivery state; present from `sent` on when
   * a delivery report was asked for (option `deliveryReport`, else `mms.deliveryReport`).
   */
  delivery?: Record<string, DeliveryState>;
  /** The MMSC's Message-ID, learnt from the first report matched to it: later ones go straight here. */
  mmscMessageId?: string;
  /** Keys of the delivery reports applied to it (one push applied once, also across a crash). */
  reportKeys?: string[];
}

/** All recipients of a message, in the order To, Cc, Bcc. */
export function recipientsOf(r: Pick<MessageRecord, 'to' | 'cc' | 'bcc'>): string[] {
  return [...r.to, ...r.cc, ...r.bcc];
}

export function isFinal(status: Status): boolean {
  return FINAL_STATUSES.has(status);
}

/**
 * Final and waiting for no delivery report (none asked for, or none of its recipients still
 * `pending` or `deferred`): what the D-Bus door serves without an object of its own (issue 19).
 * A `sent` message still waiting for reports is not settled: reports change it.
 */
export function isSettled(r: Pick<MessageRecord, 'status' | 'delivery'>): boolean {
  if (!isFinal(r.status)) return false;
  if (r.status !== 'sent' || r.delivery === undefined) return true;
  return !Object.values(r.delivery).some((s) => s === 'pending' || s === 'deferred');
}

/** When a `retrying` message is tried next (unix ms); undefined in every other state. */
export function nextAttemptAt(record: Pick<MessageRecord, 'status' | 'notBefore' | 'updated'>): number | undefined {
  // Without a time of its own a retrying message is due since it was put aside.
  return record.status === 'retrying' ? (record.notBefore ?? record.updated) : undefined;
}

/**
 * A message as it enters the outbox: `queued`, nothing tried yet. The one place that knows a new
 * record's initial state (the outbox and the test doubles of the front doors use it).
 */
export function newMessageRecord(
  id: string,
  req: Pick<SendRequest, 'to' | 'cc' | 'bcc' | 'subject' | 'options'>,
  attachments: AttachmentMeta[],
  now: number,
): MessageRecord {
  return {
    id,
    status: 'queued',
    to: [...req.to],
    cc: [...req.cc],
    bcc: [...req.bcc],
    subject: req.subject,
    attachments,
    options: { ...req.options },
    attempts: 0,
    progress: 0,
    created: now,
    updated: now,
    ramFiles: [],
    sendAccepted: false,
  };
}
