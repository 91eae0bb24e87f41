// The inbound MMS PDUs (OMA-MMS-ENC 1.2 §6.2–§6.7): fixtures from mmsd's unit tests and octets
// spelled out from the header tables, property round trips (subjects in every charset we name),
// and garbage that raises only MmsDecodeError.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  decodeAcknowledgeInd,
  decodeDeliveryInd,
  decodeNotificationInd,
  decodeNotifyRespInd,
  decodePushedMms,
  decodeReadOrigInd,
  encodeAcknowledgeInd,
  encodeDeliveryInd,
  encodeNotificationInd,
  encodeNotifyRespInd,
  encodeReadOrigInd,
} from '../../src/mms/notification.js';
import { decodeRetrieveConf, encodeRetrieveConf, partText } from '../../src/mms/retrieve.js';
import { guessContentType, isTextType } from '../../src/mms/content-type.js';
import { composeBody } from '../../src/mms/smil.js';
import {
  MMS_STATUSES,
  MULTIPART_MIXED,
  MmsDecodeError,
  type DeliveryInd,
  type MmsPart,
  type NotificationInd,
  type ReadOrigInd,
  type RetrieveConf,
} from '../../src/mms/types.js';

const cstr = (s: string): number[] => [...Buffer.from(s, 'latin1'), 0x00];

