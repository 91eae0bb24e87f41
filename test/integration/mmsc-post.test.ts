// The loopback MMSC and AT+QMMSEND's HTTP side together, in process over real loopback sockets:
// direct and proxied posts, every MMSC fault → its spec §5 outcome, and messages arriving intact.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import iconv from 'iconv-lite';
import pino from 'pino';
import { LoopbackMmsc } from '../../src/sim/mmsc.js';
import { postMms } from '../../src/sim/mms-post.js';
import { decodeSendConf, decodeSendReq } from '../../src/mms/pdu.js';
import { decodeDeliveryInd } from '../../src/mms/notification.js';
import type { DeliveryInd } from '../../src/mms/types.js';
import { until } from '../helpers/mosquitto.js';
import type { ReceivedMessage, SimSendRequest } from '../../src/sim/types.js';

const logger = pino({ level: 'silent' });
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

let store: string;
let mmsc: LoopbackMmsc;
let url: string;
let port: number;
const cleanups: (() => Promise<void> | void)[] = [];

function request(over: Partial<SimSendRequest> = {}): SimSendRequest {
  return {
    to: ['+15551234'],
    cc: ['copy.test@quectel.com'],
    bcc: ['secret.test@quectel.com'],
    subject: { charset: 'ASCII', text: 'test EM05 mms' },
    attachments: [{ name: 'test_ram.txt', data: Buffer.from('hello from the module\n'), charset: 'ASCII' }],
    sendParam: { validity: 6, priority: 3, sendrep: 0, readrep: 0, visible: 2, class: 4 },
    supportField: 0,
    mmsc: url,
    connectTimeoutS: 5,
    timeoutS: 10,
    ...over,
  };
}

/** A port nobody listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

/** A raw TCP server answering every connection with `reply` (then optionally cutting it). */
async function rawServer(onData: (sock: net.Socket, data: Buffer) => void): Promise<number> {
  const sockets = new Set<net.Socket>();
  const s = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => undefined);
    sock.once('data', (d: Buffer) => onData(sock, d));
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const so of sockets) so.destroy();
        s.close(() => r());
      }),
  );
  return (s.address() as net.AddressInfo).port;
}

beforeEach(async () => {
  store = await mkdtemp(path.join(os.tmpdir(), 'mmsc-'));
  mmsc = new LoopbackMmsc({ store, logger });
  url = (await mmsc.start()).url;
  port = Number(new URL(url).port);
});

afterEach(async () => {
  await mmsc.stop();
  for (const c of cleanups.splice(0)) await c();
  await rm(store, { recursive: true, force: true });
});

describe('posting to the loopback MMSC', () => {
  it('delivers directly and answers 0,200', async () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mms$/);
    expect(await postMms(request())).toEqual({ err: 0, httpStatus: 200 });
    const [m] = mmsc.received();
    expect(m).toMatchObject({ to: ['+15551234'], cc: ['copy.test@quectel.com'], bcc: ['secret.test@quectel.com'], subject: 'test EM05 mms' });
    expect(m.parts).toEqual([{ name: 'test_ram.txt', contentType: 'text/plain', size: 22, sha256: sha(Buffer.from('hello from the module\n')) }]);
  });

  it('goes through the proxy with the absolute-form request line, to an MMSC given without scheme', async () => {
    // A relay in front of the MMSC records the request line the "WAP proxy" receives.
    const lines: string[] = [];
    const relayPort = await rawServer((sock, first) => {
      lines.push(first.toString('latin1').split('\r\n')[0]);
      const up = net.connect(port, '127.0.0.1', () => {
        up.write(first);
        sock.pipe(up).pipe(sock);
      });
      up.on('error', () => sock.destroy());
    });
    // mmsc.myuni.com does not resolve here: only a proxied post can succeed.
    const out = await postMms(request({ mmsc: 'mmsc.myuni.com', proxy: { host: '127.0.0.1', port: relayPort } }));
    expect(out).toEqual({ err: 0, httpStatus: 200 });
    expect(lines).toEqual(['POST http://mmsc.myuni.com/ HTTP/1.1']);
    expect(mmsc.received()).toHaveLength(1);
  });

  it('lists what it received over GET /received, also in proxy form', async () => {
    await postMms(request());
    const body = await new Promise<string>((resolve, reject) => {
      const r = http.request({ host: '127.0.0.1', port, path: 'http://mmsc.example/received' }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve(text));
      });
      r.on('error', reject);
      r.end();
    });
    const list = JSON.parse(body) as ReceivedMessage[];
    expect(list).toEqual(mmsc.received());
    expect(list[0].to).toEqual(['+15551234']);
  });

  it('maps sendparam to the expiry, priority, report, visibility and class headers', async () => {
    await postMms(request({ sendParam: { validity: 0, priority: 2, sendrep: 1, readrep: 1, visible: 0, class: 0 } }));
    await postMms(request());
    const dirs = (await readdir(store)).sort();
    const pdus = await Promise.all(dirs.map(async (d) => decodeSendReq(await readFile(path.join(store, d, 'raw.mms')))));
    const set = pdus.find((p) => p.priority !== undefined)!;
    const unset = pdus.find((p) => p.priority === undefined)!;
    expect(set).toMatchObject({ expiry: { relative: 3600 }, priority: 'high', deliveryReport: true, readReport: true, senderVisibility: 'hide', messageClass: 'personal' });
    expect(unset).toMatchObject({ deliveryReport: false, readReport: false });
    expect(unset.expiry).toBeUndefined();
    expect(unset.senderVisibility).toBeUndefined();
    expect(unset.messageClass).toBeUndefined();
    expect(unset.from).toBeUndefined(); // Insert-address-token
  });
});

