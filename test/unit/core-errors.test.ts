// errorText: the one way src/ turns anything thrown into the text a log line or a client sees.
import { describe, expect, it } from 'vitest';
import { errorText } from '../../src/core/errors.js';

describe('errorText', () => {
  it("gives an Error's message, without its name", () => {
    expect(errorText(new TypeError('bad thing'))).toBe('bad thing');
  });

  it('gives a thrown string as it is', () => {
    expect(errorText('plain words')).toBe('plain words');
  });

  it('gives a thrown object that is not an Error by String()', () => {
    expect(errorText({ code: 7 })).toBe('[object Object]');
    expect(errorText({ toString: () => 'custom text' })).toBe('custom text');
    expect(errorText(42)).toBe('42');
  });

  it('gives undefined and null as words', () => {
    expect(errorText(undefined)).toBe('undefined');
    expect(errorText(null)).toBe('null');
  });
});
