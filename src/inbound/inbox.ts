// The inbox of received messages (DESIGN.md §12 "Received messages"): durable records under
// `inbound.dir/records/`, each message's parts under `inbound.dir/<id>/`, the states notified →
// retrieving → received | expired | failed, one entry per notification, retention, deletion, and
// the recovery of a crash at start-up. Knows no modem: the receiver drives it.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, readdir, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { fsyncDir, writeDurable } from '../core/durable.js';
import { RequestError } from '../core/errors.js';
import { TypedEmitter } from '../core/events.js';
import { RECEIVED_STATES, type ReceivedPart, type ReceivedRecord, type ReceivedState } from '../core/inbound.js';
import { isValidId } from '../core/validate.js';

/** What the inbox keeps about a message besides what the front doors see. */
export interface InboxEntry {
  record: ReceivedRecord;
  /** X-Mms-Transaction-ID of the notification: what M-NotifyResp.ind answers. */
  transactionId: string;
  /** X-Mms-Content-Location: where the message is fetched from. */
  contentLocation: string;
  /** X-Mms-MMS-Version of the notification, echoed in the answers. */
  mmsVersion: string;
  /** Fetches tried and failed so far (the back-off's step). */
  attempts: number;
  /** Unix ms before which no fetch (or post) is tried again. */
  notBefore?: number;
  /** Received, and the M-NotifyResp.ind (retrieved) not yet taken by the MMSC: post it, never refetch. */
  notifyRespPending: boolean;
  /** Unix ms: the notification stored. */
  created: number;
  /** Unix ms: the last change. */
  updated: number;
}

/** What the receiver stores of a notification. */
export interface NewNotification {
  transactionId: string;
  contentLocation: string;
  mmsVersion: string;
  from: string;
  subject: string;
  /** Announced size in bytes (0 when unknown). */
  size: number;
  /** Unix ms. */
  expiry: number;
}

/** The fields a change may touch (`record` fields go through `record`). */
export interface EntryPatch {
  status?: ReceivedState;
  attempts?: number;
  notBefore?: number | undefined;
  notifyRespPending?: boolean;
  error?: { name: string; message: string } | undefined;
}

/** A part to keep: its name is sanitised and unique already (part-names.ts). */
export interface PartData {
  name: string;
  contentType: string;
  charset?: string;
  data: Buffer;
}

/** What M-Retrieve.conf says about the message. */
export interface ReceivedHeaders {
  from: string;
  to: string[];
  cc: string[];
  subject: string;
  date: number;
  messageId?: string;
}

export interface InboxOptions {
  /** `inbound.dir`. */
  dir: string;
  logger: Logger;
  /** `inbound.retentionDays`: final messages last changed longer ago go, with their files. */
  retentionDays: number;
  /** Unix ms; Date.now by default. */
  clock?: () => number;
}

/** DESIGN.md §12 and packaging/mmsd.tmpfiles: readable by the group (`mms`), files 0640. */
const DIR_MODE = 0o2750;
const FILE_MODE = 0o640;
const RECORDS = 'records';
const PARTIAL = '.partial';
const DAY_MS = 24 * 60 * 60 * 1000;
const SWEEP_MS = 60 * 60 * 1000;
/** The ids newId() makes: only such folders are the inbox's to remove. */
const ENTRY_ID = /^r[0-9a-z]{9}[0-9a-f]{10}$/;

/** Legal changes of state; staying is always allowed. A `failed` message may be retrieved again (§12 Retrieve()). */
const TRANSITIONS: Readonly<Record<ReceivedState, readonly ReceivedState[]>> = {
  notified: ['retrieving', 'expired', 'failed'],
  retrieving: ['received', 'notified', 'expired', 'failed'],
  received: [],
  expired: [],
  failed: ['notified', 'retrieving'],
};

export function isFinalReceived(s: ReceivedState): boolean {
  return s === 'received' || s === 'expired' || s === 'failed';
}

export class IllegalReceivedTransitionError extends Error {
  override name = 'IllegalReceivedTransitionError';
  constructor(
    readonly id: string,
    readonly from: ReceivedState,
    readonly to: ReceivedState,
  ) {
    super(`received message ${id}: illegal status change ${from} → ${to}`);
  }
}

