// The virtual module's SMS side (3GPP TS 27.005, PDU mode; DESIGN.md §12 module side): message
// storage in "ME" and "SM" (AT+CPMS), AT+CMGF, AT+CNMI with the +CMTI URC, AT+CMGR, AT+CMGL and
// AT+CMGD. What the network delivers comes in through store() (VirtualModem.deliverSms).
//
// Choices where the standard leaves room (documented in docs/sim.md):
// - Indexes start at 0, as on Quectel modules; "MT" is a view of "ME" (its counts and messages).
// - Storage is non-volatile: messages survive a restart; CMGF, CPMS and CNMI return to their
//   power-on values (PDU mode, "ME" for all three, CNMI 2,1,0,0,0).
// - A full <mem3> refuses an arriving SMS (counted as `rejected`, no URC); the network would keep it.
// - AT+CMGR of an empty or out-of-range index: +CMS ERROR: 321. AT+CMGD of an empty index in
//   range: OK (nothing to delete), out of range: 321. AT+CMGR/CMGL in text mode: +CMS ERROR: 302.
import { intParam, isOmitted, type ParsedCommand } from './at-parser.js';
import { cms, error, ok, type Capability, type CommandTable, type ModuleCore, type Reply } from './modem-capability.js';

export type SmsMemory = 'ME' | 'SM';
export type SmsMemoryName = SmsMemory | 'MT';
const MEMORIES: readonly SmsMemoryName[] = ['ME', 'SM', 'MT'];

/** 27.005 <stat> in PDU mode. */
export const SMS_STAT = { unread: 0, read: 1, unsent: 2, sent: 3, all: 4 } as const;

export interface StoredSms {
  index: number;
  stat: number;
  /** Hex, SMSC field first, as AT+CMGR prints it. */
  pdu: string;
}

export interface SmsState {
  cmgf: number;
  cpms: [SmsMemoryName, SmsMemoryName, SmsMemoryName];
  cnmi: number[];
  stores: Record<SmsMemory, { capacity: number; messages: StoredSms[] }>;
  /** SMS that arrived while <mem3> was full. */
  rejected: number;
  /** SMS stored since start. */
  delivered: number;
}

export interface ModemSmsOptions {
  /** Capacity of each store in messages. */
  capacity: Record<SmsMemory, number>;
}

/** Thrown for a PDU that is not hex of at least an SMSC field and one octet. */
export class SmsPduError extends Error {
  override readonly name = 'SmsPduError';
}

const CMS = { unknown: 500, notAllowed: 302, invalidPduParam: 304, invalidIndex: 321, memoryFull: 322 } as const;

function physical(mem: SmsMemoryName): SmsMemory {
  return mem === 'SM' ? 'SM' : 'ME';
}

/** TPDU length in octets: the PDU without its SMSC field (TS 27.005 §3.1 <length>). */
export function tpduLength(pduHex: string): number {
  const smscLen = parseInt(pduHex.slice(0, 2), 16);
  return pduHex.length / 2 - 1 - smscLen;
}

export class ModemSms implements Capability {
  readonly name = 'sms';
  readonly commands: CommandTable;
  private readonly stores: Record<SmsMemory, (StoredSms | undefined)[]>;
  private cmgf = 0;
  private cpms: [SmsMemoryName, SmsMemoryName, SmsMemoryName] = ['ME', 'ME', 'ME'];
  private cnmi = [2, 1, 0, 0, 0];
  private rejectedCount = 0;
  private deliveredCount = 0;
  private deleteHeld = false;
  private heldDeletes: (() => void)[] = [];

