// The durable outbox (DESIGN.md §1, §6): the spool of messages on disk, their state machine,
// idempotency by client id, retention, and the recovery of a crash at start-up.
import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { RequestError } from '../core/errors.js';
import type { AppliedDeliveryReport, DeliveryReportInput } from '../core/inbound.js';
import { TypedEmitter } from '../core/events.js';
import {
  RESENDABLE_STATUSES,
  STATUSES,
  isFinal,
  newMessageRecord,
  type AttachmentInput,
  type AttachmentMeta,
  type MessageRecord,
  type SendRequest,
  type Status,
} from '../core/message.js';
import { isValidId } from '../core/validate.js';
import { applyReport, matchReport, pendingDelivery } from './delivery.js';
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

/** DESIGN.md §6: the MMSC request was made, its answer lost. */
export const RESULT_UNKNOWN_ERROR = { code: 0, name: 'Result unknown: the daemon stopped after the MMSC request was made' } as const;

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

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}

/** A record read from disk is trusted only when it has the shape the outbox writes. */
function isRecord(v: unknown, id: string): v is MessageRecord {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return (
    r.id === id &&
    typeof r.status === 'string' &&
    (STATUSES as readonly string[]).includes(r.status) &&
    isStringArray(r.to) &&
    isStringArray(r.cc) &&
    isStringArray(r.bcc) &&
    typeof r.subject === 'string' &&
    Array.isArray(r.attachments) &&
    r.attachments.every(
      (a: unknown) =>
        typeof a === 'object' &&
        a !== null &&
        typeof (a as AttachmentMeta).name === 'string' &&
        typeof (a as AttachmentMeta).file === 'string' &&
        typeof (a as AttachmentMeta).size === 'number',
    ) &&
    typeof r.options === 'object' &&
    r.options !== null &&
    typeof r.attempts === 'number' &&
    typeof r.progress === 'number' &&
    typeof r.created === 'number' &&
    typeof r.updated === 'number' &&
    isStringArray(r.ramFiles) &&
    typeof r.sendAccepted === 'boolean' &&
    (r.adjustments === undefined || isStringArray(r.adjustments))
  );
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export class Outbox extends TypedEmitter<OutboxEvents> implements OutboxApi {
  private readonly store: OutboxStore;
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly retentionMs: number;
  private readonly loadConcurrency: number;
  private readonly loadBatch: number;
  /** Records that could not be read at start-up, with why: set aside once all are read. */
  private readonly corrupt: Array<{ id: string; err: unknown }> = [];
  private readonly records = new Map<string, MessageRecord>();
  /** Ids not in a final state: what next() and queueLength() look at. */
  private readonly active = new Set<string>();
  /** Per-id chain of writes: one change of a message at a time, in order. */
  private readonly locks = new Map<string, Promise<unknown>>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private lastIdTime = 0;
  private readonly deliveryReports: boolean;
  /** Ids of messages with a `delivery` map: the only ones a delivery report can match (§12). */
  private readonly reportable = new Set<string>();
  /** Delivery reports are matched and applied one at a time. */
  private reportChain: Promise<unknown> = Promise.resolve();

  constructor(opts: OutboxOptions) {
    super();
    this.store = opts.store ?? new SpoolStore(opts.dir, opts.lockSpool !== false);
    this.log = opts.logger;
    this.clock = opts.clock ?? Date.now;
    this.retentionMs = opts.retentionDays * DAY_MS;
    this.loadConcurrency = opts.loadConcurrency ?? 16;
    this.loadBatch = opts.loadBatch ?? 200;
    this.deliveryReports = opts.deliveryReports ?? false;
  }

  /** Loads the spool and recovers from a crash (DESIGN.md §6); then sweeps hourly. */
  async start(): Promise<RecoveryReport> {
    // First of all (in the store): a second daemon must leave the spool exactly as it found it.
    const files = await this.store.open();
    this.records.clear();
    this.active.clear();
    this.reportable.clear();

    // Small files read synchronously in batches, yielding in between: on the thread pool each
    // read is four round trips (open, fstat, read, close) and 10,000 of them take seconds.
    for (let i = 0; i < files.length; i += this.loadBatch) {
      for (const f of files.slice(i, i + this.loadBatch)) {
        const r = this.loadOne(f);
        if (r) this.index(r);
      }
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await Promise.all(this.corrupt.splice(0).map(async ({ id, err }) => {
      // Never crash on one bad file: keep it for a person to look at, and go on.
      const file = this.store.describe(id);
      try {
        const movedTo = await this.store.setAside(id, this.clock());
        this.log.error({ file, movedTo, err }, 'corrupt outbox record moved aside');
      } catch (e) {
        this.log.error({ err: e, file, cause: err }, 'cannot move corrupt record aside');
      }
    }));

    const report: RecoveryReport = { requeued: [], unknown: [], leftoverRamFiles: [], loaded: this.records.size };
    const now = this.clock();
    const sending = [...this.records.values()].filter((r) => r.status === 'sending');
    await mapLimit(sending, this.loadConcurrency, async (r) => {
      if (r.sendAccepted) {
        // §6: once AT+QMMSEND was accepted, the message may have left: never resend on our own.
        await this.write({ ...r, status: 'unknown', error: { ...RESULT_UNKNOWN_ERROR }, progress: 0, updated: now });
        report.unknown.push(r.id);
      } else {
        await this.write({ ...r, status: 'queued', progress: 0, updated: now, requeuedAt: now });
        report.requeued.push(r.id);
      }
    });

    // Journalled RAM names not yet cleared are exactly the files that may still sit in the module:
    // of unfinished messages, and of finished ones whose clean-up (AT+QFDEL) did not complete.
    const ram = new Set<string>();
    for (const r of this.records.values()) for (const f of r.ramFiles) ram.add(f);
    report.leftoverRamFiles = [...ram];

    await this.removeOrphanAttachments();
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
      this.log.info({ id, recipients: record.to.length + record.cc.length + record.bcc.length, attachments: attachments.length }, 'message queued');
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

  /**
   * DESIGN.md §12: matches one M-Delivery.ind to a message (delivery.ts) and, when it matches,
   * writes the message's new delivery state durably before it resolves. A report this outbox
   * applied before (same key) is a `duplicate` and changes nothing. Messages removed by retention
   * are not matched: their reports are `unmatched`.
   */
  applyDeliveryReport(report: DeliveryReportInput): Promise<AppliedDeliveryReport> {
    const run = this.reportChain.then(() => this.applyReportNow(report));
    this.reportChain = run.catch(() => undefined);
    return run;
  }

  private async applyReportNow(report: DeliveryReportInput): Promise<AppliedDeliveryReport> {
    const base = { recipient: report.recipient, status: report.status, date: report.date, reportMessageId: report.reportMessageId };
    const candidates = [...this.reportable].map((id) => this.records.get(id)).filter((r): r is MessageRecord => r !== undefined);
    const match = matchReport(report, candidates);
    if (match.kind === 'unmatched') return { outcome: 'unmatched', event: base };
    if (match.kind === 'duplicate') {
      const r = match.record;
      return { outcome: 'duplicate', event: { ...base, messageId: r.id, delivery: { ...r.delivery } } };
    }
    return this.withLock(match.record.id, async () => {
      const cur = this.records.get(match.record.id);
      if (!cur) return { outcome: 'unmatched' as const, event: base };
      const next = await this.write(applyReport(cur, match.recipient, report, this.clock()));
      this.log.info(
        { id: next.id, recipient: match.recipient, deliveryStatus: report.status, by: match.by, reportMessageId: report.reportMessageId, status: next.status },
        'delivery report applied',
      );
      this.emit('changed', next);
      return { outcome: 'matched' as const, event: { ...base, messageId: next.id, delivery: { ...next.delivery } } };
    });
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
        this.reportable.delete(r.id);
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
    if (r.delivery !== undefined) this.reportable.add(r.id);
    else this.reportable.delete(r.id);
    if (isFinal(r.status)) this.active.delete(r.id);
    else this.active.add(r.id);
  }

  private loadOne(id: string): MessageRecord | undefined {
    try {
      const parsed = JSON.parse(this.store.readRecord(id)) as unknown;
      if (isValidId(id) && isRecord(parsed, id)) return parsed;
      throw new Error('not a message record');
    } catch (err) {
      this.corrupt.push({ id, err });
      return undefined;
    }
  }

  /** Attachment folders without a record (crash before the record was written) or of sent/cancelled messages. */
  private async removeOrphanAttachments(): Promise<void> {
    const owners = await this.store.attachmentOwners();
    const orphans = owners.filter((id) => {
      const r = this.records.get(id);
      return !r || !hasAttachmentBytes(r.status);
    });
    await mapLimit(orphans, this.loadConcurrency, (id) => this.store.removeAttachments(id));
    if (orphans.length > 0) this.log.info({ count: orphans.length }, 'orphaned attachment files removed');
  }
}

/** Whether a message in this state keeps its attachment bytes in the spool (until retention). */
function hasAttachmentBytes(status: Status): boolean {
  return !isFinal(status) || RESENDABLE_STATUSES.has(status);
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
