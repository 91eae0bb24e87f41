#!/usr/bin/env node
// Fitting a 12-megapixel JPEG to 300 KiB (DESIGN.md §8, §11): time, peak RSS above idle and RSS
// after, each measured in a fresh child process so that nothing else is in the figure.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AttachmentInput } from '../core/message.js';
import { fitMessage } from '../media/fit.js';
import { fitMessageIsolated, type WorkerStats } from '../media/isolated.js';
import { makePhoto } from '../harness/photos.js';
import { procStatus, round, sleep } from './common.js';

export const BENCH_LIMIT = 300 * 1024;

export type FitMode = 'in-process' | 'isolated';

export interface FitBenchRun {
  mode: FitMode;
  /** MALLOC_ARENA_MAX of the measuring process, when set. */
  mallocArenaMax?: number;
  ms: number;
  adjustment: string;
  idleRssKb: number;
  /** The measuring process's VmHWM minus its idle RSS. */
  peakAboveIdleKb: number;
  /** RSS once fitting is over (after global.gc and a second's rest). */
  afterRssKb: number;
  /** The isolated worker process's own peak (a whole second process, node included). */
  workerPeakRssKb?: number;
}

export interface FitBenchResult {
  inputBytes: number;
  limitBytes: number;
  runs: FitBenchRun[];
}

/** Both ways of fitting, each in a fresh process: the photo is made here, out of the figures. */
export async function measureFit(): Promise<FitBenchResult> {
  const { default: sharp } = await import('sharp');
  const dir = mkdtempSync(join(os.tmpdir(), 'mmsd-fit-bench-'));
  try {
    const photo = await makePhoto(sharp, 4000, 3000);
    const file = join(dir, 'photo.jpg');
    writeFileSync(file, photo);
    const runs: FitBenchRun[] = [];
    // In-process twice: as the unit runs now, and with glibc's malloc held to one arena (libvips'
    // threads otherwise keep one each); the isolated worker sets that itself.
    runs.push(await runChild(file, 'in-process'));
    runs.push(await runChild(file, 'in-process', 1));
    runs.push(await runChild(file, 'isolated'));
    return { inputBytes: photo.length, limitBytes: BENCH_LIMIT, runs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function runChild(file: string, mode: FitMode, mallocArenaMax?: number): Promise<FitBenchRun> {
  const self = fileURLToPath(import.meta.url);
  const env = { ...process.env, ...(mallocArenaMax !== undefined ? { MALLOC_ARENA_MAX: String(mallocArenaMax) } : {}) };
  return new Promise((resolve, reject) => {
    // The unit's node options (systemd/mmsd.service), and gc() to settle the figures.
    const args = ['--max-semi-space-size=2', '--expose-gc', self, '--child', file, mode];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`fit bench child (${mode}) ended with code ${code}`));
      const run = JSON.parse(out) as FitBenchRun;
      resolve(mallocArenaMax !== undefined ? { ...run, mallocArenaMax } : run);
    });
  });
}

async function settle(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) {
    gc?.();
    await sleep(300);
  }
  return procStatus(process.pid).rssKb;
}

/** In the child: idle, fit once, settle; one JSON line on stdout. */
async function child(file: string, mode: FitMode): Promise<void> {
  const parts: AttachmentInput[] = [{ name: 'photo.jpg', contentType: 'image/jpeg', data: readFileSync(file) }];
  const idleRssKb = await settle();
  const opts = { maxWidth: 1600, maxHeight: 1600 };
  const stats: WorkerStats = {};
  const started = performance.now();
  const result = mode === 'isolated' ? await fitMessageIsolated(parts, BENCH_LIMIT, { ...opts, stats }) : await fitMessage(parts, BENCH_LIMIT, opts);
  const ms = performance.now() - started;
  const peak = procStatus(process.pid).hwmKb;
  const afterRssKb = await settle();
  const run: FitBenchRun = {
    mode,
    ms: Math.round(ms),
    adjustment: result.adjustments[0] ?? '(none)',
    idleRssKb,
    peakAboveIdleKb: peak - idleRssKb,
    afterRssKb,
    ...(stats.peakRssKb !== undefined ? { workerPeakRssKb: stats.peakRssKb } : {}),
  };
  process.stdout.write(`${JSON.stringify(run)}\n`);
}

/** One line per run for the bench table. */
export function fitRows(r: FitBenchResult): [string, string, string][] {
  return r.runs.map((run) => {
    const mib = (kb: number): string => `${round(kb / 1024, 1)} MiB`;
    const signed = (kb: number): string => `${kb < 0 ? '−' : '+'}${mib(Math.abs(kb))}`;
    const worker = run.workerPeakRssKb !== undefined ? `; the worker process peaked at ${mib(run.workerPeakRssKb)}` : '';
    const arenas = run.mallocArenaMax !== undefined ? `, MALLOC_ARENA_MAX=${run.mallocArenaMax}` : '';
    return [
      `fit 12 MP → ${r.limitBytes / 1024} KiB (${run.mode}${arenas})`,
      `${run.ms} ms`,
      `peak ${signed(run.peakAboveIdleKb)} over idle ${mib(run.idleRssKb)}, after ${signed(run.afterRssKb - run.idleRssKb)}${worker}; ${run.adjustment}`,
    ];
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [flag, file, mode] = process.argv.slice(2);
  const main = flag === '--child' && file && (mode === 'in-process' || mode === 'isolated') ? child(file, mode) : measureFit().then((r) => console.log(fitRows(r).map((row) => row.join('  ')).join('\n')));
  main.then(
    () => process.exit(0),
    (err: Error) => {
      console.error(`fit bench failed: ${err.stack ?? err.message}`);
      process.exit(1);
    },
  );
}
