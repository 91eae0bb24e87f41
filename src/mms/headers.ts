// The MMS header layer every PDU shares (OMA-MMS-ENC 1.2 §7.3 Table 12 field codes, §7.2 values):
// header codes, message types, addresses, version, From, Expiry, tokens, the leading three headers.
import { MmsDecodeError, MmsEncodeError, type Expiry, type MessageClass, type Priority } from './types.js';
import { WspWriter, type WspReader } from './wsp.js';

/** OMA-MMS-ENC Table 12: header field names (the octet on the wire is code | 0x80). */
export const Header = {
  Bcc: 0x01,
  Cc: 0x02,
  ContentLocation: 0x03,
  ContentType: 0x04,
  Date: 0x05,
  DeliveryReport: 0x06,
  DeliveryTime: 0x07,
  Expiry: 0x08,
  From: 0x09,
  MessageClass: 0x0a,
  MessageId: 0x0b,
  MessageType: 0x0c,
  MmsVersion: 0x0d,
  MessageSize: 0x0e,
  Priority: 0x0f,
  ReadReport: 0x10,
  ReportAllowed: 0x11,
  ResponseStatus: 0x12,
  ResponseText: 0x13,
  SenderVisibility: 0x14,
  Status: 0x15,
  Subject: 0x16,
  To: 0x17,
  TransactionId: 0x18,
  RetrieveStatus: 0x19,
  RetrieveText: 0x1a,
  ReadStatus: 0x1b,
} as const;

/** §7.2.20: X-Mms-Message-Type values. */
export const MessageType = {
  SendReq: 0x80,
  SendConf: 0x81,
  NotificationInd: 0x82,
  NotifyRespInd: 0x83,
  RetrieveConf: 0x84,
  AcknowledgeInd: 0x85,
  DeliveryInd: 0x86,
  ReadRecInd: 0x87,
  ReadOrigInd: 0x88,
} as const;

const YES = 0x80;
const NO = 0x81;
/** §7.2.11: From = Value-length (Address-present-token Encoded-string-value | Insert-address-token). */
const ADDRESS_PRESENT = 0x80;
const INSERT_ADDRESS = 0x81;
/** §7.2.10: Expiry = Value-length (Absolute-token Date-value | Relative-token Delta-seconds-value). */
const ABSOLUTE = 0x80;
const RELATIVE = 0x81;

export const PRIORITY: readonly Priority[] = ['low', 'normal', 'high']; // 0x80..0x82
export const MESSAGE_CLASS: readonly MessageClass[] = ['personal', 'advertisement', 'informational', 'auto']; // 0x80..

const PLMN_SUFFIX = '/TYPE=PLMN';

/** §8 (addressing): phone numbers carry "/TYPE=PLMN"; e-mail and typed addresses go as they are. */
export function toWireAddress(address: string): string {
  if (address.includes('@') || /\/TYPE=/i.test(address)) return address;
  return address + PLMN_SUFFIX;
}

export function fromWireAddress(address: string): string {
  return address.toUpperCase().endsWith(PLMN_SUFFIX) ? address.slice(0, -PLMN_SUFFIX.length) : address;
}

/** To, Cc and Bcc, each address in its own header (§7.2.x: one Encoded-string-value per header). */
export function writeAddresses(w: WspWriter, msg: { to: readonly string[]; cc?: readonly string[]; bcc?: readonly string[] }): void {
  for (const [code, list] of [
    [Header.To, msg.to],
    [Header.Cc, msg.cc ?? []],
    [Header.Bcc, msg.bcc ?? []],
  ] as const) {
    for (const a of list) header(w, code).encodedString(toWireAddress(a));
  }
}

/** How an encoder writes text headers: `subjectCharset` writes Subject in that charset (as some MMSCs do). */
export interface EncodeOptions {
  subjectCharset?: string;
}

export function writeSubject(w: WspWriter, subject: string | undefined, options: EncodeOptions = {}): void {
  if (subject === undefined) return;
  header(w, Header.Subject);
  if (options.subjectCharset === undefined) w.encodedString(subject);
  else w.encodedStringIn(subject, options.subjectCharset);
}

