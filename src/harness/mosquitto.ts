// A real mosquitto for the integration tests and the soak: a free loopback port, a temp config and
// persistence directory (so a restarted broker keeps sessions and retained messages), stopped and
// restarted by pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProgramMissingError, spawnFailure } from '../sim/programs.js';

export interface MosquittoOptions {
  /** Extra lines for mosquitto.conf (after the listener line). */
  extraConfig?: string[];
  /** Listener lines replacing the default `listener <port> 127.0.0.1` (use {port}). */
  listener?: string[];
  /** Default true. */
  allowAnonymous?: boolean;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

async function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export class Mosquitto {
  private proc: ChildProcess | undefined;
  private stderr = '';

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly confPath: string,
  ) {}

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /**
   * Writes the config and starts the broker; resolves when it accepts connections. Rejects at once
   * with a ProgramMissingError ("mosquitto not found: apt install mosquitto") when it is not installed.
   */
  static async start(opts: MosquittoOptions = {}): Promise<Mosquitto> {
    const dir = await mkdtemp(join(tmpdir(), 'mmsd-mosquitto-'));
    for (let attempt = 0; ; attempt += 1) {
      const port = await freePort();
      const listener = (opts.listener ?? ['listener {port} 127.0.0.1']).map((l) => l.replaceAll('{port}', String(port)));
      const conf = [
        ...listener,
        `allow_anonymous ${opts.allowAnonymous === false ? 'false' : 'true'}`,
        'persistence true',
        `persistence_location ${dir}/`,
        'max_queued_messages 100000',
        'max_inflight_messages 100',
        // As root, mosquitto would drop to the `mosquitto` user, who cannot read our 0700 temp dir.
        ...(process.getuid?.() === 0 ? ['user root'] : []),
        'log_dest stderr',
        'log_type error',
        'log_type warning',
        'log_type notice',
        ...(opts.extraConfig ?? []),
      ];
      const confPath = join(dir, 'mosquitto.conf');
      await writeFile(confPath, conf.join('\n') + '\n');
      const broker = new Mosquitto(port, dir, confPath);
      try {
        await broker.launch();
        return broker;
      } catch (err) {
        // Another process took the port between freePort() and mosquitto's bind: try another.
        if (err instanceof ProgramMissingError || attempt >= 4) {
          await rm(dir, { recursive: true, force: true });
          throw err;
        }
      }
    }
  }

  private async launch(): Promise<void> {
    this.stderr = '';
    const proc = spawn('mosquitto', ['-c', this.confPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = proc;
    proc.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    // A program that cannot be spawned emits 'error' and never 'exit'.
    const exited = new Promise<never>((_, reject) => {
      proc.once('exit', (code) => reject(new Error(`mosquitto exited (${code}): ${this.stderr}`)));
      proc.once('error', (err) => reject(spawnFailure(err, 'mosquitto', 'mosquitto')));
    });
    exited.catch(() => undefined);
    const deadline = Date.now() + 10_000;
    while (!(await Promise.race([canConnect(this.port), exited]))) {
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`mosquitto did not listen on ${this.port}: ${this.stderr}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGTERM (mosquitto saves its persistence file) and wait for the exit. */
  async stop(): Promise<void> {
    const proc = this.proc;
    this.proc = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    process.kill(proc.pid!, 'SIGTERM');
    const timer = setTimeout(() => {
      if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid!, 'SIGKILL');
    }, 5000);
    await exited;
    clearTimeout(timer);
  }

  /** Whether the broker process is alive (started and not yet exited). */
  get running(): boolean {
    const proc = this.proc;
    return proc !== undefined && proc.exitCode === null && proc.signalCode === null;
  }

  /**
   * Stop and start again on the same port with the same persistence; `downMs` keeps it away that
   * long in between (a broker outage, for the soak).
   */
  async restart(downMs = 0): Promise<void> {
    await this.stop();
    if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
    await this.launch();
  }

  /** Stop the broker and remove its directory. */
  async dispose(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  get log(): string {
    return this.stderr;
  }
}
