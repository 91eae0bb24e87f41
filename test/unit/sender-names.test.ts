// The charset rules the sender applies and the names of its errors (DESIGN.md §6, spec §3.3, §5, §6).
// (RAM file names are core's attachment names: test/unit/attachment-names.test.ts.)
import { describe, expect, it } from 'vitest';
import { isTextPart, subjectCharset, textCharset } from '../../src/core/charset.js';
import { sendResultError } from '../../src/sender/sender.js';

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
