// The daemon's memory as the unit runs it (issue 19, DESIGN.md §8): its NODE_OPTIONS and
// MALLOC_ARENA_MAX and the node flags of its ExecStart=, read from systemd/mmsd.service and given to
// the daemon as the unit gives them.
// Node.js alone, the daemon idle, after 1,000 messages and 1,000 more, ListMessages over 10,000
// finished messages, each as RSS (anonymous and file-backed) beside process.memoryUsage() split
// into heap, external and array buffers (before and after a full GC) and V8's heap spaces. Numbers
// only: nothing here asserts.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MmsClient } from '../api/dbus/client.js';
import { LOG_EVENTS } from '../core/log-events.js';
import { Testbed, type ProcessHandle } from '../harness/testbed.js';
import { pseudoRandomBytes } from '../harness/random.js';
import { launchFromArgs, splitNodeOptions, unitLaunch, type DaemonLaunch } from '../harness/unit-environment.js';
import { StatusWatcher, procStatus, round, sleep } from './common.js';
import { writeSpool } from './lifecycle.js';
import { runBatch } from './throughput.js';

const PROBE = fileURLToPath(new URL('./memory-probe.js', import.meta.url));

const MiB = (bytes: number): number => round(bytes / 2 ** 20, 1);

export interface MemorySplit {
  rssMiB: number;
  /** Of the RSS: anonymous (the process's own: heaps, stacks, malloc) and file-backed (node's binary and libraries, shared with any other node process). */
  anonMiB: number;
  fileMiB: number;
  /** process.memoryUsage() before and after a full GC, MiB. */
  heapTotal: [number, number];
  heapUsed: [number, number];
  external: [number, number];
  arrayBuffers: [number, number];
  /** V8 heap spaces after the GC: size (committed) / used, MiB. */
  spaces: Record<string, [number, number]>;
}

export interface FootprintResult {
  /** The daemon's environment beyond the bench's own (the unit's NODE_OPTIONS, MALLOC_ARENA_MAX, …). */
  environment: Record<string, string>;
  nodeOptions: string[];
  /** Node's flags on the daemon's command line beyond the bench's own (the unit's ExecStart= flags). */
  nodeArgs: string[];
  nodeAlone: { rssMiB: number; anonMiB: number; fileMiB: number };
  idle: MemorySplit;
  /** The daemon's threads at idle (main, libuv's pool once used, V8's platform workers, …). */
  idleThreads: number;
  /** Start of the daemon to the modem `ready`, ms. */
  readyMs: number;
  /** Absent when the run sent no messages (MESSAGES 0). */
  loaded?: {
    afterFirst: MemorySplit;
    /** RSS a few seconds after the first batch finished (no GC forced). */
    settledAfterFirstMiB: number;
    /** Seconds after the batch until the RSS came within 1 MiB of where it settled. */
    settledAfterS: number;
    afterSecond: MemorySplit;
    /** Where the RSS settled after the second batch, as `settledAfterFirstMiB`. */
    settledAfterSecondMiB: number;
    peakMiB: number;
    throughput: [number, number];
  };
  /** Absent when the run listed nothing (FINISHED 0). */
  list?: { finished: number; idleMiB: number; peakDeltaMiB: number; afterMiB: number; ms: number; replyEntries: number };
  /**
   * What each finished message costs while it is kept (retention): the daemon idle with `finished`
   * sent messages in the spool against the same daemon idle with an empty one (`idle`), as RSS and
   * as live heap after a full GC, per message in KB. Absent when the run listed nothing.
   */
  heldPerFinished?: { rssKB: number; heapKB: number; idleHeapUsedMiB: number };
  /** The same list through ListMessagesPage, 200 at a time, first (from the same idle daemon). */
  paged?: { peakDeltaMiB: number; afterMiB: number; ms: number; replyEntries: number };
  /** `GetAll` on finished messages' paths, one call at a time, after the lists: median and 95th percentile, ms. */
  getAll?: { calls: number; medianMs: number; p95Ms: number };
}

/** RSS of `node` doing nothing, in the same environment. */
async function nodeAlone(launch: DaemonLaunch): Promise<{ rssMiB: number; anonMiB: number; fileMiB: number }> {
  const child = spawn(process.execPath, [...launch.nodeArgs, '-e', 'setInterval(() => {}, 1e6)'], { stdio: 'ignore', env: { ...process.env, ...launch.env } });
  try {
    await sleep(1500);
    const split = residentSplit(child.pid!);
    return { rssMiB: round(procStatus(child.pid!).rssKb / 1024, 1), ...split };
  } finally {
    child.kill();
  }
}

