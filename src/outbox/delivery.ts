// Delivery-report matching (DESIGN.md §12), pure: which sent message an M-Delivery.ind is about,
// and what the message's record becomes. The module hides the Message-ID of M-Send.conf, so a
// report is matched by recipient and order until its Message-ID is known; see docs/inbound.md.
import type { DeliveryReportInput, DeliveryState } from '../core/inbound.js';
import { recipientsOf, type MessageRecord } from '../core/message.js';

/** §12: a report may carry a Date up to this much before the message was sent (clocks differ). */
export const CLOCK_SLACK_MS = 5 * 60 * 1000;
/** Report keys kept on a record (a recipient gets a few reports; 6 + 6 + 6 recipients at most). */
export const MAX_REPORT_KEYS = 64;

/** States a further report may still change through the order rule. */
export const OPEN_STATES: ReadonlySet<DeliveryState> = new Set(['pending', 'deferred']);

/** Shortest national number compared across `+<country>` / `0` prefixes: shorter ones must be equal. */
const MIN_NATIONAL_DIGITS = 6;

/** An address without `/TYPE=…`, spaces and separators; e-mail lower-cased. */
export function normaliseAddress(address: string): string {
  const bare = address.trim().replace(/\/TYPE=[^/]*$/i, '');
  if (bare.includes('@')) return bare.toLowerCase();
  const plus = bare.startsWith('+') || bare.startsWith('00');
  const digits = bare.replace(/^00/, '').replace(/[^0-9]/g, '');
  return plus ? `+${digits}` : digits;
}

/**
 * §12: the same recipient? E-mail case-insensitively; numbers by their digits, where a leading
 * `+` (or `00`) and a national `0` against a 1–3 digit country code may be the only difference.
 */
export function sameAddress(a: string, b: string): boolean {
  return sameNormalised(normaliseAddress(a), normaliseAddress(b));
}

/** sameAddress over addresses normaliseAddress() already made (the hot path: no regex, no allocation but slices). */
function sameNormalised(x: string, y: string): boolean {
  if (x === y) return true;
  if (x === '' || y === '' || x.includes('@') || y.includes('@')) return false;
  const dx = x.charCodeAt(0) === PLUS ? x.slice(1) : x;
  const dy = y.charCodeAt(0) === PLUS ? y.slice(1) : y;
  return dx === dy || national(dx, dy) || national(dy, dx);
}

const PLUS = 0x2b;
const ZERO = 0x30;

/** "4917012345678" and "017012345678": the national number after the country code and the trunk 0. */
function national(intl: string, nat: string): boolean {
  if (nat.charCodeAt(0) !== ZERO || nat.charCodeAt(1) === ZERO) return false;
  const restLength = nat.length - 1;
  const cc = intl.length - restLength;
  return restLength >= MIN_NATIONAL_DIGITS && cc >= 1 && cc <= 3 && intl.endsWith(nat.slice(1));
}

/**
 * The bucket of a normalised address in the matching index (delivery-index.ts): any two addresses
 * sameNormalised() calls the same share it. E-mail is its own bucket; a number's is its last
 * MIN_NATIONAL_DIGITS digits without the `+` (all of a shorter one): equal digits share them, and
 * so do a national `0<rest>` and an international number ending in `<rest>`, since `rest` has at
 * least that many digits.
 */
export function addressBucket(normalisedAddress: string): string {
  if (normalisedAddress.includes('@')) return normalisedAddress;
  const digits = normalisedAddress.charCodeAt(0) === PLUS ? normalisedAddress.slice(1) : normalisedAddress;
  return digits.length > MIN_NATIONAL_DIGITS ? digits.slice(-MIN_NATIONAL_DIGITS) : digits;
}

/** Records are frozen: their recipients are normalised once, not at every report. */
const normalised = new WeakMap<object, { raw: string[]; norm: string[] }>();

function recipientsNormalised(record: Pick<MessageRecord, 'to' | 'cc' | 'bcc'>): { raw: string[]; norm: string[] } {
  let n = normalised.get(record);
  if (n === undefined) {
    const raw = recipientsOf(record);
    n = { raw, norm: raw.map(normaliseAddress) };
    normalised.set(record, n);
  }
  return n;
}

