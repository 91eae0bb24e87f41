// An in-memory FrontDoorContext for the front doors' tests (D-Bus and MQTT): requests go through
// the daemon's own validateRequest, as in Daemon.submit, then into a map that emits
// 'added'/'changed'/'removed' like the outbox; a test drives messages and the modem status.
import { createHash } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { RequestError } from '../../src/core/errors.js';
import { isFinal, newMessageRecord, RESENDABLE_STATUSES, type MessageRecord, type RawSendRequest } from '../../src/core/message.js';
import { resendId, validateRequest } from '../../src/core/validate.js';
import type { FrontDoorContext, FrontDoorEvents } from '../../src/api/types.js';
import { TypedEmitter } from '../../src/core/events.js';
import type { CarrierReport } from '../../src/core/carrier.js';
import type { ReceivedRecord } from '../../src/core/inbound.js';
import type { ModemIdentity, ModemStatus } from '../../src/core/status.js';
import type { SubmitResult } from '../../src/outbox/types.js';

export interface FakeContextOptions {
  /** `attachments.allowedDirs` (none by default: path attachments are refused). */
  allowedDirs?: string[];
  /** `mms.maxMessageBytes` (the default 307,200 by default). */
  maxMessageBytes?: number;
  /** Runs inside submit() after the request was recorded, before anything is stored (a slow disk, a failure). */
  beforeSubmit?: (raw: RawSendRequest) => Promise<void>;
  /** Drive every new message queued → sending → sent on its own. */
  autoSend?: boolean;
}

export type ReceivedAttachment = { name: string; contentType: string; data: Buffer };

export class FakeContext extends TypedEmitter<FrontDoorEvents> implements FrontDoorContext {
  readonly version = '0.0.0-test';
  readonly maxAttempts = 5;
  readonly logger: Logger = pino({ level: 'silent' });
  readonly records = new Map<string, MessageRecord>();
  /** Every raw request submit() received, valid or not, in order. */
  readonly received: RawSendRequest[] = [];
  /** The attachments of each created message, as validated. */
  readonly attachments = new Map<string, ReceivedAttachment[]>();
  /** When set, the next submit() throws it (to exercise error mapping). */
  failNext: Error | undefined;
  /** Runs inside submit() after the request was recorded (options.beforeSubmit; a test may set it later). */
  beforeSubmit: ((raw: RawSendRequest) => Promise<void>) | undefined;
  status: ModemStatus = { state: 'ready', registration: 'home', operator: 'Test Net', signal: 20 };
  identity: ModemIdentity | undefined = { imei: '866758040000001', manufacturer: 'Quectel', model: 'EC25', firmware: 'EC25EFAR06A11M4G' };
  carrierReport: CarrierReport = {
    source: 'database',
    provider: 'LUXGSM (270-01)',
    mccMnc: '270-01',
    apn: 'mms.pt.lu',
    mmsc: 'http://mmsc.pt.lu',
    proxy: '194.154.192.88:8080',
    maxMessageBytes: 307200,
    candidates: [{ provider: 'LUXGSM (270-01)', apn: 'mms.pt.lu', mmsc: 'http://mmsc.pt.lu', configLine: '"carrier": {"provider": "LUXGSM (270-01)"}' }],
    reason: 'LUXGSM (270-01) is the only provider of 270-01 with an MMSC',
    configKeys: [],
  };
  private seq = 0;
  private now = 1_700_000_000_000;

  constructor(private readonly opts: FakeContextOptions = {}) {
    super();
    this.beforeSubmit = opts.beforeSubmit;
  }

