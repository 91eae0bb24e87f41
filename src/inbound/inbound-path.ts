// The inbound path (DESIGN.md §12): every SMS the driver reads goes through here, one at a time.
// Only SMS-DELIVERs to port 2948 whose WSP push carries an MMS PDU are taken; every other SMS stays
// in the module untouched (unless inbound.deleteOtherSms). Segments wait on disk until complete.
// Delivery reports go to the outbox (matched, durable), notifications to the inbox hook; a taken
// SMS is deleted only once what it carries is durable; what does not decode is kept aside.
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { DeliveryReportEvent } from '../core/inbound.js';
import { decodePushedMms } from '../mms/notification.js';
import { MmsDecodeError } from '../mms/types.js';
import { writeDurable } from '../core/durable.js';
import type { DeliveryReportSink, InboxHook, SmsSource, StoredSms } from './ports.js';
import { PushJournal } from './push-journal.js';
import { segmentOf } from './reassembly.js';
import { SegmentStore } from './segment-store.js';
import { decodeSmsPdu, isWapPushSegment } from './sms.js';
import { decodeWspPush, isMmsPush } from './wap-push.js';

const EXPIRY_SWEEP_MS = 60 * 60 * 1000;
/** How long an SMS listed again at the index just deleted is taken for that listing's stale copy. */
const STALE_LISTING_MS = 60_000;

export interface InboundPathOptions {
  /** `<outbox.dir>/inbound`: segments, the push journal, and what was kept aside. */
  dir: string;
  logger: Logger;
  clock?: () => number;
  source: SmsSource;
  reports: DeliveryReportSink;
  /** Where notifications (and read reports) go; false leaves their SMS where they are. */
  inbox: InboxHook;
  /** `inbound.deleteOtherSms`. */
  deleteOtherSms: boolean;
  /** Told of every delivery report once its effect is durable (DESIGN.md §12, api/types.ts). */
  onDeliveryReport: (event: DeliveryReportEvent) => void;
}

/** Where a push came from: one SMS, or a set of segments on disk. */
type Origin = { sms: StoredSms } | { set: string };

/** The key of a push: its MMS PDU's bytes (a network's resend carries the same bytes). */
export function pushKey(body: Buffer): string {
  return createHash('sha256').update(body).digest('hex').slice(0, 32);
}

export class InboundPath {
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly segments: SegmentStore;
  private readonly journal: PushJournal;
  private readonly asideDir: string;
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  /** index → PDU and time of SMS deleted here: a listing taken before the delete is not handled again. */
  private readonly deleted = new Map<number, { pdu: string; at: number }>();
  /** PDUs already logged as not decoding or not ours, so each is logged once per run. */
  private readonly noted = new Set<string>();
  private readonly onSms = (sms: StoredSms): void => {
    this.chain = this.chain.then(() => this.handle(sms)).catch((err: unknown) => {
      this.log.error({ err, index: sms.index }, 'SMS not handled; it stays in storage and is read again at the next AT+CMGL');
    });
  };

  constructor(private readonly o: InboundPathOptions) {
    this.log = o.logger.child({ part: 'inbound' });
    this.clock = o.clock ?? Date.now;
    this.segments = new SegmentStore({ dir: join(o.dir, 'segments'), logger: this.log, clock: this.clock });
    this.journal = new PushJournal(join(o.dir, 'pushes.jsonl'), this.clock);
    this.asideDir = join(o.dir, 'rejected');
  }

