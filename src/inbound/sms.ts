// SMS-DELIVER decoder (3GPP TS 23.040 §9.2.2.1, data coding TS 23.038 §4) for the hex PDU that
// `AT+CMGR` / `AT+CMGL` print in PDU mode (TS 27.005 §3.1: the SMSC address field comes first).
// Other message types decode to a typed `other`. Pure; every malformation is an MmsDecodeError.
import { decodeText } from '../mms/charset.js';
import { MmsDecodeError } from '../mms/types.js';
import { WspReader } from '../mms/wsp.js';
import { septetsToText, unpackSeptets } from './gsm7.js';

/** WAP-259 / IANA: the WAP push connectionless port, where MMS notifications arrive. */
export const WAP_PUSH_PORT = 2948;

/** TS 23.040 §9.1.2.5: Type-of-number, bits 6..4 of the type-of-address octet. */
export const TYPES_OF_NUMBER = [
  'unknown',
  'international',
  'national',
  'network-specific',
  'subscriber',
  'alphanumeric',
  'abbreviated',
  'reserved',
] as const;
export type TypeOfNumber = (typeof TYPES_OF_NUMBER)[number];

export interface SmsAddress {
  /** Digits ("+" first when international), or the text of an alphanumeric address. */
  number: string;
  ton: TypeOfNumber;
  /** Numbering-plan-identification (1: ISDN/E.164). */
  npi: number;
}

export type SmsEncoding = 'gsm7' | '8bit' | 'ucs2';

/** A user-data-header information element (TS 23.040 §9.2.3.24). */
export interface InformationElement {
  iei: number;
  data: Buffer;
}

/** IE 0x00 (8-bit reference) or 0x08 (16-bit reference): one segment of a concatenated message. */
export interface Concatenation {
  ref: number;
  refBits: 8 | 16;
  total: number;
  seq: number;
}

/** IE 0x04 (8-bit ports) or 0x05 (16-bit ports): application port addressing. */
export interface PortAddressing {
  destination: number;
  source: number;
  bits: 8 | 16;
}

export interface SmsDeliver {
  kind: 'deliver';
  /** The SMSC address field; absent when its length octet is 0 (the module's default SMSC). */
  smsc?: SmsAddress;
  /** TP-MMS = 0: the SMSC holds more messages for this subscriber. */
  moreMessagesToSend: boolean;
  loopPrevention: boolean;
  statusReportIndication: boolean;
  replyPath: boolean;
  originator: SmsAddress;
  pid: number;
  dcs: number;
  encoding: SmsEncoding;
  compressed: boolean;
  messageClass?: 0 | 1 | 2 | 3;
  /** TP-SCTS; absent when the SMSC wrote digits that are no date (the message is still read). */
  timestamp?: Date;
  /** The SMSC's offset from UTC in minutes (quarter hours on the wire). */
  timezoneMinutes?: number;
  /** TP-UDL as sent: septets for GSM 7-bit, octets otherwise. */
  udl: number;
  /** Every information element of the user data header, in order. */
  udh: InformationElement[];
  concat?: Concatenation;
  ports?: PortAddressing;
  /** The user data after the header: octets (8-bit, UCS2), or one septet per octet (GSM 7-bit). */
  data: Buffer;
  /** The text, for GSM 7-bit and UCS2 that is not compressed. */
  text?: string;
}

/** Any other TPDU (TS 23.040 §9.2.3.1: SMS-SUBMIT stored on the SIM, SMS-STATUS-REPORT, reserved). */
export interface SmsOther {
  kind: 'other';
  type: 'submit' | 'status-report' | 'reserved';
  mti: number;
  smsc?: SmsAddress;
  tpdu: Buffer;
}

export type SmsPdu = SmsDeliver | SmsOther;

export interface DecodeSmsOptions {
  /** `<length>` of `+CMGR:` / `+CMGL:`: the TPDU's octets, without the SMSC field (TS 27.005 §3.1). */
  tpduLength?: number;
}

const MTI_TYPES = ['deliver', 'submit', 'status-report', 'reserved'] as const;
/** TS 24.008 §10.5.4.7 BCD digits; 0xF is the filler of an odd count. */
const BCD = '0123456789*#abc';

/** Hex from the modem → octets; anything that is not an even run of hex digits is an error. */
export function parseHexPdu(hex: string): Buffer {
  const s = hex.trim();
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(s)) throw new MmsDecodeError('PDU is not an even number of hex digits', 0);
  return Buffer.from(s, 'hex');
}

function bcdDigits(octets: Buffer, count: number): string {
  let out = '';
  for (let i = 0; i < count; i++) {
    const b = octets[i >> 1];
    const nibble = i & 1 ? b >> 4 : b & 0x0f;
    if (nibble === 0x0f) continue; // a filler where a digit was counted: nothing to show
    out += BCD[nibble];
  }
  return out;
}

