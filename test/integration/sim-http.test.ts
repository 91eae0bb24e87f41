// The virtual module's HTTP(S) stack (src/sim/modem-http.ts) and AT+QFDWL driven by their AT
// commands, against the loopback MMSC's inbox (src/sim/mmsc-inbox.ts) over real loopback sockets:
// the fetch of DESIGN.md §12 through the proxy, byte for byte with QFDWL's checksum, READFILE's
// result after its OK, the NotifyResp recorded, what the module refuses, and each inbox fault.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { pino } from 'pino';
import { checksum16 } from '../../src/at/checksum.js';
import { reassemble, segmentOf } from '../../src/inbound/reassembly.js';
import { decodeSmsPdu, type SmsDeliver } from '../../src/inbound/sms.js';
import { decodeWspPush } from '../../src/inbound/wap-push.js';
import { decodeNotificationInd, encodeNotifyRespInd } from '../../src/mms/notification.js';
import { decodeRetrieveConf } from '../../src/mms/retrieve.js';
import { until } from '../../src/harness/wait.js';
import { LoopbackMmsc } from '../../src/sim/mmsc.js';
import { ControlServer } from '../../src/sim/control.js';
import { sampleInboundRequest, type InboundRequest } from '../../src/sim/mmsc-inbox.js';
import { VirtualModem } from '../../src/sim/modem.js';

const logger = pino({ level: 'silent' });
const FINAL = /\r\n(OK|ERROR|CONNECT|\+CME ERROR: [^\r]*)\r\n/;
const OK = '\r\nOK\r\n';
const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, ...Buffer.from('JFIF'), 0x00, 0xff, 0xd9]);

let mmsc: LoopbackMmsc;
let modem: VirtualModem;
let out: Buffer;
let proxy: string;

const MESSAGE: InboundRequest = {
  from: '+8613800138000',
  subject: '你好，世界',
  parts: [
    { name: 'smil.smil', contentType: 'application/smil', charset: 'utf-8', data: Buffer.from('<smil><body><par><img src="p.jpg"/><text src="t.txt"/></par></body></smil>') },
    { name: 't.txt', contentType: 'text/plain', charset: 'utf-8', data: Buffer.from('早上好 — good morning') },
    { name: 'p.jpg', contentType: 'image/jpeg', data: JPEG },
  ],
};

/** What the module wrote since `from` up to a final result code, the +CMTI of pushes left out. */
function answerSince(from: number): string | undefined {
  const text = out.subarray(from).toString('latin1').replace(/\r\n\+CMTI: [^\r]*\r\n/g, '');
  const m = FINAL.exec(text);
  return m ? text.slice(0, m.index + m[0].length) : undefined;
}

/** Sends a command line and resolves with its answer (up to its final result code). */
async function at(line: string): Promise<string> {
  const from = out.length;
  modem.feed(Buffer.from(`${line}\r`, 'latin1'));
  return until(() => answerSince(from), 5000, `the answer to ${line}`);
}

/** AT+QHTTPREAD: resolves with CONNECT, the body and OK (the +QHTTPREAD result comes after). */
async function read(line: string): Promise<string> {
  const from = out.length;
  modem.feed(Buffer.from(`${line}\r`, 'latin1'));
  return until(() => {
    const text = out.subarray(from).toString('latin1');
    const end = text.lastIndexOf('\r\nOK\r\n');
    return text.startsWith('\r\nCONNECT\r\n') && end > 0 ? text.slice(0, end + 6) : undefined;
  }, 5000, `the answer to ${line}`);
}

/** Writes data after CONNECT and resolves with what follows up to the final result code. */
async function write(data: Buffer | string): Promise<string> {
  const from = out.length;
  modem.feed(Buffer.isBuffer(data) ? data : Buffer.from(data, 'latin1'));
  return until(() => answerSince(from), 5000, 'the answer to the data');
}

