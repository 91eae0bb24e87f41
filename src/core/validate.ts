// The one place for the rules of a send request (DESIGN.md §4, §6; spec §2.1–2.2): both front
// doors call validateRequest, which either returns a SendRequest safe for the AT line or throws.
import { constants as fsConstants } from 'node:fs';
import { open, realpath, stat } from 'node:fs/promises';
import { basename, isAbsolute, resolve as resolvePath, sep } from 'node:path';
import { guessContentType } from './content-type.js';
import { RequestError } from './errors.js';
import { FIT_INPUT_MAX_BYTES, LIMITS } from './limits.js';
import type { AttachmentInput, RawSendRequest, SendRequest } from './message.js';
import { attachmentNames } from './names.js';
import { SEND_OPTIONS, type SendOptions } from './options.js';

export interface RequestLimits {
  maxMessageBytes: number;
  allowedDirs: string[];
  /** Where maxMessageBytes comes from, in words for the error (default `mms.maxMessageBytes`). */
  limitSource?: string;
  /**
   * DESIGN.md §11, photos that fit (`media.fit`): a message over the limit is taken when fitting
   * its images can make it fit, unless its option `fit` is false. `check` throws MessageTooLarge
   * when the parts that are not images alone exceed the limit (media's checkNonImageParts).
   */
  fit?: { check(parts: ReadonlyArray<{ name: string; contentType: string; size: number }>, limitBytes: number): void };
}

const ID = new RegExp(`^[A-Za-z0-9._-]{1,${LIMITS.idChars}}$`);
const PHONE = /^\+?[0-9]{3,20}$/;
// Conservative: what the module and an MMSC both surely take (DESIGN.md §6).
const EMAIL = /^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/;
/** A media type, with at most a charset parameter (it tells the charset of a text part, §2.2). */
const CONTENT_TYPE = /^([a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+)(?:\s*;\s*charset\s*=\s*"?([a-z0-9_.:-]{1,40})"?)?$/i;
const AT_UNSAFE = /["';\r\n\x1a]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const OPTION_BY_KEY: ReadonlyMap<string, (typeof SEND_OPTIONS)[number]> = new Map(SEND_OPTIONS.map((o) => [o.key, o]));

function fail(name: ConstructorParameters<typeof RequestError>[0], message: string): never {
  throw new RequestError(name, message);
}

function show(s: string): string {
  const j = JSON.stringify(s);
  return j.length > 60 ? `${j.slice(0, 57)}..."` : j;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

/** A client id: 1–64 (LIMITS.idChars) of [A-Za-z0-9._-], not only dots (it names files in the spool). */
export function isValidId(id: string): boolean {
  return ID.test(id) && !/^\.+$/.test(id);
}

/**
 * The id of a resend of `id` when the client names none: `<id>-resend-<n>` with the smallest n
 * not `taken` (a resend of `x-resend-1` is `x-resend-2`, not `x-resend-1-resend-1`); undefined
 * when that would be longer than an id may be (the outbox then generates one).
 */
export function resendId(id: string, taken: (candidate: string) => boolean): string | undefined {
  const base = id.replace(/-resend-\d+$/, '');
  for (let n = 1; ; n++) {
    const candidate = `${base}-resend-${n}`;
    if (candidate.length > LIMITS.idChars || !isValidId(candidate)) return undefined;
    if (!taken(candidate)) return candidate;
  }
}

function validateId(raw: unknown): string | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'string' || !isValidId(raw)) {
    fail('InvalidRequest', `id must be 1–${LIMITS.idChars} characters of A-Z a-z 0-9 . _ - (and not only dots), got ${typeof raw === 'string' ? show(raw) : typeof raw}`);
  }
  return raw;
}

/**
 * One address: a phone number (spaces and dashes are dropped, e.g. "+49 170 123-4567"
 * becomes "+491701234567") or a plain e-mail address; never anything that could break the
 * AT line.
 */
export function normalizeAddress(raw: string): string {
  if (AT_UNSAFE.test(raw)) {
    fail('InvalidRecipient', `recipient ${show(raw)} contains a character that is not allowed (" ' ; CR LF Ctrl-Z)`);
  }
  const trimmed = raw.trim();
  if (trimmed.includes('@')) {
    if (Buffer.byteLength(trimmed) > LIMITS.addressBytes) {
      fail('InvalidRecipient', `recipient ${show(trimmed)} is longer than ${LIMITS.addressBytes} bytes`);
    }
    if (!EMAIL.test(trimmed)) fail('InvalidRecipient', `recipient ${show(trimmed)} is not a valid e-mail address`);
    return trimmed;
  }
  const phone = trimmed.replace(/[ -]/g, '');
  if (!PHONE.test(phone)) {
    fail('InvalidRecipient', `recipient ${show(raw)} is neither a phone number (3–20 digits, optional leading +) nor an e-mail address`);
  }
  return phone;
}

function validateRecipients(field: 'to' | 'cc' | 'bcc', raw: unknown): string[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw) || !raw.every((r) => typeof r === 'string')) {
    fail('InvalidRequest', `${field} must be a list of strings`);
  }
  const list: string[] = raw;
  if (list.length > LIMITS.recipientsPerField) {
    fail(
      'TooManyRecipients',
      `${field} has ${list.length} recipients; at most ${LIMITS.recipientsPerField} recipients are allowed in each of to, cc and bcc`,
    );
  }
  return list.map(normalizeAddress);
}

