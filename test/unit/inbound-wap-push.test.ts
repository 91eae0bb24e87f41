// WSP Push decoding (WAP-230 §8.2.4.1) against real operator pushes published in test suites,
// SMS reassembly, and property tests: round trips and garbage that raises only MmsDecodeError.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeSmsPdu, type SmsDeliver } from '../../src/inbound/sms.js';
import { decodeWspPush, isMmsPush, MMS_APPLICATION_ID, type WspPush } from '../../src/inbound/wap-push.js';
import { reassemble, segmentKey, segmentOf, type Segment } from '../../src/inbound/reassembly.js';
import { decodeNotificationInd, decodePushedMms } from '../../src/mms/notification.js';
import { MmsDecodeError } from '../../src/mms/types.js';
import { encodeMmsPushSms, encodeWspPush, type WspPushInput } from '../../src/sim/sms-encode.js';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');

function segmentsOf(pdus: string[]): Segment[] {
  return pdus.map((p) => {
    const sms = decodeSmsPdu(p) as SmsDeliver;
    return segmentOf(sms)!;
  });
}

function joined(pdus: string[]): Buffer {
  const [r] = reassemble(segmentsOf(pdus));
  if (!r.complete) throw new Error(`incomplete, missing ${r.missing.join(',')}`);
  return r.data;
}

