// The MQTT payload schema (DESIGN.md §5): requests checked by one table, replies built in one place.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RequestError, REQUEST_ERROR_NAMES } from '../../src/core/errors.js';
import type { MessageRecord } from '../../src/core/message.js';
import {
  errorTopicPayload,
  messagePayload,
  parseCancelPayload,
  parseSendPayload,
  rejectedPayload,
} from '../../src/api/mqtt/schema.js';

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

function rejectedName(payload: Buffer): string {
  const r = parseSendPayload(payload);
  if (r.ok) throw new Error('expected a rejection');
  return r.error.errorName;
}

describe('parseSendPayload', () => {
  it('accepts a full request and decodes base64 attachments', () => {
    const r = parseSendPayload(
      json({
        id: 'm1',
        to: ['+4917012345'],
        cc: [],
        bcc: ['a@example.org'],
        subject: 'hi',
        attachments: [
          { name: 'a.txt', contentType: 'text/plain', data: Buffer.from('hello').toString('base64') },
          { path: '/var/lib/mmsd/incoming/p.jpg' },
        ],
        options: { validity: 6, priority: 3, deliveryReport: true, readReport: false, visibility: 2, class: 4, timeout: 60 },
      }),
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.id).toBe('m1');
    const atts = r.value.attachments as { data?: Buffer; path?: string }[];
    expect(atts[0].data!.toString()).toBe('hello');
    expect(atts[1].path).toBe('/var/lib/mmsd/incoming/p.jpg');
    expect(r.value.options).toEqual({ validity: 6, priority: 3, deliveryReport: true, readReport: false, visibility: 2, class: 4, timeout: 60 });
  });

  it('names what is wrong', () => {
    expect(rejectedName(Buffer.from('{not json'))).toBe('InvalidRequest');
    expect(rejectedName(Buffer.from([0xff, 0xfe]))).toBe('InvalidRequest');
    expect(rejectedName(json([1]))).toBe('InvalidRequest');
    expect(rejectedName(json({ to: ['1'], extra: 1 }))).toBe('InvalidRequest');
    expect(rejectedName(json({ to: '123' }))).toBe('InvalidRequest');
    expect(rejectedName(json({}))).toBe('InvalidRequest');
    expect(rejectedName(json({ to: ['1'], subject: 5 }))).toBe('InvalidRequest');
    expect(rejectedName(json({ to: ['1'], attachments: [{ name: 'a', data: 'QQ=' }] }))).toBe('InvalidRequest');
    expect(rejectedName(json({ to: ['1'], attachments: [{ name: 'a', data: 'QQ==\n' }] }))).toBe('InvalidRequest');
    expect(rejectedName(json({ to: ['1'], attachments: [{ name: 'a', data: 'Q$==' }] }))).toBe('InvalidRequest');
    expect(rejectedName(json({ to: ['1'], attachments: [{ data: 'QQ==' }] }))).toBe('InvalidRequest');
    expect(rejectedName(json({ to: ['1'], attachments: [{ name: 'a', data: 'QQ==', path: '/x' }] }))).toBe('InvalidRequest');
    expect(rejectedName(json({ to: ['1'], options: { priority: '3' } }))).toBe('InvalidOption');
    expect(rejectedName(json({ to: ['1'], options: { priority: 1.5 } }))).toBe('InvalidOption');
    expect(rejectedName(json({ to: ['1'], options: { speed: 1 } }))).toBe('InvalidOption');
    expect(rejectedName(Buffer.from('{"to":["1"],"__proto__":{"x":1}}'))).toBe('InvalidRequest');
  });

  it('keeps a usable id for the reply topic, drops an unusable one', () => {
    const bad = parseSendPayload(json({ id: 'm2', to: ['1'], nope: true }));
    expect(bad.ok).toBe(false);
    expect(bad.id).toBe('m2');
    const slash = parseSendPayload(json({ id: 'a/b', to: ['1'] }));
    expect(slash.ok).toBe(false);
    expect(slash.id).toBeUndefined();
    const wild = parseSendPayload(json({ id: 'a+', to: ['1'] }));
    expect(wild.ok).toBe(false);
    expect(wild.id).toBeUndefined();
  });

  it('never throws, and every refusal has a known name', () => {
    const arbitraryJson = fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null'));
    const requestLike = fc
      .record(
        {
          id: fc.oneof(fc.string(), fc.integer()),
          to: fc.oneof(fc.array(fc.string()), fc.string(), fc.constant(null)),
          subject: fc.oneof(fc.string(), fc.boolean()),
          attachments: fc.array(fc.dictionary(fc.constantFrom('name', 'data', 'path', 'contentType', 'x'), fc.oneof(fc.string(), fc.integer()))),
          options: fc.dictionary(fc.string(), fc.oneof(fc.integer(), fc.boolean(), fc.string())),
          junk: fc.anything(),
        },
        { requiredKeys: [] },
      )
      .map((v) => json(v));
    const bytes = fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a));
    fc.assert(
      fc.property(fc.oneof(arbitraryJson, requestLike, bytes), (payload) => {
        const r = parseSendPayload(payload);
        if (!r.ok) expect(REQUEST_ERROR_NAMES).toContain(r.error.errorName);
        const c = parseCancelPayload(payload);
        if (!c.ok) expect(REQUEST_ERROR_NAMES).toContain(c.error.errorName);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('parseCancelPayload', () => {
  it('wants exactly an id', () => {
    expect(parseCancelPayload(json({ id: 'm1' }))).toEqual({ ok: true, value: { id: 'm1' }, id: 'm1' });
    expect(parseCancelPayload(json({})).ok).toBe(false);
    const extra = parseCancelPayload(json({ id: 'm1', why: 'x' }));
    expect(extra.ok).toBe(false);
    expect(extra.id).toBe('m1');
  });
});

describe('reply payloads', () => {
  const record: MessageRecord = {
    id: 'm1', status: 'failed', to: ['1'], cc: [], bcc: [], subject: '', attachments: [], options: {},
    attempts: 5, progress: 1, error: { code: 765, name: 'Server response failed', httpStatus: 503, mmscResponse: '' },
    created: 1, updated: 2, ramFiles: [], sendAccepted: false,
  };

  it('shows a message as §5 says', () => {
    expect(messagePayload(record)).toEqual({
      id: 'm1', status: 'failed', attempts: 5, updated: 2,
      error: { code: 765, name: 'Server response failed', httpStatus: 503 },
    });
    expect(messagePayload({ ...record, status: 'sending', error: undefined, progress: 0.25 })).toEqual({
      id: 'm1', status: 'sending', attempts: 5, progress: 0.25, updated: 2,
    });
  });

  it('says when a retrying message is tried next (nextAttempt), and only while it is retrying', () => {
    const retrying = { ...record, status: 'retrying' as const, attempts: 3, notBefore: 1_700_000_120_000 };
    expect(messagePayload(retrying)).toEqual({
      id: 'm1', status: 'retrying', attempts: 3, nextAttempt: 1_700_000_120_000, updated: 2,
      error: { code: 765, name: 'Server response failed', httpStatus: 503 },
    });
    expect(messagePayload({ ...retrying, status: 'sending' })).not.toHaveProperty('nextAttempt');
    expect(messagePayload(record)).not.toHaveProperty('nextAttempt');
  });

  it('shows a rejection with its name', () => {
    const err = new RequestError('TooManyRecipients', 'at most 6');
    expect(rejectedPayload('m9', err, 7)).toEqual({ id: 'm9', status: 'rejected', attempts: 0, error: { name: 'TooManyRecipients', message: 'at most 6' }, updated: 7 });
    const long = Buffer.alloc(1000, 'x');
    const e = errorTopicPayload(new RequestError('InvalidRequest', 'bad'), long);
    expect(e.status).toBe('rejected');
    expect(e.request!.length).toBeLessThan(300);
  });
});
