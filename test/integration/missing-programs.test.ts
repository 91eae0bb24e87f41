// A missing socat or mosquitto is named at once with the package to install, instead of a bare
// `spawn socat ENOENT` or a 50 s hang: run with a PATH that holds neither.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Mosquitto } from '../helpers/mosquitto.js';

const SIM = fileURLToPath(new URL('../../dist/cli/mmsd-sim.js', import.meta.url));
const emptyBin = mkdtempSync(path.join(os.tmpdir(), 'mmsd-nobin-'));

afterAll(() => rmSync(emptyBin, { recursive: true, force: true }));

describe('a program the tools need is not installed', () => {
  it('mmsd-sim --pty without socat says what to install, in one line, at once', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mmsd-nosocat-'));
    try {
      const started = Date.now();
      const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
        const p = spawn(process.execPath, [SIM, '--pty', path.join(dir, 'modem')], {
          env: { ...process.env, PATH: emptyBin },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        p.once('error', reject);
        p.once('close', (code) => resolve({ code, stdout, stderr }));
      });
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe('mmsd-sim: socat is needed for --pty (apt install socat), or use --tcp\n');
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the tests\' mosquitto helper fails fast naming the package, without an unhandled error', async () => {
    const saved = process.env.PATH;
    process.env.PATH = emptyBin;
    try {
      const started = Date.now();
      await expect(Mosquitto.start()).rejects.toThrow(/^mosquitto not found: apt install mosquitto$/);
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      process.env.PATH = saved;
    }
  });
});
