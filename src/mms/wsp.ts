// WSP encoding primitives (WAP-230 §8.4.2): uintvar, value-length, integers, text-string,
// quoted-string, encoded-string-value, content-type values with parameters, multipart entries.
import { charsetToMib, decodeText, encodeText, isWideCharset, mibToCharset } from './charset.js';
import { wellKnownMedia, wellKnownMediaNumber } from './content-type.js';
import { MmsDecodeError, MmsEncodeError } from './types.js';

/** §8.4.2.1: Quote octet before a text-string whose first octet is ≥ 128. */
const QUOTE = 0x7f;
/** §8.4.2.1: Quoted-string starts with a double quote. */
const DQUOTE = 0x22;
/** §8.4.2.2: Length-quote before a uintvar length. */
const LENGTH_QUOTE = 0x1f;

/** WAP-230 Table 38, the parameters we read and write (token | 0x80 on the wire). */
export const Param = {
  Charset: 0x01,
  Type: 0x03,
  Name: 0x05,
  Filename: 0x06,
  TypeMultipartRelated: 0x09,
  Start: 0x0a,
  Name14: 0x17,
  Filename14: 0x18,
  Start14: 0x19,
} as const;

/** Parameters of a content type that the codec keeps; others are skipped when read. */
export interface ContentTypeParams {
  charset?: string;
  name?: string;
  filename?: string;
  type?: string;
  start?: string;
}

export interface ContentTypeValue {
  mediaType: string;
  params: ContentTypeParams;
}

/** Appends WSP-encoded values to a growing octet list. */
export class WspWriter {
  private readonly chunks: Buffer[] = [];
  private length = 0;

  get size(): number {
    return this.length;
  }

  bytes(b: Buffer | readonly number[]): this {
    const buf = Buffer.isBuffer(b) ? b : Buffer.from(b);
    this.chunks.push(buf);
    this.length += buf.length;
    return this;
  }

  octet(b: number): this {
    return this.bytes([b & 0xff]);
  }

