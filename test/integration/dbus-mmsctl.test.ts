// mmsctl, built and run as a process against DbusService on a private bus with the fake context:
// commands, output, --wait and its exit codes (docs/dbus.md).
import { spawn } from 'node:child_process';
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { MessageRecord } from '../../src/core/message.js';
import { DbusService } from '../../src/api/dbus/service.js';
import { run, startDbusDaemon, waitFor, type PrivateBus, type Run } from '../helpers/dbus-daemon.js';
import { FakeContext } from '../helpers/fake-context.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const MMSCTL = join(REPO, 'dist/cli/mmsctl.js');

let daemon: PrivateBus;
let files: string;
let allowed: string;
let ctx: FakeContext;
let svc: DbusService;
/** What the fake "sender" does with each new message. */
let onAdded: (r: MessageRecord) => void = () => undefined;

beforeAll(async () => {
  await access(MMSCTL); // built by test/global-setup.ts
  daemon = await startDbusDaemon();
  files = await mkdtemp(join(tmpdir(), 'mmsctl-files-'));
  allowed = join(files, 'incoming');
  await mkdir(allowed);
}, 180_000);

afterAll(async () => {
  await daemon?.stop();
  await rm(files, { recursive: true, force: true });
});

beforeEach(async () => {
  ctx = new FakeContext({ allowedDirs: [allowed] });
  ctx.on('added', (r: MessageRecord) => setImmediate(() => onAdded(r)));
  svc = new DbusService({ ctx, bus: 'session', address: daemon.address, logger: pino({ level: 'silent' }) });
  await svc.start();
});

afterEach(async () => {
  onAdded = () => undefined;
  await svc.stop();
});

function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, DBUS_SESSION_BUS_ADDRESS: daemon.address, ...extra };
}

function mmsctl(...args: string[]): Promise<Run> {
  return run('node', [MMSCTL, '--bus', 'session', ...args], { env: env() });
}

/** Drive a message from queued through sending to a final state. */
function finishAs(status: 'sent' | 'failed' | 'unknown' | 'cancelled', error?: MessageRecord['error']) {
  return (r: MessageRecord): void => {
    ctx.patch(r.id, { status: 'sending', attempts: 1 });
    ctx.patch(r.id, { progress: 1 });
    ctx.patch(r.id, error ? { status, error } : { status });
  };
}

