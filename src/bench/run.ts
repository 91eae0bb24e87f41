#!/usr/bin/env node
// `npm run bench` (DESIGN.md §8): every benchmark in one run against the virtual modem, a table on
// stdout and the figures as JSON in bench/results/<date>.json. Numbers only: nothing here asserts.
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { VERSION } from '../daemon/version.js';
import { measureCarrierDatabase } from './carrier.js';
import { measureDeliveryMatching } from './delivery.js';
import { measureFetch } from './fetch.js';
import { fitRows, measureFit } from './fit.js';
import { footprintRows, measureFootprint } from './footprint.js';
import { measureIdle, measureQueueScale, measureStartup } from './lifecycle.js';
import { measureReceive } from './receive.js';
import { measureThroughput } from './throughput.js';
import { measureWire, type Link } from './wire.js';

const RESULTS = fileURLToPath(new URL('../../bench/results/', import.meta.url));
const ALL = ['wire', 'fetch', 'receive', 'throughput', 'footprint', 'idle', 'startup', 'queue', 'carrier', 'fit', 'delivery'] as const;

function machine(): Record<string, unknown> {
  return {
    nproc: os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    kernel: os.release(),
  };
}

function table(rows: [string, string, string][]): string {
  const w = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(w[i])).join('  ')).join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' },
      messages: { type: 'string' },
      'idle-seconds': { type: 'string' },
      queue: { type: 'string' },
      'node-option': { type: 'string', multiple: true },
      windows: { type: 'string' },
    },
  });
  const only = new Set(values.only ? values.only.split(',') : ALL);
  const messages = Number(values.messages ?? 1000);
  const idleSeconds = Number(values['idle-seconds'] ?? 60);
  const queued = Number(values.queue ?? 10_000);
  // Node options for the daemon in the throughput and memory figures, e.g. V8's heap sizes
  // (`--node-option=--max-semi-space-size=2`): V8 sizes its heap after the machine's memory.
  const nodeArgs = values['node-option'] ?? [];
  // modem.uploadWindow values the wire figures are measured with (issue 19).
  const windows = (values.windows ?? '1,2').split(',').map(Number);
  if (windows.some((n) => !Number.isInteger(n) || n < 1 || n > 8)) throw new Error(`--windows wants numbers from 1 to 8, e.g. 1,2,4; got ${values.windows}`);
  const started = Date.now();
  const out: Record<string, unknown> = { date: new Date().toISOString(), version: VERSION, machine: machine() };
  const rows: [string, string, string][] = [['figure', 'value', 'note']];
  const step = (what: string): void => console.error(`bench: ${what} (${((Date.now() - started) / 1000).toFixed(0)} s)`);

  if (only.has('wire')) {
    const wire = [];
    // Issue 19's targets: ≤ 1.03 at 115,200 baud, ≤ 1.05 at 921,600 over tcp://, ≤ 1.10 over the pty.
    const lines: [number, Link, number][] = [
      [115200, 'pty', 1.03],
      [921600, 'pty', 1.1],
      [921600, 'tcp', 1.05],
    ];
    for (const [baud, link, target] of lines) {
      for (const window of windows) {
        step(`wire ratio at ${baud} baud over ${link}, upload window ${window}`);
        const w = await measureWire(baud, link, window);
        wire.push(w);
        const p = w.phases;
        const floor = w.floorUploadMs / w.floorUploadWireMs;
        rows.push([
          `wire ratio @${baud}${link === 'tcp' ? ' over tcp://' : ' pty'}, window ${window}`,
          w.ratioInfo.toFixed(3),
          `target ≤ ${target.toFixed(2)}; testbed floor ${floor.toFixed(3)} (same run), daemon − floor ${(w.ratioInfo - floor).toFixed(3)}; median of ${w.ratiosInfo.join(', ')} (log level info)`,
        ]);
        rows.push(['  with debug logging', w.ratio.toFixed(3), `${w.totalMs.toFixed(0)} ms for ${w.bytesToModem + w.bytesFromModem} B on the line (wire ${w.wireMs.toFixed(0)} ms)`]);
        rows.push(['  where the time went', `${p.upload} ms`, `upload; submit ${p.submit}, queue ${p.queue}, prepare ${p.prepare}, edit ${p.edit}, mmsc ${p.mmsc}, report ${Math.round(p.report)} ms`]);
        rows.push(['  testbed floor (upload)', floor.toFixed(3), `a bare client's upload of the same file, ${window} block(s) in flight: ${w.floorUploadMs.toFixed(0)} ms vs wire ${w.floorUploadWireMs.toFixed(0)} ms`]);
      }
    }
    out.wire = wire;
    const w = wire[0];
    rows.push(['AT round trips / message', `${w.atRoundTrips} / ${w.atMinimum}`, `daemon / spec minimum (1 To, subject, one file): ${w.commands.map((c) => c.replace(/=.*/, '')).join(' ')}; the first message after start-up: ${w.firstMessageRoundTrips}`]);
  }
  if (only.has('fetch')) {
    const fetched = [];
    // Issue 19's target: ≤ 1.10 at 115,200 baud.
    for (const link of ['pty', 'tcp'] as const) {
      step(`fetching a received 300 KB message at 115200 baud over ${link}`);
      const f = await measureFetch(115_200, link);
      fetched.push(f);
      const floor = f.floorMs / f.floorWireMs;
      rows.push([
        `fetch ratio @115200${link === 'tcp' ? ' over tcp://' : ' pty'}`,
        f.ratio.toFixed(3),
        `target ≤ 1.10; testbed floor ${floor.toFixed(3)} (a bare AT+QFDWL of ${f.messageBytes} B, same run), driver − floor ${(f.ratio - floor).toFixed(3)}; median of ${f.ratios.join(', ')}`,
      ]);
      rows.push([
        '  on the line',
        `${f.fetchMs.toFixed(0)} ms`,
        `${f.bytesToModem} B to the module + ${f.bytesFromModem} B from it (wire ${f.wireMs.toFixed(0)} ms) for an M-Retrieve.conf of ${f.messageBytes} B; ${f.commands.length} AT commands (${f.firstFetchCommands.length} for the first after start-up): ${f.commands.map((c) => c.replace(/=.*/, '')).join(' ')}`,
      ]);
    }
    out.fetch = fetched;
  }
  if (only.has('receive')) {
    step('receive ratio at 115200 baud');
    const r = await measureReceive(115_200);
    out.receive = r;
    rows.push([`receive ratio @${r.baud}`, r.ratio.toFixed(3), `target ≤ 1.10; a ${Math.round(r.messageBytes / 1024)} KiB message, push to received on D-Bus: ${r.totalMs.toFixed(0)} ms for ${r.bytesToModem + r.bytesFromModem} B on the line (wire ${r.wireMs.toFixed(0)} ms); median of ${r.ratios.join(', ')}`]);
  }
  if (only.has('throughput')) {
    step(`throughput, 2 × ${messages} messages`);
    const t = await measureThroughput(messages, { nodeArgs });
    out.throughput = t;
    for (const [i, b] of t.batches.entries()) {
      rows.push([`throughput batch ${i + 1}`, `${b.perSecond} msg/s`, `${b.messages} × 10 KiB in ${b.seconds} s, p50 ${b.latencyP50Ms} ms, p95 ${b.latencyP95Ms} ms, failed ${b.failed}, at MMSC ${b.receivedAtMmsc}`]);
    }
    rows.push(['  sim send delay', `${t.simSendDelayMs} ms`, 'the virtual modem\'s radio time per AT+QMMSEND (mmsd-sim --send-delay-ms); the MMSC answers at once']);
    rows.push(['RSS start / after / peak', `${(t.rssStartKb / 1024).toFixed(1)} / ${(t.batches[0].rssAfterKb / 1024).toFixed(1)} / ${(t.rssPeakBeforeSnapshotKb / 1024).toFixed(1)} MiB`, `after batch 1 of ${messages}; peak = VmHWM before any heap snapshot${t.nodeArgs.length ? `; daemon run with ${t.nodeArgs.join(' ')}` : ''}`]);
    rows.push(['heap growth (2nd batch)', `${t.heapGrowthKb} KiB`, `${t.heapGrowthPerMessageBytes} B per message (live heap after GC: ${t.heapAfterFirstKb} → ${t.heapAfterSecondKb} KiB); finished messages stay in memory for outbox.retentionDays`]);
  }
  if (only.has('footprint')) {
    step(`footprint as the unit runs the daemon (its Environment= and ExecStart= node flags): idle, 2 × ${messages} messages, ListMessages over ${queued} finished`);
    const f = await measureFootprint(messages, queued);
    out.footprint = f;
    rows.push(...footprintRows(f));
  }
  if (only.has('idle')) {
    step(`idle for ${idleSeconds} s`);
    const i = await measureIdle(idleSeconds);
    out.idle = i;
    rows.push([`idle CPU over ${i.seconds} s`, `${i.cpuSeconds} s`, `${i.cpuPercent} % of a core; RSS ${(i.rssKb / 1024).toFixed(1)} MiB`]);
    rows.push(['  wake-ups / min', `${i.atCommandsPerMinute} AT`, `${i.voluntaryCtxtPerMinute} voluntary + ${i.involuntaryCtxtPerMinute} involuntary context switches per minute, all threads`]);
  }
  if (only.has('startup')) {
    step('start-up');
    const s = await measureStartup();
    out.startup = s;
    rows.push(['start-up to READY=1', `${s.toReadyMs} ms`, `median of ${s.runs}; first log line at ${s.toFirstLogMs} ms; RSS ${(s.rssAfterReadyKb / 1024).toFixed(1)} MiB`]);
  }
  if (only.has('queue')) {
    step(`queue scale, ${queued} messages`);
    const q = await measureQueueScale(queued);
    out.queueScale = q;
    rows.push([`recovery of ${q.messages} queued`, `${q.toRecoveredMs} ms`, `spawn → 'outbox recovered' (outbox ${q.outboxLoadMs} ms); loaded ${q.loaded}; RSS ${(q.rssAfterKb / 1024).toFixed(1)} MiB`]);
  }
  if (only.has('carrier')) {
    step('carrier database');
    const c = await measureCarrierDatabase();
    out.carrier = c;
    rows.push(['carrier database, first lookup', `${c.loadMs} ms`, `CPU ${c.loadCpuMs} ms; median of ${c.runs.length} fresh processes: import the parser ${c.importMs} ms, read ${c.bytes} B and index ${c.providers} providers with an MMSC under ${c.codes} MCC-MNC (${c.apns} APNs) ${c.indexMs} ms; indexing again, warm, ${c.warmIndexMs} ms`]);
    rows.push(['  memory of the load', `RSS +${(c.rssDeltaKiB / 1024).toFixed(1)} MiB`, `peak +${(c.peakRssDeltaKiB / 1024).toFixed(1)} MiB; live heap after GC: the index ${c.indexHeapKiB} KiB, the parser's code ${c.parserHeapKiB} KiB; indexing allocates ${c.indexAllocKiB} KiB before GC`]);
    rows.push(['  one lookup after it', `${c.lookupUs} µs`, `mean over the ${c.codes} codes`]);
  }
  if (only.has('fit')) {
    step('fitting a 12 MP photo');
    const f = await measureFit();
    out.fit = f;
    rows.push(...fitRows(f));
  }
  if (only.has('delivery')) {
    step('delivery-report matching with 10,000 messages awaiting reports');
    const d = await measureDeliveryMatching(10_000);
    out.delivery = d;
    rows.push([
      `delivery report, ${d.messages} awaiting`,
      `${d.applyMs.toFixed(2)} ms`,
      `Outbox.applyDeliveryReport, matched and durable (median of ${d.applied}); bound: the durable write of the record alone ${d.durableWriteMs.toFixed(2)} ms`,
    ]);
    rows.push([
      '  matching alone',
      `${d.indexOrderUs} µs`,
      `the daemon's index (DeliveryIndex) by recipient and order; unmatched ${d.indexUnmatchedUs} µs; by a known Message-ID ${d.indexMessageIdUs} µs; the index +${d.indexPerRecordB} B a record`,
    ]);
    rows.push([
      '  matching by a scan',
      `${d.matchOrderUs} µs`,
      `matchReport over all ${d.messages} (the daemon before the index), by recipient and order; unmatched ${d.matchUnmatchedUs} µs; by a known Message-ID ${d.matchMessageIdUs} µs`,
    ]);
    rows.push([
      '  memory of the awaiting',
      `+${d.awaitingExtraKiB} KiB`,
      `live heap after GC over the same ${d.messages} sent without reports: ${d.heapPerAwaitingB} B vs ${d.heapPerPlainB} B a record; the first report's normalised recipients +${d.matchCachePerRecordB} B a record`,
    ]);
  }
  const durationS = Math.round((Date.now() - started) / 1000);
  out.durationS = durationS;

  console.log(`\nmmsd ${VERSION} on ${String((out.machine as { cpu: string }).cpu)}, ${os.availableParallelism()} cores, node ${process.version}\n`);
  console.log(table(rows));
  await mkdir(RESULTS, { recursive: true });
  const file = join(RESULTS, `${new Date().toISOString().replace(/:/g, '-').replace(/\..*/, '')}.json`);
  await writeFile(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`\n${durationS} s; results in ${file}`);
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(`bench failed: ${err.stack ?? err.message}`);
    process.exit(1);
  },
);