/** Waits for a URC line starting with `prefix` after offset `from`; resolves with the line. */
async function urc(prefix: string, from: number, ms = 5000): Promise<string> {
  return until(() => {
    const text = out.subarray(from).toString('latin1');
    const m = new RegExp(`\\r\\n(\\${prefix}[^\\r]*)\\r\\n`).exec(text);
    return m ? m[1] : undefined;
  }, ms, `${prefix} URC in ${JSON.stringify(out.subarray(from).toString('latin1'))}`);
}

/** Sends AT+QHTTPURL with `url`: CONNECT, the bytes, OK. */
async function setUrl(url: string): Promise<void> {
  expect(await at(`AT+QHTTPURL=${url.length},10`)).toBe('\r\nCONNECT\r\n');
  expect(await write(url)).toBe(OK);
}

/** A GET in request-header mode through the proxy; resolves with the +QHTTPGET line. */
async function proxiedGet(target: string, opts: { originForm?: boolean } = {}): Promise<string> {
  const u = new URL(target);
  const requestTarget = opts.originForm ? u.pathname : target;
  const request = `GET ${requestTarget} HTTP/1.1\r\nHost: ${u.host}\r\nAccept: application/vnd.wap.mms-message\r\n\r\n`;
  await setUrl(proxy);
  expect(await at(`AT+QHTTPGET=10,${request.length}`)).toBe('\r\nCONNECT\r\n');
  const from = out.length;
  expect(await write(request)).toBe(OK);
  return urc('+QHTTPGET:', from);
}

/** AT+QHTTPREADFILE: OK at once, then +QHTTPREADFILE: <err>; resolves with the error and the OK's position. */
async function readFile(name: string, waitS = 10): Promise<{ err: number; okAt: number; urcAt: number }> {
  const from = out.length;
  const answer = await at(`AT+QHTTPREADFILE="${name}",${waitS}`);
  expect(answer.startsWith(OK)).toBe(true);
  const line = await urc('+QHTTPREADFILE:', from, (waitS + 5) * 1000);
  const text = out.subarray(from).toString('latin1');
  return { err: Number(line.split(': ')[1]), okAt: text.indexOf(OK), urcAt: text.indexOf('+QHTTPREADFILE:') };
}

/** AT+QFDWL: CONNECT, exactly `size` bytes, "\r\n+QFDWL: <size>,<checksum>\r\n", OK. */
async function download(name: string, size: number): Promise<{ data: Buffer; size: number; checksum: string }> {
  const from = out.length;
  modem.feed(Buffer.from(`AT+QFDWL="${name}"\r`, 'latin1'));
  const connect = Buffer.from('\r\nCONNECT\r\n');
  await until(() => out.length >= from + connect.length + size && /\+QFDWL: [^\r]*\r\n\r\nOK\r\n$/.test(out.subarray(from).toString('latin1')), 5000, 'the download');
  const got = out.subarray(from);
  expect(got.subarray(0, connect.length)).toEqual(connect);
  const data = Buffer.from(got.subarray(connect.length, connect.length + size));
  const trailer = got.subarray(connect.length + size).toString('latin1');
  const m = /^\r\n\+QFDWL: (\d+),([0-9a-f]+)\r\n\r\nOK\r\n$/.exec(trailer);
  if (!m) throw new Error(`unexpected QFDWL trailer ${JSON.stringify(trailer)}`);
  return { data, size: Number(m[1]), checksum: m[2] };
}

/** The notifications in the SMS store, decoded (each push reassembled). */
function storedNotifications() {
  const sms = modem.state().sms.stores.ME.messages.map((s) => decodeSmsPdu(s.pdu) as SmsDeliver);
  const segments = sms.map((s) => segmentOf(s));
  const bodies = segments.every((s) => s === undefined) ? sms.map((s) => s.data) : reassemble(segments.map((s) => s!)).map((set) => (set.complete ? set.data : Buffer.alloc(0)));
  return bodies.map((b) => decodeNotificationInd(decodeWspPush(b).body));
}

