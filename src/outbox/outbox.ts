// The durable outbox (DESIGN.md §1, §6): the spool of messages on disk, their state machine,
// idempotency by client id and retention. Reading the spool back after a crash is recovery.ts,
// applying delivery reports delivery-reports.ts.
import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { RequestError } from '../core/errors.js';
import type { AppliedDeliveryReport, DeliveryReportInput } from '../core/inbound.js';
import { TypedEmitter } from '../core/events.js';
import { LOG_EVENTS } from '../core/log-events.js';
import {
  RESENDABLE_STATUSES,
  isFinal,
  newMessageRecord,
  type AttachmentInput,
  type AttachmentMeta,
  type MessageRecord,
  type SendRequest,
  type Status,
} from '../core/message.js';
import { isValidId } from '../core/validate.js';
import { pendingDelivery } from './delivery.js';
import { DeliveryReports } from './delivery-reports.js';
import {
  hasAttachmentBytes,
  leftoverRamFiles,
  loadRecords,
  recoverInterrupted,
  removeOrphanAttachments,
  type RecoveryContext,
} from './recovery.js';
import { SpoolStore, attachmentFile, fittedFile, type OutboxStore } from './store.js';
import type { MessagePatch, OutboxApi, OutboxEvents, RecoveryReport, SubmitResult } from './types.js';

export interface OutboxOptions {
  /** `outbox.dir`: the spool root (unless `store` is given). */
  dir: string;
  /** Where the messages are kept; the spool under `dir` by default (tests hand in one in memory). */
  store?: OutboxStore;
  logger: Logger;
  /** Unix ms; Date.now by default. */
  clock?: () => number;
  /** `outbox.retentionDays`: final messages older than this are removed (metadata too). */
  retentionDays: number;
  /** Parallel file operations at start-up (removals, recovery writes). */
  loadConcurrency?: number;
  /** Records read between two yields to the event loop at start-up. */
  loadBatch?: number;
  /**
   * Lock `dir` against a second daemon before reading it (DESIGN.md §14; SpoolLockError when
   * another process holds it). Default true; tests that simulate a crash by abandoning an
   * instance turn it off.
   */
  lockSpool?: boolean;
  /** `mms.deliveryReport`: whether a message without the option asked for delivery reports (§12). */
  deliveryReports?: boolean;
}

/** Legal status changes; staying in the same status is always allowed. */
const TRANSITIONS: Readonly<Record<Status, readonly Status[]>> = {
  queued: ['sending', 'cancelled'],
  // §6: back to the queue when the module rebooted before AT+QMMSEND was accepted.
  sending: ['sent', 'failed', 'retrying', 'unknown', 'queued'],
  retrying: ['sending', 'cancelled'],
  // §12: every recipient retrieved it.
  sent: ['delivered'],
  delivered: [],
  failed: [],
  cancelled: [],
  unknown: [],
};

export class IllegalTransitionError extends Error {
  constructor(
    readonly id: string,
    readonly from: Status,
    readonly to: Status,
  ) {
    super(`message ${id}: illegal status change ${from} → ${to}`);
    this.name = 'IllegalTransitionError';
  }
}

export { RESULT_UNKNOWN_ERROR } from './recovery.js';

const RETENTION_SWEEP_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;
const PATCH_KEYS = new Set(['status', 'attempts', 'progress', 'error', 'notBefore', 'ramFiles', 'sendAccepted']);

function deepFreeze<T>(record: T): T {
  if (typeof record === 'object' && record !== null && !Object.isFrozen(record)) {
    Object.freeze(record);
    for (const v of Object.values(record)) deepFreeze(v);
  }
  return record;
}

export class Outbox extends TypedEmitter<OutboxEvents> implements OutboxApi {
  private readonly store: OutboxStore;
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly retentionMs: number;
  /** What reading the spool back at start-up works with. */
  private readonly recovery: RecoveryContext;
  private readonly records = new Map<string, MessageRecord>();
  /** Ids not in a final state: what next() and queueLength() look at. */
  private readonly active = new Set<string>();
  /** Per-id chain of writes: one change of a message at a time, in order. */
  private readonly locks = new Map<string, Promise<unknown>>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private lastIdTime = 0;
  private readonly deliveryReports: boolean;
  /** §12: the messages a delivery report can match, and the reports applied one at a time. */
  private readonly reports: DeliveryReports;

