// Delivery reports end to end (issue 16, DESIGN.md §12): the real daemon on the virtual modem, the
// loopback MMSC pushing M-Delivery.ind as WAP-push SMS, a real dbus-daemon and mosquitto. What the
// message's record, the D-Bus signal, mmsd/delivery and the sim's SMS store say is the proof.
import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import dbus from 'dbus-next';
import { openBus, type MessageBus } from '../../src/api/dbus/bus.js';
import { MMSCTL_BIN } from '../../src/harness/testbed.js';
import { encodeDeliveryInd } from '../../src/mms/notification.js';
import { MMS_VERSION } from '../../src/mms/types.js';
import { pushPdus } from '../../src/sim/sms-inject.js';
import { Mosquitto, MqttObserver, until } from '../helpers/mosquitto.js';
import { startStack, waitForProps, type Stack } from '../helpers/stack.js';

let broker: Mosquitto;
let s: Stack;
let watch: MqttObserver;
let signalBus: MessageBus;
const signals: { path: string; recipient: string; status: string }[] = [];
/** `mmsd-sim --delivery-for` of the three-recipient test: retrieved first, then rejected, then deferred and retrieved. */
const THREE = ['+4915110000001=retrieved:300', '+4915110000002=rejected:900', '+4915110000003=deferred-then-retrieved:1500'];

beforeAll(async () => {
  broker = await Mosquitto.start();
  // The three-recipient message's reports come from the MMSC's own per-recipient plans, each with
  // its own delay, so they arrive in a known order.
  const simArgs = ['--delivery-delay-ms', '300'];
  for (const plan of THREE) simArgs.push('--delivery-for', plan);
  s = await startStack({ mqttUrl: broker.url, simArgs, config: { mqtt: { clientId: 'mmsd-inbound' } } });
  await s.tb.modemReady();
  watch = await MqttObserver.connect(broker.url, ['mmsd/delivery']);
  signalBus = openBus('session', s.tb.bus!.address);
  signalBus.on('error', () => undefined);
  await signalBus.call(
    new dbus.Message({
      destination: 'org.freedesktop.DBus',
      path: '/org/freedesktop/DBus',
      interface: 'org.freedesktop.DBus',
      member: 'AddMatch',
      signature: 's',
      body: ["type='signal',interface='org.example.Mms1',member='DeliveryReport'"],
    }),
  );
  signalBus.on('message', (m: InstanceType<typeof dbus.Message>) => {
    if (m.member === 'DeliveryReport') signals.push({ path: m.body[0] as string, recipient: m.body[1] as string, status: m.body[2] as string });
  });
}, 60_000);

afterAll(async () => {
  signalBus?.disconnect();
  await watch?.end();
  await s?.stop();
  await broker?.dispose();
});

const reports = (): Record<string, unknown>[] => watch.json('mmsd/delivery');

interface SmsView {
  sms: { stores: { ME: { messages: { index: number; pdu: string }[] } } };
}
async function storedSms(): Promise<{ index: number; pdu: string }[]> {
  return ((await s.tb.simState()) as unknown as SmsView).sms.stores.ME.messages;
}

async function transcriptOf(): Promise<string[]> {
  return ((await s.tb.simState()) as { transcript?: string[] }).transcript ?? [];
}

async function sendOne(id: string, to: string[], deliveryReport: boolean): Promise<void> {
  await s.client.sendData({ id, to, subject: id, options: { deliveryReport } }, [{ name: 'a.txt', contentType: 'text/plain', data: Buffer.from(id) }]);
  await waitForProps(s.client, id, (p) => p.Status === 'sent', 30_000, `${id} sent`);
}

/** A report the MMSC did not schedule: an M-Delivery.ind pushed now. */
function report(messageId: string, to: string, status: 'retrieved' | 'deferred' | 'rejected', date = Math.floor(Date.now() / 1000)): Buffer {
  return encodeDeliveryInd({ mmsVersion: MMS_VERSION, messageId, to, date, status });
}

function daemonLines(msg: string): Record<string, unknown>[] {
  return s.tb.daemons.flatMap((d) => d.lines.filter((l) => l.msg === msg));
}

async function restartDaemon(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  await s.tb.daemon!.stop(signal);
  await s.tb.startDaemon();
  await s.tb.modemReady();
}

