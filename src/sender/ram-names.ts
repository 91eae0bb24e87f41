// Names of attachment files in the module's RAM (DESIGN.md §6): deterministic per message (so a
// re-send finds them again), safe on the AT line, and `RAM:` + name ≤ 80 bytes (§2.2).

import { extensionFor, guessContentType } from '../mms/content-type.js';

/** Spec §2.2: the whole file name given to AT+QMMSEDIT=5, `RAM:` included. */
export const RAM_PATH_MAX_BYTES = 80;
const RAM_PREFIX = 'RAM:';
/** Longest extension kept when a long name is shortened (the module types a part by it). */
const EXT_MAX = 10;

function reduce(s: string): string {
  return s
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^A-Za-z0-9_-]+/g, '_')
    .replace(/_+/g, '_')
    .replace(/^_+|_+$/g, '');
}

/** The name reduced to `[A-Za-z0-9._-]`, the extension kept apart so it survives. */
export function sanitizeName(name: string): { base: string; ext: string } {
  const dot = name.lastIndexOf('.');
  const rawBase = dot > 0 ? name.slice(0, dot) : name;
  const rawExt = dot > 0 ? name.slice(dot + 1) : '';
  const ext = rawExt.replace(/[^A-Za-z0-9]/g, '').slice(0, EXT_MAX - 1);
  return { base: reduce(rawBase) || 'part', ext: ext ? '.' + ext : '' };
}

/**
 * The RAM names of a message's parts: each part's own name (the module names the part in the MMS
 * after its file, so the recipient sees `photo.jpg`), reduced to a safe set, shortened with its
 * extension kept so that `RAM:` + name fits 80 bytes, and made unique within the message. Only one
 * message's files are kept in the module at a time (the sender evicts the others first).
 */
export function ramFileNames(parts: readonly { name: string; contentType?: string }[]): string[] {
  const used = new Set<string>();
  return parts.map(({ name, contentType }, i) => {
    const { base, ext: ownExt } = sanitizeName(name);
    // The module types a part by its file's extension: make it say what the client said.
    const type = contentType?.split(';')[0]!.trim().toLowerCase();
    const wanted = type && guessContentType(name) !== type ? extensionFor(type) : undefined;
    const ext = wanted ? `.${wanted}` : ownExt;
    const fit = (b: string, suffix: string): string =>
      b.slice(0, RAM_PATH_MAX_BYTES - RAM_PREFIX.length - ext.length - suffix.length) + suffix + ext;
    let n = fit(base, '');
    if (used.has(n.toLowerCase())) n = fit(base, `-${i + 1}`);
    used.add(n.toLowerCase());
    return n;
  });
}
