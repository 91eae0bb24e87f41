// The loopback MMSC's side of messages for the gateway (DESIGN.md §7, §12; docs/sim.md "Receiving"):
// a message arrives (control API POST /receive, or mmsd-sim --receive-sample), is kept as an
// M-Retrieve.conf under a content location of the MMSC's own, and announced with an
// M-Notification.ind pushed as WAP-push SMS (segmented when it does not fit one). The content is
// served only to requests in proxy form (an absolute URI in the request line), as carriers' MMS
// proxies do on MMS APNs; any other form gets 400. Each M-NotifyResp.ind or M-Acknowledge.ind
// posted back is recorded for the tests. Faults shape the answers to content requests.
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import type { Logger } from 'pino';
import { decodeAcknowledgeInd, decodeNotifyRespInd, encodeNotificationInd } from '../mms/notification.js';
import { encodeRetrieveConf, retrieveStatusName } from '../mms/retrieve.js';
import { MMS_VERSION, MULTIPART_MIXED, MULTIPART_RELATED, MmsDecodeError, MmsEncodeError, type MmsPart, type MmsStatus, type RetrieveConf } from '../mms/types.js';

/** One part of a message for the gateway. */
export interface InboundPart {
  name: string;
  contentType: string;
  charset?: string;
  data: Buffer;
}

/** A message for the gateway (POST /receive; `data` arrives there in base64). */
export interface InboundRequest {
  from: string;
  /** Default: the gateway, INBOX_GATEWAY_NUMBER. */
  to?: string[];
  cc?: string[];
  subject?: string;
  /** IANA name of the subject's charset on the wire ("utf-8", "gbk", "iso-10646-ucs-2"); default utf-8 when not ASCII. */
  subjectCharset?: string;
  parts: InboundPart[];
  /** X-Mms-Expiry (relative) of the notification; after it the content is gone. Default 7 days. */
  expirySeconds?: number;
  /** X-Mms-Message-Size announced; default the real size (a smaller one: "larger than announced"). */
  announcedSize?: number;
  /** The notification is pushed but the content never appears (404 to every request). */
  contentNeverAppears?: boolean;
  /** Split the push into exactly this many SMS (default: as many as needed). */
  segments?: number;
}

/** What POST /receive answers. */
export interface InboundReceipt {
  id: string;
  transactionId: string;
  messageId: string;
  contentLocation: string;
  /** Size of the M-Retrieve.conf served. */
  size: number;
  announcedSize: number;
  /** Unix ms after which the content is gone. */
  expiresAt: number;
}

/** Faults of content requests (POST /fault {"inbox": …}); all keys optional. */
export interface InboxFaults {
  /** Answer this HTTP status with no body (404, 500, 503, …). */
  httpStatus?: number;
  /** Answer 200 with an M-Retrieve.conf carrying this X-Mms-Retrieve-Status (e.g. 0xE2) and no body. */
  retrieveStatus?: number;
  /** Send the head at once, then the body in ten pieces spread over this many ms. */
  slowBodyMs?: number;
  /** Announce the full Content-Length, send this many body bytes, then close the connection. */
  dropAfterBytes?: number;
  /** How many content requests the fault applies to (default: until cleared). */
  count?: number;
}

/** One M-NotifyResp.ind or M-Acknowledge.ind the MMSC received (GET /received-acks). */
export interface AckRecord {
  type: 'notifyresp' | 'acknowledge';
  transactionId: string;
  /** X-Mms-Status of an M-NotifyResp.ind. */
  status?: MmsStatus;
  reportAllowed?: boolean;
  /** The message it answers, when the transaction id is one of ours. */
  id: string | null;
  /** The request target as written (absolute URI in proxy form). */
  target: string;
  /** Unix ms when it arrived. */
  at: number;
  /** The PDU in base64. */
  pdu: string;
}

/** What GET /inbox shows of a stored message. */
export interface InboxEntry extends InboundReceipt {
  from: string;
  subject: string | null;
  /** Content requests answered with the message. */
  served: number;
}

