// fitMessage in a short-lived child process. Loading sharp into the daemon would keep some 45 MiB
// (libvips, its per-thread malloc arenas) for the rest of its life, and a decoder that crashes on
// a hostile image would take the daemon with it; in a child both end with the child.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { AttachmentInput } from '../core/message.js';
import { ImageError } from './errors.js';
import { isFittableImage, needsFitting, type FitResult } from './fit.js';
import { fromWire, type WorkerReply, type WorkerRequest } from './wire.js';

export interface IsolatedFitOptions {
  maxWidth: number;
  maxHeight: number;
  /** The child is killed after this long (default 120 s): a 12 MP photo takes about 1 s. */
  timeoutMs?: number;
  /** The compiled worker (default: worker.js beside this file). */
  workerPath?: string;
  /** Filled in with the child's figures once it has answered. */
  stats?: WorkerStats;
}

export interface WorkerStats {
  /** The child process's peak resident set, KiB. */
  peakRssKb?: number;
}

const DEFAULT_TIMEOUT_MS = 120_000;

/**
 * Same contract as fitMessage (same result, same errors), with the decoding in a child process.
 * A message that fits, or that fitting cannot help, is answered here without starting one. A
 * child that dies or overruns is an ImageError on the image it was decoding.
 */
export async function fitMessageIsolated(parts: readonly AttachmentInput[], limitBytes: number, opts: IsolatedFitOptions): Promise<FitResult> {
  if (!needsFitting(parts, limitBytes)) return { parts: [...parts], adjustments: [] };
  const workerPath = opts.workerPath ?? fileURLToPath(new URL('./worker.js', import.meta.url));
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const child = fork(workerPath, [], {
    serialization: 'advanced',
    execArgv: [],
    // One malloc arena: libvips' threads would otherwise each hold their own (+40 MiB at 12 MP).
    env: { ...process.env, MALLOC_ARENA_MAX: '1' },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr = (stderr + s).slice(-2000)));

  return new Promise<FitResult>((resolve, reject) => {
    // The image being decoded when the child died: named by the child before each decode.
    let decoding = parts.find((p) => isFittableImage(p.contentType))?.name ?? '(message)';
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      settle(() => reject(new ImageError(decoding, 'unreadable', `fitting took longer than ${timeoutMs / 1000} s and was stopped`)));
    }, timeoutMs);
    child.on('message', (msg: WorkerReply) => {
      if (msg.kind === 'decoding') decoding = msg.part;
      else if (msg.kind === 'done') {
        if (opts.stats) opts.stats.peakRssKb = msg.peakRssKb;
        settle(() => resolve(msg.result));
      }
      else settle(() => reject(fromWire(msg.error)));
    });
    child.on('error', (err) => settle(() => reject(new Error(`image fitting could not start: ${err.message}`))));
    // 'close', not 'exit': it comes after the last message has been read from the channel.
    child.on('close', (code, signal) => {
      const last = stderr.trim().split('\n').pop() ?? '';
      settle(() => reject(new ImageError(decoding, 'unreadable', `the decoder ended with ${signal ?? `code ${code}`}${last ? ` (${last})` : ''}`)));
    });
    const req: WorkerRequest = { parts: [...parts], limitBytes, maxWidth: opts.maxWidth, maxHeight: opts.maxHeight };
    child.send(req);
  });
}
