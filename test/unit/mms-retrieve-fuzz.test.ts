// DESIGN.md §12: a received M-Retrieve.conf is untrusted. Mutations of a real multipart message
// (octets changed, inserted, removed; cut anywhere) decode or raise MmsDecodeError, nothing else:
// the receiver fails such a message with the decoder's reason. Random octets and plain
// truncations are covered in mms-inbound-pdu.test.ts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeRetrieveConf, encodeRetrieveConf } from '../../src/mms/retrieve.js';
import { MULTIPART_RELATED, MmsDecodeError } from '../../src/mms/types.js';

const VALID = encodeRetrieveConf(
  {
    transactionId: 'T-1',
    mmsVersion: '1.2',
    messageId: 'msg-1',
    date: 1_700_000_000,
    from: '+8613800000000',
    to: ['+15550001', 'gw@example.com'],
    cc: ['+15550002'],
    subject: '门口有人',
    contentType: MULTIPART_RELATED,
    type: 'application/smil',
    start: '<smil>',
    parts: [
      { contentType: 'application/smil', contentLocation: 'smil.smil', contentId: '<smil>', data: Buffer.from('<smil/>') },
      { contentType: 'text/plain', charset: 'utf-8', contentLocation: 'text.txt', data: Buffer.from('有人 ✓') },
      { contentType: 'text/plain', charset: 'iso-10646-ucs-2', name: 'ucs.txt', data: Buffer.from([0x4f, 0x60, 0x59, 0x7d]) },
      { contentType: 'image/jpeg', name: 'photo.jpg', filename: 'photo.jpg', data: Buffer.alloc(64, 0xa5) },
    ],
  },
  { subjectCharset: 'gbk' },
);

function decodesOrNamesIt(buf: Buffer): void {
  try {
    decodeRetrieveConf(buf);
  } catch (e) {
    expect(e).toBeInstanceOf(MmsDecodeError);
  }
}

describe('decodeRetrieveConf on mutated messages', () => {
  it('the message itself decodes', () => {
    expect(decodeRetrieveConf(VALID).parts).toHaveLength(4);
  });

  it('octets changed, inserted or removed anywhere: a message or MmsDecodeError', () => {
    const edit = fc.record({ at: fc.nat(), kind: fc.constantFrom('set', 'insert', 'remove'), octet: fc.integer({ min: 0, max: 255 }) });
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 6 }), (edits) => {
        let b = Buffer.from(VALID);
        for (const { at, kind, octet } of edits) {
          const i = at % (b.length + 1);
          if (kind === 'set' && i < b.length) b[i] = octet;
          else if (kind === 'insert') b = Buffer.concat([b.subarray(0, i), Buffer.from([octet]), b.subarray(i)]);
          else if (kind === 'remove' && i < b.length) b = Buffer.concat([b.subarray(0, i), b.subarray(i + 1)]);
        }
        decodesOrNamesIt(b);
      }),
      { numRuns: 2000 },
    );
  });

  it('every cut of the message raises MmsDecodeError', () => {
    for (let n = 0; n < VALID.length; n++) expect(() => decodeRetrieveConf(VALID.subarray(0, n))).toThrow(MmsDecodeError);
  });
});
