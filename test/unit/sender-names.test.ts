// RAM file names and the charset rules the sender applies (DESIGN.md §6, spec §2.2, §3.3).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isTextPart, subjectCharset, textCharset } from '../../src/sender/charsets.js';
import { RAM_PATH_MAX_BYTES, ramFileNames } from '../../src/sender/ram-names.js';
import { sendResultError } from '../../src/sender/sender.js';

const named = (...names: string[]): { name: string }[] => names.map((name) => ({ name }));

describe('RAM file names', () => {
  it('carry the extension of the content type the client gave, so the module types the part right', () => {
    expect(ramFileNames([{ name: 'picture', contentType: 'image/png' }])).toEqual(['picture.png']);
    expect(ramFileNames([{ name: 'scan.dat', contentType: 'image/jpeg' }])).toEqual(['scan.jpg']);
    expect(ramFileNames([{ name: 'note.txt', contentType: 'text/plain; charset=utf-8' }])).toEqual(['note.txt']);
    expect(ramFileNames([{ name: 'blob', contentType: 'application/x-unknown' }])).toEqual(['blob']);
  });

  it('are the parts\' own names, deterministic and unique within the message', () => {
    expect(ramFileNames(named('photo.jpg', 'note.txt'))).toEqual(['photo.jpg', 'note.txt']);
    expect(ramFileNames(named('a.b.jpg', 'a_b.jpg'))).toEqual(['a_b.jpg', 'a_b-2.jpg']);
    expect(ramFileNames(named('x.png', 'X.png'))).toEqual(['x.png', 'X-2.png']);
  });

  it('keep only safe characters and the extension', () => {
    expect(ramFileNames(named('图片 "1";.JPG'))).toEqual(['1.JPG']);
    expect(ramFileNames(named('你好.txt'))).toEqual(['part.txt']);
    expect(ramFileNames(named('café menu.txt'))).toEqual(['cafe_menu.txt']);
  });

  it('fit RAM: + name in 80 bytes for any names, extension kept, all distinct', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 200 }), { minLength: 1, maxLength: 12 }), (names) => {
        const out = ramFileNames(named(...names));
        for (const n of out) {
          expect(Buffer.byteLength('RAM:' + n)).toBeLessThanOrEqual(RAM_PATH_MAX_BYTES);
          expect(n).toMatch(/^[A-Za-z0-9._-]+$/);
        }
        expect(new Set(out.map((n) => n.toLowerCase())).size).toBe(out.length);
      }),
    );
    const [long] = ramFileNames(named('a'.repeat(200) + '.jpeg'));
    expect(Buffer.byteLength('RAM:' + long)).toBe(RAM_PATH_MAX_BYTES);
    expect(long.endsWith('.jpeg')).toBe(true);
  });
});

describe('charsets', () => {
  it('puts a plain ASCII subject under ASCII and any other under the configured charset', () => {
    expect(subjectCharset('Hello there', 'UTF8')).toBe('ASCII');
    expect(subjectCharset('测试', 'UTF8')).toBe('UTF8');
    expect(subjectCharset('测试', 'GBK')).toBe('GBK');
    expect(subjectCharset('测试', 'ASCII')).toBe('UTF8');
    expect(subjectCharset('a "quoted" one', 'UTF8')).toBe('UTF8');
    expect(subjectCharset('a;b', 'UCS2')).toBe('UCS2');
  });

  it('uses a text part’s own charset, UTF8 when it names none the module knows', () => {
    expect(isTextPart('text/plain; charset=utf-8')).toBe(true);
    expect(isTextPart('image/jpeg')).toBe(false);
    expect(textCharset('text/plain')).toBe('UTF8');
    expect(textCharset('text/plain; charset="US-ASCII"')).toBe('ASCII');
    expect(textCharset('text/plain;charset=gb2312')).toBe('GBK');
    expect(textCharset('text/plain; charset=koi8-r')).toBe('UTF8');
  });
});

describe('error names', () => {
  it('name every code by the spec table and HTTP statuses by §6', () => {
    expect(sendResultError(765, 0)).toEqual({ code: 765, name: 'Server response failed' });
    expect(sendResultError(766, 403, 'Forbidden')).toEqual({
      code: 766,
      name: 'Error response of HTTP(S) post',
      httpStatus: 403,
      mmscResponse: 'Forbidden',
    });
    expect(sendResultError(0, 404)).toEqual({ code: 0, name: 'HTTP 404 Not found', httpStatus: 404 });
    expect(sendResultError(0, 0, undefined, 'Send not accepted')).toEqual({ code: 0, name: 'Send not accepted' });
  });
});
