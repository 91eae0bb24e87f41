// Run-time fault control of a running mmsd-sim over HTTP with JSON (DESIGN.md §7 "by option and at
// run time"), so that tests and demos in another process can steer the virtual module.
//
//   GET  /state     → VirtualModemState plus {"port": "<PATH or tcp://…>"}
//   GET  /received  → the loopback MMSC's ReceivedMessage[] (404 without --mmsc)
//   GET  /inbox     → the messages the MMSC holds for the gateway (InboxEntry[]; needs --mmsc)
//   GET  /received-acks → the M-NotifyResp.ind / M-Acknowledge.ind posted to it (AckRecord[])
//   POST /receive   ← a message for the gateway (mmsc-inbox.ts): {"from", "to"?, "cc"?, "subject"?,
//        "subjectCharset"?, "parts": [{"name", "contentType", "charset"?, "data": "<base64>"}],
//        "expirySeconds"?, "announcedSize"?, "contentNeverAppears"?, "segments"?}
//        → {"ok": true, "id", "transactionId", "messageId", "contentLocation", "size",
//           "announcedSize", "expiresAt"} or 400 {"error"}
//   POST /fault     ← one JSON object; every key is optional and applied in this order:
//        {"sim": "ready"|"absent"|"pin",        SIM inserted, removed, PIN-locked
//         "registration": 0..5,                 network registration stat
//         "signal": 0..31|99,                   +CSQ rssi
//         "dropPdp": <ctx>,                     network drops the context (+QIURC "pdpdeact")
//         "sendResults": [{"err", "http"?, "mmsrsp"?}],  results of the next AT+QMMSENDs
//         "hold": true|false,                   accepted sends never report (until false)
//         "delayMs": <ms>,                      delay before every response
//         "drop": <n>, "garble": <n>,           next n responses dropped / garbled (0 ends it)
//         "urcMidResponse": "<line>",           URC inside the next response
//         "urc": "<line>",                      URC now
//         "lineRate": <bytes/s> | "baud": <n>,  throttle the line (0 = off)
//         "pdpActivationFailures": <n>,         next n AT+QIACT answer ERROR
//         "mmsc": {MmscFaults},                 loopback MMSC faults (needs --mmsc)
//         "inbox": {"httpStatus"?, "retrieveStatus"?, "slowBodyMs"?, "dropAfterBytes"?, "count"?},
//                                               faults of content requests (needs --mmsc)
//         "simSwap": {"imsi"?, "iccid"?, "spn"?, "urcs"?: "cpin"|"qusim"},  another SIM goes in
//                                               (cpin: +CPIN: NOT READY, READY; qusim: +QUSIM: 1, +CPIN: READY)
//         "otherContext": {"ctx", "apn"},       someone else activates a context with that APN
//         "reboot": true,                       module restarts (RDY after boot time)
//         "portLoss": <ms>,                     port disappears for ms (answer does not wait)
//         "delivery": {"plan"?, "delayMs"?, "recipients"?: {"<addr>": plan | {"plan", "delayMs"?}}},
//                                               MMSC delivery reports (needs --mmsc)
//         "holdSmsDeletes": true|false}         AT+CMGD held, not carried out; false: held ones
//                                               answer +CMS ERROR: 500 and delete nothing
//        → {"ok": true} or 400 {"error": "..."}
//   GET  /delivery  → the MMSC's delivery-report settings: {"plan", "delayMs", "recipients": {"<addr>":
//        {"plan", "delayMs"?}}} (404 without --mmsc)
//   POST /delivery  ← one recipient's reports: {"recipient", "plan", "delayMs"?} (merged into those
//        in force) → {"ok": true, …the settings as GET /delivery} or 400 {"error"}
//   POST /sms       ← SMS the network delivers now (sms-request.ts): {"pdus": ["<hex>", …]}, or
//        {"text": "…", "from": "+49…"}, or {"push": {"type": "delivery", "messageId", "to",
//        "status", "date"?}, "from"?, "segments"?, "order"?, "duplicate"?, "malformed"?}
//        → {"ok": true, "sms": [{"pdu", "stored": {"mem", "index"} | null}]} or 400 {"error"}
// The keys are one table (FAULTS): key → validation → action; SimFaultRequest is its typed body.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { BadInboundRequest, parseInboundRequest, parseInboxFaults, type AckRecord, type InboundReceipt, type InboundRequest, type InboxEntry, type InboxFaults } from './mmsc-inbox.js';
import type { SimCardState, SimIdentityState, SimSwapUrcs, VirtualModem } from './modem.js';
import type { PortServer } from './serve.js';
import { BadSmsRequest, deliverSmsRequest } from './sms-request.js';
import { DELIVERY_PLAN_NAMES, isDeliveryPlan, MAX_DELIVERY_DELAY_MS } from './delivery-plans.js';
import type { DeliveryPlan, DeliverySettings, MmscFaults, ReceivedMessage, RecipientDelivery, SimSendOutcome } from './types.js';

