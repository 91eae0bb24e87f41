// The virtual module's MMS commands (spec §2, §3): AT+QMMSCFG settings (the charset among them),
// the AT+QMMSEDIT edit buffer, and AT+QMMSEND, which hands the edited message to the sender (the
// HTTP post to the MMSC, mms-post.ts) and reports +QMMSEND: <err>,<httprsp>[,<mmsrsp>].
// MMS commands answer "ERROR" while the SIM is not READY (spec §4.1).
import type { Logger } from 'pino';
import { intParam, type ParsedCommand } from './at-parser.js';
import { CHARSETS, atSafe, decodeCharset, hexToBytes } from './charset.js';
import { MMS_ERR } from './cme-codes.js';
import { cme, error, ok, type Capability, type CommandTable, type ModuleCore, type Reply } from './modem-capability.js';
import type { ModemFaults } from './modem-faults.js';
import type { ModemFiles } from './modem-files.js';
import type { ModemNetwork } from './modem-network.js';
import { RAM_PREFIX, normalizeRamName } from './ram-files.js';
import type { SimCharset, SimSendOutcome, SimSendRequest, SimSender } from './types.js';

interface SendParam {
  validity: number;
  priority: number;
  sendrep: number;
  readrep: number;
  visible: number;
  class: number;
}

export interface MmsConfig {
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

interface RunningSend {
  ctx: number;
  abort: AbortController;
}

/** What GET /state shows of the MMS side. */
export interface MmsState {
  mms: MmsConfig;
  edit: {
    to: string[];
    cc: string[];
    bcc: string[];
    subject: { charset: SimCharset; text: string } | null;
    attachments: { name: string; charset: SimCharset }[];
  };
  sendCommands: number;
  sendsAccepted: number;
  atLastSendResult: { rx: number; tx: number } | null;
  sending: boolean;
}

export interface ModemMmsOptions {
  network: ModemNetwork;
  files: ModemFiles;
  faults: ModemFaults;
  /** Performs AT+QMMSEND when no injected result is queued (e.g. postMms). */
  sender: SimSender | undefined;
  /** Time an injected or default AT+QMMSEND result takes. */
  sendDelayMs: number;
}

const DEFAULT_SEND_PARAM: SendParam = { validity: 6, priority: 3, sendrep: 0, readrep: 0, visible: 2, class: 4 };
/** Spec §2.1 ranges of "sendparam", in order. */
const SEND_PARAM_MAX = [6, 3, 1, 1, 2, 4] as const;
const MAX_ADDRESSES = 6;
const MAX_ADDRESS_BYTES = 50;
const MAX_SUBJECT_BYTES = 200;
const MAX_ATTACHMENTS = 12;
const MAX_URL_BYTES = 100;
const MAX_PROXY_BYTES = 50;

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

export class ModemMms implements Capability {
  readonly name = 'mms';
  readonly commands: CommandTable;
  private readonly log: Logger;
  private sender: SimSender | undefined;

  // Module state (lost on restart).
  private mms = defaultMmsConfig();
  private edit = emptyEdit();
  private sending: RunningSend | undefined;

  // Counters for the control API.
  private sendCommands = 0;
  private sendsAccepted = 0;
  private lineAtLastSendResult: { rx: number; tx: number } | null = null;

  constructor(
    private readonly core: ModuleCore,
    private readonly opts: ModemMmsOptions,
  ) {
    this.log = core.log;
    this.sender = opts.sender;
    this.commands = {
      '+QMMSCFG': (c) => this.mmsGuard(() => this.cmdQmmscfg(c)),
      '+QMMSEDIT': (c) => this.mmsGuard(() => this.cmdQmmsedit(c)),
      '+QMMSEND': (c) => this.mmsGuard(() => this.cmdQmmsend(c)),
    };
    // A send running on a context that goes down reports 769 at once (§6).
    opts.network.onContextDown((ctx) => {
      if (!this.sending || this.sending.ctx !== ctx) return;
      this.sending.abort.abort();
      this.sending = undefined;
      this.core.urc(`+QMMSEND: ${MMS_ERR.pdpDeactivated},0`);
    });
  }

