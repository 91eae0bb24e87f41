// The small inbound PDUs of OMA-MMS-ENC 1.2 §6: M-Notification.ind (§6.2) and the answers to it,
// M-NotifyResp.ind (§6.2) and M-Acknowledge.ind (§6.4); M-Delivery.ind (§6.6) and
// M-Read-Orig.ind (§6.7.2). Encoders and decoders both: the daemon decodes what arrives by WAP
// push and encodes its answers; the sim and the tests encode what an MMSC would push.
import {
  Header,
  MessageType,
  PRIORITY,
  fromWireAddress,
  header,
  peekMessageType,
  readBool,
  readExpiry,
  readFrom,
  readHeaders,
  readMessageClass,
  readPreamble,
  readToken,
  toWireAddress,
  withTransactionId,
  writeBool,
  writeExpiry,
  writeFrom,
  writeMessageClass,
  writePreamble,
  writeSubject,
  writeToken,
  type EncodeOptions,
} from './headers.js';
import {
  MMS_STATUSES,
  MmsDecodeError,
  type AcknowledgeInd,
  type DeliveryInd,
  type MmsStatus,
  type NotificationInd,
  type NotifyRespInd,
  type ReadOrigInd,
  type ReadStatus,
} from './types.js';
import { WspReader, WspWriter } from './wsp.js';

const READ_STATUS: readonly ReadStatus[] = ['read', 'deleted']; // 0x80..0x81

/** X-Mms-Status octet → name; unknown octets are an MmsDecodeError. */
export function readStatus(r: WspReader): MmsStatus {
  return readToken(r, MMS_STATUSES, 'X-Mms-Status');
}

function missing(r: WspReader, what: string, transactionId?: string): never {
  throw new MmsDecodeError(`${what} missing`, r.offset, transactionId);
}

/** Encode an M-Notification.ind (§6.2), headers in the order of its table. */
export function encodeNotificationInd(n: NotificationInd, options: EncodeOptions = {}): Buffer {
  const w = new WspWriter();
  writePreamble(w, MessageType.NotificationInd, n.transactionId, n.mmsVersion);
  if (n.from !== undefined) writeFrom(w, n.from);
  writeSubject(w, n.subject, options);
  writeMessageClass(w, n.messageClass);
  writeToken(w, Header.Priority, PRIORITY, n.priority);
  if (n.messageSize !== undefined) header(w, Header.MessageSize).longInteger(n.messageSize);
  writeExpiry(w, n.expiry);
  writeBool(w, Header.DeliveryReport, n.deliveryReport);
  header(w, Header.ContentLocation).textString(n.contentLocation);
  return w.toBuffer();
}

/** Decode an M-Notification.ind; without X-Mms-Content-Location there is nothing to fetch: an error. */
export function decodeNotificationInd(buf: Buffer): NotificationInd {
  const r = new WspReader(buf);
  const { transactionId, mmsVersion } = readPreamble(r, MessageType.NotificationInd, 'required');
  return withTransactionId(transactionId, () => {
    const n: Partial<NotificationInd> = { transactionId, mmsVersion };
    readHeaders(r, (code) => {
      switch (code) {
        case Header.From: {
          const from = readFrom(r);
          if (from !== undefined) n.from = from;
          return true;
        }
        case Header.Subject:
          n.subject = r.encodedString();
          return true;
        case Header.MessageClass:
          n.messageClass = readMessageClass(r);
          return true;
        case Header.Priority:
          n.priority = readToken(r, PRIORITY, 'X-Mms-Priority');
          return true;
        case Header.MessageSize:
          n.messageSize = r.integerValue();
          return true;
        case Header.Expiry:
          n.expiry = readExpiry(r);
          return true;
        case Header.DeliveryReport:
          n.deliveryReport = readBool(r);
          return true;
        case Header.ContentLocation:
          n.contentLocation = r.textString();
          return true;
        default:
          return false;
      }
    });
    if (n.contentLocation === undefined) missing(r, 'X-Mms-Content-Location');
    return n as NotificationInd;
  });
}

/** Encode an M-NotifyResp.ind (§6.2): X-Mms-Status, then X-Mms-Report-Allowed when given. */
export function encodeNotifyRespInd(m: NotifyRespInd): Buffer {
  const w = new WspWriter();
  writePreamble(w, MessageType.NotifyRespInd, m.transactionId, m.mmsVersion);
  writeToken(w, Header.Status, MMS_STATUSES, m.status);
  writeBool(w, Header.ReportAllowed, m.reportAllowed);
  return w.toBuffer();
}

export function decodeNotifyRespInd(buf: Buffer): NotifyRespInd {
  const r = new WspReader(buf);
  const { transactionId, mmsVersion } = readPreamble(r, MessageType.NotifyRespInd, 'required');
  return withTransactionId(transactionId, () => {
    const m: Partial<NotifyRespInd> = { transactionId, mmsVersion };
    readHeaders(r, (code) => {
      if (code === Header.Status) m.status = readStatus(r);
      else if (code === Header.ReportAllowed) m.reportAllowed = readBool(r);
      else return false;
      return true;
    });
    if (m.status === undefined) missing(r, 'X-Mms-Status');
    return m as NotifyRespInd;
  });
}

/** Encode an M-Acknowledge.ind (§6.4). */
export function encodeAcknowledgeInd(m: AcknowledgeInd): Buffer {
  const w = new WspWriter();
  writePreamble(w, MessageType.AcknowledgeInd, m.transactionId, m.mmsVersion);
  writeBool(w, Header.ReportAllowed, m.reportAllowed);
  return w.toBuffer();
}

