// The README's D-Bus examples, run verbatim against the real daemon (busctl and mmsctl talk to
// the "system" bus: here our private bus, through DBUS_SYSTEM_BUS_ADDRESS).
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MMSCTL_BIN } from '../../src/harness/testbed.js';
import { startStack, until, type Stack } from '../helpers/stack.js';

const README = new URL('../../README.md', import.meta.url);

function example(doc: string, name: string): string {
  const m = new RegExp(`<!-- readme-example: ${name} -->\\s*\`\`\`sh\\n([\\s\\S]*?)\`\`\``).exec(doc);
  if (!m) throw new Error(`README.md has no example "${name}"`);
  return m[1];
}

function sh(script: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('sh', ['-ec', script], { env, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('README examples', () => {
  let s: Stack;
  let env: NodeJS.ProcessEnv;
  let doc: string;

  beforeAll(async () => {
    doc = await readFile(README, 'utf8');
    s = await startStack();
    await s.tb.modemReady();
    const bin = join(s.tb.dir, 'bin');
    await mkdir(bin);
    await writeFile(join(bin, 'mmsctl'), `#!/bin/sh\nexec "${process.execPath}" "${MMSCTL_BIN}" "$@"\n`, { mode: 0o755 });
    env = { ...s.tb.env, DBUS_SYSTEM_BUS_ADDRESS: s.tb.bus!.address, PATH: `${bin}:${process.env.PATH ?? ''}` };
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('busctl: SendMessageData queues the message and its Status can be read', async () => {
    const r = await sh(example(doc, 'busctl'), env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('o "/org/example/Mms1/message/readme_2dbusctl_2d1"');
    expect(r.stdout).toMatch(/^s "(queued|sending|sent)"$/m);
    const final = await s.final('/org/example/Mms1/message/readme_2dbusctl_2d1');
    expect(final.Status).toBe('sent');
    const got = (await s.tb.received()).find((m) => m.subject === 'Hello');
    expect(got?.to).toEqual(['+15551234567']);
    expect(got?.parts.find((p) => p.name === 'hello.txt')?.size).toBe(3);
  });

  it('mmsctl: send --wait exits 0 once the MMSC has the message', async () => {
    const r = await sh(example(doc, 'mmsctl'), env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('sent readme-mmsctl-1');
    const got = (await s.tb.received()).find((m) => m.subject === 'Alarm: front door');
    expect(got?.cc).toEqual(['alice@example.com']);
    expect(got?.parts.find((p) => p.name === 'alarm.txt')?.size).toBe('Door opened at 03:12\n'.length);
  });

  it('mmsctl: send --wait-delivered exits 0 once the loopback MMSC reported it retrieved', async () => {
    const r = await sh(example(doc, 'delivered'), env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('delivered readme-delivered-1');
    expect(r.stdout).toMatch(/\+15557654321 +retrieved/);
  });

  it('inbox: mmsctl inbox and busctl ListReceived list a message sent to the gateway', async () => {
    await s.tb.receive({ from: '+4917012345', subject: 'README photo', parts: [{ name: 'a.txt', contentType: 'text/plain', data: Buffer.from('hi') }] });
    await until(async () => ((await s.client.listReceived()).some((r) => r.props.Status === 'received') ? true : undefined), 30_000, 'received');
    const r = await sh(example(doc, 'inbox'), env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^r\w+ +received +\S+ +\+4917012345 +\d+ +1 +README photo$/m);
    expect(r.stdout).toContain('"README photo"');
  });
});
