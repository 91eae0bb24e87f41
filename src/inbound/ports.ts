// What the inbound path needs from the rest of the daemon (DESIGN.md §1, §12), declared here so
// that src/inbound imports no driver and no outbox: the daemon's composition root wires them.
import type { AppliedDeliveryReport, DeliveryReportInput } from '../core/inbound.js';
import type { NotificationInd, ReadOrigInd } from '../mms/types.js';

/** One SMS as the module stores it. */
export interface StoredSms {
  index: number;
  /** Hex, SMSC field first, as AT+CMGR / AT+CMGL print it in PDU mode. */
  pdu: string;
  /** The `<length>` the module announced (octets of the TPDU), when it did. */
  tpduLength?: number;
}

/** The module's SMS storage (the driver's SMS side). */
export interface SmsSource {
  /** Every SMS the driver reads: after +CMTI, and each of AT+CMGL=4 after start, RDY and a reconnect. */
  on(event: 'sms', fn: (sms: StoredSms) => void): unknown;
  off(event: 'sms', fn: (sms: StoredSms) => void): unknown;
  /** AT+CMGD: only ever for an SMS whose content is durable (or not ours and deleteOtherSms). */
  delete(index: number): Promise<void>;
}

/** Where delivery reports go: matched and applied durably before it resolves (the outbox). */
export interface DeliveryReportSink {
  applyDeliveryReport(report: DeliveryReportInput): Promise<AppliedDeliveryReport>;
}

/** A pushed PDU for the inbox (issue 17): M-Notification.ind, or M-Read-Orig.ind. */
export type InboxPush = { kind: 'notification'; pdu: NotificationInd; key: string } | { kind: 'read-orig'; pdu: ReadOrigInd; key: string };

/**
 * The inbox's door: resolves true once it stored the push durably (its SMS may then go), false
 * when it did not take it (the SMS stays in the module's storage, the segments on disk).
 */
export type InboxHook = (push: InboxPush) => Promise<boolean>;
