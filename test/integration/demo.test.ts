// `npm run demo` (dist/cli/demo.js) works: one MMS reaches the loopback MMSC and everything it
// started is gone afterwards.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const DEMO = fileURLToPath(new URL('../../dist/cli/demo.js', import.meta.url));

describe('the demo', () => {
  it('sends one MMS with a UTF-8 subject, a text part and an image, and prints what the MMSC got', async () => {
    const r = await new Promise<{ code: number; out: string }>((resolve) => {
      execFile(process.execPath, [DEMO], { timeout: 60_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
      );
    });
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('mmsctl exited 0');
    expect(r.out).toContain('The loopback MMSC received 1 message(s)');
    expect(r.out).toContain('subject  Grüße aus dem Router — 你好 📡');
    expect(r.out).toMatch(/part +note\.txt +text\/plain +\d+ bytes +sha256 [0-9a-f]{64}/);
    expect(r.out).toMatch(/part +picture\.png +image\/png +\d+ bytes +sha256 [0-9a-f]{64}/);
    // Nothing it started is left running: its temp dir is gone.
    const dir = /state dir (\S+)\/state/.exec(r.out)?.[1];
    expect(dir).toBeDefined();
    const { existsSync } = await import('node:fs');
    expect(existsSync(dir!)).toBe(false);
  });
});