/** The message's recipient the report names (`address` normalised), or undefined; `open`: only one still `pending` or `deferred`. */
export function recipientIn(record: Pick<MessageRecord, 'to' | 'cc' | 'bcc' | 'delivery'>, address: string, open = false): string | undefined {
  const { raw, norm } = recipientsNormalised(record);
  for (let i = 0; i < raw.length; i++) {
    if (sameNormalised(norm[i], address) && (!open || OPEN_STATES.has(record.delivery?.[raw[i]] ?? 'pending'))) return raw[i];
  }
  return undefined;
}

export type Match =
  | { kind: 'matched'; record: MessageRecord; recipient: string; by: 'message-id' | 'order' }
  | { kind: 'duplicate'; record: MessageRecord }
  | { kind: 'unmatched' };

/**
 * §12 matching over the messages that asked for reports (any order: the result does not depend on
 * it): the one that applied this report already (duplicate); else the one whose recorded
 * Message-ID the report carries and that has the recipient; else the oldest `sent` one without a
 * Message-ID of its own that has the recipient still `pending` or `deferred` and was sent before
 * the report's Date (with CLOCK_SLACK_MS). Where several qualify for the first two, the oldest.
 * The daemon matches through DeliveryIndex (delivery-index.ts), which gives the same result.
 */
export function matchReport(report: DeliveryReportInput, candidates: Iterable<MessageRecord>): Match {
  const address = normaliseAddress(report.recipient);
  let duplicate: MessageRecord | undefined;
  let byId: { record: MessageRecord; recipient: string } | undefined;
  let best: MessageRecord | undefined;
  let bestRecipient: string | undefined;
  for (const r of candidates) {
    if (r.delivery === undefined) continue;
    if (r.reportKeys?.includes(report.key)) {
      if (duplicate === undefined || olderSend(r, duplicate)) duplicate = r;
      continue;
    }
    if (r.mmscMessageId !== undefined) {
      if (r.mmscMessageId !== report.reportMessageId || (byId !== undefined && !olderSend(r, byId.record))) continue;
      const recipient = recipientIn(r, address);
      if (recipient !== undefined) byId = { record: r, recipient };
      continue;
    }
    if (r.status !== 'sent' || sentTime(r) > report.date + CLOCK_SLACK_MS) continue;
    if (best !== undefined && !olderSend(r, best)) continue;
    const recipient = recipientIn(r, address, true);
    if (recipient === undefined) continue;
    best = r;
    bestRecipient = recipient;
  }
  if (duplicate !== undefined) return { kind: 'duplicate', record: duplicate };
  if (byId !== undefined) return { kind: 'matched', record: byId.record, recipient: byId.recipient, by: 'message-id' };
  return best && bestRecipient !== undefined ? { kind: 'matched', record: best, recipient: bestRecipient, by: 'order' } : { kind: 'unmatched' };
}

/** When the message was sent, as the order rule compares it. */
export function sentTime(r: Pick<MessageRecord, 'sentAt' | 'updated'>): number {
  return r.sentAt ?? r.updated;
}

/** The order rule's order: sent earlier, then created earlier, then by id (a total order). */
export function olderSend(a: MessageRecord, b: MessageRecord): boolean {
  const ta = sentTime(a);
  const tb = sentTime(b);
  return ta !== tb ? ta < tb : a.created !== b.created ? a.created < b.created : a.id < b.id;
}

/**
 * The record after the report: the recipient's new state, the Message-ID learnt, the report's key
 * kept, and `delivered` once every recipient is `retrieved`.
 */
export function applyReport(record: MessageRecord, recipient: string, report: DeliveryReportInput, now: number): MessageRecord {
  const delivery = { ...record.delivery, [recipient]: report.status };
  const keys = [...(record.reportKeys ?? []), report.key].slice(-MAX_REPORT_KEYS);
  const allRetrieved = Object.values(delivery).every((s) => s === 'retrieved');
  return {
    ...record,
    delivery,
    mmscMessageId: record.mmscMessageId ?? report.reportMessageId,
    reportKeys: keys,
    status: record.status === 'sent' && allRetrieved ? 'delivered' : record.status,
    updated: now,
  };
}

/** The `delivery` a message gets when it becomes `sent`: every recipient pending. */
export function pendingDelivery(record: Pick<MessageRecord, 'to' | 'cc' | 'bcc'>): Record<string, DeliveryState> {
  return Object.fromEntries(recipientsOf(record).map((r) => [r, 'pending' as const]));
}
