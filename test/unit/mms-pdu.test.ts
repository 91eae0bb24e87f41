// M-Send.req / M-Send.conf: fixtures checked octet by octet against OMA-MMS-ENC 1.2 Table 12 and
// §7.2, and property tests that decode(encode(x)) equals x within the limits of DESIGN.md §6.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeSendConf, decodeSendReq, encodeSendConf, encodeSendReq } from '../../src/mms/pdu.js';
import { guessContentType, isTextType } from '../../src/mms/content-type.js';
import { composeBody } from '../../src/mms/smil.js';
import { MULTIPART_MIXED, MULTIPART_RELATED, MmsDecodeError, type MmsPart, type SendReq } from '../../src/mms/types.js';

const ascii = (s: string): number[] => [...Buffer.from(s, 'latin1')];
const cstr = (s: string): number[] => [...ascii(s), 0x00];

describe('M-Send.req fixture', () => {
  const msg: SendReq = {
    transactionId: 'T1',
    mmsVersion: '1.2',
    date: 1_700_000_000,
    to: ['+15551234'],
    cc: ['copy.test@quectel.com'],
    bcc: [],
    subject: '你好',
    expiry: { relative: 3600 },
    priority: 'high',
    deliveryReport: false,
    readReport: true,
    contentType: MULTIPART_MIXED,
    parts: [{ contentType: 'text/plain', charset: 'utf-8', name: 'a.txt', contentLocation: 'a.txt', data: Buffer.from('hi') }],
  };
  const expected = Buffer.from([
    0x8c, 0x80, // X-Mms-Message-Type: m-send-req
    0x98, ...cstr('T1'), // X-Mms-Transaction-ID
    0x8d, 0x92, // X-Mms-MMS-Version 1.2
    0x85, 0x04, 0x65, 0x53, 0xf1, 0x00, // Date: long-integer 1700000000
    0x89, 0x01, 0x81, // From: Value-length 1, Insert-address-token
    0x97, ...cstr('+15551234/TYPE=PLMN'), // To
    0x82, ...cstr('copy.test@quectel.com'), // Cc: e-mail as it is
    0x96, 0x09, 0xea, 0x7f, 0xe4, 0xbd, 0xa0, 0xe5, 0xa5, 0xbd, 0x00, // Subject: UTF-8 (106), Quote, text
    0x88, 0x04, 0x81, 0x02, 0x0e, 0x10, // X-Mms-Expiry: relative 3600 s
    0x8f, 0x82, // X-Mms-Priority: high
    0x86, 0x81, // X-Mms-Delivery-Report: no
    0x90, 0x80, // X-Mms-Read-Report: yes
    0x84, 0xa3, // Content-Type: application/vnd.wap.multipart.mixed (0x23)
    0x01, // one entry
    0x12, 0x02, // HeadersLen 18, DataLen 2
    0x0a, 0x83, 0x81, 0xea, 0x85, ...cstr('a.txt'), // text/plain; charset=utf-8; name=a.txt
    0x8e, ...cstr('a.txt'), // Content-Location
    ...ascii('hi'),
  ]);

  it('encodes octet by octet as the header tables say', () => {
    expect(encodeSendReq(msg).toString('hex')).toBe(expected.toString('hex'));
  });

  it('decodes the same octets back', () => {
    expect(decodeSendReq(expected)).toEqual(msg);
  });

  it('writes a multipart.related body with type application/smil and start <smil>', () => {
    const pdu = encodeSendReq({ ...msg, ...composeBody([{ contentType: 'image/jpeg', name: 'p.jpg', contentLocation: 'p.jpg', contentId: '<p.jpg>', data: Buffer.from([1, 2]) }]) });
    const ct = Buffer.from([0x84, 0x1b, 0xb3, 0x89, ...cstr('application/smil'), 0x8a, ...cstr('<smil>')]);
    expect(pdu.indexOf(ct)).toBeGreaterThan(0);
    const back = decodeSendReq(pdu);
    expect(back.contentType).toBe(MULTIPART_RELATED);
    expect(back.parts.map((p) => [p.name, p.contentType, p.contentId])).toEqual([
      ['smil.smil', 'application/smil', '<smil>'],
      ['p.jpg', 'image/jpeg', '<p.jpg>'],
    ]);
    expect(back.parts[0].data.toString()).toContain('<img src="p.jpg" region="Image"/>');
    // Content-ID travels as a quoted-string (0xC0 0x22 … 0x00).
    expect(pdu.indexOf(Buffer.from([0xc0, 0x22, ...cstr('<smil>')]))).toBeGreaterThan(0);
  });

  it('writes a sender address with the Address-present-token', () => {
    const pdu = encodeSendReq({ ...msg, from: '+4911' });
    expect(pdu.indexOf(Buffer.from([0x89, 0x11, 0x80, ...cstr('+4911/TYPE=PLMN')]))).toBeGreaterThan(0);
    expect(decodeSendReq(pdu).from).toBe('+4911');
  });

  it('decodes a UCS-2 subject written by another encoder', () => {
    const ucs2 = Buffer.from([0x08, 0x02, 0x03, 0xe8, 0x4f, 0x60, 0x59, 0x7d, 0x00]);
    const start = expected.indexOf(0x96);
    const pdu = Buffer.concat([expected.subarray(0, start + 1), ucs2, expected.subarray(start + 11)]);
    expect(decodeSendReq(pdu).subject).toBe('你好');
  });

  it('reads a Content-Disposition filename and skips unknown headers', () => {
    const withFile = encodeSendReq({ ...msg, parts: [{ contentType: 'application/octet-stream', filename: 'x.bin', data: Buffer.alloc(3) }] });
    const back = decodeSendReq(withFile);
    expect(back.parts[0]).toEqual({ contentType: 'application/octet-stream', filename: 'x.bin', data: Buffer.alloc(3) });
    // X-Mms-Message-Size (0x8E) is not an M-Send.req header we keep: skipped, not an error.
    const start = expected.indexOf(Buffer.from([0x84, 0xa3]));
    const extra = Buffer.concat([expected.subarray(0, start), Buffer.from([0x8e, 0x02, 0x01, 0x00]), Buffer.from(cstr('X-Custom')), Buffer.from(cstr('v')), expected.subarray(start)]);
    expect(decodeSendReq(extra)).toEqual(msg);
  });
});

