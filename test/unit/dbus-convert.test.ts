// D-Bus value conversion: options, properties, errors (src/api/dbus/convert.ts).
import dbus from 'dbus-next';
import fc from 'fast-check';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FAILED_RECORD } from './dbus-fixtures.js';
import { RequestError } from '../../src/core/errors.js';
import type { MessageRecord } from '../../src/core/message.js';
import {
  MESSAGE_PROPERTIES,
  changedValues,
  convertOptions,
  optionsToVariants,
  propertyValues,
  propertyVariants,
  toDBusError,
} from '../../src/api/dbus/convert.js';

const { DBusError, Variant } = dbus;

const record: MessageRecord = FAILED_RECORD;

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof RequestError) return err.errorName;
    throw err;
  }
  throw new Error('accepted');
}

describe('options a{sv}', () => {
  it('converts every known option to its raw field, Id to the client id', () => {
    expect(
      convertOptions({
        Id: new Variant('s', 'abc'),
        Validity: new Variant('u', 6),
        Priority: new Variant('u', 0),
        DeliveryReport: new Variant('b', true),
        ReadReport: new Variant('b', false),
        Visibility: new Variant('u', 1),
        Class: new Variant('u', 4),
        Timeout: new Variant('u', 300),
      }),
    ).toEqual({
      id: 'abc',
      options: { validity: 6, priority: 0, deliveryReport: true, readReport: false, visibility: 1, class: 4, timeout: 300 },
    });
    expect(convertOptions({})).toEqual({ options: {} });
  });

  it('refuses an unknown key or a variant of the wrong type as InvalidOption', () => {
    expect(refusal(() => convertOptions({ Colour: new Variant('s', 'red') }))).toBe('InvalidOption');
    expect(refusal(() => convertOptions({ Validity: new Variant('i', 3) }))).toBe('InvalidOption');
    expect(refusal(() => convertOptions({ DeliveryReport: new Variant('u', 1) }))).toBe('InvalidOption');
    expect(refusal(() => convertOptions({ Id: 'plain string' }))).toBe('InvalidOption');
  });

  it('reads back what a client encoded', () => {
    const field = fc.option(fc.nat({ max: 65535 }), { nil: undefined });
    fc.assert(
      fc.property(field, field, fc.option(fc.boolean(), { nil: undefined }), fc.option(fc.string(), { nil: undefined }), (validity, timeout, deliveryReport, id) => {
        const back = convertOptions(optionsToVariants({ validity, timeout, deliveryReport, id }));
        expect(back.id).toBe(id);
        expect(back.options).toEqual(
          Object.fromEntries(Object.entries({ validity, timeout, deliveryReport }).filter(([, v]) => v !== undefined)),
        );
      }),
    );
  });
});

describe('message properties', () => {
  it('shows the error as "<code> <name>", uint64 times as BigInt', () => {
    const v = propertyValues(MESSAGE_PROPERTIES, record);
    expect(v).toMatchObject({ Error: '765 Server response failed', HttpStatus: 502, MmscResponse: 'denied', Attempts: 5 });
    expect(v.Created).toBe(1_700_000_000_123n);
    const none = propertyValues(MESSAGE_PROPERTIES, { ...record, error: undefined });
    expect(none).toMatchObject({ Error: '', HttpStatus: 0, MmscResponse: '' });
    expect(propertyVariants(MESSAGE_PROPERTIES, record).To).toEqual(new Variant('as', ['+15551234']));
  });

  it('finds what changed, arrays by content', () => {
    const before = propertyValues(MESSAGE_PROPERTIES, record);
    const after = propertyValues(MESSAGE_PROPERTIES, { ...record, to: ['+15551234'], status: 'sent', updated: record.updated + 5 });
    expect(changedValues(before, after)).toEqual({ Status: 'sent', Updated: BigInt(record.updated + 5) });
  });
});

describe('errors', () => {
  const logger = pino({ level: 'silent' });
  it('names a RequestError org.example.Mms1.Error.<Name> with its message', () => {
    const e = toDBusError(new RequestError('SubjectTooLong', 'subject is 201 bytes'), logger, 'SendMessage');
    expect([e.type, e.text]).toEqual(['org.example.Mms1.Error.SubjectTooLong', 'subject is 201 bytes']);
  });
  it('passes a DBusError through and hides anything else behind Failed', () => {
    const own = new DBusError('org.example.Mms1.Error.NotFound', 'x');
    expect(toDBusError(own, logger, 'Cancel')).toBe(own);
    const e = toDBusError(new Error('ENOSPC at /var/lib/mmsd/x.json'), logger, 'SendMessage');
    expect(e.type).toBe('org.freedesktop.DBus.Error.Failed');
    expect(e.text).not.toContain('/var/lib');
  });
});
