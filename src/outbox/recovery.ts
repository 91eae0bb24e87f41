// Reading the spool back at start-up (DESIGN.md §6): every record checked for the shape the outbox
// writes (a bad one set aside), messages a crash caught `sending` requeued or made `unknown`, the
// RAM files they may have left in the module, and attachment bytes no record needs any more.
import type { Logger } from 'pino';
import { RESENDABLE_STATUSES, STATUSES, isFinal, type AttachmentMeta, type MessageRecord, type Status } from '../core/message.js';
import { isValidId } from '../core/validate.js';
import type { OutboxStore } from './store.js';

/** DESIGN.md §6: the MMSC request was made, its answer lost. */
export const RESULT_UNKNOWN_ERROR = { code: 0, name: 'Result unknown: the daemon stopped after the MMSC request was made' } as const;

/** What the recovery works with: the outbox's store, logger and clock, and its start-up limits. */
export interface RecoveryContext {
  store: OutboxStore;
  log: Logger;
  clock: () => number;
  /** Parallel file operations (removals, recovery writes). */
  loadConcurrency: number;
  /** Records read between two yields to the event loop. */
  loadBatch: number;
}

/** Whether a message in this state keeps its attachment bytes in the spool (until retention). */
export function hasAttachmentBytes(status: Status): boolean {
  return !isFinal(status) || RESENDABLE_STATUSES.has(status);
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}

/** A record read from disk is trusted only when it has the shape the outbox writes. */
function isRecord(v: unknown, id: string): v is MessageRecord {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return (
    r.id === id &&
    typeof r.status === 'string' &&
    (STATUSES as readonly string[]).includes(r.status) &&
    isStringArray(r.to) &&
    isStringArray(r.cc) &&
    isStringArray(r.bcc) &&
    typeof r.subject === 'string' &&
    Array.isArray(r.attachments) &&
    r.attachments.every(
      (a: unknown) =>
        typeof a === 'object' &&
        a !== null &&
        typeof (a as AttachmentMeta).name === 'string' &&
        typeof (a as AttachmentMeta).file === 'string' &&
        typeof (a as AttachmentMeta).size === 'number',
    ) &&
    typeof r.options === 'object' &&
    r.options !== null &&
    typeof r.attempts === 'number' &&
    typeof r.progress === 'number' &&
    typeof r.created === 'number' &&
    typeof r.updated === 'number' &&
    isStringArray(r.ramFiles) &&
    typeof r.sendAccepted === 'boolean' &&
    (r.adjustments === undefined || isStringArray(r.adjustments))
  );
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function readOne(id: string, store: OutboxStore, corrupt: Array<{ id: string; err: unknown }>): MessageRecord | undefined {
  try {
    const parsed = JSON.parse(store.readRecord(id)) as unknown;
    if (isValidId(id) && isRecord(parsed, id)) return parsed;
    throw new Error('not a message record');
  } catch (err) {
    corrupt.push({ id, err });
    return undefined;
  }
}

/**
 * Reads the records `files` names and hands each good one to `onRecord`; once all are read, the
 * ones that could not be read are moved aside for a person to look at.
 */
export async function loadRecords(files: readonly string[], o: RecoveryContext, onRecord: (r: MessageRecord) => void): Promise<void> {
  const corrupt: Array<{ id: string; err: unknown }> = [];
  // Small files read synchronously in batches, yielding in between: on the thread pool each
  // read is four round trips (open, fstat, read, close) and 10,000 of them take seconds.
  for (let i = 0; i < files.length; i += o.loadBatch) {
    for (const id of files.slice(i, i + o.loadBatch)) {
      const r = readOne(id, o.store, corrupt);
      if (r) onRecord(r);
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  await Promise.all(
    corrupt.map(async ({ id, err }) => {
      // Never crash on one bad file: keep it for a person to look at, and go on.
      const file = o.store.describe(id);
      try {
        const movedTo = await o.store.setAside(id, o.clock());
        o.log.error({ file, movedTo, err }, 'corrupt outbox record moved aside');
      } catch (e) {
        o.log.error({ err: e, file, cause: err }, 'cannot move corrupt record aside');
      }
    }),
  );
}

/**
 * §6: messages a crash caught `sending`: back to `queued` when AT+QMMSEND was not accepted yet,
 * else `unknown` (the message may have left: never resent on our own). Returns their ids.
 */
export async function recoverInterrupted(
  records: Iterable<MessageRecord>,
  o: RecoveryContext,
  write: (r: MessageRecord) => Promise<MessageRecord>,
): Promise<{ requeued: string[]; unknown: string[] }> {
  const requeued: string[] = [];
  const unknown: string[] = [];
  const now = o.clock();
  const sending = [...records].filter((r) => r.status === 'sending');
  await mapLimit(sending, o.loadConcurrency, async (r) => {
    if (r.sendAccepted) {
      await write({ ...r, status: 'unknown', error: { ...RESULT_UNKNOWN_ERROR }, progress: 0, updated: now });
      unknown.push(r.id);
    } else {
      await write({ ...r, status: 'queued', progress: 0, updated: now, requeuedAt: now });
      requeued.push(r.id);
    }
  });
  return { requeued, unknown };
}

/**
 * Journalled RAM names not yet cleared are exactly the files that may still sit in the module:
 * of unfinished messages, and of finished ones whose clean-up (AT+QFDEL) did not complete.
 */
export function leftoverRamFiles(records: Iterable<MessageRecord>): string[] {
  const ram = new Set<string>();
  for (const r of records) for (const f of r.ramFiles) ram.add(f);
  return [...ram];
}

/** Attachment folders without a record (crash before the record was written) or of sent/cancelled messages. */
export async function removeOrphanAttachments(records: ReadonlyMap<string, MessageRecord>, o: RecoveryContext): Promise<void> {
  const owners = await o.store.attachmentOwners();
  const orphans = owners.filter((id) => {
    const r = records.get(id);
    return !r || !hasAttachmentBytes(r.status);
  });
  await mapLimit(orphans, o.loadConcurrency, (id) => o.store.removeAttachments(id));
  if (orphans.length > 0) o.log.info({ count: orphans.length }, 'orphaned attachment files removed');
}
