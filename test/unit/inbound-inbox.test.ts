// The inbox of received messages (src/inbound/inbox.ts) and the names its files get
// (part-names.ts), on a real temp directory: durability, one entry per notification, the files and
// their modes, deletion, retention and the recovery of a crash.
import { mkdtempSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { RequestError } from '../../src/core/errors.js';
import { IllegalReceivedTransitionError, Inbox, type NewNotification } from '../../src/inbound/inbox.js';
import { PART_NAME_MAX_BYTES, partName, uniquePartNames } from '../../src/inbound/part-names.js';
import { silentLogger } from './modem-fake-at.js';

const DAY = 24 * 60 * 60 * 1000;
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'mmsd-inbox-'));
  dirs.push(d);
  return d;
}

function inbox(dir: string, clock = { t: 1_700_000_000_000 }, retentionDays = 30): Inbox {
  return new Inbox({ dir, logger: silentLogger, retentionDays, clock: () => clock.t });
}

const N: NewNotification = {
  transactionId: 'T-1',
  contentLocation: 'http://mmsc.example/get/1',
  mmsVersion: '1.2',
  from: '+15551234',
  subject: 'hi',
  size: 1200,
  expiry: 1_700_000_000_000 + 7 * DAY,
};
const HEADERS = { from: '+15551234', to: ['+15550000'], cc: [], subject: '你好', date: 1_699_999_999_000, messageId: 'mid-1' };

