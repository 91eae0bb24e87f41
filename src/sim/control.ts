// Run-time fault control of a running mmsd-sim over HTTP with JSON (DESIGN.md §7 "by option and at
// run time"), so that tests and demos in another process can steer the virtual module.
//
//   GET  /state     → VirtualModemState plus {"port": "<PATH or tcp://…>"}
//   GET  /received  → the loopback MMSC's ReceivedMessage[] (404 without --mmsc)
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
//         "simSwap": {"imsi"?, "iccid"?, "spn"?, "urcs"?: "cpin"|"qusim"},  another SIM goes in
//                                               (cpin: +CPIN: NOT READY, READY; qusim: +QUSIM: 1, +CPIN: READY)
//         "otherContext": {"ctx", "apn"},       someone else activates a context with that APN
//         "reboot": true,                       module restarts (RDY after boot time)
//         "portLoss": <ms>}                     port disappears for ms (answer does not wait)
//        → {"ok": true} or 400 {"error": "..."}
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { SimCardState, SimIdentityState, SimSwapUrcs, VirtualModem } from './modem.js';
import type { PortServer } from './serve.js';
import type { MmscFaults, ReceivedMessage, SimSendOutcome } from './types.js';

export interface ControlMmsc {
  setFaults(f: MmscFaults): void;
  received(): ReceivedMessage[];
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

const KNOWN_KEYS = new Set([
  'sim', 'registration', 'signal', 'dropPdp', 'sendResults', 'hold', 'delayMs', 'drop', 'garble',
  'urcMidResponse', 'urc', 'lineRate', 'baud', 'pdpActivationFailures', 'mmsc', 'reboot', 'portLoss',
  'simSwap', 'otherContext',
]);

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
    if (req.method === 'POST' && url.pathname === '/fault') {
      let body: unknown;
      try {
        body = JSON.parse(await readBody(req));
      } catch {
        reply(res, 400, { error: 'body must be a JSON object' });
        return;
      }
      try {
        this.applyFault(body);
      } catch (err) {
        if (err instanceof BadRequest) {
          reply(res, 400, { error: err.message });
          return;
        }
        throw err;
      }
      reply(res, 200, { ok: true });
      return;
    }
    reply(res, 404, { error: 'unknown endpoint' });
  }

  /** Validates everything first, then applies; a bad request changes nothing. */
  private applyFault(body: unknown): void {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadRequest('body must be a JSON object');
    const f = body as Record<string, unknown>;
    for (const key of Object.keys(f)) if (!KNOWN_KEYS.has(key)) throw new BadRequest(`unknown fault "${key}"`);
    const m = this.opts.modem;
    const actions: (() => void)[] = [];
    if (f.sim !== undefined) {
      const s = f.sim as SimCardState;
      if (!SIM_STATES.includes(s)) throw new BadRequest('sim must be "ready", "absent" or "pin"');
      actions.push(() => m.setSim(s));
    }
    if (f.registration !== undefined) {
      const stat = int(f.registration, 'registration', 0, 5);
      actions.push(() => m.setRegistration(stat));
    }
    if (f.signal !== undefined) {
      const rssi = int(f.signal, 'signal', 0, 99);
      actions.push(() => m.setSignal(rssi));
    }
    if (f.dropPdp !== undefined) {
      const ctx = int(f.dropPdp, 'dropPdp', 1, 16);
      actions.push(() => void m.dropPdp(ctx));
    }
    if (f.sendResults !== undefined) {
      if (!Array.isArray(f.sendResults)) throw new BadRequest('sendResults must be an array');
      const results = f.sendResults.map(sendResult);
      actions.push(() => m.queueSendResults(results));
    }
    if (f.hold !== undefined) {
      if (typeof f.hold !== 'boolean') throw new BadRequest('hold must be true or false');
      const on = f.hold;
      actions.push(() => m.holdSend(on));
    }
    if (f.delayMs !== undefined) {
      const ms = int(f.delayMs, 'delayMs', 0, 600_000);
      actions.push(() => m.setDelay(ms));
    }
    if (f.drop !== undefined) {
      const n = int(f.drop, 'drop', 0, 1_000_000);
      actions.push(() => m.dropNextResponses(n));
    }
    if (f.garble !== undefined) {
      const n = int(f.garble, 'garble', 0, 1_000_000);
      actions.push(() => m.garbleNextResponses(n));
    }
    if (f.urcMidResponse !== undefined) {
      const l = line(f.urcMidResponse, 'urcMidResponse');
      actions.push(() => m.injectUrcMidResponse(l));
    }
    if (f.urc !== undefined) {
      const l = line(f.urc, 'urc');
      actions.push(() => m.emitUrc(l));
    }
    if (f.lineRate !== undefined) {
      const bps = int(f.lineRate, 'lineRate', 0, 100_000_000);
      actions.push(() => m.lineRate(bps));
    }
    if (f.baud !== undefined) {
      const baud = int(f.baud, 'baud', 0, 100_000_000);
      actions.push(() => m.lineRate(baud / 10));
    }
    if (f.pdpActivationFailures !== undefined) {
      const n = int(f.pdpActivationFailures, 'pdpActivationFailures', 0, 1_000_000);
      actions.push(() => m.failNextActivations(n));
    }
    if (f.mmsc !== undefined) {
      const mmsc = this.opts.mmsc;
      if (!mmsc) throw new BadRequest('no loopback MMSC (start with --mmsc)');
      if (typeof f.mmsc !== 'object' || f.mmsc === null) throw new BadRequest('mmsc must be an object');
      const faults = f.mmsc as MmscFaults;
      actions.push(() => mmsc.setFaults(faults));
    }
    if (f.simSwap !== undefined) {
      const { identity, urcs } = identityOf(f.simSwap);
      actions.push(() => m.swapSim(identity, urcs));
    }
    if (f.otherContext !== undefined) {
      const o = f.otherContext as Record<string, unknown> | null;
      if (typeof o !== 'object' || o === null) throw new BadRequest('otherContext must be {"ctx", "apn"}');
      const ctx = int(o.ctx, 'otherContext.ctx', 1, 16);
      if (typeof o.apn !== 'string' || !/^[\x21-\x7e]{0,100}$/.test(o.apn) || o.apn.includes('"')) throw new BadRequest('otherContext.apn must be an APN');
      const apn = o.apn;
      actions.push(() => {
        if (!m.activateOtherContext(ctx, apn)) this.log.warn({ ctx }, 'otherContext: three contexts are active already');
      });
    }
    if (f.reboot !== undefined) {
      if (f.reboot !== true) throw new BadRequest('reboot must be true');
      actions.push(() => m.reboot());
    }
    if (f.portLoss !== undefined) {
      const ms = int(f.portLoss, 'portLoss', 0, 3_600_000);
      const server = this.opts.server;
      if (!server) throw new BadRequest('no port server');
      actions.push(() => {
        server.portLoss(ms).catch((err: unknown) => this.log.error({ err }, 'port did not come back'));
      });
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