async function probe(daemon: ProcessHandle, file: string): Promise<MemorySplit> {
  writeFileSync(file, '');
  process.kill(daemon.pid, 'SIGWINCH');
  for (let i = 0; i < 100; i++) {
    await sleep(50);
    const text = await readFile(file, 'utf8');
    if (text === '') continue;
    type Usage = NodeJS.MemoryUsage;
    const p = JSON.parse(text) as { before: Usage; after: Usage; spaces: Record<string, { size: number; used: number }> };
    const pair = (k: keyof Usage): [number, number] => [MiB(p.before[k]), MiB(p.after[k])];
    return {
      rssMiB: round(procStatus(daemon.pid).rssKb / 1024, 1),
      ...residentSplit(daemon.pid),
      heapTotal: pair('heapTotal'),
      heapUsed: pair('heapUsed'),
      external: pair('external'),
      arrayBuffers: pair('arrayBuffers'),
      spaces: Object.fromEntries(Object.entries(p.spaces).map(([k, s]) => [k, [MiB(s.size), MiB(s.used)]])),
    };
  }
  throw new Error('the daemon wrote no memory probe');
}

/** /proc/<pid>/smaps_rollup: resident anonymous and file-backed memory, MiB. */
function residentSplit(pid: number): { anonMiB: number; fileMiB: number } {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return { anonMiB: round(kb('Anonymous') / 1024, 1), fileMiB: round((kb('Rss') - kb('Anonymous')) / 1024, 1) };
}

/** Resets the process's peak RSS (VmHWM) to its current RSS. */
function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

