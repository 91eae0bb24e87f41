// The module's HTTP client as MMS retrieval needs it (DESIGN.md §12 "Fetching"): GET a content
// location through the WAP proxy into module RAM, download it with AT+QFDWL (size and checksum
// checked), and POST an M-NotifyResp.ind. Quectel's HTTP(S) AT commands in request-header mode:
// the module has no proxy setting (`AT+QHTTPCFG="proxy"` answers 730), so the URL names the proxy
// and the request line the content location. URLs come from an SMS: nothing reaches the module
// unchecked.
import type { Logger } from 'pino';
import { checksum16 } from '../at/checksum.js';
import { AtError, ClosedError, CmeError, TimeoutError } from '../at/errors.js';
import type { AtCommander, DataModeProtocol, DataModeSession } from '../at/types.js';
import { HTTP_CODES } from '../core/errors.js';
import { fieldsOf, unquote } from './answers.js';
import { QuectelCommands } from './commands.js';
import { systemTimers, type ModemTimers } from './config.js';
import { InvalidArgumentError, int, quote } from './quote.js';
import type { HttpSettingsSession } from './session.js';
import { RESTART_URC } from './urcs.js';


/** Codes no retry can mend: the URL or a parameter is wrong. */
const PERMANENT_HTTP_CODES: ReadonlySet<number> = new Set([711, 712, 730]);

/** What the MMS user agent accepts and posts (OMA-MMS-ENC §4, WAP-230). */
export const MMS_CONTENT_TYPE = 'application/vnd.wap.mms-message';

/** The HTTP step a failure happened in. */
export type HttpStage = 'url' | 'get' | 'readfile' | 'download' | 'post';

/**
 * Every failure of a fetch or post carries `permanent`: true when trying again cannot help (the
 * inbound path fails the message), false when a later attempt may succeed (it backs off).
 */
export class HttpModuleError extends Error {
  override name = 'HttpModuleError';
  readonly permanent: boolean;
  constructor(
    readonly stage: HttpStage,
    /** The module's <err> (701–730). */
    readonly code: number,
  ) {
    super(`${stage}: error ${code} (${HTTP_CODES[code] ?? 'unknown code'})`);
    this.permanent = PERMANENT_HTTP_CODES.has(code);
  }
}

/** The server (or the proxy) answered an HTTP status >= 400. */
export class HttpStatusError extends Error {
  override name = 'HttpStatusError';
  readonly permanent: boolean;
  constructor(
    readonly stage: HttpStage,
    readonly httpStatus: number,
  ) {
    super(`${stage}: HTTP ${httpStatus}`);
    // DESIGN.md §12: a 4xx ends the message; 408 (request timeout) says nothing about it.
    this.permanent = httpStatus >= 400 && httpStatus < 500 && httpStatus !== 408;
  }
}

/** The message is larger than the caller allows: refused before (or instead of) reading it. */
export class MessageTooLargeError extends Error {
  override name = 'MessageTooLarge';
  readonly permanent = true;
  constructor(
    readonly size: number,
    readonly maxBytes: number,
  ) {
    super(`the message is ${size} bytes, more than the ${maxBytes} allowed`);
  }
}

/** The body the module holds is not what was announced or downloaded (a cut connection, a bad line). */
export class HttpBodyError extends Error {
  override name = 'HttpBodyError';
  readonly permanent = false;
}

/** The download's "+QFDWL: <size>,<checksum>" does not match the bytes read. */
export class DownloadChecksumError extends Error {
  override name = 'DownloadChecksumError';
  readonly permanent = false;
  constructor(
    readonly expected: { size: number; checksum: number },
    readonly reported: { size: number; checksum: number },
  ) {
    super(
      `download: module reported ${reported.size} bytes / ${reported.checksum.toString(16)}, ` +
        `read ${expected.size} bytes / ${expected.checksum.toString(16)}`,
    );
  }
}

/** The WAP proxy of the MMS APN (`mms.proxy.*`); the module connects to it. */
export interface HttpProxy {
  host: string;
  port: number;
}

export interface FetchOptions {
  /** Refuse a body larger than this, before it is read when the length says so (`inbound.maxMessageBytes`). */
  maxBytes: number;
}