function isStrings(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}

/** An entry read from disk is trusted only when it has the shape the inbox writes. */
function isEntry(v: unknown, id: string): v is InboxEntry {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  const r = e.record as Record<string, unknown> | undefined;
  return (
    typeof r === 'object' &&
    r !== null &&
    r.id === id &&
    typeof r.status === 'string' &&
    (RECEIVED_STATES as readonly string[]).includes(r.status) &&
    typeof r.from === 'string' &&
    isStrings(r.to) &&
    isStrings(r.cc) &&
    typeof r.subject === 'string' &&
    typeof r.date === 'number' &&
    typeof r.size === 'number' &&
    typeof r.expiry === 'number' &&
    Array.isArray(r.parts) &&
    typeof e.transactionId === 'string' &&
    typeof e.contentLocation === 'string' &&
    typeof e.mmsVersion === 'string' &&
    typeof e.attempts === 'number' &&
    typeof e.notifyRespPending === 'boolean' &&
    typeof e.created === 'number' &&
    typeof e.updated === 'number'
  );
}

export interface InboxEvents {
  /** After every durable change of an entry. */
  changed: [entry: InboxEntry];
  /** After an entry was deleted. */
  removed: [id: string];
}

/** Every method that changes an entry resolves only once the change is on disk. */
export class Inbox extends TypedEmitter<InboxEvents> {
  private readonly dir: string;
  private readonly recordsDir: string;
  private readonly log: Logger;
  private readonly retentionMs: number;
  private readonly clock: () => number;
  private readonly entries = new Map<string, InboxEntry>();
  /** Per-id chain of changes; '' chains the adds (one dedup check at a time). */
  private readonly locks = new Map<string, Promise<unknown>>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private lastIdTime = 0;

  constructor(o: InboxOptions) {
    super();
    this.dir = o.dir;
    this.recordsDir = join(o.dir, RECORDS);
    this.log = o.logger.child({ part: 'inbox' });
    this.retentionMs = o.retentionDays * DAY_MS;
    this.clock = o.clock ?? Date.now;
  }

  /**
   * Loads the records and recovers from a crash: a fetch cut short goes back to `notified` (its
   * half-written files removed); files without a `received` record are removed; then sweeps.
   */
  async start(): Promise<{ loaded: number; requeued: string[] }> {
    await mkdir(this.recordsDir, { recursive: true, mode: DIR_MODE });
    this.entries.clear();
    const files = await readdir(this.recordsDir, { withFileTypes: true });
    for (const f of files) {
      if (!f.isFile()) continue;
      if (f.name.startsWith('.')) {
        await unlink(join(this.recordsDir, f.name)).catch(() => undefined);
        continue;
      }
      if (!f.name.endsWith('.json')) continue;
      const e = await this.loadOne(f.name);
      if (e) this.entries.set(e.record.id, e);
    }
    const requeued: string[] = [];
    const now = this.clock();
    for (const e of [...this.entries.values()]) {
      if (e.record.status !== 'retrieving') continue;
      await this.write({ ...e, record: { ...e.record, status: 'notified' }, updated: now });
      requeued.push(e.record.id);
    }
    await this.removeStrayFiles();
    await this.removeExpired();
    this.sweepTimer = setInterval(() => {
      this.removeExpired().catch((err: unknown) => this.log.error({ err }, 'inbox retention sweep failed'));
    }, SWEEP_MS);
    this.sweepTimer.unref();
    this.log.info({ loaded: this.entries.size, requeued: requeued.length }, 'inbox loaded');
    return { loaded: this.entries.size, requeued };
  }

  async stop(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    await Promise.allSettled([...this.locks.values()]);
  }

  get(id: string): InboxEntry | undefined {
    return this.entries.get(id);
  }

  /** All entries, oldest first. */
  list(): InboxEntry[] {
    return [...this.entries.values()].sort((a, b) => a.created - b.created || (a.record.id < b.record.id ? -1 : 1));
  }

