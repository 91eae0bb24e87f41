// The shipped bus policy dbus/org.example.Mms1.conf, for real: a private dbus-daemon with the
// system bus's default-deny policy including the file, and calls made as other users (root only).
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DbusService } from '../../src/api/dbus/service.js';
import { BUS_NAME, MANAGER_INTERFACE, MANAGER_PATH, MESSAGE_INTERFACE, RECEIVED_INTERFACE, messagePath, receivedPath } from '../../src/api/dbus/names.js';
import { run, startDbusDaemon, systemLikeConfig, type PrivateBus, type Run } from '../helpers/dbus-daemon.js';
import { FakeContext } from '../helpers/fake-context.js';
import { until } from '../../src/harness/wait.js';

const POLICY = fileURLToPath(new URL('../../dbus/org.example.Mms1.conf', import.meta.url));
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const MMSCTL = fileURLToPath(new URL('../../dist/cli/mmsctl.js', import.meta.url));
const SEND_DATA = ['call', BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE, 'SendMessageData', 'asasassa(ssay)a{sv}',
  '1', '+15551234', '0', '0', 'hi', '1', 'a.txt', 'text/plain', '2', '104', '105'];

let daemon: PrivateBus;
let ctx: FakeContext;
let svc: DbusService;
let createdGroup = false;
const member = `mmsdt${randomBytes(3).toString('hex')}`;

/** busctl on the private bus as `user` (group `group`, supplementary groups from the user db). */
function busctlAs(user: string, group: string, ...args: string[]): Promise<Run> {
  const groups = user === 'nobody' ? ['--clear-groups'] : ['--init-groups'];
  return run('setpriv', [`--reuid=${user}`, `--regid=${group}`, ...groups, 'busctl', `--address=${daemon.address}`, ...args]);
}

/** mmsctl (dist/cli/mmsctl.js) on the private bus, as its system bus, as `user`. */
function mmsctlAs(user: string, group: string, ...args: string[]): Promise<Run> {
  const groups = user === 'nobody' ? ['--clear-groups'] : ['--init-groups'];
  return run('setpriv', [`--reuid=${user}`, `--regid=${group}`, ...groups, process.execPath, MMSCTL, '--bus', 'system', ...args], {
    env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: daemon.address },
  });
}

beforeAll(async () => {
  expect(process.getuid?.(), 'the policy test creates a group and a user, and needs root').toBe(0);
  createdGroup = (await run('getent', ['group', 'mms'])).code !== 0;
  expect((await run('groupadd', ['-f', 'mms'])).code).toBe(0);
  const add = await run('useradd', ['--system', '--no-create-home', '--gid', 'mms', '--shell', '/usr/sbin/nologin', member]);
  expect(add.code, add.stderr).toBe(0);

  daemon = await startDbusDaemon((socket) => systemLikeConfig(socket, [POLICY]), { worldAccessible: true });
  ctx = new FakeContext();
  // This process is root: the policy lets root own the name.
  svc = new DbusService({ ctx, bus: 'system', address: daemon.address, logger: pino({ level: 'silent' }) });
  await svc.start();
});

afterAll(async () => {
  await svc?.stop();
  await daemon?.stop();
  await run('userdel', [member]);
  if (createdGroup) await run('groupdel', ['mms']);
});

