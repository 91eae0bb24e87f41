// VirtualModem: a transport-agnostic emulation of a Quectel EC2x module's AT side (DESIGN.md §7):
// command parser and framing, SIM/registration/attach/PDP with URCs, RAM files, AT+QMMSCFG/EDIT/END.
//
// Choices where the spec is silent (documented in docs/sim.md):
// - AT+CMEE defaults to 1 after boot; unknown or malformed commands answer plain "ERROR".
// - A line holding no "AT" is ignored (no answer), as real modules do; ";" concatenation is refused.
// - AT+QFUPL's data timeout and a framed "+++" both end the upload keeping what arrived:
//   "+QFUPL: <received>,<checksum>" + "OK" (FILE note: "the data previously uploaded will be
//   preserved into the file"). An "A" follows every complete 1024 bytes, the last block included.
// - MMS commands answer "ERROR" while the SIM is not READY (spec §4.1).
// - In LTE-only mode +CGREG reports stat 0; registration shows through +CEREG only.
import { EventEmitter } from 'node:events';
import iconv from 'iconv-lite';
import type { Logger } from 'pino';
import { checksum16 } from '../at/checksum.js';
import { intParam, isOmitted, parseCommand, type AtParam, type ParsedCommand } from './at-parser.js';
import {
  CME_INCORRECT_PASSWORD,
  CME_NOT_ALLOWED,
  CME_NO_NETWORK,
  CME_SIM_NOT_INSERTED,
  CME_SIM_PIN_REQUIRED,
  CME_TEXT,
  MMS_ERR,
} from './cme-codes.js';
import { LinePacer, systemClock, type SimClock } from './line-pacer.js';
import { FILE_ERR, RAM_PREFIX, RamFileStore, isValidRamName } from './ram-files.js';
import type { SimCharset, SimSendOutcome, SimSendRequest, SimSender } from './types.js';

export type { SimClock } from './line-pacer.js';

export type SimCardState = 'ready' | 'absent' | 'pin';

export interface VirtualModemOptions {
  logger: Logger;
  clock?: SimClock;
  /** The SIM card: present and unlocked, missing, or PIN-locked. Default 'ready'. */
  sim?: SimCardState;
  /** PIN that AT+CPIN="…" accepts for a PIN-locked card. Default "1234". */
  pin?: string;
  /** Register through +CEREG only (+CGREG stays 0). */
  lteOnly?: boolean;
  /** Network registration stat (27.007 <stat>) while the SIM is ready and the radio on. Default 1. */
  registration?: number;
  /** Time from AT+CFUN=1,1 (or reboot()) to "RDY". Default 300 ms. */
  bootMs?: number;
  /** RAM file store capacity in bytes. Default 2 MiB. */
  ramBytes?: number;
  /** Silence before and after "+++" that makes it an escape in upload data mode. Default 1000 ms. */
  escapeGuardMs?: number;
  /** Length of one module second, for AT+QFUPL and AT+QMMSEND timeouts. Default 1000 ms. */
  secondMs?: number;
  /** Line rate in bytes per second each way; 0 = unthrottled. */
  bytesPerSecond?: number;
  /** Performs AT+QMMSEND when no injected result is queued (e.g. postMms). */
  sender?: SimSender;
  /** Results for the next AT+QMMSENDs, before the sender is used. */
  sendResults?: SimSendOutcome[];
  /** Time an injected or default AT+QMMSEND result takes. Default 50 ms. */
  sendDelayMs?: number;
  /** Delay before each command's response. Default 0. */
  responseDelayMs?: number;
  /** +CSQ rssi, 0–31 or 99. Default 20. */
  signal?: number;
  /** The SIM's identity (AT+CIMI, AT+QCCID, AT+QSPN's SPN). Default 001010123456789, 89860000000000000001, no SPN. */
  identity?: Partial<SimIdentityState>;
}

/** The inserted SIM's identity (DESIGN.md §10): what AT+CIMI, AT+QCCID and AT+QSPN read. */
export interface SimIdentityState {
  imsi: string;
  iccid: string;
  /** '' = the SIM has no service provider name. */
  spn: string;
}

/** How a SIM swap shows on the line: `cpin` +CPIN: NOT READY then READY; `qusim` +QUSIM: 1, +CPIN: READY only. */
export type SimSwapUrcs = 'cpin' | 'qusim';

type Final = 'OK' | 'ERROR' | 'CONNECT' | { cme: number };

interface Reply {
  lines: string[];
  final: Final;
  /** Runs right after the reply is queued on the line (state changes that follow the answer). */
  after?: () => void;
}

interface PdpConfig {
  type: number;
  apn: string;
  username: string;
  password: string;
  auth: number;
}

interface SendParam {
  validity: number;
  priority: number;
  sendrep: number;
  readrep: number;
  visible: number;
  class: number;
}

interface MmsConfig {
  contextId: number;
  mmsc: string;
  proxyHost: string;
  proxyPort: number;
  charset: SimCharset;
  sendParam: SendParam;
  supportField: number;
  connectTimeoutS: number;
}

interface Address {
  /** The optstring as given (query form shows it). */
  opt: string;
  /** The address after undoing hex under a non-ASCII charset. */
  address: string;
}

interface EditBuffer {
  to: Address[];
  cc: Address[];
  bcc: Address[];
  subject?: { charset: SimCharset; opt: string; text: string };
  attachments: { name: string; key: string; charset: SimCharset }[];
}

interface Upload {
  key: string;
  buf: Buffer;
  size: number;
  received: number;
  ack: boolean;
  timeoutMs: number;
  lastByteAt: number;
  /** "+" bytes held back as a possible escape sequence. */
  plus: number;
  timeoutTimer: unknown;
  escapeTimer: unknown;
}

interface RunningSend {
  ctx: number;
  abort: AbortController;
}

/** What GET /state of the control API shows; also handy in tests. */
export interface VirtualModemState {
  mode: 'off' | 'booting' | 'command' | 'data';
  sim: SimCardState;
  simCard: SimCardState;
  registration: { cgreg: number; cereg: number; cgregMode: number; ceregMode: number };
  attached: boolean;
  fun: number;
  echo: boolean;
  cmee: number;
  pdp: { active: number[]; contexts: Record<string, PdpConfig> };
  mms: MmsConfig;
  edit: {
    to: string[];
    cc: string[];
    bcc: string[];
    subject: { charset: SimCharset; text: string } | null;
    attachments: { name: string; charset: SimCharset }[];
  };
  ramFiles: { name: string; size: number }[];
  ram: { free: number; total: number };
  sendCommands: number;
  sendsAccepted: number;
  /**
   * Bytes on the line since start: `rx` from the host, `tx` to it; `atLastSendResult` as they were
   * when the last `+QMMSEND:` result was written (what a send cost on the wire, for benchmarks).
   */
  line: { rx: number; tx: number; atLastSendResult: { rx: number; tx: number } | null };
  sending: boolean;
  queuedSendResults: number;
  hold: boolean;
  boots: number;
  transcript: string[];
  identity: SimIdentityState;
}

const CHARSETS: readonly SimCharset[] = ['ASCII', 'UTF8', 'UCS2', 'GBK'];
const DEFAULT_SEND_PARAM: SendParam = { validity: 6, priority: 3, sendrep: 0, readrep: 0, visible: 2, class: 4 };
/** Spec §2.1 ranges of "sendparam", in order. */
const SEND_PARAM_MAX = [6, 3, 1, 1, 2, 4] as const;
const MAX_ADDRESSES = 6;
const MAX_ADDRESS_BYTES = 50;
const MAX_SUBJECT_BYTES = 200;
const MAX_ATTACHMENTS = 12;
const MAX_URL_BYTES = 100;
const MAX_PROXY_BYTES = 50;
const MAX_LINE = 2048;
const MAX_TRANSCRIPT = 5000;
/** Spec §4.2: at most three contexts active at once. */
const MAX_ACTIVE_CONTEXTS = 3;
const ACK_BLOCK = 1024;
const CR = 0x0d;
const LF = 0x0a;
const BS = 0x08;
const PLUS = 0x2b;
const LAC = '1A2B';
const CELL_ID = '01C2D3E4';
const ACT_LTE = 7;
const IDENTITY = { manufacturer: 'Quectel', model: 'EC25', revision: 'EC25EFAR06A11M4G' } as const;
const IMEI = '866758040000001';
const IMSI = '001010123456789';
const ICCID = '89860000000000000001';
const OPERATOR = 'Virtual Operator';

