// The module's charsets (AT+QMMSCFG="character", spec §2.1) and the rules that pick one for a
// subject or a text part, and the printable-ASCII rule for text that goes on the AT line as is
// (DESIGN.md §6 "Charsets"). The driver (quoting, subject encoding) and the sender (which charset
// an edit step needs) both read them here.

export type Charset = 'ASCII' | 'UTF8' | 'UCS2' | 'GBK';

/** Printable ASCII without `"` and `;` (a `;` would start a second command on the line). */
const PLAIN = /^[\x20-\x21\x23-\x3a\x3c-\x7e]*$/;

/** DESIGN.md §6: printable ASCII without `"` or `;`, which may go between quotes as is (under "ASCII"). */
export function isPlainAscii(s: string): boolean {
  return PLAIN.test(s);
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