// unit/test-mmsutil.c of mmsd (Intel, 2010-2011), as kept in the NeoSMatrix/oFono repository.
const mmsd = {
  notifyInd1: [
    0x8c, 0x82, 0x98, 0x4f, 0x67, 0x51, 0x4b, 0x4b, 0x42, 0x00, 0x8d, 0x90, 0x89, 0x08, 0x80, 0x45, 0x72, 0x6f, 0x74, 0x69, 0x6b, 0x00, 0x96, 0x50,
    0x69, 0x6e, 0x2d, 0x55, 0x70, 0x73, 0x00, 0x8a, 0x80, 0x8e, 0x02, 0x40, 0x00, 0x88, 0x05, 0x81, 0x03, 0x03, 0xf4, 0x80, 0x83, 0x68, 0x74, 0x74,
    0x70, 0x3a, 0x2f, 0x2f, 0x65, 0x70, 0x73, 0x33, 0x2e, 0x64, 0x65, 0x2f, 0x4f, 0x2f, 0x5a, 0x39, 0x49, 0x5a, 0x4f, 0x00,
  ],
  notifyInd2: [
    0x8c, 0x82, 0x98, 0x77, 0x4c, 0x4a, 0x65, 0x54, 0x37, 0x54, 0x48, 0x75, 0x00, 0x8d, 0x90, 0x89, 0x17, 0x80, 0x31, 0x35, 0x35, 0x35, 0x31, 0x32,
    0x33, 0x30, 0x30, 0x30, 0x30, 0x2f, 0x54, 0x59, 0x50, 0x45, 0x3d, 0x50, 0x4c, 0x4d, 0x4e, 0x00, 0x8a, 0x80, 0x8e, 0x02, 0x5a, 0x1d, 0x88, 0x05,
    0x81, 0x03, 0x03, 0xf4, 0x80, 0x83, 0x68, 0x74, 0x74, 0x70, 0x3a, 0x2f, 0x2f, 0x6d, 0x6d, 0x73, 0x63, 0x31, 0x31, 0x3a, 0x31, 0x30, 0x30, 0x32,
    0x31, 0x2f, 0x6d, 0x6d, 0x73, 0x63, 0x2f, 0x31, 0x5f, 0x31, 0x3f, 0x77, 0x4c, 0x4a, 0x65, 0x54, 0x37, 0x54, 0x48, 0x75, 0x00,
  ],
  retrieveConf1: [
    0x8c, 0x84, 0x98, 0x31, 0x32, 0x30, 0x31, 0x36, 0x35, 0x37, 0x32, 0x33, 0x38, 0x00, 0x8d, 0x93, 0x8b, 0x6d, 0x74, 0x2d, 0x32, 0x31, 0x32, 0x00,
    0x85, 0x04, 0x47, 0x9f, 0xd5, 0x96, 0x89, 0x15, 0x80, 0x2b, 0x34, 0x39, 0x38, 0x39, 0x31, 0x30, 0x30, 0x30, 0x2f, 0x54, 0x59, 0x50, 0x45, 0x3d,
    0x50, 0x4c, 0x4d, 0x4e, 0x00, 0x96, 0x11, 0x83, 0x4d, 0x4d, 0x53, 0x2d, 0x31, 0x2e, 0x33, 0x2d, 0x63, 0x6f, 0x6e, 0x2d, 0x32, 0x31, 0x32, 0x00,
    0x84, 0xa3, 0x01, 0x40, 0x3b, 0x14, 0x83, 0x85, 0x54, 0x65, 0x78, 0x74, 0x5f, 0x75, 0x73, 0x2d, 0x61, 0x73, 0x63, 0x69, 0x69, 0x2e, 0x74, 0x78,
    0x74, 0x00, 0x81, 0x83, 0xc0, 0x22, 0x3c, 0x54, 0x65, 0x78, 0x74, 0x5f, 0x75, 0x73, 0x2d, 0x61, 0x73, 0x63, 0x69, 0x69, 0x2e, 0x74, 0x78, 0x74,
    0x3e, 0x00, 0x8e, 0x54, 0x65, 0x78, 0x74, 0x5f, 0x75, 0x73, 0x2d, 0x61, 0x73, 0x63, 0x69, 0x69, 0x2e, 0x74, 0x78, 0x74, 0x00, 0x54, 0x68, 0x65,
    0x20, 0x71, 0x75, 0x69, 0x63, 0x6b, 0x20, 0x62, 0x72, 0x6f, 0x77, 0x6e, 0x20, 0x66, 0x6f, 0x78, 0x20, 0x6a, 0x75, 0x6d, 0x70, 0x65, 0x64, 0x20,
    0x6f, 0x76, 0x65, 0x72, 0x20, 0x74, 0x68, 0x65, 0x20, 0x6c, 0x61, 0x7a, 0x79, 0x20, 0x64, 0x6f, 0x67, 0x20, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36,
    0x37, 0x38, 0x39, 0x30, 0x2f, 0x21, 0x28, 0x29,
  ],
  retrieveConf2: [
    0x8c, 0x84, 0x98, 0x31, 0x32, 0x30, 0x31, 0x36, 0x35, 0x37, 0x32, 0x33, 0x38, 0x00, 0x8d, 0x90, 0x85, 0x04, 0x4d, 0x99, 0x92, 0x5e, 0x96, 0x6d,
    0x75, 0x6c, 0x74, 0x69, 0x74, 0x6f, 0x00, 0x89, 0x17, 0x80, 0x2b, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x30, 0x2f, 0x54, 0x59,
    0x50, 0x45, 0x3d, 0x50, 0x4c, 0x4d, 0x4e, 0x00, 0x97, 0x2b, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x2f, 0x54, 0x59, 0x50,
    0x45, 0x3d, 0x50, 0x4c, 0x4d, 0x4e, 0x00, 0x97, 0x2b, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x2f, 0x54, 0x59, 0x50, 0x45,
    0x3d, 0x50, 0x4c, 0x4d, 0x4e, 0x00, 0x97, 0x2b, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x2f, 0x54, 0x59, 0x50, 0x45, 0x3d,
    0x50, 0x4c, 0x4d, 0x4e, 0x00, 0x8a, 0x80, 0x8f, 0x81, 0x94, 0x80, 0x86, 0x81, 0x90, 0x81, 0x84, 0xa3, 0x01, 0x26, 0x0e, 0x83, 0xc0, 0x22, 0x3c,
    0x47, 0x65, 0x6e, 0x65, 0x72, 0x69, 0x63, 0x5f, 0x54, 0x65, 0x78, 0x74, 0x2e, 0x74, 0x78, 0x74, 0x3e, 0x00, 0x8e, 0x2f, 0x74, 0x6d, 0x70, 0x2f,
    0x70, 0x68, 0x70, 0x38, 0x76, 0x6c, 0x66, 0x79, 0x42, 0x00, 0xef, 0xbb, 0xbf, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0x57, 0x6f, 0x72, 0x6c, 0x64,
  ],
  retrieveConf3: [
    0x8c, 0x84, 0x8d, 0x90, 0x85, 0x04, 0x4d, 0x9e, 0xe2, 0xf9, 0x96, 0x74, 0x65, 0x73, 0x74, 0x20, 0x77, 0x69, 0x74, 0x68, 0x6f, 0x75, 0x74, 0x20,
    0x74, 0x72, 0x61, 0x6e, 0x73, 0x61, 0x63, 0x74, 0x69, 0x6f, 0x6e, 0x20, 0x49, 0x44, 0x00, 0x89, 0x17, 0x80, 0x2b, 0x31, 0x32, 0x33, 0x34, 0x35,
    0x36, 0x37, 0x38, 0x39, 0x30, 0x2f, 0x54, 0x59, 0x50, 0x45, 0x3d, 0x50, 0x4c, 0x4d, 0x4e, 0x00, 0x97, 0x2b, 0x36, 0x36, 0x36, 0x36, 0x36, 0x36,
    0x36, 0x36, 0x36, 0x36, 0x2f, 0x54, 0x59, 0x50, 0x45, 0x3d, 0x50, 0x4c, 0x4d, 0x4e, 0x00, 0x8a, 0x80, 0x8f, 0x81, 0x94, 0x80, 0x86, 0x81, 0x90,
    0x81, 0x84, 0xa3, 0x01, 0x1f, 0x0e, 0x83, 0xc0, 0x22, 0x3c, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x2e, 0x74, 0x78, 0x74, 0x3e, 0x00, 0x8e, 0x2f, 0x74,
    0x6d, 0x70, 0x2f, 0x70, 0x68, 0x70, 0x32, 0x49, 0x6e, 0x74, 0x53, 0x37, 0x00, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0x57, 0x6f, 0x72, 0x6c, 0x64,
    0x20, 0x21, 0x0a,
  ],
  notifyRespInd: [0x8c, 0x83, 0x98, ...cstr('0123456789abcdef'), 0x8d, 0x92, 0x95, 0x81],
};