describe('MMS notifications pushed by real MMSCs', () => {
  // messaging/test/test_wap.py in pmarti/python-messaging: two SMS each, 16-bit concatenation.
  const ukFirst = [
    '0791447758100650400E80885810000000810004016082415464408C0C08049F8E020105040B8423F00106226170706C69636174696F6E2F766E642E7761702E6D6D732D6D65737361676500AF848C82984E4F4B3543694B636F544D595347344D4253774141734B7631344655484141414141414141008D908919802B3434373738353334323734392F545950453D504C4D4E008A808E0274008805810301194083687474703A2F',
    '0791447758100650440E8088581000000081000401608241547440440C08049F8E020205040B8423F02F70726F6D6D732F736572766C6574732F4E4F4B3543694B636F544D595347344D4253774141734B763134465548414141414141414100',
  ];
  const ukSecond = [
    '0791447758100650400E80885810000000800004017002314303408C0C0804DFD3020105040B8423F00106226170706C69636174696F6E2F766E642E7761702E6D6D732D6D65737361676500AF848C82984E4F4B3541315A6446544D595347344F3356514141734A763934476F4E4141414141414141008D908919802B3434373731373237353034392F545950453D504C4D4E008A808E0274008805810303F47F83687474703A2F',
    '0791447758100650440E8088581000000080000401700231431340440C0804DFD3020205040B8423F02F70726F6D6D732F736572766C6574732F4E4F4B3541315A6446544D595347344F3356514141734A763934476F4E414141414141414100',
  ];

  it('reassembles two SMS into a push carrying an M-Notification.ind (python-messaging)', () => {
    const push = decodeWspPush(joined(ukFirst));
    expect(push.tid).toBe(1);
    expect(push.contentType.mediaType).toBe('application/vnd.wap.mms-message');
    expect(push.applicationId).toBe(MMS_APPLICATION_ID);
    expect(isMmsPush(push)).toBe(true);
    expect(decodeNotificationInd(push.body)).toEqual({
      transactionId: 'NOK5CiKcoTMYSG4MBSwAAsKv14FUHAAAAAAAA',
      mmsVersion: '1.0',
      from: '+447785342749',
      messageClass: 'personal',
      messageSize: 29696,
      expiry: { relative: 72000 },
      contentLocation: 'http://promms/servlets/NOK5CiKcoTMYSG4MBSwAAsKv14FUHAAAAAAAA',
    });
    const second = decodePushedMms(decodeWspPush(joined(ukSecond)).body);
    expect(second).toMatchObject({ kind: 'notification', pdu: { from: '+447717275049', expiry: { relative: 259199 } } });
  });

  it('tells a Service Indication push apart from MMS (python-messaging)', () => {
    const si = [
      '0791947122725014440C8500947122921105F5112042519582408C0B05040B8423F0000396020101060B03AE81EAC3958D01A2B48403056A0A20566F6461666F6E650045C60C037761702E6D65696E63616C6C79612E64652F000801035A756D206B6F7374656E6C6F73656E20506F7274616C20224D65696E0083000322202D2065696E66616368206175662064656E20666F6C67656E64656E204C696E6B206B6C69636B656E',
      '0791947122725014440C8500947122921105F5112042519592403C0B05040B8423F00003960202206F6465722064696520536569746520646972656B7420617566727566656E2E2049687200830003205465616D000101',
    ];
    const segments = segmentsOf(si);
    expect(segments.map((s) => [s.originator, s.port, s.ref, s.refBits, s.seq])).toEqual([
      ['004917222911', 2948, 150, 8, 1],
      ['004917222911', 2948, 150, 8, 2],
    ]);
    const push = decodeWspPush(joined(si));
    expect(push.contentType).toEqual({ mediaType: 'application/vnd.wap.sic', params: { charset: 'utf-8' } });
    expect(push.applicationId).toBeUndefined();
    expect(isMmsPush(push)).toBe(false);
    expect(push.body.subarray(0, 4).toString('hex')).toBe('03056a0a');
  });

  // module-services/service-cellular/tests/unittest_Pdu.cpp in mudita/MuditaOS: pushes of Polish
  // operators as the modem hands them over (WSP only).
  const operators: [string, string, string, string][] = [
    [
      'Play',
      '0006226170706C69636174696F6E2F766E642E7761702E6D6D732D6D65737361676500AF848C82983132333435363738008D918A808E0302BF5F8805810303F47F83687474703A2F2F6D6D73632E706C61792E706C2F6D6D732F776170656E632F3132333435363738008918802B34383938373635343332312F545950453D504C4D4E00',
      '+48987654321',
      'http://mmsc.play.pl/mms/wapenc/12345678',
    ],
    [
      'T-Mobile',
      'C50603BEAF848C829831383261316237323931643835663230644070322E6D6D73632E742D6D6F62696C652E706C008D918A808E0285C288048102A8BE83687474703A2F2F31302E3234322E3234332E34303A393830302F6D6D313F69643D323230383135313832613162373238313932366630356262008918802B34383530353035303530352F545950453D504C4D4E009600',
      '+48505050505',
      'http://10.242.243.40:9800/mm1?id=220815182a1b7281926f05bb',
    ],
    [
      'Plus',
      '000607BE8DE9AF84B4808C8298303130322D67616B32346E326E643679393230008D908918802B34383738323738323738322F545950453D504C4D4E008A808E0302211C88058103093A7E83687474703A2F2F6D6D733372783A383030322F303130322D67616B32346E326E64367939323000',
      '+48782782782',
      'http://mms3rx:8002/0102-gak24n2nd6y920',
    ],
    [
      'Orange',
      '000607BEAF848DDBB4818C8298416263646566676869008D928918802B34383132333435363738392F545950453D504C4D4E0086818A808E0285AE88048102A8BF83687474703A2F2F67656F6D323A383030322F6D6D73632F633F41626364656667686900',
      '+48123456789',
      'http://geom2:8002/mmsc/c?Abcdefghi',
    ],
  ];

  it.each(operators)('decodes the %s push and its notification (MuditaOS)', (_name, pdu, from, location) => {
    const push = decodeWspPush(hex(pdu));
    expect(isMmsPush(push)).toBe(true);
    expect(push.applicationId).toBe(MMS_APPLICATION_ID);
    const n = decodePushedMms(push.body);
    expect(n.kind).toBe('notification');
    expect(n.pdu).toMatchObject({ from, contentLocation: location, messageClass: 'personal' });
  });

  it('reads the details: T-Mobile empty subject, Plus size, Orange without delivery report', () => {
    const t = decodeNotificationInd(decodeWspPush(hex(operators[1][1])).body);
    expect([t.subject, t.messageSize, t.expiry, t.mmsVersion]).toEqual(['', 0x85c2, { relative: 0xa8be }, '1.1']);
    const plus = decodeNotificationInd(decodeWspPush(hex(operators[2][1])).body);
    expect([plus.messageSize, plus.expiry]).toEqual([0x02211c, { relative: 0x093a7e }]);
    expect(decodeNotificationInd(decodeWspPush(hex(operators[3][1])).body).deliveryReport).toBe(false);
  });

  it('handles the malformed pushes of the same suite with MmsDecodeError or a typed answer', () => {
    const tail = '8D928918802B34383132333435363738392F545950453D504C4D4E0086818A808E0285AE88048102A8BF83687474703A2F2F67656F6D323A383030322F6D6D73632F633F41626364656667686900';
    const noFrom = '000607BEAF848DDBB4818C8298416263646566676869008D9286818A808E0285AE88048102A8BF83687474703A2F2F67656F6D323A383030322F6D6D73632F633F41626364656667686900';
    expect(decodeNotificationInd(decodeWspPush(hex(noFrom)).body).from).toBeUndefined();
    // PDU type 0x05 is not a Push.
    expect(() => decodeWspPush(hex(`000507BEAF848DDBB4818C829841626364656667686900${tail}`))).toThrow(/not a Push/);
    // Another application id (0x83, wta.ua) or none: the push decodes and says so; DESIGN §12
    // decides by the content type.
    expect(decodeWspPush(hex(`000607BEAF838DDBB4818C829841626364656667686900${tail}`)).applicationId).toBe('x-wap-application:wta.ua');
    const noAppId = decodeWspPush(hex(`000605BE8DDBB4818C829841626364656667686900${tail}`));
    expect([noAppId.applicationId, isMmsPush(noAppId), decodePushedMms(noAppId.body).kind]).toEqual([undefined, true, 'notification']);
    // X-Mms-Message-Type 0x81 (M-Send.conf) is nothing an MMSC pushes.
    expect(() => decodePushedMms(decodeWspPush(hex(`000607BEAF848DDBB4818C819841626364656667686900${tail}`)).body)).toThrow(/not one an MMSC pushes/);
    // Headers longer than the PDU.
    expect(() => decodeWspPush(hex('000608BEAF848DDBB481'))).toThrow(MmsDecodeError);
    // A push without a body decodes; there is no MMS PDU in it.
    const empty = decodeWspPush(hex('000607BEAF848DDBB481'));
    expect(empty.body.length).toBe(0);
    expect(() => decodePushedMms(empty.body)).toThrow(MmsDecodeError);
  });
});

