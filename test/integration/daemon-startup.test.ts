// What a daemon does when it cannot or must not start (DESIGN.md §14): a second daemon on the same
// spool leaves it untouched and names the holder; problems of the configuration or the machine
// (no bus, the bus policy missing, the name taken, an unreadable password file) end with exit 78
// and one line naming what to fix, never a stack trace; `mmsd --check-config` touches nothing.
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it, type ExpectStatic } from 'vitest';
import { BUS_NAME } from '../../src/api/dbus/names.js';
import { MMSD_BIN, Testbed } from '../../src/harness/testbed.js';
import { connect, run, startDbusDaemon, systemLikeConfig, type Run } from '../helpers/dbus-daemon.js';
import { finalWithin, simView, startStack, until, within } from '../helpers/stack.js';

const EX_CONFIG = 78;

/** The testbed's daemon configuration with `change` applied, written beside it. */
async function configWith(tb: Testbed, name: string, change: (c: Record<string, Record<string, unknown>>) => void): Promise<string> {
  const config = JSON.parse(await readFile(tb.configFile, 'utf8')) as Record<string, Record<string, unknown>>;
  change(config);
  const file = join(tb.dir, name);
  await writeFile(file, JSON.stringify(config));
  return file;
}

function mmsd(tb: Testbed, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return run(process.execPath, [MMSD_BIN, ...args], { env: { ...tb.env, ...env }, timeoutMs: 30_000 });
}

