// The outbox's store in memory (src/outbox/store.ts is the seam): unit tests run the real Outbox,
// its state machine and queue order, without a spool on disk.
import { attachmentFile, fittedFile, type OutboxStore } from '../../src/outbox/store.js';

export class MemoryStore implements OutboxStore {
  /** Record id → its text, as the outbox wrote it. */
  readonly records = new Map<string, string>();
  /** Attachment file (as a record names it) → its bytes. */
  readonly files = new Map<string, Buffer>();
  /** Records set aside as unreadable: where to → text. */
  readonly aside = new Map<string, string>();
  /** Ids with attachment files. */
  private readonly owners = new Set<string>();

  open(): Promise<string[]> {
    return Promise.resolve([...this.records.keys()]);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  readRecord(id: string): string {
    const text = this.records.get(id);
    if (text === undefined) throw new Error(`no record ${id}`);
    return text;
  }

  describe(id: string): string {
    return `memory:messages/${id}`;
  }

  setAside(id: string, stamp: number): Promise<string> {
    const to = `memory:corrupt/${id}.${stamp}`;
    this.aside.set(to, this.readRecord(id));
    this.records.delete(id);
    return Promise.resolve(to);
  }

  writeRecord(id: string, text: string): Promise<void> {
    this.records.set(id, text);
    return Promise.resolve();
  }

  removeRecord(id: string): Promise<void> {
    this.records.delete(id);
    return Promise.resolve();
  }

  flushRemovals(): Promise<void> {
    return Promise.resolve();
  }

  async writeAttachments(id: string, data: readonly Uint8Array[]): Promise<void> {
    await this.removeAttachments(id);
    data.forEach((d, i) => this.files.set(attachmentFile(id, i), Buffer.from(d)));
    if (data.length > 0) this.owners.add(id);
  }

  writeFitted(id: string, parts: ReadonlyArray<{ index: number; data: Uint8Array }>): Promise<void> {
    for (const p of parts) this.files.set(fittedFile(id, p.index), Buffer.from(p.data));
    this.owners.add(id);
    return Promise.resolve();
  }

  removeAttachmentFile(file: string): Promise<void> {
    this.files.delete(file);
    return Promise.resolve();
  }

  readAttachment(file: string): Promise<Buffer> {
    const b = this.files.get(file);
    if (!b) return Promise.reject(Object.assign(new Error(`ENOENT: no attachment file ${file}`), { code: 'ENOENT' }));
    return Promise.resolve(Buffer.from(b));
  }

  removeAttachments(id: string): Promise<void> {
    const prefix = attachmentFile(id, 0).replace(/0$/, '');
    for (const file of [...this.files.keys()]) if (file.startsWith(prefix)) this.files.delete(file);
    this.owners.delete(id);
    return Promise.resolve();
  }

  attachmentOwners(): Promise<string[]> {
    return Promise.resolve([...this.owners]);
  }
}
