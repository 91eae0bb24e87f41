// Photos that fit (DESIGN.md §11) on real image files made here with sharp, and on hand-built
// bytes for the ones sharp would not write (a truncated JPEG, a PNG pixel bomb).
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { LIMITS } from '../../src/core/limits.js';
import { makePhoto } from '../../src/harness/photos.js';
import { pixelBombPng } from '../helpers/images.js';
import { pseudoRandomBytes } from '../../src/harness/random.js';
import type { AttachmentInput } from '../../src/core/message.js';
import { RequestError } from '../../src/core/errors.js';
import { ImageError, ImagePixelLimitError, MessageTooLargeError } from '../../src/media/errors.js';
import { allocate, checkNonImageParts, fitMessage, formatBytes, HEADER_RESERVE, isFittableImage, jpegName, MIN_IMAGE_BUDGET, type FitOptions } from '../../src/media/fit.js';
import { decodeUpright, readHeader } from '../../src/media/image.js';
import { probeImageLibrary, type ImageLibrary } from '../../src/media/library.js';

const BOX: FitOptions = { maxWidth: 1600, maxHeight: 1600 };
const ADJUSTMENT = /^\S+: \d+×\d+ \d+(\.\d)? (B|KB|MB) → \d+×\d+ JPEG q\d+ \d+(\.\d)? (B|KB|MB)(, first of \d+ frames)?$/;
const text = (name: string, body: string): AttachmentInput => ({ name, contentType: 'text/plain; charset=utf-8', data: Buffer.from(body) });
const image = (name: string, contentType: string, data: Buffer): AttachmentInput => ({ name, contentType, data });

