// One HTTP exchange of the virtual module's HTTP stack (modem-http.ts): a real TCP connection to
// the host and port the module was given, the request bytes written as they are (the module does
// not know MMS or proxies: in request-header mode the host wrote them), and the response read as
// it arrives: status line and headers first, then the body by Content-Length, chunked coding, or
// up to the close. Progress is reported to one listener; the capability owns every timeout.
import net from 'node:net';
import type { Logger } from 'pino';
import { HTTP_ERR } from './cme-codes.js';

export interface HttpHead {
  status: number;
  /** The status line and headers exactly as received, the blank line included. */
  raw: Buffer;
  /** The Content-Length header; undefined when the response has none. */
  contentLength: number | undefined;
}

export interface HttpExchangeOptions {
  host: string;
  port: number;
  request: Buffer;
  logger: Logger;
}

const MAX_HEAD = 64 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');

/** A response whose head is unreadable (no status line, a bad Content-Length). */
class BadResponse extends Error {}

export class HttpExchange {
  /** The response head once it arrived. */
  head: HttpHead | undefined;
  /** The body bytes received so far (chunked coding undone). */
  private readonly chunks: Buffer[] = [];
  private received = 0;
  /** 0 when the body is complete; an HTTP error code when the exchange failed; undefined while running. */
  result: number | undefined;
  private readonly socket: net.Socket;
  private pending = Buffer.alloc(0);
  private chunked = false;
  private listener: (() => void) | undefined;
  private readonly log: Logger;

  constructor(opts: HttpExchangeOptions) {
    this.log = opts.logger;
    const socket = net.connect({ host: opts.host, port: opts.port });
    this.socket = socket;
    socket.on('connect', () => socket.write(opts.request));
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('end', () => this.finish(this.head && !this.chunked && this.head.contentLength === undefined ? 0 : HTTP_ERR.socketClosed));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const code = !socket.connecting && socket.bytesWritten > 0 ? HTTP_ERR.socketRead : connectError(err.code);
      this.log.debug({ err: err.message, code }, 'http exchange failed');
      this.finish(code);
    });
    socket.on('close', () => this.finish(HTTP_ERR.socketClosed));
  }

  /** Called on every change (head, body bytes, end). One listener: the capability. */
  onChange(fn: (() => void) | undefined): void {
    this.listener = fn;
  }

  get bodyBytes(): number {
    return this.received;
  }

  /** The body received so far. */
  body(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** Ends the exchange now with `code` (a dropped context, a restart); nothing more is reported. */
  abort(code: number): void {
    this.finish(code);
    this.listener = undefined;
  }

  private finish(code: number): void {
    if (this.result !== undefined) return;
    this.result = code;
    this.socket.destroy();
    this.listener?.();
  }

  private onData(d: Buffer): void {
    if (this.result !== undefined) return;
    try {
      if (!this.head) {
        this.pending = Buffer.concat([this.pending, d]);
        const end = this.pending.indexOf(HEAD_END);
        if (end < 0) {
          if (this.pending.length > MAX_HEAD) throw new BadResponse('response head too long');
          return;
        }
        this.head = parseHead(this.pending.subarray(0, end + HEAD_END.length));
        this.chunked = /\r\ntransfer-encoding:[^\r]*chunked/i.test(this.head.raw.toString('latin1'));
        const rest = this.pending.subarray(end + HEAD_END.length);
        this.pending = Buffer.alloc(0);
        this.takeBody(rest);
      } else {
        this.takeBody(d);
      }
    } catch (err) {
      if (!(err instanceof BadResponse)) throw err;
      this.log.debug({ err: err.message }, 'unreadable HTTP response');
      this.finish(HTTP_ERR.unknown);
      return;
    }
    if (this.result === undefined) this.listener?.();
  }

  private takeBody(d: Buffer): void {
    const head = this.head!;
    if (this.chunked) {
      this.pending = Buffer.concat([this.pending, d]);
      this.unchunk();
      return;
    }
    if (head.contentLength === undefined) {
      this.append(d);
      return;
    }
    const want = head.contentLength - this.received;
    this.append(d.subarray(0, want));
    if (this.received >= head.contentLength) this.finish(0);
  }

  private append(d: Buffer): void {
    if (d.length === 0) return;
    this.chunks.push(Buffer.from(d));
    this.received += d.length;
  }

  /** RFC 9112 §7.1: size line, data, CRLF; a zero size ends the body (trailers are not kept). */
  private unchunk(): void {
    for (;;) {
      const eol = this.pending.indexOf('\r\n');
      if (eol < 0) return;
      const size = parseInt(this.pending.subarray(0, eol).toString('latin1').split(';')[0].trim(), 16);
      if (!Number.isFinite(size) || size < 0) throw new BadResponse('bad chunk size');
      if (size === 0) {
        this.finish(0);
        return;
      }
      if (this.pending.length < eol + 2 + size + 2) return;
      this.append(this.pending.subarray(eol + 2, eol + 2 + size));
      this.pending = this.pending.subarray(eol + 2 + size + 2);
    }
  }
}

function parseHead(raw: Buffer): HttpHead {
  const text = raw.toString('latin1');
  const m = /^HTTP\/\d\.\d (\d{3})/.exec(text);
  if (!m) throw new BadResponse('no HTTP status line');
  const cl = /\r\ncontent-length:\s*([^\r]*)/i.exec(text);
  let contentLength: number | undefined;
  if (cl) {
    if (!/^\d{1,12}$/.test(cl[1].trim())) throw new BadResponse('bad Content-Length');
    contentLength = Number(cl[1].trim());
  }
  return { status: Number(m[1]), raw: Buffer.from(raw), contentLength };
}

function connectError(code: string | undefined): number {
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return HTTP_ERR.dnsError;
  return HTTP_ERR.socketConnect;
}
