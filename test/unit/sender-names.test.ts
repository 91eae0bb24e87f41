// RAM file names and the charset rules the sender applies (DESIGN.md §6, spec §2.2, §3.3).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isTextPart, subjectCharset, textCharset } from '../../src/sender/charsets.js';
import { RAM_PATH_MAX_BYTES, messagePrefix, ramFileName } from '../../src/sender/ram-names.js';
import { sendResultError } from '../../src/sender/sender.js';

describe('RAM file names', () => {
  it('are derived deterministically from message id, index and name', () => {
    expect(ramFileName('abc', 0, 'photo.jpg')).toBe(ramFileName('abc', 0, 'photo.jpg'));
    expect(ramFileName('abc', 0, 'photo.jpg')).toBe(`${messagePrefix('abc')}_0_photo.jpg`);
    expect(ramFileName('abc', 1, 'photo.jpg')).not.toBe(ramFileName('abc', 0, 'photo.jpg'));
    expect(ramFileName('abd', 0, 'photo.jpg')).not.toBe(ramFileName('abc', 0, 'photo.jpg'));
  });

  it('keep only safe characters and the extension', () => {
    expect(ramFileName('x', 2, '图片 "1";.JPG')).toMatch(/^m[0-9a-f]{10}_2_1\.JPG$/);
    expect(ramFileName('x', 0, '你好.txt')).toMatch(/_0_part\.txt$/);
    expect(ramFileName('x', 0, 'café menu.txt')).toMatch(/_0_cafe_menu\.txt$/);
  });

  it('fit RAM: + name in 80 bytes for any name and id, extension kept', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.string({ maxLength: 200 }), fc.integer({ min: 0, max: 11 }), (id, name, i) => {
        const n = ramFileName(id, i, name);
        expect(Buffer.byteLength('RAM:' + n)).toBeLessThanOrEqual(RAM_PATH_MAX_BYTES);
        expect(n).toMatch(/^[A-Za-z0-9._-]+$/);
      }),
    );
    const long = ramFileName('id', 11, 'a'.repeat(200) + '.jpeg');
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