beforeEach(async () => {
  out = Buffer.alloc(0);
  mmsc = new LoopbackMmsc({ logger });
  const { url } = await mmsc.start();
  proxy = `${new URL(url).origin}/`;
  modem = new VirtualModem({ logger, bootMs: 10 });
  modem.on('data', (b: Buffer) => (out = Buffer.concat([out, b])));
  mmsc.setPushTarget((pdu, segments) => modem.deliverPush(pdu, segments !== undefined ? { segments } : {}));
  modem.start();
  expect(await at('ATE0')).toContain(OK);
  expect(await at('AT+QICSGP=1,1,"mms","","",0')).toBe(OK);
  expect(await at('AT+QIACT=1')).toBe(OK);
  expect(await at('AT+QHTTPCFG="contextid",1')).toBe(OK);
  expect(await at('AT+QHTTPCFG="requestheader",1')).toBe(OK);
});

afterEach(async () => {
  modem.stop();
  await mmsc.stop();
});

describe('the fetch of DESIGN.md §12 through the proxy', () => {
  it('returns the M-Retrieve.conf bytes through READFILE and QFDWL with the QFUPL checksum, and records the NotifyResp', async () => {
    const receipt = mmsc.receive(MESSAGE);
    const [notification] = storedNotifications();
    expect(notification).toMatchObject({ transactionId: receipt.transactionId, contentLocation: receipt.contentLocation, messageSize: receipt.size, subject: '你好，世界' });

    expect(await proxiedGet(notification.contentLocation)).toBe(`+QHTTPGET: 0,200,${receipt.size}`);
    const rf = await readFile('RAM:mms.pdu');
    expect(rf.err).toBe(0);
    expect(rf.okAt).toBe(0);
    expect(rf.urcAt).toBeGreaterThan(rf.okAt);
    expect(await at('AT+QFLST="RAM:mms.pdu"')).toBe(`\r\n+QFLST: "RAM:mms.pdu",${receipt.size}\r\n${OK}`);

    const dl = await download('RAM:mms.pdu', receipt.size);
    expect(dl.size).toBe(receipt.size);
    expect(dl.checksum).toBe(checksum16(dl.data).toString(16));
    const conf = decodeRetrieveConf(dl.data);
    expect(conf).toMatchObject({ transactionId: receipt.transactionId, messageId: receipt.messageId, from: '+8613800138000', subject: '你好，世界', start: '<smil>' });
    expect(conf.parts.map((p) => [p.name, p.contentType, p.charset])).toEqual([
      ['smil.smil', 'application/smil', 'utf-8'],
      ['t.txt', 'text/plain', 'utf-8'],
      ['p.jpg', 'image/jpeg', undefined],
    ]);
    expect(conf.parts.map((p) => p.data)).toEqual(MESSAGE.parts.map((p) => p.data));
    expect(await at('AT+QFDEL="RAM:mms.pdu"')).toBe(OK);

    const resp = encodeNotifyRespInd({ transactionId: receipt.transactionId, mmsVersion: '1.2', status: 'retrieved', reportAllowed: true });
    const mmscUrl = `${proxy}mms`;
    const post = Buffer.concat([
      Buffer.from(`POST ${mmscUrl} HTTP/1.1\r\nHost: ${new URL(mmscUrl).host}\r\nContent-Type: application/vnd.wap.mms-message\r\nContent-Length: ${resp.length}\r\n\r\n`),
      resp,
    ]);
    await setUrl(proxy);
    expect(await at(`AT+QHTTPPOST=${post.length},10,10`)).toBe('\r\nCONNECT\r\n');
    const from = out.length;
    expect(await write(post)).toBe(OK);
    expect(await urc('+QHTTPPOST:', from)).toBe('+QHTTPPOST: 0,200,0');
    expect(mmsc.receivedAcks()).toMatchObject([{ type: 'notifyresp', transactionId: receipt.transactionId, status: 'retrieved', reportAllowed: true, id: receipt.id, target: mmscUrl }]);
  });

  it('splits a notification that does not fit one SMS, and announces a smaller size when told', () => {
    mmsc.receive({ ...MESSAGE, subject: 'x'.repeat(150), announcedSize: 100 });
    expect(modem.state().sms.stores.ME.messages.length).toBeGreaterThan(1);
    const [n] = storedNotifications();
    expect(n.messageSize).toBe(100);
    expect(mmsc.inboxEntries()[0].size).toBeGreaterThan(100);
  });
});