describe('faults and outcomes (issue 3)', () => {
  it('HTTP status other than 200 → 766 with that status', async () => {
    mmsc.setFaults({ httpStatus: 503 });
    expect(await postMms(request())).toEqual({ err: 766, httpStatus: 503 });
    expect(mmsc.received()).toHaveLength(0);
  });

  it('transient MMSC status → 765 with the response text', async () => {
    mmsc.setFaults({ mmsStatus: 0xc1, mmsText: 'try again later' });
    expect(await postMms(request())).toEqual({ err: 765, httpStatus: 200, mmsrsp: 'try again later' });
  });

  it('permanent MMSC status without text → 765 with the status name', async () => {
    mmsc.setFaults({ mmsStatus: 0xe2 });
    expect(await postMms(request())).toEqual({ err: 765, httpStatus: 200, mmsrsp: 'Error-permanent-message-format-corrupt' });
  });

  it('keeps quotes and line breaks of the response text out of mmsrsp', async () => {
    mmsc.setFaults({ mmsStatus: 0xe1, mmsText: 'say "no"\r\nOK' });
    expect(await postMms(request())).toEqual({ err: 765, httpStatus: 200, mmsrsp: 'say  no   OK' });
  });

  it('dropped connection → 774', async () => {
    mmsc.setFaults({ drop: true });
    expect(await postMms(request())).toEqual({ err: 774, httpStatus: 0 });
  });

  it('garbage answer → 777', async () => {
    mmsc.setFaults({ garbage: true });
    expect(await postMms(request())).toEqual({ err: 777, httpStatus: 200 });
  });

  it('no answer within the send timeout → 775 (the MMSC kept the message all the same)', async () => {
    mmsc.setFaults({ delayMs: 5000 });
    expect(await postMms(request({ timeoutS: 1 }))).toEqual({ err: 775, httpStatus: 0 });
    expect(mmsc.received()).toHaveLength(1);
  });

  it('a delay shorter than the timeout still succeeds', async () => {
    mmsc.setFaults({ delayMs: 50 });
    expect(await postMms(request())).toEqual({ err: 0, httpStatus: 200 });
  });

  it('applies a fault to `count` requests, then clears it', async () => {
    mmsc.setFaults({ httpStatus: 500, count: 2 });
    expect((await postMms(request())).err).toBe(766);
    expect((await postMms(request())).err).toBe(766);
    expect(await postMms(request())).toEqual({ err: 0, httpStatus: 200 });
  });

  it('connection refused → 771, directly and through a proxy', async () => {
    const dead = await closedPort();
    expect(await postMms(request({ mmsc: `127.0.0.1:${dead}/mms` }))).toEqual({ err: 771, httpStatus: 0 });
    expect(await postMms(request({ proxy: { host: '127.0.0.1', port: dead } }))).toEqual({ err: 771, httpStatus: 0 });
  });

  it('connection cut in the middle of the answer → 772', async () => {
    const p = await rawServer((sock) => {
      sock.write('HTTP/1.1 200 OK\r\nContent-Type: application/vnd.wap.mms-message\r\nContent-Length: 100\r\n\r\n\x8c\x81');
      setImmediate(() => sock.destroy());
    });
    expect(await postMms(request({ mmsc: `http://127.0.0.1:${p}/mms` }))).toEqual({ err: 772, httpStatus: 200 });
  });

  it('an attachment name the PDU cannot carry → 776', async () => {
    const out = await postMms(request({ attachments: [{ name: 'a\0b.txt', data: Buffer.from('x'), charset: 'ASCII' }] }));
    expect(out).toEqual({ err: 776, httpStatus: 0 });
  });

  it('an abort (module reboot) ends the post', async () => {
    mmsc.setFaults({ delayMs: 5000 });
    const ac = new AbortController();
    const pending = postMms(request({ signal: ac.signal }));
    // Wait until the MMSC has the message, then "reboot".
    await until(() => mmsc.received().length > 0, 'the MMSC to have the message', 5000);
    ac.abort();
    expect(await pending).toEqual({ err: 774, httpStatus: 0 });
  });

  it('answers an undecodable post with M-Send.conf 0xE2', async () => {
    const conf = await new Promise<Buffer>((resolve, reject) => {
      const r = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/mms' }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
      });
      r.on('error', reject);
      r.end(Buffer.from([0x8c, 0x80, 0x98, 0x54, 0x39, 0x00, 0x8d, 0x92, 0x84]));
    });
    const decoded = decodeSendConf(conf);
    expect(decoded).toMatchObject({ transactionId: 'T9', responseStatus: 0xe2 });
    expect(decoded.responseText).toMatch(/^message format corrupt/);
    expect(mmsc.received()).toHaveLength(0);
  });
});