export function header(w: WspWriter, code: number): WspWriter {
  return w.shortInteger(code);
}

export function writeVersion(w: WspWriter, version: string): void {
  const m = /^(\d+)\.(\d+)$/.exec(version);
  if (!m) throw new MmsEncodeError(`bad MMS version: ${version}`);
  const major = Number(m[1]);
  const minor = Number(m[2]);
  if (major > 7 || minor > 14) throw new MmsEncodeError(`MMS version out of range: ${version}`);
  // §7.2.24: major in bits 4-6, minor in bits 0-3.
  header(w, Header.MmsVersion).shortInteger((major << 4) | minor);
}

export function readVersion(r: WspReader): string {
  if (r.peek() < 0x80) return r.textString();
  const v = r.shortInteger();
  const minor = v & 0x0f;
  return minor === 0x0f ? `${v >> 4}.0` : `${v >> 4}.${minor}`;
}

export function writeBool(w: WspWriter, code: number, value: boolean | undefined): void {
  if (value !== undefined) header(w, code).octet(value ? YES : NO);
}

export function readBool(r: WspReader): boolean {
  const b = r.octet();
  if (b === YES) return true;
  if (b === NO) return false;
  return r.fail(`bad yes/no value 0x${b.toString(16)}`);
}

export function writeToken<T extends string>(w: WspWriter, code: number, table: readonly T[], value: T | undefined): void {
  if (value === undefined) return;
  const i = table.indexOf(value);
  if (i < 0) throw new MmsEncodeError(`bad value for header 0x${(code | 0x80).toString(16)}: ${value}`);
  header(w, code).octet(0x80 + i);
}

export function readToken<T extends string>(r: WspReader, table: readonly T[], what: string): T {
  const b = r.octet();
  return table[b - 0x80] ?? r.fail(`bad ${what} value 0x${b.toString(16)}`);
}

/** §7.2.14: a class token, or any other class as token text. */
export function writeMessageClass(w: WspWriter, messageClass: string | undefined): void {
  if (messageClass === undefined) return;
  const i = MESSAGE_CLASS.indexOf(messageClass as MessageClass);
  header(w, Header.MessageClass);
  if (i >= 0) w.octet(0x80 + i);
  else w.textString(messageClass);
}

export function readMessageClass(r: WspReader): string {
  return r.peek() >= 0x80 ? readToken(r, MESSAGE_CLASS, 'X-Mms-Message-Class') : r.textString();
}

/** From with an address, or the Insert-address-token when `from` is undefined. */
export function writeFrom(w: WspWriter, from: string | undefined): void {
  if (from === undefined) {
    header(w, Header.From).valueLength(1).octet(INSERT_ADDRESS);
    return;
  }
  const f = new WspWriter().octet(ADDRESS_PRESENT).encodedString(toWireAddress(from));
  header(w, Header.From).valueLength(f.size).bytes(f.toBuffer());
}

/** The sender's address, or undefined for the Insert-address-token. */
export function readFrom(r: WspReader): string | undefined {
  const f = r.sub(r.valueLength());
  const token = f.octet();
  if (token === INSERT_ADDRESS) return undefined;
  if (token === ADDRESS_PRESENT) return fromWireAddress(f.encodedString());
  return f.fail(`bad From token 0x${token.toString(16)}`);
}

export function writeExpiry(w: WspWriter, expiry: Expiry | undefined): void {
  if (expiry === undefined) return;
  const e = new WspWriter();
  if ('relative' in expiry) e.octet(RELATIVE).longInteger(expiry.relative);
  else e.octet(ABSOLUTE).longInteger(expiry.absolute);
  header(w, Header.Expiry).valueLength(e.size).bytes(e.toBuffer());
}

export function readExpiry(r: WspReader): Expiry {
  const e = r.sub(r.valueLength());
  const token = e.octet();
  const value = e.integerValue();
  if (token === RELATIVE) return { relative: value };
  if (token === ABSOLUTE) return { absolute: value };
  return e.fail(`bad expiry token 0x${token.toString(16)}`);
}

