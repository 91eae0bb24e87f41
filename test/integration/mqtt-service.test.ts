// The MQTT front door against a real mosquitto (DESIGN.md §5): requests, replies, rejections,
// request/response, cancel, status and availability. The outbox is the in-memory fake.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { pino } from 'pino';
import { REQUEST_ERROR_NAMES } from '../../src/core/errors.js';
import { MqttService, type MqttConfig } from '../../src/api/mqtt/index.js';
import { FakeContext, type FakeContextOptions } from '../helpers/fake-context.js';
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

interface Rig {
  base: string;
  ctx: FakeContext;
  service: MqttService;
  observer: MqttObserver;
  config: MqttConfig;
}

async function rig(ctxOpts: FakeContextOptions = { autoSend: true }, config: Partial<MqttConfig> = {}): Promise<Rig> {
  seq += 1;
  const base = `t${process.pid}-${seq}`;
  const ctx = new FakeContext(ctxOpts);
  const observer = await MqttObserver.connect(broker.url, [`${base}/#`]);
  cleanups.push(() => observer.end());
  const cfg: MqttConfig = { url: broker.url, baseTopic: base, clientId: `mmsd-${base}`, ...config };
  const service = new MqttService({ ctx, config: cfg, logger: pino({ level: 'silent' }), reconnectMinMs: 200, reconnectMaxMs: 1000 });
  await service.start();
  cleanups.push(() => service.stop());
  return { base, ctx, service, observer, config: cfg };
}