describe('content arrives intact', () => {
  const binary = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 37 + 11) & 0xff));
  const cases = [
    { charset: 'UTF8' as const, subject: '测试彩信 UTF-8 主题', text: Buffer.from('你好，世界\n', 'utf8'), partCharset: 'utf-8' },
    { charset: 'UCS2' as const, subject: 'UCS2 标题 ✓', text: iconv.encode('宽字符文本', 'utf-16be'), partCharset: 'iso-10646-ucs-2' },
    { charset: 'GBK' as const, subject: 'GBK 编码的标题', text: iconv.encode('国标扩展文本', 'gbk'), partCharset: 'gbk' },
  ];

  it.each(cases)('$charset subject, a text part and a binary part', async ({ charset, subject, text, partCharset }) => {
    const out = await postMms(
      request({
        subject: { charset, text: subject },
        attachments: [
          { name: 'note.txt', data: text, charset },
          { name: 'photo.jpg', data: binary, charset },
          { name: 'empty.bin', data: Buffer.alloc(0), charset },
        ],
      }),
    );
    expect(out).toEqual({ err: 0, httpStatus: 200 });
    const [m] = mmsc.received();
    expect(m.subject).toBe(subject);

    // DESIGN.md §7 store layout: one folder named by the message id.
    expect(await readdir(store)).toEqual([m.id]);
    const dir = path.join(store, m.id);
    expect((await readdir(dir)).sort()).toEqual(['empty.bin', 'message.json', 'note.txt', 'photo.jpg', 'raw.mms', 'smil.smil']);
    const json = JSON.parse(await readFile(path.join(dir, 'message.json'), 'utf8')) as Record<string, unknown>;
    expect(Object.keys(json).sort()).toEqual(['bcc', 'cc', 'parts', 'subject', 'to']);
    expect(json).toEqual({
      to: ['+15551234'],
      cc: ['copy.test@quectel.com'],
      bcc: ['secret.test@quectel.com'],
      subject,
      parts: [
        { name: 'smil.smil', contentType: 'application/smil', size: expect.any(Number), sha256: expect.any(String) },
        { name: 'note.txt', contentType: 'text/plain', size: text.length, sha256: sha(text) },
        { name: 'photo.jpg', contentType: 'image/jpeg', size: binary.length, sha256: sha(binary) },
        { name: 'empty.bin', contentType: 'application/octet-stream', size: 0, sha256: sha(Buffer.alloc(0)) },
      ],
    });
    expect(m).toEqual({ id: m.id, ...json });
    const parts = json.parts as { name: string; sha256: string }[];
    for (const p of parts) expect(sha(await readFile(path.join(dir, p.name)))).toBe(p.sha256);

    // raw.mms is the PDU as posted: the text part carries the charset it was added under.
    const pdu = decodeSendReq(await readFile(path.join(dir, 'raw.mms')));
    expect(pdu.parts.find((p) => p.name === 'note.txt')?.charset).toBe(partCharset);
    expect(pdu.parts.find((p) => p.name === 'photo.jpg')?.charset).toBeUndefined();
    expect(pdu.contentType).toBe('application/vnd.wap.multipart.related');
  });

  it('a subject-less message stores subject null', async () => {
    const { subject: _omit, ...rest } = request();
    expect(await postMms(rest)).toEqual({ err: 0, httpStatus: 200 });
    expect(mmsc.received()[0].subject).toBeNull();
  });

  it('sanitises part names for the file system', async () => {
    await postMms(request({ attachments: [{ name: 'raw.mms', data: Buffer.from('a'), charset: 'ASCII' }, { name: '..', data: Buffer.from('b'), charset: 'ASCII' }] }));
    const [m] = mmsc.received();
    expect(m.parts.map((p) => p.name)).toEqual(['smil.smil', 'raw.mms', '..']);
    const files = (await readdir(path.join(store, m.id))).sort();
    expect(files).toEqual(['1_raw.mms', '_..', 'message.json', 'raw.mms', 'smil.smil']);
    expect(await readFile(path.join(store, m.id, '1_raw.mms'), 'utf8')).toBe('a');
  });
});

