// Delivery-report matching with many messages awaiting reports (DESIGN.md §12, issue 19): a real
// Outbox on a spool in a temp dir holding N `sent` messages that asked for reports. Per report:
// matching alone, through the index the daemon uses (DeliveryIndex) and by the pure rule's scan
// of every candidate (matchReport, what the daemon did before the index), and
// Outbox.applyDeliveryReport end to end beside what bounds it, the durable write of the record.
// Memory: the live heap those records cost, against the same records sent without reports.
// Measured in a fresh node process with --expose-gc.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { writeDurable } from '../core/durable.js';
import type { DeliveryReportInput } from '../core/inbound.js';
import type { MessageRecord } from '../core/message.js';
import { matchReport, type Match } from '../outbox/delivery.js';
import { DeliveryIndex } from '../outbox/delivery-index.js';
import { Outbox } from '../outbox/outbox.js';
import { round } from './common.js';

export interface DeliveryBenchResult {
  /** Messages awaiting reports (one recipient each, all `pending`). */
  messages: number;
  /** Matching alone through the index (DeliveryIndex.match), µs per report: by the order rule, unmatched, by Message-ID. */
  indexOrderUs: number;
  indexUnmatchedUs: number;
  indexMessageIdUs: number;
  /** The same reports by the pure rule's scan of every candidate (matchReport), µs per report. */
  matchOrderUs: number;
  matchUnmatchedUs: number;
  matchMessageIdUs: number;
  /** Live heap of an index over the N awaiting records (the records themselves not counted), B a record. */
  indexPerRecordB: number;
  /** Outbox.applyDeliveryReport, matched and written durably, ms per report (`applied` reports in a row). */
  applyMs: number;
  applied: number;
  /** writeDurable of a record of the same size into the same spool, ms: the bound of applyMs. */
  durableWriteMs: number;
  /** Live heap after GC per record once loaded: awaiting reports, and the same records sent without them (B). */
  heapPerAwaitingB: number;
  heapPerPlainB: number;
  /** The live heap the N awaiting records add over N without reports, KiB. */
  awaitingExtraKiB: number;
  /** Live heap per record added by the first report (each candidate's recipients normalised once, cached), B. */
  matchCachePerRecordB: number;
}

const SELF = fileURLToPath(import.meta.url);

/** Recipient of message i: distinct per message, as a gateway alarming many people would have. */
function recipientOf(i: number): string {
  return `+49151${String(i).padStart(8, '0')}`;
}

/** The spool as the outbox leaves a sent message (attachments gone), `awaiting`: with its delivery map. */
function writeSentSpool(dir: string, n: number, awaiting: boolean, now: number): void {
  const messages = join(dir, 'messages');
  mkdirSync(messages, { recursive: true });
  mkdirSync(join(dir, 'attachments'), { recursive: true });
  const base = now - 60_000 - n;
  for (let i = 0; i < n; i++) {
    const id = `d${String(i).padStart(9, '0')}`;
    const to = recipientOf(i);
    const record: MessageRecord = {
      id,
      status: 'sent',
      to: [to],
      cc: [],
      bcc: [],
      subject: `alarm ${i}`,
      attachments: [],
      options: awaiting ? { deliveryReport: true } : {},
      attempts: 1,
      progress: 1,
      created: base + i,
      updated: base + i,
      sentAt: base + i,
      ramFiles: [],
      sendAccepted: true,
      ...(awaiting ? { delivery: { [to]: 'pending' as const } } : {}),
    };
    writeFileSync(join(messages, `${id}.json`), JSON.stringify(record));
  }
}

function heap(): number {
  globalThis.gc!();
  globalThis.gc!();
  return process.memoryUsage().heapUsed;
}

