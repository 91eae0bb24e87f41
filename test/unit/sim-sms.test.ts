// The virtual modem's SMS side (src/sim/modem-sms.ts) driven directly (feed/receive) on a manual
// clock: AT+CMGF/CPMS/CNMI/CMGR/CMGL/CMGD shapes and errors, +CMTI, and that what AT+CMGR gives
// decodes with the daemon's inbound decoders into the M-Delivery.ind that was pushed.
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { reassemble, segmentOf } from '../../src/inbound/reassembly.js';
import { decodeSmsPdu, isWapPushSegment, type SmsDeliver } from '../../src/inbound/sms.js';
import { decodeWspPush, isMmsPush } from '../../src/inbound/wap-push.js';
import { decodePushedMms, encodeDeliveryInd } from '../../src/mms/notification.js';
import { MmsDecodeError, type DeliveryInd } from '../../src/mms/types.js';
import { VirtualModem, type VirtualModemOptions } from '../../src/sim/modem.js';
import { tpduLength } from '../../src/sim/modem-sms.js';
import { ManualClock } from './manual-clock.js';

const FINAL = /\r\n(OK|ERROR|CONNECT|\+CME ERROR: [^\r]*|\+CMS ERROR: [^\r]*)\r\n$/;
const OK = '\r\nOK\r\n';
const info = (...lines: string[]) => `\r\n${lines.join('\r\n')}\r\n${OK}`;
const cmsErr = (n: number) => `\r\n+CMS ERROR: ${n}\r\n`;

function setup(opts: Partial<VirtualModemOptions> = {}) {
  const clock = new ManualClock();
  const modem = new VirtualModem({ logger: pino({ level: 'silent' }), clock, bootMs: 300, ...opts });
  let out = '';
  modem.on('data', (b: Buffer) => (out += b.toString('latin1')));
  modem.start();
  const h = {
    modem,
    clock,
    mark: () => out.length,
    since: (m: number) => out.slice(m),
    /** Sends a line (after what is already on its way out) and returns the answer to it. */
    async at(line: string): Promise<string> {
      await clock.advance(1);
      const m = out.length;
      modem.feed(Buffer.from(`${line}\r`, 'latin1'));
      for (let i = 0; i < 100 && !FINAL.test(out.slice(m)); i++) await clock.advance(1);
      return out.slice(m);
    },
    async settle(): Promise<void> {
      await clock.advance(5);
    },
  };
  return h;
}

const REPORT: DeliveryInd = { mmsVersion: '1.2', messageId: 'msg-0042', to: '+4917012345', date: 1_790_000_000, status: 'retrieved' };

/** +CMGR's PDU lines → the SMS decoded, reassembled, WSP-decoded, MMS-decoded. */
function decodePush(pdus: string[]) {
  const sms = pdus.map((p) => decodeSmsPdu(p)) as SmsDeliver[];
  expect(sms.every((s) => isWapPushSegment(s))).toBe(true);
  const segments = sms.map((s) => segmentOf(s));
  let data: Buffer;
  if (segments.every((s) => s === undefined)) {
    data = sms[0].data;
  } else {
    const sets = reassemble(segments.map((s) => s!));
    expect(sets).toHaveLength(1);
    const set = sets[0];
    if (!set.complete) throw new Error(`incomplete: missing ${set.missing.join(',')}`);
    data = set.data;
  }
  const push = decodeWspPush(data);
  expect(isMmsPush(push)).toBe(true);
  return decodePushedMms(push.body);
}

/** Reads index i with AT+CMGR: [stat, length, pdu]. */
async function cmgr(h: ReturnType<typeof setup>, i: number): Promise<{ stat: number; length: number; pdu: string }> {
  const r = await h.at(`AT+CMGR=${i}`);
  const m = /^\r\n\+CMGR: (\d),,(\d+)\r\n([0-9A-F]+)\r\n\r\nOK\r\n$/.exec(r);
  if (!m) throw new Error(`unexpected +CMGR answer ${JSON.stringify(r)}`);
  return { stat: Number(m[1]), length: Number(m[2]), pdu: m[3] };
}

