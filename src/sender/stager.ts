// The module's RAM for the send pipeline (DESIGN.md §6, §14): attachments staged with their names
// journalled first, other messages' files evicted, the RAM's room checked (AT+QFLDS), and files
// deleted after a message is final or left over from a crash, a cancel or a failed clean-up.
import type { Logger } from 'pino';
import { fileCode } from '../core/errors.js';
import type { MessageRecord } from '../core/message.js';
import { attachmentNames } from '../core/names.js';
import { AtErrorResult, ChecksumError, CmeError } from '../modem/errors.js';
import type { ModemApi, RamSpace } from '../modem/types.js';
import type { OutboxApi } from '../outbox/types.js';
import { messageTooLargeError } from './policy.js';
import { RamTooSmall, type TryContext } from './outcome.js';
import type { ProgressRecorder } from './progress.js';

/** Uploads tried again after a checksum mismatch before the message goes back to the queue. */
export const CHECKSUM_RETRIES = 2;
/** Tries at deleting one leftover RAM file before it is left to the next start. */
const LEFTOVER_DELETE_TRIES = 3;

export interface StagerOptions {
  modem: ModemApi;
  outbox: OutboxApi;
  logger: Logger;
  progress: ProgressRecorder;
  /** Runs `fn` holding the modem's lock (when the modem has one). */
  locked<T>(fn: () => Promise<T>): Promise<T>;
  /** Between two module commands: throws StopRequested or ModemRebooted. */
  checkpoint(ctx: TryContext): void;
  stopping(): boolean;
  /** `mms.maxMessageBytes`, for the RAM check at the first ready. */
  maxMessageBytes?: number;
}

export class Stager {
  private readonly modem: ModemApi;
  private readonly outbox: OutboxApi;
  private readonly log: Logger;
  private readonly progress: ProgressRecorder;
  private readonly opts: StagerOptions;
  /** RAM files to delete once the modem is ready → failed tries so far. */
  private readonly pendingDeletes = new Map<string, number>();
  /** The RAM's size was checked against maxMessageBytes. */
  private ramChecked = false;

  constructor(opts: StagerOptions) {
    this.opts = opts;
    this.modem = opts.modem;
    this.outbox = opts.outbox;
    this.log = opts.logger;
    this.progress = opts.progress;
  }

  /** Files to delete once the modem is ready (leftovers of a crash: counting tries afresh). */
  addLeftovers(names: readonly string[]): void {
    for (const name of names) this.pendingDeletes.set(name, 0);
  }

  /** A message cancelled while retrying still has its files in the module's RAM. */
  cancelled(rec: MessageRecord): void {
    for (const name of rec.ramFiles) if (!this.pendingDeletes.has(name)) this.pendingDeletes.set(name, 0);
    this.modem.session.dropStaged(rec.id);
  }

  /** Before the loop takes work, when the modem is ready: the RAM check (once), then leftovers. */
  async whenReady(): Promise<void> {
    if (!this.ramChecked) await this.checkRamCapacity();
    await this.deleteLeftovers();
  }

  private checkpoint(ctx: TryContext): void {
    this.opts.checkpoint(ctx);
  }

