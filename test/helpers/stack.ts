// The whole installation for end-to-end tests: Testbed (mmsd-sim + loopback MMSC + private bus +
// the real mmsd process) plus a D-Bus client on that bus.
import { createHash } from 'node:crypto';
import { MmsClient, type MessageProperties } from '../../src/api/dbus/client.js';
import { Testbed, type LogLine, type TestbedOptions } from '../../src/harness/testbed.js';
import { until } from '../../src/harness/wait.js';

export { until };

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

export interface Stack {
  tb: Testbed;
  client: MmsClient;
  /** Follows a message to a final state. */
  final(path: string): Promise<MessageProperties>;
  stop(): Promise<void>;
}

export async function startStack(opts: TestbedOptions = {}): Promise<Stack> {
  const tb = await Testbed.start({ dbus: true, ...opts });
  let client: MmsClient;
  try {
    client = await MmsClient.connect('session', tb.bus!.address);
  } catch (err) {
    await tb.stop();
    throw err;
  }
  return {
    tb,
    client,
    final: (path) => client.follow(path, () => undefined),
    stop: async () => {
      client.close();
      await tb.stop();
    },
  };
}

/** The AT commands the sim received, in order (upload data excluded). */
export async function transcript(tb: Testbed): Promise<string[]> {
  const st = (await tb.simState()) as { transcript?: string[] };
  return st.transcript ?? [];
}

/** Bytes that look like an image and are not compressible: deterministic pseudo-random. */
export function pseudoImage(size: number, seed = 7): Buffer {
  const b = Buffer.alloc(size);
  let x = seed >>> 0;
  for (let i = 0; i < size; i++) {
    x = (x * 1664525 + 1013904223) >>> 0;
    b[i] = x >>> 24;
  }
  b.set([0xff, 0xd8, 0xff, 0xe0], 0); // JPEG SOI + APP0
  return b;
}

// --- helpers for the fault, crash and lifecycle tests (issue 4 "Tests") ---

/** Rejects with `what` when `p` has not settled within `ms`. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Follows a message to a final state within `ms`. */
export function finalWithin(s: Stack, path: string, ms = 30_000): Promise<MessageProperties> {
  return within(s.final(path), ms, `a final state of ${path}`);
}

/** The part of the sim's GET /state the tests read. */
export interface SimStateView {
  sim: string;
  ramFiles: { name: string; size: number }[];
  sendCommands: number;
  sendsAccepted: number;
  sending: boolean;
  hold: boolean;
  boots: number;
  mode: string;
  transcript: string[];
}

export async function simView(tb: Testbed): Promise<SimStateView> {
  return (await tb.simState()) as unknown as SimStateView;
}

/** How many commands of the transcript match `re`. */
export function countAt(lines: readonly string[], re: RegExp): number {
  return lines.filter((l) => re.test(l)).length;
}

/** How many messages the loopback MMSC received with this subject. */
export async function receivedWithSubject(tb: Testbed, subject: string): Promise<number> {
  return (await tb.received()).filter((m) => m.subject === subject).length;
}

/** Polls the message's properties until `pred` holds; resolves with them. */
export function waitForProps(
  client: MmsClient,
  id: string,
  pred: (p: MessageProperties) => boolean,
  ms: number,
  what: string,
  everyMs = 25,
): Promise<MessageProperties> {
  return until(async () => {
    const p = await client.show(id);
    return pred(p) ? p : undefined;
  }, ms, what, everyMs);
}

/** The sender's log lines about one message with the given `msg` ('sending', 'send result' …). */
export function senderLines(tb: Testbed, id: string, msg: string): LogLine[] {
  return (tb.daemon?.lines ?? []).filter((l) => l.msg === msg && l.id === id);
}

/** A small deterministic PRNG (mulberry32) for reproducible "random" test schedules. */
export { mulberry32 as prng } from '../../src/harness/random.js';
