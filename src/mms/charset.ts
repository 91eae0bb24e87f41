// Character sets of the MMS encapsulation: the IANA MIBenum table (WAP-230 Table 42 refers to it)
// and text <-> bytes for the encoded-string-values and text parts we read.
import iconv from 'iconv-lite';

/** IANA MIBenum of the charsets we name; names are the lower-case IANA names. */
const CHARSETS: readonly (readonly [name: string, mib: number, iconvName: string])[] = [
  ['us-ascii', 3, 'ascii'],
  ['iso-8859-1', 4, 'latin1'],
  ['iso-8859-2', 5, 'iso-8859-2'],
  ['iso-8859-5', 8, 'iso-8859-5'],
  ['iso-8859-7', 10, 'iso-8859-7'],
  ['shift_jis', 17, 'shift_jis'],
  ['euc-kr', 38, 'euc-kr'],
  ['utf-8', 106, 'utf8'],
  ['gbk', 113, 'gbk'],
  ['gb18030', 114, 'gb18030'],
  // Spec §2.1: "UCS2" is big-endian on this module.
  ['iso-10646-ucs-2', 1000, 'utf-16be'],
  ['utf-16be', 1013, 'utf-16be'],
  ['utf-16le', 1014, 'utf-16le'],
  ['utf-16', 1015, 'utf-16be'],
  ['gb2312', 2025, 'gb2312'],
  ['big5', 2026, 'big5'],
  ['windows-1252', 2252, 'windows-1252'],
];

const BY_NAME = new Map(CHARSETS.map(([name, mib, conv]) => [name, { mib, conv }]));
const BY_MIB = new Map(CHARSETS.map(([name, mib]) => [mib, name]));
const ALIASES: Readonly<Record<string, string>> = {
  ascii: 'us-ascii',
  utf8: 'utf-8',
  latin1: 'iso-8859-1',
  ucs2: 'iso-10646-ucs-2',
  'ucs-2': 'iso-10646-ucs-2',
  gb_2312: 'gb2312',
};
/** An unknown MIBenum travels through decode/encode under this name. */
const UNKNOWN_PREFIX = 'x-mib-';

/** The 16-bit charsets, whose text may contain NUL octets. */
const WIDE_MIBS: ReadonlySet<number> = new Set([1000, 1013, 1014, 1015]);

export function normalizeCharset(name: string): string {
  const lower = name.trim().toLowerCase();
  return ALIASES[lower] ?? lower;
}

/** MIBenum for a charset name, or undefined when we know no number for it. */
export function charsetToMib(name: string): number | undefined {
  const n = normalizeCharset(name);
  const known = BY_NAME.get(n);
  if (known) return known.mib;
  if (n.startsWith(UNKNOWN_PREFIX)) {
    const mib = Number(n.slice(UNKNOWN_PREFIX.length));
    if (Number.isSafeInteger(mib) && mib > 0) return mib;
  }
  return undefined;
}

export function mibToCharset(mib: number): string {
  return BY_MIB.get(mib) ?? `${UNKNOWN_PREFIX}${mib}`;
}

export function isWideCharset(mib: number): boolean {
  return WIDE_MIBS.has(mib);
}

/** Decode bytes in a charset; unknown charsets fall back to UTF-8 (what senders mostly mean). */
export function decodeText(data: Buffer, charset: string): string {
  const n = normalizeCharset(charset);
  if (n === 'utf-16' && data.length >= 2) {
    // RFC 2781: a BOM decides the byte order; without one it is big-endian.
    if (data[0] === 0xff && data[1] === 0xfe) return iconv.decode(data.subarray(2), 'utf-16le');
    if (data[0] === 0xfe && data[1] === 0xff) return iconv.decode(data.subarray(2), 'utf-16be');
  }
  const conv = BY_NAME.get(n)?.conv ?? (iconv.encodingExists(n) ? n : 'utf8');
  return iconv.decode(data, conv);
}

export function encodeText(text: string, charset: string): Buffer {
  const n = normalizeCharset(charset);
  const conv = BY_NAME.get(n)?.conv ?? (iconv.encodingExists(n) ? n : 'utf8');
  return iconv.encode(text, conv);
}
