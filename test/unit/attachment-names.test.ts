// Attachment names (src/core/names.ts): the one function that names a part for the client and for
// the module's RAM alike, so that the name the daemon records is the name the recipient gets.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ATTACHMENT_NAME_MAX_BYTES, LIMITS } from '../../src/core/limits.js';
import { attachmentName, attachmentNames } from '../../src/core/names.js';

const named = (...names: string[]): { name: string }[] => names.map((name) => ({ name }));

describe('attachment names', () => {
  it.each([
    ['résumé (final).pdf', 'resume_final.pdf'],
    ['café menu.txt', 'cafe_menu.txt'],
    ['photo 1.JPG', 'photo_1.JPG'],
    ['图片 "1";.JPG', '1.JPG'],
    ['你好.txt', 'part.txt'],
    ['a;b".jpg', 'a_b.jpg'],
    ['../../etc/passwd', 'etc_passwd'],
    ['...', 'part'],
    ['.bashrc', 'bashrc'],
    ['archive.tar.gz', 'archive_tar.gz'],
    ['ﬁle①.png', 'file1.png'],
  ])('%j → %j', (given, expected) => {
    expect(attachmentName(given)).toBe(expected);
  });

  it('carry the extension of the content type the client gave, so the module types the part right', () => {
    expect(attachmentName('picture', 'image/png')).toBe('picture.png');
    expect(attachmentName('scan.dat', 'image/jpeg')).toBe('scan.jpg');
    expect(attachmentName('note.txt', 'text/plain; charset=utf-8')).toBe('note.txt');
    expect(attachmentName('blob', 'application/x-unknown')).toBe('blob');
  });

  it('are unique within the message, case-insensitively, in order', () => {
    expect(attachmentNames(named('photo.jpg', 'note.txt'))).toEqual(['photo.jpg', 'note.txt']);
    expect(attachmentNames(named('a.b.jpg', 'a_b.jpg'))).toEqual(['a_b.jpg', 'a_b-2.jpg']);
    expect(attachmentNames(named('x.png', 'X.png', 'x.png'))).toEqual(['x.png', 'X-2.png', 'x-3.png']);
    // A suffixed name never takes one that is already there.
    expect(attachmentNames(named('x-3.png', 'x.png', 'x.png', 'x.png'))).toEqual(['x-3.png', 'x.png', 'x-2.png', 'x-4.png']);
  });

  it('shorten a long name to RAM: + name = 80 bytes, extension kept, no dangling _ at the cut', () => {
    const [a, b] = attachmentNames(named(`${'a'.repeat(200)}.jpeg`, `${'a'.repeat(200)}.jpeg`));
    expect(Buffer.byteLength(`RAM:${a}`)).toBe(LIMITS.ramNameBytes);
    expect(a).toMatch(/^a+\.jpeg$/);
    expect(b).toMatch(/^a+-2\.jpeg$/);
    expect(b.length).toBe(ATTACHMENT_NAME_MAX_BYTES);
    const cut = attachmentName(`${'a'.repeat(71)} ${'b'.repeat(20)}.txt`);
    expect(cut).toBe(`${'a'.repeat(71)}.txt`);
  });

  it('keep only safe characters, fit 80 bytes with RAM:, are distinct, and come back unchanged (property)', () => {
    const part = fc.record({
      name: fc.string({ unit: 'binary', maxLength: 200 }),
      contentType: fc.option(fc.constantFrom('image/jpeg', 'image/png', 'text/plain; charset=utf-8', 'application/pdf', 'application/x-odd'), {
        nil: undefined,
      }),
    });
    fc.assert(
      fc.property(fc.array(part, { minLength: 1, maxLength: LIMITS.attachments }), (parts) => {
        const out = attachmentNames(parts);
        for (const n of out) {
          expect(n).toMatch(/^[A-Za-z0-9_-][A-Za-z0-9_-]*(\.[A-Za-z0-9]+)?$/);
          expect(Buffer.byteLength(`RAM:${n}`)).toBeLessThanOrEqual(LIMITS.ramNameBytes);
        }
        expect(new Set(out.map((n) => n.toLowerCase())).size).toBe(out.length);
        // The sender names RAM files by the same function from what validation recorded.
        expect(attachmentNames(out.map((name, i) => ({ name, contentType: parts[i].contentType })))).toEqual(out);
      }),
      { numRuns: 500 },
    );
  });
});