describe('delivery reports with the real daemon and mmsd-sim', () => {
  it('three recipients: retrieved, rejected, deferred-then-retrieved; per-recipient Delivery, D-Bus signals and mmsd/delivery', async () => {
    // No fault and no injected SMS: the plans are the sim's own (--delivery-for, THREE).
    await sendOne('three', ['+4915110000001', '+4915110000002', '+4915110000003'], true);
    const p = await waitForProps(
      s.client,
      'three',
      (x) => x.Delivery?.['+4915110000003'] === 'retrieved' && x.Delivery['+4915110000002'] === 'rejected' && x.Delivery['+4915110000001'] === 'retrieved',
      20_000,
      'three reports',
    );
    // One recipient rejected it: sent, never delivered.
    expect(p.Status).toBe('sent');
    // Published after the record is stored: the last one may still be on its way through the broker.
    await until(() => reports().filter((r) => r.message === 'three').length === 4, 'four reports on mmsd/delivery');
    const mine = reports().filter((r) => r.message === 'three');
    // In the order of the plans' delays (300, 900, 1500 and 3000 ms after M-Send.conf).
    expect(mine.map((r) => `${String(r.recipient)} ${String(r.status)}`)).toEqual([
      '+4915110000001 retrieved',
      '+4915110000002 rejected',
      '+4915110000003 deferred',
      '+4915110000003 retrieved',
    ]);
    // Each carries the Message-ID the loopback MMSC gave the message in its M-Send.conf.
    const stored = (await s.tb.received()).find((m) => m.to.includes('+4915110000003/TYPE=PLMN') || m.to.includes('+4915110000003'));
    expect(stored).toBeDefined();
    expect(mine.every((r) => r.messageId === stored!.id && typeof r.date === 'number')).toBe(true);
    await until(() => signals.filter((x) => x.path.endsWith('/message/three')).length === 4, 'four DeliveryReport signals');
    // Every taken SMS was deleted once its report was durable.
    await until(async () => (await storedSms()).length === 0, 'SMS store empty');
  });

  it('mmsctl send --wait-delivered exits 0 once every recipient retrieved it; show prints each state', async () => {
    // At run time, one recipient at a time (POST /delivery), one of them with its own delay.
    for (const body of [
      { recipient: '+4915110000011', plan: 'retrieved' },
      { recipient: '+4915110000012', plan: 'deferred-then-retrieved', delayMs: 100 },
    ]) {
      const res = await fetch(`${s.tb.simInfo.control}/delivery`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect(res.status).toBe(200);
    }
    const settings = (await (await fetch(`${s.tb.simInfo.control}/delivery`)).json()) as { recipients: Record<string, unknown> };
    expect(settings.recipients['+4915110000012']).toEqual({ plan: 'deferred-then-retrieved', delayMs: 100 });
    const run = (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
      new Promise((resolve) => {
        execFile(process.execPath, [MMSCTL_BIN, '--bus', 'session', ...args], { env: s.tb.env }, (err, stdout, stderr) =>
          resolve({ code: err ? Number((err as NodeJS.ErrnoException & { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
    const r = await run('send', '--to', '+4915110000011', '--to', '+4915110000012', '--subject', 'wd', '--id', 'waitdel', '--wait-delivered');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/delivered waitdel/);
    const show = await run('show', 'waitdel');
    expect(show.stdout).toMatch(/status: +delivered/);
    expect(show.stdout).toMatch(/\+4915110000011 +retrieved/);
    expect(show.stdout).toMatch(/\+4915110000012 +retrieved/);
  });

  it('two messages to one recipient get their reports in order; a known Message-ID goes straight to its message', async () => {
    await s.tb.fault({ delivery: { recipients: { '+4915110000021': 'none' } } });
    await sendOne('order1', ['+4915110000021'], true);
    await sendOne('order2', ['+4915110000021'], true);
    // The first report for this recipient goes to the older message, and teaches it its Message-ID.
    await s.tb.sms({ push: { type: 'delivery', messageId: 'MID-A', to: '+4915110000021', status: 'deferred' } });
    await waitForProps(s.client, 'order1', (p) => p.Delivery?.['+4915110000021'] === 'deferred', 10_000, 'order1 deferred');
    // Another Message-ID: not order1's any more, so the next message in order.
    await s.tb.sms({ push: { type: 'delivery', messageId: 'MID-B', to: '+4915110000021', status: 'retrieved' } });
    await waitForProps(s.client, 'order2', (p) => p.Status === 'delivered', 10_000, 'order2 delivered');
    expect((await s.client.show('order1')).Delivery?.['+4915110000021']).toBe('deferred');
    await s.tb.sms({ push: { type: 'delivery', messageId: 'MID-A', to: '4915110000021', status: 'retrieved' } });
    await waitForProps(s.client, 'order1', (p) => p.Status === 'delivered', 10_000, 'order1 delivered');
  });

  it('a report for a message that asked for none is unmatched: mmsd/delivery without message, DeliveryReport on "/"', async () => {
    await sendOne('noreport', ['+4915110000031'], false);
    await s.tb.sms({ push: { type: 'delivery', messageId: 'MID-N', to: '+4915110000031', status: 'retrieved' } });
    const r = await watch.waitForJson('mmsd/delivery', { messageId: 'MID-N' });
    expect(r.message).toBeUndefined();
    expect(r.recipient).toBe('+4915110000031');
    await until(() => signals.some((x) => x.path === '/' && x.recipient === '+4915110000031'), 'unmatched DeliveryReport signal');
    expect((await s.client.show('noreport')).Delivery).toEqual({});
  });

  it('a plain SMS stays in storage; a malformed push is kept aside and the next push still works', async () => {
    const [plain] = await s.tb.sms({ text: 'hello, not for mmsd', from: '+4917099999999' });
    await s.tb.sms({ push: { type: 'delivery', messageId: 'MID-BAD', to: '+4915110000041', status: 'retrieved' }, malformed: 'mms' });
    await until(() => daemonLines('WAP push kept aside: it does not decode').length >= 1, 'kept aside');
    await s.tb.sms({ push: { type: 'delivery', messageId: 'MID-AFTER', to: '+4915110000041', status: 'retrieved' } });
    await watch.waitForJson('mmsd/delivery', { messageId: 'MID-AFTER' });
    const aside = await readdir(join(s.tb.stateDir, 'inbound', 'rejected'));
    expect(aside.length).toBeGreaterThanOrEqual(1);
    await until(async () => (await storedSms()).length === 1, 'only the plain SMS left');
    expect((await storedSms())[0].pdu).toBe(plain.pdu);
  });

  it('a report that came while the daemon was down is read at start; a two-segment push straddles a restart', async () => {
    await s.tb.fault({ delivery: { recipients: { '+4915110000051': 'none', '+4915110000052': 'none' } } });
    await sendOne('whiledown', ['+4915110000051'], true);
    await sendOne('straddle', ['+4915110000052'], true);
    await s.tb.daemon!.stop();
    await s.tb.sms({ push: { type: 'delivery', messageId: 'MID-DOWN', to: '+4915110000051', status: 'retrieved' } });
    await s.tb.startDaemon();
    await waitForProps(s.client, 'whiledown', (p) => p.Status === 'delivered', 30_000, 'whiledown delivered');
    expect(daemonLines('SMS storage read').at(-1)?.stored).toBeGreaterThanOrEqual(1);

    const [seg1, seg2] = pushPdus(report('MID-SEG', '+4915110000052', 'retrieved'), { segments: 2, ref: 77 });
    await s.tb.sms({ pdus: [seg1] });
    await until(() => s.tb.daemon!.lines.some((l) => l.msg === 'WAP push segment stored' && l.seq === 1 && l.ref === 77), 'segment 1 stored');
    await restartDaemon();
    await s.tb.sms({ pdus: [seg2] });
    await waitForProps(s.client, 'straddle', (p) => p.Status === 'delivered', 30_000, 'straddle delivered');
    await until(async () => (await readdir(join(s.tb.stateDir, 'inbound', 'segments'))).filter((f) => !f.startsWith('.')).length === 0, 'segments removed');
    // The plain SMS of the test before survived two start-up listings untouched.
    expect((await storedSms()).map((x) => x.pdu)).toHaveLength(1);
  }, 120_000);

  it('SIGKILL between storing a report and deleting its SMS leaves exactly one effect', async () => {
    await s.tb.fault({ delivery: { recipients: { '+4915110000061': 'none' } } });
    await sendOne('killed', ['+4915110000061'], true);
    const base = (await storedSms()).length;
    await s.tb.fault({ holdSmsDeletes: true });
    const before = reports().filter((r) => r.message === 'killed').length;
    await s.tb.sms({ push: { type: 'delivery', messageId: 'MID-K', to: '+4915110000061', status: 'retrieved' } });
    const d = s.tb.daemon!;
    await d.waitFor((l) => l.msg === 'delivery report' && l.reportMessageId === 'MID-K', 15_000, 'report stored');
    // The SMS is still in the module: its AT+CMGD is held by the sim.
    expect((await storedSms()).length).toBe(base + 1);
    await until(async () => (await transcriptOf()).some((l) => /AT\+CMGD=/.test(l)), 'AT+CMGD written');
    await d.stop('SIGKILL');
    // The held AT+CMGD answers an error and deletes nothing: the SMS is there for the next start.
    await s.tb.fault({ holdSmsDeletes: false });
    await s.tb.startDaemon();
    await until(() => s.tb.daemon!.lines.some((l) => l.msg === 'push handled before: a duplicate'), 'duplicate recognised at start', 30_000);
    await until(async () => (await storedSms()).length === base, 'the report SMS deleted');
    const p = await s.client.show('killed');
    expect(p.Status).toBe('delivered');
    expect(daemonLines('delivery report applied').filter((l) => l.id === 'killed')).toHaveLength(1);
    expect(daemonLines('delivery report').filter((l) => l.reportMessageId === 'MID-K')).toHaveLength(1);
    expect(reports().filter((r) => r.message === 'killed').length - before).toBe(1);
  }, 120_000);
});