function address(toa: number, digits: Buffer, semiOctets: number): SmsAddress {
  const ton = TYPES_OF_NUMBER[(toa >> 4) & 0x07];
  const npi = toa & 0x0f;
  if (ton === 'alphanumeric') {
    // §9.1.2.5: GSM 7-bit packed; the length counts semi-octets, so floor(4n/7) septets.
    const septets = unpackSeptets(digits, Math.floor((semiOctets * 4) / 7));
    return { number: septetsToText(septets), ton, npi };
  }
  const n = bcdDigits(digits, semiOctets);
  return { number: ton === 'international' ? `+${n}` : n, ton, npi };
}

/** TS 24.011 §8.2.5.1 / TS 27.005: length in octets (type-of-address included), 0 for none. */
function readSmsc(r: WspReader): SmsAddress | undefined {
  const len = r.octet();
  if (len === 0) return undefined;
  if (len > 12) r.fail(`SMSC address of ${len} octets`);
  const toa = r.octet();
  const digits = r.take(len - 1);
  return address(toa, digits, (len - 1) * 2);
}

/** TS 23.040 §9.1.2.5: length in useful semi-octets, type-of-address, the digits. */
function readAddress(r: WspReader): SmsAddress {
  const semiOctets = r.octet();
  if (semiOctets > 20) r.fail(`address of ${semiOctets} digits`);
  const toa = r.octet();
  if ((toa & 0x80) === 0) r.fail(`type-of-address 0x${toa.toString(16)} without its extension bit`);
  return address(toa, r.take(Math.ceil(semiOctets / 2)), semiOctets);
}

/** Semi-octet field, the first digit in the low nibble; undefined when a nibble is not a digit. */
function swapped(b: number): number | undefined {
  const lo = b & 0x0f;
  const hi = b >> 4;
  return lo > 9 || hi > 9 ? undefined : lo * 10 + hi;
}

/** TS 23.040 §9.2.3.11: YY MM DD hh mm ss TZ, semi-octets; TZ in quarter hours, sign in bit 3. */
export function decodeTimestamp(o: Buffer): { date: Date; timezoneMinutes: number } | undefined {
  const [yy, mo, dd, hh, mi, ss] = [0, 1, 2, 3, 4, 5].map((i) => swapped(o[i]));
  const tz = o[6];
  const tzLo = tz & 0x07;
  const tzHi = tz >> 4;
  if (yy === undefined || mo === undefined || dd === undefined || hh === undefined || mi === undefined || ss === undefined) return undefined;
  if (mo < 1 || mo > 12 || dd < 1 || dd > 31 || hh > 23 || mi > 59 || ss > 59 || tzHi > 9) return undefined;
  const quarters = tzLo * 10 + tzHi;
  const timezoneMinutes = (tz & 0x08 ? -quarters : quarters) * 15;
  // Two-digit years: SMS dates from the 1990s on (TS 23.040 leaves the century open).
  const year = yy >= 90 ? 1900 + yy : 2000 + yy;
  const utc = Date.UTC(year, mo - 1, dd, hh, mi, ss) - timezoneMinutes * 60_000;
  return { date: new Date(utc), timezoneMinutes };
}

interface Coding {
  encoding: SmsEncoding;
  compressed: boolean;
  messageClass?: 0 | 1 | 2 | 3;
}

/** TS 23.038 §4: the coding groups. Reserved codings are read as the GSM 7-bit default alphabet. */
export function decodeDcs(dcs: number): Coding {
  const group = dcs >> 4;
  const charset = (['gsm7', '8bit', 'ucs2', 'gsm7'] as const)[(dcs >> 2) & 0x03];
  const cls = (dcs & 0x03) as 0 | 1 | 2 | 3;
  if (group <= 0x07) {
    // 00xx general data coding, 01xx the same with automatic deletion.
    const coding: Coding = { encoding: charset, compressed: (dcs & 0x20) !== 0 };
    if (dcs & 0x10) coding.messageClass = cls;
    return coding;
  }
  if (group === 0x0c || group === 0x0d) return { encoding: 'gsm7', compressed: false }; // message waiting
  if (group === 0x0e) return { encoding: 'ucs2', compressed: false }; // message waiting, UCS2
  if (group === 0x0f) return { encoding: dcs & 0x04 ? '8bit' : 'gsm7', compressed: false, messageClass: cls };
  return { encoding: 'gsm7', compressed: false };
}

/** §9.2.3.24: the information elements of a user data header (`udh` without its length octet). */
function readHeader(udh: Buffer, offset: number): Pick<SmsDeliver, 'udh' | 'concat' | 'ports'> {
  const r = new WspReader(udh);
  const out: Pick<SmsDeliver, 'udh' | 'concat' | 'ports'> = { udh: [] };
  const wrongLength = (iei: number, len: number): never => {
    throw new MmsDecodeError(`information element 0x${iei.toString(16).padStart(2, '0')} of ${len} octets`, offset + r.offset);
  };
  while (r.remaining > 0) {
    const iei = r.octet();
    const data = Buffer.from(r.take(r.octet()));
    out.udh.push({ iei, data });
    switch (iei) {
      case 0x00:
      case 0x08: {
        const wide = iei === 0x08;
        if (data.length !== (wide ? 4 : 3)) wrongLength(iei, data.length);
        const ref = wide ? data.readUInt16BE(0) : data[0];
        const total = data[wide ? 2 : 1];
        const seq = data[wide ? 3 : 2];
        // §9.2.3.24.1: a zero total or a sequence number out of range voids the element.
        if (total > 0 && seq > 0 && seq <= total) out.concat = { ref, refBits: wide ? 16 : 8, total, seq };
        break;
      }
      case 0x04:
        if (data.length !== 2) wrongLength(iei, data.length);
        out.ports = { destination: data[0], source: data[1], bits: 8 };
        break;
      case 0x05:
        if (data.length !== 4) wrongLength(iei, data.length);
        out.ports = { destination: data.readUInt16BE(0), source: data.readUInt16BE(2), bits: 16 };
        break;
      // Other elements (text formatting, national language shifts, …) stay raw in `udh`.
    }
  }
  return out;
}