describe('mmsd fixtures', () => {
  it('decodes M-Notification.ind 1: subject, class, size, relative expiry', () => {
    expect(decodeNotificationInd(Buffer.from(mmsd.notifyInd1))).toEqual({
      transactionId: 'OgQKKB',
      mmsVersion: '1.0',
      from: 'Erotik',
      subject: 'Pin-Ups',
      messageClass: 'personal',
      messageSize: 16384,
      expiry: { relative: 259200 },
      contentLocation: 'http://eps3.de/O/Z9IZO',
    });
  });

  it('decodes M-Notification.ind 2 without a subject', () => {
    const n = decodeNotificationInd(Buffer.from(mmsd.notifyInd2));
    expect([n.transactionId, n.from, n.subject, n.messageSize, n.contentLocation]).toEqual([
      'wLJeT7THu',
      '15551230000',
      undefined,
      23069,
      'http://mmsc11:10021/mmsc/1_1?wLJeT7THu',
    ]);
  });

  it('decodes M-Retrieve.conf 1: us-ascii subject, one named text part', () => {
    expect(decodeRetrieveConf(Buffer.from(mmsd.retrieveConf1))).toEqual({
      transactionId: '1201657238',
      mmsVersion: '1.3',
      messageId: 'mt-212',
      date: 1201657238,
      from: '+49891000',
      to: [],
      cc: [],
      subject: 'MMS-1.3-con-212',
      contentType: MULTIPART_MIXED,
      parts: [
        {
          contentType: 'text/plain',
          name: 'Text_us-ascii.txt',
          contentId: '<Text_us-ascii.txt>',
          contentLocation: 'Text_us-ascii.txt',
          data: Buffer.from('The quick brown fox jumped over the lazy dog 1234567890/!()'),
        },
      ],
    });
  });

  it('decodes M-Retrieve.conf 2 with three To headers', () => {
    const m = decodeRetrieveConf(Buffer.from(mmsd.retrieveConf2));
    expect(m.to).toEqual(['+1111111111', '+2222222222', '+3333333333']);
    expect([m.subject, m.messageClass, m.priority, m.deliveryReport, m.readReport, m.date]).toEqual(['multito', 'personal', 'normal', false, false, 0x4d99925e]);
    expect(m.parts).toHaveLength(1);
    expect([m.parts[0].contentLocation, m.parts[0].contentId]).toEqual(['/tmp/php8vlfyB', '<Generic_Text.txt>']);
    expect(partText(m.parts[0])).toBe('Hello World'); // the part starts with a UTF-8 BOM, which goes
  });

  it('decodes M-Retrieve.conf 3, which has no transaction id', () => {
    const m = decodeRetrieveConf(Buffer.from(mmsd.retrieveConf3));
    expect(m.transactionId).toBeUndefined();
    expect([m.subject, m.from, m.to]).toEqual(['test without transaction ID', '+1234567890', ['+6666666666']]);
    expect(partText(m.parts[0])).toBe('Hello World !\n');
  });

  it('encodes M-NotifyResp.ind (retrieved) exactly as mmsd does', () => {
    const pdu = encodeNotifyRespInd({ transactionId: '0123456789abcdef', mmsVersion: '1.2', status: 'retrieved' });
    expect(pdu.toString('hex')).toBe(Buffer.from(mmsd.notifyRespInd).toString('hex'));
    expect(decodeNotifyRespInd(pdu)).toEqual({ transactionId: '0123456789abcdef', mmsVersion: '1.2', status: 'retrieved' });
  });
});