  constructor(opts: OutboxOptions) {
    super();
    this.store = opts.store ?? new SpoolStore(opts.dir, opts.lockSpool !== false);
    this.log = opts.logger;
    this.clock = opts.clock ?? Date.now;
    this.retentionMs = opts.retentionDays * DAY_MS;
    this.deliveryReports = opts.deliveryReports ?? false;
    const { store, log, clock } = this;
    this.recovery = { store, log, clock, loadConcurrency: opts.loadConcurrency ?? 16, loadBatch: opts.loadBatch ?? 200 };
    this.reports = new DeliveryReports({
      get: (id) => this.records.get(id),
      withLock: (id, fn) => this.withLock(id, fn),
      write: (r) => this.write(r),
      changed: (r) => this.emit('changed', r),
      clock,
      log,
    });
  }

  /** Loads the spool and recovers from a crash (DESIGN.md §6); then sweeps hourly. */
  async start(): Promise<RecoveryReport> {
    // First of all (in the store): a second daemon must leave the spool exactly as it found it.
    const files = await this.store.open();
    this.records.clear();
    this.active.clear();
    this.reports.clear();
    await loadRecords(files, this.recovery, (r) => this.index(r));

    const { requeued, unknown } = await recoverInterrupted(this.records.values(), this.recovery, (r) => this.write(r));
    const report: RecoveryReport = { requeued, unknown, leftoverRamFiles: leftoverRamFiles(this.records.values()), loaded: this.records.size };

    await removeOrphanAttachments(this.records, this.recovery);
    await this.removeExpired();
    this.sweepTimer = setInterval(() => {
      this.removeExpired().catch((err: unknown) => this.log.error({ err }, 'outbox retention sweep failed'));
    }, RETENTION_SWEEP_MS);
    this.sweepTimer.unref();

    report.requeued.sort();
    report.unknown.sort();
    this.log.info(
      { loaded: report.loaded, requeued: report.requeued.length, unknown: report.unknown.length, leftoverRamFiles: report.leftoverRamFiles.length },
      'outbox loaded',
    );
    for (const id of [...report.unknown, ...report.requeued]) {
      const rec = this.records.get(id);
      if (rec) this.emit('changed', rec);
    }
    return report;
  }

  /** Stops the sweep, waits for writes in flight and releases the spool lock. */
  async stop(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    await Promise.allSettled([...this.locks.values()]);
    await this.store.close();
  }

  async submit(req: SendRequest): Promise<SubmitResult> {
    const id = req.id ?? this.newId();
    if (!isValidId(id)) throw new RequestError('InvalidRequest', `id ${JSON.stringify(id)} is not a valid message id`);
    return this.withLock(id, async () => {
      const existing = this.records.get(id);
      if (existing) return { record: existing, created: false };
      const now = this.clock();
      const attachments: AttachmentMeta[] = req.attachments.map((a, i) => ({
        name: a.name,
        contentType: a.contentType,
        size: a.data.length,
        sha256: createHash('sha256').update(a.data).digest('hex'),
        file: attachmentFile(id, i),
      }));
      // The bytes first, durable, then the record that names them.
      if (req.attachments.length > 0) await this.store.writeAttachments(id, req.attachments.map((a) => a.data));
      const record = newMessageRecord(id, req, attachments, now);
      const stored = await this.write(record);
      this.log.info({ id, recipients: record.to.length + record.cc.length + record.bcc.length, attachments: attachments.length }, LOG_EVENTS.messageQueued);
      this.emit('added', stored);
      return { record: stored, created: true };
    });
  }

  get(id: string): MessageRecord | undefined {
    return this.records.get(id);
  }

  /** All messages, oldest first. */
  list(): MessageRecord[] {
    return [...this.records.values()].sort(byAge);
  }

  async cancel(id: string): Promise<MessageRecord> {
    return this.withLock(id, async () => {
      const r = this.records.get(id);
      if (!r) throw new RequestError('NotFound', `no message with id ${JSON.stringify(id)}`);
      if (r.status !== 'queued' && r.status !== 'retrying') {
        throw new RequestError('NotCancellable', `message ${id} is ${r.status}; only queued or retrying messages can be cancelled`);
      }
      const next = await this.write({ ...r, status: 'cancelled', updated: this.clock() });
      this.log.info({ id }, 'message cancelled');
      this.emit('changed', next);
      return next;
    });
  }

  next(now: number): MessageRecord | undefined {
    let best: MessageRecord | undefined;
    for (const id of this.active) {
      const r = this.records.get(id);
      if (!r) continue;
      const due = r.status === 'queued' || (r.status === 'retrying' && (r.notBefore ?? 0) <= now);
      if (due && (!best || byQueueOrder(r, best) < 0)) best = r;
    }
    return best;
  }

  nextDueAt(): number | undefined {
    let at: number | undefined;
    for (const id of this.active) {
      const r = this.records.get(id);
      if (r?.status === 'retrying') {
        const t = r.notBefore ?? 0;
        if (at === undefined || t < at) at = t;
      }
    }
    return at;
  }

