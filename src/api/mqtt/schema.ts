// The MQTT payloads of DESIGN.md §5 in one place: the tables that requests are checked against
// (types and shape only; limits and ranges are the shared validation's, behind ctx.submit) and the
// builders of every payload the daemon publishes.
import { RequestError, type RequestErrorName } from '../../core/errors.js';
import { nextAttemptAt, type MessageRecord, type RawSendRequest, type Status } from '../../core/message.js';
import { SEND_OPTIONS } from '../../core/options.js';
import type { CarrierReport } from '../../core/carrier.js';
import type { DeliveryReportEvent, DeliveryState, ReceivedRecord, ReportedDeliveryState } from '../../core/inbound.js';
import type { ModemIdentity, ModemStatus } from '../../core/status.js';
import { isUsableId, MAX_ID_BYTES } from './topics.js';

type FieldKind = 'id' | 'addresses' | 'text' | 'attachments' | 'options' | 'integer' | 'boolean' | 'base64';

interface FieldSpec {
  kind: FieldKind;
  required?: boolean;
  /** The field's key in what the payload is read into, when not its key in the payload. */
  as?: string;
}

/** `<base>/send` (§5). */
const SEND_FIELDS: ReadonlyMap<string, FieldSpec> = new Map([
  ['id', { kind: 'id' }],
  ['to', { kind: 'addresses', required: true }],
  ['cc', { kind: 'addresses' }],
  ['bcc', { kind: 'addresses' }],
  ['subject', { kind: 'text' }],
  ['attachments', { kind: 'attachments' }],
  ['options', { kind: 'options' }],
]);

/** `options` (§5): core's SEND_OPTIONS by their MQTT names; types here, ranges in the shared validation. */
const OPTION_FIELDS: ReadonlyMap<string, FieldSpec> = new Map(
  SEND_OPTIONS.map((o): [string, FieldSpec] => [o.mqtt, { kind: o.type, as: o.key }]),
);

/** An attachment carried in the request: `{"name", "contentType"?, "data": base64}`. */
const DATA_ATTACHMENT_FIELDS: ReadonlyMap<string, FieldSpec> = new Map([
  ['name', { kind: 'text', required: true }],
  ['contentType', { kind: 'text' }],
  ['data', { kind: 'base64', required: true }],
]);

/** An attachment on the gateway's disk: `{"path", "contentType"?}` (attachments.allowedDirs). */
const PATH_ATTACHMENT_FIELDS: ReadonlyMap<string, FieldSpec> = new Map([
  ['path', { kind: 'text', required: true }],
  ['contentType', { kind: 'text' }],
]);

/** `<base>/cancel` (§5). */
const CANCEL_FIELDS: ReadonlyMap<string, FieldSpec> = new Map([['id', { kind: 'id', required: true }]]);

/** How much of a refused payload is echoed on `<base>/error`. */
export const ECHO_LIMIT = 256;

export type Parsed<T> = { ok: true; value: T; id?: string } | { ok: false; error: RequestError; id?: string };

export interface CancelRequest {
  id: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function fail(name: RequestErrorName, message: string): never {
  throw new RequestError(name, message);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

/** Strict base64 (RFC 4648 §4, padded, no whitespace): anything else is a client mistake. */
function decodeBase64(text: string, where: string): Buffer {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    fail('InvalidRequest', `${where} is not valid base64 (RFC 4648, padded, no whitespace)`);
  }
  return Buffer.from(text, 'base64');
}

/** Checks `obj` against `fields` and converts each value; unknown or missing keys are refused. */
function readObject(
  obj: Record<string, unknown>,
  fields: ReadonlyMap<string, FieldSpec>,
  where: string,
  unknownError: RequestErrorName = 'InvalidRequest',
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(obj)) {
    if (!fields.has(key)) {
      fail(unknownError, `unknown field ${JSON.stringify(key.slice(0, 64))} in ${where}; allowed: ${[...fields.keys()].join(', ')}`);
    }
  }
  for (const [key, spec] of fields) {
    const value = Object.hasOwn(obj, key) ? obj[key] : undefined;
    if (value === undefined) {
      if (spec.required) fail('InvalidRequest', `${where}.${key} is required`);
      continue;
    }
    out[spec.as ?? key] = convert(value, spec.kind, `${where}.${key}`);
  }
  return out;
}

