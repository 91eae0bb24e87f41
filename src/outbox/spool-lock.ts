// One daemon per spool (DESIGN.md §14): an exclusive flock(2) on `<outbox.dir>/.lock`, taken before
// anything in the spool is read and held by the daemon's own file descriptor until it stops or dies.
//
// Node has no flock(2) in core. The lock is applied by util-linux's flock(1) (Essential on Debian
// and Raspberry Pi OS) to a descriptor this process opened and hands it as fd 3; flock(1) exits at
// once and the lock stays on the open file description, which only this process then holds. So the
// kernel releases it when the daemon exits or is SIGKILLed: no stale lock, no pid-liveness guess.
// A lock held BY a long-lived child would outlive or die apart from the daemon; an npm flock addon
// needs a native build or prebuilt binaries, and none of the maintained ones ships linux-arm
// (armhf, §14). Node opens files close-on-exec, so no other child (systemd-notify) inherits it.
import { spawn } from 'node:child_process';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

/** The lock file inside `outbox.dir`. */
export const LOCK_FILE = '.lock';
/** flock(1)'s exit status when another process holds the lock (its --conflict-exit-code). */
const CONFLICT = 75;

/** The spool cannot be locked: another daemon holds it, or the lock file cannot be opened. */
export class SpoolLockError extends Error {
  constructor(
    message: string,
    /** The pid written by the holder, when another daemon holds the lock. */
    readonly holder?: number,
  ) {
    super(message);
    this.name = 'SpoolLockError';
  }
}

export interface SpoolLockOptions {
  /** The flock(1) program; `flock` on the PATH by default. */
  command?: string;
}

export class SpoolLock {
  private fh: FileHandle | undefined;
  readonly path: string;

  constructor(
    readonly dir: string,
    private readonly opts: SpoolLockOptions = {},
  ) {
    this.path = join(dir, LOCK_FILE);
  }

  get held(): boolean {
    return this.fh !== undefined;
  }

  /**
   * Takes the lock without waiting and writes this pid into the lock file; throws SpoolLockError
   * naming the holder when another process has it. Nothing else in `dir` is read or changed.
   */
  async acquire(): Promise<void> {
    if (this.fh) return;
    let fh: FileHandle;
    try {
      await mkdir(this.dir, { recursive: true });
      // 'a+' creates without truncating: a daemon that loses the race must not wipe the holder's pid.
      fh = await open(this.path, 'a+', 0o640);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new SpoolLockError(`outbox.dir ${this.dir}: cannot open the lock file ${this.path} (${code}); run mmsd as the user that owns outbox.dir`);
    }
    try {
      const result = await this.flock(fh.fd);
      if (result === 'held') {
        const holder = await readHolder(fh);
        throw new SpoolLockError(
          `outbox.dir ${this.dir} is in use by another mmsd (${holder === undefined ? 'pid unknown' : `pid ${holder}`}); ` +
            'stop it first (systemctl stop mmsd), or give this one another outbox.dir',
          holder,
        );
      }
      await fh.truncate(0);
      await fh.write(`${process.pid}\n`);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
    this.fh = fh;
  }

  /** Releases the lock (closing the descriptor); the file stays, so that nobody locks a stale inode. */
  async release(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }

  private flock(fd: number): Promise<'locked' | 'held'> {
    const command = this.opts.command ?? 'flock';
    return new Promise((resolve, reject) => {
      const child = spawn(command, ['--exclusive', '--nonblock', '--conflict-exit-code', String(CONFLICT), '3'], {
        stdio: ['ignore', 'ignore', 'pipe', fd],
      });
      let stderr = '';
      child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
      child.once('error', (err: NodeJS.ErrnoException) => {
        const hint = err.code === 'ENOENT' ? `${command} (util-linux) is not installed` : err.message;
        reject(new SpoolLockError(`outbox.dir ${this.dir}: cannot lock ${this.path}: ${hint}`));
      });
      child.once('close', (code) => {
        if (code === 0) resolve('locked');
        else if (code === CONFLICT) resolve('held');
        else reject(new SpoolLockError(`outbox.dir ${this.dir}: cannot lock ${this.path}: ${stderr.trim() || `${command} exited ${code}`}`));
      });
    });
  }
}

async function readHolder(fh: FileHandle): Promise<number | undefined> {
  const buf = Buffer.alloc(32);
  const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
  const pid = Number.parseInt(buf.subarray(0, bytesRead).toString('utf8').trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}