const contentType = fc.oneof(
  fc.constantFrom('application/vnd.wap.mms-message', 'application/vnd.wap.sic', 'text/plain', 'application/x-custom').map((mediaType) => ({ mediaType, params: {} })),
  fc.constantFrom('utf-8', 'us-ascii').map((charset) => ({ mediaType: 'application/vnd.wap.sic', params: { charset } })),
);
const pushInput: fc.Arbitrary<WspPushInput> = fc.record(
  {
    tid: fc.integer({ min: 0, max: 255 }),
    contentType,
    applicationId: fc.oneof(fc.constantFrom(MMS_APPLICATION_ID, 'x-wap-application:push.sia', 'x-wap-application:wv.ua'), fc.constant('x-wap-application:example.ua'), fc.integer({ min: 11, max: 0xffff })),
    body: fc.uint8Array({ maxLength: 500 }).map((b) => Buffer.from(b)),
  },
  { requiredKeys: ['tid', 'contentType', 'body'] },
);

describe('WSP push round trip and garbage', () => {
  it('decode(encode(x)) equals x', () => {
    fc.assert(
      fc.property(pushInput, (p) => {
        const back: WspPush = decodeWspPush(encodeWspPush(p));
        expect(back).toEqual(p);
      }),
      { numRuns: 300 },
    );
  });

  it('throws MmsDecodeError for every cut inside the headers, and keeps a shorter body otherwise', () => {
    fc.assert(
      fc.property(pushInput, fc.nat(), (p, cut) => {
        const pdu = encodeWspPush(p);
        const bodyStart = pdu.length - p.body.length;
        const at = cut % pdu.length;
        if (at < bodyStart) expect(() => decodeWspPush(pdu.subarray(0, at))).toThrow(MmsDecodeError);
        else expect(decodeWspPush(pdu.subarray(0, at)).body).toEqual(p.body.subarray(0, at - bodyStart));
      }),
      { numRuns: 300 },
    );
  });

  it('throws only MmsDecodeError on random octets', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.boolean(), (bytes, pushLike) => {
        const buf = Buffer.from(pushLike ? [0x01, 0x06, ...bytes] : bytes);
        try {
          decodePushedMms(decodeWspPush(buf).body);
        } catch (e) {
          expect(e).toBeInstanceOf(MmsDecodeError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('SMS reassembly', () => {
  const seg = (seq: number, data: string, over: Partial<Segment> = {}): Segment => ({
    originator: '+4911',
    port: 2948,
    ref: 7,
    refBits: 8,
    total: 3,
    seq,
    data: Buffer.from(data),
    ...over,
  });

  it('joins segments in sequence order whatever order they came in', () => {
    const [r] = reassemble([seg(3, 'c'), seg(1, 'a'), seg(2, 'b')]);
    expect(r.complete && r.data.toString()).toBe('abc');
  });

  it('says which segments are missing', () => {
    expect(reassemble([seg(2, 'b')])).toMatchObject([{ complete: false, missing: [1, 3] }]);
  });

  it('ignores a duplicate of a segment, keeping the first copy', () => {
    const dup = seg(2, 'X');
    const [r] = reassemble([seg(1, 'a'), seg(2, 'b'), dup, seg(3, 'c')]);
    expect(r.complete && r.data.toString()).toBe('abc');
    expect(r.duplicates).toEqual([dup]);
  });

  it('keeps messages apart by sender, port, reference, its width and the segment count', () => {
    const mixed = [
      seg(1, 'a'),
      seg(1, 'x', { originator: '+4912' }),
      seg(1, 'y', { port: undefined }),
      seg(1, 'z', { ref: 8 }),
      seg(1, 'w', { refBits: 16 }),
      seg(1, 'v', { total: 2 }),
      seg(2, 'b'),
      seg(3, 'c'),
    ];
    const out = reassemble(mixed);
    expect(out).toHaveLength(6);
    expect(out[0]).toMatchObject({ key: segmentKey(seg(1, '')), complete: true });
    expect(out.slice(1).every((r) => !r.complete)).toBe(true);
  });

  it('reassembles any split of any push, with duplicates, in any order; without one segment it waits for it', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 1500 }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.constantFrom(8 as const, 16 as const),
        fc.nat(),
        fc.nat(),
        (body, ref, refBits, seed, drop) => {
          const pdus = encodeMmsPushSms(Buffer.from(body), { originator: '+4915', timestamp: new Date(0x5f000000 * 1000), ref: refBits === 8 ? ref & 0xff : ref, refBits });
          const segments = pdus.map((p) => segmentOf(decodeSmsPdu(p) as SmsDeliver)).filter((s): s is Segment => s !== undefined);
          const single = pdus.length === 1;
          expect(segments).toHaveLength(single ? 0 : pdus.length);
          if (single) return;
          const shuffled = [...segments, segments[seed % segments.length]].sort((a, b) => ((a.seq * 7919 + seed) % 97) - ((b.seq * 7919 + seed) % 97));
          const [r] = reassemble(shuffled);
          expect(r.complete).toBe(true);
          if (r.complete) expect(decodeWspPush(r.data).body).toEqual(Buffer.from(body));
          const missingSeq = (drop % segments.length) + 1;
          const [partial] = reassemble(segments.filter((s) => s.seq !== missingSeq));
          expect(partial).toMatchObject({ complete: false, missing: [missingSeq] });
        },
      ),
      { numRuns: 200 },
    );
  });
});
