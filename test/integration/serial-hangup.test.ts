// The serial transport on a real pty pair (socat) whose far end goes away while bytes flow in,
// as when the USB modem is unplugged mid-response. serialport's native binding retried the
// resulting 0-byte reads for ever (bindings-cpp #162): the port never closed, the daemon spun at a
// full core with its memory climbing, and never reopened. Each round must end in 'close'.
import { once } from 'node:events';
import { nextEvent, until } from '../../src/harness/wait.js';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SerialTransport } from '../../src/at/transport.js';
import { HangupError, readOrHangup } from '../../src/at/tty-binding.js';
import { startSocatPair } from '../../src/sim/serve.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mmsd-hangup-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('SerialTransport on a pty that hangs up', () => {
  it('reads 0 bytes from a hung-up descriptor as a HangupError, not as another read', async () => {
    // /dev/null reads 0 bytes at once, like a tty whose device went away.
    const fd = openSync('/dev/null', 'r');
    try {
      const err = await readOrHangup(fd, Buffer.alloc(16), 0, 16, null).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HangupError);
      expect(err).toMatchObject({ code: 'EHANGUP', disconnect: true });
    } finally {
      closeSync(fd);
    }
  });

  it('closes, every time, when the far end goes away while the module is talking', async () => {
    const rounds = 12;
    for (let round = 0; round < rounds; round++) {
      const host = join(dir, `host-${round}`);
      const module = join(dir, `module-${round}`);
      const socat = await startSocatPair(host, module);
      const t = new SerialTransport(host, 921_600);
      await t.open();
      const far = new SerialPort({ path: module, baudRate: 921_600, autoOpen: false });
      await new Promise<void>((resolve, reject) => far.open((err) => (err ? reject(err) : resolve())));
      far.on('error', () => undefined);
      let received = 0;
      t.on('data', (chunk: Buffer) => (received += chunk.length));
      // The module streams without pause, so a read is in flight when the line drops.
      let talking = true;
      const talk = (async () => {
        while (talking && far.isOpen) {
          await new Promise<void>((resolve) => far.write(Buffer.alloc(64, 0x41), () => resolve()));
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      await until(() => received >= 4096, 10_000, 'the module to stream 4 KiB', 5);
      const closed = nextEvent(t, 'close');
      talking = false;
      await talk;
      await new Promise<void>((resolve) => far.close(() => resolve()));
      const exited = once(socat, 'exit');
      socat.kill('SIGTERM');
      // Without the fix about half the rounds never get here: the port stays "open" for ever.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        closed,
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`round ${round}: the transport did not close`)), 10_000))),
      ]).finally(() => clearTimeout(timer));
      expect(t.isOpen).toBe(false);
      await exited;
    }
  }, 60_000);
});
