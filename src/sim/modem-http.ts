// The virtual module's HTTP(S) stack (Quectel EC2x HTTP(S) AT Commands Manual; DESIGN.md §12
// "Fetching"): AT+QHTTPCFG, AT+QHTTPURL, AT+QHTTPGET, AT+QHTTPPOST, AT+QHTTPREAD and
// AT+QHTTPREADFILE, on a PDP context of the network capability, with bodies saved into the RAM store
// of the files capability. Connections are real TCP connections to the host and port of the URL
// set by AT+QHTTPURL (http-exchange.ts). In request-header mode the host writes the whole request
// (request line, headers, a POST's body) and the module sends exactly those bytes: pointing the URL
// at an MMS proxy and writing an absolute URI in the request line is how the host reaches an MMSC
// through a proxy, since the module has no proxy setting.
//
// What real modules do that the manuals leave out (public code that drives EC20/EC25):
// - AT+QHTTPCFG="proxy" answers +CME ERROR: 730;
// - in request-header mode AT+QHTTPGET needs its <data_length> (else 730 here);
// - AT+QHTTPREADFILE answers OK before the file is written; +QHTTPREADFILE: <err> says when it is.
// Choices where the manuals are silent (docs/sim.md): parameter, URL and state errors answer
// +CME ERROR at once; what the network does (no context, no connection, no answer in time) comes
// as the <err> of the result code. A body cut short leaves what arrived in the file.
import type { Logger } from 'pino';
import { intParam, isOmitted, type ParsedCommand } from './at-parser.js';
import { HTTP_ERR } from './cme-codes.js';
import { HttpExchange } from './http-exchange.js';
import { cme, error, ok, type Capability, type CommandTable, type DataSink, type ModuleCore, type Reply } from './modem-capability.js';
import type { ModemFiles } from './modem-files.js';
import type { ModemNetwork } from './modem-network.js';
import { FILE_ERR, isValidRamName, normalizeRamName } from './ram-files.js';

export interface ModemHttpOptions {
  network: ModemNetwork;
  files: ModemFiles;
}

/** AT+QHTTPCFG settings (lost on restart). */
export interface HttpConfig {
  contextId: number;
  requestHeader: number;
  responseHeader: number;
  contentType: number;
}

/** What GET /state shows of the HTTP side. */
export interface HttpState {
  config: HttpConfig;
  url: string;
  /** The request in flight or whose response waits to be read. */
  request: { method: 'GET' | 'POST'; status: number | null; bodyBytes: number; result: number | null } | null;
  /** Requests sent since start, each as the module wrote it on the connection. */
  requests: number;
}

/** "contenttype" values of the manual, 0..5. */
const CONTENT_TYPES = ['application/x-www-form-urlencoded', 'text/plain', 'application/octet-stream', 'multipart/form-data', 'application/json', 'image/jpeg'];
const MAX_URL = 700;
const MAX_DATA = 1024 * 1024;
const DEFAULT_WAIT_S = 60;

function defaultConfig(): HttpConfig {
  return { contextId: 1, requestHeader: 0, responseHeader: 0, contentType: 0 };
}

/** Bytes the host writes after CONNECT, up to `size`, within `timeoutMs`. */
interface Input {
  size: number;
  buf: Buffer;
  received: number;
  timer: unknown;
  done: (data: Buffer) => Reply;
}

interface Request {
  method: 'GET' | 'POST';
  exchange: HttpExchange | undefined;
  /** Set when the request failed before a connection (no context, bad URL). */
  failed?: number;
}

export class ModemHttp implements Capability {
  readonly name = 'http';
  readonly commands: CommandTable;
  private readonly log: Logger;
  private config = defaultConfig();
  private url = '';
  private input: Input | undefined;
  private request: Request | undefined;
  private requests = 0;
  private readonly sink: DataSink = { byte: (b) => this.inputByte(b) };
  /** Output in data mode (QHTTPREAD): the host's bytes are ignored meanwhile. */
  private readonly deaf: DataSink = { byte: () => undefined };

