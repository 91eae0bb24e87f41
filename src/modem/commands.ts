// One typed function per AT command the driver uses (DESIGN.md §6; spec §2, §3; the 3GPP, FILE
// and TCP/IP commands it relies on), and the parsers of their answers. The only AT text of mmsd
// outside src/at lives here.
import { AtErrorResult, CmeError } from '../at/errors.js';
import type { AtCommander, AtResponse, CommandOptions } from '../at/types.js';
import { upload, type UploadResult } from './qfupl.js';
import { int, quote } from './quote.js';
import type { PdpConfig } from './config.js';
import type { Charset, ModemIdentity, RamSpace, Registration, SendParams } from './types.js';

/** +CGREG/+CEREG <stat> (3GPP TS 27.007 §10.1.20) → Registration. */
const REGISTRATION_BY_STAT: Readonly<Record<number, Registration>> = {
  0: 'not-registered',
  1: 'home',
  2: 'searching',
  3: 'denied',
  4: 'unknown',
  5: 'roaming',
};

export function registrationOf(stat: number): Registration {
  return REGISTRATION_BY_STAT[stat] ?? 'unknown';
}

export function isRegistered(r: Registration): boolean {
  return r === 'home' || r === 'roaming';
}

export type SimState = 'ready' | 'missing' | 'locked' | 'busy';

export interface SimStatus {
  state: SimState;
  /** The +CPIN code or the CME error text, for logs and `detail`. */
  text: string;
}

/** +CPIN: <code> → SIM state; anything needing a PIN/PUK is `locked`. */
const SIM_BY_CPIN: Readonly<Record<string, SimState>> = {
  READY: 'ready',
  'SIM PIN': 'locked',
  'SIM PUK': 'locked',
  'SIM PIN2': 'locked',
  'SIM PUK2': 'locked',
  'PH-SIM PIN': 'locked',
  'PH-NET PIN': 'locked',
  'NOT INSERTED': 'missing',
  'NOT READY': 'missing',
};

/** +CME ERROR to AT+CPIN? (3GPP TS 27.007 §9.2.1) → SIM state. */
const SIM_BY_CME: Readonly<Record<number, SimState>> = {
  10: 'missing', // SIM not inserted
  11: 'locked', // SIM PIN required
  12: 'locked', // SIM PUK required
  13: 'missing', // SIM failure: as good as no SIM
  14: 'busy', // SIM busy: ask again shortly
  15: 'missing', // SIM wrong
  16: 'locked', // incorrect password
  17: 'locked', // SIM PIN2 required
  18: 'locked', // SIM PUK2 required
};

export function simStateOf(code: string): SimState {
  return SIM_BY_CPIN[code.trim().toUpperCase()] ?? 'locked';
}

export interface PdpContextState {
  contextId: number;
  active: boolean;
  ip: string;
}

/** Quectel FILE error "file not found" (FILE application note). */
export const CME_FILE_NOT_FOUND = 405;

/** Spec §2.1 / TCP-IP note: the module answers AT+QIACT within 150 s and AT+QIDEACT within 40 s. */
export const QIACT_TIMEOUT_MS = 150_000;
export const QIDEACT_TIMEOUT_MS = 40_000;
/** 3GPP attach may take the module up to 140 s. */
export const CGATT_TIMEOUT_MS = 140_000;
export const CFUN_TIMEOUT_MS = 15_000;
/** Upload timeout: a fixed part plus the data at a pessimistic 5 KB/s. */
export const UPLOAD_BASE_S = 60;
export const UPLOAD_BYTES_PER_S = 5 * 1024;

/** Splits an info line's parameters on commas outside quotes ("a,b",1 → ['"a,b"', '1']). */
export function splitFields(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inQuotes = false;
  for (const ch of s) {
    if (ch === '"') inQuotes = !inQuotes;
    if (ch === ',' && !inQuotes) {
      out.push(cur.trim());
      cur = '';
    } else {
      cur += ch;
    }
  }
  out.push(cur.trim());
  return out;
}

