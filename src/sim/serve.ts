// Serving the VirtualModem to a host (DESIGN.md §7): a socat pty pair whose far end PATH the
// daemon opens (port loss = socat killed, PATH gone), or a TCP socket with one client at a time.
import { spawn, type ChildProcess } from 'node:child_process';
import { lstat, mkdtemp, readlink, rename, rm, symlink, unlink } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { SerialPort } from 'serialport';
import type { VirtualModem } from './modem.js';
import { spawnFailure } from './programs.js';

/** What the control API needs of a server: take the port away for a while. */
export interface PortServer {
  /** The daemon's side: the pty PATH, or tcp://host:port. */
  readonly description: string;
  /** The port disappears now and comes back after `ms`; resolves once it is back. */
  portLoss(ms: number): Promise<void>;
  stop(): Promise<void>;
}

export interface PtyServerOptions {
  /** The path the daemon opens (a symlink to one pty of the pair). */
  path: string;
  modem: VirtualModem;
  logger: Logger;
  /** Baud rate of the sim's own end (a pty ignores it; the line rate is the modem's). */
  baudRate?: number;
  socat?: string;
  /** How long to wait for socat to report both ptys. Default 5000 ms. */
  readyTimeoutMs?: number;
}

export class PtyServer implements PortServer {
  private readonly log: Logger;
  private socat: ChildProcess | undefined;
  private port: SerialPort | undefined;
  private dir: string | undefined;
  private lossTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly onModemData = (data: Buffer): void => {
    const port = this.port;
    if (port?.isOpen) port.write(data);
  };

  constructor(private readonly opts: PtyServerOptions) {
    this.log = opts.logger.child({ part: 'sim-pty' });
  }

  get description(): string {
    return this.opts.path;
  }

  async start(): Promise<void> {
    this.stopped = false;
    const existing = await lstat(this.opts.path).catch(() => undefined);
    if (existing && !existing.isSymbolicLink()) throw new Error(`${this.opts.path} exists and is not a symlink`);
    this.dir = await mkdtemp(path.join(os.tmpdir(), 'mmsd-sim-'));
    this.opts.modem.on('data', this.onModemData);
    await this.bringUp();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.lossTimer) clearTimeout(this.lossTimer);
    this.lossTimer = undefined;
    this.opts.modem.off('data', this.onModemData);
    await this.tearDown();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
    this.dir = undefined;
  }

  async portLoss(ms: number): Promise<void> {
    this.log.info({ ms }, 'port loss');
    await this.tearDown();
    await new Promise<void>((resolve) => {
      this.lossTimer = setTimeout(resolve, ms);
    });
    this.lossTimer = undefined;
    if (this.stopped) return;
    await this.bringUp();
    this.log.info('port back');
  }

  private simEnd(): string {
    return path.join(this.dir ?? os.tmpdir(), 'module');
  }

  /** socat's own link to the daemon's pty; PATH appears only once the module side is served. */
  private hostEnd(): string {
    return path.join(this.dir ?? os.tmpdir(), 'host');
  }

  private async bringUp(): Promise<void> {
    await removeStaleLink(this.opts.path);
    await removeStaleLink(this.simEnd());
    await removeStaleLink(this.hostEnd());
    const child = await startSocatPair(this.hostEnd(), this.simEnd(), { socat: this.opts.socat, readyTimeoutMs: this.opts.readyTimeoutMs });
    this.socat = child;
    child.stderr!.on('data', (more: string) => this.log.debug({ socat: more.trim() }, 'socat'));
    child.on('error', (err) => this.log.warn({ err }, 'socat error'));
    child.on('exit', (code, signal) => this.log.debug({ code, signal }, 'socat exited'));
    const port = new SerialPort({ path: this.simEnd(), baudRate: this.opts.baudRate ?? 115200, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    port.on('data', (chunk: Buffer) => this.opts.modem.feed(chunk));
    port.on('error', (err) => this.log.warn({ err }, 'sim end of the pty failed'));
    this.port = port;
    // Publish PATH last, atomically: a host that opens it finds the module already listening.
    const tmp = `${this.opts.path}.${process.pid}.tmp`;
    await removeStaleLink(tmp);
    await symlink(await readlink(this.hostEnd()), tmp);
    await rename(tmp, this.opts.path);
    this.log.info({ path: this.opts.path }, 'pty ready');
  }

  private async tearDown(): Promise<void> {
    await removeStaleLink(this.opts.path);
    const port = this.port;
    this.port = undefined;
    if (port?.isOpen) {
      port.removeAllListeners('data');
      await new Promise<void>((resolve) => port.close(() => resolve()));
    }
    const child = this.socat;
    this.socat = undefined;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const forced = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(forced);
    }
    // socat removes its links on SIGTERM; make sure they are gone whatever happened.
    if (this.dir) {
      await removeStaleLink(this.simEnd());
      await removeStaleLink(this.hostEnd());
    }
  }
}

