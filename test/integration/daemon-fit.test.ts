// Photos that fit, end to end (DESIGN.md §11, issue 15): the real daemon with a config that holds
// only the port (the carrier from the SIM's IMSI in the real serviceproviders.xml), the sim on a
// pty and its loopback MMSC, a private bus and a real mosquitto. What the MMSC decoded is the proof.
import { spawn } from 'node:child_process';
import { LOG_EVENTS } from '../../src/core/log-events.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import dbus from 'dbus-next';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MMSCTL_BIN } from '../../src/harness/testbed.js';
import { makePhoto } from '../../src/harness/photos.js';
import { pseudoRandomBytes } from '../../src/harness/random.js';
import { decodeSendReq } from '../../src/mms/pdu.js';
import type { ReceivedMessage } from '../../src/sim/types.js';
import { pixelBombPng } from '../helpers/images.js';
import { Mosquitto, MqttObserver } from '../helpers/mosquitto.js';
import { finalWithin, sha256, startStack, waitForProps, type Stack } from '../helpers/stack.js';

const TO = ['+15550004000'];
/** LuxGSM (270-01): one provider with an MMSC, and no <mmsattachmentsize> in Debian's database. */
const LUXGSM_IMSI = '270011234567890';
/** The carrier's limit: the database gives none, so mms.maxMessageBytes's default (§10). */
const LIMIT = 307_200;
/** §11: what the fitter keeps back for the MMS headers. */
const HEADER_RESERVE = 2048;

let broker: Mosquitto;
let s: Stack;
let watch: MqttObserver;

beforeAll(async () => {
  broker = await Mosquitto.start();
  s = await startStack({ carrierFromDatabase: true, simArgs: ['--imsi', LUXGSM_IMSI], mqttUrl: broker.url });
  await s.tb.modemReady();
  // The config holds no carrier key and no size: the limit is what §10 resolves from the SIM.
  const carrier = await s.client.carrier();
  expect([carrier.Source, carrier.MaxMessageBytes]).toEqual(['database', LIMIT]);
  watch = await MqttObserver.connect(broker.url, ['mmsd/message/+', 'mmsd/error']);
}, 120_000);

afterAll(async () => {
  await watch?.end();
  await s?.stop();
  await broker?.dispose();
});

/** The message the loopback MMSC received with this subject, its raw PDU decoded again here. */
async function receivedPdu(subject: string): Promise<{ msg: ReceivedMessage; parts: Map<string, { contentType: string; data: Buffer }> }> {
  const msg = (await s.tb.received()).find((m) => m.subject === subject);
  if (!msg) throw new Error(`the MMSC has no message ${subject}`);
  const req = decodeSendReq(await readFile(join(s.tb.storeDir, msg.id, 'raw.mms')));
  const parts = new Map(req.parts.map((p) => [p.contentLocation ?? p.name ?? '', { contentType: p.contentType, data: p.data }]));
  return { msg, parts };
}

function part(parts: Map<string, { contentType: string; data: Buffer }>, name: string): Buffer {
  const p = parts.get(name);
  if (!p) throw new Error(`no part ${name} among ${[...parts.keys()].join(', ')}`);
  expect(p.contentType, name).toBe('image/jpeg');
  return p.data;
}

function mmsctl(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MMSCTL_BIN, '--bus', 'session', ...args], { env: s.tb.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The first three bytes of a pixel of `image` at (x, y), decoded. */
async function rgbAt(image: Buffer, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(image).raw().toBuffer({ resolveWithObject: true });
  const i = (y * info.width + x) * info.channels;
  return [data[i], data[i + 1], data[i + 2]].map(Number);
}

async function dbusError(p: Promise<unknown>): Promise<{ type: string; text: string }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(dbus.DBusError);
  const e = err as InstanceType<typeof dbus.DBusError>;
  return { type: e.type, text: e.text };
}

