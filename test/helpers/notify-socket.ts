// A stand-in for systemd's notify socket: a unix datagram socket (Node has none, python3 does)
// whose every datagram arrives here as a parsed list of KEY=value fields.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const LISTENER = `
import socket, sys, json, os
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
print(json.dumps({"listening": path}), flush=True)
while True:
    data = s.recv(65536)
    print(json.dumps({"datagram": data.decode("utf-8", "replace")}), flush=True)
`;

export interface Datagram {
  at: number;
  fields: Record<string, string>;
}

export class NotifySocket {
  readonly datagrams: Datagram[] = [];
  private proc: ChildProcess | undefined;
  private waiters: { pred: (d: Datagram) => boolean; resolve: (d: Datagram) => void }[] = [];

  constructor(readonly path: string) {}

  static async start(dir: string): Promise<NotifySocket> {
    const ns = new NotifySocket(join(dir, 'notify.sock'));
    await ns.listen();
    return ns;
  }

  private listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const proc = spawn('python3', ['-c', LISTENER, this.path], { stdio: ['ignore', 'pipe', 'inherit'] });
      this.proc = proc;
      proc.on('error', reject);
      createInterface({ input: proc.stdout }).on('line', (line) => {
        const msg = JSON.parse(line) as { listening?: string; datagram?: string };
        if (msg.listening) return resolve();
        if (msg.datagram === undefined) return;
        const fields: Record<string, string> = {};
        for (const l of msg.datagram.split('\n')) {
          const eq = l.indexOf('=');
          if (eq > 0) fields[l.slice(0, eq)] = l.slice(eq + 1);
        }
        const d = { at: Date.now(), fields };
        this.datagrams.push(d);
        this.waiters = this.waiters.filter((w) => (w.pred(d) ? (w.resolve(d), false) : true));
      });
    });
  }

  /** The first datagram (already received, from index `from` on, or to come) matching `pred`. */
  next(pred: (d: Datagram) => boolean, from = 0, timeoutMs = 20_000): Promise<Datagram> {
    const seen = this.datagrams.slice(from).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching notify datagram within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        pred,
        resolve: (d) => {
          clearTimeout(timer);
          resolve(d);
        },
      });
    });
  }

  stop(): void {
    this.proc?.kill();
  }
}
