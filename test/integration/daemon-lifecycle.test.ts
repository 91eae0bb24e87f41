// The mmsd process's lifecycle (DESIGN.md §2, §3, §6; issue 4 "mmsd entry point"): clean SIGTERM
// when idle and mid-upload, refusal of a bad configuration, and the outbox surviving a restart.
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import dbus from 'dbus-next';
import { describe, it } from 'vitest';
import { LOG_EVENTS } from '../../src/core/log-events.js';
import { MMSD_BIN, Testbed } from '../../src/harness/testbed.js';
import { until } from '../../src/harness/wait.js';
import {
  finalWithin,
  pseudoImage,
  receivedWithSubject,
  simView,
  startStack,
  transcript,
  waitForProps,
  within,
  type Stack,
} from '../helpers/stack.js';
import type { TestbedOptions } from '../../src/harness/testbed.js';

const TO = ['+15550003000'];

async function withStack(opts: TestbedOptions, fn: (s: Stack) => Promise<void>): Promise<void> {
  const s = await startStack(opts);
  try {
    await fn(s);
  } finally {
    await s.stop();
  }
}

/** Whether anyone owns `name` on the bus at `address`. */
async function nameHasOwner(address: string, name: string): Promise<boolean> {
  const bus = dbus.sessionBus({ busAddress: address });
  try {
    const obj = await bus.getProxyObject('org.freedesktop.DBus', '/org/freedesktop/DBus');
    const iface = obj.getInterface('org.freedesktop.DBus') as unknown as { NameHasOwner(n: string): Promise<boolean> };
    return await iface.NameHasOwner(name);
  } finally {
    bus.disconnect();
  }
}

