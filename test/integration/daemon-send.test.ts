// The daemon end to end (issue: daemon): the real mmsd process, the virtual modem on a real pty,
// the loopback MMSC, a private D-Bus bus. What the MMSC received is the proof.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pseudoImage, sha256, startStack, transcript, type Stack } from '../helpers/stack.js';

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
    const st = (await s.tb.simState()) as { ramFiles?: unknown[] };
    expect(st.ramFiles).toEqual([]);
    const all = (await transcript(s.tb)).filter((c) => /QMMSEDIT|QFUPL|QMMSEND|QFDEL|"character"/.test(c));
    const at = all.slice(all.indexOf('AT+QMMSEDIT=0')); // after the start-up settings
    const send = at.indexOf('AT+QMMSEND=300');
    expect(send).toBeGreaterThan(0);
    expect(at.slice(0, send)).toEqual([
      'AT+QMMSEDIT=0',
      expect.stringMatching(/^AT\+QFUPL="RAM:note\.txt",\d+,\d+,1$/),
      expect.stringMatching(/^AT\+QFUPL="RAM:photo\.jpg",102400,\d+,1$/),
      'AT+QMMSCFG="character","ASCII"',
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
});
