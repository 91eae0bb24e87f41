// What the virtual modem's network side sends: SMS-DELIVER PDUs (3GPP TS 23.040 §9.2.2.1) in the
// hex of `AT+CMGR` (TS 27.005 §3.1, SMSC field first), split into concatenated segments with a user
// data header when they do not fit one SMS (§9.2.3.24.1), and the connectionless WSP Push PDU
// (WAP-230 §8.2.4.1) an MMSC sends to port 2948. The decoders live in src/inbound.
import { ESCAPE, packSeptets, textToSeptets } from '../inbound/gsm7.js';
import { WAP_PUSH_PORT, type Concatenation, type PortAddressing, type SmsEncoding } from '../inbound/sms.js';
import { APPLICATION_IDS, MMS_APPLICATION_ID, MMS_CONTENT_TYPE, PDU_TYPE_PUSH, X_WAP_APPLICATION_ID } from '../inbound/wap-push.js';
import { MmsEncodeError } from '../mms/types.js';
import { WspWriter, type ContentTypeValue } from '../mms/wsp.js';

/** The WSP connectionless port a push comes from (WAP-259). */
export const WSP_PORT = 9200;

export interface DeliverInput {
  /** "+digits" (international), digits, or undefined for an empty SMSC field. */
  smsc?: string;
  /** "+digits" (international), digits (type unknown), or text (alphanumeric, GSM 7-bit). */
  originator: string;
  pid?: number;
  encoding: SmsEncoding;
  messageClass?: 0 | 1 | 2 | 3;
  timestamp: Date;
  /** The SMSC's offset from UTC in minutes, a multiple of 15. */
  timezoneMinutes?: number;
  moreMessagesToSend?: boolean;
  statusReportIndication?: boolean;
  replyPath?: boolean;
  ports?: PortAddressing;
  concat?: Concatenation;
  /** Octets (8-bit), UTF-16BE octets (UCS2) or septets one per octet (GSM 7-bit). */
  userData: Buffer;
}

