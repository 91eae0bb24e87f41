// Fakes for the sender's unit tests: an in-memory outbox and a scripted modem that record, in
// one shared trace, every call in the order it was made; plus a clock and sleep that run instantly.
import { EventEmitter } from 'node:events';
import { TypedEmitter } from '../../src/core/events.js';
import type { MessageRecord, SendRequest } from '../../src/core/message.js';
import {
  SendNotAcceptedError,
  type Charset,
  type ModemApi,
  type ModemEvents,
  type ModemStatus,
  type RamSpace,
  type SendParams,
  type SendResult,
} from '../../src/modem/types.js';
import { ModuleSession } from '../../src/modem/session.js';
import { byQueueOrder } from '../../src/outbox/outbox.js';
import type { MessagePatch, OutboxApi, SubmitResult } from '../../src/outbox/types.js';
import type { Sleep } from '../../src/sender/sender.js';

export interface PatchRecord {
  id: string;
  patch: MessagePatch;
  durable: boolean;
  at: number;
}

export class FakeOutbox extends EventEmitter implements OutboxApi {
  readonly records = new Map<string, MessageRecord>();
  readonly data = new Map<string, Buffer[]>();
  readonly patches: PatchRecord[] = [];
  private seq = 0;

  constructor(
    private readonly trace: string[],
    private readonly clock: () => number,
  ) {
    super();
  }

  /** Puts a record in as it would be after a restart (no 'added' event). */
  seed(rec: Partial<MessageRecord> & { id: string }, data: Buffer[] = []): MessageRecord {
    const full: MessageRecord = {
      status: 'queued',
      to: ['+15550000001'],
      cc: [],
      bcc: [],
      subject: '',
      attachments: [],
      options: {},
      attempts: 0,
      progress: 0,
      created: this.clock() + this.seq++,
      updated: this.clock(),
      ramFiles: [],
      sendAccepted: false,
      ...rec,
    };
    this.records.set(full.id, full);
    this.data.set(full.id, data);
    return copy(full);
  }

  submit(req: SendRequest): Promise<SubmitResult> {
    const id = req.id ?? `msg-${this.seq + 1}`;
    const known = this.records.get(id);
    if (known) return Promise.resolve({ record: copy(known), created: false });
    const rec = this.seed(
      {
        id,
        to: req.to,
        cc: req.cc,
        bcc: req.bcc,
        subject: req.subject,
        options: req.options,
        attachments: req.attachments.map((a, i) => ({
          name: a.name,
          contentType: a.contentType,
          size: a.data.length,
          sha256: '',
          file: `${id}.${i}`,
        })),
      },
      req.attachments.map((a) => a.data),
    );
    this.trace.push(`outbox.submit ${id}`);
    this.emit('added', rec);
    return Promise.resolve({ record: rec, created: true });
  }

  get(id: string): MessageRecord | undefined {
    const r = this.records.get(id);
    return r && copy(r);
  }

  list(): MessageRecord[] {
    return [...this.records.values()].map(copy);
  }

  cancel(id: string): Promise<MessageRecord> {
    const r = this.records.get(id);
    if (!r) return Promise.reject(new Error('NotFound'));
    if (r.status !== 'queued' && r.status !== 'retrying') return Promise.reject(new Error('NotCancellable'));
    r.status = 'cancelled';
    this.trace.push(`outbox.cancel ${id}`);
    this.emit('changed', copy(r));
    return Promise.resolve(copy(r));
  }

  next(now: number): MessageRecord | undefined {
    const due = [...this.records.values()]
      .filter((r) => r.status === 'queued' || (r.status === 'retrying' && (r.notBefore ?? 0) <= now))
      .sort(byQueueOrder);
    return due[0] && copy(due[0]);
  }

  nextDueAt(): number | undefined {
    const due = [...this.records.values()]
      .filter((r) => r.status === 'retrying')
      .map((r) => r.notBefore ?? 0);
    return due.length ? Math.min(...due) : undefined;
  }