async function pub(topic: string, body: string | object, extra: string[] = []): Promise<void> {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const r = await runTool('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(broker.port), '-V', '5', '-q', '1', '-t', topic, '-m', text, ...extra]);
  expect(r.code, r.stderr).toBe(0);
}

describe('MQTT send requests', () => {
  it('queues a request with two base64 attachments and reports queued → sending → sent, the final one retained', async () => {
    const { base, ctx, observer } = await rig();
    const a = Buffer.from('first part \u00e9\u4e2d\n+++\n', 'utf8');
    const b = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7) & 0xff));
    await pub(`${base}/send`, {
      id: 'msg-1',
      to: ['+4917012345678'],
      subject: 'Two parts',
      attachments: [
        { name: 'a.txt', contentType: 'text/plain', data: a.toString('base64') },
        { name: 'b.bin', data: b.toString('base64') },
      ],
    });
    const topic = `${base}/message/msg-1`;
    const sent = await observer.waitForJson(topic, { status: 'sent' });
    expect(sent).toMatchObject({ id: 'msg-1', attempts: 1 });
    expect(observer.json(topic).map((p) => p.status)).toEqual(['queued', 'sending', 'sent']);
    const parts = ctx.attachments.get('msg-1')!;
    expect(parts.map((p) => p.name)).toEqual(['a.txt', 'b.bin']);
    expect(parts[0].data.equals(a)).toBe(true);
    expect(parts[1].data.equals(b)).toBe(true);

    // A fresh subscriber gets the final status, retained.
    const late = await MqttObserver.connect(broker.url, [topic]);
    cleanups.push(() => late.end());
    const m = await late.waitFor((r) => r.topic === topic);
    expect(m.retain).toBe(true);
    expect(JSON.parse(m.payload.toString())).toMatchObject({ id: 'msg-1', status: 'sent' });
  });

  it('does not submit a known id again and re-publishes its status', async () => {
    const { base, ctx, observer } = await rig();
    const topic = `${base}/message/dup-1`;
    await pub(`${base}/send`, { id: 'dup-1', to: ['12345'] });
    await observer.waitForJson(topic, { status: 'sent' });
    const before = observer.json(topic).length;
    await pub(`${base}/send`, { id: 'dup-1', to: ['12345'], subject: 'again' });
    await observer.waitFor((r) => r.topic === topic && observer.json(topic).length > before, 15_000, 'the re-published status');
    expect(observer.json(topic).at(-1)).toMatchObject({ id: 'dup-1', status: 'sent' });
    expect(ctx.received).toHaveLength(1);
  });

  it('answers on the MQTT 5 responseTopic with the request correlationData', async () => {
    const { base, observer } = await rig();
    const replies = await MqttObserver.connect(broker.url, [`replies/${base}/#`]);
    cleanups.push(() => replies.end());
    const rt = `replies/${base}/me`;
    await observer.client.publishAsync(`${base}/send`, JSON.stringify({ id: 'rr-1', to: ['12345'] }), {
      qos: 1,
      properties: { responseTopic: rt, correlationData: Buffer.from('corr-42') },
    });
    await replies.waitForJson(rt, { status: 'sent' });
    const got = replies.received.filter((r) => r.topic === rt);
    expect(got.map((r) => (JSON.parse(r.payload.toString()) as { status: string }).status)).toEqual(['queued', 'sending', 'sent']);
    for (const r of got) expect(r.correlationData?.toString()).toBe('corr-42');
    await observer.waitForJson(`${base}/message/rr-1`, { status: 'sent' });
  });

  it('rejects bad requests with named errors on message/<id> or on error', async () => {
    const { base, ctx, observer } = await rig();
    await pub(`${base}/send`, '{"to": [');
    const e1 = await observer.waitForJson(`${base}/error`, { status: 'rejected' });
    expect(e1.error).toMatchObject({ name: 'InvalidRequest' });
    expect(e1.request).toBe('{"to": [');

    await pub(`${base}/send`, { id: 'bad-field', to: ['12345'], colour: 'red' });
    const e2 = await observer.waitForJson(`${base}/message/bad-field`, { status: 'rejected' });
    expect(e2.error).toMatchObject({ name: 'InvalidRequest' });
    expect(String((e2.error as { message: string }).message)).toMatch(/colour/);

    await pub(`${base}/send`, { id: 'bad-b64', to: ['12345'], attachments: [{ name: 'x', data: 'not base64!' }] });
    const e3 = await observer.waitForJson(`${base}/message/bad-b64`, { status: 'rejected' });
    expect(e3.error).toMatchObject({ name: 'InvalidRequest' });

    await pub(`${base}/send`, { id: 'too-many', to: ['1001', '1002', '1003', '1004', '1005', '1006', '1007'] });
    const e4 = await observer.waitForJson(`${base}/message/too-many`, { status: 'rejected' });
    expect(e4.error).toMatchObject({ name: 'TooManyRecipients' });

    await pub(`${base}/send`, { id: 'x/y', to: ['12345'] });
    const e5 = await observer.waitFor((r) => r.topic === `${base}/error` && r.payload.toString().includes('x/y'));
    expect(JSON.parse(e5.payload.toString()).error.name).toBe('InvalidRequest');

    // Rejections are not retained (nothing would ever clear them).
    expect(observer.received.filter((r) => r.topic.endsWith('bad-field')).every((r) => !r.retain)).toBe(true);
    expect(ctx.records.size).toBe(0);
  });

  it('answers 1,000 generated bad payloads each with rejected and a named error, then still serves a good one', async () => {
    const { base, ctx, observer } = await rig();
    const rt = `replies/${base}/fuzz`;
    const replies = await MqttObserver.connect(broker.url, [rt]);
    cleanups.push(() => replies.end());
    const good = { to: ['+4917012345678'], subject: 'ok' };
    const fault = fc.oneof(
      fc.string().map((s) => `{${s}`), // not JSON
      fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.concat([Buffer.from([0xff]), Buffer.from(a)]).toString('latin1')),
      fc.jsonValue().filter((v) => typeof v !== 'object' || v === null || Array.isArray(v)).map((v) => JSON.stringify(v) ?? 'null'),
      fc.tuple(fc.string({ minLength: 1 }).filter((k) => !['id', 'to', 'cc', 'bcc', 'subject', 'attachments', 'options'].includes(k)), fc.jsonValue())
        .map(([k, v]) => JSON.stringify({ ...good, [k]: v })),
      fc.oneof(fc.integer(), fc.string(), fc.constant(null), fc.array(fc.integer(), { minLength: 1 })).map((v) => JSON.stringify({ ...good, to: v })),
      fc.string({ minLength: 1 }).filter((s) => !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s))
        .map((d) => JSON.stringify({ ...good, attachments: [{ name: 'a', data: d }] })),
      fc.oneof(fc.string(), fc.double(), fc.constant(null)).map((p) => JSON.stringify({ ...good, options: { priority: p } })),
      fc.integer({ min: 7, max: 20 }).map((n) => JSON.stringify({ ...good, to: Array.from({ length: n }, (_, i) => `${1000 + i}`) })),
      fc.string({ maxLength: 20 }).map((s) => JSON.stringify({ ...good, id: `${s}/#` })),
    );
    const payloads = fc.sample(fault, { numRuns: 1000, seed: 4242 });
    for (let i = 0; i < payloads.length; i += 50) {
      await Promise.all(
        payloads.slice(i, i + 50).map((p, j) =>
          observer.client.publishAsync(`${base}/send`, p, { qos: 1, properties: { responseTopic: rt, correlationData: Buffer.from(String(i + j)) } }),
        ),
      );
    }
    const answered = new Set<string>();
    await replies.waitFor(() => {
      for (const r of replies.received) answered.add(r.correlationData?.toString() ?? '');
      return answered.size >= 1000;
    }, 60_000, '1000 answers');
    for (const r of replies.received) {
      const body = JSON.parse(r.payload.toString());
      expect(body.status).toBe('rejected');
      expect(REQUEST_ERROR_NAMES).toContain(body.error.name);
    }
    expect(ctx.records.size).toBe(0);

    await observer.client.publishAsync(`${base}/send`, JSON.stringify({ ...good, id: 'after-fuzz' }), { qos: 1 });
    await observer.waitForJson(`${base}/message/after-fuzz`, { status: 'sent' });
  });
});

