// The loopback MMSC (DESIGN.md §7): an HTTP server that takes M-Send.req posts (origin or proxy
// absolute form), stores what arrived, answers M-Send.conf, and injects faults on request. For a
// message that asked for a delivery report it pushes an M-Delivery.ind per recipient (To, Cc and
// Bcc) through the push target (the virtual modem's SMS side), with the Message-ID of M-Send.conf.
// Messages for the gateway (mmsc-inbox.ts) are served on its content paths, in proxy form only,
// and the M-NotifyResp.ind / M-Acknowledge.ind posted back are recorded.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { fromWireAddress } from '../mms/headers.js';
import { encodeDeliveryInd } from '../mms/notification.js';
import { decodeSendReq, encodeSendConf, RESPONSE_OK, RESPONSE_STATUS } from '../mms/pdu.js';
import { MMS_VERSION, MmsDecodeError, type SendReq } from '../mms/types.js';
import type { MmsStatus } from '../mms/types.js';
import { MmscInbox, type AckRecord, type InboundReceipt, type InboundRequest, type InboxEntry, type InboxFaults } from './mmsc-inbox.js';
import type { DeliveryPlan, DeliverySettings, MmscFaults, ReceivedMessage, RecipientDelivery } from './types.js';

/** Where the MMSC's pushes go (the virtual modem's SMS side); `segments` as PushOptions says. */
export type PushTarget = (pdu: Buffer, segments?: number) => void;

/** The statuses each plan reports, in order, one delay apart. */
const PLAN_STATUSES: Readonly<Record<DeliveryPlan, readonly MmsStatus[]>> = {
  retrieved: ['retrieved'],
  rejected: ['rejected'],
  expired: ['expired'],
  'deferred-then-retrieved': ['deferred', 'retrieved'],
  none: [],
};

export interface LoopbackMmscOptions {
  host?: string;
  port?: number;
  /** Folder for one sub-folder per received message (DESIGN.md §7 `--store`). */
  store?: string;
  logger: Logger;
  faults?: MmscFaults;
  /** Delivery reports: the plan for every recipient (default retrieved), the delay (default 200 ms), per-recipient plans and delays. */
  delivery?: DeliverySettings;
  /** Where delivery reports and notifications go (an MMS PDU each); without it none are sent. */
  pushReport?: PushTarget;
}

/** OMA-MMS-ENC §7.2.27 Error-permanent-message-format-corrupt. */
const FORMAT_CORRUPT = 0xe2;
const MAX_BODY = 8 * 1024 * 1024;

/** message.json holds exactly these keys (DESIGN.md §7). */
type StoredMessage = Omit<ReceivedMessage, 'id'>;

/** A file-system-safe name for a part: path separators and control characters out, no dot names. */
function safeFileName(name: string, taken: Set<string>): string {
  let base = name.replace(/[/\\\x00-\x1f\x7f]/g, '_').slice(0, 200);
  if (base === '' || base === '.' || base === '..') base = `_${base}`;
  let candidate = base;
  for (let i = 1; taken.has(candidate.toLowerCase()); i++) candidate = `${i}_${base}`;
  taken.add(candidate.toLowerCase());
  return candidate;
}

/** The part's name in the PDU: Content-Type name, else filename, else Content-Location. */
function partName(part: SendReq['parts'][number], index: number): string {
  return part.name ?? part.filename ?? part.contentLocation ?? part.contentId?.replace(/^<|>$/g, '') ?? `part${index}`;
}

export class LoopbackMmsc {
  private readonly host: string;
  private readonly port: number;
  private readonly store: string | undefined;
  private readonly log: Logger;
  private faults: MmscFaults;
  private server: http.Server | undefined;
  private readonly sockets = new Set<Socket>();
  /** Pending answer delays: stop() cuts them short so no handler outlives the server. */
  private readonly delays = new Map<NodeJS.Timeout, () => void>();
  private readonly messages: ReceivedMessage[] = [];
  private readonly reportTimers = new Set<NodeJS.Timeout>();
  private delivery: { plan: DeliveryPlan; delayMs: number; recipients: Record<string, RecipientDelivery> };
  private pushReport: PushTarget | undefined;
  private url = '';
  private readonly inbox: MmscInbox;

  constructor(opts: LoopbackMmscOptions) {
    this.host = opts.host ?? '127.0.0.1';
    this.port = opts.port ?? 0;
    this.store = opts.store;
    this.log = opts.logger.child({ part: 'mmsc' });
    this.faults = { ...opts.faults };
    this.delivery = { plan: 'retrieved', delayMs: 200, recipients: {} };
    this.setDelivery(opts.delivery ?? {});
    this.pushReport = opts.pushReport;
    this.inbox = new MmscInbox({ logger: opts.logger, baseUrl: () => this.url, push: () => this.pushReport });
  }

