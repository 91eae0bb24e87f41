// The GSM 7-bit default alphabet and its extension table (3GPP TS 23.038 §6.2.1, §6.2.1.1) and
// septet packing (TS 23.040 §9.2.3.24 fill bits, §9.1.2.5 alphanumeric addresses). Pure; shared by
// the SMS decoder and the sim's SMS encoder.

/** Index = septet value. 0x1B is the escape to the extension table. */
const DEFAULT_ALPHABET =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?' +
  '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';

export const ESCAPE = 0x1b;

/** §6.2.1.1: the extension table of the default alphabet (after ESC). */
const EXTENSION: Readonly<Record<number, string>> = {
  0x0a: '\f',
  0x14: '^',
  0x28: '{',
  0x29: '}',
  0x2f: '\\',
  0x3c: '[',
  0x3d: '~',
  0x3e: ']',
  0x40: '|',
  0x65: '€',
};

const DEFAULT_CODE = new Map<string, number>([...DEFAULT_ALPHABET].map((c, i) => [c, i] as const).filter(([, i]) => i !== ESCAPE));
const EXTENSION_CODE = new Map<string, number>(Object.entries(EXTENSION).map(([code, c]) => [c, Number(code)]));

/** Septet values (one per array element) → text. */
export function septetsToText(septets: ArrayLike<number>): string {
  let out = '';
  for (let i = 0; i < septets.length; i++) {
    const s = septets[i] & 0x7f;
    if (s !== ESCAPE) {
      out += DEFAULT_ALPHABET[s];
      continue;
    }
    i++;
    if (i >= septets.length) break; // a trailing escape stands for nothing (§6.2.1.1)
    const e = septets[i] & 0x7f;
    // §6.2.1.1: an unknown extension shows the default alphabet's character for that code.
    out += EXTENSION[e] ?? (e === ESCAPE ? ' ' : DEFAULT_ALPHABET[e]);
  }
  return out;
}

/** The septets of `text`, or undefined when a character is outside the alphabet and its extension. */
export function textToSeptets(text: string): number[] | undefined {
  const out: number[] = [];
  for (const c of text) {
    const d = DEFAULT_CODE.get(c);
    if (d !== undefined) {
      out.push(d);
      continue;
    }
    const e = EXTENSION_CODE.get(c);
    if (e === undefined) return undefined;
    out.push(ESCAPE, e);
  }
  return out;
}

export function isGsm7(text: string): boolean {
  return textToSeptets(text) !== undefined;
}

/**
 * Unpack `count` septets from `octets`, the first starting at bit `bitOffset` (0: the least
 * significant bit of octets[0]). Septets are packed least significant bit first (TS 23.038 §6.1.2.1.1).
 */
export function unpackSeptets(octets: Uint8Array, count: number, bitOffset = 0): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const bit = bitOffset + i * 7;
    const byte = bit >> 3;
    const shift = bit & 7;
    const lo = octets[byte] ?? 0;
    const hi = octets[byte + 1] ?? 0;
    out.push(((lo | (hi << 8)) >> shift) & 0x7f);
  }
  return out;
}

/** Pack septets, the first starting at bit `bitOffset` of the first octet (lower bits left 0). */
export function packSeptets(septets: readonly number[], bitOffset = 0): Buffer {
  const totalBits = bitOffset + septets.length * 7;
  const out = Buffer.alloc(Math.ceil(totalBits / 8));
  septets.forEach((s, i) => {
    const bit = bitOffset + i * 7;
    const byte = bit >> 3;
    const v = (s & 0x7f) << (bit & 7);
    out[byte] |= v & 0xff;
    if (v > 0xff) out[byte + 1] |= v >> 8;
  });
  return out;
}
