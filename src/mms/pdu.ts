// M-Send.req and M-Send.conf encoder and decoder (OMA-MMS-ENC 1.2 §6.1, header codes §7.4 Table 12,
// values §7.2) over the WSP primitives and multipart body (WAP-230 §8.5).
import {
  MMS_VERSION,
  MmsDecodeError,
  MmsEncodeError,
  type Expiry,
  type MessageClass,
  type MmsPart,
  type Priority,
  type SendConf,
  type SendReq,
  type SenderVisibility,
} from './types.js';
import { WspReader, WspWriter, type ContentTypeParams } from './wsp.js';

/** OMA-MMS-ENC Table 12: header field names (the octet on the wire is code | 0x80). */
export const Header = {
  Bcc: 0x01,
  Cc: 0x02,
  ContentType: 0x04,
  Date: 0x05,
  DeliveryReport: 0x06,
  Expiry: 0x08,
  From: 0x09,
  MessageClass: 0x0a,
  MessageId: 0x0b,
  MessageType: 0x0c,
  MmsVersion: 0x0d,
  Priority: 0x0f,
  ReadReport: 0x10,
  ResponseStatus: 0x12,
  ResponseText: 0x13,
  SenderVisibility: 0x14,
  Subject: 0x16,
  To: 0x17,
  TransactionId: 0x18,
} as const;

/** §7.2.20: X-Mms-Message-Type values. */
export const MessageType = { SendReq: 0x80, SendConf: 0x81 } as const;

/** WAP-230 Table 39: part header field names (code | 0x80 on the wire). */
const PartHeader = {
  ContentLocation: 0x0e,
  ContentDisposition: 0x2e,
  ContentId: 0x40,
  ContentDisposition14: 0x45,
} as const;

const YES = 0x80;
const NO = 0x81;
/** §7.2.11: From = Value-length (Address-present-token Encoded-string-value | Insert-address-token). */
const ADDRESS_PRESENT = 0x80;
const INSERT_ADDRESS = 0x81;
/** §7.2.10: Expiry = Value-length (Absolute-token Date-value | Relative-token Delta-seconds-value). */
const ABSOLUTE = 0x80;
const RELATIVE = 0x81;
/** WAP-230 §8.4.2.53: Content-disposition "attachment". */
const DISPOSITION_ATTACHMENT = 0x81;

const PRIORITY: readonly Priority[] = ['low', 'normal', 'high']; // 0x80..0x82
const VISIBILITY: readonly SenderVisibility[] = ['hide', 'show']; // 0x80..0x81
const MESSAGE_CLASS: readonly MessageClass[] = ['personal', 'advertisement', 'informational', 'auto']; // 0x80..

/** §7.2.27 X-Mms-Response-Status: the octet and its name in the specification. */
export const RESPONSE_STATUS: Readonly<Record<number, string>> = {
  0x80: 'Ok',
  0x81: 'Error-unspecified',
  0x82: 'Error-service-denied',
  0x83: 'Error-message-format-corrupt',
  0x84: 'Error-sending-address-unresolved',
  0x85: 'Error-message-not-found',
  0x86: 'Error-network-problem',
  0x87: 'Error-content-not-accepted',
  0x88: 'Error-unsupported-message',
  0xc0: 'Error-transient-failure',
  0xc1: 'Error-transient-sending-address-unresolved',
  0xc2: 'Error-transient-message-not-found',
  0xc3: 'Error-transient-network-problem',
  0xc4: 'Error-transient-partial-success',
  0xe0: 'Error-permanent-failure',
  0xe1: 'Error-permanent-service-denied',
  0xe2: 'Error-permanent-message-format-corrupt',
  0xe3: 'Error-permanent-sending-address-unresolved',
  0xe4: 'Error-permanent-message-not-found',
  0xe5: 'Error-permanent-content-not-accepted',
  0xe6: 'Error-permanent-reply-charging-limitations-not-met',
  0xe7: 'Error-permanent-reply-charging-request-not-accepted',
  0xe8: 'Error-permanent-reply-charging-forwarding-denied',
  0xe9: 'Error-permanent-reply-charging-not-supported',
  0xea: 'Error-permanent-address-hiding-not-supported',
  0xeb: 'Error-permanent-lack-of-prepaid',
};
export const RESPONSE_OK = 0x80;

export function responseStatusName(status: number): string {
  return RESPONSE_STATUS[status] ?? `Error-0x${status.toString(16)}`;
}

const PLMN_SUFFIX = '/TYPE=PLMN';

/** §8 (addressing): phone numbers carry "/TYPE=PLMN"; e-mail and typed addresses go as they are. */
export function toWireAddress(address: string): string {
  if (address.includes('@') || /\/TYPE=/i.test(address)) return address;
  return address + PLMN_SUFFIX;
}

