// M-Retrieve.conf (OMA-MMS-ENC 1.2 §6.3): the message the daemon fetches from the Content-Location
// of a notification; its multipart body per WAP-230 §8.5 (multipart.ts), text in any charset of
// charset.ts. The encoder serves the sim's MMSC and the tests.
import { decodeText } from './charset.js';
import { isTextType } from './content-type.js';
import {
  Header,
  MessageType,
  PRIORITY,
  fromWireAddress,
  header,
  readBool,
  readFrom,
  readHeaders,
  readMessageClass,
  readPreamble,
  readToken,
  withTransactionId,
  writeAddresses,
  writeBool,
  writeFrom,
  writeMessageClass,
  writePreamble,
  writeSubject,
  writeToken,
  type EncodeOptions,
} from './headers.js';
import { isMultipart, readParts, writeParts } from './multipart.js';
import { MmsEncodeError, type MmsPart, type RetrieveConf } from './types.js';
import { WspReader, WspWriter, type ContentTypeParams } from './wsp.js';

/** §7.2.30 X-Mms-Retrieve-Status: the octet and its name in the specification. */
export const RETRIEVE_STATUS: Readonly<Record<number, string>> = {
  0x80: 'Ok',
  0xc0: 'Error-transient-failure',
  0xc1: 'Error-transient-message-not-found',
  0xc2: 'Error-transient-network-problem',
  0xe0: 'Error-permanent-failure',
  0xe1: 'Error-permanent-service-denied',
  0xe2: 'Error-permanent-message-not-found',
  0xe3: 'Error-permanent-content-unsupported',
};
export const RETRIEVE_OK = 0x80;

export function retrieveStatusName(status: number): string {
  return RETRIEVE_STATUS[status] ?? `Error-0x${status.toString(16)}`;
}

/**
 * Encode an M-Retrieve.conf. A multipart content type carries `parts`; any other content type
 * carries exactly one part, whose bytes are the body.
 */
export function encodeRetrieveConf(m: RetrieveConf, options: EncodeOptions = {}): Buffer {
  const w = new WspWriter();
  writePreamble(w, MessageType.RetrieveConf, m.transactionId, m.mmsVersion);
  if (m.messageId !== undefined) header(w, Header.MessageId).textString(m.messageId);
  if (m.date !== undefined) header(w, Header.Date).longInteger(m.date);
  if (m.from !== undefined) writeFrom(w, m.from);
  writeAddresses(w, m);
  writeSubject(w, m.subject, options);
  writeMessageClass(w, m.messageClass);
  writeToken(w, Header.Priority, PRIORITY, m.priority);
  writeBool(w, Header.DeliveryReport, m.deliveryReport);
  writeBool(w, Header.ReadReport, m.readReport);
  if (m.retrieveStatus !== undefined) {
    if (m.retrieveStatus < 0x80 || m.retrieveStatus > 0xff) throw new MmsEncodeError(`bad retrieve status ${m.retrieveStatus}`);
    header(w, Header.RetrieveStatus).octet(m.retrieveStatus);
  }
  if (m.retrieveText !== undefined) header(w, Header.RetrieveText).encodedString(m.retrieveText);
  if (m.contentType === undefined) {
    if (m.parts.length > 0) throw new MmsEncodeError('parts without a content type');
    return w.toBuffer();
  }
  // §6.3: Content-Type is the last header; the body follows it.
  if (isMultipart(m.contentType)) {
    const params: ContentTypeParams = {};
    if (m.type !== undefined) params.type = m.type;
    if (m.start !== undefined) params.start = m.start;
    header(w, Header.ContentType).contentType({ mediaType: m.contentType, params });
    writeParts(w, m.parts);
    return w.toBuffer();
  }
  const [body, ...more] = m.parts;
  if (body === undefined || more.length > 0) throw new MmsEncodeError(`a ${m.contentType} body is exactly one part`);
  const params: ContentTypeParams = {};
  if (body.charset !== undefined) params.charset = body.charset;
  if (body.name !== undefined) params.name = body.name;
  header(w, Header.ContentType).contentType({ mediaType: m.contentType, params });
  return w.bytes(body.data).toBuffer();
}

/**
 * Decode an M-Retrieve.conf. A body that is not a multipart becomes one part; a PDU without
 * Content-Type is accepted only as an error answer (X-Mms-Retrieve-Status other than Ok).
 */
export function decodeRetrieveConf(buf: Buffer): RetrieveConf {
  const r = new WspReader(buf);
  const { transactionId, mmsVersion } = readPreamble(r, MessageType.RetrieveConf, 'optional');
  return withTransactionId(transactionId, () => {
    const m: RetrieveConf = { mmsVersion, to: [], cc: [], parts: [] };
    if (transactionId !== undefined) m.transactionId = transactionId;
    readHeaders(r, (code) => {
      switch (code) {
        case Header.MessageId:
          m.messageId = r.textString();
          return true;
        case Header.Date:
          m.date = r.integerValue();
          return true;
        case Header.From: {
          const from = readFrom(r);
          if (from !== undefined) m.from = from;
          return true;
        }
        case Header.To:
          m.to.push(fromWireAddress(r.encodedString()));
          return true;
        case Header.Cc:
          m.cc.push(fromWireAddress(r.encodedString()));
          return true;
        case Header.Subject:
          m.subject = r.encodedString();
          return true;
        case Header.MessageClass:
          m.messageClass = readMessageClass(r);
          return true;
        case Header.Priority:
          m.priority = readToken(r, PRIORITY, 'X-Mms-Priority');
          return true;
        case Header.DeliveryReport:
          m.deliveryReport = readBool(r);
          return true;
        case Header.ReadReport:
          m.readReport = readBool(r);
          return true;
        case Header.RetrieveStatus:
          m.retrieveStatus = r.octet();
          if (m.retrieveStatus < 0x80) r.fail('bad X-Mms-Retrieve-Status');
          return true;
        case Header.RetrieveText:
          m.retrieveText = r.encodedString();
          return true;
        case Header.ContentType:
          readBody(r, m);
          return 'stop';
        default:
          return false;
      }
    });
    if (m.contentType === undefined && (m.retrieveStatus === undefined || m.retrieveStatus === RETRIEVE_OK)) {
      r.fail('Content-Type header missing');
    }
    return m;
  });
}

function readBody(r: WspReader, m: RetrieveConf): void {
  const ct = r.contentType();
  m.contentType = ct.mediaType;
  if (isMultipart(ct.mediaType)) {
    if (ct.params.type !== undefined) m.type = ct.params.type;
    if (ct.params.start !== undefined) m.start = ct.params.start;
    m.parts = readParts(r);
    if (r.remaining > 0) r.fail(`${r.remaining} octets after the last part`);
    return;
  }
  const part: MmsPart = { contentType: ct.mediaType, data: Buffer.from(r.rest()) };
  if (ct.params.charset !== undefined) part.charset = ct.params.charset;
  if (ct.params.name !== undefined) part.name = ct.params.name;
  m.parts = [part];
}

/**
 * The text of a text part, decoded from its charset. A text part without one is us-ascii by
 * RFC 2046 §4.1.2, read as UTF-8 (its superset, and what senders mostly mean). Undefined for
 * parts that are not text.
 */
export function partText(part: MmsPart): string | undefined {
  if (!isTextType(part.contentType) && part.charset === undefined) return undefined;
  return decodeText(part.data, part.charset ?? 'utf-8');
}