export interface ControlMmsc {
  setFaults(f: MmscFaults): void;
  setDelivery(d: DeliverySettings): void;
  deliverySettings(): { plan: DeliveryPlan; delayMs: number; recipients: Record<string, RecipientDelivery> };
  received(): ReceivedMessage[];
  receive(req: InboundRequest): InboundReceipt;
  receivedAcks(): AckRecord[];
  inboxEntries(): InboxEntry[];
  setInboxFaults(f: InboxFaults): void;
}

export interface ControlServerOptions {
  host: string;
  port: number;
  logger: Logger;
  modem: VirtualModem;
  server?: PortServer;
  mmsc?: ControlMmsc;
}

const MAX_BODY = 1024 * 1024;
const SIM_STATES: readonly SimCardState[] = ['ready', 'absent', 'pin'];

/** One entry of `sendResults`: the wire form of a SimSendOutcome (`http` or `httpStatus`). */
export interface SendResultRequest {
  err: number;
  http?: number;
  httpStatus?: number;
  mmsrsp?: string;
}

/** The body of POST /fault: every key optional, applied in FAULTS order (the Testbed sends it). */
export interface SimFaultRequest {
  sim?: SimCardState;
  registration?: number;
  signal?: number;
  dropPdp?: number;
  sendResults?: SendResultRequest[];
  hold?: boolean;
  delayMs?: number;
  drop?: number;
  garble?: number;
  urcMidResponse?: string;
  urc?: string;
  lineRate?: number;
  baud?: number;
  pdpActivationFailures?: number;
  mmsc?: MmscFaults;
  /** Faults of the MMSC's content requests (messages for the gateway). */
  inbox?: InboxFaults;
  /** Another SIM goes in (DESIGN.md §10). */
  simSwap?: { imsi?: string; iccid?: string; spn?: string; urcs?: SimSwapUrcs };
  /** Someone else activates context `ctx` with `apn` (the host's own internet). */
  otherContext?: { ctx: number; apn: string };
  reboot?: true;
  portLoss?: number;
  delivery?: DeliverySettings;
  /** AT+CMGD held and not carried out: a window between reading an SMS and its deletion. */
  holdSmsDeletes?: boolean;
}

class BadRequest extends Error {}

function int(v: unknown, key: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new BadRequest(`${key} must be an integer ${min}..${max}`);
  }
  return v;
}

function line(v: unknown, key: string): string {
  if (typeof v !== 'string' || v === '' || /[\r\n]/.test(v)) throw new BadRequest(`${key} must be one line of text`);
  return v;
}

function sendResult(v: unknown): SimSendOutcome {
  if (typeof v !== 'object' || v === null) throw new BadRequest('sendResults entries must be objects');
  const o = v as Record<string, unknown>;
  const err = int(o.err, 'sendResults[].err', 0, 65535);
  const httpStatus = int(o.http ?? o.httpStatus ?? 0, 'sendResults[].http', 0, 999);
  if (o.mmsrsp !== undefined && typeof o.mmsrsp !== 'string') throw new BadRequest('sendResults[].mmsrsp must be a string');
  return o.mmsrsp === undefined ? { err, httpStatus } : { err, httpStatus, mmsrsp: o.mmsrsp };
}

/** What a fault acts on. */
interface FaultTarget {
  modem: VirtualModem;
  mmsc: ControlMmsc | undefined;
  server: PortServer | undefined;
  log: Logger;
}

/** A key's validation (throws BadRequest, changes nothing) giving the action that applies it. */
type FaultRule = (value: unknown, target: FaultTarget) => () => void;

function rule<T>(parse: (value: unknown, target: FaultTarget) => T, apply: (value: T, target: FaultTarget) => void): FaultRule {
  return (value, target) => {
    const parsed = parse(value, target);
    return () => apply(parsed, target);
  };
}

