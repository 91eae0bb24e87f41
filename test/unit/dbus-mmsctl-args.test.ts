// mmsctl's argument handling that needs no bus (src/cli/mmsctl.ts).
import { describe, expect, it } from 'vitest';
import { EXIT, main, parseAttach } from '../../src/cli/mmsctl.js';

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
    for (const argv of [[], ['send'], ['send', '--to'], ['--bus', 'other', 'status'], ['show', 'a', 'b'], ['list', 'extra'], ['send', '--to', '1', '--priority', '-1']]) {
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
