#!/usr/bin/env node
// `npm run soak -- --minutes N` (not in CI): the daemon against the virtual modem for N minutes
// with random faults (every +QMMSEND error code, HTTP and MMSC failures, reboots, port loss, SIM
// removal, PDP drops, SIGKILL of the daemon, restarts of the MQTT broker) under a steady stream of
// submissions over D-Bus and MQTT; then every message is accounted for: sent (counted at the MMSC),
// failed, unknown, duplicates, lost, leaked RAM files, and the daemon's RSS trend (DESIGN.md §6, §8).
import { mkdir, mkdtemp, rmdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connectAsync, type MqttClient } from 'mqtt';
import { MmsClient } from '../api/dbus/client.js';
import type { Status } from '../core/message.js';
import { Testbed, type ProcessHandle } from '../harness/testbed.js';
import { Mosquitto } from '../harness/mosquitto.js';
import { mulberry32, pseudoRandomBytes } from '../harness/random.js';
import { cpuSeconds, procStatus, round, sleep } from './common.js';
import { FAULTS, between, type Fault, type FaultRecord } from './soak-faults.js';
import { account, crashReason, print, readSpool, type BusyEpisode, type Crash, type Door, type RssSample } from './soak-report.js';

const RESULTS = fileURLToPath(new URL('../../bench/results/', import.meta.url));

/** The daemon's default base topic (docs/mqtt.md). */
const BASE_TOPIC = 'mmsd';