  /**
   * Stores a notification as `notified`, durably. The same notification again (same transaction id
   * or content location) is the entry already there: `created` false, nothing written.
   */
  async add(n: NewNotification): Promise<{ entry: InboxEntry; created: boolean }> {
    return this.withLock('', async () => {
      const same = [...this.entries.values()].find((e) => e.transactionId === n.transactionId || e.contentLocation === n.contentLocation);
      if (same) return { entry: same, created: false };
      const now = this.clock();
      const id = this.newId(now);
      const entry: InboxEntry = {
        record: { id, status: 'notified', from: n.from, to: [], cc: [], subject: n.subject, date: now, size: n.size, expiry: n.expiry, parts: [] },
        transactionId: n.transactionId,
        contentLocation: n.contentLocation,
        mmsVersion: n.mmsVersion,
        attempts: 0,
        notifyRespPending: false,
        created: now,
        updated: now,
      };
      const stored = await this.withLock(id, () => this.write(entry));
      this.log.info({ id, size: n.size }, 'notification stored');
      this.emit('changed', stored);
      return { entry: stored, created: true };
    });
  }

  /** Changes an entry durably; an illegal status change throws IllegalReceivedTransitionError. */
  async update(id: string, patch: EntryPatch): Promise<InboxEntry> {
    return this.withLock(id, async () => {
      const e = this.need(id);
      const to = patch.status ?? e.record.status;
      if (to !== e.record.status && !TRANSITIONS[e.record.status].includes(to)) throw new IllegalReceivedTransitionError(id, e.record.status, to);
      const next: InboxEntry = { ...e, record: { ...e.record, status: to }, updated: this.clock() };
      if (patch.attempts !== undefined) next.attempts = patch.attempts;
      if (patch.notifyRespPending !== undefined) next.notifyRespPending = patch.notifyRespPending;
      if ('notBefore' in patch) {
        if (patch.notBefore === undefined) delete next.notBefore;
        else next.notBefore = patch.notBefore;
      }
      if ('error' in patch) {
        if (patch.error === undefined) delete next.record.error;
        else next.record.error = { ...patch.error };
      }
      const stored = await this.write(next);
      this.emit('changed', stored);
      return stored;
    });
  }

  /**
   * Keeps a fetched message: every part durably under `<dir>/<id>/` (written in a hidden folder
   * and renamed whole), then the record `received` with the M-NotifyResp.ind still to post.
   */
  async receive(id: string, headers: ReceivedHeaders, parts: readonly PartData[]): Promise<InboxEntry> {
    return this.withLock(id, async () => {
      const e = this.need(id);
      if (e.record.status !== 'retrieving') throw new IllegalReceivedTransitionError(id, e.record.status, 'received');
      const names = new Set(parts.map((p) => p.name.toLowerCase()));
      if (names.size !== parts.length || parts.some((p) => !isSafeName(p.name))) throw new TypeError(`received message ${id}: part names must be safe and unique`);
      const partial = join(this.dir, `.${id}${PARTIAL}`);
      const final = join(this.dir, id);
      await rm(partial, { recursive: true, force: true });
      await rm(final, { recursive: true, force: true });
      await mkdir(partial, { mode: DIR_MODE });
      await chmod(partial, DIR_MODE);
      for (const p of parts) await writeDurable(partial, p.name, p.data, { syncDir: false, mode: FILE_MODE });
      await fsyncDir(partial);
      await rename(partial, final);
      await fsyncDir(this.dir);
      const recordParts: ReceivedPart[] = parts.map((p) => ({
        name: p.name,
        contentType: p.contentType,
        ...(p.charset === undefined ? {} : { charset: p.charset }),
        path: join(final, p.name),
        size: p.data.length,
      }));
      const record: ReceivedRecord = {
        ...e.record,
        status: 'received',
        from: headers.from,
        to: [...headers.to],
        cc: [...headers.cc],
        subject: headers.subject,
        date: headers.date,
        size: parts.reduce((n, p) => n + p.data.length, 0),
        parts: recordParts,
      };
      delete record.error;
      if (headers.messageId !== undefined) record.messageId = headers.messageId;
      else delete record.messageId;
      const next: InboxEntry = { ...e, record, attempts: 0, notifyRespPending: true, updated: this.clock() };
      delete next.notBefore;
      const stored = await this.write(next);
      this.log.info({ id, parts: parts.length, size: record.size }, 'message received');
      this.emit('changed', stored);
      return stored;
    });
  }

