// Where the outbox keeps its messages (DESIGN.md §6, §14): the store seam, and the spool on disk
// behind it — records written whole or not at all (temp, fsync, rename, fsync the folder), the
// attachment bytes beside them, the lock against a second daemon.
import { readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir, writeDurable } from '../core/durable.js';
import { SpoolLock } from './spool-lock.js';

/** The attachment file a record names for its attachment `index` (relative to the store). */
export function attachmentFile(id: string, index: number): string {
  return `attachments/${id}/${index}`;
}

/** The file that holds attachment `index` of message `id` once fitted (DESIGN.md §11): a new name, so the original stays whole until the record names this one. */
export function fittedFile(id: string, index: number): string {
  return `attachments/${id}/${index}.fit`;
}

/** What the outbox needs of its storage. Every write is durable when it resolves. */
export interface OutboxStore {
  /** Takes the store for this process and makes it whole; the ids of the records it holds. */
  open(): Promise<string[]>;
  /** Releases it. */
  close(): Promise<void>;
  /** One record's text (synchronous: the outbox reads thousands at start-up in batches). */
  readRecord(id: string): string;
  /** Where record `id` is, for a log line. */
  describe(id: string): string;
  /** Moves a record that cannot be read aside for a person to look at; resolves with where to. */
  setAside(id: string, stamp: number): Promise<string>;
  writeRecord(id: string, text: string): Promise<void>;
  /** Removes a record (one that is not there is removed); `flushRemovals` makes removals durable. */
  removeRecord(id: string): Promise<void>;
  flushRemovals(): Promise<void>;
  /** Replaces the attachment files of message `id` (`attachmentFile(id, i)` for `data[i]`). */
  writeAttachments(id: string, data: readonly Uint8Array[]): Promise<void>;
  /** Writes fitted bytes as `fittedFile(id, index)`, durable (the record that names them comes after). */
  writeFitted(id: string, parts: ReadonlyArray<{ index: number; data: Uint8Array }>): Promise<void>;
  /** Removes one attachment file (as the record names it); one that is not there is removed. */
  removeAttachmentFile(file: string): Promise<void>;
  /** The bytes of an attachment file (as the record names it); an error with code ENOENT when it is gone. */
  readAttachment(file: string): Promise<Buffer>;
  removeAttachments(id: string): Promise<void>;
  /** The ids that have attachment files. */
  attachmentOwners(): Promise<string[]>;
}


/** The spool under `outbox.dir`: `messages/<id>.json`, `messages/corrupt/`, `attachments/<id>/<i>`. */
export class SpoolStore implements OutboxStore {
  private readonly messagesDir: string;
  private readonly corruptDir: string;
  private readonly attachmentsDir: string;
  private readonly lock: SpoolLock | undefined;

  constructor(
    private readonly dir: string,
    /** Lock `dir` against a second daemon before reading it (SpoolLockError when another holds it). */
    lockSpool = true,
  ) {
    this.messagesDir = join(dir, 'messages');
    this.corruptDir = join(dir, 'messages', 'corrupt');
    this.attachmentsDir = join(dir, 'attachments');
    this.lock = lockSpool ? new SpoolLock(dir) : undefined;
  }

  async open(): Promise<string[]> {
    // First of all: a second daemon must leave the spool exactly as it found it.
    await this.lock?.acquire();
    await mkdir(this.corruptDir, { recursive: true });
    await mkdir(this.attachmentsDir, { recursive: true });
    const entries = await readdir(this.messagesDir, { withFileTypes: true });
    const leftoverTemps = entries.filter((e) => e.isFile() && e.name.startsWith('.') && e.name.endsWith('.tmp'));
    await Promise.all(leftoverTemps.map((e) => unlink(join(this.messagesDir, e.name)).catch(() => undefined)));
    return entries.filter((e) => e.isFile() && !e.name.startsWith('.') && e.name.endsWith('.json')).map((e) => e.name.slice(0, -'.json'.length));
  }

  async close(): Promise<void> {
    await this.lock?.release();
  }

  readRecord(id: string): string {
    return readFileSync(this.describe(id), 'utf8');
  }

  describe(id: string): string {
    return join(this.messagesDir, `${id}.json`);
  }

  async setAside(id: string, stamp: number): Promise<string> {
    const aside = join(this.corruptDir, `${id}.json.${stamp}`);
    await rename(this.describe(id), aside);
    return aside;
  }

  writeRecord(id: string, text: string): Promise<void> {
    return writeDurable(this.messagesDir, `${id}.json`, text);
  }

  async removeRecord(id: string): Promise<void> {
    await unlink(this.describe(id)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  flushRemovals(): Promise<void> {
    return fsyncDir(this.messagesDir);
  }

  async writeAttachments(id: string, data: readonly Uint8Array[]): Promise<void> {
    // Bytes first, each durable, then the directory entries (the record that names them comes after).
    const attachDir = join(this.attachmentsDir, id);
    await rm(attachDir, { recursive: true, force: true });
    await mkdir(attachDir, { recursive: true });
    await Promise.all(data.map((d, i) => writeDurable(attachDir, String(i), d, { syncDir: false })));
    await fsyncDir(attachDir);
    await fsyncDir(this.attachmentsDir);
  }

  async writeFitted(id: string, parts: ReadonlyArray<{ index: number; data: Uint8Array }>): Promise<void> {
    const attachDir = join(this.attachmentsDir, id);
    await Promise.all(parts.map((p) => writeDurable(attachDir, `${p.index}.fit`, p.data, { syncDir: false })));
    await fsyncDir(attachDir);
  }

  removeAttachmentFile(file: string): Promise<void> {
    return rm(join(this.dir, file), { force: true });
  }

  readAttachment(file: string): Promise<Buffer> {
    return readFile(join(this.dir, file));
  }

  removeAttachments(id: string): Promise<void> {
    return rm(join(this.attachmentsDir, id), { recursive: true, force: true });
  }

  async attachmentOwners(): Promise<string[]> {
    return (await readdir(this.attachmentsDir, { withFileTypes: true })).map((d) => d.name);
  }
}
