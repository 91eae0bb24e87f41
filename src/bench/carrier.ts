// The carrier database's cost (DESIGN.md §10): what the first lookup pays — loading the XML parser,
// reading and indexing serviceproviders.xml — measured in fresh node processes, and a lookup after.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CarrierDatabase, DEFAULT_DATABASE, lookupCarrier } from '../carrier/index.js';
import { procStatus, round } from './common.js';

export interface CarrierRun {
  /** The first lookup's cost: loading the parser (importMs), then reading and indexing (indexMs). */
  loadMs: number;
  /** CPU time (user + system, all threads) of the same: what a busy machine does not inflate. */
  loadCpuMs: number;
  importMs: number;
  indexMs: number;
  /** Live heap after a full GC: the parser's code (one reading, so ±100 KiB or so). */
  parserHeapKiB: number;
  /** The index alone, live after GC: the mean over ten more indexes built and kept. */
  indexHeapKiB: number;
  /** Live heap right after indexing, before any GC: what reading and indexing allocated at most. */
  indexAllocKiB: number;
  /** VmRSS and VmHWM (peak) growth over the whole load. */
  rssDeltaKiB: number;
  peakRssDeltaKiB: number;
  /** Indexing the text again in the same process (parser warm). */
  warmIndexMs: number;
  /** One lookup, averaged over every code of the index. */
  lookupUs: number;
  providers: number;
  codes: number;
  knownCodes: number;
  apns: number;
}

export interface CarrierFigures extends CarrierRun {
  path: string;
  bytes: number;
  /** Every fresh process; the figures above are their medians. */
  runs: CarrierRun[];
}

const SELF = fileURLToPath(import.meta.url);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** One load in this process (started with --expose-gc), printed as JSON. */
async function measureOnce(path: string): Promise<CarrierRun> {
  const gc = globalThis.gc;
  if (gc === undefined) throw new Error('bench/carrier: run node with --expose-gc');
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  const st0 = procStatus(process.pid);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  // What CarrierDatabase imports on the first lookup, imported first here to weigh it apart.
  const { indexServiceProviders } = await import('../carrier/parse.js');
  const importMs = performance.now() - t0;
  const cpu1 = process.cpuUsage(cpu0);
  gc();
  const heap1 = process.memoryUsage().heapUsed;
  const cpu3 = process.cpuUsage();
  const t1 = performance.now();
  const index = await new CarrierDatabase(path).index();
  const indexMs = performance.now() - t1;
  const cpu2 = process.cpuUsage(cpu3);
  const heapAfterIndex = process.memoryUsage().heapUsed;
  const st1 = procStatus(process.pid);
  gc();
  const heap2 = process.memoryUsage().heapUsed;
  // One reading of the live heap moves by up to a MiB between GCs; ten indexes do not.
  const kept = [];
  for (let i = 0; i < 10; i++) kept.push(indexServiceProviders(readFileSync(path, 'utf8'), path));
  gc();
  const indexHeapKiB = Math.round((process.memoryUsage().heapUsed - heap2) / 1024 / kept.length);

  const xml = readFileSync(path, 'utf8');
  const warm: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    indexServiceProviders(xml, path);
    warm.push(performance.now() - t);
  }
  const imsis = [...index.byCode.keys()].map((code) => `${code.replace('-', '')}000000000`.slice(0, 15));
  const rounds = 20;
  const t2 = performance.now();
  for (let i = 0; i < rounds; i++) for (const imsi of imsis) lookupCarrier(index, { imsi });
  const lookupUs = ((performance.now() - t2) * 1000) / (rounds * imsis.length);
  const providers = new Set([...index.byCode.values()].flat());
  return {
    loadMs: round(importMs + indexMs, 1),
    loadCpuMs: round((cpu1.user + cpu1.system + cpu2.user + cpu2.system) / 1000, 1),
    importMs: round(importMs, 1),
    indexMs: round(indexMs, 1),
    parserHeapKiB: Math.round((heap1 - heap0) / 1024),
    indexHeapKiB,
    indexAllocKiB: Math.round((heapAfterIndex - heap1) / 1024),
    rssDeltaKiB: st1.rssKb - st0.rssKb,
    peakRssDeltaKiB: st1.hwmKb - st0.hwmKb,
    warmIndexMs: round(median(warm), 1),
    lookupUs: round(lookupUs, 1),
    providers: index.providers,
    codes: index.byCode.size,
    knownCodes: index.knownCodes.size,
    apns: [...providers].reduce((n, p) => n + p.apns.length, 0),
  };
}

function runChild(path: string): Promise<CarrierRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', SELF, path], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`bench/carrier: child exited ${code}`));
      else resolve(JSON.parse(out) as CarrierRun);
    });
  });
}

/** `runs` fresh processes, one cold load each; the medians, and every run. */
export async function measureCarrierDatabase(path = DEFAULT_DATABASE, runs = 5): Promise<CarrierFigures> {
  const all: CarrierRun[] = [];
  for (let i = 0; i < runs; i++) all.push(await runChild(path));
  const med = (k: keyof CarrierRun): number => median(all.map((r) => r[k]));
  return {
    path,
    bytes: readFileSync(path).length,
    loadMs: med('loadMs'),
    loadCpuMs: med('loadCpuMs'),
    importMs: med('importMs'),
    indexMs: med('indexMs'),
    parserHeapKiB: med('parserHeapKiB'),
    indexHeapKiB: med('indexHeapKiB'),
    indexAllocKiB: med('indexAllocKiB'),
    rssDeltaKiB: med('rssDeltaKiB'),
    peakRssDeltaKiB: med('peakRssDeltaKiB'),
    warmIndexMs: med('warmIndexMs'),
    lookupUs: med('lookupUs'),
    providers: all[0].providers,
    codes: all[0].codes,
    knownCodes: all[0].knownCodes,
    apns: all[0].apns,
    runs: all,
  };
}

// `node --expose-gc dist/bench/carrier.js [FILE]`: one measurement, as JSON on stdout.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  measureOnce(process.argv[2] ?? DEFAULT_DATABASE).then(
    (run) => console.log(JSON.stringify(run)),
    (err: Error) => {
      console.error(`bench/carrier: ${err.message}`);
      process.exit(1);
    },
  );
}
