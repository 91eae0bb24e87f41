// Outbox: durable before resolve, idempotency, state machine, recovery, retention, corrupt files.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RequestError } from '../../src/core/errors.js';
import type { MessageRecord, SendRequest } from '../../src/core/message.js';
import { IllegalTransitionError, Outbox, RESULT_UNKNOWN_ERROR } from '../../src/outbox/outbox.js';
import { SpoolLockError } from '../../src/outbox/spool-lock.js';

const logger = pino({ level: 'silent' });
const DAY = 86_400_000;

let dir: string;
let now: number;
let boxes: Outbox[];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mmsd-outbox-'));
  now = 1_700_000_000_000;
  boxes = [];
});
afterEach(async () => {
  for (const b of boxes) await b.stop();
  await rm(dir, { recursive: true, force: true });
});

async function openBox(retentionDays = 7): Promise<Outbox> {
  const box = new Outbox({ dir, logger, clock: () => now, retentionDays });
  boxes.push(box);
  await box.start();
  return box;
}

function request(over: Partial<SendRequest> = {}): SendRequest {
  return {
    to: ['+491701234567'],
    cc: [],
    bcc: [],
    subject: 'hello',
    attachments: [
      { name: 'a.txt', contentType: 'text/plain', data: Buffer.from('text part') },
      { name: 'b.jpg', contentType: 'image/jpeg', data: Buffer.alloc(3000, 0xab) },
    ],
    options: {},
    ...over,
  };
}

