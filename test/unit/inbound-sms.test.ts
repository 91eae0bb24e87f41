// SMS-DELIVER decoding (TS 23.040) against PDUs published with their decoded values, and property
// tests: the sim's encoder round-trips through the decoder; garbage raises only MmsDecodeError.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeDcs, decodeSmsPdu, isWapPushSegment, type SmsDeliver, type SmsPdu } from '../../src/inbound/sms.js';
import { packSeptets, septetsToText, textToSeptets, unpackSeptets } from '../../src/inbound/gsm7.js';
import { encodeDeliverPdus, encodeSmsDeliver, encodeTimestamp, textUserData, type DeliverInput } from '../../src/sim/sms-encode.js';
import { MmsDecodeError } from '../../src/mms/types.js';

function deliver(pdu: SmsPdu): SmsDeliver {
  if (pdu.kind !== 'deliver') throw new Error(`not a deliver: ${pdu.type}`);
  return pdu;
}

describe('published SMS-DELIVER examples', () => {
  it('decodes the classic dreamfabric / TS 23.040 tutorial PDU ("hellohello")', () => {
    // http://www.dreamfabric.com/sms/ (the example of its SMS-DELIVER page).
    const sms = deliver(decodeSmsPdu('07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37'));
    expect(sms.smsc).toEqual({ number: '+27381000015', ton: 'international', npi: 1 });
    expect(sms.originator).toEqual({ number: '27838890001', ton: 'subscriber', npi: 8 });
    expect(sms.text).toBe('hellohello');
    expect(sms.udl).toBe(10);
    // 1999-03-29 15:16:59 at GMT+2.
    expect(sms.timestamp?.toISOString()).toBe('1999-03-29T13:16:59.000Z');
    expect(sms.timezoneMinutes).toBe(120);
    expect(sms.moreMessagesToSend).toBe(false);
  });

  it('decodes the python-gsmmodem fixtures (test/test_pdu.py, faucamp/python-gsmmodem)', () => {
    const a = deliver(decodeSmsPdu('06917228195339040B917228214365F700003130805120618005D4F29C2E03'));
    expect([a.smsc?.number, a.originator.number, a.text, a.pid]).toEqual(['+2782913593', '+27821234567', 'Test2', 0]);
    expect(a.timestamp?.toISOString()).toBe('2013-03-08T13:02:16.000Z');
    const b = deliver(
      decodeSmsPdu(
        '07915892000000F0040B915892214365F700007040213252242331493A283D0795C3F33C88FE06C9CB6132885EC6D341EDF27C1E3E97E7207B3A0C0A5241E377BB1D7693E72E',
      ),
    );
    expect(b.text).toBe('It is easy to read text messages via AT commands.');
    expect(b.timestamp?.toISOString()).toBe('2007-04-12T15:25:42.000Z');
    expect(b.timezoneMinutes).toBe(480);
    // The extension table ({ }) and é of the default alphabet.
    expect(deliver(decodeSmsPdu('06917228195339040B917228214365F70000313062315352800A800D8A5E98D337A910')).text).toBe('@{tést}!');
    // 7-bit with a user data header: concatenation IE 0x00, ref 0xC3, 1 of 1; fill bit after it.
    const c = deliver(
      decodeSmsPdu(
        '0591721891F1400781721881F800003160526104848059050003C30101916536FB1DCABEEB2074D85E064941B19CAB060319A5C522289C96D3D3ED32286C0FA7D96131BBEC024941B19CAB0603DDD36C36A88C87A7E565D0DB0D82C55EB0DB4B068BCD5C20',
      ),
    );
    expect(c.originator).toEqual({ number: '2781188', ton: 'unknown', npi: 1 });
    expect(c.concat).toEqual({ ref: 0xc3, refBits: 8, total: 1, seq: 1 });
    expect(c.text).toBe('Hello!You have R 19.50 FREE airtime available. R 19.50 will expire on 01/07/2013. ');
  });

  it('reports a status report and a stored SMS-SUBMIT as other types (python-gsmmodem fixtures)', () => {
    expect(decodeSmsPdu('0006D60B911326880736F4111011719551401110117195714000')).toMatchObject({ kind: 'other', type: 'status-report', mti: 2 });
    const submit = decodeSmsPdu('07911326040000F0310D0B911326880736F40000A90FF7FBDD454E87CDE1B0DB357EB701');
    expect(submit).toMatchObject({ kind: 'other', type: 'submit', smsc: { number: '+31624000000' } });
    expect(isWapPushSegment(submit)).toBe(false);
  });

  it('decodes alphanumeric senders of odd and even length (python-messaging, pdu_sms)', () => {
    // messaging/test/test_sms.py in pmarti/python-messaging.
    const fonic = deliver(
      decodeSmsPdu(
        '07919471060040340409D0C6A733390400009060920173018093CC74595C96838C4F6772085AD6DDE4320B444E9741D4B03C6D7EC3E9E9B71B9474D3CB727799DEA286CFE5B9991DA6CBC3F432E85E9793CBA0F09A9EB6A7CB72BA0B9474D3CB727799DE72D6E9FABAFB0CBAA7E56490BA4CD7D34170F91BE4ACD3F575F7794E0F9F4161F1B92C2F8FD1EE32DD054AA2E520E3D3991C82A8E5701B',
      ),
    );
    expect(fonic.originator).toEqual({ number: 'FONIC', ton: 'alphanumeric', npi: 0 });
    expect(fonic.text).toBe('Lieber FONIC Kunde, die Tarifoption Internet-Tagesflatrate wurde aktiviert. Internet-Nutzung wird jetzt pro Nutzungstag abgerechnet. Ihr FONIC Team');
    const tim = deliver(decodeSmsPdu('07919333852804000412D0F7FBDD454FB75D693A0000903002801153402BCD301E9F0605D9E971191483C140412A35690D52832063D2F9040599A058EE05A3BD6430580E'));
    expect([tim.originator.number, tim.text]).toEqual(['www.tim.it', 'Maxxi Alice 100 ATTIVATA FINO AL 19/04/2009']);
    // README.md of schnack/pdu_sms (Ruby): an SMS-DELIVER from "Tele2".
    const tele2 = deliver(decodeSmsPdu('07911732547698F00009D0D432BB2C0300005111713115142108E8329BFD0E8542'));
    expect([tele2.originator.number, tele2.text, tele2.smsc?.number]).toEqual(['Tele2', 'hello!!!', '+71234567890']);
  });

  it('decodes UCS2 and a 7-bit two-part message with the Euro sign (python-messaging)', () => {
    const zte = deliver(decodeSmsPdu('07914306073011F0040B914316709807F2000880604290224080084E2D5174901A8BAF'));
    expect([zte.encoding, zte.text, zte.originator.number]).toEqual(['ucs2', '中兴通讯', '+34610789702']);
    const parts = [
      '07919471227210244405852122F039F101506271217180A005000319020198E9B2B82C0759DFE4B0F9ED2EB7967537B9CC02B5D37450122D2FCB41EE303DFD7687D96537881A96A7CD6F383DFD7683F46134BBEC064DD36550DA0D22A7CBF3721BE42CD3F5A0198B56036DCA20B8FC0D6A0A4170767D0EAAE540433A082E7F83A6E5F93CFD76BB40D7B2DB0D9AA6CB2072BA3C2F83926EF31BE44E8FD17450BB8C9683CA',
      '07919471227210244405852122F039F1015062712181804F050003190202E4E8309B5E7683DAFC319A5E76B340F73D9A5D7683A6E93268FD9ED3CB6EF67B0E5AD172B19B2C2693C9602E90355D6683A6F0B007946E8382F5393BEC26BB00',
    ].map((p) => deliver(decodeSmsPdu(p)));
    expect(parts.map((p) => p.concat)).toEqual([
      { ref: 25, refBits: 8, total: 2, seq: 1 },
      { ref: 25, refBits: 8, total: 2, seq: 2 },
    ]);
    expect(parts[0].messageClass).toBe(1); // DCS 0xF1: data coding/message class group
    expect(parts.map((p) => p.text).join('')).toBe(
      'Lieber Vodafone-Kunde, mit Ihrer nationalen Tarifoption zahlen Sie in diesem Netz 3,45 € pro MB plus 59 Ct pro Session. Wenn Sie diese Info nicht mehr erhalten möchten, wählen Sie kostenlos +4917212220. Viel Spaß im Ausland.',
    );
  });

  it('finds the WAP push port in a real MMS notification (python-messaging test_wap.py)', () => {
    // Two SMS of an M-Notification.ind from a UK operator: IE 0x08 (16-bit reference 40846) and
    // IE 0x05 (port 2948 from 9200), 8-bit data.
    const first = decodeSmsPdu(
      '0791447758100650400E80885810000000810004016082415464408C0C08049F8E020105040B8423F00106226170706C69636174696F6E2F766E642E7761702E6D6D732D6D65737361676500AF848C82984E4F4B3543694B636F544D595347344D4253774141734B7631344655484141414141414141008D908919802B3434373738353334323734392F545950453D504C4D4E008A808E0274008805810301194083687474703A2F',
    );
    expect(isWapPushSegment(first)).toBe(true);
    const sms = deliver(first);
    expect(sms.concat).toEqual({ ref: 40846, refBits: 16, total: 2, seq: 1 });
    expect(sms.ports).toEqual({ destination: 2948, source: 9200, bits: 16 });
    expect([sms.encoding, sms.originator.number, sms.smsc?.number]).toEqual(['8bit', '88850100000018', '+447785016005']);
    expect(sms.data.subarray(0, 3).toString('hex')).toBe('010622');
    expect(sms.data.length).toBe(140 - 13);
  });

  it('checks the TPDU length that +CMGR announced', () => {
    const pdu = '07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37';
    expect(deliver(decodeSmsPdu(pdu, { tpduLength: 28 })).text).toBe('hellohello');
    expect(() => decodeSmsPdu(pdu, { tpduLength: 27 })).toThrow(/announced 27/);
  });

  it('refuses what is not a PDU, with MmsDecodeError', () => {
    for (const bad of ['', '0', 'zz', '07917283010010F5040BC872388809', '00040BC87238880900F10000993092516195800AFF']) {
      expect(() => decodeSmsPdu(bad)).toThrow(MmsDecodeError);
    }
  });
});