  constructor(
    private readonly core: ModuleCore,
    private readonly opts: ModemHttpOptions,
  ) {
    this.log = core.log.child({ cap: 'http' });
    this.commands = {
      '+QHTTPCFG': (c) => this.cmdCfg(c),
      '+QHTTPURL': (c) => this.cmdUrl(c),
      '+QHTTPGET': (c) => this.cmdGet(c),
      '+QHTTPPOST': (c) => this.cmdPost(c),
      '+QHTTPREAD': (c) => this.cmdRead(c),
      '+QHTTPREADFILE': (c) => this.cmdReadFile(c),
    };
    // The context under a request goes down: the request ends with 709.
    opts.network.onContextDown((ctx) => {
      if (ctx !== this.config.contextId) return;
      this.request?.exchange?.abort(HTTP_ERR.networkDeactivated);
    });
  }

  reset(): void {
    this.config = defaultConfig();
    this.url = '';
    this.dropRequest();
  }

  halt(): void {
    this.input = undefined;
    this.dropRequest();
  }

  state(): HttpState {
    const r = this.request;
    return {
      config: { ...this.config },
      url: this.url,
      request: r
        ? {
            method: r.method,
            status: r.exchange?.head?.status ?? null,
            bodyBytes: r.exchange?.bodyBytes ?? 0,
            result: r.failed ?? r.exchange?.result ?? null,
          }
        : null,
      requests: this.requests,
    };
  }

  private dropRequest(): void {
    this.request?.exchange?.abort(HTTP_ERR.unknown);
    this.request = undefined;
  }

  // ── AT+QHTTPCFG ──

  private cmdCfg(c: ParsedCommand): Reply {
    const cfg = this.config;
    if (c.form === 'test') {
      return ok([
        '+QHTTPCFG: "contextid",(1-16)',
        '+QHTTPCFG: "requestheader",(0,1)',
        '+QHTTPCFG: "responseheader",(0,1)',
        '+QHTTPCFG: "contenttype",(0-5)',
      ]);
    }
    if (c.form === 'query') {
      return ok([
        `+QHTTPCFG: "contextid",${cfg.contextId}`,
        `+QHTTPCFG: "requestheader",${cfg.requestHeader}`,
        `+QHTTPCFG: "responseheader",${cfg.responseHeader}`,
        `+QHTTPCFG: "contenttype",${cfg.contentType}`,
      ]);
    }
    if (c.form !== 'set') return error();
    const bad = cme(HTTP_ERR.invalidParameter);
    const sub = c.params[0]?.value.toLowerCase() ?? '';
    const args = c.params.slice(1);
    if (args.length > 1) return bad;
    const v = args.length === 1 ? intParam(args[0]) : undefined;
    const setting = (key: 'contextId' | 'requestHeader' | 'responseHeader' | 'contentType', min: number, max: number): Reply => {
      if (args.length === 0) return ok([`+QHTTPCFG: "${sub}",${cfg[key]}`]);
      if (v === undefined || v < min || v > max) return bad;
      if (this.request && !this.settled()) return cme(HTTP_ERR.busy);
      cfg[key] = v;
      return ok();
    };
    switch (sub) {
      case 'contextid':
        return setting('contextId', 1, 16);
      case 'requestheader':
        return setting('requestHeader', 0, 1);
      case 'responseheader':
        return setting('responseHeader', 0, 1);
      case 'contenttype':
        return setting('contentType', 0, CONTENT_TYPES.length - 1);
      default:
        // "proxy" among them: EC2x firmware has no proxy for its HTTP stack and answers 730.
        return bad;
    }
  }

  /** The request's result is known (its response complete or failed), so a new one may start. */
  private settled(): boolean {
    const r = this.request;
    if (!r) return true;
    return r.failed !== undefined || r.exchange?.result !== undefined;
  }

  // ── input after CONNECT (URL, request, POST body) ──

