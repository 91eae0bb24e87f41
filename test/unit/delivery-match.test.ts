// Delivery-report matching (DESIGN.md §12), one table row per rule: addresses, order, the Date
// slack, the Message-ID learnt from a first report, duplicates, and `delivered`.
import { describe, expect, it } from 'vitest';
import type { DeliveryReportInput } from '../../src/core/inbound.js';
import { newMessageRecord, type MessageRecord } from '../../src/core/message.js';
import { CLOCK_SLACK_MS, applyReport, matchReport, pendingDelivery, sameAddress } from '../../src/outbox/delivery.js';

const T0 = 1_800_000_000_000;

function sent(id: string, to: string[], sentAt: number, extra: Partial<MessageRecord> = {}): MessageRecord {
  const r = newMessageRecord(id, { to, cc: [], bcc: [], subject: '', options: { deliveryReport: true } }, [], sentAt - 1000);
  return { ...r, status: 'sent', sentAt, updated: sentAt, delivery: pendingDelivery(r), ...extra };
}

function rep(recipient: string, extra: Partial<DeliveryReportInput> = {}): DeliveryReportInput {
  return { key: `k-${recipient}-${extra.reportMessageId ?? 'M1'}`, reportMessageId: 'M1', recipient, status: 'retrieved', date: T0 + 60_000, ...extra };
}

describe('sameAddress', () => {
  it.each([
    ['+4917012345678', '+4917012345678/TYPE=PLMN', true],
    ['+4917012345678', '4917012345678', true],
    ['+4917012345678', '004917012345678', true],
    ['+4917012345678', '017012345678', true],
    ['017012345678', '+4917012345678/TYPE=PLMN', true],
    ['+15551234567', '05551234567', true],
    ['+4917012345678', '+4917012345679', false],
    ['+4917012345678', '+3317012345678', false], // another country code
    ['12345', '012345', false], // too short to compare across prefixes
    ['Alice@Example.org', 'alice@example.ORG', true],
    ['alice@example.org', 'bob@example.org', false],
    ['alice@example.org', '+4917012345678', false],
    ['+491701234', '0041701234', false],
  ])('%s ~ %s → %s', (a, b, same) => {
    expect(sameAddress(a, b)).toBe(same);
    expect(sameAddress(b, a)).toBe(same);
  });
});

