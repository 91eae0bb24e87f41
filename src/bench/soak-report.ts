// The soak's accounting (src/bench/soak.ts): what it samples during the run, and at the end every
// message accounted for — sent (counted at the MMSC), failed, unknown, duplicates, lost, leaked RAM
// files, crashes, busy episodes and the daemon's RSS trend — and the report printed from it.
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { isFinal, type MessageRecord, type Status } from '../core/message.js';
import type { ProcessHandle } from '../harness/testbed.js';
import { round } from './common.js';
import type { FaultRecord } from './soak-faults.js';

export type Door = 'dbus' | 'mqtt';

/** One look at the daemon (RSS, CPU seconds so far) and the sim (CPU seconds so far). */
export type RssSample = { atS: number; kb: number; incarnation: number; cpuS?: number; simCpuS?: number };

/** A daemon that burnt most of a core for a while: a loop, not work (heavy faults cost ~10 %). */
export interface BusyEpisode {
  atS: number;
  incarnation: number;
  /** CPU seconds per second over the episode's samples, the daemon's and the sim's. */
  cpuRate: number;
  simCpuRate: number;
  rssKb: number;
  /** A heap snapshot taken then (the first episode only), to see what it holds. */
  snapshot?: string;
}

export interface Crash {
  /** Seconds into the run when the soak noticed (it restarts the daemon then). */
  atS: number;
  incarnation: number;
  code: number | null;
  signal: string | null;
  /** The fatal log line's message and error, or the end of stderr. */
  why: string;
}

export interface SoakReport {
  date: string;
  minutes: number;
  seed: number;
  machine: Record<string, unknown>;
  submitted: number;
  /**
   * Submissions the daemon had not confirmed by the end (a D-Bus call failed while it was down, or
   * no status came back for an MQTT request).
   */
  unconfirmed: number;
  /**
   * Per front door: ids submitted, confirmed, `sent` by the daemon and received by the MMSC, and
   * how many times an unconfirmed id was submitted again.
   */
  byDoor: Record<Door, { submitted: number; confirmed: number; sent: number; receivedAtMmsc: number; resubmissions: number }>;
  /** MQTT requests the daemon answered with `rejected` (must not happen: every request is valid). */
  mqttRejected: number;
  statuses: Record<string, number>;
  sentAtMmsc: number;
  failedReasons: Record<string, number>;
  unknownReasons: Record<string, number>;
  /** Ids the MMSC received more than once. */
  duplicates: number;
  duplicatesOutsideUnknown: number;
  /** Each id the MMSC received more than once: how often, its door and the daemon's view of it. */
  duplicateIds: { id: string; received: number; door: Door; status: Status; error: string }[];
  /** Status `sent` but never received by the MMSC. */
  sentNotReceived: number;
  /** A message reported `failed` that the MMSC has all the same: the user was told wrong. */
  failedButReceived: number;
  /** `unknown` messages the MMSC did receive (the rest never arrived): how open "unknown" was. */
  unknownReceived: number;
  /** Confirmed submissions the daemon does not know at the end. */
  lost: number;
  /** Still queued/retrying/sending at the end (back-off longer than the drain). */
  pending: number;
  /** RAM files in the module that no unfinished message journals. */
  ramFilesLeaked: number;
  ramFilesAtEnd: string[];
  daemonRestarts: number;
  /**
   * Daemon processes that ended on their own (an exit status other than 0, or a signal the soak
   * did not send): must be 0. A kernel OOM kill looks like the soak's own SIGKILL and is not seen.
   */
  crashes: Crash[];
  /**
   * Times the daemon used ≥ 80 % of a core for 15 s (three samples): must be 0. Logs are saved,
   * and the first episode leaves a heap snapshot beside the results.
   */
  busy: BusyEpisode[];
  faults: Record<string, number>;
  faultLog: FaultRecord[];
  rss: { samples: RssSample[]; maxKb: number; cpuSeconds: number; longestRun: { firstKb: number; lastKb: number; maxKb: number; minutes: number } };
}


/** Why a daemon process ended: its fatal log line (mmsd's crash handler), else its last stderr. */
export function crashReason(d: ProcessHandle): string {
  const fatal = d.lines.findLast((l) => l.level >= 60);
  if (fatal) {
    const err = fatal.err as { message?: string } | undefined;
    return `${fatal.msg}${err?.message ? `: ${err.message}` : ''}`;
  }
  return d.stderr.slice(-3).join(' | ') || 'no fatal line, no stderr';
}

