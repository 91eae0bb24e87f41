// The receiver (DESIGN.md §12 "Received messages"): stores each M-Notification.ind durably, fetches
// the message through a port the daemon wires to the modem (one job per hold of the modem lock, so
// sends and fetches alternate), decodes the M-Retrieve.conf, keeps its parts in the inbox, then
// posts M-NotifyResp.ind (retrieved); back-off, expiry and failure as §12 says.
import type { Logger } from 'pino';
import { RequestError } from '../core/errors.js';
import { TypedEmitter } from '../core/events.js';
import type { ReceivedRecord } from '../core/inbound.js';
import { encodeNotifyRespInd } from '../mms/notification.js';
import { RETRIEVE_OK, decodeRetrieveConf, retrieveStatusName } from '../mms/retrieve.js';
import { MmsDecodeError, type NotificationInd, type RetrieveConf } from '../mms/types.js';
import type { Inbox, InboxEntry, PartData } from './inbox.js';
import { uniquePartNames } from './part-names.js';

/**
 * What the receiver needs of the modem, wired by the daemon (src/inbound may not import src/modem):
 * the driver's fetch and post with the carrier's proxy and MMSC filled in. A rejection whose
 * `permanent` is true (HTTP 4xx, MessageTooLarge, a URL the driver refuses) ends the message
 * `failed`; any other is retried with back-off.
 */
export interface ReceiverPort {
  /** GET the content location; the body, at most `maxBytes`. */
  fetch(contentLocation: string, opts: { maxBytes: number }): Promise<Buffer>;
  /** POST an MMS PDU (M-NotifyResp.ind) to the MMSC. */
  post(pdu: Buffer): Promise<void>;
}

/** The receiver's clock: wall time and timers (test/unit/manual-clock.ts in tests). */
export interface ReceiverClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface ReceiverOptions {
  inbox: Inbox;
  port: ReceiverPort;
  logger: Logger;
  /** `inbound.autoRetrieve`: fetch as soon as notified; otherwise only on retrieve(). */
  autoRetrieve: boolean;
  /** `inbound.maxMessageBytes`: larger messages are not fetched (`failed`, MessageTooLarge). */
  maxMessageBytes: number;
  clock?: ReceiverClock;
  /**
   * Runs one modem job holding the modem lock the sender holds for each send (the daemon passes
   * `fn => modem.withLock(fn)`). The receiver queues at most one job at a time, so a FIFO lock
   * makes sends and fetches alternate.
   */
  exclusive?: <T>(fn: () => Promise<T>) => Promise<T>;
  /** The back-off after the 1st, 2nd, … failure (the last repeats); BACKOFF_MS by default. */
  retryDelaysMs?: readonly number[];
  /** Expiry of a notification that names none (ms after its arrival); 7 days by default. */
  defaultExpiryMs?: number;
}

/** §12: 1 min, 5 min, 30 min, then hourly. */
export const BACKOFF_MS: readonly number[] = [60_000, 300_000, 1_800_000, 3_600_000];

export function backoffMs(failures: number, delays: readonly number[] = BACKOFF_MS): number {
  return delays[Math.min(Math.max(failures, 1), delays.length) - 1];
}