export function unquote(s: string): string {
  const t = s.trim();
  return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1) : t;
}

/** The parameters of a line "+PFX: a,b,…" ([] when the line has another prefix). */
export function fieldsOf(line: string, prefix: string): string[] {
  const t = line.trim();
  if (!t.startsWith(prefix)) return [];
  return splitFields(t.slice(prefix.length));
}

/** True for a bare decimal integer field. */
function isInt(f: string | undefined): f is string {
  return f !== undefined && /^\d+$/.test(f);
}

/**
 * <stat> of a +CGREG/+CEREG line. The query answers "<n>,<stat>[,…]"; the URC is "<stat>[,"lac",…]".
 * A URC can land among a query's lines (same prefix): the query form is the one whose second
 * field is a bare integer.
 */
export function parseRegistrationLine(line: string, prefix: string, form: 'query' | 'urc'): number | undefined {
  const f = fieldsOf(line, prefix);
  if (form === 'query') return isInt(f[0]) && isInt(f[1]) ? Number(f[1]) : undefined;
  return isInt(f[0]) && (f.length === 1 || !isInt(f[1])) ? Number(f[0]) : undefined;
}

/** The driver's view of a +QMMSEND result line; undefined when it is not one. */
export function parseSendResult(line: string): { err: number; httpStatus: number; mmscResponse?: string } | undefined {
  const m = /^\+QMMSEND:\s*(\d+)\s*(?:,\s*(\d+)\s*)?(?:,(.*))?$/.exec(line.trim());
  if (!m) return undefined;
  const rsp = m[3] === undefined ? undefined : unquote(m[3]);
  return {
    err: Number(m[1]),
    httpStatus: m[2] === undefined ? 0 : Number(m[2]),
    ...(rsp === undefined || rsp === '' ? {} : { mmscResponse: rsp }),
  };
}

/** `+QFLDS: <free>,<total>` → bytes; undefined when the line is not that. */
export function parseRamSpace(line: string): RamSpace | undefined {
  const f = fieldsOf(line, '+QFLDS:');
  return isInt(f[0]) && isInt(f[1]) ? { free: Number(f[0]), total: Number(f[1]) } : undefined;
}

/** An AT+CIMI answer line → the IMSI (6–15 digits), or undefined. Some firmware prefixes "+CIMI: ". */
export function parseImsi(line: string): string | undefined {
  const m = /^(?:\+CIMI:\s*)?"?([0-9]{6,15})"?$/.exec(line.trim());
  return m?.[1];
}

/** `+QCCID: <iccid>` → the ICCID (digits, a trailing F on 19-digit cards), or undefined. */
export function parseIccid(line: string): string | undefined {
  const m = /^\+QCCID:\s*"?([0-9A-Fa-f]{10,22})"?$/.exec(line.trim());
  return m?.[1].toUpperCase();
}

/**
 * `+QSPN: <FNN>,<SNN>,<SPN>,<alphabet>,<RPLMN>` → the service provider name (the third field), ''
 * when empty; undefined when the line is not that. Alphabet 1 means the names are UCS2 in hex.
 */
export function parseSpn(line: string): string | undefined {
  const f = fieldsOf(line, '+QSPN:');
  if (f.length < 3) return undefined;
  const spn = unquote(f[2]);
  if (f[3] === '1' && /^(?:[0-9A-Fa-f]{4})+$/.test(spn)) {
    const bytes = Buffer.from(spn, 'hex');
    let text = '';
    for (let i = 0; i < bytes.length; i += 2) text += String.fromCharCode(bytes.readUInt16BE(i));
    return text.trim();
  }
  return spn.trim();
}

/**
 * The APN of `+QICSGP: <type>,"<apn>","<user>","<password>",<auth>` (the answer to
 * AT+QICSGP=<ctx>), or undefined. Only the APN is taken: the password stays out of memory and logs.
 */