function validateSubject(raw: unknown): string {
  if (raw === undefined || raw === null) return '';
  if (typeof raw !== 'string') fail('InvalidRequest', 'subject must be a string');
  if (LONE_SURROGATE.test(raw)) fail('InvalidRequest', 'subject is not well-formed Unicode');
  if (/[\0-\x1f\x7f]/.test(raw)) fail('InvalidRequest', 'subject must not contain control characters (line breaks included)');
  const bytes = Buffer.byteLength(raw);
  if (bytes > LIMITS.subjectBytes) {
    fail(
      'SubjectTooLong',
      `subject is ${bytes} bytes in UTF-8; at most ${LIMITS.subjectBytes} bytes are allowed (a letter outside ASCII takes 2–4): shorten it`,
    );
  }
  return raw;
}

function validateOptions(raw: unknown): SendOptions {
  if (raw === undefined || raw === null) return {};
  if (!isPlainObject(raw)) fail('InvalidOption', 'options must be an object');
  const out: Record<string, number | boolean> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    const spec = OPTION_BY_KEY.get(key);
    if (spec === undefined) {
      fail('InvalidOption', `unknown option ${show(key)}; known are ${[...OPTION_BY_KEY.keys()].join(', ')}`);
    }
    if (spec.type === 'boolean') {
      if (typeof value !== 'boolean') fail('InvalidOption', `option ${key} must be true or false`);
      out[key] = value;
    } else {
      const [min, max] = spec.range;
      if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
        fail('InvalidOption', `option ${key} must be an integer from ${min} to ${max}, got ${typeof value === 'number' ? value : typeof value}`);
      }
      out[key] = value;
    }
  }
  return out;
}

function validateContentType(raw: unknown, name: string, index: number): string {
  if (raw === undefined || raw === null || raw === '') return guessContentType(name);
  if (typeof raw !== 'string') fail('InvalidRequest', `attachment ${index + 1}: contentType must be a string`);
  const m = raw.length > LIMITS.contentTypeChars ? null : CONTENT_TYPE.exec(raw);
  if (!m) {
    fail(
      'InvalidRequest',
      `attachment ${index + 1}: content type ${show(raw)} is not a media type like image/jpeg or text/plain; charset=utf-8`,
    );
  }
  const type = m[1].toLowerCase();
  return m[2] ? `${type}; charset=${m[2].toLowerCase()}` : type;
}

interface PathAttachment {
  index: number;
  path: string;
  real: string;
  size: number;
  dev: number;
  ino: number;
}

function within(path: string, dir: string): boolean {
  return path.startsWith(dir.endsWith(sep) ? dir : dir + sep);
}