export function fromWireAddress(address: string): string {
  return address.toUpperCase().endsWith(PLMN_SUFFIX) ? address.slice(0, -PLMN_SUFFIX.length) : address;
}

function header(w: WspWriter, code: number): WspWriter {
  return w.shortInteger(code);
}

function writeVersion(w: WspWriter, version: string): void {
  const m = /^(\d+)\.(\d+)$/.exec(version);
  if (!m) throw new MmsEncodeError(`bad MMS version: ${version}`);
  const major = Number(m[1]);
  const minor = Number(m[2]);
  if (major > 7 || minor > 14) throw new MmsEncodeError(`MMS version out of range: ${version}`);
  // §7.2.24: major in bits 4-6, minor in bits 0-3.
  header(w, Header.MmsVersion).shortInteger((major << 4) | minor);
}

function readVersion(r: WspReader): string {
  if (r.peek() < 0x80) return r.textString();
  const v = r.shortInteger();
  const minor = v & 0x0f;
  return minor === 0x0f ? `${v >> 4}.0` : `${v >> 4}.${minor}`;
}

function writeBool(w: WspWriter, code: number, value: boolean | undefined): void {
  if (value !== undefined) header(w, code).octet(value ? YES : NO);
}

function writeToken<T extends string>(w: WspWriter, code: number, table: readonly T[], value: T | undefined): void {
  if (value === undefined) return;
  const i = table.indexOf(value);
  if (i < 0) throw new MmsEncodeError(`bad value for header 0x${(code | 0x80).toString(16)}: ${value}`);
  header(w, code).octet(0x80 + i);
}

function readToken<T extends string>(r: WspReader, table: readonly T[], what: string): T {
  const b = r.octet();
  return table[b - 0x80] ?? r.fail(`bad ${what} value 0x${b.toString(16)}`);
}

function writeParts(w: WspWriter, parts: readonly MmsPart[]): void {
  // WAP-230 §8.5.2: nEntries, then per entry HeadersLen, DataLen, ContentType+Headers, Data.
  w.uintvar(parts.length);
  for (const part of parts) {
    const params: ContentTypeParams = {};
    if (part.charset !== undefined) params.charset = part.charset;
    if (part.name !== undefined) params.name = part.name;
    const headers = new WspWriter().contentType({ mediaType: part.contentType, params });
    if (part.contentLocation !== undefined) headers.shortInteger(PartHeader.ContentLocation).textString(part.contentLocation);
    if (part.contentId !== undefined) headers.shortInteger(PartHeader.ContentId).quotedString(part.contentId);
    if (part.filename !== undefined) {
      const disp = new WspWriter().octet(DISPOSITION_ATTACHMENT).shortInteger(0x06).textString(part.filename);
      headers.shortInteger(PartHeader.ContentDisposition).valueLength(disp.size).bytes(disp.toBuffer());
    }
    w.uintvar(headers.size).uintvar(part.data.length).bytes(headers.toBuffer()).bytes(part.data);
  }
}

function readParts(r: WspReader): MmsPart[] {
  const count = r.uintvar();
  const parts: MmsPart[] = [];
  for (let i = 0; i < count; i++) {
    const headersLen = r.uintvar();
    const dataLen = r.uintvar();
    const h = r.sub(headersLen);
    const ct = h.contentType();
    const part: MmsPart = { contentType: ct.mediaType, data: Buffer.alloc(0) };
    if (ct.params.charset !== undefined) part.charset = ct.params.charset;
    if (ct.params.name !== undefined) part.name = ct.params.name;
    if (ct.params.filename !== undefined) part.filename = ct.params.filename;
    while (h.remaining > 0) {
      const b = h.peek();
      if (b >= 0x20 && b < 0x80) {
        // Application-header = Token-text Application-specific-value.
        h.textString();
        h.textString();
        continue;
      }
      if (b < 0x20) {
        // Shift sequences (§8.4.2.6) select other code pages; none of ours live there.
        h.octet();
        if (b === 0x7f) h.octet();
        continue;
      }
      const code = h.shortInteger();
      switch (code) {
        case PartHeader.ContentLocation:
          part.contentLocation = h.textString();
          break;
        case PartHeader.ContentId:
          part.contentId = h.quotedString();
          break;
        case PartHeader.ContentDisposition:
        case PartHeader.ContentDisposition14: {
          if (h.peek() >= 0x80) {
            h.octet(); // a bare disposition token without parameters
            break;
          }
          const d = h.sub(h.valueLength());
          if (d.peek() >= 0x80) d.octet();
          else d.textString();
          const p = d.params();
          if (p.filename !== undefined) part.filename = p.filename;
          if (p.name !== undefined && part.name === undefined) part.name = p.name;
          break;
        }
        default:
          h.skipValue();
      }
    }
    part.data = Buffer.from(r.take(dataLen));
    parts.push(part);
  }
  return parts;
}