function convert(value: unknown, kind: FieldKind, where: string): unknown {
  switch (kind) {
    case 'id':
      if (!isUsableId(value)) {
        fail(
          'InvalidRequest',
          `${where} must be a non-empty string of at most ${MAX_ID_BYTES} bytes without '/', '+', '#' or control characters`,
        );
      }
      return value;
    case 'text':
      if (typeof value !== 'string') fail('InvalidRequest', `${where} must be a string, got ${describe(value)}`);
      return value;
    case 'addresses':
      if (!Array.isArray(value) || !value.every((a) => typeof a === 'string')) {
        fail('InvalidRequest', `${where} must be an array of strings`);
      }
      return value;
    case 'integer':
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
        fail('InvalidOption', `${where} must be an integer, got ${describe(value)}`);
      }
      return value;
    case 'boolean':
      if (typeof value !== 'boolean') fail('InvalidOption', `${where} must be true or false, got ${describe(value)}`);
      return value;
    case 'base64':
      if (typeof value !== 'string') fail('InvalidRequest', `${where} must be a base64 string, got ${describe(value)}`);
      return decodeBase64(value, where);
    case 'options':
      if (!isPlainObject(value)) fail('InvalidOption', `${where} must be an object, got ${describe(value)}`);
      return readObject(value, OPTION_FIELDS, where, 'InvalidOption');
    case 'attachments':
      if (!Array.isArray(value)) fail('InvalidRequest', `${where} must be an array, got ${describe(value)}`);
      return value.map((item: unknown, i) => {
        const at = `${where}[${i}]`;
        if (!isPlainObject(item)) fail('InvalidRequest', `${at} must be an object, got ${describe(item)}`);
        if (Object.hasOwn(item, 'data') === Object.hasOwn(item, 'path')) {
          fail('InvalidRequest', `${at} needs exactly one of "data" (with "name") or "path"`);
        }
        return readObject(item, Object.hasOwn(item, 'data') ? DATA_ATTACHMENT_FIELDS : PATH_ATTACHMENT_FIELDS, at);
      });
  }
}

/** JSON object from the payload bytes (UTF-8, RFC 8259), or a RequestError. */
function parseJsonObject(payload: Buffer): Record<string, unknown> {
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    fail('InvalidRequest', 'payload is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    fail('InvalidRequest', `payload is not JSON: ${err instanceof Error ? err.message.slice(0, 120) : 'parse error'}`);
  }
  if (!isPlainObject(value)) fail('InvalidRequest', `payload must be a JSON object, got ${describe(value)}`);
  return value;
}

function parseWith<T>(payload: Buffer, fields: ReadonlyMap<string, FieldSpec>, where: string): Parsed<T> {
  let id: string | undefined;
  try {
    const obj = parseJsonObject(payload);
    // The id is taken first so that a refusal of any other field can still be answered on
    // `<base>/message/<id>` (§5).
    if (isUsableId(obj.id)) id = obj.id;
    const value = readObject(obj, fields, where) as T;
    return id === undefined ? { ok: true, value } : { ok: true, value, id };
  } catch (err) {
    const error = err instanceof RequestError ? err : new RequestError('InvalidRequest', 'payload could not be read');
    return id === undefined ? { ok: false, error } : { ok: false, error, id };
  }
}

/** A `<base>/send` payload → the RawSendRequest for ctx.submit (attachment data as Buffers). */
export function parseSendPayload(payload: Buffer): Parsed<RawSendRequest> {
  return parseWith<RawSendRequest>(payload, SEND_FIELDS, 'request');
}

/** A `<base>/cancel` payload. */
export function parseCancelPayload(payload: Buffer): Parsed<CancelRequest> {
  return parseWith<CancelRequest>(payload, CANCEL_FIELDS, 'cancel');
}

// ---- What the daemon publishes (§5) ----

