// Unit tests of the driver's pure parts: quote(), the answer parsers and the subject encoding.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { encodeSubject } from '../../src/modem/charset.js';
import {
  parseContextApn,
  parseIccid,
  parseIdentityText,
  parseImei,
  parseImsi,
  parseRegistrationLine,
  parseSendResult,
  parseSpn,
  registrationOf,
  splitFields,
} from '../../src/modem/answers.js';
import { QuectelCommands } from '../../src/modem/commands.js';
import { InvalidArgumentError, quote } from '../../src/modem/quote.js';
import { FakeAt, cme, error } from './modem-fake-at.js';

describe('quote', () => {
  it.each(['"', '\r', '\n', '\x1a', ';', '\x00', '\x7f', '\t', 'é', '中', '\u{1F600}'])(
    'refuses %j with InvalidArgumentError',
    (c) => {
      expect(() => quote(`abc${c}def`, 'address')).toThrow(InvalidArgumentError);
    },
  );

  it('names the argument and position but not the text', () => {
    try {
      quote('secret;stuff', 'password');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidArgumentError);
      expect((e as InvalidArgumentError).argument).toBe('password');
      expect((e as Error).message).toContain('position 6');
      expect((e as Error).message).not.toContain('secret');
    }
  });

  it('quotes any printable ASCII without " and ;', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...' !#$%&\'()*+,-./0123456789:<=>?@AZaz[\\]^_`{|}~') }), (s) => {
        expect(quote(s)).toBe(`"${s}"`);
      }),
    );
  });

  it('never lets a dangerous character through', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        let out: string | undefined;
        try {
          out = quote(s);
        } catch (e) {
          expect(e).toBeInstanceOf(InvalidArgumentError);
          return;
        }
        expect(out.slice(1, -1)).not.toMatch(/["\r\n\x1a;]|[^\x20-\x7e]/);
      }),
    );
  });
});