describe('octets from the header tables', () => {
  it('writes M-Delivery.ind: version, Message-ID, To, Date, X-Mms-Status, no transaction id', () => {
    const d: DeliveryInd = { mmsVersion: '1.2', messageId: 'mid-1', to: '+15551234', date: 1_700_000_000, status: 'retrieved' };
    const bytes = Buffer.from([0x8c, 0x86, 0x8d, 0x92, 0x8b, ...cstr('mid-1'), 0x97, ...cstr('+15551234/TYPE=PLMN'), 0x85, 0x04, 0x65, 0x53, 0xf1, 0x00, 0x95, 0x81]);
    expect(encodeDeliveryInd(d).toString('hex')).toBe(bytes.toString('hex'));
    expect(decodeDeliveryInd(bytes)).toEqual(d);
    expect(decodePushedMms(bytes)).toEqual({ kind: 'delivery', pdu: d });
  });

  it('maps X-Mms-Status 0x80..0x87 to its names', () => {
    const base = [0x8c, 0x86, 0x8d, 0x92, 0x8b, ...cstr('m'), 0x97, ...cstr('a@b.c'), 0x85, 0x01, 0x01, 0x95];
    const names = Array.from({ length: 8 }, (_, i) => decodeDeliveryInd(Buffer.from([...base, 0x80 + i])).status);
    expect(names).toEqual(['expired', 'retrieved', 'rejected', 'deferred', 'unrecognised', 'indeterminate', 'forwarded', 'unreachable']);
    expect(() => decodeDeliveryInd(Buffer.from([...base, 0x88]))).toThrow(/X-Mms-Status/);
    expect(() => decodeDeliveryInd(Buffer.from(base.slice(0, -4)))).toThrow(/Date missing/);
  });

  it('writes M-Read-Orig.ind with From and X-Mms-Read-Status', () => {
    const m: ReadOrigInd = { mmsVersion: '1.2', messageId: 'm9', to: '+4911', from: '+4922', date: 1, readStatus: 'deleted' };
    const bytes = Buffer.from([0x8c, 0x88, 0x8d, 0x92, 0x8b, ...cstr('m9'), 0x97, ...cstr('+4911/TYPE=PLMN'), 0x89, 0x11, 0x80, ...cstr('+4922/TYPE=PLMN'), 0x85, 0x01, 0x01, 0x9b, 0x81]);
    expect(encodeReadOrigInd(m).toString('hex')).toBe(bytes.toString('hex'));
    expect(decodePushedMms(bytes)).toEqual({ kind: 'read-orig', pdu: m });
  });

  it('writes M-Acknowledge.ind and M-NotifyResp.ind with Report-Allowed', () => {
    expect(encodeAcknowledgeInd({ transactionId: 'T', mmsVersion: '1.2', reportAllowed: true }).toString('hex')).toBe(
      Buffer.from([0x8c, 0x85, 0x98, ...cstr('T'), 0x8d, 0x92, 0x91, 0x80]).toString('hex'),
    );
    const resp = encodeNotifyRespInd({ transactionId: 'T', mmsVersion: '1.2', status: 'deferred', reportAllowed: false });
    expect(resp.toString('hex')).toBe(Buffer.from([0x8c, 0x83, 0x98, ...cstr('T'), 0x8d, 0x92, 0x95, 0x83, 0x91, 0x81]).toString('hex'));
  });

  it('reads an absolute expiry, the Insert-address-token and a GBK subject in a notification', () => {
    const n: NotificationInd = { transactionId: 'x', mmsVersion: '1.2', subject: '你好', expiry: { absolute: 1_800_000_000 }, contentLocation: 'http://m/x' };
    const pdu = encodeNotificationInd(n, { subjectCharset: 'gbk' });
    // Subject: Value-length 7, GBK (113 = 0xF1), Quote, C4E3 BAC3, NUL.
    expect(pdu.indexOf(Buffer.from([0x96, 0x07, 0xf1, 0x7f, 0xc4, 0xe3, 0xba, 0xc3, 0x00]))).toBeGreaterThan(0);
    expect(decodeNotificationInd(pdu)).toEqual(n);
    const withInsert = Buffer.concat([pdu.subarray(0, 7), Buffer.from([0x89, 0x01, 0x81]), pdu.subarray(7)]);
    expect(decodeNotificationInd(withInsert).from).toBeUndefined();
    expect(() => decodeNotificationInd(pdu.subarray(0, pdu.indexOf(0x83)))).toThrow(/Content-Location missing/);
  });

  it('reads an error answer without a body, and a body that is not a multipart', () => {
    const error: RetrieveConf = { mmsVersion: '1.2', to: [], cc: [], retrieveStatus: 0xe2, retrieveText: 'gone', parts: [] };
    expect(decodeRetrieveConf(encodeRetrieveConf(error))).toEqual(error);
    expect(() => decodeRetrieveConf(encodeRetrieveConf({ ...error, retrieveStatus: 0x80 }))).toThrow(/Content-Type header missing/);
    const plain: RetrieveConf = { mmsVersion: '1.2', to: ['+1'], cc: [], contentType: 'text/plain', parts: [{ contentType: 'text/plain', charset: 'iso-8859-1', data: Buffer.from('caf\xe9', 'latin1') }] };
    const back = decodeRetrieveConf(encodeRetrieveConf(plain));
    expect(back).toEqual(plain);
    expect(partText(back.parts[0])).toBe('café');
  });

  it('attaches the transaction id to a decode error after it', () => {
    const pdu = encodeNotificationInd({ transactionId: 'tid-7', mmsVersion: '1.2', contentLocation: 'http://m/1' });
    try {
      decodeNotificationInd(pdu.subarray(0, pdu.length - 3));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(MmsDecodeError);
      expect((e as MmsDecodeError).transactionId).toBe('tid-7');
    }
  });
});

