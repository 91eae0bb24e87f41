// mmsctl's argument handling that needs no bus (src/cli/mmsctl.ts).
import { describe, expect, it } from 'vitest';
import { describeStatus, EXIT, formatWait, main, parseAttach, watchLine } from '../../src/cli/mmsctl.js';

function capture(): { out: string[]; err: string[]; io: { out(l: string): void; err(l: string): void } } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (l) => out.push(l), err: (l) => err.push(l) } };
}

describe('mmsctl arguments', () => {
  it('splits FILE:TYPE only when the part after the last colon is a media type', () => {
    expect(parseAttach('a.jpg:image/jpeg')).toEqual({ file: 'a.jpg', contentType: 'image/jpeg' });
    expect(parseAttach('notes:2024.txt')).toEqual({ file: 'notes:2024.txt' });
    expect(parseAttach('x:y.txt:text/plain;charset=utf-8')).toEqual({ file: 'x:y.txt', contentType: 'text/plain;charset=utf-8' });
    expect(parseAttach('plain.bin')).toEqual({ file: 'plain.bin' });
  });

  it('exits with the usage code before touching the bus', async () => {
    for (const argv of [
      [], ['send'], ['send', '--to'], ['--bus', 'other', 'status'], ['show', 'a', 'b'], ['list', 'extra'], ['send', '--to', '1', '--priority', '-1'],
      ['resend'], ['resend', 'a', 'b'], ['resend', 'a', '--to', '+15551234'], ['resend', 'a', '--attach', 'x.jpg'],
      ['inbox', 'show'], ['inbox', 'show', 'a', 'b'], ['inbox', 'save', 'a'], ['inbox', 'delete'], ['inbox', 'retrieve', 'a', 'b'], ['inbox', 'open', 'a'],
      ['watch', 'extra'],
    ]) {
      const c = capture();
      expect(await main(argv, c.io), argv.join(' ')).toBe(EXIT.usage);
      expect(c.err.join('\n')).toMatch(/^mmsctl: /);
    }
  });

  it('prints help with the exit codes', async () => {
    const c = capture();
    expect(await main(['--help'], c.io)).toBe(0);
    expect(c.out.join('\n')).toContain('6  cannot reach mmsd');
  });
});

describe('mmsctl watch lines', () => {
  const now = Date.UTC(2026, 11, 6, 11, 0, 0);
  it('names each event, the message by its id, and skips changes without a status', () => {
    expect(watchLine({ kind: 'delivery', path: '/', recipient: '+4917', status: 'rejected' }, now)).toEqual({ at: '2026-12-06T11:00:00.000Z', event: 'delivery', id: null, recipient: '+4917', status: 'rejected' });
    expect(watchLine({ kind: 'delivery', path: '/org/example/Mms1/message/a_2db', recipient: '+4917', status: 'retrieved' }, now)).toMatchObject({ id: 'a-b' });
    expect(watchLine({ kind: 'changed', path: '/org/example/Mms1/message/m1', iface: 'org.example.Mms1.Message', changed: { Progress: 0.5 } }, now)).toBeUndefined();
    expect(watchLine({ kind: 'changed', path: '/org/example/Mms1/message/m1', iface: 'org.example.Mms1.Message', changed: { Status: 'sent' } }, now)).toMatchObject({ event: 'message', id: 'm1', status: 'sent' });
    expect(
      watchLine({ kind: 'changed', path: '/org/example/Mms1/received/r1', iface: 'org.example.Mms1.Received', changed: { Status: 'received', Parts: [{ name: 'a.txt' }] } }, now),
    ).toMatchObject({ event: 'received', id: 'r1', status: 'received', parts: ['a.txt'] });
  });
});

describe('mmsctl status lines', () => {
  // Local time, as mmsctl prints it: 14:01:10 on some day.
  const now = new Date(2026, 10, 25, 14, 1, 10).getTime();

  it('says when a retrying message is tried next, and which attempt of how many it was', () => {
    const p = { Id: 'm1', Status: 'retrying' as const, Attempts: 2, NextAttempt: now + 120_000 };
    expect(describeStatus(p, 5, now)).toBe('retrying (attempt 2 of 5, next try in 2 min at 14:03:10)');
    expect(describeStatus({ ...p, NextAttempt: now + 30_000 }, 5, now)).toBe('retrying (attempt 2 of 5, next try in 30 s at 14:01:40)');
    expect(describeStatus({ ...p, NextAttempt: now - 1 }, 5, now)).toBe('retrying (attempt 2 of 5, next try due now)');
    // A next try on another day carries its date.
    const tomorrow = new Date(2026, 10, 26, 9, 0, 0).getTime();
    expect(describeStatus({ ...p, NextAttempt: tomorrow }, 5, now)).toBe('retrying (attempt 2 of 5, next try in 18 h 59 min at 2026-11-26 09:00:00)');
    // An older daemon without MaxAttempts/NextAttempt: what is known.
    expect(describeStatus({ Id: 'm1', Status: 'retrying', Attempts: 3 }, undefined, now)).toBe('retrying (attempt 3)');
  });

  it('tells what to do about an unknown or failed message', () => {
    expect(describeStatus({ Id: 'm7', Status: 'unknown', Attempts: 1, NextAttempt: 0 }, 5, now)).toBe(
      'unknown (attempt 1): the MMSC may or may not have it; `mmsctl resend m7` sends it again',
    );
    expect(describeStatus({ Id: 'm8', Status: 'failed', Attempts: 5, NextAttempt: 0 }, 5, now)).toBe(
      'failed (attempt 5): `mmsctl resend m8` sends it again once the cause is fixed',
    );
    expect(describeStatus({ Id: 'm9', Status: 'sending', Attempts: 1, NextAttempt: 0 }, 5, now)).toBe('sending (attempt 1 of 5)');
    expect(describeStatus({ Id: 'm9', Status: 'queued', Attempts: 0, NextAttempt: 0 }, 5, now)).toBe('queued');
  });

  it('rounds waits to what a person reads', () => {
    expect([400, 45_000, 89_000, 150_000, 3_600_000, 5_400_000].map(formatWait)).toEqual(['1 s', '45 s', '1 min', '3 min', '1 h', '1 h 30 min']);
  });
});
