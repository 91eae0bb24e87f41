// Message ids ↔ object path elements (src/api/dbus/names.ts).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { escapePathElement, messageIdFromPath, messagePath, unescapePathElement } from '../../src/api/dbus/names.js';

describe('message object paths', () => {
  it('keeps letters and digits and escapes every other byte as _xx', () => {
    expect(escapePathElement('abc123')).toBe('abc123');
    expect(escapePathElement('order-7')).toBe('order_2d7');
    expect(escapePathElement('a_b')).toBe('a_5fb');
    expect(escapePathElement('é')).toBe('_c3_a9');
    expect(escapePathElement('')).toBe('_');
    expect(messagePath('x.y')).toBe('/org/example/Mms1/message/x_2ey');
  });

  it('round-trips any id and only ever produces valid path element characters', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (id) => {
        const element = escapePathElement(id);
        expect(element).toMatch(/^[A-Za-z0-9_]+$/);
        expect(unescapePathElement(element)).toBe(id);
        expect(messageIdFromPath(messagePath(id))).toBe(id);
      }),
    );
  });

  it('rejects elements that escaping cannot produce, so the mapping stays one-to-one', () => {
    expect(unescapePathElement('_61')).toBeUndefined(); // an escaped letter
    expect(unescapePathElement('_zz')).toBeUndefined();
    expect(unescapePathElement('a_2')).toBeUndefined();
    expect(unescapePathElement('_ff')).toBeUndefined(); // not UTF-8
    expect(messageIdFromPath('/org/example/Mms1')).toBeUndefined();
  });
});