/** Every POST /fault key, in the order they are checked and applied; the known keys are these. */
const FAULTS: { readonly [K in keyof Required<SimFaultRequest>]: FaultRule } = {
  sim: rule(
    (v) => {
      if (!SIM_STATES.includes(v as SimCardState)) throw new BadRequest('sim must be "ready", "absent" or "pin"');
      return v as SimCardState;
    },
    (s, t) => t.modem.setSim(s),
  ),
  registration: rule((v) => int(v, 'registration', 0, 5), (stat, t) => t.modem.setRegistration(stat)),
  signal: rule((v) => int(v, 'signal', 0, 99), (rssi, t) => t.modem.setSignal(rssi)),
  dropPdp: rule((v) => int(v, 'dropPdp', 1, 16), (ctx, t) => void t.modem.dropPdp(ctx)),
  sendResults: rule(
    (v) => {
      if (!Array.isArray(v)) throw new BadRequest('sendResults must be an array');
      return v.map(sendResult);
    },
    (results, t) => t.modem.queueSendResults(results),
  ),
  hold: rule(
    (v) => {
      if (typeof v !== 'boolean') throw new BadRequest('hold must be true or false');
      return v;
    },
    (on, t) => t.modem.holdSend(on),
  ),
  delayMs: rule((v) => int(v, 'delayMs', 0, 600_000), (ms, t) => t.modem.setDelay(ms)),
  drop: rule((v) => int(v, 'drop', 0, 1_000_000), (n, t) => t.modem.dropNextResponses(n)),
  garble: rule((v) => int(v, 'garble', 0, 1_000_000), (n, t) => t.modem.garbleNextResponses(n)),
  urcMidResponse: rule((v) => line(v, 'urcMidResponse'), (l, t) => t.modem.injectUrcMidResponse(l)),
  urc: rule((v) => line(v, 'urc'), (l, t) => t.modem.emitUrc(l)),
  lineRate: rule((v) => int(v, 'lineRate', 0, 100_000_000), (bps, t) => t.modem.lineRate(bps)),
  baud: rule((v) => int(v, 'baud', 0, 100_000_000), (baud, t) => t.modem.lineRate(baud / 10)),
  pdpActivationFailures: rule(
    (v) => int(v, 'pdpActivationFailures', 0, 1_000_000),
    (n, t) => t.modem.failNextActivations(n),
  ),
  mmsc: rule(
    (v, t) => {
      const mmsc = t.mmsc;
      if (!mmsc) throw new BadRequest('no loopback MMSC (start with --mmsc)');
      if (typeof v !== 'object' || v === null) throw new BadRequest('mmsc must be an object');
      const faults: MmscFaults = v;
      return { mmsc, faults };
    },
    ({ mmsc, faults }) => mmsc.setFaults(faults),
  ),
  inbox: rule(
    (v, t) => {
      const mmsc = t.mmsc;
      if (!mmsc) throw new BadRequest('no loopback MMSC (start with --mmsc)');
      return { mmsc, faults: parseInboxFaults(v) };
    },
    ({ mmsc, faults }) => mmsc.setInboxFaults(faults),
  ),
  simSwap: rule(
    (v) => identityOf(v),
    ({ identity, urcs }, t) => t.modem.swapSim(identity, urcs),
  ),
  otherContext: rule(
    (v) => {
      const o = v as Record<string, unknown> | null;
      if (typeof o !== 'object' || o === null) throw new BadRequest('otherContext must be {"ctx", "apn"}');
      const ctx = int(o.ctx, 'otherContext.ctx', 1, 16);
      if (typeof o.apn !== 'string' || !/^[\x21-\x7e]{0,100}$/.test(o.apn) || o.apn.includes('"')) throw new BadRequest('otherContext.apn must be an APN');
      return { ctx, apn: o.apn };
    },
    ({ ctx, apn }, t) => {
      if (!t.modem.activateOtherContext(ctx, apn)) t.log.warn({ ctx }, 'otherContext: three contexts are active already');
    },
  ),
  reboot: rule(
    (v) => {
      if (v !== true) throw new BadRequest('reboot must be true');
    },
    (_, t) => t.modem.reboot(),
  ),
  portLoss: rule(
    (v, t) => {
      const ms = int(v, 'portLoss', 0, 3_600_000);
      const server = t.server;
      if (!server) throw new BadRequest('no port server');
      return { server, ms };
    },
    ({ server, ms }, t) => {
      server.portLoss(ms).catch((err: unknown) => t.log.error({ err }, 'port did not come back'));
    },
  ),
  delivery: rule(
    (v, t) => {
      const mmsc = t.mmsc;
      if (!mmsc) throw new BadRequest('no loopback MMSC (start with --mmsc)');
      return { mmsc, settings: deliverySettings(v) };
    },
    ({ mmsc, settings }) => mmsc.setDelivery(settings),
  ),
  holdSmsDeletes: rule(
    (v) => {
      if (typeof v !== 'boolean') throw new BadRequest('holdSmsDeletes must be true or false');
      return v;
    },
    (on, t) => t.modem.holdSmsDeletes(on),
  ),
};

