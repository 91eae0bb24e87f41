// For the sender's unit tests: the real outbox in memory and a scripted modem that record, in one
// shared trace, every call in the order it was made; plus a clock and sleep that run instantly.
import { pino } from 'pino';
import { TypedEmitter } from '../../src/core/events.js';
import { until } from '../../src/harness/wait.js';
import type { AttachmentInput, MessageRecord, SendRequest, Status } from '../../src/core/message.js';
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
import { Outbox } from '../../src/outbox/outbox.js';
import type { MessagePatch } from '../../src/outbox/types.js';
import { Sender, type ResultEvent, type SenderConfig, type SenderFitting, type Sleep } from '../../src/sender/sender.js';
import { MemoryStore } from './outbox-memory.js';

export interface PatchRecord {
  id: string;
  patch: MessagePatch;
  durable: boolean;
  at: number;
}

/**
 * The real Outbox over a store in memory, recording in the shared trace every update as it is
 * asked for (and each patch, for `history`). Its state machine holds: an illegal status change the
 * sender makes fails here as it would in the daemon.
 */
export class TracedOutbox extends Outbox {
  /** What the outbox keeps, in memory. */
  readonly memory: MemoryStore;
  readonly patches: PatchRecord[] = [];

  constructor(
    private readonly trace: string[],
    private readonly now: () => number,
  ) {
    const store = new MemoryStore();
    super({ dir: '(memory)', store, logger: pino({ level: 'silent' }), clock: now, retentionDays: 7 });
    this.memory = store;
  }

  override update(id: string, patch: MessagePatch, opts?: { durable?: boolean }): Promise<MessageRecord> {
    const durable = opts?.durable ?? true;
    this.patches.push({ id, patch: { ...patch }, durable, at: this.now() });
    this.trace.push(`outbox.update ${JSON.stringify(patch)}${durable ? '' : ' (not durable)'}`);
    return super.update(id, patch, opts);
  }

  override replaceAttachments(id: string, parts: readonly AttachmentInput[], adjustments: readonly string[]): Promise<MessageRecord> {
    this.trace.push(`outbox.replaceAttachments ${id} ${JSON.stringify(adjustments)}`);
    return super.replaceAttachments(id, parts, adjustments);
  }

  /**
   * A message as a restart would find it: submitted, then taken through `statuses` (each a legal
   * change) with `patch` at the last one; none of it in the trace.
   */
  async seed(req: Partial<SendRequest> & { id: string }, statuses: Status[] = [], patch: MessagePatch = {}): Promise<MessageRecord> {
    await super.submit({ to: ['+15550000001'], cc: [], bcc: [], subject: '', attachments: [], options: {}, ...req });
    let rec = this.get(req.id)!;
    for (const [i, status] of statuses.entries()) {
      rec = await super.update(req.id, { status, ...(i === statuses.length - 1 ? patch : {}) });
    }
    return rec;
  }

  /** The values a field took, in order, for one message (from the recorded patches). */
  history<K extends keyof MessagePatch>(id: string, key: K): Array<MessagePatch[K]> {
    return this.patches.filter((p) => p.id === id && key in p.patch).map((p) => p.patch[key]);
  }
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
    await this.session.useCharset(charset, () => this.call('setCharset', charset));
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
  await until(pred, timeoutMs, what, 2);
}

/** A promise with its resolver, for hooks that block until the test lets them go. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** The send parameters the sender's unit tests run with (DESIGN.md §5 defaults). */
export const DEFAULTS: SendParams = { validity: 6, priority: 3, deliveryReport: false, readReport: false, visibility: 2, class: 4 };

/** A sender over the traced outbox and the scripted modem, on the instant clock. */
export interface SenderRig {
  trace: string[];
  time: FakeTime;
  outbox: TracedOutbox;
  modem: FakeModem;
  sender: Sender;
  results: ResultEvent[];
  status: (id?: string) => string | undefined;
  until: (status: string, id?: string) => Promise<void>;
}

const rigs: SenderRig[] = [];

/** Builds a rig; `stopSenderRigs()` (in an afterEach) stops every rig built since. */
export async function senderRig(
  opts: { config?: Partial<SenderConfig>; logger?: SenderRigLogger; fitting?: SenderFitting } = {},
): Promise<SenderRig> {
  const trace: string[] = [];
  const time = new FakeTime();
  const outbox = new TracedOutbox(trace, time.clock);
  await outbox.start();
  const modem = new FakeModem(trace, DEFAULTS);
  const sender = new Sender({
    outbox,
    modem,
    logger: opts.logger ?? pino({ level: 'silent' }),
    clock: time.clock,
    sleep: time.sleep,
    config: { maxAttempts: 5, sendTimeoutS: 300, charset: 'UTF8', defaults: DEFAULTS, ...opts.config },
    ...(opts.fitting ? { fitting: opts.fitting } : {}),
  });
  const results: ResultEvent[] = [];
  sender.on('result', (r) => results.push(r));
  const status = (id = 'm1'): string | undefined => outbox.get(id)?.status;
  const until = (st: string, id = 'm1'): Promise<void> => waitFor(() => status(id) === st, `${id} ${st}`);
  const r = { trace, time, outbox, modem, sender, results, status, until };
  rigs.push(r);
  return r;
}

type SenderRigLogger = ConstructorParameters<typeof Sender>[0]['logger'];

export async function stopSenderRigs(): Promise<void> {
  const all = rigs.splice(0);
  await Promise.all(all.map((r) => r.sender.stop()));
  await Promise.all(all.map((r) => r.outbox.stop()));
}
