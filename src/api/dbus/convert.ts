// Conversion between D-Bus values and mmsd's own (DESIGN.md §4): the option table, the message
// and manager property tables, and the mapping of errors to D-Bus error names.
import dbus from 'dbus-next';
import type { Logger } from 'pino';
import type { CarrierReport } from '../../core/carrier.js';
import type { ReceivedRecord } from '../../core/inbound.js';
import { RequestError, StoppingError } from '../../core/errors.js';
import { nextAttemptAt, type MessageRecord } from '../../core/message.js';
import { SEND_OPTIONS } from '../../core/options.js';
import type { ModemStatus } from '../../core/status.js';
import { ERROR_PREFIX, messagePath } from './names.js';
import { parseSignature, type WireWriter } from './wire.js';

const { DBusError, Variant } = dbus;
export type Variant = InstanceType<typeof Variant>;
export type DBusError = InstanceType<typeof DBusError>;

/** D-Bus signature of each type of option value. */
const SIGNATURE = { integer: 'u', boolean: 'b' } as const;

/**
 * The a{sv} options of SendMessage/SendMessageData: key → variant type and raw request field. `Id`
 * is the client id; the others are core's SEND_OPTIONS under their D-Bus names.
 */
export const OPTION_TABLE: Readonly<Record<string, { signature: 's' | 'u' | 'b'; field: string }>> = {
  Id: { signature: 's', field: 'id' },
  ...Object.fromEntries(SEND_OPTIONS.map((o) => [o.dbus, { signature: SIGNATURE[o.type], field: o.key }])),
};

/**
 * a{sv} → the client id and the raw options for ctx.submit. Only the types are checked here; the
 * ranges are the shared validation's (core) business. An unknown key or a variant of the wrong
 * type is InvalidOption.
 */
export function convertOptions(dict: unknown): { id?: string; options: Record<string, unknown> } {
  const options: Record<string, unknown> = {};
  let id: string | undefined;
  if (dict === null || typeof dict !== 'object') throw new RequestError('InvalidOption', 'options must be a{sv}');
  for (const [key, value] of Object.entries(dict as Record<string, unknown>)) {
    const spec = OPTION_TABLE[key];
    if (spec === undefined) {
      throw new RequestError(
        'InvalidOption',
        `unknown option "${key}"; known: ${Object.keys(OPTION_TABLE).join(', ')}`,
      );
    }
    if (!(value instanceof Variant) || value.signature !== spec.signature) {
      const got = value instanceof Variant ? value.signature : typeof value;
      throw new RequestError('InvalidOption', `option ${key} must be of type '${spec.signature}', got '${got}'`);
    }
    if (spec.field === 'id') id = value.value as string;
    else options[spec.field] = value.value;
  }
  return id === undefined ? { options } : { id, options };
}

/** Options as a client sends them (mmsctl): raw field values → a{sv}. */
export function optionsToVariants(fields: Record<string, string | number | boolean | undefined>): Record<string, Variant> {
  const out: Record<string, Variant> = {};
  for (const [key, spec] of Object.entries(OPTION_TABLE)) {
    const value = fields[spec.field];
    if (value !== undefined) out[key] = new Variant(spec.signature, value);
  }
  return out;
}

/** "" or "<code> <name>" (DESIGN.md §4); code 0 marks a daemon-side error. */
export function formatMessageError(record: MessageRecord): string {
  return record.error ? `${record.error.code} ${record.error.name}` : '';
}

interface PropertySpec<S> {
  signature: string;
  get(source: S): unknown;
}

/** Properties of org.example.Mms1.Message, in introspection order. uint64 goes out as BigInt. */
export const MESSAGE_PROPERTIES: Readonly<Record<string, PropertySpec<MessageRecord>>> = {
  Id: { signature: 's', get: (r) => r.id },
  Status: { signature: 's', get: (r) => r.status },
  To: { signature: 'as', get: (r) => [...r.to] },
  Cc: { signature: 'as', get: (r) => [...r.cc] },
  Bcc: { signature: 'as', get: (r) => [...r.bcc] },
  Subject: { signature: 's', get: (r) => r.subject },
  Attempts: { signature: 'u', get: (r) => r.attempts },
  Progress: { signature: 'd', get: (r) => r.progress },
  Error: { signature: 's', get: formatMessageError },
  HttpStatus: { signature: 'u', get: (r) => r.error?.httpStatus ?? 0 },
  MmscResponse: { signature: 's', get: (r) => r.error?.mmscResponse ?? '' },
  Created: { signature: 't', get: (r) => BigInt(r.created) },
  Updated: { signature: 't', get: (r) => BigInt(r.updated) },
  /** Unix ms of the next try of a `retrying` message; 0 in every other state. */
  NextAttempt: { signature: 't', get: (r) => BigInt(nextAttemptAt(r) ?? 0) },
  /** DESIGN.md §12: recipient → delivery state; empty when no report was asked for. */
  Delivery: { signature: 'a{ss}', get: (r) => ({ ...r.delivery }) },
  /** §11: what fitting did, one line per changed part; empty when nothing was changed. */
  Adjustments: { signature: 'as', get: (r) => [...(r.adjustments ?? [])] },
};

