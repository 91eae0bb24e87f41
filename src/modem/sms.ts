// The SMS side of the driver (DESIGN.md §12 module side; 3GPP TS 27.005 in PDU mode): storage,
// indications and reading. It sets the module up once the SIM is ready (and again after RDY or a
// reconnect), reads what `+CMTI` announces (AT+CMGR) and, after each set-up, everything stored
// (AT+CMGL=4), and deletes (AT+CMGD) only when told. What the SMS carry is not its business.
import type { Logger } from 'pino';
import { ClosedError, CmsError } from '../at/errors.js';
import type { AtCommander, PduEntry } from '../at/types.js';
import { TypedEmitter } from '../core/events.js';
import { fieldsOf, unquote } from './answers.js';
import { int, quote } from './quote.js';
import type { ModemState, ModemStatus } from './types.js';

export type SmsStorage = 'ME' | 'SM' | 'MT';

/** One stored SMS as the module lists it: its index in the storage and its PDU in hex. */
export interface StoredSms {
  index: number;
  /** Hex, SMSC field first (TS 27.005 §3.1). */
  pdu: string;
  /** `<length>` of the header: the TPDU's octets. */
  tpduLength?: number;
}

/** The modem events the SMS side follows (QuectelModem emits them). */
export interface ModemEvents {
  on(event: 'status', fn: (s: ModemStatus) => void): unknown;
  on(event: 'rebooted', fn: () => void): unknown;
  off(event: 'status', fn: (s: ModemStatus) => void): unknown;
  off(event: 'rebooted', fn: () => void): unknown;
  readonly status: ModemStatus;
}

export interface SmsDriverOptions {
  at: AtCommander;
  modem: ModemEvents;
  logger: Logger;
  storage: SmsStorage;
  commandTimeoutMs: number;
}

/** TS 27.005 §3.2.5: +CMS ERROR 321, invalid memory index (nothing stored there). */
export const CMS_INVALID_INDEX = 321;
/** AT+CMGL over a full storage lists up to a few hundred PDUs of ~350 characters. */
const CMGL_TIMEOUT_MS = 30_000;

/** A failed set-up (or scan) is tried again this much later, or at the next status change. */
const SETUP_RETRY_MS = 30_000;

/** States in which the SIM answered READY (DESIGN.md §6): the SMS storage can be used. */
const SIM_READY: readonly ModemState[] = ['searching', 'registered', 'ready', 'unconfigured', 'context-in-use'];

/** `+CMTI: "<mem>",<index>` → the index, or undefined. */
export function parseCmti(line: string): { mem: string; index: number } | undefined {
  const f = fieldsOf(line, '+CMTI:');
  if (f.length < 2 || !/^\d+$/.test(f[1])) return undefined;
  return { mem: unquote(f[0]), index: Number(f[1]) };
}

/** A `+CMGL: <index>,<stat>,[<alpha>],<length>` entry and its PDU → StoredSms, or undefined. */
export function parseCmglEntry(e: PduEntry): StoredSms | undefined {
  const f = fieldsOf(e.header, '+CMGL:');
  if (!/^\d+$/.test(f[0] ?? '')) return undefined;
  const len = f.at(-1);
  return { index: Number(f[0]), pdu: e.body.trim(), ...(len !== undefined && /^\d+$/.test(len) ? { tpduLength: Number(len) } : {}) };
}

/** What the SMS side of the driver tells its listener. */
export interface SmsDriverEvents {
  /** Every SMS read, after +CMTI and for each one AT+CMGL lists. */
  sms: [sms: StoredSms];
  /** After each AT+CMGL=4: how many SMS it listed. */
  scanned: [count: number];
}

export class SmsDriver extends TypedEmitter<SmsDriverEvents> {
  private readonly log: Logger;
  private configured = false;
  private settingUp: Promise<void> | undefined;
  private running = false;
  private retry: NodeJS.Timeout | undefined;
  private readonly detach: (() => void)[] = [];

  constructor(private readonly o: SmsDriverOptions) {
    super();
    this.log = o.logger.child({ part: 'sms' });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const onStatus = (s: ModemStatus): void => this.onStatus(s);
    const onRebooted = (): void => {
      // RDY or a reconnect: the module forgot AT+CMGF/CPMS/CNMI; SMS may have come meanwhile.
      this.configured = false;
    };
    this.o.modem.on('status', onStatus);
    this.o.modem.on('rebooted', onRebooted);
    this.detach.push(() => {
      this.o.modem.off('status', onStatus);
      this.o.modem.off('rebooted', onRebooted);
    });
    this.detach.push(
      this.o.at.onUrc('+CMTI:', (line) => {
        const cmti = parseCmti(line);
        if (cmti) this.onArrived(cmti.index);
      }),
    );
    this.onStatus(this.o.modem.status);
  }