  constructor(
    private readonly core: ModuleCore,
    opts: ModemSmsOptions,
  ) {
    this.stores = {
      ME: new Array<StoredSms | undefined>(opts.capacity.ME).fill(undefined),
      SM: new Array<StoredSms | undefined>(opts.capacity.SM).fill(undefined),
    };
    this.commands = {
      '+CMGF': (c) => this.cmdCmgf(c),
      '+CPMS': (c) => this.cmdCpms(c),
      '+CNMI': (c) => this.cmdCnmi(c),
      '+CMGR': (c) => this.cmdCmgr(c),
      '+CMGL': (c) => this.cmdCmgl(c),
      '+CMGD': (c) => (this.deleteHeld && c.form === 'set' ? new Promise<Reply>((resolve) => this.heldDeletes.push(() => resolve(cms(CMS.unknown)))) : this.cmdCmgd(c)),
    };
  }

  /**
   * A fault, not the module's: while on, AT+CMGD is not carried out and not answered; switched off,
   * the held ones answer +CMS ERROR: 500 and delete nothing (as if they never reached the module).
   */
  holdDeletes(on: boolean): void {
    this.deleteHeld = on;
    if (!on) for (const release of this.heldDeletes.splice(0)) release();
  }

  reset(): void {
    this.cmgf = 0;
    this.cpms = ['ME', 'ME', 'ME'];
    this.cnmi = [2, 1, 0, 0, 0];
  }

  /**
   * An SMS the network delivers: stored in <mem3> (lowest free index) and announced with +CMTI
   * when AT+CNMI's <mt> is 1. Returns where it went, or undefined when the store was full.
   */
  store(pduHex: string): { mem: SmsMemoryName; index: number } | undefined {
    const pdu = pduHex.toUpperCase();
    if (!/^([0-9A-F]{2})+$/.test(pdu) || tpduLength(pdu) < 1) throw new SmsPduError(`not an SMS PDU in hex: "${pduHex.slice(0, 40)}"`);
    const mem = this.cpms[2];
    const slots = this.stores[physical(mem)];
    const index = slots.indexOf(undefined);
    if (index < 0) {
      this.rejectedCount++;
      this.core.log.warn({ mem, rejected: this.rejectedCount }, 'SMS refused: memory full');
      return undefined;
    }
    slots[index] = { index, stat: SMS_STAT.unread, pdu };
    this.deliveredCount++;
    this.core.log.debug({ mem, index }, 'SMS stored');
    if (this.cnmi[1] === 1) this.core.urc(`+CMTI: "${mem}",${index}`);
    return { mem, index };
  }

  state(): SmsState {
    const view = (m: SmsMemory) => ({
      capacity: this.stores[m].length,
      messages: this.stores[m].filter((s): s is StoredSms => s !== undefined).map((s) => ({ ...s })),
    });
    return {
      cmgf: this.cmgf,
      cpms: [...this.cpms],
      cnmi: [...this.cnmi],
      stores: { ME: view('ME'), SM: view('SM') },
      rejected: this.rejectedCount,
      delivered: this.deliveredCount,
    };
  }

  private used(mem: SmsMemoryName): string {
    const slots = this.stores[physical(mem)];
    return `${slots.filter((s) => s !== undefined).length},${slots.length}`;
  }

  // ── settings ──

  private cmdCmgf(c: ParsedCommand): Reply {
    if (c.form === 'test') return ok(['+CMGF: (0,1)']);
    if (c.form === 'query') return ok([`+CMGF: ${this.cmgf}`]);
    const mode = c.form === 'exec' ? 0 : intParam(c.params[0]);
    if (mode === undefined || mode > 1 || c.params.length > 1) return error();
    this.cmgf = mode;
    return ok();
  }

  private cmdCpms(c: ParsedCommand): Reply {
    const list = `(${MEMORIES.map((m) => `"${m}"`).join(',')})`;
    if (c.form === 'test') return ok([`+CPMS: ${list},${list},${list}`]);
    if (c.form === 'query') return ok([`+CPMS: ${this.cpms.map((m) => `"${m}",${this.used(m)}`).join(',')}`]);
    if (c.form !== 'set' || c.params.length < 1 || c.params.length > 3) return error();
    const next: [SmsMemoryName, SmsMemoryName, SmsMemoryName] = [...this.cpms];
    for (const [i, p] of c.params.entries()) {
      if (isOmitted(p)) continue;
      const mem = p.value.toUpperCase() as SmsMemoryName;
      if (!MEMORIES.includes(mem)) return cms(CMS.notAllowed);
      next[i] = mem;
    }
    this.cpms = next;
    return ok([`+CPMS: ${this.cpms.map((m) => this.used(m)).join(',')}`]);
  }