/**
 * A socat pty pair, raw and without echo, whose ptys are linked at `a` and `b`; resolves once socat
 * says both exist (its stderr then stays in utf8 for the caller's log). Rejects, killing socat, if
 * it exits or is not ready within `readyTimeoutMs` (default 5000); at once with a
 * ProgramMissingError when socat is not installed.
 */
export async function startSocatPair(a: string, b: string, opts: { socat?: string; readyTimeoutMs?: number } = {}): Promise<ChildProcess> {
  const child = spawn(opts.socat ?? 'socat', ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  const stderr = child.stderr;
  stderr.setEncoding('utf8');
  let text = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`socat not ready: ${text.trim()}`)), opts.readyTimeoutMs ?? 5000);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      child.kill('SIGTERM');
      reject(err);
    };
    const onExit = (code: number | null): void => fail(new Error(`socat exited (${code}): ${text.trim()}`));
    const onError = (err: Error): void => fail(spawnFailure(err, 'socat', 'socat'));
    const onText = (chunk: string): void => {
      text += chunk;
      // socat -d -d prints this once both ptys (and their links) exist.
      if (!text.includes('starting data transfer loop')) return;
      clearTimeout(timer);
      stderr.off('data', onText);
      child.off('error', onError);
      child.off('exit', onExit);
      resolve();
    };
    child.once('error', onError);
    child.once('exit', onExit);
    stderr.on('data', onText);
  });
  return child;
}

async function removeStaleLink(p: string): Promise<void> {
  try {
    const st = await lstat(p);
    if (st.isSymbolicLink()) await unlink(p);
  } catch {
    // Not there: nothing to remove.
  }
}

export interface TcpServerOptions {
  host: string;
  port: number;
  modem: VirtualModem;
  logger: Logger;
}

/** The module on a raw TCP socket (like ser2net): one client at a time, others are refused. */
export class TcpServer implements PortServer {
  private readonly log: Logger;
  private server: net.Server | undefined;
  private client: net.Socket | undefined;
  private boundPort: number;
  private lossTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly onModemData = (data: Buffer): void => {
    const c = this.client;
    if (c && !c.destroyed) c.write(data);
  };

  constructor(private readonly opts: TcpServerOptions) {
    this.log = opts.logger.child({ part: 'sim-tcp' });
    this.boundPort = opts.port;
  }

  get description(): string {
    return `tcp://${formatHost(this.opts.host)}:${this.boundPort}`;
  }

  async start(): Promise<{ host: string; port: number }> {
    this.stopped = false;
    this.opts.modem.on('data', this.onModemData);
    await this.listen();
    return { host: this.opts.host, port: this.boundPort };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.lossTimer) clearTimeout(this.lossTimer);
    this.lossTimer = undefined;
    this.opts.modem.off('data', this.onModemData);
    await this.close();
  }

  async portLoss(ms: number): Promise<void> {
    this.log.info({ ms }, 'port loss');
    await this.close();
    await new Promise<void>((resolve) => {
      this.lossTimer = setTimeout(resolve, ms);
    });
    this.lossTimer = undefined;
    if (this.stopped) return;
    await this.listen();
    this.log.info('port back');
  }

  private listen(): Promise<void> {
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    return new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.boundPort, this.opts.host, () => {
        server.off('error', reject);
        server.on('error', (err) => this.log.warn({ err }, 'tcp server error'));
        this.boundPort = (server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }

  private accept(socket: net.Socket): void {
    if (this.client) {
      this.log.warn({ remote: socket.remoteAddress }, 'second client refused');
      socket.destroy();
      return;
    }
    this.client = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.opts.modem.feed(chunk));
    socket.on('error', (err) => this.log.debug({ err }, 'client socket error'));
    socket.on('close', () => {
      if (this.client === socket) this.client = undefined;
    });
    this.log.info({ remote: socket.remoteAddress }, 'client connected');
  }

  private async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    client?.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
