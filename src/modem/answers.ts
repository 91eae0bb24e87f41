// The parsers of the module's answers and URCs (3GPP TS 27.007, spec §2, the FILE and TCP/IP
// notes): the fields of an information line, registration and SIM state, the +QMMSEND result, the
// module's and the SIM's identity. Pure: the commands (commands.ts) and the URC handlers use them.
import type { RamSpace, Registration } from './types.js';

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

/** The SIM state a +CME ERROR to AT+CPIN? stands for; undefined when it is a failure, not an answer. */
export function simStateOfCme(code: number): SimState | undefined {
  return SIM_BY_CME[code];
}

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