export interface HttpDriverOptions {
  at: AtCommander;
  logger: Logger;
  /**
   * What the module holds (ModuleSession): the AT+QHTTPCFG settings are written only while it does
   * not hold them already; a restart (RDY) or a reconnect makes them be written again.
   */
  session: HttpSettingsSession;
  /** The PDP context of the MMS APN (`pdp.contextId`). */
  contextId: number;
  /** AT+QHTTPGET/QHTTPPOST <rsptime>: seconds the module waits for the server's answer. */
  responseTimeoutS?: number;
  /** AT+QHTTPREADFILE <wait_time>: seconds the module may take to store the body. */
  bodyTimeoutS?: number;
  /** Default per-command timeout (modem.commandTimeoutMs). */
  commandTimeoutMs?: number;
  /** The RAM file the body goes through (deleted after each fetch). */
  ramFile?: string;
  timers?: ModemTimers;
  /** Told of every successful round trip (the watchdog's proof that the module answers). */
  onOk?: () => void;
}

/** Longest URL the module takes (AT+QHTTPURL <URL_length> 1–700). */
export const URL_MAX_BYTES = 700;
/** DESIGN.md §3: the proxy host is at most 50 bytes. */
const PROXY_HOST_MAX_BYTES = 50;
/** Past the module's own deadline, how long the driver still waits for its URC. */
const URC_MARGIN_MS = 15_000;
/** AT+QHTTPURL / QHTTPPOST <input_time>: the host writes at once, so a short window. */
const INPUT_TIME_S = 10;
/** The download's channel deadline: a fixed part plus the data at a pessimistic 5 KB/s. */
const DOWNLOAD_BASE_MS = 30_000;
const DOWNLOAD_BYTES_PER_MS = 5;

/** http://host[:port]/path… — only what an MMS content location is, nothing the module could misread. */
const HTTP_URL = /^http:\/\/([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?([/?][\x21-\x7e]*)?$/i;
/** A proxy host: a name or an address, no scheme, port or path. */
const HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f:]+)$/;