function threads(pid: number): number {
  return Number(/^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
}

/**
 * The footprint with `launch` (by default the unit's): the daemon gets its environment and node flags
 * exactly as systemd would give them, plus the probe (`--expose-gc --import`) on its command line.
 */
export async function measureFootprint(messages = 1000, finished = 10_000, launch: DaemonLaunch = unitLaunch()): Promise<FootprintResult> {
  const environment = launch.env;
  const dir = await mkdtemp(join(tmpdir(), 'mmsd-bench-mem-'));
  const probeFile = join(dir, 'probe.json');
  const daemonNodeArgs = [...launch.nodeArgs, '--expose-gc', `--import=${PROBE}`];
  const env = { ...environment, MMSD_MEMORY_PROBE: probeFile };
  try {
    const alone = await nodeAlone(launch);
    const t0 = performance.now();
    const tb = await Testbed.start({ dbus: true, logLevel: 'info', simArgs: ['--send-delay-ms', '0'], daemonNodeArgs, env });
    let idle: MemorySplit;
    let idleThreads: number;
    let readyMs: number;
    let loaded: FootprintResult['loaded'];
    try {
      await tb.modemReady();
      readyMs = round(performance.now() - t0, 0);
      const daemon = tb.daemon!;
      await sleep(3000);
      idle = await probe(daemon, probeFile);
      idleThreads = threads(daemon.pid);
      if (messages > 0) {
        const watcher = await StatusWatcher.connect(tb.bus!.address);
        const client = await MmsClient.connect('session', tb.bus!.address);
        try {
          const data = pseudoRandomBytes(10 * 1024, 3);
          const first = await runBatch(tb, client, watcher, messages, data, 8, 0);
          const { rssMiB: settledAfterFirstMiB, afterS: settledAfterS } = await settle(daemon.pid);
          const afterFirst = await probe(daemon, probeFile);
          const second = await runBatch(tb, client, watcher, messages, data, 8, 1);
          const peakMiB = round(procStatus(daemon.pid).hwmKb / 1024, 1);
          const { rssMiB: settledAfterSecondMiB } = await settle(daemon.pid);
          const afterSecond = await probe(daemon, probeFile);
          loaded = { afterFirst, settledAfterFirstMiB, settledAfterS, afterSecond, settledAfterSecondMiB, peakMiB, throughput: [first.perSecond, second.perSecond] };
        } finally {
          client.close();
          watcher.close();
        }
      }
    } finally {
      await tb.stop();
    }
    let lists: Pick<FootprintResult, 'list' | 'paged' | 'heldPerFinished' | 'getAll'> = {};
    if (finished > 0) {
      const { idleWithFinished, ...listed } = await listFinished(finished, daemonNodeArgs, env, probeFile);
      const perMessageKB = (mib: number): number => round((mib * 1024) / finished, 2);
      lists = {
        ...listed,
        heldPerFinished: {
          rssKB: perMessageKB(idleWithFinished.rssMiB - idle.rssMiB),
          heapKB: perMessageKB(idleWithFinished.heapUsed[1] - idle.heapUsed[1]),
          idleHeapUsedMiB: idleWithFinished.heapUsed[1],
        },
      };
    }
    return {
      environment,
      nodeOptions: splitNodeOptions(environment.NODE_OPTIONS),
      nodeArgs: launch.nodeArgs,
      nodeAlone: alone,
      idle,
      idleThreads,
      readyMs,
      loaded,
      ...lists,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `finished` sent messages in the spool; one ListMessages call; the daemon's peak RSS over it. */
async function listFinished(
  finished: number,
  daemonNodeArgs: string[],
  env: Record<string, string>,
  probeFile: string,
): Promise<Required<Pick<FootprintResult, 'list' | 'paged' | 'getAll'>> & { idleWithFinished: MemorySplit }> {
  const tb = await Testbed.start({ dbus: true, daemon: false, logLevel: 'info', daemonNodeArgs, env });
  try {
    writeSpool(tb.stateDir, finished, 'sent');
    const d = await tb.startDaemon();
    await d.waitFor((l) => l.msg === LOG_EVENTS.outboxRecovered, 120_000, 'outbox recovered');
    await tb.modemReady();
    await sleep(3000);
    const idleMiB = round(procStatus(d.pid).rssKb / 1024, 1);
    const client = await MmsClient.connect('session', tb.bus!.address);
    try {
      const measure = async (list: () => Promise<unknown[]>): Promise<NonNullable<FootprintResult['paged']>> => {
        const from = procStatus(d.pid).rssKb / 1024;
        resetPeak(d.pid);
        const t0 = performance.now();
        const entries = await list();
        const ms = round(performance.now() - t0, 0);
        const peak = procStatus(d.pid).hwmKb / 1024;
        await sleep(3000);
        return { peakDeltaMiB: round(peak - from, 1), afterMiB: round(procStatus(d.pid).rssKb / 1024, 1), ms, replyEntries: entries.length };
      };
      const paged = await measure(() => client.listPaged(200));
      const whole = await measure(() => client.list());
      const getAll = await timeGetAll(client, whole.replyEntries > 0 ? (await client.listPaged(200)).map((e) => e.path) : [], 200);
      // After the lists, so that its full GC does not change what they are measured against.
      const idleWithFinished = await probe(d, probeFile);
      return { list: { finished, idleMiB, ...whole }, paged, getAll, idleWithFinished };
    } finally {
      client.close();
    }
  } finally {
    await tb.stop();
  }
}

/** `calls` GetAll calls one after the other, spread over `paths`: median and 95th percentile in ms. */
async function timeGetAll(client: MmsClient, paths: string[], calls: number): Promise<{ calls: number; medianMs: number; p95Ms: number }> {
  if (paths.length === 0) return { calls: 0, medianMs: NaN, p95Ms: NaN };
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const path = paths[Math.floor((i * paths.length) / calls)];
    const t0 = performance.now();
    await client.getAll(path);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const at = (q: number): number => round(times[Math.min(times.length - 1, Math.floor(q * times.length))], 2);
  return { calls, medianMs: at(0.5), p95Ms: at(0.95) };
}

/** Seconds the RSS is watched after a batch: V8's memory reducer gives old-space pages back 8–22 s after it. */
const SETTLE_WATCH_S = 30;

/**
 * The RSS a daemon settles at after a batch, with no GC forced: sampled each second for
 * SETTLE_WATCH_S seconds; the last sample, and when the samples first came within 1 MiB of it.
 */
async function settle(pid: number): Promise<{ rssMiB: number; afterS: number }> {
  const samples: number[] = [];
  for (let i = 0; i < SETTLE_WATCH_S; i++) {
    await sleep(1000);
    samples.push(procStatus(pid).rssKb / 1024);
  }
  const last = samples[samples.length - 1];
  const afterS = samples.findIndex((_, i) => samples.slice(i).every((v) => Math.abs(v - last) <= 1)) + 1;
  return { rssMiB: round(last, 1), afterS };
}

/** The table rows of a footprint result. */
export function footprintRows(f: FootprintResult): [string, string, string][] {
  const split = (m: MemorySplit): string =>
    `anonymous ${m.anonMiB}, file-backed ${m.fileMiB}; heap used ${m.heapUsed[0]} → ${m.heapUsed[1]} after GC (total ${m.heapTotal[1]}), external ${m.external[1]}, array buffers ${m.arrayBuffers[1]}; new space ${m.spaces.new_space?.[0] ?? NaN}, old ${m.spaces.old_space?.[0] ?? NaN}, code ${m.spaces.code_space?.[0] ?? NaN} MiB`;
  const env = Object.entries(f.environment)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  const rows: [string, string, string][] = [
    ['node alone', `${f.nodeAlone.rssMiB} MiB`, `${env} node ${f.nodeArgs.map((a) => `${a} `).join('')}-e 'setInterval(…)': the floor under every figure below; anonymous ${f.nodeAlone.anonMiB}, file-backed ${f.nodeAlone.fileMiB}`],
    [
      'RSS idle',
      `${f.idle.rssMiB} MiB`,
      `target ≤ 56; daemon's own share ${round(f.idle.rssMiB - f.nodeAlone.rssMiB, 1)} (anonymous +${round(f.idle.anonMiB - f.nodeAlone.anonMiB, 1)}); ${f.idleThreads} threads; modem ready ${f.readyMs} ms after the start; ${split(f.idle)}`,
    ],
  ];
  const l = f.loaded;
  if (l) {
    rows.push(
      ['RSS after 1,000 messages', `${l.afterFirst.rssMiB} MiB`, `target ≤ 64 (steady: ${l.settledAfterFirstMiB} MiB, where the RSS settled with no GC forced, within 1 MiB of it ${l.settledAfterS} s after the batch; the figure beside is the probe's, taken after that); ${split(l.afterFirst)}`],
      [
        'RSS after 1,000 more',
        `${l.afterSecond.rssMiB} MiB`,
        `target: no growth (${round(l.afterSecond.rssMiB - l.afterFirst.rssMiB, 1)} MiB; settled ${l.settledAfterSecondMiB} MiB, ${round(l.settledAfterSecondMiB - l.settledAfterFirstMiB, 1)} over the first batch's; live heap ${round(l.afterSecond.heapUsed[1] - l.afterFirst.heapUsed[1], 2)} MiB); peak ${l.peakMiB} MiB; ${l.throughput.join(' / ')} msg/s; ${split(l.afterSecond)}`,
      ],
    );
  }
  if (f.list && f.paged) {
    if (f.heldPerFinished) {
      rows.push([
        `${f.list.finished} finished messages held`,
        `${f.heldPerFinished.heapKB} KB heap each`,
        `no growth beyond a small index: live heap after GC ${f.heldPerFinished.idleHeapUsedMiB} MiB against ${f.idle.heapUsed[1]} with an empty spool; RSS ${f.heldPerFinished.rssKB} KB each (idle ${f.list.idleMiB} MiB)`,
      ]);
    }
    if (f.getAll) {
      rows.push([
        'GetAll on a finished message',
        `${f.getAll.medianMs} ms`,
        `median of ${f.getAll.calls} calls one at a time over the ${f.list.finished} finished messages' paths (95th percentile ${f.getAll.p95Ms} ms), the bench's dbus-next client included`,
      ]);
    }
    rows.push(
      [`ListMessagesPage × ${Math.ceil(f.paged.replyEntries / 200)}, ${f.list.finished} finished`, `+${f.paged.peakDeltaMiB} MiB peak`, `200 per page; idle ${f.list.idleMiB} MiB, ${f.paged.afterMiB} MiB 3 s after; ${f.paged.ms} ms for ${f.paged.replyEntries} entries`],
      [`ListMessages, ${f.list.finished} finished`, `+${f.list.peakDeltaMiB} MiB peak`, `target ≤ +10; one reply, measured after the pages; ${f.list.afterMiB} MiB 3 s after; ${f.list.ms} ms for ${f.list.replyEntries} entries`],
    );
  }
  return rows;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // node dist/bench/footprint.js [MESSAGES [FINISHED [NAME=VALUE… --node-option… argv:--node-flag…]]];
  // without the third, the unit's environment and ExecStart= flags. MESSAGES 0: idle only; FINISHED
  // 0: no ListMessages.
  const f = await measureFootprint(Number(process.argv[2] ?? 1000), Number(process.argv[3] ?? 10_000), launchFromArgs(process.argv.slice(4)));
  console.log(JSON.stringify(f, null, 2));
  for (const r of footprintRows(f)) console.log(r.join('  '));
  process.exit(0);
}
