// The hand-marshalled ListMessages reply (src/api/dbus/wire.ts, writeMessageList in convert.ts)
// against dbus-next's own marshaller: the same message, byte for byte, for the same records.
import { createRequire } from 'node:module';
import dbus from 'dbus-next';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FAILED_RECORD } from './dbus-fixtures.js';
import type { MessageRecord } from '../../src/core/message.js';
import { MESSAGE_PROPERTIES, propertyVariants, writeMessageList } from '../../src/api/dbus/convert.js';
import { messagePath } from '../../src/api/dbus/names.js';
import { UnsupportedSignatureError, WireValueError, WireWriter, marshalMethodReturn, parseSignature } from '../../src/api/dbus/wire.js';

const { Message, Variant } = dbus;
type BusMessage = InstanceType<typeof Message>;

// dbus-next's internals: what its connection does with a Message it sends, and its parser.
const require = createRequire(import.meta.url);
const { marshallMessage } = require('dbus-next/lib/marshall-compat.js') as { marshallMessage: (m: BusMessage) => [Buffer, number[]] };
const { unmarshall } = require('dbus-next/lib/message.js') as { unmarshall: (b: Buffer) => { signature: string; body: unknown[]; replySerial: number; destination: string; type: number } };

const base: MessageRecord = FAILED_RECORD;

const records: MessageRecord[] = [
  base,
  { ...base, id: 'ünï-cødé_1', status: 'sent', to: ['+1', '+22', '+333'], cc: ['c@x'], bcc: [], subject: 'Grüße 👋', progress: 0.375, error: undefined, delivery: { '+1': 'retrieved', '+22': 'pending' }, adjustments: ['photo.jpg: 4000×3000 → 1600×1200'] },
  { ...base, id: 'x', status: 'retrying', subject: '', attempts: 2, progress: 0, notBefore: 1_700_000_009_999, error: { code: 0, name: 'Timeout' } },
];

function viaDbusNext(call: { serial: number; sender: string }, serial: number, signature: string, body: unknown[]): Buffer {
  const reply = Message.newMethodReturn(call as unknown as BusMessage, signature, body);
  reply.serial = serial;
  return marshallMessage(reply)[0];
}

const listBody = (rs: MessageRecord[]): unknown[] => [rs.map((r) => [messagePath(r.id), propertyVariants(MESSAGE_PROPERTIES, r)])];

describe('hand-marshalled ListMessages reply', () => {
  const call = { serial: 77, sender: ':1.42' };

  it('is byte for byte what dbus-next marshals for the same records', () => {
    const ours = marshalMethodReturn(call, 9, 'a(oa{sv})', (w) => writeMessageList(w, records));
    expect(ours.equals(viaDbusNext(call, 9, 'a(oa{sv})', listBody(records)))).toBe(true);
  });

  it('ListMessagesPage: the total before the page, byte for byte', () => {
    const ours = marshalMethodReturn(call, 10, 'ua(oa{sv})', (w) => {
      w.uint32(1234);
      writeMessageList(w, records.slice(1));
    });
    expect(ours.equals(viaDbusNext(call, 10, 'ua(oa{sv})', [1234, ...listBody(records.slice(1))]))).toBe(true);
  });

  it('an empty list, and a caller without a unique name', () => {
    const noSender = { serial: 5 } as { serial: number; sender: string };
    expect(marshalMethodReturn(noSender, 3, 'a(oa{sv})', (w) => writeMessageList(w, [])).equals(viaDbusNext(noSender, 3, 'a(oa{sv})', [[]]))).toBe(true);
  });

  it('dbus-next decodes it to the properties it would have sent', () => {
    const decoded = unmarshall(marshalMethodReturn(call, 11, 'a(oa{sv})', (w) => writeMessageList(w, records)));
    expect(decoded.signature).toBe('a(oa{sv})');
    expect(decoded.replySerial).toBe(77);
    expect(decoded.destination).toBe(':1.42');
    const entries = decoded.body[0] as [string, [string, [unknown, unknown[]]][]][];
    expect(entries.map((e) => e[0])).toEqual(records.map((r) => messagePath(r.id)));
    const subject = entries[1][1].find(([k]) => k === 'Subject');
    expect(subject?.[1][1]).toEqual(['Grüße 👋']);
  });

  it('matches dbus-next for any records', () => {
    const text = fc.string({ unit: 'grapheme', maxLength: 12 });
    const arb = fc.record({
      id: fc.stringMatching(/^[A-Za-z0-9_.-]{1,20}$/),
      to: fc.array(text, { maxLength: 3 }),
      subject: text,
      attempts: fc.nat(1000),
      progress: fc.double({ min: 0, max: 1, noNaN: true }),
      updated: fc.integer({ min: 0, max: 2 ** 52 }),
      delivery: fc.dictionary(text, fc.constantFrom('pending', 'retrieved', 'rejected')),
    });
    fc.assert(
      fc.property(fc.array(arb, { maxLength: 5 }), (parts) => {
        const rs = parts.map((p) => ({ ...base, ...p }));
        const ours = marshalMethodReturn(call, 12, 'a(oa{sv})', (w) => writeMessageList(w, rs));
        return ours.equals(viaDbusNext(call, 12, 'a(oa{sv})', listBody(rs)));
      }),
    );
  });
});

describe('wire writer', () => {
  it('names a signature it does not write, and a value that does not fit', () => {
    expect(() => parseSignature('h')).toThrow(UnsupportedSignatureError);
    expect(() => parseSignature('a{s}')).toThrow(UnsupportedSignatureError);
    expect(() => new WireWriter(undefined).value(parseSignature('s')[0], 5)).toThrow(WireValueError);
    expect(() => new WireWriter(undefined).value(parseSignature('v')[0], 'x')).toThrow(WireValueError);
  });

  it('writes a variant holding a struct and bytes as dbus-next does', () => {
    const v = new Variant('(yta(ss)ay)', [7, 5n, [['a', 'b']], Buffer.from([1, 2, 3])]);
    const ours = marshalMethodReturn({ serial: 1, sender: ':1.1' }, 2, 'va{sv}', (w) => {
      w.value(parseSignature('v')[0], v);
      w.value(parseSignature('a{sv}')[0], { k: new Variant('ad', [1.5, -2]) });
    });
    expect(ours.equals(viaDbusNext({ serial: 1, sender: ':1.1' }, 2, 'va{sv}', [v, { k: new Variant('ad', [1.5, -2]) }]))).toBe(true);
  });
});