/** An 8×8 red JPEG (made with sharp), the photo of the canned message. */
const SAMPLE_JPEG = Buffer.from(
  '/9j/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2P/wAARCAAIAAgDASIAAhEBAxEB/8QAFQABAQAAAAAAAAAAAAAAAAAAAAX/xAAUEAEAAAAAAAAAAAAAAAAAAAAA/8QAFQEBAQAAAAAAAAAAAAAAAAAABAb/xAAUEQEAAAAAAAAAAAAAAAAAAAAA/9oADAMBAAIRAxEAPwCOACqH/9k=',
  'base64',
);

/** The canned message of `mmsd-sim --receive-sample`: a phone's photo with a Chinese subject, text and SMIL. */
export function sampleInboundRequest(): InboundRequest {
  return {
    from: '+8613800138000',
    subject: '门口的照片',
    parts: [
      {
        name: 'smil.smil',
        contentType: 'application/smil',
        charset: 'utf-8',
        data: Buffer.from('<smil><head><layout><region id="Image" top="0" height="80%"/><region id="Text" top="80%" height="20%"/></layout></head><body><par dur="5000ms"><img src="photo.jpg" region="Image"/><text src="text.txt" region="Text"/></par></body></smil>'),
      },
      { name: 'text.txt', contentType: 'text/plain', charset: 'utf-8', data: Buffer.from('有人在门口 — someone is at the door') },
      { name: 'photo.jpg', contentType: 'image/jpeg', data: SAMPLE_JPEG },
    ],
  };
}

/** Keys of POST /receive. */
const REQUEST_KEYS = ['from', 'to', 'cc', 'subject', 'subjectCharset', 'parts', 'expirySeconds', 'announcedSize', 'contentNeverAppears', 'segments'];
const PART_KEYS = ['name', 'contentType', 'charset', 'data'];

function text(v: unknown, key: string, pattern: RegExp, what: string): string {
  if (typeof v !== 'string' || !pattern.test(v)) throw new BadInboundRequest(`${key} must be ${what}`);
  return v;
}

function address(v: unknown, key: string): string {
  return text(v, key, ADDRESS, 'a phone number or e-mail address');
}

function token(v: unknown, key: string): string {
  return text(v, key, TOKEN, 'printable ASCII without spaces');
}

function count(v: unknown, key: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new BadInboundRequest(`${key} must be an integer ${min}..${max}`);
  return v;
}

function addresses(v: unknown, key: string): string[] {
  if (!Array.isArray(v)) throw new BadInboundRequest(`${key} must be an array of addresses`);
  return v.map((a, i) => address(a, `${key}[${i}]`));
}

const ADDRESS = /^(\+?[0-9]{3,20}|[^@\s"<>]{1,64}@[^@\s"<>]{1,190})$/;
const TOKEN = /^[\x21-\x7e]{1,100}$/;

