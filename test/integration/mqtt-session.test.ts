// Delivery guarantees of the MQTT front door (DESIGN.md §5) against a real mosquitto: the persistent
// session keeps requests while the daemon is away, PUBACK comes only after the outbox holds a
// request, and a broker restart loses no result.
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { MqttClient, Packet } from 'mqtt';
import { MqttService, type MqttConfig } from '../../src/api/mqtt/index.js';
import { FakeContext } from '../helpers/fake-context.js';
import { Mosquitto, MqttObserver, runTool, until } from '../helpers/mosquitto.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function broker(): Promise<Mosquitto> {
  const b = await Mosquitto.start();
  cleanups.push(() => b.dispose());
  return b;
}

function service(b: Mosquitto, ctx: FakeContext, config: Partial<MqttConfig> & { baseTopic: string; clientId: string }): MqttService {
  const s = new MqttService({
    ctx,
    config: { url: b.url, ...config },
    logger: pino({ level: 'silent' }),
    reconnectMinMs: 100,
    reconnectMaxMs: 500,
  });
  cleanups.push(() => s.stop());
  return s;
}

function clientOf(s: MqttService): MqttClient {
  return (s as unknown as { client: MqttClient }).client;
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('MQTT sessions and acknowledgements', () => {
  it('delivers every result after the broker was restarted mid-flight', async () => {
    const b = await broker();
    const ctx = new FakeContext();
    const s = service(b, ctx, { baseTopic: 'gw', clientId: 'mmsd-restart' });
    await s.start();
    // A client with its own persistent session, as a real requester would have.
    const observer = await MqttObserver.connect(b.url, ['gw/message/+'], { clean: false, clientId: 'requester', properties: { sessionExpiryInterval: 3600 } });
    cleanups.push(() => observer.end());
    await observer.client.publishAsync('gw/send', JSON.stringify({ id: 'r-1', to: ['12345'] }), { qos: 1 });
    await observer.waitForJson('gw/message/r-1', { status: 'queued' });

    await b.stop();
    await until(() => !s.connected, 'the service to notice');
    // The message progresses while the broker is away: mqtt.js keeps the QoS 1 publishes.
    ctx.patch('r-1', { status: 'sending', attempts: 1 });
    ctx.patch('r-1', { status: 'sent' });
    const reconnected = new Promise<void>((resolve) => s.once('connected', () => resolve()));
    await b.restart();
    await reconnected;
    await observer.waitForJson('gw/message/r-1', { status: 'sent' }, 20_000);
    expect(observer.json('gw/message/r-1').map((p) => p.status)).toContain('sending');

    const late = await MqttObserver.connect(b.url, ['gw/message/r-1', 'gw/availability']);
    cleanups.push(() => late.end());
    await late.waitForJson('gw/message/r-1', { status: 'sent' });
    await late.waitFor((r) => r.topic === 'gw/availability' && r.payload.toString() === 'online');
  });

  it('takes requests published while it was stopped when it starts again with the same client id', async () => {
    const b = await broker();
    const first = service(b, new FakeContext(), { baseTopic: 'gw', clientId: 'mmsd-persist' });
    await first.start(); // creates the session and its subscription
    await first.stop();

    for (const n of [1, 2, 3]) {
      const r = await runTool('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(b.port), '-V', '5', '-q', '1', '-t', 'gw/send', '-m', JSON.stringify({ id: `p-${n}`, to: ['12345'] })]);
      expect(r.code, r.stderr).toBe(0);
    }
    const ctx = new FakeContext({ autoSend: true });
    const observer = await MqttObserver.connect(b.url, ['gw/message/+']);
    cleanups.push(() => observer.end());
    const second = service(b, ctx, { baseTopic: 'gw', clientId: 'mmsd-persist' });
    await second.start();
    for (const n of [1, 2, 3]) await observer.waitForJson(`gw/message/p-${n}`, { status: 'sent' });
    expect(ctx.received.map((r) => r.id).sort()).toEqual(['p-1', 'p-2', 'p-3']);
  });

  it('sends the PUBACK only after the submit resolved', async () => {
    const b = await broker();
    const gate = deferred();
    const log: string[] = [];
    const ctx = new FakeContext({
      beforeSubmit: async () => {
        log.push('submit-start');
        await gate.promise;
        log.push('submit-resolved');
      },
    });
    const s = service(b, ctx, { baseTopic: 'gw', clientId: 'mmsd-ack' });
    await s.start();
    clientOf(s).on('packetsend', (p: Packet) => {
      if (p.cmd === 'puback') log.push('puback');
    });
    const publisher = await MqttObserver.connect(b.url, []);
    cleanups.push(() => publisher.end());
    await publisher.client.publishAsync('gw/send', JSON.stringify({ id: 'a-1', to: ['12345'] }), { qos: 1 });
    await until(() => log.includes('submit-start'), 'the submit');
    // The submit is in hand; give the client every chance to ack early by letting the request
    // round-trip another message through the broker first.
    await publisher.client.publishAsync('gw/unrelated', 'x', { qos: 1 });
    expect(log).toEqual(['submit-start']);
    gate.resolve();
    await until(() => log.includes('puback'), 'the puback');
    expect(log).toEqual(['submit-start', 'submit-resolved', 'puback']);
  });

  it('does not lose a request when the daemon dies before the submit finished', async () => {
    const b = await broker();
    let calls = 0;
    const stuck = new FakeContext({
      beforeSubmit: () => {
        calls += 1;
        return new Promise<void>(() => undefined); // the process dies before the outbox answers
      },
    });
    const s1 = new MqttService({ ctx: stuck, config: { url: b.url, baseTopic: 'gw', clientId: 'mmsd-die' }, logger: pino({ level: 'silent' }), stopTimeoutMs: 100 });
    await s1.start();
    const publisher = await MqttObserver.connect(b.url, ['gw/message/+']);
    cleanups.push(() => publisher.end());
    await publisher.client.publishAsync('gw/send', JSON.stringify({ id: 'd-1', to: ['12345'] }), { qos: 1 });
    await until(() => calls === 1, 'the first submit');
    // Abrupt death: the socket closes without DISCONNECT and without a PUBACK.
    await clientOf(s1).endAsync(true);

    const ctx = new FakeContext({ autoSend: true });
    const s2 = service(b, ctx, { baseTopic: 'gw', clientId: 'mmsd-die' });
    await s2.start();
    await publisher.waitForJson('gw/message/d-1', { status: 'sent' });
    expect(ctx.received.map((r) => r.id)).toEqual(['d-1']);
    expect(stuck.records.size).toBe(0);
  });

  it('leaves a request with the broker when the outbox fails on its own account, and takes it on redelivery', async () => {
    const b = await broker();
    let failures = 1;
    const ctx = new FakeContext({
      autoSend: true,
      beforeSubmit: () => {
        if (failures > 0) {
          failures -= 1;
          return Promise.reject(new Error('ENOSPC: no space left on device'));
        }
        return Promise.resolve();
      },
    });
    const s = service(b, ctx, { baseTopic: 'gw', clientId: 'mmsd-enospc' });
    await s.start();
    const publisher = await MqttObserver.connect(b.url, ['gw/message/+', 'gw/error']);
    cleanups.push(() => publisher.end());
    await publisher.client.publishAsync('gw/send', JSON.stringify({ id: 'e-1', to: ['12345'] }), { qos: 1 });
    await publisher.waitForJson('gw/message/e-1', { status: 'sent' });
    expect(ctx.received.map((r) => r.id)).toEqual(['e-1', 'e-1']);
    expect(ctx.records.size).toBe(1);
    expect(publisher.received.filter((r) => r.payload.toString().includes('rejected'))).toEqual([]);
  });
});
