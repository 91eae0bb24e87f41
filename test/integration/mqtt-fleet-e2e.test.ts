// A fleet of gateways sharing one queue (issue 6, DESIGN.md §5, docs/mqtt.md "A fleet sharing one
// queue"): three real mmsd processes, each with its own virtual modem and loopback MMSC, on one
// shared subscription of a real mosquitto. The three MMSCs together are the proof.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Testbed } from '../../src/harness/testbed.js';
import { Mosquitto, MqttObserver, until } from '../helpers/mosquitto.js';

const GATEWAYS = ['gw1', 'gw2', 'gw3'] as const;
const REQUESTS = 60;

let broker: Mosquitto;
const beds = new Map<string, Testbed>();
let watch: MqttObserver;

beforeAll(async () => {
  broker = await Mosquitto.start();
  const started = await Promise.allSettled(
    GATEWAYS.map(async (gw) => {
      // docs/mqtt.md: its own clientId and baseTopic per gateway, the same shared subscription.
      const tb = await Testbed.start({
        mqttUrl: broker.url,
        config: { mqtt: { baseTopic: `mmsd/${gw}`, clientId: `mmsd-${gw}`, sendTopic: '$share/fleet/mmsd/send' } },
        logLevel: 'info',
      });
      beds.set(gw, tb);
      await tb.modemReady();
    }),
  );
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  watch = await MqttObserver.connect(broker.url, ['mmsd/+/message/+', 'mmsd/+/availability', 'mmsd/+/status']);
});

afterAll(async () => {
  await watch?.end();
  await Promise.all([...beds.values()].map((tb) => tb.stop()));
  await broker?.dispose();
});

describe('a fleet of three gateways on one shared subscription', () => {
  it('sends each of 60 requests exactly once overall, using all three gateways', async () => {
    // Each gateway is subscribed (start-up waited for its SUBACK) and announced itself.
    for (const gw of GATEWAYS) {
      await watch.waitFor((m) => m.topic === `mmsd/${gw}/availability` && m.payload.toString() === 'online', 10_000, `${gw} online`);
    }
    const ids = Array.from({ length: REQUESTS }, (_, i) => `fleet-${String(i + 1).padStart(2, '0')}`);
    const client = watch.client;
    for (const [i, id] of ids.entries()) {
      await client.publishAsync('mmsd/send', JSON.stringify({ id, to: [`+1555000${String(i).padStart(4, '0')}`], subject: id }), { qos: 1 });
    }

    // The answers appear under the base topic of the gateway that took the request.
    const sentBy = new Map<string, string>();
    const deadline = Date.now() + 45_000;
    for (const id of ids) {
      const m = await watch.waitFor(
        (r) => /^mmsd\/gw\d\/message\//.test(r.topic) && r.topic.endsWith(`/message/${id}`) && r.payload.length > 0 && (JSON.parse(r.payload.toString()) as { status: string }).status === 'sent',
        Math.max(1000, deadline - Date.now()),
        `${id} sent`,
      );
      sentBy.set(id, m.topic.split('/')[1]);
    }

    // Every gateway's queue is empty: nothing more is on its way to an MMSC.
    for (const gw of GATEWAYS) {
      await until(() => watch.json(`mmsd/${gw}/status`).at(-1)?.queueLength === 0, `${gw} queue empty`);
    }

    // Exactly once overall: every id reached exactly one MMSC, the one of the gateway that
    // reported it sent, and nothing else reached any MMSC.
    const subjectsAt = new Map<string, string[]>();
    for (const gw of GATEWAYS) {
      subjectsAt.set(gw, (await beds.get(gw)!.received()).map((r) => r.subject ?? ''));
    }
    const all = [...subjectsAt.values()].flat();
    expect(all).toHaveLength(REQUESTS);
    expect(new Set(all)).toEqual(new Set(ids));
    for (const id of ids) {
      expect(subjectsAt.get(sentBy.get(id)!), `${id} at ${sentBy.get(id)}`).toContain(id);
    }
    // No id was taken by two gateways (each publishes `queued` under its own base).
    for (const id of ids) {
      const takers = new Set(watch.received.filter((r) => r.topic.endsWith(`/message/${id}`)).map((r) => r.topic.split('/')[1]));
      expect([...takers], id).toEqual([sentBy.get(id)]);
    }
    for (const gw of GATEWAYS) expect(subjectsAt.get(gw)!.length, `${gw} used`).toBeGreaterThan(0);
  });
});