export function decodeAcknowledgeInd(buf: Buffer): AcknowledgeInd {
  const r = new WspReader(buf);
  const { transactionId, mmsVersion } = readPreamble(r, MessageType.AcknowledgeInd, 'required');
  return withTransactionId(transactionId, () => {
    const m: AcknowledgeInd = { transactionId, mmsVersion };
    readHeaders(r, (code) => {
      if (code !== Header.ReportAllowed) return false;
      m.reportAllowed = readBool(r);
      return true;
    });
    return m;
  });
}

/** Encode an M-Delivery.ind (§6.6): version, Message-ID, To, Date, X-Mms-Status; no transaction id. */
export function encodeDeliveryInd(d: DeliveryInd): Buffer {
  const w = new WspWriter();
  writePreamble(w, MessageType.DeliveryInd, undefined, d.mmsVersion);
  header(w, Header.MessageId).textString(d.messageId);
  header(w, Header.To).encodedString(toWireAddress(d.to));
  header(w, Header.Date).longInteger(d.date);
  writeToken(w, Header.Status, MMS_STATUSES, d.status);
  return w.toBuffer();
}

/** Decode an M-Delivery.ind; each of Message-ID, To, Date and X-Mms-Status is required. */
export function decodeDeliveryInd(buf: Buffer): DeliveryInd {
  const r = new WspReader(buf);
  const { mmsVersion } = readPreamble(r, MessageType.DeliveryInd, 'none');
  const d: Partial<DeliveryInd> = { mmsVersion };
  readHeaders(r, (code) => {
    switch (code) {
      case Header.MessageId:
        d.messageId = r.textString();
        return true;
      case Header.To:
        d.to = fromWireAddress(r.encodedString());
        return true;
      case Header.Date:
        d.date = r.integerValue();
        return true;
      case Header.Status:
        d.status = readStatus(r);
        return true;
      default:
        return false;
    }
  });
  if (d.messageId === undefined) missing(r, 'Message-ID');
  if (d.to === undefined) missing(r, 'To');
  if (d.date === undefined) missing(r, 'Date');
  if (d.status === undefined) missing(r, 'X-Mms-Status');
  return d as DeliveryInd;
}

/** Encode an M-Read-Orig.ind (§6.7.2). */
export function encodeReadOrigInd(m: ReadOrigInd): Buffer {
  const w = new WspWriter();
  writePreamble(w, MessageType.ReadOrigInd, undefined, m.mmsVersion);
  header(w, Header.MessageId).textString(m.messageId);
  header(w, Header.To).encodedString(toWireAddress(m.to));
  writeFrom(w, m.from);
  header(w, Header.Date).longInteger(m.date);
  writeToken(w, Header.ReadStatus, READ_STATUS, m.readStatus);
  return w.toBuffer();
}

/** Decode an M-Read-Orig.ind; every field of §6.7.2 is required (From with an address). */
export function decodeReadOrigInd(buf: Buffer): ReadOrigInd {
  const r = new WspReader(buf);
  const { mmsVersion } = readPreamble(r, MessageType.ReadOrigInd, 'none');
  const m: Partial<ReadOrigInd> = { mmsVersion };
  readHeaders(r, (code) => {
    switch (code) {
      case Header.MessageId:
        m.messageId = r.textString();
        return true;
      case Header.To:
        m.to = fromWireAddress(r.encodedString());
        return true;
      case Header.From: {
        const from = readFrom(r);
        if (from !== undefined) m.from = from;
        return true;
      }
      case Header.Date:
        m.date = r.integerValue();
        return true;
      case Header.ReadStatus:
        m.readStatus = readToken(r, READ_STATUS, 'X-Mms-Read-Status');
        return true;
      default:
        return false;
    }
  });
  if (m.messageId === undefined) missing(r, 'Message-ID');
  if (m.to === undefined) missing(r, 'To');
  if (m.from === undefined) missing(r, 'From');
  if (m.date === undefined) missing(r, 'Date');
  if (m.readStatus === undefined) missing(r, 'X-Mms-Read-Status');
  return m as ReadOrigInd;
}

/** What a WAP push for the MMS user agent carries (§1.2 of OMA-MMS-ENC: the push-delivered PDUs). */
export type PushedMms =
  | { kind: 'notification'; pdu: NotificationInd }
  | { kind: 'delivery'; pdu: DeliveryInd }
  | { kind: 'read-orig'; pdu: ReadOrigInd };

/** Decode the body of an MMS WAP push by its X-Mms-Message-Type; other types are an MmsDecodeError. */
export function decodePushedMms(buf: Buffer): PushedMms {
  const type = peekMessageType(buf);
  switch (type) {
    case MessageType.NotificationInd:
      return { kind: 'notification', pdu: decodeNotificationInd(buf) };
    case MessageType.DeliveryInd:
      return { kind: 'delivery', pdu: decodeDeliveryInd(buf) };
    case MessageType.ReadOrigInd:
      return { kind: 'read-orig', pdu: decodeReadOrigInd(buf) };
    case undefined:
      throw new MmsDecodeError('PDU does not start with X-Mms-Message-Type', 0);
    default:
      throw new MmsDecodeError(`message type 0x${type.toString(16)} is not one an MMSC pushes`, 1);
  }
}