const DIGITS = /^[0-9*#abc]*$/;
const BCD = '0123456789*#abc';

function bcd(digits: string): Buffer {
  const out = Buffer.alloc(Math.ceil(digits.length / 2), 0xff);
  [...digits].forEach((d, i) => {
    const n = BCD.indexOf(d);
    out[i >> 1] = i & 1 ? (out[i >> 1] & 0x0f) | (n << 4) : (out[i >> 1] & 0xf0) | n;
  });
  return out;
}

/** TS 23.040 §9.1.2.5: length in semi-octets, type-of-address, value. */
export function encodeAddress(address: string): Buffer {
  if (address.startsWith('+') && DIGITS.test(address.slice(1))) {
    const digits = address.slice(1);
    return Buffer.concat([Buffer.from([digits.length, 0x91]), bcd(digits)]);
  }
  if (DIGITS.test(address)) return Buffer.concat([Buffer.from([address.length, 0x81]), bcd(address)]);
  const septets = textToSeptets(address);
  if (septets === undefined) throw new MmsEncodeError(`alphanumeric address outside the GSM alphabet: ${address}`);
  const semiOctets = Math.ceil((septets.length * 7) / 4);
  if (semiOctets > 20) throw new MmsEncodeError(`alphanumeric address too long: ${address}`);
  return Buffer.concat([Buffer.from([semiOctets, 0xd0]), packSeptets(septets)]);
}

/** TS 27.005 §3.1: the SMSC field, its length in octets first (0: none). */
export function encodeSmsc(smsc: string | undefined): Buffer {
  if (smsc === undefined || smsc === '') return Buffer.from([0]);
  const international = smsc.startsWith('+');
  const digits = international ? smsc.slice(1) : smsc;
  if (!DIGITS.test(digits) || digits.length > 20) throw new MmsEncodeError(`bad SMSC address: ${smsc}`);
  const value = bcd(digits);
  return Buffer.concat([Buffer.from([value.length + 1, international ? 0x91 : 0x81]), value]);
}

/** TS 23.040 §9.2.3.11: local time of the SMSC in swapped semi-octets, then the zone. */
export function encodeTimestamp(date: Date, timezoneMinutes = 0): Buffer {
  if (timezoneMinutes % 15 !== 0 || Math.abs(timezoneMinutes) > 79 * 15) throw new MmsEncodeError(`bad time zone ${timezoneMinutes}`);
  const local = new Date(date.getTime() + timezoneMinutes * 60_000);
  const year = local.getUTCFullYear();
  if (year < 1990 || year > 2089) throw new MmsEncodeError(`year ${year} does not fit two digits`);
  const sw = (n: number): number => ((n % 10) << 4) | Math.floor(n / 10);
  const q = Math.abs(timezoneMinutes) / 15;
  const tz = ((q % 10) << 4) | Math.floor(q / 10) | (timezoneMinutes < 0 ? 0x08 : 0);
  const fields = [year % 100, local.getUTCMonth() + 1, local.getUTCDate(), local.getUTCHours(), local.getUTCMinutes(), local.getUTCSeconds()];
  return Buffer.from([...fields.map(sw), tz]);
}

function dcsOf(encoding: SmsEncoding, messageClass: number | undefined): number {
  const charset = { gsm7: 0x00, '8bit': 0x04, ucs2: 0x08 }[encoding];
  return messageClass === undefined ? charset : 0x10 | charset | messageClass;
}

/** The user data header: concatenation first, then port addressing (both optional). */
function userDataHeader(concat: Concatenation | undefined, ports: PortAddressing | undefined): Buffer {
  const ies: number[] = [];
  if (concat !== undefined) {
    if (concat.refBits === 16) ies.push(0x08, 4, concat.ref >> 8, concat.ref & 0xff, concat.total, concat.seq);
    else ies.push(0x00, 3, concat.ref, concat.total, concat.seq);
  }
  if (ports !== undefined) {
    if (ports.bits === 16) ies.push(0x05, 4, ports.destination >> 8, ports.destination & 0xff, ports.source >> 8, ports.source & 0xff);
    else ies.push(0x04, 2, ports.destination, ports.source);
  }
  return ies.length === 0 ? Buffer.alloc(0) : Buffer.from([ies.length, ...ies]);
}

/** One SMS-DELIVER as octets (SMSC field first). Throws MmsEncodeError when the data does not fit. */
export function encodeSmsDeliver(m: DeliverInput): Buffer {
  const udh = userDataHeader(m.concat, m.ports);
  const first =
    0x00 | // MTI SMS-DELIVER
    (m.moreMessagesToSend ? 0 : 0x04) |
    (m.statusReportIndication ? 0x20 : 0) |
    (udh.length > 0 ? 0x40 : 0) |
    (m.replyPath ? 0x80 : 0);
  let udl: number;
  let ud: Buffer;
  if (m.encoding === 'gsm7') {
    const headerSeptets = Math.ceil((udh.length * 8) / 7);
    udl = headerSeptets + m.userData.length;
    if (udl > 160) throw new MmsEncodeError(`${udl} septets do not fit one SMS`);
    // The header's octets, then fill bits (0) up to a septet boundary, then the septets.
    ud = packSeptets([...m.userData], headerSeptets * 7);
    udh.copy(ud);
  } else {
    udl = udh.length + m.userData.length;
    if (udl > 140) throw new MmsEncodeError(`${udl} octets do not fit one SMS`);
    ud = Buffer.concat([udh, m.userData]);
  }
  return Buffer.concat([
    encodeSmsc(m.smsc),
    Buffer.from([first]),
    encodeAddress(m.originator),
    Buffer.from([m.pid ?? 0, dcsOf(m.encoding, m.messageClass)]),
    encodeTimestamp(m.timestamp, m.timezoneMinutes),
    Buffer.from([udl]),
    ud,
  ]);
}

/** Text as user data: septets for GSM 7-bit, UTF-16BE octets for UCS2. */
export function textUserData(text: string, encoding: 'gsm7' | 'ucs2'): Buffer {
  if (encoding === 'ucs2') return Buffer.from(text, 'utf16le').swap16();
  const septets = textToSeptets(text);
  if (septets === undefined) throw new MmsEncodeError('text outside the GSM 7-bit alphabet');
  return Buffer.from(septets);
}

/** Cut user data into chunks of at most `max` units, never inside an escape or a surrogate pair. */
function chunks(data: Buffer, encoding: SmsEncoding, max: number): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < data.length) {
    let end = Math.min(at + max, data.length);
    if (end < data.length) {
      if (encoding === 'gsm7' && data[end - 1] === ESCAPE && !escapedBefore(data, at, end - 1)) end--;
      if (encoding === 'ucs2' && (data[end - 2] & 0xfc) === 0xd8) end -= 2; // a high surrogate last
    }
    out.push(data.subarray(at, end));
    at = end;
  }
  return out.length === 0 ? [Buffer.alloc(0)] : out;
}

