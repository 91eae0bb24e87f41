// The module's character sets (spec §2.1 "character", §3.3): hex optstrings to bytes, bytes to text
// in a charset, and text made safe for a quoted field of the module's own output.
import iconv from 'iconv-lite';
import type { SimCharset } from './types.js';

export const CHARSETS: readonly SimCharset[] = ['ASCII', 'UTF8', 'UCS2', 'GBK'];

/** Hex optstring (spec §3.3) to bytes; undefined unless an even run of hex digits. */
export function hexToBytes(s: string): Buffer | undefined {
  if (s.length === 0 || s.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(s)) return undefined;
  return Buffer.from(s, 'hex');
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** Bytes in the module's charset to text; undefined when they are not valid in it. */
export function decodeCharset(bytes: Buffer, charset: SimCharset): string | undefined {
  try {
    switch (charset) {
      case 'ASCII':
        return bytes.toString('latin1');
      case 'UTF8':
        return utf8Strict.decode(bytes);
      case 'UCS2':
        return bytes.length % 2 === 0 ? iconv.decode(bytes, 'utf-16be') : undefined;
      case 'GBK':
        return iconv.decode(bytes, 'gbk');
    }
  } catch {
    return undefined;
  }
}

/** Text the module puts inside a quoted field of its own output. */
export function atSafe(text: string): string {
  return text.replace(/["\x00-\x1f\x7f]/g, ' ');
}
