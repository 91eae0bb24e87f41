// The module's HTTP client (src/modem/http.ts, DESIGN.md §12 "Fetching") against the scripted
// module: the command sequence, the request the host writes, the download of exactly the bytes
// stored, and a named error for every way it can fail.
import { describe, expect, it } from 'vitest';
import { checksum16 } from '../../src/at/checksum.js';
import { ClosedError, TimeoutError } from '../../src/at/errors.js';
import {
  DownloadChecksumError,
  HttpBodyError,
  HttpModuleError,
  HttpStatusError,
  MessageTooLargeError,
  QuectelHttp,
  parseHttpResult,
  parseHttpUrl,
  proxyUrl,
} from '../../src/modem/http.js';
import { InvalidArgumentError } from '../../src/modem/quote.js';
import { ModuleSession } from '../../src/modem/session.js';
import { ManualClock } from './manual-clock.js';
import { FakeAt, cme, deferred, silentLogger } from './modem-fake-at.js';

const LOCATION = 'http://mmsc.example:8002/mms/get?id=0042';
const PROXY = { host: '10.0.0.172', port: 80 };
const RAM = '"RAM:mmsd-retrieve.bin"';
// Bytes that look like the trailer and a final result: only the count may end the data.
const BODY = Buffer.concat([Buffer.from([0x8c, 0x84, 0x98]), Buffer.from('\r\nOK\r\n+QFDWL: 3,0\r\n', 'latin1'), Buffer.alloc(300, 0xa5)]);

interface Module {
  at: FakeAt;
  http: QuectelHttp;
  clock: ManualClock;
  session: ModuleSession;
}

/** A module that fetches `body` (announcing `announce` in +QHTTPGET) and posts with status 200. */
function module(
  body: Buffer = BODY,
  o: { get?: string; stored?: number; trailer?: string; readfile?: string | null; post?: string } = {},
): Module {
  const at = new FakeAt();
  const clock = new ManualClock();
  const later = (line: string): void => void Promise.resolve().then(() => at.urc(line));
  at.transfer('AT+QHTTPURL=', { afterSend: () => [] });
  at.transfer('AT+QHTTPGET=', {
    afterSend: () => {
      later(o.get ?? `+QHTTPGET: 0,200,${body.length}`);
      return [];
    },
  });
  at.transfer('AT+QHTTPPOST=', {
    afterSend: () => {
      later(o.post ?? '+QHTTPPOST: 0,200,0');
      return [];
    },
  });
  at.reply(`AT+QHTTPREADFILE=${RAM},120`, () => {
    if (o.readfile !== null) later(o.readfile ?? '+QHTTPREADFILE: 0');
    return [];
  });
  at.reply(`AT+QFLST=${RAM}`, [`+QFLST: ${RAM},${o.stored ?? body.length}`]);
  at.transfer('AT+QFDWL=', {
    download: { data: body, trailer: o.trailer ?? `\r\n+QFDWL: ${body.length},${checksum16(body).toString(16)}\r\n\r\nOK\r\n` },
  });
  const session = new ModuleSession();
  const http = new QuectelHttp({ at, logger: silentLogger, contextId: 1, timers: clock, session });
  return { at, http, clock, session };
}

const FETCH = [
  'AT+QHTTPCFG="contextid",1',
  'AT+QHTTPCFG="requestheader",1',
  'AT+QHTTPURL=21,10',
  `AT+QHTTPGET=60,${`GET ${LOCATION} HTTP/1.1\r\nHost: mmsc.example:8002\r\nAccept: application/vnd.wap.mms-message\r\n\r\n`.length}`,
  `AT+QHTTPREADFILE=${RAM},120`,
  `AT+QFLST=${RAM}`,
  `AT+QFDWL=${RAM}`,
  `AT+QFDEL=${RAM}`,
];

