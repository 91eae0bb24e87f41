// What MmsClient gives back of mmsd's objects (DESIGN.md §4): their properties as plain objects
// (variants unwrapped, 64-bit numbers as numbers), what a send returns, and the NotFound errors.
import dbus from 'dbus-next';
import type { Status } from '../../core/message.js';
import type { Variant } from './convert.js';
import { ERROR_PREFIX } from './names.js';

const { DBusError } = dbus;

/** The manager's `Carrier` a{sv} (DESIGN.md §10), unwrapped. */
export interface CarrierProperties {
  Source: 'config' | 'database' | 'ambiguous' | 'not-found' | 'pending';
  Provider: string;
  MccMnc: string;
  Apn: string;
  Mmsc: string;
  /** "host:port", or "" for none. */
  Proxy: string;
  MaxMessageBytes: number;
  /** The config line that picks each candidate. */
  Candidates: string[];
  Reason: string;
  /** The explicit config keys that won over the database. */
  ConfigKeys: string[];
}

export interface ManagerProperties {
  ModemState: string;
  Registration: string;
  Operator: string;
  SignalQuality: number;
  QueueLength: number;
  /** Absent from a daemon older than the property. */
  MaxAttempts?: number;
  Version: string;
  /** Absent from a daemon older than the property. */
  Carrier?: CarrierProperties;
}

export interface MessageProperties {
  Id: string;
  Status: Status;
  To: string[];
  Cc: string[];
  Bcc: string[];
  Subject: string;
  Attempts: number;
  Progress: number;
  Error: string;
  HttpStatus: number;
  MmscResponse: string;
  /** Unix ms (uint64 on the bus, converted here). */
  Created: number;
  Updated: number;
  /** Unix ms of the next try while `retrying`, 0 otherwise (absent from an older daemon). */
  NextAttempt?: number;
  /** DESIGN.md §12: recipient → delivery state; empty without a report asked for (absent from an older daemon). */
  Delivery?: Record<string, string>;
  /** §11: what fitting did, one line per changed part (absent from an older daemon). */
  Adjustments?: string[];
}

/** One part of a received message (the `Parts a(ssst)` of DESIGN.md §12). */
export interface ReceivedPartProperties {
  name: string;
  contentType: string;
  path: string;
  size: number;
}

/** org.example.Mms1.Received (DESIGN.md §12); uint64 converted to number. */
export interface ReceivedProperties {
  Id: string;
  Status: 'notified' | 'retrieving' | 'received' | 'expired' | 'failed';
  From: string;
  To: string[];
  Cc: string[];
  Subject: string;
  Date: number;
  Size: number;
  Expiry: number;
  Parts: ReceivedPartProperties[];
  Error: string;
  MessageId?: string;
}

/** What `watch()` reports: one signal of mmsd, as it happens. */
export type WatchEvent =
  | { kind: 'added'; path: string; props: MessageProperties }
  | { kind: 'removed'; path: string }
  | { kind: 'changed'; path: string; iface: string; changed: Record<string, unknown> }
  | { kind: 'delivery'; path: string; recipient: string; status: string }
  | { kind: 'received'; path: string; props: ReceivedProperties };

/** What a send or resend call did. */
export interface SendResult {
  /** The message's object path. */
  path: string;
  /**
   * The message's properties as mmsd recorded them when it queued it (from its MessageAdded
   * signal); undefined when the id was already known and nothing was queued.
   */
  added?: MessageProperties;
}

export interface SendFields {
  to: string[];
  cc?: string[];
  bcc?: string[];
  subject?: string;
  id?: string;
  /** validity, priority, deliveryReport, readReport, visibility, class, timeout. */
  options?: Record<string, number | boolean | undefined>;
}

export interface DataAttachment {
  name: string;
  contentType?: string;
  data: Buffer;
}

export interface PathAttachment {
  path: string;
  contentType?: string;
}

/** Received properties from the bus: the parts' tuples as objects, their sizes as numbers. */
export function receivedProps(dict: Record<string, Variant>): ReceivedProperties {
  const p = unwrap(dict);
  const parts = (p.Parts as [string, string, string, bigint | number][] | undefined) ?? [];
  return { ...(p as unknown as ReceivedProperties), Parts: parts.map(([name, contentType, path, size]) => ({ name, contentType, path, size: Number(size) })) };
}

/** Variants → plain values, an a{sv} inside one too; uint64/int64 (BigInt) → number at the edge. */
export function unwrap(dict: Record<string, Variant>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(dict)) {
    const value: unknown = v.value;
    if (typeof value === 'bigint') out[k] = Number(value);
    else if (v.signature === 'a{sv}' && typeof value === 'object' && value !== null) out[k] = unwrap(value as Record<string, Variant>);
    else out[k] = value;
  }
  return out;
}

export function notFoundReceived(id: string): InstanceType<typeof DBusError> {
  return new DBusError(`${ERROR_PREFIX}NotFound`, `no received message ${id}`);
}

export function notFound(id: string): InstanceType<typeof DBusError> {
  return new DBusError(`${ERROR_PREFIX}NotFound`, `no message ${id}`);
}
