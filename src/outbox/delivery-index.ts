// The messages a delivery report can match (DESIGN.md §12), indexed so that matching a report looks
// only at its candidates: by report key, by learnt Message-ID, and by recipient for the order rule.
// The result is matchReport()'s (delivery.ts) over every message noted here, whatever their number.
import type { DeliveryReportInput } from '../core/inbound.js';
import type { MessageRecord } from '../core/message.js';
import {
  CLOCK_SLACK_MS,
  OPEN_STATES,
  addressBucket,
  normaliseAddress,
  olderSend,
  recipientIn,
  recipientsNormalised,
  sameNormalised,
  sentTime,
  type Match,
} from './delivery.js';

/** One recipient of a message that the order rule may still give a report to. */
interface OpenRecipient {
  readonly id: string;
  /** sentTime, created, id: the order rule's order (olderSend). */
  readonly sent: number;
  readonly created: number;
  /** The recipient normalised (normaliseAddress). */
  readonly address: string;
}

/** Where a message is filed, so that a newer version of it (or its removal) unfiles exactly that. */
interface Filing {
  readonly keys: readonly string[];
  readonly messageId: string | undefined;
  readonly open: readonly { readonly bucket: string; readonly entry: OpenRecipient }[];
}

/** a before b in the order rule's order (olderSend over what an entry keeps). */
function before(a: OpenRecipient, b: OpenRecipient): boolean {
  return a.sent !== b.sent ? a.sent < b.sent : a.created !== b.created ? a.created < b.created : a.id < b.id;
}

/** The first position in `list` (sorted by `before`) whose entry is not before `e`. */
function lowerBound(list: readonly OpenRecipient[], e: OpenRecipient): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (before(list[mid], e)) lo = mid + 1;
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
  private readonly filed = new Map<string, Filing>();
  private readonly byKey = new Map<string, string[]>();
  private readonly byMessageId = new Map<string, string[]>();
  private readonly open = new Map<string, OpenRecipient[]>();

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
    const keys = [...new Set(r.reportKeys ?? [])];
    for (const k of keys) addTo(this.byKey, k, r.id);
    if (r.mmscMessageId !== undefined) addTo(this.byMessageId, r.mmscMessageId, r.id);
    const open: { bucket: string; entry: OpenRecipient }[] = [];
    if (r.mmscMessageId === undefined && r.status === 'sent') {
      const { raw, norm } = recipientsNormalised(r);
      for (let i = 0; i < raw.length; i++) {
        if (!OPEN_STATES.has(r.delivery[raw[i]] ?? 'pending')) continue;
        const entry: OpenRecipient = { id: r.id, sent: sentTime(r), created: r.created, address: norm[i] };
        const bucket = addressBucket(norm[i]);
        let list = this.open.get(bucket);
        if (list === undefined) this.open.set(bucket, (list = []));
        list.splice(lowerBound(list, entry), 0, entry);
        open.push({ bucket, entry });
      }
    }
    this.filed.set(r.id, { keys, messageId: r.mmscMessageId, open });
  }

  /** The message is gone, or no longer asks for reports. */
  forget(id: string): void {
    const f = this.filed.get(id);
    if (f === undefined) return;
    this.filed.delete(id);
    for (const k of f.keys) removeFrom(this.byKey, k, id);
    if (f.messageId !== undefined) removeFrom(this.byMessageId, f.messageId, id);
    for (const { bucket, entry } of f.open) {
      const list = this.open.get(bucket);
      if (list === undefined) continue;
      // Entries of one message compare equal: look from the first of them for this very one.
      for (let i = lowerBound(list, entry); i < list.length; i++) {
        if (list[i] === entry) {
          list.splice(i, 1);
          break;
        }
      }
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
    for (const e of this.open.get(addressBucket(address)) ?? []) {
      if (e.sent > latest) break;
      if (!sameNormalised(e.address, address)) continue;
      const r = get(e.id);
      if (r?.delivery === undefined || r.mmscMessageId !== undefined || r.status !== 'sent' || sentTime(r) > latest) continue;
      const recipient = recipientIn(r, address, true);
      if (recipient !== undefined) return { kind: 'matched', record: r, recipient, by: 'order' };
    }
    return { kind: 'unmatched' };
  }
}