export function parseContextApn(line: string): string | undefined {
  const f = fieldsOf(line, '+QICSGP:');
  return isInt(f[0]) && f[1] !== undefined ? unquote(f[1]) : undefined;
}

/** An AT+CGSN answer line → the IMEI (14–17 digits, IMEISV included), or undefined; some firmware prefixes "+CGSN: ". */
export function parseImei(line: string): string | undefined {
  const m = /^(?:\+CGSN:\s*)?"?([0-9]{14,17})"?$/.exec(line.trim());
  return m?.[1];
}

/**
 * The text of an AT+CGMI/CGMM/CGMR answer: its first non-empty line without the command's own
 * prefix ("+CGMR: ") or the "Revision: " some firmware puts before the version; '' when none.
 */
export function parseIdentityText(lines: readonly string[], prefix: string): string {
  for (const l of lines) {
    const t = l.trim();
    if (t === '') continue;
    const bare = t.startsWith(prefix) ? t.slice(prefix.length).trim() : t;
    return unquote(bare.replace(/^Revision:\s*/i, ''));
  }
  return '';
}

/** The functions of AT+QMMSEDIT (spec §2.2). */
const EDIT_FUNCTION = { to: 1, cc: 2, bcc: 3 } as const;

/**
 * The commands, bound to one AT channel. `onOk` is told of every successful round trip (the
 * watchdog's proof that the module answers).
 */
export class QuectelCommands {
  constructor(
    private readonly at: AtCommander,
    private readonly defaultTimeoutMs: number,
    private readonly onOk: () => void = () => undefined,
  ) {}

  private async run(cmd: string, opts: CommandOptions = {}): Promise<AtResponse> {
    const res = await this.at.command(cmd, { timeoutMs: this.defaultTimeoutMs, ...opts });
    this.onOk();
    return res;
  }

  private async query(cmd: string, prefix: string, opts: CommandOptions = {}): Promise<string[]> {
    const res = await this.run(cmd, { ...opts, prefix });
    return res.lines.filter((l) => l.trim().startsWith(prefix));
  }

  // --- basics (3GPP TS 27.007 / V.250) ---

  /** AT: is anyone there. */
  async attention(timeoutMs: number): Promise<void> {
    await this.run('AT', { timeoutMs });
  }

  /** ATE0: no echo. */
  async echoOff(): Promise<void> {
    await this.run('ATE0');
  }

  /** AT+CMEE=1: numeric +CME ERROR codes. */
  async numericErrors(): Promise<void> {
    await this.run('AT+CMEE=1');
  }

  /** AT+CGREG=2 / AT+CEREG=2: registration URCs with location. */
  async enableRegistrationUrcs(domain: 'CGREG' | 'CEREG'): Promise<void> {
    await this.run(`AT+${domain}=2`);
  }

  /** AT+CGREG? / AT+CEREG? → <stat>. */
  async queryRegistration(domain: 'CGREG' | 'CEREG'): Promise<number> {
    const prefix = `+${domain}:`;
    const lines = await this.query(`AT+${domain}?`, prefix);
    for (const l of lines) {
      const stat = parseRegistrationLine(l, prefix, 'query');
      if (stat !== undefined) return stat;
    }
    for (const l of lines) {
      const stat = parseRegistrationLine(l, prefix, 'urc');
      if (stat !== undefined) return stat;
    }
    throw new Error(`AT+${domain}?: no ${prefix} line in the answer`);
  }

  /** AT+CPIN? → SIM state; the CME errors of a missing or failed SIM are answers, not failures. */
  async querySim(): Promise<SimStatus> {
    try {
      const lines = await this.query('AT+CPIN?', '+CPIN:');
      const code = unquote(fieldsOf(lines[0] ?? '', '+CPIN:').join(','));
      return { state: simStateOf(code), text: code };
    } catch (e) {
      if (e instanceof CmeError) {
        const state = SIM_BY_CME[e.code];
        if (state !== undefined) return { state, text: `CME ERROR ${e.code}` };
      }
      throw e;
    }
  }

