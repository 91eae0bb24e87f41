// What the inbound path tells the front doors (DESIGN.md §12, §13): delivery reports, and the
// records of received messages. The shapes live here so that the inbound path, the outbox and every
// front door (D-Bus, MQTT, Home Assistant, mmsctl) name the same things the same way.

/**
 * One recipient's delivery state (DESIGN.md §12): `pending` from `sent` until a report, then the
 * report's X-Mms-Status (OMA-MMS-ENC §7.2.33, 0x80–0x87).
 */
export const DELIVERY_STATES = [
  'pending',
  'retrieved',
  'rejected',
  'expired',
  'deferred',
  'indeterminate',
  'forwarded',
  'unreachable',
  'unrecognised',
] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];
/** What a report can say: every state but `pending`. */
export type ReportedDeliveryState = Exclude<DeliveryState, 'pending'>;

/** One M-Delivery.ind as the front doors see it, matched to a message of ours or not. */
export interface DeliveryReportEvent {
  /** Our message id when matched; absent when the report matched nothing (DESIGN.md §12). */
  messageId?: string;
  /** The recipient as the report names it (To of the M-Delivery.ind). */
  recipient: string;
  status: ReportedDeliveryState;
  /** The report's Date, unix ms. */
  date: number;
  /** The MMSC's Message-ID the report carries. */
  reportMessageId: string;
  /** The message's per-recipient map after this report; absent when unmatched. */
  delivery?: Record<string, DeliveryState>;
}

/** A received message's life (DESIGN.md §12). */
export const RECEIVED_STATES = ['notified', 'retrieving', 'received', 'expired', 'failed'] as const;
export type ReceivedState = (typeof RECEIVED_STATES)[number];

/** One part of a received message, kept under `inbound.dir/<id>/`. */
export interface ReceivedPart {
  /** Sanitised, unique within the message: no separators, no leading dot, no control bytes. */
  name: string;
  contentType: string;
  charset?: string;
  /** Absolute path of the file. */
  path: string;
  size: number;
}

/** A received message's record (D-Bus `org.example.Mms1.Received`, MQTT `mmsd/received/<id>`). */
export interface ReceivedRecord {
  id: string;
  status: ReceivedState;
  from: string;
  to: string[];
  cc: string[];
  subject: string;
  /** Unix ms; the notification's arrival until the message itself says. */
  date: number;
  /** Bytes: the notification's announced size until received, then the parts' total. */
  size: number;
  /** Unix ms after which the MMSC no longer holds it. */
  expiry: number;
  parts: ReceivedPart[];
  /** Why it is `failed` or `expired`: the error's name and text. */
  error?: { name: string; message: string };
  messageId?: string;
}

/**
 * One decoded M-Delivery.ind as the inbound path hands it to the outbox for matching (DESIGN.md
 * §12). `key` names the push (a hash of its bytes): the same push twice is applied once.
 */
export interface DeliveryReportInput {
  key: string;
  reportMessageId: string;
  /** To of the M-Delivery.ind, without `/TYPE=PLMN`. */
  recipient: string;
  status: ReportedDeliveryState;
  /** The report's Date, unix ms. */
  date: number;
}

/** What applying a report did: matched to a message, already applied before, or matched nothing. */
export interface AppliedDeliveryReport {
  outcome: 'matched' | 'duplicate' | 'unmatched';
  event: DeliveryReportEvent;
}