describe('photos that fit, through the real daemon (§11)', () => {
  it('sends a 3 MB camera photo to a carrier found from the IMSI alone: upright, within the limit, no EXIF or GPS, the text beside it byte for byte', async () => {
    // An 8 MP camera photo, stored landscape with orientation 6 (to be turned 90° clockwise),
    // with GPS tags; a red square in the stored top-left corner ends up top right.
    const red = await sharp({ create: { width: 200, height: 200, channels: 3, background: '#ff0000' } }).png().toBuffer();
    const photo = await sharp(await makePhoto(sharp, 3264, 2448, 21))
      .composite([{ input: red, left: 0, top: 0 }])
      .withExif({ IFD0: { Make: 'TestCam' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 2400/100', GPSLongitudeRef: 'E', GPSLongitude: '2/1 21/1 300/100' } })
      .withMetadata({ orientation: 6 })
      .jpeg({ quality: 95 })
      .toBuffer();
    expect(photo.length).toBeGreaterThan(2_500_000);
    const note = Buffer.from('Bewegung an der Haustür, 03:12 ✓\n');

    const path = await s.client.sendData({ to: TO, subject: 'fit-done-when', id: 'fit-done-when' }, [
      { name: 'IMG_0001.JPG', contentType: 'image/jpeg', data: photo },
      { name: 'note.txt', contentType: 'text/plain; charset=utf-8', data: note },
    ]);
    const final = await finalWithin(s, path, 90_000);
    expect(final.Status, final.Error).toBe('sent');

    // What fitting did, one line per changed part, on D-Bus, MQTT and in mmsctl show.
    const props = (await s.client.show('fit-done-when'));
    expect(props.Adjustments).toHaveLength(1);
    expect(props.Adjustments?.[0]).toMatch(/^IMG_0001\.JPG: 2448×3264 \d\.\d MB → \d+×\d+ JPEG q\d+ \d+ KB$/);
    const mqttFinal = await watch.waitForJson('mmsd/message/fit-done-when', { status: 'sent' }, 10_000);
    expect(mqttFinal.adjustments).toEqual(props.Adjustments);
    const shown = await mmsctl('show', 'fit-done-when');
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain(`adjustments:   ${props.Adjustments?.[0]}`);
    const json = await mmsctl('--json', 'show', 'fit-done-when');
    expect((JSON.parse(json.stdout) as { adjustments: string[] }).adjustments).toEqual(props.Adjustments);

    const { msg, parts } = await receivedPdu('fit-done-when');
    const jpeg = part(parts, 'IMG_0001.jpg');
    // Within the carrier's limit: the fitted image and the text, with room for the headers.
    const attachmentBytes = msg.parts.filter((p) => p.contentType !== 'application/smil').reduce((n, p) => n + p.size, 0);
    expect(attachmentBytes).toBeLessThanOrEqual(LIMIT - HEADER_RESERVE);
    const meta = await sharp(jpeg).metadata();
    expect([meta.format, meta.orientation, meta.exif, meta.icc]).toEqual(['jpeg', undefined, undefined, undefined]);
    // Portrait 3:4 (turned), within media.maxWidth × maxHeight (1600 × 1600).
    const [w, h] = [meta.width ?? 0, meta.height ?? 0];
    expect(h).toBeLessThanOrEqual(1600);
    expect(Math.abs(w / h - 3 / 4)).toBeLessThan(0.01);
    for (const marker of ['Exif', 'GPS']) expect(jpeg.includes(marker), marker).toBe(false);
    // Upright: the stored top-left corner is now the top right.
    const [r, g, b] = await rgbAt(jpeg, w - 15, 15);
    expect(r).toBeGreaterThan(200);
    expect(g + b).toBeLessThan(100);
    expect(parts.get('note.txt')?.data.equals(note)).toBe(true);

    // Fitted in a child process: the image library never loaded into the daemon.
    const maps = await readFile(`/proc/${s.tb.daemon?.pid}/maps`, 'utf8');
    expect(maps).not.toMatch(/libvips|sharp/);
    const fitted = (s.tb.daemon?.lines ?? []).filter((l) => l.msg === LOG_EVENTS.messageFitted && l.id === 'fit-done-when');
    expect(fitted).toHaveLength(1);
    expect(fitted[0]?.limit).toBe(LIMIT);
    // §11: one line at start on whether photos can be fitted here.
    expect((s.tb.daemon?.lines ?? []).filter((l) => l.msg === 'photos that do not fit are made smaller')).toHaveLength(1);
  }, 120_000);

  it('fits a PNG with alpha (on white), a WebP, an animated GIF and a 12 MP JPEG in one message', async () => {
    const twelve = await makePhoto(sharp, 4000, 3000, 31);
    // Transparent everywhere but a blue square in the middle.
    const [pw, ph] = [1200, 900];
    const rgba = Buffer.alloc(pw * ph * 4);
    for (let y = 300; y < 600; y++) for (let x = 450; x < 750; x++) rgba.set([0, 0, 255, 255], (y * pw + x) * 4);
    const noisy = pseudoRandomBytes(pw * ph, 3);
    for (let i = 0; i < pw * ph; i++) if ((rgba[i * 4 + 3] ?? 0) === 0) rgba[i * 4] = noisy[i] ?? 0; // colour under alpha 0
    const png = await sharp(rgba, { raw: { width: pw, height: ph, channels: 4 } }).png({ compressionLevel: 0 }).toBuffer();
    const webp = await sharp(await makePhoto(sharp, 1600, 1200, 32)).webp({ quality: 98 }).toBuffer();
    // Three frames, each a coloured square on grey.
    const [gw, gh] = [400, 300];
    const frames = Buffer.concat(
      [[255, 0, 0], [0, 255, 0], [0, 0, 255]].map((rgb) => {
        const px = Buffer.alloc(gw * gh * 3, 128);
        for (let y = 100; y < 200; y++) for (let x = 150; x < 250; x++) px.set(rgb, (y * gw + x) * 3);
        return px;
      }),
    );
    const gif = await sharp(frames, { raw: { width: gw, height: gh * 3, channels: 3, pageHeight: gh } }).gif({ loop: 0, effort: 1 }).toBuffer();

    const path = await s.client.sendData({ to: TO, subject: 'fit-formats', id: 'fit-formats' }, [
      { name: 'cam.jpg', contentType: 'image/jpeg', data: twelve },
      { name: 'logo.png', contentType: 'image/png', data: png },
      { name: 'pic.webp', contentType: 'image/webp', data: webp },
      { name: 'anim.gif', contentType: 'image/gif', data: gif },
    ]);
    const final = await finalWithin(s, path, 120_000);
    expect(final.Status, final.Error).toBe('sent');
    const props = await s.client.show('fit-formats');
    expect(props.Adjustments?.map((l) => l.split(':')[0])).toEqual(expect.arrayContaining(['cam.jpg', 'logo.png', 'pic.webp']));

    const { msg, parts } = await receivedPdu('fit-formats');
    const attachmentBytes = msg.parts.filter((p) => p.contentType !== 'application/smil').reduce((n, p) => n + p.size, 0);
    expect(attachmentBytes).toBeLessThanOrEqual(LIMIT - HEADER_RESERVE);
    const cam = await sharp(part(parts, 'cam.jpg')).metadata();
    expect(cam.width).toBeLessThanOrEqual(1600);
    expect(Math.abs((cam.width ?? 0) / (cam.height ?? 1) - 4 / 3)).toBeLessThan(0.01);
    const logo = part(parts, 'logo.jpg');
    expect((await sharp(logo).metadata()).hasAlpha).toBe(false);
    // Flattened on white: a corner that was transparent is white, the square stays blue.
    for (const c of await rgbAt(logo, 10, 10)) expect(c).toBeGreaterThan(235);
    const [r, g, b] = await rgbAt(logo, 600, 450);
    expect([r < 60, g < 60, b > 190]).toEqual([true, true, true]);
    expect((await sharp(part(parts, 'pic.jpg')).metadata()).format).toBe('jpeg');
    // The GIF may fit as it is (then byte for byte) or become its first frame as a JPEG.
    const gifPart = parts.get('anim.gif') ?? parts.get('anim.jpg');
    expect(gifPart).toBeDefined();
    if (parts.has('anim.gif')) expect(gifPart?.data.equals(gif)).toBe(true);
    else expect((await sharp(gifPart?.data).metadata()).pages).toBeUndefined();
  }, 180_000);

  it('refuses at the door a message that is over the limit with Fit false, and one whose other parts alone are (D-Bus and MQTT)', async () => {
    const photo = await makePhoto(sharp, 2000, 1500, 41);
    expect(photo.length).toBeGreaterThan(LIMIT);
    const off = await dbusError(s.client.sendData({ to: TO, subject: 'fit-off', id: 'fit-off', options: { fit: false } }, [{ name: 'p.jpg', contentType: 'image/jpeg', data: photo }]));
    expect(off.type).toBe('org.example.Mms1.Error.MessageTooLarge');
    expect(off.text).toContain(`over the limit of ${LIMIT}`);
    expect(off.text).toContain('option fit is false');

    const big = pseudoRandomBytes(LIMIT + 100, 9);
    const others = await dbusError(
      s.client.sendData({ to: TO, subject: 'fit-others', id: 'fit-others' }, [
        { name: 'p.jpg', contentType: 'image/jpeg', data: photo },
        { name: 'data.bin', contentType: 'application/octet-stream', data: big },
      ]),
    );
    expect(others.type).toBe('org.example.Mms1.Error.MessageTooLarge');
    expect(others.text).toContain('other than images');
    expect(others.text).toContain("mms.maxMessageBytes's default");

    await watch.client.publishAsync(
      'mmsd/send',
      JSON.stringify({ id: 'fit-others-mqtt', to: TO, attachments: [{ name: 'p.jpg', contentType: 'image/jpeg', data: photo.toString('base64') }, { name: 'data.bin', data: big.toString('base64') }] }),
      { qos: 1 },
    );
    const rejected = await watch.waitForJson('mmsd/message/fit-others-mqtt', { status: 'rejected' }, 15_000);
    expect((rejected.error as { name: string }).name).toBe('MessageTooLarge');
    await watch.client.publishAsync('mmsd/send', JSON.stringify({ id: 'fit-off-mqtt', to: TO, options: { fit: false }, attachments: [{ name: 'p.jpg', data: photo.toString('base64') }] }), { qos: 1 });
    const offMqtt = await watch.waitForJson('mmsd/message/fit-off-mqtt', { status: 'rejected' }, 15_000);
    expect((offMqtt.error as { name: string }).name).toBe('MessageTooLarge');
    // Nothing of them was queued.
    for (const id of ['fit-off', 'fit-others', 'fit-others-mqtt', 'fit-off-mqtt']) expect((await s.client.list()).some((m) => m.props.Id === id)).toBe(false);
  }, 60_000);

  it('fails a corrupt JPEG and a pixel bomb with their named errors, once each, and sends the message behind them', async () => {
    const photo = await makePhoto(sharp, 2000, 1500, 51);
    const corrupt = Buffer.concat([photo.subarray(0, Math.floor(photo.length * 0.6)), Buffer.alloc(LIMIT, 0x00)]);
    const bomb = pixelBombPng();
    const filler = pseudoRandomBytes(LIMIT - 100, 52); // a message over the limit, so the bomb must be fitted
    const corruptPath = await s.client.sendData({ to: TO, subject: 'fit-corrupt', id: 'fit-corrupt' }, [{ name: 'broken.jpg', contentType: 'image/jpeg', data: corrupt }]);
    const bombPath = await s.client.sendData({ to: TO, subject: 'fit-bomb', id: 'fit-bomb' }, [
      { name: 'bomb.png', contentType: 'image/png', data: bomb },
      { name: 'filler.jpg', contentType: 'image/jpeg', data: filler },
    ]);
    const nextPath = await s.client.sendData({ to: TO, subject: 'fit-next', id: 'fit-next' }, [{ name: 'ok.jpg', contentType: 'image/jpeg', data: photo }]);

    const corruptFinal = await finalWithin(s, corruptPath, 60_000);
    expect(corruptFinal.Status).toBe('failed');
    expect(corruptFinal.Error).toMatch(/^0 ImageError: broken\.jpg: /);
    expect(corruptFinal.Attempts).toBe(1);
    const bombFinal = await finalWithin(s, bombPath, 60_000);
    expect(bombFinal.Status).toBe('failed');
    expect(bombFinal.Error).toMatch(/^0 ImagePixelLimitError: bomb\.png: 30000×30000 /);
    expect(bombFinal.Attempts).toBe(1);
    const next = await finalWithin(s, nextPath, 60_000);
    expect(next.Status, next.Error).toBe('sent');
    const received = await s.tb.received();
    expect(received.filter((m) => m.subject === 'fit-corrupt' || m.subject === 'fit-bomb')).toEqual([]);
    expect(received.filter((m) => m.subject === 'fit-next')).toHaveLength(1);
    // Failed once each, with no retry: one 'fitting failed' line per message.
    const failedLines = (s.tb.daemon?.lines ?? []).filter((l) => l.msg === 'fitting failed' && typeof l.id === 'string' && ['fit-bomb', 'fit-corrupt'].includes(l.id));
    expect(failedLines.map((l) => l.id).sort()).toEqual(['fit-bomb', 'fit-corrupt']);
  }, 120_000);
});

describe('fitted bytes are durable before the upload (§11)', () => {
  it('after a SIGKILL mid-upload, the restarted daemon sends the same fitted bytes without fitting again; the limit was the module free RAM', async () => {
    const ram = 200_000;
    // A slow line (the upload of ~190 KB takes some 15 s) and a RAM drive smaller than the limit.
    const k = await startStack({ simArgs: ['--baud', '115200', '--ram-bytes', String(ram)] });
    try {
      await k.tb.modemReady();
      const photo = await makePhoto(sharp, 3000, 2000, 61);
      const path = await k.client.sendData({ to: TO, subject: 'fit-restart', id: 'fit-restart' }, [{ name: 'cam.jpg', contentType: 'image/jpeg', data: photo }]);
      // The record says what was done, and the upload has begun: kill -9 now.
      await waitForProps(k.client, 'fit-restart', (p) => (p.Adjustments?.length ?? 0) > 0 && p.Progress > 0, 60_000, 'adjustments and upload progress', 50);
      const record = JSON.parse(await readFile(join(k.tb.stateDir, 'messages', 'fit-restart.json'), 'utf8')) as { attachments: { name: string; sha256: string; size: number }[]; adjustments: string[] };
      expect(record.attachments.map((a) => a.name)).toEqual(['cam.jpg']);
      expect(record.attachments[0]?.size).toBeLessThanOrEqual(ram - HEADER_RESERVE);
      const first = k.tb.daemon;
      await first?.stop('SIGKILL');
      const fittedBefore = first?.lines.filter((l) => l.msg === LOG_EVENTS.messageFitted) ?? [];
      expect(fittedBefore).toHaveLength(1);
      expect(fittedBefore[0]?.limitSource).toMatch(/the module's free RAM \(AT\+QFLDS: \d+ of 200000 bytes\)/);
      expect(first?.lines.some((l) => l.msg === LOG_EVENTS.sendResult)).toBe(false);

      await k.tb.fault({ baud: 0 });
      await k.tb.startDaemon();
      const final = await finalWithin(k, path, 60_000);
      expect(final.Status, final.Error).toBe('sent');
      expect((await k.client.show('fit-restart')).Adjustments).toEqual(record.adjustments);
      const got = (await k.tb.received()).filter((m) => m.subject === 'fit-restart');
      expect(got).toHaveLength(1);
      expect(got[0]?.parts.find((p) => p.name === 'cam.jpg')?.sha256).toBe(record.attachments[0]?.sha256);
      const sent = await readFile(join(k.tb.storeDir, got[0]?.id ?? '', 'cam.jpg'));
      expect(sha256(sent)).toBe(record.attachments[0]?.sha256);
      // The child process ran once: the restarted daemon did not fit again.
      expect(k.tb.daemon?.lines.filter((l) => l.msg === LOG_EVENTS.messageFitted)).toEqual([]);
    } finally {
      await k.stop();
    }
  }, 180_000);
});
