// Names of attachment files in the module's RAM (DESIGN.md §6): deterministic per message and
// part (so a re-send finds them again), safe on the AT line, and `RAM:` + name ≤ 80 bytes (§2.2).
import { createHash } from 'node:crypto';

/** Spec §2.2: the whole file name given to AT+QMMSEDIT=5, `RAM:` included. */
export const RAM_PATH_MAX_BYTES = 80;
const RAM_PREFIX = 'RAM:';
/** Longest extension kept when a long name is shortened (the module types a part by it). */
const EXT_MAX = 10;

/** A short, AT-safe stand-in for a message id (ids come from clients and may be anything). */
export function messagePrefix(id: string): string {
  return 'm' + createHash('sha256').update(id, 'utf8').digest('hex').slice(0, 10);
}

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

/** `<prefix>_<index>_<name>`, shortened (extension kept) so that `RAM:` + it fits 80 bytes. */
export function ramFileName(id: string, index: number, name: string): string {
  const head = `${messagePrefix(id)}_${index}_`;
  const { base, ext } = sanitizeName(name);
  const budget = RAM_PATH_MAX_BYTES - RAM_PREFIX.length - head.length - ext.length;
  return head + base.slice(0, budget) + ext;
}
