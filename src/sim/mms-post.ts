// What AT+QMMSEND does on the wire: builds the M-Send.req from the edited message and POSTs it to
// the MMSC (through the WAP proxy when one is set), mapping the result to spec §5 codes (issue 3).
import http from 'node:http';
import https from 'node:https';
import { randomBytes } from 'node:crypto';
import { guessContentType, isTextType } from '../mms/content-type.js';
import { decodeSendConf, encodeSendReq, RESPONSE_OK, responseStatusName } from '../mms/pdu.js';
import { composeBody } from '../mms/smil.js';
import { MMS_VERSION, type Expiry, type MessageClass, type MmsPart, type Priority, type SendReq, type SenderVisibility } from '../mms/types.js';
import type { SimCharset, SimSendOutcome, SimSendRequest, SimSender } from './types.js';

/** Spec §2.1 <charset> → the charset parameter a text part carries. */
const PART_CHARSET: Readonly<Record<SimCharset, string>> = {
  ASCII: 'us-ascii',
  UTF8: 'utf-8',
  UCS2: 'iso-10646-ucs-2',
  GBK: 'gbk',
};

/**
 * Spec §2.1 <valid> → X-Mms-Expiry (relative seconds). 5 "maximum" is the largest value a
 * 4-octet Delta-seconds carries without a sign ambiguity (2^31-1, ~68 years): the MMSC clamps it
 * to its own maximum. 6 "network default" omits the header.
 */
const VALIDITY_S: readonly (number | undefined)[] = [3600, 12 * 3600, 24 * 3600, 2 * 86400, 7 * 86400, 0x7fffffff, undefined];
/** Spec §2.1 <pri>: 3 omits the header. */
const PRIORITY: readonly (Priority | undefined)[] = ['low', 'normal', 'high', undefined];
/** Spec §2.1 <visible>: 2 omits the header. */
const VISIBILITY: readonly (SenderVisibility | undefined)[] = ['hide', 'show', undefined];
/** Spec §2.1 <class>: 4 omits the header. */
const CLASS: readonly (MessageClass | undefined)[] = ['personal', 'advertisement', 'informational', 'auto', undefined];

/** Spec §5 codes this module reports. */
const Err = {
  Ok: 0,
  ServerResponseFailed: 765,
  HttpErrorResponse: 766,
  SocketCreate: 770,
  SocketConnect: 771,
  SocketRead: 772,
  SocketWrite: 773,
  SocketClosed: 774,
  Timeout: 775,
  Encode: 776,
  Decode: 777,
} as const;

/** Node socket error codes → spec §5 code, before an HTTP answer arrived. */
const SOCKET_ERRORS: Readonly<Record<string, number>> = {
  ECONNREFUSED: Err.SocketConnect,
  EHOSTUNREACH: Err.SocketConnect,
  ENETUNREACH: Err.SocketConnect,
  ENOTFOUND: Err.SocketConnect,
  EAI_AGAIN: Err.SocketConnect,
  ETIMEDOUT: Err.SocketConnect,
  ECONNRESET: Err.SocketClosed,
  ECONNABORTED: Err.SocketClosed,
  EPIPE: Err.SocketWrite,
  EMFILE: Err.SocketCreate,
  ENFILE: Err.SocketCreate,
  EADDRNOTAVAIL: Err.SocketCreate,
  EACCES: Err.SocketCreate,
};

export interface MmsPosterOptions {
  /** Clock for the Date header, ms since the epoch. */
  now?: () => number;
  /** Transaction id generator. */
  transactionId?: () => string;
}

function partCharsetOf(charset: SimCharset): string {
  return PART_CHARSET[charset];
}

/** The M-Send.req the module would send for this edited message. */
export function buildSendReq(req: SimSendRequest, opts: Required<MmsPosterOptions>): SendReq {
  const parts: MmsPart[] = req.attachments.map((a) => {
    const name = a.name.replace(/^RAM:/i, '');
    const contentType = guessContentType(name);
    const part: MmsPart = { contentType, name, contentLocation: name, contentId: `<${name}>`, data: a.data };
    if (isTextType(contentType)) part.charset = partCharsetOf(a.charset);
    return part;
  });
  const sp = req.sendParam;
  const validity = VALIDITY_S[sp.validity];
  const expiry: Expiry | undefined = validity === undefined ? undefined : { relative: validity };
  const msg: SendReq = {
    transactionId: opts.transactionId(),
    mmsVersion: MMS_VERSION,
    date: Math.floor(opts.now() / 1000),
    to: [...req.to],
    cc: [...req.cc],
    bcc: [...req.bcc],
    ...composeBody(parts),
  };
  // The subject arrives decoded; it goes out as UTF-8 whatever charset it was edited under,
  // since a UCS-2 text-string would hold NUL octets the Text-string grammar forbids.
  if (req.subject !== undefined) msg.subject = req.subject.text;
  if (expiry) msg.expiry = expiry;
  const priority = PRIORITY[sp.priority];
  if (priority) msg.priority = priority;
  const visibility = VISIBILITY[sp.visible];
  if (visibility) msg.senderVisibility = visibility;
  const messageClass = CLASS[sp.class];
  if (messageClass) msg.messageClass = messageClass;
  msg.deliveryReport = sp.sendrep === 1;
  msg.readReport = sp.readrep === 1;
  return msg;
}

