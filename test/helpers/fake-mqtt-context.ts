// An in-memory FrontDoorContext for the MQTT front door's tests: a small validation that throws
// RequestError, an outbox that emits 'added'/'changed'/'removed', and a drivable modem status.
import { EventEmitter } from 'node:events';
import { pino, type Logger } from 'pino';
import { RequestError } from '../../src/core/errors.js';
import { isFinal, newMessageRecord, type AttachmentMeta, type MessageRecord, type Status } from '../../src/core/message.js';
import type { ModemStatus } from '../../src/modem/types.js';
import type { SubmitResult } from '../../src/outbox/types.js';
import type { FrontDoorContext, RawSendRequest } from '../../src/api/types.js';

export interface FakeContextOptions {
  /** Runs inside submit() before anything is stored (e.g. a slow disk, or a failure). */
  beforeSubmit?: (raw: RawSendRequest) => Promise<void>;
  /** Drive every new message queued → sending → sent on its own. */
  autoSend?: boolean;
}

export class FakeMqttContext extends EventEmitter implements FrontDoorContext {
  readonly version = '0.0.0-test';
  readonly logger: Logger = pino({ level: 'silent' });
  readonly records = new Map<string, MessageRecord>();
  /** Every call of submit(), in order, with its argument. */
  readonly submits: RawSendRequest[] = [];
  /** The attachments of each created message, as received. */
  readonly attachments = new Map<string, { name: string; contentType: string; data: Buffer }[]>();
  private status: ModemStatus = { state: 'ready', registration: 'home', operator: 'Test Net', signal: 20 };
  private nextId = 1;
  private now = 1_700_000_000_000;

  constructor(private readonly opts: FakeContextOptions = {}) {
    super();
  }

  private tick(): number {
    this.now += 1;
    return this.now;
  }

  async submit(raw: RawSendRequest): Promise<SubmitResult> {
    this.submits.push(raw);
    if (this.opts.beforeSubmit) await this.opts.beforeSubmit(raw);
    const id = typeof raw.id === 'string' ? raw.id : `gen-${this.nextId++}`;
    const known = this.records.get(id);
    if (known) return { record: known, created: false };
    const to = addresses(raw.to, 'to', true);
    const cc = addresses(raw.cc, 'cc', false);
    const bcc = addresses(raw.bcc, 'bcc', false);
    const subject = typeof raw.subject === 'string' ? raw.subject : '';
    if (Buffer.byteLength(subject) > 200) throw new RequestError('SubjectTooLong', 'subject is longer than 200 bytes');
    const atts = (Array.isArray(raw.attachments) ? raw.attachments : []) as Record<string, unknown>[];
    if (atts.length > 12) throw new RequestError('TooManyAttachments', 'at most 12 attachments');
    const parts = atts.map((a) => {
      if (typeof a.path === 'string') throw new RequestError('AttachmentNotAllowed', `${a.path} is not in an allowed directory`);
      return { name: String(a.name), contentType: typeof a.contentType === 'string' ? a.contentType : 'application/octet-stream', data: a.data as Buffer };
    });
    const total = parts.reduce((n, p) => n + p.data.length, 0);
    if (total > 307200) throw new RequestError('MessageTooLarge', 'attachments exceed 307200 bytes');
    const options = (raw.options ?? {}) as Record<string, unknown>;
    if (options.priority !== undefined && (Number(options.priority) < 0 || Number(options.priority) > 3)) {
      throw new RequestError('InvalidOption', 'priority must be 0..3');
    }
    const t = this.tick();
    const meta: AttachmentMeta[] = parts.map((p, i) => ({ name: p.name, contentType: p.contentType, size: p.data.length, sha256: '', file: `${i}` }));
    const record = newMessageRecord(id, { to, cc, bcc, subject, options: {} }, meta, t);
    this.records.set(id, record);
    this.attachments.set(id, parts);
    this.emit('added', { ...record });
    if (this.opts.autoSend) {
      setImmediate(() => {
        this.advance(id, { status: 'sending', attempts: 1, progress: 0.5 });
        setImmediate(() => this.advance(id, { status: 'sent', progress: 1 }));
      });
    }
    return { record: { ...record }, created: true };
  }

  get(id: string): MessageRecord | undefined {
    const r = this.records.get(id);
    return r ? { ...r } : undefined;
  }

  list(): MessageRecord[] {
    return [...this.records.values()].map((r) => ({ ...r }));
  }

  async cancel(id: string): Promise<MessageRecord> {
    await Promise.resolve();
    const r = this.records.get(id);
    if (!r) throw new RequestError('NotFound', `no message ${id}`);
    if (r.status !== 'queued' && r.status !== 'retrying') throw new RequestError('NotCancellable', `message ${id} is ${r.status}`);
    return this.advance(id, { status: 'cancelled' });
  }

  modemStatus(): ModemStatus {
    return { ...this.status };
  }

  queueLength(): number {
    return [...this.records.values()].filter((r) => !isFinal(r.status)).length;
  }

  // ---- test drivers ----

  /** Change a message and emit 'changed'. */
  advance(id: string, patch: Partial<Pick<MessageRecord, 'status' | 'attempts' | 'progress' | 'error'>> & { status?: Status }): MessageRecord {
    const r = this.records.get(id);
    if (!r) throw new Error(`no message ${id}`);
    Object.assign(r, patch, { updated: this.tick() });
    const copy = { ...r };
    this.emit('changed', copy);
    return copy;
  }

  /** Forget a message (retention) and emit 'removed' with its id. */
  remove(id: string): void {
    this.records.delete(id);
    this.emit('removed', id);
  }

  setModemStatus(patch: Partial<ModemStatus>): void {
    this.status = { ...this.status, ...patch };
    this.emit('modemStatus', { ...this.status });
  }
}

function addresses(v: unknown, field: string, required: boolean): string[] {
  const list = v === undefined ? [] : (v as unknown[]).map(String);
  if (required && list.length === 0) throw new RequestError('InvalidRecipient', `${field}: at least one recipient`);
  if (list.length > 6) throw new RequestError('TooManyRecipients', `${field}: at most 6 recipients`);
  for (const a of list) {
    if (!/^\+?[0-9]{3,20}$/.test(a) && !/^[^@\s"';]+@[^@\s"';]+$/.test(a)) {
      throw new RequestError('InvalidRecipient', `${field}: ${JSON.stringify(a.slice(0, 60))} is not a phone number or e-mail address`);
    }
  }
  return list;
}