  /** AT+CGATT? → attached to the PS domain. */
  async queryAttach(): Promise<boolean> {
    const lines = await this.query('AT+CGATT?', '+CGATT:');
    return fieldsOf(lines[0] ?? '', '+CGATT:')[0] === '1';
  }

  /** AT+CGATT=1 (§4.2 step 1). */
  async attach(): Promise<void> {
    await this.run('AT+CGATT=1', { timeoutMs: CGATT_TIMEOUT_MS });
  }

  /** AT+CSQ → rssi 0..31, -1 when unknown (99). */
  async querySignal(): Promise<number> {
    const lines = await this.query('AT+CSQ', '+CSQ:');
    const rssi = Number(fieldsOf(lines[0] ?? '', '+CSQ:')[0]);
    return Number.isInteger(rssi) && rssi >= 0 && rssi <= 31 ? rssi : -1;
  }

  /** AT+COPS? → operator name ('' when not registered to one). */
  async queryOperator(): Promise<string> {
    const lines = await this.query('AT+COPS?', '+COPS:');
    const f = fieldsOf(lines[0] ?? '', '+COPS:');
    return f[2] === undefined ? '' : unquote(f[2]);
  }

  // --- the module's identity (DESIGN.md §13) ---

  /**
   * AT+CGSN, AT+CGMI, AT+CGMM, AT+CGMR (3GPP TS 27.007 §5.1–5.4) → IMEI, manufacturer, model,
   * firmware; a field the module refuses (ERROR, +CME ERROR) stays ''.
   */
  async readModuleIdentity(): Promise<ModemIdentity> {
    const text = async (cmd: string, prefix: string): Promise<string> => {
      try {
        return parseIdentityText((await this.run(cmd)).lines, prefix);
      } catch (e) {
        if (e instanceof AtErrorResult || e instanceof CmeError) return '';
        throw e;
      }
    };
    const imeiLine = await text('AT+CGSN', '+CGSN:');
    return {
      imei: parseImei(imeiLine) ?? '',
      manufacturer: await text('AT+CGMI', '+CGMI:'),
      model: await text('AT+CGMM', '+CGMM:'),
      firmware: await text('AT+CGMR', '+CGMR:'),
    };
  }

  // --- the SIM's identity (DESIGN.md §10) ---

  /** AT+CIMI → the IMSI; '' when the answer holds none. */
  async readImsi(): Promise<string> {
    const res = await this.run('AT+CIMI');
    for (const l of res.lines) {
      const imsi = parseImsi(l);
      if (imsi !== undefined) return imsi;
    }
    return '';
  }

  /** AT+QCCID → the ICCID; '' when the answer holds none. */
  async readIccid(): Promise<string> {
    const lines = await this.query('AT+QCCID', '+QCCID:');
    return parseIccid(lines[0] ?? '') ?? '';
  }

  /**
   * AT+QSPN → the service provider name; '' when the SIM has none, and when the module answers
   * ERROR (some firmware does before registration, or for a SIM without the field).
   */
  async readSpn(): Promise<string> {
    let lines: string[];
    try {
      lines = await this.query('AT+QSPN', '+QSPN:');
    } catch (e) {
      if (e instanceof AtErrorResult || e instanceof CmeError) return '';
      throw e;
    }
    return parseSpn(lines[0] ?? '') ?? '';
  }

  /** AT+CFUN=1,1: restart the module (§4.2, last rung). It answers OK, then RDY after booting. */
  async restartModule(): Promise<void> {
    await this.run('AT+CFUN=1,1', { timeoutMs: CFUN_TIMEOUT_MS });
  }

  // --- PDP context (TCP/IP note; spec §1.1 step 1, §3.6) ---