/** A content location (or MMSC URL) split, or InvalidArgumentError naming what is wrong. */
export function parseHttpUrl(url: string, argument = 'url'): { authority: string; url: string } {
  if (typeof url !== 'string' || url.length === 0) throw new InvalidArgumentError(`${argument}: empty`, argument);
  if (Buffer.byteLength(url) > URL_MAX_BYTES) throw new InvalidArgumentError(`${argument}: longer than ${URL_MAX_BYTES} bytes`, argument);
  // CR, LF, quotes, spaces, control and non-ASCII characters would end or bend the request line.
  if (/[^\x21-\x7e]|["'<>\\`]/.test(url)) {
    throw new InvalidArgumentError(`${argument}: holds a character a request line may not carry`, argument);
  }
  const m = HTTP_URL.exec(url);
  if (!m) throw new InvalidArgumentError(`${argument}: not an http:// URL with a host`, argument);
  const port = m[2] === undefined ? undefined : Number(m[2]);
  if (port !== undefined && (port < 1 || port > 65535)) throw new InvalidArgumentError(`${argument}: port out of range`, argument);
  return { authority: port === undefined ? m[1] : `${m[1]}:${port}`, url };
}

/** The proxy's URL for AT+QHTTPURL, or InvalidArgumentError. */
export function proxyUrl(proxy: HttpProxy): string {
  if (typeof proxy.host !== 'string' || proxy.host === '' || Buffer.byteLength(proxy.host) > PROXY_HOST_MAX_BYTES || !HOST.test(proxy.host)) {
    throw new InvalidArgumentError(`proxy host: not a host name or address of at most ${PROXY_HOST_MAX_BYTES} bytes`, 'proxy host');
  }
  const port = int(proxy.port, 1, 65535, 'proxy port');
  const host = proxy.host.includes(':') && !proxy.host.startsWith('[') ? `[${proxy.host}]` : proxy.host;
  return `http://${host}:${port}/`;
}

/** `+QHTTPGET: <err>[,<httprspcode>[,<content_length>]]` (a bare <err> too); likewise QHTTPPOST. */
export function parseHttpResult(line: string, prefix: string): { err: number; status?: number; length?: number } | undefined {
  const f = fieldsOf(line, prefix);
  if (f.length === 0 || f.length > 3 || !f.every((x) => /^\d+$/.test(x))) return undefined;
  const [err, status, length] = f.map(Number);
  return { err, ...(status === undefined ? {} : { status }), ...(length === undefined ? {} : { length }) };
}

/** One block written after CONNECT (a URL, a request), then the final OK. */
class WriteBlock implements DataModeProtocol<void> {
  readonly restartUrcs = [RESTART_URC];
  readonly logFields: Readonly<Record<string, unknown>>;
  constructor(
    readonly name: string,
    private readonly data: Buffer,
  ) {
    this.logFields = { size: data.length };
  }
  async run(s: DataModeSession): Promise<void> {
    const r = await s.send(this.data, 'final');
    if (r.kind !== 'final') throw new AtError(`${s.command}: no OK after the ${this.name}`, s.command);
  }
}

/** AT+QFDWL: CONNECT, exactly `size` raw bytes, "+QFDWL: <size>,<checksum>" (after a CRLF or not), OK. */
export class QfdwlDownload implements DataModeProtocol<Buffer> {
  readonly name = 'download';
  readonly restartUrcs = [RESTART_URC];
  readonly logFields: Readonly<Record<string, unknown>>;
  constructor(private readonly size: number) {
    this.logFields = { size };
  }
  rawBytesAfter(): number {
    return this.size;
  }
  async run(s: DataModeSession): Promise<Buffer> {
    const b = await s.receive('bytes');
    if (b.kind !== 'bytes') throw new HttpBodyError(`download: the module ended before the ${this.size} bytes announced`);
    const f = await s.receive('final');
    if (f.kind !== 'final') throw new AtError(`${s.command}: no OK after the download`, s.command);
    const info = f.lines.map((l) => /^\+QFDWL:\s*(\d+)\s*,\s*([0-9A-Fa-f]+)\s*$/.exec(l.trim())).find((m) => m !== null);
    if (!info) throw new AtError(`${s.command}: no "+QFDWL: <size>,<checksum>" line in the answer`, s.command);
    const reported = { size: Number(info[1]), checksum: parseInt(info[2], 16) };
    const expected = { size: b.data.length, checksum: checksum16(b.data) };
    if (reported.size !== expected.size || reported.checksum !== expected.checksum) throw new DownloadChecksumError(expected, reported);
    return b.data;
  }
}

/**
 * The HTTP client of the module. One request at a time: the caller runs each fetch or post under
 * the modem lock the sender holds (DESIGN.md §12: sends and fetches share the modem).
 */
export class QuectelHttp {
  private readonly at: AtCommander;
  private readonly log: Logger;
  private readonly contextId: number;
  private readonly responseTimeoutS: number;
  private readonly bodyTimeoutS: number;
  private readonly commandTimeoutMs: number;
  private readonly ramFile: string;
  private readonly timers: ModemTimers;
  private readonly commands: QuectelCommands;
  private readonly onOk: () => void;
  private readonly session: HttpSettingsSession;

  constructor(o: HttpDriverOptions) {
    this.at = o.at;
    this.session = o.session;
    this.log = o.logger.child({ part: 'http' });
    this.contextId = o.contextId;
    this.responseTimeoutS = o.responseTimeoutS ?? 60;
    this.bodyTimeoutS = o.bodyTimeoutS ?? 120;
    this.commandTimeoutMs = o.commandTimeoutMs ?? 5000;
    this.ramFile = o.ramFile ?? 'mmsd-retrieve.bin';
    this.timers = o.timers ?? systemTimers;
    this.onOk = o.onOk ?? (() => undefined);
    this.commands = new QuectelCommands(o.at, this.commandTimeoutMs, this.onOk);
  }

  /**
   * GETs `url` (through `proxy` when given) and returns the body. Throws InvalidArgumentError
   * before writing anything for a URL or proxy that may not reach the module, MessageTooLarge
   * before reading a body over `maxBytes`, HttpModuleError (701–730), HttpStatusError (>= 400),
   * HttpBodyError, DownloadChecksumError, or the channel's errors.
   */
  async fetch(url: string, proxy: HttpProxy | undefined, opts: FetchOptions): Promise<Buffer> {
    return this.inSession(this.fetchNow(url, proxy, opts));
  }

  /** POSTs `body` to `url` (through `proxy` when given); resolves with the HTTP status (< 400). */
  post(url: string, proxy: HttpProxy | undefined, body: Buffer, contentType = MMS_CONTENT_TYPE): Promise<{ status: number }> {
    return this.inSession(this.postNow(url, proxy, body, contentType));
  }

  /**
   * A request that failed other than by an answer (the module's error code, the server's status, a
   * size refused) may have met a module that restarted or a line that lost bytes: the HTTP settings
   * are written again before the next one.
   */
  private async inSession<T>(request: Promise<T>): Promise<T> {
    try {
      return await request;
    } catch (e) {
      const answered = e instanceof HttpModuleError || e instanceof HttpStatusError || e instanceof MessageTooLargeError || e instanceof InvalidArgumentError;
      if (!answered) this.session.httpSettingsUnknown();
      throw e;
    }
  }

  private async fetchNow(url: string, proxy: HttpProxy | undefined, opts: FetchOptions): Promise<Buffer> {
    const target = parseHttpUrl(url, 'content location');
    const connectTo = proxy ? proxyUrl(proxy) : url;
    if (!Number.isSafeInteger(opts.maxBytes) || opts.maxBytes < 1) throw new InvalidArgumentError('maxBytes: not a positive integer', 'maxBytes');
    const request = Buffer.from(`GET ${target.url} HTTP/1.1\r\nHost: ${target.authority}\r\nAccept: ${MMS_CONTENT_TYPE}\r\n\r\n`, 'latin1');
    const ram = quote(`RAM:${this.ramFile}`, 'file name');

    await this.configure();
    await this.setUrl(connectTo);
    const got = await this.request('get', '+QHTTPGET:', `AT+QHTTPGET=${this.responseTimeoutS},${request.length}`, request);
    if (got.length !== undefined && got.length > opts.maxBytes) throw new MessageTooLargeError(got.length, opts.maxBytes);

    // From here the module may hold the file: it goes, whatever happens.
    try {
      await this.readToFile(ram);
      const size = await this.fileSize();
      // The announced length against what arrived: a cut body is found here, not by a download that waits for bytes.
      if (got.length !== undefined && size !== got.length) {
        throw new HttpBodyError(`get: ${got.length} bytes announced, the module stored ${size}`);
      }
      if (size > opts.maxBytes) throw new MessageTooLargeError(size, opts.maxBytes);
      const body = size === 0 ? Buffer.alloc(0) : await this.download(ram, size);
      this.log.debug({ size: body.length, status: got.status }, 'fetched');
      return body;
    } finally {
      await this.commands.fileDelete(this.ramFile).catch((err: unknown) => this.log.warn({ err, file: this.ramFile }, 'cannot delete the fetched file'));
    }
  }

  private async postNow(url: string, proxy: HttpProxy | undefined, body: Buffer, contentType: string): Promise<{ status: number }> {
    const target = parseHttpUrl(url, 'MMSC URL');
    const connectTo = proxy ? proxyUrl(proxy) : url;
    if (!/^[A-Za-z0-9.+/-]+$/.test(contentType)) throw new InvalidArgumentError('content type: not a bare media type', 'content type');
    const header = `POST ${target.url} HTTP/1.1\r\nHost: ${target.authority}\r\nContent-Type: ${contentType}\r\nContent-Length: ${body.length}\r\n\r\n`;
    const data = Buffer.concat([Buffer.from(header, 'latin1'), body]);
    await this.configure();
    await this.setUrl(connectTo);
    const inputS = INPUT_TIME_S + Math.ceil(data.length / 5120);
    const r = await this.request('post', '+QHTTPPOST:', `AT+QHTTPPOST=${data.length},${inputS},${this.responseTimeoutS}`, data);
    return { status: r.status ?? 0 };
  }

  /**
   * DESIGN.md §12: the MMS context, and the request line and headers written by the host. The
   * module keeps them until it restarts: written when the session does not know them in force.
   */
  private async configure(): Promise<void> {
    const contextId = int(this.contextId, 1, 16, 'contextId');
    await this.session.useHttpSettings(`contextid=${contextId} requestheader=1`, async () => {
      await this.run(`AT+QHTTPCFG="contextid",${contextId}`, 'url');
      await this.run('AT+QHTTPCFG="requestheader",1', 'url');
    });
  }

  private async setUrl(url: string): Promise<void> {
    const bytes = Buffer.from(url, 'latin1');
    await this.data('url', `AT+QHTTPURL=${bytes.length},${INPUT_TIME_S}`, new WriteBlock('url', bytes));
  }

  /** A request in data mode, then its result URC; a module error or an HTTP status >= 400 throws. */
  private async request(stage: 'get' | 'post', prefix: string, cmd: string, data: Buffer): Promise<{ status?: number; length?: number }> {
    const result = this.waitUrc(prefix, (this.responseTimeoutS + INPUT_TIME_S) * 1000 + URC_MARGIN_MS);
    try {
      await this.data(stage, cmd, new WriteBlock('request', data));
      const line = await result.line;
      const r = parseHttpResult(line, prefix);
      if (!r) throw new AtError(`${cmd}: unreadable result "${line}"`, cmd);
      if (r.err !== 0) throw new HttpModuleError(stage, r.err);
      if (r.status === undefined) throw new AtError(`${cmd}: result without an HTTP status "${line}"`, cmd);
      if (r.status >= 400) throw new HttpStatusError(stage, r.status);
      return r;
    } finally {
      result.dispose();
    }
  }

  /** AT+QHTTPREADFILE answers OK before the file is written: its URC says when it is. */
  private async readToFile(ram: string): Promise<void> {
    const result = this.waitUrc('+QHTTPREADFILE:', this.bodyTimeoutS * 1000 + URC_MARGIN_MS);
    try {
      await this.run(`AT+QHTTPREADFILE=${ram},${this.bodyTimeoutS}`, 'readfile');
      const line = await result.line;
      const err = Number(fieldsOf(line, '+QHTTPREADFILE:')[0]);
      if (!Number.isInteger(err)) throw new AtError(`AT+QHTTPREADFILE: unreadable result "${line}"`, 'AT+QHTTPREADFILE');
      if (err !== 0) throw new HttpModuleError('readfile', err);
    } finally {
      result.dispose();
    }
  }

  /** AT+QFLST="RAM:<f>" → the stored body's size. */
  private async fileSize(): Promise<number> {
    const want = `RAM:${this.ramFile}`;
    const res = await this.at.command(`AT+QFLST=${quote(want, 'file name')}`, { prefix: '+QFLST:', timeoutMs: this.commandTimeoutMs });
    this.onOk();
    for (const l of res.lines) {
      const f = fieldsOf(l, '+QFLST:');
      if (unquote(f[0] ?? '') === want && /^\d+$/.test(f[1] ?? '')) return Number(f[1]);
    }
    throw new HttpBodyError(`get: the module lists no ${want} after storing the body`);
  }

  private async download(ram: string, size: number): Promise<Buffer> {
    const timeoutMs = DOWNLOAD_BASE_MS + Math.ceil(size / DOWNLOAD_BYTES_PER_MS);
    return this.data('download', `AT+QFDWL=${ram}`, new QfdwlDownload(size), timeoutMs);
  }

  private async run(cmd: string, stage: HttpStage): Promise<void> {
    try {
      await this.at.command(cmd, { timeoutMs: this.commandTimeoutMs });
      this.onOk();
    } catch (e) {
      throw httpError(stage, e);
    }
  }

  private async data<R>(stage: HttpStage, cmd: string, protocol: DataModeProtocol<R>, timeoutMs = this.commandTimeoutMs * 3): Promise<R> {
    try {
      // No prefix: the result URCs (+QHTTPGET: …) are routed to their waiters, never taken as the answer.
      const r = await this.at.dataMode(cmd, protocol, { prefix: protocol instanceof QfdwlDownload ? '+QFDWL:' : '', timeoutMs });
      this.onOk();
      return r;
    } catch (e) {
      throw httpError(stage, e);
    }
  }

  /** Listens for `prefix` before the command is written: the URC may follow its OK at once. */
  private waitUrc(prefix: string, timeoutMs: number): { line: Promise<string>; dispose: () => void } {
    let settle!: (r: string | Error) => void;
    const line = new Promise<string>((resolve, reject) => {
      settle = (r) => (r instanceof Error ? reject(r) : resolve(r));
    });
    line.catch(() => undefined);
    let done = false;
    const finish = (r: string | Error): void => {
      if (done) return;
      done = true;
      dispose();
      settle(r);
    };
    const offs = [
      this.at.onUrc(prefix, (l) => finish(l)),
      this.at.onUrc(RESTART_URC, (l) => {
        if (l === RESTART_URC) finish(new AtError(`module restarted before ${prefix}`, prefix));
      }),
    ];
    const onLost = (): void => finish(new ClosedError(prefix, `port lost before ${prefix}`));
    this.at.on('disconnected', onLost);
    let timer: unknown;
    const dispose = (): void => {
      for (const off of offs.splice(0)) off();
      this.at.off('disconnected', onLost);
      if (timer !== undefined) this.timers.clearTimeout(timer);
      timer = undefined;
    };
    timer = this.timers.setTimeout(() => finish(new TimeoutError(`${prefix} (the result URC)`, timeoutMs)), timeoutMs);
    return { line, dispose };
  }
}

/** A +CME ERROR of the HTTP range gets its vendor name; everything else passes as it is. */
function httpError(stage: HttpStage, e: unknown): unknown {
  if (e instanceof CmeError && HTTP_CODES[e.code] !== undefined) return new HttpModuleError(stage, e.code);
  return e;
}
