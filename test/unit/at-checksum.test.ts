// checksum16: the module's 16-bit XOR over big-endian words (DESIGN.md §6), on hand-computed vectors.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checksum16 } from '../../src/at/checksum.js';

describe('checksum16', () => {
  it.each([
    ['empty', [], 0x0000],
    ['one byte is the high byte of a word', [0x12], 0x1200],
    ['one word', [0x12, 0x34], 0x1234],
    ['odd tail', [0x12, 0x34, 0x56], 0x4434],
    ['two words', [0x12, 0x34, 0x56, 0x78], 0x444c],
    ['equal words cancel', [0xff, 0xff, 0xff, 0xff], 0x0000],
    ['"ABC"', [0x41, 0x42, 0x43], 0x0242],
    ['"+++" (escape bytes in data)', [0x2b, 0x2b, 0x2b], 0x002b],
  ])('%s', (_name, bytes, expected) => {
    expect(checksum16(Buffer.from(bytes))).toBe(expected);
  });

  it('is the XOR of the checksums of an even-length head and the tail', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 64 }), (a, b) => {
        const head = a.length % 2 === 0 ? a : a.subarray(1);
        const both = Buffer.concat([head, b]);
        expect(checksum16(both)).toBe(checksum16(head) ^ checksum16(b));
        expect(checksum16(both)).toBeLessThanOrEqual(0xffff);
      }),
    );
  });
});
