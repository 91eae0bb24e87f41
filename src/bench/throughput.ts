// Messages per second through the whole daemon over an unthrottled line (D-Bus in → MMSC → `sent`
// out), the daemon's RSS over the batch, and its live heap after one batch and after a second
// (a leak shows as growth) — DESIGN.md §8.
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MmsClient } from '../api/dbus/client.js';
import { Testbed, type ProcessHandle } from '../harness/testbed.js';
import { pseudoRandomBytes } from '../harness/random.js';
import { StatusWatcher, procStatus, round, sleep } from './common.js';

export interface BatchResult {
  messages: number;
  seconds: number;
  perSecond: number;
  /** Submission to `sent`, per message, ms. */
  latencyP50Ms: number;
  latencyP95Ms: number;
  failed: number;
  receivedAtMmsc: number;
  rssAfterKb: number;
}

export interface ThroughputResult {
  attachmentBytes: number;
  concurrency: number;
  batches: BatchResult[];
  rssStartKb: number;
  /** VmHWM after the first batch, before any heap snapshot (a snapshot costs memory itself). */
  rssPeakBeforeSnapshotKb: number;
  /** Live heap (sum of a heap snapshot's objects, taken after a full GC), KiB. */
  heapAfterFirstKb: number;
  heapAfterSecondKb: number;
  heapGrowthKb: number;
  heapGrowthPerMessageBytes: number;
  /** Extra node options of the daemon (e.g. --max-old-space-size). */
  nodeArgs: string[];
  /** Fixed delay of the virtual modem per AT+QMMSEND (its "radio" time), ms: part of every message. */
  simSendDelayMs: number;
}

// "0 ms MMSC": the sim gets no radio time per send either (its default is 50 ms).
const SIM_SEND_DELAY_MS = 0;

export async function measureThroughput(
  messages: number,
  opts: { attachmentBytes?: number; concurrency?: number; nodeArgs?: string[] } = {},
): Promise<ThroughputResult> {
  const { attachmentBytes = 10 * 1024, concurrency = 8, nodeArgs = [] } = opts;
  const snapDir = await mkdtemp(join(tmpdir(), 'mmsd-bench-heap-'));
  const tb = await Testbed.start({
    dbus: true,
    logLevel: 'info',
    simArgs: ['--send-delay-ms', String(SIM_SEND_DELAY_MS)],
    daemonNodeArgs: ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${snapDir}`, ...nodeArgs],
  });
  try {
    await tb.modemReady();
    const daemon = tb.daemon!;
    const watcher = await StatusWatcher.connect(tb.bus!.address);
    const client = await MmsClient.connect('session', tb.bus!.address);
    try {
      const rssStartKb = procStatus(daemon.pid).rssKb;
      const data = pseudoRandomBytes(attachmentBytes, 3);
      const batches: BatchResult[] = [];
      const heaps: number[] = [];
      let rssPeakBeforeSnapshotKb = 0;
      for (let b = 0; b < 2; b++) {
        batches.push(await runBatch(tb, client, watcher, messages, data, concurrency, b));
        if (b === 0) rssPeakBeforeSnapshotKb = procStatus(daemon.pid).hwmKb;
        heaps.push(await liveHeapKb(daemon, snapDir));
      }
      return {
        attachmentBytes,
        concurrency,
        batches,
        rssStartKb,
        rssPeakBeforeSnapshotKb,
        heapAfterFirstKb: heaps[0],
        heapAfterSecondKb: heaps[1],
        heapGrowthKb: heaps[1] - heaps[0],
        heapGrowthPerMessageBytes: round(((heaps[1] - heaps[0]) * 1024) / messages, 1),
        simSendDelayMs: SIM_SEND_DELAY_MS,
        nodeArgs,
      };
    } finally {
      client.close();
      watcher.close();
    }
  } finally {
    await tb.stop();
    await rm(snapDir, { recursive: true, force: true });
  }
}

export async function runBatch(
  tb: Testbed,
  client: MmsClient,
  watcher: StatusWatcher,
  n: number,
  data: Buffer,
  concurrency: number,
  batch: number,
): Promise<BatchResult> {
  const receivedBefore = (await tb.received()).length;
  const submittedAt = new Map<string, number>();
  const ids: string[] = [];
  let next = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      const at = performance.now();
      const path = await client.sendData({ to: ['+15551234567'], subject: `tp ${batch}-${i}` }, [
        { name: 'part.bin', contentType: 'application/octet-stream', data },
      ]);
      const id = path.slice(path.lastIndexOf('/') + 1);
      submittedAt.set(id, at);
      ids.push(id);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const done = (): boolean => ids.every((id) => ['sent', 'failed', 'unknown'].includes(watcher.latest.get(id) ?? ''));
  await watcher.until(done, 30 * 60_000, `${n} messages final`);
  const t1 = performance.now();
  const sentAt = new Map<string, number>();
  for (const e of watcher.events) if (e.status === 'sent' && submittedAt.has(e.id)) sentAt.set(e.id, e.at);
  const lat = ids
    .filter((id) => sentAt.has(id))
    .map((id) => sentAt.get(id)! - submittedAt.get(id)!)
    .sort((a, b) => a - b);
  const pct = (p: number): number => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : NaN);
  return {
    messages: n,
    seconds: round((t1 - t0) / 1000, 2),
    perSecond: round((n * 1000) / (t1 - t0), 2),
    latencyP50Ms: round(pct(0.5), 1),
    latencyP95Ms: round(pct(0.95), 1),
    failed: ids.filter((id) => watcher.latest.get(id) !== 'sent').length,
    receivedAtMmsc: (await tb.received()).length - receivedBefore,
    rssAfterKb: procStatus(tb.daemon!.pid).rssKb,
  };
}

/**
 * SIGUSR2 makes the daemon (started with --heapsnapshot-signal) write a heap snapshot, which V8
 * takes after a full GC: the sum of its objects' self sizes is the live heap.
 */
export async function liveHeapKb(daemon: ProcessHandle, dir: string): Promise<number> {
  const pattern = new RegExp(`^Heap\\..*\\.${daemon.pid}\\..*\\.heapsnapshot$`);
  const before = new Set((await readdir(dir)).filter((f) => pattern.test(f)));
  process.kill(daemon.pid, 'SIGUSR2');
  let file: string | undefined;
  for (let i = 0; i < 600 && !file; i++) {
    await sleep(100);
    file = (await readdir(dir)).find((f) => pattern.test(f) && !before.has(f));
  }
  if (!file) throw new Error('the daemon wrote no heap snapshot');
  const path = join(dir, file);
  try {
    // Written in pieces: wait until it parses.
    for (let i = 0; i < 600; i++) {
      try {
        const snap = JSON.parse(await readFile(path, 'utf8')) as {
          snapshot: { meta: { node_fields: string[] } };
          nodes: number[];
        };
        const fields = snap.snapshot.meta.node_fields;
        const stride = fields.length;
        const self = fields.indexOf('self_size');
        let total = 0;
        for (let k = self; k < snap.nodes.length; k += stride) total += snap.nodes[k];
        return Math.round(total / 1024);
      } catch {
        await sleep(200);
      }
    }
    throw new Error(`heap snapshot ${path} never became readable`);
  } finally {
    await rm(path, { force: true });
  }
}