async function loaded(dir: string, n: number, awaiting: boolean, now: number): Promise<{ outbox: Outbox; heapB: number }> {
  writeSentSpool(dir, n, awaiting, now);
  const h0 = heap();
  const outbox = new Outbox({ dir, logger: pino({ level: 'silent' }), retentionDays: 30, deliveryReports: false });
  await outbox.start();
  return { outbox, heapB: heap() - h0 };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** One measurement in this process (started with --expose-gc). */
async function measureOnce(n: number): Promise<DeliveryBenchResult> {
  if (globalThis.gc === undefined) throw new Error('bench/delivery: run node with --expose-gc');
  const root = mkdtempSync(join(os.tmpdir(), 'mmsd-bench-delivery-'));
  try {
    const now = Date.now();
    // The same messages without reports first: what a sent record costs anyway.
    const plain = await loaded(join(root, 'plain'), n, false, now);
    await plain.outbox.stop();
    const plainHeapB = plain.heapB;
    const { outbox, heapB } = await loaded(join(root, 'awaiting'), n, true, now);
    try {
      const candidates = outbox.list();
      const report = (i: number, key: string, mid = `MID-${i}`): DeliveryReportInput => ({ key, reportMessageId: mid, recipient: recipientOf(i), status: 'retrieved', date: now });
      // The first report normalises every candidate's recipients once (a WeakMap on the frozen record).
      const h0 = heap();
      matchReport(report(0, 'warm'), candidates);
      const cacheB = heap() - h0;
      // An index like the outbox's own (which is private), over the same records.
      const byId = new Map(candidates.map((r) => [r.id, r]));
      const get = (id: string): MessageRecord | undefined => outbox.get(id) ?? byId.get(id);
      const h1 = heap();
      let index = new DeliveryIndex();
      for (const r of candidates) index.note(r);
      const indexB = heap() - h1;

      const rounds = 1000;
      const time = (match: (r: DeliveryReportInput) => Match, make: (k: number) => DeliveryReportInput, expect: string, times = rounds): number => {
        const t = performance.now();
        for (let k = 0; k < times; k++) {
          const m = match(make(k));
          if (m.kind !== expect) throw new Error(`bench/delivery: a report ${m.kind}, ${expect} expected`);
        }
        return ((performance.now() - t) * 1000) / times;
      };
      const scan = (r: DeliveryReportInput): Match => matchReport(r, candidates);
      const indexed = (r: DeliveryReportInput): Match => index.match(r, get);
      const orderReport = (k: number): DeliveryReportInput => report((k * 7919) % n, `o${k}`);
      const unmatchedReport = (k: number): DeliveryReportInput => ({ ...report(k, `u${k}`), recipient: `+4917${String(k).padStart(8, '0')}` });
      // Order rule: the scan finds a recipient's message only after looking at every candidate (the oldest wins).
      const matchOrderUs = time(scan, orderReport, 'matched');
      const matchUnmatchedUs = time(scan, unmatchedReport, 'unmatched');
      const indexOrderUs = time(indexed, orderReport, 'matched', rounds * 100);
      const indexUnmatchedUs = time(indexed, unmatchedReport, 'unmatched', rounds * 100);

      // End to end: each report matches another message and is written durably.
      const applied = Math.min(300, n);
      const applyTimes: number[] = [];
      for (let k = 0; k < applied; k++) {
        const t = performance.now();
        const r = await outbox.applyDeliveryReport(report(k, `a${k}`));
        applyTimes.push(performance.now() - t);
        if (r.outcome !== 'matched') throw new Error(`bench/delivery: report ${k} ${r.outcome}`);
      }
      // Those messages know their Message-ID now: a later report goes to them by it.
      const known = outbox.list();
      index = new DeliveryIndex();
      for (const r of known) index.note(r);
      const byMessageId = (match: (r: DeliveryReportInput, k: number) => Match, times: number): number => {
        const t = performance.now();
        for (let k = 0; k < times; k++) {
          const m = match(report(k % applied, `m${k}`), k);
          if (m.kind !== 'matched' || m.by !== 'message-id') throw new Error('bench/delivery: no match by Message-ID');
        }
        return ((performance.now() - t) * 1000) / times;
      };
      const matchMessageIdUs = byMessageId((r) => matchReport(r, known), rounds);
      const indexMessageIdUs = byMessageId((r) => index.match(r, (id) => outbox.get(id)), rounds * 100);

      // The bound: a durable write of a record like the ones just written, into the same folder.
      const text = JSON.stringify(outbox.get(known[0].id));
      const writes: number[] = [];
      for (let k = 0; k < applied; k++) {
        const w = performance.now();
        await writeDurable(join(root, 'awaiting', 'messages'), `.bench-${k % 10}.tmp.json`, text);
        writes.push(performance.now() - w);
      }
      return {
        messages: n,
        indexOrderUs: round(indexOrderUs, 2),
        indexUnmatchedUs: round(indexUnmatchedUs, 2),
        indexMessageIdUs: round(indexMessageIdUs, 2),
        indexPerRecordB: Math.round(indexB / n),
        matchOrderUs: round(matchOrderUs, 1),
        matchUnmatchedUs: round(matchUnmatchedUs, 1),
        matchMessageIdUs: round(matchMessageIdUs, 1),
        applyMs: round(median(applyTimes), 3),
        applied,
        durableWriteMs: round(median(writes), 3),
        heapPerAwaitingB: Math.round(heapB / n),
        heapPerPlainB: Math.round(plainHeapB / n),
        awaitingExtraKiB: Math.round((heapB - plainHeapB) / 1024),
        matchCachePerRecordB: Math.round(cacheB / n),
      };
    } finally {
      await outbox.stop();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** A fresh node process with --expose-gc: one measurement, as JSON on its stdout. */
export function measureDeliveryMatching(messages = 10_000): Promise<DeliveryBenchResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', SELF, String(messages)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`bench/delivery: child exited ${code}`));
      else resolve(JSON.parse(out) as DeliveryBenchResult);
    });
  });
}

// `node --expose-gc dist/bench/delivery.js [N]`: one measurement, as JSON on stdout.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  measureOnce(Number(process.argv[2] ?? 10_000)).then(
    (r) => console.log(JSON.stringify(r)),
    (err: Error) => {
      console.error(`bench/delivery: ${err.message}`);
      process.exit(1);
    },
  );
}