describe('data coding scheme (TS 23.038 §4)', () => {
  it('reads the coding groups', () => {
    expect(decodeDcs(0x00)).toEqual({ encoding: 'gsm7', compressed: false });
    expect(decodeDcs(0x04)).toEqual({ encoding: '8bit', compressed: false });
    expect(decodeDcs(0x08)).toEqual({ encoding: 'ucs2', compressed: false });
    expect(decodeDcs(0x11)).toEqual({ encoding: 'gsm7', compressed: false, messageClass: 1 });
    expect(decodeDcs(0x2a)).toEqual({ encoding: 'ucs2', compressed: true });
    expect(decodeDcs(0x46)).toEqual({ encoding: '8bit', compressed: false }); // automatic deletion group
    expect(decodeDcs(0xc8)).toEqual({ encoding: 'gsm7', compressed: false });
    expect(decodeDcs(0xe0)).toEqual({ encoding: 'ucs2', compressed: false });
    expect(decodeDcs(0xf6)).toEqual({ encoding: '8bit', compressed: false, messageClass: 2 });
    expect(decodeDcs(0x8f)).toEqual({ encoding: 'gsm7', compressed: false });
  });
});

describe('GSM 7-bit alphabet', () => {
  it('packs the python-gsmmodem septet fixtures', () => {
    const septets = textToSeptets('Hello World!');
    expect(septets).toEqual([0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0x57, 0x6f, 0x72, 0x6c, 0x64, 0x21]);
    expect(packSeptets(septets!).toString('hex')).toBe(Buffer.from([200, 50, 155, 253, 6, 93, 223, 114, 54, 57, 4]).toString('hex'));
    expect(textToSeptets('a[]{}€')).toEqual([97, 27, 60, 27, 62, 27, 40, 27, 41, 27, 101]);
    expect(textToSeptets('中')).toBeUndefined();
  });

  it('round-trips every text of the alphabet and its extension, at any bit offset', () => {
    const chars = [...'@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./09:;<=>?¡AZÄÖÑÜ§¿azäöñüà^{}\\[~]|€\f'];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...chars), { maxLength: 200 }), fc.integer({ min: 0, max: 6 }), (a, offset) => {
        const text = a.join('');
        const septets = textToSeptets(text)!;
        expect(septetsToText(unpackSeptets(packSeptets(septets, offset), septets.length, offset))).toBe(text);
      }),
    );
  });
});

