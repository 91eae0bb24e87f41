// Send time over a throttled line against the wire time of the bytes that crossed it (DESIGN.md §8,
// target ≤ 1.10), where the time goes, and AT round trips per message against the spec's minimum.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MmsClient } from '../api/dbus/client.js';
import { checksum16 } from '../at/checksum.js';
import { LOG_EVENTS } from '../core/log-events.js';
import { createTransport } from '../at/transport.js';
import { Testbed, type LogLine } from '../harness/testbed.js';
import { pseudoRandomBytes } from '../harness/random.js';
import { until } from '../harness/wait.js';
import { StatusWatcher, lineTime, round } from './common.js';

/**
 * How the daemon reaches the virtual modem: a pty pair (through socat and the serialport binding,
 * as a USB serial port), or raw TCP (as a serial server, ser2net, or `modem.port: tcp://…`).
 * Both pace the bytes at `baud` in the sim; they differ in what a turnaround costs.
 */
export type Link = 'pty' | 'tcp';

export interface WireResult {
  baud: number;
  link: Link;
  /** modem.uploadWindow the daemon ran with, and the floor's bare client used. */
  window: number;
  attachmentBytes: number;
  /** Submission (D-Bus call made) to Status `sent` seen on D-Bus, ms. */
  totalMs: number;
  /** Bytes that crossed the line from submission to `sent`, each way. */
  bytesToModem: number;
  bytesFromModem: number;
  /** (bytesToModem + bytesFromModem) × 10 / baud. */
  wireMs: number;
  /** totalMs / wireMs for the one message sent with the daemon logging at debug (for the phases). */
  ratio: number;
  /**
   * The same ratio with the daemon at its default log level (info), for INFO_MESSAGES messages in a
   * row after a warm-up, bytes counted by the sim; and their median, the headline figure. Debug
   * logging costs the daemon two log lines per 1 KiB block, which users do not pay.
   */
  ratiosInfo: number[];
  ratioInfo: number;
  /** Where the time went (ms): see PHASES. */
  phases: Record<string, number>;
  /** Upload of the same file by a bare client on the same virtual line (no daemon): the testbed's floor. */
  floorUploadMs: number;
  floorUploadWireMs: number;
  /** Round trips the daemon made for the message (submission to clean-up done). */
  atRoundTrips: number;
  /** The same for the first message after the daemon started (sent before the measured one). */
  firstMessageRoundTrips: number;
  atMinimum: number;
  commands: string[];
}

/**
 * The phases, by the daemon's own log: `submit` D-Bus call until the outbox has it; `queue` until
 * the first AT command; `prepare` AT+QMMSEDIT=0 and the journal; `upload` AT+QFUPL to its final
 * answer; `edit` the edit commands; `mmsc` AT+QMMSEND to its +QMMSEND result; `report` the result
 * to the `sent` signal on the client's side.
 */
export const PHASES = ['submit', 'queue', 'prepare', 'upload', 'edit', 'mmsc', 'report'] as const;

/** Bytes a logged AT exchange put on the line (echo off: ATE0 is part of the start-up). */
function lineBytes(l: LogLine): { out: number; in: number } {
  if (l.part !== 'at') return { out: 0, in: 0 };
  if (l.msg === LOG_EVENTS.tx && typeof l.at === 'string') return { out: Buffer.byteLength(l.at) + 1, in: 0 };
  if (l.msg === LOG_EVENTS.txData && typeof l.bytes === 'number') return { out: l.bytes, in: 0 };
  if (l.msg === LOG_EVENTS.rx && typeof l.line === 'string') {
    // The module's ACK is a bare "A"; every other line is framed "\r\n<line>\r\n".
    return { out: 0, in: l.line === 'A' ? 1 : Buffer.byteLength(l.line) + 4 };
  }
  return { out: 0, in: 0 };
}

/** A command of the message (not a health poll that fell into its time): files and MMS. */
const isMessageCommand = (c: string): boolean => /^AT\+Q(MMS|FUPL|FDEL|FLST|FLDS)/.test(c);

/** The spec's minimum for one message with these parts: clear, per file upload + add, per address, subject, send, delete. */
export function minimumRoundTrips(m: { addresses: number; subject: boolean; files: number }): number {
  return 1 + m.files * 2 + m.addresses + (m.subject ? 1 : 0) + 1 + m.files;
}

