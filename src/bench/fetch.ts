// Fetching a received message (DESIGN.md §12 "Fetching", issue 19): the module driver's
// QuectelHttp.fetch (AT+QHTTPURL, AT+QHTTPGET through the proxy, AT+QHTTPREADFILE, AT+QFLDS,
// AT+QFDWL, AT+QFDEL) against mmsd-sim's HTTP stack and the loopback MMSC holding a message for the
// gateway (POST /receive), over the sim's throttled line, as a ratio to the wire time of the bytes
// that crossed it (target ≤ 1.10 at 115,200 baud). Beside it, the testbed's floor: a bare client's
// AT+QFDWL of a file of the same size on the same line (wire.ts's bare line).
import { pino } from 'pino';
import { AtChannel } from '../at/channel.js';
import { createTransport } from '../at/transport.js';
import { Testbed } from '../harness/testbed.js';
import { pseudoRandomBytes } from '../harness/random.js';
import { QuectelHttp } from '../modem/http.js';
import { ModuleSession } from '../modem/session.js';
import { upload } from '../modem/qfupl.js';
import { round } from './common.js';
import { openBareLine, wireMsOf, type Link } from './wire.js';

export interface FetchResult {
  baud: number;
  link: Link;
  /** The attachment's size; `messageBytes` is the M-Retrieve.conf the MMSC serves for it. */
  attachmentBytes: number;
  messageBytes: number;
  /** The median fetch: fetch() called to its body returned, ms. */
  fetchMs: number;
  /** Bytes on the line during that fetch, each way (the sim's own count). */
  bytesToModem: number;
  bytesFromModem: number;
  wireMs: number;
  /** fetchMs / wireMs per measured fetch, and their median (the headline figure). */
  ratios: number[];
  ratio: number;
  /** AT commands the driver sent for one fetch (a measured one: the module holds the HTTP settings by then). */
  commands: string[];
  /** AT commands of the first fetch after start-up (the warm-up), which writes the settings. */
  firstFetchCommands: string[];
  /** A bare client's AT+QFDWL of as many bytes on the same line: its time and wire time, ms. */
  floorMs: number;
  floorWireMs: number;
}

/** Fetches measured after one warm-up; the median is reported. */
const FETCHES = 3;

interface LineCount {
  rx: number;
  tx: number;
}

async function control(tb: Testbed, route: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${tb.simInfo.control}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`sim ${route}: HTTP ${res.status} ${JSON.stringify(json)}`);
  return json;
}

