// The daemon end to end (issue: daemon): the real mmsd process, the virtual modem on a real pty,
// the loopback MMSC, a private D-Bus bus. What the MMSC received is the proof.
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import dbus from 'dbus-next';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pseudoImage, sha256, startStack, transcript, until, type Stack } from '../helpers/stack.js';

describe('mmsd sends through the virtual modem', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack();
    await s.tb.modemReady();
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('delivers 3 TO, 2 CC, 1 BCC, a Chinese subject, a UTF-8 text part and a 100 KB image intact', async () => {
    const text = Buffer.from('你好 — a text part in UTF-8 ✓\n');
    const image = pseudoImage(100 * 1024);
    const path = await s.client.sendData(
      {
        to: ['+15550000001', '+15550000002', 'carol@example.com'],
        cc: ['+15550000003', 'dave@example.org'],
        bcc: ['+15550000004'],
        subject: '测试彩信：你好',
        id: 'e2e-1',
      },
      [
        { name: 'note.txt', contentType: 'text/plain; charset=utf-8', data: text },
        { name: 'photo.jpg', data: image },
      ],
    );
    const final = await s.final(path);
    expect(final.Status).toBe('sent');
    expect(final.Error).toBe('');

    const got = await s.tb.received();
    expect(got).toHaveLength(1);
    const m = got[0];
    expect(m.to).toEqual(['+15550000001', '+15550000002', 'carol@example.com']);
    expect(m.cc).toEqual(['+15550000003', 'dave@example.org']);
    expect(m.bcc).toEqual(['+15550000004']);
    expect(m.subject).toBe('测试彩信：你好');
    const parts = new Map(m.parts.map((p) => [p.name, p]));
    expect(parts.get('note.txt')).toMatchObject({ size: text.length, sha256: sha256(text) });
    expect(parts.get('note.txt')!.contentType).toMatch(/^text\/plain/);
    expect(parts.get('photo.jpg')).toMatchObject({ contentType: 'image/jpeg', size: image.length, sha256: sha256(image) });

    // No RAM file is left in the module, and the edit followed DESIGN.md §6.
    // (cleanup runs right after `sent` is published: poll for it with a deadline)
    const ram = async (): Promise<unknown[]> => ((await s.tb.simState()) as { ramFiles: unknown[] }).ramFiles;
    await until(async () => ((await ram()).length === 0 ? true : undefined), 5_000, 'RAM files deleted').catch(() => undefined);
    expect(await ram()).toEqual([]);
    const all = (await transcript(s.tb)).filter((c) => /QMMSEDIT|QFUPL|QFLDS|QMMSEND|QFDEL|"character"/.test(c));
    const at = all.slice(all.indexOf('AT+QMMSEDIT=0')); // after the start-up settings
    const send = at.indexOf('AT+QMMSEND=300');
    expect(send).toBeGreaterThan(0);
    expect(at.slice(0, send)).toEqual([
      'AT+QMMSEDIT=0',
      'AT+QFLDS="RAM"', // DESIGN.md §14: does the RAM hold the attachments?
      expect.stringMatching(/^AT\+QFUPL="RAM:note\.txt",\d+,\d+,1$/),
      expect.stringMatching(/^AT\+QFUPL="RAM:photo\.jpg",102400,\d+,1$/),
      // No charset command before the addresses: the start-up left "ASCII" in force.
      'AT+QMMSEDIT=1,1,"+15550000001"',
      'AT+QMMSEDIT=1,1,"+15550000002"',
      'AT+QMMSEDIT=1,1,"carol@example.com"',
      'AT+QMMSEDIT=2,1,"+15550000003"',
      'AT+QMMSEDIT=2,1,"dave@example.org"',
      'AT+QMMSEDIT=3,1,"+15550000004"',
      'AT+QMMSCFG="character","UTF8"',
      `AT+QMMSEDIT=4,1,"${Buffer.from('测试彩信：你好').toString('hex').toUpperCase()}"`,
      'AT+QMMSEDIT=5,1,"RAM:note.txt"',
      'AT+QMMSEDIT=5,1,"RAM:photo.jpg"',
    ]);
    expect(at.slice(send + 1)).toEqual(['AT+QMMSEDIT=0', 'AT+QFDEL="RAM:note.txt"', 'AT+QFDEL="RAM:photo.jpg"']);
  });

  it('SendMessage reads a path inside attachments.allowedDirs, and the parts arrive intact', async () => {
    const file = join(s.tb.incomingDir, 'reading.csv');
    const data = Buffer.from('sensor,value\ntemp,21.5\n');
    await writeFile(file, data);
    const seen: string[] = [];
    const path = await s.client.sendPaths({ to: ['+15550000009'], subject: 'paths', id: 'e2e-path' }, [{ path: file }]);
    const final = await s.client.follow(path, (p) => {
      if (seen.at(-1) !== p.Status) seen.push(p.Status);
    });
    expect(final.Status).toBe('sent');
    expect(seen.at(-1)).toBe('sent');
    expect(seen).toContain('sending');
    const m = (await s.tb.received()).find((r) => r.subject === 'paths');
    expect(m?.parts.find((p) => p.name === 'reading.csv')).toMatchObject({ size: data.length, sha256: sha256(data) });
  });

  it('names every part for the recipient exactly as the daemon recorded it (résumé (final).pdf → resume_final.pdf)', async () => {
    const given = [
      { name: 'résumé (final).pdf', data: Buffer.from('%PDF-1.4 cv\n') },
      { name: 'Foto vom Garten 1.JPG', data: pseudoImage(2048, 3) },
      { name: 'scan.dat', contentType: 'image/jpeg', data: pseudoImage(1024, 4) },
      { name: '你好.txt', contentType: 'text/plain; charset=utf-8', data: Buffer.from('你好\n') },
      { name: `${'Ä'.repeat(30)} ${'b'.repeat(60)}.png`, contentType: 'image/png', data: Buffer.from('png') },
      { name: 'Photo.png', data: Buffer.from('one') },
      { name: 'photo.png', data: Buffer.from('two') },
    ];
    const final = await s.final(await s.client.sendData({ to: ['+15550000010'], subject: 'names', id: 'e2e-names' }, given));
    expect(final.Status).toBe('sent');

    // The name the daemon keeps for each part (what a client is shown, and what a resend sends).
    const record = JSON.parse(await readFile(join(s.tb.stateDir, 'messages', 'e2e-names.json'), 'utf8')) as { attachments: { name: string }[] };
    const recorded = record.attachments.map((a) => a.name);
    expect(recorded).toEqual([
      'resume_final.pdf',
      'Foto_vom_Garten_1.JPG',
      'scan.jpg',
      'part.txt',
      `${'A'.repeat(30)}_${'b'.repeat(76 - 4 - 31)}.png`,
      'Photo.png',
      'photo-2.png',
    ]);

    // What the loopback MMSC stored (--store): the same names, in the same order, the same bytes.
    const folders = await readdir(s.tb.storeDir);
    const stored = await Promise.all(
      folders.map(async (f) => JSON.parse(await readFile(join(s.tb.storeDir, f, 'message.json'), 'utf8')) as { subject: string | null; parts: { name: string; sha256: string; contentType: string }[] }),
    );
    const m = stored.find((x) => x.subject === 'names');
    const parts = m!.parts.filter((p) => p.contentType !== 'application/smil');
    expect(parts.map((p) => p.name)).toEqual(recorded);
    expect(parts.map((p) => p.sha256)).toEqual(given.map((g) => sha256(g.data)));
  });

  it('refuses bad requests with named errors, and nothing reaches the modem', async () => {
    const before = (await transcript(s.tb)).length;
    const outside = join(s.tb.dir, 'secret.txt');
    await writeFile(outside, 'not yours');
    await mkdir(join(s.tb.incomingDir, 'sub'), { recursive: true });
    await symlink(outside, join(s.tb.incomingDir, 'sub', 'link.txt'));
    const big = Buffer.alloc(307_201, 1);
    const one = [{ name: 'a.txt', data: Buffer.from('a') }];
    const cases: [string, () => Promise<string>][] = [
      ['TooManyRecipients', () => s.client.sendData({ to: Array.from({ length: 7 }, (_, i) => `+1555000010${i}`) }, one)],
      ['InvalidRecipient', () => s.client.sendData({ to: ['+1555";AT+CFUN=0'] }, one)],
      ['SubjectTooLong', () => s.client.sendData({ to: ['+15550000001'], subject: '长'.repeat(67) }, one)],
      ['TooManyAttachments', () => s.client.sendData({ to: ['+15550000001'] }, Array.from({ length: 13 }, (_, i) => ({ name: `p${i}.txt`, data: Buffer.from('x') })))],
      ['AttachmentNotAllowed', () => s.client.sendPaths({ to: ['+15550000001'] }, [{ path: join(s.tb.incomingDir, 'sub', 'link.txt') }])],
      ['AttachmentNotAllowed', () => s.client.sendPaths({ to: ['+15550000001'] }, [{ path: outside }])],
      ['AttachmentNotFound', () => s.client.sendPaths({ to: ['+15550000001'] }, [{ path: join(s.tb.incomingDir, 'missing.jpg') }])],
      ['MessageTooLarge', () => s.client.sendData({ to: ['+15550000001'] }, [{ name: 'big.bin', data: big }])],
      ['InvalidOption', () => s.client.sendData({ to: ['+15550000001'], options: { validity: 9 } }, one)],
    ];
    for (const [name, call] of cases) {
      const err = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, name).toBeInstanceOf(dbus.DBusError);
      expect((err as InstanceType<typeof dbus.DBusError>).type, name).toBe(`org.example.Mms1.Error.${name}`);
    }
    const after = (await transcript(s.tb)).slice(before);
    expect(after.filter((c) => /QMMSEDIT=[1-5],1|QFUPL/.test(c))).toEqual([]);
  });
});