describe('VirtualModem SMS: settings', () => {
  it('answers AT+CMGF set, query and test; power-on PDU mode', async () => {
    const h = setup();
    await h.at('ATE0');
    expect(await h.at('AT+CMGF?')).toBe(info('+CMGF: 0'));
    expect(await h.at('AT+CMGF=?')).toBe(info('+CMGF: (0,1)'));
    expect(await h.at('AT+CMGF=1')).toBe(OK);
    expect(await h.at('AT+CMGF?')).toBe(info('+CMGF: 1'));
    expect(await h.at('AT+CMGF=2')).toBe('\r\nERROR\r\n');
    expect(await h.at('AT+CMGR=0')).toBe(cmsErr(302));
    expect(await h.at('AT+CMGF=0')).toBe(OK);
  });

  it('answers AT+CPMS with used and total of each memory, and refuses an unknown one', async () => {
    const h = setup({ smsCapacity: { ME: 3, SM: 10 } });
    await h.at('ATE0');
    expect(await h.at('AT+CPMS?')).toBe(info('+CPMS: "ME",0,3,"ME",0,3,"ME",0,3'));
    expect(await h.at('AT+CPMS=?')).toBe(info('+CPMS: ("ME","SM","MT"),("ME","SM","MT"),("ME","SM","MT")'));
    h.modem.deliverText('hi', '+491701');
    expect(await h.at('AT+CPMS="SM","SM","SM"')).toBe(info('+CPMS: 0,10,0,10,0,10'));
    expect(await h.at('AT+CPMS="MT"')).toBe(info('+CPMS: 1,3,0,10,0,10'));
    expect(await h.at('AT+CPMS?')).toBe(info('+CPMS: "MT",1,3,"SM",0,10,"SM",0,10'));
    expect(await h.at('AT+CPMS="XX"')).toBe(cmsErr(302));
    expect(await h.at('AT+CMEE=0')).toBe(OK);
    expect(await h.at('AT+CPMS="XX"')).toBe('\r\nERROR\r\n');
    expect(await h.at('AT+CMEE=2')).toBe(OK);
    expect(await h.at('AT+CMGR=7')).toBe('\r\n+CMS ERROR: invalid memory index\r\n');
  });

  it('stores into <mem3> and says +CMTI with its name while CNMI <mt> is 1; none with <mt> 0', async () => {
    const h = setup();
    await h.at('ATE0');
    expect(await h.at('AT+CNMI?')).toBe(info('+CNMI: 2,1,0,0,0'));
    expect(await h.at('AT+CNMI=2,1,0,0,0')).toBe(OK);
    let m = h.mark();
    expect(h.modem.deliverText('one', '+491701')).toMatchObject([{ stored: { mem: 'ME', index: 0 } }]);
    await h.settle();
    expect(h.since(m)).toBe('\r\n+CMTI: "ME",0\r\n');
    expect(await h.at('AT+CPMS="ME","ME","SM"')).toBe(info('+CPMS: 1,25,1,25,0,50'));
    m = h.mark();
    h.modem.deliverText('two', '+491701');
    await h.settle();
    expect(h.since(m)).toBe('\r\n+CMTI: "SM",0\r\n');
    expect(await h.at('AT+CNMI=2,0,0,0,0')).toBe(OK);
    m = h.mark();
    h.modem.deliverText('three', '+491701');
    await h.settle();
    expect(h.since(m)).toBe('');
    expect(h.modem.state().sms.stores.SM.messages.map((s) => s.index)).toEqual([0, 1]);
    expect(await h.at('AT+CNMI=2,4')).toBe(cmsErr(302));
  });

  it('keeps the stored SMS across a restart, settings back to their power-on values', async () => {
    const h = setup();
    await h.at('ATE0');
    await h.at('AT+CMGF=1');
    h.modem.deliverText('kept', '+491701');
    h.modem.reboot();
    await h.clock.advance(400);
    await h.at('ATE0');
    expect(await h.at('AT+CMGF?')).toBe(info('+CMGF: 0'));
    expect((await cmgr(h, 0)).stat).toBe(0);
  });
});

