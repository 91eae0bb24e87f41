// Delivery reports applied to the spool (DESIGN.md §12): the messages a report can match, one
// report at a time, and the message's new delivery state written durably before it resolves.
// What a report matches and what the record becomes is delivery.ts (pure); delivery-index.ts finds
// it among many messages without looking at each.
import type { Logger } from 'pino';
import type { AppliedDeliveryReport, DeliveryReportInput } from '../core/inbound.js';
import type { MessageRecord } from '../core/message.js';
import { applyReport } from './delivery.js';
import { DeliveryIndex } from './delivery-index.js';

/** What the reports need of the outbox they change. */
export interface ReportHost {
  get(id: string): MessageRecord | undefined;
  /** Runs `fn` as the one change of message `id` in flight. */
  withLock<T>(id: string, fn: () => Promise<T>): Promise<T>;
  /** Writes the record durably and makes it the current one. */
  write(record: MessageRecord): Promise<MessageRecord>;
  /** Announces a changed message ('changed'). */
  changed(record: MessageRecord): void;
  clock: () => number;
  log: Logger;
}

export class DeliveryReports {
  /** Messages with a `delivery` map: the only ones a delivery report can match (§12), indexed. */
  private readonly reportable = new DeliveryIndex();
  /** Delivery reports are matched and applied one at a time. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly host: ReportHost) {}

  /** Forgets every message (the spool is read anew). */
  clear(): void {
    this.reportable.clear();
  }

  /** The current record of a message: reportable while it has a `delivery` map. */
  note(r: MessageRecord): void {
    this.reportable.note(r);
  }

  /** The message is gone (retention). */
  forget(id: string): void {
    this.reportable.forget(id);
  }

  /**
   * DESIGN.md §12: matches one M-Delivery.ind to a message (delivery.ts) and, when it matches,
   * writes the message's new delivery state durably before it resolves. A report applied before
   * (same key) is a `duplicate` and changes nothing. Messages removed by retention are not
   * matched: their reports are `unmatched`.
   */
  apply(report: DeliveryReportInput): Promise<AppliedDeliveryReport> {
    const run = this.chain.then(() => this.applyNow(report));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async applyNow(report: DeliveryReportInput): Promise<AppliedDeliveryReport> {
    const h = this.host;
    const base = { recipient: report.recipient, status: report.status, date: report.date, reportMessageId: report.reportMessageId };
    const match = this.reportable.match(report, (id) => h.get(id));
    if (match.kind === 'unmatched') return { outcome: 'unmatched', event: base };
    if (match.kind === 'duplicate') {
      const r = match.record;
      return { outcome: 'duplicate', event: { ...base, messageId: r.id, delivery: { ...r.delivery } } };
    }
    return h.withLock(match.record.id, async () => {
      const cur = h.get(match.record.id);
      if (!cur) return { outcome: 'unmatched' as const, event: base };
      const next = await h.write(applyReport(cur, match.recipient, report, h.clock()));
      h.log.info(
        { id: next.id, recipient: match.recipient, deliveryStatus: report.status, by: match.by, reportMessageId: report.reportMessageId, status: next.status },
        'delivery report applied',
      );
      h.changed(next);
      return { outcome: 'matched' as const, event: { ...base, messageId: next.id, delivery: { ...next.delivery } } };
    });
  }
}