function plan(v: unknown, key: string): DeliveryPlan {
  if (!isDeliveryPlan(v)) throw new BadRequest(`${key} must be one of ${DELIVERY_PLAN_NAMES.join(', ')}`);
  return v;
}

/** A recipient's plan: a plan name, or {"plan", "delayMs"?}. */
function recipientDelivery(v: unknown, key: string): DeliveryPlan | RecipientDelivery {
  if (typeof v === 'string') return plan(v, key);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new BadRequest(`${key} must be a plan or {"plan", "delayMs"?}`);
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['plan', 'delayMs'].includes(k)) throw new BadRequest(`unknown ${key} key "${k}"`);
  const out: RecipientDelivery = { plan: plan(o.plan, `${key}.plan`) };
  if (o.delayMs !== undefined) out.delayMs = int(o.delayMs, `${key}.delayMs`, 0, MAX_DELIVERY_DELAY_MS);
  return out;
}

/** The body of POST /delivery: one recipient's plan and, optionally, its delay. */
function oneRecipient(v: unknown): DeliverySettings {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new BadRequest('body must be a JSON object');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['recipient', 'plan', 'delayMs'].includes(k)) throw new BadRequest(`unknown delivery key "${k}"`);
  const recipient = line(o.recipient, 'recipient');
  return { recipients: { [recipient]: recipientDelivery({ plan: o.plan, delayMs: o.delayMs }, 'delivery') } };
}

function deliverySettings(v: unknown): DeliverySettings {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new BadRequest('delivery must be an object');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['plan', 'delayMs', 'recipients'].includes(k)) throw new BadRequest(`unknown delivery key "${k}"`);
  const out: DeliverySettings = {};
  if (o.plan !== undefined) out.plan = plan(o.plan, 'delivery.plan');
  if (o.delayMs !== undefined) out.delayMs = int(o.delayMs, 'delivery.delayMs', 0, MAX_DELIVERY_DELAY_MS);
  if (o.recipients !== undefined) {
    if (typeof o.recipients !== 'object' || o.recipients === null || Array.isArray(o.recipients)) throw new BadRequest('delivery.recipients must be an object');
    out.recipients = Object.fromEntries(Object.entries(o.recipients).map(([addr, p]) => [addr, recipientDelivery(p, `delivery.recipients["${addr}"]`)]));
  }
  return out;
}

const KNOWN_KEYS: ReadonlySet<string> = new Set(Object.keys(FAULTS));

/** A SIM identity field: digits (the ICCID may end in F) or, for the SPN, one line of printable text. */
function identityOf(v: unknown): { identity: Partial<SimIdentityState>; urcs: SimSwapUrcs } {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new BadRequest('simSwap must be an object');
  const o = v as Record<string, unknown>;
  for (const key of Object.keys(o)) if (!['imsi', 'iccid', 'spn', 'urcs'].includes(key)) throw new BadRequest(`simSwap: unknown key "${key}"`);
  const identity: Partial<SimIdentityState> = {};
  if (o.imsi !== undefined) {
    if (typeof o.imsi !== 'string' || !/^[0-9]{6,15}$/.test(o.imsi)) throw new BadRequest('simSwap.imsi must be 6-15 digits');
    identity.imsi = o.imsi;
  }
  if (o.iccid !== undefined) {
    if (typeof o.iccid !== 'string' || !/^[0-9]{10,21}[0-9Ff]?$/.test(o.iccid)) throw new BadRequest('simSwap.iccid must be 10-22 digits');
    identity.iccid = o.iccid;
  }
  if (o.spn !== undefined) {
    if (typeof o.spn !== 'string' || !/^[\x20-\x7e]{0,16}$/.test(o.spn) || o.spn.includes('"')) throw new BadRequest('simSwap.spn must be up to 16 printable ASCII characters without "');
    identity.spn = o.spn;
  }
  const urcs = o.urcs ?? 'cpin';
  if (urcs !== 'cpin' && urcs !== 'qusim') throw new BadRequest('simSwap.urcs must be "cpin" or "qusim"');
  return { identity, urcs };
}

