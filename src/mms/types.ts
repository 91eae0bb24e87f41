// The MMS encapsulation's typed view of its PDUs (OMA-MMS-ENC 1.2 §6: M-Send.req/.conf, the inbound
// M-Notification.ind, M-NotifyResp.ind, M-Retrieve.conf, M-Acknowledge.ind, M-Delivery.ind,
// M-Read-Orig.ind) and the codec's typed errors, which every decoder of network data in mmsd
// (SMS, WSP push, MMS) raises. Field values are the decoded meanings, not the wire tokens; dates
// are seconds since the epoch, as on the wire.

/** The version this codec writes (X-Mms-MMS-Version 1.2 = 0x92). */
export const MMS_VERSION = '1.2';

export const MULTIPART_MIXED = 'application/vnd.wap.multipart.mixed';
export const MULTIPART_RELATED = 'application/vnd.wap.multipart.related';

export type Priority = 'low' | 'normal' | 'high';
export type SenderVisibility = 'hide' | 'show';
/** OMA-MMS-ENC §7.2.14: the four tokens; any other class travels as token text. */
export type MessageClass = 'personal' | 'advertisement' | 'informational' | 'auto';

/** X-Mms-Expiry: relative (Delta-seconds) or absolute (seconds since the epoch). */
export type Expiry = { relative: number } | { absolute: number };

/** One body part of the multipart (WAP-230 §8.5.3). */
export interface MmsPart {
  /** Media type without parameters, lower case when it is a well-known type ("text/plain"). */
  contentType: string;
  /** Charset parameter as an IANA name in lower case ("utf-8", "gbk", "iso-10646-ucs-2"). */
  charset?: string;
  /** Content-Type `Name` parameter. */
  name?: string;
  /** Content-Disposition (attachment) `Filename` parameter. */
  filename?: string;
  /** Content-Location header. */
  contentLocation?: string;
  /** Content-ID header, as written (usually with angle brackets: "<smil>"). */
  contentId?: string;
  data: Buffer;
}

export interface SendReq {
  transactionId: string;
  /** "major.minor", e.g. "1.2". */
  mmsVersion: string;
  /** Date header, seconds since the epoch. */
  date?: number;
  /** Absent: Insert-address-token (the MMSC fills in the sender). */
  from?: string;
  /** Addresses without "/TYPE=PLMN": "+15551234" or "a@example.com". */
  to: string[];
  cc: string[];
  bcc: string[];
  subject?: string;
  /** A MessageClass token, or any other class as token text. */
  messageClass?: string;
  expiry?: Expiry;
  priority?: Priority;
  senderVisibility?: SenderVisibility;
  deliveryReport?: boolean;
  readReport?: boolean;
  /** Media type of the body: MULTIPART_MIXED or MULTIPART_RELATED (or another multipart type). */
  contentType: string;
  /** multipart.related `type` parameter, e.g. "application/smil". */
  type?: string;
  /** multipart.related `start` parameter, the root part's Content-ID, e.g. "<smil>". */
  start?: string;
  parts: MmsPart[];
}

export interface SendConf {
  transactionId: string;
  mmsVersion: string;
  /** X-Mms-Response-Status octet: 0x80 Ok, 0xC0–0xC4 transient, 0xE0–0xEB permanent (§7.2.27). */
  responseStatus: number;
  responseText?: string;
  messageId?: string;
}

/** §7.2.33 X-Mms-Status, 0x80..0x87 in this order. */
export const MMS_STATUSES = ['expired', 'retrieved', 'rejected', 'deferred', 'unrecognised', 'indeterminate', 'forwarded', 'unreachable'] as const;
export type MmsStatus = (typeof MMS_STATUSES)[number];
/** §7.2.32 X-Mms-Read-Status: 0x80 read, 0x81 deleted without being read. */
export type ReadStatus = 'read' | 'deleted';

/** M-Notification.ind (§6.2): a message waits at the MMSC. */
export interface NotificationInd {
  transactionId: string;
  mmsVersion: string;
  /** Absent: no From header, or the Insert-address-token. */
  from?: string;
  subject?: string;
  /** §6.2 marks the next three mandatory; a sender that leaves one out still gets its message read. */
  messageClass?: string;
  /** X-Mms-Message-Size in octets. */
  messageSize?: number;
  expiry?: Expiry;
  /** Where to GET the message (X-Mms-Content-Location). */
  contentLocation: string;
  priority?: Priority;
  deliveryReport?: boolean;
}

/** M-NotifyResp.ind (§6.2): the answer to a notification. */
export interface NotifyRespInd {
  transactionId: string;
  mmsVersion: string;
  /** retrieved after a fetch; deferred, rejected or unrecognised otherwise. */
  status: MmsStatus;
  reportAllowed?: boolean;
}

/** M-Acknowledge.ind (§6.4): acknowledges an M-Retrieve.conf fetched later than its notification. */
export interface AcknowledgeInd {
  transactionId: string;
  mmsVersion: string;
  reportAllowed?: boolean;
}

/** M-Retrieve.conf (§6.3): the fetched message. */
export interface RetrieveConf {
  /** Absent when the MMSC answered the GET without one (allowed by §6.3). */
  transactionId?: string;
  mmsVersion: string;
  messageId?: string;
  date?: number;
  from?: string;
  to: string[];
  cc: string[];
  subject?: string;
  messageClass?: string;
  priority?: Priority;
  deliveryReport?: boolean;
  readReport?: boolean;
  /** X-Mms-Retrieve-Status octet (§7.2.30): 0x80 Ok, 0xC0.. transient, 0xE0.. permanent errors. */
  retrieveStatus?: number;
  retrieveText?: string;
  /** Media type of the body; absent only when an error answer carries no body at all. */
  contentType?: string;
  type?: string;
  start?: string;
  /** The parts of a multipart body; a single non-multipart body is one part. */
  parts: MmsPart[];
}

/** M-Delivery.ind (§6.6): what became of a sent message at one recipient. */
export interface DeliveryInd {
  mmsVersion: string;
  messageId: string;
  /** The recipient this report is about. */
  to: string;
  /** Date of the event, seconds since the epoch. */
  date: number;
  status: MmsStatus;
}

/** M-Read-Orig.ind (§6.7.2): a recipient read (or deleted) a sent message. */
export interface ReadOrigInd {
  mmsVersion: string;
  messageId: string;
  to: string;
  from: string;
  date: number;
  readStatus: ReadStatus;
}

/** A PDU that cannot be read. `offset` is where in the buffer reading failed. */
export class MmsDecodeError extends Error {
  override readonly name = 'MmsDecodeError';
  constructor(
    message: string,
    readonly offset: number,
    /** Set when the transaction id was read before the failure (an MMSC can still answer it). */
    public transactionId?: string,
  ) {
    super(`${message} (at byte ${offset})`);
  }
}

/** A value that the wire format cannot carry (e.g. a NUL inside a text-string). */
export class MmsEncodeError extends Error {
  override readonly name = 'MmsEncodeError';
}