describe('mmsctl', () => {
  it('send --wait exits 0 when the message is sent, reading the attachment itself', async () => {
    const file = join(files, 'photo.jpg');
    await writeFile(file, Buffer.from([1, 2, 3, 4]));
    onAdded = finishAs('sent');
    const r = await mmsctl('send', '--to', '+15551234', '--subject', 'hi', '--attach', `${file}:image/jpeg`, '--id', 'w1', '--wait');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('sent w1');
    expect(ctx.received[0].attachments).toEqual([{ name: 'photo.jpg', contentType: 'image/jpeg', data: Buffer.from([1, 2, 3, 4]) }]);
  });

  it.each([
    ['failed', 1, { code: 765, name: 'Server response failed', httpStatus: 500 }, '765 Server response failed (HTTP 500)'],
    ['unknown', 4, undefined, 'unknown'],
    ['cancelled', 5, undefined, 'cancelled'],
  ] as const)('send --wait exits non-zero when the message ends %s', async (status, code, error, text) => {
    onAdded = finishAs(status, error);
    const r = await mmsctl('send', '--to', '+15551234', '--id', `e-${status}`, '--wait');
    expect(r.code, JSON.stringify(r)).toBe(code);
    expect(r.stderr).toContain(`message e-${status} ${status}`);
    expect(r.stderr).toContain(text);
  });

  it('send --wait follows progress with plain lines when stdout is not a terminal', async () => {
    const child = spawn('node', [MMSCTL, '--bus', 'session', 'send', '--to', '+15551234', '--id', 'p1', '--wait'], { env: env() });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    onAdded = (r) => ctx.patch(r.id, { status: 'sending', attempts: 1 });
    // Once it printed "sending" it is subscribed; drive the upload from there.
    await waitFor(() => (out.includes('p1: sending') ? true : undefined), 15_000, 'mmsctl to show sending');
    ctx.patch('p1', { progress: 0.5 });
    ctx.patch('p1', { progress: 1 });
    ctx.patch('p1', { status: 'sent' });
    expect(await exited).toBe(0);
    expect(out.split('\n')).toEqual(
      expect.arrayContaining(['p1: sending (attempt 1 of 5)', 'p1: uploading 50%', 'p1: uploading 100%', 'p1: sent (attempt 1)', 'sent p1']),
    );
  });

  it('send --wait shows a progress bar on a terminal', async () => {
    // script(1) gives mmsctl a pty as stdout.
    const cmd = `node ${MMSCTL} --bus session send --to +15551234 --id tty1 --wait`;
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { env: env() });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    onAdded = (r) => ctx.patch(r.id, { status: 'sending', attempts: 1, progress: 0.1 });
    await waitFor(() => (/uploading \[[█░]+\] 10%/.test(out) ? true : undefined), 15_000, 'the bar at 10%');
    ctx.patch('tty1', { progress: 0.6 });
    await waitFor(() => (/uploading \[[█░]+\] 60%/.test(out) ? true : undefined), 15_000, 'the bar at 60%');
    ctx.patch('tty1', { status: 'sent', progress: 1 });
    expect(await exited).toBe(0);
    expect(out).toContain('sent tty1');
    expect(out).not.toContain('uploading 10%'); // no plain progress lines on a terminal
  });

  it('send --json prints the id, path and status', async () => {
    const r = await mmsctl('send', '--to', '+15551234', '--id', 'j1', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ id: 'j1', path: '/org/example/Mms1/message/j1', status: 'queued' });
  });

  it('send prints queued, the status mmsd recorded when it took the message, even if sending began at once', async () => {
    // The sender picks the message up as soon as it is queued, before mmsctl could read it back.
    onAdded = (r) => ctx.patch(r.id, { status: 'sending', attempts: 1 });
    const r = await mmsctl('send', '--to', '+15551234', '--id', 'q1');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('queued q1\n');
    expect(ctx.get('q1')!.status).toBe('sending');
    // The same id again queues nothing: mmsctl says so, with the message's current status.
    const again = await mmsctl('send', '--to', '+15551234', '--id', 'q1');
    expect(again.code).toBe(0);
    expect(again.stdout).toBe('sending q1 (the id was already known: nothing new was queued)\n');
    const json = await mmsctl('send', '--to', '+15551234', '--id', 'q1', '--json');
    expect(JSON.parse(json.stdout)).toEqual({ id: 'q1', path: '/org/example/Mms1/message/q1', status: 'sending', known: true });
  });

  it('show and --wait say which attempt a retrying message is at and when it is tried next', async () => {
    await ctx.submit({ id: 'rt1', to: ['+15551234'] });
    const next = Date.now() + 125_000;
    ctx.patch('rt1', { status: 'retrying', attempts: 3, notBefore: next, error: { code: 765, name: 'Server response failed' } });
    const clock = (t: number): string => new Date(t).toTimeString().slice(0, 8);
    const show = await mmsctl('show', 'rt1');
    expect(show.stdout).toContain(`status:        retrying (attempt 3 of 5, next try in 2 min at ${clock(next)})\n`);
    expect(JSON.parse((await mmsctl('show', 'rt1', '--json')).stdout)).toMatchObject({ status: 'retrying', attempts: 3, nextAttempt: next });

    const child = spawn('node', [MMSCTL, '--bus', 'session', 'send', '--to', '+15551234', '--id', 'rt2', '--wait'], { env: env() });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    await waitFor(() => (out.includes('rt2: queued') ? true : undefined), 15_000, 'mmsctl to follow rt2');
    const later = Date.now() + 30_000;
    ctx.patch('rt2', { status: 'sending', attempts: 3 });
    ctx.patch('rt2', { status: 'retrying', notBefore: later, error: { code: 765, name: 'Server response failed' } });
    await waitFor(() => (out.includes('rt2: retrying') ? true : undefined), 15_000, 'the retrying line');
    ctx.patch('rt2', { status: 'cancelled' });
    expect(await exited).toBe(5);
    expect(out).toMatch(new RegExp(`rt2: retrying \\(attempt 3 of 5, next try in (29|30) s at ${clock(later)}\\) — 765 Server response failed\n`));
  });

  it('show of an unknown message says what to do; resend sends it again as a new message', async () => {
    const file = join(files, 'door.jpg');
    await writeFile(file, Buffer.from([0xff, 0xd8, 0xff, 9]));
    onAdded = finishAs('unknown', { code: 775, name: 'Timeout' });
    const first = await mmsctl('send', '--to', '+15551234', '--cc', 'a@example.com', '--subject', 'door', '--attach', file, '--priority', '1', '--id', 'un1', '--wait');
    expect(first.code).toBe(4);
    expect(first.stderr).toBe('mmsctl: message un1 unknown: 775 Timeout — the MMSC may or may not have it; `mmsctl resend un1` sends it again\n');
    const show = await mmsctl('show', 'un1');
    expect(show.stdout).toContain('status:        unknown (attempt 1): the MMSC may or may not have it; `mmsctl resend un1` sends it again\n');

    onAdded = () => undefined;
    const r = await mmsctl('resend', 'un1');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('queued un1-resend-1 (a resend of un1)\n');
    expect(ctx.get('un1-resend-1')).toMatchObject({ to: ['+15551234'], cc: ['a@example.com'], subject: 'door', options: { priority: 1 } });
    expect(ctx.attachments.get('un1-resend-1')).toEqual([{ name: 'door.jpg', contentType: 'image/jpeg', data: Buffer.from([0xff, 0xd8, 0xff, 9]) }]);

    onAdded = finishAs('sent');
    const waited = await mmsctl('resend', 'un1', '--id', 'un1-b', '--wait');
    expect(waited.code, waited.stderr).toBe(0);
    expect(waited.stdout).toContain('sent un1-b');

    // Refused by name: a message still under way, one that is gone, lost bytes; usage errors.
    const busy = await mmsctl('resend', 'un1-resend-1');
    expect(busy.code).toBe(3);
    expect(busy.stderr).toMatch(/^mmsctl: NotResendable: message un1-resend-1 is queued/);
    expect((await mmsctl('resend', 'nope')).stderr).toMatch(/^mmsctl: NotFound: /);
    ctx.attachments.delete('un1');
    const lost = await mmsctl('resend', 'un1');
    expect(lost.code).toBe(3);
    expect(lost.stderr).toContain('no longer in the spool');
    expect((await mmsctl('resend', 'un1', '--subject', 'changed')).code).toBe(2);
  });

  it('send --path lets the daemon read the file', async () => {
    const file = join(allowed, 'doc.txt');
    await writeFile(file, 'text');
    const r = await mmsctl('send', '--to', '+15551234', '--attach', file, '--path');
    expect(r.code, r.stderr).toBe(0);
    expect(ctx.received[0].attachments).toEqual([{ path: file }]);
    expect(ctx.list()).toHaveLength(1);
  });

  it('exits 3 with the error name when mmsd refuses the request, and queues nothing', async () => {
    const r = await mmsctl('send', '--to', 'not-a-number');
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^mmsctl: InvalidRecipient: /);
    const outside = await mmsctl('send', '--to', '+15551234', '--attach', join(files, 'x.txt'), '--path');
    expect(outside.code).toBe(3);
    expect(outside.stderr).toContain('AttachmentNotAllowed');
    expect(ctx.list()).toHaveLength(0);
  });

  it('exits 2 on usage errors', async () => {
    expect((await mmsctl('send')).code).toBe(2);
    expect((await mmsctl('send', '--to', '+1555', '--bogus')).code).toBe(2);
    expect((await mmsctl('frobnicate')).code).toBe(2);
    expect((await mmsctl('show')).code).toBe(2);
    expect((await mmsctl('send', '--to', '+15551234', '--validity', 'high')).code).toBe(2);
    const unreadable = await mmsctl('send', '--to', '+15551234', '--attach', join(files, 'missing.bin'));
    expect(unreadable.code).toBe(2);
    expect(unreadable.stderr).toContain('cannot read');
    expect(ctx.received).toHaveLength(0);
  });

  it('exits 6 with one plain line when it cannot reach the bus or mmsd', async () => {
    const noSocket = await run('node', [MMSCTL, 'status'], {
      env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${join(files, 'no-such-socket')}` },
    });
    expect(noSocket.code).toBe(6);
    expect(noSocket.stderr).toBe(`mmsctl: cannot reach the system bus: ${join(files, 'no-such-socket')} does not exist (is dbus running?)\n`);
    // No session bus at all (a root shell on a gateway): not an X11 DISPLAY error, not exit 1.
    const noSession: NodeJS.ProcessEnv = { ...process.env };
    delete noSession.DBUS_SESSION_BUS_ADDRESS;
    delete noSession.DISPLAY;
    const session = await run('node', [MMSCTL, '--bus', 'session', 'status'], { env: noSession });
    expect(session.code).toBe(6);
    expect(session.stderr).toBe('mmsctl: cannot reach the session bus: DBUS_SESSION_BUS_ADDRESS is not set\n');
    await svc.stop();
    const noDaemon = await mmsctl('status');
    expect(noDaemon.code).toBe(6);
    expect(noDaemon.stderr).toContain('cannot reach mmsd');
    await svc.start();
  });

  it('status, list, show and cancel print what the daemon holds', async () => {
    ctx.status = { state: 'ready', registration: 'home', operator: 'Acme', signal: 23 };
    await ctx.submit({ id: 's1', to: ['+15551234'], subject: 'one' });
    const status = await mmsctl('status', '--json');
    expect(JSON.parse(status.stdout)).toEqual({
      modemState: 'ready',
      registration: 'home',
      operator: 'Acme',
      signal: 23,
      queueLength: 1,
      version: '0.0.0-test',
      carrier: expect.objectContaining({ source: 'database', provider: 'LUXGSM (270-01)' }),
    });
    const text = (await mmsctl('status')).stdout;
    expect(text).toContain('signal:       23/31');
    expect(text).toContain('carrier:      LUXGSM (270-01) (carrier database)');

    const list = await mmsctl('list', '--json');
    expect((JSON.parse(list.stdout) as { id: string; status: string }[]).map((m) => [m.id, m.status])).toEqual([['s1', 'queued']]);
    expect((await mmsctl('list')).stdout).toMatch(/^ID\s+STATUS.*\ns1\s+queued/);

    const show = await mmsctl('show', 's1', '--json');
    expect(JSON.parse(show.stdout)).toMatchObject({ id: 's1', status: 'queued', subject: 'one', to: ['+15551234'] });
    const missing = await mmsctl('show', 'nope');
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('NotFound');

    const cancel = await mmsctl('cancel', 's1');
    expect(cancel.code).toBe(0);
    expect(ctx.get('s1')!.status).toBe('cancelled');
    const again = await mmsctl('cancel', 's1');
    expect(again.code).toBe(3);
    expect(again.stderr).toContain('NotCancellable');
  });

  it('carrier prints the settings in force, and for an ambiguous SIM the config line of each candidate', async () => {
    const one = await mmsctl('carrier');
    expect(one.code).toBe(0);
    expect(one.stdout).toBe(
      [
        'source:    database',
        'provider:  LUXGSM (270-01)',
        'network:   270-01',
        'apn:       mms.pt.lu',
        'mmsc:      http://mmsc.pt.lu',
        'proxy:     194.154.192.88:8080',
        'max size:  307200 bytes',
        'why:       LUXGSM (270-01) is the only provider of 270-01 with an MMSC',
        '',
      ].join('\n'),
    );
    const candidates = ['Orange (208-01)', 'TEN (208-01)'].map((p) => ({ provider: p, apn: 'x', mmsc: 'http://x', configLine: `"carrier": {"provider": "${p}"}` }));
    ctx.setCarrier({ source: 'ambiguous', provider: '', mccMnc: '208-01', apn: '', mmsc: '', proxy: '', candidates, reason: '2 candidates of 208-01 remain' });
    const amb = await mmsctl('carrier');
    expect(amb.stdout).toContain('source:    ambiguous\n');
    expect(amb.stdout).toContain('  "carrier": {"provider": "Orange (208-01)"}\n  "carrier": {"provider": "TEN (208-01)"}\n');
    const json = await mmsctl('carrier', '--json');
    expect(JSON.parse(json.stdout)).toMatchObject({ source: 'ambiguous', mccMnc: '208-01', candidates: candidates.map((c) => c.configLine) });
    expect((await mmsctl('status')).stdout).toContain('carrier:      ambiguous: mmsctl carrier says what to set');
  });

  it('uses the system bus by default, honouring DBUS_SYSTEM_BUS_ADDRESS', async () => {
    const r = await run('node', [MMSCTL, 'status', '--json'], { env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: daemon.address } });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ version: '0.0.0-test' });
  });

  it('runs the busctl and mmsctl examples of docs/dbus.md verbatim', async () => {
    const doc = await readFile(join(REPO, 'docs/dbus.md'), 'utf8');
    const example = (name: string): string => {
      const m = new RegExp(`<!-- example: ${name} -->\\s*\`\`\`sh\\n([\\s\\S]*?)\`\`\``).exec(doc);
      expect(m, name).not.toBeNull();
      return m![1];
    };
    // `mmsctl` on PATH is the built one; both talk to the "system" bus, which is ours here.
    const bin = join(files, 'bin');
    await mkdir(bin, { recursive: true });
    await writeFile(join(bin, 'mmsctl'), `#!/bin/sh\nexec node ${MMSCTL} "$@"\n`, { mode: 0o755 });
    const shEnv = { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: daemon.address, PATH: `${bin}:${process.env.PATH ?? ''}` };

    const viaBusctl = await run('sh', ['-ec', example('busctl')], { env: shEnv });
    expect(viaBusctl.code, viaBusctl.stderr).toBe(0);
    expect(viaBusctl.stdout.trim()).toBe('o "/org/example/Mms1/message/doc_2dexample_2d1"');
    expect(ctx.attachments.get('doc-example-1')!.map((a) => a.data)).toEqual([Buffer.from('hi\n')]);

    onAdded = finishAs('sent');
    const viaMmsctl = await run('sh', ['-ec', example('mmsctl')], { env: shEnv });
    expect(viaMmsctl.code, viaMmsctl.stderr).toBe(0);
    expect(viaMmsctl.stdout).toContain('sent doc-example-2');
    expect(ctx.get('doc-example-2')).toMatchObject({ subject: 'Hello', to: ['+15551234567'] });
  });

  it('documents its exit codes in --help', async () => {
    const r = await mmsctl('--help');
    expect(r.code).toBe(0);
    for (const line of ['0  done', '1  the message failed', '2  usage error', '3  refused', '4  the message', '5  the message was cancelled', '6  cannot reach mmsd or the bus', 'resend ID']) {
      expect(r.stdout).toContain(line);
    }
  });
});