/** stdout as JSON log lines. */
function logLines(r: Run): Array<Record<string, unknown>> {
  return r.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A refusal after the logger exists: exit 78, one fatal line that is the reason, nothing on stderr. */
function expectOneFatalLine(expect: ExpectStatic, r: Run, reason: RegExp): void {
  expect(r.code, r.stdout + r.stderr).toBe(EX_CONFIG);
  expect(r.stderr).toBe('');
  const lines = logLines(r);
  const fatal = lines.filter((l) => (l.level as number) >= 50);
  expect(fatal).toHaveLength(1);
  expect(fatal[0]).toMatchObject({ level: 60, exitCode: EX_CONFIG });
  expect(fatal[0].msg).toMatch(reason);
  expect(r.stdout).not.toMatch(/"stack"|\\n\s+at /);
}

describe.concurrent('mmsd start-up refusals', () => {
  it('a second daemon on the same spool exits 78 naming the holder and leaves the message in flight alone', async ({ expect }) => {
    const s = await startStack();
    try {
      await s.tb.modemReady(15_000);
      const first = s.tb.daemon!;
      // The module accepts the send and holds its result: the message is `sending`, accepted.
      await s.tb.fault({ hold: true });
      const path = await s.client.sendData({ to: ['+15550005000'], subject: 'in flight', id: 'flight-1' }, [
        { name: 'a.txt', contentType: 'text/plain', data: Buffer.from('held') },
      ]);
      const record = join(s.tb.stateDir, 'messages', 'flight-1.json');
      const before = await until(async () => {
        const text = await readFile(record, 'utf8');
        return (JSON.parse(text) as { sendAccepted: boolean }).sendAccepted ? text : undefined;
      }, 15_000, 'the send to be accepted');
      const statBefore = await stat(record);

      // The documented check, and a daemon started by hand on the same configuration.
      const check = await mmsd(s.tb, ['--check-config', '--config', s.tb.configFile]);
      expect(check.code, check.stderr).toBe(0);
      expect(check.stdout).toBe(`mmsd: configuration ok (${s.tb.configFile})\n`);
      expect(check.stderr).toBe('');
      const second = await mmsd(s.tb, ['--config', s.tb.configFile]);
      expectOneFatalLine(expect, second, new RegExp(`^outbox\\.dir ${s.tb.stateDir} is in use by another mmsd \\(pid ${first.pid}\\)`));

      // Nothing touched: the record byte for byte (same file, not rewritten); the modem port never
      // opened (the log holds its start and its refusal, nothing between).
      expect(await readFile(record, 'utf8')).toBe(before);
      const statAfter = await stat(record);
      expect([statAfter.ino, statAfter.mtimeMs]).toEqual([statBefore.ino, statBefore.mtimeMs]);
      expect(logLines(second).map((l) => l.msg)).toEqual(['starting', logLines(second)[1].msg]);
      expect(first.running).toBe(true);

      // The first daemon still owns the message: the result arrives and it ends `sent`.
      await s.tb.fault({ hold: false });
      expect((await finalWithin(s, path, 20_000)).Status).toBe('sent');
    } finally {
      await s.stop();
    }
  });

  it('exits 78 with one line when the MQTT password file is missing, before touching anything', async ({ expect }) => {
    const tb = await Testbed.start({ dbus: true, daemon: false });
    try {
      const missing = join(tb.dir, 'mqtt-password');
      const file = await configWith(tb, 'mqtt.json', (c) => {
        c.mqtt = { enabled: true, url: 'mqtt://127.0.0.1:1', username: 'gw', passwordFile: missing };
      });
      const r = await mmsd(tb, ['--config', file]);
      expect(r.code).toBe(EX_CONFIG);
      expect(r.stderr).toBe(`mmsd: mqtt.passwordFile: cannot read ${missing} (ENOENT); create it, or change mqtt.passwordFile\n`);
      expect(r.stdout).toBe('');
      expect((await simView(tb)).transcript).toEqual([]);
      // The check says the same, and also exits 78.
      const check = await mmsd(tb, ['--check-config', '--config', file]);
      expect([check.code, check.stderr, check.stdout]).toEqual([EX_CONFIG, r.stderr, '']);
      // Under journald (stderr is the journal stream) the line carries priority err.
      const errFile = join(tb.dir, 'stderr.journal');
      const fd = openSync(errFile, 'w');
      try {
        const st = fstatSync(fd);
        const proc = spawn(process.execPath, [MMSD_BIN, '--config', file], {
          env: { ...tb.env, JOURNAL_STREAM: `${st.dev}:${st.ino}` },
          stdio: ['ignore', 'ignore', fd],
        });
        expect(await within(new Promise((resolve) => proc.once('exit', resolve)), 15_000, 'mmsd to exit')).toBe(EX_CONFIG);
      } finally {
        closeSync(fd);
      }
      expect(await readFile(errFile, 'utf8')).toBe(`<3>${r.stderr}`);
    } finally {
      await tb.stop();
    }
  });

  it('exits 78 with one line when the D-Bus name is already taken', async ({ expect }) => {
    const tb = await Testbed.start({ dbus: true, daemon: false });
    const squatter = await connect(tb.bus!.address);
    try {
      await squatter.requestName(BUS_NAME, 4 /* DO_NOT_QUEUE */);
      const r = await mmsd(tb, ['--config', tb.configFile]);
      expectOneFatalLine(expect, r, new RegExp(`^${BUS_NAME.replace(/\./g, '\\.')} is already owned on the session bus by pid ${process.pid}: is another mmsd running\\?$`));
    } finally {
      squatter.disconnect();
      await tb.stop();
    }
  });

  it('exits 78 with one line when no bus is reachable', async ({ expect }) => {
    const tb = await Testbed.start({ daemon: false });
    try {
      const file = await configWith(tb, 'system.json', (c) => {
        c.dbus = { enabled: true, bus: 'system' };
      });
      const socket = join(tb.dir, 'no-such-bus.sock');
      const r = await mmsd(tb, ['--config', file], { DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${socket}` });
      expectOneFatalLine(expect, r, new RegExp(`^cannot connect to the system bus \\(connect ENOENT ${socket}\\): is dbus running`));
    } finally {
      await tb.stop();
    }
  });

  it('exits 78 with one line naming the policy file when the bus refuses the name', async ({ expect }) => {
    const tb = await Testbed.start({ daemon: false });
    // The system bus's default-deny policy without mmsd's policy file.
    const bus = await startDbusDaemon((socket) => systemLikeConfig(socket, []));
    try {
      const file = await configWith(tb, 'system.json', (c) => {
        c.dbus = { enabled: true, bus: 'system' };
      });
      const r = await mmsd(tb, ['--config', file], { DBUS_SYSTEM_BUS_ADDRESS: bus.address });
      expectOneFatalLine(expect, r, /^the system bus refuses mmsd the name org\.example\.Mms1 \(.*\): install dbus\/org\.example\.Mms1\.conf in \/etc\/dbus-1\/system\.d\//);
    } finally {
      await bus.stop();
      await tb.stop();
    }
  });

  it('--check-config names every problem on its own line, warns about a config nobody can reach, and starts nothing', async ({ expect }) => {
    const tb = await Testbed.start({ daemon: false });
    try {
      const bad = await configWith(tb, 'bad.json', (c) => {
        c.mms.colour = 'blue';
      });
      const r = await mmsd(tb, ['--check-config', '--config', bad], { MMSD_MMS_CONNECT_TIMEOUT_S: '0' });
      expect(r.code).toBe(EX_CONFIG);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(2);
      expect(lines.find((l) => l.includes('mms.colour'))).toMatch(/^mmsd: config: mms\.colour: unknown key/);
      expect(lines.find((l) => l.includes('mms.connectTimeoutS'))).toMatch(/MMSD_MMS_CONNECT_TIMEOUT_S/);

      const doorless = await configWith(tb, 'doorless.json', (c) => {
        c.dbus.enabled = false;
        c.mqtt.enabled = false;
      });
      const w = await mmsd(tb, ['--check-config', '--config', doorless]);
      expect(w.code).toBe(0);
      expect(w.stderr).toBe('mmsd: warning: no front door: dbus.enabled and mqtt.enabled are both false, so nothing can submit a message\n');
      expect(w.stdout).toBe(`mmsd: configuration ok (${doorless})\n`);
      // No spool, no port.
      await expect(stat(tb.stateDir)).rejects.toMatchObject({ code: 'ENOENT' });
      expect((await simView(tb)).transcript).toEqual([]);
    } finally {
      await tb.stop();
    }
  });
});