export function readSpool(stateDir: string): MessageRecord[] {
  const dir = join(stateDir, 'messages');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json') && !f.startsWith('.'))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as MessageRecord);
}

export function account(x: {
  minutes: number;
  seed: number;
  submitted: Map<string, boolean>;
  doors: Map<string, Door>;
  resubmitted: Record<Door, number>;
  mqttRejected: number;
  list: { Id: string; Status: Status; Error: string }[];
  received: string[];
  ramFiles: string[];
  spool: MessageRecord[];
  faultLog: FaultRecord[];
  rssSamples: RssSample[];
  restarts: number;
  crashes: Crash[];
  busy: BusyEpisode[];
}): SoakReport {
  const byId = new Map(x.list.map((m) => [m.Id, m]));
  const receivedCount = new Map<string, number>();
  for (const subject of x.received) {
    const id = subject.replace(/^soak /, '');
    receivedCount.set(id, (receivedCount.get(id) ?? 0) + 1);
  }
  const statuses: Record<string, number> = {};
  const failedReasons: Record<string, number> = {};
  const unknownReasons: Record<string, number> = {};
  let lost = 0;
  let pending = 0;
  let sentNotReceived = 0;
  let failedButReceived = 0;
  let unknownReceived = 0;
  let duplicates = 0;
  let duplicatesOutsideUnknown = 0;
  const duplicateIds: SoakReport['duplicateIds'] = [];
  const byDoor: SoakReport['byDoor'] = {
    dbus: { submitted: 0, confirmed: 0, sent: 0, receivedAtMmsc: 0, resubmissions: x.resubmitted.dbus },
    mqtt: { submitted: 0, confirmed: 0, sent: 0, receivedAtMmsc: 0, resubmissions: x.resubmitted.mqtt },
  };
  for (const [id, confirmed] of x.submitted) {
    const m = byId.get(id);
    const got = receivedCount.get(id) ?? 0;
    const door = byDoor[x.doors.get(id) ?? 'dbus'];
    door.submitted++;
    if (confirmed) door.confirmed++;
    if (got > 0) door.receivedAtMmsc++;
    if (m?.Status === 'sent') door.sent++;
    if (!m) {
      // An unconfirmed call may never have reached the daemon: only a confirmed one can be lost.
      if (confirmed) lost++;
      continue;
    }
    statuses[m.Status] = (statuses[m.Status] ?? 0) + 1;
    if (!isFinal(m.Status)) pending++;
    if (m.Status === 'failed') failedReasons[m.Error] = (failedReasons[m.Error] ?? 0) + 1;
    if (m.Status === 'unknown') unknownReasons[m.Error] = (unknownReasons[m.Error] ?? 0) + 1;
    if (m.Status === 'sent' && got === 0) sentNotReceived++;
    if (m.Status === 'failed' && got > 0) failedButReceived++;
    if (m.Status === 'unknown' && got > 0) unknownReceived++;
    if (got > 1) {
      duplicates++;
      if (m.Status !== 'unknown') duplicatesOutsideUnknown++;
      duplicateIds.push({ id, received: got, door: x.doors.get(id) ?? 'dbus', status: m.Status, error: m.Error });
    }
  }
  const journalled = new Set<string>();
  for (const r of x.spool) if (!isFinal(r.status)) for (const f of r.ramFiles) journalled.add(f.replace(/^RAM:/, ''));
  const leaked = x.ramFiles.filter((f) => !journalled.has(f.replace(/^RAM:/, '')));
  const faults: Record<string, number> = {};
  for (const f of x.faultLog) faults[f.kind] = (faults[f.kind] ?? 0) + 1;
  // The RSS trend of the incarnation that lived longest (a SIGKILL starts a new process).
  const runs = new Map<number, RssSample[]>();
  for (const s of x.rssSamples) runs.set(s.incarnation, [...(runs.get(s.incarnation) ?? []), s]);
  const longest = [...runs.values()].sort((a, b) => b.at(-1)!.atS - b[0].atS - (a.at(-1)!.atS - a[0].atS))[0] ?? [];
  return {
    date: new Date().toISOString(),
    minutes: x.minutes,
    seed: x.seed,
    machine: { nproc: os.availableParallelism(), cpu: os.cpus()[0]?.model ?? 'unknown', node: process.version },
    submitted: x.submitted.size,
    unconfirmed: [...x.submitted.values()].filter((ok) => !ok).length,
    byDoor,
    mqttRejected: x.mqttRejected,
    statuses,
    sentAtMmsc: x.received.length,
    failedReasons,
    unknownReasons,
    duplicates,
    duplicateIds,
    duplicatesOutsideUnknown,
    sentNotReceived,
    failedButReceived,
    unknownReceived,
    lost,
    pending,
    ramFilesLeaked: leaked.length,
    ramFilesAtEnd: x.ramFiles,
    daemonRestarts: x.restarts,
    crashes: x.crashes,
    busy: x.busy,
    faults,
    faultLog: x.faultLog,
    rss: {
      samples: x.rssSamples,
      maxKb: Math.max(0, ...x.rssSamples.map((s) => s.kb)),
      // Each process's CPU seconds at its last sample, summed: what the daemon burnt in the run.
      cpuSeconds: round(
        [...runs.values()].reduce((sum, r) => sum + Math.max(0, ...r.map((s) => s.cpuS ?? 0)), 0),
        1,
      ),
      longestRun: {
        firstKb: longest[0]?.kb ?? 0,
        lastKb: longest.at(-1)?.kb ?? 0,
        maxKb: Math.max(0, ...longest.map((s) => s.kb)),
        minutes: longest.length ? round((longest.at(-1)!.atS - longest[0].atS) / 60, 1) : 0,
      },
    },
  };
}