/** Messages measured at the daemon's default log level; the median is reported. */
const INFO_MESSAGES = 3;

export async function measureWire(baud: number, link: Link = 'pty', window = 1, attachmentBytes = 100 * 1024): Promise<WireResult> {
  const ratiosInfo = await ratiosAtInfo(baud, link, window, attachmentBytes);
  const sorted = [...ratiosInfo].sort((a, b) => a - b);
  const detail = await measureWithPhases(baud, link, window, attachmentBytes);
  return { ...detail, window, ratiosInfo, ratioInfo: sorted[Math.floor(sorted.length / 2)] };
}

/**
 * The sim at `baud` over `link`, the daemon logging at `logLevel`. The module's radio time per
 * send (mmsd-sim's --send-delay-ms, 50 ms by default) is neither the line's nor the daemon's: 0
 * here, as for throughput ("0 ms MMSC").
 */
function startBed(baud: number, link: Link, window: number, logLevel: 'info' | 'debug'): Promise<Testbed> {
  return Testbed.start({
    dbus: true,
    tcp: link === 'tcp',
    simArgs: ['--baud', String(baud), '--send-delay-ms', '0'],
    config: { modem: { uploadWindow: window } },
    logLevel,
  });
}

/**
 * Writes `size` pseudo-random bytes to a file in the daemon's incoming dir and sends it with
 * SendMessage (a path: SendMessageData would add dbus-next's client-side marshalling, about 1 ms
 * per KiB); resolves with the message's id, the ms from the call to `sent` and when the call was made.
 */
async function sendFile(
  tb: Testbed,
  client: MmsClient,
  watcher: StatusWatcher,
  m: { size: number; seed: number; subject: string },
): Promise<{ id: string; ms: number; wallStart: number }> {
  const file = join(tb.incomingDir, `${m.subject}-${m.seed}.jpg`);
  await writeFile(file, pseudoRandomBytes(m.size, m.seed));
  const wallStart = Date.now();
  const t0 = performance.now();
  const path = await client.sendPaths({ to: ['+15551234567'], subject: m.subject }, [{ path: file, contentType: 'image/jpeg' }]);
  const id = path.slice(path.lastIndexOf('/') + 1);
  await watcher.until(() => watcher.latest.get(id) === 'sent' || watcher.latest.get(id) === 'failed', 600_000, `${m.subject} sent`);
  const ms = performance.now() - t0;
  if (watcher.latest.get(id) !== 'sent') throw new Error(`wire benchmark message ended ${watcher.latest.get(id)}`);
  return { id, ms, wallStart };
}

/** Submission to `sent` over the wire time of what crossed the line, per message, at log level info. */
async function ratiosAtInfo(baud: number, link: Link, window: number, attachmentBytes: number): Promise<number[]> {
  const tb = await startBed(baud, link, window, 'info');
  try {
    await tb.modemReady();
    const watcher = await StatusWatcher.connect(tb.bus!.address);
    const client = await MmsClient.connect('session', tb.bus!.address);
    type LineCount = { rx: number; tx: number; atLastSendResult: { rx: number; tx: number } | null };
    const line = async (): Promise<LineCount> => (await tb.simState()).line as LineCount;
    /** Sends one message of `size` bytes; resolves once it is `sent` and the module's RAM is empty again. */
    const send = async (size: number, seed: number): Promise<number> => {
      const before = await line();
      const { ms } = await sendFile(tb, client, watcher, { size, seed, subject: 'wire' });
      const at = (await line()).atLastSendResult;
      if (!at) throw new Error('the sim recorded no +QMMSEND result');
      const bytes = at.rx - before.rx + (at.tx - before.tx);
      // Clean-up (AT+QMMSEDIT=0, AT+QFDEL) runs after `sent`: let it finish before the next one.
      await until(async () => ((await tb.simState()).ramFiles as unknown[]).length === 0, 30_000, 'clean-up', 20);
      return ms / ((bytes * 10 * 1000) / baud);
    };
    try {
      await send(1024, 1);
      const ratios: number[] = [];
      for (let i = 0; i < INFO_MESSAGES; i++) ratios.push(round(await send(attachmentBytes, baud + i), 3));
      return ratios;
    } finally {
      client.close();
      watcher.close();
    }
  } finally {
    await tb.stop();
  }
}

