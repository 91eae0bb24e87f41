// Home Assistant over the MQTT door (DESIGN.md §13) against a real mosquitto: the discovery message
// checked against HA's rules, its lifecycle (birth, reconnect, disable, a component removed), the
// notify entity (one message per command, none twice for a redelivered one) and the events. The
// context is the in-memory fake, which emits the inbound path's events as the daemon will.
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { MqttService } from '../../src/api/mqtt/index.js';
import type { HomeAssistantConfig } from '../../src/api/mqtt/homeassistant.js';
import type { DeliveryReportEvent, ReceivedRecord } from '../../src/core/inbound.js';
import { FakeContext, type FakeContextOptions } from '../helpers/fake-context.js';
import { checkDeviceDiscovery } from '../helpers/ha-rules.js';
import { Mosquitto, MqttObserver, runTool, until } from '../helpers/mosquitto.js';

let broker: Mosquitto;
let seq = 0;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  broker = await Mosquitto.start();
});
afterAll(async () => {
  await broker.dispose();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const IMEI = '866758040000001';

interface Rig {
  base: string;
  prefix: string;
  discovery: string;
  ctx: FakeContext;
  service: MqttService;
  observer: MqttObserver;
  logs: Record<string, unknown>[];
  /** Stops the service (for a restart with other settings: same base, prefix and client id). */
  stop(): Promise<void>;
}

/** A service with HA on its own base topic and discovery prefix; `names` reuses another rig's. */
async function rig(
  ha: Partial<HomeAssistantConfig>,
  opts: { ctx?: FakeContextOptions; names?: { base: string; prefix: string }; identity?: false } = {},
): Promise<Rig> {
  seq += 1;
  const base = opts.names?.base ?? `t${process.pid}-${seq}`;
  const prefix = opts.names?.prefix ?? `ha${process.pid}-${seq}`;
  const ctx = new FakeContext(opts.ctx ?? { autoSend: true });
  if (opts.identity === false) ctx.identity = undefined;
  const observer = await MqttObserver.connect(broker.url, [`${base}/#`, `${prefix}/#`]);
  cleanups.push(() => observer.end());
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const service = new MqttService({
    ctx,
    config: { url: broker.url, baseTopic: base, clientId: `mmsd-${base}` },
    logger: pino({ level: 'debug' }, sink),
    reconnectMinMs: 100,
    reconnectMaxMs: 200,
    homeAssistant: { enabled: true, prefix, notifyTo: [], ...ha },
  });
  await service.start();
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await service.stop();
  };
  cleanups.push(stop);
  return { base, prefix, discovery: `${prefix}/device/mmsd_${IMEI}/config`, ctx, service, observer, logs, stop };
}

/** mosquitto_pub, QoS 1; an empty body as a zero-length message. */
async function pub(topic: string, body: string): Promise<void> {
  const message = body === '' ? ['-n'] : ['-m', body];
  const r = await runTool('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(broker.port), '-V', '5', '-q', '1', '-t', topic, ...message]);
  expect(r.code, r.stderr).toBe(0);
}

/** The non-empty payloads on `topic`, parsed. */
function discoveries(o: MqttObserver, topic: string): Record<string, unknown>[] {
  return o.json(topic);
}

/** What the broker retains on `topic` now: a fresh subscriber's first message, or none within `ms`. */
async function retained(topic: string, ms = 1500): Promise<string | undefined> {
  const fresh = await MqttObserver.connect(broker.url, [topic]);
  try {
    const m = await fresh.waitFor((r) => r.topic === topic, ms, 'retained').catch(() => undefined);
    return m?.retain ? m.payload.toString() : undefined;
  } finally {
    await fresh.end();
  }
}

describe('Home Assistant discovery', () => {
  it('publishes one retained device message that follows HA\'s rules, with unique ids from the IMEI', async () => {
    const r = await rig({ notifyTo: ['+4917012345678'] });
    const m = await r.observer.waitFor((x) => x.topic === r.discovery && x.payload.length > 0, 10_000, 'the discovery message');
    expect(m.retain || (await retained(r.discovery)) !== undefined).toBe(true);
    const payload = JSON.parse(m.payload.toString()) as Record<string, unknown>;
    const cmps = checkDeviceDiscovery(payload);
    expect(Object.keys(cmps).sort()).toEqual(
      ['connectivity', 'modem_state', 'registration', 'operator', 'signal', 'queue', 'carrier_source', 'last_error', 'sent', 'failed', 'delivery', 'received', 'notify'].sort(),
    );
    for (const [key, c] of Object.entries(cmps)) expect(c.unique_id).toBe(`mmsd_${IMEI}_${key}`);
    expect(payload.dev).toMatchObject({ ids: [`mmsd_${IMEI}`], mf: 'Quectel', mdl: 'EC25', sw: 'EC25EFAR06A11M4G', sn: IMEI });
    expect(payload.o).toEqual({ name: 'mmsd', sw: '0.0.0-test' });
    expect(payload.avty).toEqual([{ t: `${r.base}/availability` }]);
    // What the issue asks of the sensors.
    expect(cmps.connectivity).toMatchObject({ platform: 'binary_sensor', device_class: 'connectivity', state_topic: `${r.base}/status` });
    expect(cmps.signal).toMatchObject({ device_class: 'signal_strength', state_class: 'measurement', unit_of_measurement: 'dBm', entity_category: 'diagnostic' });
    expect(cmps.sent).toMatchObject({ state_class: 'total_increasing' });
    expect(cmps.failed).toMatchObject({ state_class: 'total_increasing' });
    expect(cmps.delivery).toMatchObject({ platform: 'event', state_topic: `${r.base}/event/delivery` });
    expect(cmps.delivery.event_types).toEqual(['retrieved', 'rejected', 'expired', 'deferred', 'indeterminate', 'forwarded', 'unreachable', 'unrecognised']);
    expect(cmps.received).toMatchObject({ platform: 'event', state_topic: `${r.base}/event/received`, event_types: ['received', 'failed', 'expired'] });
    expect(cmps.notify).toMatchObject({ platform: 'notify', command_topic: `${r.base}/notify` });
    // The status it reads carries the identity and the new fields.
    const status = await r.observer.waitForJson(`${r.base}/status`, { signalDbm: -73 });
    expect(status).toMatchObject({ signal: 20, sentTotal: 0, failedTotal: 0, lastError: null, modem: { imei: IMEI, model: 'EC25' } });
  });

  it('waits for the IMEI before publishing, then publishes once', async () => {
    // A modem not read yet: connected, subscribed, and nothing for HA.
    const r = await rig({}, { identity: false });
    await r.observer.waitFor((x) => x.topic === `${r.base}/status`, 10_000, 'status');
    await pub(`${r.prefix}/status`, 'online');
    await pub(`${r.base}/probe`, 'end');
    await r.observer.waitFor((x) => x.topic === `${r.base}/probe`, 10_000, 'the probe');
    expect(r.observer.received.filter((x) => x.topic.startsWith(`${r.prefix}/device/`))).toHaveLength(0);
    expect(r.observer.json(`${r.base}/status`).at(-1)?.modem).toBeUndefined();
    r.ctx.setModemIdentity({ imei: '866758040000099', manufacturer: 'Quectel', model: 'EG25', firmware: 'EG25GGBR07A08M2G' });
    const topic = `${r.prefix}/device/mmsd_866758040000099/config`;
    await r.observer.waitFor((x) => x.topic === topic && x.payload.length > 0, 10_000, 'discovery after the identity');
    await r.observer.waitForJson(`${r.base}/status`, { modem: { imei: '866758040000099', manufacturer: 'Quectel', model: 'EG25', firmware: 'EG25GGBR07A08M2G' } });
    await pub(`${r.base}/probe`, 'end');
    await until(() => r.observer.received.filter((x) => x.topic === `${r.base}/probe`).length === 2, 'the second probe');
    expect(discoveries(r.observer, topic)).toHaveLength(1);
    expect(discoveries(r.observer, topic)[0]).toMatchObject({ dev: { mdl: 'EG25', sn: '866758040000099' } });
  });

  it('publishes again on HA\'s birth message, once per connect, and never on a status change', async () => {
    const r = await rig({});
    await r.observer.waitFor((x) => x.topic === r.discovery && x.payload.length > 0, 10_000, 'the discovery message');
    for (let i = 0; i < 5; i++) r.ctx.setModemStatus({ signal: 10 + i, operator: `Net ${i}` });
    await r.observer.waitForJson(`${r.base}/status`, { operator: 'Net 4' });
    expect(discoveries(r.observer, r.discovery)).toHaveLength(1);

    await pub(`${r.prefix}/status`, 'offline');
    await pub(`${r.prefix}/status`, 'online');
    await until(() => discoveries(r.observer, r.discovery).length === 2, 'the republish after the birth');

    // A reconnect (the broker dropped us): one more, not one per subscription or status.
    (r.service as unknown as { client: { stream: { destroy(): void } } }).client.stream.destroy();
    await until(() => discoveries(r.observer, r.discovery).length === 3, 'the republish after a reconnect');
    // Give a storm its chance to show: a status change and a later birth each say exactly what they should.
    r.ctx.setModemStatus({ signal: 30 });
    await r.observer.waitForJson(`${r.base}/status`, { signal: 30 });
    await pub(`${r.prefix}/status`, 'online');
    await until(() => discoveries(r.observer, r.discovery).length === 4, 'the second birth');
    await r.observer.waitForJson(`${r.base}/status`, { signal: 30 });
    expect(discoveries(r.observer, r.discovery)).toHaveLength(4);

    // A birth the broker redelivers after a reconnect (DUP: its PUBACK went with the old
    // connection) is not a new birth: the connection's own discovery message answered it already.
    const ha = (r.service as unknown as { ha: { birthTopic: string; handle(t: string, p: Buffer, how: { retained: boolean; redelivered: boolean }): unknown } }).ha;
    ha.handle(ha.birthTopic, Buffer.from('online'), { retained: false, redelivered: true });
    r.ctx.setModemStatus({ signal: 31 });
    await r.observer.waitForJson(`${r.base}/status`, { signal: 31 });
    expect(discoveries(r.observer, r.discovery)).toHaveLength(4);
  });

  it('removes the discovery message when started disabled after having been enabled', async () => {
    const first = await rig({ notifyTo: ['+4917012345678'] });
    await first.observer.waitFor((x) => x.topic === first.discovery && x.payload.length > 0, 10_000, 'the discovery message');
    expect(await retained(first.discovery)).toBeDefined();
    await first.stop();

    const second = await rig({ enabled: false, notifyTo: ['+4917012345678'] }, { names: first });
    const cleared = await second.observer.waitFor((x) => x.topic === second.discovery && x.payload.length === 0, 10_000, 'the empty payload');
    expect(cleared.payload.length).toBe(0);
    expect(await retained(second.discovery)).toBeUndefined();
    // Disabled: no birth or notify subscription, no events.
    await pub(`${second.base}/notify`, 'hello');
    await pub(`${second.prefix}/status`, 'online');
    second.ctx.emit('deliveryReport', { recipient: '+4917012345678', status: 'retrieved', date: 1, reportMessageId: 'x' } satisfies DeliveryReportEvent);
    await pub(`${second.base}/probe`, 'end');
    await second.observer.waitFor((x) => x.topic === `${second.base}/probe`, 10_000, 'the probe');
    expect(second.ctx.received, JSON.stringify(second.ctx.received)).toHaveLength(0);
    // Only the broker's copy from before (retained), nothing published since.
    expect(second.observer.received.filter((x) => x.topic === second.discovery && x.payload.length > 0 && !x.retain)).toHaveLength(0);
    expect(second.observer.received.filter((x) => x.topic.startsWith(`${second.base}/event/`))).toHaveLength(0);
  });

  it('publishes nothing to the discovery prefix when never enabled', async () => {
    const r = await rig({ enabled: false });
    await r.observer.waitFor((x) => x.topic === `${r.base}/status`, 10_000, 'status');
    await pub(`${r.prefix}/probe`, 'end');
    await r.observer.waitFor((x) => x.topic === `${r.prefix}/probe`, 10_000, 'the probe');
    expect(r.observer.received.filter((x) => x.topic.startsWith(`${r.prefix}/device/`))).toHaveLength(0);
  });

  it('removes the notify entity when notifyTo is emptied: its platform alone first, then the message without it', async () => {
    const first = await rig({ notifyTo: ['+4917012345678'] });
    await first.observer.waitFor((x) => x.topic === first.discovery && x.payload.length > 0, 10_000, 'the discovery message');
    await first.stop();

    const second = await rig({ notifyTo: [] }, { names: first });
    type Message = { cmps: Record<string, Record<string, unknown>> };
    const seen = (): Message[] => discoveries(second.observer, second.discovery) as unknown as Message[];
    const removal = (): number => seen().findIndex((m) => JSON.stringify(m.cmps.notify) === '{"p":"notify"}');
    await until(() => removal() > 0 && seen().length > removal() + 1, 'the removal and the message after it');
    // The broker's copy from before, then (in some order) the current message and the removal,
    // and the current message once more after the removal.
    expect(seen()[0].cmps.notify).toMatchObject({ p: 'notify' });
    const after = seen()[removal() + 1];
    expect(after.cmps.notify).toBeUndefined();
    expect(Object.keys(seen()[removal()].cmps)).toEqual([...Object.keys(after.cmps), 'notify']);
    checkDeviceDiscovery(after);
    const kept = JSON.parse((await retained(second.discovery))!) as { cmps: Record<string, unknown> };
    expect(Object.keys(kept.cmps)).not.toContain('notify');
    expect(Object.keys(kept.cmps)).toContain('signal');
    // And the notify topic is no longer taken.
    await pub(`${second.base}/notify`, 'hello');
    await pub(`${second.base}/probe`, 'end');
    await second.observer.waitFor((x) => x.topic === `${second.base}/probe`, 10_000, 'the probe');
    expect(second.ctx.received, JSON.stringify(second.ctx.received)).toHaveLength(0);
  });
});

describe('Home Assistant notify entity', () => {
  it('sends each command\'s text to notifyTo through the send path; the same text again is the same message', async () => {
    const r = await rig({ notifyTo: ['+4917012345678', 'ops@example.org'] });
    await r.observer.waitFor((x) => x.topic === r.discovery, 10_000, 'the discovery message');
    await pub(`${r.base}/notify`, 'Alarm: garage door open');
    await until(() => r.ctx.records.size === 1, 'one message');
    const [record] = r.ctx.list();
    expect(record.id).toMatch(/^ha-[0-9a-f]{12}-\d+$/);
    expect(record.to).toEqual(['+4917012345678', 'ops@example.org']);
    expect(r.ctx.attachments.get(record.id)).toEqual([{ name: 'message.txt', contentType: 'text/plain; charset=utf-8', data: Buffer.from('Alarm: garage door open') }]);
    await r.observer.waitForJson(`${r.base}/message/${record.id}`, { status: 'sent' });

    // HA (or a person) retries the same command: no second message, its status published again.
    const sentBefore = r.observer.json(`${r.base}/message/${record.id}`).filter((p) => p.status === 'sent').length;
    await pub(`${r.base}/notify`, 'Alarm: garage door open');
    await until(() => r.observer.json(`${r.base}/message/${record.id}`).filter((p) => p.status === 'sent').length > sentBefore, 'the re-published status');
    expect(r.ctx.records.size).toBe(1);

    // Another text is another message.
    await pub(`${r.base}/notify`, 'Alarm: garage door closed');
    await until(() => r.ctx.records.size === 2, 'a second message');
  });

  it('does not send a redelivered command twice: queued, then the connection died before the PUBACK', async () => {
    const r = await rig({ notifyTo: ['+4917012345678'] }, { ctx: { autoSend: false } });
    await r.observer.waitFor((x) => x.topic === r.discovery, 10_000, 'the discovery message');
    // Once the message is in the outbox, the connection drops before the PUBACK goes out: the
    // broker keeps the command in mmsd's session and hands it over again (DUP) on the reconnect.
    const client = (r.service as unknown as { client: { stream: { destroy(): void } } }).client;
    r.ctx.once('added', () => client.stream.destroy());
    await pub(`${r.base}/notify`, 'Smoke detected');
    // The redelivery is handled either way: as the known message (its status re-published), or as a second one.
    await until(() => r.logs.some((l) => l.msg === 'send request for a known id: re-publishing its status') || r.ctx.records.size > 1, 'the redelivered command', 15_000);
    expect(r.ctx.records.size).toBe(1);
    expect(r.logs.some((l) => l.msg === 'notify: the same text again within the window; not sent twice')).toBe(true);
    expect(r.ctx.received).toHaveLength(1);
    // It was acknowledged this time: no third delivery.
    await pub(`${r.base}/probe`, 'end');
    await r.observer.waitFor((x) => x.topic === `${r.base}/probe`, 10_000, 'the probe');
    expect(r.logs.filter((l) => l.msg === 'notify: the same text again within the window; not sent twice')).toHaveLength(1);
  });

  it('sends the same text again once the earlier message failed', async () => {
    const r = await rig({ notifyTo: ['+4917012345678'] }, { ctx: { autoSend: false } });
    await r.observer.waitFor((x) => x.topic === r.discovery, 10_000, 'the discovery message');
    await pub(`${r.base}/notify`, 'Water leak');
    await until(() => r.ctx.records.size === 1, 'one message');
    r.ctx.patch(r.ctx.list()[0].id, { status: 'failed', error: { code: 765, name: 'Server response failed', httpStatus: 503 } });
    const status = await r.observer.waitForJson(`${r.base}/status`, { failedTotal: 1 });
    expect(status.lastError).toMatch(/^ha-[0-9a-f]{12}-\d+: 765 Server response failed \(HTTP 503\)$/);
    await pub(`${r.base}/notify`, 'Water leak');
    await until(() => r.ctx.records.size === 2, 'a second message');
  });

  it('answers an empty command as rejected, named, on the message topic', async () => {
    const r = await rig({ notifyTo: ['+4917012345678'] });
    await r.observer.waitFor((x) => x.topic === r.discovery, 10_000, 'the discovery message');
    await pub(`${r.base}/notify`, '');
    const m = await r.observer.waitFor((x) => x.topic.startsWith(`${r.base}/message/ha-`), 10_000, 'the rejection');
    expect(JSON.parse(m.payload.toString())).toMatchObject({ status: 'rejected', error: { name: 'InvalidRequest' } });
    expect(r.ctx.records.size).toBe(0);
  });
});

describe('Home Assistant events', () => {
  it('publishes every delivery report on its own topic, not retained, with event_type and attributes', async () => {
    const r = await rig({});
    await r.observer.waitFor((x) => x.topic === r.discovery, 10_000, 'the discovery message');
    const matched: DeliveryReportEvent = { messageId: 'order-4711', recipient: '+4917012345678', status: 'retrieved', date: Date.UTC(2025, 0, 2, 3, 4, 5), reportMessageId: 'MSG-1', delivery: { '+4917012345678': 'retrieved' } };
    r.ctx.emit('deliveryReport', matched);
    r.ctx.emit('deliveryReport', { recipient: '+4917099999999', status: 'unreachable', date: Date.UTC(2025, 0, 2), reportMessageId: 'MSG-2' } satisfies DeliveryReportEvent);
    await until(() => r.observer.json(`${r.base}/event/delivery`).length === 2, 'two delivery events');
    expect(r.observer.json(`${r.base}/event/delivery`)).toEqual([
      { event_type: 'retrieved', message_id: 'order-4711', recipient: '+4917012345678', date: '2025-01-02T03:04:05.000Z', mmsc_message_id: 'MSG-1' },
      { event_type: 'unreachable', message_id: null, recipient: '+4917099999999', date: '2025-01-02T00:00:00.000Z', mmsc_message_id: 'MSG-2' },
    ]);
    expect(r.observer.received.filter((x) => x.topic === `${r.base}/event/delivery`).every((x) => !x.retain)).toBe(true);
    expect(await retained(`${r.base}/event/delivery`, 500)).toBeUndefined();
  });

  it('publishes one event per received message, when it is received (or failed or expired)', async () => {
    const r = await rig({});
    await r.observer.waitFor((x) => x.topic === r.discovery, 10_000, 'the discovery message');
    const rec: ReceivedRecord = {
      id: 'in-1',
      status: 'notified',
      from: '+4917011111111',
      to: ['+4917012345678'],
      cc: [],
      subject: 'Photo',
      date: Date.UTC(2025, 5, 1),
      size: 40_000,
      expiry: Date.UTC(2025, 5, 8),
      parts: [],
    };
    r.ctx.emit('received', rec);
    r.ctx.emit('received', { ...rec, status: 'retrieving' });
    const parts = [
      { name: 'photo.jpg', contentType: 'image/jpeg', path: '/var/lib/mmsd/inbox/in-1/photo.jpg', size: 39_000 },
      { name: 'text.txt', contentType: 'text/plain', charset: 'utf-8', path: '/var/lib/mmsd/inbox/in-1/text.txt', size: 12 },
    ];
    r.ctx.emit('received', { ...rec, status: 'received', parts });
    r.ctx.emit('received', { ...rec, status: 'received', parts });
    r.ctx.emit('received', { ...rec, id: 'in-2', status: 'failed', error: { name: 'MessageTooLarge', message: 'too large' } });
    await until(() => r.observer.json(`${r.base}/event/received`).length === 2, 'two received events');
    await pub(`${r.base}/probe`, 'end');
    await r.observer.waitFor((x) => x.topic === `${r.base}/probe`, 10_000, 'the probe');
    expect(r.observer.json(`${r.base}/event/received`)).toEqual([
      {
        event_type: 'received',
        id: 'in-1',
        from: '+4917011111111',
        to: ['+4917012345678'],
        subject: 'Photo',
        date: '2025-06-01T00:00:00.000Z',
        parts: ['photo.jpg', 'text.txt'],
        paths: ['/var/lib/mmsd/inbox/in-1/photo.jpg', '/var/lib/mmsd/inbox/in-1/text.txt'],
      },
      { event_type: 'failed', id: 'in-2', from: '+4917011111111', to: ['+4917012345678'], subject: 'Photo', date: '2025-06-01T00:00:00.000Z', parts: [], paths: [], error: 'MessageTooLarge' },
    ]);
    expect(r.observer.received.filter((x) => x.topic === `${r.base}/event/received`).every((x) => !x.retain)).toBe(true);
  });
});

describe('Home Assistant settings the door refuses', () => {
  it('refuses a send topic that would swallow the notify commands, naming both', async () => {
    const ctx = new FakeContext();
    const service = new MqttService({
      ctx,
      config: { url: broker.url, baseTopic: 'refuse', clientId: 'mmsd-refuse', sendTopic: 'refuse/notify' },
      logger: pino({ level: 'silent' }),
      homeAssistant: { enabled: true, prefix: 'homeassistant', notifyTo: ['+4917012345678'] },
    });
    await expect(service.start()).rejects.toThrow(/mqtt\.sendTopic "refuse\/notify" must not cover refuse\/notify/);
  });
});