describe('matchReport', () => {
  it('takes the oldest sent message with the recipient still pending', () => {
    const a = sent('a', ['+4917011111111'], T0);
    const b = sent('b', ['+4917011111111'], T0 + 1000);
    const m = matchReport(rep('+4917011111111'), [b, a]);
    expect(m).toMatchObject({ kind: 'matched', record: { id: 'a' }, recipient: '+4917011111111', by: 'order' });
  });

  it('skips a message whose recipient has a final state already, and one without that recipient', () => {
    const a = sent('a', ['+4917011111111'], T0, { delivery: { '+4917011111111': 'retrieved' } });
    const other = sent('o', ['+4917022222222'], T0 - 5000);
    const b = sent('b', ['+4917011111111'], T0 + 1000);
    expect(matchReport(rep('+4917011111111'), [a, other, b])).toMatchObject({ kind: 'matched', record: { id: 'b' } });
  });

  it('a deferred recipient can still be matched by order', () => {
    const a = sent('a', ['+4917011111111'], T0, { delivery: { '+4917011111111': 'deferred' } });
    expect(matchReport(rep('+4917011111111'), [a])).toMatchObject({ kind: 'matched', record: { id: 'a' } });
  });

  it('a message sent after the report Date plus the slack is not matched; within the slack it is', () => {
    const late = sent('late', ['+4917011111111'], T0 + 60_000 + CLOCK_SLACK_MS + 1);
    const edge = sent('edge', ['+4917011111111'], T0 + 60_000 + CLOCK_SLACK_MS);
    expect(matchReport(rep('+4917011111111'), [late])).toEqual({ kind: 'unmatched' });
    expect(matchReport(rep('+4917011111111'), [late, edge])).toMatchObject({ kind: 'matched', record: { id: 'edge' } });
  });

  it('a message that asked for no report is never matched', () => {
    const a = { ...sent('a', ['+4917011111111'], T0) };
    delete a.delivery;
    expect(matchReport(rep('+4917011111111'), [a])).toEqual({ kind: 'unmatched' });
  });

  it('a recorded Message-ID goes straight to its message, whatever the order or the state', () => {
    const a = sent('a', ['+4917011111111'], T0, { mmscMessageId: 'M-A', delivery: { '+4917011111111': 'retrieved' }, status: 'delivered' });
    const b = sent('b', ['+4917011111111'], T0 + 1000);
    expect(matchReport(rep('+4917011111111', { reportMessageId: 'M-A', status: 'forwarded' }), [b, a])).toMatchObject({
      kind: 'matched',
      record: { id: 'a' },
      by: 'message-id',
    });
  });

  it('a message with another Message-ID is skipped by the order rule', () => {
    const a = sent('a', ['+4917011111111'], T0, { mmscMessageId: 'M-A', delivery: { '+4917011111111': 'deferred' } });
    const b = sent('b', ['+4917011111111'], T0 + 1000);
    expect(matchReport(rep('+4917011111111', { reportMessageId: 'M-B' }), [a, b])).toMatchObject({ kind: 'matched', record: { id: 'b' } });
  });

  it('a report applied before is a duplicate', () => {
    const a = sent('a', ['+4917011111111'], T0, { reportKeys: ['k-x'] });
    expect(matchReport(rep('+4917011111111', { key: 'k-x' }), [a])).toMatchObject({ kind: 'duplicate', record: { id: 'a' } });
  });

  it('a duplicate wins over a Message-ID match, whichever comes first in the list', () => {
    const byId = sent('a', ['+4917011111111'], T0, { mmscMessageId: 'M-A' });
    const dup = sent('b', ['+4917011111111'], T0 + 1000, { mmscMessageId: 'M-B', reportKeys: ['k-x'] });
    const report = rep('+4917011111111', { key: 'k-x', reportMessageId: 'M-A' });
    expect(matchReport(report, [byId, dup])).toMatchObject({ kind: 'duplicate', record: { id: 'b' } });
    expect(matchReport(report, [dup, byId])).toMatchObject({ kind: 'duplicate', record: { id: 'b' } });
  });

  it('two messages with the same learnt Message-ID: the oldest, whichever comes first in the list', () => {
    const a = sent('a', ['+4917011111111'], T0, { mmscMessageId: 'M-A' });
    const b = sent('b', ['+4917011111111'], T0 + 1000, { mmscMessageId: 'M-A' });
    const report = rep('+4917011111111', { reportMessageId: 'M-A' });
    expect(matchReport(report, [b, a])).toMatchObject({ kind: 'matched', record: { id: 'a' }, by: 'message-id' });
    expect(matchReport(report, [a, b])).toMatchObject({ kind: 'matched', record: { id: 'a' }, by: 'message-id' });
  });

  it('national and e-mail forms of the recipient match', () => {
    const a = sent('a', ['017011111111', 'Ops@Example.org'], T0);
    expect(matchReport(rep('+4917011111111/TYPE=PLMN'), [a])).toMatchObject({ recipient: '017011111111' });
    expect(matchReport(rep('ops@example.org'), [a])).toMatchObject({ recipient: 'Ops@Example.org' });
  });
});

describe('applyReport', () => {
  it('sets the state, learns the Message-ID once, keeps the key, and is delivered when all retrieved', () => {
    const a = sent('a', ['+4917011111111', '+4917022222222'], T0);
    const one = applyReport(a, '+4917011111111', rep('+4917011111111', { reportMessageId: 'M-A' }), T0 + 1);
    expect(one).toMatchObject({ status: 'sent', mmscMessageId: 'M-A', delivery: { '+4917011111111': 'retrieved', '+4917022222222': 'pending' } });
    const two = applyReport(one, '+4917022222222', rep('+4917022222222', { reportMessageId: 'M-Z', key: 'k2' }), T0 + 2);
    expect(two.status).toBe('delivered');
    expect(two.mmscMessageId).toBe('M-A');
    expect(two.reportKeys).toEqual(['k-+4917011111111-M-A', 'k2']);
  });

  it('a rejected recipient keeps the message sent', () => {
    const a = sent('a', ['+4917011111111'], T0);
    expect(applyReport(a, '+4917011111111', rep('+4917011111111', { status: 'rejected' }), T0).status).toBe('sent');
  });
});