  async start(): Promise<void> {
    await mkdir(this.asideDir, { recursive: true });
    await this.journal.start();
    await this.segments.start();
    await this.segments.expire();
    // Sets a restart interrupted after their last segment was stored.
    for (const set of this.segments.complete()) await this.handlePush(set.data, { set: set.key });
    this.o.source.on('sms', this.onSms);
    this.timer = setInterval(() => {
      this.chain = this.chain.then(async () => {
        await this.segments.expire();
      }).catch((err: unknown) => this.log.error({ err }, 'segment expiry failed'));
    }, EXPIRY_SWEEP_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.o.source.off('sms', this.onSms);
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.chain;
  }

  /** Waits until every SMS handed in so far is handled (tests, benchmarks). */
  idle(): Promise<void> {
    return this.chain;
  }

  private async handle(sms: StoredSms): Promise<void> {
    const gone = this.deleted.get(sms.index);
    this.deleted.delete(sms.index);
    if (gone?.pdu === sms.pdu && this.clock() - gone.at < STALE_LISTING_MS) return;
    let decoded;
    try {
      decoded = decodeSmsPdu(sms.pdu, sms.tpduLength === undefined ? {} : { tpduLength: sms.tpduLength });
    } catch (err) {
      if (!(err instanceof MmsDecodeError)) throw err;
      // Not ours to judge: it may be anyone's. Left where it is (DESIGN.md §12), logged once.
      this.noteOnce(sms, { err: err.message }, 'SMS that does not decode as a PDU: left in storage');
      return this.leaveOther(sms);
    }
    if (!isWapPushSegment(decoded)) {
      this.noteOnce(sms, { kind: decoded.kind }, 'SMS is no WAP push: left in storage');
      return this.leaveOther(sms);
    }
    const segment = segmentOf(decoded);
    if (segment === undefined) return this.handlePush(decoded.data, { sms });
    const { duplicate, complete } = await this.segments.add(segment);
    this.log.info({ index: sms.index, seq: segment.seq, total: segment.total, ref: segment.ref, duplicate }, 'WAP push segment stored');
    // The segment is on disk (or was already): its SMS can go.
    await this.deleteSms(sms);
    if (complete) await this.handlePush(complete.data, { set: complete.key });
  }

  private async handlePush(data: Buffer, origin: Origin): Promise<void> {
    let push;
    try {
      push = decodeWspPush(data);
    } catch (err) {
      if (!(err instanceof MmsDecodeError)) throw err;
      return this.keepAside(data, origin, 'wsp', err.message);
    }
    if (!isMmsPush(push)) {
      if ('sms' in origin) {
        this.noteOnce(origin.sms, { contentType: push.contentType.mediaType }, 'WAP push for another application: left in storage');
        return this.leaveOther(origin.sms);
      }
      // Its segments already left the module: kept, so that nothing is lost.
      return this.keepAside(data, origin, 'other-push', `content type ${push.contentType.mediaType}`);
    }
    const key = pushKey(push.body);
    if (this.journal.has(key)) {
      this.log.info({ key, ...this.originFields(origin) }, 'push handled before: a duplicate');
      return this.finish(origin);
    }
    let pushed;
    try {
      pushed = decodePushedMms(push.body);
    } catch (err) {
      if (!(err instanceof MmsDecodeError)) throw err;
      return this.keepAside(data, origin, 'mms', err.message);
    }
    if (pushed.kind === 'delivery') {
      const d = pushed.pdu;
      const applied = await this.o.reports.applyDeliveryReport({
        key,
        reportMessageId: d.messageId,
        recipient: d.to,
        status: d.status,
        date: d.date * 1000,
      });
      await this.journal.add(key);
      const fields = { key, reportMessageId: d.messageId, recipient: d.to, deliveryStatus: d.status, outcome: applied.outcome, id: applied.event.messageId };
      if (applied.outcome === 'unmatched') this.log.warn(fields, 'delivery report matches no sent message');
      else this.log.info(fields, 'delivery report');
      this.o.onDeliveryReport(applied.event);
      return this.finish(origin);
    }
    const taken = await this.o.inbox({ ...pushed, key });
    if (!taken) {
      this.log.info({ key, kind: pushed.kind, ...this.originFields(origin) }, 'MMS push not taken by the inbox: left where it is');
      return;
    }
    await this.journal.add(key);
    return this.finish(origin);
  }

  /** DESIGN.md §12: kept in a file with the reason, logged, and its SMS (or segments) then removed. */
  private async keepAside(data: Buffer, origin: Origin, layer: string, reason: string): Promise<void> {
    const name = `${new Date(this.clock()).toISOString().replace(/[:.]/g, '-')}-${pushKey(data).slice(0, 12)}.json`;
    const body = { layer, reason, ...this.originFields(origin), data: data.toString('hex') };
    await writeDurable(this.asideDir, name, `${JSON.stringify(body)}\n`);
    this.log.warn({ layer, reason, file: join(this.asideDir, name), ...this.originFields(origin) }, 'WAP push kept aside: it does not decode');
    await this.finish(origin);
  }

  private async finish(origin: Origin): Promise<void> {
    if ('sms' in origin) await this.deleteSms(origin.sms);
    else await this.segments.remove(origin.set);
  }

  private async deleteSms(sms: StoredSms): Promise<void> {
    await this.o.source.delete(sms.index);
    this.deleted.set(sms.index, { pdu: sms.pdu, at: this.clock() });
  }

  private async leaveOther(sms: StoredSms): Promise<void> {
    if (!this.o.deleteOtherSms) return;
    await this.deleteSms(sms);
    this.log.info({ index: sms.index }, 'SMS that is not an MMS push deleted (inbound.deleteOtherSms)');
  }

  private noteOnce(sms: StoredSms, fields: Record<string, unknown>, msg: string): void {
    if (this.noted.has(sms.pdu)) return;
    this.noted.add(sms.pdu);
    this.log.info({ index: sms.index, ...fields }, msg);
  }

  private originFields(origin: Origin): Record<string, unknown> {
    return 'sms' in origin ? { index: origin.sms.index } : { segments: true };
  }
}
