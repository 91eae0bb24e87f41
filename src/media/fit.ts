// Photos that fit (DESIGN.md §11): a message's images re-encoded so that the whole message fits a
// byte limit. Knows parts and bytes only: the limit, the spool and the modem are the caller's.
import type { AttachmentInput } from '../core/message.js';
import { uniqueAttachmentName } from '../core/names.js';
import { MessageTooLargeError } from './errors.js';
import { boxSize, decodeUpright, fitPixels, MIN_LONG_SIDE, readHeader, type ImageHeader, type SearchStats } from './image.js';
import { loadImageLibrary, type ImageLibraryLoader, type Sharp } from './library.js';

/** §11: bytes kept back for the MMS headers. */
export const HEADER_RESERVE = 2048;
/** §11: no image's budget is smaller. */
export const MIN_IMAGE_BUDGET = 16 * 1024;
/** Defaults of `media.maxWidth` / `media.maxHeight`. */
export const DEFAULT_MAX_WIDTH = 1600;
export const DEFAULT_MAX_HEIGHT = 1600;

/** Content types of the parts that are fitted; any other part (image/svg+xml too) goes as it is. */
const IMAGE_TYPES = new Set(['image/jpeg', 'image/jpg', 'image/pjpeg', 'image/png', 'image/webp', 'image/gif', 'image/heic', 'image/heif', 'image/heic-sequence', 'image/heif-sequence', 'image/avif']);

export interface FitOptions {
  maxWidth: number;
  maxHeight: number;
  /** How the image library is obtained (default: sharp, loaded on first use). */
  library?: ImageLibraryLoader;
  /** Counts encodes, for the bench and the tests. */
  stats?: SearchStats;
  /** Told the name of each image before it is decoded (the isolated runner names a crash by it). */
  onDecode?: (part: string) => void;
}

export interface FitResult {
  /** The parts in their order: unchanged ones are the same objects, fitted ones new. */
  parts: AttachmentInput[];
  /** One line per changed part (§11 `Adjustments`), e.g. `photo.heic: 4032×3024 2.9 MB → 1600×1200 JPEG q78 241 KB`. */
  adjustments: string[];
}

/** A part as a front door knows it before reading it: its type and size. */
export interface PartSize {
  name: string;
  contentType: string;
  size: number;
}

/** Whether a part is one of the images that fitting re-encodes, by its declared content type. */
export function isFittableImage(contentType: string): boolean {
  return IMAGE_TYPES.has(contentType.split(';')[0]?.trim().toLowerCase() ?? '');
}

/**
 * The door's check (§11): throws MessageTooLargeError when the non-image parts alone exceed the
 * limit, since no fitting can help then. Image parts are left to fitMessage.
 */
export function checkNonImageParts(parts: readonly PartSize[], limitBytes: number): void {
  const others = parts.filter((p) => !isFittableImage(p.contentType));
  const total = others.reduce((n, p) => n + p.size, 0);
  if (total > limitBytes) {
    throw new MessageTooLargeError(
      `the parts other than images total ${total} bytes, ${total - limitBytes} over the limit of ${limitBytes}; only images can be made smaller`,
      total - limitBytes,
    );
  }
}

/**
 * False when the message fits as it is; true when its images must be fitted. Throws
 * MessageTooLargeError when fitting cannot help: the non-image parts alone are over the limit,
 * or there is no image. Decodes nothing.
 */
export function needsFitting(parts: readonly AttachmentInput[], limitBytes: number): boolean {
  const total = parts.reduce((n, p) => n + p.data.length, 0);
  if (total <= limitBytes) return false;
  checkNonImageParts(parts.map(sizeOf), limitBytes);
  if (!parts.some((p) => isFittableImage(p.contentType))) throw tooLarge(total, limitBytes, 'the message has no image to make smaller');
  return true;
}

/**
 * Makes a message fit `limitBytes` (its attachments' bytes; the caller's limit, §11). When it
 * already fits, every part goes byte for byte and nothing is loaded. Otherwise each image that is
 * over its budget becomes a baseline JPEG (upright, no metadata, white behind transparency, within
 * maxWidth × maxHeight) at the best quality that fits; images within their budget are kept.
 *
 * Throws MessageTooLargeError (non-image parts too large, fitting unavailable, or an image over
 * its budget even at 320 px and quality 40) and ImageError (an image that cannot be decoded, or
 * ImagePixelLimitError for one with too many pixels).
 */