/** The allowed dirs as given and as resolved (those that exist), for the checks below. */
async function resolveAllowed(dirs: string[]): Promise<{ lexical: string[]; real: string[] }> {
  const lexical = dirs.filter((d) => isAbsolute(d)).map((d) => resolvePath(d));
  const real: string[] = [];
  for (const d of lexical) {
    try {
      real.push(await realpath(d));
    } catch {
      // A missing allowed directory allows nothing.
    }
  }
  return { lexical, real };
}

async function checkPath(index: number, path: string, allowed: { lexical: string[]; real: string[] }): Promise<PathAttachment> {
  const label = `attachment ${index + 1} (${show(path)})`;
  if (path.includes('\0')) fail('InvalidRequest', `${label}: the path contains NUL`);
  if (!isAbsolute(path)) fail('AttachmentNotAllowed', `${label}: the path must be absolute`);
  const lexical = resolvePath(path);
  // Refuse before touching the file system, so that a client cannot probe which files exist
  // outside the allowed directories.
  const all = [...allowed.lexical, ...allowed.real];
  if (!all.some((d) => within(lexical, d))) {
    fail('AttachmentNotAllowed', `${label}: not inside an allowed directory (attachments.allowedDirs: ${allowed.lexical.join(', ') || 'none'})`);
  }
  let real: string;
  try {
    real = await realpath(lexical);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') fail('AttachmentNotFound', `${label}: no such file`);
    fail('AttachmentNotAllowed', `${label}: cannot be read (${code ?? 'error'})`);
  }
  // Symlinks and `..` are judged by where they really lead.
  if (!allowed.real.some((d) => within(real, d))) {
    fail('AttachmentNotAllowed', `${label}: resolves to ${show(real)}, outside the allowed directories`);
  }
  const st = await stat(real).catch((err: NodeJS.ErrnoException) =>
    fail(err.code === 'ENOENT' ? 'AttachmentNotFound' : 'AttachmentNotAllowed', `${label}: cannot be read (${err.code ?? 'error'})`),
  );
  if (!st.isFile()) fail('AttachmentNotAllowed', `${label}: not a regular file`);
  return { index, path, real, size: st.size, dev: st.dev, ino: st.ino };
}

