// The messages a delivery report can match (DESIGN.md §12), indexed so that matching a report looks
// only at its candidates: by report key, by learnt Message-ID, and by recipient for the order rule.
// The result is matchReport()'s (delivery.ts) over every message noted here, whatever their number.
import type { DeliveryReportInput } from '../core/inbound.js';
import { recipientsOf, type MessageRecord } from '../core/message.js';
import {
  CLOCK_SLACK_MS,
  OPEN_STATES,
  addressBucket,
  normaliseAddress,
  olderSend,
  recipientIn,
  sentTime,
  type Match,
} from './delivery.js';

/** The order rule's buckets of a message: those of its recipients still `pending` or `deferred` (none when the rule passes it by). */
function openBuckets(r: MessageRecord): Set<string> {
  const buckets = new Set<string>();
  if (r.delivery === undefined || r.mmscMessageId !== undefined || r.status !== 'sent') return buckets;
  for (const to of recipientsOf(r)) {
    if (OPEN_STATES.has(r.delivery[to] ?? 'pending')) buckets.add(addressBucket(normaliseAddress(to)));
  }
  return buckets;
}

/** The first position in `list` (oldest first, by olderSend) whose message is not older than `r`. */
function lowerBound(list: readonly MessageRecord[], r: MessageRecord): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (olderSend(list[mid], r)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function addTo(map: Map<string, string[]>, key: string, id: string): void {
  const ids = map.get(key);
  if (ids === undefined) map.set(key, [id]);
  else if (!ids.includes(id)) ids.push(id);
}

function removeFrom(map: Map<string, string[]>, key: string, id: string): void {
  const ids = map.get(key);
  if (ids === undefined) return;
  const at = ids.indexOf(id);
  if (at >= 0) ids.splice(at, 1);
  if (ids.length === 0) map.delete(key);
}

/**
 * The messages that asked for reports, kept in step with their records: `note()` every new
 * version of a message, `forget()` one that is gone. A message is matchable while it has a
 * `delivery` map; the order rule's part holds only recipients still `pending` or `deferred` of
 * `sent` messages without a Message-ID, oldest first per address bucket.
 */
export class DeliveryIndex {
  /** Every matchable message, as last noted: what it is filed under is computed from it again to unfile it. */
  private readonly filed = new Map<string, MessageRecord>();
  private readonly byKey = new Map<string, string[]>();
  private readonly byMessageId = new Map<string, string[]>();
  /** Address bucket → the messages with an open recipient in it, oldest first. */
  private readonly open = new Map<string, MessageRecord[]>();

  /** How many messages are matchable. */
  get size(): number {
    return this.filed.size;
  }

  clear(): void {
    this.filed.clear();
    this.byKey.clear();
    this.byMessageId.clear();
    this.open.clear();
  }

  /** The current version of a message: filed anew (or not at all without a `delivery` map). */
  note(r: MessageRecord): void {
    this.forget(r.id);
    if (r.delivery === undefined) return;
    this.filed.set(r.id, r);
    for (const k of r.reportKeys ?? []) addTo(this.byKey, k, r.id);
    if (r.mmscMessageId !== undefined) addTo(this.byMessageId, r.mmscMessageId, r.id);
    for (const bucket of openBuckets(r)) {
      const list = this.open.get(bucket);
      if (list === undefined) this.open.set(bucket, [r]);
      else list.splice(lowerBound(list, r), 0, r);
    }
  }

  /** The message is gone, or no longer asks for reports. */
  forget(id: string): void {
    const r = this.filed.get(id);
    if (r === undefined) return;
    this.filed.delete(id);
    for (const k of r.reportKeys ?? []) removeFrom(this.byKey, k, id);
    if (r.mmscMessageId !== undefined) removeFrom(this.byMessageId, r.mmscMessageId, id);
    for (const bucket of openBuckets(r)) {
      const list = this.open.get(bucket);
      if (list === undefined) continue;
      const at = lowerBound(list, r);
      if (list[at] === r) list.splice(at, 1);
      if (list.length === 0) this.open.delete(bucket);
    }
  }

  /**
   * matchReport(report, every message noted) through the index. `get` gives a message's current
   * record (the one last noted); each candidate is checked against it as matchReport checks it.
   */
  match(report: DeliveryReportInput, get: (id: string) => MessageRecord | undefined): Match {
    const address = normaliseAddress(report.recipient);
    let duplicate: MessageRecord | undefined;
    for (const id of this.byKey.get(report.key) ?? []) {
      const r = get(id);
      if (r?.delivery !== undefined && r.reportKeys?.includes(report.key) && (duplicate === undefined || olderSend(r, duplicate))) duplicate = r;
    }
    if (duplicate !== undefined) return { kind: 'duplicate', record: duplicate };

    let byId: { record: MessageRecord; recipient: string } | undefined;
    for (const id of this.byMessageId.get(report.reportMessageId) ?? []) {
      const r = get(id);
      if (r?.delivery === undefined || r.mmscMessageId !== report.reportMessageId || (byId !== undefined && !olderSend(r, byId.record))) continue;
      const recipient = recipientIn(r, address);
      if (recipient !== undefined) byId = { record: r, recipient };
    }
    if (byId !== undefined) return { kind: 'matched', record: byId.record, recipient: byId.recipient, by: 'message-id' };

    // Oldest first: the first open recipient that is this address is the order rule's answer.
    const latest = report.date + CLOCK_SLACK_MS;
    for (const noted of this.open.get(addressBucket(address)) ?? []) {
      if (sentTime(noted) > latest) break;
      const r = get(noted.id);
      if (r?.delivery === undefined || r.mmscMessageId !== undefined || r.status !== 'sent' || sentTime(r) > latest) continue;
      const recipient = recipientIn(r, address, true);
      if (recipient !== undefined) return { kind: 'matched', record: r, recipient, by: 'order' };
    }
    return { kind: 'unmatched' };
  }
}