describe('Outbox', () => {
  it('replaces a sending message\'s parts with fitted ones durably: a fresh outbox reads the fitted bytes and the adjustments (§11)', async () => {
    const box = await openBox();
    await box.submit(request({ id: 'f1' }));
    await expect(box.replaceAttachments('f1', [], [])).rejects.toThrow(/only while it is being sent/);
    await box.update('f1', { status: 'sending' });
    const fitted = Buffer.alloc(1000, 0xcd);
    const text = Buffer.from('text part');
    const rec = await box.replaceAttachments(
      'f1',
      [
        { name: 'a.txt', contentType: 'text/plain', data: text },
        { name: 'b.jpg', contentType: 'image/jpeg', data: fitted },
      ],
      ['b.jpg: 100×30 3 KB → 100×30 JPEG q80 1000 B'],
    );
    expect(rec.adjustments).toEqual(['b.jpg: 100×30 3 KB → 100×30 JPEG q80 1000 B']);
    expect(rec.attachments.map((a) => [a.name, a.size, a.file])).toEqual([
      ['a.txt', 9, 'attachments/f1/0'],
      ['b.jpg', 1000, 'attachments/f1/1.fit'],
    ]);
    // The original bytes of the replaced part are gone; the unchanged part kept its file.
    expect((await readdir(join(dir, 'attachments', 'f1'))).sort()).toEqual(['0', '1.fit']);

    const again = new Outbox({ dir, logger, clock: () => now, retentionDays: 7, lockSpool: false });
    boxes.push(again);
    await again.start();
    expect(again.get('f1')).toMatchObject({ status: 'queued', adjustments: rec.adjustments, attachments: rec.attachments });
    expect(await again.readAttachment('f1', 1)).toEqual(fitted);
    expect(await again.readAttachment('f1', 0)).toEqual(text);
  });

  it('has a message durably on disk when submit resolves: a fresh outbox sees it', async () => {
    const box = await openBox();
    const { record, created } = await box.submit(request({ id: 'm1' }));
    expect(created).toBe(true);
    expect(record).toMatchObject({ id: 'm1', status: 'queued', attempts: 0, progress: 0, created: now, ramFiles: [], sendAccepted: false });
    expect(record.attachments.map((a) => [a.name, a.size])).toEqual([
      ['a.txt', 9],
      ['b.jpg', 3000],
    ]);

    const again = new Outbox({ dir, logger, clock: () => now, retentionDays: 7, lockSpool: false });
    boxes.push(again);
    const report = await again.start();
    expect(report.loaded).toBe(1);
    expect(again.get('m1')).toEqual(record);
    expect(await again.readAttachment('m1', 1)).toEqual(Buffer.alloc(3000, 0xab));
    expect((await again.readAttachment('m1', 0)).toString()).toBe('text part');
  });

  it('generates time-ordered ids when the client gives none', async () => {
    const box = await openBox();
    const a = await box.submit(request());
    now += 1;
    const b = await box.submit(request());
    expect(a.record.id).toMatch(/^m[0-9a-z]+$/);
    expect(a.record.id < b.record.id).toBe(true);
  });

  it('emits added and changed', async () => {
    const box = await openBox();
    const events: string[] = [];
    box.on('added', (r: MessageRecord) => events.push(`added ${r.id}`));
    box.on('changed', (r: MessageRecord) => events.push(`changed ${r.id} ${r.status}`));
    await box.submit(request({ id: 'e1' }));
    await box.update('e1', { status: 'sending' });
    expect(events).toEqual(['added e1', 'changed e1 sending']);
  });

  describe('idempotency', () => {
    it('returns the existing message for a known id without touching it', async () => {
      const box = await openBox();
      const first = await box.submit(request({ id: 'k1', subject: 'first' }));
      await box.update('k1', { status: 'sending' });
      await box.update('k1', { status: 'sent' });
      const before = await readFile(join(dir, 'messages', 'k1.json'), 'utf8');
      now += 5000;
      const second = await box.submit(request({ id: 'k1', subject: 'second' }));
      expect(second.created).toBe(false);
      expect(second.record.subject).toBe('first');
      expect(second.record.status).toBe('sent');
      expect(second.record.created).toBe(first.record.created);
      expect(await readFile(join(dir, 'messages', 'k1.json'), 'utf8')).toBe(before);
      expect(box.list()).toHaveLength(1);
    });

    it('creates one message from simultaneous submits with the same new id', async () => {
      const box = await openBox();
      let added = 0;
      box.on('added', () => added++);
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => box.submit(request({ id: 'same', subject: `s${i}` }))));
      expect(results.filter((r) => r.created)).toHaveLength(1);
      expect(new Set(results.map((r) => r.record.subject)).size).toBe(1);
      expect(added).toBe(1);
      expect(box.list()).toHaveLength(1);
      expect(await readdir(join(dir, 'attachments'))).toEqual(['same']);
    });
  });

  describe('state machine', () => {
    it('allows the transitions of the life of a message and refuses others', async () => {
      const box = await openBox();
      await box.submit(request({ id: 's1' }));
      await expect(box.update('s1', { status: 'sent' })).rejects.toBeInstanceOf(IllegalTransitionError);
      await box.update('s1', { status: 'sending', attempts: 1 });
      await box.update('s1', { status: 'retrying', notBefore: now + 30_000, error: { code: 765, name: 'Server response failed' } });
      await expect(box.update('s1', { status: 'sent' })).rejects.toThrow(/retrying → sent/);
      await box.update('s1', { status: 'sending', attempts: 2, error: undefined, notBefore: undefined });
      const sent = await box.update('s1', { status: 'sent' });
      expect(sent.error).toBeUndefined();
      expect(sent.notBefore).toBeUndefined();
      for (const s of ['queued', 'sending', 'retrying', 'failed', 'cancelled', 'unknown'] as const) {
        await expect(box.update('s1', { status: s })).rejects.toBeInstanceOf(IllegalTransitionError);
      }
      expect(box.get('s1')!.status).toBe('sent');
    });

    it('keeps progress-only updates in memory and refuses anything else without a write', async () => {
      const box = await openBox();
      await box.submit(request({ id: 'p1' }));
      await box.update('p1', { status: 'sending' });
      const changed: number[] = [];
      box.on('changed', (r: MessageRecord) => changed.push(r.progress));
      await box.update('p1', { progress: 0.5 }, { durable: false });
      expect(box.get('p1')!.progress).toBe(0.5);
      expect(JSON.parse(await readFile(join(dir, 'messages', 'p1.json'), 'utf8')).progress).toBe(0);
      expect(changed).toEqual([0.5]);
      await expect(box.update('p1', { status: 'sent' }, { durable: false })).rejects.toThrow(/only progress/);
    });

    it('returns frozen records', async () => {
      const box = await openBox();
      const { record } = await box.submit(request({ id: 'f1' }));
      expect(() => (record.to).push('x')).toThrow();
    });

    it('throws NotFound for an unknown id', async () => {
      const box = await openBox();
      await expect(box.update('nope', { attempts: 1 })).rejects.toMatchObject({ errorName: 'NotFound' });
    });
  });

  describe('cancel', () => {
    it('cancels queued and retrying messages, and removes their bytes', async () => {
      const box = await openBox();
      await box.submit(request({ id: 'c1' }));
      await box.submit(request({ id: 'c2' }));
      await box.update('c2', { status: 'sending' });
      await box.update('c2', { status: 'retrying', notBefore: now + 1000 });
      expect((await box.cancel('c1')).status).toBe('cancelled');
      expect((await box.cancel('c2')).status).toBe('cancelled');
      expect(await readdir(join(dir, 'attachments'))).toEqual([]);
      expect(box.queueLength()).toBe(0);
    });

    it('refuses a message being sent, a final one and an unknown id', async () => {
      const box = await openBox();
      await box.submit(request({ id: 'c3' }));
      await box.update('c3', { status: 'sending' });
      const err = await box.cancel('c3').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RequestError);
      expect((err as RequestError).errorName).toBe('NotCancellable');
      await box.update('c3', { status: 'sent' });
      await expect(box.cancel('c3')).rejects.toMatchObject({ errorName: 'NotCancellable' });
      await expect(box.cancel('zzz')).rejects.toMatchObject({ errorName: 'NotFound' });
    });
  });

  it('removes the attachment bytes when a message is sent or cancelled, and keeps the metadata', async () => {
    const box = await openBox();
    await box.submit(request({ id: 'b1' }));
    await box.submit(request({ id: 'b2' }));
    expect(await readdir(join(dir, 'attachments', 'b1'))).toEqual(['0', '1']);
    await box.update('b1', { status: 'sending' });
    await box.update('b1', { status: 'sent' });
    await box.cancel('b2');
    expect(await readdir(join(dir, 'attachments'))).toEqual([]);
    expect(box.get('b1')!.attachments).toHaveLength(2);
    await expect(box.readAttachment('b1', 0)).rejects.toThrow(/gone/);
    await expect(box.resendSource('b1')).rejects.toMatchObject({ errorName: 'NotResendable', message: expect.stringMatching(/b1 is sent; only unknown or failed/) });
  });

  it('keeps the bytes of an unknown or failed message for a resend until retention removes it', async () => {
    const box = await openBox(1);
    await box.submit(request({ id: 'k1' }));
    await box.submit(request({ id: 'k2' }));
    for (const [id, status] of [['k1', 'unknown'], ['k2', 'failed']] as const) {
      await box.update(id, { status: 'sending' });
      await box.update(id, { status, error: { code: 775, name: 'Timeout' } });
    }
    expect((await readdir(join(dir, 'attachments'))).sort()).toEqual(['k1', 'k2']);
    const src = await box.resendSource('k1');
    expect(src.record.status).toBe('unknown');
    expect(src.attachments).toEqual([
      { name: 'a.txt', contentType: 'text/plain', data: Buffer.from('text part') },
      { name: 'b.jpg', contentType: 'image/jpeg', data: Buffer.alloc(3000, 0xab) },
    ]);
    // A restart does not take them for orphans.
    await box.stop();
    const again = await openBox(1);
    expect((await again.resendSource('k2')).attachments).toHaveLength(2);
    now += 1 * DAY + 1;
    await again.removeExpired();
    expect(await readdir(join(dir, 'attachments'))).toEqual([]);
  });

  it('refuses a resend of a message under way, an unknown id, lost bytes and damaged bytes, by name', async () => {
    const box = await openBox();
    await box.submit(request({ id: 'n1' }));
    await expect(box.resendSource('n1')).rejects.toMatchObject({ errorName: 'NotResendable', message: expect.stringMatching(/n1 is queued; .*cancel it first/) });
    await expect(box.resendSource('nope')).rejects.toMatchObject({ errorName: 'NotFound' });
    await box.update('n1', { status: 'sending' });
    await box.update('n1', { status: 'unknown' });
    await writeFile(join(dir, 'attachments', 'n1', '1'), Buffer.alloc(3000, 0xac));
    await expect(box.resendSource('n1')).rejects.toMatchObject({ errorName: 'NotResendable', message: expect.stringMatching(/b\.jpg of message n1 is damaged/) });
    await rm(join(dir, 'attachments', 'n1'), { recursive: true });
    await expect(box.resendSource('n1')).rejects.toMatchObject({ errorName: 'NotResendable', message: expect.stringMatching(/attachments of message n1 are no longer in the spool/) });
  });

  describe('order', () => {
    it('gives the oldest due message first, and when the next retry is due', async () => {
      const box = await openBox();
      await box.submit(request({ id: 'o1' }));
      now += 10;
      await box.submit(request({ id: 'o2' }));
      now += 10;
      await box.submit(request({ id: 'o3' }));
      expect(box.next(now)!.id).toBe('o1');
      await box.update('o1', { status: 'sending' });
      await box.update('o1', { status: 'retrying', notBefore: now + 60_000 });
      expect(box.next(now)!.id).toBe('o2');
      expect(box.next(now + 60_000)!.id).toBe('o1');
      expect(box.nextDueAt()).toBe(now + 60_000);
      await box.update('o2', { status: 'sending' });
      expect(box.next(now)!.id).toBe('o3');
      expect(box.queueLength()).toBe(3);
      await box.cancel('o3');
      expect(box.next(now)).toBeUndefined();
      expect(box.list().map((r) => r.id)).toEqual(['o1', 'o2', 'o3']);
    });

    it('puts a message back in the queue uncounted behind the messages due, also after a restart (§14)', async () => {
      const box = await openBox();
      await box.submit(request({ id: 'h1' }));
      now += 10;
      await box.submit(request({ id: 'h2' }));
      now += 10;
      await box.submit(request({ id: 'h3' }));
      now += 10;
      await box.update('h1', { status: 'sending', attempts: 1 });
      const back = await box.update('h1', { status: 'queued', attempts: 0 });
      expect(back.requeuedAt).toBe(now);
      expect(box.next(now)!.id).toBe('h2');
      // A message submitted after it went back comes after it.
      now += 10;
      await box.submit(request({ id: 'h4' }));
      await box.update('h2', { status: 'sending' });
      await box.update('h2', { status: 'sent' });
      await box.update('h3', { status: 'sending' });
      await box.update('h3', { status: 'sent' });
      expect(box.next(now)!.id).toBe('h1');
      // Caught `sending` by a crash: requeued at the start behind the others too.
      await box.update('h1', { status: 'sending', attempts: 1 });
      await box.stop();
      now += 10;
      const again = new Outbox({ dir, logger, clock: () => now, retentionDays: 7 });
      boxes.push(again);
      await again.start();
      expect(again.get('h1')).toMatchObject({ status: 'queued', requeuedAt: now });
      expect(again.next(now)!.id).toBe('h4');
    });
  });

  describe('recovery at start', () => {
    it('refuses a second outbox on a locked spool before reading it: the message in flight stays sending', async () => {
      const box = await openBox();
      await box.submit(request({ id: 'busy' }));
      await box.update('busy', { status: 'sending', attempts: 1, ramFiles: ['busy_a.txt'], sendAccepted: true });
      const file = join(dir, 'messages', 'busy.json');
      const before = await readFile(file, 'utf8');

      const second = new Outbox({ dir, logger, clock: () => now + 1000, retentionDays: 7 });
      const err = await second.start().then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(SpoolLockError);
      expect((err as SpoolLockError).holder).toBe(process.pid);
      expect((err as Error).message).toContain(`pid ${process.pid}`);
      expect(await readFile(file, 'utf8')).toBe(before);
      expect(JSON.parse(before)).toMatchObject({ status: 'sending', sendAccepted: true });
      expect(second.list()).toEqual([]);

      // Once the first one stops, the spool is free again.
      await box.stop();
      boxes.push(second);
      expect((await second.start()).unknown).toEqual(['busy']);
    });

    it('requeues a message caught sending before AT+QMMSEND was accepted', async () => {
      const box = await openBox();
      await box.submit(request({ id: 'r1' }));
      await box.update('r1', { status: 'sending', attempts: 1, ramFiles: ['r1_a.txt', 'r1_b.jpg'], progress: 0.5 });
      await box.stop();

      const again = new Outbox({ dir, logger, clock: () => now, retentionDays: 7, lockSpool: false });
      boxes.push(again);
      const report = await again.start();
      expect(report.requeued).toEqual(['r1']);
      expect(report.unknown).toEqual([]);
      expect(report.leftoverRamFiles.sort()).toEqual(['r1_a.txt', 'r1_b.jpg']);
      expect(again.get('r1')!.status).toBe('queued');
      expect(again.get('r1')!.progress).toBe(0);
      expect(await again.readAttachment('r1', 1)).toEqual(Buffer.alloc(3000, 0xab));
      // the daemon deletes the files in the module, then clears the journal
      const cleared = await again.update('r1', { ramFiles: [] });
      expect(cleared.ramFiles).toEqual([]);
    });

    it('marks unknown a message caught sending after AT+QMMSEND was accepted, and never requeues it', async () => {
      const box = await openBox();
      await box.submit(request({ id: 'r2' }));
      await box.update('r2', { status: 'sending', attempts: 1, ramFiles: ['r2_a.txt'], sendAccepted: true });
      await box.stop();

      const b = new Outbox({ dir, logger, clock: () => now, retentionDays: 7, lockSpool: false });
      boxes.push(b);
      const report = await b.start();
      expect(report.unknown).toEqual(['r2']);
      expect(report.requeued).toEqual([]);
      expect(report.leftoverRamFiles).toEqual(['r2_a.txt']);
      expect(b.get('r2')).toMatchObject({ status: 'unknown', error: RESULT_UNKNOWN_ERROR });
      expect(b.next(now)).toBeUndefined();
      // Kept for a resend (mmsctl resend), until retention.
      expect(await readdir(join(dir, 'attachments'))).toEqual(['r2']);
      // the recovered state is durable: a third start sees it as is
      const c = new Outbox({ dir, logger, clock: () => now, retentionDays: 7, lockSpool: false });
      boxes.push(c);
      const third = await c.start();
      expect(third.unknown).toEqual([]);
      expect(c.get('r2')!.status).toBe('unknown');
    });

    it('reports RAM files of queued and retrying messages, not of cleaned-up ones', async () => {
      const box = await openBox();
      await box.submit(request({ id: 'q1' }));
      await box.update('q1', { status: 'sending', ramFiles: ['q1_x'] });
      await box.update('q1', { status: 'retrying', notBefore: now + 1 });
      await box.submit(request({ id: 'q2' }));
      await box.update('q2', { status: 'sending', ramFiles: ['q2_x'] });
      await box.update('q2', { status: 'sent' });
      await box.update('q2', { ramFiles: [] });
      const b = new Outbox({ dir, logger, clock: () => now, retentionDays: 7, lockSpool: false });
      boxes.push(b);
      expect((await b.start()).leftoverRamFiles).toEqual(['q1_x']);
    });

    it('moves a corrupt record aside and carries on', async () => {
      const box = await openBox();
      await box.submit(request({ id: 'good' }));
      await writeFile(join(dir, 'messages', 'bad.json'), '{"id": "bad", "status": "que');
      await writeFile(join(dir, 'messages', 'wrong.json'), JSON.stringify({ id: 'other', status: 'queued' }));
      await writeFile(join(dir, 'messages', '.good.json.1234.tmp'), 'half-written');
      const b = new Outbox({ dir, logger, clock: () => now, retentionDays: 7, lockSpool: false });
      boxes.push(b);
      const report = await b.start();
      expect(report.loaded).toBe(1);
      expect(b.get('good')!.status).toBe('queued');
      const aside = await readdir(join(dir, 'messages', 'corrupt'));
      expect(aside.sort()).toEqual([`bad.json.${now}`, `wrong.json.${now}`]);
      expect((await readdir(join(dir, 'messages'))).sort()).toEqual(['corrupt', 'good.json']);
    });

    it('removes attachment bytes left by a submit that crashed before its record', async () => {
      const box = await openBox();
      await box.submit(request({ id: 'keep' }));
      await rm(join(dir, 'messages', 'keep.json'));
      const b = new Outbox({ dir, logger, clock: () => now, retentionDays: 7, lockSpool: false });
      boxes.push(b);
      await b.start();
      expect(await readdir(join(dir, 'attachments'))).toEqual([]);
    });
  });

  describe('retention', () => {
    it('removes final messages older than retentionDays, at start and on the sweep', async () => {
      const box = await openBox(2);
      await box.submit(request({ id: 'old' }));
      await box.cancel('old');
      now += DAY;
      await box.submit(request({ id: 'young' }));
      await box.cancel('young');
      await box.submit(request({ id: 'waiting' }));
      now += DAY + 1;
      const removed: string[] = [];
      box.on('removed', (id: string) => removed.push(id));
      expect(await box.removeExpired()).toEqual(['old']);
      expect(removed).toEqual(['old']);
      expect(box.get('old')).toBeUndefined();
      expect(await readdir(join(dir, 'messages'))).not.toContain('old.json');

      now += DAY;
      const b = new Outbox({ dir, logger, clock: () => now, retentionDays: 2, lockSpool: false });
      boxes.push(b);
      const report = await b.start();
      expect(report.loaded).toBe(2);
      expect(b.list().map((r) => r.id)).toEqual(['waiting']);
      // a resubmission with a forgotten id is a new message
      expect((await b.submit(request({ id: 'old' }))).created).toBe(true);
    });

    it('keeps a final message whose RAM files are not yet cleaned up', async () => {
      const box = await openBox(1);
      await box.submit(request({ id: 'ram' }));
      await box.update('ram', { status: 'sending', ramFiles: ['ram_a'] });
      await box.update('ram', { status: 'sent' });
      now += 3 * DAY;
      expect(await box.removeExpired()).toEqual([]);
      await box.update('ram', { ramFiles: [] });
      now += 2 * DAY;
      expect(await box.removeExpired()).toEqual(['ram']);
    });
  });

  it('starts up with 10,000 queued messages (measured, not asserted)', async () => {
    const box = await openBox();
    const records: string[] = [];
    // Written directly (the format submit writes), to measure start-up rather than 10,000 fsyncs.
    const { record } = await box.submit(request({ id: 'template', attachments: [] }));
    for (let i = 0; i < 10_000; i++) {
      const id = `bulk-${String(i).padStart(5, '0')}`;
      records.push(id);
      await writeFile(join(dir, 'messages', `${id}.json`), JSON.stringify({ ...record, id, created: now + 1 + i, updated: now + 1 + i }));
    }
    await box.stop();
    const b = new Outbox({ dir, logger, clock: () => now, retentionDays: 7, lockSpool: false });
    boxes.push(b);
    const t0 = performance.now();
    const report = await b.start();
    const ms = performance.now() - t0;
    console.log(`outbox start-up with ${report.loaded} messages: ${ms.toFixed(0)} ms`);
    expect(report.loaded).toBe(10_001);
    expect(b.queueLength()).toBe(10_001);
    const t1 = performance.now();
    const first = b.next(now + 20_000);
    const t2 = performance.now();
    b.next(now + 20_000);
    console.log(`outbox next() over ${b.queueLength()} queued: ${(t2 - t1).toFixed(2)} ms cold, ${(performance.now() - t2).toFixed(2)} ms warm`);
    expect(first!.id).toBe('template');
  });
});
