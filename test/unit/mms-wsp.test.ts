// WSP primitives (WAP-230 §8.1.2, §8.4.2) against the encodings the specification spells out.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { WspReader, WspWriter } from '../../src/mms/wsp.js';
import { MmsDecodeError, MmsEncodeError } from '../../src/mms/types.js';
import { charsetToMib, decodeText, encodeText, mibToCharset } from '../../src/mms/charset.js';

const hex = (b: Buffer): string => b.toString('hex');
const w = (): WspWriter => new WspWriter();

describe('uintvar', () => {
  it('encodes the examples of WAP-230 §8.1.2', () => {
    expect(hex(w().uintvar(0).toBuffer())).toBe('00');
    expect(hex(w().uintvar(0x7f).toBuffer())).toBe('7f');
    expect(hex(w().uintvar(0x80).toBuffer())).toBe('8100');
    expect(hex(w().uintvar(0x3fff).toBuffer())).toBe('ff7f');
    expect(hex(w().uintvar(0x4000).toBuffer())).toBe('818000');
    expect(hex(w().uintvar(0xffffffff).toBuffer())).toBe('8fffffff7f');
  });

  it('round-trips every 32-bit value', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (n) => {
        expect(new WspReader(w().uintvar(n).toBuffer()).uintvar()).toBe(n);
      }),
    );
  });

  it('refuses a uintvar longer than five octets', () => {
    expect(() => new WspReader(Buffer.from('818181818100', 'hex')).uintvar()).toThrow(MmsDecodeError);
  });
});

describe('value-length and integers', () => {
  it('uses a short length up to 30 and Length-quote (31) beyond', () => {
    expect(hex(w().valueLength(30).toBuffer())).toBe('1e');
    expect(hex(w().valueLength(31).toBuffer())).toBe('1f1f');
    expect(hex(w().valueLength(200).toBuffer())).toBe('1f8148');
    expect(new WspReader(Buffer.from('1f8148', 'hex')).valueLength()).toBe(200);
  });

  it('writes short integers with the top bit and long integers with their length', () => {
    expect(hex(w().shortInteger(0).toBuffer())).toBe('80');
    expect(hex(w().shortInteger(127).toBuffer())).toBe('ff');
    expect(hex(w().longInteger(0).toBuffer())).toBe('0100');
    expect(hex(w().longInteger(1000).toBuffer())).toBe('0203e8');
    expect(hex(w().integerValue(106).toBuffer())).toBe('ea');
    expect(hex(w().integerValue(128).toBuffer())).toBe('0180');
    expect(() => w().shortInteger(128)).toThrow(MmsEncodeError);
  });

  it('round-trips integer values up to six octets', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 48 - 1 }), (n) => {
        expect(new WspReader(w().integerValue(n).toBuffer()).integerValue()).toBe(n);
      }),
    );
  });
});

