// The daemon's logger: secrets never reach a line, an error that escaped every handler leaves one
// fatal JSON line before the process exits for systemd to restart it, lines carry their syslog
// priority under journald, and the modem side's lines name the message being sent.
import { closeSync, fstatSync, openSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { crashHandler, createLogger, EX_SOFTWARE, isJournalStream, syslogPriority } from '../../src/daemon/logger.js';

function capture(): { lines: Record<string, unknown>[]; stream: Writable } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, stream };
}

function captureRaw(): { text: string[]; stream: Writable } {
  const text: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) text.push(l);
      cb();
    },
  });
  return { text, stream };
}

describe('logger', () => {
  it('redacts passwords wherever the config puts them', () => {
    const { lines, stream } = capture();
    const log = createLogger('info', stream);
    log.info({ config: { pdp: { password: 'hunter2' } }, mqtt: { password: 's3cret' } }, 'config');
    expect(JSON.stringify(lines)).not.toMatch(/hunter2|s3cret/);
    expect(lines[0]).toMatchObject({ mqtt: { password: '[redacted]' } });
  });

  it('takes the user name and password of a data context out of AT lines, answers and errors, at every level', () => {
    const { lines, stream } = capture();
    const log = createLogger('trace', stream).child({ part: 'at' });
    const cmd = 'AT+QICSGP=1,1,"mms.example","alice","hunter2",3';
    log.debug({ at: cmd }, 'tx');
    log.trace({ at: 'AT+QICSGP=2', line: '+QICSGP: 1,"internet","bob","s3cret",1' }, 'rx');
    log.error({ err: Object.assign(new Error(`${cmd}: +CME ERROR: 3`), { command: cmd }) }, 'failed');
    const text = JSON.stringify(lines);
    expect(text).not.toMatch(/hunter2|s3cret|alice|"bob"/);
    expect(lines[0]).toMatchObject({ at: 'AT+QICSGP=1,1,"mms.example","[redacted]","[redacted]",3' });
    expect(lines[1]).toMatchObject({ at: 'AT+QICSGP=2', line: '+QICSGP: 1,"internet","[redacted]","[redacted]",1' });
    expect(lines[2]).toMatchObject({ err: { message: 'AT+QICSGP=1,1,"mms.example","[redacted]","[redacted]",3: +CME ERROR: 3' } });
    expect((lines[2].err as { stack: string }).stack).not.toContain('hunter2');
  });

  it('logs an unhandled rejection as one fatal line with its stack, then exits with EX_SOFTWARE', () => {
    const { lines, stream } = capture();
    const codes: number[] = [];
    const onCrash = crashHandler(createLogger('info', stream), (c) => codes.push(c));
    const err = Object.assign(new Error('AT+CPIN?: +CME ERROR: 10'), { command: 'AT+CPIN?' });
    onCrash(err, 'unhandledRejection');
    expect(codes).toEqual([EX_SOFTWARE]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 60, origin: 'unhandledRejection', err: { message: 'AT+CPIN?: +CME ERROR: 10', command: 'AT+CPIN?' } });
    expect((lines[0].err as { stack: string }).stack).toContain('logger.test');
  });

  it('maps pino levels to syslog priorities: fatal 2, error 3, warn 4, info 6, debug and trace 7', () => {
    expect([60, 50, 40, 30, 20, 10].map(syslogPriority)).toEqual([2, 3, 4, 6, 7, 7]);
  });

  it('leads each line with its priority when writing to the journal, and not otherwise', () => {
    const journal = captureRaw();
    const log = createLogger('debug', journal.stream, { journal: true });
    log.fatal('f');
    log.error('e');
    log.warn('w');
    log.info('i');
    log.debug('d');
    expect(journal.text.map((l) => l.slice(0, 3))).toEqual(['<2>', '<3>', '<4>', '<6>', '<7>']);
    for (const l of journal.text) expect(JSON.parse(l.slice(3))).toHaveProperty('msg');
    const plain = captureRaw();
    createLogger('info', plain.stream).info('i');
    expect(plain.text[0].startsWith('{"level":30,')).toBe(true);
  });

  it('takes JOURNAL_STREAM only when it names the stream it would write to', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mmsd-journal-'));
    const fd = openSync(join(dir, 'out'), 'w');
    try {
      const st = fstatSync(fd);
      expect(isJournalStream({ JOURNAL_STREAM: `${st.dev}:${st.ino}` }, fd)).toBe(true);
      // Inherited by a program whose stdout went elsewhere (a pipe to a test, a file).
      expect(isJournalStream({ JOURNAL_STREAM: `${st.dev}:${st.ino + 1}` }, fd)).toBe(false);
      expect(isJournalStream({ JOURNAL_STREAM: 'garbage' }, fd)).toBe(false);
      expect(isJournalStream({}, fd)).toBe(false);
    } finally {
      closeSync(fd);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('names the message being sent on the lines of the parts that send it, once, and nowhere else', () => {
    const { text, stream } = captureRaw();
    let current: string | undefined = 'm-1';
    const log = createLogger('debug', stream, { currentMessage: () => current });
    log.child({ part: 'at' }).debug({ at: 'AT+QMMSEND=300' }, 'tx');
    log.child({ part: 'modem' }).info({ err: 0 }, 'AT+QMMSEND result');
    log.child({ part: 'sender' }).info({ id: 'm-1', attempt: 1 }, 'sending');
    log.child({ part: 'outbox' }).info({ id: 'm-2' }, 'message queued');
    log.child({ part: 'dbus' }).info('D-Bus interface up');
    current = undefined;
    log.child({ part: 'at' }).debug({ at: 'AT+CSQ' }, 'tx');
    const lines = text.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.id)).toEqual(['m-1', 'm-1', 'm-1', 'm-2', undefined, undefined]);
    // Once: the field is merged into the line, not appended beside the line's own.
    expect(text.every((l) => l.split('"id":').length <= 2)).toBe(true);
    // And no `name` from the logger: a line's own `name` (an error's, a bus name's) is the only one.
    expect(lines.every((l) => !('name' in l))).toBe(true);
  });

  it('logs an error whose message repeats "Error: " (serialport) without "Error: Error:", the stack in its own field', () => {
    const { text, stream } = captureRaw();
    const err = new Error('Error: No such file or directory, cannot open /dev/ttyUSB2');
    createLogger('info', stream).warn({ err, port: '/dev/ttyUSB2' }, 'cannot open the modem port');
    expect(text[0]).not.toContain('Error: Error:');
    const line = JSON.parse(text[0]) as { err: { type: string; message: string; stack: string } };
    expect(line.err.type).toBe('Error');
    expect(line.err.message).toBe('No such file or directory, cannot open /dev/ttyUSB2');
    expect(line.err.stack.split('\n')[0]).toBe('Error: No such file or directory, cannot open /dev/ttyUSB2');
    expect(line.err.stack.split('\n')[1]).toMatch(/^\s+at /);
  });
});