describe('Inbox', () => {
  it('keeps a notification durably: a second inbox on the same folder (no stop) finds it notified', async () => {
    const dir = tempDir();
    const a = inbox(dir);
    await a.start();
    const { entry, created } = await a.add(N);
    expect(created).toBe(true);
    expect(entry.record).toMatchObject({ status: 'notified', from: '+15551234', subject: 'hi', size: 1200, parts: [] });
    const b = inbox(dir);
    await b.start();
    expect(b.get(entry.record.id)).toEqual(entry);
    await Promise.all([a.stop(), b.stop()]);
  });

  it('makes the same notification (same transaction id, or same content location) one entry', async () => {
    const dir = tempDir();
    const a = inbox(dir);
    await a.start();
    const [one, two, three] = await Promise.all([a.add(N), a.add(N), a.add({ ...N, transactionId: 'T-other' })]);
    const four = await a.add({ ...N, contentLocation: 'http://mmsc.example/get/other' });
    expect([one.created, two.created, three.created, four.created]).toEqual([true, false, false, false]);
    expect(new Set([one, two, three, four].map((r) => r.entry.record.id)).size).toBe(1);
    expect((await readdir(join(dir, 'records'))).filter((f) => f.endsWith('.json'))).toHaveLength(1);
    await a.stop();
  });

  it('keeps the parts under <dir>/<id>/ byte for byte, files 0640 in a 2750 folder, then the record received', async () => {
    const dir = tempDir();
    const a = inbox(dir);
    await a.start();
    const { entry } = await a.add(N);
    const id = entry.record.id;
    await a.update(id, { status: 'retrieving', attempts: 2 });
    const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0x00, 0x0d, 0x0a]);
    const got = await a.receive(id, HEADERS, [
      { name: 'photo.jpg', contentType: 'image/jpeg', data: jpeg },
      { name: 'text.txt', contentType: 'text/plain', charset: 'utf-8', data: Buffer.from('你好') },
    ]);
    expect(got.record).toMatchObject({ status: 'received', subject: '你好', date: HEADERS.date, messageId: 'mid-1', size: jpeg.length + 6 });
    expect(got).toMatchObject({ notifyRespPending: true, attempts: 0 });
    expect(got.record.parts).toEqual([
      { name: 'photo.jpg', contentType: 'image/jpeg', path: join(dir, id, 'photo.jpg'), size: jpeg.length },
      { name: 'text.txt', contentType: 'text/plain', charset: 'utf-8', path: join(dir, id, 'text.txt'), size: 6 },
    ]);
    expect((await readFile(join(dir, id, 'photo.jpg'))).equals(jpeg)).toBe(true);
    expect((await stat(join(dir, id, 'photo.jpg'))).mode & 0o7777).toBe(0o640);
    expect((await stat(join(dir, id))).mode & 0o7777).toBe(0o2750);
    expect((await readdir(dir)).sort()).toEqual([id, 'records']);
    await a.stop();
  });

  it('refuses part names that are not one safe component, and unknown or illegal changes', async () => {
    const dir = tempDir();
    const a = inbox(dir);
    await a.start();
    const { entry } = await a.add(N);
    const id = entry.record.id;
    await a.update(id, { status: 'retrieving' });
    await expect(a.receive(id, HEADERS, [{ name: '../x', contentType: 'text/plain', data: Buffer.from('x') }])).rejects.toThrow(TypeError);
    await expect(
      a.receive(id, HEADERS, [
        { name: 'a.txt', contentType: 'text/plain', data: Buffer.from('x') },
        { name: 'A.txt', contentType: 'text/plain', data: Buffer.from('x') },
      ]),
    ).rejects.toThrow(TypeError);
    await a.update(id, { status: 'expired' });
    await expect(a.update(id, { status: 'retrieving' })).rejects.toBeInstanceOf(IllegalReceivedTransitionError);
    await expect(a.update('r-none', {})).rejects.toMatchObject({ errorName: 'NotFound' });
    await a.stop();
  });

  it('deletes the record and the files at once', async () => {
    const dir = tempDir();
    const a = inbox(dir);
    await a.start();
    const { entry } = await a.add(N);
    const id = entry.record.id;
    await a.update(id, { status: 'retrieving' });
    await a.receive(id, HEADERS, [{ name: 'a.txt', contentType: 'text/plain', data: Buffer.from('x') }]);
    const removed: string[] = [];
    a.on('removed', (r: string) => removed.push(r));
    await a.delete(id);
    expect(removed).toEqual([id]);
    expect(a.get(id)).toBeUndefined();
    expect(await readdir(dir)).toEqual(['records']);
    expect(await readdir(join(dir, 'records'))).toEqual([]);
    await expect(a.delete(id)).rejects.toBeInstanceOf(RequestError);
    await a.stop();
  });

  it('removes final messages after inbound.retentionDays, and keeps those still waiting', async () => {
    const dir = tempDir();
    const clock = { t: 1_700_000_000_000 };
    const a = inbox(dir, clock, 30);
    await a.start();
    const done = (await a.add(N)).entry.record.id;
    const waiting = (await a.add({ ...N, transactionId: 'T-2', contentLocation: 'http://mmsc.example/get/2', expiry: clock.t + 90 * DAY })).entry.record.id;
    await a.update(done, { status: 'retrieving' });
    await a.receive(done, HEADERS, [{ name: 'a.txt', contentType: 'text/plain', data: Buffer.from('x') }]);
    clock.t += 30 * DAY - 1;
    expect(await a.removeExpired()).toEqual([]);
    clock.t += 1;
    expect(await a.removeExpired()).toEqual([done]);
    expect(a.list().map((e) => e.record.id)).toEqual([waiting]);
    expect(await readdir(dir)).toEqual(['records']);
    await a.stop();
  });

  it('after a crash: a fetch cut short is notified again, half-written and orphaned folders go, a received one stays', async () => {
    const dir = tempDir();
    const a = inbox(dir);
    await a.start();
    const cut = (await a.add(N)).entry.record.id;
    const kept = (await a.add({ ...N, transactionId: 'T-2', contentLocation: 'http://mmsc.example/get/2' })).entry.record.id;
    await a.update(cut, { status: 'retrieving' });
    await a.update(kept, { status: 'retrieving' });
    await a.receive(kept, HEADERS, [{ name: 'a.txt', contentType: 'text/plain', data: Buffer.from('x') }]);
    // What a SIGKILL can leave: a half-written folder, a renamed one whose record still says
    // retrieving, a folder whose record never got written, a temp record; and a folder not ours.
    await mkdir(join(dir, `.${cut}.partial`));
    await writeFile(join(dir, `.${cut}.partial`, 'a.txt'), 'half');
    await mkdir(join(dir, cut));
    await mkdir(join(dir, 'r00000000000123456789a'.slice(0, 20)));
    await writeFile(join(dir, 'records', `.${cut}.json.abcd.tmp`), '{');
    await mkdir(join(dir, 'keep-me'));
    const b = inbox(dir);
    const report = await b.start();
    expect(report.requeued).toEqual([cut]);
    expect(b.get(cut)?.record.status).toBe('notified');
    expect(b.get(kept)?.record.status).toBe('received');
    expect((await readdir(dir)).sort()).toEqual(['keep-me', kept, 'records'].sort());
    expect((await readdir(join(dir, 'records'))).sort()).toEqual([`${cut}.json`, `${kept}.json`].sort());
    expect(b.list()).toHaveLength(2);
    await Promise.all([a.stop(), b.stop()]);
  });

  it('moves a corrupt record aside and loads the rest', async () => {
    const dir = tempDir();
    const a = inbox(dir);
    await a.start();
    const good = (await a.add(N)).entry.record.id;
    await writeFile(join(dir, 'records', 'r0000000001234567890a.json'), '{"record":');
    const b = inbox(dir);
    expect((await b.start()).loaded).toBe(1);
    expect(b.get(good)).toBeDefined();
    expect(await readdir(join(dir, 'records', 'corrupt'))).toHaveLength(1);
    await Promise.all([a.stop(), b.stop()]);
  });
});

