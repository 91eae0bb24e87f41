// POST /sms of the control API (control.ts, docs/sim.md): validates one request for SMS the
// network delivers now and hands it to the virtual modem. Everything is checked (and every PDU
// built) before anything is stored: a bad request stores nothing.
import { encodeDeliveryInd } from '../mms/notification.js';
import { MMS_STATUSES, MMS_VERSION, MmsEncodeError, type MmsStatus } from '../mms/types.js';
import type { SmsArrival, VirtualModem } from './modem.js';
import { SmsPduError, tpduLength } from './modem-sms.js';
import type { PushOptions, SegmentOrder } from './sms-inject.js';

/** A POST /sms body that cannot be delivered; the message names what is wrong. */
export class BadSmsRequest extends Error {
  override readonly name = 'BadSmsRequest';
}

/** The body of POST /sms (one of `pdus`, `text`, `push`). */
export interface SmsRequest {
  pdus?: string[];
  text?: string;
  from?: string;
  push?: { type: 'delivery'; messageId: string; to: string; status: MmsStatus; date?: number };
  segments?: number;
  order?: 'forward' | 'reverse' | number[];
  duplicate?: boolean | number[];
  malformed?: 'wsp' | 'mms';
}

const KEYS = ['pdus', 'text', 'from', 'push', 'segments', 'order', 'duplicate', 'malformed'];
const PUSH_ONLY = ['segments', 'order', 'duplicate', 'malformed'];

function str(v: unknown, key: string): string {
  if (typeof v !== 'string' || v === '') throw new BadSmsRequest(`${key} must be a non-empty string`);
  return v;
}

function pushOptions(o: Record<string, unknown>): PushOptions {
  const opts: PushOptions = {};
  if (o.from !== undefined) opts.from = str(o.from, 'from');
  if (o.segments !== undefined) {
    if (typeof o.segments !== 'number' || !Number.isInteger(o.segments) || o.segments < 1 || o.segments > 255) {
      throw new BadSmsRequest('segments must be an integer 1..255');
    }
    opts.segments = o.segments;
  }
  if (o.order !== undefined) {
    const ok = o.order === 'forward' || o.order === 'reverse' || (Array.isArray(o.order) && o.order.every((n) => Number.isInteger(n)));
    if (!ok) throw new BadSmsRequest('order must be "forward", "reverse" or an array of sequence numbers');
    opts.order = o.order as SegmentOrder;
  }
  if (o.duplicate !== undefined) {
    if (o.duplicate === true) opts.duplicate = [1];
    else if (o.duplicate === false) opts.duplicate = [];
    else if (Array.isArray(o.duplicate) && o.duplicate.every((n) => Number.isInteger(n))) opts.duplicate = o.duplicate as number[];
    else throw new BadSmsRequest('duplicate must be true, false or an array of sequence numbers');
  }
  if (o.malformed !== undefined) {
    if (o.malformed !== 'wsp' && o.malformed !== 'mms') throw new BadSmsRequest('malformed must be "wsp" or "mms"');
    opts.malformed = o.malformed;
  }
  return opts;
}

function deliveryPdu(v: unknown): Buffer {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new BadSmsRequest('push must be an object');
  const p = v as Record<string, unknown>;
  if (p.type !== 'delivery') throw new BadSmsRequest('push.type must be "delivery"');
  if (!MMS_STATUSES.includes(p.status as MmsStatus)) throw new BadSmsRequest(`push.status must be one of ${MMS_STATUSES.join(', ')}`);
  const date = p.date ?? Math.floor(Date.now() / 1000);
  if (typeof date !== 'number' || !Number.isInteger(date) || date < 0) throw new BadSmsRequest('push.date must be seconds since the epoch');
  return encodeDeliveryInd({
    mmsVersion: MMS_VERSION,
    messageId: str(p.messageId, 'push.messageId'),
    to: str(p.to, 'push.to'),
    date,
    status: p.status as MmsStatus,
  });
}

/** Checks the request, then delivers it; throws BadSmsRequest (nothing stored) when it is wrong. */
export function deliverSmsRequest(modem: VirtualModem, body: unknown): SmsArrival[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadSmsRequest('body must be a JSON object');
  const o = body as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KEYS.includes(k)) throw new BadSmsRequest(`unknown key "${k}"`);
  const kinds = ['pdus', 'text', 'push'].filter((k) => o[k] !== undefined);
  if (kinds.length !== 1) throw new BadSmsRequest('give exactly one of "pdus", "text" and "push"');
  if (o.push === undefined && PUSH_ONLY.some((k) => o[k] !== undefined)) throw new BadSmsRequest(`${PUSH_ONLY.join(', ')} go with "push" only`);
  try {
    if (o.pdus !== undefined) {
      if (!Array.isArray(o.pdus) || o.pdus.length === 0) throw new BadSmsRequest('pdus must be a non-empty array of hex strings');
      const pdus = o.pdus.map((p, i) => {
        const hex = str(p, `pdus[${i}]`);
        if (!/^([0-9A-Fa-f]{2}){2,}$/.test(hex) || tpduLength(hex) < 1) throw new BadSmsRequest(`pdus[${i}] is not an SMS PDU in hex (SMSC field first)`);
        return hex;
      });
      return pdus.map((pdu) => ({ pdu: pdu.toUpperCase(), stored: modem.deliverSms(pdu) ?? null }));
    }
    if (o.text !== undefined) {
      if (typeof o.text !== 'string') throw new BadSmsRequest('text must be a string');
      return modem.deliverText(o.text, str(o.from, 'from'));
    }
    const opts = pushOptions(o);
    return modem.deliverPush(deliveryPdu(o.push), opts);
  } catch (err) {
    if (err instanceof MmsEncodeError || err instanceof SmsPduError) throw new BadSmsRequest(err.message);
    throw err;
  }
}