  /** Where delivery reports and notifications go from now on. */
  setPushTarget(push: PushTarget | undefined): void {
    this.pushReport = push;
  }

  /** A message for the gateway: stored, its notification pushed (mmsc-inbox.ts). Needs start() first. */
  receive(req: InboundRequest): InboundReceipt {
    if (this.url === '') throw new Error('the MMSC is not listening');
    return this.inbox.receive(req);
  }

  /** The M-NotifyResp.ind and M-Acknowledge.ind posted to the MMSC, in order. */
  receivedAcks(): AckRecord[] {
    return this.inbox.acks();
  }

  /** The messages held for the gateway. */
  inboxEntries(): InboxEntry[] {
    return this.inbox.list();
  }

  /** Replaces the faults of content requests (an empty object clears them). */
  setInboxFaults(f: InboxFaults): void {
    this.inbox.setFaults(f);
  }

  /** Changes the delivery-report plan, delay or per-recipient plans (merged into those in force). */
  setDelivery(d: DeliverySettings): void {
    const recipients = { ...this.delivery.recipients };
    for (const [addr, r] of Object.entries(d.recipients ?? {})) recipients[fromWireAddress(addr)] = typeof r === 'string' ? { plan: r } : { ...r };
    this.delivery = { plan: d.plan ?? this.delivery.plan, delayMs: d.delayMs ?? this.delivery.delayMs, recipients };
  }

  /** The delivery-report settings in force: the plan and delay for everyone, and each recipient's own. */
  deliverySettings(): { plan: DeliveryPlan; delayMs: number; recipients: Record<string, RecipientDelivery> } {
    return { ...this.delivery, recipients: Object.fromEntries(Object.entries(this.delivery.recipients).map(([a, r]) => [a, { ...r }])) };
  }

  /** Schedules the M-Delivery.ind pushes for a stored message that asked for reports. */
  private scheduleReports(messageId: string, recipients: readonly string[]): void {
    const push = this.pushReport;
    if (!push) return;
    for (const to of recipients) {
      const own = this.delivery.recipients[to];
      const statuses = PLAN_STATUSES[own?.plan ?? this.delivery.plan];
      const delayMs = own?.delayMs ?? this.delivery.delayMs;
      statuses.forEach((status, i) => {
        const t = setTimeout(
          () => {
            this.reportTimers.delete(t);
            const pdu = encodeDeliveryInd({ mmsVersion: MMS_VERSION, messageId, to, date: Math.floor(Date.now() / 1000), status });
            this.log.info({ messageId, to, status }, 'MMSC pushes a delivery report');
            push(pdu);
          },
          delayMs * (i + 1),
        );
        this.reportTimers.add(t);
      });
    }
  }

  async start(): Promise<{ url: string }> {
    if (this.store !== undefined) await mkdir(this.store, { recursive: true });
    const server = http.createServer((req, res) => this.onRequest(req, res));
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const { port } = server.address() as AddressInfo;
    const url = `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${port}/mms`;
    this.url = url;
    this.log.info({ url }, 'loopback MMSC listening');
    return { url };
  }