/** A POST /receive body → an InboundRequest (part data from base64); BadInboundRequest names what is wrong. */
export function parseInboundRequest(body: unknown): InboundRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadInboundRequest('body must be a JSON object');
  const o = body as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!REQUEST_KEYS.includes(k)) throw new BadInboundRequest(`unknown key "${k}"`);
  if (!Array.isArray(o.parts) || o.parts.length === 0) throw new BadInboundRequest('parts must be a non-empty array');
  const parts = o.parts.map((p: unknown, i): InboundPart => {
    if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new BadInboundRequest(`parts[${i}] must be an object`);
    const q = p as Record<string, unknown>;
    for (const k of Object.keys(q)) if (!PART_KEYS.includes(k)) throw new BadInboundRequest(`parts[${i}]: unknown key "${k}"`);
    if (typeof q.name !== 'string' || q.name === '' || q.name.length > 200 || /[\x00-\x1f"]/.test(q.name)) throw new BadInboundRequest(`parts[${i}].name must be a name without control characters`);
    if (typeof q.data !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(q.data)) throw new BadInboundRequest(`parts[${i}].data must be base64`);
    return {
      name: q.name,
      contentType: token(q.contentType, `parts[${i}].contentType`),
      ...(q.charset !== undefined ? { charset: token(q.charset, `parts[${i}].charset`) } : {}),
      data: Buffer.from(q.data, 'base64'),
    };
  });
  const req: InboundRequest = { from: address(o.from, 'from'), parts };
  if (o.to !== undefined) req.to = addresses(o.to, 'to');
  if (o.cc !== undefined) req.cc = addresses(o.cc, 'cc');
  if (o.subject !== undefined) {
    if (typeof o.subject !== 'string' || o.subject.length > 200 || /[\x00-\x1f]/.test(o.subject)) throw new BadInboundRequest('subject must be one line of up to 200 characters');
    req.subject = o.subject;
  }
  if (o.subjectCharset !== undefined) req.subjectCharset = token(o.subjectCharset, 'subjectCharset');
  if (o.expirySeconds !== undefined) req.expirySeconds = count(o.expirySeconds, 'expirySeconds', 0, 365 * 24 * 3600);
  if (o.announcedSize !== undefined) req.announcedSize = count(o.announcedSize, 'announcedSize', 0, 0xffffffff);
  if (o.segments !== undefined) req.segments = count(o.segments, 'segments', 1, 255);
  if (o.contentNeverAppears !== undefined) {
    if (typeof o.contentNeverAppears !== 'boolean') throw new BadInboundRequest('contentNeverAppears must be true or false');
    req.contentNeverAppears = o.contentNeverAppears;
  }
  return req;
}

/** POST /fault {"inbox": …} → InboxFaults. */
export function parseInboxFaults(v: unknown): InboxFaults {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new BadInboundRequest('inbox must be an object');
  const o = v as Record<string, unknown>;
  const out: InboxFaults = {};
  for (const k of Object.keys(o)) {
    switch (k) {
      case 'httpStatus':
        out.httpStatus = count(o[k], 'inbox.httpStatus', 100, 599);
        break;
      case 'retrieveStatus':
        out.retrieveStatus = count(o[k], 'inbox.retrieveStatus', 0x80, 0xff);
        break;
      case 'slowBodyMs':
        out.slowBodyMs = count(o[k], 'inbox.slowBodyMs', 0, 3_600_000);
        break;
      case 'dropAfterBytes':
        out.dropAfterBytes = count(o[k], 'inbox.dropAfterBytes', 0, 100_000_000);
        break;
      case 'count':
        out.count = count(o[k], 'inbox.count', 1, 1_000_000);
        break;
      default:
        throw new BadInboundRequest(`unknown inbox fault "${k}"`);
    }
  }
  return out;
}

/** The gateway's own number when a message names no To. */
export const INBOX_GATEWAY_NUMBER = '+491700000001';
/** The path prefix of content locations. */
const CONTENT_PATH = '/mms/inbox/';
const DEFAULT_EXPIRY_S = 7 * 24 * 3600;
const MESSAGE_NOT_FOUND = 0xe2;

interface Stored extends InboxEntry {
  pdu: Buffer;
  neverAppears: boolean;
}

export interface MmscInboxOptions {
  logger: Logger;
  /** The MMSC's base URL ("http://127.0.0.1:port/mms"), known once it listens. */
  baseUrl: () => string;
  /** Where notifications go (the virtual modem's SMS side), with the segment count asked for. */
  push: () => ((pdu: Buffer, segments?: number) => void) | undefined;
}

/** A bad /receive request: the control API answers 400 with this text. */
export class BadInboundRequest extends Error {
  override readonly name = 'BadInboundRequest';
}

export class MmscInbox {
  private readonly log: Logger;
  private readonly messages = new Map<string, Stored>();
  private readonly ackList: AckRecord[] = [];
  private faults: InboxFaults = {};
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly opts: MmscInboxOptions) {
    this.log = opts.logger.child({ part: 'mmsc-inbox' });
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  setFaults(f: InboxFaults): void {
    this.faults = { ...f };
  }

  acks(): AckRecord[] {
    return this.ackList.map((a) => ({ ...a }));
  }

  list(): InboxEntry[] {
    return [...this.messages.values()].map(({ pdu: _pdu, neverAppears: _n, ...entry }) => ({ ...entry }));
  }

  /** Stores the message and pushes its notification. Throws BadInboundRequest for what cannot be encoded. */
  receive(req: InboundRequest): InboundReceipt {
    if (req.parts.length === 0) throw new BadInboundRequest('a message needs at least one part');
    const id = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
    const transactionId = `T${randomBytes(6).toString('hex')}`;
    const messageId = `M${randomBytes(6).toString('hex')}`;
    const contentLocation = `${new URL(this.opts.baseUrl()).origin}${CONTENT_PATH}${id}`;
    const subjectCharset = req.subject !== undefined && !/^[\x20-\x7e]*$/.test(req.subject) ? (req.subjectCharset ?? 'utf-8') : req.subjectCharset;
    const expirySeconds = req.expirySeconds ?? DEFAULT_EXPIRY_S;
    const options = subjectCharset !== undefined ? { subjectCharset } : {};
    let pdu: Buffer;
    let notification: Buffer;
    let announcedSize: number;
    try {
      pdu = encodeRetrieveConf(retrieveConf(req, transactionId, messageId), options);
      // The announced size is the real one unless the request says otherwise ("larger than announced").
      announcedSize = req.announcedSize ?? pdu.length;
      notification = encodeNotificationInd(
        {
          transactionId,
          mmsVersion: MMS_VERSION,
          from: req.from,
          ...(req.subject !== undefined ? { subject: req.subject } : {}),
          messageClass: 'personal',
          messageSize: announcedSize,
          expiry: { relative: expirySeconds },
          contentLocation,
        },
        options,
      );
    } catch (err) {
      if (!(err instanceof MmsEncodeError)) throw err;
      throw new BadInboundRequest(err.message);
    }
    const stored: Stored = {
      id,
      transactionId,
      messageId,
      contentLocation,
      size: pdu.length,
      announcedSize,
      expiresAt: Date.now() + expirySeconds * 1000,
      from: req.from,
      subject: req.subject ?? null,
      served: 0,
      pdu,
      neverAppears: req.contentNeverAppears === true,
    };
    this.messages.set(id, stored);
    const push = this.opts.push();
    if (push) push(notification, req.segments);
    else this.log.warn({ id }, 'no push target: the notification goes nowhere');
    this.log.info({ id, transactionId, size: pdu.length, announcedSize, parts: req.parts.length }, 'MMSC holds a message for the gateway');
    const { pdu: _pdu, neverAppears: _n, from: _f, subject: _s, served: _c, ...receipt } = stored;
    return receipt;
  }

  /** True when `pathname` names content of this inbox (the MMSC then leaves the request to serve()). */
  owns(pathname: string): boolean {
    return pathname.startsWith(CONTENT_PATH);
  }

  /** Answers a content request (GET of a content location). */
  serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    const target = req.url ?? '';
    // Carriers' MMS proxies take the absolute form only (RFC 9112 §3.2.2); origin form is refused.
    if (!/^https?:\/\//i.test(target)) {
      this.log.warn({ target }, 'content request not in proxy form: refused');
      res.writeHead(400, { 'Content-Type': 'text/plain', 'Content-Length': 27 }).end('absolute URI (proxy) only\r\n');
      return;
    }
    const id = new URL(target).pathname.slice(CONTENT_PATH.length);
    const msg = this.messages.get(id);
    const faults = this.takeFaults();
    if (!msg || msg.neverAppears || faults.httpStatus !== undefined) {
      const status = faults.httpStatus ?? 404;
      this.log.info({ id, status }, 'content request answered without content');
      res.writeHead(status, { 'Content-Length': 0 }).end();
      return;
    }
    const expired = Date.now() >= msg.expiresAt;
    if (expired || faults.retrieveStatus !== undefined) {
      const status = faults.retrieveStatus ?? MESSAGE_NOT_FOUND;
      const conf = encodeRetrieveConf({
        transactionId: msg.transactionId,
        mmsVersion: MMS_VERSION,
        retrieveStatus: status,
        retrieveText: expired ? 'message expired' : retrieveStatusName(status),
        to: [],
        cc: [],
        parts: [],
      });
      this.log.info({ id, status, expired }, 'content request answered with an error status');
      res.writeHead(200, { 'Content-Type': 'application/vnd.wap.mms-message', 'Content-Length': conf.length }).end(conf);
      return;
    }
    msg.served++;
    const body = msg.pdu;
    res.writeHead(200, { 'Content-Type': 'application/vnd.wap.mms-message', 'Content-Length': body.length });
    if (faults.dropAfterBytes !== undefined) {
      const n = Math.min(faults.dropAfterBytes, body.length - 1);
      this.log.info({ id, sent: n, size: body.length }, 'fault: connection dropped mid-body');
      res.write(body.subarray(0, n), () => res.socket?.destroy());
      return;
    }
    if (faults.slowBodyMs !== undefined && faults.slowBodyMs > 0) {
      this.log.info({ id, ms: faults.slowBodyMs }, 'fault: slow body');
      this.dribble(res, body, faults.slowBodyMs);
      return;
    }
    this.log.info({ id, size: body.length }, 'content served');
    res.end(body);
  }

  /** The body in ten pieces, `ms` spread between them. */
  private dribble(res: http.ServerResponse, body: Buffer, ms: number): void {
    const pieces = 10;
    const size = Math.ceil(body.length / pieces);
    let i = 0;
    const next = (): void => {
      if (res.destroyed) return;
      const piece = body.subarray(i * size, (i + 1) * size);
      i++;
      if (i >= pieces || (i - 1) * size + piece.length >= body.length) {
        res.end(piece);
        return;
      }
      res.write(piece);
      const t = setTimeout(() => {
        this.timers.delete(t);
        next();
      }, ms / pieces);
      this.timers.add(t);
    };
    next();
  }

  /** Records a posted M-NotifyResp.ind or M-Acknowledge.ind; false when the body is neither. */
  recordAck(body: Buffer, target: string): boolean {
    // X-Mms-Message-Type (0x8C) first: 0x83 M-NotifyResp.ind, 0x85 M-Acknowledge.ind.
    if (body.length < 2 || body[0] !== 0x8c || (body[1] !== 0x83 && body[1] !== 0x85)) return false;
    let record: AckRecord;
    try {
      const base = { target, at: Date.now(), pdu: body.toString('base64') };
      if (body[1] === 0x83) {
        const m = decodeNotifyRespInd(body);
        record = { type: 'notifyresp', transactionId: m.transactionId, status: m.status, ...(m.reportAllowed !== undefined ? { reportAllowed: m.reportAllowed } : {}), id: null, ...base };
      } else {
        const m = decodeAcknowledgeInd(body);
        record = { type: 'acknowledge', transactionId: m.transactionId, ...(m.reportAllowed !== undefined ? { reportAllowed: m.reportAllowed } : {}), id: null, ...base };
      }
    } catch (err) {
      if (!(err instanceof MmsDecodeError)) throw err;
      this.log.warn({ err: err.message }, 'undecodable acknowledgement');
      return false;
    }
    record.id = [...this.messages.values()].find((m) => m.transactionId === record.transactionId)?.id ?? null;
    this.ackList.push(record);
    this.log.info({ type: record.type, transactionId: record.transactionId, status: record.status, id: record.id }, 'MMSC got an acknowledgement');
    return true;
  }

  private takeFaults(): InboxFaults {
    const { count, ...active } = this.faults;
    if (Object.keys(active).length === 0) return {};
    if (count !== undefined) this.faults = count <= 1 ? {} : { ...this.faults, count: count - 1 };
    return active;
  }
}

/** The M-Retrieve.conf of a request: multipart.related with SMIL as its start, else multipart.mixed. */
function retrieveConf(req: InboundRequest, transactionId: string, messageId: string): RetrieveConf {
  const smil = req.parts.find((p) => p.contentType.toLowerCase() === 'application/smil');
  const parts: MmsPart[] = req.parts.map((p) => ({
    contentType: p.contentType,
    ...(p.charset !== undefined ? { charset: p.charset } : {}),
    name: p.name,
    contentLocation: p.name,
    ...(p === smil ? { contentId: '<smil>' } : {}),
    data: p.data,
  }));
  return {
    transactionId,
    mmsVersion: MMS_VERSION,
    messageId,
    date: Math.floor(Date.now() / 1000),
    from: req.from,
    to: req.to ?? [INBOX_GATEWAY_NUMBER],
    cc: req.cc ?? [],
    ...(req.subject !== undefined ? { subject: req.subject } : {}),
    messageClass: 'personal',
    contentType: smil ? MULTIPART_RELATED : MULTIPART_MIXED,
    ...(smil ? { type: 'application/smil', start: '<smil>' } : {}),
    parts,
  };
}