describe('the shipped bus policy', () => {
  it('denies method calls from a user outside group mms', async () => {
    const send = await busctlAs('nobody', 'nogroup', ...SEND_DATA, '0');
    expect(send.code).not.toBe(0);
    expect(send.stderr).toMatch(/Access denied|Rejected send message/i);
    const cancel = await busctlAs('nobody', 'nogroup', 'call', BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE, 'Cancel', 's', 'x');
    expect(cancel.stderr).toMatch(/Access denied|Rejected send message/i);
    expect(ctx.list()).toHaveLength(0);
  });

  it('lets anyone read properties and introspect', async () => {
    const version = await busctlAs('nobody', 'nogroup', 'get-property', BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE, 'Version');
    expect(version.stderr).toBe('');
    expect(version.stdout.trim()).toBe('s "0.0.0-test"');
    const all = await busctlAs('nobody', 'nogroup', 'call', BUS_NAME, MANAGER_PATH, 'org.freedesktop.DBus.Properties', 'GetAll', 's', MANAGER_INTERFACE);
    expect(all.code, all.stderr).toBe(0);
    const intro = await busctlAs('nobody', 'nogroup', 'introspect', BUS_NAME, MANAGER_PATH);
    expect(intro.code, intro.stderr).toBe(0);
    expect(intro.stdout).toContain('.SendMessageData');
  });

  it('lets a member of group mms send and cancel', async () => {
    const send = await busctlAs(member, 'mms', ...SEND_DATA, '1', 'Id', 's', 'from-member');
    expect(send.stderr).toBe('');
    expect(send.stdout.trim()).toBe(`o "${messagePath('from-member')}"`);
    expect(ctx.get('from-member')?.subject).toBe('hi');
    const cancel = await busctlAs(member, 'mms', 'call', BUS_NAME, messagePath('from-member'), MESSAGE_INTERFACE, 'Cancel');
    expect(cancel.code, cancel.stderr).toBe(0);
    expect(ctx.get('from-member')?.status).toBe('cancelled');
    // …and the other user still may only read that message.
    const status = await busctlAs('nobody', 'nogroup', 'get-property', BUS_NAME, messagePath('from-member'), MESSAGE_INTERFACE, 'Status');
    expect(status.stdout.trim()).toBe('s "cancelled"');
  });

  it('lets only root and members of mms list messages, and anyone show one (ListMessages is a method)', async () => {
    const send = await busctlAs(member, 'mms', ...SEND_DATA, '1', 'Id', 's', 'listed');
    expect(send.code, send.stderr).toBe(0);

    const call = await busctlAs('nobody', 'nogroup', 'call', BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE, 'ListMessages');
    expect(call.stderr).toMatch(/Access denied|Rejected send message/i);
    const list = await mmsctlAs('nobody', 'nogroup', 'list');
    expect(list.code, list.stderr).toBe(3);
    expect(list.stderr).toMatch(/^mmsctl: AccessDenied: .*listing need root or group mms; status and show do not\)\n$/);

    const memberList = await mmsctlAs(member, 'mms', '--json', 'list');
    expect(memberList.code, memberList.stderr).toBe(0);
    expect(memberList.stdout).toContain('"listed"');
    const show = await mmsctlAs('nobody', 'nogroup', '--json', 'show', 'listed');
    expect(show.code, show.stderr).toBe(0);
    expect(JSON.parse(show.stdout)).toMatchObject({ id: 'listed', subject: 'hi' });
    const status = await mmsctlAs('nobody', 'nogroup', 'status');
    expect(status.code, status.stderr).toBe(0);
  });

  it('lets only root and members of mms retrieve or delete a received message, and anyone read it (DESIGN.md §12)', async () => {
    const rec = { id: 'rpolicy', status: 'failed' as const, from: '+4917012345', to: [], cc: [], subject: 'hi', date: 1, size: 10, expiry: 2, parts: [], error: { name: 'HttpStatusError', message: 'get: HTTP 500' } };
    ctx.putReceived(rec);
    await until(async () => (await busctlAs('nobody', 'nogroup', 'get-property', BUS_NAME, receivedPath('rpolicy'), RECEIVED_INTERFACE, 'Status')).stdout.trim() === 's "failed"' || undefined, 5_000, 'the received object');
    for (const method of ['Retrieve', 'Delete']) {
      const denied = await busctlAs('nobody', 'nogroup', 'call', BUS_NAME, receivedPath('rpolicy'), RECEIVED_INTERFACE, method);
      expect(denied.stderr).toMatch(/Access denied|Rejected send message/i);
    }
    const list = await busctlAs('nobody', 'nogroup', 'call', BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE, 'ListReceived');
    expect(list.stderr).toMatch(/Access denied|Rejected send message/i);
    expect(ctx.getReceived('rpolicy')?.status).toBe('failed');
    const retrieve = await busctlAs(member, 'mms', 'call', BUS_NAME, receivedPath('rpolicy'), RECEIVED_INTERFACE, 'Retrieve');
    expect(retrieve.code, retrieve.stderr).toBe(0);
    expect(ctx.getReceived('rpolicy')?.status).toBe('notified');
    const del = await busctlAs(member, 'mms', 'call', BUS_NAME, receivedPath('rpolicy'), RECEIVED_INTERFACE, 'Delete');
    expect(del.code, del.stderr).toBe(0);
    expect(ctx.getReceived('rpolicy')).toBeUndefined();
  });

  it('does not let anyone but root or mmsd own the name', async () => {
    // A dbus-next client run as nobody asks for a name the policy reserves.
    const script = `
      import dbus from 'dbus-next';
      const bus = dbus.sessionBus({ busAddress: process.argv[1] });
      bus.on('error', () => {});
      bus.requestName('${BUS_NAME}', dbus.NameFlag.DO_NOT_QUEUE)
        .then((r) => { console.log('reply ' + r); bus.disconnect(); })
        .catch((e) => { console.log(e.type); bus.disconnect(); });`;
    const r = await run('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', 'node', '--input-type=module', '-e', script, daemon.address], { cwd: REPO });
    expect(r.stdout.trim() || r.stderr).toBe('org.freedesktop.DBus.Error.AccessDenied');
  });
});