/**
 * Walks the header fields to the end of `r`: `handle` gets each well-known field's code with the
 * reader on its value, returns true when it read the value, false to have it skipped, or 'stop'
 * to end the walk there (Content-Type: the body follows). Application-headers are skipped.
 */
export function readHeaders(r: WspReader, handle: (code: number) => boolean | 'stop'): void {
  while (r.remaining > 0) {
    const b = r.peek();
    if (b < 0x80) {
      skipHeader(r, b);
      continue;
    }
    r.octet();
    const done = handle(b & 0x7f);
    if (done === 'stop') return;
    if (!done) r.skipValue();
  }
}

/** Skip an MMS header we do not keep: well-known (generic value) or Application-header. */
export function skipHeader(r: WspReader, first: number): void {
  if (first >= 0x80) {
    r.octet();
    r.skipValue();
  } else {
    r.textString();
    r.textString();
  }
}

export interface Preamble {
  transactionId?: string;
  mmsVersion: string;
}

/**
 * Reads the leading headers (§6: type first, then transaction id and version). `transactionId`
 * says whether this PDU type carries one: M-Delivery.ind and M-Read-Orig.ind never do, and
 * M-Retrieve.conf may omit it (it answers a GET, not a transaction).
 */
export function readPreamble(r: WspReader, expectedType: number, transactionId: 'required'): Required<Preamble>;
export function readPreamble(r: WspReader, expectedType: number, transactionId: 'optional' | 'none'): Preamble;
export function readPreamble(r: WspReader, expectedType: number, transactionId: 'required' | 'optional' | 'none'): Preamble {
  if (r.remaining === 0) r.fail('empty PDU');
  if (r.octet() !== (Header.MessageType | 0x80)) throw new MmsDecodeError('PDU does not start with X-Mms-Message-Type', 0);
  const type = r.octet();
  if (type !== expectedType) {
    throw new MmsDecodeError(`message type 0x${type.toString(16)}, expected 0x${expectedType.toString(16)}`, 1);
  }
  let tid: string | undefined;
  let mmsVersion: string | undefined;
  // Read both in any order (lenient towards senders that swap them).
  while (r.remaining > 0 && (mmsVersion === undefined || (tid === undefined && transactionId !== 'none'))) {
    const b = r.peek();
    if (b === (Header.TransactionId | 0x80) && transactionId !== 'none' && tid === undefined) {
      r.octet();
      tid = r.textString();
    } else if (b === (Header.MmsVersion | 0x80) && mmsVersion === undefined) {
      r.octet();
      mmsVersion = readVersion(r);
    } else break;
  }
  if (mmsVersion === undefined || (tid === undefined && transactionId === 'required')) {
    const missing = transactionId === 'required' ? 'X-Mms-Transaction-ID or X-Mms-MMS-Version' : 'X-Mms-MMS-Version';
    throw new MmsDecodeError(`${missing} missing`, r.offset, tid);
  }
  return tid === undefined ? { mmsVersion } : { transactionId: tid, mmsVersion };
}

/** Writes X-Mms-Message-Type, then the transaction id (when given) and the version (§6). */
export function writePreamble(w: WspWriter, type: number, transactionId: string | undefined, mmsVersion: string): void {
  header(w, Header.MessageType).octet(type);
  if (transactionId !== undefined) header(w, Header.TransactionId).textString(transactionId);
  writeVersion(w, mmsVersion);
}

/**
 * Runs `body`; a decode error gets the transaction id attached (an MMSC, or the daemon's
 * M-NotifyResp.ind, can still answer it).
 */
export function withTransactionId<T>(transactionId: string | undefined, body: () => T): T {
  try {
    return body();
  } catch (e) {
    if (e instanceof MmsDecodeError && transactionId !== undefined) e.transactionId = transactionId;
    throw e;
  }
}

/** The X-Mms-Message-Type octet of a PDU, or undefined when it does not start with one. */
export function peekMessageType(buf: Buffer): number | undefined {
  return buf.length >= 2 && buf[0] === (Header.MessageType | 0x80) ? buf[1] : undefined;
}