  /**
   * Changes a message, durably unless `durable: false`, which is for upload progress only (the
   * patch may then hold nothing but `progress`). An illegal status change throws
   * IllegalTransitionError; entering `sent` or `cancelled` removes the attachment bytes (`unknown`
   * and `failed` keep them for a resend until retention).
   */
  async update(id: string, patch: MessagePatch, opts: { durable?: boolean } = {}): Promise<MessageRecord> {
    for (const k of Object.keys(patch)) {
      if (!PATCH_KEYS.has(k)) throw new TypeError(`outbox.update: ${k} cannot be changed`);
    }
    if (opts.durable === false) {
      if (Object.keys(patch).some((k) => k !== 'progress')) throw new TypeError('outbox.update: only progress may change without a durable write');
      const r = this.records.get(id);
      if (!r) throw new RequestError('NotFound', `no message with id ${JSON.stringify(id)}`);
      const next = deepFreeze({ ...r, progress: patch.progress ?? r.progress, updated: this.clock() });
      this.records.set(id, next);
      this.emit('changed', next);
      return next;
    }
    return this.withLock(id, async () => {
      const r = this.records.get(id);
      if (!r) throw new RequestError('NotFound', `no message with id ${JSON.stringify(id)}`);
      if (patch.status !== undefined && patch.status !== r.status && !TRANSITIONS[r.status].includes(patch.status)) {
        throw new IllegalTransitionError(id, r.status, patch.status);
      }
      const draft: MessageRecord = { ...r, ...patch, updated: this.clock() };
      // Back to the queue uncounted: behind the messages due now (DESIGN.md §14).
      if (r.status === 'sending' && patch.status === 'queued') draft.requeuedAt = draft.updated;
      // An explicit `error: undefined` / `notBefore: undefined` clears the field.
      if ('error' in patch && patch.error === undefined) delete draft.error;
      if ('notBefore' in patch && patch.notBefore === undefined) delete draft.notBefore;
      if (patch.ramFiles) draft.ramFiles = [...patch.ramFiles];
      if (patch.error) draft.error = { ...patch.error };
      if (patch.status === 'sent' && r.status !== 'sent') {
        // §12: from `sent` on, a message that asked for reports waits for one per recipient.
        draft.sentAt = draft.updated;
        if (r.options.deliveryReport ?? this.deliveryReports) draft.delivery = pendingDelivery(r);
      }
      const next = await this.write(draft);
      this.emit('changed', next);
      return next;
    });
  }

  async replaceAttachments(id: string, parts: readonly AttachmentInput[], adjustments: readonly string[]): Promise<MessageRecord> {
    return this.withLock(id, async () => {
      const r = this.records.get(id);
      if (!r) throw new RequestError('NotFound', `no message with id ${JSON.stringify(id)}`);
      if (r.status !== 'sending') throw new Error(`message ${id} is ${r.status}: its attachments are replaced only while it is being sent`);
      if (parts.length !== r.attachments.length) throw new RangeError(`message ${id} has ${r.attachments.length} attachments, not ${parts.length}`);
      const changed: Array<{ index: number; data: Buffer }> = [];
      const attachments: AttachmentMeta[] = parts.map((p, i) => {
        const old = r.attachments[i];
        const sha256 = createHash('sha256').update(p.data).digest('hex');
        if (sha256 === old.sha256 && p.name === old.name && p.contentType === old.contentType) return old;
        // A new file name: the old bytes stay whole until the record no longer names them.
        changed.push({ index: i, data: p.data });
        return { name: p.name, contentType: p.contentType, size: p.data.length, sha256, file: fittedFile(id, i) };
      });
      if (changed.length > 0) await this.store.writeFitted(id, changed);
      const next = await this.write({ ...r, attachments, adjustments: [...adjustments], updated: this.clock() });
      // The record names the fitted files now: the originals are no longer needed.
      await Promise.all(changed.map((c) => this.store.removeAttachmentFile(r.attachments[c.index].file)));
      this.emit('changed', next);
      return next;
    });
  }

  async readAttachment(id: string, index: number): Promise<Buffer> {
    const r = this.records.get(id);
    if (!r) throw new RequestError('NotFound', `no message with id ${JSON.stringify(id)}`);
    const meta = r.attachments[index];
    if (!meta) throw new RangeError(`message ${id} has no attachment ${index}`);
    if (!hasAttachmentBytes(r.status)) throw new Error(`message ${id} is ${r.status}: its attachment bytes are gone`);
    return this.store.readAttachment(meta.file);
  }

