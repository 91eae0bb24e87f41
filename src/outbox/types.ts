// Contract of the outbox (src/outbox): the durable spool the front doors submit to and the
// sender takes work from.
import type { AttachmentInput, MessageRecord, SendRequest } from '../core/message.js';

export interface SubmitResult {
  record: MessageRecord;
  /** false when a message with the same client id was already known (nothing was added). */
  created: boolean;
}

export interface RecoveryReport {
  /** Messages found `sending` before AT+QMMSEND was accepted: back to `queued`. */
  requeued: string[];
  /** Messages found `sending` after AT+QMMSEND was accepted: now `unknown`. */
  unknown: string[];
  /** RAM file names journalled by messages that may still sit in the module. */
  leftoverRamFiles: string[];
  /** Messages loaded. */
  loaded: number;
}

/** Fields the sender may change. */
export type MessagePatch = Partial<
  Pick<MessageRecord, 'status' | 'attempts' | 'progress' | 'error' | 'notBefore' | 'ramFiles' | 'sendAccepted'>
>;

/** The outbox's events: a message spooled, changed, or removed by the retention sweep. */
export interface OutboxEvents {
  added: [record: MessageRecord];
  changed: [record: MessageRecord];
  removed: [id: string];
}

/**
 * Events: OutboxEvents.
 * Every method that changes a message writes it durably (write, fsync, rename, fsync dir)
 * before it resolves, except `update(…, { durable: false })` used for upload progress.
 */
export interface OutboxApi {
  submit(req: SendRequest): Promise<SubmitResult>;
  get(id: string): MessageRecord | undefined;
  list(): MessageRecord[];
  /** queued/retrying → cancelled; RequestError NotFound / NotCancellable otherwise. */
  cancel(id: string): Promise<MessageRecord>;
  /**
   * The next message due at `now`: queued, or retrying with notBefore <= now; in the order they
   * joined the queue (created, or last put back uncounted: `requeuedAt`), oldest first.
   */
  next(now: number): MessageRecord | undefined;
  /** Earliest notBefore among retrying messages, for the sender's timer. */
  nextDueAt(): number | undefined;
  update(id: string, patch: MessagePatch, opts?: { durable?: boolean }): Promise<MessageRecord>;
  /**
   * DESIGN.md §11: a `sending` message's attachments become `parts` (the fitted bytes) and its
   * record says `adjustments`, durably, before anything is uploaded: changed parts' bytes are
   * written and synced first, then the record that names them. Parts whose bytes are unchanged
   * keep their files.
   */
  replaceAttachments(id: string, parts: readonly AttachmentInput[], adjustments: readonly string[]): Promise<MessageRecord>;
  /** The bytes of attachment `index` of message `id`, from the spool. */
  readAttachment(id: string, index: number): Promise<Buffer>;
  /** Number of messages not in a final state. */
  queueLength(): number;
}