describe('strings', () => {
  it('quotes a text-string whose first octet is 128 or more (§8.4.2.1)', () => {
    expect(hex(w().textString('ab').toBuffer())).toBe('616200');
    expect(hex(w().textString('é').toBuffer())).toBe('7fc3a900');
    expect(new WspReader(Buffer.from('7fc3a900', 'hex')).textString()).toBe('é');
  });

  it('writes a Content-ID as a quoted-string', () => {
    expect(hex(w().quotedString('<smil>').toBuffer())).toBe('22' + Buffer.from('<smil>').toString('hex') + '00');
  });

  it('refuses NUL inside text', () => {
    expect(() => w().textString('a\0b')).toThrow(MmsEncodeError);
    expect(() => w().encodedString('a\0b')).toThrow(MmsEncodeError);
  });

  it('writes ASCII encoded-string-values plain and others as UTF-8 with their length', () => {
    expect(hex(w().encodedString('Hi').toBuffer())).toBe('486900');
    // Value-length 9, charset UTF-8 (106 = 0xEA), Quote, 6 octets of "你好", NUL.
    expect(hex(w().encodedString('你好').toBuffer())).toBe('09ea7fe4bda0e5a5bd00');
  });

  it('reads a UCS-2 encoded-string-value although it holds NUL octets', () => {
    // Value-length 8, charset 1000 as long-integer 02 03e8, "你好" UCS-2 BE, terminator.
    expect(new WspReader(Buffer.from('080203e84f60597d00', 'hex')).encodedString()).toBe('你好');
    // "AB" in UCS-2 has NUL octets: 0041 0042.
    expect(new WspReader(Buffer.from('080203e80041004200', 'hex')).encodedString()).toBe('AB');
  });

  it('reads a GBK encoded-string-value', () => {
    const gbk = encodeText('中文', 'gbk');
    const buf = Buffer.concat([Buffer.from([1 + 1 + gbk.length + 1, 0xf1]), Buffer.from([0x7f]), gbk, Buffer.from([0])]);
    expect(new WspReader(buf).encodedString()).toBe('中文');
  });

  it('round-trips any string without NUL', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 80 }).filter((s) => !s.includes('\0')), (s) => {
        expect(new WspReader(w().encodedString(s).toBuffer()).encodedString()).toBe(s);
      }),
    );
  });
});

describe('content-type values', () => {
  it('writes a well-known type without parameters as one octet', () => {
    expect(hex(w().contentType({ mediaType: 'application/vnd.wap.multipart.mixed', params: {} }).toBuffer())).toBe('a3');
    expect(hex(w().contentType({ mediaType: 'image/jpeg', params: {} }).toBuffer())).toBe('9e');
  });

  it('writes an unknown type as text and parameters in the general form', () => {
    expect(w().contentType({ mediaType: 'application/smil', params: {} }).toBuffer().toString('latin1')).toBe('application/smil\0');
    // Value-length 3, text/plain (0x83), Charset (0x81) UTF-8 (0xEA).
    expect(hex(w().contentType({ mediaType: 'text/plain', params: { charset: 'utf-8' } }).toBuffer())).toBe('038381ea');
  });

  it('reads typed and untyped parameters and skips the ones it does not keep', () => {
    const body = Buffer.concat([
      Buffer.from([0x83]), // text/plain
      Buffer.from([0x81, 0x02, 0x03, 0xe8]), // charset 1000 as long integer
      Buffer.from([0x8c]), Buffer.from('a comment\0'), // Comment (0x0C): skipped
      Buffer.from([0x97]), Buffer.from('"quoted.txt\0'), // Name (1.4, Text-value): quoted-string
      Buffer.from('level\0'), Buffer.from([0x81]), // untyped parameter with an integer value
    ]);
    // More than 30 octets: Length-quote and a uintvar length.
    const buf = w().valueLength(body.length).bytes(body).toBuffer();
    expect(buf[0]).toBe(0x1f);
    const ct = new WspReader(buf).contentType();
    expect(ct).toEqual({ mediaType: 'text/plain', params: { charset: 'iso-10646-ucs-2', name: 'quoted.txt' } });
  });
});

describe('charsets', () => {
  it('maps the MIBenums of the charsets the module edits under', () => {
    expect(charsetToMib('UTF-8')).toBe(106);
    expect(charsetToMib('us-ascii')).toBe(3);
    expect(charsetToMib('iso-10646-ucs-2')).toBe(1000);
    expect(charsetToMib('gbk')).toBe(113);
    expect(mibToCharset(2025)).toBe('gb2312');
    expect(mibToCharset(9999)).toBe('x-mib-9999');
    expect(charsetToMib('x-mib-9999')).toBe(9999);
  });

  it('treats UCS-2 as big-endian (spec §2.1)', () => {
    expect(hex(encodeText('A', 'iso-10646-ucs-2'))).toBe('0041');
    expect(decodeText(Buffer.from('4f60', 'hex'), 'iso-10646-ucs-2')).toBe('你');
  });
});