  /**
   * Puts the attachments in the module's RAM: names journalled first, files still there from an
   * earlier try of this message (same name and size, same module lifetime) reused unless
   * `run.forceUpload` (which it clears). Returns the RAM file names, one per attachment.
   */
  async stage(rec: MessageRecord, ctx: TryContext, run: { forceUpload: boolean }): Promise<string[]> {
    const id = rec.id;
    // The RAM file names are the names the message carries (a part is named after its file); made
    // again, as validation made them, for records spooled by an older version.
    const names = attachmentNames(rec.attachments);
    await this.evictOthers(id, ctx);
    const mayExist = rec.ramFiles.length > 0;
    const journal = [...new Set([...rec.ramFiles, ...names])];
    if (journal.length !== rec.ramFiles.length || journal.some((n, i) => n !== rec.ramFiles[i])) {
      // §6: the names are durably in the spool before anything is uploaded.
      await this.outbox.update(id, { ramFiles: journal });
    }
    // Files staged completely for this message in this module epoch (the session forgets them when
    // the module restarts) are trusted when the listing shows them with their sizes.
    const session = this.modem.session;
    const trusted = !run.forceUpload && session.epoch === ctx.epoch && session.stagedFor(id) !== undefined;
    run.forceUpload = false;
    session.dropStaged(id);
    this.checkpoint(ctx);
    const inRam = mayExist ? await this.modem.listFiles() : new Map<string, number>();
    const reused = rec.attachments.map((att, i) => trusted && inRam.get(names[i]) === att.size);
    // AT+QFUPL does not overwrite: a stale or partial file of that name goes first (its room too).
    for (const [i, name] of names.entries()) {
      if (reused[i] || !inRam.has(name)) continue;
      this.checkpoint(ctx);
      await this.modem.deleteFile(name);
    }
    const needed = rec.attachments.reduce((sum, att, i) => (reused[i] ? sum : sum + att.size), 0);
    if (needed > 0) await this.makeRoom(id, names.filter((_, i) => reused[i]), needed, ctx);

    const total = rec.attachments.reduce((s, a) => s + a.size, 0);
    const progress = this.progress.reporter(id, total);
    let done = 0;
    for (const [i, att] of rec.attachments.entries()) {
      const name = names[i];
      if (reused[i]) {
        this.log.debug({ id, file: name, at: 'stage' }, 'reusing file already in RAM');
        done += att.size;
        progress(done);
        continue;
      }
      this.checkpoint(ctx);
      const data = await this.outbox.readAttachment(id, i);
      const base = done;
      await this.upload(id, name, data, ctx, (sent) => progress(base + sent));
      done += att.size;
    }
    progress(total);
    if (session.epoch === ctx.epoch) session.recordStaged(id, names);
    return names;
  }

  /**
   * DESIGN.md §14: one AT+QFLDS before the uploads; attachments the RAM cannot hold fail the
   * message as MessageTooLarge instead of being uploaded. When the RAM would hold them but other
   * files take the room (a clean-up that failed, a lost journal: files no message journalled), those
   * go first; only one message's files stay in the module at a time (see evictOthers).
   */
  private async makeRoom(id: string, keep: readonly string[], needed: number, ctx: TryContext): Promise<void> {
    this.checkpoint(ctx);
    let space: RamSpace;
    try {
      space = await this.modem.ramSpace();
    } catch (err) {
      // A module that cannot tell: the upload's own answer decides (423, 420 …).
      if (!(err instanceof CmeError || err instanceof AtErrorResult)) throw err;
      this.log.warn({ id, at: 'stage', err }, 'reading the RAM space failed; uploading anyway');
      ctx.ram = { needed };
      return;
    }
    ctx.ram = { needed, space };
    if (needed <= space.free) return;
    if (needed <= space.total) {
      this.checkpoint(ctx);
      const others = [...(await this.modem.listFiles())].filter(([name]) => !keep.includes(name));
      for (const [name] of others) {
        this.checkpoint(ctx);
        await this.modem.deleteFile(name);
      }
      const freed = others.reduce((sum, [, size]) => sum + size, 0);
      if (others.length > 0) {
        this.log.warn({ id, at: 'stage', files: others.map(([name]) => name), freed }, 'files no message journalled took the RAM: deleted');
      }
      space = { free: space.free + freed, total: space.total };
      ctx.ram = { needed, space };
      if (needed <= space.free) return;
    }
    throw new RamTooSmall(messageTooLargeError(needed, space));
  }

  /**
   * Once, when the modem is first ready: a warning when `mms.maxMessageBytes` is more than the
   * module's RAM holds (such messages will fail as MessageTooLarge, DESIGN.md §14).
   */
  private async checkRamCapacity(): Promise<void> {
    this.ramChecked = true;
    const max = this.opts.maxMessageBytes;
    if (max === undefined) return;
    try {
      const space = await this.opts.locked(() => this.modem.ramSpace());
      if (max > space.total) {
        this.log.warn(
          { maxMessageBytes: max, ramTotal: space.total, ramFree: space.free },
          "mms.maxMessageBytes is more than the module's RAM holds: larger messages will fail as MessageTooLarge",
        );
      } else {
        this.log.debug({ maxMessageBytes: max, ramTotal: space.total, ramFree: space.free }, 'module RAM checked');
      }
    } catch (err) {
      this.log.warn({ err }, "reading the module's RAM size failed");
    }
  }

