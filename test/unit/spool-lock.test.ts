// The spool lock (DESIGN.md §14): one holder at a time, the holder's pid named to the loser, and a
// kernel lock that goes away with its process, even a SIGKILLed one.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SpoolLock, SpoolLockError } from '../../src/outbox/spool-lock.js';
import { within } from '../helpers/stack.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

let dir: string;
const locks: SpoolLock[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mmsd-lock-'));
});
afterEach(async () => {
  for (const l of locks.splice(0)) await l.release();
  await rm(dir, { recursive: true, force: true });
});

function lock(d = dir, command?: string): SpoolLock {
  const l = new SpoolLock(d, { command });
  locks.push(l);
  return l;
}

async function refusal(l: SpoolLock): Promise<SpoolLockError> {
  const err = await l.acquire().then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(SpoolLockError);
  return err as SpoolLockError;
}

describe('SpoolLock', () => {
  it('gives the spool to one holder, names its pid to the next, and frees it on release', async () => {
    const first = lock();
    await first.acquire();
    expect(first.held).toBe(true);
    expect(await readFile(join(dir, '.lock'), 'utf8')).toBe(`${process.pid}\n`);

    const second = lock();
    const err = await refusal(second);
    expect(err.holder).toBe(process.pid);
    expect(err.message).toBe(
      `outbox.dir ${dir} is in use by another mmsd (pid ${process.pid}); stop it first (systemctl stop mmsd), or give this one another outbox.dir`,
    );
    expect(second.held).toBe(false);
    // The loser left the holder's pid in place.
    expect(await readFile(join(dir, '.lock'), 'utf8')).toBe(`${process.pid}\n`);

    await first.release();
    await second.acquire();
    expect(second.held).toBe(true);
  });

  it('is released by the kernel when its holder is SIGKILLed', async () => {
    // Another process takes the lock through the same code (as built), says so, and is killed.
    const script = `
      import { SpoolLock } from './dist/outbox/spool-lock.js';
      await new SpoolLock(process.argv[1]).acquire();
      console.log('locked');
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, dir], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      await within(new Promise<void>((resolve, reject) => {
        let out = '';
        let errText = '';
        child.stdout.on('data', (b: Buffer) => {
          out += b.toString();
          if (out.includes('locked')) resolve();
        });
        child.stderr.on('data', (b: Buffer) => (errText += b.toString()));
        child.once('exit', (code) => reject(new Error(`holder exited (${code}): ${errText}`)));
      }), 15_000, 'the other process to lock');
      const err = await refusal(lock());
      expect(err.holder).toBe(child.pid);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    const after = lock();
    await after.acquire();
    expect(after.held).toBe(true);
  });

  it('names what is missing when flock(1) cannot be run', async () => {
    const err = await refusal(lock(dir, 'flock-that-is-not-installed'));
    expect(err.message).toBe(`outbox.dir ${dir}: cannot lock ${join(dir, '.lock')}: flock-that-is-not-installed (util-linux) is not installed`);
  });

  it('says whose spool it cannot open', async () => {
    const file = join(dir, 'not-a-dir');
    await writeFile(file, '');
    const err = await refusal(lock(file));
    expect(err.message).toMatch(new RegExp(`^outbox\\.dir ${file}: cannot open the lock file .*\\(E[A-Z]+\\); run mmsd as the user that owns outbox\\.dir$`));
  });
});