export interface MessageStatusPayload {
  id: string;
  status: Status | 'rejected';
  attempts: number;
  progress?: number;
  /** Unix ms of the next try, while `retrying`. */
  nextAttempt?: number;
  error?:
    | { code: number; name: string; httpStatus?: number; mmscResponse?: string }
    | { name: RequestErrorName; message: string };
  /** DESIGN.md §12: recipient → delivery state, when a delivery report was asked for. */
  delivery?: Record<string, DeliveryState>;
  /** §11: what fitting did, one line per changed part; only when it changed something. */
  adjustments?: string[];
  updated: number;
}

/** `<base>/message/<id>` for a message the outbox holds. */
export function messagePayload(record: MessageRecord): MessageStatusPayload {
  const out: MessageStatusPayload = {
    id: record.id,
    status: record.status,
    attempts: record.attempts,
    updated: record.updated,
  };
  if (record.status === 'sending') out.progress = record.progress;
  const next = nextAttemptAt(record);
  if (next !== undefined) out.nextAttempt = next;
  if (record.error) {
    const { code, name, httpStatus, mmscResponse } = record.error;
    out.error = { code, name };
    if (httpStatus !== undefined && httpStatus !== 0) out.error.httpStatus = httpStatus;
    if (mmscResponse !== undefined && mmscResponse !== '') out.error.mmscResponse = mmscResponse;
  }
  if (record.adjustments && record.adjustments.length > 0) out.adjustments = [...record.adjustments];
  if (record.delivery !== undefined) out.delivery = { ...record.delivery };
  return out;
}

/** One part in `<base>/received/<id>` (DESIGN.md §12). */
export interface ReceivedPartPayload {
  name: string;
  contentType: string;
  charset?: string;
  size: number;
  path: string;
  /** The bytes in base64, when the message is at most `mqtt.inlineMaxBytes`. */
  data?: string;
}

/** `<base>/received/<id>` (DESIGN.md §12): a received message; the final one retained, "" once deleted. */
export interface ReceivedPayload extends Omit<ReceivedRecord, 'parts'> {
  parts: ReceivedPartPayload[];
}

/** The payload of a received message; `data[i]` the bytes of part i when they travel inline. */
export function receivedPayload(r: ReceivedRecord, data?: readonly Buffer[]): ReceivedPayload {
  const out: ReceivedPayload = {
    id: r.id,
    status: r.status,
    from: r.from,
    to: [...r.to],
    cc: [...r.cc],
    subject: r.subject,
    date: r.date,
    size: r.size,
    expiry: r.expiry,
    parts: r.parts.map((p, i) => {
      const part: ReceivedPartPayload = { name: p.name, contentType: p.contentType, size: p.size, path: p.path };
      if (p.charset !== undefined) part.charset = p.charset;
      const bytes = data?.[i];
      if (bytes !== undefined) part.data = bytes.toString('base64');
      return part;
    }),
  };
  if (r.messageId !== undefined) out.messageId = r.messageId;
  if (r.error !== undefined) out.error = { ...r.error };
  return out;
}

/** `<base>/delivery` (DESIGN.md §5, §12): one delivery report, matched (`message`) or not. */
export interface DeliveryPayload {
  /** Our message id; absent when the report matched no sent message. */
  message?: string;
  recipient: string;
  status: ReportedDeliveryState;
  /** The MMSC's Message-ID the report carries. */
  messageId: string;
  /** The report's Date, unix ms. */
  date: number;
  /** The message's per-recipient states after the report, when matched. */
  delivery?: Record<string, DeliveryState>;
}

export function deliveryPayload(e: DeliveryReportEvent): DeliveryPayload {
  const out: DeliveryPayload = { recipient: e.recipient, status: e.status, messageId: e.reportMessageId, date: e.date };
  if (e.messageId !== undefined) out.message = e.messageId;
  if (e.delivery !== undefined) out.delivery = { ...e.delivery };
  return out;
}

