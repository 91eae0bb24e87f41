// The one gate for text on the AT line: every argument that goes in quotes passes `quote()`
// (DESIGN.md §6: no `"`, CR, LF, Ctrl-Z or `;` from anywhere ever reaches a command).
import { isPlainAscii } from '../core/charset.js';

/** An argument the driver refuses to put on the AT line; nothing was written. */
export class InvalidArgumentError extends Error {
  override name = 'InvalidArgumentError';
  constructor(
    message: string,
    /** Which argument (e.g. "address", "subject"), never its value. */
    readonly argument: string,
  ) {
    super(message);
  }
}

/**
 * `"s"` when `s` is plain ASCII (core/charset.ts); throws InvalidArgumentError (naming the offending
 * character, not the text) otherwise.
 */
export function quote(s: string, argument = 'argument'): string {
  if (!isPlainAscii(s)) {
    let pos = 0;
    for (const ch of s) {
      if (!isPlainAscii(ch)) {
        const code = (ch.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0');
        throw new InvalidArgumentError(`${argument}: character U+${code} at position ${pos} may not go on the AT line`, argument);
      }
      pos++;
    }
  }
  return `"${s}"`;
}

/** An integer in [min, max] for a numeric argument (NaN or 1.5 must not reach the line either). */
export function int(n: number, min: number, max: number, argument = 'argument'): string {
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new InvalidArgumentError(`${argument}: ${String(n)} is not an integer in ${min}..${max}`, argument);
  }
  return String(n);
}