async function rgbAt(jpeg: Buffer, x: number, y: number): Promise<[number, number, number]> {
  const { data, info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
  const i = (y * info.width + x) * info.channels;
  return [data[i], data[i + 1], data[i + 2]];
}

const isRed = ([r, g, b]: number[]): boolean => r > 190 && g < 80 && b < 80;

/** Tags of IFD0 of an EXIF block as sharp returns it ("Exif\0\0" + TIFF), and the GPS IFD's entry count. */
function exifTags(exif: Buffer): { tags: number[]; gpsEntries: number } {
  const t = exif.toString('latin1', 0, 6) === 'Exif\0\0' ? exif.subarray(6) : exif;
  const le = t.toString('latin1', 0, 2) === 'II';
  const u16 = (o: number): number => (le ? t.readUInt16LE(o) : t.readUInt16BE(o));
  const u32 = (o: number): number => (le ? t.readUInt32LE(o) : t.readUInt32BE(o));
  const ifd = u32(4);
  const tags: number[] = [];
  let gpsEntries = 0;
  for (let i = 0; i < u16(ifd); i++) {
    const entry = ifd + 2 + 12 * i;
    tags.push(u16(entry));
    if (u16(entry) === 0x8825) gpsEntries = u16(u32(entry + 8));
  }
  return { tags, gpsEntries };
}

describe('fitMessage', () => {
  let photo800: Buffer;
  beforeAll(async () => {
    photo800 = await makePhoto(sharp, 800, 600, 7);
  });

  it('sends every part byte for byte, without loading the library, when the message fits', async () => {
    let loaded = false;
    const library = (): Promise<ImageLibrary> => {
      loaded = true;
      return Promise.resolve({ available: false, reason: 'not wanted' });
    };
    const parts = [image('a.jpg', 'image/jpeg', photo800), text('note.txt', 'hello')];
    const r = await fitMessage(parts, photo800.length + 5, { ...BOX, library });
    expect(r.adjustments).toEqual([]);
    expect(r.parts[0]).toBe(parts[0]);
    expect(r.parts[1]).toBe(parts[1]);
    expect(loaded).toBe(false);
  });

  it('turns a JPEG with EXIF orientation 6 upright and removes its EXIF, GPS, XMP and ICC blocks', async () => {
    // Stored 640×480 with a red square in the stored top-left corner; orientation 6 = turn 90° clockwise.
    const base = await makePhoto(sharp, 640, 480, 3);
    const red = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#ff0000' } }).png().toBuffer();
    const input = await sharp(base)
      .composite([{ input: red, left: 0, top: 0 }])
      .withExif({ IFD0: { Make: 'TestCam' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 2400/100', GPSLongitudeRef: 'E', GPSLongitude: '2/1 21/1 300/100' } })
      .withIccProfile('p3')
      .withXmp('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>')
      .withMetadata({ orientation: 6 })
      .jpeg({ quality: 95 })
      .toBuffer();
    const inMeta = await sharp(input).metadata();
    expect(inMeta.orientation).toBe(6);
    expect(exifTags(inMeta.exif!).tags).toContain(0x8825); // the GPS IFD pointer
    expect(exifTags(inMeta.exif!).gpsEntries).toBeGreaterThanOrEqual(4);
    expect(inMeta.icc).toBeDefined();
    expect(inMeta.xmp).toBeDefined();

    const note = text('note.txt', 'the front door, 07:12');
    const limit = Math.floor(input.length / 2);
    const r = await fitMessage([image('door.jpg', 'image/jpeg', input), note], limit, BOX);
    const out = r.parts[0];
    expect(out.name).toBe('door.jpg');
    expect(out.contentType).toBe('image/jpeg');
    expect(out.data.length).toBeLessThanOrEqual(limit - note.data.length - HEADER_RESERVE);
    expect(r.parts[1].data.equals(note.data)).toBe(true);

    const meta = await sharp(out.data).metadata();
    expect([meta.format, meta.width, meta.height, meta.isProgressive]).toEqual(['jpeg', 480, 640, false]);
    expect(meta.orientation).toBeUndefined();
    expect(meta.exif).toBeUndefined();
    expect(meta.icc).toBeUndefined();
    expect(meta.xmp).toBeUndefined();
    for (const marker of ['Exif', 'GPS', 'ICC_PROFILE', 'http://ns.adobe.com/xap']) expect(out.data.includes(marker)).toBe(false);
    // The stored top-left corner is now the top-right one.
    expect(isRed(await rgbAt(out.data, 480 - 20, 20))).toBe(true);
    expect(isRed(await rgbAt(out.data, 20, 20))).toBe(false);
    expect(r.adjustments).toHaveLength(1);
    expect(r.adjustments[0]).toMatch(ADJUSTMENT);
    expect(r.adjustments[0]).toMatch(/^door\.jpg: 480×640 .* → 480×640 JPEG q\d+ /);
  });

  it('flattens a PNG with transparency on white and names it .jpg', async () => {
    const [w, h] = [800, 600];
    const px = pseudoRandomBytes(w * h * 4, 11);
    for (let i = 0; i < w * h; i++) {
      px[i * 4] = px[i * 4] & 31;
      px[i * 4 + 1] = px[i * 4 + 1] & 31;
      px[i * 4 + 2] = 200 + (px[i * 4 + 2] & 31);
      px[i * 4 + 3] = i % w < w / 2 ? 0 : 255; // left half fully transparent
    }
    const png = await sharp(px, { raw: { width: w, height: h, channels: 4 } }).png().toBuffer();
    const r = await fitMessage([image('logo.png', 'image/png', png)], 100_000, BOX);
    const out = r.parts[0];
    expect([out.name, out.contentType]).toEqual(['logo.jpg', 'image/jpeg']);
    expect(out.data.length).toBeLessThanOrEqual(100_000 - HEADER_RESERVE);
    const meta = await sharp(out.data).metadata();
    expect([meta.format, meta.channels, meta.hasAlpha]).toEqual(['jpeg', 3, false]);
    const left = await rgbAt(out.data, 100, 300);
    const right = await rgbAt(out.data, 700, 300);
    expect(Math.min(...left)).toBeGreaterThan(235);
    expect(right[2]).toBeGreaterThan(150);
    expect(right[0]).toBeLessThan(90);
    expect(r.adjustments[0]).toMatch(/^logo\.png: 800×600 .* → 800×600 JPEG q\d+ /);
  });

  it('fits a WebP into a baseline JPEG', async () => {
    const webp = await sharp(await makePhoto(sharp, 1000, 800, 5)).webp({ quality: 95 }).toBuffer();
    const limit = Math.floor(webp.length / 3);
    const r = await fitMessage([image('pic.webp', 'image/webp', webp)], limit, BOX);
    const out = r.parts[0];
    expect(out.name).toBe('pic.jpg');
    expect(out.data.length).toBeLessThanOrEqual(limit - HEADER_RESERVE);
    const meta = await sharp(out.data).metadata();
    expect([meta.format, meta.isProgressive]).toEqual(['jpeg', false]);
    expect(meta.width * 4).toBe(meta.height * 5);
    expect(r.adjustments[0]).toMatch(ADJUSTMENT);
  });

  it('fits an AVIF (HEIF) image', async () => {
    const avif = await sharp(await makePhoto(sharp, 600, 400, 6)).avif({ quality: 90, effort: 0 }).toBuffer();
    expect((await sharp(avif).metadata()).format).toBe('heif');
    const limit = Math.floor(avif.length / 2);
    const r = await fitMessage([image('cam.avif', 'image/avif', avif)], limit, BOX);
    expect([r.parts[0].name, r.parts[0].contentType]).toEqual(['cam.jpg', 'image/jpeg']);
    expect(r.parts[0].data.length).toBeLessThanOrEqual(limit - HEADER_RESERVE);
    expect(await sharp(r.parts[0].data).metadata()).toMatchObject({ format: 'jpeg', width: 600, height: 400 });
    expect(r.adjustments[0]).toMatch(/^cam\.avif: 600×400 .* → 600×400 JPEG q\d+ /);
  });

  it('takes the first frame of an animated GIF and says so', async () => {
    const [w, h] = [300, 200];
    const frames = ['#ff0000', '#00ff00', '#0000ff'].map((colour, n) => {
      const px = pseudoRandomBytes(w * h * 3, 20 + n);
      const [r, g, b] = [1, 3, 5].map((i) => parseInt(colour.slice(i, i + 2), 16));
      for (let y = 50; y < 150; y++) for (let x = 100; x < 200; x++) px.set([r, g, b], (y * w + x) * 3);
      return px;
    });
    const gif = await sharp(Buffer.concat(frames), { raw: { width: w, height: h * 3, channels: 3, pageHeight: h } }).gif({ loop: 0, delay: [200, 200, 200], effort: 1 }).toBuffer();
    expect((await sharp(gif).metadata()).pages).toBe(3);
    const limit = Math.floor(gif.length / 2);
    const r = await fitMessage([image('anim.gif', 'image/gif', gif)], limit, BOX);
    const out = r.parts[0];
    expect(out.name).toBe('anim.jpg');
    expect(out.data.length).toBeLessThanOrEqual(limit - HEADER_RESERVE);
    const meta = await sharp(out.data).metadata();
    expect([meta.format, meta.width, meta.height, meta.pages]).toEqual(['jpeg', w, h, undefined]);
    expect(isRed(await rgbAt(out.data, 150, 100))).toBe(true);
    expect(r.adjustments[0]).toMatch(ADJUSTMENT);
    expect(r.adjustments[0]).toMatch(/, first of 3 frames$/);
  });

  it('fits a 12 MP JPEG to 300 KiB at most 1600×1600', async () => {
    const big = await makePhoto(sharp, 4000, 3000, 1);
    const limit = 300 * 1024;
    const r = await fitMessage([image('photo.jpg', 'image/jpeg', big)], limit, BOX);
    const out = r.parts[0];
    expect(out.data.length).toBeLessThanOrEqual(limit - HEADER_RESERVE);
    const meta = await sharp(out.data).metadata();
    expect([meta.format, meta.width, meta.height, meta.isProgressive, meta.chromaSubsampling]).toEqual(['jpeg', 1600, 1200, false, '4:2:0']);
    expect(r.adjustments).toEqual([expect.stringMatching(/^photo\.jpg: 4000×3000 \d\.\d MB → 1600×1200 JPEG q\d+ \d+ KB$/)]);
    const q = Number(/ q(\d+) /.exec(r.adjustments[0])![1]);
    expect(q).toBeGreaterThanOrEqual(40);
    expect(q).toBeLessThanOrEqual(90);
  });

  it('scales by 0.75 when quality 40 does not fit, and picks the highest quality that does', async () => {
    const p = await makePhoto(sharp, 1200, 900, 9);
    const stats = { encodes: 0 };
    const r = await fitMessage([image('yard.jpg', 'image/jpeg', p)], 40_000, { ...BOX, stats });
    const out = r.parts[0];
    expect(out.data.length).toBeLessThanOrEqual(40_000 - HEADER_RESERVE);
    const meta = await sharp(out.data).metadata();
    expect(meta.width).toBeLessThan(1200);
    expect(meta.width).toBeGreaterThanOrEqual(320);
    expect(meta.width / meta.height).toBeCloseTo(4 / 3, 2);
    // One point higher would not have fitted (or it is already 90).
    const q = Number(/ q(\d+) /.exec(r.adjustments[0])![1]);
    if (q < 90) {
      const raw = await sharp(out.data).raw().toBuffer({ resolveWithObject: true });
      const higher = await sharp(raw.data, { raw: { width: raw.info.width, height: raw.info.height, channels: 3 } }).jpeg({ quality: q + 1 }).toBuffer();
      expect(higher.length).toBeGreaterThan(out.data.length);
    }
    expect(stats.encodes).toBeLessThanOrEqual(8 * 6);
  });

  it('gives up below 320 px with MessageTooLarge saying by how much', async () => {
    // Pure noise hardly compresses: q40 is tried at 480, 360 and 320 px, and none fits.
    const noise = await sharp(pseudoRandomBytes(480 * 480 * 3, 4), { raw: { width: 480, height: 480, channels: 3 } }).png().toBuffer();
    const stats = { encodes: 0 };
    const err = await fitMessage([image('static.png', 'image/png', noise)], 20_000, { ...BOX, stats }).catch((e: unknown) => e);
    expect(stats.encodes).toBe(3);
    expect(err).toBeInstanceOf(MessageTooLargeError);
    const e = err as MessageTooLargeError;
    expect(e).toBeInstanceOf(RequestError);
    expect(e.errorName).toBe('MessageTooLarge');
    expect(e.part).toBe('static.png');
    expect(e.overBy).toBeGreaterThan(0);
    expect(e.message).toMatch(new RegExp(`^static\\.png: .* even at 320×320 JPEG q40, ${e.overBy} bytes over its budget of ${20_000 - HEADER_RESERVE} bytes$`));
  });

  it('keeps an image within its budget byte for byte and gives the fitted one a free name', async () => {
    const small = await sharp(await makePhoto(sharp, 160, 120, 2)).jpeg({ quality: 80 }).toBuffer();
    const big = await sharp(await makePhoto(sharp, 900, 600, 8)).png().toBuffer();
    const parts = [image('shot.png', 'image/png', big), image('shot.jpg', 'image/jpeg', small)];
    const r = await fitMessage(parts, 150_000, BOX);
    expect(r.parts[1]).toBe(parts[1]);
    expect([r.parts[0].name, r.parts[0].contentType]).toEqual(['shot-2.jpg', 'image/jpeg']);
    expect(r.parts[0].data.length + small.length).toBeLessThanOrEqual(150_000 - HEADER_RESERVE);
    expect(r.adjustments).toHaveLength(1);
    expect(r.adjustments[0]).toMatch(/^shot\.png: 900×600 /);
  });

  it('refuses a truncated JPEG with an ImageError naming the part', async () => {
    const cut = photo800.subarray(0, Math.floor(photo800.length * 0.6));
    const err = await fitMessage([image('cam.jpg', 'image/jpeg', cut)], 20_000, BOX).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageError);
    expect((err as ImageError).part).toBe('cam.jpg');
    expect((err as ImageError).reason).toBe('unreadable');
    expect((err as ImageError).message).toMatch(/^cam\.jpg: cannot be decoded \(.+\)$/);
  });

  it('refuses bytes labelled image/jpeg that are no image it fits', async () => {
    const svg = Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="9000" height="9000">${'<rect/>'.repeat(5000)}</svg>`);
    const err = await fitMessage([image('x.jpg', 'image/jpeg', svg)], 20_000, BOX).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageError);
    expect((err as ImageError).reason).toBe('unsupported');
  });

  it('refuses a 30000×30000 PNG pixel bomb from its header, before decoding', async () => {
    const bomb = pixelBombPng();
    expect(bomb.length).toBeLessThan(300);
    expect(await sharp(bomb, { limitInputPixels: false }).metadata()).toMatchObject({ format: 'png', width: 30000, height: 30000 });
    const err = await fitMessage([image('bomb.png', 'image/png', bomb), image('a.jpg', 'image/jpeg', photo800)], 50_000, BOX).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImagePixelLimitError);
    expect(err).toBeInstanceOf(ImageError);
    expect((err as ImagePixelLimitError).part).toBe('bomb.png');
    expect([(err as ImagePixelLimitError).width, (err as ImagePixelLimitError).height]).toEqual([30000, 30000]);
    expect((err as Error).message).toMatch(/900\.0 megapixels; images over 50 megapixels are not decoded/);
  });

  it('refuses a message whose non-image parts alone exceed the limit', async () => {
    const parts = [text('log.txt', 'x'.repeat(30_000)), image('a.jpg', 'image/jpeg', photo800)];
    await expect(fitMessage(parts, 25_000, BOX)).rejects.toThrow(MessageTooLargeError);
    expect(() => checkNonImageParts([{ name: 'log.txt', contentType: 'text/plain', size: 30_000 }], 25_000)).toThrow(/5000 over the limit of 25000/);
    expect(() => checkNonImageParts([{ name: 'a.jpg', contentType: 'image/jpeg', size: 9e6 }, { name: 'b.txt', contentType: 'text/plain', size: 100 }], 25_000)).not.toThrow();
  });

  it('refuses a message whose budget cannot give every image 16 KiB', async () => {
    const parts = [image('a.jpg', 'image/jpeg', photo800), image('b.jpg', 'image/jpeg', photo800), text('n.txt', 'x'.repeat(1000))];
    const err = await fitMessage(parts, 34_000, BOX).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MessageTooLargeError);
    expect((err as Error).message).toMatch(/; 30952 bytes are left for 2 image\(s\), and each needs at least 16384$/);
  });

  it('reports fitting off when the library cannot load, and refuses the oversize message', async () => {
    const library = (): Promise<ImageLibrary> => Promise.resolve({ available: false, reason: 'Could not load the "sharp" module using the linux-mips runtime' });
    const err = await fitMessage([image('a.jpg', 'image/jpeg', photo800)], 50_000, { ...BOX, library }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MessageTooLargeError);
    expect((err as Error).message).toMatch(/over the limit of 50000; image fitting is off: Could not load the "sharp" module/);
  });
});

describe('fitting helpers', () => {
  it('orients all eight EXIF orientations as sharp itself does', async () => {
    const [w, h] = [6, 4];
    const px = Buffer.from(Array.from({ length: w * h * 3 }, (_, i) => (i * 37) % 256));
    for (let o = 1; o <= 8; o++) {
      const png = await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().withMetadata({ orientation: o }).toBuffer();
      const expected = await sharp(png).autoOrient().raw().toBuffer({ resolveWithObject: true });
      const header = await readHeader(sharp, 'o.png', png);
      const mine = await decodeUpright(sharp, 'o.png', png, header, 1600, 1600);
      expect([o, mine.width, mine.height]).toEqual([o, expected.info.width, expected.info.height]);
      expect(mine.data.equals(expected.data), `orientation ${o}`).toBe(true);
    }
  });

  it('shares the budget in proportion to pixels, at least 16 KiB each', () => {
    expect(allocate(100_000, [1, 3])).toEqual([25_000, 75_000]);
    expect(allocate(60_000, [1, 99])).toEqual([MIN_IMAGE_BUDGET, 60_000 - MIN_IMAGE_BUDGET]);
    expect(allocate(3 * MIN_IMAGE_BUDGET, [1, 1000, 1])).toEqual([MIN_IMAGE_BUDGET, MIN_IMAGE_BUDGET, MIN_IMAGE_BUDGET]);
    expect(allocate(30_000, [1, 1])).toBeUndefined();
  });

  it('names fitted parts .jpg, unique and within the module name length', () => {
    expect(jpegName('photo.heic', new Set())).toBe('photo.jpg');
    expect(jpegName('photo.heic', new Set(['photo.jpg', 'photo-1.jpg']))).toBe('photo-2.jpg');
    expect(jpegName('snapshot', new Set())).toBe('snapshot.jpg');
    const long = jpegName('a'.repeat(100), new Set());
    expect(long).toMatch(/^a+\.jpg$/);
    expect(`RAM:${long}`.length).toBe(LIMITS.ramNameBytes);
  });

  it('refuses a size box smaller than the 320 px floor', async () => {
    await expect(fitMessage([], 1000, { maxWidth: 100, maxHeight: 1600 })).rejects.toThrow(/maxWidth must be an integer of at least 320, got 100/);
  });

  it('tells image parts by their content type', () => {
    for (const t of ['image/jpeg', 'IMAGE/PNG', 'image/webp', 'image/gif', 'image/heic', 'image/avif']) expect(isFittableImage(t), t).toBe(true);
    for (const t of ['image/svg+xml', 'text/plain', 'application/smil', 'image/bmp']) expect(isFittableImage(t), t).toBe(false);
  });

  it('formats sizes in SI units', () => {
    expect([formatBytes(812), formatBytes(241_300), formatBytes(2_900_000), formatBytes(999_999)]).toEqual(['812 B', '241 KB', '2.9 MB', '1.0 MB']);
  });

  it('probes the library in a child process', async () => {
    const status = await probeImageLibrary();
    expect(status).toMatchObject({ available: true, version: expect.stringMatching(/^sharp \d+\.\d+\.\d+, libvips \d+\.\d+/) });
  });
});
