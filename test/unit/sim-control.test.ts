// The sim's control API (src/sim/control.ts) over real HTTP on a loopback port, in front of a
// VirtualModem: POST /fault keys are checked first and applied in table order; a bad request
// changes nothing.
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { ControlServer, type ControlMmsc, type SimFaultRequest } from '../../src/sim/control.js';
import { VirtualModem } from '../../src/sim/modem.js';
import type { DeliverySettings, MmscFaults } from '../../src/sim/types.js';

const logger = pino({ level: 'silent' });
const servers: ControlServer[] = [];
const modems: VirtualModem[] = [];

afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop();
  for (const m of modems.splice(0)) m.stop();
});

/** An MMSC that records what it is given; the inbox side is not used by these tests. */
function fakeMmsc(over: Partial<ControlMmsc>): ControlMmsc {
  return {
    setFaults: () => undefined,
    setDelivery: () => undefined,
    deliverySettings: () => ({ plan: 'retrieved', delayMs: 200, recipients: {} }),
    received: () => [],
    receive: () => {
      throw new Error('not used');
    },
    receivedAcks: () => [],
    inboxEntries: () => [],
    setInboxFaults: () => undefined,
    ...over,
  };
}

async function setup(mmsc?: ControlMmsc): Promise<{ modem: VirtualModem; post: (body: unknown, route?: string) => Promise<{ status: number; json: unknown }> }> {
  const modem = new VirtualModem({ logger, bootMs: 10 });
  modem.start();
  modems.push(modem);
  const server = new ControlServer({ host: '127.0.0.1', port: 0, logger, modem, ...(mmsc ? { mmsc } : {}) });
  servers.push(server);
  const { url } = await server.start();
  const post = async (body: unknown, route = '/fault'): Promise<{ status: number; json: unknown }> => {
    const res = await fetch(`${url}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, json: await res.json() };
  };
  return { modem, post };
}

describe('ControlServer POST /fault', () => {
  it('applies every key of a typed request', async () => {
    const set: MmscFaults[] = [];
    const { modem, post } = await setup(fakeMmsc({ setFaults: (f) => void set.push(f) }));
    const request: SimFaultRequest = {
      registration: 0,
      signal: 7,
      sendResults: [{ err: 765, http: 500 }, { err: 0, httpStatus: 200, mmsrsp: 'Ok' }],
      hold: true,
      delayMs: 0,
      drop: 0,
      garble: 0,
      pdpActivationFailures: 1,
      baud: 115_200,
      mmsc: { httpStatus: 503, count: 1 },
    };
    expect(await post(request)).toEqual({ status: 200, json: { ok: true } });
    const s = modem.state();
    expect(s.registration).toMatchObject({ cgreg: 0, cereg: 0 });
    expect(s).toMatchObject({ queuedSendResults: 2, hold: true });
    expect(set).toEqual([{ httpStatus: 503, count: 1 }]);
  });

  it('changes nothing when a later key is bad, and names the key', async () => {
    const { modem, post } = await setup();
    expect(await post({ sim: 'absent', hold: true, signal: 100 })).toEqual({ status: 400, json: { error: 'signal must be an integer 0..99' } });
    expect(modem.state()).toMatchObject({ sim: 'ready', hold: false });
    expect(await post({ sim: 'gone' })).toEqual({ status: 400, json: { error: 'sim must be "ready", "absent" or "pin"' } });
    expect(await post({ sendResults: [{ err: 'x' }] })).toEqual({ status: 400, json: { error: 'sendResults[].err must be an integer 0..65535' } });
    expect(await post({ reboot: false })).toEqual({ status: 400, json: { error: 'reboot must be true' } });
    expect(await post({ urc: 'a\r\nb' })).toEqual({ status: 400, json: { error: 'urc must be one line of text' } });
    expect(modem.state()).toMatchObject({ sim: 'ready', boots: 0, queuedSendResults: 0 });
  });

  it('refuses unknown keys, a body that is not an object, and faults of parts that are not running', async () => {
    const { post } = await setup();
    expect(await post({ registration: 1, nonsense: 1 })).toEqual({ status: 400, json: { error: 'unknown fault "nonsense"' } });
    expect(await post([1])).toEqual({ status: 400, json: { error: 'body must be a JSON object' } });
    expect(await post({ mmsc: {} })).toEqual({ status: 400, json: { error: 'no loopback MMSC (start with --mmsc)' } });
    expect(await post({ portLoss: 10 })).toEqual({ status: 400, json: { error: 'no port server' } });
  });
});

describe('ControlServer delivery settings and POST /sms', () => {
  it('hands checked delivery settings to the MMSC and names a bad plan', async () => {
    const settings: DeliverySettings[] = [];
    const { post } = await setup(fakeMmsc({ setDelivery: (d) => void settings.push(d) }));
    expect(await post({ delivery: { plan: 'expired', delayMs: 5, recipients: { '+4917': 'none' } } })).toEqual({ status: 200, json: { ok: true } });
    expect(await post({ delivery: { recipients: { '+4917': 'lost' } } })).toEqual({
      status: 400,
      json: { error: 'delivery.recipients["+4917"] must be one of retrieved, rejected, expired, deferred-then-retrieved, none' },
    });
    expect(await post({ delivery: { speed: 1 } })).toEqual({ status: 400, json: { error: 'unknown delivery key "speed"' } });
    expect(settings).toEqual([{ plan: 'expired', delayMs: 5, recipients: { '+4917': 'none' } }]);
  });

  it('takes a recipient\'s own delay in /fault delivery.recipients and one recipient by POST /delivery; names what is wrong', async () => {
    const settings: DeliverySettings[] = [];
    const { post } = await setup(fakeMmsc({ setDelivery: (d) => void settings.push(d) }));
    expect(await post({ delivery: { recipients: { '+4917': { plan: 'rejected', delayMs: 500 }, '+4918': 'none' } } })).toEqual({ status: 200, json: { ok: true } });
    expect(await post({ recipient: '+4919', plan: 'deferred-then-retrieved', delayMs: 40 }, '/delivery')).toEqual({
      status: 200,
      json: { ok: true, plan: 'retrieved', delayMs: 200, recipients: {} },
    });
    expect(await post({ recipient: '+4919', plan: 'expired' }, '/delivery')).toMatchObject({ status: 200 });
    expect(await post({ recipient: '+4919', plan: 'lost' }, '/delivery')).toEqual({
      status: 400,
      json: { error: 'delivery.plan must be one of retrieved, rejected, expired, deferred-then-retrieved, none' },
    });
    expect(await post({ recipient: '+4919', plan: 'expired', delayMs: -1 }, '/delivery')).toEqual({ status: 400, json: { error: 'delivery.delayMs must be an integer 0..3600000' } });
    expect(await post({ plan: 'expired' }, '/delivery')).toEqual({ status: 400, json: { error: 'recipient must be one line of text' } });
    expect(await post({ recipient: '+4919', plan: 'expired', speed: 1 }, '/delivery')).toEqual({ status: 400, json: { error: 'unknown delivery key "speed"' } });
    expect(await post({ delivery: { recipients: { '+4917': { plan: 'rejected', when: 1 } } } })).toEqual({
      status: 400,
      json: { error: 'unknown delivery.recipients["+4917"] key "when"' },
    });
    expect(settings).toEqual([
      { recipients: { '+4917': { plan: 'rejected', delayMs: 500 }, '+4918': 'none' } },
      { recipients: { '+4919': { plan: 'deferred-then-retrieved', delayMs: 40 } } },
      { recipients: { '+4919': { plan: 'expired' } } },
    ]);
  });

  it('GET and POST /delivery answer 404 without an MMSC', async () => {
    const { post } = await setup();
    expect(await post({ recipient: '+4919', plan: 'expired' }, '/delivery')).toEqual({ status: 404, json: { error: 'no loopback MMSC (start with --mmsc)' } });
  });

  it('stores raw PDUs, text and pushes, answering where each went; a bad request stores nothing', async () => {
    const { modem, post } = await setup();
    const text = await post({ text: 'hi', from: '+4917099' }, '/sms');
    expect(text).toMatchObject({ status: 200, json: { ok: true, sms: [{ stored: { mem: 'ME', index: 0 } }] } });
    const pdu = (text.json as { sms: { pdu: string }[] }).sms[0].pdu;
    expect(await post({ pdus: [pdu.toLowerCase()] }, '/sms')).toEqual({ status: 200, json: { ok: true, sms: [{ pdu, stored: { mem: 'ME', index: 1 } }] } });
    const push = { type: 'delivery', messageId: 'm1', to: '+4917012345', status: 'retrieved' };
    const pushed = await post({ push, segments: 2, order: 'reverse', duplicate: true }, '/sms');
    expect((pushed.json as { sms: { stored: { index: number } }[] }).sms.map((x) => x.stored.index)).toEqual([2, 3, 4]);
    expect(await post({ push, text: 'x' }, '/sms')).toEqual({ status: 400, json: { error: 'give exactly one of "pdus", "text" and "push"' } });
    expect(await post({ text: 'x', from: '+49', segments: 2 }, '/sms')).toEqual({
      status: 400,
      json: { error: 'segments, order, duplicate, malformed go with "push" only' },
    });
    expect(await post({ push: { ...push, status: 'gone' } }, '/sms')).toMatchObject({ status: 400 });
    expect(await post({ push, malformed: 'smtp' }, '/sms')).toEqual({ status: 400, json: { error: 'malformed must be "wsp" or "mms"' } });
    expect(await post({ push, segments: 2, duplicate: [3] }, '/sms')).toEqual({ status: 400, json: { error: 'duplicate 3 is not a segment of 1..2' } });
    expect(modem.state().sms.delivered).toBe(5);
  });
});