/** Encode an M-Send.req (§6.1.1). Content-Type is the last header: the body follows it. */
export function encodeSendReq(msg: SendReq): Buffer {
  const w = new WspWriter();
  // §6.1.1: X-Mms-Message-Type, X-Mms-Transaction-ID and X-Mms-MMS-Version come first, in this order.
  header(w, Header.MessageType).octet(MessageType.SendReq);
  header(w, Header.TransactionId).textString(msg.transactionId);
  writeVersion(w, msg.mmsVersion);
  if (msg.date !== undefined) header(w, Header.Date).longInteger(msg.date);
  if (msg.from === undefined) header(w, Header.From).valueLength(1).octet(INSERT_ADDRESS);
  else {
    const f = new WspWriter().octet(ADDRESS_PRESENT).encodedString(toWireAddress(msg.from));
    header(w, Header.From).valueLength(f.size).bytes(f.toBuffer());
  }
  for (const [code, list] of [
    [Header.To, msg.to],
    [Header.Cc, msg.cc],
    [Header.Bcc, msg.bcc],
  ] as const) {
    for (const a of list) header(w, code).encodedString(toWireAddress(a));
  }
  if (msg.subject !== undefined) header(w, Header.Subject).encodedString(msg.subject);
  if (msg.messageClass !== undefined) {
    const i = MESSAGE_CLASS.indexOf(msg.messageClass as MessageClass);
    header(w, Header.MessageClass);
    if (i >= 0) w.octet(0x80 + i);
    else w.textString(msg.messageClass);
  }
  if (msg.expiry !== undefined) {
    const e = new WspWriter();
    if ('relative' in msg.expiry) e.octet(RELATIVE).longInteger(msg.expiry.relative);
    else e.octet(ABSOLUTE).longInteger(msg.expiry.absolute);
    header(w, Header.Expiry).valueLength(e.size).bytes(e.toBuffer());
  }
  writeToken(w, Header.Priority, PRIORITY, msg.priority);
  writeToken(w, Header.SenderVisibility, VISIBILITY, msg.senderVisibility);
  writeBool(w, Header.DeliveryReport, msg.deliveryReport);
  writeBool(w, Header.ReadReport, msg.readReport);
  const params: ContentTypeParams = {};
  if (msg.type !== undefined) params.type = msg.type;
  if (msg.start !== undefined) params.start = msg.start;
  header(w, Header.ContentType).contentType({ mediaType: msg.contentType, params });
  writeParts(w, msg.parts);
  return w.toBuffer();
}

function readExpiry(r: WspReader): Expiry {
  const e = r.sub(r.valueLength());
  const token = e.octet();
  const value = e.integerValue();
  if (token === RELATIVE) return { relative: value };
  if (token === ABSOLUTE) return { absolute: value };
  return e.fail(`bad expiry token 0x${token.toString(16)}`);
}

function readFrom(r: WspReader): string | undefined {
  const f = r.sub(r.valueLength());
  const token = f.octet();
  if (token === INSERT_ADDRESS) return undefined;
  if (token === ADDRESS_PRESENT) return fromWireAddress(f.encodedString());
  return f.fail(`bad From token 0x${token.toString(16)}`);
}

function readBool(r: WspReader): boolean {
  const b = r.octet();
  if (b === YES) return true;
  if (b === NO) return false;
  return r.fail(`bad yes/no value 0x${b.toString(16)}`);
}

/** Skip an MMS header we do not keep: well-known (generic value) or Application-header. */
function skipHeader(r: WspReader, first: number): void {
  if (first >= 0x80) {
    r.octet();
    r.skipValue();
  } else {
    r.textString();
    r.textString();
  }
}

/** Reads the three leading headers every PDU starts with (§6: type, transaction id, version). */
function readPreamble(r: WspReader, expectedType: number): { transactionId: string; mmsVersion: string } {
  if (r.remaining === 0) r.fail('empty PDU');
  if (r.octet() !== (Header.MessageType | 0x80)) throw new MmsDecodeError('PDU does not start with X-Mms-Message-Type', 0);
  const type = r.octet();
  if (type !== expectedType) {
    throw new MmsDecodeError(`message type 0x${type.toString(16)}, expected 0x${expectedType.toString(16)}`, 1);
  }
  let transactionId: string | undefined;
  let mmsVersion: string | undefined;
  // Read in any order until both are known (lenient towards senders that swap them).
  while (transactionId === undefined || mmsVersion === undefined) {
    const b = r.peek();
    if (b === (Header.TransactionId | 0x80)) {
      r.octet();
      transactionId = r.textString();
    } else if (b === (Header.MmsVersion | 0x80)) {
      r.octet();
      mmsVersion = readVersion(r);
    } else {
      throw new MmsDecodeError('X-Mms-Transaction-ID or X-Mms-MMS-Version missing', r.offset, transactionId);
    }
  }
  return { transactionId, mmsVersion };
}