/** "mmsc.myuni.com" → "http://mmsc.myuni.com/" (spec §3.6 example configures it without scheme). */
export function mmscUrl(mmsc: string): URL {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(mmsc) ? mmsc : `http://${mmsc}`;
  return new URL(withScheme);
}

/** mmsrsp ends up inside an AT result line: no quotes, no control characters. */
function atSafe(text: string): string {
  return text.replace(/["\x00-\x1f\x7f]/g, ' ').trim().slice(0, 200);
}

function post(req: SimSendRequest, body: Buffer): Promise<SimSendOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    const timers: NodeJS.Timeout[] = [];
    let httpStatus = 0;
    const conn: { request?: http.ClientRequest } = {};
    const finish = (o: SimSendOutcome): void => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      req.signal?.removeEventListener('abort', onAbort);
      conn.request?.destroy();
      resolve(o);
    };
    // The module rebooted mid-send: the connection dies with it. The modem discards this outcome.
    const onAbort = (): void => finish({ err: Err.SocketClosed, httpStatus: 0 });
    if (req.signal?.aborted) {
      onAbort();
      return;
    }
    req.signal?.addEventListener('abort', onAbort);

    let target: URL;
    try {
      target = mmscUrl(req.mmsc);
    } catch {
      finish({ err: Err.SocketConnect, httpStatus: 0 });
      return;
    }
    const headers: http.OutgoingHttpHeaders = {
      'Content-Type': 'application/vnd.wap.mms-message',
      'Content-Length': body.length,
      Accept: 'application/vnd.wap.mms-message, */*',
      Host: target.host,
    };
    const viaProxy = req.proxy !== undefined && req.proxy.host !== '';
    const secure = target.protocol === 'https:';
    const options: http.RequestOptions = viaProxy
      ? // WAP proxies take the absolute form of the target in the request line (RFC 9112 §3.2.2).
        { host: req.proxy!.host, port: req.proxy!.port, path: target.href }
      : { host: target.hostname, port: target.port === '' ? (secure ? 443 : 80) : Number(target.port), path: `${target.pathname}${target.search}` };
    // Through a WAP proxy the request goes as plain HTTP with the absolute URL, whatever its scheme.
    const request = (secure && !viaProxy ? https : http).request({ ...options, method: 'POST', headers, agent: false });
    conn.request = request;

    // Both "no TCP handshake within connecttimeout" and "no answer within the send timeout" are 775.
    timers.push(setTimeout(() => finish({ err: Err.Timeout, httpStatus }), req.timeoutS * 1000));
    request.on('socket', (socket) => {
      if (!socket.connecting) return;
      const t = setTimeout(() => finish({ err: Err.Timeout, httpStatus: 0 }), req.connectTimeoutS * 1000);
      timers.push(t);
      socket.once('connect', () => clearTimeout(t));
    });
    request.on('error', (e: NodeJS.ErrnoException) => {
      finish({ err: SOCKET_ERRORS[e.code ?? ''] ?? Err.SocketClosed, httpStatus });
    });
    request.on('response', (res) => {
      httpStatus = res.statusCode ?? 0;
      if (httpStatus !== 200) {
        finish({ err: Err.HttpErrorResponse, httpStatus });
        return;
      }
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', () => finish({ err: Err.SocketRead, httpStatus }));
      res.on('close', () => {
        if (!res.complete) finish({ err: Err.SocketRead, httpStatus });
      });
      res.on('end', () => finish(answer(Buffer.concat(chunks))));
    });
    request.end(body);
  });
}

/** Spec §5: what the module reports for an HTTP 200 answer. */
function answer(body: Buffer): SimSendOutcome {
  try {
    const conf = decodeSendConf(body);
    if (conf.responseStatus === RESPONSE_OK) return { err: Err.Ok, httpStatus: 200 };
    const text = conf.responseText !== undefined && conf.responseText.trim() !== '' ? conf.responseText : responseStatusName(conf.responseStatus);
    return { err: Err.ServerResponseFailed, httpStatus: 200, mmsrsp: atSafe(text) };
  } catch {
    // MmsDecodeError, or anything else the answer trips: the module cannot read it either.
    return { err: Err.Decode, httpStatus: 200 };
  }
}

/** A SimSender with its clock and transaction ids passed in (tests pin them). */
export function createMmsPoster(options: MmsPosterOptions = {}): SimSender {
  const opts: Required<MmsPosterOptions> = {
    now: options.now ?? Date.now,
    transactionId: options.transactionId ?? (() => `T${randomBytes(8).toString('hex')}`),
  };
  return (req) => {
    let body: Buffer;
    try {
      body = encodeSendReq(buildSendReq(req, opts));
    } catch {
      return Promise.resolve({ err: Err.Encode, httpStatus: 0 });
    }
    return post(req, body);
  };
}

/** AT+QMMSEND's HTTP side with the wall clock and random transaction ids. */
export const postMms: SimSender = createMmsPoster();