describe('QuectelHttp.fetch', () => {
  it('GETs the content location through the proxy in request-header mode and downloads exactly the stored bytes', async () => {
    const { at, http } = module();
    const got = await http.fetch(LOCATION, PROXY, { maxBytes: 10_000 });
    expect(got.equals(BODY)).toBe(true);
    expect(at.transcript).toEqual(FETCH);
    // §12: the module connects to the proxy; the request line names the content location.
    expect(at.uploads.map((u) => u.data.toString('latin1'))).toEqual([
      'http://10.0.0.172:80/',
      `GET ${LOCATION} HTTP/1.1\r\nHost: mmsc.example:8002\r\nAccept: application/vnd.wap.mms-message\r\n\r\n`,
      '',
    ]);
  });

  it('connects to the content location itself when there is no proxy', async () => {
    const { at, http } = module();
    await http.fetch(LOCATION, undefined, { maxBytes: 10_000 });
    expect(at.transcript[2]).toBe(`AT+QHTTPURL=${LOCATION.length},10`);
    expect(at.uploads[0].data.toString('latin1')).toBe(LOCATION);
  });

  it('takes the trailer with or without a CRLF before +QFDWL:', async () => {
    const trailer = `+QFDWL: ${BODY.length},${checksum16(BODY).toString(16)}\r\n\r\nOK\r\n`;
    const { http } = module(BODY, { trailer });
    expect((await http.fetch(LOCATION, PROXY, { maxBytes: 10_000 })).equals(BODY)).toBe(true);
  });

  it('takes the size from AT+QFLST when +QHTTPGET gives no length', async () => {
    const { at, http } = module(BODY, { get: '+QHTTPGET: 0,200' });
    expect((await http.fetch(LOCATION, PROXY, { maxBytes: 10_000 })).equals(BODY)).toBe(true);
    expect(at.transcript).toContain(`AT+QFDWL=${RAM}`);
  });

  it('waits for +QHTTPREADFILE after its OK before touching the file', async () => {
    const { at, http } = module(BODY, { readfile: null });
    const seen = deferred();
    at.reply(`AT+QHTTPREADFILE=${RAM},120`, () => {
      seen.resolve();
      return [];
    });
    const fetching = http.fetch(LOCATION, PROXY, { maxBytes: 10_000 });
    await seen.promise;
    for (let i = 0; i < 20; i++) await Promise.resolve();
    expect(at.transcript.at(-1)).toBe(`AT+QHTTPREADFILE=${RAM},120`);
    at.urc('+QHTTPREADFILE: 0');
    expect((await fetching).equals(BODY)).toBe(true);
    expect(at.transcript).toEqual(FETCH);
  });

  it.each([
    ['+QHTTPGET: 717', 717, 'HTTP(S) socket read error', false],
    ['+QHTTPGET: 714,0', 714, 'HTTP(S) DNS error', false],
    ['+QHTTPGET: 711', 711, 'HTTP(S) URL error', true],
  ])('names the module error of "%s" from the vendor table and reads nothing', async (line, code, name, permanent) => {
    const { at, http } = module(BODY, { get: line });
    const err = await http.fetch(LOCATION, PROXY, { maxBytes: 10_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpModuleError);
    expect(err).toMatchObject({ code, stage: 'get', permanent });
    expect((err as Error).message).toContain(name);
    expect(at.transcript.some((c) => c.startsWith('AT+QHTTPREADFILE'))).toBe(false);
  });

  it('names a +CME ERROR of the HTTP range the module answers instead of CONNECT', async () => {
    const { at, http } = module();
    at.transfer('AT+QHTTPGET=', cme(703));
    await expect(http.fetch(LOCATION, PROXY, { maxBytes: 10_000 })).rejects.toMatchObject({ name: 'HttpModuleError', code: 703, message: 'get: error 703 (HTTP(S) busy)' });
  });

  it.each([
    [404, true],
    [403, true],
    [408, false],
    [503, false],
  ])('fails HTTP %i with HttpStatusError (permanent: %s) before reading a body', async (status, permanent) => {
    const { at, http } = module(BODY, { get: `+QHTTPGET: 0,${status},120` });
    const err = await http.fetch(LOCATION, PROXY, { maxBytes: 10_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpStatusError);
    expect(err).toMatchObject({ httpStatus: status, permanent });
    expect(at.transcript.some((c) => c.startsWith('AT+QHTTPREADFILE'))).toBe(false);
  });

  it('refuses a body the length says is too large before reading it', async () => {
    const { at, http } = module();
    const err = await http.fetch(LOCATION, PROXY, { maxBytes: BODY.length - 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MessageTooLargeError);
    expect(err).toMatchObject({ name: 'MessageTooLarge', size: BODY.length, maxBytes: BODY.length - 1, permanent: true });
    expect(at.transcript.some((c) => c.startsWith('AT+QHTTPREADFILE'))).toBe(false);
  });

  it('refuses a stored body over the limit when no length was announced, and deletes it unread', async () => {
    const { at, http } = module(BODY, { get: '+QHTTPGET: 0,200' });
    await expect(http.fetch(LOCATION, PROXY, { maxBytes: 100 })).rejects.toBeInstanceOf(MessageTooLargeError);
    expect(at.transcript.slice(-2)).toEqual([`AT+QFLST=${RAM}`, `AT+QFDEL=${RAM}`]);
  });

  it('fails a body the module stored short of the announced length without downloading it', async () => {
    const { at, http } = module(BODY, { stored: 100 });
    await expect(http.fetch(LOCATION, PROXY, { maxBytes: 10_000 })).rejects.toThrow(HttpBodyError);
    expect(at.transcript.slice(-2)).toEqual([`AT+QFLST=${RAM}`, `AT+QFDEL=${RAM}`]);
  });

  it('fails a download whose checksum differs, and deletes the file', async () => {
    const { at, http } = module(BODY, { trailer: `\r\n+QFDWL: ${BODY.length},${(checksum16(BODY) ^ 1).toString(16)}\r\n\r\nOK\r\n` });
    const err = await http.fetch(LOCATION, PROXY, { maxBytes: 10_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadChecksumError);
    expect(err).toMatchObject({ permanent: false });
    expect(at.transcript.at(-1)).toBe(`AT+QFDEL=${RAM}`);
  });

  it('fails a +QHTTPREADFILE error by its name and deletes the file', async () => {
    const { at, http } = module(BODY, { readfile: '+QHTTPREADFILE: 722' });
    await expect(http.fetch(LOCATION, PROXY, { maxBytes: 10_000 })).rejects.toMatchObject({ name: 'HttpModuleError', stage: 'readfile', code: 722 });
    expect(at.transcript.at(-1)).toBe(`AT+QFDEL=${RAM}`);
  });

  it('gives up on a result URC that never comes, and on a port lost while waiting', async () => {
    const silent = module(BODY, { readfile: null });
    const fetching = silent.http.fetch(LOCATION, PROXY, { maxBytes: 10_000 }).catch((e: unknown) => e);
    await silent.clock.advance(0);
    await silent.clock.advance(135_000);
    expect(await fetching).toBeInstanceOf(TimeoutError);
    expect(silent.at.transcript.at(-1)).toBe(`AT+QFDEL=${RAM}`);

    const lost = module(BODY, { readfile: null });
    const reply = deferred();
    lost.at.reply(`AT+QHTTPREADFILE=${RAM},120`, () => {
      reply.resolve();
      return [];
    });
    const f2 = lost.http.fetch(LOCATION, PROXY, { maxBytes: 10_000 }).catch((e: unknown) => e);
    await reply.promise;
    await Promise.resolve();
    lost.at.disconnect();
    expect(await f2).toBeInstanceOf(ClosedError);
  });

  it.each([
    ['a CR LF', 'http://mmsc.example/a\r\nX-Evil: 1'],
    ['a quote', 'http://mmsc.example/a"b'],
    ['a space', 'http://mmsc.example/a b'],
    ['non-ASCII', 'http://mmsc.example/ä'],
    ['another scheme', 'ftp://mmsc.example/a'],
    ['https', 'https://mmsc.example/a'],
    ['user info', 'http://user@mmsc.example/a'],
    ['no host', 'http:///a'],
    ['a bad port', 'http://mmsc.example:99999/a'],
    ['too many bytes', `http://mmsc.example/${'a'.repeat(700)}`],
    ['nothing', ''],
  ])('refuses a content location with %s before writing anything', async (_what, url) => {
    const { at, http } = module();
    await expect(http.fetch(url, PROXY, { maxBytes: 10_000 })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(at.transcript).toEqual([]);
  });

  it.each([
    { host: '10.0.0.1"', port: 80 },
    { host: 'a b', port: 80 },
    { host: '', port: 80 },
    { host: 'x'.repeat(51), port: 80 },
    { host: '10.0.0.1', port: 0 },
    { host: '10.0.0.1', port: 80.5 },
  ])('refuses the proxy %o before writing anything', async (proxy) => {
    const { at, http } = module();
    await expect(http.fetch(LOCATION, proxy, { maxBytes: 10_000 })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(at.transcript).toEqual([]);
  });
});

describe('the HTTP settings the module keeps (ModuleSession)', () => {
  const CONFIG = ['AT+QHTTPCFG="contextid",1', 'AT+QHTTPCFG="requestheader",1'];

  it('two fetches in a row write AT+QHTTPCFG once; after a restart (RDY) it is written again', async () => {
    const { at, http, session } = module();
    await http.fetch(LOCATION, PROXY, { maxBytes: 10_000 });
    await http.fetch(LOCATION, PROXY, { maxBytes: 10_000 });
    expect(at.transcript).toEqual([...FETCH, ...FETCH.slice(2)]);
    await http.post('http://mmsc.example/mms', PROXY, Buffer.from('x'));
    expect(at.transcript.filter((c) => c.startsWith('AT+QHTTPCFG'))).toEqual(CONFIG);
    // RDY: the health monitor starts a new epoch; the module has its defaults again.
    session.reset();
    at.clear();
    await http.fetch(LOCATION, PROXY, { maxBytes: 10_000 });
    expect(at.transcript).toEqual(FETCH);
  });

  it('after the port was lost (forget) and after a request that failed other than by an answer, it is written again', async () => {
    const { at, http, session } = module();
    await http.fetch(LOCATION, PROXY, { maxBytes: 10_000 });
    session.forget();
    at.clear();
    await http.fetch(LOCATION, PROXY, { maxBytes: 10_000 });
    expect(at.transcript.slice(0, 2)).toEqual(CONFIG);

    // A download whose checksum is wrong: bytes were lost on the line; the settings are not trusted.
    const bad = module(BODY, { trailer: `+QFDWL: ${BODY.length},0\r\n\r\nOK\r\n` });
    await expect(bad.http.fetch(LOCATION, PROXY, { maxBytes: 10_000 })).rejects.toBeInstanceOf(DownloadChecksumError);
    bad.at.clear();
    await expect(bad.http.fetch(LOCATION, PROXY, { maxBytes: 10_000 })).rejects.toBeInstanceOf(DownloadChecksumError);
    expect(bad.at.transcript.slice(0, 2)).toEqual(CONFIG);

    // An HTTP status is an answer: the module holds its settings.
    const notFound = module(BODY, { get: '+QHTTPGET: 0,404' });
    await expect(notFound.http.fetch(LOCATION, PROXY, { maxBytes: 10_000 })).rejects.toBeInstanceOf(HttpStatusError);
    notFound.at.clear();
    await expect(notFound.http.fetch(LOCATION, PROXY, { maxBytes: 10_000 })).rejects.toBeInstanceOf(HttpStatusError);
    expect(notFound.at.transcript.some((c) => c.startsWith('AT+QHTTPCFG'))).toBe(false);
  });

  it('a setting the module refused is written again next time', async () => {
    const { at, http } = module();
    at.script('AT+QHTTPCFG="requestheader",1', cme(703), ['OK']);
    await expect(http.fetch(LOCATION, PROXY, { maxBytes: 10_000 })).rejects.toBeInstanceOf(HttpModuleError);
    at.clear();
    await http.fetch(LOCATION, PROXY, { maxBytes: 10_000 });
    expect(at.transcript).toEqual(FETCH);
  });
});

describe('QuectelHttp.post', () => {
  it('POSTs the body with its header through the proxy and answers the status', async () => {
    const { at, http } = module();
    const body = Buffer.from([0x8c, 0x83, 0x98, 0x41, 0x00, 0x8d, 0x92, 0x95, 0x81]);
    await expect(http.post('http://mmsc.example/mms', PROXY, body)).resolves.toEqual({ status: 200 });
    const header = 'POST http://mmsc.example/mms HTTP/1.1\r\nHost: mmsc.example\r\nContent-Type: application/vnd.wap.mms-message\r\nContent-Length: 9\r\n\r\n';
    expect(at.transcript).toEqual([
      'AT+QHTTPCFG="contextid",1',
      'AT+QHTTPCFG="requestheader",1',
      'AT+QHTTPURL=21,10',
      `AT+QHTTPPOST=${header.length + body.length},11,60`,
    ]);
    expect(at.uploads[1].data.equals(Buffer.concat([Buffer.from(header, 'latin1'), body]))).toBe(true);
  });

  it('fails an HTTP error status and a module error by name', async () => {
    await expect(module(BODY, { post: '+QHTTPPOST: 0,500' }).http.post('http://mmsc.example/mms', PROXY, Buffer.from('x'))).rejects.toMatchObject({
      name: 'HttpStatusError',
      httpStatus: 500,
      permanent: false,
    });
    await expect(module(BODY, { post: '+QHTTPPOST: 719' }).http.post('http://mmsc.example/mms', PROXY, Buffer.from('x'))).rejects.toMatchObject({
      name: 'HttpModuleError',
      code: 719,
      stage: 'post',
    });
  });
});

describe('the HTTP parsers', () => {
  it('reads +QHTTPGET with a bare error, with a status, and with a length', () => {
    expect(parseHttpResult('+QHTTPGET: 0,200,1234', '+QHTTPGET:')).toEqual({ err: 0, status: 200, length: 1234 });
    expect(parseHttpResult('+QHTTPGET: 0,200', '+QHTTPGET:')).toEqual({ err: 0, status: 200 });
    expect(parseHttpResult('+QHTTPGET: 702', '+QHTTPGET:')).toEqual({ err: 702 });
    expect(parseHttpResult('+QHTTPGET: x', '+QHTTPGET:')).toBeUndefined();
    expect(parseHttpResult('+QHTTPPOST: 0,200', '+QHTTPGET:')).toBeUndefined();
  });

  it('keeps the host and port of a URL, and builds the proxy URL', () => {
    expect(parseHttpUrl('http://10.1.2.3/x')).toEqual({ authority: '10.1.2.3', url: 'http://10.1.2.3/x' });
    expect(parseHttpUrl('http://[fe80::1]:8080/x?y=1')).toEqual({ authority: '[fe80::1]:8080', url: 'http://[fe80::1]:8080/x?y=1' });
    expect(proxyUrl({ host: 'wap.example', port: 8080 })).toBe('http://wap.example:8080/');
    expect(proxyUrl({ host: 'fe80::1', port: 80 })).toBe('http://[fe80::1]:80/');
  });
});
