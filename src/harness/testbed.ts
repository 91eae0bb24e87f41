// A whole mmsd installation in a temp dir, for the demo, the integration tests and the benchmarks:
// the virtual modem with its loopback MMSC (`mmsd-sim`), optionally a private D-Bus session bus,
// and the real `mmsd` process configured against them. Everything started is stopped by pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { LOG_EVENTS } from '../core/log-events.js';
import type { SimFaultRequest } from '../sim/control.js';
import type { SmsArrival } from '../sim/modem.js';
import type { SmsRequest } from '../sim/sms-request.js';
import type { AckRecord, InboundReceipt, InboxEntry } from '../sim/mmsc-inbox.js';
import type { ReceivedMessage } from '../sim/types.js';

// The built entry points (`npm run build`), whether this file runs from src/ (tests) or dist/.
const DIST = fileURLToPath(new URL('../../dist/', import.meta.url));
export const MMSD_BIN = join(DIST, 'cli/mmsd.js');
export const MMSCTL_BIN = join(DIST, 'cli/mmsctl.js');
export const SIM_BIN = join(DIST, 'cli/mmsd-sim.js');

export interface SimInfo {
  port: string;
  mmsc: string;
  control: string;
}

export interface TestbedOptions {
  /** Extra `mmsd-sim` arguments (e.g. ['--baud', '115200']). */
  simArgs?: string[];
  /** Serve the modem over tcp instead of a pty. */
  tcp?: boolean;
  /** Start a private D-Bus session bus and enable the daemon's D-Bus door on it. */
  dbus?: boolean;
  /** Enable the MQTT door against this broker URL. */
  mqttUrl?: string;
  /** Deep-merged over the generated daemon configuration. */
  config?: Record<string, unknown>;
  /**
   * DESIGN.md §10: configure no carrier key (no pdp.apn, mms.mmsc or mms.proxy), so that the
   * daemon takes them from the carrier database, and start the sim with `--network`, so that the
   * database's MMSC (a real operator's host) reaches the loopback MMSC. `config` still applies.
   */
  carrierFromDatabase?: boolean;
  /** Start the daemon (default true). */
  daemon?: boolean;
  /** Extra environment for the daemon. */
  env?: NodeJS.ProcessEnv;
  logLevel?: string;
  /** Node flags for the daemon process (e.g. ['--heapsnapshot-signal=SIGUSR2']), for the benchmarks. */
  daemonNodeArgs?: string[];
  /** Keep the daemon's stdout lines as written too (`ProcessHandle.raw`), for tests of the log format. */
  rawLog?: boolean;
}

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/** A child process whose stdout JSON lines are kept and can be waited on. */
export class ProcessHandle {
  readonly lines: LogLine[] = [];
  /** The stdout lines as written, when asked for (keepRaw). */
  readonly raw: string[] = [];
  readonly stderr: string[] = [];
  private waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    readonly name: string,
    readonly proc: ChildProcess,
    keepRaw = false,
  ) {
    if (proc.stdout) {
      createInterface({ input: proc.stdout }).on('line', (text) => {
        if (keepRaw) this.raw.push(text);
        let line: LogLine;
        try {
          line = JSON.parse(text) as LogLine;
        } catch {
          line = { level: 30, msg: text };
        }
        this.lines.push(line);
        this.waiters = this.waiters.filter((w) => {
          if (!w.pred(line)) return true;
          w.resolve(line);
          return false;
        });
      });
    }
    if (proc.stderr) createInterface({ input: proc.stderr }).on('line', (l) => this.stderr.push(l));
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Resolves with the first line (already seen or to come) matching `pred`. */
  waitFor(pred: (l: LogLine) => boolean, timeoutMs = 30_000, what = 'log line'): Promise<LogLine> {
    const seen = this.lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms; stderr: ${this.stderr.slice(-25).join(' | ')}`));
      }, timeoutMs);
      const done = (l: LogLine): void => {
        clearTimeout(timer);
        resolve(l);
      };
      this.waiters.push({ pred, resolve: done });
      void this.exited.then(({ code, signal }) => {
        if (this.waiters.some((w) => w.resolve === done)) {
          clearTimeout(timer);
          reject(new Error(`${this.name} exited (${code ?? signal}) before ${what}; stderr: ${this.stderr.slice(-25).join(' | ')}`));
        }
      });
    });
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) this.proc.kill(signal);
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    const r = await this.exited;
    clearTimeout(timer);
    return r;
  }
}

function spawnNode(name: string, script: string, args: string[], env: NodeJS.ProcessEnv, nodeArgs: string[] = [], keepRaw = false): ProcessHandle {
  const proc = spawn(process.execPath, [...nodeArgs, script, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  return new ProcessHandle(name, proc, keepRaw);
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' && !Array.isArray(b)
        ? deepMerge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** A session-type bus on `socket` where everything is allowed (the demo's and the tests'). */
export function sessionBusConfig(socket: string): string {
  return `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`;
}

/** Starts a private session bus; resolves with its address. */
export async function startSessionBus(dir: string): Promise<{ address: string; handle: ProcessHandle }> {
  const socket = join(dir, 'bus.sock');
  const conf = join(dir, 'bus.conf');
  await writeFile(conf, sessionBusConfig(socket));
  const proc = spawn('dbus-daemon', [`--config-file=${conf}`, '--nofork', '--print-address=1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const handle = new ProcessHandle('dbus-daemon', proc);
  const first = await handle.waitFor(() => true, 10_000, 'bus address');
  return { address: first.msg.trim(), handle };
}

export class Testbed {
  sim!: ProcessHandle;
  simInfo!: SimInfo;
  bus?: { address: string; handle: ProcessHandle };
  daemon?: ProcessHandle;
  /** Every daemon process started, in order (the current one last): their logs outlive a restart. */
  readonly daemons: ProcessHandle[] = [];
  configFile!: string;
  readonly stateDir: string;
  readonly incomingDir: string;
  readonly storeDir: string;
  /** `inbound.dir`: the received messages (DESIGN.md §12). */
  readonly inboxDir: string;
  private daemonEnv: NodeJS.ProcessEnv = {};

  private constructor(
    readonly dir: string,
    private readonly opts: TestbedOptions,
  ) {
    this.stateDir = join(dir, 'state');
    this.incomingDir = join(dir, 'incoming');
    this.storeDir = join(dir, 'mmsc');
    this.inboxDir = join(dir, 'inbox');
  }

  static async start(opts: TestbedOptions = {}): Promise<Testbed> {
    const dir = await mkdtemp(join(tmpdir(), 'mmsd-testbed-'));
    const tb = new Testbed(dir, opts);
    try {
      await tb.setUp();
    } catch (err) {
      await tb.stop();
      throw err;
    }
    return tb;
  }

  private async setUp(): Promise<void> {
    const { opts } = this;
    await mkdir(this.incomingDir, { recursive: true });
    await mkdir(this.storeDir, { recursive: true });
    await this.startSim();
    if (opts.dbus) this.bus = await startSessionBus(this.dir);
    const mmsc = new URL(this.simInfo.mmsc);
    const carrierKeys = opts.carrierFromDatabase
      ? {}
      : {
          // Every carrier key set, as a user who configured them all: no database lookup at each
          // start (it reads the whole serviceproviders.xml; tests of the lookup use carrierFromDatabase).
          pdp: { contextId: 1, apn: 'mms.virtual', username: '', password: '', auth: 0 },
          mms: { mmsc: this.simInfo.mmsc, proxy: { host: mmsc.hostname, port: Number(mmsc.port) }, maxMessageBytes: 307200 },
        };
    const config = deepMerge(
      {
        modem: { port: this.simInfo.port, healthIntervalS: 30 },
        ...carrierKeys,
        outbox: { dir: this.stateDir },
        inbound: { dir: this.inboxDir },
        attachments: { allowedDirs: [this.incomingDir] },
        dbus: { enabled: Boolean(opts.dbus), bus: 'session' },
        mqtt: opts.mqttUrl ? { enabled: true, url: opts.mqttUrl } : { enabled: false },
        log: { level: opts.logLevel ?? 'debug' },
      },
      opts.config ?? {},
    );
    this.configFile = join(this.dir, 'mmsd.json');
    await writeFile(this.configFile, JSON.stringify(config, null, 2));
    this.daemonEnv = {
      ...process.env,
      ...(this.bus ? { DBUS_SESSION_BUS_ADDRESS: this.bus.address } : {}),
      ...opts.env,
    };
    if (opts.daemon !== false) await this.startDaemon();
  }

  private async startSim(): Promise<void> {
    const portArgs = this.opts.tcp ? ['--tcp', '127.0.0.1:0'] : ['--pty', join(this.dir, 'modem')];
    this.sim = spawnNode(
      'mmsd-sim',
      SIM_BIN,
      [
        ...portArgs,
        '--mmsc',
        '127.0.0.1:0',
        '--store',
        this.storeDir,
        '--control',
        '127.0.0.1:0',
        ...(this.opts.carrierFromDatabase ? ['--network'] : []),
        ...(this.opts.simArgs ?? []),
      ],
      process.env,
    );
    const first = await this.sim.waitFor(() => true, 15_000, 'ready line');
    this.simInfo = first as unknown as SimInfo;
    if (!this.simInfo.port || !this.simInfo.mmsc || !this.simInfo.control) {
      throw new Error(`mmsd-sim printed an unexpected first line: ${JSON.stringify(first)}`);
    }
  }

  /** Environment the daemon and mmsctl run with (the private bus address). */
  get env(): NodeJS.ProcessEnv {
    return this.daemonEnv;
  }

  /** Starts (or restarts) the daemon and waits until it has started its front doors. */
  async startDaemon(): Promise<ProcessHandle> {
    this.daemon = spawnNode('mmsd', MMSD_BIN, ['--config', this.configFile], this.daemonEnv, this.opts.daemonNodeArgs, this.opts.rawLog);
    this.daemons.push(this.daemon);
    await this.daemon.waitFor((l) => l.msg === LOG_EVENTS.ready, 30_000, 'start-up');
    return this.daemon;
  }

  /** Waits until the daemon reports the modem `ready`. */
  async modemReady(timeoutMs = 30_000): Promise<void> {
    const d = this.daemon;
    if (!d) throw new Error('daemon not started');
    const isStatus = (l: LogLine): boolean => l.msg === LOG_EVENTS.modemStatus;
    const isReady = (l: LogLine): boolean => isStatus(l) && (l.modem as { state?: string } | undefined)?.state === 'ready';
    const last = d.lines.filter(isStatus).at(-1);
    if (last && isReady(last)) return;
    const from = d.lines.length;
    await d.waitFor((l) => isReady(l) && d.lines.indexOf(l) >= from, timeoutMs, 'modem ready');
  }

  /** POST /fault on the sim's control API. */
  async fault(body: SimFaultRequest): Promise<unknown> {
    const res = await fetch(`${this.simInfo.control}/fault`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`sim /fault ${JSON.stringify(body)}: HTTP ${res.status} ${await res.text()}`);
    return res.json();
  }

  /** POST /sms on the sim's control API: SMS the network delivers now (docs/sim.md "SMS"). */
  async sms(body: SmsRequest): Promise<SmsArrival[]> {
    const res = await fetch(`${this.simInfo.control}/sms`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`sim /sms ${JSON.stringify(body)}: HTTP ${res.status} ${await res.text()}`);
    return ((await res.json()) as { sms: SmsArrival[] }).sms;
  }

  /**
   * POST /receive: the loopback MMSC holds a message for the gateway and pushes its notification
   * (docs/sim.md "Receiving"). Parts' `data` are bytes here, base64 on the wire.
   */
  async receive(body: {
    from: string;
    to?: string[];
    cc?: string[];
    subject?: string;
    subjectCharset?: string;
    parts: { name: string; contentType: string; charset?: string; data: Buffer }[];
    expirySeconds?: number;
    announcedSize?: number;
    contentNeverAppears?: boolean;
    segments?: number;
  }): Promise<InboundReceipt> {
    const wire = { ...body, parts: body.parts.map((p) => ({ ...p, data: p.data.toString('base64') })) };
    const res = await fetch(`${this.simInfo.control}/receive`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(wire),
    });
    if (!res.ok) throw new Error(`sim /receive: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as InboundReceipt;
  }

  /** GET /received-acks: the M-NotifyResp.ind / M-Acknowledge.ind the MMSC got. */
  async receivedAcks(): Promise<AckRecord[]> {
    return (await (await fetch(`${this.simInfo.control}/received-acks`)).json()) as AckRecord[];
  }

  /** GET /inbox: the messages the MMSC holds for the gateway, with how often each was served. */
  async mmscInbox(): Promise<InboxEntry[]> {
    return (await (await fetch(`${this.simInfo.control}/inbox`)).json()) as InboxEntry[];
  }

  /** GET /state of the sim's control API. */
  async simState(): Promise<Record<string, unknown>> {
    const res = await fetch(`${this.simInfo.control}/state`);
    return (await res.json()) as Record<string, unknown>;
  }

  /** What the loopback MMSC received so far. */
  async received(): Promise<ReceivedMessage[]> {
    const res = await fetch(`${this.simInfo.control}/received`);
    return (await res.json()) as ReceivedMessage[];
  }

  async stop(): Promise<void> {
    await this.daemon?.stop();
    await this.bus?.handle.stop();
    await this.sim?.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}
