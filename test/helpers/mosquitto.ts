// MQTT helpers for the tests: the real mosquitto (src/harness/mosquitto.ts, shared with the soak), a
// recording test client, and runners for the documented command lines.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import type { Mosquitto } from '../../src/harness/mosquitto.js';
import { until as pollUntil } from '../../src/harness/wait.js';

export { Mosquitto, freePort, type MosquittoOptions } from '../../src/harness/mosquitto.js';

/** One message as a test client received it. */
export interface Received {
  topic: string;
  payload: Buffer;
  retain: boolean;
  correlationData?: Buffer;
}

/**
 * A test client (mqtt.js, MQTT 5) that records what it receives and lets a test wait for a
 * message matching a predicate, with a deadline.
 */
export class MqttObserver {
  readonly received: Received[] = [];
  private waiters: { pred: (m: Received) => boolean; resolve: (m: Received) => void }[] = [];

  private constructor(readonly client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      const m: Received = { topic, payload, retain: packet.retain };
      const cd = packet.properties?.correlationData;
      if (cd !== undefined) m.correlationData = Buffer.from(cd);
      this.received.push(m);
      this.waiters = this.waiters.filter((w) => {
        if (!w.pred(m)) return true;
        w.resolve(m);
        return false;
      });
    });
  }

  static async connect(url: string, topics: string[], opts: IClientOptions = {}): Promise<MqttObserver> {
    const client = await connectAsync(url, { protocolVersion: 5, reconnectPeriod: 200, ...opts });
    const observer = new MqttObserver(client);
    if (topics.length > 0) await client.subscribeAsync(topics, { qos: 1 });
    return observer;
  }

  /** JSON payloads received on `topic` (empty payloads skipped). */
  json(topic: string): Record<string, unknown>[] {
    return this.received.filter((m) => m.topic === topic && m.payload.length > 0).map((m) => JSON.parse(m.payload.toString()) as Record<string, unknown>);
  }

  /** The first message (already received or to come) matching `pred`. */
  async waitFor(pred: (m: Received) => boolean, timeoutMs = 15_000, what = 'message'): Promise<Received> {
    const seen = this.received.find(pred);
    if (seen) return seen;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`timed out waiting for ${what}; got ${this.received.length} messages: ${this.received.slice(-5).map((m) => `${m.topic} ${m.payload.toString().slice(0, 120)}`).join(' | ')}`));
      }, timeoutMs);
      const done = (m: Received): void => {
        clearTimeout(timer);
        resolve(m);
      };
      this.waiters.push({ pred, resolve: done });
    });
  }

  /** Waits for a JSON payload on `topic` whose fields include `fields`. */
  async waitForJson(topic: string, fields: Record<string, unknown>, timeoutMs = 15_000): Promise<Record<string, unknown>> {
    const m = await this.waitFor(
      (r) => r.topic === topic && r.payload.length > 0 && matches(JSON.parse(r.payload.toString()), fields),
      timeoutMs,
      `${topic} ${JSON.stringify(fields)}`,
    );
    return JSON.parse(m.payload.toString()) as Record<string, unknown>;
  }

  async end(): Promise<void> {
    await this.client.endAsync(true);
  }
}

function matches(value: unknown, fields: Record<string, unknown>): boolean {
  if (typeof value !== 'object' || value === null) return false;
  return Object.entries(fields).every(([k, v]) => JSON.stringify((value as Record<string, unknown>)[k]) === JSON.stringify(v));
}

/** Runs a program to its end, collecting its output. */
function capture(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.once('error', reject);
    p.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs mosquitto_pub (or another client tool) and resolves with its exit code and output. */
export function runTool(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return capture(cmd, args);
}

// ---- additions for the end-to-end tests (mqtt-e2e, mqtt-fleet-e2e) ----

/** Polls `cond` until it holds; throws naming `what` after `timeoutMs` (the stack's until, argument order of these tests). */
export async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  await pollUntil(async () => (await cond()) || undefined, timeoutMs, what, 25);
}

/**
 * Writes mosquitto_pub's and mosquitto_sub's per-user option files under `xdgDir` (read from
 * $XDG_CONFIG_HOME) so that the CLI tools, run without -h/-p, talk to `broker`; returns the
 * environment to run them with. This lets documented commands run verbatim.
 */
export async function cliEnvFor(broker: Mosquitto, xdgDir: string): Promise<NodeJS.ProcessEnv> {
  await mkdir(xdgDir, { recursive: true });
  for (const tool of ['mosquitto_pub', 'mosquitto_sub', 'mosquitto_rr']) {
    await writeFile(join(xdgDir, tool), `-h 127.0.0.1\n-p ${broker.port}\n`);
  }
  return { ...process.env, XDG_CONFIG_HOME: xdgDir };
}

/** Runs one shell command line to its end. */
export function runShell(
  line: string,
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return capture('bash', ['-c', line], opts);
}

/** A long-running shell command line (a subscriber) whose output accumulates in `text`. */
export class BackgroundShell {
  text = '';
  private constructor(private readonly proc: ChildProcess) {
    proc.stdout?.on('data', (d: Buffer) => (this.text += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (this.text += d.toString()));
  }

  /** Starts `line` in its own process group (so that stop() ends bash and its child together). */
  static start(line: string, opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): BackgroundShell {
    const proc = spawn('bash', ['-c', line], { cwd: opts.cwd, env: opts.env ?? process.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    return new BackgroundShell(proc);
  }

  async waitFor(needle: string, timeoutMs = 15_000): Promise<void> {
    await until(() => this.text.includes(needle), `${JSON.stringify(needle)} in the output of a background command; got: ${this.text.slice(-300)}`, timeoutMs);
  }

  async stop(): Promise<void> {
    const { proc } = this;
    if (proc.pid === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    process.kill(-proc.pid, 'SIGTERM');
    await exited;
  }
}