describe('VirtualModem SMS: reading, listing, deleting', () => {
  it('reads with +CMGR: <stat>,,<length> and the PDU; unread becomes read; 321 for an empty slot', async () => {
    const h = setup();
    await h.at('ATE0');
    const [arrival] = h.modem.deliverText('hello', '+4917099');
    const first = await cmgr(h, 0);
    expect(first).toEqual({ stat: 0, length: tpduLength(arrival.pdu), pdu: arrival.pdu });
    expect(first.length).toBe(arrival.pdu.length / 2 - 1); // no SMSC address: its length octet only
    expect((await cmgr(h, 0)).stat).toBe(1);
    const sms = decodeSmsPdu(first.pdu) as SmsDeliver;
    expect(sms).toMatchObject({ kind: 'deliver', text: 'hello', originator: { number: '+4917099' } });
    expect(await h.at('AT+CMGR=1')).toBe(cmsErr(321));
    expect(await h.at('AT+CMGR=999')).toBe(cmsErr(321));
    expect(h.modem.state().sms.stores.ME.messages).toEqual([{ index: 0, stat: 1, pdu: arrival.pdu }]);
  });

  it('lists with +CMGL pairs by <stat> (4 = all), marking unread as read', async () => {
    const h = setup();
    await h.at('ATE0');
    const a = h.modem.deliverText('a', '+491701')[0].pdu;
    const b = h.modem.deliverText('b', '+491702')[0].pdu;
    await cmgr(h, 0);
    expect(await h.at('AT+CMGL=0')).toBe(info(`+CMGL: 1,0,,${tpduLength(b)}`, b));
    expect(await h.at('AT+CMGL=0')).toBe(OK);
    expect(await h.at('AT+CMGL=4')).toBe(info(`+CMGL: 0,1,,${tpduLength(a)}`, a, `+CMGL: 1,1,,${tpduLength(b)}`, b));
    expect(await h.at('AT+CMGL=5')).toBe(cmsErr(304));
  });

  it('deletes with AT+CMGD by index and by <delflag>; 321 out of range', async () => {
    const h = setup({ smsCapacity: { ME: 4 } });
    await h.at('ATE0');
    for (const t of ['a', 'b', 'c']) h.modem.deliverText(t, '+491701');
    await cmgr(h, 0);
    expect(await h.at('AT+CMGD=?')).toBe(info('+CMGD: (0,1,2),(0-4)'));
    expect(await h.at('AT+CMGD=1')).toBe(OK);
    expect(await h.at('AT+CMGD=1')).toBe(OK);
    expect(await h.at('AT+CMGR=1')).toBe(cmsErr(321));
    expect(await h.at('AT+CMGD=4')).toBe(cmsErr(321));
    expect(await h.at('AT+CMGD=0,1')).toBe(OK); // all read: index 0 only
    expect(h.modem.state().sms.stores.ME.messages.map((s) => s.index)).toEqual([2]);
    expect(h.modem.deliverText('d', '+491701')[0].stored).toEqual({ mem: 'ME', index: 0 });
    expect(await h.at('AT+CMGD=0,4')).toBe(OK);
    expect(h.modem.state().sms.stores.ME.messages).toEqual([]);
  });

  it('refuses an SMS into a full store: counted as rejected, no +CMTI, memory full in CPMS', async () => {
    const h = setup({ smsCapacity: { ME: 2 } });
    await h.at('ATE0');
    h.modem.deliverText('a', '+491701');
    h.modem.deliverText('b', '+491701');
    await h.settle();
    const m = h.mark();
    expect(h.modem.deliverText('c', '+491701')).toMatchObject([{ stored: null }]);
    await h.settle();
    expect(h.since(m)).toBe('');
    expect(h.modem.state().sms).toMatchObject({ rejected: 1, delivered: 2 });
    expect(await h.at('AT+CPMS?')).toBe(info('+CPMS: "ME",2,2,"ME",2,2,"ME",2,2'));
  });
});

describe('VirtualModem SMS: WAP-push delivery reports beside plain text', () => {
  it('gives back through AT+CMGR exactly the M-Delivery.ind that was pushed, next to a text SMS', async () => {
    const h = setup();
    await h.at('ATE0');
    const m = h.mark();
    h.modem.deliverText('plain hello', '+4917011111');
    h.modem.deliverPush(encodeDeliveryInd(REPORT));
    await h.settle();
    expect(h.since(m)).toBe('\r\n+CMTI: "ME",0\r\n\r\n+CMTI: "ME",1\r\n');
    const text = decodeSmsPdu((await cmgr(h, 0)).pdu) as SmsDeliver;
    expect(text.text).toBe('plain hello');
    expect(isWapPushSegment(text)).toBe(false);
    expect(decodePush([(await cmgr(h, 1)).pdu])).toEqual({ kind: 'delivery', pdu: REPORT });
  });

  it('splits a push into N segments, out of order and duplicated; they reassemble into the report', async () => {
    const h = setup();
    await h.at('ATE0');
    const arrivals = h.modem.deliverPush(encodeDeliveryInd(REPORT), { segments: 3, order: [3, 1, 2], duplicate: [2] });
    expect(arrivals.map((a) => a.stored?.index)).toEqual([0, 1, 2, 3]);
    const pdus = [];
    for (let i = 0; i < 4; i++) pdus.push((await cmgr(h, i)).pdu);
    const seqs = pdus.map((p) => (decodeSmsPdu(p) as SmsDeliver).concat?.seq);
    expect(seqs).toEqual([3, 1, 2, 2]);
    const sets = reassemble(pdus.map((p) => segmentOf(decodeSmsPdu(p) as SmsDeliver)!));
    expect(sets[0]).toMatchObject({ complete: true });
    expect(sets[0].duplicates).toHaveLength(1);
    expect(decodePush(pdus.slice(0, 3))).toEqual({ kind: 'delivery', pdu: REPORT });
  });

  it('spoils the WSP or the MMS layer on request: the decoders refuse it', () => {
    const h = setup();
    const [wsp] = h.modem.deliverPush(encodeDeliveryInd(REPORT), { malformed: 'wsp' });
    const [mms] = h.modem.deliverPush(encodeDeliveryInd(REPORT), { malformed: 'mms' });
    const wspSms = decodeSmsPdu(wsp.pdu) as SmsDeliver;
    expect(isWapPushSegment(wspSms)).toBe(true);
    expect(() => decodeWspPush(wspSms.data)).toThrow(MmsDecodeError);
    const push = decodeWspPush((decodeSmsPdu(mms.pdu) as SmsDeliver).data);
    expect(isMmsPush(push)).toBe(true);
    expect(() => decodePushedMms(push.body)).toThrow(MmsDecodeError);
  });
});