  private readInput(size: number, timeoutS: number, done: (data: Buffer) => Reply): Reply {
    return {
      lines: [],
      final: 'CONNECT',
      after: () => {
        this.core.enterDataMode(this.sink);
        const input: Input = { size, buf: Buffer.alloc(size), received: 0, timer: undefined, done };
        input.timer = this.core.after(timeoutS * this.core.secondMs, () => {
          if (this.input !== input) return;
          this.input = undefined;
          this.log.info({ received: input.received, size }, 'input timed out');
          this.core.leaveDataMode(cme(HTTP_ERR.inputTimeout));
        });
        this.input = input;
      },
    };
  }

  private inputByte(b: number): void {
    const input = this.input;
    if (!input) return;
    input.buf[input.received++] = b;
    if (input.received < input.size) return;
    this.core.cancel(input.timer);
    this.input = undefined;
    const reply = input.done(input.buf);
    this.core.leaveDataMode(reply);
    reply.after?.();
  }

  // ── AT+QHTTPURL=<len>[,<timeout>] ──

  private cmdUrl(c: ParsedCommand): Reply {
    if (c.form === 'test') return ok([`+QHTTPURL: (1-${MAX_URL}),(1-65535)`]);
    if (c.form === 'query') return ok(this.url === '' ? [] : [`+QHTTPURL: ${this.url}`]);
    if (c.form !== 'set' || c.params.length > 2) return error();
    const len = intParam(c.params[0]);
    const timeoutS = isOmitted(c.params[1]) ? DEFAULT_WAIT_S : intParam(c.params[1]);
    if (len === undefined || len < 1 || len > MAX_URL || timeoutS === undefined || timeoutS < 1 || timeoutS > 65535) {
      return cme(HTTP_ERR.invalidParameter);
    }
    if (!this.settled()) return cme(HTTP_ERR.busy);
    return this.readInput(len, timeoutS, (data) => {
      const url = data.toString('latin1');
      if (!/^https?:\/\/[^\s/?#]+/i.test(url) || !URL.canParse(url)) return cme(HTTP_ERR.urlError);
      this.url = url;
      return ok();
    });
  }

  // ── AT+QHTTPGET=<rsptime>[,<data_length>[,<input_time>]] ──

  private cmdGet(c: ParsedCommand): Reply {
    if (c.form === 'test') return ok(['+QHTTPGET: (1-65535),(1-1048576),(1-65535)']);
    if (c.form !== 'set' && c.form !== 'exec') return error();
    if (c.params.length > 3) return cme(HTTP_ERR.invalidParameter);
    const rspS = isOmitted(c.params[0]) ? DEFAULT_WAIT_S : intParam(c.params[0]);
    const dataLen = isOmitted(c.params[1]) ? undefined : intParam(c.params[1]);
    const inputS = isOmitted(c.params[2]) ? DEFAULT_WAIT_S : intParam(c.params[2]);
    if (rspS === undefined || rspS < 1 || rspS > 65535 || inputS === undefined || inputS < 1 || inputS > 65535) return cme(HTTP_ERR.invalidParameter);
    if (!isOmitted(c.params[1]) && (dataLen === undefined || dataLen < 1 || dataLen > MAX_DATA)) return cme(HTTP_ERR.invalidParameter);
    // Request-header mode: the request comes from the host, so its length is needed; otherwise none is taken.
    if ((this.config.requestHeader === 1) !== (dataLen !== undefined)) return cme(HTTP_ERR.invalidParameter);
    const refused = this.refuseRequest();
    if (refused) return refused;
    if (dataLen === undefined) return ok([], () => this.start('GET', this.plainRequest('GET'), rspS));
    return this.readInput(dataLen, inputS, (data) => ok([], () => this.start('GET', data, rspS)));
  }

  // ── AT+QHTTPPOST=<data_length>[,<input_time>[,<rsptime>]] ──

  private cmdPost(c: ParsedCommand): Reply {
    if (c.form === 'test') return ok(['+QHTTPPOST: (1-1048576),(1-65535),(1-65535)']);
    if (c.form !== 'set' || c.params.length > 3) return cme(HTTP_ERR.invalidParameter);
    const dataLen = intParam(c.params[0]);
    const inputS = isOmitted(c.params[1]) ? DEFAULT_WAIT_S : intParam(c.params[1]);
    const rspS = isOmitted(c.params[2]) ? DEFAULT_WAIT_S : intParam(c.params[2]);
    if (dataLen === undefined || dataLen < 1 || dataLen > MAX_DATA) return cme(HTTP_ERR.invalidParameter);
    if (rspS === undefined || rspS < 1 || rspS > 65535 || inputS === undefined || inputS < 1 || inputS > 65535) return cme(HTTP_ERR.invalidParameter);
    const refused = this.refuseRequest();
    if (refused) return refused;
    return this.readInput(dataLen, inputS, (data) =>
      ok([], () => this.start('POST', this.config.requestHeader === 1 ? data : this.plainRequest('POST', data), rspS)),
    );
  }

  private refuseRequest(): Reply | undefined {
    if (this.url === '') return cme(HTTP_ERR.emptyUrl);
    if (!this.settled()) return cme(HTTP_ERR.busy);
    return undefined;
  }

  /** The request the module writes itself when the host gives no header (request-header mode off). */
  private plainRequest(method: 'GET' | 'POST', body?: Buffer): Buffer {
    const u = new URL(this.url);
    const lines = [`${method} ${u.pathname}${u.search} HTTP/1.1`, `Host: ${u.host}`, 'Accept: */*', 'User-Agent: QUECTEL_MODULE', 'Connection: Keep-Alive'];
    if (body) lines.push(`Content-Type: ${CONTENT_TYPES[this.config.contentType]}`, `Content-Length: ${body.length}`);
    return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body ?? Buffer.alloc(0)]);
  }

