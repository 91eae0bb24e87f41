// An in-memory FrontDoorContext for front-door tests: simple validation that throws RequestError
// for obviously bad input, and methods a test uses to drive messages and the modem status.
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFile, realpath } from 'node:fs/promises';
import { resolve as resolvePath, sep } from 'node:path';
import { pino, type Logger } from 'pino';
import { RequestError } from '../../src/core/errors.js';
import { newMessageRecord, type MessageRecord, type SendOptions } from '../../src/core/message.js';
import type { FrontDoorContext, RawSendRequest } from '../../src/api/types.js';
import type { ModemStatus } from '../../src/modem/types.js';
import type { SubmitResult } from '../../src/outbox/types.js';
import { OPTIONS } from '../../src/core/validate.js';

const ADDRESS = /^(?:\+?[0-9]{3,20}|[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+)$/;
const OPTION_RANGES: Readonly<Record<string, readonly [number, number] | 'boolean'>> = OPTIONS;

export interface FakeContextOptions {
  allowedDirs?: string[];
  maxMessageBytes?: number;
  now?: () => number;
}

export class FakeContext extends EventEmitter implements FrontDoorContext {
  readonly version = '0.0.0-test';
  readonly logger: Logger = pino({ level: 'silent' });
  readonly records = new Map<string, MessageRecord>();
  /** Every raw request submit() received, valid or not. */
  readonly received: RawSendRequest[] = [];
  /** Bytes of every accepted attachment, by message id. */
  readonly attachmentData = new Map<string, Buffer[]>();
  /** When set, the next submit() throws it (to exercise error mapping). */
  failNext: Error | undefined;
  /** When set, submit() waits for it after recording the request (a slow spool write). */
  gate: Promise<void> | undefined;
  status: ModemStatus = { state: 'ready', registration: 'home', operator: 'Test Net', signal: 20 };
  private seq = 0;
  private readonly now: () => number;

  constructor(private readonly opts: FakeContextOptions = {}) {
    super();
    this.now = opts.now ?? (() => 1_700_000_000_000 + this.seq);
  }

  async submit(raw: RawSendRequest): Promise<SubmitResult> {
    this.received.push(raw);
    if (this.gate) await this.gate;
    if (this.failNext) {
      const err = this.failNext;
      this.failNext = undefined;
      throw err;
    }
    const id = raw.id === undefined ? `m${++this.seq}` : raw.id;
    if (typeof id !== 'string' || id === '') throw new RequestError('InvalidRequest', 'id must be a non-empty string');
    const known = this.records.get(id);
    if (known) return { record: known, created: false };

    const to = recipients(raw.to, 'to');
    const cc = recipients(raw.cc ?? [], 'cc');
    const bcc = recipients(raw.bcc ?? [], 'bcc');
    if (to.length + cc.length + bcc.length === 0) throw new RequestError('InvalidRecipient', 'no recipient');
    const subject = typeof raw.subject === 'string' ? raw.subject : '';
    if (Buffer.byteLength(subject) > 200) throw new RequestError('SubjectTooLong', 'subject over 200 bytes');
    const options = checkOptions(raw.options ?? {});
    const atts = Array.isArray(raw.attachments) ? (raw.attachments as Record<string, unknown>[]) : [];
    if (atts.length > 12) throw new RequestError('TooManyAttachments', `${atts.length} attachments, at most 12`);
    const loaded: { name: string; contentType: string; data: Buffer }[] = [];
    for (const a of atts) loaded.push(await this.load(a));
    const total = loaded.reduce((n, a) => n + a.data.length, 0);
    if (total > (this.opts.maxMessageBytes ?? 307200)) throw new RequestError('MessageTooLarge', `${total} bytes`);

    const now = this.now();
    const attachments = loaded.map((a, i) => ({
      name: a.name,
      contentType: a.contentType,
      size: a.data.length,
      sha256: createHash('sha256').update(a.data).digest('hex'),
      file: `${id}.${i}`,
    }));
    const record = newMessageRecord(id, { to, cc, bcc, subject, options }, attachments, now);
    this.records.set(id, record);
    this.attachmentData.set(id, loaded.map((a) => a.data));
    this.emit('added', record);
    return { record, created: true };
  }

  private async load(a: Record<string, unknown>): Promise<{ name: string; contentType: string; data: Buffer }> {
    const contentType = typeof a.contentType === 'string' ? a.contentType : 'application/octet-stream';
    if (Buffer.isBuffer(a.data)) return { name: String(a.name), contentType, data: a.data };
    if (typeof a.path !== 'string') throw new RequestError('InvalidRequest', 'attachment without data or path');
    const allowed = this.opts.allowedDirs ?? [];
    const inside = (p: string, dirs: string[]): boolean => dirs.some((d) => p.startsWith(d + sep));
    // Lexically first (so a missing file outside says NotAllowed), then after symlinks.
    if (!inside(resolvePath(a.path), allowed)) throw new RequestError('AttachmentNotAllowed', `${a.path} is outside the allowed dirs`);
    let real: string;
    try {
      real = await realpath(a.path);
    } catch {
      throw new RequestError('AttachmentNotFound', `${a.path} does not exist`);
    }
    const realAllowed = await Promise.all(allowed.map((d) => realpath(d).catch(() => d)));
    if (!inside(real, realAllowed)) throw new RequestError('AttachmentNotAllowed', `${a.path} resolves outside the allowed dirs`);
    return { name: real.split(sep).pop()!, contentType, data: await readFile(real) };
  }

  get(id: string): MessageRecord | undefined {
    return this.records.get(id);
  }

  list(): MessageRecord[] {
    return [...this.records.values()];
  }

  cancel(id: string): Promise<MessageRecord> {
    const r = this.records.get(id);
    if (!r) return Promise.reject(new RequestError('NotFound', `no message ${id}`));
    if (r.status !== 'queued' && r.status !== 'retrying') {
      return Promise.reject(new RequestError('NotCancellable', `message ${id} is ${r.status}`));
    }
    return Promise.resolve(this.patch(id, { status: 'cancelled' }));
  }

  modemStatus(): ModemStatus {
    return this.status;
  }

  queueLength(): number {
    return this.list().filter((r) => !['sent', 'failed', 'cancelled', 'unknown'].includes(r.status)).length;
  }

  // --- what a test drives ---

  patch(id: string, patch: Partial<MessageRecord>): MessageRecord {
    const r = this.records.get(id);
    if (!r) throw new Error(`no record ${id}`);
    const next = { ...r, ...patch, updated: r.updated + 1 };
    this.records.set(id, next);
    this.emit('changed', next);
    return next;
  }

  remove(id: string): void {
    this.records.delete(id);
    this.emit('removed', id);
  }

  setModemStatus(patch: Partial<ModemStatus>): void {
    this.status = { ...this.status, ...patch };
    this.emit('modemStatus', this.status);
  }
}

function recipients(v: unknown, field: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    throw new RequestError('InvalidRecipient', `${field} must be a list of addresses`);
  }
  if (v.length > 6) throw new RequestError('TooManyRecipients', `${v.length} ${field} addresses, at most 6`);
  for (const a of v) {
    if (a.length > 50 || !ADDRESS.test(a)) throw new RequestError('InvalidRecipient', `not an address: ${JSON.stringify(a)}`);
  }
  return v;
}

function checkOptions(raw: unknown): SendOptions {
  if (raw === null || typeof raw !== 'object') throw new RequestError('InvalidOption', 'options must be an object');
  for (const [k, v] of Object.entries(raw)) {
    const range = OPTION_RANGES[k];
    if (range === undefined) throw new RequestError('InvalidOption', `unknown option ${k}`);
    const ok = range === 'boolean' ? typeof v === 'boolean' : typeof v === 'number' && v >= range[0] && v <= range[1];
    if (!ok) throw new RequestError('InvalidOption', `option ${k} out of range`);
  }
  return raw;
}
