// The daemon's log as an operator reads it (DESIGN.md §14): JSON lines without a key twice, every
// line of a message's story (the AT lines included) carrying the message's id, one "message
// queued" per message; under journald each line led by its syslog priority.
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { LOG_EVENTS } from '../../src/core/log-events.js';
import { syslogPriority } from '../../src/daemon/logger.js';
import { MMSD_BIN, Testbed } from '../../src/harness/testbed.js';
import { duplicateKeys } from '../helpers/json-keys.js';
import { finalWithin, startStack, until, within } from '../helpers/stack.js';

const TO = ['+15550004000'];
const text = (s: string): { name: string; contentType: string; data: Buffer } => ({ name: 'note.txt', contentType: 'text/plain', data: Buffer.from(s) });

describe.concurrent('the daemon log', () => {
  it('the key scan finds a key twice where JSON.parse sees one', ({ expect }) => {
    expect(duplicateKeys('{"part":"at","a":{"x":1,"y":[{"x":2,"x":3}]},"part":"modem"}')).toEqual(['a.y.0.x', 'part']);
    expect(duplicateKeys('{"name":"mmsd","err":{"name":"x"}}')).toEqual([]);
  });

  it('has each key once per line, the message id on every line of a send, and "message queued" once', async ({ expect }) => {
    const s = await startStack({ rawLog: true });
    try {
      await s.tb.modemReady(15_000);
      const d = s.tb.daemon!;
      const ok = await s.client.sendData({ to: TO, subject: 'log-ok', id: 'log-ok' }, [text('one')]);
      expect((await finalWithin(s, ok)).Status).toBe('sent');
      // A failure too: its result line carries the error's name (once: no logger `name` beside it).
      await s.tb.fault({ sendResults: [{ err: 766, http: 403 }] });
      const bad = await s.client.sendData({ to: TO, subject: 'log-bad', id: 'log-bad' }, [text('two')]);
      expect((await finalWithin(s, bad)).Status).toBe('failed');
      for (const id of ['log-ok', 'log-bad']) await d.waitFor((l) => l.msg === LOG_EVENTS.sendResult && l.id === id, 10_000, `send result of ${id}`);

      const raw = [...d.raw];
      expect(raw.length).toBe(d.lines.length);
      for (const line of raw) {
        expect(() => JSON.parse(line) as unknown, line).not.toThrow();
        expect(duplicateKeys(line), line).toEqual([]);
        expect(line).not.toContain('Error: Error:');
      }
      const lines = raw.map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.find((l) => l.msg === LOG_EVENTS.sendResult && l.id === 'log-bad')).toMatchObject({ code: 766, name: 'Error response of HTTP(S) post' });

      for (const id of ['log-ok', 'log-bad']) {
        expect(lines.filter((l) => l.msg === LOG_EVENTS.messageQueued && l.id === id)).toHaveLength(1);
        // The story: from the sender's "sending" to its "send result", every line of the parts that
        // send (the AT channel, the driver, the sender) names the message.
        const from = lines.findIndex((l) => l.msg === LOG_EVENTS.sending && l.id === id);
        const to = lines.findIndex((l) => l.msg === LOG_EVENTS.sendResult && l.id === id);
        expect(from).toBeGreaterThanOrEqual(0);
        expect(to).toBeGreaterThan(from);
        const story = lines.slice(from, to + 1).filter((l) => l.part === 'at' || l.part === 'modem' || l.part === 'sender');
        expect(story.filter((l) => l.id !== id)).toEqual([]);
        const at = story.filter((l) => l.part === 'at');
        expect(at.some((l) => l.msg === LOG_EVENTS.tx && l.at === 'AT+QMMSEND=300')).toBe(true);
        expect(at.some((l) => l.msg === LOG_EVENTS.rx && String(l.line).startsWith('+QMMSEND:'))).toBe(true);
        expect(at.some((l) => l.msg === LOG_EVENTS.tx && String(l.at).startsWith('AT+QFDEL='))).toBe(true);
      }
      // Outside a send the modem side's lines name no message.
      const first = lines.findIndex((l) => l.msg === LOG_EVENTS.sending);
      expect(lines.slice(0, first).filter((l) => l.part === 'at' && l.id !== undefined)).toEqual([]);
    } finally {
      await s.stop();
    }
  });

  it('logs a missing modem port without "Error: Error:"', async ({ expect }) => {
    const tb = await Testbed.start({ daemon: false, rawLog: true, config: { modem: { port: '/dev/ttyUSB-mmsd-absent' } } });
    try {
      const d = await tb.startDaemon();
      await d.waitFor((l) => l.msg === 'cannot open the modem port', 15_000, 'the port error');
      const line = d.raw.find((l) => l.includes('"msg":"cannot open the modem port"'))!;
      expect(line).not.toContain('Error: Error:');
      expect(duplicateKeys(line)).toEqual([]);
      expect(JSON.parse(line)).toMatchObject({
        level: 40,
        port: '/dev/ttyUSB-mmsd-absent',
        err: { message: 'No such file or directory, cannot open /dev/ttyUSB-mmsd-absent' },
      });
    } finally {
      await tb.stop();
    }
  });

  it('under journald leads every line with its syslog priority, the rest JSON', async ({ expect }) => {
    const tb = await Testbed.start({ daemon: false });
    const out = join(tb.dir, 'journal.out');
    const fd = openSync(out, 'w');
    try {
      // No front door: the daemon warns once, so the log has warning, info and debug lines.
      const config = JSON.parse(await readFile(tb.configFile, 'utf8')) as Record<string, Record<string, unknown>>;
      config.dbus.enabled = false;
      config.mqtt.enabled = false;
      const file = join(tb.dir, 'journal.json');
      await writeFile(file, JSON.stringify(config));
      // systemd sets JOURNAL_STREAM to the device and inode of the stream it gives as stdout.
      const st = fstatSync(fd);
      const proc = spawn(process.execPath, [MMSD_BIN, '--config', file], {
        env: { ...tb.env, JOURNAL_STREAM: `${st.dev}:${st.ino}` },
        stdio: ['ignore', fd, 'pipe'],
      });
      const exited = new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));
      await until(() => (readFileSync(out, 'utf8').includes('"msg":"ready"') ? true : undefined), 20_000, 'the ready line');
      proc.kill('SIGTERM');
      expect(await within(exited, 15_000, 'mmsd to stop')).toBe(0);

      const lines = readFileSync(out, 'utf8').split('\n').filter((l) => l !== '');
      const seen = new Set<number>();
      for (const line of lines) {
        const m = /^<([0-7])>(\{.*\})$/.exec(line);
        expect(m, line).not.toBeNull();
        const entry = JSON.parse(m![2]) as { level: number };
        expect(Number(m![1]), line).toBe(syslogPriority(entry.level));
        seen.add(Number(m![1]));
      }
      expect([...seen].sort()).toEqual([4, 6, 7]);
      const warnings = lines.filter((l) => l.startsWith('<4>'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain('no front door');
    } finally {
      closeSync(fd);
      await tb.stop();
    }
  });
});
