// The whole installation for end-to-end tests: Testbed (mmsd-sim + loopback MMSC + private bus +
// the real mmsd process) plus a D-Bus client on that bus.
import { createHash } from 'node:crypto';
import { MmsClient, type MessageProperties } from '../../src/api/dbus/client.js';
import { Testbed, type TestbedOptions } from '../../src/sim/testbed.js';

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