  reset(): void {
    this.mms = defaultMmsConfig();
    this.edit = emptyEdit();
  }

  /** A running send is abandoned: it never reports. */
  halt(): void {
    if (!this.sending) return;
    this.sending.abort.abort();
    this.sending = undefined;
  }

  setSender(sender: SimSender | undefined): void {
    this.sender = sender;
  }

  state(): MmsState {
    const e = this.edit;
    return {
      mms: { ...this.mms, sendParam: { ...this.mms.sendParam } },
      edit: {
        to: e.to.map((a) => a.address),
        cc: e.cc.map((a) => a.address),
        bcc: e.bcc.map((a) => a.address),
        subject: e.subject ? { charset: e.subject.charset, text: e.subject.text } : null,
        attachments: e.attachments.map((a) => ({ name: a.name, charset: a.charset })),
      },
      sendCommands: this.sendCommands,
      sendsAccepted: this.sendsAccepted,
      atLastSendResult: this.lineAtLastSendResult && { ...this.lineAtLastSendResult },
      sending: this.sending !== undefined,
    };
  }

  /** §4.1: MMS commands answer ERROR while the (U)SIM is missing or not READY. */
  private mmsGuard(run: () => Reply): Reply {
    return this.opts.network.simState === 'ready' ? run() : error();
  }

  // ── AT+QMMSCFG (§2.1) ──

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

  // ── AT+QMMSEDIT (§2.2, §3) ──

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
    if (!this.opts.files.has(key)) return cme(MMS_ERR.fileNotFound);
    this.edit.attachments.push({ name, key, charset: this.mms.charset });
    return ok();
  }

  // ── AT+QMMSEND (§2.3) ──

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
      const gen = this.core.generation;
      this.performSend(send, request)
        .then((outcome) => {
          if (gen !== this.core.generation || this.sending !== send) return;
          this.sending = undefined;
          this.core.urc(formatSendUrc(outcome));
          this.lineAtLastSendResult = this.core.lineBytes;
        })
        .catch((err: unknown) => this.log.error({ err }, 'send failed inside the sim'));
    });
  }

  /** The edited message as the module holds it when AT+QMMSEND is accepted. */
  private snapshotRequest(timeoutS: number, signal: AbortSignal): SimSendRequest | { missing: string } {
    const attachments: SimSendRequest['attachments'] = [];
    for (const a of this.edit.attachments) {
      const data = this.opts.files.file(a.key);
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
    const faults = this.opts.faults;
    if (faults.holding) await faults.untilReleased(send.abort.signal);
    if (send.abort.signal.aborted) return { err: MMS_ERR.unknown, httpStatus: 0 };
    await this.core.sleep(this.opts.sendDelayMs);
    if (!this.opts.network.isActive(send.ctx)) return { err: MMS_ERR.pdpDeactivated, httpStatus: 0 };
    const injected = faults.takeSendResult();
    if (injected) return injected;
    if ('missing' in request) return { err: MMS_ERR.fileNotFound, httpStatus: 0 };
    if (request.mmsc === '') return { err: MMS_ERR.url, httpStatus: 0 };
    if (!this.sender) return { err: 0, httpStatus: 200 };
    const sender = this.sender;
    return new Promise<SimSendOutcome>((resolve) => {
      // §2.3: when <timeout> passes the send is interrupted.
      const timer = this.core.after(request.timeoutS * this.core.secondMs, () => {
        send.abort.abort();
        resolve({ err: MMS_ERR.timeout, httpStatus: 0 });
      });
      sender(request).then(
        (outcome) => {
          this.core.cancel(timer);
          resolve(outcome);
        },
        (err: unknown) => {
          this.core.cancel(timer);
          this.log.warn({ err }, 'sender failed');
          resolve({ err: MMS_ERR.unknown, httpStatus: 0 });
        },
      );
    });
  }
}

function formatSendUrc(o: SimSendOutcome): string {
  const base = `+QMMSEND: ${o.err},${o.httpStatus}`;
  return o.mmsrsp !== undefined && o.mmsrsp !== '' ? `${base},"${atSafe(o.mmsrsp)}"` : base;
}
