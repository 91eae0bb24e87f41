// One image through sharp (DESIGN.md §11): read its header, decode it once to upright sRGB pixels
// within the size box, then find the best baseline JPEG that fits a byte budget.
import type { Sharp as SharpInstance, SharpOptions } from 'sharp';
import { ImageError, ImagePixelLimitError } from './errors.js';
import type { Sharp } from './library.js';
import { errorText } from '../core/errors.js';

/**
 * Images whose header claims more pixels are refused before a pixel is decoded. 50 MP admits a
 * 48 MP phone photo (8064×6048) and refuses a 30000×30000 PNG of a few KB. JPEG and WebP shrink
 * while they load; GIF frames and HEIF decode whole, up to 4 bytes a pixel below this limit.
 */
export const MAX_INPUT_PIXELS = 50_000_000;
/** §11: the image is scaled by this factor when quality 40 does not fit. */
export const SCALE_STEP = 0.75;
/** §11: no smaller than this on the long side. */
export const MIN_LONG_SIDE = 320;
export const MAX_QUALITY = 90;
export const MIN_QUALITY = 40;
/** One sharp operation on an untrusted image may take this long (a 12 MP JPEG takes ~0.5 s). */
const TIMEOUT_SECONDS = 60;

export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'heif';

const HEIF_BRANDS = new Set(['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'mif1', 'msf1', 'avif', 'avis']);

/**
 * The format the first bytes announce, or undefined: only these reach a decoder, so a part
 * labelled image/jpeg that holds SVG, TIFF or PDF is never handed to librsvg or poppler.
 */
export function sniffImageFormat(b: Buffer): ImageFormat | undefined {
  const ascii = (from: number, to: number): string => b.toString('latin1', from, to);
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && ascii(0, 8) === '\x89PNG\r\n\x1a\n') return 'png';
  if (b.length >= 6 && (ascii(0, 6) === 'GIF87a' || ascii(0, 6) === 'GIF89a')) return 'gif';
  if (b.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
  if (b.length >= 12 && ascii(4, 8) === 'ftyp' && HEIF_BRANDS.has(ascii(8, 12))) return 'heif';
  return undefined;
}

/** What the header says, before any pixel is decoded. */
export interface ImageHeader {
  format: ImageFormat;
  /** As displayed: after the EXIF orientation. */
  width: number;
  height: number;
  /** EXIF orientation, 1 (upright) when absent. */
  orientation: number;
  /** Frames of an animated GIF/WebP (1 for a still image). */
  frames: number;
}

/** Decoded pixels: upright, sRGB, 3 channels of 8 bits, flattened on white. */
export interface RawImage {
  data: Buffer;
  width: number;
  height: number;
}

export interface EncodedImage {
  data: Buffer;
  width: number;
  height: number;
  quality: number;
}

/** The smallest encoding tried, when even that was over the budget. */
export interface Unfitted {
  smallest: number;
  width: number;
  height: number;
}

function inputOptions(): SharpOptions {
  // failOn 'warning': a truncated or damaged image is refused, not sent with a grey bottom half.
  // pages 1: the first frame of an animation only.
  return { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'warning', pages: 1, page: 0 };
}

/** Reads the header of an image part; throws ImageError for anything that is not a fitted image. */
export async function readHeader(sharp: Sharp, part: string, data: Buffer): Promise<ImageHeader> {
  const format = sniffImageFormat(data);
  if (!format) throw new ImageError(part, 'unsupported', 'not a JPEG, PNG, WebP, GIF or HEIF/AVIF image');
  let meta;
  try {
    // The header only: the pixel limit is checked below, to name the size in the error.
    meta = await sharp(data, { ...inputOptions(), limitInputPixels: false }).metadata();
  } catch (err) {
    throw unreadable(part, err);
  }
  if (meta.format !== format) throw new ImageError(part, 'unsupported', `the ${format.toUpperCase()} signature hides a ${String(meta.format)} image`);
  const w = meta.width;
  const h = meta.pageHeight ?? meta.height;
  if (!(w > 0 && h > 0)) throw new ImageError(part, 'unreadable', 'the header gives no size');
  if (w * h > MAX_INPUT_PIXELS) throw new ImagePixelLimitError(part, w, h, MAX_INPUT_PIXELS);
  const orientation = meta.orientation !== undefined && meta.orientation >= 1 && meta.orientation <= 8 ? meta.orientation : 1;
  const swap = orientation >= 5;
  return { format, width: swap ? h : w, height: swap ? w : h, orientation, frames: Math.max(1, meta.pages ?? 1) };
}

/** The displayed size fitted inside maxWidth × maxHeight, never enlarged. */
export function boxSize(width: number, height: number, maxWidth: number, maxHeight: number): { width: number; height: number } {
  const scale = Math.min(1, maxWidth / width, maxHeight / height);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/**
 * Decodes once, shrinking on load (JPEG by 1/2..1/8 in the decoder, WebP likewise), to upright
 * sRGB pixels inside the box. Orientation is applied after the resize, on the small image: a
 * 90° turn needs the whole image in memory, and a PNG or GIF cannot shrink while it loads. No
 * metadata survives raw pixels: EXIF, GPS, XMP and ICC are gone (ICC applied first, to sRGB).
 */
export async function decodeUpright(sharp: Sharp, part: string, data: Buffer, header: ImageHeader, maxWidth: number, maxHeight: number): Promise<RawImage> {
  const swap = header.orientation >= 5;
  const stored = swap ? { w: maxHeight, h: maxWidth } : { w: maxWidth, h: maxHeight };
  try {
    const { data: pixels, info } = await sharp(data, inputOptions())
      .resize({ width: stored.w, height: stored.h, fit: 'inside', withoutEnlargement: true })
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .timeout({ seconds: TIMEOUT_SECONDS })
      .toBuffer({ resolveWithObject: true });
    // Grey, grey+alpha, RGBA, CMYK and 16-bit inputs all arrive as 3 channels of 8 bits here.
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, not 3`);
    const raw: RawImage = { data: pixels, width: info.width, height: info.height };
    return header.orientation === 1 ? raw : await orient(sharp, raw, header.orientation);
  } catch (err) {
    throw unreadable(part, err);
  }
}

/** EXIF orientation → the turn (clockwise, before the mirror) that makes the image upright. */
const ORIENTATIONS: Record<number, { rotate: number; flop: boolean }> = {
  2: { rotate: 0, flop: true },
  3: { rotate: 180, flop: false },
  4: { rotate: 180, flop: true },
  5: { rotate: 270, flop: true },
  6: { rotate: 90, flop: false },
  7: { rotate: 90, flop: true },
  8: { rotate: 270, flop: false },
};

async function orient(sharp: Sharp, raw: RawImage, orientation: number): Promise<RawImage> {
  const o = ORIENTATIONS[orientation];
  if (!o) return raw;
  let p = pipeline(sharp, raw);
  if (o.rotate) p = p.rotate(o.rotate);
  if (o.flop) p = p.flop();
  return p.raw().toBuffer({ resolveWithObject: true }).then(toRaw);
}

function pipeline(sharp: Sharp, raw: RawImage): SharpInstance {
  return sharp(raw.data, { raw: { width: raw.width, height: raw.height, channels: 3 } });
}

function toRaw({ data, info }: { data: Buffer; info: { width: number; height: number } }): RawImage {
  return { data, width: info.width, height: info.height };
}

/** Baseline (not progressive) JPEG, 4:2:0, optimised Huffman tables, no metadata at all. */
export function encodeJpeg(sharp: Sharp, raw: RawImage, quality: number): Promise<Buffer> {
  return pipeline(sharp, raw).jpeg({ quality, progressive: false, chromaSubsampling: '4:2:0', optimiseCoding: true }).toBuffer();
}

/** Encodes made by one search, for the bench and the tests. */
export interface SearchStats {
  encodes: number;
}

/**
 * The highest quality from 90 down to 40 whose JPEG fits the budget, found by bisection: at most
 * 8 encodes (40, 90, then 6 halvings) where stepping down one point at a time takes up to 51, and
 * 10-point steps lose up to 9 points. An encode at 1600×1200 takes ~20 ms, a decode of 12 MP ~300.
 * Assumes size grows with quality (true of libjpeg's scaled tables); what it returns was measured
 * to fit. Returns the size at 40 when nothing fits.
 */
export async function searchQuality(sharp: Sharp, raw: RawImage, budget: number, stats?: SearchStats): Promise<EncodedImage | Unfitted> {
  const encode = (q: number): Promise<Buffer> => {
    if (stats) stats.encodes++;
    return encodeJpeg(sharp, raw, q);
  };
  const at = (data: Buffer, quality: number): EncodedImage => ({ data, width: raw.width, height: raw.height, quality });
  const low = await encode(MIN_QUALITY);
  if (low.length > budget) return { smallest: low.length, width: raw.width, height: raw.height };
  const high = await encode(MAX_QUALITY);
  if (high.length <= budget) return at(high, MAX_QUALITY);
  let best = at(low, MIN_QUALITY);
  let hi = MAX_QUALITY;
  while (hi - best.quality > 1) {
    const mid = Math.floor((best.quality + hi) / 2);
    const data = await encode(mid);
    if (data.length <= budget) best = at(data, mid);
    else hi = mid;
  }
  return best;
}

/** The next size down by SCALE_STEP, the last one MIN_LONG_SIDE on the long side; none below it. */
export function nextSize(original: RawImage, current: RawImage): { width: number; height: number } | undefined {
  const long = Math.max(current.width, current.height);
  if (long <= MIN_LONG_SIDE) return undefined;
  const targetLong = Math.max(MIN_LONG_SIDE, Math.floor(long * SCALE_STEP));
  const scale = targetLong / Math.max(original.width, original.height);
  return { width: Math.max(1, Math.round(original.width * scale)), height: Math.max(1, Math.round(original.height * scale)) };
}

/**
 * Fits decoded pixels to a budget: the quality search at full size, then at each step down
 * (always resized from the decoded pixels, so blur does not add up), until one fits or the long
 * side would fall below MIN_LONG_SIDE.
 */
export async function fitPixels(sharp: Sharp, raw: RawImage, budget: number, stats?: SearchStats): Promise<EncodedImage | Unfitted> {
  let current = raw;
  for (;;) {
    const result = await searchQuality(sharp, current, budget, stats);
    if ('data' in result) return result;
    const next = nextSize(raw, current);
    if (!next) return result;
    current = await pipeline(sharp, raw).resize(next.width, next.height, { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true }).then(toRaw);
  }
}

function unreadable(part: string, err: unknown): ImageError {
  if (err instanceof ImageError) return err;
  const text = errorText(err).split('\n')[0] ?? '';
  if (/pixel limit/i.test(text)) return new ImageError(part, 'too-many-pixels', `${text} (limit ${MAX_INPUT_PIXELS / 1e6} megapixels)`);
  return new ImageError(part, 'unreadable', `cannot be decoded (${text || 'unknown error'})`);
}