// Arbitraries: texts each charset can carry, addresses, parts.
const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 60 });
const latin1 = fc.string({ unit: fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0xa0, max: 0xff })).map((c) => String.fromCharCode(c)), maxLength: 60 });
const chinese = fc.string({ unit: fc.oneof(fc.integer({ min: 0x4e00, max: 0x9fa5 }), fc.integer({ min: 0x20, max: 0x7e })).map((c) => String.fromCharCode(c)), maxLength: 40 });
const bmp = fc.string({ unit: fc.integer({ min: 1, max: 0xfffd }).filter((c) => c < 0xd800 || c > 0xdfff).map((c) => String.fromCharCode(c)), maxLength: 40 });
const utf8 = fc.string({ unit: 'grapheme', maxLength: 40 }).filter((s) => !s.includes('\0'));
const subjectIn = fc.oneof(
  fc.record({ text: printable, charset: fc.constant('us-ascii') }),
  fc.record({ text: latin1, charset: fc.constant('iso-8859-1') }),
  fc.record({ text: chinese, charset: fc.constantFrom('gbk', 'gb18030') }),
  fc.record({ text: bmp, charset: fc.constantFrom('iso-10646-ucs-2', 'utf-16be') }),
  fc.record({ text: utf8, charset: fc.constant('utf-8') }),
);
const address = fc.oneof(fc.stringMatching(/^\+?[0-9]{3,15}$/), fc.emailAddress().filter((e) => e.length <= 50));
const seconds = fc.integer({ min: 0, max: 2 ** 40 });
const token = fc.stringMatching(/^[A-Za-z0-9._-]{1,40}$/);
const url = token.map((t) => `http://mmsc.example:8002/m/${t}`);
const version = fc.constantFrom('1.0', '1.1', '1.2', '1.3');
const name = fc.stringMatching(/^[A-Za-z0-9_-]{1,20}\.(txt|jpg|png|gif|amr|3gp|smil|bin)$/);
const part: fc.Arbitrary<MmsPart> = fc
  .record({ name, charset: fc.constantFrom('us-ascii', 'utf-8', 'iso-10646-ucs-2', 'gbk', 'iso-8859-1'), location: fc.boolean(), id: fc.boolean(), data: fc.uint8Array({ maxLength: 2000 }) })
  .map((r) => {
    const p: MmsPart = { contentType: guessContentType(r.name), name: r.name, data: Buffer.from(r.data) };
    if (isTextType(p.contentType)) p.charset = r.charset;
    if (r.location) p.contentLocation = r.name;
    if (r.id) p.contentId = `<${r.name}>`;
    return p;
  });