// Arbitraries for the round trip through the sim's encoder.
const digits = fc.stringMatching(/^[0-9]{1,15}$/);
const gsmChars = [...'@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCXYZÄÖÑÜ§¿abcxyzäöñüà^{}\\[~]|€'];
const alphanumeric = fc
  .array(fc.constantFrom(...gsmChars.filter((c) => !'{}\\[~]|€^'.includes(c))), { minLength: 1, maxLength: 11 })
  .map((a) => a.join(''))
  .filter((s) => !/^\+?[0-9*#abc]*$/.test(s));
const originator = fc.oneof(digits.map((d) => `+${d}`), digits, alphanumeric);
const when = fc.integer({ min: Date.UTC(1995, 0, 1) / 1000, max: Date.UTC(2080, 0, 1) / 1000 }).map((s) => new Date(s * 1000));
const zone = fc.integer({ min: -48, max: 56 }).map((q) => q * 15);
const gsmText = fc.array(fc.constantFrom(...gsmChars), { maxLength: 400 }).map((a) => a.join(''));
const ucs2Text = fc.string({ unit: 'binary', maxLength: 200 }).filter((s) => !/[\ud800-\udfff]/.test(s.replace(/[\ud800-\udbff][\udc00-\udfff]/g, '')));
const ports = fc.option(
  fc.oneof(
    fc.record({ destination: fc.integer({ min: 0, max: 0xffff }), source: fc.integer({ min: 0, max: 0xffff }), bits: fc.constant(16 as const) }),
    fc.record({ destination: fc.integer({ min: 0, max: 0xff }), source: fc.integer({ min: 0, max: 0xff }), bits: fc.constant(8 as const) }),
  ),
  { nil: undefined },
);
const message = fc
  .record({
    smsc: fc.option(digits.map((d) => `+${d}`), { nil: undefined }),
    originator,
    timestamp: when,
    timezoneMinutes: zone,
    body: fc.oneof(
      gsmText.map((text) => ({ encoding: 'gsm7' as const, text })),
      ucs2Text.map((text) => ({ encoding: 'ucs2' as const, text })),
      fc.uint8Array({ maxLength: 600 }).map((d) => ({ encoding: '8bit' as const, data: Buffer.from(d) })),
    ),
    ports,
    ref: fc.integer({ min: 0, max: 0xffff }),
    refBits: fc.constantFrom(8 as const, 16 as const),
  })
  .map(({ body, ref, refBits, ...m }) => {
    const input: Omit<DeliverInput, 'concat'> = {
      ...m,
      encoding: body.encoding,
      userData: 'text' in body ? textUserData(body.text, body.encoding) : body.data,
    };
    if (m.smsc === undefined) delete input.smsc;
    if (m.ports === undefined) delete input.ports;
    return { input, text: 'text' in body ? body.text : undefined, ref: refBits === 8 ? ref & 0xff : ref, refBits };
  });

describe('SMS-DELIVER round trip through the sim encoder', () => {
  it('decodes every segment to what was encoded, and the segments join to the message', () => {
    fc.assert(
      fc.property(message, ({ input, text, ref, refBits }) => {
        const pdus = encodeDeliverPdus(input, ref, refBits);
        const decoded = pdus.map((p) => deliver(decodeSmsPdu(p)));
        for (const [i, sms] of decoded.entries()) {
          expect(sms.originator.number).toBe(input.originator);
          expect(sms.smsc?.number).toBe(input.smsc);
          expect(sms.timestamp?.getTime()).toBe(Math.floor(input.timestamp.getTime() / 1000) * 1000);
          expect(sms.timezoneMinutes).toBe(input.timezoneMinutes);
          expect(sms.encoding).toBe(input.encoding);
          expect(sms.ports).toEqual(input.ports);
          if (pdus.length === 1) expect(sms.concat).toBeUndefined();
          else expect(sms.concat).toEqual({ ref, refBits, total: pdus.length, seq: i + 1 });
        }
        const joined = Buffer.concat(decoded.map((s) => s.data));
        expect(joined.toString('hex')).toBe(input.userData.toString('hex'));
        if (text !== undefined && input.encoding === 'gsm7') expect(septetsToText(joined)).toBe(text);
        if (text !== undefined && input.encoding === 'ucs2') expect(decoded.map((s) => s.text).join('')).toBe(text);
      }),
      { numRuns: 300 },
    );
  });

  it('writes the dreamfabric example octet by octet', () => {
    const pdu = encodeSmsDeliver({
      smsc: '+27381000015',
      originator: '27838890001',
      encoding: 'gsm7',
      timestamp: new Date('1999-03-29T13:16:59Z'),
      timezoneMinutes: 120,
      userData: textUserData('hellohello', 'gsm7'),
    });
    // The same PDU but for the originator's type of address: ours writes 0x81, the example 0xC8.
    expect(pdu.toString('hex').toUpperCase()).toBe('07917283010010F5040B817238880900F10000993092516195800AE8329BFD4697D9EC37');
    // python-gsmmodem's timestamp fixture: 2007-04-12 23:25:42 at GMT-8.
    expect(encodeTimestamp(new Date('2007-04-13T07:25:42Z'), -8 * 60).toString('hex')).toBe('7040213252242b');
  });
});

describe('SMS decoder on garbage', () => {
  it('throws only MmsDecodeError for every truncation of a valid PDU', () => {
    fc.assert(
      fc.property(message, fc.nat(), ({ input }, cut) => {
        const pdu = Buffer.from(encodeDeliverPdus(input)[0], 'hex');
        const at = cut % pdu.length;
        expect(() => decodeSmsPdu(pdu.subarray(0, at), { tpduLength: pdu.length - pdu[0] - 1 })).toThrow(MmsDecodeError);
        // Without the announced length the last octet missing is still noticed: UDL says more.
        expect(() => decodeSmsPdu(pdu.subarray(0, pdu.length - 1))).toThrow(MmsDecodeError);
      }),
      { numRuns: 300 },
    );
  });

  it('throws only MmsDecodeError on random octets and random text', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.constantFrom(0x00, 0x04, 0x40, 0x44), fc.string(), (bytes, first, text) => {
        const octets = Buffer.from([0x00, first, ...bytes]);
        for (const input of [Buffer.from(bytes), octets, octets.toString('hex'), text]) {
          try {
            decodeSmsPdu(input);
          } catch (e) {
            expect(e).toBeInstanceOf(MmsDecodeError);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });
});
