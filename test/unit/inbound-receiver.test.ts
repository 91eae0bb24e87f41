// The receiver (src/inbound/receiver.ts, DESIGN.md §12 "Received messages") with a fake port for
// the modem, a real inbox on a temp directory and a manual clock: store first, fetch, decode, keep,
// then M-NotifyResp.ind; back-off and expiry; failures by name; one entry per notification; a crash
// mid-fetch; sends and fetches alternating on one lock.
import { existsSync, mkdtempSync } from 'node:fs';
import { readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ReceivedRecord } from '../../src/core/inbound.js';
import { Inbox } from '../../src/inbound/inbox.js';
import { BACKOFF_MS, Receiver, backoffMs, type ReceiverPort } from '../../src/inbound/receiver.js';
import { decodeNotifyRespInd } from '../../src/mms/notification.js';
import { encodeRetrieveConf } from '../../src/mms/retrieve.js';
import { MULTIPART_RELATED, type NotificationInd, type RetrieveConf } from '../../src/mms/types.js';
import { SendLock } from '../../src/modem/lock.js';
import { ManualClock } from './manual-clock.js';
import { until } from './at-fakes.js';
import { deferred, silentLogger } from './modem-fake-at.js';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'mmsd-recv-'));
  dirs.push(d);
  return d;
}

const SMIL = Buffer.from('<smil><body><par><img src="photo.jpg"/><text src="text.txt"/></par></body></smil>');
const JPEG = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(2000, 0x5a), Buffer.from([0xff, 0xd9])]);

const CONF: RetrieveConf = {
  transactionId: 'T-1',
  mmsVersion: '1.2',
  messageId: 'msg-0001',
  date: 1_700_000_000,
  from: '+8613800000000',
  to: ['+15550001', 'gw@example.com'],
  cc: ['+15550002'],
  subject: '门口有人 — 照片',
  contentType: MULTIPART_RELATED,
  type: 'application/smil',
  start: '<smil>',
  parts: [
    { contentType: 'application/smil', contentLocation: 'smil.smil', contentId: '<smil>', data: SMIL },
    { contentType: 'text/plain', charset: 'utf-8', contentLocation: 'text.txt', data: Buffer.from('有人按门铃 ✓') },
    { contentType: 'image/jpeg', name: 'photo.jpg', data: JPEG },
    { contentType: 'text/plain', charset: 'gbk', contentId: '<../../note>', data: Buffer.from([0xc4, 0xe3, 0xba, 0xc3]) },
  ],
};

function notification(over: Partial<NotificationInd> = {}): NotificationInd {
  return {
    transactionId: 'T-1',
    mmsVersion: '1.2',
    from: '+8613800000000',
    subject: 'x',
    messageSize: 4000,
    expiry: { relative: 3 * 3600 },
    contentLocation: 'http://mmsc.example/get/1',
    ...over,
  };
}

type Answer = Buffer | Error | Promise<Buffer>;

class FakePort implements ReceiverPort {
  readonly fetches: { url: string; maxBytes: number; at: number }[] = [];
  readonly posts: { pdu: Buffer; at: number; filesThere: boolean }[] = [];
  fetchAnswers: Answer[] = [];
  fetchDefault: Answer = encodeRetrieveConf(CONF, { subjectCharset: 'gbk' });
  postAnswers: (Error | undefined)[] = [];
  watchDir: string | undefined;
  constructor(private readonly clock: ManualClock) {}

  fetch(url: string, opts: { maxBytes: number }): Promise<Buffer> {
    this.fetches.push({ url, maxBytes: opts.maxBytes, at: this.clock.now() });
    const a = this.fetchAnswers.shift() ?? this.fetchDefault;
    return a instanceof Error ? Promise.reject(a) : Promise.resolve(a);
  }

  async post(pdu: Buffer): Promise<void> {
    // §12: by the time the MMSC is told, the files are on disk.
    const filesThere = this.watchDir !== undefined && (await readdir(this.watchDir)).some((d) => d.startsWith('r'));
    this.posts.push({ pdu, at: this.clock.now(), filesThere });
    const a = this.postAnswers.shift();
    if (a) throw a;
  }
}

function transient(name = 'TimeoutError'): Error {
  return Object.assign(new Error(`${name}: no answer`), { name });
}