describe('answer parsers', () => {
  it('maps <stat> to a registration', () => {
    expect([0, 1, 2, 3, 4, 5, 9].map(registrationOf)).toEqual([
      'not-registered',
      'home',
      'searching',
      'denied',
      'unknown',
      'roaming',
      'unknown',
    ]);
  });

  it('tells the query form of +CGREG from the URC form', () => {
    expect(parseRegistrationLine('+CGREG: 2,1,"1A2B","01C3D4E",7', '+CGREG:', 'query')).toBe(1);
    expect(parseRegistrationLine('+CGREG: 0,5', '+CGREG:', 'query')).toBe(5);
    expect(parseRegistrationLine('+CGREG: 5,"1A2B","01C3D4E",7', '+CGREG:', 'query')).toBeUndefined();
    expect(parseRegistrationLine('+CEREG: 5,"1A2B","01C3D4E",7', '+CEREG:', 'urc')).toBe(5);
    expect(parseRegistrationLine('+CEREG: 3', '+CEREG:', 'urc')).toBe(3);
    expect(parseRegistrationLine('+CEREG: 2,1', '+CEREG:', 'urc')).toBeUndefined();
  });

  it('reads a registration query even when a URC landed among its lines', async () => {
    const at = new FakeAt().reply('AT+CEREG?', ['+CEREG: 1,"1A2B","01C3D4E",7', '+CEREG: 2,5,"1A2B","01C3D4E",7']);
    const c = new QuectelCommands(at, 5000);
    expect(await c.queryRegistration('CEREG')).toBe(5);
  });

  it('splits fields outside quotes only', () => {
    expect(splitFields(' "a,b",1, "c"')).toEqual(['"a,b"', '1', '"c"']);
  });

  it('parses +QMMSEND with and without <mmsrsp>, quoted or not', () => {
    expect(parseSendResult('+QMMSEND: 0,200')).toEqual({ err: 0, httpStatus: 200 });
    expect(parseSendResult('+QMMSEND: 765,500,"Server error, try later"')).toEqual({
      err: 765,
      httpStatus: 500,
      mmscResponse: 'Server error, try later',
    });
    expect(parseSendResult('+QMMSEND: 766,403,Forbidden')).toEqual({ err: 766, httpStatus: 403, mmscResponse: 'Forbidden' });
    expect(parseSendResult('+QMMSEND:769,0')).toEqual({ err: 769, httpStatus: 0 });
    expect(parseSendResult('+QMMSEND: 775')).toEqual({ err: 775, httpStatus: 0 });
    expect(parseSendResult('+QMMSEDIT: 1,"x"')).toBeUndefined();
  });

  it('reads SIM states from +CPIN and from CME errors', async () => {
    const at = new FakeAt()
      .script('AT+CPIN?', ['+CPIN: READY'], ['+CPIN: SIM PIN'], cme(10), cme(13), cme(14), cme(12))
      .reply('AT+CPIN?', ['+CPIN: NOT INSERTED']);
    const c = new QuectelCommands(at, 5000);
    const states = [];
    for (let i = 0; i < 7; i++) states.push((await c.querySim()).state);
    expect(states).toEqual(['ready', 'locked', 'missing', 'missing', 'busy', 'locked', 'missing']);
  });

  it('reads signal, operator, attach and contexts', async () => {
    const at = new FakeAt()
      .reply('AT+CSQ', ['+CSQ: 99,99'])
      .reply('AT+COPS?', ['+COPS: 0'])
      .reply('AT+CGATT?', ['+CGATT: 0'])
      .reply('AT+QIACT?', ['+QIACT: 1,1,1,"10.7.157.1"', '+QIACT: 2,0,1']);
    const c = new QuectelCommands(at, 5000);
    expect(await c.querySignal()).toBe(-1);
    expect(await c.queryOperator()).toBe('');
    expect(await c.queryAttach()).toBe(false);
    expect(await c.queryContexts()).toEqual([
      { contextId: 1, active: true, ip: '10.7.157.1' },
      { contextId: 2, active: false, ip: '' },
    ]);
  });

  it('reads the RAM drive\'s free and total bytes from AT+QFLDS="RAM"', async () => {
    const at = new FakeAt().script('AT+QFLDS="RAM"', ['+QFLDS: 1048576,2097152'], ['+QFLDS: 7']);
    const c = new QuectelCommands(at, 5000);
    expect(await c.ramSpace()).toEqual({ free: 1048576, total: 2097152 });
    await expect(c.ramSpace()).rejects.toThrow(/no "\+QFLDS: <free>,<total>" line/);
    expect(at.transcript).toEqual(['AT+QFLDS="RAM"', 'AT+QFLDS="RAM"']);
    expect(at.commandOptions[0].opts?.prefix).toBe('+QFLDS:');
  });

  it('sends an empty proxy gateway as "" (no proxy), which clears the one the module holds', async () => {
    const at = new FakeAt();
    const c = new QuectelCommands(at, 5000);
    await c.mmsProxy('', 80);
    expect(at.transcript).toEqual(['AT+QMMSCFG="proxy","",80']);
  });

  it('gives the long commands their own timeouts', async () => {
    const at = new FakeAt();
    const c = new QuectelCommands(at, 5000);
    await c.activateContext(1);
    await c.deactivateContext(1);
    await c.querySignal();
    expect(at.commandOptions.map((x) => [x.cmd, x.opts?.timeoutMs])).toEqual([
      ['AT+QIACT=1', 150_000],
      ['AT+QIDEACT=1', 40_000],
      ['AT+CSQ', 5000],
    ]);
  });

  it('refuses out-of-range numbers before writing', async () => {
    const at = new FakeAt();
    const c = new QuectelCommands(at, 5000);
    await expect(c.activateContext(17)).rejects.toThrow(InvalidArgumentError);
    await expect(c.mmsSend(1.5)).rejects.toThrow(InvalidArgumentError);
    await expect(c.mmsConnectTimeout(126)).rejects.toThrow(InvalidArgumentError);
    expect(at.transcript).toEqual([]);
  });
});

