// Home Assistant end to end (DESIGN.md §13): the real mmsd process on the virtual modem, a real
// mosquitto. The discovery message's templates are rendered with a Jinja-compatible engine
// (nunjucks) against the mmsd/status the daemon really publishes; the notify entity and the
// payloads of docs/homeassistant.md's examples are sent to the loopback MMSC.
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import nunjucks from 'nunjucks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Testbed } from '../../src/harness/testbed.js';
import { checkDeviceDiscovery } from '../helpers/ha-rules.js';
import { Mosquitto, MqttObserver, runTool, until } from '../helpers/mosquitto.js';
import { pseudoImage } from '../helpers/stack.js';

const IMEI = '866758040000001';
const DISCOVERY = `homeassistant/device/mmsd_${IMEI}/config`;
const NOTIFY_TO = '+15550000077';

let broker: Mosquitto;
let tb: Testbed;
let watch: MqttObserver;

beforeAll(async () => {
  broker = await Mosquitto.start();
  tb = await Testbed.start({
    mqttUrl: broker.url,
    config: { mqtt: { clientId: 'mmsd-ha-e2e' }, homeAssistant: { enabled: true, notifyTo: [NOTIFY_TO] } },
  });
  await tb.modemReady();
  watch = await MqttObserver.connect(broker.url, ['homeassistant/#', 'mmsd/#']);
});