describe('M-Send.conf fixture', () => {
  it('encodes Ok with a message id octet by octet', () => {
    const bytes = Buffer.from([0x8c, 0x81, 0x98, ...cstr('T1'), 0x8d, 0x92, 0x92, 0x80, 0x8b, ...cstr('mid-1')]);
    const conf = { transactionId: 'T1', mmsVersion: '1.2', responseStatus: 0x80, messageId: 'mid-1' };
    expect(encodeSendConf(conf).toString('hex')).toBe(bytes.toString('hex'));
    expect(decodeSendConf(bytes)).toEqual(conf);
  });

  it('carries a permanent error status with its response text', () => {
    const bytes = Buffer.from([0x8c, 0x81, 0x98, ...cstr('T2'), 0x8d, 0x92, 0x92, 0xe2, 0x93, ...cstr('corrupt')]);
    const conf = { transactionId: 'T2', mmsVersion: '1.2', responseStatus: 0xe2, responseText: 'corrupt' };
    expect(encodeSendConf(conf).toString('hex')).toBe(bytes.toString('hex'));
    expect(decodeSendConf(bytes)).toEqual(conf);
  });

  it('refuses a conf without X-Mms-Response-Status, a wrong message type, and garbage', () => {
    expect(() => decodeSendConf(Buffer.from([0x8c, 0x81, 0x98, ...cstr('T'), 0x8d, 0x92]))).toThrow(/Response-Status missing/);
    expect(() => decodeSendConf(Buffer.from([0x8c, 0x80, 0x98, ...cstr('T'), 0x8d, 0x92]))).toThrow(MmsDecodeError);
    expect(() => decodeSendConf(Buffer.from('<html>nope</html>'))).toThrow(MmsDecodeError);
    expect(() => decodeSendConf(Buffer.alloc(0))).toThrow(MmsDecodeError);
  });
});

// Arbitraries within DESIGN.md §6 limits.
const phone = fc.stringMatching(/^\+?[0-9]{3,15}$/);
const email = fc.emailAddress().filter((e) => Buffer.byteLength(e) <= 50);
const address = fc.oneof(phone, email);
const recipients = fc.array(address, { maxLength: 6 });
const chinese = fc.array(fc.integer({ min: 0x4e00, max: 0x9fa5 }).map((c) => String.fromCharCode(c)), { maxLength: 66 }).map((a) => a.join(''));
const subject = fc
  .oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'grapheme', maxLength: 100 }), chinese)
  .filter((s) => !s.includes('\0') && Buffer.byteLength(s, 'utf8') <= 200);