/** Reads a checked file, making sure it is still the file that was checked and not larger. */
async function readChecked(p: PathAttachment, budget: number): Promise<Buffer> {
  const label = `attachment ${p.index + 1} (${show(p.path)})`;
  let fh;
  try {
    fh = await open(p.real, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') fail('AttachmentNotFound', `${label}: no such file`);
    fail('AttachmentNotAllowed', `${label}: cannot be read (${code ?? 'error'})`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.dev !== p.dev || st.ino !== p.ino) fail('AttachmentNotAllowed', `${label}: the file changed while it was checked`);
    if (st.size > budget) fail('MessageTooLarge', `${label}: the file grew while it was checked`);
    const data = Buffer.alloc(st.size);
    let off = 0;
    while (off < st.size) {
      const { bytesRead } = await fh.read(data, off, st.size - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return off === st.size ? data : data.subarray(0, off);
  } finally {
    await fh.close();
  }
}

/**
 * Validates a request from a front door. Throws RequestError (named per DESIGN.md §4) with a
 * message a person can act on; returns the request with addresses normalised, names made safe
 * and unique, content types settled, and every attachment's bytes in hand.
 */
export async function validateRequest(raw: RawSendRequest, limits: RequestLimits): Promise<SendRequest> {
  if (!isPlainObject(raw)) fail('InvalidRequest', 'the request must be an object');
  const id = validateId(raw.id);
  const to = validateRecipients('to', raw.to);
  const cc = validateRecipients('cc', raw.cc);
  const bcc = validateRecipients('bcc', raw.bcc);
  if (to.length + cc.length + bcc.length === 0) fail('InvalidRecipient', 'the message has no recipient (give at least one in to, cc or bcc)');
  const subject = validateSubject(raw.subject);
  const options = validateOptions(raw.options);

  const rawAttachments = raw.attachments ?? [];
  if (!Array.isArray(rawAttachments)) fail('InvalidRequest', 'attachments must be a list');
  if (rawAttachments.length > LIMITS.attachments) {
    fail('TooManyAttachments', `${rawAttachments.length} attachments; at most ${LIMITS.attachments} attachments are allowed in one message`);
  }

  // First pass: shapes, names and types; path attachments resolved and sized, nothing read yet.
  const allowed = await resolveAllowed(limits.allowedDirs);
  const names: string[] = [];
  const types: string[] = [];
  const data: Array<Buffer | undefined> = [];
  const paths: PathAttachment[] = [];
  let total = 0;
  for (const [index, a] of (rawAttachments as unknown[]).entries()) {
    if (!isPlainObject(a)) fail('InvalidRequest', `attachment ${index + 1} must be an object with name and data, or path`);
    const hasData = a.data !== undefined;
    const hasPath = a.path !== undefined;
    if (hasData === hasPath) fail('InvalidRequest', `attachment ${index + 1} must have either data (with a name) or a path`);
    let givenName: string;
    if (hasData) {
      if (!(a.data instanceof Uint8Array)) fail('InvalidRequest', `attachment ${index + 1}: data must be bytes`);
      if (typeof a.name !== 'string' || a.name === '') fail('InvalidRequest', `attachment ${index + 1}: name must be a non-empty string`);
      const bytes = Buffer.isBuffer(a.data) ? a.data : Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength);
      if (bytes.length === 0) fail('InvalidRequest', `attachment ${index + 1} (${show(a.name)}) is empty`);
      givenName = a.name;
      data.push(bytes);
      total += bytes.length;
    } else {
      if (typeof a.path !== 'string' || a.path === '') fail('InvalidRequest', `attachment ${index + 1}: path must be a non-empty string`);
      if (a.name !== undefined && typeof a.name !== 'string') fail('InvalidRequest', `attachment ${index + 1}: name must be a string`);
      const checked = await checkPath(index, a.path, allowed);
      if (checked.size === 0) fail('InvalidRequest', `attachment ${index + 1} (${show(a.path)}) is empty`);
      givenName = typeof a.name === 'string' && a.name !== '' ? a.name : basename(a.path);
      paths.push(checked);
      data.push(undefined);
      total += checked.size;
    }
    names.push(givenName);
    types.push(validateContentType(a.contentType, givenName, index));
  }
  // Sizes from stat, before reading a single file.
  const max = limits.maxMessageBytes;
  const source = limits.limitSource ?? 'mms.maxMessageBytes';
  const fitting = limits.fit !== undefined && options.fit !== false;
  if (total > max && !fitting) {
    const why = limits.fit ? "; the message's option fit is false, so its photos are not made smaller" : '';
    fail('MessageTooLarge', `attachments total ${total} bytes, ${total - max} over the limit of ${max} (${source})${why}`);
  }
  if (total > max && limits.fit) {
    // §11: never queue what can never fit.
    const sizes = names.map((name, i) => ({ name, contentType: types[i] ?? '', size: data[i]?.length ?? paths.find((p) => p.index === i)?.size ?? 0 }));
    try {
      limits.fit.check(sizes, max);
    } catch (err) {
      if (err instanceof RequestError) fail(err.errorName, `${err.message} (${source})`);
      throw err;
    }
    if (total > FIT_INPUT_MAX_BYTES) {
      fail('MessageTooLarge', `attachments total ${total} bytes; at most ${FIT_INPUT_MAX_BYTES} are taken in, even to be made smaller`);
    }
  }

  let budget = (fitting ? Math.max(max, FIT_INPUT_MAX_BYTES) : max) - data.reduce((n, d) => n + (d?.length ?? 0), 0);
  for (const p of paths) {
    const bytes = await readChecked(p, budget);
    budget -= bytes.length;
    data[p.index] = bytes;
  }

  // The names the recipient will see: the sender names the RAM files by the same function.
  const unique = attachmentNames(names.map((name, i) => ({ name, contentType: types[i] })));
  const attachments: AttachmentInput[] = unique.map((name, i) => ({ name, contentType: types[i] ?? 'application/octet-stream', data: data[i] as Buffer }));
  return { ...(id !== undefined ? { id } : {}), to, cc, bcc, subject, attachments, options };
}