describe('MQTT cancel', () => {
  it('cancels a queued message, refuses one being sent, and names an unknown id', async () => {
    const { base, ctx, observer } = await rig({});
    await pub(`${base}/send`, { id: 'c-1', to: ['12345'] });
    await pub(`${base}/send`, { id: 'c-2', to: ['12345'] });
    await observer.waitForJson(`${base}/message/c-2`, { status: 'queued' });

    await pub(`${base}/cancel`, { id: 'c-1' });
    await observer.waitForJson(`${base}/message/c-1`, { status: 'cancelled' });

    ctx.patch('c-2', { status: 'sending', attempts: 1 });
    await pub(`${base}/cancel`, { id: 'c-2' });
    const refused = await observer.waitFor((r) => r.topic === `${base}/message/c-2` && r.payload.toString().includes('NotCancellable'));
    expect(JSON.parse(refused.payload.toString())).toMatchObject({ id: 'c-2', status: 'sending', error: { name: 'NotCancellable' } });
    expect(refused.retain).toBe(false);

    await pub(`${base}/cancel`, { id: 'nope' });
    const nf = await observer.waitForJson(`${base}/message/nope`, { status: 'rejected' });
    expect(nf.error).toMatchObject({ name: 'NotFound' });
    expect(ctx.get('c-2')!.status).toBe('sending');
  });
});

