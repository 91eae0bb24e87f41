// Receiving a message over a throttled line against the wire time of the bytes that crossed it
// (issue 17, DESIGN.md §12; target ≤ 1.10 at 115,200 baud): from the MMSC's push to the message
// `received` on D-Bus, the notification SMS, the fetch (QHTTPGET, QHTTPREADFILE, QFDWL) and the
// M-NotifyResp.ind included.
import { MmsClient } from '../api/dbus/client.js';
import { Testbed } from '../harness/testbed.js';
import { pseudoRandomBytes } from '../harness/random.js';
import { until } from '../harness/wait.js';
import { round } from './common.js';

export interface ReceiveResult {
  baud: number;
  messageBytes: number;
  /** The POST /receive made to the message `received` seen on D-Bus, ms. */
  totalMs: number;
  /** Bytes that crossed the line meanwhile, each way (counted by the sim). */
  bytesToModem: number;
  bytesFromModem: number;
  /** (bytesToModem + bytesFromModem) × 10 / baud. */
  wireMs: number;
  ratio: number;
  /** Each measured message's ratio; `ratio` is their median. */
  ratios: number[];
}

interface LineCount {
  rx: number;
  tx: number;
}

/** Receives `runs` messages of `bytes` (after a small warm-up one) at `baud`; the daemon logs at info. */
export async function measureReceive(baud = 115_200, bytes = 300 * 1024, runs = 3): Promise<ReceiveResult> {
  const tb = await Testbed.start({ dbus: true, simArgs: ['--baud', String(baud)], logLevel: 'info' });
  let client: MmsClient | undefined;
  try {
    await tb.modemReady(60_000);
    client = await MmsClient.connect('session', tb.bus!.address);
    const c = client;
    const line = async (): Promise<LineCount> => (await tb.simState()).line as LineCount;
    const one = async (subject: string, size: number): Promise<{ ms: number; rx: number; tx: number }> => {
      const before = await line();
      const t0 = performance.now();
      await tb.receive({ from: '+4917012345', subject, parts: [{ name: 'photo.jpg', contentType: 'image/jpeg', data: pseudoRandomBytes(size, size) }] });
      await until(async () => (await c.listReceived()).some((r) => r.props.Subject === subject && r.props.Status === 'received'), 600_000, `${subject} received`, 20);
      const ms = performance.now() - t0;
      const after = await line();
      return { ms, rx: after.rx - before.rx, tx: after.tx - before.tx };
    };
    await one('warm-up', 2_000);
    const measured = [];
    for (let i = 0; i < runs; i++) measured.push(await one(`bench-${i}`, bytes));
    const ratios = measured.map((m) => m.ms / (((m.rx + m.tx) * 10 * 1000) / baud));
    const order = ratios.map((r, i) => [r, i] as const).sort((a, b) => a[0] - b[0]);
    const mid = measured[order[Math.floor(order.length / 2)][1]];
    const wireMs = ((mid.rx + mid.tx) * 10 * 1000) / baud;
    return {
      baud,
      messageBytes: bytes,
      totalMs: round(mid.ms),
      bytesToModem: mid.rx,
      bytesFromModem: mid.tx,
      wireMs: round(wireMs),
      ratio: round(mid.ms / wireMs, 3),
      ratios: ratios.map((r) => round(r, 3)),
    };
  } finally {
    client?.close();
    await tb.stop();
  }
}