  stop(): void {
    this.running = false;
    if (this.retry) clearTimeout(this.retry);
    this.retry = undefined;
    for (const off of this.detach.splice(0)) off();
  }

  /** AT+CMGD=<index>: the SMS is gone; an index already empty is fine. */
  async delete(index: number): Promise<void> {
    try {
      await this.o.at.command(`AT+CMGD=${int(index, 0, 65535, 'SMS index')}`, { timeoutMs: this.o.commandTimeoutMs });
    } catch (e) {
      if (e instanceof CmsError && e.code === CMS_INVALID_INDEX) return;
      throw e;
    }
    this.log.debug({ index }, 'SMS deleted');
  }

  /** AT+CMGR=<index> → the SMS, or undefined when nothing is stored there. */
  async read(index: number): Promise<StoredSms | undefined> {
    try {
      const res = await this.o.at.command(`AT+CMGR=${int(index, 0, 65535, 'SMS index')}`, {
        prefix: '+CMGR:',
        pdu: true,
        timeoutMs: this.o.commandTimeoutMs,
      });
      const e = res.pdus[0];
      if (!e) return undefined;
      const len = fieldsOf(e.header, '+CMGR:').at(-1);
      return { index, pdu: e.body.trim(), ...(len !== undefined && /^\d+$/.test(len) ? { tpduLength: Number(len) } : {}) };
    } catch (e) {
      if (e instanceof CmsError && e.code === CMS_INVALID_INDEX) return undefined;
      throw e;
    }
  }

  /** AT+CMGL=4: every stored SMS, read or not. */
  async list(): Promise<StoredSms[]> {
    const res = await this.o.at.command('AT+CMGL=4', { prefix: '+CMGL:', pdu: true, timeoutMs: CMGL_TIMEOUT_MS });
    return res.pdus.map(parseCmglEntry).filter((s): s is StoredSms => s !== undefined);
  }

  private onStatus(s: ModemStatus): void {
    if (!this.running) return;
    if (!SIM_READY.includes(s.state)) {
      // The port went away or the SIM did: set up again when it is back.
      if (s.state === 'absent' || s.state === 'initializing' || s.state === 'sim-missing') this.configured = false;
      return;
    }
    if (this.configured || this.settingUp) return;
    this.settingUp = this.setUpAndScan().finally(() => {
      this.settingUp = undefined;
    });
  }

  /** AT+CMGF=0, AT+CPMS, AT+CNMI=2,1,0,0,0, then AT+CMGL=4 for what came while away. */
  private async setUpAndScan(): Promise<void> {
    const t = { timeoutMs: this.o.commandTimeoutMs };
    const mem = quote(this.o.storage, 'SMS storage');
    try {
      await this.o.at.command('AT+CMGF=0', t);
      await this.o.at.command(`AT+CPMS=${mem},${mem},${mem}`, { ...t, prefix: '+CPMS:' });
      await this.o.at.command('AT+CNMI=2,1,0,0,0', t);
      this.configured = true;
      const all = await this.list();
      this.log.info({ storage: this.o.storage, stored: all.length }, 'SMS storage read');
      for (const sms of all) this.emit('sms', sms);
      this.emit('scanned', all.length);
    } catch (err) {
      if (err instanceof ClosedError) this.log.debug({ err }, 'SMS set-up interrupted: port closed');
      else this.log.warn({ err, retryInMs: SETUP_RETRY_MS }, 'SMS set-up failed; trying again');
      if (this.running && this.retry === undefined) {
        this.retry = setTimeout(() => {
          this.retry = undefined;
          this.onStatus(this.o.modem.status);
        }, SETUP_RETRY_MS);
        this.retry.unref();
      }
    }
  }

  private onArrived(index: number): void {
    if (!this.running) return;
    this.read(index).then(
      (sms) => {
        if (sms) this.emit('sms', sms);
        else this.log.warn({ index }, '+CMTI named an empty index');
      },
      (err: unknown) => this.log.warn({ err, index }, 'cannot read an arrived SMS; read at the next AT+CMGL'),
    );
  }
}
