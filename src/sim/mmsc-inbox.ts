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