export async function measureFetch(baud = 115_200, link: Link = 'pty', attachmentBytes = 300 * 1000): Promise<FetchResult> {
  const tb = await Testbed.start({ daemon: false, tcp: link === 'tcp', simArgs: ['--baud', String(baud)] });
  const log = pino({ level: 'silent' });
  const ch = new AtChannel({ openTransport: () => createTransport(tb.simInfo.port, 115200), logger: log, reopenMinMs: 100, reopenMaxMs: 500 });
  try {
    const connected = new Promise<void>((resolve) => ch.once('connected', () => resolve()));
    await ch.start();
    if (!ch.isConnected) await connected;
    await ch.command('ATE0');
    await ch.command('AT+CMEE=1');
    await ch.command('AT+QICSGP=1,1,"mms","",1');
    await ch.command('AT+QIACT=1', { timeoutMs: 150_000 });
    const session = new ModuleSession();
    const http = new QuectelHttp({ at: ch, logger: log, contextId: 1, session });
    const mmsc = new URL(tb.simInfo.mmsc);
    const proxy = { host: mmsc.hostname, port: Number(mmsc.port) };
    const line = async (): Promise<LineCount> => (await tb.simState()).line as LineCount;
    const transcript = async (): Promise<string[]> => (await tb.simState()).transcript as string[];

    /** A message for the gateway, its notification's +CMTI read off the line before the clock starts. */
    const receive = async (size: number, seed: number): Promise<{ contentLocation: string; size: number }> => {
      const cmti = new Promise<void>((resolve) => {
        const off = ch.onUrc('+CMTI:', () => {
          off();
          resolve();
        });
      });
      const data = pseudoRandomBytes(size, seed).toString('base64');
      const r = await control(tb, '/receive', { from: '+4917012345678', subject: 'bench', parts: [{ name: 'p.jpg', contentType: 'image/jpeg', data }] });
      await cmti;
      return { contentLocation: String(r.contentLocation), size: Number(r.size) };
    };
    const fetchOne = async (size: number, seed: number): Promise<{ ms: number; out: number; in: number; messageBytes: number; commands: string[] }> => {
      const m = await receive(size, seed);
      const before = await line();
      const from = (await transcript()).length;
      const t0 = performance.now();
      const body = await http.fetch(m.contentLocation, proxy, { maxBytes: 2 * 1024 * 1024 });
      const ms = performance.now() - t0;
      const after = await line();
      if (body.length !== m.size) throw new Error(`fetch bench: ${body.length} bytes fetched, the MMSC holds ${m.size}`);
      return { ms, out: after.rx - before.rx, in: after.tx - before.tx, messageBytes: body.length, commands: (await transcript()).slice(from) };
    };

    const warm = await fetchOne(1024, 1);
    const runs = [];
    for (let i = 0; i < FETCHES; i++) runs.push(await fetchOne(attachmentBytes, 100 + i));
    const ratios = runs.map((r) => round(r.ms / wireMsOf(r.out + r.in, baud), 3));
    const mid = [...ratios].sort((a, b) => a - b)[Math.floor(ratios.length / 2)];
    const median = runs[ratios.indexOf(mid)];
    const floor = await floorDownload(tb, ch, median.messageBytes, baud);
    return {
      baud,
      link,
      attachmentBytes,
      messageBytes: median.messageBytes,
      fetchMs: round(median.ms, 1),
      bytesToModem: median.out,
      bytesFromModem: median.in,
      wireMs: round(wireMsOf(median.out + median.in, baud), 1),
      ratios,
      ratio: mid,
      commands: median.commands,
      firstFetchCommands: warm.commands,
      floorMs: round(floor.ms, 1),
      floorWireMs: round(floor.wireMs, 1),
    };
  } finally {
    await ch.stop();
    await tb.stop();
  }
}

/**
 * A file of `size` bytes put into the module's RAM with the line unthrottled, then read back by a
 * bare client with AT+QFDWL at `baud`: what the testbed costs for the download alone. Stops `ch`
 * (the bare client needs the port).
 */
async function floorDownload(tb: Testbed, ch: AtChannel, size: number, baud: number): Promise<{ ms: number; wireMs: number }> {
  const data = pseudoRandomBytes(size, 9);
  await control(tb, '/fault', { lineRate: 0 });
  await upload(ch, `AT+QFUPL="RAM:floor.bin",${size},120,1`, data);
  await ch.stop();
  await control(tb, '/fault', { baud });
  const bare = await openBareLine(tb.simInfo.port);
  try {
    const cmd = 'AT+QFDWL="RAM:floor.bin"\r';
    const t0 = performance.now();
    await bare.write(cmd);
    // Only the tail is looked at: the body is 300 KB of arbitrary bytes.
    await bare.expect((s) => /\+QFDWL: \d+,[0-9a-f]+\r\n(?:\r\n)?OK\r\n$/i.test(s.slice(-60)), '+QFDWL result');
    const ms = performance.now() - t0;
    const got = bare.rx.length;
    bare.reset();
    await bare.write('AT+QFDEL="RAM:floor.bin"\r');
    await bare.expect((s) => s.includes('OK\r\n'), 'OK to AT+QFDEL');
    return { ms, wireMs: wireMsOf(cmd.length + got, baud) };
  } finally {
    await bare.close();
  }
}
