// DbusService on a real private dbus-daemon, driven through busctl and a dbus-next client, with the
// fake FrontDoorContext behind it (DESIGN.md §4).
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dbus from 'dbus-next';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RequestError, REQUEST_ERROR_NAMES } from '../../src/core/errors.js';
import { MESSAGE_PROPERTIES } from '../../src/api/dbus/convert.js';
import { BusClosedError, DbusService } from '../../src/api/dbus/service.js';
import { LOG_EVENTS } from '../../src/core/log-events.js';
import { until } from '../../src/harness/wait.js';
import { BUS_NAME, MANAGER_INTERFACE, MANAGER_PATH, MESSAGE_INTERFACE, RECEIVED_INTERFACE, messagePath, receivedPath } from '../../src/api/dbus/names.js';
import {
  busctl,
  connect,
  errorOf,
  getProperty,
  rawCall,
  run,
  startDbusDaemon,
  waitFor,
  type Bus,
  type PrivateBus,
  type Run,
} from '../helpers/dbus-daemon.js';
import { FakeContext } from '../helpers/fake-context.js';

const { Variant } = dbus;
const PROPERTIES_IFACE = 'org.freedesktop.DBus.Properties';
const SEND_DATA_SIG = 'asasassa(ssay)a{sv}';
const SEND_PATH_SIG = 'asasassa(ss)a{sv}';

let daemon: PrivateBus;
let files: string;
let allowed: string;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  daemon = await startDbusDaemon();
  files = await mkdtemp(join(tmpdir(), 'mmsd-dbus-files-'));
  allowed = join(files, 'incoming');
  await mkdir(allowed);
});