const notification = fc.record({
  n: fc.record(
    {
      transactionId: token,
      mmsVersion: version,
      from: address,
      messageClass: fc.constantFrom('personal', 'advertisement', 'informational', 'auto', 'x-other'),
      messageSize: fc.integer({ min: 0, max: 2 ** 32 }),
      expiry: fc.oneof(fc.record({ relative: fc.integer({ min: 0, max: 2 ** 31 }) }), fc.record({ absolute: seconds })),
      contentLocation: url,
      priority: fc.constantFrom('low' as const, 'normal' as const, 'high' as const),
      deliveryReport: fc.boolean(),
    },
    { requiredKeys: ['transactionId', 'mmsVersion', 'contentLocation'] },
  ),
  subject: fc.option(subjectIn, { nil: undefined }),
});

const retrieve = fc.record({
  m: fc
    .record(
      {
        transactionId: token,
        mmsVersion: version,
        messageId: token,
        date: seconds,
        from: address,
        to: fc.array(address, { maxLength: 5 }),
        cc: fc.array(address, { maxLength: 3 }),
        messageClass: fc.constantFrom('personal', 'auto'),
        priority: fc.constantFrom('low' as const, 'high' as const),
        deliveryReport: fc.boolean(),
        readReport: fc.boolean(),
        retrieveStatus: fc.constant(0x80),
        parts: fc.array(part, { maxLength: 6 }),
      },
      { requiredKeys: ['mmsVersion', 'to', 'cc', 'parts'] },
    )
    .map(({ parts, ...rest }): RetrieveConf => ({ ...rest, ...composeBody(parts) })),
  subject: fc.option(subjectIn, { nil: undefined }),
});

const delivery: fc.Arbitrary<DeliveryInd> = fc.record({ mmsVersion: version, messageId: token, to: address, date: seconds, status: fc.constantFrom(...MMS_STATUSES) });
const readOrig: fc.Arbitrary<ReadOrigInd> = fc.record({
  mmsVersion: version,
  messageId: token,
  to: address,
  from: address,
  date: seconds,
  readStatus: fc.constantFrom('read' as const, 'deleted' as const),
});