/** Whether the septet at `i` is itself the second half of an escape pair (counted from `from`). */
function escapedBefore(data: Buffer, from: number, i: number): boolean {
  let escapes = 0;
  for (let j = i - 1; j >= from && data[j] === ESCAPE; j--) escapes++;
  return escapes % 2 === 1;
}

/**
 * The hex PDUs (upper case, as modems print them) of one message: one SMS when it fits, else
 * segments with a concatenation IE (reference `ref`, 8- or 16-bit).
 */
export function encodeDeliverPdus(m: Omit<DeliverInput, 'concat'>, ref = 0, refBits: 8 | 16 = 8): string[] {
  const single = userDataHeader(undefined, m.ports).length;
  const fits = m.encoding === 'gsm7' ? Math.ceil((single * 8) / 7) + m.userData.length <= 160 : single + m.userData.length <= 140;
  if (fits) return [encodeSmsDeliver(m).toString('hex').toUpperCase()];
  const header = userDataHeader({ ref, refBits, total: 1, seq: 1 }, m.ports).length;
  const room = m.encoding === 'gsm7' ? 160 - Math.ceil((header * 8) / 7) : (140 - header) & (m.encoding === 'ucs2' ? ~1 : ~0);
  const parts = chunks(m.userData, m.encoding, room);
  if (parts.length > 255) throw new MmsEncodeError(`${parts.length} segments are more than 255`);
  return parts.map((userData, i) =>
    encodeSmsDeliver({ ...m, userData, concat: { ref, refBits, total: parts.length, seq: i + 1 } })
      .toString('hex')
      .toUpperCase(),
  );
}

export interface WspPushInput {
  tid: number;
  contentType: ContentTypeValue;
  applicationId?: string | number;
  body: Buffer;
}

/** A connectionless WSP Push PDU; a registered application id goes as its assigned code. */
export function encodeWspPush(push: WspPushInput): Buffer {
  const headers = new WspWriter().contentType(push.contentType);
  if (push.applicationId !== undefined) {
    headers.shortInteger(X_WAP_APPLICATION_ID);
    const code = typeof push.applicationId === 'number' ? push.applicationId : APPLICATION_IDS.indexOf(push.applicationId);
    if (code >= 0) headers.integerValue(code);
    else headers.textString(String(push.applicationId));
  }
  return new WspWriter().octet(push.tid).octet(PDU_TYPE_PUSH).uintvar(headers.size).bytes(headers.toBuffer()).bytes(push.body).toBuffer();
}

export interface MmsPushSms {
  smsc?: string;
  originator: string;
  timestamp: Date;
  timezoneMinutes?: number;
  /** Concatenation reference when the push needs more than one SMS. */
  ref?: number;
  refBits?: 8 | 16;
  tid?: number;
}

/** The SMS an MMSC sends for an MMS PDU: a WSP push of application/vnd.wap.mms-message to port 2948. */
export function encodeMmsPushSms(pdu: Buffer, sms: MmsPushSms): string[] {
  const push = encodeWspPush({
    tid: sms.tid ?? 1,
    contentType: { mediaType: MMS_CONTENT_TYPE, params: {} },
    applicationId: MMS_APPLICATION_ID,
    body: pdu,
  });
  const input: Omit<DeliverInput, 'concat'> = {
    originator: sms.originator,
    encoding: '8bit',
    timestamp: sms.timestamp,
    ports: { destination: WAP_PUSH_PORT, source: WSP_PORT, bits: 16 },
    userData: push,
  };
  if (sms.smsc !== undefined) input.smsc = sms.smsc;
  if (sms.timezoneMinutes !== undefined) input.timezoneMinutes = sms.timezoneMinutes;
  return encodeDeliverPdus(input, sms.ref ?? 0, sms.refBits ?? 8);
}
