// mmsctl watch and send --wait when the bus itself goes away (dbus-daemon killed): neither mmsd's
// NameOwnerChanged nor a socket 'error' arrives then, so they must notice the closed connection and
// exit 6 with a message, not hang (docs/dbus.md). Each test has its own private bus, killed in it.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DbusService } from '../../src/api/dbus/service.js';
import { startDbusDaemon, waitFor, type PrivateBus } from '../helpers/dbus-daemon.js';
import { FakeContext } from '../helpers/fake-context.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const MMSCTL = join(REPO, 'dist/cli/mmsctl.js');

let bus: PrivateBus;
let ctx: FakeContext;
let svc: DbusService;
const children: ChildProcessWithoutNullStreams[] = [];

interface Spawned {
  child: ChildProcessWithoutNullStreams;
  out: () => string;
  err: () => string;
}

function mmsctl(...args: string[]): Spawned {
  const child = spawn('node', [MMSCTL, '--bus', 'session', ...args], { env: { ...process.env, DBUS_SESSION_BUS_ADDRESS: bus.address } });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return { child, out: () => out, err: () => err };
}

/** The exit code, once the process has ended; the deadline fails the test if it hangs. */
function exitOf(p: Spawned, what: string): Promise<number | null> {
  return waitFor(() => (p.child.exitCode !== null || p.child.signalCode !== null ? { code: p.child.exitCode } : undefined), 10_000, what).then((r) => r.code);
}

beforeAll(async () => {
  await access(MMSCTL); // built by test/global-setup.ts
});

beforeEach(async () => {
  bus = await startDbusDaemon();
  ctx = new FakeContext();
  svc = new DbusService({ ctx, bus: 'session', address: bus.address, logger: pino({ level: 'silent' }) });
  await svc.start();
});

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) process.kill(c.pid!, 'SIGKILL');
  await svc.stop();
  await bus.stop();
});

describe('mmsctl when the bus dies', () => {
  it('watch exits 6 with a message when dbus-daemon is killed', async () => {
    const watch = mmsctl('watch');
    await waitFor(() => (watch.err().includes('watching mmsd') ? true : undefined), 15_000, 'mmsctl watch to listen');
    process.kill(bus.pid, 'SIGKILL');
    expect(await exitOf(watch, 'mmsctl watch to end after the bus died')).toBe(6);
    expect(watch.err()).toContain('mmsctl: lost the bus: it closed the connection (dbus-daemon stopped or restarted)');
  });

  it('send --wait exits 6 with a message when dbus-daemon is killed while it waits', async () => {
    ctx.on('added', (r) => setImmediate(() => ctx.patch(r.id, { status: 'sending', attempts: 1 })));
    const send = mmsctl('send', '--to', '+15551234', '--id', 'lost1', '--wait');
    await waitFor(() => (send.out().includes('lost1: sending') ? true : undefined), 15_000, 'mmsctl to show sending');
    process.kill(bus.pid, 'SIGKILL');
    expect(await exitOf(send, 'mmsctl send --wait to end after the bus died')).toBe(6);
    expect(send.err()).toContain('mmsctl: lost the bus: it closed the connection (dbus-daemon stopped or restarted) while waiting for /org/example/Mms1/message/lost1');
    expect(send.err()).toContain('the message stays in the outbox (mmsctl show ID)');
  });
});