function permanent(name: string, message: string): Error {
  return Object.assign(new Error(message), { name, permanent: true });
}

async function setup(o: { autoRetrieve?: boolean; maxMessageBytes?: number; dir?: string; exclusive?: <T>(fn: () => Promise<T>) => Promise<T> } = {}) {
  const dir = o.dir ?? tempDir();
  const clock = new ManualClock();
  const port = new FakePort(clock);
  port.watchDir = dir;
  const inbox = new Inbox({ dir, logger: silentLogger, retentionDays: 30, clock: () => clock.now() });
  const receiver = new Receiver({
    inbox,
    port,
    logger: silentLogger,
    autoRetrieve: o.autoRetrieve ?? true,
    maxMessageBytes: o.maxMessageBytes ?? 100_000,
    clock,
    ...(o.exclusive ? { exclusive: o.exclusive } : {}),
  });
  const events: ReceivedRecord[] = [];
  receiver.on('received', (r: ReceivedRecord) => events.push(r));
  await receiver.start();
  return { dir, clock, port, inbox, receiver, events };
}

describe('Receiver', () => {
  it('stores the notification before it resolves, then fetches, keeps every part and only then posts M-NotifyResp.ind', async () => {
    const { dir, port, receiver, events } = await setup();
    const stored = await receiver.notify(notification());
    expect(stored.status).toBe('notified');
    expect(existsSync(join(dir, 'records', `${stored.id}.json`))).toBe(true);
    await receiver.whenIdle();

    const r = receiver.get(stored.id);
    expect(r).toMatchObject({
      status: 'received',
      from: '+8613800000000',
      to: ['+15550001', 'gw@example.com'],
      cc: ['+15550002'],
      subject: '门口有人 — 照片',
      date: 1_700_000_000_000,
      messageId: 'msg-0001',
    });
    expect(r?.parts.map((p) => [p.name, p.contentType, p.charset, p.size])).toEqual([
      ['smil.smil', 'application/smil', undefined, SMIL.length],
      ['text.txt', 'text/plain', 'utf-8', Buffer.byteLength('有人按门铃 ✓')],
      ['photo.jpg', 'image/jpeg', undefined, JPEG.length],
      ['note.txt', 'text/plain', 'gbk', 4],
    ]);
    for (const [i, p] of (r?.parts ?? []).entries()) expect((await readFile(p.path)).equals(CONF.parts[i].data)).toBe(true);
    expect(port.fetches).toEqual([{ url: 'http://mmsc.example/get/1', maxBytes: 100_000, at: 0 }]);
    expect(port.posts).toHaveLength(1);
    expect(port.posts[0].filesThere).toBe(true);
    expect(decodeNotifyRespInd(port.posts[0].pdu)).toEqual({ transactionId: 'T-1', mmsVersion: '1.2', status: 'retrieved' });
    expect(events.map((e) => e.status)).toEqual(['notified', 'retrieving', 'received']);
    await receiver.stop();
  });

  it('decodes a UCS-2 subject and takes a body that is no multipart as one part', async () => {
    const { port, receiver } = await setup();
    port.fetchDefault = encodeRetrieveConf(
      { mmsVersion: '1.2', to: ['+1555'], cc: [], subject: 'Привет 世界', contentType: 'text/plain', parts: [{ contentType: 'text/plain', charset: 'iso-8859-1', data: Buffer.from([0x63, 0x61, 0x66, 0xe9]) }] },
      { subjectCharset: 'iso-10646-ucs-2' },
    );
    const { id } = await receiver.notify(notification());
    await receiver.whenIdle();
    expect(receiver.get(id)).toMatchObject({ status: 'received', subject: 'Привет 世界', from: '+8613800000000', parts: [{ name: 'part-1.txt', charset: 'iso-8859-1', size: 4 }] });
    await receiver.stop();
  });

  it('takes the same notification twice as one entry, fetched once', async () => {
    const { port, receiver } = await setup();
    const [a, b] = await Promise.all([receiver.notify(notification()), receiver.notify(notification())]);
    await receiver.whenIdle();
    const c = await receiver.notify(notification({ transactionId: 'T-again' }));
    await receiver.whenIdle();
    expect(new Set([a.id, b.id, c.id]).size).toBe(1);
    expect(receiver.list()).toHaveLength(1);
    expect(port.fetches).toHaveLength(1);
    await receiver.stop();
  });

  it('does not fetch a message the notification says is over inbound.maxMessageBytes', async () => {
    const { port, receiver } = await setup({ maxMessageBytes: 3999 });
    const { id } = await receiver.notify(notification());
    await receiver.whenIdle();
    expect(receiver.get(id)).toMatchObject({ status: 'failed', error: { name: 'MessageTooLarge' } });
    expect(port.fetches).toEqual([]);
    await receiver.stop();
  });

  it('retries a failed fetch after 1, 5 and 30 minutes, then hourly, until the expiry: expired', async () => {
    const { clock, port, receiver } = await setup();
    port.fetchDefault = transient();
    const { id } = await receiver.notify(notification({ expiry: { relative: 3 * 3600 } }));
    await receiver.whenIdle();
    for (const step of [60_000, 300_000, 1_800_000, 3_600_000, 3_600_000]) {
      expect(receiver.get(id)).toMatchObject({ status: 'notified', error: { name: 'TimeoutError' } });
      await clock.advance(step - 1);
      await receiver.whenIdle();
      const before = port.fetches.length;
      await clock.advance(1);
      await receiver.whenIdle();
      expect(port.fetches.length).toBe(before + 1);
    }
    expect(port.fetches.map((f) => f.at)).toEqual([0, 60_000, 360_000, 2_160_000, 5_760_000, 9_360_000]);
    await clock.advance(3 * 3600 * 1000 - clock.now());
    await receiver.whenIdle();
    expect(receiver.get(id)).toMatchObject({ status: 'expired', error: { name: 'Expired' } });
    expect(port.fetches).toHaveLength(6);
    expect(port.posts).toEqual([]);
    await receiver.stop();
  });

  it('names the back-off steps of §12', () => {
    expect([1, 2, 3, 4, 5, 50].map((n) => backoffMs(n))).toEqual([60_000, 300_000, 1_800_000, 3_600_000, 3_600_000, 3_600_000]);
    expect(BACKOFF_MS).toHaveLength(4);
  });

  it.each([
    ['an HTTP 4xx', permanent('HttpStatusError', 'get: HTTP 404'), 'HttpStatusError', 'get: HTTP 404'],
    ['a body over the limit', permanent('MessageTooLarge', 'the message is 5000 bytes'), 'MessageTooLarge', 'the message is 5000 bytes'],
    ['a content location the driver refuses', Object.assign(new Error('content location: not an http:// URL'), { name: 'InvalidArgumentError' }), 'InvalidArgumentError', 'content location: not an http:// URL'],
  ])('fails the message at once on %s, with the reason', async (_what, err, name, message) => {
    const { port, receiver } = await setup();
    port.fetchDefault = err;
    const { id } = await receiver.notify(notification());
    await receiver.whenIdle();
    expect(receiver.get(id)).toMatchObject({ status: 'failed', error: { name, message } });
    expect(port.posts).toEqual([]);
    await receiver.stop();
  });

  it('fails on an error X-Mms-Retrieve-Status, and on a malformed PDU with the decoder reason', async () => {
    const { port, receiver } = await setup();
    port.fetchAnswers = [
      encodeRetrieveConf({ mmsVersion: '1.2', to: [], cc: [], retrieveStatus: 0xe2, retrieveText: 'gone', parts: [] }),
      Buffer.from([0x8c, 0x84, 0x98, 0x41]),
    ];
    const a = await receiver.notify(notification());
    await receiver.whenIdle();
    const b = await receiver.notify(notification({ transactionId: 'T-2', contentLocation: 'http://mmsc.example/get/2' }));
    await receiver.whenIdle();
    expect(receiver.get(a.id)).toMatchObject({ status: 'failed', error: { name: 'Error-permanent-message-not-found', message: 'gone' } });
    expect(receiver.get(b.id)).toMatchObject({ status: 'failed', error: { name: 'MmsDecodeError' } });
    expect(receiver.get(b.id)?.error?.message).toMatch(/at byte/);
    await receiver.stop();
  });

  it('retries a failed M-NotifyResp.ind post by itself, never fetching again', async () => {
    const { clock, port, receiver } = await setup();
    port.postAnswers = [transient('HttpModuleError'), transient('HttpModuleError')];
    const { id } = await receiver.notify(notification());
    await receiver.whenIdle();
    expect(receiver.get(id)?.status).toBe('received');
    await clock.advance(60_000);
    await receiver.whenIdle();
    await clock.advance(300_000);
    await receiver.whenIdle();
    expect(port.posts.map((p) => p.at)).toEqual([0, 60_000, 360_000]);
    expect(port.fetches).toHaveLength(1);
    await clock.advance(10 * 3_600_000);
    await receiver.whenIdle();
    expect(port.posts).toHaveLength(3);
    await receiver.stop();
  });

  it('with inbound.autoRetrieve off leaves a message notified until retrieve(), and retrieves a failed one again', async () => {
    const { port, receiver } = await setup({ autoRetrieve: false });
    const { id } = await receiver.notify(notification());
    await receiver.whenIdle();
    expect(receiver.get(id)?.status).toBe('notified');
    expect(port.fetches).toEqual([]);
    port.fetchAnswers = [permanent('HttpStatusError', 'get: HTTP 404')];
    await receiver.retrieve(id);
    await receiver.whenIdle();
    expect(receiver.get(id)?.status).toBe('failed');
    await receiver.retrieve(id);
    await receiver.whenIdle();
    expect(receiver.get(id)?.status).toBe('received');
    expect(port.fetches).toHaveLength(2);
    await expect(receiver.retrieve(id)).rejects.toMatchObject({ errorName: 'NotRetrievable' });
    await expect(receiver.retrieve('r-none')).rejects.toMatchObject({ errorName: 'NotFound' });
    await receiver.stop();
  });

  it('deletes a message with its files and tells the doors', async () => {
    const { dir, receiver } = await setup();
    const removed: string[] = [];
    receiver.on('receivedRemoved', (id: string) => removed.push(id));
    const { id } = await receiver.notify(notification());
    await receiver.whenIdle();
    await receiver.delete(id);
    expect(removed).toEqual([id]);
    expect(await readdir(dir)).toEqual(['records']);
    await receiver.stop();
  });

  it('after a crash mid-fetch fetches the notification again: one entry, received', async () => {
    const dir = tempDir();
    const first = await setup({ dir });
    const hang = deferred<Buffer>();
    first.port.fetchAnswers = [hang.promise];
    const { id } = await first.receiver.notify(notification());
    await until(() => first.receiver.get(id)?.status === 'retrieving');
    // The daemon is killed here: nothing of the first instance runs again.
    const second = await setup({ dir });
    await second.receiver.whenIdle();
    expect(second.receiver.list().map((r) => [r.id, r.status])).toEqual([[id, 'received']]);
    expect(second.port.posts).toHaveLength(1);
    await second.receiver.stop();
  });

  it('alternates its fetches with sends on one FIFO lock: neither waits behind two of the other', async () => {
    const lock = new SendLock();
    const order: string[] = [];
    let asked = 0;
    const { port, receiver } = await setup({
      exclusive: (fn) => {
        asked++;
        return lock.run(fn);
      },
    });
    const fetch = port.fetch.bind(port);
    port.fetch = (url, opts) => {
      order.push('fetch');
      return fetch(url, opts);
    };
    const gate = deferred();
    const sends = (async () => {
      await gate.promise;
      // The next send is asked for while the receiver's first job waits for the modem.
      for (let i = 0; i < 4; i++) {
        await lock.run(async () => {
          order.push('send');
          // A send takes the modem for a while (its upload and AT+QMMSEND).
          await new Promise((r) => setTimeout(r, 30));
        });
      }
    })();
    // Four notifications waiting at once, and a send that holds the modem when they come.
    const first = lock.run(async () => {
      order.push('send');
      await Promise.all([1, 2, 3, 4].map((i) => receiver.notify(notification({ transactionId: `T-${i}`, contentLocation: `http://mmsc.example/get/${i}` }))));
      await until(() => asked === 1);
      gate.resolve();
    });
    await first;
    await sends;
    await receiver.whenIdle();
    expect(order.filter((o) => o === 'fetch')).toHaveLength(4);
    expect(order).toEqual(['send', 'fetch', 'send', 'fetch', 'send', 'fetch', 'send', 'fetch', 'send']);
    await receiver.stop();
  });
});