describe('round trips', () => {
  it('M-Notification.ind, with a subject in any charset', () => {
    fc.assert(
      fc.property(notification, ({ n, subject }) => {
        const msg = subject === undefined ? n : { ...n, subject: subject.text };
        const pdu = encodeNotificationInd(msg, subject === undefined ? {} : { subjectCharset: subject.charset });
        expect(decodeNotificationInd(pdu)).toEqual(msg);
        expect(decodePushedMms(pdu)).toEqual({ kind: 'notification', pdu: msg });
      }),
      { numRuns: 300 },
    );
  });

  it('M-Retrieve.conf, with a subject in any charset and any parts', () => {
    fc.assert(
      fc.property(retrieve, ({ m, subject }) => {
        const msg = subject === undefined ? m : { ...m, subject: subject.text };
        expect(decodeRetrieveConf(encodeRetrieveConf(msg, subject === undefined ? {} : { subjectCharset: subject.charset }))).toEqual(msg);
      }),
      { numRuns: 200 },
    );
  });

  it('M-Delivery.ind, M-Read-Orig.ind, M-NotifyResp.ind and M-Acknowledge.ind', () => {
    fc.assert(
      fc.property(delivery, readOrig, token, fc.constantFrom(...MMS_STATUSES), fc.option(fc.boolean(), { nil: undefined }), (d, r, tid, status, allowed) => {
        expect(decodeDeliveryInd(encodeDeliveryInd(d))).toEqual(d);
        expect(decodeReadOrigInd(encodeReadOrigInd(r))).toEqual(r);
        const resp = allowed === undefined ? { transactionId: tid, mmsVersion: '1.2', status } : { transactionId: tid, mmsVersion: '1.2', status, reportAllowed: allowed };
        expect(decodeNotifyRespInd(encodeNotifyRespInd(resp))).toEqual(resp);
        const ack = allowed === undefined ? { transactionId: tid, mmsVersion: '1.2' } : { transactionId: tid, mmsVersion: '1.2', reportAllowed: allowed };
        expect(decodeAcknowledgeInd(encodeAcknowledgeInd(ack))).toEqual(ack);
      }),
    );
  });
});

describe('garbage', () => {
  const decoders = [decodeNotificationInd, decodeRetrieveConf, decodeDeliveryInd, decodeReadOrigInd, decodeNotifyRespInd, decodeAcknowledgeInd, decodePushedMms];

  it('every truncation of a valid PDU throws MmsDecodeError (a cut between headers of optional fields aside)', () => {
    fc.assert(
      fc.property(notification, retrieve, delivery, readOrig, fc.nat(), ({ n }, { m }, d, r, cut) => {
        const cases: [Buffer, (b: Buffer) => unknown][] = [
          [encodeNotificationInd(n), decodeNotificationInd],
          [encodeRetrieveConf(m), decodeRetrieveConf],
          [encodeDeliveryInd(d), decodeDeliveryInd],
          [encodeReadOrigInd(r), decodeReadOrigInd],
        ];
        for (const [pdu, decode] of cases) {
          // Content-Location, Content-Type + body, and Status / Read-Status are each written last
          // and required, so any cut loses a required field or splits a value.
          expect(() => decode(pdu.subarray(0, cut % pdu.length))).toThrow(MmsDecodeError);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('random octets throw only MmsDecodeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0x80, max: 0x88 }), (bytes, type) => {
        for (const buf of [Buffer.from(bytes), Buffer.from([0x8c, type, ...bytes]), Buffer.from([0x8c, type, 0x98, 0x41, 0x00, 0x8d, 0x92, ...bytes])]) {
          for (const decode of decoders) {
            try {
              decode(buf);
            } catch (e) {
              expect(e).toBeInstanceOf(MmsDecodeError);
            }
          }
        }
      }),
      { numRuns: 1000 },
    );
  });
});