const name = fc.stringMatching(/^[A-Za-z0-9_-]{1,20}\.(txt|jpg|png|gif|amr|3gp|mp4|vcf|smil|bin)$/);
const charset = fc.constantFrom('us-ascii', 'utf-8', 'iso-10646-ucs-2', 'gbk');
const part: fc.Arbitrary<MmsPart> = fc
  .record(
    {
      name,
      charset,
      contentLocation: fc.boolean(),
      contentId: fc.boolean(),
      filename: fc.option(name, { nil: undefined }),
      data: fc.uint8Array({ maxLength: 3000 }),
    },
    { requiredKeys: ['name', 'charset', 'contentLocation', 'contentId', 'data'] },
  )
  .map((r) => {
    const p: MmsPart = { contentType: guessContentType(r.name), name: r.name, data: Buffer.from(r.data) };
    if (isTextType(p.contentType)) p.charset = r.charset;
    if (r.contentLocation) p.contentLocation = r.name;
    if (r.contentId) p.contentId = `<${r.name}>`;
    if (r.filename !== undefined) p.filename = r.filename;
    return p;
  });
const sendReq: fc.Arbitrary<SendReq> = fc
  .record(
    {
      transactionId: fc.stringMatching(/^[A-Za-z0-9.-]{1,40}$/),
      date: fc.integer({ min: 0, max: 2 ** 40 }),
      from: address,
      to: recipients,
      cc: recipients,
      bcc: recipients,
      subject,
      messageClass: fc.constantFrom('personal', 'advertisement', 'informational', 'auto', 'x-custom'),
      expiry: fc.oneof(fc.record({ relative: fc.integer({ min: 0, max: 0x7fffffff }) }), fc.record({ absolute: fc.integer({ min: 0, max: 2 ** 40 }) })),
      priority: fc.constantFrom('low' as const, 'normal' as const, 'high' as const),
      senderVisibility: fc.constantFrom('hide' as const, 'show' as const),
      deliveryReport: fc.boolean(),
      readReport: fc.boolean(),
      parts: fc.array(part, { maxLength: 12 }),
    },
    { requiredKeys: ['transactionId', 'to', 'cc', 'bcc', 'parts'] },
  )
  .map(({ parts, ...rest }) => ({ mmsVersion: '1.2', ...rest, ...composeBody(parts) }));

describe('M-Send.req round trip', () => {
  it('decode(encode(x)) equals x for any message within the limits', () => {
    fc.assert(
      fc.property(sendReq, (msg) => {
        expect(decodeSendReq(encodeSendReq(msg))).toEqual(msg);
      }),
      { numRuns: 300 },
    );
  });

  it('throws MmsDecodeError, and nothing else, for every truncation of a valid PDU', () => {
    fc.assert(
      fc.property(sendReq, fc.nat(), (msg, cut) => {
        const pdu = encodeSendReq(msg);
        const at = cut % pdu.length;
        expect(() => decodeSendReq(pdu.subarray(0, at))).toThrow(MmsDecodeError);
      }),
      { numRuns: 200 },
    );
  });

  it('throws only MmsDecodeError on random octets', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, prefixed) => {
        const buf = Buffer.concat([Buffer.from(prefixed ? [0x8c, 0x80, 0x98, 0x41, 0x00, 0x8d, 0x92] : []), Buffer.from(bytes)]);
        try {
          decodeSendReq(buf);
        } catch (e) {
          expect(e).toBeInstanceOf(MmsDecodeError);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('M-Send.conf round trip', () => {
  it('decode(encode(x)) equals x for every response status', () => {
    const status = fc.constantFrom(0x80, ...Array.from({ length: 5 }, (_, i) => 0xc0 + i), ...Array.from({ length: 12 }, (_, i) => 0xe0 + i));
    fc.assert(
      fc.property(
        fc.record(
          {
            transactionId: fc.stringMatching(/^[A-Za-z0-9]{1,30}$/),
            mmsVersion: fc.constant('1.2'),
            responseStatus: status,
            responseText: subject,
            messageId: fc.stringMatching(/^[A-Za-z0-9@.-]{1,40}$/),
          },
          { requiredKeys: ['transactionId', 'mmsVersion', 'responseStatus'] },
        ),
        (conf) => {
          expect(decodeSendConf(encodeSendConf(conf))).toEqual(conf);
        },
      ),
    );
  });
});
