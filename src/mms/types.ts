// The MMS encapsulation's typed view of M-Send.req and M-Send.conf (OMA-MMS-ENC 1.2 §6.1) and the
// codec's typed errors. Field values are the decoded meanings, not the wire tokens.

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