  /** AT+QICSGP=<ctx>,1,"apn","user","pass",<auth> (context type 1 = IPv4). */
  async configureContext(pdp: PdpConfig): Promise<void> {
    await this.run(
      `AT+QICSGP=${int(pdp.contextId, 1, 16, 'contextId')},1,${quote(pdp.apn, 'apn')},` +
        `${quote(pdp.username, 'username')},${quote(pdp.password, 'password')},${int(pdp.auth, 0, 3, 'auth')}`,
    );
  }

  /** AT+QICSGP=<ctx> → the APN the context is configured with (its credentials are not read out). */
  async queryContextApn(contextId: number): Promise<string> {
    const cmd = `AT+QICSGP=${int(contextId, 1, 16, 'contextId')}`;
    const lines = await this.query(cmd, '+QICSGP:');
    const apn = parseContextApn(lines[0] ?? '');
    if (apn === undefined) throw new Error(`${cmd}: no "+QICSGP: <type>,<apn>,…" line in the answer`);
    return apn;
  }

  /** AT+QIACT=<ctx>. */
  async activateContext(contextId: number): Promise<void> {
    await this.run(`AT+QIACT=${int(contextId, 1, 16, 'contextId')}`, { timeoutMs: QIACT_TIMEOUT_MS });
  }

  /** AT+QIDEACT=<ctx>. */
  async deactivateContext(contextId: number): Promise<void> {
    await this.run(`AT+QIDEACT=${int(contextId, 1, 16, 'contextId')}`, { timeoutMs: QIDEACT_TIMEOUT_MS });
  }

  /** AT+QIACT? → the contexts the module lists (+QIACT: <ctx>,<state>,<type>[,"ip"]). */
  async queryContexts(): Promise<PdpContextState[]> {
    const lines = await this.query('AT+QIACT?', '+QIACT:');
    return lines.map((l) => {
      const f = fieldsOf(l, '+QIACT:');
      return { contextId: Number(f[0]), active: f[1] === '1', ip: unquote(f[3] ?? '') };
    });
  }

  // --- MMS settings (spec §2.1) ---

  async mmsContextId(contextId: number): Promise<void> {
    await this.run(`AT+QMMSCFG="contextid",${int(contextId, 1, 16, 'contextId')}`);
  }

  async mmsMmsc(url: string): Promise<void> {
    await this.run(`AT+QMMSCFG="mmsc",${quote(url, 'mmsc')}`);
  }

  /** AT+QMMSCFG="proxy","<gateway>",<port>; gateway "" means no proxy (a direct connection). */
  async mmsProxy(host: string, port: number): Promise<void> {
    await this.run(`AT+QMMSCFG="proxy",${quote(host, 'proxy host')},${int(port, 1, 65535, 'proxy port')}`);
  }

  async mmsCharset(charset: Charset): Promise<void> {
    await this.run(`AT+QMMSCFG="character",${quote(charset, 'charset')}`);
  }

  async mmsSendParams(p: SendParams): Promise<void> {
    const args = [
      int(p.validity, 0, 6, 'validity'),
      int(p.priority, 0, 3, 'priority'),
      p.deliveryReport ? '1' : '0',
      p.readReport ? '1' : '0',
      int(p.visibility, 0, 2, 'visibility'),
      int(p.class, 0, 4, 'class'),
    ];
    await this.run(`AT+QMMSCFG="sendparam",${args.join(',')}`);
  }

  async mmsSupportField(mode: number): Promise<void> {
    await this.run(`AT+QMMSCFG="supportfield",${int(mode, 0, 1, 'supportField')}`);
  }

  async mmsConnectTimeout(seconds: number): Promise<void> {
    await this.run(`AT+QMMSCFG="connecttimeout",${int(seconds, 1, 125, 'connectTimeoutS')}`);
  }

  // --- MMS edit and send (spec §2.2, §2.3) ---

  /** AT+QMMSEDIT=0: clear the whole message. */
  async mmsClear(): Promise<void> {
    await this.run('AT+QMMSEDIT=0');
  }