  async stop(): Promise<void> {
    for (const t of this.reportTimers) clearTimeout(t);
    this.reportTimers.clear();
    this.inbox.stop();
    for (const [t, wake] of this.delays) {
      clearTimeout(t);
      wake();
    }
    this.delays.clear();
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  /** Replaces the faults in force (an empty object clears them). */
  setFaults(f: MmscFaults): void {
    this.faults = { ...f };
  }

  received(): ReceivedMessage[] {
    return this.messages.map((m) => ({ ...m, to: [...m.to], cc: [...m.cc], bcc: [...m.bcc], parts: m.parts.map((p) => ({ ...p })) }));
  }

  /** The faults for this request, counting it against `count`. */
  private takeFaults(): MmscFaults {
    const { count, ...active } = this.faults;
    if (Object.keys(active).length === 0) return {};
    if (count !== undefined) {
      if (count <= 1) this.faults = {};
      else this.faults = { ...this.faults, count: count - 1 };
    }
    return active;
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    // Proxy absolute form ("POST http://mmsc.example/mms") and origin form ("POST /mms") alike.
    const pathname = new URL(req.url ?? '/', 'http://mmsc.invalid').pathname;
    this.log.debug({ method: req.method, url: req.url }, 'MMSC request');
    if (req.method === 'GET' && pathname === '/received') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(this.received()));
      return;
    }
    if (req.method === 'GET' && this.inbox.owns(pathname)) {
      this.inbox.serve(req, res);
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { Allow: 'POST' }).end();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        res.writeHead(413).end();
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      // An M-NotifyResp.ind or M-Acknowledge.ind for a message the gateway received.
      if (this.inbox.recordAck(body, req.url ?? '')) {
        res.writeHead(200, { 'Content-Length': 0 }).end();
        return;
      }
      this.handlePost(body, res).catch((e: unknown) => {
        this.log.error({ err: e }, 'MMSC failed to handle a post');
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
  }

  private async handlePost(body: Buffer, res: http.ServerResponse): Promise<void> {
    const faults = this.takeFaults();
    const faulted = faults.drop === true || faults.httpStatus !== undefined || faults.garbage === true || faults.mmsStatus !== undefined;

    let msg: SendReq | undefined;
    let transactionId: string;
    let corrupt: string | undefined;
    try {
      msg = decodeSendReq(body);
      transactionId = msg.transactionId;
    } catch (e) {
      if (!(e instanceof MmsDecodeError)) throw e;
      corrupt = e.message;
      transactionId = e.transactionId ?? '';
      this.log.warn({ err: e.message, size: body.length }, 'undecodable M-Send.req');
    }

    // A faulted request is not stored; a merely delayed one is stored before the slow answer,
    // as an MMSC that took the message but answered too late would have it.
    let id: string | undefined;
    if (msg && !faulted) id = await this.keep(msg, body);

    if (faults.delayMs !== undefined && faults.delayMs > 0) await this.sleep(faults.delayMs);
    if (res.destroyed || this.server === undefined) return;

    if (faults.drop) {
      res.socket?.destroy();
      return;
    }
    if (faults.httpStatus !== undefined) {
      res.writeHead(faults.httpStatus, { 'Content-Length': 0 }).end();
      return;
    }
    if (faults.garbage) {
      const junk = Buffer.concat([Buffer.from('<html>not an MMS</html>'), randomBytes(16)]);
      res.writeHead(200, { 'Content-Type': 'application/vnd.wap.mms-message', 'Content-Length': junk.length }).end(junk);
      return;
    }
    let conf: Buffer;
    if (faults.mmsStatus !== undefined) {
      conf = encodeSendConf({
        transactionId,
        mmsVersion: MMS_VERSION,
        responseStatus: faults.mmsStatus,
        responseText: faults.mmsText ?? RESPONSE_STATUS[faults.mmsStatus] ?? 'Error',
      });
    } else if (corrupt !== undefined) {
      // Choice: an undecodable post is answered 200 with M-Send.conf status 0xE2
      // (Error-permanent-message-format-corrupt), as an MMSC does, not with HTTP 400: the client
      // then sees the MMSC's own verdict (765 with that text), which names the real problem.
      conf = encodeSendConf({
        transactionId,
        mmsVersion: MMS_VERSION,
        responseStatus: FORMAT_CORRUPT,
        responseText: `message format corrupt: ${corrupt}`,
      });
    } else {
      conf = encodeSendConf({ transactionId, mmsVersion: MMS_VERSION, responseStatus: RESPONSE_OK, messageId: id });
    }
    res.writeHead(200, { 'Content-Type': 'application/vnd.wap.mms-message', 'Content-Length': conf.length }).end(conf);
    if (msg?.deliveryReport === true && id !== undefined && faults.mmsStatus === undefined) {
      this.scheduleReports(id, [...msg.to, ...msg.cc, ...msg.bcc].map(fromWireAddress));
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.delays.delete(t);
        resolve();
      }, ms);
      this.delays.set(t, resolve);
    });
  }

  /** Remembers the message and, with a store, writes its folder. Returns the message id. */
  private async keep(msg: SendReq, raw: Buffer): Promise<string> {
    const id = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
    const stored: StoredMessage = {
      to: msg.to,
      cc: msg.cc,
      bcc: msg.bcc,
      subject: msg.subject ?? null,
      parts: msg.parts.map((p, i) => ({
        name: partName(p, i),
        contentType: p.contentType,
        size: p.data.length,
        sha256: createHash('sha256').update(p.data).digest('hex'),
      })),
    };
    if (this.store !== undefined) {
      const dir = path.join(this.store, id);
      await mkdir(dir);
      // message.json and raw.mms sit beside the parts: a part may not take their names.
      const taken = new Set(['message.json', 'raw.mms']);
      await Promise.all(msg.parts.map((p, i) => writeFile(path.join(dir, safeFileName(stored.parts[i].name, taken)), p.data)));
      await writeFile(path.join(dir, 'raw.mms'), raw);
      await writeFile(path.join(dir, 'message.json'), `${JSON.stringify(stored, null, 2)}\n`);
    }
    this.messages.push({ id, ...stored });
    this.log.info({ id, to: msg.to.length, cc: msg.cc.length, bcc: msg.bcc.length, parts: msg.parts.length }, 'MMSC received a message');
    return id;
  }
}
