// VirtualModem: a transport-agnostic emulation of a Quectel EC2x module's AT side (DESIGN.md §7).
// It composes the core (modem-core.ts: line, framing, dispatch, timers) with the capability
// modules, each owning its commands and state: V.250 basics (modem-v250.ts), SIM/network/PDP
// (modem-network.ts), RAM files (modem-files.ts), MMS (modem-mms.ts), SMS (modem-sms.ts), the HTTP(S) stack
// (modem-http.ts); faults that belong to the
// test live in modem-faults.ts. The public API below is what serve.ts, the control API and tests use.
//
// Choices where the spec is silent (documented in docs/sim.md):
// - AT+CMEE defaults to 1 after boot; unknown or malformed commands answer plain "ERROR".
// - Chained command lines follow V.250 §5.4 (modem-core.ts); ";" after a basic command is refused.
import type { Logger } from 'pino';
import { TypedEmitter } from '../core/events.js';
import { systemClock, type SimClock } from './line-pacer.js';
import type { Capability } from './modem-capability.js';
import { ModemCore } from './modem-core.js';
import { ModemFaults } from './modem-faults.js';
import { ModemFiles } from './modem-files.js';
import { ModemHttp, type HttpState } from './modem-http.js';
import { ModemMms, type MmsState } from './modem-mms.js';
import { ModemNetwork, type NetworkState, type SimCardState, type SimIdentityState, type SimSwapUrcs } from './modem-network.js';
import { ModemSms, type SmsMemory, type SmsMemoryName, type SmsState } from './modem-sms.js';
import { pushPdus, textPdus, type PushOptions } from './sms-inject.js';
import { V250Basics } from './modem-v250.js';
import type { SimSendOutcome, SimSender } from './types.js';

export type { SimClock } from './line-pacer.js';
export type { SimCardState, SimIdentityState, SimSwapUrcs } from './modem-network.js';

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
  /** AT+QFUPL receive buffer: bytes not yet stored the module holds (modem-files.ts). Default 4096. */
  uploadBufferBytes?: number;
  /** Time the module takes to store one 1024-byte upload block before its "A". Default 0 (at once). */
  uploadBlockMs?: number;
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
  /** SMS store capacities in messages. Default 25 for "ME", 50 for "SM". */
  smsCapacity?: Partial<Record<SmsMemory, number>>;
}

/** One SMS the network delivered: its PDU and where it was stored (null: the store was full). */
export interface SmsArrival {
  pdu: string;
  stored: { mem: SmsMemoryName; index: number } | null;
}

/** What GET /state of the control API shows; also handy in tests. */
export interface VirtualModemState {
  mode: 'off' | 'booting' | 'command' | 'data';
  sim: SimCardState;
  simCard: SimCardState;
  registration: NetworkState['registration'];
  attached: boolean;
  fun: number;
  echo: boolean;
  cmee: number;
  pdp: NetworkState['pdp'];
  mms: MmsState['mms'];
  edit: MmsState['edit'];
  ramFiles: { name: string; size: number }[];
  ram: { free: number; total: number };
  /** The HTTP(S) stack: AT+QHTTPCFG settings, the URL, the request in flight or to be read. */
  http: HttpState;
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
  /** The SMS side: settings, stored messages (index, stat, PDU) and SMS refused for a full store. */
  sms: SmsState;
  transcript: string[];
  identity: SimIdentityState;
}

export interface VirtualModemEvents {
  /** Bytes the module writes to the host. */
  data: [bytes: Buffer];
  /** Each AT command line received. */
  command: [line: string];
  /** The module restarted (RDY follows after bootMs). */
  reboot: [];
}

export class VirtualModem extends TypedEmitter<VirtualModemEvents> {
  private readonly log: Logger;
  private readonly bootMs: number;
  private readonly core: ModemCore;
  private readonly faults: ModemFaults;
  private readonly v250: V250Basics;
  private readonly network: ModemNetwork;
  private readonly files: ModemFiles;
  private readonly mms: ModemMms;
  private readonly sms: ModemSms;
  private readonly http: ModemHttp;
  private smsRef = 0;
  /** In boot order: each one's reset() may read the state of those before it. */
  private readonly capabilities: readonly Capability[];
  private boots = 0;