describe('part names', () => {
  it.each([
    ['../../etc/passwd', 'text/plain', 'passwd.txt'],
    ['http://mmsc.example/a/photo.jpg', 'image/jpeg', 'photo.jpg'],
    ['.bashrc', 'text/plain', 'bashrc.txt'],
    ['..', 'text/plain', 'part-1.txt'],
    [undefined, 'image/jpeg', 'part-1.jpg'],
    ['a\x00b\x1b.txt', 'text/plain', 'a_b_.txt'],
    ['invoice\u202Efdp.exe', 'application/octet-stream', 'invoicefdp.exe'],
    ['照片.jpg', 'image/jpeg', '照片.jpg'],
    ['C:\\Users\\x\\smil.smil', 'application/smil', 'smil.smil'],
    ['a:b*c?.txt', 'text/plain', 'a_b_c_.txt'],
  ])('%j (%s) → %j', (raw, type, want) => {
    expect(partName(raw, 0, type)).toBe(want);
  });

  it('keeps the extension of a name cut to the bound', () => {
    const n = partName(`${'長'.repeat(200)}.jpeg`, 0, 'image/jpeg');
    expect(Buffer.byteLength(n)).toBeLessThanOrEqual(PART_NAME_MAX_BYTES);
    expect(n.endsWith('.jpeg')).toBe(true);
  });

  it('makes names unique within a message, case-insensitively', () => {
    const t = 'image/jpeg';
    expect(uniquePartNames([{ raw: 'a.jpg', contentType: t }, { raw: 'A.jpg', contentType: t }, { raw: 'a.jpg', contentType: t }, { raw: undefined, contentType: t }])).toEqual([
      'a.jpg',
      'A-2.jpg',
      'a-3.jpg',
      'part-4.jpg',
    ]);
  });

  it('never yields a separator, a leading dot, a control byte, an empty or overlong name, or a duplicate', () => {
    fc.assert(
      fc.property(fc.array(fc.option(fc.string({ unit: 'binary', maxLength: 300 }), { nil: undefined }), { maxLength: 12 }), (raws) => {
        const names = uniquePartNames(raws.map((raw) => ({ raw, contentType: 'application/octet-stream' })));
        for (const n of names) {
          expect(n).not.toBe('');
          expect(n).not.toMatch(/^\.|[/\\\x00-\x1f\x7f]/);
          expect(Buffer.byteLength(n)).toBeLessThanOrEqual(PART_NAME_MAX_BYTES);
        }
        expect(new Set(names.map((n) => n.toLowerCase())).size).toBe(names.length);
      }),
      { numRuns: 200 },
    );
  });
});
