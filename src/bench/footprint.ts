// The daemon's memory with the unit's node options (issue 19, DESIGN.md §8): Node.js alone, the
// daemon idle, after 1,000 messages and 1,000 more, ListMessages over 10,000 finished messages,
// each as RSS beside process.memoryUsage() split into heap, external and array buffers (before
// and after a full GC) and V8's heap spaces. Numbers only: nothing here asserts.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MmsClient } from '../api/dbus/client.js';
import { Testbed, type ProcessHandle } from '../harness/testbed.js';
import { pseudoRandomBytes } from '../harness/random.js';
import { StatusWatcher, procStatus, round, sleep } from './common.js';
import { writeSpool } from './lifecycle.js';
import { runBatch } from './throughput.js';

const UNIT = fileURLToPath(new URL('../../systemd/mmsd.service', import.meta.url));
const PROBE = fileURLToPath(new URL('./memory-probe.js', import.meta.url));

/** The node options the shipped unit gives the daemon (its NODE_OPTIONS). */
export function unitNodeOptions(unit = UNIT): string[] {
  const m = /^Environment=NODE_OPTIONS=(.*)$/m.exec(readFileSync(unit, 'utf8'));
  return m ? m[1].replace(/^"|"$/g, '').split(/\s+/).filter((o) => o !== '') : [];
}

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
  nodeOptions: string[];
  nodeAlone: { rssMiB: number; anonMiB: number; fileMiB: number };
  idle: MemorySplit;
  afterFirst: MemorySplit;
  /** RSS a few seconds after the first batch finished (no GC forced). */
  settledAfterFirstMiB: number;
  afterSecond: MemorySplit;
  peakMiB: number;
  throughput: [number, number];
  list: { finished: number; idleMiB: number; peakDeltaMiB: number; afterMiB: number; ms: number; replyEntries: number };
  /**
   * What each finished message costs while it is kept (retention): the daemon idle with `finished`
   * sent messages in the spool against the same daemon idle with an empty one (`idle`), as RSS and
   * as live heap after a full GC, per message in KB.
   */
  heldPerFinished: { rssKB: number; heapKB: number; idleHeapUsedMiB: number };
  /** The same list through ListMessagesPage, 200 at a time, first (from the same idle daemon). */
  paged: { peakDeltaMiB: number; afterMiB: number; ms: number; replyEntries: number };
}

