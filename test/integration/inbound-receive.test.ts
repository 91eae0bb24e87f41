// Receiving MMS end to end (issue 17, DESIGN.md §12): the real daemon on the virtual modem, whose
// loopback MMSC holds messages for the gateway, pushes their notifications as WAP-push SMS, serves
// their content through the module's HTTP stack and records the M-NotifyResp.ind; a real
// dbus-daemon, a real mosquitto, and mmsctl run as a process. The bytes at inbound.dir, in the MQTT
// payload and after `mmsctl inbox save` are the proof.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReceivedProperties } from '../../src/api/dbus/client.js';
import { LOG_EVENTS } from '../../src/core/log-events.js';
import { MMSCTL_BIN } from '../../src/harness/testbed.js';
import { encodeNotificationInd, encodeReadOrigInd } from '../../src/mms/notification.js';
import { MMS_VERSION } from '../../src/mms/types.js';
import { pushPdus } from '../../src/sim/sms-inject.js';
import { Mosquitto, MqttObserver } from '../helpers/mosquitto.js';
import { pseudoImage, sha256, startStack, until, waitForProps, type Stack } from '../helpers/stack.js';

const MAX_MESSAGE_BYTES = 100_000;
let broker: Mosquitto;
let s: Stack;
let watch: MqttObserver;
let watcher: ChildProcess;
const watched: Record<string, unknown>[] = [];

const SUBJECT = '门铃照片：前门 2号';
const TEXT = Buffer.from('有人在前门按了门铃。\nSomeone rang the front door — grüße!\n', 'utf8');
const JPEG = pseudoImage(30_000, 11);
const SMIL = Buffer.from(
  '<smil><head><layout><region id="Image" top="0" height="80%"/><region id="Text" top="80%" height="20%"/></layout></head>' +
    '<body><par dur="5000ms"><img src="photo.jpg" region="Image"/><text src="note.txt" region="Text"/></par></body></smil>',
  'utf8',
);
const PARTS = [
  { name: 'presentation.smil', contentType: 'application/smil', data: SMIL },
  { name: 'note.txt', contentType: 'text/plain', charset: 'utf-8', data: TEXT },
  { name: 'photo.jpg', contentType: 'image/jpeg', data: JPEG },
];

beforeAll(async () => {
  broker = await Mosquitto.start();
  s = await startStack({
    mqttUrl: broker.url,
    simArgs: ['--delivery-delay-ms', '300'],
    config: {
      mqtt: { clientId: 'mmsd-receive' },
      inbound: { firstRetryS: 1, maxMessageBytes: MAX_MESSAGE_BYTES },
      homeAssistant: { enabled: true },
    },
  });
  await s.tb.modemReady();
  watch = await MqttObserver.connect(broker.url, ['mmsd/received/#', 'mmsd/event/#']);
  // mmsctl watch follows everything from here on, one JSON line per event.
  watcher = spawn(process.execPath, [MMSCTL_BIN, '--bus', 'session', '--json', 'watch'], { env: s.tb.env, stdio: ['ignore', 'pipe', 'pipe'] });
  createInterface({ input: watcher.stdout! }).on('line', (l) => watched.push(JSON.parse(l) as Record<string, unknown>));
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: watcher.stderr! }).on('line', (l) => (l.includes('watching mmsd') ? resolve() : reject(new Error(l))));
    watcher.once('exit', (code) => reject(new Error(`mmsctl watch exited ${code}`)));
  });
}, 60_000);

afterAll(async () => {
  if (watcher && watcher.exitCode === null) {
    const exited = new Promise<number | null>((r) => watcher.once('exit', (code) => r(code)));
    watcher.kill('SIGINT');
    // Ctrl-C ends mmsctl watch normally.
    expect(await exited).toBe(0);
  }
  await watch?.end();
  await s?.stop();
  await broker?.dispose();
});

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [MMSCTL_BIN, '--bus', 'session', ...args], { env: s.tb.env });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The received message the daemon made of the MMSC's `transactionId` (by its From and Subject). */
async function receivedFor(subject: string, ms = 30_000): Promise<ReceivedProperties> {
  return until(async () => (await s.client.listReceived()).find((r) => r.props.Subject === subject)?.props, ms, `a received message "${subject}"`);
}