  constructor(opts: VirtualModemOptions) {
    super();
    this.log = opts.logger.child({ part: 'sim' });
    this.bootMs = opts.bootMs ?? 300;
    this.faults = new ModemFaults(this.log, { sendResults: opts.sendResults, responseDelayMs: opts.responseDelayMs });
    const core = new ModemCore({
      logger: this.log,
      clock: opts.clock ?? systemClock,
      secondMs: opts.secondMs ?? 1000,
      bytesPerSecond: opts.bytesPerSecond ?? 0,
      faults: this.faults,
      onData: (bytes) => this.emit('data', bytes),
      onCommand: (line) => this.emit('command', line),
      onReboot: () => this.reboot(),
    });
    this.core = core;
    this.v250 = new V250Basics(core, () => this.network.update());
    this.network = new ModemNetwork(core, {
      sim: opts.sim ?? 'ready',
      pin: opts.pin ?? '1234',
      lteOnly: opts.lteOnly ?? false,
      registration: opts.registration ?? 1,
      signal: opts.signal ?? 20,
      identity: opts.identity,
      fun: () => this.v250.fun,
      faults: this.faults,
    });
    this.files = new ModemFiles(core, {
      ramBytes: opts.ramBytes ?? 2 * 1024 * 1024,
      escapeGuardMs: opts.escapeGuardMs ?? 1000,
      uploadBufferBytes: opts.uploadBufferBytes ?? 4096,
      uploadBlockMs: opts.uploadBlockMs ?? 0,
    });
    this.mms = new ModemMms(core, {
      network: this.network,
      files: this.files,
      faults: this.faults,
      sender: opts.sender,
      sendDelayMs: opts.sendDelayMs ?? 50,
    });
    this.sms = new ModemSms(core, { capacity: { ME: opts.smsCapacity?.ME ?? 25, SM: opts.smsCapacity?.SM ?? 50 } });
    // The HTTP(S) stack: PDP contexts from network, response bodies into the RAM store of files.
    this.http = new ModemHttp(core, { network: this.network, files: this.files });
    this.capabilities = [this.v250, this.network, this.files, this.mms, this.sms, this.http];
    core.install(this.v250, this.capabilities);
  }

  // ───────────────────────────── lifecycle ─────────────────────────────

  /** Powers the module on, already booted (no "RDY": the host was not listening yet). */
  start(): void {
    this.completeBoot(false);
  }

  /** Powers the module off: timers stopped, nothing more is written. */
  stop(): void {
    this.core.powerOff();
    for (const cap of this.capabilities) cap.halt?.();
    this.faults.releaseHold();
  }

  /** Bytes the host wrote to the module. */
  feed(bytes: Buffer): void {
    this.core.feed(bytes);
  }

  /** Restarts the module now (power glitch, watchdog): everything in RAM lost, RDY after bootMs. */
  reboot(): void {
    this.boots++;
    this.core.restarting();
    for (const cap of this.capabilities) cap.halt?.();
    this.emit('reboot');
    this.log.info({ bootMs: this.bootMs }, 'module restarting');
    this.core.after(this.bootMs, () => this.completeBoot(true));
  }

  private completeBoot(announce: boolean): void {
    this.core.booted();
    for (const cap of this.capabilities) cap.reset();
    if (!announce) return;
    this.core.urc('RDY');
    for (const cap of this.capabilities) cap.announceBoot?.();
    this.log.info('module ready (RDY)');
  }

  // ───────────────────────────── conditions and faults (run time) ─────────────────────────────

  /** Inserts, removes or PIN-locks the SIM card (hot plug: URCs as a real module gives them). */
  setSim(state: SimCardState): void {
    this.network.setSim(state);
  }

  /** Another SIM goes in (DESIGN.md §10), announced with the URCs of `urcs`. */
  swapSim(identity: Partial<SimIdentityState>, urcs: SimSwapUrcs = 'cpin'): void {
    this.log.info({ identity, urcs }, 'SIM swapped');
    this.network.swapSim(identity, urcs);
  }

  /** Someone else's context (the host's own internet): `ctx` active with `apn`; false when three are active. */
  activateOtherContext(ctx: number, apn: string): boolean {
    return this.network.activateOtherContext(ctx, apn);
  }

  /** The network's registration stat (0–5) while the SIM is ready and the radio on. */
  setRegistration(stat: number): void {
    this.network.setRegistration(stat);
  }

  setSignal(rssi: number): void {
    this.network.setSignal(rssi);
  }

  /** The network drops a PDP context: +QIURC: "pdpdeact",<ctx>. False when it was not active. */
  dropPdp(ctx: number): boolean {
    return this.network.dropPdp(ctx);
  }

