// The virtual module's SIM card, network registration, packet attach, signal and PDP contexts (spec
// §4.1, §4.2; 27.007 +CPIN, +CIMI, +CREG/+CGREG/+CEREG, +CGATT, +CSQ, +COPS; Quectel AT+QCCID,
// AT+QSPN, AT+QICSGP/QIACT/QIDEACT), with the URCs a real module gives when any of them changes.
// In LTE-only mode +CGREG reports stat 0; registration shows through +CEREG only.
import { intParam, isOmitted, type AtParam, type ParsedCommand } from './at-parser.js';
import { CME_INCORRECT_PASSWORD, CME_NOT_ALLOWED, CME_NO_NETWORK, CME_SIM_NOT_INSERTED, CME_SIM_PIN_REQUIRED } from './cme-codes.js';
import { cme, error, ok, type Capability, type CommandTable, type ModuleCore, type Reply } from './modem-capability.js';
import type { ModemFaults } from './modem-faults.js';

export type SimCardState = 'ready' | 'absent' | 'pin';

export interface PdpConfig {
  type: number;
  apn: string;
  username: string;
  password: string;
  auth: number;
}

export interface ModemNetworkOptions {
  /** The SIM card: present and unlocked, missing, or PIN-locked. */
  sim: SimCardState;
  /** PIN that AT+CPIN="…" accepts for a PIN-locked card. */
  pin: string;
  /** Register through +CEREG only (+CGREG stays 0). */
  lteOnly: boolean;
  /** Network registration stat (27.007 <stat>) while the SIM is ready and the radio on. */
  registration: number;
  /** +CSQ rssi, 0–31 or 99. */
  signal: number;
  /** The radio's functionality level (AT+CFUN, owned by the V.250 basics). */
  fun: () => number;
  faults: ModemFaults;
  /** The SIM's identity (AT+CIMI, AT+QCCID, AT+QSPN); defaults for what is not given. */
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

/** What GET /state shows of the network side. */
export interface NetworkState {
  sim: SimCardState;
  simCard: SimCardState;
  registration: { cgreg: number; cereg: number; cgregMode: number; ceregMode: number };
  attached: boolean;
  pdp: { active: number[]; contexts: Record<string, PdpConfig> };
  identity: SimIdentityState;
}

/** Spec §4.2: at most three contexts active at once. */
const MAX_ACTIVE_CONTEXTS = 3;
const LAC = '1A2B';
const CELL_ID = '01C2D3E4';
const ACT_LTE = 7;
const IMSI = '001010123456789';
const ICCID = '89860000000000000001';
const OPERATOR = 'Virtual Operator';

export class ModemNetwork implements Capability {
  readonly name = 'network';
  readonly commands: CommandTable;
  private readonly pin: string;
  private readonly lteOnly: boolean;
  private readonly contextDown: ((ctx: number) => void)[] = [];

  // Physical and network conditions (survive a module restart).
  private simCard: SimCardState;
  private netStat: number;
  private signal: number;
  private identity: SimIdentityState;

  // Module state (lost on restart).
  private cgregN = 0;
  private ceregN = 0;
  private pinUnlocked = false;
  private userDetached = false;
  private lastCgreg = 0;
  private lastCereg = 0;
  private pdpConfig = new Map<number, PdpConfig>();
  private active = new Set<number>();

  constructor(
    private readonly core: ModuleCore,
    private readonly opts: ModemNetworkOptions,
  ) {
    this.simCard = opts.sim;
    this.pin = opts.pin;
    this.lteOnly = opts.lteOnly;
    this.netStat = opts.registration;
    this.signal = opts.signal;
    this.identity = { imsi: IMSI, iccid: ICCID, spn: '', ...opts.identity };
    this.commands = {
      '+CPIN': (c) => this.cmdCpin(c),
      '+CIMI': (c) => this.cmdCimi(c),
      '+QCCID': (c) => this.cmdQccid(c),
      '+QSPN': (c) => this.cmdQspn(c),
      '+CSQ': (c) => this.cmdCsq(c),
      '+COPS': (c) => this.cmdCops(c),
      '+CREG': (c) => this.cmdReg(c, '+CREG'),
      '+CGREG': (c) => this.cmdReg(c, '+CGREG'),
      '+CEREG': (c) => this.cmdReg(c, '+CEREG'),
      '+CGATT': (c) => this.cmdCgatt(c),
      '+QICSGP': (c) => this.cmdQicsgp(c),
      '+QIACT': (c) => this.cmdQiact(c),
      '+QIDEACT': (c) => this.cmdQideact(c),
    };
  }

  reset(): void {
    this.cgregN = 0;
    this.ceregN = 0;
    this.pinUnlocked = false;
    this.userDetached = false;
    this.pdpConfig = new Map();
    this.active = new Set();
    this.lastCgreg = this.cgregStat();
    this.lastCereg = this.ceregStat();
  }

  announceBoot(): void {
    const sim = this.simState;
    if (sim === 'ready') this.core.urc('+CPIN: READY');
    else if (sim === 'pin') this.core.urc('+CPIN: SIM PIN');
    if (sim === 'ready') {
      this.core.urc('+QIND: PB DONE');
      this.core.urc('+QIND: SMS DONE');
    }
  }

  // ── conditions (faults) ──