  /** Sends the request and reports +QHTTPGET/+QHTTPPOST: <err>[,<status>[,<length>]] when the head is in. */
  private start(method: 'GET' | 'POST', bytes: Buffer, rspS: number): void {
    this.dropRequest();
    const urc = `+QHTTP${method}`;
    const request: Request = { method, exchange: undefined };
    this.request = request;
    this.requests++;
    const fail = (code: number): void => {
      request.failed = code;
      this.core.urc(`${urc}: ${code}`);
    };
    if (!this.opts.network.isActive(this.config.contextId)) {
      fail(HTTP_ERR.networkDeactivated);
      return;
    }
    const u = new URL(this.url);
    if (u.protocol !== 'http:') {
      // The emulation has no TLS: an https:// URL fails as an unknown error (docs/sim.md).
      fail(HTTP_ERR.unknown);
      return;
    }
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const port = u.port === '' ? 80 : Number(u.port);
    this.log.debug({ method, host, port, bytes: bytes.length }, 'HTTP request');
    const exchange = new HttpExchange({ host, port, request: bytes, logger: this.log });
    request.exchange = exchange;
    const gen = this.core.generation;
    let reported = false;
    const timer = this.core.after(rspS * this.core.secondMs, () => {
      if (reported) return;
      reported = true;
      exchange.abort(HTTP_ERR.timeout);
      fail(HTTP_ERR.timeout);
    });
    exchange.onChange(() => {
      if (reported || gen !== this.core.generation || this.request !== request) return;
      const head = exchange.head;
      if (head) {
        reported = true;
        this.core.cancel(timer);
        this.core.urc(`${urc}: 0,${head.status}${head.contentLength !== undefined ? `,${head.contentLength}` : ''}`);
      } else if (exchange.result !== undefined) {
        reported = true;
        this.core.cancel(timer);
        fail(exchange.result === 0 ? HTTP_ERR.socketClosed : exchange.result);
      }
    });
  }

  /** The response to read: refused with 705 without a request whose head arrived. */
  private readable(): { request: Request; exchange: HttpExchange } | Reply {
    const r = this.request;
    if (!r || r.failed !== undefined || !r.exchange) return cme(HTTP_ERR.noRequest);
    if (!r.exchange.head) return cme(r.exchange.result === undefined ? HTTP_ERR.busy : HTTP_ERR.noRequest);
    return { request: r, exchange: r.exchange };
  }

