// classifyLine: the one place every received line is sorted (reference-ril processLine).
import { describe, expect, it } from 'vitest';
import { classifyLine, responsePrefixOf, type LineContext } from '../../src/at/lines.js';

/** What a driver registered (the channel knows no URC of its own). */
const URCS: readonly string[] = ['RDY', '+CEREG:', '+CPIN:', '+QMMSEND:'];
const idle: LineContext = { echoes: [], urcPrefixes: URCS };
const cmd = (command: string, prefix?: string, phase: LineContext['phase'] = 'command'): LineContext => ({
  phase,
  prefix,
  echoes: [command],
  urcPrefixes: URCS,
});

describe('classifyLine', () => {
  it('reads final result codes', () => {
    expect(classifyLine('OK', cmd('AT'))).toEqual({ kind: 'ok' });
    expect(classifyLine('ERROR', cmd('AT'))).toEqual({ kind: 'error', text: 'ERROR' });
    expect(classifyLine('NO CARRIER', cmd('AT'))).toEqual({ kind: 'error', text: 'NO CARRIER' });
    expect(classifyLine('+CME ERROR: 10', cmd('AT'))).toEqual({ kind: 'cme', code: 10 });
    expect(classifyLine('+CME ERROR: SIM busy', cmd('AT'))).toEqual({ kind: 'cme', code: -1, text: 'SIM busy' });
    expect(classifyLine('+CMS ERROR: 304', cmd('AT'))).toEqual({ kind: 'cms', code: 304 });
  });

  it('drops the echo of the command in flight and of the one before, whatever the case', () => {
    expect(classifyLine('AT+CSQ', cmd('AT+CSQ', '+CSQ:'))).toEqual({ kind: 'echo' });
    expect(classifyLine('at+csq', cmd('AT+CSQ', '+CSQ:'))).toEqual({ kind: 'echo' });
    expect(classifyLine('AT+CSQ', { ...idle, echoes: ['AT+CSQ'] })).toEqual({ kind: 'echo' });
  });

  it('sorts info lines by prefix, registered URCs to the router, the rest to no one', () => {
    expect(classifyLine('+CPIN: READY', cmd('AT+CPIN?', '+CPIN:'))).toEqual({ kind: 'info' });
    expect(classifyLine('+CPIN: READY', cmd('AT+CSQ', '+CSQ:'))).toEqual({ kind: 'urc' });
    expect(classifyLine('+CPIN: READY', idle)).toEqual({ kind: 'urc' });
    expect(classifyLine('whatever', cmd('AT+CSQ', '+CSQ:'))).toEqual({ kind: 'unsolicited' });
    expect(classifyLine('+QIND: "csq",20,99', idle)).toEqual({ kind: 'unsolicited' });
    expect(classifyLine('+QIND: "csq",20,99', { ...idle, urcPrefixes: [...URCS, '+QIND:'] })).toEqual({ kind: 'urc' });
  });

  it('without a prefix takes any line that is not a registered URC as info', () => {
    expect(classifyLine('460001234567890', cmd('AT+CIMI'))).toEqual({ kind: 'info' });
    expect(classifyLine('RDY', cmd('AT+CIMI'))).toEqual({ kind: 'urc' });
    expect(classifyLine('+QMMSEND: 0,200', cmd('AT+CIMI'))).toEqual({ kind: 'urc' });
    expect(classifyLine('+QMMSEND: 0,200', { ...cmd('AT+CIMI'), urcPrefixes: [] })).toEqual({ kind: 'info' });
  });

  it('knows CONNECT only while a data-mode command waits for it, and its tokens only in data mode', () => {
    const data = { ...cmd('AT+QFUPL="RAM:a",1,5,1', '+QFUPL:', 'data'), tokens: ['A'] };
    expect(classifyLine('CONNECT', cmd('AT+QFUPL="RAM:a",1,5,1', undefined, 'connect'))).toEqual({ kind: 'connect' });
    expect(classifyLine('CONNECT', cmd('ATI'))).toEqual({ kind: 'info' });
    expect(classifyLine('A', data)).toEqual({ kind: 'token', token: 'A' });
    expect(classifyLine('A', { ...data, tokens: [] })).toEqual({ kind: 'unsolicited' });
    expect(classifyLine('A', cmd('ATI'))).toEqual({ kind: 'info' });
    expect(classifyLine('+QFUPL: 1,100', data)).toEqual({ kind: 'info' });
  });

  it('after a PDU command\'s header takes the next line as its PDU, unless it is a final code or a URC', () => {
    const ctx = { ...cmd('AT+CMGL=4', '+CMGL:'), bodyPending: true };
    expect(classifyLine('0791448720003023240DD0E4', ctx)).toEqual({ kind: 'body' });
    expect(classifyLine('+CMGL: 2,1,,37', ctx)).toEqual({ kind: 'body' });
    expect(classifyLine('+CEREG: 1', ctx)).toEqual({ kind: 'urc' });
    expect(classifyLine('OK', ctx)).toEqual({ kind: 'ok' });
    expect(classifyLine('+CMS ERROR: 500', ctx)).toEqual({ kind: 'cms', code: 500 });
    expect(classifyLine('0791448720003023240DD0E4', cmd('AT+CMGL=4', '+CMGL:'))).toEqual({ kind: 'unsolicited' });
  });

  it('while resynchronising keeps the probe answer and URCs and discards the rest', () => {
    const ctx = cmd('AT+CMEE?', '+CMEE:', 'resync');
    expect(classifyLine('+CMEE: 1', ctx)).toEqual({ kind: 'info' });
    expect(classifyLine('+CEREG: 1', ctx)).toEqual({ kind: 'urc' });
    expect(classifyLine('867698040123456', ctx)).toEqual({ kind: 'discard' });
  });

  it('marks empty and garbage lines', () => {
    expect(classifyLine('  ', idle)).toEqual({ kind: 'empty' });
    expect(classifyLine('\x00\x13', idle)).toEqual({ kind: 'garbage' });
    expect(classifyLine('ab\ufffdcd', cmd('ATI'))).toEqual({ kind: 'garbage' });
  });
});

describe('responsePrefixOf', () => {
  it('derives the info prefix of an extended command', () => {
    expect(responsePrefixOf('AT+QFUPL="RAM:a.jpg",10,60,1')).toBe('+QFUPL:');
    expect(responsePrefixOf('at+cgreg?')).toBe('+CGREG:');
    expect(responsePrefixOf('ATI')).toBeUndefined();
  });
});
