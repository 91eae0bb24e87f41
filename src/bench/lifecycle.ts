// What it costs to start and to keep running (DESIGN.md §8): start-up time against a ready
// virtual modem, CPU and wake-ups of an idle daemon, and start-up recovery of a 10,000-message spool.
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MessageRecord } from '../core/message.js';
import { Testbed, type LogLine } from '../harness/testbed.js';
import { cpuSeconds, lineTime, procStatus, round, sleep, threadCtxtSwitches } from './common.js';
import { LOG_EVENTS } from '../core/log-events.js';

export interface StartupResult {
  runs: number;
  /** Medians, ms from spawning the process. */
  toFirstLogMs: number;
  /** The 'ready' line (READY=1 to systemd, here with the modem ready). */
  toReadyMs: number;
  rssAfterReadyKb: number;
  all: { toFirstLogMs: number; toReadyMs: number }[];
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function measureStartup(runs = 3): Promise<StartupResult> {
  const tb = await Testbed.start({ daemon: false, logLevel: 'info' });
  try {
    const all: { toFirstLogMs: number; toReadyMs: number }[] = [];
    let rss = 0;
    for (let i = 0; i < runs; i++) {
      const spawnedAt = Date.now();
      const d = await tb.startDaemon();
      const ready = await d.waitFor((l) => l.msg === LOG_EVENTS.ready, 30_000, 'ready');
      all.push({ toFirstLogMs: lineTime(d.lines[0]) - spawnedAt, toReadyMs: lineTime(ready) - spawnedAt });
      rss = procStatus(d.pid).rssKb;
      await d.stop();
    }
    return {
      runs,
      toFirstLogMs: median(all.map((r) => r.toFirstLogMs)),
      toReadyMs: median(all.map((r) => r.toReadyMs)),
      rssAfterReadyKb: rss,
      all,
    };
  } finally {
    await tb.stop();
  }
}

export interface IdleResult {
  seconds: number;
  cpuSeconds: number;
  /** Share of one core. */
  cpuPercent: number;
  atCommands: number;
  atCommandsPerMinute: number;
  voluntaryCtxtPerMinute: number;
  involuntaryCtxtPerMinute: number;
  rssKb: number;
}

/** A ready, idle daemon (health poll every modem.healthIntervalS = 30 s, the default) for `seconds`. */
export async function measureIdle(seconds = 60): Promise<IdleResult> {
  const tb = await Testbed.start({ dbus: true, logLevel: 'info' });
  try {
    await tb.modemReady();
    // Let the start-up settle (JIT, first timers) before measuring.
    await sleep(2000);
    const pid = tb.daemon!.pid;
    const cmd0 = ((await tb.simState()).transcript as string[]).length;
    const cpu0 = cpuSeconds(pid);
    const st0 = threadCtxtSwitches(pid);
    await sleep(seconds * 1000);
    const cpu1 = cpuSeconds(pid);
    const st1 = threadCtxtSwitches(pid);
    const cmds = ((await tb.simState()).transcript as string[]).length - cmd0;
    const perMin = (n: number): number => round((n * 60) / seconds, 1);
    return {
      seconds,
      cpuSeconds: round(cpu1 - cpu0, 2),
      cpuPercent: round(((cpu1 - cpu0) / seconds) * 100, 3),
      atCommands: cmds,
      atCommandsPerMinute: perMin(cmds),
      voluntaryCtxtPerMinute: perMin(st1.voluntary - st0.voluntary),
      involuntaryCtxtPerMinute: perMin(st1.involuntary - st0.involuntary),
      rssKb: procStatus(pid).rssKb,
    };
  } finally {
    await tb.stop();
  }
}

export interface QueueScaleResult {
  messages: number;
  generateMs: number;
  /** Spawn to the 'outbox recovered' log line. */
  toRecoveredMs: number;
  /** 'starting' (config read, modules loaded) to 'outbox recovered': the outbox's own share. */
  outboxLoadMs: number;
  loaded: number;
  rssAfterKb: number;
}

/**
 * 10,000 queued messages (1 KiB attachment each) written in the spool format of
 * src/outbox/outbox.ts; the daemon starts with no modem (a port path that does not exist).
 */
export async function measureQueueScale(messages = 10_000): Promise<QueueScaleResult> {
  const tb = await Testbed.start({ daemon: false, logLevel: 'info', config: { modem: { port: '/nonexistent/mmsd-bench-modem' } } });
  try {
    const t0 = performance.now();
    writeSpool(tb.stateDir, messages);
    const generateMs = performance.now() - t0;
    const spawnedAt = Date.now();
    const d = await tb.startDaemon();
    const recovered = await d.waitFor((l) => l.msg === LOG_EVENTS.outboxRecovered, 120_000, 'outbox recovered');
    const starting = d.lines.find((l: LogLine) => l.msg === LOG_EVENTS.starting);
    const result: QueueScaleResult = {
      messages,
      generateMs: round(generateMs, 0),
      toRecoveredMs: lineTime(recovered) - spawnedAt,
      outboxLoadMs: starting ? lineTime(recovered) - lineTime(starting) : NaN,
      loaded: Number(recovered.loaded),
      rssAfterKb: procStatus(d.pid).rssKb,
    };
    return result;
  } finally {
    await tb.stop();
  }
}

/** The spool as Outbox.submit leaves it: attachments/<id>/<i>, then messages/<id>.json. */
export function writeSpool(stateDir: string, n: number, status: 'queued' | 'sent' = 'queued'): void {
  const messagesDir = join(stateDir, 'messages');
  const attachmentsDir = join(stateDir, 'attachments');
  mkdirSync(messagesDir, { recursive: true });
  mkdirSync(attachmentsDir, { recursive: true });
  const data = Buffer.alloc(1024, 0x42);
  const sha256 = createHash('sha256').update(data).digest('hex');
  const base = Date.now() - n;
  for (let i = 0; i < n; i++) {
    const id = `m${(base + i).toString(36).padStart(9, '0')}${i.toString(16).padStart(10, '0')}`;
    mkdirSync(join(attachmentsDir, id));
    writeFileSync(join(attachmentsDir, id, '0'), data);
    const record: MessageRecord = {
      id,
      status,
      to: ['+15551234567'],
      cc: [],
      bcc: [],
      subject: `${status} ${i}`,
      attachments: [{ name: 'part.bin', contentType: 'application/octet-stream', size: data.length, sha256, file: `attachments/${id}/0` }],
      options: {},
      attempts: 0,
      progress: 0,
      created: base + i,
      updated: base + i,
      ramFiles: [],
      sendAccepted: false,
    };
    writeFileSync(join(messagesDir, `${id}.json`), JSON.stringify(record));
  }
}
