// The sim's AT command-line parser and its RAM file store helpers.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { intParam, parseCommand, parseCommandLine, splitParams } from '../../src/sim/at-parser.js';
import { RamFileStore, isValidRamName } from '../../src/sim/ram-files.js';

describe('parseCommand', () => {
  it('tells the four forms of an extended command apart (spec §1.2 Table 1)', () => {
    expect(parseCommand('+QMMSCFG=?')).toEqual({ name: '+QMMSCFG', form: 'test', params: [], basicArg: '' });
    expect(parseCommand('+QMMSCFG?')).toEqual({ name: '+QMMSCFG', form: 'query', params: [], basicArg: '' });
    expect(parseCommand('+CIMI')).toEqual({ name: '+CIMI', form: 'exec', params: [], basicArg: '' });
    expect(parseCommand('+qmmsEdit=4,1,"a b"')).toEqual({
      name: '+QMMSEDIT',
      form: 'set',
      params: [
        { value: '4', quoted: false },
        { value: '1', quoted: false },
        { value: 'a b', quoted: true },
      ],
      basicArg: '',
    });
  });

  it('parses basic commands with their argument', () => {
    expect(parseCommand('E0')).toMatchObject({ name: 'E', basicArg: '0' });
    expect(parseCommand('I')).toMatchObject({ name: 'I', basicArg: '' });
    expect(parseCommand('')).toMatchObject({ name: '', form: 'exec' });
    expect(parseCommand('E0+CMEE')).toBeUndefined();
  });

  it('splits a chained line into its commands (V.250 §5.4)', () => {
    expect(parseCommandLine('+CMEE=1;+CGREG=2')?.map((c) => [c.name, c.form, c.params.map((p) => p.value)])).toEqual([
      ['+CMEE', 'set', ['1']],
      ['+CGREG', 'set', ['2']],
    ]);
    expect(parseCommandLine('E0V1')?.map((c) => [c.name, c.basicArg])).toEqual([
      ['E', '0'],
      ['V', '1'],
    ]);
    expect(parseCommandLine('E0&F+CSQ;+CMEE?;I')?.map((c) => [c.name, c.form])).toEqual([
      ['E', 'exec'],
      ['&F', 'exec'],
      ['+CSQ', 'exec'],
      ['+CMEE', 'query'],
      ['I', 'exec'],
    ]);
    expect(parseCommandLine('+CMEE=1;')).toHaveLength(1);
    expect(parseCommandLine('')).toEqual([{ name: '', form: 'exec', params: [], basicArg: '' }]);
  });

  it('keeps a ";" inside quotes and refuses one after a basic command or an empty command', () => {
    expect(parseCommandLine('+QMMSEDIT=4,1,"a;b";+CSQ')?.map((c) => c.params.map((p) => p.value))).toEqual([['4', '1', 'a;b'], []]);
    expect(parseCommandLine('E0;+CMEE=1')).toBeUndefined();
    expect(parseCommandLine('+CMEE=1;;+CSQ')).toBeUndefined();
    expect(parseCommandLine('+CMEE=1;+')).toBeUndefined();
    expect(parseCommandLine('+QMMSCFG="mmsc;+CSQ')).toBeUndefined();
    expect(parseCommand('+CMEE=1;+CSQ')).toBeUndefined();
  });

  it('keeps commas inside quotes and blanks around parameters out (spec §3.3 "character", "ASCII")', () => {
    expect(splitParams('"character", "ASCII"')).toEqual([
      { value: 'character', quoted: true },
      { value: 'ASCII', quoted: true },
    ]);
    expect(splitParams('"a,b",,3')).toEqual([
      { value: 'a,b', quoted: true },
      { value: '', quoted: false },
      { value: '3', quoted: false },
    ]);
  });

  it('refuses an unterminated quote, text after a quote, and ";"', () => {
    expect(splitParams('"abc')).toBeUndefined();
    expect(splitParams('"a"b')).toBeUndefined();
    expect(splitParams('1;2')).toBeUndefined();
  });

  it('round-trips any list of quoted strings without quotes', () => {
    fc.assert(
      fc.property(fc.array(fc.string().filter((s) => !s.includes('"')), { minLength: 1, maxLength: 8 }), (values) => {
        const parsed = splitParams(values.map((v) => `"${v}"`).join(','));
        expect(parsed).toEqual(values.map((value) => ({ value, quoted: true })));
      }),
    );
  });

  it('reads integers only from unquoted digits', () => {
    expect(intParam({ value: '12', quoted: false })).toBe(12);
    expect(intParam({ value: '12', quoted: true })).toBeUndefined();
    expect(intParam({ value: '-1', quoted: false })).toBeUndefined();
    expect(intParam(undefined)).toBeUndefined();
  });
});

describe('RAM file names and store', () => {
  it('accepts RAM: names up to 80 bytes in all, without wildcards', () => {
    expect(isValidRamName(`RAM:${'a'.repeat(76)}`)).toBe(true);
    expect(isValidRamName(`RAM:${'a'.repeat(77)}`)).toBe(false);
    expect(isValidRamName('RAM:')).toBe(false);
    expect(isValidRamName('RAM:*')).toBe(false);
    expect(isValidRamName('UFS:a')).toBe(false);
  });

  it('lists in insertion order by pattern and counts free space', () => {
    const store = new RamFileStore(100);
    store.put('RAM:b.txt', Buffer.alloc(10));
    store.put('RAM:a.jpg', Buffer.alloc(20));
    expect(store.list().map((f) => f.name)).toEqual(['RAM:b.txt', 'RAM:a.jpg']);
    expect(store.list('RAM:*.jpg').map((f) => f.name)).toEqual(['RAM:a.jpg']);
    expect(store.free).toBe(70);
  });
});