async function finalReceived(id: string, ms = 30_000): Promise<ReceivedProperties> {
  return until(
    async () => {
      const p = await s.client.showReceived(id);
      return ['received', 'failed', 'expired'].includes(p.Status) ? p : undefined;
    },
    ms,
    `a final state of ${id}`,
  );
}

interface SmsView {
  sms: { stores: { ME: { messages: unknown[] } } };
}
async function storedSms(): Promise<number> {
  return ((await s.tb.simState()) as unknown as SmsView).sms.stores.ME.messages.length;
}

/** Every file under inbound.dir/<id> (none for a message that was not received). */
async function filesOf(id: string): Promise<string[]> {
  return readdir(join(s.tb.inboxDir, id)).catch(() => []);
}

/** No half-written file anywhere in the inbox (DESIGN.md §12 "nothing half-written"). */
async function partials(): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(s.tb.inboxDir, { recursive: true })) if (String(e).includes('.partial') || String(e).includes('/.')) out.push(String(e));
  return out;
}

describe('a received message', () => {
  it('reaches inbound.dir, MQTT, D-Bus and mmsctl inbox save byte-identical, and the MMSC hears back after the files are on disk', async () => {
    const receipt = await s.tb.receive({ from: '+4917012345', subject: SUBJECT, subjectCharset: 'gbk', parts: PARTS });
    const first = await receivedFor(SUBJECT);
    const id = first.Id;
    const p = await finalReceived(id);
    expect(p).toMatchObject({ Status: 'received', From: '+4917012345', Subject: SUBJECT, Error: '' });
    expect(p.To).toEqual(['+491700000001']);
    expect(p.MessageId).toBe(receipt.messageId);

    // Every part, by name, at inbound.dir/<id>/, byte-identical, 0640.
    const byName = new Map(p.Parts.map((x) => [x.name, x]));
    expect([...byName.keys()].sort()).toEqual(PARTS.map((x) => x.name).sort());
    let lastWrite = 0;
    for (const part of PARTS) {
      const got = byName.get(part.name)!;
      expect(got.path).toBe(join(s.tb.inboxDir, id, part.name));
      expect(got.contentType).toBe(part.contentType);
      expect(got.size).toBe(part.data.length);
      expect(sha256(await readFile(got.path))).toBe(sha256(part.data));
      const st = await stat(got.path);
      expect(st.mode & 0o777).toBe(0o640);
      lastWrite = Math.max(lastWrite, st.mtimeMs);
    }
    expect((await filesOf(id)).sort()).toEqual(PARTS.map((x) => x.name).sort());

    // The M-NotifyResp.ind (retrieved) reached the MMSC, once, after the files were written.
    const acks = await until(async () => {
      const a = (await s.tb.receivedAcks()).filter((x) => x.transactionId === receipt.transactionId);
      return a.length > 0 ? a : undefined;
    }, 15_000, 'the M-NotifyResp.ind');
    expect(acks).toHaveLength(1);
    expect(acks[0]).toMatchObject({ type: 'notifyresp', status: 'retrieved', id: receipt.id });
    expect(acks[0].at).toBeGreaterThanOrEqual(Math.floor(lastWrite));
    // Fetched once; its SMS deleted once the notification was durable.
    expect((await s.tb.mmscInbox()).find((m) => m.id === receipt.id)?.served).toBe(1);
    expect(await storedSms()).toBe(0);

    // MQTT: retained, with every part inline (base64) and byte-identical.
    const fresh = await MqttObserver.connect(broker.url, [`mmsd/received/${id}`]);
    try {
      const m = await fresh.waitFor((r) => r.topic === `mmsd/received/${id}` && r.payload.length > 0, 10_000, 'the retained received message');
      expect(m.retain).toBe(true);
      const body = JSON.parse(m.payload.toString()) as { status: string; subject: string; parts: { name: string; data?: string; size: number }[] };
      expect(body.status).toBe('received');
      expect(body.subject).toBe(SUBJECT);
      for (const part of PARTS) {
        const q = body.parts.find((x) => x.name === part.name)!;
        expect(sha256(Buffer.from(q.data!, 'base64'))).toBe(sha256(part.data));
      }
    } finally {
      await fresh.end();
    }

    // mmsctl inbox, inbox show, inbox save.
    const list = await run(['--json', 'inbox']);
    expect(list.code, list.stderr).toBe(0);
    expect((JSON.parse(list.stdout) as { id: string; status: string }[]).find((x) => x.id === id)?.status).toBe('received');
    const show = await run(['inbox', 'show', id]);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toContain(`subject:  ${SUBJECT}`);
    const out = await mkdtemp(join(tmpdir(), 'mmsctl-save-'));
    const save = await run(['inbox', 'save', id, out]);
    expect(save.code, save.stderr).toBe(0);
    for (const part of PARTS) expect(sha256(await readFile(join(out, part.name)))).toBe(sha256(part.data));
    // Saving again would overwrite: refused.
    const again = await run(['inbox', 'save', id, out]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/exists already/);

    // Home Assistant's event, and mmsctl watch saw it arrive and be received.
    await watch.waitForJson('mmsd/event/received', { event_type: 'received' });
    await until(() => watched.some((l) => l.event === 'received' && l.id === id && l.status === 'notified') || undefined, 5_000, 'watch: notified');
    await until(() => watched.some((l) => l.event === 'received' && l.id === id && l.status === 'received') || undefined, 5_000, 'watch: received');
  });

  it('is deleted with its files; its retained MQTT message is cleared and its object goes', async () => {
    const id = (await receivedFor(SUBJECT)).Id;
    const del = await run(['inbox', 'delete', id]);
    expect(del.code, del.stderr).toBe(0);
    expect(await filesOf(id)).toEqual([]);
    await watch.waitFor((r) => r.topic === `mmsd/received/${id}` && r.payload.length === 0, 10_000, 'the cleared retained message');
    const show = await run(['inbox', 'show', id]);
    expect(show.code).toBe(3);
    expect(show.stderr).toMatch(/NotFound/);
  });

  it('a delivery report reaches mmsd/event/delivery (Home Assistant)', async () => {
    await s.client.sendData({ id: 'dr1', to: ['+4917099999'], subject: 'dr', options: { deliveryReport: true } }, [
      { name: 'a.txt', contentType: 'text/plain', data: Buffer.from('x') },
    ]);
    await waitForProps(s.client, 'dr1', (p) => p.Status === 'delivered', 30_000, 'dr1 delivered');
    await watch.waitForJson('mmsd/event/delivery', { event_type: 'retrieved', message_id: 'dr1' });
    await until(() => watched.some((l) => l.event === 'delivery' && l.id === 'dr1' && l.status === 'retrieved') || undefined, 5_000, 'watch: delivery');
    await until(() => watched.some((l) => l.event === 'message' && l.id === 'dr1' && l.status === 'sent') || undefined, 5_000, 'watch: sent');
  });
});