  update(id: string, patch: MessagePatch, opts?: { durable?: boolean }): Promise<MessageRecord> {
    const r = this.records.get(id);
    if (!r) return Promise.reject(new Error(`NotFound ${id}`));
    const durable = opts?.durable ?? true;
    this.patches.push({ id, patch: { ...patch }, durable, at: this.clock() });
    this.trace.push(`outbox.update ${JSON.stringify(patch)}${durable ? '' : ' (not durable)'}`);
    // As the outbox: back to the queue uncounted stamps the time, which orders it behind the others
    // (on the fake's own time line, where each record's `created` is the clock plus a sequence).
    if (r.status === 'sending' && patch.status === 'queued') r.requeuedAt = this.clock() + this.seq++;
    const target = r as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) delete target[k];
      else target[k] = Array.isArray(v) ? [...(v as unknown[])] : v;
    }
    r.updated = this.clock();
    const out = copy(r);
    this.emit('changed', out);
    return Promise.resolve(copy(r));
  }

  readAttachment(id: string, index: number): Promise<Buffer> {
    const b = this.data.get(id)?.[index];
    return b ? Promise.resolve(b) : Promise.reject(new Error(`no attachment ${id}/${index}`));
  }

  queueLength(): number {
    return [...this.records.values()].filter((r) => !['sent', 'failed', 'cancelled', 'unknown'].includes(r.status))
      .length;
  }

  /** The values a field took, in order, for one message (from the recorded patches). */
  history<K extends keyof MessagePatch>(id: string, key: K): Array<MessagePatch[K]> {
    return this.patches.filter((p) => p.id === id && key in p.patch).map((p) => p.patch[key]);
  }
}

function copy(r: MessageRecord): MessageRecord {
  return { ...r, ramFiles: [...r.ramFiles], attachments: r.attachments.map((a) => ({ ...a })) };
}

/** One scripted outcome of `send`: a result, or an error thrown before/after it was accepted. */
export type SendStep = SendResult | SendNotAcceptedError | Error;

type Hook = (...args: unknown[]) => void | Promise<void>;

export class FakeModem extends TypedEmitter<ModemEvents> implements ModemApi {
  status: ModemStatus = { state: 'ready', registration: 'home', operator: 'Test', signal: 20 };
  /** Every command, as "op arg arg", in order. */
  readonly calls: string[] = [];
  /** The module's RAM: name → size. */
  readonly ram = new Map<string, number>();
  /** Results of the next sends; when empty, `{ err: 0, httpStatus: 200 }`. */
  readonly sendScript: SendStep[] = [];
  /** Called before a command does its work; may throw or block. Keyed by op name. */
  readonly hooks: Partial<Record<string, Hook>> = {};
  /** Upload progress is reported per block of this size. */
  blockSize = 1024;
  /** The RAM drive's size (AT+QFLDS="RAM" answers it, less the files in `ram`). */
  ramTotal = 10_000_000;
  whenReadyWaiting = 0;
  /** The real session, kept as the driver keeps it (the sendparam and the epoch are read from it). */
  readonly session = new ModuleSession();

  constructor(
    private readonly trace: string[],
    /** The configured sendparam, which the driver's bring-up puts in force. */
    private readonly defaults: SendParams,
  ) {
    super();
    this.bringUp();
  }

  /** As the health monitor after a bring-up: every setting in, the configured sendparam in force. */
  private bringUp(): void {
    void this.session.writeSendParams(this.defaults, () => Promise.resolve());
    this.session.mmsApplied(undefined);
  }

  setState(state: ModemStatus['state']): void {
    this.status = { ...this.status, state };
    this.emit('status', this.status);
  }

  /** A module restart that the driver announces; `keepRam` models a port that came back. */
  reboot(keepRam = false): void {
    if (!keepRam) this.ram.clear();
    this.session.reset();
    this.bringUp();
    this.emit('rebooted');
  }