describe('MQTT status and availability', () => {
  it('counts sent and failed messages once each, keeps the last error, and gives the signal in dBm', async () => {
    const { base, ctx, observer } = await rig({});
    await observer.waitForJson(`${base}/status`, { sentTotal: 0, failedTotal: 0, lastError: null });
    await pub(`${base}/send`, { id: 'c-1', to: ['12345'] });
    await pub(`${base}/send`, { id: 'c-2', to: ['12345'] });
    await until(() => ctx.records.size === 2, 'two messages');
    ctx.patch('c-1', { status: 'sending', attempts: 1 });
    ctx.patch('c-1', { status: 'sent' });
    // The outbox announces a finished message again (its RAM journal cleared): counted once.
    ctx.patch('c-1', { status: 'sent', ramFiles: [] });
    ctx.patch('c-2', { status: 'retrying', attempts: 1, error: { code: 765, name: 'Server response failed', httpStatus: 503 } });
    await observer.waitForJson(`${base}/status`, { lastError: 'c-2: 765 Server response failed (HTTP 503)' });
    ctx.patch('c-2', { status: 'failed', attempts: 5, error: { code: 765, name: 'Server response failed', httpStatus: 503 } });
    await observer.waitForJson(`${base}/status`, { sentTotal: 1, failedTotal: 1 });
    ctx.setModemStatus({ state: 'error', detail: 'module does not answer AT (10 tries)', signal: -1 });
    const s = await observer.waitForJson(`${base}/status`, { modemState: 'error' });
    expect(s).toMatchObject({ signal: -1, signalDbm: null, sentTotal: 1, failedTotal: 1, lastError: 'modem: module does not answer AT (10 tries)' });
    // Forgotten by retention: the counters do not go down.
    ctx.remove('c-1');
    ctx.setModemStatus({ state: 'ready', signal: 31 });
    expect(await observer.waitForJson(`${base}/status`, { signalDbm: -51 })).toMatchObject({ sentTotal: 1, failedTotal: 1 });
  });

  it('publishes status retained on connect and on every change', async () => {
    const { base, ctx, observer } = await rig({});
    const first = await observer.waitForJson(`${base}/status`, { modemState: 'ready' });
    expect(first).toEqual({
      modemState: 'ready',
      registration: 'home',
      operator: 'Test Net',
      signal: 20,
      signalDbm: -73,
      queueLength: 0,
      sentTotal: 0,
      failedTotal: 0,
      lastError: null,
      modem: { imei: '866758040000001', manufacturer: 'Quectel', model: 'EC25', firmware: 'EC25EFAR06A11M4G' },
      carrier: {
        source: 'database',
        provider: 'LUXGSM (270-01)',
        mccMnc: '270-01',
        apn: 'mms.pt.lu',
        mmsc: 'http://mmsc.pt.lu',
        proxy: '194.154.192.88:8080',
        maxMessageBytes: 307200,
        candidates: ['"carrier": {"provider": "LUXGSM (270-01)"}'],
        reason: 'LUXGSM (270-01) is the only provider of 270-01 with an MMSC',
        configKeys: [],
      },
    });
    ctx.setModemStatus({ state: 'searching', registration: 'searching', signal: 7 });
    await observer.waitForJson(`${base}/status`, { modemState: 'searching', signal: 7 });
    await pub(`${base}/send`, { id: 's-1', to: ['12345'] });
    await observer.waitForJson(`${base}/status`, { queueLength: 1 });
    const late = await MqttObserver.connect(broker.url, [`${base}/status`]);
    cleanups.push(() => late.end());
    const m = await late.waitFor((r) => r.topic === `${base}/status`);
    expect(m.retain).toBe(true);
    expect(JSON.parse(m.payload.toString())).toMatchObject({ modemState: 'searching', queueLength: 1 });
  });

  it('publishes status again when the carrier settings change (DESIGN.md §10)', async () => {
    const { base, ctx, observer } = await rig({});
    await observer.waitForJson(`${base}/status`, { modemState: 'ready' });
    ctx.setCarrier({ source: 'ambiguous', provider: '', mmsc: '', reason: '2 candidates of 208-01 remain' });
    const m = await observer.waitFor((r) => r.topic === `${base}/status` && r.payload.toString().includes('"source":"ambiguous"'));
    expect((JSON.parse(m.payload.toString()) as { carrier: unknown }).carrier).toMatchObject({
      source: 'ambiguous',
      mmsc: '',
      reason: '2 candidates of 208-01 remain',
    });
  });

  it('is online when connected, offline by the last will when the socket dies, online again after reconnect', async () => {
    const { base, service, observer } = await rig({});
    const topic = `${base}/availability`;
    await observer.waitFor((r) => r.topic === topic && r.payload.toString() === 'online');
    const client = (service as unknown as { client: { stream: { destroy(): void } } }).client;
    const countOnline = () => observer.received.filter((r) => r.topic === topic && r.payload.toString() === 'online').length;
    const onlineBefore = countOnline();
    client.stream.destroy();
    await observer.waitFor((r) => r.topic === topic && r.payload.toString() === 'offline', 15_000, 'will');
    await observer.waitFor(() => countOnline() > onlineBefore, 15_000, 'online again');
    const offline = observer.received.filter((r) => r.topic === topic && r.payload.toString() === 'offline').length;
    await service.stop();
    await observer.waitFor(
      () => observer.received.filter((r) => r.topic === topic && r.payload.toString() === 'offline').length > offline,
      15_000,
      'offline on stop',
    );
    const late = await MqttObserver.connect(broker.url, [topic]);
    cleanups.push(() => late.end());
    const m = await late.waitFor((r) => r.topic === topic);
    expect(m.retain).toBe(true);
    expect(m.payload.toString()).toBe('offline');
  });

  it('replaces a stale retained final of an earlier message with the same id, and clears it on removal', async () => {
    const { base, ctx, observer } = await rig({});
    const topic = `${base}/message/reuse`;
    // A retained outcome left by an earlier message with this id (e.g. another gateway's).
    await observer.client.publishAsync(topic, JSON.stringify({ id: 'reuse', status: 'failed', attempts: 5, updated: 1 }), { qos: 1, retain: true });
    await pub(`${base}/send`, { id: 'reuse', to: ['12345'] });
    await observer.waitForJson(topic, { status: 'queued' });
    const fresh = await MqttObserver.connect(broker.url, [topic]);
    cleanups.push(() => fresh.end());
    const retained = await fresh.waitFor((r) => r.topic === topic);
    expect(retained.retain).toBe(true);
    expect(JSON.parse(retained.payload.toString())).toMatchObject({ id: 'reuse', status: 'queued' });
    ctx.patch('reuse', { status: 'sending', attempts: 1 });
    ctx.patch('reuse', { status: 'sent' });
    await observer.waitForJson(topic, { status: 'sent' });
    // The same id again: the door answers with the known message's status, a second `sent`.
    // Removal must wait for that answer, or the request would find no message and make a new one.
    await pub(`${base}/send`, { id: 'reuse', to: ['12345'] });
    const sentCount = (): number => observer.json(topic).filter((j) => j.status === 'sent').length;
    await observer.waitFor(() => sentCount() >= 2, 15_000, 'the status re-published for the known id');
    ctx.remove('reuse');
    await observer.waitFor((r) => r.topic === topic && r.payload.length === 0 && r.retain === false, 15_000, 'the clearing publish');
    const empty = await MqttObserver.connect(broker.url, [topic]);
    cleanups.push(() => empty.end());
    // Nothing retained any more: a marker published after subscribing arrives first.
    await observer.client.publishAsync(topic, 'marker', { qos: 1 });
    const first = await empty.waitFor(() => true);
    expect(first.payload.toString()).toBe('marker');
  });
});