/** One message with the daemon at debug: the ratio, where the time went, the AT round trips, the floor. */
async function measureWithPhases(baud: number, link: Link, window: number, attachmentBytes: number): Promise<Omit<WireResult, 'ratiosInfo' | 'ratioInfo' | 'window'>> {
  const tb = await startBed(baud, link, window, 'debug');
  try {
    await tb.modemReady();
    const floor = await floorUpload(tb, attachmentBytes, baud, window);
    const watcher = await StatusWatcher.connect(tb.bus!.address);
    const client = await MmsClient.connect('session', tb.bus!.address);
    try {
      const daemon = tb.daemon!;
      /** The message's clean-up ends with the OK to AT+QFDEL, logged after line `from`. */
      const cleanedUp = (from: number, what: string): Promise<LogLine> => {
        const earlier = new Set(daemon.lines.slice(0, from));
        return daemon.waitFor((l) => !earlier.has(l) && l.part === 'at' && l.msg === LOG_EVENTS.rx && l.line === 'OK' && String(l.at).startsWith('AT+QFDEL'), 30_000, what);
      };
      // The first message after a start pays for what the driver cannot know yet (whether the
      // module's edit buffer is empty): a small one goes first and is counted apart, so that the
      // measured message shows the steady state.
      const warmFrom = ((await tb.simState()).transcript as string[]).length;
      const warmFromLine = daemon.lines.length;
      await sendFile(tb, client, watcher, { size: 1024, seed: 1, subject: 'warm-up' });
      await cleanedUp(warmFromLine, 'warm-up clean-up');
      const afterWarm = (await tb.simState()).transcript as string[];
      const transcriptFrom = afterWarm.length;
      const firstMessageRoundTrips = afterWarm.slice(warmFrom).filter(isMessageCommand).length;
      const from = daemon.lines.length;
      const { ms: totalMs, wallStart } = await sendFile(tb, client, watcher, { size: attachmentBytes, seed: baud, subject: 'wire' });
      const wallEnd = wallStart + totalMs;
      // Clean-up (AT+QMMSEDIT=0, AT+QFDEL) runs after `sent`: wait for it before counting.
      await cleanedUp(from, 'clean-up');
      const lines = daemon.lines.slice(from);
      const commands = ((await tb.simState()).transcript as string[]).slice(transcriptFrom).filter(isMessageCommand);

      // Bytes on the line until the +QMMSEND result (what `sent` waited for).
      const isResult = (l: LogLine): boolean => l.part === 'at' && l.msg === LOG_EVENTS.rx && String(l.line).startsWith('+QMMSEND:');
      const resultIdx = lines.findIndex(isResult);
      let out = 0;
      let inb = 0;
      for (const l of lines.slice(0, resultIdx + 1)) {
        const b = lineBytes(l);
        out += b.out;
        inb += b.in;
      }
      const wireMs = ((out + inb) * 10 * 1000) / baud;

      const t = (pred: (l: LogLine) => boolean): number => {
        const l = lines.find(pred);
        return l ? lineTime(l) : NaN;
      };
      const queued = t((l) => l.part === 'outbox' && l.msg === LOG_EVENTS.messageQueued);
      const tx = (l: LogLine, prefix: string): boolean => l.part === 'at' && l.msg === LOG_EVENTS.tx && String(l.at).startsWith(prefix);
      // The first AT command, and the first upload's command line (its data follows as `tx data`).
      const firstAt = t((l) => tx(l, 'AT'));
      const uploadStart = t((l) => tx(l, 'AT+QFUPL='));
      const uploadEnd = t((l) => l.part === 'at' && l.msg === LOG_EVENTS.rx && String(l.line).startsWith('+QFUPL:'));
      const sendStart = t((l) => tx(l, 'AT+QMMSEND'));
      const result = t(isResult);
      const phases: Record<string, number> = {
        submit: queued - wallStart,
        queue: firstAt - queued,
        prepare: uploadStart - firstAt,
        upload: uploadEnd - uploadStart,
        edit: sendStart - uploadEnd,
        mmsc: result - sendStart,
        report: wallEnd - result,
      };
      return {
        baud,
        link,
        attachmentBytes,
        totalMs: round(totalMs, 1),
        bytesToModem: out,
        bytesFromModem: inb,
        wireMs: round(wireMs, 1),
        ratio: round(totalMs / wireMs, 3),
        phases,
        floorUploadMs: round(floor.ms, 1),
        floorUploadWireMs: round(floor.wireMs, 1),
        atRoundTrips: commands.length,
        firstMessageRoundTrips,
        atMinimum: minimumRoundTrips({ addresses: 1, subject: true, files: 1 }),
        commands,
      };
    } finally {
      client.close();
      watcher.close();
    }
  } finally {
    await tb.stop();
  }
}