describe('the same push twice, and read reports', () => {
  it('the same notification twice is one entry, fetched once', async () => {
    // The MMSC pushes the same M-Notification.ind again (same transaction id and content location).
    const receipt = await s.tb.receive({ from: '+4917012345', subject: 'twice', parts: [{ name: 'a.txt', contentType: 'text/plain', data: Buffer.from('once') }] });
    const p = await finalReceived((await receivedFor('twice')).Id);
    expect(p.Status).toBe('received');
    const lines = (): number => s.tb.daemon!.lines.filter((l) => l.msg === 'the same notification again: one entry' && l.id === p.Id).length;
    const again = encodeNotificationInd({
      mmsVersion: MMS_VERSION,
      transactionId: receipt.transactionId,
      from: '+4917012345',
      subject: 'twice',
      messageClass: 'personal',
      messageSize: receipt.size,
      expiry: { relative: 3600 },
      contentLocation: receipt.contentLocation,
    });
    await s.tb.sms({ pdus: pushPdus(again) });
    await until(() => (lines() === 1 ? true : undefined), 15_000, 'the duplicate seen');
    await until(async () => ((await storedSms()) === 0 ? true : undefined), 10_000, 'its SMS deleted');
    expect((await s.client.listReceived()).filter((r) => r.props.Subject === 'twice')).toHaveLength(1);
    expect((await s.tb.mmscInbox()).find((m) => m.id === receipt.id)?.served).toBe(1);
  });

  it('a read report (M-Read-Orig.ind) is logged and its SMS deleted', async () => {
    const pdu = encodeReadOrigInd({ mmsVersion: MMS_VERSION, messageId: 'READ-1@mmsc', to: '+491700000001', from: '+4917012345', date: Math.floor(Date.now() / 1000), readStatus: 'read' });
    await s.tb.sms({ pdus: pushPdus(pdu) });
    const line = await s.tb.daemon!.waitFor((l) => l.msg === 'read report received' && l.reportMessageId === 'READ-1@mmsc', 15_000, 'the read report');
    expect(line).toMatchObject({ from: '+4917012345', readStatus: 'read' });
    await until(async () => ((await storedSms()) === 0 ? true : undefined), 10_000, 'its SMS deleted');
  });
});