describe('what the module and the MMSC refuse', () => {
  it('answers AT+QHTTPCFG="proxy" with +CME ERROR: 730, and shows its settings', async () => {
    expect(await at('AT+QHTTPCFG="proxy","10.0.0.1",8080')).toBe('\r\n+CME ERROR: 730\r\n');
    expect(await at('AT+QHTTPCFG="requestheader"')).toBe(`\r\n+QHTTPCFG: "requestheader",1\r\n${OK}`);
    expect(await at('AT+QHTTPCFG="responseheader",2')).toBe('\r\n+CME ERROR: 730\r\n');
    expect(await at('AT+QHTTPCFG?')).toBe(
      `\r\n+QHTTPCFG: "contextid",1\r\n+QHTTPCFG: "requestheader",1\r\n+QHTTPCFG: "responseheader",0\r\n+QHTTPCFG: "contenttype",0\r\n${OK}`,
    );
  });

  it('needs the data length in request-header mode, and a URL first', async () => {
    expect(await at('AT+QHTTPGET=10')).toBe('\r\n+CME ERROR: 730\r\n');
    expect(await at('AT+QHTTPGET=10,40')).toBe('\r\n+CME ERROR: 712\r\n');
    expect(await at('AT+QHTTPREAD=10')).toBe('\r\n+CME ERROR: 705\r\n');
    expect(await at('AT+QHTTPURL=8,10')).toBe('\r\nCONNECT\r\n');
    expect(await write('ftp://xy')).toBe('\r\n+CME ERROR: 711\r\n');
  });

  it('refuses a content request in origin form (4xx), which QHTTPREAD then shows', async () => {
    const receipt = mmsc.receive(MESSAGE);
    expect(await proxiedGet(receipt.contentLocation, { originForm: true })).toBe('+QHTTPGET: 0,400,27');
    const from = out.length;
    expect(await read('AT+QHTTPREAD=10')).toBe('\r\nCONNECT\r\nabsolute URI (proxy) only\r\n\r\nOK\r\n');
    expect(await urc('+QHTTPREAD:', from)).toBe('+QHTTPREAD: 0');
    expect(mmsc.inboxEntries()[0].served).toBe(0);
  });

  it('sends a plain GET of the URL itself without request-header mode (QHTTPREAD with the response header)', async () => {
    const receipt = mmsc.receive(MESSAGE);
    expect(await at('AT+QHTTPCFG="requestheader",0')).toBe(OK);
    expect(await at('AT+QHTTPCFG="responseheader",1')).toBe(OK);
    await setUrl(receipt.contentLocation);
    const from = out.length;
    expect(await at('AT+QHTTPGET=10')).toBe(OK);
    expect(await urc('+QHTTPGET:', from)).toBe('+QHTTPGET: 0,400,27');
    const answer = await read('AT+QHTTPREAD');
    expect(answer).toMatch(/^\r\nCONNECT\r\nHTTP\/1\.1 400 Bad Request\r\n[^]*\r\n\r\nabsolute URI \(proxy\) only\r\n\r\nOK\r\n$/);
  });

  it('reports 709 when the PDP context is not active, and ends a request whose context drops', async () => {
    const receipt = mmsc.receive(MESSAGE);
    expect(await at('AT+QIDEACT=1')).toBe(OK);
    expect(await proxiedGet(receipt.contentLocation)).toBe('+QHTTPGET: 709');
    expect(await at('AT+QHTTPREADFILE="RAM:x",5')).toBe('\r\n+CME ERROR: 705\r\n');

    // A server that takes the request and never answers: the context drops under it.
    let connections = 0;
    const silent = net.createServer((sock) => {
      connections++;
      sock.on('error', () => undefined);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      expect(await at('AT+QIACT=1')).toBe(OK);
      expect(await at('AT+QHTTPCFG="requestheader",0')).toBe(OK);
      await setUrl(`http://127.0.0.1:${(silent.address() as net.AddressInfo).port}/x`);
      let from = out.length;
      expect(await at('AT+QHTTPGET=30')).toBe(OK);
      await until(() => modem.state().http.request?.status === null && connections > 0, 5000, 'the connection');
      expect(await at('AT+QHTTPCFG="contenttype",1')).toBe('\r\n+CME ERROR: 703\r\n');
      modem.dropPdp(1);
      expect(await urc('+QHTTPGET:', from)).toBe('+QHTTPGET: 709');
      // And with the context up, no head within <rsptime>: 702.
      expect(await at('AT+QIACT=1')).toBe(OK);
      from = out.length;
      expect(await at('AT+QHTTPGET=1')).toBe(OK);
      expect(await urc('+QHTTPGET:', from)).toBe('+QHTTPGET: 702');
    } finally {
      silent.close();
    }
    expect(connections).toBe(2);
  });

  it('names the HTTP(S) errors with AT+CMEE=2', async () => {
    expect(await at('AT+CMEE=2')).toBe(OK);
    expect(await at('AT+QHTTPCFG="proxy","10.0.0.1",8080')).toBe('\r\n+CME ERROR: Invalid parameter\r\n');
    expect(await at('AT+QHTTPREAD')).toBe('\r\n+CME ERROR: HTTP(S) no GET/POST requests\r\n');
  });

  it('answers QFDWL of a missing file with 405 and READFILE onto an existing name with 407', async () => {
    expect(await at('AT+QFDWL="RAM:none"')).toBe('\r\n+CME ERROR: 405\r\n');
    const receipt = mmsc.receive(MESSAGE);
    expect(await at('AT+QFUPL="RAM:taken",1,5')).toBe('\r\nCONNECT\r\n');
    expect(await write('z')).toContain(OK);
    expect(await proxiedGet(receipt.contentLocation)).toBe(`+QHTTPGET: 0,200,${receipt.size}`);
    expect(await at('AT+QHTTPREADFILE="RAM:taken",5')).toBe('\r\n+CME ERROR: 407\r\n');
  });
});

describe('inbox faults', () => {
  it('answers 404 and 503 without a body, and 404 for content that never appears', async () => {
    const receipt = mmsc.receive(MESSAGE);
    mmsc.setInboxFaults({ httpStatus: 404, count: 1 });
    expect(await proxiedGet(receipt.contentLocation)).toBe('+QHTTPGET: 0,404,0');
    mmsc.setInboxFaults({ httpStatus: 503, count: 1 });
    expect(await proxiedGet(receipt.contentLocation)).toBe('+QHTTPGET: 0,503,0');
    expect(await proxiedGet(receipt.contentLocation)).toBe(`+QHTTPGET: 0,200,${receipt.size}`);
    const ghost = mmsc.receive({ ...MESSAGE, contentNeverAppears: true });
    expect(await proxiedGet(ghost.contentLocation)).toBe('+QHTTPGET: 0,404,0');
  });

  it('answers an expired message with an M-Retrieve.conf of status Error-permanent-message-not-found', async () => {
    const receipt = mmsc.receive({ ...MESSAGE, expirySeconds: 0 });
    const head = await proxiedGet(receipt.contentLocation);
    const size = Number(head.split(',')[2]);
    expect(head).toMatch(/^\+QHTTPGET: 0,200,\d+$/);
    expect((await readFile('RAM:gone')).err).toBe(0);
    const conf = decodeRetrieveConf((await download('RAM:gone', size)).data);
    expect(conf).toMatchObject({ transactionId: receipt.transactionId, retrieveStatus: 0xe2, retrieveText: 'message expired', parts: [] });
  });

  it('ends a READFILE of a slow body with 722 when its wait time passes', async () => {
    const receipt = mmsc.receive(MESSAGE);
    mmsc.setInboxFaults({ slowBodyMs: 4000 });
    expect(await proxiedGet(receipt.contentLocation)).toBe(`+QHTTPGET: 0,200,${receipt.size}`);
    const rf = await readFile('RAM:slow', 1);
    expect(rf.err).toBe(722);
    expect(modem.ramFile('RAM:slow')!.length).toBeLessThan(receipt.size);
  });

  it('reads a slow body whole when the wait is long enough', async () => {
    const receipt = mmsc.receive(MESSAGE);
    mmsc.setInboxFaults({ slowBodyMs: 500 });
    expect(await proxiedGet(receipt.contentLocation)).toBe(`+QHTTPGET: 0,200,${receipt.size}`);
    expect((await readFile('RAM:slow', 10)).err).toBe(0);
    expect(modem.ramFile('RAM:slow')!.length).toBe(receipt.size);
  });

  it('ends a READFILE of a connection dropped mid-body with 719, keeping what arrived', async () => {
    const receipt = mmsc.receive(MESSAGE);
    mmsc.setInboxFaults({ dropAfterBytes: 50 });
    expect(await proxiedGet(receipt.contentLocation)).toBe(`+QHTTPGET: 0,200,${receipt.size}`);
    expect((await readFile('RAM:cut')).err).toBe(719);
    expect(modem.ramFile('RAM:cut')!.length).toBe(50);
  });
});

describe('the control API of the inbox', () => {
  let control: ControlServer;
  let base: string;
  const call = async (route: string, body?: unknown): Promise<{ status: number; json: unknown }> => {
    const res = await fetch(`${base}${route}`, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, json: await res.json() };
  };

  beforeEach(async () => {
    control = new ControlServer({ host: '127.0.0.1', port: 0, logger, modem, mmsc });
    base = (await control.start()).url;
  });

  afterEach(async () => {
    await control.stop();
  });

  it('takes a message by POST /receive (parts in base64), lists it, and applies inbox faults', async () => {
    const sample = sampleInboundRequest();
    const body = { ...sample, to: ['+491709999'], expirySeconds: 600, parts: sample.parts.map((p) => ({ ...p, data: p.data.toString('base64') })) };
    const r = await call('/receive', body);
    expect(r).toMatchObject({ status: 200, json: { ok: true, announcedSize: expect.any(Number) as number } });
    const receipt = r.json as { id: string; contentLocation: string; size: number; transactionId: string };
    expect(storedNotifications()).toMatchObject([{ transactionId: receipt.transactionId, contentLocation: receipt.contentLocation, subject: '门口的照片' }]);
    expect((await call('/inbox')).json).toMatchObject([{ id: receipt.id, from: '+8613800138000', served: 0 }]);

    expect(await call('/fault', { inbox: { httpStatus: 500, count: 1 } })).toEqual({ status: 200, json: { ok: true } });
    expect(await proxiedGet(receipt.contentLocation)).toBe('+QHTTPGET: 0,500,0');
    expect(await proxiedGet(receipt.contentLocation)).toBe(`+QHTTPGET: 0,200,${receipt.size}`);
    expect((await readFile('RAM:s.mms')).err).toBe(0);
    const conf = decodeRetrieveConf((await download('RAM:s.mms', receipt.size)).data);
    expect(conf.to).toEqual(['+491709999']);
    expect(conf.parts.map((p) => p.data)).toEqual(sample.parts.map((p) => p.data));
    expect((await call('/received-acks')).json).toEqual([]);
  });

  it('names what is wrong in a bad /receive or inbox fault, and stores nothing', async () => {
    expect(await call('/receive', { from: '+4917', parts: [] })).toEqual({ status: 400, json: { error: 'parts must be a non-empty array' } });
    expect(await call('/receive', { from: 'x y', parts: [{ name: 'a', contentType: 'text/plain', data: '' }] })).toEqual({ status: 400, json: { error: 'from must be a phone number or e-mail address' } });
    expect(await call('/receive', { from: '+4917', parts: [{ name: 'a', contentType: 'text/plain', data: '%%' }] })).toEqual({ status: 400, json: { error: 'parts[0].data must be base64' } });
    expect(await call('/receive', { from: '+4917', colour: 1, parts: [] })).toEqual({ status: 400, json: { error: 'unknown key "colour"' } });
    expect(await call('/fault', { inbox: { slow: 1 } })).toEqual({ status: 400, json: { error: 'unknown inbox fault "slow"' } });
    expect((await call('/inbox')).json).toEqual([]);
    expect(modem.state().sms.stores.ME.messages).toEqual([]);
  });
});