  /** Inserts, removes or PIN-locks the SIM card (hot plug: URCs as a real module gives them). */
  setSim(state: SimCardState): void {
    if (state === this.simCard) return;
    this.simCard = state;
    this.pinUnlocked = false;
    if (!this.core.running) return;
    if (state === 'ready') this.core.urc('+CPIN: READY');
    else if (state === 'pin') this.core.urc('+CPIN: SIM PIN');
    else this.core.urc('+CPIN: NOT READY');
    this.update();
  }

  /**
   * Another SIM goes in (DESIGN.md §10): the card is pulled — its contexts dropped with
   * `+QIURC: "pdpdeact"`, registration lost — and the new one inserted, with the URCs of `urcs`.
   * The SIM ends up READY whatever it was.
   */
  swapSim(identity: Partial<SimIdentityState>, urcs: SimSwapUrcs = 'cpin'): void {
    if (urcs === 'cpin' && this.simCard !== 'absent') this.setSim('absent');
    this.identity = { ...this.identity, ...identity };
    if (urcs === 'qusim') {
      // The module saw the card go without saying so: the contexts went with it.
      for (const ctx of [...this.active]) this.deactivate(ctx, true);
      this.simCard = 'ready';
      this.pinUnlocked = false;
      if (this.core.running) {
        this.core.urc('+QUSIM: 1');
        this.core.urc('+CPIN: READY');
      }
      this.update();
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
    this.update();
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

  // ── for the other capabilities ──

  /** The SIM as the module sees it: a PIN-locked card reads "ready" once unlocked. */
  get simState(): SimCardState {
    if (this.simCard === 'pin' && this.pinUnlocked) return 'ready';
    return this.simCard;
  }

  isActive(ctx: number): boolean {
    return this.active.has(ctx);
  }

  /** Runs when a context goes down (by AT+QIDEACT or by the network), after its URC. */
  onContextDown(listener: (ctx: number) => void): void {
    this.contextDown.push(listener);
  }

  /** Emits registration URCs for changes and drops the contexts when no longer attached. */
  update(): void {
    if (!this.core.running) return;
    const cg = this.cgregStat();
    const ce = this.ceregStat();
    if (cg !== this.lastCgreg) {
      this.lastCgreg = cg;
      if (this.cgregN === 1) this.core.urc(`+CGREG: ${cg}`);
      else if (this.cgregN === 2) this.core.urc(`+CGREG: ${cg}${this.regFields(cg)}`);
    }
    if (ce !== this.lastCereg) {
      this.lastCereg = ce;
      if (this.ceregN === 1) this.core.urc(`+CEREG: ${ce}`);
      else if (this.ceregN === 2) this.core.urc(`+CEREG: ${ce}${this.regFields(ce)}`);
    }
    if (!this.isAttached()) for (const ctx of [...this.active]) this.deactivate(ctx, true);
  }

  state(): NetworkState {
    return {
      sim: this.simState,
      simCard: this.simCard,
      registration: { cgreg: this.cgregStat(), cereg: this.ceregStat(), cgregMode: this.cgregN, ceregMode: this.ceregN },
      attached: this.isAttached(),
      pdp: {
        active: [...this.active].sort((a, b) => a - b),
        contexts: Object.fromEntries([...this.pdpConfig].map(([k, v]) => [String(k), { ...v }])),
      },
      identity: { ...this.identity },
    };
  }

  // ── registration ──

  private baseStat(): number {
    return this.simState === 'ready' && this.opts.fun() === 1 ? this.netStat : 0;
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

  private deactivate(ctx: number, byNetwork: boolean): void {
    if (!this.active.delete(ctx)) return;
    if (byNetwork) this.core.urc(`+QIURC: "pdpdeact",${ctx}`);
    for (const listener of this.contextDown) listener(ctx);
  }

  // ── SIM ──

  private cmdCpin(c: ParsedCommand): Reply {
    const sim = this.simState;
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
      this.core.urc('+CPIN: READY');
      this.update();
    });
  }

  private simError(): Reply | undefined {
    const sim = this.simState;
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
    return ok([`+QSPN: "${registered ? OPERATOR : ''}","${registered ? 'VOP' : ''}","${spn.replace(/["\x00-\x1f\x7f]/g, ' ')}",0,"${plmn}"`]);
  }

  // ── network ──

  private cmdCsq(c: ParsedCommand): Reply {
    if (c.form === 'exec') return ok([`+CSQ: ${this.opts.fun() === 1 ? this.signal : 99},99`]);
    return c.form === 'test' ? ok(['+CSQ: (0-31,99),(0-7,99)']) : error();
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
        this.update();
      });
    }
    const simErr = this.simError();
    if (simErr) return simErr;
    if (!this.isRegistered()) return cme(CME_NO_NETWORK);
    this.userDetached = false;
    return ok();
  }

  // ── PDP contexts ──

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
    if (this.simState !== 'ready' || !this.isAttached()) return error();
    if (this.active.has(ctx) || this.active.size >= MAX_ACTIVE_CONTEXTS) return error();
    if (this.opts.faults.takeActivationFailure()) return error();
    this.active.add(ctx);
    return ok();
  }

  private cmdQideact(c: ParsedCommand): Reply {
    if (c.form === 'test') return ok(['+QIDEACT: (1-16)']);
    const ctx = intParam(c.params[0]);
    if (c.form !== 'set' || c.params.length !== 1 || ctx === undefined || ctx < 1 || ctx > 16) return error();
    return ok([], () => this.deactivate(ctx, false));
  }
}

function contextIp(ctx: number): string {
  return `10.7.157.${ctx}`;
}