afterAll(async () => {
  await watch?.end();
  await tb?.stop();
  await broker?.dispose();
});

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function pub(topic: string, body: string): Promise<void> {
  const r = await runTool('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(broker.port), '-V', '5', '-q', '1', '-t', topic, '-m', body]);
  expect(r.code, r.stderr).toBe(0);
}

/** HA renders a value_template with `value` (the payload) and `value_json` (it parsed). */
const jinja = new nunjucks.Environment(null, { autoescape: false, throwOnUndefined: true });
function render(template: string, payload: string): string {
  return jinja.renderString(template, { value: payload, value_json: JSON.parse(payload) as unknown });
}

/** Checks one rendered state the way HA's platform would take it. */
function checkState(key: string, c: Record<string, unknown>, state: string): void {
  const where = `${key} rendered ${JSON.stringify(state)}`;
  if (c.platform === 'binary_sensor') {
    expect(['ON', 'OFF'], where).toContain(state);
  } else if (c.device_class === 'enum') {
    // None is HA's "unknown" for any sensor.
    expect([...(c.options as string[]), 'None'], where).toContain(state);
  } else if (c.state_class !== undefined || c.device_class === 'signal_strength') {
    // A number, or None (HA: unknown) — never '' (HA would keep the old state) or text.
    expect(state === 'None' || /^-?\d+(\.\d+)?$/.test(state), where).toBe(true);
  } else {
    expect(state.length, where).toBeGreaterThan(0);
  }
}

describe('Home Assistant with the real daemon and mmsd-sim', () => {
  it('announces the module read from the sim, and every template renders from the real mmsd/status', async () => {
    const m = await watch.waitFor((x) => x.topic === DISCOVERY && x.payload.length > 0, 15_000, 'the discovery message');
    expect(m.retain).toBe(true);
    const payload = JSON.parse(m.payload.toString()) as Record<string, unknown>;
    const cmps = checkDeviceDiscovery(payload);
    expect(payload.dev).toMatchObject({ ids: [`mmsd_${IMEI}`], mf: 'Quectel', mdl: 'EC25', sw: 'EC25EFAR06A11M4G', sn: IMEI });
    expect(Object.keys(cmps)).toContain('notify');

    const statusMsg = await watch.waitFor(
      (x) => x.topic === 'mmsd/status' && x.payload.length > 0 && (JSON.parse(x.payload.toString()) as { modemState: string }).modemState === 'ready',
      15_000,
      'a ready status',
    );
    const real = statusMsg.payload.toString();
    const status = JSON.parse(real) as Record<string, unknown>;
    expect(status.modem).toEqual({ imei: IMEI, manufacturer: 'Quectel', model: 'EC25', firmware: 'EC25EFAR06A11M4G' });
    expect(status.signalDbm).toBe(-113 + 2 * (status.signal as number));

    const onStatus = Object.entries(cmps).filter(([, c]) => c.state_topic === 'mmsd/status');
    expect(onStatus.map(([k]) => k).sort()).toEqual(['carrier_source', 'connectivity', 'failed', 'last_error', 'modem_state', 'operator', 'queue', 'registration', 'sent', 'signal']);
    const rendered = Object.fromEntries(onStatus.map(([k, c]) => [k, render(c.value_template as string, real)]));
    for (const [k, c] of onStatus) checkState(k, c, rendered[k]);
    expect(rendered).toMatchObject({
      connectivity: 'ON',
      modem_state: 'ready',
      registration: status.registration,
      operator: status.operator,
      signal: String(status.signalDbm),
      queue: String(status.queueLength),
      carrier_source: 'config',
      last_error: 'None',
      sent: String(status.sentTotal),
      failed: String(status.failedTotal),
    });

    // The same payload as the daemon writes it when the modem knows less: signal 99, no operator,
    // no carrier report, an error.
    const lean = JSON.stringify({ ...status, modemState: 'searching', signal: -1, signalDbm: null, operator: '', carrier: undefined, lastError: 'm1: 765 Server response failed' });
    const leanRendered = Object.fromEntries(onStatus.map(([k, c]) => [k, render(c.value_template as string, lean)]));
    for (const [k, c] of onStatus) checkState(k, c, leanRendered[k]);
    expect(leanRendered).toMatchObject({ connectivity: 'OFF', modem_state: 'searching', signal: 'None', operator: 'None', carrier_source: 'None', last_error: 'm1: 765 Server response failed' });
  });

  it('sends the notify entity\'s text as one MMS to notifyTo, and a repeated command not again', async () => {
    const text = 'Alarm: motion in the garage ✓';
    await pub('mmsd/notify', text);
    const queued = await watch.waitFor((x) => /^mmsd\/message\/ha-[0-9a-f]{12}-\d+$/.test(x.topic), 15_000, 'the notify message');
    const id = queued.topic.slice('mmsd/message/'.length);
    await watch.waitForJson(`mmsd/message/${id}`, { status: 'sent' }, 30_000);
    const got = (await tb.received()).filter((r) => r.parts.some((p) => p.sha256 === sha256(Buffer.from(text))));
    expect(got).toHaveLength(1);
    expect(got[0].to).toEqual([NOTIFY_TO]);
    expect(got[0].parts.filter((p) => p.name === 'message.txt')).toEqual([expect.objectContaining({ contentType: expect.stringMatching(/^text\/plain/) as unknown })]);

    const sentBefore = watch.json(`mmsd/message/${id}`).filter((p) => p.status === 'sent').length;
    await pub('mmsd/notify', text);
    await until(() => watch.json(`mmsd/message/${id}`).filter((p) => p.status === 'sent').length > sentBefore, 'the re-published status');
    const sentAfter = await watch.waitForJson('mmsd/status', { sentTotal: 1 });
    expect(sentAfter.sentTotal).toBe(1);
    expect((await tb.received()).filter((r) => r.parts.some((p) => p.sha256 === sha256(Buffer.from(text))))).toHaveLength(1);
  });

  it('takes the payloads docs/homeassistant.md publishes on mmsd/send, as Home Assistant renders them', async () => {
    const doc = await readFile(new URL('../../docs/homeassistant.md', import.meta.url), 'utf8');
    const payloads = foldedBlocks(doc, 'payload');
    expect(payloads).toHaveLength(2);
    const stamp = jinja.renderString(yamlString(doc, 'stamp'), { now: () => ({ strftime: () => '20250101-120000' }) });
    const snapshotTemplate = yamlString(doc, 'snapshot');
    const ctx = {
      now: () => ({ strftime: () => '20250101-120001' }),
      stamp,
      snapshot: jinja.renderString(snapshotTemplate, { stamp }),
      trigger: { to_state: { name: 'Home alarm' } },
    };
    const image = pseudoImage(20 * 1024, 5);
    for (const template of payloads) {
      // The gateway's allowed directory in this test bed stands in for /var/lib/mmsd/incoming.
      const body = jinja.renderString(template, ctx).replaceAll('/var/lib/mmsd/incoming', tb.incomingDir);
      const request = JSON.parse(body) as { id: string; to: string[]; subject: string; attachments: { path: string }[] };
      for (const a of request.attachments) {
        expect(dirname(a.path)).toBe(tb.incomingDir);
        await writeFile(a.path, image);
      }
      await pub('mmsd/send', body);
      await watch.waitForJson(`mmsd/message/${request.id}`, { status: 'sent' }, 30_000);
      const got = (await tb.received()).filter((r) => r.subject === request.subject);
      expect(got).toHaveLength(1);
      expect(got[0].to).toEqual(request.to);
      expect(got[0].parts.filter((p) => p.contentType === 'image/jpeg')).toEqual([expect.objectContaining({ sha256: sha256(image) })]);
    }
    expect(ctx.snapshot).toBe(join('/var/lib/mmsd/incoming', 'alarm-20250101-120000.jpg'));
  });
});

/** The YAML folded scalars (`key: >-` and the more-indented lines after it) in the doc's yaml blocks. */
function foldedBlocks(doc: string, key: string): string[] {
  const out: string[] = [];
  const lines = doc.split('\n');
  lines.forEach((line, i) => {
    const m = new RegExp(`^(\\s*)${key}: >-$`).exec(line);
    if (!m) return;
    const indent = m[1].length;
    const body: string[] = [];
    for (const next of lines.slice(i + 1)) {
      if (next.trim() === '' || next.length - next.trimStart().length <= indent) break;
      body.push(next.trim());
    }
    out.push(body.join(' '));
  });
  return out;
}

/** The double-quoted scalar of `key:` (the first in the doc). */
function yamlString(doc: string, key: string): string {
  const m = new RegExp(`^\\s*${key}: "(.*)"$`, 'm').exec(doc);
  if (!m) throw new Error(`docs/homeassistant.md has no ${key}: "…"`);
  return m[1];
}