describe('faults while fetching (DESIGN.md §12)', () => {
  const one = (subject: string, extra: Record<string, unknown> = {}): Promise<unknown> =>
    s.tb.receive({ from: 'alice@example.com', subject, parts: [{ name: 'a.txt', contentType: 'text/plain', charset: 'utf-8', data: Buffer.from(`text of ${subject}`) }], ...extra });

  async function endsFailed(subject: string, errorName: RegExp): Promise<ReceivedProperties> {
    const p = await finalReceived((await receivedFor(subject)).Id);
    expect(p.Status).toBe('failed');
    expect(p.Error).toMatch(errorName);
    expect(p.Parts).toEqual([]);
    expect(await filesOf(p.Id)).toEqual([]);
    return p;
  }

  async function endsReceived(subject: string): Promise<ReceivedProperties> {
    const p = await finalReceived((await receivedFor(subject)).Id, 30_000);
    expect(p.Status).toBe('received');
    expect(await readFile(p.Parts[0].path, 'utf8')).toBe(`text of ${subject}`);
    return p;
  }

  it('404 → failed (HTTP 4xx), nothing written', async () => {
    await s.tb.fault({ inbox: { httpStatus: 404, count: 1 } });
    await one('f404');
    await endsFailed('f404', /^HttpStatusError: get: HTTP 404/);
  });

  it('content expired at the MMSC (X-Mms-Retrieve-Status 0xE2) → failed, nothing written', async () => {
    await s.tb.fault({ inbox: { retrieveStatus: 0xe2, count: 1 } });
    await one('fexpired');
    await endsFailed('fexpired', /message-not-found|MessageNotFound|E2/i);
  });

  it('content that never appears (404 to every GET) → failed; Retrieve() tries again', async () => {
    await one('fnever', { contentNeverAppears: true });
    const p = await endsFailed('fnever', /HTTP 404/);
    const r = await run(['inbox', 'retrieve', p.Id]);
    expect(r.code, r.stderr).toBe(0);
    // mmsctl watch sees it go back to retrieving and fail a second time.
    const failures = (): number => watched.filter((l) => l.event === 'received' && l.id === p.Id && l.status === 'failed').length;
    await until(() => (failures() >= 2 ? true : undefined), 15_000, 'failed again after Retrieve()');
    expect(watched.filter((l) => l.id === p.Id && l.status === 'retrieving').length).toBeGreaterThanOrEqual(2);
  });

  it('a slow body is waited for', async () => {
    await s.tb.fault({ inbox: { slowBodyMs: 3000, count: 1 } });
    await one('fslow');
    await endsReceived('fslow');
  });

  it('a connection dropped mid-body is retried, then received', async () => {
    await s.tb.fault({ inbox: { dropAfterBytes: 20, count: 1 } });
    await one('fdrop');
    const p = await endsReceived('fdrop');
    // Served twice: the cut answer, then the whole one.
    expect((await s.tb.mmscInbox()).find((m) => m.subject === 'fdrop')?.served).toBe(2);
    expect(s.tb.daemon!.lines.some((l) => l.msg === 'fetch failed; trying again later' && l.id === p.Id)).toBe(true);
  });

  it('a fetch after the module restarted (RDY) writes the HTTP settings again and is received', async () => {
    await one('fbefore-rdy');
    await endsReceived('fbefore-rdy');
    const d = s.tb.daemon!;
    const from = d.lines.length;
    const status = (l: (typeof d.lines)[number]): string | undefined => (l.msg === LOG_EVENTS.modemStatus ? (l.modem as { state?: string } | undefined)?.state : undefined);
    await s.tb.fault({ reboot: true });
    // The daemon sees the restart (the modem leaves `ready`), brings the module up again, and is ready.
    const down = await d.waitFor((l) => d.lines.indexOf(l) >= from && status(l) !== undefined && status(l) !== 'ready', 30_000, 'modem not ready after RDY');
    await d.waitFor((l) => d.lines.indexOf(l) > d.lines.indexOf(down) && status(l) === 'ready', 60_000, 'modem ready again');
    // The restarted module lost its AT+QHTTPCFG settings (the sim keeps its defaults again).
    expect((await s.tb.simState()).http).toMatchObject({ config: { requestHeader: 0 } });
    await one('fafter-rdy');
    await endsReceived('fafter-rdy');
    expect((await s.tb.simState()).http).toMatchObject({ config: { contextId: 1, requestHeader: 1 } });
  });

  it('HTTP 5xx is retried, then received', async () => {
    await s.tb.fault({ inbox: { httpStatus: 503, count: 2 } });
    await one('f503');
    const p = await endsReceived('f503');
    expect(s.tb.daemon!.lines.filter((l) => l.msg === 'fetch failed; trying again later' && l.id === p.Id)).toHaveLength(2);
  });

  it('5xx until the notification expires → expired at its expiry', async () => {
    await s.tb.fault({ inbox: { httpStatus: 500 } });
    try {
      await one('fexpiry', { expirySeconds: 4 });
      const id = (await receivedFor('fexpiry')).Id;
      const p = await finalReceived(id, 20_000);
      expect(p.Status).toBe('expired');
      expect(p.Error).toMatch(/^Expired/);
      expect(Date.now()).toBeGreaterThanOrEqual(p.Expiry);
      expect(await filesOf(id)).toEqual([]);
    } finally {
      await s.tb.fault({ inbox: {} });
    }
  });

  it('a message larger than inbound.maxMessageBytes: not fetched when announced so, refused when it turns out so', async () => {
    const big = pseudoImage(MAX_MESSAGE_BYTES + 5_000, 5);
    await s.tb.receive({ from: '+4917012345', subject: 'fbig', parts: [{ name: 'big.jpg', contentType: 'image/jpeg', data: big }] });
    await endsFailed('fbig', /^MessageTooLarge/);
    expect((await s.tb.mmscInbox()).find((m) => m.subject === 'fbig')?.served).toBe(0);

    await s.tb.receive({ from: '+4917012345', subject: 'flied', announcedSize: 2_000, parts: [{ name: 'big.jpg', contentType: 'image/jpeg', data: big }] });
    await endsFailed('flied', /^MessageTooLarge/);
  });

  it('left nothing half-written, one entry per notification, and no SMS behind', async () => {
    expect(await partials()).toEqual([]);
    const subjects = (await s.client.listReceived()).map((r) => r.props.Subject);
    expect(new Set(subjects).size).toBe(subjects.length);
    expect(await storedSms()).toBe(0);
  });
});