/** `<base>/message/<id>` for a refused request: `rejected`, nothing queued. */
export function rejectedPayload(id: string, error: RequestError, now: number): MessageStatusPayload {
  return { id, status: 'rejected', attempts: 0, error: { name: error.errorName, message: error.message }, updated: now };
}

/**
 * `<base>/message/<id>` for a refused cancel of a known message: its current status with the
 * request error (NotCancellable); not retained, so the retained final status stays as it was.
 */
export function cancelRefusedPayload(record: MessageRecord, error: RequestError, now: number): MessageStatusPayload {
  return { ...messagePayload(record), error: { name: error.errorName, message: error.message }, updated: now };
}

export interface ErrorTopicPayload {
  status: 'rejected';
  error: { name: RequestErrorName; message: string };
  /** The start of the refused payload, as text. */
  request?: string;
}

/** `<base>/error`: a refused request that carried no usable id. */
export function errorTopicPayload(error: RequestError, payload: Buffer): ErrorTopicPayload {
  const out: ErrorTopicPayload = { status: 'rejected', error: { name: error.errorName, message: error.message } };
  if (payload.length > 0) {
    const head = payload.subarray(0, ECHO_LIMIT).toString('utf8');
    out.request = payload.length > ECHO_LIMIT ? `${head}…` : head;
  }
  return out;
}

/**
 * `carrier` on `<base>/status` (DESIGN.md §10): the D-Bus `Carrier` fields in camelCase, each
 * candidate as the config line that picks it.
 */
export type CarrierPayload = Omit<CarrierReport, 'candidates'> & { candidates: string[] };

export interface StatusPayload {
  modemState: ModemStatus['state'];
  registration: ModemStatus['registration'];
  operator: string;
  signal: number;
  /** `signal` in dBm (3GPP TS 27.007 §8.5: −113 + 2·rssi), null when unknown (99). */
  signalDbm: number | null;
  queueLength: number;
  /** Messages sent (and failed) since the daemon started (DESIGN.md §13). */
  sentTotal: number;
  failedTotal: number;
  /** The last error seen since the daemon started: a message's (`<id>: <code> <name>`) or the modem's; null before any. */
  lastError: string | null;
  carrier?: CarrierPayload;
  /** The module (AT+CGSN/CGMI/CGMM/CGMR), once read. */
  modem?: ModemIdentity;
}

/** What `<base>/status` carries besides the modem status and the queue (see SendTally). */
export interface StatusExtras {
  sentTotal: number;
  failedTotal: number;
  lastError?: string | undefined;
  identity?: ModemIdentity | undefined;
}

/** +CSQ rssi 0..31 → dBm (0 is −113 dBm or less, 31 is −51 dBm or more); -1 (99, unknown) → null. */
export function signalDbm(rssi: number): number | null {
  return Number.isInteger(rssi) && rssi >= 0 && rssi <= 31 ? -113 + 2 * rssi : null;
}

export function carrierPayload(r: CarrierReport): CarrierPayload {
  return {
    source: r.source,
    provider: r.provider,
    mccMnc: r.mccMnc,
    apn: r.apn,
    mmsc: r.mmsc,
    proxy: r.proxy,
    maxMessageBytes: r.maxMessageBytes,
    candidates: r.candidates.map((c) => c.configLine),
    reason: r.reason,
    configKeys: [...r.configKeys],
  };
}

/** `<base>/status` (retained). */
export function statusPayload(
  status: ModemStatus,
  queueLength: number,
  carrier?: CarrierReport,
  extras: StatusExtras = { sentTotal: 0, failedTotal: 0 },
): StatusPayload {
  return {
    modemState: status.state,
    registration: status.registration,
    operator: status.operator,
    signal: status.signal,
    signalDbm: signalDbm(status.signal),
    queueLength,
    sentTotal: extras.sentTotal,
    failedTotal: extras.failedTotal,
    lastError: extras.lastError ?? null,
    ...(carrier ? { carrier: carrierPayload(carrier) } : {}),
    ...(extras.identity ? { modem: { ...extras.identity } } : {}),
  };
}

export const AVAILABILITY_ONLINE = 'online';
export const AVAILABILITY_OFFLINE = 'offline';
