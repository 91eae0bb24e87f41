// Fakes for the AT channel's unit tests: a Transport in memory, a scripted module behind it that
// answers command lines and takes an ACK-mode upload, and a rig of a real AtChannel over them.
import { TypedEmitter } from '../../src/core/events.js';
import { until as pollUntil } from '../../src/harness/wait.js';
import { pino } from 'pino';
import { AtChannel, type AtChannelOptions } from '../../src/at/channel.js';
import { checksum16 } from '../../src/at/checksum.js';
import type { Transport, TransportEvents } from '../../src/at/types.js';

export class FakeTransport extends TypedEmitter<TransportEvents> implements Transport {
  isOpen = false;
  readonly description = 'fake://modem';
  readonly writes: Buffer[] = [];
  /** Milliseconds each write takes before it resolves. */
  writeDelayMs = 0;
  onWrite: ((data: Buffer) => void) | undefined;

  constructor(private readonly failOpen = false) {
    super();
  }

  open(): Promise<void> {
    if (this.failOpen) return Promise.reject(new Error('ENOENT: no such device'));
    this.isOpen = true;
    return Promise.resolve();
  }

  close(): Promise<void> {
    if (this.isOpen) {
      this.isOpen = false;
      this.emit('close');
    }
    return Promise.resolve();
  }

  async write(data: Buffer): Promise<void> {
    if (!this.isOpen) throw new Error('not open');
    this.writes.push(Buffer.from(data));
    if (this.writeDelayMs > 0) await new Promise((r) => setTimeout(r, this.writeDelayMs));
    // The module answers after the bytes left: on a later tick, like a real line.
    setImmediate(() => this.onWrite?.(data));
  }