  /** §8.1.2: 7 bits per octet, most significant first, continuation bit on all but the last. */
  uintvar(n: number): this {
    if (!Number.isSafeInteger(n) || n < 0 || n > 0xffffffff) throw new MmsEncodeError(`uintvar out of range: ${n}`);
    const out = [n & 0x7f];
    let v = Math.floor(n / 128);
    while (v > 0) {
      out.unshift((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    return this.bytes(out);
  }

  /** §8.4.2.2: Short-length (0..30) or Length-quote + uintvar. */
  valueLength(n: number): this {
    return n <= 30 ? this.octet(n) : this.octet(LENGTH_QUOTE).uintvar(n);
  }

  /** §8.4.2.1: Short-integer, 0..127 with the top bit set. */
  shortInteger(n: number): this {
    if (!Number.isInteger(n) || n < 0 || n > 127) throw new MmsEncodeError(`short-integer out of range: ${n}`);
    return this.octet(n | 0x80);
  }

  /** §8.4.2.1: Long-integer = Short-length Multi-octet-integer (big-endian, at least one octet). */
  longInteger(n: number): this {
    if (!Number.isSafeInteger(n) || n < 0) throw new MmsEncodeError(`long-integer out of range: ${n}`);
    const out: number[] = [];
    let v = n;
    do {
      out.unshift(v % 256);
      v = Math.floor(v / 256);
    } while (v > 0);
    return this.octet(out.length).bytes(out);
  }

  /** §8.4.2.3: Integer-value, short when it fits. */
  integerValue(n: number): this {
    return n >= 0 && n <= 127 && Number.isInteger(n) ? this.shortInteger(n) : this.longInteger(n);
  }

  /** §8.4.2.1: Text-string (UTF-8 octets, Quote when the first is ≥ 128, NUL-terminated). */
  textString(s: string): this {
    return this.textBytes(Buffer.from(s, 'utf8'));
  }

  textBytes(b: Buffer): this {
    if (b.includes(0)) throw new MmsEncodeError('text-string cannot contain NUL');
    if (b.length > 0 && b[0] >= 0x80) this.octet(QUOTE);
    return this.bytes(b).octet(0);
  }

  /** §8.4.2.1: Quoted-string = <"> *TEXT End-of-string. */
  quotedString(s: string): this {
    const b = Buffer.from(s, 'utf8');
    if (b.includes(0)) throw new MmsEncodeError('quoted-string cannot contain NUL');
    return this.octet(DQUOTE).bytes(b).octet(0);
  }

  /**
   * OMA-MMS-ENC §7.2.9: Encoded-string-value = Text-string | Value-length Char-set Text-string.
   * Printable US-ASCII goes as a plain text-string; anything else as UTF-8 (MIBenum 106), which
   * (unlike UCS-2) never holds a NUL octet inside the text.
   */
  encodedString(s: string): this {
    if (s.includes('\0')) throw new MmsEncodeError('encoded-string-value cannot contain NUL');
    if (/^[\x20-\x7e][\x20-\x7e\t\r\n]*$/.test(s) || s === '') return this.textString(s);
    const inner = new WspWriter().integerValue(106).textString(s).toBuffer();
    return this.valueLength(inner.length).bytes(inner);
  }

  /**
   * Encoded-string-value in the given charset (Value-length Char-set Text-string), as other senders
   * write it: 16-bit text goes without Quote and ends in one NUL octet, which the reader drops.
   */
  encodedStringIn(s: string, charset: string): this {
    const mib = charsetToMib(charset);
    if (mib === undefined) throw new MmsEncodeError(`no MIBenum for charset ${charset}`);
    const text = encodeText(s, charset);
    const inner = new WspWriter().integerValue(mib);
    if (isWideCharset(mib)) inner.bytes(text).octet(0);
    else inner.textBytes(text);
    return this.valueLength(inner.size).bytes(inner.toBuffer());
  }

  /** §8.4.2.24: Content-type-value, the general form whenever there are parameters. */
  contentType(ct: ContentTypeValue): this {
    if (!/^[\x21-\x7e]+$/.test(ct.mediaType)) throw new MmsEncodeError(`bad media type: ${JSON.stringify(ct.mediaType)}`);
    const known = wellKnownMediaNumber(ct.mediaType);
    const params = new WspWriter();
    const p = ct.params;
    if (p.charset !== undefined) {
      const mib = charsetToMib(p.charset);
      if (mib !== undefined) params.shortInteger(Param.Charset).integerValue(mib);
      else params.textString('charset').textString(p.charset);
    }
    if (p.type !== undefined) {
      const t = wellKnownMediaNumber(p.type);
      params.shortInteger(Param.TypeMultipartRelated);
      if (t !== undefined) params.shortInteger(t);
      else params.textString(p.type);
    }
    if (p.start !== undefined) params.shortInteger(Param.Start).textString(p.start);
    if (p.name !== undefined) params.shortInteger(Param.Name).textString(p.name);
    if (p.filename !== undefined) params.shortInteger(Param.Filename).textString(p.filename);

    if (params.size === 0) {
      if (known !== undefined && known <= 127) return this.shortInteger(known);
      return this.textString(ct.mediaType);
    }
    const media = new WspWriter();
    if (known !== undefined) media.integerValue(known);
    else media.textString(ct.mediaType);
    media.bytes(params.toBuffer());
    return this.valueLength(media.size).bytes(media.toBuffer());
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}

/** Reads WSP-encoded values from a buffer window; every failure is an MmsDecodeError. */
export class WspReader {
  private pos: number;

  constructor(
    private readonly buf: Buffer,
    start = 0,
    private readonly end = buf.length,
  ) {
    this.pos = start;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  fail(message: string): never {
    throw new MmsDecodeError(message, this.pos);
  }

  peek(): number {
    if (this.pos >= this.end) this.fail('unexpected end of data');
    return this.buf[this.pos];
  }

  octet(): number {
    const b = this.peek();
    this.pos++;
    return b;
  }

  take(n: number): Buffer {
    if (n < 0 || this.pos + n > this.end) this.fail(`${n} octets announced, ${this.remaining} left`);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  rest(): Buffer {
    return this.take(this.remaining);
  }

  /** A reader over the next n octets; this reader moves past them. */
  sub(n: number): WspReader {
    const start = this.pos;
    this.take(n);
    return new WspReader(this.buf, start, start + n);
  }

  uintvar(): number {
    let v = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.octet();
      v = v * 128 + (b & 0x7f);
      if ((b & 0x80) === 0) return v;
    }
    return this.fail('uintvar longer than 5 octets');
  }

  valueLength(): number {
    const b = this.octet();
    if (b <= 30) return b;
    if (b === LENGTH_QUOTE) return this.uintvar();
    return this.fail(`value-length expected, got 0x${b.toString(16)}`);
  }

  shortInteger(): number {
    const b = this.octet();
    if (b < 0x80) this.fail(`short-integer expected, got 0x${b.toString(16)}`);
    return b & 0x7f;
  }

  longInteger(): number {
    const len = this.octet();
    if (len < 1 || len > 30) this.fail(`long-integer length ${len}`);
    if (len > 6) this.fail(`long-integer of ${len} octets is too large`);
    let v = 0;
    for (const b of this.take(len)) v = v * 256 + b;
    return v;
  }

  integerValue(): number {
    return this.peek() >= 0x80 ? this.shortInteger() : this.longInteger();
  }

  /** Octets of a text-string without Quote and terminator. */
  textBytes(): Buffer {
    if (this.peek() === QUOTE) this.pos++;
    const start = this.pos;
    const nul = this.buf.indexOf(0, start);
    if (nul < 0 || nul >= this.end) this.fail('text-string without terminating NUL');
    this.pos = nul + 1;
    return this.buf.subarray(start, nul);
  }

  textString(): string {
    return this.textBytes().toString('utf8');
  }

  /** Quoted-string (Content-ID); a plain text-string is accepted too. */
  quotedString(): string {
    if (this.peek() === DQUOTE) this.pos++;
    return this.textString();
  }

  /** §8.4.2.3 Text-value = No-value | Token-text | Quoted-string. */
  textValue(): string {
    const b = this.peek();
    if (b === 0) {
      this.pos++;
      return '';
    }
    return this.quotedString();
  }

  /** Encoded-string-value, decoded to text by its charset. */
  encodedString(): string {
    const b = this.peek();
    if (b >= 0x20 || b === 0) return this.textString();
    const r = this.sub(this.valueLength());
    const cb = r.peek();
    let mib: number;
    if (cb === 0x80) {
      // Any-charset: the text is whatever the sender meant; UTF-8 is the best guess.
      r.octet();
      mib = 106;
    } else if (cb >= 0x20 && cb < 0x80) {
      mib = charsetToMib(r.textString()) ?? 106;
    } else {
      mib = r.integerValue();
    }
    let text: Buffer;
    if (isWideCharset(mib)) {
      // 16-bit text may hold NUL octets: take the whole value, less the terminator.
      text = r.rest();
      if (text.length % 2 === 1) text = text.subarray(0, text.length - 1);
      else if (text.length >= 2 && text[text.length - 1] === 0 && text[text.length - 2] === 0) {
        text = text.subarray(0, text.length - 2);
      }
    } else {
      if (r.remaining === 0) return '';
      text = r.textBytes();
    }
    return decodeText(text, mibToCharset(mib));
  }

  /** Skip a value of a well-known header or parameter whose type we do not read. */
  skipValue(): void {
    const b = this.peek();
    if (b >= 0x80) this.pos++;
    else if (b < 0x20) this.take(this.valueLength());
    else this.textBytes();
  }

  /** A constrained media (short-integer or extension text). */
  private constrainedMedia(): string {
    const b = this.peek();
    if (b >= 0x80) {
      const n = this.shortInteger();
      return wellKnownMedia(n) ?? this.fail(`unknown well-known content type 0x${n.toString(16)}`);
    }
    return this.textString();
  }

  /** §8.4.2.24 Content-type-value. Parameters we do not keep are read and dropped. */
  contentType(): ContentTypeValue {
    const b = this.peek();
    if (b >= 0x20) return { mediaType: this.constrainedMedia(), params: {} };
    const r = this.sub(this.valueLength());
    let mediaType: string;
    const mb = r.peek();
    if (mb >= 0x80 || mb <= 30) {
      const n = r.integerValue();
      mediaType = wellKnownMedia(n) ?? r.fail(`unknown well-known content type 0x${n.toString(16)}`);
    } else {
      mediaType = r.textString();
    }
    return { mediaType, params: r.params() };
  }

  /** Parameters to the end of this reader (WAP-230 §8.4.2.4). */
  params(): ContentTypeParams {
    const params: ContentTypeParams = {};
    while (this.remaining > 0) {
      const b = this.peek();
      if (b >= 0x20 && b < 0x80) {
        // Untyped-parameter = Token-text Untyped-value.
        const key = this.textString().toLowerCase();
        const v = this.peek();
        const value = v >= 0x80 || v <= 30 ? String(this.integerValue()) : this.textValue();
        if (key === 'charset') params.charset = value;
        else if (key === 'name') params.name = value;
        else if (key === 'filename') params.filename = value;
        else if (key === 'type') params.type = value;
        else if (key === 'start') params.start = value;
        continue;
      }
      const token = this.integerValue();
      switch (token) {
        case Param.Charset: {
          const c = this.peek();
          if (c === 0x80) {
            this.pos++;
            params.charset = '*';
          } else if (c >= 0x20 && c < 0x80) params.charset = this.textString().toLowerCase();
          else params.charset = mibToCharset(this.integerValue());
          break;
        }
        case Param.TypeMultipartRelated:
          params.type = this.constrainedMedia();
          break;
        case Param.Name:
          params.name = this.textString();
          break;
        case Param.Name14:
          params.name = this.textValue();
          break;
        case Param.Filename:
          params.filename = this.textString();
          break;
        case Param.Filename14:
          params.filename = this.textValue();
          break;
        case Param.Start:
          params.start = this.textString();
          break;
        case Param.Start14:
          params.start = this.textValue();
          break;
        default:
          this.skipValue();
      }
    }
    return params;
  }
}

/**
 * Walks WSP headers (WAP-230 §8.4.2.6) to the end of `h`: an Application-header (Token-text
 * Application-specific-value) goes to `application`, a shift sequence to another code page is
 * passed over (none of ours live there), and a well-known header's code goes to `wellKnown` with
 * the reader on its value, which returns true when it read the value, false to have it skipped.
 */
export function readWspHeaders(h: WspReader, wellKnown: (code: number) => boolean, application?: (name: string, value: string) => void): void {
  while (h.remaining > 0) {
    const b = h.peek();
    if (b >= 0x20 && b < 0x80) {
      const name = h.textString();
      const value = h.textString();
      application?.(name, value);
      continue;
    }
    if (b < 0x20) {
      h.octet();
      if (b === 0x7f) h.octet();
      continue;
    }
    if (!wellKnown(h.shortInteger())) h.skipValue();
  }
}