function ok(lines: string[] = [], after?: () => void): Reply {
  return { lines, final: 'OK', after };
}
function error(): Reply {
  return { lines: [], final: 'ERROR' };
}
function cme(code: number): Reply {
  return { lines: [], final: { cme: code } };
}

function defaultMmsConfig(): MmsConfig {
  return {
    contextId: 1,
    mmsc: '',
    proxyHost: '',
    proxyPort: 80,
    charset: 'ASCII',
    sendParam: { ...DEFAULT_SEND_PARAM },
    supportField: 0,
    connectTimeoutS: 125,
  };
}

function emptyEdit(): EditBuffer {
  return { to: [], cc: [], bcc: [], attachments: [] };
}

/** Hex optstring (spec §3.3) to bytes; undefined unless an even run of hex digits. */
function hexToBytes(s: string): Buffer | undefined {
  if (s.length === 0 || s.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(s)) return undefined;
  return Buffer.from(s, 'hex');
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** Bytes in the module's charset to text; undefined when they are not valid in it. */
function decodeCharset(bytes: Buffer, charset: SimCharset): string | undefined {
  try {
    switch (charset) {
      case 'ASCII':
        return bytes.toString('latin1');
      case 'UTF8':
        return utf8Strict.decode(bytes);
      case 'UCS2':
        return bytes.length % 2 === 0 ? iconv.decode(bytes, 'utf-16be') : undefined;
      case 'GBK':
        return iconv.decode(bytes, 'gbk');
    }
  } catch {
    return undefined;
  }
}

/** Text the module puts inside a quoted field of its own output. */
function atSafe(text: string): string {
  return text.replace(/["\x00-\x1f\x7f]/g, ' ');
}

/**
 * Events: 'data' (Buffer) — bytes the module writes to the host; 'command' (string) — each AT
 * command line received; 'reboot' () — the module restarted (RDY follows after bootMs).
 */
export class VirtualModem extends EventEmitter {
  private readonly log: Logger;
  private readonly clock: SimClock;
  private readonly pin: string;
  private readonly lteOnly: boolean;
  private readonly bootMs: number;
  private readonly guardMs: number;
  private readonly secondMs: number;
  private readonly sendDelayMs: number;
  private readonly rx: LinePacer;
  private readonly tx: LinePacer;
  private readonly ram: RamFileStore;
  private readonly timers = new Set<unknown>();

  // Physical and network conditions (survive a module restart).
  private simCard: SimCardState;
  private netStat: number;
  private signal: number;
  private sender: SimSender | undefined;
  private identity: SimIdentityState;

  // Faults (survive a module restart; they belong to the test, not the module).
  private sendQueue: SimSendOutcome[];
  private hold = false;
  private holdWaiters: (() => void)[] = [];
  private responseDelayMs: number;
  private dropResponses = 0;
  private garbleResponses = 0;
  private midUrcs: string[] = [];
  private activationFailures = 0;

  // Module state (lost on restart).
  private mode: VirtualModemState['mode'] = 'off';
  private generation = 0;
  private busy = false;
  private lineBuf = '';
  private lineOverflow = false;
  private rxPending: Buffer = Buffer.alloc(0);
  private echo = true;
  private cmee = 1;
  private cgregN = 0;
  private ceregN = 0;
  private fun = 1;
  private pinUnlocked = false;
  private userDetached = false;
  private lastCgreg = 0;
  private lastCereg = 0;
  private pdpConfig = new Map<number, PdpConfig>();
  private active = new Set<number>();
  private mms = defaultMmsConfig();
  private edit = emptyEdit();
  private upload: Upload | undefined;
  private heldUrcs: string[] = [];
  private sending: RunningSend | undefined;
  private bootTimer: unknown;

  // Counters for the control API.
  private sendCommands = 0;
  private sendsAccepted = 0;
  private lineRx = 0;
  private lineTx = 0;
  private lineAtLastSendResult: { rx: number; tx: number } | null = null;
  private boots = 0;
  private transcript: string[] = [];

  private readonly handlers: Readonly<Record<string, (c: ParsedCommand) => Reply | Promise<Reply>>>;

  constructor(opts: VirtualModemOptions) {
    super();
    this.log = opts.logger.child({ part: 'sim' });
    this.clock = opts.clock ?? systemClock;
    this.simCard = opts.sim ?? 'ready';
    this.pin = opts.pin ?? '1234';
    this.lteOnly = opts.lteOnly ?? false;
    this.netStat = opts.registration ?? 1;
    this.bootMs = opts.bootMs ?? 300;
    this.ram = new RamFileStore(opts.ramBytes ?? 2 * 1024 * 1024);
    this.guardMs = opts.escapeGuardMs ?? 1000;
    this.secondMs = opts.secondMs ?? 1000;
    this.sender = opts.sender;
    this.sendQueue = [...(opts.sendResults ?? [])];
    this.sendDelayMs = opts.sendDelayMs ?? 50;
    this.responseDelayMs = opts.responseDelayMs ?? 0;
    this.signal = opts.signal ?? 20;
    this.identity = { imsi: IMSI, iccid: ICCID, spn: '', ...opts.identity };
    this.rx = new LinePacer(this.clock, () => this.pump());
    this.tx = new LinePacer(this.clock, () => this.flushTx());
    this.rx.rate = this.tx.rate = opts.bytesPerSecond ?? 0;
    this.handlers = {
      '': () => ok(),
      E: (c) => this.basicFlag(c, (on) => (this.echo = on)),
      V: (c) => (c.basicArg === '' || c.basicArg === '1' ? ok() : error()),
      Q: (c) => (c.basicArg === '' || c.basicArg === '0' ? ok() : error()),
      Z: () => ok(),
      '&F': () => ok(),
      I: () => ok([IDENTITY.manufacturer, IDENTITY.model, `Revision: ${IDENTITY.revision}`]),
      '+GMI': () => ok([IDENTITY.manufacturer]),
      '+CGMI': () => ok([IDENTITY.manufacturer]),
      '+GMM': () => ok([IDENTITY.model]),
      '+CGMM': () => ok([IDENTITY.model]),
      '+GMR': () => ok([IDENTITY.revision]),
      '+CGMR': () => ok([IDENTITY.revision]),
      '+GSN': () => ok([IMEI]),
      '+CGSN': () => ok([IMEI]),
      '+CMEE': (c) => this.cmdCmee(c),
      '+CPIN': (c) => this.cmdCpin(c),
      '+CIMI': (c) => this.cmdCimi(c),
      '+QCCID': (c) => this.cmdQccid(c),
      '+QSPN': (c) => this.cmdQspn(c),
      '+CSQ': (c) => (c.form === 'exec' ? ok([`+CSQ: ${this.fun === 1 ? this.signal : 99},99`]) : c.form === 'test' ? ok(['+CSQ: (0-31,99),(0-7,99)']) : error()),
      '+COPS': (c) => this.cmdCops(c),
      '+CREG': (c) => this.cmdReg(c, '+CREG'),
      '+CGREG': (c) => this.cmdReg(c, '+CGREG'),
      '+CEREG': (c) => this.cmdReg(c, '+CEREG'),
      '+CGATT': (c) => this.cmdCgatt(c),
      '+CFUN': (c) => this.cmdCfun(c),
      '+QICSGP': (c) => this.cmdQicsgp(c),
      '+QIACT': (c) => this.cmdQiact(c),
      '+QIDEACT': (c) => this.cmdQideact(c),
      '+QFUPL': (c) => this.cmdQfupl(c),
      '+QFLST': (c) => this.cmdQflst(c),
      '+QFDEL': (c) => this.cmdQfdel(c),
      '+QFLDS': (c) => this.cmdQflds(c),
      '+QMMSCFG': (c) => this.mmsGuard(() => this.cmdQmmscfg(c)),
      '+QMMSEDIT': (c) => this.mmsGuard(() => this.cmdQmmsedit(c)),
      '+QMMSEND': (c) => this.mmsGuard(() => this.cmdQmmsend(c)),
    };
  }

  // ───────────────────────────── lifecycle ─────────────────────────────

  /** Powers the module on, already booted (no "RDY": the host was not listening yet). */
  start(): void {
    this.completeBoot(false);
  }

  /** Powers the module off: timers stopped, nothing more is written. */
  stop(): void {
    this.generation++;
    this.mode = 'off';
    this.abortSend();
    this.clearModuleTimers();
    this.rx.clear();
    this.tx.clear();
    this.releaseHold();
  }

  /** Bytes the host wrote to the module. */
  feed(bytes: Buffer): void {
    if (this.mode === 'off') return;
    this.lineRx += bytes.length;
    this.rx.push(Buffer.from(bytes));
  }

  // ───────────────────────────── faults (run time) ─────────────────────────────

  /** Inserts, removes or PIN-locks the SIM card (hot plug: URCs as a real module gives them). */
  setSim(state: SimCardState): void {
    if (state === this.simCard) return;
    this.simCard = state;
    this.pinUnlocked = false;
    if (this.mode !== 'command' && this.mode !== 'data') return;
    if (state === 'ready') this.urc('+CPIN: READY');
    else if (state === 'pin') this.urc('+CPIN: SIM PIN');
    else this.urc('+CPIN: NOT READY');
    this.updateNetwork();
  }

  /**
   * Another SIM goes in (DESIGN.md §10): the card is pulled — its contexts dropped with
   * `+QIURC: "pdpdeact"`, registration lost — and the new one inserted, with the URCs of `urcs`.
   * The SIM ends up READY whatever it was.
   */
  swapSim(identity: Partial<SimIdentityState>, urcs: SimSwapUrcs = 'cpin'): void {
    const live = this.mode === 'command' || this.mode === 'data';
    if (urcs === 'cpin' && this.simCard !== 'absent') this.setSim('absent');
    this.identity = { ...this.identity, ...identity };
    this.log.info({ identity: this.identity, urcs }, 'SIM swapped');
    if (urcs === 'qusim') {
      // The module saw the card go without saying so: the contexts went with it.
      for (const ctx of [...this.active]) this.deactivate(ctx, true);
      this.simCard = 'ready';
      this.pinUnlocked = false;
      if (live) {
        this.urc('+QUSIM: 1');
        this.urc('+CPIN: READY');
      }
      this.updateNetwork();
      return;
    }
    this.setSim('ready');
  }

  /**
   * Someone else uses the module too (the host's own internet over QMI, ECM or PPP): context
   * `ctx` configured with `apn` and active. Refused (false) when three are active already.
   */
  activateOtherContext(ctx: number, apn: string): boolean {
    if (!this.active.has(ctx) && this.active.size >= MAX_ACTIVE_CONTEXTS) return false;
    this.pdpConfig.set(ctx, { type: 1, apn, username: '', password: '', auth: 0 });
    this.active.add(ctx);
    return true;
  }

  /** The network's registration stat (0–5) while the SIM is ready and the radio on. */
  setRegistration(stat: number): void {
    this.netStat = stat;
    this.updateNetwork();
  }

  setSignal(rssi: number): void {
    this.signal = rssi;
  }

  /** The network drops a PDP context: +QIURC: "pdpdeact",<ctx>. False when it was not active. */
  dropPdp(ctx: number): boolean {
    if (!this.active.has(ctx)) return false;
    this.deactivate(ctx, true);
    return true;
  }

  /** Restarts the module now (power glitch, watchdog): everything in RAM lost, RDY after bootMs. */
  reboot(): void {
    this.generation++;
    this.boots++;
    this.mode = 'booting';
    this.busy = false;
    this.abortSend();
    this.clearModuleTimers();
    this.upload = undefined;
    this.heldUrcs = [];
    this.rx.clear();
    this.tx.clear();
    this.rxPending = Buffer.alloc(0);
    this.lineBuf = '';
    this.emit('reboot');
    this.log.info({ bootMs: this.bootMs }, 'module restarting');
    this.bootTimer = this.after(this.bootMs, () => this.completeBoot(true));
  }

  /** Results for the next AT+QMMSENDs (each needs an active PDP context, else 769). */
  queueSendResults(results: SimSendOutcome[]): void {
    this.sendQueue.push(...results);
  }

  /** While on, an accepted AT+QMMSEND never reports (until released or the module restarts). */
  holdSend(on: boolean): void {
    this.hold = on;
    if (!on) this.releaseHold();
  }

  /** Delay before each command's response, ms. */
  setDelay(ms: number): void {
    this.responseDelayMs = Math.max(0, ms);
  }

  /** The next n command responses are not sent at all (the echo still is); 0 ends a drop. */
  dropNextResponses(n: number): void {
    this.dropResponses = n;
  }

  /** The next n command responses arrive with every byte's high bit flipped; 0 ends it. */
  garbleNextResponses(n: number): void {
    this.garbleResponses = n;
  }

  /** The next response carries this URC between its first line and its final result code. */
  injectUrcMidResponse(line: string): void {
    this.midUrcs.push(line);
  }

  /** Emits an unsolicited line now (held back while in upload data mode). */
  emitUrc(line: string): void {
    this.urc(line);
  }

  /** Line rate in bytes per second each way (0 = unthrottled); applies to bytes sent from now. */
  lineRate(bytesPerSecond: number): void {
    this.rx.rate = this.tx.rate = Math.max(0, bytesPerSecond);
  }

  /** The next n AT+QIACT fail with ERROR (spec §4.2). */
  failNextActivations(n: number): void {
    this.activationFailures += n;
  }

  setSender(sender: SimSender | undefined): void {
    this.sender = sender;
  }

  state(): VirtualModemState {
    const sim = this.effectiveSim();
    return {
      mode: this.mode,
      sim,
      simCard: this.simCard,
      registration: { cgreg: this.cgregStat(), cereg: this.ceregStat(), cgregMode: this.cgregN, ceregMode: this.ceregN },
      attached: this.isAttached(),
      fun: this.fun,
      echo: this.echo,
      cmee: this.cmee,
      pdp: {
        active: [...this.active].sort((a, b) => a - b),
        contexts: Object.fromEntries([...this.pdpConfig].map(([k, v]) => [String(k), { ...v }])),
      },
      mms: { ...this.mms, sendParam: { ...this.mms.sendParam } },
      edit: {
        to: this.edit.to.map((a) => a.address),
        cc: this.edit.cc.map((a) => a.address),
        bcc: this.edit.bcc.map((a) => a.address),
        subject: this.edit.subject ? { charset: this.edit.subject.charset, text: this.edit.subject.text } : null,
        attachments: this.edit.attachments.map((a) => ({ name: a.name, charset: a.charset })),
      },
      ramFiles: this.ram.list().map((f) => ({ name: f.name, size: f.data.length })),
      ram: { free: this.ram.free, total: this.ram.capacity },
      sendCommands: this.sendCommands,
      sendsAccepted: this.sendsAccepted,
      line: { rx: this.lineRx, tx: this.lineTx, atLastSendResult: this.lineAtLastSendResult && { ...this.lineAtLastSendResult } },
      sending: this.sending !== undefined,
      queuedSendResults: this.sendQueue.length,
      hold: this.hold,
      boots: this.boots,
      transcript: [...this.transcript],
      identity: { ...this.identity },
    };
  }

  /** Contents of a RAM file, for tests. */
  ramFile(name: string): Buffer | undefined {
    return this.ram.get(normalizeRamName(name));
  }

  // ───────────────────────────── boot ─────────────────────────────

  private completeBoot(announce: boolean): void {
    this.bootTimer = undefined;
    this.mode = 'command';
    this.busy = false;
    this.echo = true;
    this.cmee = 1;
    this.cgregN = 0;
    this.ceregN = 0;
    this.fun = 1;
    this.pinUnlocked = false;
    this.userDetached = false;
    this.pdpConfig = new Map();
    this.active = new Set();
    this.mms = defaultMmsConfig();
    this.edit = emptyEdit();
    this.ram.clear();
    this.upload = undefined;
    this.lineBuf = '';
    this.lastCgreg = this.cgregStat();
    this.lastCereg = this.ceregStat();
    if (!announce) return;
    this.urc('RDY');
    const sim = this.effectiveSim();
    if (sim === 'ready') this.urc('+CPIN: READY');
    else if (sim === 'pin') this.urc('+CPIN: SIM PIN');
    if (sim === 'ready') {
      this.urc('+QIND: PB DONE');
      this.urc('+QIND: SMS DONE');
    }
    this.log.info('module ready (RDY)');
  }

  // ───────────────────────────── line input ─────────────────────────────

  private pump(): void {
    const arrived = this.rx.take();
    if (this.mode !== 'command' && this.mode !== 'data') return;
    if (arrived.length > 0) {
      this.rxPending = this.rxPending.length ? Buffer.concat([this.rxPending, arrived]) : arrived;
    }
    if (this.busy || this.rxPending.length === 0) return;
    const buf = this.rxPending;
    const now = this.clock.now();
    let i = 0;
    let echoFrom = -1;
    const flushEcho = (end: number): void => {
      if (echoFrom >= 0 && end > echoFrom) this.write(buf.subarray(echoFrom, end));
      echoFrom = -1;
    };
    while (i < buf.length && !this.busy) {
      if (this.mode === 'data') {
        this.dataByte(buf[i++], now);
        continue;
      }
      if (this.mode !== 'command') break;
      const b = buf[i];
      if (this.echo && echoFrom < 0) echoFrom = i;
      i++;
      if (b === CR) {
        flushEcho(i);
        const line = this.lineBuf;
        const overflow = this.lineOverflow;
        this.lineBuf = '';
        this.lineOverflow = false;
        if (line.trim() !== '') this.startLine(line, overflow);
      } else if (b === LF) {
        // A CR LF terminator: the LF is echoed and otherwise ignored.
      } else if (b === BS) {
        this.lineBuf = this.lineBuf.slice(0, -1);
      } else if (this.lineBuf.length < MAX_LINE) {
        this.lineBuf += String.fromCharCode(b);
      } else {
        this.lineOverflow = true;
      }
    }
    flushEcho(i);
    this.rxPending = buf.subarray(i);
  }

  private schedulePump(): void {
    this.after(0, () => this.pump());
  }

  private startLine(line: string, overflow: boolean): void {
    this.busy = true;
    const gen = this.generation;
    this.runLine(line, overflow, gen)
      .catch((err: unknown) => this.log.error({ err }, 'command failed inside the sim'))
      .finally(() => {
        if (gen !== this.generation) return;
        this.busy = false;
        this.schedulePump();
      });
  }

  private async runLine(line: string, overflow: boolean, gen: number): Promise<void> {
    const at = line.toUpperCase().indexOf('AT');
    // Real modules ignore a line that holds no "AT" prefix.
    if (at < 0) return;
    const text = line.slice(at).trimEnd();
    this.transcript.push(text);
    if (this.transcript.length > MAX_TRANSCRIPT) this.transcript.shift();
    this.emit('command', text);
    this.log.debug({ cmd: text }, 'AT command');
    const parsed = overflow ? undefined : parseCommand(text.slice(2));
    const handler = parsed ? this.handlers[parsed.name] : undefined;
    const reply = parsed && handler ? await handler(parsed) : error();
    if (this.responseDelayMs > 0) await this.sleep(this.responseDelayMs);
    if (gen !== this.generation) return;
    this.sendReply(reply);
    reply.after?.();
  }

  // ───────────────────────────── output ─────────────────────────────

  private write(bytes: Buffer | string): void {
    if (this.mode === 'off' || this.mode === 'booting') return;
    const b = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes);
    this.lineTx += b.length;
    this.tx.push(b);
  }

  private flushTx(): void {
    const out = this.tx.take();
    if (out.length > 0) this.emit('data', out);
  }

  private finalText(final: Final): string {
    if (final === 'OK' || final === 'ERROR' || final === 'CONNECT') return final;
    if (this.cmee === 0) return 'ERROR';
    return `+CME ERROR: ${this.cmee === 2 ? (CME_TEXT[final.cme] ?? String(final.cme)) : final.cme}`;
  }

  /** Frames a response as the module does: "\r\n<line>\r\n…" then "\r\n<final>\r\n". */
  private sendReply(reply: Reply): void {
    const lines = [...reply.lines];
    const mid = this.midUrcs.splice(0);
    let text = '';
    if (lines.length > 0) {
      text += `\r\n${lines[0]}\r\n`;
      for (const urc of mid) text += `\r\n${urc}\r\n`;
      if (lines.length > 1) text += `${lines.slice(1).join('\r\n')}\r\n`;
    } else {
      for (const urc of mid) text += `\r\n${urc}\r\n`;
    }
    text += `\r\n${this.finalText(reply.final)}\r\n`;
    if (this.dropResponses > 0) {
      this.dropResponses--;
      this.log.debug('fault: response dropped');
      return;
    }
    let bytes = Buffer.from(text, 'latin1');
    if (this.garbleResponses > 0) {
      this.garbleResponses--;
      bytes = Buffer.from(bytes.map((b) => (b === CR || b === LF ? b : b ^ 0x80)));
      this.log.debug('fault: response garbled');
    }
    this.write(bytes);
  }

  /** An unsolicited result code; held back during upload data mode, lost while booting. */
  private urc(line: string): void {
    if (this.mode === 'data') {
      this.heldUrcs.push(line);
      return;
    }
    this.write(`\r\n${line}\r\n`);
  }

  // ───────────────────────────── timers ─────────────────────────────

  /** A timer that dies with the module (restart, stop). */
  private after(ms: number, fn: () => void): unknown {
    const handle = this.clock.setTimeout(() => {
      this.timers.delete(handle);
      fn();
    }, ms);
    this.timers.add(handle);
    return handle;
  }

  private cancel(handle: unknown): void {
    if (handle === undefined) return;
    this.clock.clearTimeout(handle);
    this.timers.delete(handle);
  }

  private clearModuleTimers(): void {
    for (const t of this.timers) this.clock.clearTimeout(t);
    this.timers.clear();
    this.bootTimer = undefined;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.after(ms, resolve));
  }

  // ───────────────────────────── SIM and network ─────────────────────────────

  private effectiveSim(): SimCardState {
    if (this.simCard === 'pin' && this.pinUnlocked) return 'ready';
    return this.simCard;
  }

  private baseStat(): number {
    return this.effectiveSim() === 'ready' && this.fun === 1 ? this.netStat : 0;
  }

  private cgregStat(): number {
    return this.lteOnly ? 0 : this.baseStat();
  }

  private ceregStat(): number {
    return this.baseStat();
  }

  private isRegistered(): boolean {
    const s = this.baseStat();
    return s === 1 || s === 5;
  }

  private isAttached(): boolean {
    return this.isRegistered() && !this.userDetached;
  }

  private regFields(stat: number): string {
    return stat === 1 || stat === 5 ? `,"${LAC}","${CELL_ID}",${ACT_LTE}` : '';
  }

  /** Emits registration URCs for changes and drops the contexts when no longer attached. */
  private updateNetwork(): void {
    if (this.mode !== 'command' && this.mode !== 'data') return;
    const cg = this.cgregStat();
    const ce = this.ceregStat();
    if (cg !== this.lastCgreg) {
      this.lastCgreg = cg;
      if (this.cgregN === 1) this.urc(`+CGREG: ${cg}`);
      else if (this.cgregN === 2) this.urc(`+CGREG: ${cg}${this.regFields(cg)}`);
    }
    if (ce !== this.lastCereg) {
      this.lastCereg = ce;
      if (this.ceregN === 1) this.urc(`+CEREG: ${ce}`);
      else if (this.ceregN === 2) this.urc(`+CEREG: ${ce}${this.regFields(ce)}`);
    }
    if (!this.isAttached()) for (const ctx of [...this.active]) this.deactivate(ctx, true);
  }

  private deactivate(ctx: number, byNetwork: boolean): void {
    if (!this.active.delete(ctx)) return;
    if (byNetwork) this.urc(`+QIURC: "pdpdeact",${ctx}`);
    if (this.sending && this.sending.ctx === ctx) {
      this.sending.abort.abort();
      this.sending = undefined;
      this.urc(`+QMMSEND: ${MMS_ERR.pdpDeactivated},0`);
    }
  }

  private basicFlag(c: ParsedCommand, set: (on: boolean) => void): Reply {
    if (c.basicArg === '' || c.basicArg === '0') set(false);
    else if (c.basicArg === '1') set(true);
    else return error();
    return ok();
  }

  private cmdCmee(c: ParsedCommand): Reply {
    if (c.form === 'query') return ok([`+CMEE: ${this.cmee}`]);
    if (c.form === 'test') return ok(['+CMEE: (0-2)']);
    const n = intParam(c.params[0]);
    if (c.form !== 'set' || c.params.length !== 1 || n === undefined || n > 2) return error();
    this.cmee = n;
    return ok();
  }

  private cmdCpin(c: ParsedCommand): Reply {
    const sim = this.effectiveSim();
    if (c.form === 'test') return ok();
    if (c.form === 'query') {
      if (sim === 'absent') return cme(CME_SIM_NOT_INSERTED);
      return ok([sim === 'pin' ? '+CPIN: SIM PIN' : '+CPIN: READY']);
    }
    if (c.form !== 'set' || c.params.length < 1 || c.params.length > 2) return error();
    if (sim === 'absent') return cme(CME_SIM_NOT_INSERTED);
    if (sim === 'ready') return cme(CME_NOT_ALLOWED);
    if (c.params[0].value !== this.pin) return cme(CME_INCORRECT_PASSWORD);
    return ok([], () => {
      this.pinUnlocked = true;
      this.urc('+CPIN: READY');
      this.updateNetwork();
    });
  }

  private simError(): Reply | undefined {
    const sim = this.effectiveSim();
    if (sim === 'absent') return cme(CME_SIM_NOT_INSERTED);
    if (sim === 'pin') return cme(CME_SIM_PIN_REQUIRED);
    return undefined;
  }

  private cmdCimi(c: ParsedCommand): Reply {
    if (c.form === 'test') return ok();
    if (c.form !== 'exec') return error();
    return this.simError() ?? ok([this.identity.imsi]);
  }

  private cmdQccid(c: ParsedCommand): Reply {
    if (c.form === 'test') return ok();
    if (c.form !== 'exec') return error();
    if (this.simCard === 'absent') return cme(CME_SIM_NOT_INSERTED);
    return ok([`+QCCID: ${this.identity.iccid}`]);
  }

  /** +QSPN: <FNN>,<SNN>,<SPN>,<alphabet>,<RPLMN>; the SPN is the SIM's, "" when it has none. */
  private cmdQspn(c: ParsedCommand): Reply {
    if (c.form === 'test') return ok();
    if (c.form !== 'exec') return error();
    const err = this.simError();
    if (err) return err;
    const { imsi, spn } = this.identity;
    const registered = this.isRegistered();
    // North American networks (MCC 3xx) have three-digit MNCs.
    const plmn = registered ? imsi.slice(0, imsi.startsWith('3') ? 6 : 5) : '';
    return ok([`+QSPN: "${registered ? OPERATOR : ''}","${registered ? 'VOP' : ''}","${atSafe(spn)}",0,"${plmn}"`]);
  }

  private cmdCops(c: ParsedCommand): Reply {
    if (c.form === 'query') {
      return ok([this.isRegistered() ? `+COPS: 0,0,"${OPERATOR}",${ACT_LTE}` : '+COPS: 0']);
    }
    if (c.form === 'test') return ok([`+COPS: (1,"${OPERATOR}","VOP","00101",${ACT_LTE}),,(0-4),(0-2)`]);
    if (c.form === 'set' && intParam(c.params[0]) === 0) return ok();
    return error();
  }

  private cmdReg(c: ParsedCommand, name: '+CREG' | '+CGREG' | '+CEREG'): Reply {
    const getN = (): number => (name === '+CEREG' ? this.ceregN : name === '+CGREG' ? this.cgregN : 0);
    if (c.form === 'test') return ok([`${name}: (0-2)`]);
    if (c.form === 'query') {
      const stat = name === '+CEREG' ? this.ceregStat() : this.cgregStat();
      const n = getN();
      return ok([`${name}: ${n},${stat}${n === 2 ? this.regFields(stat) : ''}`]);
    }
    const n = intParam(c.params[0]);
    if (c.form !== 'set' || c.params.length !== 1 || n === undefined || n > 2) return error();
    if (name === '+CEREG') this.ceregN = n;
    else if (name === '+CGREG') this.cgregN = n;
    else if (n !== 0) return error();
    return ok();
  }

  private cmdCgatt(c: ParsedCommand): Reply {
    if (c.form === 'query') return ok([`+CGATT: ${this.isAttached() ? 1 : 0}`]);
    if (c.form === 'test') return ok(['+CGATT: (0,1)']);
    const v = intParam(c.params[0]);
    if (c.form !== 'set' || c.params.length !== 1 || v === undefined || v > 1) return error();
    if (v === 0) {
      return ok([], () => {
        this.userDetached = true;
        this.updateNetwork();
      });
    }
    const simErr = this.simError();
    if (simErr) return simErr;
    if (!this.isRegistered()) return cme(CME_NO_NETWORK);
    this.userDetached = false;
    return ok();
  }

  private cmdCfun(c: ParsedCommand): Reply {
    if (c.form === 'query') return ok([`+CFUN: ${this.fun}`]);
    if (c.form === 'test') return ok(['+CFUN: (0,1,4),(0,1)']);
    const fun = intParam(c.params[0]);
    const rst = c.params.length > 1 ? intParam(c.params[1]) : 0;
    if (c.form !== 'set' || c.params.length > 2 || fun === undefined || rst === undefined) return error();
    if (![0, 1, 4].includes(fun) || rst > 1) return error();
    if (rst === 1) {
      // §6: "OK" first, then the module restarts once the answer has left the UART.
      return ok([], () => {
        const gen = this.generation;
        const wait = Math.max(0, this.tx.drainedAt - this.clock.now());
        this.after(wait + 1, () => {
          if (gen === this.generation) this.reboot();
        });
      });
    }
    return ok([], () => {
      this.fun = fun;
      this.updateNetwork();
    });
  }

  // ───────────────────────────── PDP contexts ─────────────────────────────

  private cmdQicsgp(c: ParsedCommand): Reply {
    if (c.form === 'test') return ok(['+QICSGP: (1-16),(1-3),<APN>,<username>,<password>,(0-3)']);
    if (c.form !== 'set') return error();
    const ctx = intParam(c.params[0]);
    if (ctx === undefined || ctx < 1 || ctx > 16 || c.params.length > 6) return error();
    if (c.params.length === 1) {
      const cfg = this.pdpConfig.get(ctx) ?? { type: 1, apn: '', username: '', password: '', auth: 0 };
      return ok([`+QICSGP: ${cfg.type},"${cfg.apn}","${cfg.username}","${cfg.password}",${cfg.auth}`]);
    }
    const type = intParam(c.params[1]);
    if (type === undefined || type < 1 || type > 3) return error();
    const str = (p: AtParam | undefined): string | undefined => {
      if (p === undefined) return '';
      return /^[\x20-\x7e]{0,100}$/.test(p.value) ? p.value : undefined;
    };
    const apn = str(c.params[2]);
    const username = str(c.params[3]);
    const password = str(c.params[4]);
    const auth = isOmitted(c.params[5]) ? 0 : intParam(c.params[5]);
    if (apn === undefined || username === undefined || password === undefined) return error();
    if (auth === undefined || auth > 3) return error();
    this.pdpConfig.set(ctx, { type, apn, username, password, auth });
    return ok();
  }

  private cmdQiact(c: ParsedCommand): Reply {
    if (c.form === 'test') return ok(['+QIACT: (1-16)']);
    if (c.form === 'query') {
      const lines = [...this.active]
        .sort((a, b) => a - b)
        .map((ctx) => `+QIACT: ${ctx},1,${this.pdpConfig.get(ctx)?.type ?? 1},"${contextIp(ctx)}"`);
      return ok(lines);
    }
    const ctx = intParam(c.params[0]);
    if (c.form !== 'set' || c.params.length !== 1 || ctx === undefined || ctx < 1 || ctx > 16) return error();
    // §4.2: activation needs the SIM, registration, PS attach, a free slot of the three.
    if (this.effectiveSim() !== 'ready' || !this.isAttached()) return error();
    if (this.active.has(ctx) || this.active.size >= MAX_ACTIVE_CONTEXTS) return error();
    if (this.activationFailures > 0) {
      this.activationFailures--;
      return error();
    }
    this.active.add(ctx);
    return ok();
  }

  private cmdQideact(c: ParsedCommand): Reply {
    if (c.form === 'test') return ok(['+QIDEACT: (1-16)']);
    const ctx = intParam(c.params[0]);
    if (c.form !== 'set' || c.params.length !== 1 || ctx === undefined || ctx < 1 || ctx > 16) return error();
    return ok([], () => this.deactivate(ctx, false));
  }

  // ───────────────────────────── RAM files ─────────────────────────────

  private cmdQfupl(c: ParsedCommand): Reply {
    if (c.form === 'test') return ok([`+QFUPL: <filename>,(1-${this.ram.free}),(1-65535),(0,1)`]);
    if (c.form !== 'set' || c.params.length > 4 || !c.params[0]?.quoted) return error();
    const name = c.params[0].value;
    if (!isValidRamName(name)) return cme(FILE_ERR.invalidFileName);
    const key = normalizeRamName(name);
    if (this.ram.has(key)) return cme(FILE_ERR.fileExists);
    const size = isOmitted(c.params[1]) ? 10240 : intParam(c.params[1]);
    const timeoutS = isOmitted(c.params[2]) ? 5 : intParam(c.params[2]);
    const ackMode = isOmitted(c.params[3]) ? 0 : intParam(c.params[3]);
    if (size === undefined || size < 1) return cme(FILE_ERR.invalidInput);
    if (timeoutS === undefined || timeoutS < 1 || timeoutS > 65535) return cme(FILE_ERR.invalidInput);
    if (ackMode === undefined || ackMode > 1) return cme(FILE_ERR.invalidInput);
    if (size > this.ram.capacity) return cme(FILE_ERR.fileTooLarge);
    if (size > this.ram.free) return cme(FILE_ERR.noSpace);
    return {
      lines: [],
      final: 'CONNECT',
      after: () => this.enterUpload(key, size, timeoutS * this.secondMs, ackMode === 1),
    };
  }

  private enterUpload(key: string, size: number, timeoutMs: number, ack: boolean): void {
    const now = this.clock.now();
    this.mode = 'data';
    this.upload = {
      key,
      buf: Buffer.alloc(size),
      size,
      received: 0,
      ack,
      timeoutMs,
      lastByteAt: now,
      plus: 0,
      timeoutTimer: undefined,
      escapeTimer: undefined,
    };
    this.armUploadTimeout(timeoutMs);
  }

  private armUploadTimeout(ms: number): void {
    const up = this.upload;
    if (!up) return;
    up.timeoutTimer = this.after(ms, () => {
      if (this.upload !== up) return;
      const idle = this.clock.now() - up.lastByteAt;
      if (idle + 0.5 >= up.timeoutMs) this.finishUpload('timeout');
      else this.armUploadTimeout(up.timeoutMs - idle);
    });
  }

  /** One byte in upload data mode: data, or part of a "+++" framed by guard silence (§6). */
  private dataByte(b: number, now: number): void {
    const up = this.upload;
    if (!up) return;
    if (up.escapeTimer !== undefined) {
      // Something followed "+++" within the guard time: it was data after all.
      this.cancel(up.escapeTimer);
      up.escapeTimer = undefined;
    }
    const silentBefore = now - up.lastByteAt >= this.guardMs;
    const couldEscape = up.received + up.plus + 1 < up.size;
    if (b === PLUS && up.plus < 3 && couldEscape && (up.plus > 0 || silentBefore)) {
      up.plus++;
      up.lastByteAt = now;
      if (up.plus === 3) up.escapeTimer = this.after(this.guardMs, () => this.maybeEscape(up));
      return;
    }
    this.flushPlus(up);
    up.lastByteAt = now;
    if (this.upload === up) this.appendData(up, b);
  }

  private flushPlus(up: Upload): void {
    while (up.plus > 0 && this.upload === up) {
      up.plus--;
      this.appendData(up, PLUS);
    }
    up.plus = 0;
  }

  private maybeEscape(up: Upload): void {
    up.escapeTimer = undefined;
    if (this.upload !== up) return;
    // Bytes that reached the module by now break the silence after "+++".
    const late = this.rx.take();
    if (late.length > 0) {
      this.rxPending = this.rxPending.length ? Buffer.concat([this.rxPending, late]) : late;
    }
    if (this.rxPending.length > 0) {
      this.pump();
      return;
    }
    if (this.clock.now() - up.lastByteAt + 0.5 < this.guardMs) return;
    up.plus = 0;
    this.log.info({ file: up.key, received: up.received }, 'upload ended by +++');
    this.finishUpload('escape');
  }

  private appendData(up: Upload, b: number): void {
    up.buf[up.received++] = b;
    if (up.ack && up.received % ACK_BLOCK === 0) this.write('A');
    if (up.received === up.size) this.finishUpload('complete');
  }

  private finishUpload(reason: 'complete' | 'timeout' | 'escape'): void {
    const up = this.upload;
    if (!up) return;
    this.cancel(up.timeoutTimer);
    this.cancel(up.escapeTimer);
    this.upload = undefined;
    const data = Buffer.from(up.buf.subarray(0, up.received));
    this.ram.put(up.key, data);
    this.mode = 'command';
    this.log.debug({ file: up.key, size: data.length, reason }, 'upload finished');
    this.sendReply(ok([`+QFUPL: ${data.length},${checksum16(data).toString(16)}`]));
    for (const line of this.heldUrcs.splice(0)) this.urc(line);
  }

  private cmdQflst(c: ParsedCommand): Reply {
    if (c.form === 'test') return ok();
    if (c.form === 'exec') return ok(); // UFS: nothing stored there in the emulation.
    if (c.form !== 'set' || c.params.length !== 1) return error();
    const pattern = c.params[0].value;
    if (!pattern.toUpperCase().startsWith(RAM_PREFIX)) return pattern.includes('*') ? ok() : cme(FILE_ERR.fileNotFound);
    const files = this.ram.list(normalizeRamName(pattern));
    if (files.length === 0 && !pattern.includes('*')) return cme(FILE_ERR.fileNotFound);
    return ok(files.map((f) => `+QFLST: "${f.name}",${f.data.length}`));
  }

  private cmdQfdel(c: ParsedCommand): Reply {
    if (c.form === 'test') return ok();
    if (c.form !== 'set' || c.params.length !== 1) return error();
    const name = c.params[0].value;
    if (!name.toUpperCase().startsWith(RAM_PREFIX)) return name === '*' ? ok() : cme(FILE_ERR.fileNotFound);
    if (name.slice(RAM_PREFIX.length) === '*') {
      this.ram.clear();
      return ok();
    }
    return this.ram.delete(normalizeRamName(name)) ? ok() : cme(FILE_ERR.fileNotFound);
  }

  private cmdQflds(c: ParsedCommand): Reply {
    if (c.form === 'test') return ok();
    const where = c.form === 'set' ? c.params[0]?.value.toUpperCase() : 'UFS';
    if (where === 'RAM') return ok([`+QFLDS: ${this.ram.free},${this.ram.capacity}`]);
    if (where === 'UFS') return ok(['+QFLDS: 10485760,10485760']);
    return cme(FILE_ERR.invalidInput);
  }

  // ───────────────────────────── MMS (spec §2) ─────────────────────────────

  /** §4.1: MMS commands answer ERROR while the (U)SIM is missing or not READY. */
  private mmsGuard(run: () => Reply): Reply {
    return this.effectiveSim() === 'ready' ? run() : error();
  }

  private cmdQmmscfg(c: ParsedCommand): Reply {
    if (c.form === 'test') {
      return ok([
        '+QMMSCFG: "contextid",(1-16)',
        '+QMMSCFG: "mmsc",<URL>',
        '+QMMSCFG: "proxy",<gateway>,(1-65535)',
        '+QMMSCFG: "character",("ASCII","UTF8","UCS2","GBK")',
        '+QMMSCFG: "sendparam",(0-6),(0-3),(0,1),(0,1),(0-2),(0-4)',
        '+QMMSCFG: "supportfield",(0,1)',
        '+QMMSCFG: "connecttimeout",(1-125)',
      ]);
    }
    if (c.form === 'query') return ok();
    if (c.form !== 'set') return error();
    const bad = cme(MMS_ERR.invalidParameter);
    const sub = c.params[0]?.value.toLowerCase() ?? '';
    const args = c.params.slice(1);
    const query = args.length === 0;
    const one = (): number | undefined => (args.length === 1 ? intParam(args[0]) : undefined);
    switch (sub) {
      case 'contextid': {
        if (query) return ok([`+QMMSCFG: "contextid",${this.mms.contextId}`]);
        const v = one();
        if (v === undefined || v < 1 || v > 16) return bad;
        this.mms.contextId = v;
        return ok();
      }
      case 'mmsc': {
        if (query) return ok([`+QMMSCFG: "mmsc","${this.mms.mmsc}"`]);
        if (args.length !== 1) return bad;
        const url = args[0].value;
        if (Buffer.byteLength(url, 'latin1') > MAX_URL_BYTES) return cme(MMS_ERR.urlLength);
        if (!/^[\x21-\x7e]+$/.test(url)) return cme(MMS_ERR.url);
        this.mms.mmsc = url;
        return ok();
      }
      case 'proxy': {
        if (query) return ok([`+QMMSCFG: "proxy","${this.mms.proxyHost}",${this.mms.proxyPort}`]);
        if (args.length !== 2) return bad;
        const host = args[0].value;
        const port = intParam(args[1]);
        if (Buffer.byteLength(host, 'latin1') > MAX_PROXY_BYTES || !/^[\x21-\x7e]*$/.test(host)) {
          return cme(MMS_ERR.proxyAddress);
        }
        if (port === undefined || port < 1 || port > 65535) return bad;
        this.mms.proxyHost = host;
        this.mms.proxyPort = port;
        return ok();
      }
      case 'character': {
        if (query) return ok([`+QMMSCFG: "character","${this.mms.charset}"`]);
        const cs = args.length === 1 ? CHARSETS.find((x) => x === args[0].value.toUpperCase()) : undefined;
        if (!cs) return bad;
        this.mms.charset = cs;
        return ok();
      }
      case 'sendparam': {
        const sp = this.mms.sendParam;
        if (query) {
          return ok([`+QMMSCFG: "sendparam",${sp.validity},${sp.priority},${sp.sendrep},${sp.readrep},${sp.visible},${sp.class}`]);
        }
        if (args.length !== 6) return bad;
        const v = args.map((a) => intParam(a));
        if (v.some((x, i) => x === undefined || x > SEND_PARAM_MAX[i])) return bad;
        const [validity, priority, sendrep, readrep, visible, klass] = v as number[];
        this.mms.sendParam = { validity: validity, priority: priority, sendrep: sendrep, readrep: readrep, visible: visible, class: klass };
        return ok();
      }
      case 'supportfield': {
        if (query) return ok([`+QMMSCFG: "supportfield",${this.mms.supportField}`]);
        const v = one();
        if (v === undefined || v > 1) return bad;
        this.mms.supportField = v;
        return ok();
      }
      case 'connecttimeout': {
        if (query) return ok([`+QMMSCFG: "connecttimeout",${this.mms.connectTimeoutS}`]);
        const v = one();
        if (v === undefined || v < 1 || v > 125) return bad;
        this.mms.connectTimeoutS = v;
        return ok();
      }
      default:
        return bad;
    }
  }

  private cmdQmmsedit(c: ParsedCommand): Reply {
    if (c.form === 'test') return ok(['+QMMSEDIT: (0-5),(0,1),<optstring>']);
    if (c.form === 'query') return ok();
    if (c.form !== 'set') return error();
    const bad = cme(MMS_ERR.invalidParameter);
    const fn = intParam(c.params[0]);
    if (fn === undefined || fn > 5 || c.params.length > 3) return bad;
    if (c.params.length === 1) {
      if (fn === 0) {
        if (this.sending) return cme(MMS_ERR.busy);
        this.edit = emptyEdit();
        return ok();
      }
      return ok(this.editQuery(fn));
    }
    const conf = intParam(c.params[1]);
    if (fn === 0 || conf === undefined || conf > 1) return bad;
    if (this.sending) return cme(MMS_ERR.busy);
    if (conf === 0) {
      if (c.params.length !== 2) return bad;
      if (fn <= 3) this.addressList(fn).length = 0;
      else if (fn === 4) this.edit.subject = undefined;
      else this.edit.attachments = [];
      return ok();
    }
    const opt = c.params[2];
    if (opt === undefined) return bad;
    if (fn <= 3) return this.addAddress(fn, opt.value);
    if (fn === 4) return this.setSubject(opt.value);
    return this.addAttachment(opt.value);
  }

  private addressList(fn: number): Address[] {
    return fn === 1 ? this.edit.to : fn === 2 ? this.edit.cc : this.edit.bcc;
  }

  private editQuery(fn: number): string[] {
    if (fn <= 3) return this.addressList(fn).map((a) => `+QMMSEDIT: ${fn},"${a.opt}"`);
    if (fn === 4) {
      const s = this.edit.subject;
      return s ? [`+QMMSEDIT: 4,"${s.charset}","${s.opt}"`] : [];
    }
    return this.edit.attachments.map((a) => `+QMMSEDIT: 5,"${a.name}"`);
  }

  /** §2.2: ≤ 6 per list, ≤ 50 bytes; under a non-ASCII charset the firmware reads hex (§6). */
  private addAddress(fn: number, opt: string): Reply {
    const list = this.addressList(fn);
    if (list.length >= MAX_ADDRESSES) return cme(fn === 1 ? MMS_ERR.toFull : fn === 2 ? MMS_ERR.ccFull : MMS_ERR.bccFull);
    let address = opt;
    if (this.mms.charset !== 'ASCII') {
      const bytes = hexToBytes(opt);
      const text = bytes && decodeCharset(bytes, this.mms.charset);
      if (text === undefined) return cme(MMS_ERR.invalidParameter);
      address = text;
    }
    if (address === '' || Buffer.byteLength(address, 'utf8') > MAX_ADDRESS_BYTES || /[\x00-\x1f"]/.test(address)) {
      return cme(MMS_ERR.invalidParameter);
    }
    list.push({ opt, address });
    return ok();
  }

  /** §3.3: plain printable text under ASCII, hex of the charset's bytes otherwise; ≤ 200 bytes. */
  private setSubject(opt: string): Reply {
    const charset = this.mms.charset;
    let text: string | undefined;
    if (charset === 'ASCII') {
      if (!/^[\x20-\x7e]*$/.test(opt) || opt.length > MAX_SUBJECT_BYTES) return cme(MMS_ERR.invalidParameter);
      text = opt;
    } else {
      const bytes = hexToBytes(opt);
      if (!bytes || bytes.length > MAX_SUBJECT_BYTES) return cme(MMS_ERR.invalidParameter);
      text = decodeCharset(bytes, charset);
      if (text === undefined) return cme(MMS_ERR.invalidParameter);
    }
    this.edit.subject = { charset, opt, text };
    return ok();
  }

  /** §2.2: a file in the store (RAM only in the emulation), name ≤ 80 bytes, ≤ 12 attachments. */
  private addAttachment(name: string): Reply {
    if (name === '' || Buffer.byteLength(name, 'latin1') > 80) return cme(MMS_ERR.invalidParameter);
    if (this.edit.attachments.length >= MAX_ATTACHMENTS) return cme(MMS_ERR.attachmentsFull);
    if (!name.toUpperCase().startsWith(RAM_PREFIX)) return cme(MMS_ERR.fileNotFound);
    const key = normalizeRamName(name);
    if (!this.ram.has(key)) return cme(MMS_ERR.fileNotFound);
    this.edit.attachments.push({ name, key, charset: this.mms.charset });
    return ok();
  }

  private cmdQmmsend(c: ParsedCommand): Reply {
    if (c.form === 'test') return ok(['+QMMSEND: (1-65535)']);
    if (c.form === 'query') return ok();
    if (c.form !== 'set') return error();
    this.sendCommands++;
    const timeoutS = intParam(c.params[0]);
    if (c.params.length !== 1 || timeoutS === undefined || timeoutS < 1 || timeoutS > 65535) {
      return cme(MMS_ERR.invalidParameter);
    }
    if (this.sending) return cme(MMS_ERR.busy);
    if (this.edit.to.length + this.edit.cc.length + this.edit.bcc.length === 0) return cme(MMS_ERR.noRecipient);
    const send: RunningSend = { ctx: this.mms.contextId, abort: new AbortController() };
    this.sending = send;
    this.sendsAccepted++;
    const request = this.snapshotRequest(timeoutS, send.abort.signal);
    return ok([], () => {
      const gen = this.generation;
      this.performSend(send, request)
        .then((outcome) => {
          if (gen !== this.generation || this.sending !== send) return;
          this.sending = undefined;
          this.urc(formatSendUrc(outcome));
          this.lineAtLastSendResult = { rx: this.lineRx, tx: this.lineTx };
        })
        .catch((err: unknown) => this.log.error({ err }, 'send failed inside the sim'));
    });
  }

  /** The edited message as the module holds it when AT+QMMSEND is accepted. */
  private snapshotRequest(timeoutS: number, signal: AbortSignal): SimSendRequest | { missing: string } {
    const attachments: SimSendRequest['attachments'] = [];
    for (const a of this.edit.attachments) {
      const data = this.ram.get(a.key);
      if (!data) return { missing: a.name };
      attachments.push({ name: a.name, data, charset: a.charset });
    }
    const m = this.mms;
    return {
      to: this.edit.to.map((a) => a.address),
      cc: this.edit.cc.map((a) => a.address),
      bcc: this.edit.bcc.map((a) => a.address),
      ...(this.edit.subject ? { subject: { charset: this.edit.subject.charset, text: this.edit.subject.text } } : {}),
      attachments,
      sendParam: { ...m.sendParam },
      supportField: m.supportField,
      mmsc: m.mmsc,
      ...(m.proxyHost !== '' ? { proxy: { host: m.proxyHost, port: m.proxyPort } } : {}),
      connectTimeoutS: m.connectTimeoutS,
      timeoutS,
      signal,
    };
  }

  private async performSend(send: RunningSend, request: SimSendRequest | { missing: string }): Promise<SimSendOutcome> {
    if (this.hold) {
      await new Promise<void>((resolve) => {
        this.holdWaiters.push(resolve);
        send.abort.signal.addEventListener('abort', () => resolve(), { once: true });
      });
    }
    if (send.abort.signal.aborted) return { err: MMS_ERR.unknown, httpStatus: 0 };
    await this.sleep(this.sendDelayMs);
    if (!this.active.has(send.ctx)) return { err: MMS_ERR.pdpDeactivated, httpStatus: 0 };
    const injected = this.sendQueue.shift();
    if (injected) return injected;
    if ('missing' in request) return { err: MMS_ERR.fileNotFound, httpStatus: 0 };
    if (request.mmsc === '') return { err: MMS_ERR.url, httpStatus: 0 };
    if (!this.sender) return { err: 0, httpStatus: 200 };
    const sender = this.sender;
    return new Promise<SimSendOutcome>((resolve) => {
      // §2.3: when <timeout> passes the send is interrupted.
      const timer = this.after(request.timeoutS * this.secondMs, () => {
        send.abort.abort();
        resolve({ err: MMS_ERR.timeout, httpStatus: 0 });
      });
      sender(request).then(
        (outcome) => {
          this.cancel(timer);
          resolve(outcome);
        },
        (err: unknown) => {
          this.cancel(timer);
          this.log.warn({ err }, 'sender failed');
          resolve({ err: MMS_ERR.unknown, httpStatus: 0 });
        },
      );
    });
  }

  private abortSend(): void {
    if (!this.sending) return;
    this.sending.abort.abort();
    this.sending = undefined;
  }

  private releaseHold(): void {
    for (const w of this.holdWaiters.splice(0)) w();
  }
}

function contextIp(ctx: number): string {
  return `10.7.157.${ctx}`;
}

/** "RAM:" prefix in one spelling, so that "ram:x" and "RAM:x" name the same file. */
function normalizeRamName(name: string): string {
  return name.toUpperCase().startsWith(RAM_PREFIX) ? RAM_PREFIX + name.slice(RAM_PREFIX.length) : name;
}

function formatSendUrc(o: SimSendOutcome): string {
  const base = `+QMMSEND: ${o.err},${o.httpStatus}`;
  return o.mmsrsp !== undefined && o.mmsrsp !== '' ? `${base},"${atSafe(o.mmsrsp)}"` : base;
}
