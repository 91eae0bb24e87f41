// A fleet of gateways sharing one queue through an MQTT 5 shared subscription (DESIGN.md §3
// `mqtt.sendTopic`, §5): each request is taken by exactly one daemon.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { MqttService } from '../../src/api/mqtt/index.js';
import { FakeContext } from '../helpers/fake-context.js';
import { Mosquitto, MqttObserver } from '../helpers/mosquitto.js';

let broker: Mosquitto;
beforeAll(async () => {
  broker = await Mosquitto.start();
});
afterAll(async () => {
  await broker.dispose();
});

describe('MQTT fleet', () => {
  it('hands each of 60 requests to exactly one of three daemons and uses all three', async () => {
    const gateways = [1, 2, 3].map((n) => {
      const ctx = new FakeContext({ autoSend: true });
      const service = new MqttService({
        ctx,
        config: { url: broker.url, baseTopic: `fleet/gw${n}`, clientId: `mmsd-gw${n}`, sendTopic: '$share/fleet/fleet/send' },
        logger: pino({ level: 'silent' }),
      });
      return { ctx, service };
    });
    const observer = await MqttObserver.connect(broker.url, ['fleet/+/message/+']);
    try {
      for (const g of gateways) await g.service.start();
      const ids = Array.from({ length: 60 }, (_, i) => `f-${i}`);
      for (const id of ids) {
        await observer.client.publishAsync('fleet/send', JSON.stringify({ id, to: ['12345'] }), { qos: 1 });
      }
      for (const id of ids) {
        await observer.waitFor((r) => r.topic.endsWith(`/message/${id}`) && r.payload.toString().includes('"sent"'), 20_000, `${id} sent`);
      }
      const taken = gateways.map((g) => g.ctx.received.map((r) => String(r.id)));
      expect(taken.flat().sort()).toEqual([...ids].sort());
      for (const t of taken) expect(t.length).toBeGreaterThan(0);
      // Each result came from the gateway that took it, on its own base topic.
      for (const [n, t] of taken.entries()) {
        for (const id of t) expect(observer.json(`fleet/gw${n + 1}/message/${id}`).at(-1)).toMatchObject({ status: 'sent' });
      }
    } finally {
      for (const g of gateways) await g.service.stop();
      await observer.end();
    }
  });
});