export function print(r: SoakReport): void {
  const line = (k: string, v: string | number | object): void => console.log(`${k.padEnd(28)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  console.log(`\nsoak: ${r.minutes} min, seed ${r.seed}, ${r.daemonRestarts} daemon restarts (SIGKILL or crash)`);
  line('faults', r.faults);
  line('submitted', r.submitted);
  line('unconfirmed', r.unconfirmed);
  for (const d of ['dbus', 'mqtt'] as const) {
    const b = r.byDoor[d];
    line(`  over ${d === 'dbus' ? 'D-Bus' : 'MQTT'}`, `${b.submitted} submitted, ${b.confirmed} confirmed, ${b.sent} sent, ${b.receivedAtMmsc} received at the MMSC, ${b.resubmissions} resubmissions`);
  }
  line('MQTT requests rejected', `${r.mqttRejected} (must be 0)`);
  line('statuses', r.statuses);
  line('sent (at the MMSC)', r.sentAtMmsc);
  line('failed, by reason', r.failedReasons);
  line('unknown, by reason', r.unknownReasons);
  line('unknown but received', `${r.unknownReceived} (of ${r.statuses.unknown ?? 0} unknown, the MMSC had these)`);
  line('duplicates', `${r.duplicates} (outside unknown: ${r.duplicatesOutsideUnknown}, must be 0)`);
  for (const d of r.duplicateIds) line(`  ${d.id}`, `received ${d.received}×, over ${d.door}, ${d.status}${d.error ? ` (${d.error})` : ''}`);
  line('sent but not received', `${r.sentNotReceived} (must be 0)`);
  line('failed but received', `${r.failedButReceived} (must be 0)`);
  line('lost', `${r.lost} (must be 0)`);
  line('pending at the end', r.pending);
  line('daemon crashes', `${r.crashes.length} (must be 0)`);
  for (const c of r.crashes) line(`  at ${c.atS} s`, `exit ${c.code ?? c.signal}: ${c.why}`);
  line('daemon busy (≥ 80 % for 15 s)', `${r.busy.length} (must be 0)`);
  for (const b of r.busy) line(`  from ${b.atS} s`, `${b.cpuRate} CPU-s/s (sim ${b.simCpuRate}), RSS ${(b.rssKb / 1024).toFixed(0)} MiB${b.snapshot ? `, heap snapshot ${b.snapshot}` : ''}`);
  line('RAM files leaked', `${r.ramFilesLeaked} (must be 0) of ${r.ramFilesAtEnd.length} in RAM`);
  const l = r.rss.longestRun;
  line('RSS, highest of any process', `${(r.rss.maxKb / 1024).toFixed(1)} MiB`);
  line('daemon CPU, all processes', `${r.rss.cpuSeconds} s in ${r.minutes} min (${((r.rss.cpuSeconds / (r.minutes * 60)) * 100).toFixed(1)} % of a core)`);
  line('RSS (longest-lived process)', `${(l.firstKb / 1024).toFixed(1)} → ${(l.lastKb / 1024).toFixed(1)} MiB over ${l.minutes} min, max ${(l.maxKb / 1024).toFixed(1)} MiB`);
}