  private cmdCnmi(c: ParsedCommand): Reply {
    if (c.form === 'test') return ok(['+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)']);
    if (c.form === 'query') return ok([`+CNMI: ${this.cnmi.join(',')}`]);
    if (c.form !== 'set' || c.params.length > 5) return error();
    const max = [2, 3, 2, 2, 1];
    const next = [...this.cnmi];
    for (const [i, p] of c.params.entries()) {
      if (isOmitted(p)) continue;
      const v = intParam(p);
      if (v === undefined || v > max[i]) return cms(CMS.notAllowed);
      next[i] = v;
    }
    this.cnmi = next;
    return ok();
  }

  // ── reading, listing, deleting ──

  private slotsOf(mem: SmsMemoryName): (StoredSms | undefined)[] {
    return this.stores[physical(mem)];
  }

  private cmdCmgr(c: ParsedCommand): Reply {
    if (c.form === 'test') return ok();
    if (c.form !== 'set' || c.params.length !== 1) return error();
    if (this.cmgf !== 0) return cms(CMS.notAllowed);
    const index = intParam(c.params[0]);
    if (index === undefined) return error();
    const sms = this.slotsOf(this.cpms[0])[index];
    if (sms === undefined) return cms(CMS.invalidIndex);
    const reply = ok([`+CMGR: ${sms.stat},,${tpduLength(sms.pdu)}`, sms.pdu]);
    if (sms.stat === SMS_STAT.unread) sms.stat = SMS_STAT.read;
    return reply;
  }

  private cmdCmgl(c: ParsedCommand): Reply {
    if (c.form === 'test') return ok(['+CMGL: (0-4)']);
    if (this.cmgf !== 0) return cms(CMS.notAllowed);
    const stat = c.form === 'exec' ? SMS_STAT.unread : intParam(c.params[0]);
    if (stat === undefined || stat > SMS_STAT.all || c.params.length > 2) return cms(CMS.invalidPduParam);
    const lines: string[] = [];
    for (const sms of this.slotsOf(this.cpms[0])) {
      if (sms === undefined || (stat !== SMS_STAT.all && sms.stat !== stat)) continue;
      lines.push(`+CMGL: ${sms.index},${sms.stat},,${tpduLength(sms.pdu)}`, sms.pdu);
      if (sms.stat === SMS_STAT.unread) sms.stat = SMS_STAT.read;
    }
    return ok(lines);
  }

  private cmdCmgd(c: ParsedCommand): Reply {
    if (c.form === 'test') {
      const indexes = this.slotsOf(this.cpms[0]).flatMap((s) => (s ? [s.index] : []));
      return ok([`+CMGD: (${indexes.join(',')}),(0-4)`]);
    }
    if (c.form !== 'set' || c.params.length < 1 || c.params.length > 2) return error();
    const index = intParam(c.params[0]);
    const flag = isOmitted(c.params[1]) ? 0 : intParam(c.params[1]);
    if (index === undefined || flag === undefined || flag > 4) return error();
    const slots = this.slotsOf(this.cpms[0]);
    if (flag === 0) {
      if (index >= slots.length) return cms(CMS.invalidIndex);
      slots[index] = undefined;
      return ok();
    }
    // <delflag> 1: all read; 2: read and sent; 3: read, sent and unsent; 4: all (index ignored).
    const doomed = [[], [SMS_STAT.read], [SMS_STAT.read, SMS_STAT.sent], [SMS_STAT.read, SMS_STAT.sent, SMS_STAT.unsent]][flag] as number[] | undefined;
    slots.forEach((s, i) => {
      if (s && (flag === 4 || doomed?.includes(s.stat))) slots[i] = undefined;
    });
    return ok();
  }
}