const systemClock: ReceiverClock = {
  now: Date.now,
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** The longest a timer is set for (Node's limit is 2^31-1 ms); later work is looked at again then. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** An error as a record keeps it. */
function errorOf(name: string, message: string): { name: string; message: string } {
  return { name, message };
}

/** Whether no retry can help: the port said so, or the driver refused the URL. */
function isPermanent(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { permanent?: unknown; name?: unknown };
  return e.permanent === true || e.name === 'InvalidArgumentError';
}

function describe(err: unknown): { name: string; message: string } {
  return err instanceof Error ? errorOf(err.name, err.message) : errorOf('Error', String(err));
}

type Job = { kind: 'fetch'; id: string } | { kind: 'post'; id: string };

export interface ReceiverEvents {
  /** After every change of a received message, durable. */
  received: [record: ReceivedRecord];
  /** After one was deleted (by delete() or retention). */
  receivedRemoved: [id: string];
}

export class Receiver extends TypedEmitter<ReceiverEvents> {
  private readonly inbox: Inbox;
  private readonly port: ReceiverPort;
  private readonly log: Logger;
  private readonly autoRetrieve: boolean;
  private readonly maxMessageBytes: number;
  private readonly clock: ReceiverClock;
  private readonly exclusive: <T>(fn: () => Promise<T>) => Promise<T>;
  private readonly defaultExpiryMs: number;
  private readonly retryDelaysMs: readonly number[];
  /** Asked for by retrieve() while `inbound.autoRetrieve` is off (a failed fetch keeps trying by its attempts). */
  private readonly requested = new Set<string>();
  private timer: unknown;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = true;
  /** What the doors last heard of each message: a change of the inbox's own fields alone is no news. */
  private readonly told = new Map<string, string>();
  private readonly onChanged = (e: InboxEntry): void => {
    const json = JSON.stringify(e.record);
    if (this.told.get(e.record.id) === json) return;
    this.told.set(e.record.id, json);
    this.emit('received', e.record);
  };
  private readonly onRemoved = (id: string): void => {
    this.requested.delete(id);
    this.told.delete(id);
    this.emit('receivedRemoved', id);
  };

  constructor(o: ReceiverOptions) {
    super();
    this.inbox = o.inbox;
    this.port = o.port;
    this.log = o.logger.child({ part: 'receiver' });
    this.autoRetrieve = o.autoRetrieve;
    this.maxMessageBytes = o.maxMessageBytes;
    this.clock = o.clock ?? systemClock;
    this.exclusive = o.exclusive ?? ((fn) => fn());
    this.defaultExpiryMs = o.defaultExpiryMs ?? 7 * 24 * 60 * 60 * 1000;
    this.retryDelaysMs = o.retryDelaysMs !== undefined && o.retryDelaysMs.length > 0 ? o.retryDelaysMs : BACKOFF_MS;
  }

  /** Loads the inbox (recovering a crash) and takes up the work left. */
  async start(): Promise<void> {
    await this.inbox.start();
    this.inbox.on('changed', this.onChanged);
    this.inbox.on('removed', this.onRemoved);
    this.stopped = false;
    this.kick();
  }

  /** Stops scheduling; waits for the job in hand (a fetch cut by the daemon's exit is recovered at start). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clearTimer();
    await this.running;
    this.inbox.off('changed', this.onChanged);
    this.inbox.off('removed', this.onRemoved);
    await this.inbox.stop();
  }

  /** Resolves once no job is in hand (the work due now is done; later work waits for its timer). */
  async whenIdle(): Promise<void> {
    while (this.running) await this.running;
  }

  get(id: string): ReceivedRecord | undefined {
    return this.inbox.get(id)?.record;
  }

  list(): ReceivedRecord[] {
    return this.inbox.list().map((e) => e.record);
  }

  /**
   * Takes an M-Notification.ind: resolves once it is durable (`notified`), after which its SMS may
   * be deleted. The same notification again is the same entry, fetched once.
   */
  async notify(n: NotificationInd): Promise<ReceivedRecord> {
    const now = this.clock.now();
    const expiry =
      n.expiry === undefined ? now + this.defaultExpiryMs : 'relative' in n.expiry ? now + n.expiry.relative * 1000 : n.expiry.absolute * 1000;
    const { entry, created } = await this.inbox.add({
      transactionId: n.transactionId,
      contentLocation: n.contentLocation,
      mmsVersion: n.mmsVersion,
      from: n.from ?? '',
      subject: n.subject ?? '',
      size: n.messageSize ?? 0,
      expiry,
    });
    if (!created) this.log.info({ id: entry.record.id }, 'the same notification again: one entry');
    else this.kick();
    return entry.record;
  }

  /** Retrieve() (§12): fetch a `notified` or `failed` message now. */
  async retrieve(id: string): Promise<ReceivedRecord> {
    const e = this.inbox.get(id);
    if (!e) throw new RequestError('NotFound', `no received message with id ${JSON.stringify(id)}`);
    if (e.record.status !== 'notified' && e.record.status !== 'failed') {
      throw new RequestError('NotRetrievable', `received message ${id} is ${e.record.status}; only notified or failed ones can be retrieved`);
    }
    this.requested.add(id);
    const next = await this.inbox.update(id, { status: 'notified', attempts: 0, notBefore: undefined, error: undefined });
    this.kick();
    return next.record;
  }

  /** Delete() (§12): the record and the files, at once. */
  async delete(id: string): Promise<void> {
    await this.inbox.delete(id);
  }

  // ---- scheduling ----

  private kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.clearTimer();
    this.running = this.loop()
      .catch((err: unknown) => {
        // Stopping ends the wait for the modem: no failure.
        if (this.stopped) this.log.debug({ err }, 'receiver loop ended by stop');
        else this.log.error({ err }, 'receiver loop failed');
      })
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        } else {
          this.arm();
        }
      });
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      this.again = false;
      await this.expireDue(this.clock.now());
      const job = this.nextJob(this.clock.now());
      if (!job) return;
      // One job per hold of the modem lock: a send waiting for it goes next.
      await this.exclusive(() => this.run(job));
    }
  }

  private wanted(e: InboxEntry): boolean {
    return this.autoRetrieve || e.attempts > 0 || this.requested.has(e.record.id);
  }

  private nextJob(now: number): Job | undefined {
    const entries = this.inbox.list();
    const post = entries.find((e) => e.notifyRespPending && (e.notBefore ?? 0) <= now);
    if (post) return { kind: 'post', id: post.record.id };
    const fetch = entries.find((e) => e.record.status === 'notified' && this.wanted(e) && (e.notBefore ?? 0) <= now && e.record.expiry > now);
    return fetch ? { kind: 'fetch', id: fetch.record.id } : undefined;
  }

  /** §12: a notification not fetched by its expiry is `expired`; a NotifyResp is not posted past it. */
  private async expireDue(now: number): Promise<void> {
    for (const e of this.inbox.list()) {
      if (e.record.expiry > now) continue;
      if (e.record.status === 'notified') {
        await this.inbox.update(e.record.id, {
          status: 'expired',
          notBefore: undefined,
          error: errorOf('Expired', 'the notification expired before the message could be fetched'),
        });
        this.requested.delete(e.record.id);
        this.log.warn({ id: e.record.id, attempts: e.attempts }, 'notification expired');
      } else if (e.notifyRespPending) {
        await this.inbox.update(e.record.id, { notifyRespPending: false, notBefore: undefined });
        this.log.warn({ id: e.record.id }, 'M-NotifyResp.ind never taken before the expiry: given up');
      }
    }
  }

  /** The timer for the earliest work that is not due yet. */
  private arm(): void {
    if (this.stopped) return;
    const now = this.clock.now();
    let at: number | undefined;
    for (const e of this.inbox.list()) {
      const times: number[] = [];
      if (e.notifyRespPending) times.push(e.notBefore ?? now, e.record.expiry);
      if (e.record.status === 'notified') {
        times.push(e.record.expiry);
        if (this.wanted(e)) times.push(e.notBefore ?? now);
      }
      for (const t of times) if (at === undefined || t < at) at = t;
    }
    if (at === undefined) return;
    this.clearTimer();
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.kick();
    }, Math.min(Math.max(0, at - now), MAX_TIMER_MS));
  }

  private clearTimer(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  // ---- the jobs ----

  private async run(job: Job): Promise<void> {
    try {
      if (job.kind === 'post') await this.postNotifyResp(job.id);
      else await this.fetch(job.id);
    } catch (err) {
      // The entry was deleted under the job, or the disk failed: the job ends, the loop goes on.
      if (this.inbox.get(job.id)) this.log.error({ err, id: job.id, job: job.kind }, 'receiver job failed');
      else this.log.info({ id: job.id }, 'deleted while being worked on');
    }
  }

  private async fetch(id: string): Promise<void> {
    const e = this.inbox.get(id);
    const now = this.clock.now();
    if (!e || e.record.status !== 'notified' || (e.notBefore ?? 0) > now) return;
    // §12: not fetched at all when the notification says it is too large.
    if (e.record.size > this.maxMessageBytes) {
      await this.fail(id, errorOf('MessageTooLarge', `the message is ${e.record.size} bytes, more than inbound.maxMessageBytes (${this.maxMessageBytes})`));
      return;
    }
    await this.inbox.update(id, { status: 'retrieving' });
    let body: Buffer;
    try {
      body = await this.port.fetch(e.contentLocation, { maxBytes: this.maxMessageBytes });
      if (body.length > this.maxMessageBytes) {
        throw Object.assign(new Error(`the message is ${body.length} bytes, more than inbound.maxMessageBytes (${this.maxMessageBytes})`), {
          name: 'MessageTooLarge',
          permanent: true,
        });
      }
    } catch (err) {
      if (isPermanent(err)) await this.fail(id, describe(err));
      else await this.retryLater(id, err);
      return;
    }

    let conf: RetrieveConf;
    try {
      conf = decodeRetrieveConf(body);
    } catch (err) {
      if (!(err instanceof MmsDecodeError)) throw err;
      await this.fail(id, errorOf(err.name, err.message));
      return;
    }
    if (conf.retrieveStatus !== undefined && conf.retrieveStatus !== RETRIEVE_OK) {
      const name = retrieveStatusName(conf.retrieveStatus);
      await this.fail(id, errorOf(name, conf.retrieveText ?? `the MMSC answered X-Mms-Retrieve-Status ${name}`));
      return;
    }

    const names = uniquePartNames(conf.parts.map((p) => ({ raw: p.contentLocation ?? p.name ?? p.filename ?? stripId(p.contentId), contentType: p.contentType })));
    const parts: PartData[] = conf.parts.map((p, i) => ({
      name: names[i],
      contentType: p.contentType,
      ...(p.charset === undefined ? {} : { charset: p.charset }),
      data: p.data,
    }));
    await this.inbox.receive(
      id,
      {
        from: conf.from ?? e.record.from,
        to: conf.to,
        cc: conf.cc,
        subject: conf.subject ?? e.record.subject,
        date: conf.date === undefined ? e.record.date : conf.date * 1000,
        ...(conf.messageId === undefined ? {} : { messageId: conf.messageId }),
      },
      parts,
    );
    this.requested.delete(id);
    // §12: only now, with the files on disk, is the MMSC told; in the same hold of the modem.
    await this.postNotifyResp(id);
  }

  private async postNotifyResp(id: string): Promise<void> {
    const e = this.inbox.get(id);
    if (!e?.notifyRespPending) return;
    const pdu = encodeNotifyRespInd({ transactionId: e.transactionId, mmsVersion: e.mmsVersion, status: 'retrieved' });
    try {
      await this.port.post(pdu);
    } catch (err) {
      // §12: a failed post is retried, never a refetch.
      const failures = e.attempts + 1;
      await this.inbox.update(id, { attempts: failures, notBefore: this.clock.now() + backoffMs(failures, this.retryDelaysMs) });
      this.log.warn({ id, err, attempts: failures }, 'M-NotifyResp.ind not taken; trying again later');
      return;
    }
    await this.inbox.update(id, { notifyRespPending: false, attempts: 0, notBefore: undefined });
    this.log.info({ id }, 'M-NotifyResp.ind posted');
  }

  private async fail(id: string, error: { name: string; message: string }): Promise<void> {
    this.requested.delete(id);
    await this.inbox.update(id, { status: 'failed', notBefore: undefined, error });
    this.log.warn({ id, error: error.name, reason: error.message }, 'received message failed');
  }

  private async retryLater(id: string, err: unknown): Promise<void> {
    const e = this.inbox.get(id);
    if (!e) return;
    const failures = e.attempts + 1;
    const notBefore = this.clock.now() + backoffMs(failures, this.retryDelaysMs);
    await this.inbox.update(id, { status: 'notified', attempts: failures, notBefore, error: describe(err) });
    this.log.warn({ id, err, attempts: failures, retryInMs: notBefore - this.clock.now() }, 'fetch failed; trying again later');
  }
}

/** A Content-ID names a part as "<id>": the brackets are no part of the name. */
function stripId(id: string | undefined): string | undefined {
  return id?.replace(/^<|>$/g, '');
}