  /** Removes the record and the files of message `id` (RequestError NotFound when there is none). */
  async delete(id: string): Promise<void> {
    await this.withLock(id, async () => {
      this.need(id);
      await this.removeNow(id);
    });
    await fsyncDir(this.recordsDir);
    this.log.info({ id }, 'received message deleted');
    this.emit('removed', id);
  }

  /** Removes final messages last changed more than retentionDays ago; returns their ids. */
  async removeExpired(): Promise<string[]> {
    const cutoff = this.clock() - this.retentionMs;
    const old = [...this.entries.values()].filter((e) => isFinalReceived(e.record.status) && e.updated <= cutoff);
    const removed: string[] = [];
    for (const e of old) {
      await this.withLock(e.record.id, async () => {
        if (this.entries.get(e.record.id) !== e) return;
        await this.removeNow(e.record.id);
        removed.push(e.record.id);
      });
    }
    if (removed.length > 0) {
      await fsyncDir(this.recordsDir);
      this.log.info({ count: removed.length }, 'old received messages removed');
      for (const id of removed) this.emit('removed', id);
    }
    return removed;
  }

  /** The record first (so a crash leaves orphan files, which start() removes), then the files. */
  private async removeNow(id: string): Promise<void> {
    await unlink(join(this.recordsDir, `${id}.json`)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    this.entries.delete(id);
    await rm(join(this.dir, id), { recursive: true, force: true });
    await rm(join(this.dir, `.${id}${PARTIAL}`), { recursive: true, force: true });
  }

  private need(id: string): InboxEntry {
    const e = this.entries.get(id);
    if (!e) throw new RequestError('NotFound', `no received message with id ${JSON.stringify(id)}`);
    return e;
  }

  private async write(e: InboxEntry): Promise<InboxEntry> {
    await writeDurable(this.recordsDir, `${e.record.id}.json`, JSON.stringify(e), { mode: FILE_MODE });
    this.entries.set(e.record.id, e);
    return e;
  }

  private async loadOne(file: string): Promise<InboxEntry | undefined> {
    const id = file.slice(0, -'.json'.length);
    const path = join(this.recordsDir, file);
    try {
      const parsed = JSON.parse(await readFile(path, 'utf8')) as unknown;
      if (isValidId(id) && isEntry(parsed, id)) return parsed;
      throw new Error('not a received-message record');
    } catch (err) {
      // Never crash on one bad file: keep it for a person to look at, and go on.
      const corrupt = join(this.recordsDir, 'corrupt');
      await mkdir(corrupt, { recursive: true, mode: DIR_MODE });
      const aside = join(corrupt, `${file}.${this.clock()}`);
      this.log.error({ file: path, movedTo: aside, err }, 'corrupt inbox record moved aside');
      await rename(path, aside).catch((e: unknown) => this.log.error({ err: e, file: path }, 'cannot move corrupt record aside'));
      return undefined;
    }
  }

  /** Half-written folders, and folders of messages that are not (or no longer) `received`. */
  private async removeStrayFiles(): Promise<void> {
    const entries = await readdir(this.dir, { withFileTypes: true });
    let count = 0;
    for (const d of entries) {
      if (d.name === RECORDS) continue;
      const partial = d.name.startsWith('.') && d.name.endsWith(PARTIAL);
      const e = this.entries.get(d.name);
      if (partial || (d.isDirectory() && ENTRY_ID.test(d.name) && e?.record.status !== 'received')) {
        await rm(join(this.dir, d.name), { recursive: true, force: true });
        count++;
      }
    }
    if (count > 0) {
      await fsyncDir(this.dir);
      this.log.info({ count }, 'half-written or orphaned message folders removed');
    }
  }

  /** Time-ordered and unique: `r` + base36 ms (fixed width) + random. */
  private newId(now: number): string {
    const t = Math.max(now, this.lastIdTime);
    this.lastIdTime = t;
    return `r${t.toString(36).padStart(9, '0')}${randomBytes(5).toString('hex')}`;
  }

  private async withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }
}

/** One path component, not hidden, no separator or control character (part-names.ts makes such names). */
function isSafeName(name: string): boolean {
  return name !== '' && !name.startsWith('.') && !/[/\\\x00-\x1f\x7f]/.test(name) && Buffer.byteLength(name) <= 255;
}
