// What the sim's network delivers as SMS (docs/sim.md "SMS"): an MMS PDU as WAP push, in N
// segments if asked, out of order, with duplicates, or spoilt in its WSP or MMS layer; and plain
// text SMS to sit beside them. Pure: returns the hex PDUs in the order they arrive.
import { textToSeptets } from '../inbound/gsm7.js';
import { WAP_PUSH_PORT } from '../inbound/sms.js';
import { MMS_APPLICATION_ID, MMS_CONTENT_TYPE } from '../inbound/wap-push.js';
import { MmsEncodeError } from '../mms/types.js';
import { encodeDeliverPdus, encodeSmsDeliver, encodeWspPush, textUserData, WSP_PORT } from './sms-encode.js';

/** Where the loopback MMSC's pushes come from. */
export const MMSC_PUSH_ORIGINATOR = '+491710000000';

export type SegmentOrder = 'forward' | 'reverse' | number[];

export interface PushOptions {
  /** Originator of the SMS. Default MMSC_PUSH_ORIGINATOR. */
  from?: string;
  /** Split into exactly this many segments (1..255); default: as many as needed. */
  segments?: number;
  /** Arrival order: forward, reverse, or a permutation of the sequence numbers (1-based). */
  order?: SegmentOrder;
  /** Sequence numbers (1-based) delivered a second time, after the others. */
  duplicate?: number[];
  /** Garbage in the WSP layer (push header) or in the MMS PDU itself. */
  malformed?: 'wsp' | 'mms';
  /** Concatenation reference (8-bit). */
  ref?: number;
  timestamp?: Date;
}

/** A WSP push whose header length runs past the end: no decoder can take it. */
const BAD_WSP = Buffer.from([0x01, 0x06, 0x8f, 0xff, 0xff, 0xff, 0x7f, 0xde, 0xad, 0xbe, 0xef]);
/** An MMS PDU that starts like one (X-Mms-Message-Type) but carries an unknown type and junk. */
const BAD_MMS = Buffer.from([0x8c, 0xfe, 0x98, 0xff, 0xff, 0x00, 0x13, 0x37]);

function applyOrder(pdus: string[], order: SegmentOrder | undefined, duplicate: number[] | undefined): string[] {
  const n = pdus.length;
  let seqs = [...Array(n).keys()].map((i) => i + 1);
  if (order === 'reverse') seqs.reverse();
  else if (Array.isArray(order)) {
    const sorted = [...order].sort((a, b) => a - b);
    if (sorted.length !== n || sorted.some((s, i) => s !== i + 1)) throw new MmsEncodeError(`order must be a permutation of 1..${n}`);
    seqs = [...order];
  }
  for (const d of duplicate ?? []) {
    if (!Number.isInteger(d) || d < 1 || d > n) throw new MmsEncodeError(`duplicate ${d} is not a segment of 1..${n}`);
  }
  return [...seqs, ...(duplicate ?? [])].map((s) => pdus[s - 1]);
}

/** The hex SMS-DELIVER PDUs that carry `mmsPdu` as a WAP push, in arrival order. */
export function pushPdus(mmsPdu: Buffer, opts: PushOptions = {}): string[] {
  const body = opts.malformed === 'mms' ? BAD_MMS : mmsPdu;
  const push =
    opts.malformed === 'wsp'
      ? Buffer.concat([BAD_WSP, body])
      : encodeWspPush({ tid: 1, contentType: { mediaType: MMS_CONTENT_TYPE, params: {} }, applicationId: MMS_APPLICATION_ID, body });
  const base = {
    originator: opts.from ?? MMSC_PUSH_ORIGINATOR,
    encoding: '8bit' as const,
    timestamp: opts.timestamp ?? new Date(),
    ports: { destination: WAP_PUSH_PORT, source: WSP_PORT, bits: 16 as const },
  };
  const ref = opts.ref ?? 0;
  let pdus: string[];
  if (opts.segments === undefined) {
    pdus = encodeDeliverPdus({ ...base, userData: push }, ref);
  } else {
    const n = opts.segments;
    if (!Number.isInteger(n) || n < 1 || n > 255) throw new MmsEncodeError(`segments must be 1..255, got ${n}`);
    if (n > push.length) throw new MmsEncodeError(`${push.length} octets cannot make ${n} segments`);
    const size = Math.ceil(push.length / n);
    const chunks = [...Array(n).keys()].map((i) => push.subarray(i * size, Math.min((i + 1) * size, push.length)));
    if (chunks.some((c) => c.length === 0)) throw new MmsEncodeError(`${push.length} octets cannot make ${n} non-empty segments`);
    pdus = chunks.map((userData, i) =>
      encodeSmsDeliver({ ...base, userData, ...(n > 1 ? { concat: { ref, refBits: 8 as const, total: n, seq: i + 1 } } : {}) })
        .toString('hex')
        .toUpperCase(),
    );
  }
  return applyOrder(pdus, opts.order, opts.duplicate);
}

/** A plain text SMS (GSM 7-bit when the text allows, else UCS2), concatenated when long. */
export function textPdus(text: string, from: string, opts: { ref?: number; timestamp?: Date } = {}): string[] {
  const encoding = textToSeptets(text) === undefined ? 'ucs2' : 'gsm7';
  return encodeDeliverPdus({ originator: from, encoding, timestamp: opts.timestamp ?? new Date(), userData: textUserData(text, encoding) }, opts.ref ?? 0);
}