  /** Resolves when the body is complete or failed, or after `waitS`: the <err> to report. */
  private bodyDone(exchange: HttpExchange, waitS: number, onData?: () => void): Promise<number> {
    return new Promise((resolve) => {
      const settle = (code: number): void => {
        this.core.cancel(timer);
        exchange.onChange(undefined);
        resolve(code);
      };
      const timer = this.core.after(waitS * this.core.secondMs, () => settle(HTTP_ERR.readTimeout));
      if (exchange.result !== undefined) {
        settle(exchange.result);
        return;
      }
      exchange.onChange(() => {
        onData?.();
        if (exchange.result !== undefined) settle(exchange.result);
      });
    });
  }

  /** What the module hands out of a response: the head too when "responseheader" is 1. */
  private output(exchange: HttpExchange, from = 0): Buffer {
    const body = exchange.body();
    const all = this.config.responseHeader === 1 && exchange.head ? Buffer.concat([exchange.head.raw, body]) : body;
    return all.subarray(from);
  }

  // ── AT+QHTTPREAD[=<wait_time>]: CONNECT, the body as it comes, OK, +QHTTPREAD: <err> ──

  private cmdRead(c: ParsedCommand): Reply {
    if (c.form === 'test') return ok(['+QHTTPREAD: (1-65535)']);
    if (c.form !== 'set' && c.form !== 'exec') return error();
    const waitS = isOmitted(c.params[0]) ? DEFAULT_WAIT_S : intParam(c.params[0]);
    if (c.params.length > 1 || waitS === undefined || waitS < 1 || waitS > 65535) return cme(HTTP_ERR.invalidParameter);
    const r = this.readable();
    if (!('exchange' in r)) return r;
    const { request, exchange } = r;
    return {
      lines: [],
      final: 'CONNECT',
      after: () => {
        const gen = this.core.generation;
        this.core.enterDataMode(this.deaf);
        let sent = 0;
        const flush = (): void => {
          const out = this.output(exchange, sent);
          sent += out.length;
          if (out.length > 0) this.core.write(out);
        };
        flush();
        void this.bodyDone(exchange, waitS, flush).then((err) => {
          if (gen !== this.core.generation) return;
          flush();
          if (this.request === request) this.request = undefined;
          exchange.abort(err);
          this.core.leaveDataMode(ok());
          this.core.urc(`+QHTTPREAD: ${err}`);
        });
      },
    };
  }

  // ── AT+QHTTPREADFILE=<filename>[,<wait_time>]: OK at once, the file, then +QHTTPREADFILE: <err> ──

  private cmdReadFile(c: ParsedCommand): Reply {
    if (c.form === 'test') return ok(['+QHTTPREADFILE: <filename>,(1-65535)']);
    if (c.form !== 'set' || c.params.length > 3 || !c.params[0]?.quoted) return cme(HTTP_ERR.invalidParameter);
    const name = c.params[0].value;
    const waitS = isOmitted(c.params[1]) ? DEFAULT_WAIT_S : intParam(c.params[1]);
    if (waitS === undefined || waitS < 1 || waitS > 65535) return cme(HTTP_ERR.invalidParameter);
    // The emulation keeps files in RAM only.
    if (!isValidRamName(name)) return cme(HTTP_ERR.invalidParameter);
    const key = normalizeRamName(name);
    if (this.opts.files.has(key)) return cme(FILE_ERR.fileExists);
    const r = this.readable();
    if (!('exchange' in r)) return r;
    const { request, exchange } = r;
    return ok([], () => {
      const gen = this.core.generation;
      void this.bodyDone(exchange, waitS).then((err) => {
        if (gen !== this.core.generation) return;
        if (this.request === request) this.request = undefined;
        exchange.abort(err);
        // What arrived is in the file, a body cut short included; only a full store keeps none.
        const stored = this.opts.files.store(key, this.output(exchange));
        const code = stored === 0 ? err : stored;
        this.log.debug({ file: key, size: exchange.bodyBytes, err: code }, 'HTTP body read into file');
        this.core.urc(`+QHTTPREADFILE: ${code}`);
      });
    });
  }
}
