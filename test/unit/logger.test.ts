// The daemon's logger: secrets never reach a line, and an error that escaped every handler
// leaves one fatal JSON line before the process exits for systemd to restart it.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { crashHandler, createLogger, EX_SOFTWARE } from '../../src/daemon/logger.js';

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

describe('logger', () => {
  it('redacts passwords wherever the config puts them', () => {
    const { lines, stream } = capture();
    const log = createLogger('info', stream);
    log.info({ config: { pdp: { password: 'hunter2' } }, mqtt: { password: 's3cret' } }, 'config');
    expect(JSON.stringify(lines)).not.toMatch(/hunter2|s3cret/);
    expect(lines[0]).toMatchObject({ mqtt: { password: '[redacted]' } });
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
});