describe('delivery reports (M-Delivery.ind pushed per recipient)', () => {
  const withReport = { validity: 6, priority: 3, sendrep: 1, readrep: 0, visible: 2, class: 4 };

  it('pushes one per recipient with the Message-ID of M-Send.conf, as each recipient\'s plan says; none when not asked', async () => {
    const reports: DeliveryInd[] = [];
    mmsc.setPushTarget((pdu) => reports.push(decodeDeliveryInd(pdu)));
    mmsc.setDelivery({ delayMs: 20, recipients: { '+15551234/TYPE=PLMN': 'deferred-then-retrieved', 'secret.test@quectel.com': 'none' } });
    mmsc.setDelivery({ recipients: { 'copy.test@quectel.com': 'rejected' } });
    expect(await postMms(request())).toEqual({ err: 0, httpStatus: 200 }); // no report asked for
    expect(await postMms(request({ sendParam: withReport }))).toEqual({ err: 0, httpStatus: 200 });
    const [first, second] = mmsc.received();
    await until(() => reports.length >= 3, 'three delivery reports');
    expect(reports.map((r) => [r.messageId, r.to, r.status])).toEqual([
      [second.id, '+15551234', 'deferred'],
      [second.id, 'copy.test@quectel.com', 'rejected'],
      [second.id, '+15551234', 'retrieved'],
    ]);
    expect(reports.some((r) => r.messageId === first.id)).toBe(false);
  });

  it('a recipient with its own delay gets its reports after that delay; the others after the general one', async () => {
    const reports: { to: string; status: string; at: number }[] = [];
    const t0 = Date.now();
    mmsc.setPushTarget((pdu) => {
      const r = decodeDeliveryInd(pdu);
      reports.push({ to: r.to, status: r.status, at: Date.now() - t0 });
    });
    mmsc.setDelivery({
      delayMs: 30,
      plan: 'none',
      recipients: { '+15551234': { plan: 'deferred-then-retrieved', delayMs: 400 }, 'copy.test@quectel.com': 'rejected' },
    });
    expect(mmsc.deliverySettings().recipients['+15551234']).toEqual({ plan: 'deferred-then-retrieved', delayMs: 400 });
    expect(await postMms(request({ sendParam: withReport }))).toEqual({ err: 0, httpStatus: 200 });
    await until(() => reports.length >= 3, 'three delivery reports');
    // Timers with different delays fire in delay order: rejected (30 ms), deferred (400), retrieved (800).
    expect(reports.map((r) => [r.to, r.status])).toEqual([
      ['copy.test@quectel.com', 'rejected'],
      ['+15551234', 'deferred'],
      ['+15551234', 'retrieved'],
    ]);
    expect(reports[1].at).toBeGreaterThanOrEqual(400);
    expect(reports[2].at).toBeGreaterThanOrEqual(800);
  });

  it('sends none for a send the MMSC refused', async () => {
    const reports: DeliveryInd[] = [];
    mmsc.setPushTarget((pdu) => reports.push(decodeDeliveryInd(pdu)));
    mmsc.setDelivery({ delayMs: 10, plan: 'expired' });
    mmsc.setFaults({ mmsStatus: 0xe2, count: 1 });
    expect((await postMms(request({ sendParam: withReport }))).err).toBe(765);
    expect(await postMms(request({ sendParam: withReport, cc: [], bcc: [] }))).toEqual({ err: 0, httpStatus: 200 });
    await until(() => reports.length >= 1, 'a delivery report');
    expect(reports.map((r) => [r.messageId, r.to, r.status])).toEqual([[mmsc.received()[0].id, '+15551234', 'expired']]);
  });
});