describe('MQTT received messages (DESIGN.md §12)', () => {
  async function partsOnDisk(sizes: number[]): Promise<{ dir: string; parts: { name: string; contentType: string; path: string; size: number }[]; data: Buffer[] }> {
    const dir = await mkdtemp(join(tmpdir(), 'mmsd-mqtt-rx-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const data = sizes.map((n, i) => Buffer.from(Array.from({ length: n }, (_, j) => (j * 31 + i) & 0xff)));
    const parts = data.map((d, i) => ({ name: `p${i}.bin`, contentType: 'application/octet-stream', path: join(dir, `p${i}.bin`), size: d.length }));
    for (let i = 0; i < data.length; i++) await writeFile(parts[i].path, data[i]);
    return { dir, parts, data };
  }
  const record = (id: string, status: 'notified' | 'received', parts: { name: string; contentType: string; path: string; size: number }[]) => ({
    id,
    status,
    from: '+4917012345',
    to: ['+491700000001'],
    cc: [],
    subject: 'rx',
    date: 1,
    size: parts.reduce((n, p) => n + p.size, 0),
    expiry: 2,
    parts,
  });

  it('publishes every state, retains the final one with the parts inline up to mqtt.inlineMaxBytes, and clears it on delete', async () => {
    const { base, ctx, observer } = await rig({}, { inlineMaxBytes: 1000 });
    const small = await partsOnDisk([10, 990]);
    ctx.putReceived(record('rs', 'notified', []));
    ctx.putReceived(record('rs', 'received', small.parts));
    const m = await observer.waitFor((r) => r.topic === `${base}/received/rs` && r.payload.includes('"received"'), 10_000, 'received');
    const body = JSON.parse(m.payload.toString()) as { parts: { data?: string }[] };
    expect(body.parts.map((p) => Buffer.from(p.data!, 'base64'))).toEqual(small.data);
    const first = observer.received.find((r) => r.topic === `${base}/received/rs`)!;
    expect(JSON.parse(first.payload.toString())).toMatchObject({ status: 'notified', parts: [] });

    // One byte over the limit: the paths only.
    const big = await partsOnDisk([10, 991]);
    ctx.putReceived(record('rb', 'received', big.parts));
    const b = await observer.waitFor((r) => r.topic === `${base}/received/rb`, 10_000, 'rb');
    const bb = JSON.parse(b.payload.toString()) as { parts: { data?: string; path: string }[] };
    expect(bb.parts.map((p) => p.data)).toEqual([undefined, undefined]);
    expect(bb.parts.map((p) => p.path)).toEqual(big.parts.map((p) => p.path));

    const fresh = await MqttObserver.connect(broker.url, [`${base}/received/rs`]);
    cleanups.push(() => fresh.end());
    const retained = await fresh.waitFor((r) => r.topic === `${base}/received/rs`, 10_000, 'the retained one');
    expect(retained.retain).toBe(true);
    await ctx.deleteReceived('rs');
    await fresh.waitFor((r) => r.topic === `${base}/received/rs` && r.payload.length === 0, 10_000, 'the cleared topic');
  });
});