/** Decode an M-Send.req; any malformation is an MmsDecodeError. */
export function decodeSendReq(buf: Buffer): SendReq {
  const r = new WspReader(buf);
  const { transactionId, mmsVersion } = readPreamble(r, MessageType.SendReq);
  const msg: Partial<SendReq> & Pick<SendReq, 'to' | 'cc' | 'bcc'> = { transactionId, mmsVersion, to: [], cc: [], bcc: [] };
  try {
    for (;;) {
      if (r.remaining === 0) r.fail('Content-Type header missing');
      const b = r.peek();
      if (b < 0x80) {
        skipHeader(r, b);
        continue;
      }
      r.octet();
      const code = b & 0x7f;
      switch (code) {
        case Header.Date:
          msg.date = r.longInteger();
          break;
        case Header.From: {
          const from = readFrom(r);
          if (from !== undefined) msg.from = from;
          break;
        }
        case Header.To:
          msg.to.push(fromWireAddress(r.encodedString()));
          break;
        case Header.Cc:
          msg.cc.push(fromWireAddress(r.encodedString()));
          break;
        case Header.Bcc:
          msg.bcc.push(fromWireAddress(r.encodedString()));
          break;
        case Header.Subject:
          msg.subject = r.encodedString();
          break;
        case Header.MessageClass:
          msg.messageClass = r.peek() >= 0x80 ? readToken(r, MESSAGE_CLASS, 'X-Mms-Message-Class') : r.textString();
          break;
        case Header.Expiry:
          msg.expiry = readExpiry(r);
          break;
        case Header.Priority:
          msg.priority = readToken(r, PRIORITY, 'X-Mms-Priority');
          break;
        case Header.SenderVisibility:
          msg.senderVisibility = readToken(r, VISIBILITY, 'X-Mms-Sender-Visibility');
          break;
        case Header.DeliveryReport:
          msg.deliveryReport = readBool(r);
          break;
        case Header.ReadReport:
          msg.readReport = readBool(r);
          break;
        case Header.ContentType: {
          const ct = r.contentType();
          msg.contentType = ct.mediaType;
          if (ct.params.type !== undefined) msg.type = ct.params.type;
          if (ct.params.start !== undefined) msg.start = ct.params.start;
          if (!ct.mediaType.toLowerCase().startsWith('application/vnd.wap.multipart.')) {
            r.fail(`body of type ${ct.mediaType} is not a multipart`);
          }
          msg.parts = readParts(r);
          if (r.remaining > 0) r.fail(`${r.remaining} octets after the last part`);
          return msg as SendReq;
        }
        default:
          r.skipValue();
      }
    }
  } catch (e) {
    if (e instanceof MmsDecodeError) e.transactionId = transactionId;
    throw e;
  }
}

/** Encode an M-Send.conf (§6.1.2). */
export function encodeSendConf(conf: SendConf): Buffer {
  const w = new WspWriter();
  header(w, Header.MessageType).octet(MessageType.SendConf);
  header(w, Header.TransactionId).textString(conf.transactionId);
  writeVersion(w, conf.mmsVersion);
  if (conf.responseStatus < 0x80 || conf.responseStatus > 0xff) {
    throw new MmsEncodeError(`bad response status ${conf.responseStatus}`);
  }
  header(w, Header.ResponseStatus).octet(conf.responseStatus);
  if (conf.responseText !== undefined) header(w, Header.ResponseText).encodedString(conf.responseText);
  if (conf.messageId !== undefined) header(w, Header.MessageId).textString(conf.messageId);
  return w.toBuffer();
}

/** Decode an M-Send.conf; a missing X-Mms-Response-Status is an MmsDecodeError. */
export function decodeSendConf(buf: Buffer): SendConf {
  const r = new WspReader(buf);
  const { transactionId, mmsVersion } = readPreamble(r, MessageType.SendConf);
  const conf: Partial<SendConf> = { transactionId, mmsVersion };
  while (r.remaining > 0) {
    const b = r.peek();
    if (b < 0x80) {
      skipHeader(r, b);
      continue;
    }
    r.octet();
    switch (b & 0x7f) {
      case Header.ResponseStatus:
        conf.responseStatus = r.octet();
        if (conf.responseStatus < 0x80) r.fail('bad X-Mms-Response-Status');
        break;
      case Header.ResponseText:
        conf.responseText = r.encodedString();
        break;
      case Header.MessageId:
        conf.messageId = r.textString();
        break;
      default:
        r.skipValue();
    }
  }
  if (conf.responseStatus === undefined) throw new MmsDecodeError('X-Mms-Response-Status missing', r.offset, transactionId);
  return conf as SendConf;
}

export { MMS_VERSION };