function readDeliver(r: WspReader, first: number, smsc: SmsAddress | undefined): SmsDeliver {
  const originator = readAddress(r);
  const pid = r.octet();
  const dcs = r.octet();
  const coding = decodeDcs(dcs);
  const scts = decodeTimestamp(r.take(7));
  const udl = r.octet();
  const inSeptets = coding.encoding === 'gsm7' && !coding.compressed;
  if (udl > (inSeptets ? 160 : 140)) r.fail(`user data length ${udl} is over the limit`);
  const udStart = r.offset;
  const ud = r.take(inSeptets ? Math.ceil((udl * 7) / 8) : udl);
  const udhi = (first & 0x40) !== 0;
  let headerOctets = 0;
  let header: Pick<SmsDeliver, 'udh' | 'concat' | 'ports'> = { udh: [] };
  if (udhi) {
    if (ud.length === 0) throw new MmsDecodeError('user data header indicated but no user data', udStart);
    headerOctets = ud[0] + 1;
    if (headerOctets > ud.length) throw new MmsDecodeError(`user data header of ${ud[0]} octets in ${ud.length}`, udStart);
    header = readHeader(ud.subarray(1, headerOctets), udStart + 1);
  }
  const msg: SmsDeliver = {
    kind: 'deliver',
    moreMessagesToSend: (first & 0x04) === 0,
    loopPrevention: (first & 0x08) !== 0,
    statusReportIndication: (first & 0x20) !== 0,
    replyPath: (first & 0x80) !== 0,
    originator,
    pid,
    dcs,
    encoding: coding.encoding,
    compressed: coding.compressed,
    udl,
    ...header,
    data: Buffer.alloc(0),
  };
  if (smsc !== undefined) msg.smsc = smsc;
  if (coding.messageClass !== undefined) msg.messageClass = coding.messageClass;
  if (scts !== undefined) {
    msg.timestamp = scts.date;
    msg.timezoneMinutes = scts.timezoneMinutes;
  }
  if (inSeptets) {
    // §9.2.3.24: the header fills whole septets (fill bits after it), the text starts at the next one.
    const headerSeptets = Math.ceil((headerOctets * 8) / 7);
    if (headerSeptets > udl) throw new MmsDecodeError(`user data header longer than the ${udl} septets of user data`, udStart);
    const septets = unpackSeptets(ud, udl).slice(headerSeptets);
    msg.data = Buffer.from(septets);
    msg.text = septetsToText(septets);
    return msg;
  }
  msg.data = Buffer.from(ud.subarray(headerOctets));
  if (coding.encoding === 'ucs2' && !coding.compressed) {
    msg.text = decodeText(msg.data.subarray(0, msg.data.length & ~1), 'utf-16be');
  }
  return msg;
}

/**
 * Decode an SMS PDU as `AT+CMGR` prints it in PDU mode (hex, or its octets). An SMS-DELIVER is read
 * in full; any other message type comes back as `kind: 'other'` without further reading.
 */
export function decodeSmsPdu(input: string | Buffer, options: DecodeSmsOptions = {}): SmsPdu {
  const buf = typeof input === 'string' ? parseHexPdu(input) : input;
  const r = new WspReader(buf);
  if (r.remaining === 0) r.fail('empty PDU');
  const smsc = readSmsc(r);
  const tpduStart = r.offset;
  if (options.tpduLength !== undefined && buf.length - tpduStart !== options.tpduLength) {
    throw new MmsDecodeError(`TPDU of ${buf.length - tpduStart} octets, the modem announced ${options.tpduLength}`, tpduStart);
  }
  const first = r.octet();
  const mti = first & 0x03;
  const type = MTI_TYPES[mti];
  if (type === 'deliver') return readDeliver(r, first, smsc);
  const other: SmsOther = { kind: 'other', type, mti, tpdu: Buffer.from(buf.subarray(tpduStart)) };
  if (smsc !== undefined) other.smsc = smsc;
  return other;
}

/** The cheap test of DESIGN §12: an SMS-DELIVER whose user data header addresses port 2948. */
export function isWapPushSegment(sms: SmsPdu): sms is SmsDeliver & { ports: PortAddressing } {
  return sms.kind === 'deliver' && sms.ports?.destination === WAP_PUSH_PORT;
}
