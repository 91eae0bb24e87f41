// M-Send.req and M-Send.conf encoder and decoder (OMA-MMS-ENC 1.2 §6.1, header codes §7.3 Table 12,
// values §7.2) over the shared header layer (headers.ts) and multipart body (multipart.ts).
import {
  Header,
  MessageType,
  PRIORITY,
  fromWireAddress,
  header,
  readBool,
  readExpiry,
  readFrom,
  readHeaders,
  readMessageClass,
  readPreamble,
  readToken,
  withTransactionId,
  writeAddresses,
  writeBool,
  writeExpiry,
  writeFrom,
  writeMessageClass,
  writePreamble,
  writeToken,
} from './headers.js';
import { isMultipart, readParts, writeParts } from './multipart.js';
import { MMS_VERSION, MmsDecodeError, MmsEncodeError, type SendConf, type SendReq, type SenderVisibility } from './types.js';
import { WspReader, WspWriter, type ContentTypeParams } from './wsp.js';

export { Header, MessageType, fromWireAddress, toWireAddress } from './headers.js';

const VISIBILITY: readonly SenderVisibility[] = ['hide', 'show']; // 0x80..0x81

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

/** Encode an M-Send.req (§6.1.1). Content-Type is the last header: the body follows it. */
export function encodeSendReq(msg: SendReq): Buffer {
  const w = new WspWriter();
  // §6.1.1: X-Mms-Message-Type, X-Mms-Transaction-ID and X-Mms-MMS-Version come first, in this order.
  writePreamble(w, MessageType.SendReq, msg.transactionId, msg.mmsVersion);
  if (msg.date !== undefined) header(w, Header.Date).longInteger(msg.date);
  writeFrom(w, msg.from);
  writeAddresses(w, msg);
  if (msg.subject !== undefined) header(w, Header.Subject).encodedString(msg.subject);
  writeMessageClass(w, msg.messageClass);
  writeExpiry(w, msg.expiry);
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

/** Decode an M-Send.req; any malformation is an MmsDecodeError. */
export function decodeSendReq(buf: Buffer): SendReq {
  const r = new WspReader(buf);
  const { transactionId, mmsVersion } = readPreamble(r, MessageType.SendReq, 'required');
  const msg: Partial<SendReq> & Pick<SendReq, 'to' | 'cc' | 'bcc'> = { transactionId, mmsVersion, to: [], cc: [], bcc: [] };
  return withTransactionId(transactionId, () => {
    readHeaders(r, (code) => {
      switch (code) {
        case Header.Date:
          msg.date = r.longInteger();
          return true;
        case Header.From: {
          const from = readFrom(r);
          if (from !== undefined) msg.from = from;
          return true;
        }
        case Header.To:
          msg.to.push(fromWireAddress(r.encodedString()));
          return true;
        case Header.Cc:
          msg.cc.push(fromWireAddress(r.encodedString()));
          return true;
        case Header.Bcc:
          msg.bcc.push(fromWireAddress(r.encodedString()));
          return true;
        case Header.Subject:
          msg.subject = r.encodedString();
          return true;
        case Header.MessageClass:
          msg.messageClass = readMessageClass(r);
          return true;
        case Header.Expiry:
          msg.expiry = readExpiry(r);
          return true;
        case Header.Priority:
          msg.priority = readToken(r, PRIORITY, 'X-Mms-Priority');
          return true;
        case Header.SenderVisibility:
          msg.senderVisibility = readToken(r, VISIBILITY, 'X-Mms-Sender-Visibility');
          return true;
        case Header.DeliveryReport:
          msg.deliveryReport = readBool(r);
          return true;
        case Header.ReadReport:
          msg.readReport = readBool(r);
          return true;
        case Header.ContentType: {
          const ct = r.contentType();
          msg.contentType = ct.mediaType;
          if (ct.params.type !== undefined) msg.type = ct.params.type;
          if (ct.params.start !== undefined) msg.start = ct.params.start;
          if (!isMultipart(ct.mediaType)) r.fail(`body of type ${ct.mediaType} is not a multipart`);
          msg.parts = readParts(r);
          if (r.remaining > 0) r.fail(`${r.remaining} octets after the last part`);
          return 'stop';
        }
        default:
          return false;
      }
    });
    if (msg.parts === undefined) r.fail('Content-Type header missing');
    return msg as SendReq;
  });
}

/** Encode an M-Send.conf (§6.1.2). */
export function encodeSendConf(conf: SendConf): Buffer {
  const w = new WspWriter();
  writePreamble(w, MessageType.SendConf, conf.transactionId, conf.mmsVersion);
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
  const { transactionId, mmsVersion } = readPreamble(r, MessageType.SendConf, 'required');
  const conf: Partial<SendConf> = { transactionId, mmsVersion };
  readHeaders(r, (code) => {
    switch (code) {
      case Header.ResponseStatus:
        conf.responseStatus = r.octet();
        if (conf.responseStatus < 0x80) r.fail('bad X-Mms-Response-Status');
        return true;
      case Header.ResponseText:
        conf.responseText = r.encodedString();
        return true;
      case Header.MessageId:
        conf.messageId = r.textString();
        return true;
      default:
        return false;
    }
  });
  if (conf.responseStatus === undefined) throw new MmsDecodeError('X-Mms-Response-Status missing', r.offset, transactionId);
  return conf as SendConf;
}

export { MMS_VERSION };