export async function fitMessage(parts: readonly AttachmentInput[], limitBytes: number, opts: FitOptions): Promise<FitResult> {
  for (const [key, v] of [['maxWidth', opts.maxWidth], ['maxHeight', opts.maxHeight]] as const) {
    if (!Number.isInteger(v) || v < MIN_LONG_SIDE) throw new RangeError(`${key} must be an integer of at least ${MIN_LONG_SIDE}, got ${v}`);
  }
  if (!needsFitting(parts, limitBytes)) return { parts: [...parts], adjustments: [] };
  const total = parts.reduce((n, p) => n + p.data.length, 0);
  const images = parts.flatMap((p, index) => (isFittableImage(p.contentType) ? [{ index, part: p }] : []));
  const other = total - images.reduce((n, i) => n + i.part.data.length, 0);
  const budget = limitBytes - other - HEADER_RESERVE;
  const lib = await (opts.library ?? loadImageLibrary)();
  if (!lib.available) throw tooLarge(total, limitBytes, `image fitting is off: ${lib.reason}`);
  const { sharp } = lib;

  const pending: Pending[] = [];
  for (const { index, part } of images) {
    opts.onDecode?.(part.name);
    const header = await readHeader(sharp, part.name, part.data);
    pending.push({ index, part, header, weight: boxPixels(header, opts) });
  }

  const shareOut = (left: number): number[] => {
    const shares = allocate(left, pending.map((p) => p.weight));
    if (shares) return shares;
    throw tooLarge(total, limitBytes, `${Math.max(0, left)} bytes are left for ${pending.length} image(s), and each needs at least ${MIN_IMAGE_BUDGET}`);
  };
  // Images within their share stay byte for byte; what they leave is shared by the others.
  let left = budget;
  for (;;) {
    const shares = shareOut(left);
    const keep = pending.filter((p, i) => p.part.data.length <= (shares[i] ?? 0));
    if (keep.length === 0) break;
    for (const k of keep) {
      left -= k.part.data.length;
      pending.splice(pending.indexOf(k), 1);
    }
  }

  const out = [...parts];
  const adjustments: string[] = [];
  const taken = new Set(parts.map((p) => p.name.toLowerCase()));
  while (pending.length > 0) {
    // Each share is recomputed from what the images before left over.
    const share = shareOut(left)[0] ?? 0;
    const p = pending.shift() as Pending;
    const fitted = await fitOne(sharp, p, share, opts);
    left -= fitted.data.length;
    taken.delete(p.part.name.toLowerCase());
    const name = jpegName(p.part.name, taken);
    taken.add(name.toLowerCase());
    out[p.index] = { name, contentType: 'image/jpeg', data: fitted.data };
    adjustments.push(adjustment(p, fitted));
  }
  return { parts: out, adjustments };
}

interface Pending {
  index: number;
  part: AttachmentInput;
  header: ImageHeader;
  /** Pixels once inside the size box: the image's weight in the budget (§11). */
  weight: number;
}

function sizeOf(p: AttachmentInput): PartSize {
  return { name: p.name, contentType: p.contentType, size: p.data.length };
}

function boxPixels(h: ImageHeader, opts: FitOptions): number {
  const box = boxSize(h.width, h.height, opts.maxWidth, opts.maxHeight);
  return box.width * box.height;
}

/**
 * §11: the budget shared in proportion to the weights (pixels), at least MIN_IMAGE_BUDGET each:
 * an image whose proportional share is under the floor gets the floor, and the rest is shared
 * again. Undefined when the budget cannot give every image the floor.
 */
export function allocate(budget: number, weights: readonly number[]): number[] | undefined {
  if (budget < MIN_IMAGE_BUDGET * weights.length) return undefined;
  const shares = weights.map(() => MIN_IMAGE_BUDGET);
  let open = weights.map((_, i) => i);
  let left = budget;
  while (open.length > 0) {
    const total = open.reduce((n, i) => n + (weights[i] ?? 0), 0);
    const proportional = (i: number): number => Math.floor((left * (weights[i] ?? 0)) / total);
    const floored = open.filter((i) => proportional(i) < MIN_IMAGE_BUDGET);
    if (floored.length === 0) {
      for (const i of open) shares[i] = proportional(i);
      break;
    }
    left -= MIN_IMAGE_BUDGET * floored.length;
    open = open.filter((i) => !floored.includes(i));
  }
  return shares;
}

async function fitOne(sharp: Sharp, p: Pending, share: number, opts: FitOptions): Promise<{ data: Buffer; width: number; height: number; quality: number }> {
  opts.onDecode?.(p.part.name);
  const raw = await decodeUpright(sharp, p.part.name, p.part.data, p.header, opts.maxWidth, opts.maxHeight);
  const result = await fitPixels(sharp, raw, share, opts.stats);
  if (!('data' in result)) {
    const over = result.smallest - share;
    throw new MessageTooLargeError(
      `${p.part.name}: ${formatBytes(result.smallest)} even at ${result.width}×${result.height} JPEG q40, ${over} bytes over its budget of ${share} bytes`,
      over,
      p.part.name,
    );
  }
  return result;
}

/** `photo.heic` → `photo.jpg`, unique in the message (`photo-2.jpg`): core's attachment names. */
export function jpegName(name: string, taken: ReadonlySet<string>): string {
  const dot = name.lastIndexOf('.');
  return uniqueAttachmentName(`${dot > 0 ? name.slice(0, dot) : name}.jpg`, 'image/jpeg', taken);
}

/** `photo.heic: 4032×3024 2.9 MB → 1600×1200 JPEG q78 241 KB` (sizes in SI units: KB = 1000 bytes). */
function adjustment(p: Pending, fitted: { data: Buffer; width: number; height: number; quality: number }): string {
  const h = p.header;
  const frames = h.frames > 1 ? `, first of ${h.frames} frames` : '';
  return `${p.part.name}: ${h.width}×${h.height} ${formatBytes(p.part.data.length)} → ${fitted.width}×${fitted.height} JPEG q${fitted.quality} ${formatBytes(fitted.data.length)}${frames}`;
}

/** Bytes for people, in SI units: `812 B`, `241 KB`, `2.9 MB`. */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  if (n < 999_500) return `${Math.round(n / 1000)} KB`;
  return `${(n / 1e6).toFixed(1)} MB`;
}

function tooLarge(total: number, limit: number, why: string): MessageTooLargeError {
  return new MessageTooLargeError(`attachments total ${total} bytes, ${total - limit} over the limit of ${limit}; ${why}`, total - limit);
}