  whenReady(signal?: AbortSignal): Promise<void> {
    if (this.status.state === 'ready') return Promise.resolve();
    this.whenReadyWaiting += 1;
    return new Promise<void>((resolve, reject) => {
      const onStatus = (s: ModemStatus): void => {
        if (s.state !== 'ready') return;
        done();
        resolve();
      };
      const onAbort = (): void => {
        done();
        reject(new Error('aborted'));
      };
      const done = (): void => {
        this.whenReadyWaiting -= 1;
        this.off('status', onStatus);
        signal?.removeEventListener('abort', onAbort);
      };
      this.on('status', onStatus);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private async call(op: string, ...args: unknown[]): Promise<void> {
    const line = [op, ...args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a)))].join(' ');
    this.calls.push(line);
    this.trace.push(`modem.${line}`);
    await this.hooks[op]?.(...args);
  }

  async mmsClear(): Promise<void> {
    await this.call('mmsClear');
  }
  async setCharset(charset: Charset): Promise<void> {
    await this.call('setCharset', charset);
  }
  async setSendParams(p: SendParams): Promise<void> {
    await this.session.writeSendParams(p, () => this.call('setSendParams', p));
  }
  async addRecipient(kind: 'to' | 'cc' | 'bcc', address: string): Promise<void> {
    await this.call('addRecipient', kind, address);
  }
  async setSubject(subject: string, charset: Charset): Promise<void> {
    await this.call('setSubject', subject, charset);
  }
  async addAttachment(ramName: string): Promise<void> {
    await this.call('addAttachment', ramName);
  }
  async uploadFile(ramName: string, data: Buffer, onProgress?: (sent: number, total: number) => void): Promise<void> {
    await this.call('uploadFile', ramName, data.length);
    if (this.ram.has(ramName)) throw new Error(`file exists: ${ramName}`);
    for (let sent = 0; sent < data.length; ) {
      sent = Math.min(sent + this.blockSize, data.length);
      onProgress?.(sent, data.length);
    }
    this.ram.set(ramName, data.length);
  }
  async listFiles(): Promise<Map<string, number>> {
    await this.call('listFiles');
    return new Map(this.ram);
  }
  async ramSpace(): Promise<RamSpace> {
    await this.call('ramSpace');
    const used = [...this.ram.values()].reduce((sum, size) => sum + size, 0);
    return { free: Math.max(0, this.ramTotal - used), total: this.ramTotal };
  }
  async deleteFile(ramName: string): Promise<void> {
    await this.call('deleteFile', ramName);
    this.ram.delete(ramName);
  }
  async send(timeoutS: number, onAccepted: (resultWaitMs: number) => Promise<void>): Promise<SendResult> {
    await this.call('send', timeoutS);
    const step = this.sendScript.shift() ?? { err: 0, httpStatus: 200 };
    if (step instanceof SendNotAcceptedError) throw step;
    await onAccepted((timeoutS + 30) * 1000);
    this.trace.push('modem.accepted');
    await this.hooks['result']?.();
    if (step instanceof Error) throw step;
    return step;
  }
  async reactivatePdp(): Promise<void> {
    await this.call('reactivatePdp');
  }

  count(prefix: string): number {
    return this.calls.filter((c) => c === prefix || c.startsWith(prefix + ' ')).length;
  }
}

/** A clock that moves only when the sender sleeps; sleeps end at once (Infinity: on abort). */
export class FakeTime {
  now = 1_700_000_000_000;
  readonly sleeps: number[] = [];
  /** True while the sender waits with nothing due (an idle wait without a timer). */
  idle = false;
  /** While true, finite sleeps too last until aborted (to observe a message while it waits). */
  hold = false;

  readonly clock = (): number => this.now;

  readonly sleep: Sleep = async (ms, signal) => {
    this.sleeps.push(ms);
    if (!Number.isFinite(ms) || this.hold) {
      this.idle = !Number.isFinite(ms);
      await new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        else signal.addEventListener('abort', () => resolve(), { once: true });
      });
      this.idle = false;
      return;
    }
    this.now += ms;
    await new Promise<void>((resolve) => setImmediate(resolve));
  };
}

/** Polls `pred` until it holds or the deadline passes. */
export async function waitFor(pred: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A promise with its resolver, for hooks that block until the test lets them go. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
