// How a subject goes on the AT line (spec §2.2, §3.3; DESIGN.md §6 "Charsets"): plain ASCII as
// is under "ASCII", anything else as upper-case hex of its bytes under a non-ASCII charset.
import iconv from 'iconv-lite';
import { subjectCharset, type Charset } from '../core/charset.js';
import { LIMITS } from '../core/limits.js';
import { InvalidArgumentError } from './quote.js';

/** Spec §2.2: the subject's maximum length, counted on its bytes (not on their hex). */
const SUBJECT_MAX_BYTES = LIMITS.subjectBytes;

export interface EncodedText {
  /** The charset that must be in force (AT+QMMSCFG="character") when the text is edited. */
  charset: Charset;
  /** What goes between the quotes of the optstring. */
  optstring: string;
  /** Number of bytes of the text in `charset`. */
  bytes: number;
}

/** The bytes of `text` in a non-ASCII charset; throws when the charset cannot represent it. */
export function encodeText(text: string, charset: Exclude<Charset, 'ASCII'>, argument = 'subject'): Buffer {
  switch (charset) {
    case 'UTF8':
      return Buffer.from(text, 'utf8');
    case 'UCS2':
      // Spec §2.1: UCS2 is big-endian on this module.
      return iconv.encode(text, 'utf-16be');
    case 'GBK': {
      const bytes = iconv.encode(text, 'gbk');
      // iconv-lite substitutes "?" for what GBK lacks: refuse rather than send a mangled subject.
      if (iconv.decode(bytes, 'gbk') !== text) {
        throw new InvalidArgumentError(`${argument}: text has characters GBK cannot represent`, argument);
      }
      return bytes;
    }
  }
}

/**
 * DESIGN.md §6: a subject that is printable ASCII without `"` or `;` goes as is under "ASCII";
 * any other under `charset` (UTF8 when that is ASCII) as upper-case hex.
 */
export function encodeSubject(subject: string, charset: Charset): EncodedText {
  let out: EncodedText;
  const cs = subjectCharset(subject, charset);
  if (cs === 'ASCII') {
    out = { charset: 'ASCII', optstring: subject, bytes: subject.length };
  } else {
    const bytes = encodeText(subject, cs);
    out = { charset: cs, optstring: bytes.toString('hex').toUpperCase(), bytes: bytes.length };
  }
  if (out.bytes > SUBJECT_MAX_BYTES) {
    throw new InvalidArgumentError(`subject: ${out.bytes} bytes in ${out.charset}, at most ${SUBJECT_MAX_BYTES}`, 'subject');
  }
  return out;
}
