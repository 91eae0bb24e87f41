// Durable files (DESIGN.md §6, §12): written whole or not at all, as the outbox's spool and the
// inbox of received messages both need. Node's fs only; no part of mmsd's model.
import { randomBytes } from 'node:crypto';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';

/** fsync a directory, so that the entries made in it (creates, renames, unlinks) survive a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export interface DurableWriteOptions {
  /** fsync `dir` after the rename (default true); false when the caller syncs it once for many files. */
  syncDir?: boolean;
  /** Set this mode exactly (fchmod, past the umask); default: created 0640 under the umask. */
  mode?: number;
}

/** write temp, fsync, rename, fsync the directory: the file is whole or absent after a crash. */
export async function writeDurable(dir: string, name: string, data: string | Uint8Array, opts: DurableWriteOptions = {}): Promise<void> {
  const tmp = join(dir, `.${name}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, 'w', opts.mode ?? 0o640);
  try {
    if (opts.mode !== undefined) await fh.chmod(opts.mode);
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, name));
  if (opts.syncDir ?? true) await fsyncDir(dir);
}

/** Append one line and fsync it. */
export async function appendLineDurable(path: string, line: string): Promise<void> {
  const fh = await open(path, 'a', 0o640);
  try {
    await fh.write(`${line}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