/** RSS of `node` doing nothing, with the same options. */
async function nodeAlone(options: string[]): Promise<{ rssMiB: number; anonMiB: number; fileMiB: number }> {
  const child = spawn(process.execPath, [...options, '-e', 'setInterval(() => {}, 1e6)'], { stdio: 'ignore' });
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

export async function measureFootprint(messages = 1000, finished = 10_000, nodeOptions = unitNodeOptions()): Promise<FootprintResult> {
  const dir = await mkdtemp(join(tmpdir(), 'mmsd-bench-mem-'));
  const probeFile = join(dir, 'probe.json');
  const daemonNodeArgs = [...nodeOptions, '--expose-gc', `--import=${PROBE}`];
  const env = { MMSD_MEMORY_PROBE: probeFile };
  try {
    const alone = await nodeAlone(nodeOptions);
    const tb = await Testbed.start({ dbus: true, logLevel: 'info', simArgs: ['--send-delay-ms', '0'], daemonNodeArgs, env });
    let idle: MemorySplit;
    let afterFirst: MemorySplit;
    let afterSecond: MemorySplit;
    let settledAfterFirstMiB: number;
    let peakMiB: number;
    const throughput: [number, number] = [0, 0];
    try {
      await tb.modemReady();
      const daemon = tb.daemon!;
      await sleep(3000);
      idle = await probe(daemon, probeFile);
      const watcher = await StatusWatcher.connect(tb.bus!.address);
      const client = await MmsClient.connect('session', tb.bus!.address);
      try {
        const data = pseudoRandomBytes(10 * 1024, 3);
        const first = await runBatch(tb, client, watcher, messages, data, 8, 0);
        throughput[0] = first.perSecond;
        await sleep(3000);
        settledAfterFirstMiB = round(procStatus(daemon.pid).rssKb / 1024, 1);
        afterFirst = await probe(daemon, probeFile);
        const second = await runBatch(tb, client, watcher, messages, data, 8, 1);
        throughput[1] = second.perSecond;
        peakMiB = round(procStatus(daemon.pid).hwmKb / 1024, 1);
        await sleep(3000);
        afterSecond = await probe(daemon, probeFile);
      } finally {
        client.close();
        watcher.close();
      }
    } finally {
      await tb.stop();
    }
    const { idleWithFinished, ...lists } = await listFinished(finished, daemonNodeArgs, env, probeFile);
    const perMessageKB = (mib: number): number => round((mib * 1024) / Math.max(finished, 1), 2);
    const heldPerFinished = {
      rssKB: perMessageKB(idleWithFinished.rssMiB - idle.rssMiB),
      heapKB: perMessageKB(idleWithFinished.heapUsed[1] - idle.heapUsed[1]),
      idleHeapUsedMiB: idleWithFinished.heapUsed[1],
    };
    return { nodeOptions, nodeAlone: alone, idle, afterFirst, settledAfterFirstMiB, afterSecond, peakMiB, throughput, ...lists, heldPerFinished };
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
): Promise<Pick<FootprintResult, 'list' | 'paged'> & { idleWithFinished: MemorySplit }> {
  const tb = await Testbed.start({ dbus: true, daemon: false, logLevel: 'info', daemonNodeArgs, env });
  try {
    writeSpool(tb.stateDir, finished, 'sent');
    const d = await tb.startDaemon();
    await d.waitFor((l) => l.msg === 'outbox recovered', 120_000, 'outbox recovered');
    await tb.modemReady();
    await sleep(3000);
    const idleMiB = round(procStatus(d.pid).rssKb / 1024, 1);
    const client = await MmsClient.connect('session', tb.bus!.address);
    try {
      const measure = async (list: () => Promise<unknown[]>): Promise<FootprintResult['paged']> => {
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
      // After the lists, so that its full GC does not change what they are measured against.
      const idleWithFinished = await probe(d, probeFile);
      return { list: { finished, idleMiB, ...whole }, paged, idleWithFinished };
    } finally {
      client.close();
    }
  } finally {
    await tb.stop();
  }
}

/** The table rows of a footprint result. */
export function footprintRows(f: FootprintResult): [string, string, string][] {
  const split = (m: MemorySplit): string =>
    `anonymous ${m.anonMiB}, file-backed ${m.fileMiB}; heap used ${m.heapUsed[0]} → ${m.heapUsed[1]} after GC (total ${m.heapTotal[1]}), external ${m.external[1]}, array buffers ${m.arrayBuffers[1]}; new space ${m.spaces.new_space?.[0] ?? NaN}, old ${m.spaces.old_space?.[0] ?? NaN}, code ${m.spaces.code_space?.[0] ?? NaN} MiB`;
  return [
    ['node alone', `${f.nodeAlone.rssMiB} MiB`, `node ${f.nodeOptions.join(' ')} -e 'setInterval(…)': the floor under every figure below; anonymous ${f.nodeAlone.anonMiB}, file-backed ${f.nodeAlone.fileMiB}`],
    ['RSS idle', `${f.idle.rssMiB} MiB`, `target ≤ 56; daemon's own share ${round(f.idle.rssMiB - f.nodeAlone.rssMiB, 1)} (anonymous +${round(f.idle.anonMiB - f.nodeAlone.anonMiB, 1)}); ${split(f.idle)}`],
    ['RSS after 1,000 messages', `${f.afterFirst.rssMiB} MiB`, `target ≤ 64 (steady: ${f.settledAfterFirstMiB} MiB 3 s after the batch); ${split(f.afterFirst)}`],
    ['RSS after 1,000 more', `${f.afterSecond.rssMiB} MiB`, `target: no growth (${round(f.afterSecond.rssMiB - f.afterFirst.rssMiB, 1)} MiB; live heap ${round(f.afterSecond.heapUsed[1] - f.afterFirst.heapUsed[1], 2)} MiB); peak ${f.peakMiB} MiB; ${f.throughput.join(' / ')} msg/s`],
    [`${f.list.finished} finished messages held`, `${f.heldPerFinished.heapKB} KB heap each`, `no growth beyond a small index: live heap after GC ${f.heldPerFinished.idleHeapUsedMiB} MiB against ${f.idle.heapUsed[1]} with an empty spool; RSS ${f.heldPerFinished.rssKB} KB each (idle ${f.list.idleMiB} MiB)`],
    [`ListMessagesPage × ${Math.ceil(f.paged.replyEntries / 200)}, ${f.list.finished} finished`, `+${f.paged.peakDeltaMiB} MiB peak`, `200 per page; idle ${f.list.idleMiB} MiB, ${f.paged.afterMiB} MiB 3 s after; ${f.paged.ms} ms for ${f.paged.replyEntries} entries`],
    [`ListMessages, ${f.list.finished} finished`, `+${f.list.peakDeltaMiB} MiB peak`, `target ≤ +10; one reply, measured after the pages; ${f.list.afterMiB} MiB 3 s after; ${f.list.ms} ms for ${f.list.replyEntries} entries`],
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // node dist/bench/footprint.js [MESSAGES [FINISHED [NODE_OPTIONS…]]]; without options, the unit's.
  const options = process.argv.slice(4);
  const f = await measureFootprint(Number(process.argv[2] ?? 1000), Number(process.argv[3] ?? 10_000), options.length ? options : unitNodeOptions());
  console.log(JSON.stringify(f, null, 2));
  for (const r of footprintRows(f)) console.log(r.join('  '));
  process.exit(0);
}
