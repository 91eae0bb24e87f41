// What every benchmark and the soak share: reading a process's cost from /proc, following every
// message's Status over D-Bus with one match rule, and small helpers (DESIGN.md §8). What the tests
// share with the benchmarks (the testbed, mosquitto, polling, seeded randomness) is in src/harness.
import { readFileSync, readdirSync } from 'node:fs';
import dbus from 'dbus-next';
import { openBus, whenConnected, type MessageBus } from '../api/dbus/bus.js';
import { BUS_NAME, MESSAGE_INTERFACE, MESSAGE_PATH_PREFIX, PROPERTIES_INTERFACE } from '../api/dbus/names.js';
import type { Status } from '../core/message.js';

const { MessageType } = dbus;
type DbusMessage = InstanceType<typeof dbus.Message>;

export interface ProcStatus {
  /** Resident set now and its peak, KiB. */
  rssKb: number;
  hwmKb: number;
  voluntaryCtxt: number;
  involuntaryCtxt: number;
}

/** /proc/<pid>/status: VmRSS, VmHWM and the context switch counters. */
export function procStatus(pid: number): ProcStatus {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const num = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : NaN;
  };
  return {
    rssKb: num('VmRSS'),
    hwmKb: num('VmHWM'),
    voluntaryCtxt: num('voluntary_ctxt_switches'),
    involuntaryCtxt: num('nonvoluntary_ctxt_switches'),
  };
}

/** Context switches summed over every thread of the process (/proc/<pid>/task/<tid>/status). */
export function threadCtxtSwitches(pid: number): { voluntary: number; involuntary: number } {
  let voluntary = 0;
  let involuntary = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      voluntary += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(text)?.[1] ?? 0);
      involuntary += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(text)?.[1] ?? 0);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return { voluntary, involuntary };
}

const CLK_TCK = 100;

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return (utime + stime) / CLK_TCK;
}

export interface StatusEvent {
  id: string;
  status: Status;
  /** performance.now() when the signal arrived. */
  at: number;
  error?: string;
}

/**
 * Follows the Status of every message of org.example.Mms1 through one PropertiesChanged match
 * rule (following each message with its own rules would cost more than the daemon does).
 */
export class StatusWatcher {
  readonly events: StatusEvent[] = [];
  readonly latest = new Map<string, Status>();
  private waiters: { pred: () => boolean; resolve: () => void }[] = [];

  private constructor(private readonly bus: MessageBus) {}

  static async connect(address: string): Promise<StatusWatcher> {
    const bus = openBus('session', address);
    bus.on('error', () => undefined);
    await whenConnected(bus, 10_000);
    const w = new StatusWatcher(bus);
    bus.on('message', (m: DbusMessage) => w.onMessage(m));
    const rule = `type='signal',sender='${BUS_NAME}',interface='${PROPERTIES_INTERFACE}',member='PropertiesChanged'`;
    await bus.call(
      new dbus.Message({
        destination: 'org.freedesktop.DBus',
        path: '/org/freedesktop/DBus',
        interface: 'org.freedesktop.DBus',
        member: 'AddMatch',
        signature: 's',
        body: [rule],
      }),
    );
    return w;
  }

  close(): void {
    this.bus.disconnect();
  }

  /** Ids whose latest status is one of `statuses`. */
  count(...statuses: Status[]): number {
    let n = 0;
    for (const s of this.latest.values()) if (statuses.includes(s)) n++;
    return n;
  }

  /** Resolves once `pred` holds (checked after every status change); rejects after `timeoutMs`. */
  until(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push({ pred, resolve: done });
    });
  }

  private onMessage(msg: DbusMessage): void {
    if (msg.type !== MessageType.SIGNAL || msg.member !== 'PropertiesChanged') return;
    if (!msg.path?.startsWith(MESSAGE_PATH_PREFIX) || msg.body[0] !== MESSAGE_INTERFACE) return;
    const changed = msg.body[1] as Record<string, { value: unknown }>;
    const status = changed.Status?.value as Status | undefined;
    if (status === undefined) return;
    const id = msg.path.slice(MESSAGE_PATH_PREFIX.length);
    const error = changed.Error?.value as string | undefined;
    this.events.push({ id, status, at: performance.now(), ...(error ? { error } : {}) });
    this.latest.set(id, status);
    this.waiters = this.waiters.filter((w) => {
      if (!w.pred()) return true;
      w.resolve();
      return false;
    });
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A pino line's `time` (ISO text or epoch ms) as epoch ms. */
export function lineTime(line: Record<string, unknown>): number {
  const t = line.time;
  if (typeof t === 'number') return t;
  if (typeof t === 'string') return Date.parse(t);
  return NaN;
}

export function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