  /**
   * Parts are named after themselves in RAM, so files another message kept for a re-send (it is
   * backing off) could clash with ours: only one message's files stay in the module at a time.
   */
  private async evictOthers(id: string, ctx: TryContext): Promise<void> {
    for (const other of this.outbox.list()) {
      if (other.id === id || other.ramFiles.length === 0) continue;
      this.modem.session.dropStaged(other.id);
      for (const name of other.ramFiles) {
        this.checkpoint(ctx);
        await this.modem.deleteFile(name);
      }
      await this.outbox.update(other.id, { ramFiles: [] });
      this.log.debug({ id: other.id, at: 'stage', for: id }, 'RAM files of a backing-off message evicted');
    }
  }

  /**
   * One upload, tried again after a checksum mismatch (the module saw broken bytes, §6), and once
   * after `407 File already existed` (§14: a file of that name we did not know of), each time
   * after deleting what is there.
   */
  private async upload(
    id: string,
    name: string,
    data: Buffer,
    ctx: TryContext,
    onProgress: (sent: number) => void,
  ): Promise<void> {
    let checksumRetries = 0;
    let replaced = false;
    for (;;) {
      try {
        await this.modem.uploadFile(name, data, (sent) => onProgress(sent));
        return;
      } catch (err) {
        if (err instanceof CmeError && fileCode(err.code)?.class === 'file-exists' && !replaced) {
          replaced = true;
          this.log.warn({ id, at: 'upload', file: name, code: err.code }, 'a file of that name is in RAM already: deleting it, uploading again');
        } else if (err instanceof ChecksumError && checksumRetries < CHECKSUM_RETRIES) {
          checksumRetries += 1;
          this.log.warn({ id, at: 'upload', file: name, retry: checksumRetries }, 'upload checksum mismatch, uploading again');
        } else {
          throw err;
        }
        this.checkpoint(ctx);
        await this.modem.deleteFile(name);
      }
    }
  }

  /** AT+QMMSEDIT=0 and AT+QFDEL of every journalled file; failures are logged and retried later. */
  async cleanup(id: string): Promise<void> {
    this.modem.session.dropStaged(id);
    const names = this.outbox.get(id)?.ramFiles ?? [];
    const left: string[] = [];
    try {
      await this.opts.locked(async () => {
        try {
          await this.modem.mmsClear();
        } catch (err) {
          this.log.warn({ id, at: 'cleanup', err }, 'clearing the MMS edit buffer failed');
        }
        for (const name of names) {
          try {
            await this.modem.deleteFile(name);
          } catch (err) {
            this.log.warn({ id, at: 'cleanup', file: name, err }, 'deleting a RAM file failed');
            left.push(name);
          }
        }
      });
    } catch (err) {
      this.log.warn({ id, at: 'cleanup', err }, 'cleanup failed');
      left.splice(0, left.length, ...names);
    }
    if (names.length === 0) return;
    // Names not deleted stay journalled (a later start deletes them) and are tried again when ready.
    for (const name of left) if (!this.pendingDeletes.has(name)) this.pendingDeletes.set(name, 0);
    try {
      await this.outbox.update(id, { ramFiles: left });
    } catch (err) {
      this.log.warn({ id, at: 'cleanup', err }, 'clearing the RAM journal failed');
    }
  }

  /** Leftovers of a crash, of a cancelled message, or of a cleanup that failed (§6). */
  private async deleteLeftovers(): Promise<void> {
    if (this.pendingDeletes.size === 0) return;
    const gone = new Set<string>();
    for (const [name, tries] of [...this.pendingDeletes]) {
      if (this.opts.stopping()) break;
      try {
        await this.modem.deleteFile(name);
        gone.add(name);
        this.pendingDeletes.delete(name);
      } catch (err) {
        if (tries + 1 >= LEFTOVER_DELETE_TRIES) this.pendingDeletes.delete(name);
        else this.pendingDeletes.set(name, tries + 1);
        this.log.warn({ at: 'leftovers', file: name, err }, 'deleting a leftover RAM file failed');
      }
    }
    if (gone.size === 0) return;
    this.log.info({ at: 'leftovers', files: [...gone] }, 'leftover RAM files deleted');
    for (const rec of this.outbox.list()) {
      if (!rec.ramFiles.some((n) => gone.has(n))) continue;
      try {
        await this.outbox.update(rec.id, { ramFiles: rec.ramFiles.filter((n) => !gone.has(n)) });
      } catch (err) {
        this.log.warn({ id: rec.id, at: 'leftovers', err }, 'clearing the RAM journal failed');
      }
    }
  }
}
