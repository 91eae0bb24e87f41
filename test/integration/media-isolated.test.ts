// The isolated fitter (src/media/isolated.ts) with its real child process (dist/media/worker.js,
// built by test/global-setup.ts): the same answers as in-process fitting, errors rebuilt by class.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { pseudoRandomBytes } from '../../src/harness/random.js';
import { makePhoto } from '../../src/harness/photos.js';
import { pixelBombPng } from '../helpers/images.js';
import type { AttachmentInput } from '../../src/core/message.js';
import { ImageError, ImagePixelLimitError, MessageTooLargeError } from '../../src/media/errors.js';
import { fitMessage } from '../../src/media/fit.js';
import { fitMessageIsolated, type IsolatedFitOptions } from '../../src/media/isolated.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const WORKER = path.join(ROOT, 'dist/media/worker.js');
const OPTS: IsolatedFitOptions = { maxWidth: 1600, maxHeight: 1600, workerPath: WORKER };
const jpeg = (name: string, data: Buffer): AttachmentInput => ({ name, contentType: 'image/jpeg', data });

describe('fitMessageIsolated', () => {
  let photo: Buffer;
  beforeAll(async () => {
    expect(existsSync(WORKER)).toBe(true);
    photo = await makePhoto(sharp, 2000, 1500, 12);
  });

  it('answers as fitMessage does, byte for byte, and reports the child’s peak memory', async () => {
    const parts = [jpeg('cam.jpg', photo), { name: 'note.txt', contentType: 'text/plain', data: Buffer.from('motion at 03:12') }];
    const stats: { peakRssKb?: number } = {};
    const isolated = await fitMessageIsolated(parts, 120_000, { ...OPTS, stats });
    const inProcess = await fitMessage(parts, 120_000, { maxWidth: 1600, maxHeight: 1600 });
    expect(isolated.adjustments).toEqual(inProcess.adjustments);
    expect(isolated.adjustments[0]).toMatch(/^cam\.jpg: 2000×1500 .* → \d+×\d+ JPEG q\d+ /);
    expect(isolated.parts.map((p) => p.name)).toEqual(['cam.jpg', 'note.txt']);
    expect(Buffer.compare(isolated.parts[0].data, inProcess.parts[0].data)).toBe(0);
    expect(isolated.parts[1].data.toString()).toBe('motion at 03:12');
    expect(stats.peakRssKb).toBeGreaterThan(10_000);
  });

  it('loads no libvips into a process that imports the module or fits through a child', () => {
    const index = path.join(ROOT, 'dist/media/index.js');
    const script = `const m = await import(${JSON.stringify(index)});
      const before = (await import('node:fs')).readFileSync('/proc/self/maps', 'utf8').includes('libvips');
      const photo = (await import('node:fs')).readFileSync(process.argv[1]);
      const r = await m.fitMessageIsolated([{ name: 'a.jpg', contentType: 'image/jpeg', data: photo }], 60000, { maxWidth: 800, maxHeight: 800 });
      const after = (await import('node:fs')).readFileSync('/proc/self/maps', 'utf8').includes('libvips');
      console.log(JSON.stringify({ before, after, adjustments: r.adjustments.length }));`;
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'mmsd-media-')), 'a.jpg');
    writeFileSync(file, photo);
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, file], { encoding: 'utf8' });
    rmSync(path.dirname(file), { recursive: true, force: true });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ before: false, after: false, adjustments: 1 });
  });

  it('starts no child for a message that fits', async () => {
    const parts = [jpeg('cam.jpg', photo)];
    const r = await fitMessageIsolated(parts, photo.length, { ...OPTS, workerPath: path.join(ROOT, 'no-such-worker.js') });
    expect(r).toEqual({ parts, adjustments: [] });
  });

  it('rebuilds the child’s errors by class: ImageError, ImagePixelLimitError, MessageTooLargeError', async () => {
    const cut = await fitMessageIsolated([jpeg('cut.jpg', photo.subarray(0, photo.length >> 1))], 50_000, OPTS).catch((e: unknown) => e);
    expect(cut).toBeInstanceOf(ImageError);
    expect([(cut as ImageError).part, (cut as ImageError).reason]).toEqual(['cut.jpg', 'unreadable']);

    const bomb = pixelBombPng();
    const big = await fitMessageIsolated([{ name: 'bomb.png', contentType: 'image/png', data: bomb }, jpeg('cam.jpg', photo)], 50_000, OPTS).catch((e: unknown) => e);
    expect(big).toBeInstanceOf(ImagePixelLimitError);
    expect([(big as ImagePixelLimitError).part, (big as ImagePixelLimitError).width]).toEqual(['bomb.png', 30000]);

    const noise = await sharp(pseudoRandomBytes(480 * 480 * 3, 4), { raw: { width: 480, height: 480, channels: 3 } }).png().toBuffer();
    const tooLarge = await fitMessageIsolated([{ name: 'static.png', contentType: 'image/png', data: noise }], 20_000, OPTS).catch((e: unknown) => e);
    expect(tooLarge).toBeInstanceOf(MessageTooLargeError);
    expect((tooLarge as MessageTooLargeError).part).toBe('static.png');
    expect((tooLarge as MessageTooLargeError).overBy).toBeGreaterThan(0);
  });

  it('stops a child that overruns its time and names the image', async () => {
    // Starting node alone takes longer than 1 ms.
    const err = await fitMessageIsolated([jpeg('slow.jpg', photo)], 50_000, { ...OPTS, timeoutMs: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageError);
    expect((err as ImageError).message).toBe('slow.jpg: fitting took longer than 0.001 s and was stopped');
  });
});