  async submit(raw: RawSendRequest): Promise<SubmitResult> {
    this.received.push(raw);
    if (this.beforeSubmit) await this.beforeSubmit(raw);
    if (this.failNext) {
      const err = this.failNext;
      this.failNext = undefined;
      throw err;
    }
    const req = await validateRequest(raw, {
      maxMessageBytes: this.opts.maxMessageBytes ?? 307_200,
      allowedDirs: this.opts.allowedDirs ?? [],
    });
    const id = req.id ?? `m${++this.seq}`;
    const known = this.records.get(id);
    if (known) return { record: { ...known }, created: false };
    const meta = req.attachments.map((a, i) => ({
      name: a.name,
      contentType: a.contentType,
      size: a.data.length,
      sha256: createHash('sha256').update(a.data).digest('hex'),
      file: `${id}.${i}`,
    }));
    const record = newMessageRecord(id, req, meta, this.tick());
    this.records.set(id, record);
    this.attachments.set(
      id,
      req.attachments.map((a) => ({ name: a.name, contentType: a.contentType, data: a.data })),
    );
    this.emit('added', { ...record });
    if (this.opts.autoSend) {
      setImmediate(() => {
        this.patch(id, { status: 'sending', attempts: 1, progress: 0.5 });
        setImmediate(() => this.patch(id, { status: 'sent', progress: 1 }));
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
    if (r.status !== 'queued' && r.status !== 'retrying') {
      throw new RequestError('NotCancellable', `message ${id} is ${r.status}`);
    }
    return this.patch(id, { status: 'cancelled' });
  }

  /** Like Daemon.resend: the kept parts (a test deletes `attachments` entries to lose them) through submit(). */
  async resend(id: string, newId?: string): Promise<SubmitResult> {
    const r = this.records.get(id);
    if (!r) throw new RequestError('NotFound', `no message ${id}`);
    if (!RESENDABLE_STATUSES.has(r.status)) throw new RequestError('NotResendable', `message ${id} is ${r.status}`);
    const parts = this.attachments.get(id);
    if (!parts) throw new RequestError('NotResendable', `the attachments of message ${id} are no longer in the spool`);
    return this.submit({
      id: newId ?? resendId(id, (c) => this.records.has(c)),
      to: r.to,
      cc: r.cc,
      bcc: r.bcc,
      subject: r.subject,
      attachments: parts.map((a) => ({ ...a })),
      options: r.options,
    });
  }

  /** Received messages a test puts with putReceived(). */
  readonly inbox = new Map<string, ReceivedRecord>();

  listReceived(): ReceivedRecord[] {
    return [...this.inbox.values()].map((r) => structuredClone(r));
  }

  getReceived(id: string): ReceivedRecord | undefined {
    const r = this.inbox.get(id);
    return r && structuredClone(r);
  }

  async retrieveReceived(id: string): Promise<ReceivedRecord> {
    await Promise.resolve();
    const r = this.inbox.get(id);
    if (!r) throw new RequestError('NotFound', `no received message ${id}`);
    if (r.status !== 'notified' && r.status !== 'failed') throw new RequestError('NotRetrievable', `received message ${id} is ${r.status}`);
    return this.putReceived({ ...r, status: 'notified' });
  }

  async deleteReceived(id: string): Promise<void> {
    await Promise.resolve();
    if (!this.inbox.delete(id)) throw new RequestError('NotFound', `no received message ${id}`);
    this.emit('receivedRemoved', id);
  }

  /** Stores (or changes) a received message and emits 'received'. */
  putReceived(r: ReceivedRecord): ReceivedRecord {
    this.inbox.set(r.id, structuredClone(r));
    this.emit('received', structuredClone(r));
    return structuredClone(r);
  }

  modemStatus(): ModemStatus {
    return { ...this.status };
  }

  carrier(): CarrierReport {
    return structuredClone(this.carrierReport);
  }

  modemIdentity(): ModemIdentity | undefined {
    return this.identity && { ...this.identity };
  }

  queueLength(): number {
    return [...this.records.values()].filter((r) => !isFinal(r.status)).length;
  }

  // --- what a test drives ---

  /** Changes a message and emits 'changed'. */
  patch(id: string, patch: Partial<MessageRecord>): MessageRecord {
    const r = this.records.get(id);
    if (!r) throw new Error(`no record ${id}`);
    const next = { ...r, ...patch, updated: this.tick() };
    this.records.set(id, next);
    this.emit('changed', { ...next });
    return { ...next };
  }

  /** Forgets a message (retention) and emits 'removed' with its id. */
  remove(id: string): void {
    this.records.delete(id);
    this.emit('removed', id);
  }

  setCarrier(patch: Partial<CarrierReport>): void {
    this.carrierReport = { ...this.carrierReport, ...patch };
    this.emit('carrier', this.carrier());
  }

  setModemIdentity(identity: ModemIdentity): void {
    this.identity = { ...identity };
    this.emit('modemIdentity', { ...identity });
  }

  setModemStatus(patch: Partial<ModemStatus>): void {
    this.status = { ...this.status, ...patch };
    this.emit('modemStatus', { ...this.status });
  }

  private tick(): number {
    this.now += 1;
    return this.now;
  }
}