export class ControlServer {
  private readonly log: Logger;
  private server: http.Server | undefined;

  constructor(private readonly opts: ControlServerOptions) {
    this.log = opts.logger.child({ part: 'sim-control' });
  }

  async start(): Promise<{ url: string }> {
    const server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.log.error({ err }, 'control request failed');
        if (!res.headersSent) reply(res, 500, { error: 'internal error' });
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address() as AddressInfo;
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    return { url: `http://${host}:${addr.port}` };
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://control');
    if (req.method === 'GET' && url.pathname === '/state') {
      reply(res, 200, { ...this.opts.modem.state(), port: this.opts.server?.description ?? null });
      return;
    }
    if (req.method === 'GET' && url.pathname === '/received') {
      if (!this.opts.mmsc) reply(res, 404, { error: 'no loopback MMSC (start with --mmsc)' });
      else reply(res, 200, this.opts.mmsc.received());
      return;
    }
    if (req.method === 'GET' && (url.pathname === '/inbox' || url.pathname === '/received-acks')) {
      if (!this.opts.mmsc) reply(res, 404, { error: 'no loopback MMSC (start with --mmsc)' });
      else reply(res, 200, url.pathname === '/inbox' ? this.opts.mmsc.inboxEntries() : this.opts.mmsc.receivedAcks());
      return;
    }
    if (req.method === 'POST' && url.pathname === '/receive') {
      const mmsc = this.opts.mmsc;
      if (!mmsc) {
        reply(res, 404, { error: 'no loopback MMSC (start with --mmsc)' });
        return;
      }
      await this.post(req, res, (body) => ({ ok: true, ...mmsc.receive(parseInboundRequest(body)) }));
      return;
    }
    if (url.pathname === '/delivery' && (req.method === 'GET' || req.method === 'POST')) {
      const mmsc = this.opts.mmsc;
      if (!mmsc) reply(res, 404, { error: 'no loopback MMSC (start with --mmsc)' });
      else if (req.method === 'GET') reply(res, 200, mmsc.deliverySettings());
      else
        await this.post(req, res, (body) => {
          mmsc.setDelivery(oneRecipient(body));
          return { ok: true, ...mmsc.deliverySettings() };
        });
      return;
    }
    if (req.method === 'POST' && url.pathname === '/fault') {
      await this.post(req, res, (body) => {
        this.applyFault(body);
        return { ok: true };
      });
      return;
    }
    if (req.method === 'POST' && url.pathname === '/sms') {
      await this.post(req, res, (body) => ({ ok: true, sms: deliverSmsRequest(this.opts.modem, body) }));
      return;
    }
    reply(res, 404, { error: 'unknown endpoint' });
  }

  /** A POST with a JSON body: `handle`'s answer, or 400 for a body that is no JSON or a bad request. */
  private async post(req: http.IncomingMessage, res: http.ServerResponse, handle: (body: unknown) => unknown): Promise<void> {
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req));
    } catch {
      reply(res, 400, { error: 'body must be a JSON object' });
      return;
    }
    try {
      reply(res, 200, handle(body));
    } catch (err) {
      if (!(err instanceof BadRequest || err instanceof BadSmsRequest || err instanceof BadInboundRequest)) throw err;
      reply(res, 400, { error: err.message });
    }
  }

  /** Validates everything first, then applies; a bad request changes nothing. */
  private applyFault(body: unknown): void {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadRequest('body must be a JSON object');
    const f = body as Record<string, unknown>;
    for (const key of Object.keys(f)) if (!KNOWN_KEYS.has(key)) throw new BadRequest(`unknown fault "${key}"`);
    const target: FaultTarget = { modem: this.opts.modem, mmsc: this.opts.mmsc, server: this.opts.server, log: this.log };
    const actions: (() => void)[] = [];
    for (const [key, check] of Object.entries(FAULTS)) {
      if (f[key] !== undefined) actions.push(check(f[key], target));
    }
    for (const act of actions) act();
  }
}

function reply(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
