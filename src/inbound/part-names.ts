// The file names of a received message's parts (DESIGN.md §12 "Nothing in a received message is
// trusted"): what the sender called a part becomes a name that is safe as one path component —
// no separators, no leading dot, no control or format characters, bounded — and unique within the
// message. Unicode letters stay: a Chinese file name is still a name.
import { extensionFor } from '../core/content-type.js';

/** Longest part name in UTF-8 bytes (well under NAME_MAX, with room for a "-NN" suffix). */
export const PART_NAME_MAX_BYTES = 100;
/** Longest extension kept, dot excluded. */
const EXT_MAX = 10;

/** Separators, C0/C1 controls, DEL, and the characters shells and file managers trip on. */
const UNSAFE = /[/\\\x00-\x1f\x7f-\x9f:*?"<>|]/gu;
/** Format characters (bidi overrides such as U+202E, zero-width joiners) and unpaired surrogates. */
const INVISIBLE = /[\p{Cf}\p{Cs}]/gu;

/** `s` cut to at most `max` UTF-8 bytes, never inside a character. */
function cutBytes(s: string, max: number): string {
  let out = '';
  let bytes = 0;
  for (const ch of s) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > max) break;
    out += ch;
    bytes += n;
  }
  return out;
}

function clean(s: string): string {
  return s
    .normalize('NFC')
    .replace(INVISIBLE, '')
    .replace(UNSAFE, '_')
    .replace(/\s+/gu, ' ')
    .trim()
    .replace(/^[.\s_]+/u, '');
}

/** Base and extension of a cleaned name; the extension only when it is a short run of letters and digits. */
function split(name: string): { base: string; ext: string } {
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return { base: name, ext: '' };
  const ext = name.slice(dot + 1);
  return new RegExp(`^[\\p{L}\\p{N}]{1,${EXT_MAX}}$`, 'u').test(ext) ? { base: name.slice(0, dot).replace(/[.\s]+$/u, ''), ext: `.${ext}` } : { base: name, ext: '' };
}

/**
 * One part's name from what the message says (`raw`, e.g. Content-Location), or from its index and
 * content type when that says nothing usable: `part-<n>.<ext>`.
 */
export function partName(raw: string | undefined, index: number, contentType: string): string {
  // A Content-Location may be a URL or a path: its last segment is the name.
  const last = (raw ?? '').split(/[/\\]/).pop() ?? '';
  let { base, ext } = split(clean(last));
  if (ext === '' && base !== '') ext = extOf(contentType);
  if (base === '') {
    base = `part-${index + 1}`;
    ext = ext || extOf(contentType);
  }
  return fit(base, '', ext);
}

function extOf(contentType: string): string {
  const e = extensionFor(contentType.toLowerCase());
  return e ? `.${e}` : '';
}

function fit(base: string, suffix: string, ext: string): string {
  const room = PART_NAME_MAX_BYTES - Buffer.byteLength(ext) - Buffer.byteLength(suffix);
  return `${cutBytes(base, room).replace(/[.\s]+$/u, '')}${suffix}${ext}`;
}

/**
 * The names of a message's parts, each by partName and unique within the message
 * case-insensitively: `a.jpg`, `a-2.jpg`, `A-3.jpg`.
 */
export function uniquePartNames(parts: readonly { raw: string | undefined; contentType: string }[]): string[] {
  const used = new Set<string>();
  return parts.map(({ raw, contentType }, i) => {
    const first = partName(raw, i, contentType);
    let candidate = first;
    const { base, ext } = split(first);
    for (let n = 2; used.has(candidate.toLowerCase()); n++) candidate = fit(base, `-${n}`, ext);
    used.add(candidate.toLowerCase());
    return candidate;
  });
}
