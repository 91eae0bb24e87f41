// The daemon's extensions (src/daemon/doors.ts): the front doors start in order after the core and
// stop in reverse; a door whose start() failed is not stopped, and one whose stop() fails is logged
// and does not keep the others up.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Extensions, type Extension } from '../../src/daemon/doors.js';

class StartFailed extends Error {}

function recorder(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

function door(name: string, calls: string[], o: { failStart?: boolean; failStop?: boolean } = {}): Extension {
  return {
    name,
    start: () => {
      calls.push(`start ${name}`);
      return o.failStart ? Promise.reject(new StartFailed(`${name} cannot start`)) : Promise.resolve();
    },
    stop: () => {
      calls.push(`stop ${name}`);
      return o.failStop ? Promise.reject(new Error(`${name} cannot stop`)) : Promise.resolve();
    },
    isStartError: (err) => err instanceof StartFailed,
  };
}

describe('Extensions', () => {
  it('starts the doors in order and stops them in reverse, each once', async () => {
    const calls: string[] = [];
    const ext = new Extensions([door('dbus', calls), door('mqtt', calls)], recorder().logger);
    await ext.start();
    await ext.stop();
    await ext.stop();
    expect(calls).toEqual(['start dbus', 'start mqtt', 'stop mqtt', 'stop dbus']);
  });

  it('stops only the doors that started when a later one fails, and names that failure an environment error', async () => {
    const calls: string[] = [];
    const ext = new Extensions([door('dbus', calls), door('mqtt', calls, { failStart: true })], recorder().logger);
    const err = await ext.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StartFailed);
    expect(ext.isStartError(err)).toBe(true);
    expect(ext.isStartError(new Error('a bug'))).toBe(false);
    await ext.stop();
    expect(calls).toEqual(['start dbus', 'start mqtt', 'stop dbus']);
  });

  it('logs a door whose stop fails by name and goes on to stop the others', async () => {
    const calls: string[] = [];
    const { logger, lines } = recorder();
    const ext = new Extensions([door('dbus', calls), door('mqtt', calls, { failStop: true })], logger);
    await ext.start();
    await ext.stop();
    expect(calls).toEqual(['start dbus', 'start mqtt', 'stop mqtt', 'stop dbus']);
    expect(lines).toEqual([expect.objectContaining({ level: 40, msg: 'stop failed', door: 'mqtt', err: 'mqtt cannot stop' })]);
  });
});
