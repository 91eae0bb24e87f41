// Which charset must be in force (AT+QMMSCFG="character") when the subject or a text part is
// edited: the module stores it with the item (spec §2.2, §3.3; DESIGN.md §6).
import type { Charset } from '../modem/types.js';

/** DESIGN.md §6: printable ASCII without `"` or `;` may go as is under "ASCII". */
export function isPlainAscii(s: string): boolean {
  return /^[\x20-\x7e]*$/.test(s) && !/[";]/.test(s);
}

/** The subject's charset: "ASCII" when plain, else the configured one (UTF8 if that is ASCII). */
export function subjectCharset(subject: string, configured: Charset): Charset {
  if (isPlainAscii(subject)) return 'ASCII';
  return configured === 'ASCII' ? 'UTF8' : configured;
}

/** MIME charset names the module has an equivalent for. */
const TEXT_CHARSETS: ReadonlyMap<string, Charset> = new Map<string, Charset>([
  ['utf-8', 'UTF8'],
  ['utf8', 'UTF8'],
  ['us-ascii', 'ASCII'],
  ['ascii', 'ASCII'],
  ['gbk', 'GBK'],
  ['gb2312', 'GBK'],
  ['utf-16be', 'UCS2'],
  ['ucs-2', 'UCS2'],
  ['iso-10646-ucs-2', 'UCS2'],
]);

export function isTextPart(contentType: string): boolean {
  return /^\s*text\//i.test(contentType);
}

/** A text part's own charset: its `charset=` parameter when the module knows it, else UTF8. */
export function textCharset(contentType: string): Charset {
  const m = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType);
  return (m && TEXT_CHARSETS.get(m[1].toLowerCase())) ?? 'UTF8';
}