  /** Results for the next AT+QMMSENDs (each needs an active PDP context, else 769). */
  queueSendResults(results: SimSendOutcome[]): void {
    this.faults.queueSendResults(results);
  }

  /** While on, an accepted AT+QMMSEND never reports (until released or the module restarts). */
  holdSend(on: boolean): void {
    this.faults.holdSend(on);
  }

  /** Delay before each command's response, ms. */
  setDelay(ms: number): void {
    this.faults.setDelay(ms);
  }

  /** The next n command responses are not sent at all (the echo still is); 0 ends a drop. */
  dropNextResponses(n: number): void {
    this.faults.dropNextResponses(n);
  }

  /** The next n command responses arrive with every byte's high bit flipped; 0 ends it. */
  garbleNextResponses(n: number): void {
    this.faults.garbleNextResponses(n);
  }

  /** The next response carries this URC between its first line and its final result code. */
  injectUrcMidResponse(line: string): void {
    this.faults.injectUrcMidResponse(line);
  }

  /** Emits an unsolicited line now (held back while in upload data mode). */
  emitUrc(line: string): void {
    this.core.urc(line);
  }

  /** Line rate in bytes per second each way (0 = unthrottled); applies to bytes sent from now. */
  lineRate(bytesPerSecond: number): void {
    this.core.lineRate(bytesPerSecond);
  }

  /** The next n AT+QIACT fail with ERROR (spec §4.2). */
  failNextActivations(n: number): void {
    this.faults.failNextActivations(n);
  }

  // ───────────────────────────── SMS from the network ─────────────────────────────

  /**
   * One SMS-DELIVER (hex, SMSC field first) arrives: stored, +CMTI as AT+CNMI says. Undefined when
   * the store was full (counted as `rejected`). Throws SmsPduError for what is not a PDU in hex.
   */
  deliverSms(pduHex: string): { mem: SmsMemoryName; index: number } | undefined {
    return this.sms.store(pduHex);
  }

  /** An MMS PDU (e.g. M-Delivery.ind) arrives as WAP-push SMS; the options shape the segments. */
  deliverPush(mmsPdu: Buffer, opts: PushOptions = {}): SmsArrival[] {
    return this.arrive(pushPdus(mmsPdu, { ref: this.nextSmsRef(), ...opts }));
  }

  /** AT+CMGD held unanswered and not carried out (a test's window between an SMS read and its deletion). */
  holdSmsDeletes(on: boolean): void {
    this.sms.holdDeletes(on);
  }

  /** A plain text SMS arrives (concatenated when long). */
  deliverText(text: string, from: string): SmsArrival[] {
    return this.arrive(textPdus(text, from, { ref: this.nextSmsRef() }));
  }

  private arrive(pdus: string[]): SmsArrival[] {
    return pdus.map((pdu) => ({ pdu, stored: this.sms.store(pdu) ?? null }));
  }

  private nextSmsRef(): number {
    this.smsRef = (this.smsRef + 1) & 0xff;
    return this.smsRef;
  }

  setSender(sender: SimSender | undefined): void {
    this.mms.setSender(sender);
  }

  // ───────────────────────────── inspection ─────────────────────────────

  state(): VirtualModemState {
    const net = this.network.state();
    const mms = this.mms.state();
    const files = this.files.state();
    const line = this.core.lineBytes;
    return {
      mode: this.core.mode,
      sim: net.sim,
      simCard: net.simCard,
      registration: net.registration,
      attached: net.attached,
      fun: this.v250.fun,
      echo: this.v250.echo,
      cmee: this.v250.cmee,
      pdp: net.pdp,
      mms: mms.mms,
      edit: mms.edit,
      ramFiles: files.ramFiles,
      ram: files.ram,
      http: this.http.state(),
      sendCommands: mms.sendCommands,
      sendsAccepted: mms.sendsAccepted,
      line: { rx: line.rx, tx: line.tx, atLastSendResult: mms.atLastSendResult },
      sending: mms.sending,
      queuedSendResults: this.faults.queuedSendResults,
      hold: this.faults.holding,
      boots: this.boots,
      sms: this.sms.state(),
      transcript: this.core.transcript,
      identity: net.identity,
    };
  }

  /** Contents of a RAM file, for tests. */
  ramFile(name: string): Buffer | undefined {
    return this.files.file(name);
  }
}