  /**
   * What a resend of message `id` needs: the record and its attachments, read back from the spool
   * and checked against their recorded size and SHA-256. RequestError NotFound, or NotResendable
   * when the message is not `unknown`/`failed` or its bytes are gone.
   */
  async resendSource(id: string): Promise<{ record: MessageRecord; attachments: AttachmentInput[] }> {
    const record = this.records.get(id);
    if (!record) throw new RequestError('NotFound', `no message with id ${JSON.stringify(id)}`);
    if (!RESENDABLE_STATUSES.has(record.status)) {
      throw new RequestError(
        'NotResendable',
        `message ${id} is ${record.status}; only unknown or failed messages can be resent${isFinal(record.status) ? '' : ' (cancel it first if it should not go out)'}`,
      );
    }
    const gone = (): never => {
      throw new RequestError(
        'NotResendable',
        `the attachments of message ${id} are no longer in the spool (they are kept only for messages that ended unknown or failed, until outbox.retentionDays); send it again with its files`,
      );
    };
    const attachments = await Promise.all(
      record.attachments.map(async (meta) => {
        let data: Buffer;
        try {
          data = await this.store.readAttachment(meta.file);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') gone();
          throw err;
        }
        if (data.length !== meta.size || createHash('sha256').update(data).digest('hex') !== meta.sha256) {
          this.log.error({ id, file: meta.file }, 'attachment bytes in the spool do not match their record');
          throw new RequestError('NotResendable', `attachment ${meta.name} of message ${id} is damaged in the spool; send it again with its files`);
        }
        return { name: meta.name, contentType: meta.contentType, data };
      }),
    );
    return { record, attachments };
  }

  queueLength(): number {
    return this.active.size;
  }

  /** DESIGN.md §12: applies one M-Delivery.ind (delivery-reports.ts). */
  applyDeliveryReport(report: DeliveryReportInput): Promise<AppliedDeliveryReport> {
    return this.reports.apply(report);
  }

  /** Removes final messages last changed more than retentionDays ago; returns their ids. */
  async removeExpired(): Promise<string[]> {
    const cutoff = this.clock() - this.retentionMs;
    const expired = [...this.records.values()].filter((r) => isFinal(r.status) && r.updated <= cutoff && r.ramFiles.length === 0);
    const removed: string[] = [];
    for (const r of expired) {
      await this.withLock(r.id, async () => {
        const cur = this.records.get(r.id);
        if (!cur || cur !== r) return;
        await this.store.removeAttachments(r.id);
        await this.store.removeRecord(r.id);
        this.records.delete(r.id);
        this.active.delete(r.id);
        this.reports.forget(r.id);
        removed.push(r.id);
      });
    }
    if (removed.length > 0) {
      await this.store.flushRemovals();
      this.log.info({ count: removed.length }, 'expired messages removed');
      for (const id of removed) this.emit('removed', id);
    }
    return removed;
  }

  /** Time-ordered and unique: `m` + base36 ms (fixed width) + random. */
  private newId(): string {
    const t = Math.max(this.clock(), this.lastIdTime);
    this.lastIdTime = t;
    return `m${t.toString(36).padStart(9, '0')}${randomBytes(5).toString('hex')}`;
  }

  private async withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(id) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(id, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(id) === tail) this.locks.delete(id);
    }
  }

  /** Writes the record durably, then makes it the current one; `sent`/`cancelled` drop the bytes. */
  private async write(record: MessageRecord): Promise<MessageRecord> {
    await this.store.writeRecord(record.id, JSON.stringify(record));
    const stored = deepFreeze(record);
    this.index(stored);
    if (!hasAttachmentBytes(stored.status)) {
      // After the record says final, so that a crash in between leaves an orphan, not a hole.
      await this.store.removeAttachments(stored.id);
    }
    return stored;
  }

  private index(r: MessageRecord): void {
    this.records.set(r.id, deepFreeze(r));
    this.reports.note(r);
    if (isFinal(r.status)) this.active.delete(r.id);
    else this.active.add(r.id);
  }
}

/**
 * The order due messages are sent in: by the time they joined the queue, which is when they were
 * created, or when they last went back to it uncounted (`requeuedAt`); within the same
 * millisecond, one that went back comes after one that did not.
 */
export function byQueueOrder(a: MessageRecord, b: MessageRecord): number {
  const back = (r: MessageRecord): number => (r.requeuedAt === undefined ? 0 : 1);
  return (a.requeuedAt ?? a.created) - (b.requeuedAt ?? b.created) || back(a) - back(b) || byAge(a, b);
}

function byAge(a: MessageRecord, b: MessageRecord): number {
  return a.created - b.created || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
