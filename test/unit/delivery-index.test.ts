// The delivery-report index (src/outbox/delivery-index.ts, DESIGN.md §12) against the pure rule:
// for random messages, noted, changed and forgotten in random order, and random reports, matching
// through the index gives exactly what matchReport() gives scanning every message.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DELIVERY_STATES, type DeliveryReportInput, type DeliveryState } from '../../src/core/inbound.js';
import { newMessageRecord, type MessageRecord, type Status } from '../../src/core/message.js';
import { DeliveryIndex } from '../../src/outbox/delivery-index.js';
import { CLOCK_SLACK_MS, applyReport, matchReport, type Match } from '../../src/outbox/delivery.js';

const T0 = 1_800_000_000_000;

// Forms of a few numbers that sameAddress() ties together or keeps apart, numbers that share their
// last six digits (one index bucket), short ones, e-mail in two cases, and addresses without digits.
const ADDRESSES = [
  '+4917011111111',
  '4917011111111',
  '017011111111',
  '004917011111111',
  '+4917011111111/TYPE=PLMN',
  '+4417011111111',
  '+4917022111111',
  '+15551234567',
  '05551234567',
  '5551234567',
  '12345',
  '012345',
  '+12345',
  'ops@example.org',
  'Ops@Example.ORG',
  'abc',
  '+',
];
const STATUSES: Status[] = ['sent', 'sent', 'sent', 'delivered', 'failed', 'sending'];
const TIMES = [T0, T0 + 1000, T0 + 2000, T0 + 2000 + CLOCK_SLACK_MS];

const address = fc.constantFrom(...ADDRESSES);
const deliveryState = fc.constantFrom<DeliveryState>(...DELIVERY_STATES);

/** A version of message `id`: any mix of what matching looks at. */
const version = (id: string): fc.Arbitrary<MessageRecord> =>
  fc
    .record({
      to: fc.array(address, { minLength: 1, maxLength: 3 }),
      cc: fc.array(address, { maxLength: 2 }),
      bcc: fc.array(address, { maxLength: 1 }),
      status: fc.constantFrom(...STATUSES),
      sentAt: fc.option(fc.constantFrom(...TIMES), { nil: undefined }),
      updated: fc.constantFrom(...TIMES),
      created: fc.constantFrom(T0 - 2000, T0 - 1000),
      reports: fc.option(fc.array(deliveryState, { maxLength: 4 }), { nil: undefined }),
      mmscMessageId: fc.option(fc.constantFrom('M1', 'M2'), { freq: 3, nil: undefined }),
      reportKeys: fc.option(fc.subarray(['k1', 'k2', 'k3']), { nil: undefined }),
    })
    .map((v) => {
      const r = newMessageRecord(id, { to: v.to, cc: v.cc, bcc: v.bcc, subject: '', options: { deliveryReport: true } }, [], v.created);
      const recipients = [...v.to, ...v.cc, ...v.bcc];
      // Some recipients with a state of their own; the others are pending by default.
      const delivery = v.reports && Object.fromEntries(v.reports.map((s, i) => [recipients[i % recipients.length], s]));
      return {
        ...r,
        status: v.status,
        updated: v.updated,
        ...(v.sentAt === undefined ? {} : { sentAt: v.sentAt }),
        ...(delivery === undefined ? {} : { delivery }),
        ...(v.mmscMessageId === undefined ? {} : { mmscMessageId: v.mmscMessageId }),
        ...(v.reportKeys === undefined ? {} : { reportKeys: v.reportKeys }),
      };
    });

const report: fc.Arbitrary<DeliveryReportInput> = fc.record({
  key: fc.constantFrom('k1', 'k2', 'k3', 'k4'),
  reportMessageId: fc.constantFrom('M1', 'M2', 'M3'),
  recipient: address,
  status: fc.constantFrom('retrieved', 'deferred', 'rejected'),
  date: fc.constantFrom(T0 - CLOCK_SLACK_MS - 1, T0 - CLOCK_SLACK_MS, T0 + 1000, T0 + 10_000_000),
});

const IDS = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
/** Note a new version of a message, or forget one. */
const step = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...IDS).chain((id) => version(id).map((r) => ({ note: r }))) },
  { weight: 1, arbitrary: fc.constantFrom(...IDS).map((id) => ({ forget: id })) },
);

function summary(m: Match): string {
  if (m.kind === 'unmatched') return 'unmatched';
  if (m.kind === 'duplicate') return `duplicate ${m.record.id}`;
  return `${m.by} ${m.record.id} ${m.recipient}`;
}

describe('DeliveryIndex', () => {
  it('matches every report exactly as matchReport() over all messages, as messages are noted, changed and forgotten', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 30 }), fc.array(report, { minLength: 1, maxLength: 8 }), (steps, reports) => {
        const index = new DeliveryIndex();
        const current = new Map<string, MessageRecord>();
        for (const s of steps) {
          if ('note' in s) {
            current.set(s.note.id, s.note);
            index.note(s.note);
          } else {
            current.delete(s.forget);
            index.forget(s.forget);
          }
        }
        const get = (id: string): MessageRecord | undefined => current.get(id);
        let now = T0 + 5000;
        for (const rep of reports) {
          const all = [...current.values()];
          const scan = matchReport(rep, all);
          expect(summary(index.match(rep, get))).toBe(summary(scan));
          // The pure rule does not depend on the order of the messages.
          expect(summary(matchReport(rep, all.reverse()))).toBe(summary(scan));
          // Applied as the daemon applies it: the changed message is noted, and the next report sees it.
          if (scan.kind === 'matched') {
            const next = applyReport(scan.record, scan.recipient, rep, now++);
            current.set(next.id, next);
            index.note(next);
          }
        }
        expect(index.size).toBe([...current.values()].filter((r) => r.delivery !== undefined).length);
      }),
      { numRuns: 2000 },
    );
  });

  it('finds the oldest open message among many for one recipient, and nothing once all are final', () => {
    const index = new DeliveryIndex();
    const current = new Map<string, MessageRecord>();
    const to = '+4917011111111';
    for (let i = 0; i < 50; i++) {
      const r = newMessageRecord(`m${String(49 - i).padStart(2, '0')}`, { to: [to], cc: [], bcc: [], subject: '', options: {} }, [], T0);
      // Noted newest first: the index keeps them oldest first whatever the order they come in.
      const rec: MessageRecord = { ...r, status: 'sent', sentAt: T0 + (49 - i) * 1000, updated: T0, delivery: { [to]: 'pending' } };
      current.set(rec.id, rec);
      index.note(rec);
    }
    const get = (id: string): MessageRecord | undefined => current.get(id);
    for (let i = 0; i < 50; i++) {
      const rep: DeliveryReportInput = { key: `k${i}`, reportMessageId: `M${i}`, recipient: '017011111111', status: 'retrieved', date: T0 + 100_000 };
      const m = index.match(rep, get);
      expect(summary(m)).toBe(`order m${String(i).padStart(2, '0')} ${to}`);
      if (m.kind !== 'matched') return;
      // The message learns its Message-ID and its recipient is final: it leaves the order rule.
      const next = applyReport(m.record, m.recipient, rep, T0);
      current.set(next.id, next);
      index.note(next);
    }
    expect(index.match({ key: 'z', reportMessageId: 'M-none', recipient: to, status: 'retrieved', date: T0 + 100_000 }, get)).toEqual({ kind: 'unmatched' });
  });
});
