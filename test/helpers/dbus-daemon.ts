// A private dbus-daemon for tests (a config in a temp dir, a unix socket beside it, stopped by
// pid), and the tools the D-Bus tests use on it: busctl without blocking, a raw dbus-next client.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dbus from 'dbus-next';
import { BUS_NAME } from '../../src/api/dbus/names.js';
import { sessionBusConfig } from '../../src/harness/testbed.js';
import { until } from '../../src/harness/wait.js';

export interface PrivateBus {
  /** The address to give clients (`unix:path=…,guid=…`). */
  address: string;
  dir: string;
  pid: number;
  stop(): Promise<void>;
}

/** A session-type bus where everything is allowed. */
export const sessionConfig = sessionBusConfig;

/**
 * A bus with the default policy of Debian's /usr/share/dbus-1/system.conf (deny owning names and
 * method calls; holes are punched by service policy files), including `includes`.
 */
export function systemLikeConfig(socket: string, includes: string[]): string {
  return `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
  </policy>
${includes.map((f) => `  <include>${f}</include>`).join('\n')}
</busconfig>
`;
}

/**
 * Starts `dbus-daemon --nofork --print-address=1` with the config `makeConfig(socketPath)`. With
 * `worldAccessible`, the temp dir is opened up so that other users (nobody) can connect.
 */
export async function startDbusDaemon(
  makeConfig: (socket: string) => string = sessionConfig,
  opts: { worldAccessible?: boolean } = {},
): Promise<PrivateBus> {
  const dir = await mkdtemp(join(tmpdir(), 'mmsd-dbus-'));
  const socket = join(dir, 'bus.sock');
  const configFile = join(dir, 'bus.conf');
  await writeFile(configFile, makeConfig(socket));
  if (opts.worldAccessible) await chmod(dir, 0o755);

  const child = spawn('dbus-daemon', [`--config-file=${configFile}`, '--print-address=1', '--nofork'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const address = await new Promise<string>((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer): void => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        child.stdout.removeListener('data', onData);
        resolve(out.slice(0, nl).trim());
      }
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) => reject(new Error(`dbus-daemon exited (${code}) before printing its address: ${stderr}`)));
    child.once('error', reject);
  });
  // dbus-daemon makes the socket 0777 itself; the dir is what keeps others out.
  if (opts.worldAccessible) await chmod(socket, 0o777);

  return {
    address,
    dir,
    pid: child.pid!,
    stop: () => stopChild(child, dir),
  };
}

async function stopChild(child: ChildProcess, dir: string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    process.kill(child.pid!, 'SIGTERM');
    await exited;
  }
  await rm(dir, { recursive: true, force: true });
}

// --- tools ---

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command asynchronously (the service under test lives in this process). */
export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { encoding: 'utf8', env: opts.env ?? process.env, cwd: opts.cwd, timeout: opts.timeoutMs ?? 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

export function busctl(address: string, ...args: string[]): Promise<Run> {
  return run('busctl', [`--address=${address}`, ...args]);
}

/** `busctl --json=short get-property` of one property → { type, data }. */
export async function getProperty(address: string, path: string, iface: string, name: string): Promise<{ type: string; data: unknown }> {
  const r = await busctl(address, '--json=short', 'get-property', BUS_NAME, path, iface, name);
  if (r.code !== 0) throw new Error(`get-property ${name}: ${r.stderr}`);
  return JSON.parse(r.stdout) as { type: string; data: unknown };
}

export type Bus = ReturnType<typeof dbus.sessionBus>;

export async function connect(address: string): Promise<Bus> {
  const bus = dbus.sessionBus({ busAddress: address });
  bus.on('error', () => undefined);
  await new Promise<void>((resolve) => bus.once('connect', () => resolve()));
  return bus;
}

/** A method call to mmsd with full control of the signature and body. */
export async function rawCall(bus: Bus, path: string, iface: string, member: string, signature: string, body: unknown[]): Promise<unknown[]> {
  const reply = await bus.call(new dbus.Message({ destination: BUS_NAME, path, interface: iface, member, signature, body }));
  return (reply?.body ?? []) as unknown[];
}

/** The D-Bus error name a call fails with (throws if it succeeds). */
export async function errorOf(p: Promise<unknown>): Promise<{ type: string; text: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof dbus.DBusError) return { type: err.type, text: err.text };
    throw err;
  }
  throw new Error('call succeeded');
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export function waitFor<T>(check: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  return until(check, timeoutMs, what, 20);
}
