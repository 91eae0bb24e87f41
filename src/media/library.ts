// The image library (sharp, on libvips), loaded on first use only (DESIGN.md §11): loading it maps
// some 20 MiB of shared libraries, which a daemon that never fits a photo should not carry.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { default as SharpFactory } from 'sharp';
import { errorText } from '../core/errors.js';

export type Sharp = typeof SharpFactory;

/** Whether fitting can run here: the loaded library, or why it could not load. */
export type ImageLibrary = { available: true; sharp: Sharp; version: string } | { available: false; reason: string };

/** Whether the library loads here, without loading it (probeImageLibrary). */
export type ImageLibraryStatus = { available: true; version: string } | { available: false; reason: string };

/** How the library is obtained; tests pass one that fails. */
export type ImageLibraryLoader = () => Promise<ImageLibrary>;

let loaded: Promise<ImageLibrary> | undefined;

/**
 * Loads sharp once per process, set for a small daemon: one libvips worker thread, no operation
 * cache (the cache holds decoded images between calls: memory a daemon wants back). A failure is
 * an answer, not an exception: fitting is then off and oversize messages are refused as before.
 */
export function loadImageLibrary(): Promise<ImageLibrary> {
  loaded ??= import('sharp').then(
    (mod): ImageLibrary => {
      const sharp = mod.default;
      sharp.concurrency(1);
      sharp.cache(false);
      return { available: true, sharp, version: `sharp ${sharp.versions.sharp ?? '?'}, libvips ${sharp.versions.vips}` };
    },
    (err: unknown): ImageLibrary => ({ available: false, reason: firstLine(err) }),
  );
  return loaded;
}

/**
 * Whether sharp is installed here, found without loading it and without a child process: cheap
 * enough for every start of the daemon. Whether it also loads on this platform shows at the first
 * fit (probeImageLibrary asks a child process, for a tool that can spend the time).
 */
export function locateImageLibrary(): { found: true; path: string } | { found: false; reason: string } {
  try {
    return { found: true, path: fileURLToPath(import.meta.resolve('sharp')) };
  } catch (err) {
    return { found: false, reason: firstLine(err) };
  }
}

/**
 * Whether sharp loads on this machine, asked of a child process so that this one does not load
 * it: for the daemon's one line at start. Resolving the package does not load it either.
 */
export async function probeImageLibrary(timeoutMs = 20_000): Promise<ImageLibraryStatus> {
  let url: string;
  try {
    url = import.meta.resolve('sharp');
  } catch (err) {
    return { available: false, reason: firstLine(err) };
  }
  const script = `import(${JSON.stringify(url)}).then((m) => { const v = m.default.versions; process.stdout.write('sharp ' + v.sharp + ', libvips ' + v.vips); })`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    child.on('error', (e) => resolve({ available: false, reason: firstLine(e) }));
    child.on('close', (code, signal) => {
      if (code === 0 && out !== '') resolve({ available: true, version: out });
      else resolve({ available: false, reason: firstLine(err.split('\n').find((l) => /Error|Could not load/.test(l)) ?? `the probe ended with ${signal ?? `code ${code}`}`) });
    });
  });
}

function firstLine(err: unknown): string {
  const text = errorText(err);
  return text.split('\n')[0]?.trim() ?? text;
}