/** A raw line to the module without the AT channel: the simplest possible host, for floors. */
export interface BareLine {
  /** Everything read since the last reset() (latin1). */
  readonly rx: string;
  reset(): void;
  write(b: Buffer | string): Promise<void>;
  /** Resolves once `pred` holds over what was read; rejects after 60 s naming what came. */
  expect(pred: (s: string) => boolean, what?: string): Promise<void>;
  close(): Promise<void>;
}

/** Opens the daemon's own transport (serial through the binding, or TCP) to `portPath`, echo off. */
export async function openBareLine(portPath: string): Promise<BareLine> {
  const port = createTransport(portPath, 115200);
  await port.open();
  let rx = '';
  let waiter: { pred: (s: string) => boolean; resolve: () => void } | undefined;
  port.on('data', (b: Buffer) => {
    rx += b.toString('latin1');
    if (waiter?.pred(rx)) {
      const w = waiter;
      waiter = undefined;
      w.resolve();
    }
  });
  const line: BareLine = {
    get rx() {
      return rx;
    },
    reset: () => {
      rx = '';
    },
    write: (b) => port.write(typeof b === 'string' ? Buffer.from(b, 'latin1') : b),
    expect: (pred, what = 'an answer') =>
      new Promise((resolve, reject) => {
        if (pred(rx)) return resolve();
        const timer = setTimeout(() => reject(new Error(`bare line: no ${what}; got ${JSON.stringify(rx.slice(-80))}`)), 60_000);
        waiter = {
          pred,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        };
      }),
    close: () => port.close(),
  };
  await line.write('ATE0\r');
  await line.expect((t) => t.includes('OK\r\n'), 'OK to ATE0');
  line.reset();
  return line;
}

/** Wire time of `bytes` at `baud` (10 bits a byte: start, 8 data, stop), ms. */
export function wireMsOf(bytes: number, baud: number): number {
  return baud > 0 ? (bytes * 10 * 1000) / baud : 0;
}

/**
 * The same upload by the simplest possible host (command, 1024-byte blocks, `window` of them in
 * flight, an "A" lets the next go, final answer) on the same line, with the daemon stopped: what
 * the testbed itself costs.
 */
async function floorUpload(tb: Testbed, size: number, baud: number, window = 1): Promise<{ ms: number; wireMs: number }> {
  await tb.daemon!.stop();
  const line = await openBareLine(tb.simInfo.port);
  try {
    const data = pseudoRandomBytes(size, 7);
    const t0 = performance.now();
    const cmd = `AT+QFUPL="RAM:floor.bin",${size},60,1\r`;
    await line.write(cmd);
    await line.expect((s) => s.includes('CONNECT'), 'CONNECT');
    // Block k (0-based) may go once the "A"s of blocks up to k - window have come.
    const blocks = Math.ceil(size / 1024);
    for (let k = 0; k < blocks; k++) {
      const need = k - window + 1;
      if (need > 0) await line.expect((s) => (s.match(/A/g) ?? []).length >= need, `"A" ${need}`);
      await line.write(data.subarray(k * 1024, (k + 1) * 1024));
    }
    await line.expect((s) => /\+QFUPL: \d+,[0-9a-f]+\r\n\r\nOK\r\n/i.test(s), '+QFUPL result');
    const ms = performance.now() - t0;
    const answer = /\+QFUPL: (\d+),([0-9a-f]+)/i.exec(line.rx);
    if (!answer || Number(answer[1]) !== size || parseInt(answer[2], 16) !== checksum16(data)) throw new Error(`floor probe: bad upload answer ${JSON.stringify(line.rx.slice(-60))}`);
    const answerBytes = line.rx.length;
    line.reset();
    await line.write('AT+QFDEL="RAM:floor.bin"\r');
    await line.expect((s) => s.includes('OK\r\n'), 'OK to AT+QFDEL');
    return { ms, wireMs: wireMsOf(cmd.length + size + answerBytes, baud) };
  } finally {
    await line.close();
    await tb.startDaemon();
    await tb.modemReady();
  }
}
