// Attachment names (DESIGN.md §6): the module names a part after its file in RAM, so the name the
// daemon records for a part is its RAM file's name and what the recipient sees. One function makes
// it, for validation and for the sender alike.
import { extensionFor, guessContentType } from './content-type.js';
import { ATTACHMENT_NAME_MAX_BYTES } from './limits.js';

/** Longest extension kept, dot included (the module types a part by its extension). */
const EXT_MAX = 10;
/** The name of a part whose own name has no letter or digit left. */
const FALLBACK = 'part';

/** Accents folded (é → e), every other run of characters outside [A-Za-z0-9_-] one `_`. */
function fold(s: string): string {
  return s
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^A-Za-z0-9_-]+/g, '_')
    .replace(/_+/g, '_')
    .replace(/^_+|_+$/g, '');
}

/** `base` cut so that base + suffix + ext fits, without a dangling `_` at the cut. */
function fit(base: string, suffix: string, ext: string): string {
  const room = ATTACHMENT_NAME_MAX_BYTES - ext.length - suffix.length;
  const cut = base.length > room ? base.slice(0, room).replace(/_+$/, '') : base;
  return `${cut}${suffix}${ext}`;
}

/** Accents folded, and nothing but ASCII letters and digits: `.jpg`, not `.j-p` or `./etc/passwd`. */
const EXTENSION = new RegExp(`^[A-Za-z0-9]{1,${EXT_MAX - 1}}$`);

function split(name: string, contentType: string | undefined): { base: string; ext: string } {
  const dot = name.lastIndexOf('.');
  const rawExt = dot > 0 ? name.slice(dot + 1).normalize('NFKD').replace(/[\u0300-\u036f]/g, '') : '';
  // What follows the last dot is an extension only if it looks like one; else it is part of the base.
  const own = EXTENSION.test(rawExt) ? rawExt : '';
  const rawBase = own !== '' ? name.slice(0, dot) : name;
  // The module types a part by its file's extension: make it say what the client said.
  const type = contentType?.split(';')[0].trim().toLowerCase();
  const wanted = type && guessContentType(name) !== type ? extensionFor(type) : undefined;
  const ext = wanted ?? own;
  return { base: fold(rawBase) || FALLBACK, ext: ext ? `.${ext}` : '' };
}

/**
 * One part's name: `résumé (final).pdf` → `resume_final.pdf`. Only [A-Za-z0-9._-] (safe on the
 * AT line and in the module's file system), one dot at most, never a leading dot, the extension of
 * `contentType` when the name's own says otherwise, and `RAM:` + name ≤ 80 bytes with the
 * extension kept. A name this returns comes back unchanged.
 */
export function attachmentName(name: string, contentType?: string): string {
  const { base, ext } = split(name, contentType);
  return fit(base, '', ext);
}

/**
 * `name` by attachmentName, made unique against `taken` (lower-cased names already in the message):
 * `a.jpg`, else `a-2.jpg`, `a-3.jpg` …
 */
export function uniqueAttachmentName(name: string, contentType: string | undefined, taken: ReadonlySet<string>): string {
  const { base, ext } = split(name, contentType);
  let candidate = fit(base, '', ext);
  for (let n = 2; taken.has(candidate.toLowerCase()); n++) candidate = fit(base, `-${n}`, ext);
  return candidate;
}

/**
 * The names of a message's parts: each by attachmentName, made unique within the message
 * (case-insensitively: `a.jpg`, `A-2.jpg`, `a-3.jpg`). Names this returns come back unchanged, so
 * the sender may apply it again to what validation recorded.
 */
export function attachmentNames(parts: readonly { name: string; contentType?: string }[]): string[] {
  const used = new Set<string>();
  return parts.map(({ name, contentType }) => {
    const unique = uniqueAttachmentName(name, contentType, used);
    used.add(unique.toLowerCase());
    return unique;
  });
}
