// One typed function per AT command the driver uses (DESIGN.md §6; spec §2, §3; the 3GPP, FILE
// and TCP/IP commands it relies on). With the parsers of their answers (answers.ts), the only AT
// text of mmsd outside src/at lives here.
import { AtErrorResult, CmeError } from '../at/errors.js';
import type { AtCommander, AtResponse, CommandOptions } from '../at/types.js';
import {
  fieldsOf,
  parseContextApn,
  parseIccid,
  parseIdentityText,
  parseImei,
  parseImsi,
  parseRamSpace,
  parseRegistrationLine,
  parseSpn,
  simStateOf,
  simStateOfCme,
  unquote,
  type SimStatus,
} from './answers.js';
import { upload, type UploadResult } from './qfupl.js';
import { int, quote } from './quote.js';
import type { PdpConfig } from './config.js';
import type { Charset, ModemIdentity, RamSpace, SendParams } from './types.js';

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
        const state = simStateOfCme(e.code);
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
