// Photos made to measure for the fitting tests and benchmark (DESIGN.md §8, §11).
import type { Sharp } from '../media/library.js';
import { pseudoRandomBytes } from './random.js';

/**
 * A deterministic stand-in for a camera photo: smooth shapes (noise at 1/16 scale, enlarged) with
 * fine grain on top, so that it neither compresses to nothing nor is pure noise. 4000×3000 at
 * quality 92 is about 5 MB, like a phone's 12 MP JPEG.
 */
export async function makePhoto(sharp: Sharp, width: number, height: number, seed = 1): Promise<Buffer> {
  const sw = Math.ceil(width / 16);
  const sh = Math.ceil(height / 16);
  const smooth = await sharp(pseudoRandomBytes(sw * sh * 3, seed), { raw: { width: sw, height: sh, channels: 3 } })
    .resize(width, height, { fit: 'fill', kernel: 'cubic' })
    .raw()
    .toBuffer();
  const grain = pseudoRandomBytes(smooth.length, seed + 1);
  for (let i = 0; i < smooth.length; i++) smooth[i] = Math.min(255, Math.max(0, (smooth[i] ?? 0) + ((grain[i] ?? 0) & 31) - 16));
  return sharp(smooth, { raw: { width, height, channels: 3 } }).jpeg({ quality: 92 }).toBuffer();
}