  /** AT+QMMSEDIT=1|2|3,1,"<addr>". */
  async mmsAddAddress(kind: 'to' | 'cc' | 'bcc', address: string): Promise<void> {
    await this.run(`AT+QMMSEDIT=${EDIT_FUNCTION[kind]},1,${quote(address, 'address')}`);
  }

  /** AT+QMMSEDIT=4,1,"<optstring>" (plain ASCII, or hex under a non-ASCII charset). */
  async mmsSetSubject(optstring: string): Promise<void> {
    await this.run(`AT+QMMSEDIT=4,1,${quote(optstring, 'subject')}`);
  }

  /** AT+QMMSEDIT=5,1,"RAM:<name>". */
  async mmsAddAttachment(ramName: string): Promise<void> {
    await this.run(`AT+QMMSEDIT=5,1,${quote(`RAM:${ramName}`, 'file name')}`);
  }

  /** AT+QMMSEND=<timeout>: OK means accepted; the result comes later as a URC. */
  async mmsSend(timeoutS: number): Promise<void> {
    await this.run(`AT+QMMSEND=${int(timeoutS, 1, 65535, 'send timeout')}`);
  }

  // --- RAM files (FILE note) ---

  /** Seconds the module waits for the data, sized from it. */
  static uploadTimeoutS(size: number): number {
    return UPLOAD_BASE_S + Math.ceil(size / UPLOAD_BYTES_PER_S);
  }

  /** AT+QFUPL="RAM:<name>",<size>,<timeout>,1 in ACK mode (qfupl.ts), size and checksum checked. */
  async fileUpload(
    ramName: string,
    data: Buffer,
    onProgress?: (sent: number, total: number) => void,
    window = 1,
  ): Promise<UploadResult> {
    const timeoutS = QuectelCommands.uploadTimeoutS(data.length);
    const cmd = `AT+QFUPL=${quote(`RAM:${ramName}`, 'file name')},${data.length},${timeoutS},1`;
    // The channel's deadline a little beyond the module's, so the module's own error is seen.
    const res = await upload(this.at, cmd, data, {
      prefix: '+QFUPL:',
      timeoutMs: timeoutS * 1000 + 10_000,
      window,
      ...(onProgress ? { onProgress } : {}),
    });
    this.onOk();
    return res;
  }

  /** AT+QFLST="RAM:*" → name (without "RAM:") → size. */
  async fileList(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    let lines: string[];
    try {
      lines = await this.query('AT+QFLST="RAM:*"', '+QFLST:');
    } catch (e) {
      // Some firmware answers "file not found" for an empty RAM drive.
      if (e instanceof CmeError && e.code === CME_FILE_NOT_FOUND) return out;
      throw e;
    }
    for (const l of lines) {
      const f = fieldsOf(l, '+QFLST:');
      const name = unquote(f[0] ?? '');
      out.set(name.startsWith('RAM:') ? name.slice(4) : name, Number(f[1] ?? 0));
    }
    return out;
  }

  /** AT+QFLDS="RAM" → the RAM drive's free and total bytes (`+QFLDS: <free>,<total>`). */
  async ramSpace(): Promise<RamSpace> {
    const lines = await this.query('AT+QFLDS="RAM"', '+QFLDS:');
    const space = parseRamSpace(lines[0] ?? '');
    if (!space) throw new Error(`AT+QFLDS="RAM": no "+QFLDS: <free>,<total>" line in the answer`);
    return space;
  }

  /** AT+QFDEL="RAM:<name>"; a file that is not there is already deleted. */
  async fileDelete(ramName: string): Promise<void> {
    try {
      await this.run(`AT+QFDEL=${quote(`RAM:${ramName}`, 'file name')}`);
    } catch (e) {
      if (e instanceof CmeError && e.code === CME_FILE_NOT_FOUND) return;
      throw e;
    }
  }
}