/** Properties of org.example.Mms1.Received (DESIGN.md §12), in introspection order. */
export const RECEIVED_PROPERTIES: Readonly<Record<string, PropertySpec<ReceivedRecord>>> = {
  Id: { signature: 's', get: (r) => r.id },
  Status: { signature: 's', get: (r) => r.status },
  From: { signature: 's', get: (r) => r.from },
  To: { signature: 'as', get: (r) => [...r.to] },
  Cc: { signature: 'as', get: (r) => [...r.cc] },
  Subject: { signature: 's', get: (r) => r.subject },
  Date: { signature: 't', get: (r) => BigInt(r.date) },
  Size: { signature: 't', get: (r) => BigInt(r.size) },
  Expiry: { signature: 't', get: (r) => BigInt(r.expiry) },
  /** (name, content type, path, size) */
  Parts: { signature: 'a(ssst)', get: (r) => r.parts.map((p) => [p.name, p.contentType, p.path, BigInt(p.size)]) },
  /** "" or "<Name>: <text>", e.g. "MessageTooLarge: the message is …". */
  Error: { signature: 's', get: (r) => (r.error ? `${r.error.name}: ${r.error.message}` : '') },
  /** The MMSC's Message-ID once received; "" before. */
  MessageId: { signature: 's', get: (r) => r.messageId ?? '' },
};

export interface ManagerSource {
  status: ModemStatus;
  carrier: CarrierReport;
  queueLength: number;
  maxAttempts: number;
  version: string;
}

/** Properties of org.example.Mms1, in introspection order. */
export const MANAGER_PROPERTIES: Readonly<Record<string, PropertySpec<ManagerSource>>> = {
  ModemState: { signature: 's', get: (s) => s.status.state },
  Registration: { signature: 's', get: (s) => s.status.registration },
  Operator: { signature: 's', get: (s) => s.status.operator },
  SignalQuality: { signature: 'i', get: (s) => s.status.signal },
  QueueLength: { signature: 'u', get: (s) => s.queueLength },
  MaxAttempts: { signature: 'u', get: (s) => s.maxAttempts },
  Version: { signature: 's', get: (s) => s.version },
  Carrier: { signature: 'a{sv}', get: (s) => carrierVariants(s.carrier) },
};

/**
 * The `Carrier` a{sv} of DESIGN.md §10. Candidates: the config line that picks each candidate
 * (for `ambiguous`, those left; for `database`, every provider of the network). Reason and
 * ConfigKeys (the explicit keys that won over the database) go beyond the contract's fields.
 */
export function carrierVariants(r: CarrierReport): Record<string, Variant> {
  return {
    Source: new Variant('s', r.source),
    Provider: new Variant('s', r.provider),
    MccMnc: new Variant('s', r.mccMnc),
    Apn: new Variant('s', r.apn),
    Mmsc: new Variant('s', r.mmsc),
    Proxy: new Variant('s', r.proxy),
    MaxMessageBytes: new Variant('u', r.maxMessageBytes),
    Candidates: new Variant('as', r.candidates.map((c) => c.configLine)),
    Reason: new Variant('s', r.reason),
    ConfigKeys: new Variant('as', [...r.configKeys]),
  };
}

/** Every property of a table as plain values. */
export function propertyValues<S>(table: Readonly<Record<string, PropertySpec<S>>>, source: S): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(table)) out[name] = spec.get(source);
  return out;
}

/** Every property of a table as variants (a{sv} for MessageAdded and ListMessages). */
export function propertyVariants<S>(table: Readonly<Record<string, PropertySpec<S>>>, source: S): Record<string, Variant> {
  const out: Record<string, Variant> = {};
  for (const [name, spec] of Object.entries(table)) out[name] = new Variant(spec.signature, spec.get(source));
  return out;
}

/**
 * The a(oa{sv}) of ListMessages written straight from the records (wire.ts): the same properties
 * and values as propertyVariants(MESSAGE_PROPERTIES, r) under messagePath(r.id), without building
 * Variant objects.
 */
export function writeMessageList(w: WireWriter, records: readonly MessageRecord[]): void {
  const props = Object.entries(MESSAGE_PROPERTIES).map(([name, spec]) => ({ name, spec, node: parseSignature(spec.signature)[0] }));
  w.array('(', () => {
    for (const r of records) {
      w.align(8);
      w.string(messagePath(r.id));
      w.array('{', () => {
        for (const { name, spec, node } of props) {
          w.align(8);
          w.string(name);
          w.signature(spec.signature);
          w.value(node, spec.get(r));
        }
      });
    }
  });
}

/** The properties whose value differs between two snapshots (arrays by content). */
export function changedValues(before: Record<string, unknown>, after: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(after)) {
    const old = before[name];
    const same =
      Array.isArray(value) && Array.isArray(old)
        ? sameArray(old, value)
        : typeof value === 'object' && value !== null && typeof old === 'object' && old !== null
          ? JSON.stringify(old) === JSON.stringify(value) // a{sv} (Carrier): variants of plain values
          : old === value;
    if (!same) out[name] = value;
  }
  return out;
}

function sameArray(a: unknown[], b: unknown[]): boolean {
  return a.length === b.length && a.every((v, i) => (Array.isArray(v) && Array.isArray(b[i]) ? sameArray(v, b[i] as unknown[]) : v === b[i]));
}

/**
 * Any error thrown by a handler → the DBusError the caller gets. RequestError keeps its name
 * (`org.example.Mms1.Error.<Name>`); anything else is logged and answered with a generic Failed,
 * so that no stack trace or internal detail leaks onto the bus.
 */
export function toDBusError(err: unknown, logger: Logger, method: string): DBusError {
  if (err instanceof RequestError) return new DBusError(ERROR_PREFIX + err.errorName, err.message);
  if (err instanceof DBusError) return err;
  if (err instanceof StoppingError) return new DBusError('org.freedesktop.DBus.Error.Failed', err.message);
  logger.error({ err, method }, 'D-Bus method failed');
  return new DBusError('org.freedesktop.DBus.Error.Failed', `mmsd could not complete ${method}; see the daemon log`);
}