/** CPU seconds per wall second above which a sample counts as busy, and how many in a row make an episode. */
const BUSY_RATE = 0.8;
const BUSY_SAMPLES = 3;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '10' },
      seed: { type: 'string' },
      rate: { type: 'string', default: '1' },
      'fault-every-s': { type: 'string', default: '8' },
      'drain-s': { type: 'string', default: '150' },
      'node-option': { type: 'string', multiple: true },
      'save-logs': { type: 'boolean', default: false },
    },
  });
  const minutes = Number(values.minutes);
  const seed = values.seed !== undefined ? Number(values.seed) : Date.now() % 1_000_000;
  const perSecond = Number(values.rate);
  const faultEveryS = Number(values['fault-every-s']);
  const drainS = Number(values['drain-s']);
  // Node options for the daemon, e.g. the shipped unit's NODE_OPTIONS (--max-semi-space-size=2).
  const nodeArgs = values['node-option'] ?? [];
  // Two streams from one seed: the faults (kind, detail, spacing) and the submissions (door, size)
  // draw independently, so a seed gives the same fault sequence whatever the timing of the stream.
  const r = mulberry32(seed);
  const rs = mulberry32(seed ^ 0x5bd1e995);
  const log = (s: string): void => console.error(`soak ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s: ${s}`);
  const t0 = performance.now();

  // Heap snapshots of a busy daemon are hundreds of MB: they stay out of bench/results.
  const snapDir = await mkdtemp(join(os.tmpdir(), 'mmsd-soak-snapshots-'));
  // The MQTT door needs a broker of its own (mosquitto must be installed); it outlives the testbed.
  const broker = await Mosquitto.start();
  const tb = await Testbed.start({
    dbus: true,
    mqttUrl: broker.url,
    logLevel: 'info',
    simArgs: ['--baud', '921600'],
    daemonNodeArgs: [...nodeArgs, '--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${snapDir}`],
    // A held send must end within the run: the module's own send timeout, then `unknown`.
    config: { mms: { sendTimeoutS: 30 }, modem: { healthIntervalS: 10 } },
  }).catch(async (err: unknown) => {
    await broker.dispose();
    throw err;
  });
  let client: MmsClient | undefined;
  let mqttClient: MqttClient | undefined;
  try {
    await tb.modemReady(60_000);
    client = await MmsClient.connect('session', tb.bus!.address);
    const c = client;
    const endAt = t0 + minutes * 60_000;
    const submitted = new Map<string, boolean>(); // id → confirmed
    const doors = new Map<string, Door>();
    const lastPublished = new Map<string, number>(); // MQTT id → performance.now() of its last publish
    const mqttRejected = new Set<string>();
    const faultLog: FaultRecord[] = [];
    const rssSamples: RssSample[] = [];
    let incarnation = 0;
    let lastPid = tb.daemon!.pid;
    let n = 0;

    // One submitter client for every MQTT request: a clean session is enough, since a status it
    // misses while the broker is away is either retained (the first `queued`, the final status) or
    // published again when the request is (docs/mqtt.md, "Ids, duplicates and delivery guarantees").
    const messagePrefix = `${BASE_TOPIC}/message/`;
    const mq = await connectAsync(broker.url, { protocolVersion: 5, clean: true, reconnectPeriod: 500, connectTimeout: 5000 });
    mqttClient = mq;
    // mqtt.js reconnects on its own; one line per outage, not one per refused connect.
    let mqOnline = true;
    mq.on('error', () => undefined);
    mq.on('offline', () => {
      if (mqOnline) log("submitter's MQTT client offline");
      mqOnline = false;
    });
    mq.on('connect', () => {
      if (!mqOnline) log("submitter's MQTT client reconnected");
      mqOnline = true;
    });
    mq.on('message', (topic, payload) => {
      if (!topic.startsWith(messagePrefix) || payload.length === 0) return;
      const id = topic.slice(messagePrefix.length);
      if (doors.get(id) !== 'mqtt') return;
      let status: unknown;
      try {
        status = (JSON.parse(payload.toString()) as { status?: unknown }).status;
      } catch {
        return;
      }
      if (status === 'rejected') {
        if (!mqttRejected.has(id)) log(`MQTT request ${id} rejected: ${payload.toString().slice(0, 200)}`);
        mqttRejected.add(id);
      } else if (typeof status === 'string') {
        // `queued` or any later status: the daemon holds the message durably.
        submitted.set(id, true);
      }
    });
    await mq.subscribeAsync(`${messagePrefix}+`, { qos: 1 });

    const submitDbus = async (id: string): Promise<void> => {
      const size = between(rs, 200, 30_000);
      try {
        await c.sendData({ to: ['+15551234567'], subject: `soak ${id}`, id }, [
          { name: 'part.bin', contentType: 'application/octet-stream', data: pseudoRandomBytes(size, n) },
        ]);
        submitted.set(id, true);
      } catch {
        // The daemon was down (killed) or busy restarting: sent again with the same id later.
        submitted.set(id, submitted.get(id) ?? false);
      }
    };

    const submitMqtt = async (id: string): Promise<void> => {
      const size = between(rs, 200, 30_000);
      // Recorded before the publish: the answer may arrive before the PUBACK.
      submitted.set(id, submitted.get(id) ?? false);
      lastPublished.set(id, performance.now());
      const request = {
        id,
        to: ['+15551234567'],
        subject: `soak ${id}`,
        attachments: [{ name: 'part.bin', contentType: 'application/octet-stream', data: pseudoRandomBytes(size, n).toString('base64') }],
      };
      // While the broker is away mqtt.js keeps the request and publishes it on reconnect: the
      // stream does not wait for that; confirmation is the status on mmsd/message/<id>.
      const puback = mq.publishAsync(`${BASE_TOPIC}/send`, JSON.stringify(request), { qos: 1 }).then(
        () => undefined,
        () => undefined,
      );
      await Promise.race([puback, sleep(5000)]);
    };

    const resubmitted: Record<Door, number> = { dbus: 0, mqtt: 0 };
    const submitOne = async (id: string): Promise<void> => {
      const door = doors.get(id) ?? 'dbus';
      if (submitted.has(id)) resubmitted[door]++;
      await (door === 'mqtt' ? submitMqtt(id) : submitDbus(id));
    };
    // An unconfirmed D-Bus call is made again at once (it failed); an MQTT request only once its
    // answer is overdue, not on every round while it waits in the broker or the daemon is away.
    const resendDue = (id: string, gapMs: number): boolean =>
      doors.get(id) !== 'mqtt' || performance.now() - (lastPublished.get(id) ?? 0) >= gapMs;

    const submitter = (async () => {
      while (performance.now() < endAt) {
        const id = `soak-${seed}-${n++}`;
        doors.set(id, rs() < 0.5 ? 'mqtt' : 'dbus');
        await submitOne(id);
        for (const [uid, ok] of submitted) if (!ok && uid !== id && resendDue(uid, 10_000)) await submitOne(uid);
        await sleep(1000 / perSecond);
      }
    })();

    // A daemon at ≥ 80 % of a core for three samples in a row is in a loop: recorded once per
    // stretch, with a heap snapshot the first time (what a climbing RSS holds) and the sim's CPU
    // beside it (both busy: the two are talking in circles).
    const busy: BusyEpisode[] = [];
    let busyRun: RssSample[] = [];
    const watchBusy = (d: ProcessHandle, now: RssSample): void => {
      const prev = rssSamples.at(-2);
      const rate = prev && prev.incarnation === now.incarnation ? ((now.cpuS ?? 0) - (prev.cpuS ?? 0)) / (now.atS - prev.atS) : 0;
      if (rate < BUSY_RATE) {
        busyRun = [];
        return;
      }
      busyRun.push(now);
      if (busyRun.length !== BUSY_SAMPLES) return;
      const first = rssSamples[rssSamples.indexOf(busyRun[0]) - 1] ?? busyRun[0];
      const span = now.atS - first.atS;
      const episode: BusyEpisode = {
        atS: first.atS,
        incarnation: now.incarnation,
        cpuRate: round(((now.cpuS ?? 0) - (first.cpuS ?? 0)) / span, 2),
        simCpuRate: round(((now.simCpuS ?? 0) - (first.simCpuS ?? 0)) / span, 2),
        rssKb: now.kb,
      };
      if (busy.length === 0) {
        process.kill(d.pid, 'SIGUSR2');
        episode.snapshot = join(snapDir, `Heap.*.${d.pid}.*.heapsnapshot`);
      }
      busy.push(episode);
      log(`daemon busy: ${episode.cpuRate} CPU-s/s (sim ${episode.simCpuRate}), RSS ${(now.kb / 1024).toFixed(0)} MiB${episode.snapshot ? `; heap snapshot ${episode.snapshot}` : ''}`);
    };

    const sampler = (async () => {
      while (performance.now() < endAt) {
        const d = tb.daemon;
        if (d?.running) {
          if (d.pid !== lastPid) {
            incarnation++;
            lastPid = d.pid;
          }
          try {
            // A process that died but was not reaped yet has no VmRSS (NaN): no sample.
            // CPU seconds beside the RSS: a climb with the CPU busy is a loop, with it idle a lazy GC.
            const kb = procStatus(d.pid).rssKb;
            if (Number.isFinite(kb)) {
              const sample = { atS: round((performance.now() - t0) / 1000, 1), kb, incarnation, cpuS: round(cpuSeconds(d.pid), 2), simCpuS: round(cpuSeconds(tb.sim.pid), 2) };
              rssSamples.push(sample);
              watchBusy(d, sample);
            }
          } catch {
            // Killed between the check and the read.
          }
        }
        await sleep(5000);
      }
    })();

    const total = FAULTS.reduce((s, f) => s + f.weight, 0);
    const chooseFault = (): Fault => {
      let x = r() * total;
      for (const f of FAULTS) if ((x -= f.weight) < 0) return f;
      return FAULTS[0];
    };
    let restarts = 0;
    const crashes: Crash[] = [];
    // A daemon that died without the soak's SIGKILL is a crash: recorded, then restarted (the
    // unit's Restart=on-failure). Checked before each fault, so it is down for at most one gap.
    const restartIfCrashed = async (): Promise<void> => {
      const d = tb.daemon;
      if (!d || d.running) return;
      const { code, signal } = await d.exited;
      if (code === 0 || signal === 'SIGKILL' || signal === 'SIGTERM') return;
      crashes.push({ atS: round((performance.now() - t0) / 1000, 1), incarnation: tb.daemons.indexOf(d), code, signal, why: crashReason(d) });
      log(`daemon crashed (${code ?? signal}): ${crashes.at(-1)!.why}`);
      await tb.startDaemon();
      restarts++;
    };
    await sleep(3000);
    while (performance.now() < endAt - 5000) {
      await restartIfCrashed();
      const f = chooseFault();
      const atS = round((performance.now() - t0) / 1000, 1);
      try {
        const detail = await f.run(tb, r, { broker });
        // The control API's {"ok": true} says nothing: keep only what the fault chose.
        const chosen = typeof detail === 'object' && detail !== null && 'ok' in detail ? undefined : detail;
        faultLog.push({ atS, kind: f.kind, ...(chosen !== undefined ? { detail: chosen } : {}) });
        if (f.kind === 'sigkill') restarts++;
        log(`${f.kind} ${chosen !== undefined ? JSON.stringify(chosen) : ''}`);
      } catch (err) {
        faultLog.push({ atS, kind: f.kind, detail: `fault failed: ${(err as Error).message}` });
        log(`${f.kind} failed: ${(err as Error).message}`);
        await restartIfCrashed();
        if (!tb.daemon?.running) {
          await tb.startDaemon();
          restarts++;
        }
        if (!broker.running) await broker.restart();
      }
      await sleep(between(r, faultEveryS * 500, faultEveryS * 1500));
    }
    await submitter;
    await sampler;

    // Calm: no faults in force, every unconfirmed submission made again, then drain.
    log('faults off, draining');
    await tb.fault({ sim: 'ready', registration: 1, hold: false, delayMs: 0, mmsc: {} });
    await restartIfCrashed();
    if (!tb.daemon?.running) await tb.startDaemon();
    if (!broker.running) await broker.restart();
    // The daemon's own reconnect backs off (1 s doubling) after a broker restart: give the
    // MQTT answers up to a minute.
    const confirmEnd = performance.now() + 60_000;
    while (performance.now() < confirmEnd && [...submitted.values()].some((ok) => !ok)) {
      for (const [uid, ok] of submitted) if (!ok && resendDue(uid, 5000)) await submitOne(uid);
      if ([...submitted.values()].some((ok) => !ok)) await sleep(1000);
    }
    const drainEnd = performance.now() + drainS * 1000;
    let list: { props: { Id: string; Status: Status; Error: string } }[] = [];
    while (performance.now() < drainEnd) {
      list = await c.list().catch(() => list);
      const busy = list.filter((m) => m.props.Status === 'queued' || m.props.Status === 'sending');
      if (busy.length === 0 && list.length >= [...submitted.values()].filter(Boolean).length) break;
      await sleep(2000);
    }
    list = await c.list();
    // Let a clean-up in progress finish before looking at the module's RAM.
    await sleep(2000);
    const received = await tb.received();
    const sim = await tb.simState();
    const daemonPid = tb.daemon!.pid;
    const rssEnd = procStatus(daemonPid).rssKb;
    rssSamples.push({ atS: round((performance.now() - t0) / 1000, 0), kb: rssEnd, incarnation });
    // The last daemon must stop cleanly on SIGTERM too.
    const last = tb.daemon!;
    const end = await last.stop();
    if (end.code !== 0) crashes.push({ atS: round((performance.now() - t0) / 1000, 1), incarnation: tb.daemons.indexOf(last), ...end, why: `SIGTERM did not end it cleanly: ${crashReason(last)}` });
    const spool = readSpool(tb.stateDir);

    const report = account({
      minutes,
      seed,
      submitted,
      doors,
      resubmitted,
      mqttRejected: mqttRejected.size,
      list: list.map((m) => m.props),
      received: received.map((m) => m.subject ?? ''),
      ramFiles: (sim.ramFiles as { name: string }[]).map((f) => f.name),
      spool,
      faultLog,
      rssSamples,
      restarts,
      crashes,
      busy,
    });
    print(report);
    if (nodeArgs.length > 0) console.log(`daemon node options          ${nodeArgs.join(' ')}`);
    await mkdir(RESULTS, { recursive: true });
    const stem = join(RESULTS, `soak-${new Date().toISOString().replace(/:/g, '-').replace(/\..*/, '')}`);
    await writeFile(`${stem}.json`, `${JSON.stringify({ ...report, daemonNodeArgs: nodeArgs }, null, 2)}\n`);
    console.log(`results in ${stem}.json`);
    const clean =
      report.lost === 0 &&
      report.duplicatesOutsideUnknown === 0 &&
      report.ramFilesLeaked === 0 &&
      report.sentNotReceived === 0 &&
      report.failedButReceived === 0 &&
      report.mqttRejected === 0 &&
      report.crashes.length === 0 &&
      report.busy.length === 0;
    if (!clean || report.pending > 0 || values['save-logs']) {
      // Every daemon process's log (a duplicate or a loss may lie long before the end), the
      // sim's log and the module's state, for whoever looks into it.
      const all = tb.daemons.flatMap((d, i) => d.lines.map((l) => JSON.stringify({ incarnation: i, ...l })));
      await writeFile(`${stem}.daemon-all.log`, `${all.join('\n')}\n`);
      await writeFile(`${stem}.sim.log`, `${tb.sim.lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
      await writeFile(`${stem}.sim-state.json`, `${JSON.stringify({ ...sim, transcript: (sim.transcript as string[]).slice(-200) }, null, 2)}\n`);
      console.log(`every daemon's log, the sim's log and the module's state are beside it (${stem}.*)`);
    }
    process.exitCode = clean ? 0 : 1;
  } finally {
    client?.close();
    await mqttClient?.endAsync(true).catch(() => undefined);
    await tb.stop();
    await broker.dispose();
    // Kept only when a busy episode left a snapshot in it.
    await rmdir(snapDir).catch(() => undefined);
  }
}


main().catch((err: Error) => {
  console.error(`soak failed: ${err.stack ?? err.message}`);
  process.exit(1);
});