describe('the SIM\'s identity and the context\'s APN (DESIGN.md §10)', () => {
  it('parses AT+CIMI, AT+QCCID, AT+QSPN and AT+QICSGP=<ctx> answers', () => {
    expect(parseImsi('270011234567890')).toBe('270011234567890');
    expect(parseImsi('+CIMI: 310260000000001')).toBe('310260000000001');
    expect(parseImsi('12345')).toBeUndefined();
    expect(parseImsi('OK')).toBeUndefined();
    expect(parseIccid('+QCCID: 89860318760247601234')).toBe('89860318760247601234');
    expect(parseIccid('+QCCID: 8944110068001234567f')).toBe('8944110068001234567F');
    expect(parseIccid('+QCCID:')).toBeUndefined();
    expect(parseSpn('+QSPN: "CHN-UNICOM","UNICOM","",0,"46001"')).toBe('');
    expect(parseSpn('+QSPN: "Orange F","Orange","Orange F",0,"20801"')).toBe('Orange F');
    expect(parseSpn('+QSPN: "T-Mobile","T-Mobile"," T-Mobile ",0,"310260"')).toBe('T-Mobile');
    // Alphabet 1: the names come as UCS2 hex.
    expect(parseSpn('+QSPN: "004F","004F","004F00720061006E00670065",1,"20801"')).toBe('Orange');
    expect(parseSpn('+QSPN: "x"')).toBeUndefined();
    expect(parseContextApn('+QICSGP: 1,"internet","user","secret",3')).toBe('internet');
    expect(parseContextApn('+QICSGP: 1,"","","",0')).toBe('');
    expect(parseContextApn('+QICSGP: (1-16),(1-3)')).toBeUndefined();
  });

  it('reads the IMSI, ICCID and SPN, each with its own command', async () => {
    const at = new FakeAt()
      .reply('AT+CIMI', ['208011234567890'])
      .reply('AT+QCCID', ['+QCCID: 89330123456789012345'])
      .reply('AT+QSPN', ['+QSPN: "Orange F","Orange","Orange F",0,"20801"']);
    const c = new QuectelCommands(at, 5000);
    expect(await c.readImsi()).toBe('208011234567890');
    expect(await c.readIccid()).toBe('89330123456789012345');
    expect(await c.readSpn()).toBe('Orange F');
    expect(at.commandOptions.map((x) => [x.cmd, x.opts?.prefix])).toEqual([
      ['AT+CIMI', undefined],
      ['AT+QCCID', '+QCCID:'],
      ['AT+QSPN', '+QSPN:'],
    ]);
  });

  it('takes an AT+QSPN that answers ERROR or nothing as no SPN, and an IMSI-less answer as \'\'', async () => {
    const at = new FakeAt().script('AT+QSPN', error(), cme(10), []).reply('AT+CIMI', []);
    const c = new QuectelCommands(at, 5000);
    expect([await c.readSpn(), await c.readSpn(), await c.readSpn()]).toEqual(['', '', '']);
    expect(await c.readImsi()).toBe('');
  });

  it('reads the APN a context holds with AT+QICSGP=<ctx>, and refuses an answer without one', async () => {
    const at = new FakeAt().script('AT+QICSGP=2', ['+QICSGP: 1,"internet","u","p",1'], []);
    const c = new QuectelCommands(at, 5000);
    expect(await c.queryContextApn(2)).toBe('internet');
    await expect(c.queryContextApn(2)).rejects.toThrow(/AT\+QICSGP=2: no "\+QICSGP: <type>,<apn>,…" line/);
    await expect(c.queryContextApn(0)).rejects.toThrow(InvalidArgumentError);
    expect(at.transcript).toEqual(['AT+QICSGP=2', 'AT+QICSGP=2']);
  });
});

describe('encodeSubject', () => {
  it('keeps plain ASCII as is under ASCII', () => {
    expect(encodeSubject('test EM05 mms', 'UTF8')).toEqual({ charset: 'ASCII', optstring: 'test EM05 mms', bytes: 13 });
  });

  it('sends Chinese as upper-case UTF-8 hex', () => {
    expect(encodeSubject('你好', 'UTF8')).toMatchObject({ charset: 'UTF8', optstring: 'E4BDA0E5A5BD' });
  });

  it('uses UTF8 when the configured charset is ASCII but the subject is not plain', () => {
    expect(encodeSubject('a;b', 'ASCII')).toMatchObject({ charset: 'UTF8', optstring: '613B62' });
    expect(encodeSubject('say "hi"', 'ASCII')).toMatchObject({ charset: 'UTF8', optstring: '7361792022686922' });
  });

  it('encodes UCS2 big-endian and GBK exactly', () => {
    expect(encodeSubject('你好', 'UCS2')).toMatchObject({ charset: 'UCS2', optstring: '4F60597D', bytes: 4 });
    expect(encodeSubject('你好', 'GBK')).toMatchObject({ charset: 'GBK', optstring: 'C4E3BAC3', bytes: 4 });
  });

  it('refuses what GBK cannot represent', () => {
    expect(() => encodeSubject('smile \u{1F600}', 'GBK')).toThrow(InvalidArgumentError);
  });

  it('counts the 200-byte limit on the text, not on its hex', () => {
    expect(encodeSubject('中'.repeat(66), 'UTF8').bytes).toBe(198);
    expect(() => encodeSubject('中'.repeat(67), 'UTF8')).toThrow(InvalidArgumentError);
    expect(encodeSubject('a'.repeat(200), 'UTF8').charset).toBe('ASCII');
    expect(() => encodeSubject('a'.repeat(201), 'UTF8')).toThrow(InvalidArgumentError);
  });
});

describe('module identity parsers (DESIGN.md §13)', () => {
  it.each([
    ['866758040000001', '866758040000001'],
    ['+CGSN: 866758040000001', '866758040000001'],
    ['+CGSN: "8667580400000019"', '8667580400000019'],
    ['OK', undefined],
    ['12345', undefined],
  ])('AT+CGSN line %j → %j', (line, imei) => {
    expect(parseImei(line)).toBe(imei);
  });

  it.each([
    [['Revision: EC25EFAR06A11M4G'], '+CGMR:', 'EC25EFAR06A11M4G'],
    [['+CGMR: EG25GGBR07A08M2G'], '+CGMR:', 'EG25GGBR07A08M2G'],
    [['', 'Quectel'], '+CGMI:', 'Quectel'],
    [['+CGMM: "EC25"'], '+CGMM:', 'EC25'],
    [[], '+CGMM:', ''],
  ])('%j with prefix %s → %j', (lines, prefix, text) => {
    expect(parseIdentityText(lines, prefix)).toBe(text);
  });
});
