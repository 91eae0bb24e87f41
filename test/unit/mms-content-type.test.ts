// guessContentType (shared by the sim and the daemon) and the SMIL/multipart decision.
import { describe, expect, it } from 'vitest';
import { guessContentType, isTextType, wellKnownMedia, wellKnownMediaNumber } from '../../src/mms/content-type.js';
import { buildSmil, composeBody } from '../../src/mms/smil.js';
import { MULTIPART_MIXED, MULTIPART_RELATED, type MmsPart } from '../../src/mms/types.js';

describe('guessContentType', () => {
  it.each([
    ['note.txt', 'text/plain'],
    ['PHOTO.JPG', 'image/jpeg'],
    ['a.jpeg', 'image/jpeg'],
    ['a.png', 'image/png'],
    ['a.gif', 'image/gif'],
    ['a.bmp', 'image/bmp'],
    ['a.wbmp', 'image/vnd.wap.wbmp'],
    ['voice.amr', 'audio/amr'],
    ['clip.3gp', 'video/3gpp'],
    ['clip.mp4', 'video/mp4'],
    ['pres.smil', 'application/smil'],
    ['card.vcf', 'text/x-vcard'],
    ['dir/x.tar.gz', 'application/octet-stream'],
    ['noext', 'application/octet-stream'],
    ['weird.xyz', 'application/octet-stream'],
  ])('%s is %s', (name, type) => {
    expect(guessContentType(name)).toBe(type);
  });

  it('marks text types, which carry a charset', () => {
    expect(isTextType('text/plain')).toBe(true);
    expect(isTextType('image/png')).toBe(false);
  });
});

describe('well-known media (WAP-230 Table 40)', () => {
  it('has the assigned numbers the PDUs use', () => {
    expect(wellKnownMediaNumber('text/plain')).toBe(0x03);
    expect(wellKnownMediaNumber('image/jpeg')).toBe(0x1e);
    expect(wellKnownMediaNumber('image/png')).toBe(0x20);
    expect(wellKnownMediaNumber('application/vnd.wap.multipart.mixed')).toBe(0x23);
    expect(wellKnownMediaNumber('application/vnd.wap.multipart.related')).toBe(0x33);
    expect(wellKnownMediaNumber('application/vnd.wap.mms-message')).toBe(0x3e);
    expect(wellKnownMedia(0x4b)).toBe('application/vnd.oma.drm.rights+wbxml');
    expect(wellKnownMediaNumber('application/smil')).toBeUndefined();
  });
});

describe('composeBody', () => {
  const text: MmsPart = { contentType: 'text/plain', charset: 'utf-8', name: 'a.txt', contentLocation: 'a.txt', data: Buffer.from('x') };
  const image: MmsPart = { contentType: 'image/png', name: 'b&.png', contentLocation: 'b&.png', data: Buffer.alloc(1) };

  it('sends one text part as multipart.mixed without SMIL', () => {
    expect(composeBody([text])).toEqual({ contentType: MULTIPART_MIXED, parts: [text] });
    expect(composeBody([])).toEqual({ contentType: MULTIPART_MIXED, parts: [] });
  });

  it('adds a SMIL part first for an image or several parts', () => {
    const one = composeBody([image]);
    expect(one.contentType).toBe(MULTIPART_RELATED);
    expect(one.type).toBe('application/smil');
    expect(one.start).toBe('<smil>');
    expect(one.parts[0]).toMatchObject({ contentType: 'application/smil', name: 'smil.smil', contentId: '<smil>' });
    expect(composeBody([text, text]).parts).toHaveLength(3);
  });

  it('escapes names in the SMIL and keeps its own name unique', () => {
    expect(buildSmil([image])).toContain('src="b&amp;.png"');
    const clash: MmsPart = { ...text, name: 'smil.smil', contentLocation: 'smil.smil', contentId: '<smil>' };
    const body = composeBody([clash, image]);
    expect(body.parts[0].name).toBe('smil-1.smil');
    expect(body.start).toBe('<smil-1>');
  });
});