describe.concurrent('the mmsd process', () => {
  it('exits 0 on SIGTERM while idle and logs "stopped"', async ({ expect }) => {
    await withStack({}, async (s) => {
      await s.tb.modemReady(15_000);
      const d = s.tb.daemon!;
      const exit = await d.stop('SIGTERM', 10_000);
      expect(exit).toEqual({ code: 0, signal: null });
      expect(d.lines.some((l) => l.msg === LOG_EVENTS.stopped)).toBe(true);
      // It left the bus: the name is free again.
      expect(await nameHasOwner(s.tb.bus!.address, 'org.example.Mms1')).toBe(false);
    });
  });

  it('exits 1 after a clean stop as soon as its bus goes away while idle, without waiting to release the name', async ({ expect }) => {
    await withStack({}, async (s) => {
      await s.tb.modemReady(15_000);
      const d = s.tb.daemon!;
      // Idle: nothing makes mmsd write to the bus after this, so only the socket's close tells it.
      await s.tb.bus!.handle.stop('SIGKILL');
      // Well under the 10 s a release of the name would wait on the dead connection: a bound on a
      // hang (before, mmsd noticed only at its next write, and then waited out the release).
      const exit = await within(d.exited, 6_000, 'mmsd to exit after the bus went away');
      expect(exit).toEqual({ code: 1, signal: null });
      // The exit can overtake the last lines on the pipe.
      await until(() => d.lines.some((l) => l.msg === LOG_EVENTS.stopped), 5_000, 'the "stopped" line');
      const msgs = d.lines.map((l) => l.msg);
      const lost = msgs.indexOf(LOG_EVENTS.dbusLost);
      expect(lost).toBeGreaterThanOrEqual(0);
      expect(d.lines[lost]).toMatchObject({ level: 60, err: expect.stringMatching(/closed the connection/) as unknown });
      expect(msgs.filter((m) => m === LOG_EVENTS.dbusLost)).toHaveLength(1);
      expect(d.lines.find((l) => l.msg === LOG_EVENTS.stopping)).toMatchObject({ signal: 'busError' });
      expect(msgs.indexOf(LOG_EVENTS.stopping)).toBeGreaterThan(lost);
      expect(msgs.indexOf(LOG_EVENTS.stopped)).toBeGreaterThan(msgs.indexOf(LOG_EVENTS.stopping));
      expect(msgs).not.toContain(LOG_EVENTS.dbusReleaseFailed);
    });
  });

  it('on SIGTERM mid-upload exits 0, leaves the message queued, and sends it once after a restart', async ({ expect }) => {
    await withStack({}, async (s) => {
      await s.tb.modemReady(15_000);
      // ~64 KB at 40 KB/s: the upload lasts about 1.6 s.
      await s.tb.fault({ lineRate: 40_000 });
      const image = pseudoImage(64 * 1024, 21);
      const path = await s.client.sendData({ to: TO, subject: 'sigterm', id: 'term-1' }, [{ name: 'photo.jpg', data: image }]);
      await waitForProps(s.client, 'term-1', (p) => p.Progress > 0.2, 20_000, 'upload progress > 0.2');
      const d = s.tb.daemon!;
      const exit = await d.stop('SIGTERM', 20_000);
      expect(exit).toEqual({ code: 0, signal: null });
      expect(d.lines.some((l) => l.msg === LOG_EVENTS.stopped)).toBe(true);
      expect(countSends(await transcript(s.tb))).toBe(0);

      const again = await s.tb.startDaemon();
      // The stop put it back to the queue itself: the restart found nothing left `sending`.
      const recovered = await again.waitFor((l) => l.msg === LOG_EVENTS.outboxRecovered, 10_000, 'outbox recovered');
      expect(recovered).toMatchObject({ loaded: 1, requeued: 0, unknown: 0 });
      const final = await finalWithin(s, path, 30_000);
      expect(final.Status).toBe('sent');
      expect(final.Attempts).toBe(1);
      expect(await receivedWithSubject(s.tb, 'sigterm')).toBe(1);
      expect(countSends(await transcript(s.tb))).toBe(1);
    });
  });

  it('refuses an invalid configuration with exit 78, one line per bad key, and starts nothing', async ({ expect }) => {
    const tb = await Testbed.start({ dbus: true, daemon: false });
    try {
      const config = JSON.parse(await readFile(tb.configFile, 'utf8')) as Record<string, Record<string, unknown>>;
      config.mms.colour = 'blue';
      const file = join(tb.dir, 'bad.json');
      await writeFile(file, JSON.stringify(config));
      const proc = spawn(process.execPath, [MMSD_BIN, '--config', file], {
        env: { ...tb.env, MMSD_MMS_CONNECT_TIMEOUT_S: '0' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      proc.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      proc.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      const code = await within(
        new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c))),
        15_000,
        'mmsd to exit',
      );
      expect(code).toBe(78);
      const lines = stderr.trim().split('\n');
      expect(lines).toHaveLength(2);
      expect(lines.find((l) => l.includes('mms.colour'))).toMatch(/unknown key/);
      expect(lines.find((l) => l.includes('mms.connectTimeoutS'))).toMatch(/MMSD_MMS_CONNECT_TIMEOUT_S|got 0/);
      // Nothing started: no log, no bus name, not a single AT command to the module.
      expect(stdout).toBe('');
      expect(await nameHasOwner(tb.bus!.address, 'org.example.Mms1')).toBe(false);
      expect((await simView(tb)).transcript).toEqual([]);
    } finally {
      await tb.stop();
    }
  });

  it('keeps a message queued across a restart while there is no SIM, and sends it once the SIM is in', async ({ expect }) => {
    await withStack({ simArgs: ['--no-sim'] }, async (s) => {
      const d = s.tb.daemon!;
      await d.waitFor((l) => l.msg === LOG_EVENTS.modemStatus && (l.modem as { state: string }).state === 'sim-missing', 15_000, 'sim-missing');
      const path = await s.client.sendData({ to: TO, subject: 'survives', id: 'keep-1' }, [{ name: 'a.bin', data: pseudoImage(4096, 3) }]);
      expect((await d.stop('SIGTERM', 10_000)).code).toBe(0);

      const again = await s.tb.startDaemon();
      await again.waitFor((l) => l.msg === LOG_EVENTS.modemStatus && (l.modem as { state: string }).state === 'sim-missing', 15_000, 'sim-missing again');
      const kept = await s.client.show('keep-1');
      expect(kept.Status).toBe('queued');
      expect(kept.Attempts).toBe(0);
      expect(kept.Subject).toBe('survives');

      await s.tb.fault({ sim: 'ready' });
      const final = await finalWithin(s, path, 20_000);
      expect(final.Status).toBe('sent');
      expect(await receivedWithSubject(s.tb, 'survives')).toBe(1);
      expect(countSends(await transcript(s.tb))).toBe(1);
    });
  });

  // Field defect: restarted without mms.proxy.host, mmsd left the old gateway in the module (it
  // keeps its settings until it restarts), and every send went on failing through it.
  it('clears the proxy the module still holds when restarted with none configured', async ({ expect }) => {
    await withStack({}, async (s) => {
      await s.tb.modemReady(15_000);
      const proxyOf = async (): Promise<{ proxyHost: string; proxyPort: number }> =>
        ((await s.tb.simState()) as { mms: { proxyHost: string; proxyPort: number } }).mms;
      const mmsc = new URL(s.tb.simInfo.mmsc);
      expect(await proxyOf()).toEqual(expect.objectContaining({ proxyHost: mmsc.hostname, proxyPort: Number(mmsc.port) }));
      expect((await s.tb.daemon!.stop('SIGTERM', 10_000)).code).toBe(0);

      const config = JSON.parse(await readFile(s.tb.configFile, 'utf8')) as { mms: Record<string, unknown> };
      delete config.mms.proxy;
      await writeFile(s.tb.configFile, JSON.stringify(config));
      const boots = (await simView(s.tb)).boots;
      await s.tb.startDaemon();
      await s.tb.modemReady(15_000);
      expect(await proxyOf()).toEqual(expect.objectContaining({ proxyHost: '', proxyPort: 80 }));
      expect((await simView(s.tb)).boots).toBe(boots); // the same module, not restarted
      const path = await s.client.sendData({ to: TO, subject: 'direct', id: 'direct-1' }, [{ name: 'a.bin', data: pseudoImage(1024, 5) }]);
      expect((await finalWithin(s, path, 20_000)).Status).toBe('sent');
      expect(await receivedWithSubject(s.tb, 'direct')).toBe(1);
    });
  });
});

function countSends(lines: string[]): number {
  return lines.filter((l) => l.startsWith('AT+QMMSEND=')).length;
}