afterAll(async () => {
  await daemon.stop();
  await rm(files, { recursive: true, force: true });
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function startService(opts: { maxMessageBytes?: number; ctx?: FakeContext } = {}): Promise<{ ctx: FakeContext; svc: DbusService }> {
  const ctx = opts.ctx ?? new FakeContext({ allowedDirs: [allowed], maxMessageBytes: opts.maxMessageBytes });
  const svc = new DbusService({ ctx, bus: 'session', address: daemon.address, logger: pino({ level: 'silent' }) });
  await svc.start();
  cleanups.push(() => svc.stop());
  return { ctx, svc };
}

async function client(): Promise<Bus> {
  const bus = await connect(daemon.address);
  cleanups.push(() => bus.disconnect());
  return bus;
}

/** busctl's argument form of SendMessageData with one 3-byte text attachment. */
function busctlSendData(to: string[], subject: string, opts: string[] = ['0']): string[] {
  return [
    'call', BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE, 'SendMessageData', SEND_DATA_SIG,
    String(to.length), ...to, '0', '0', subject,
    '1', 'note.txt', 'text/plain', '3', '104', '105', '10',
    ...opts,
  ];
}

describe('DbusService on a private bus', () => {
  it('queues a SendMessageData call from busctl with the bytes intact and returns the object path', async () => {
    const { ctx } = await startService();
    const r = await busctl(daemon.address, ...busctlSendData(['+15551234'], 'hello', ['1', 'Id', 's', 'order-7']));
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('o "/org/example/Mms1/message/order_2d7"');
    const record = ctx.get('order-7')!;
    expect(record.to).toEqual(['+15551234']);
    expect(record.subject).toBe('hello');
    expect(ctx.attachments.get('order-7')!.map((a) => a.data)).toEqual([Buffer.from('hi\n')]);
    expect(record.attachments[0]).toMatchObject({ name: 'note.txt', contentType: 'text/plain', size: 3 });
  });

  it('passes SendMessage path attachments to the context, "" type meaning guess', async () => {
    const { ctx } = await startService();
    const file = join(allowed, 'pic.jpg');
    await writeFile(file, Buffer.from([0xff, 0xd8, 0xff]));
    const r = await busctl(daemon.address, 'call', BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE, 'SendMessage', SEND_PATH_SIG,
      '1', '+15551234', '0', '0', '', '2', file, '', file, 'image/jpeg', '0');
    expect(r.code).toBe(0);
    expect(ctx.received.at(-1)!.attachments).toEqual([{ path: file }, { path: file, contentType: 'image/jpeg' }]);
    expect(ctx.list()).toHaveLength(1);
  });

  it('converts every option to the raw request (Id s, Validity u, DeliveryReport b …)', async () => {
    const { ctx } = await startService();
    const bus = await client();
    const options = {
      Id: new Variant('s', 'opt-1'),
      Validity: new Variant('u', 3),
      Priority: new Variant('u', 1),
      DeliveryReport: new Variant('b', true),
      ReadReport: new Variant('b', false),
      Visibility: new Variant('u', 2),
      Class: new Variant('u', 0),
      Timeout: new Variant('u', 120),
    };
    const [path] = await rawCall(bus, MANAGER_PATH, MANAGER_INTERFACE, 'SendMessageData', SEND_DATA_SIG, [['+15551234'], [], [], 's', [], options]);
    expect(path).toBe(messagePath('opt-1'));
    expect(ctx.received.at(-1)).toMatchObject({
      id: 'opt-1',
      options: { validity: 3, priority: 1, deliveryReport: true, readReport: false, visibility: 2, class: 0, timeout: 120 },
    });
  });

  it('reads every manager property with busctl get-property', async () => {
    const { ctx } = await startService();
    ctx.status = { state: 'registered', registration: 'roaming', operator: 'Acme', signal: 17 };
    await ctx.submit({ to: ['+15550001'] });
    const expected: Record<string, { type: string; data: unknown }> = {
      ModemState: { type: 's', data: 'registered' },
      Registration: { type: 's', data: 'roaming' },
      Operator: { type: 's', data: 'Acme' },
      SignalQuality: { type: 'i', data: 17 },
      QueueLength: { type: 'u', data: 1 },
      MaxAttempts: { type: 'u', data: 5 },
      Version: { type: 's', data: '0.0.0-test' },
    };
    for (const [name, want] of Object.entries(expected)) {
      expect(await getProperty(daemon.address, MANAGER_PATH, MANAGER_INTERFACE, name), name).toEqual(want);
    }
  });

  it('reads every message property with busctl get-property, Error as "<code> <name>"', async () => {
    const { ctx } = await startService();
    const { record } = await ctx.submit({ id: 'p1', to: ['+15550001'], cc: ['a@example.com'], subject: 'Grüße' });
    ctx.patch('p1', {
      status: 'retrying',
      attempts: 2,
      progress: 0.25,
      notBefore: 1_700_000_120_000,
      error: { code: 765, name: 'Server response failed', httpStatus: 500, mmscResponse: 'Error-service-denied' },
    });
    const path = messagePath('p1');
    const expected: Record<string, { type: string; data: unknown }> = {
      Id: { type: 's', data: 'p1' },
      Status: { type: 's', data: 'retrying' },
      To: { type: 'as', data: ['+15550001'] },
      Cc: { type: 'as', data: ['a@example.com'] },
      Bcc: { type: 'as', data: [] },
      Subject: { type: 's', data: 'Grüße' },
      Attempts: { type: 'u', data: 2 },
      Progress: { type: 'd', data: 0.25 },
      Error: { type: 's', data: '765 Server response failed' },
      HttpStatus: { type: 'u', data: 500 },
      MmscResponse: { type: 's', data: 'Error-service-denied' },
      Created: { type: 't', data: record.created },
      Updated: { type: 't', data: record.updated + 1 },
      NextAttempt: { type: 't', data: 1_700_000_120_000 },
    };
    for (const [name, want] of Object.entries(expected)) {
      expect(await getProperty(daemon.address, path, MESSAGE_INTERFACE, name), name).toEqual(want);
    }
    // Only while retrying: 0 once it is under way again.
    ctx.patch('p1', { status: 'sending', attempts: 3 });
    expect(await getProperty(daemon.address, path, MESSAGE_INTERFACE, 'NextAttempt')).toEqual({ type: 't', data: 0 });
  });

  it('Resend queues an unknown message again under a new id, and refuses what it cannot resend by name', async () => {
    const { ctx } = await startService();
    await ctx.submit({ id: 'u1', to: ['+15550001'], subject: 'again', attachments: [{ name: 'a.txt', data: Buffer.from('hi') }], options: { priority: 1 } });
    ctx.patch('u1', { status: 'unknown', attempts: 1 });
    const resend = (id: string, newId: string): string[] => ['call', BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE, 'Resend', 'ss', id, newId];

    const r = await busctl(daemon.address, ...resend('u1', ''));
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(`o "${messagePath('u1-resend-1')}"`);
    expect(ctx.get('u1-resend-1')).toMatchObject({ status: 'queued', to: ['+15550001'], subject: 'again', options: { priority: 1 } });
    expect(ctx.attachments.get('u1-resend-1')).toEqual(ctx.attachments.get('u1'));
    expect((await busctl(daemon.address, ...resend('u1', 'mine'))).stdout.trim()).toBe(`o "${messagePath('mine')}"`);
    expect((await busctl(daemon.address, ...resend('u1', ''))).stdout.trim()).toBe(`o "${messagePath('u1-resend-2')}"`);

    // The new id goes through the same validation as SendMessage's Id.
    const bad = await busctl(daemon.address, ...resend('u1', 'no spaces'));
    expect(bad.stderr).toContain('id must be 1–64 characters');
    const sent = await busctl(daemon.address, ...resend('u1-resend-1', ''));
    expect(sent.code).not.toBe(0);
    expect(sent.stderr).toContain('is queued');
    const bus = await client();
    expect(await errorOf(rawCall(bus, MANAGER_PATH, MANAGER_INTERFACE, 'Resend', 'ss', ['u1-resend-1', '']))).toMatchObject({
      type: 'org.example.Mms1.Error.NotResendable',
    });
    expect(await errorOf(rawCall(bus, MANAGER_PATH, MANAGER_INTERFACE, 'Resend', 'ss', ['nope', '']))).toMatchObject({
      type: 'org.example.Mms1.Error.NotFound',
    });
  });

  it('answers each bad request with its named error, for busctl and dbus-next alike, and queues nothing', async () => {
    const { ctx } = await startService({ maxMessageBytes: 100 });
    const bus = await client();
    const outside = join(files, 'secret.txt');
    await writeFile(outside, 'secret');
    await symlink(outside, join(allowed, 'link.txt'));
    ctx.records.set('busy', { ...(await ctx.submit({ id: 'busy', to: ['+15550009'] })).record, status: 'sending' });
    const queuedBefore = ctx.list().length;

    const data = (n: number, size = 1): [string, string, Buffer][] =>
      Array.from({ length: n }, (_, i) => [`f${i}.txt`, 'text/plain', Buffer.alloc(size, 0x61)]);
    const sendData = (to: string[], subject: string, atts: [string, string, Buffer][], opts: Record<string, unknown> = {}) =>
      rawCall(bus, MANAGER_PATH, MANAGER_INTERFACE, 'SendMessageData', SEND_DATA_SIG, [to, [], [], subject, atts, opts]);
    const sendPath = (path: string) =>
      rawCall(bus, MANAGER_PATH, MANAGER_INTERFACE, 'SendMessage', SEND_PATH_SIG, [['+15551234'], [], [], '', [[path, '']], {}]);
    const cancel = (id: string) => rawCall(bus, MANAGER_PATH, MANAGER_INTERFACE, 'Cancel', 's', [id]);
    const seven = Array.from({ length: 7 }, (_, i) => `+1555000${i}`);

    // [error name, dbus-next call, busctl args, text busctl shows]
    const cases: [string, () => Promise<unknown>, string[], string][] = [
      ['InvalidRecipient', () => sendData(['not-a-number'], '', []), busctlSendData(['not-a-number'], ''), 'neither a phone number'],
      ['TooManyRecipients', () => sendData(seven, '', []), busctlSendData(seven, ''), 'at most 6'],
      ['SubjectTooLong', () => sendData(['+15551234'], 'x'.repeat(201), []), busctlSendData(['+15551234'], 'x'.repeat(201)), 'subject'],
      ['TooManyAttachments', () => sendData(['+15551234'], '', data(13)), [], ''],
      ['MessageTooLarge', () => sendData(['+15551234'], '', data(1, 101)), [], ''],
      [
        'AttachmentNotAllowed',
        () => sendPath(join(allowed, 'link.txt')),
        ['call', BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE, 'SendMessage', SEND_PATH_SIG, '1', '+15551234', '0', '0', '', '1', outside, '', '0'],
        'not inside an allowed directory',
      ],
      [
        'AttachmentNotFound',
        () => sendPath(join(allowed, 'missing.txt')),
        ['call', BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE, 'SendMessage', SEND_PATH_SIG, '1', '+15551234', '0', '0', '', '1', join(allowed, 'missing.txt'), '', '0'],
        'no such file',
      ],
      ['InvalidOption', () => sendData(['+15551234'], '', [], { Validity: new Variant('s', 'high') }), busctlSendData(['+15551234'], '', ['1', 'Validity', 's', 'high']), "must be of type 'u'"],
      ['InvalidOption', () => sendData(['+15551234'], '', [], { Colour: new Variant('u', 1) }), busctlSendData(['+15551234'], '', ['1', 'Colour', 'u', '1']), 'unknown option'],
      ['InvalidOption', () => sendData(['+15551234'], '', [], { Validity: new Variant('u', 9) }), busctlSendData(['+15551234'], '', ['1', 'Validity', 'u', '9']), 'from 0 to 6'],
      ['NotFound', () => cancel('nope'), ['call', BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE, 'Cancel', 's', 'nope'], 'no message nope'],
      ['NotCancellable', () => cancel('busy'), ['call', BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE, 'Cancel', 's', 'busy'], 'is sending'],
      [
        'NotCancellable',
        () => rawCall(bus, messagePath('busy'), MESSAGE_INTERFACE, 'Cancel', '', []),
        ['call', BUS_NAME, messagePath('busy'), MESSAGE_INTERFACE, 'Cancel'],
        'is sending',
      ],
    ];
    for (const [name, call, args, text] of cases) {
      const err = await errorOf(call());
      expect(err.type, name).toBe(`org.example.Mms1.Error.${name}`);
      expect(err.text.length, name).toBeGreaterThan(0);
      if (args.length > 0) {
        const r = await busctl(daemon.address, ...args);
        expect(r.code, name).not.toBe(0);
        expect(r.stderr, name).toContain(text);
      }
    }
    expect(ctx.list()).toHaveLength(queuedBefore);
  });

  it('maps every RequestError name of core/errors to org.example.Mms1.Error.<Name>', async () => {
    const { ctx } = await startService();
    const bus = await client();
    for (const name of REQUEST_ERROR_NAMES) {
      ctx.failNext = new RequestError(name, `because ${name}`);
      const err = await errorOf(
        rawCall(bus, MANAGER_PATH, MANAGER_INTERFACE, 'SendMessageData', SEND_DATA_SIG, [['+15551234'], [], [], '', [], {}]),
      );
      expect(err).toEqual({ type: `org.example.Mms1.Error.${name}`, text: `because ${name}` });
    }
  });

  it('answers an unexpected failure with org.freedesktop.DBus.Error.Failed and no internals', async () => {
    const { ctx } = await startService();
    const bus = await client();
    ctx.failNext = new Error('EIO: disk on fire at /var/lib/mmsd/spool');
    const err = await errorOf(
      rawCall(bus, MANAGER_PATH, MANAGER_INTERFACE, 'SendMessageData', SEND_DATA_SIG, [['+15551234'], [], [], '', [], {}]),
    );
    expect(err.type).toBe('org.freedesktop.DBus.Error.Failed');
    expect(err.text).not.toContain('disk on fire');
  });

  it('lets a dbus-next client follow PropertiesChanged through queued → sending → sent', async () => {
    const { ctx } = await startService();
    const bus = await client();
    await ctx.submit({ id: 'f1', to: ['+15551234'] });
    const obj = await bus.getProxyObject(BUS_NAME, messagePath('f1'));
    const props = obj.getInterface('org.freedesktop.DBus.Properties');
    const seen: Record<string, unknown>[] = [];
    props.on('PropertiesChanged', (iface: string, changed: Record<string, { value: unknown }>) => {
      if (iface === MESSAGE_INTERFACE) seen.push(Object.fromEntries(Object.entries(changed).map(([k, v]) => [k, v.value])));
    });
    // A round trip after subscribing: the bus has the match rule before we drive the message.
    await rawCall(bus, MANAGER_PATH, 'org.freedesktop.DBus.Peer', 'Ping', '', []);
    const status = async () => (await getProperty(daemon.address, messagePath('f1'), MESSAGE_INTERFACE, 'Status')).data;
    expect(await status()).toBe('queued');

    ctx.patch('f1', { status: 'sending', attempts: 1 });
    ctx.patch('f1', { progress: 0.5 });
    ctx.patch('f1', { progress: 1 });
    ctx.patch('f1', { status: 'sent' });
    await waitFor(() => (seen.some((s) => s.Status === 'sent') ? true : undefined), 10_000, 'sent');
    expect(seen.map((s) => s.Status).filter(Boolean)).toEqual(['sending', 'sent']);
    expect(seen.map((s) => s.Progress).filter((p) => p !== undefined)).toEqual([0.5, 1]);
    expect(seen[0]).toMatchObject({ Status: 'sending', Attempts: 1 });
    // Updated is a uint64 and comes as BigInt to dbus-next clients.
    expect(typeof seen[0].Updated).toBe('bigint');
    expect(await status()).toBe('sent');
  });

  it('received messages (DESIGN.md §12): MessageReceived, PropertiesChanged with Parts a(ssst), Retrieve/Delete errors, the object gone on delete', async () => {
    const { ctx } = await startService();
    const bus = await client();
    const manager = (await bus.getProxyObject(BUS_NAME, MANAGER_PATH)).getInterface(MANAGER_INTERFACE);
    const announced: [string, Record<string, { value: unknown }>][] = [];
    manager.on('MessageReceived', (path: string, props: Record<string, { value: unknown }>) => announced.push([path, props]));
    await rawCall(bus, MANAGER_PATH, 'org.freedesktop.DBus.Peer', 'Ping', '', []);
    const base = { id: 'rx1', status: 'notified' as const, from: '+4917012345', to: [], cc: [], subject: '你好', date: 1000, size: 500, expiry: 9000, parts: [] };
    ctx.putReceived(base);
    await waitFor(() => (announced.length === 1 ? true : undefined), 10_000, 'MessageReceived');
    expect(announced[0][0]).toBe(receivedPath('rx1'));
    expect(announced[0][1].Subject.value).toBe('你好');
    expect(announced[0][1].Status.value).toBe('notified');

    const props = (await bus.getProxyObject(BUS_NAME, receivedPath('rx1'))).getInterface('org.freedesktop.DBus.Properties');
    const seen: Record<string, unknown>[] = [];
    props.on('PropertiesChanged', (iface: string, changed: Record<string, { value: unknown }>) => {
      if (iface === RECEIVED_INTERFACE) seen.push(Object.fromEntries(Object.entries(changed).map(([k, v]) => [k, v.value])));
    });
    await rawCall(bus, MANAGER_PATH, 'org.freedesktop.DBus.Peer', 'Ping', '', []);
    // NotRetrievable while it is being fetched.
    ctx.putReceived({ ...base, status: 'retrieving' });
    const refused = await rawCall(bus, receivedPath('rx1'), RECEIVED_INTERFACE, 'Retrieve', '', []).catch((e: unknown) => e as { type: string });
    expect(refused).toMatchObject({ type: 'org.example.Mms1.Error.NotRetrievable' });
    ctx.putReceived({ ...base, status: 'received', size: 3, parts: [{ name: 'a.txt', contentType: 'text/plain', charset: 'utf-8', path: '/x/rx1/a.txt', size: 3 }] });
    await waitFor(() => (seen.some((x) => x.Status === 'received') ? true : undefined), 10_000, 'received');
    expect(seen.map((x) => x.Status)).toEqual(['retrieving', 'received']);
    expect(seen[1].Parts).toEqual([['a.txt', 'text/plain', '/x/rx1/a.txt', 3n]]);
    // The same record again is no change: nothing announced.
    ctx.putReceived({ ...base, status: 'received', size: 3, parts: [{ name: 'a.txt', contentType: 'text/plain', charset: 'utf-8', path: '/x/rx1/a.txt', size: 3 }] });
    await rawCall(bus, MANAGER_PATH, 'org.freedesktop.DBus.Peer', 'Ping', '', []);
    expect(seen).toHaveLength(2);
    const listed = (await rawCall(bus, MANAGER_PATH, MANAGER_INTERFACE, 'ListReceived', '', [])) as [[string, Record<string, { value: unknown }>][]];
    expect(listed[0].map(([p]) => p)).toEqual([receivedPath('rx1')]);

    await rawCall(bus, receivedPath('rx1'), RECEIVED_INTERFACE, 'Delete', '', []);
    expect(ctx.getReceived('rx1')).toBeUndefined();
    const gone = await rawCall(bus, receivedPath('rx1'), RECEIVED_INTERFACE, 'Delete', '', []).catch((e: unknown) => e as { type: string });
    expect(gone).toMatchObject({ type: expect.stringMatching(/UnknownObject|UnknownMethod|UnknownInterface/) as unknown });
  });

  it('emits MessageAdded and MessageRemoved as the outbox adds and drops messages', async () => {
    const { ctx } = await startService();
    const bus = await client();
    const obj = await bus.getProxyObject(BUS_NAME, MANAGER_PATH);
    const manager = obj.getInterface(MANAGER_INTERFACE);
    const added: [string, Record<string, { value: unknown }>][] = [];
    const removed: string[] = [];
    manager.on('MessageAdded', (path: string, props: Record<string, { value: unknown }>) => added.push([path, props]));
    manager.on('MessageRemoved', (path: string) => removed.push(path));
    await rawCall(bus, MANAGER_PATH, 'org.freedesktop.DBus.Peer', 'Ping', '', []);

    // One added from D-Bus, one as if MQTT had submitted it.
    await rawCall(bus, MANAGER_PATH, MANAGER_INTERFACE, 'SendMessageData', SEND_DATA_SIG, [['+15551234'], [], [], 'a', [], { Id: new Variant('s', 'x1') }]);
    await ctx.submit({ id: 'x2', to: ['+15551235'], subject: 'b' });
    await waitFor(() => (added.length === 2 ? true : undefined), 10_000, 'MessageAdded');
    expect(added.map(([p]) => p)).toEqual([messagePath('x1'), messagePath('x2')]);
    expect(added[1][1].Subject.value).toBe('b');
    expect(added[1][1].Status.value).toBe('queued');

    ctx.remove('x1');
    await waitFor(() => (removed.length === 1 ? true : undefined), 10_000, 'MessageRemoved');
    expect(removed).toEqual([messagePath('x1')]);
    const tree = await busctl(daemon.address, 'introspect', BUS_NAME, messagePath('x1'));
    expect(tree.stdout).not.toContain(MESSAGE_INTERFACE);
    const list = await rawCall(bus, MANAGER_PATH, MANAGER_INTERFACE, 'ListMessages', '', []);
    expect((list[0] as [string, unknown][]).map(([p]) => p)).toEqual([messagePath('x2')]);
  });

  it('lists messages a page at a time with ListMessagesPage, in ListMessages\' order, with the total', async () => {
    const { ctx } = await startService();
    const bus = await client();
    for (let i = 0; i < 7; i++) await ctx.submit({ id: `p${i}`, to: ['+15551234'], subject: `page ${i}` });
    const all = ((await rawCall(bus, MANAGER_PATH, MANAGER_INTERFACE, 'ListMessages', '', []))[0] as [string, unknown][]).map(([p]) => p);
    expect(all).toHaveLength(7);
    const page = async (offset: number, count: number): Promise<[number, string[]]> => {
      const r = await rawCall(bus, MANAGER_PATH, MANAGER_INTERFACE, 'ListMessagesPage', 'uu', [offset, count]);
      return [r[0] as number, (r[1] as [string, unknown][]).map(([p]) => p)];
    };
    expect(await page(0, 3)).toEqual([7, all.slice(0, 3)]);
    expect(await page(3, 3)).toEqual([7, all.slice(3, 6)]);
    expect(await page(6, 3)).toEqual([7, all.slice(6)]);
    expect(await page(7, 3)).toEqual([7, []]);
    expect(await page(100, 3)).toEqual([7, []]);
    // Each entry carries the same properties as ListMessages'.
    const first = await rawCall(bus, MANAGER_PATH, MANAGER_INTERFACE, 'ListMessagesPage', 'uu', [0, 1]);
    const props = (first[1] as [string, Record<string, { value: unknown }>][])[0][1];
    expect(props.Subject.value).toBe('page 0');
    expect(Object.keys(props).sort()).toEqual(Object.keys(MESSAGE_PROPERTIES).sort());
  });

  it('answers ListMessages with bytes busctl and gdbus decode to what GetAll of each message says', async () => {
    // ListMessages/ListMessagesPage are marshalled by mmsd (wire.ts); GetAll still by dbus-next.
    const lines: { msg?: string; method?: string; bytes?: number }[] = [];
    const logger = pino({ level: 'debug' }, { write: (l: string) => lines.push(JSON.parse(l) as (typeof lines)[number]) });
    const ctx = new FakeContext({ allowedDirs: [allowed] });
    const svc = new DbusService({ ctx, bus: 'session', address: daemon.address, logger });
    await svc.start();
    cleanups.push(() => svc.stop());
    await ctx.submit({ id: 'wire-1', to: ['+15551234', '+15551235'], cc: ['c@example.com'], subject: 'Grüße 👋' });
    await ctx.submit({ id: 'wire_2', to: ['+15551236'], subject: '' });
    ctx.patch('wire-1', { status: 'sent', progress: 0.375, delivery: { '+15551234': 'retrieved', '+15551235': 'pending' }, adjustments: ['a.jpg: 4000×3000 → 1600×1200'] });
    ctx.patch('wire_2', { status: 'failed', attempts: 3, error: { code: 765, name: 'Server response failed', httpStatus: 502, mmscResponse: 'denied' } });
    const json = async (...args: string[]): Promise<{ type: string; data: unknown[] }> => {
      const r = await busctl(daemon.address, '--json=short', 'call', BUS_NAME, ...args);
      expect(r.stderr).toBe('');
      return JSON.parse(r.stdout) as { type: string; data: unknown[] };
    };
    const list = await json(MANAGER_PATH, MANAGER_INTERFACE, 'ListMessages');
    expect(list.type).toBe('a(oa{sv})');
    const entries = list.data[0] as [string, Record<string, unknown>][];
    expect(entries.map(([p]) => p)).toEqual([messagePath('wire-1'), messagePath('wire_2')]);
    for (const [path, props] of entries) {
      const all = await json(path, 'org.freedesktop.DBus.Properties', 'GetAll', 's', MESSAGE_INTERFACE);
      expect(props).toEqual(all.data[0]);
    }
    expect(entries[0][1].Subject).toEqual({ type: 's', data: 'Grüße 👋' });
    const page = await json(MANAGER_PATH, MANAGER_INTERFACE, 'ListMessagesPage', 'uu', '1', '5');
    expect(page.data).toEqual([2, [entries[1]]]);
    // GLib checks a message's layout strictly (alignment, padding, UTF-8) before printing it.
    const g = await run('gdbus', ['call', '--address', daemon.address, '--dest', BUS_NAME, '--object-path', MANAGER_PATH, '--method', `${MANAGER_INTERFACE}.ListMessages`]);
    expect(g.stderr).toBe('');
    expect(g.code).toBe(0);
    expect(g.stdout).toContain(`([(objectpath '${messagePath('wire-1')}', {'Id': <'wire-1'>, 'Status': <'sent'>`);
    expect(g.stdout).toContain(`('${messagePath('wire_2')}', {'Id': <'wire_2'>`);
    expect(g.stdout).toContain("'Subject': <'Grüße 👋'>");
    expect(g.stdout).toContain("'Delivery': <{'+15551234': 'retrieved', '+15551235': 'pending'}>");
    // Answered by mmsd's marshaller, not dbus-next's (which would have logged nothing).
    const answered = lines.filter((l) => l.msg === 'list answered');
    expect(answered.map((l) => l.method)).toEqual(['ListMessages', 'ListMessagesPage', 'ListMessages']);
    expect(answered[0].bytes).toBeGreaterThan(1000);
  });

  it('answers ListMessages with Failed when the outbox cannot list, and keeps serving', async () => {
    const { ctx } = await startService();
    const bus = await client();
    await ctx.submit({ id: 'l1', to: ['+15551234'] });
    const list = ctx.list.bind(ctx);
    ctx.list = () => {
      throw new Error('disk on fire');
    };
    const err = await errorOf(rawCall(bus, MANAGER_PATH, MANAGER_INTERFACE, 'ListMessages', '', []));
    expect(err.type).toBe('org.freedesktop.DBus.Error.Failed');
    expect(err.text).toBe('mmsd could not complete ListMessages; see the daemon log');
    ctx.list = list;
    const page = await rawCall(bus, MANAGER_PATH, MANAGER_INTERFACE, 'ListMessagesPage', 'uu', [0, 10]);
    expect(page[0]).toBe(1);
    expect((page[1] as [string, unknown][]).map(([p]) => p)).toEqual([messagePath('l1')]);
  });

  it('announces manager property changes: modem status and queue length', async () => {
    const { ctx } = await startService();
    const bus = await client();
    const obj = await bus.getProxyObject(BUS_NAME, MANAGER_PATH);
    const seen: Record<string, unknown>[] = [];
    obj.getInterface('org.freedesktop.DBus.Properties').on('PropertiesChanged', (iface: string, changed: Record<string, { value: unknown }>) => {
      if (iface === MANAGER_INTERFACE) seen.push(Object.fromEntries(Object.entries(changed).map(([k, v]) => [k, v.value])));
    });
    await rawCall(bus, MANAGER_PATH, 'org.freedesktop.DBus.Peer', 'Ping', '', []);

    ctx.setModemStatus({ state: 'searching', registration: 'searching', signal: -1 });
    await ctx.submit({ id: 'q1', to: ['+15551234'] });
    ctx.setModemStatus({ signal: 12 }); // only SignalQuality changes
    ctx.patch('q1', { status: 'cancelled' });
    await waitFor(() => (seen.length === 4 ? true : undefined), 10_000, 'four PropertiesChanged');
    expect(seen).toEqual([
      { ModemState: 'searching', Registration: 'searching', SignalQuality: -1 },
      { QueueLength: 1 },
      { SignalQuality: 12 },
      { QueueLength: 0 },
    ]);
  });

  it('reads Carrier as a{sv} with busctl, and announces a change of it alone (DESIGN.md §10)', async () => {
    const { ctx } = await startService();
    expect(await getProperty(daemon.address, MANAGER_PATH, MANAGER_INTERFACE, 'Carrier')).toEqual({
      type: 'a{sv}',
      data: {
        Source: { type: 's', data: 'database' },
        Provider: { type: 's', data: 'LUXGSM (270-01)' },
        MccMnc: { type: 's', data: '270-01' },
        Apn: { type: 's', data: 'mms.pt.lu' },
        Mmsc: { type: 's', data: 'http://mmsc.pt.lu' },
        Proxy: { type: 's', data: '194.154.192.88:8080' },
        MaxMessageBytes: { type: 'u', data: 307200 },
        Candidates: { type: 'as', data: ['"carrier": {"provider": "LUXGSM (270-01)"}'] },
        Reason: { type: 's', data: 'LUXGSM (270-01) is the only provider of 270-01 with an MMSC' },
        ConfigKeys: { type: 'as', data: [] },
      },
    });
    const bus = await client();
    const obj = await bus.getProxyObject(BUS_NAME, MANAGER_PATH);
    const seen: string[][] = [];
    obj.getInterface('org.freedesktop.DBus.Properties').on('PropertiesChanged', (iface: string, changed: Record<string, unknown>) => {
      if (iface === MANAGER_INTERFACE) seen.push(Object.keys(changed));
    });
    await rawCall(bus, MANAGER_PATH, 'org.freedesktop.DBus.Peer', 'Ping', '', []);
    ctx.setCarrier({ source: 'ambiguous', provider: '', apn: '', mmsc: '', proxy: '', reason: '2 candidates of 208-01 remain' });
    ctx.setCarrier({}); // the same again: nothing to announce
    ctx.setModemStatus({ signal: 3 });
    await waitFor(() => (seen.length === 2 ? true : undefined), 10_000, 'two PropertiesChanged');
    expect(seen).toEqual([['Carrier'], ['SignalQuality']]);
    const c = (await getProperty(daemon.address, MANAGER_PATH, MANAGER_INTERFACE, 'Carrier')).data as Record<string, { data: unknown }>;
    expect([c.Source.data, c.Mmsc.data, c.Reason.data]).toEqual(['ambiguous', '', '2 candidates of 208-01 remain']);
  });

  it('exports messages already in the outbox at start and escapes ids into object paths', async () => {
    const ctx = new FakeContext();
    await ctx.submit({ id: 'a-b.c_d', to: ['+15551234'] });
    await startService({ ctx });
    const path = messagePath('a-b.c_d');
    expect(path).toBe('/org/example/Mms1/message/a_2db_2ec_5fd');
    expect(await getProperty(daemon.address, path, MESSAGE_INTERFACE, 'Id')).toEqual({ type: 's', data: 'a-b.c_d' });
  });

  it('introspects exactly as dbus/org.example.Mms1.xml says, for every interface', async () => {
    const { ctx } = await startService();
    await ctx.submit({ id: 'i1', to: ['+15551234'] });
    ctx.putReceived({ id: 'r1', status: 'notified', from: '+4917012345', to: [], cc: [], subject: '', date: 1, size: 1, expiry: 2, parts: [] });
    const file = await readFile(new URL('../../dbus/org.example.Mms1.xml', import.meta.url), 'utf8');
    const live =
      (await busctl(daemon.address, 'call', BUS_NAME, MANAGER_PATH, 'org.freedesktop.DBus.Introspectable', 'Introspect', '--json=short')).stdout +
      (await busctl(daemon.address, 'call', BUS_NAME, messagePath('i1'), 'org.freedesktop.DBus.Introspectable', 'Introspect', '--json=short')).stdout +
      (await busctl(daemon.address, 'call', BUS_NAME, receivedPath('r1'), 'org.freedesktop.DBus.Introspectable', 'Introspect', '--json=short')).stdout;
    const liveXml = live
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { data: string[] }).data[0])
      .join('\n');
    for (const name of [MANAGER_INTERFACE, MESSAGE_INTERFACE, RECEIVED_INTERFACE]) {
      const fromFile = normaliseInterface(file, name);
      expect(fromFile.length, name).toBeGreaterThan(10);
      expect(normaliseInterface(liveXml, name), name).toEqual(fromFile);
    }
  });

  it('refuses to start when another connection owns the name, with a clear error', async () => {
    await startService();
    const second = new DbusService({ ctx: new FakeContext(), bus: 'session', address: daemon.address, logger: pino({ level: 'silent' }) });
    await expect(second.start()).rejects.toThrow(/already owned.*another mmsd/);
  });

  it('still answers a call that is in progress when stop() begins', async () => {
    const { ctx, svc } = await startService();
    const bus = await client();
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    ctx.beforeSubmit = () => gate;
    const call = rawCall(bus, MANAGER_PATH, MANAGER_INTERFACE, 'SendMessageData', SEND_DATA_SIG, [['+15551234'], [], [], '', [], { Id: new Variant('s', 'late') }]);
    await waitFor(() => (ctx.received.length === 1 ? true : undefined), 10_000, 'the call to arrive');
    const stopped = svc.stop();
    open();
    expect(await call).toEqual([messagePath('late')]);
    await stopped;
  });

  it('releases the name on stop()', async () => {
    const { svc } = await startService();
    expect((await busctl(daemon.address, 'status', BUS_NAME)).code).toBe(0);
    await svc.stop();
    const r = await busctl(daemon.address, '--json=short', 'call', 'org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'NameHasOwner', 's', BUS_NAME);
    expect(JSON.parse(r.stdout)).toEqual({ type: 'b', data: [false] });
  });
});

describe('DbusService when its bus goes away', () => {
  it('reports the loss once, at once, with nothing written; stop() then lets go without releasing the name', async () => {
    const own = await startDbusDaemon();
    cleanups.push(() => own.stop());
    const ctx = new FakeContext();
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
    const svc = new DbusService({ ctx, bus: 'session', address: own.address, logger });
    await svc.start();
    const errors: Error[] = [];
    svc.on('busError', (err: Error) => errors.push(err));

    // The bus exits while the door is idle: no signal, no reply is written after this.
    await own.stop();
    await until(() => errors.length > 0, 5_000, "'busError' after the bus exited");
    expect(errors[0]).toBeInstanceOf(BusClosedError);
    expect(errors[0].message).toMatch(/closed the connection/);

    // Outbox events after the loss are not published (each write would fail) nor reported again.
    ctx.emit('modemStatus', { ...ctx.status });
    await ctx.submit({ id: 'after', to: ['+15551234'] });

    // stop() does not wait out the name release (10 s) on the dead connection: a bound on a hang.
    const t0 = Date.now();
    await svc.stop();
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(lines.map((l) => l.msg)).not.toContain(LOG_EVENTS.dbusReleaseFailed);
    expect(errors).toHaveLength(1);
  });
});

/**
 * Settled messages (final, no delivery report awaited: core isSettled) have no exported object
 * (issue 19): one method handler answers on their paths. Each answer is compared with the same
 * call on a message that still has its object.
 */
describe('settled messages served without an object of their own', () => {
  /** A context with q1 queued, a1 sent and waiting for a report, f1 failed and c1 cancelled. */
  async function settledContext(): Promise<FakeContext> {
    const ctx = new FakeContext();
    for (const id of ['q1', 'a1', 'f1', 'c1']) await ctx.submit({ id, to: ['+15550001'], cc: ['b@example.com'], subject: `s ${id}` });
    ctx.patch('a1', { status: 'sent', attempts: 1, delivery: { '+15550001': 'pending', 'b@example.com': 'retrieved' } });
    ctx.patch('f1', { status: 'failed', attempts: 5, error: { code: 765, name: 'Server response failed', httpStatus: 500, mmscResponse: 'Error-service-denied' } });
    ctx.patch('c1', { status: 'cancelled' });
    return ctx;
  }

  async function startLogged(ctx: FakeContext): Promise<{ lines: Record<string, unknown>[] }> {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) });
    const svc = new DbusService({ ctx, bus: 'session', address: daemon.address, logger });
    await svc.start();
    cleanups.push(() => svc.stop());
    return { lines };
  }

  const call = (path: string, iface: string, member: string, ...args: string[]): Promise<Run> =>
    busctl(daemon.address, '--json=short', 'call', BUS_NAME, path, iface, member, ...args);

  it('exports objects only for messages not settled, and answers GetAll, Get, Introspect and Peer on a settled one as on those', async () => {
    const ctx = await settledContext();
    const { lines } = await startLogged(ctx);
    // q1 and a1 (still waiting for a report) keep their objects; f1 and c1 have none.
    expect(lines.find((l) => l.msg === 'D-Bus interface up')).toMatchObject({ messages: 2 });

    for (const id of ['f1', 'c1', 'a1']) {
      const all = await call(messagePath(id), PROPERTIES_IFACE, 'GetAll', 's', MESSAGE_INTERFACE);
      expect(all.stderr, id).toBe('');
      const got = (JSON.parse(all.stdout) as { data: [Record<string, { type: string; data: unknown }>] }).data[0];
      expect(Object.keys(got), id).toEqual(Object.keys(MESSAGE_PROPERTIES));
      expect(Object.fromEntries(Object.entries(got).map(([k, v]) => [k, v.type])), id).toEqual(
        Object.fromEntries(Object.entries(MESSAGE_PROPERTIES).map(([k, v]) => [k, v.signature])),
      );
      expect(got.Status.data, id).toBe(ctx.get(id)!.status);
      expect(got.Subject.data, id).toBe(`s ${id}`);
    }
    expect(await getProperty(daemon.address, messagePath('f1'), MESSAGE_INTERFACE, 'Error')).toEqual({ type: 's', data: '765 Server response failed' });
    expect(await getProperty(daemon.address, messagePath('f1'), MESSAGE_INTERFACE, 'HttpStatus')).toEqual({ type: 'u', data: 500 });
    expect(await getProperty(daemon.address, messagePath('c1'), MESSAGE_INTERFACE, 'Status')).toEqual({ type: 's', data: 'cancelled' });
    expect(await getProperty(daemon.address, messagePath('a1'), MESSAGE_INTERFACE, 'Delivery')).toEqual({
      type: 'a{ss}',
      data: { '+15550001': 'pending', 'b@example.com': 'retrieved' },
    });

    // Introspect: the same XML as the exported message's.
    const introspect = async (id: string): Promise<string> =>
      (JSON.parse((await call(messagePath(id), 'org.freedesktop.DBus.Introspectable', 'Introspect')).stdout) as { data: [string] }).data[0];
    const exported = await introspect('q1');
    expect(exported).toContain(`<interface name="${MESSAGE_INTERFACE}">`);
    expect(await introspect('f1')).toBe(exported);
    expect(await introspect('c1')).toBe(exported);
    const tree = await busctl(daemon.address, 'introspect', BUS_NAME, messagePath('f1'));
    expect(tree.stdout).toContain('.Cancel');
    expect(tree.stdout).toMatch(/\.Status\s+property\s+s\s+"failed"/);

    // The parent node lists every message, settled or not, in ListMessages' order.
    const parent = (JSON.parse((await call('/org/example/Mms1/message', 'org.freedesktop.DBus.Introspectable', 'Introspect')).stdout) as { data: [string] })
      .data[0];
    expect([...parent.matchAll(/<node name="([^"]+)"\/>/g)].map((m) => m[1])).toEqual(['q1', 'a1', 'f1', 'c1']);
    const manager = (JSON.parse((await call(MANAGER_PATH, 'org.freedesktop.DBus.Introspectable', 'Introspect')).stdout) as { data: [string] }).data[0];
    expect(manager).toContain('<node name="message"/>');

    const ping = await call(messagePath('f1'), 'org.freedesktop.DBus.Peer', 'Ping');
    expect(ping.code).toBe(0);
  });

  it('refuses Set, an unknown property, an unknown method and Cancel on a settled message as on one with its object', async () => {
    const ctx = await settledContext();
    await startLogged(ctx);
    const bus = await client();
    const both = async (fn: (path: string) => Promise<unknown>): Promise<[{ type: string; text: string }, { type: string; text: string }]> => [
      await errorOf(fn(messagePath('a1'))),
      await errorOf(fn(messagePath('f1'))),
    ];
    const set = await both((p) => rawCall(bus, p, PROPERTIES_IFACE, 'Set', 'ssv', [MESSAGE_INTERFACE, 'Subject', new Variant('s', 'x')]));
    expect(set[0].type).toBe('org.freedesktop.DBus.Error.InvalidArgs');
    expect(set[1]).toEqual(set[0]);
    const unknownProp = await both((p) => rawCall(bus, p, PROPERTIES_IFACE, 'Get', 'ss', [MESSAGE_INTERFACE, 'Nope']));
    expect(unknownProp[0].type).toBe('org.freedesktop.DBus.Error.InvalidArgs');
    expect(unknownProp[1]).toEqual(unknownProp[0]);
    const unknownMethod = await both((p) => rawCall(bus, p, MESSAGE_INTERFACE, 'Nope', '', []));
    expect(unknownMethod[0].type).toBe('org.freedesktop.DBus.Error.UnknownMethod');
    expect(unknownMethod[1]).toEqual(unknownMethod[0]);
    const cancel = await both((p) => rawCall(bus, p, MESSAGE_INTERFACE, 'Cancel', '', []));
    expect(cancel.map((e) => e.type)).toEqual(['org.example.Mms1.Error.NotCancellable', 'org.example.Mms1.Error.NotCancellable']);
    expect(cancel[1].text).toBe('message f1 is failed');
    // busctl sees the same refusal.
    const viaBusctl = await busctl(daemon.address, 'call', BUS_NAME, messagePath('c1'), MESSAGE_INTERFACE, 'Cancel');
    expect(viaBusctl.code).not.toBe(0);
    expect(viaBusctl.stderr).toContain('message c1 is cancelled');
    // A path that is no message's answers as before.
    const gone = await errorOf(rawCall(bus, messagePath('nope'), PROPERTIES_IFACE, 'GetAll', 's', [MESSAGE_INTERFACE]));
    expect(gone.type).toBe('org.freedesktop.DBus.Error.InvalidArgs');
    expect(gone.text).toContain('Path not exported');
  });

  it('announces sent → delivered on the object, then serves the message without it; a settled one changing or removed is announced too', async () => {
    const ctx = await settledContext();
    const { lines } = await startLogged(ctx);
    const bus = await client();
    const seen: [string, Record<string, unknown>][] = [];
    const removed: string[] = [];
    for (const id of ['a1', 'f1']) {
      const props = (await bus.getProxyObject(BUS_NAME, messagePath(id))).getInterface('org.freedesktop.DBus.Properties');
      props.on('PropertiesChanged', (iface: string, changed: Record<string, { value: unknown }>) => {
        if (iface === MESSAGE_INTERFACE) seen.push([id, Object.fromEntries(Object.entries(changed).map(([k, v]) => [k, v.value]))]);
      });
    }
    (await bus.getProxyObject(BUS_NAME, MANAGER_PATH)).getInterface(MANAGER_INTERFACE).on('MessageRemoved', (p: string) => removed.push(p));
    await rawCall(bus, MANAGER_PATH, 'org.freedesktop.DBus.Peer', 'Ping', '', []);

    ctx.patch('a1', { status: 'delivered', delivery: { '+15550001': 'retrieved', 'b@example.com': 'retrieved' } });
    await waitFor(() => (seen.length === 1 ? true : undefined), 10_000, 'PropertiesChanged of a1');
    // Only what changed, as always.
    expect(Object.keys(seen[0][1]).sort()).toEqual(['Delivery', 'Status', 'Updated']);
    expect(seen[0]).toMatchObject(['a1', { Status: 'delivered' }]);
    expect(await getProperty(daemon.address, messagePath('a1'), MESSAGE_INTERFACE, 'Status')).toEqual({ type: 's', data: 'delivered' });

    // A settled message has no previous values to compare with: every property is announced.
    ctx.patch('f1', { error: { code: 0, name: 'Changed later' } });
    await waitFor(() => (seen.length === 2 ? true : undefined), 10_000, 'PropertiesChanged of f1');
    expect(seen[1][0]).toBe('f1');
    expect(Object.keys(seen[1][1])).toEqual(Object.keys(MESSAGE_PROPERTIES));
    expect(seen[1][1].Error).toBe('0 Changed later');

    ctx.remove('f1');
    ctx.remove('a1');
    await waitFor(() => (removed.length === 2 ? true : undefined), 10_000, 'MessageRemoved');
    expect(removed).toEqual([messagePath('f1'), messagePath('a1')]);
    const gone = await busctl(daemon.address, 'introspect', BUS_NAME, messagePath('f1'));
    expect(gone.stdout).not.toContain(MESSAGE_INTERFACE);
    expect(lines.filter((l) => l.level === 50)).toEqual([]);
  });

  it('lists the messages node under the manager when every message is settled', async () => {
    const ctx = new FakeContext();
    await ctx.submit({ id: 'd1', to: ['+15550001'] });
    ctx.patch('d1', { status: 'sent' });
    const { lines } = await startLogged(ctx);
    expect(lines.find((l) => l.msg === 'D-Bus interface up')).toMatchObject({ messages: 0 });
    const tree = await busctl(daemon.address, 'tree', BUS_NAME);
    expect(tree.stdout).toContain(messagePath('d1'));
    expect(await getProperty(daemon.address, messagePath('d1'), MESSAGE_INTERFACE, 'Status')).toEqual({ type: 's', data: 'sent' });
  });
});

/**
 * One `<interface>` element as a list of normalised tags: comments and whitespace dropped,
 * attributes sorted, so that formatting differences do not count but any member/type/name does.
 */
function normaliseInterface(xml: string, name: string): string[] {
  const noComments = xml.replace(/<!--[\s\S]*?-->/g, '');
  const start = noComments.indexOf(`<interface name="${name}">`);
  if (start < 0) return [];
  const end = noComments.indexOf('</interface>', start);
  const body = noComments.slice(start, end + '</interface>'.length);
  const tags = body.match(/<[^>]+>/g) ?? [];
  return tags.map((tag) => {
    const m = /^<(\/?)([\w.]+)([\s\S]*?)(\/?)>$/.exec(tag)!;
    const attrs = [...m[3].matchAll(/([\w:-]+)="([^"]*)"/g)].map((a) => `${a[1]}="${a[2]}"`).sort();
    return `<${m[1]}${m[2]}${attrs.length ? ' ' + attrs.join(' ') : ''}${m[4]}>`;
  });
}