  /** Bytes from the module. */
  reply(data: string | Buffer): void {
    this.emit('data', typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** The device disappears. */
  lose(err = new Error('device disconnected')): void {
    this.isOpen = false;
    this.emit('close', err);
  }

  /** Everything written, as text (commands only; upload data shows as bytes). */
  written(): string {
    return Buffer.concat(this.writes).toString('latin1');
  }
}

export type Handler = (cmd: string) => string | undefined;

export interface UploadBehaviour {
  /** Checksum the module reports (default: the true one). */
  reportChecksum?: (data: Buffer) => number;
  /** How the ACK is sent: bare "A" (as the sim) or "A\r\n". */
  ack?: 'bare' | 'crlf';
  /** Also send an "A" after the last block when it is a full one. */
  ackLastFullBlock?: boolean;
  /** Stop answering after this many blocks. */
  silentAfterBlocks?: number;
  /** Blocks (1-based) whose "A" is lost on the way. */
  dropAcks?: number[];
  /** The module's time to take a block before its "A" (and the result) goes; 0: at once. */
  ackDelayMs?: number;
}

/**
 * A module behind a FakeTransport: answers each "<cmd>\r" from `handlers` (exact command or,
 * failing that, the longest matching prefix key ending in "*"); unknown commands get ERROR.
 */
export class ScriptedModem {
  echo = false;
  readonly commands: string[] = [];
  readonly handlers = new Map<string, Handler>();
  upload: UploadBehaviour = {};
  uploaded: Buffer | undefined;
  /** At each write in upload mode: the bytes come and not yet acknowledged (by an "A" sent). */
  readonly unackedAtWrites: number[] = [];
  private pending = '';
  private dataMode: { size: number; got: Buffer[]; received: number; blocks: number; acked: number } | undefined;

  constructor(readonly t: FakeTransport) {
    this.handlers.set('AT', () => 'OK');
    this.handlers.set('AT+CMEE?', () => '+CMEE: 1\r\n\r\nOK');
    this.handlers.set('AT+QFUPL=*', (cmd) => {
      const m = /^AT\+QFUPL="[^"]+",(\d+)/.exec(cmd);
      if (!m) return 'ERROR';
      this.dataMode = { size: Number(m[1]), got: [], received: 0, blocks: 0, acked: 0 };
      return 'CONNECT';
    });
    t.onWrite = (data) => this.receive(data);
  }

  on(cmd: string, handler: Handler | string): this {
    this.handlers.set(cmd, typeof handler === 'string' ? () => handler : handler);
    return this;
  }

  /** The module restarts: out of data mode, its input forgotten, "RDY". */
  reboot(): void {
    this.dataMode = undefined;
    this.pending = '';
    this.t.reply('\r\nRDY\r\n');
  }

  private receive(data: Buffer): void {
    if (this.dataMode) return this.receiveData(data);
    this.pending += data.toString('latin1');
    for (let i = this.pending.indexOf('\r'); i >= 0; i = this.pending.indexOf('\r')) {
      const cmd = this.pending.slice(0, i);
      this.pending = this.pending.slice(i + 1);
      this.commands.push(cmd);
      if (this.echo) this.t.reply(`${cmd}\r`);
      const answer = this.answer(cmd);
      if (answer !== undefined) this.t.reply(`\r\n${answer}\r\n`);
    }
  }

  private answer(cmd: string): string | undefined {
    const exact = this.handlers.get(cmd);
    if (exact) return exact(cmd);
    let best: [string, Handler] | undefined;
    for (const [k, h] of this.handlers) {
      if (k.endsWith('*') && cmd.startsWith(k.slice(0, -1)) && (!best || k.length > best[0].length)) best = [k, h];
    }
    return best ? best[1](cmd) : 'ERROR';
  }

  /** Data in upload mode: an "A" for every complete block of 1024 bytes, however the writes cut them. */
  private receiveData(data: Buffer): void {
    const dm = this.dataMode!;
    const blocksBefore = Math.floor(dm.received / 1024);
    dm.got.push(Buffer.from(data));
    dm.received += data.length;
    dm.blocks = Math.floor(dm.received / 1024);
    this.unackedAtWrites.push(dm.received - dm.acked * 1024);
    const b = this.upload;
    const answers = (block: number): boolean => b.silentAfterBlocks === undefined || block <= b.silentAfterBlocks;
    const ack = b.ack === 'crlf' ? 'A\r\n' : 'A';
    const done = dm.received >= dm.size;
    let acks = '';
    for (let k = blocksBefore + 1; k <= dm.blocks; k++) {
      const lastBlock = done && k === dm.blocks && dm.received % 1024 === 0;
      if (answers(k) && !b.dropAcks?.includes(k) && (!lastBlock || b.ackLastFullBlock)) acks += ack;
    }
    const blocks = dm.blocks;
    const send = (text: string): void => {
      dm.acked = Math.max(dm.acked, blocks);
      if (text) this.t.reply(text);
    };
    const later = (text: string): void => {
      if (b.ackDelayMs) setTimeout(() => send(text), b.ackDelayMs);
      else send(text);
    };
    if (!done) return later(acks);
    if (!answers(Math.ceil(dm.received / 1024))) return;
    const all = Buffer.concat(dm.got);
    this.uploaded = all;
    this.dataMode = undefined;
    const sum = (b.reportChecksum ?? checksum16)(all);
    later(`${acks}\r\n+QFUPL: ${all.length},${sum.toString(16)}\r\n\r\nOK\r\n`);
  }
}

/** Polls until `cond` holds or the deadline passes. */
export async function until(cond: () => boolean, ms = 5000): Promise<void> {
  await pollUntil(cond, ms, 'the condition', 5);
}

/** What a driver registers before it talks to the module (the channel knows no URC of its own). */
export const DRIVER_URCS: readonly string[] = ['RDY', '+CGREG:', '+CEREG:', '+CPIN:', '+QIURC:', '+QIND:', '+QMMSEND:', '+CMTI:'];

export interface Rig {
  ch: AtChannel;
  transports: FakeTransport[];
  modems: ScriptedModem[];
  /** The current transport and module. */
  t: () => FakeTransport;
  m: () => ScriptedModem;
  /** Lines routed to the registrations of `urcPrefixes`. */
  urcs: string[];
  /** Lines for no one ('unsolicited'). */
  unsolicited: string[];
}

const channels: AtChannel[] = [];

/** Has stopChannels() stop `ch` too. */
export function stopLater(ch: AtChannel): AtChannel {
  channels.push(ch);
  return ch;
}

/** Stops every channel a rig (or stopLater) took (afterEach). */
export async function stopChannels(): Promise<void> {
  for (const c of channels.splice(0)) await c.stop();
}

/**
 * A started AtChannel with short timers over a FakeTransport and a ScriptedModem (a new pair on
 * every reopen, `setup` run on each module), with `urcPrefixes` registered into `urcs`.
 */
export async function rig(
  opts: Partial<AtChannelOptions> = {},
  setup?: (m: ScriptedModem) => void,
  urcPrefixes: readonly string[] = DRIVER_URCS,
): Promise<Rig> {
  const transports: FakeTransport[] = [];
  const modems: ScriptedModem[] = [];
  const ch = new AtChannel({
    logger: pino({ level: 'silent' }),
    defaultTimeoutMs: 1000,
    reopenMinMs: 5,
    reopenMaxMs: 20,
    resyncTimeoutMs: 200,
    escapeGuardMs: 20,
    openTransport: () => {
      const t = new FakeTransport();
      const m = new ScriptedModem(t);
      setup?.(m);
      transports.push(t);
      modems.push(m);
      return t;
    },
    ...opts,
  });
  channels.push(ch);
  const urcs: string[] = [];
  const unsolicited: string[] = [];
  for (const p of urcPrefixes) ch.onUrc(p, (l) => urcs.push(l));
  ch.on('unsolicited', (l) => unsolicited.push(l));
  await ch.start();
  return { ch, transports, modems, t: () => transports.at(-1)!, m: () => modems.at(-1)!, urcs, unsolicited };
}
