// The virtual modem's core (DESIGN.md §7, "sim layout" in docs/design.md): the line both ways at
// the configured rate, command-line assembly and echo, dispatch of each line's commands to the
// capabilities' tables (chained per V.250 §5.4), answers with their faults, URCs, data mode, and the
// module's timers, which die with every restart. It knows no command; VirtualModem composes it.
//
// A line holding no "AT" is ignored (no answer), as real modules do. In a chained line
// ("AT+CMEE=1;+CGREG=2", "ATE0V1") the commands run in order; the first that fails ends the line
// and its result code is the line's; the information lines of all come before the one final
// result code, and URCs wait for it. A CONNECT or a restart ends the line as well.
import type { Logger } from 'pino';
import { parseCommandLine, type ParsedCommand } from './at-parser.js';
import { LinePacer, type SimClock } from './line-pacer.js';
import {
  error,
  type Capability,
  type CommandHandler,
  type DataSink,
  type ModuleCore,
  type ModuleMode,
  type Reply,
} from './modem-capability.js';
import type { ModemFaults } from './modem-faults.js';

/** How answers look and whether the command line is echoed (the V.250 basics own both). */
export interface Framing {
  readonly echo: boolean;
  /** The response text as the module frames it, `midUrcs` between its first line and the rest. */
  frame(reply: Reply, midUrcs: readonly string[]): string;
}

export interface ModemCoreOptions {
  logger: Logger;
  clock: SimClock;
  secondMs: number;
  /** Line rate in bytes per second each way; 0 = unthrottled. */
  bytesPerSecond: number;
  faults: ModemFaults;
  /** Bytes the module writes to the host. */
  onData: (bytes: Buffer) => void;
  /** Each AT command line received. */
  onCommand: (line: string) => void;
  /** A capability restarts the module (AT+CFUN=1,1). */
  onReboot: () => void;
}

const MAX_LINE = 2048;
const MAX_TRANSCRIPT = 5000;
const CR = 0x0d;
const LF = 0x0a;
const BS = 0x08;

export class ModemCore implements ModuleCore {
  readonly log: Logger;
  readonly clock: SimClock;
  readonly secondMs: number;
  private readonly faults: ModemFaults;
  private readonly rx: LinePacer;
  private readonly tx: LinePacer;
  private readonly timers = new Set<unknown>();
  private readonly table = new Map<string, CommandHandler>();
  private framing!: Framing;

  private modeNow: ModuleMode = 'off';
  private gen = 0;
  private busy = false;
  private lineBuf = '';
  private lineOverflow = false;
  private rxPending: Buffer = Buffer.alloc(0);
  private sink: DataSink | undefined;
  private heldUrcs: string[] = [];
  /** A chained line is running: URCs wait for its final result code. */
  private urcsWaitForLine = false;
  private rxBytes = 0;
  private txBytes = 0;
  private readonly lines: string[] = [];

  constructor(private readonly opts: ModemCoreOptions) {
    this.log = opts.logger;
    this.clock = opts.clock;
    this.secondMs = opts.secondMs;
    this.faults = opts.faults;
    this.rx = new LinePacer(this.clock, () => this.pump());
    this.tx = new LinePacer(this.clock, () => this.flushTx());
    this.lineRate(opts.bytesPerSecond);
  }

  /** Takes the answer format and the capabilities' command tables; a name in two tables throws. */
  install(framing: Framing, capabilities: readonly Capability[]): void {
    this.framing = framing;
    const owner = new Map<string, string>();
    for (const cap of capabilities) {
      for (const [name, handler] of Object.entries(cap.commands)) {
        const other = owner.get(name);
        if (other !== undefined) throw new Error(`sim: command "AT${name}" is in both ${other} and ${cap.name}`);
        owner.set(name, cap.name);
        this.table.set(name, handler);
      }
    }
  }

  get mode(): ModuleMode {
    return this.modeNow;
  }

  get generation(): number {
    return this.gen;
  }

  get running(): boolean {
    return this.modeNow === 'command' || this.modeNow === 'data';
  }

  get txDrainedAt(): number {
    return this.tx.drainedAt;
  }

  get lineBytes(): { rx: number; tx: number } {
    return { rx: this.rxBytes, tx: this.txBytes };
  }

  /** The AT command lines received (the last 5,000). */
  get transcript(): string[] {
    return [...this.lines];
  }

  reboot(): void {
    this.opts.onReboot();
  }

  // ── lifecycle (VirtualModem drives it) ──

  /** Powered off: the module's timers stopped, nothing more is written. */
  powerOff(): void {
    this.gen++;
    this.modeNow = 'off';
    this.clearTimers();
    this.rx.clear();
    this.tx.clear();
  }

  /** A restart begins: line, timers, data mode and held URCs are gone. */
  restarting(): void {
    this.gen++;
    this.modeNow = 'booting';
    this.busy = false;
    this.clearTimers();
    this.sink = undefined;
    this.heldUrcs = [];
    this.urcsWaitForLine = false;
    this.rx.clear();
    this.tx.clear();
    this.rxPending = Buffer.alloc(0);
    this.lineBuf = '';
  }

  /** Booted: in command mode with an empty command line. */
  booted(): void {
    this.modeNow = 'command';
    this.busy = false;
    this.sink = undefined;
    this.urcsWaitForLine = false;
    this.lineBuf = '';
  }

  /** Bytes the host wrote to the module. */
  feed(bytes: Buffer): void {
    if (this.modeNow === 'off') return;
    this.rxBytes += bytes.length;
    this.rx.push(Buffer.from(bytes));
  }

  /** Line rate in bytes per second each way (0 = unthrottled); applies to bytes sent from now. */
  lineRate(bytesPerSecond: number): void {
    this.rx.rate = this.tx.rate = Math.max(0, bytesPerSecond);
  }

  // ── timers ──

  after(ms: number, fn: () => void): unknown {
    const handle = this.clock.setTimeout(() => {
      this.timers.delete(handle);
      fn();
    }, ms);
    this.timers.add(handle);
    return handle;
  }

  cancel(handle: unknown): void {
    if (handle === undefined) return;
    this.clock.clearTimeout(handle);
    this.timers.delete(handle);
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.after(ms, resolve));
  }

  private clearTimers(): void {
    for (const t of this.timers) this.clock.clearTimeout(t);
    this.timers.clear();
  }

  // ── input ──

  private pump(): void {
    const arrived = this.rx.take();
    if (!this.running) return;
    if (arrived.length > 0) {
      this.rxPending = this.rxPending.length ? Buffer.concat([this.rxPending, arrived]) : arrived;
    }
    if (this.busy || this.rxPending.length === 0) return;
    const buf = this.rxPending;
    const now = this.clock.now();
    let i = 0;
    let echoFrom = -1;
    const flushEcho = (end: number): void => {
      if (echoFrom >= 0 && end > echoFrom) this.write(buf.subarray(echoFrom, end));
      echoFrom = -1;
    };
    while (i < buf.length && !this.busy) {
      if (this.modeNow === 'data') {
        this.sink?.byte(buf[i++], now);
        continue;
      }
      if (this.modeNow !== 'command') break;
      const b = buf[i];
      if (this.framing.echo && echoFrom < 0) echoFrom = i;
      i++;
      if (b === CR) {
        flushEcho(i);
        const line = this.lineBuf;
        const overflow = this.lineOverflow;
        this.lineBuf = '';
        this.lineOverflow = false;
        if (line.trim() !== '') this.startLine(line, overflow);
      } else if (b === LF) {
        // A CR LF terminator: the LF is echoed and otherwise ignored.
      } else if (b === BS) {
        this.lineBuf = this.lineBuf.slice(0, -1);
      } else if (this.lineBuf.length < MAX_LINE) {
        this.lineBuf += String.fromCharCode(b);
      } else {
        this.lineOverflow = true;
      }
    }
    flushEcho(i);
    this.rxPending = buf.subarray(i);
  }

  processLateInput(): boolean {
    const late = this.rx.take();
    if (late.length > 0) {
      this.rxPending = this.rxPending.length ? Buffer.concat([this.rxPending, late]) : late;
    }
    if (this.rxPending.length === 0) return false;
    this.pump();
    return true;
  }

  private startLine(line: string, overflow: boolean): void {
    this.busy = true;
    const gen = this.gen;
    this.runLine(line, overflow, gen)
      .catch((err: unknown) => this.log.error({ err }, 'command failed inside the sim'))
      .finally(() => {
        if (gen !== this.gen) return;
        this.busy = false;
        this.after(0, () => this.pump());
      });
  }

  private async runLine(line: string, overflow: boolean, gen: number): Promise<void> {
    const at = line.toUpperCase().indexOf('AT');
    // Real modules ignore a line that holds no "AT" prefix.
    if (at < 0) return;
    const text = line.slice(at).trimEnd();
    this.lines.push(text);
    if (this.lines.length > MAX_TRANSCRIPT) this.lines.shift();
    this.opts.onCommand(text);
    this.log.debug({ cmd: text }, 'AT command');
    const commands = overflow ? undefined : parseCommandLine(text.slice(2));
    const chained = commands !== undefined && commands.length > 1;
    if (chained) this.urcsWaitForLine = true;
    try {
      const reply = commands ? await this.execute(commands, gen) : error();
      if (reply === undefined) return;
      if (this.faults.responseDelayMs > 0) await this.sleep(this.faults.responseDelayMs);
      if (gen !== this.gen) return;
      this.sendReply(reply);
      reply.after?.();
    } finally {
      if (chained && gen === this.gen) {
        this.urcsWaitForLine = false;
        if (this.modeNow === 'command') this.releaseUrcs();
      }
    }
  }

  /**
   * V.250 §5.4: the commands in order; the first that does not answer OK ends the line with its
   * result code, after the information lines of all so far. Undefined when the module restarted.
   */
  private async execute(commands: readonly ParsedCommand[], gen: number): Promise<Reply | undefined> {
    const lines: string[] = [];
    for (let k = 0; ; k++) {
      const command = commands[k];
      const handler = this.table.get(command.name);
      const reply = handler ? await handler(command) : error();
      if (gen !== this.gen) return undefined;
      lines.push(...reply.lines);
      if (k === commands.length - 1 || reply.final !== 'OK' || reply.endsLine) return { ...reply, lines };
      reply.after?.();
    }
  }

  // ── output ──

  write(bytes: Buffer | string): void {
    if (this.modeNow === 'off' || this.modeNow === 'booting') return;
    const b = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes);
    this.txBytes += b.length;
    this.tx.push(b);
  }

  private flushTx(): void {
    const out = this.tx.take();
    if (out.length > 0) this.opts.onData(out);
  }

  /** A response on the line, as the faults let it through. */
  private sendReply(reply: Reply): void {
    const text = this.framing.frame(reply, this.faults.takeMidResponseUrcs());
    const bytes = this.faults.shapeResponse(text);
    if (bytes) this.write(bytes);
  }

  /** An unsolicited result code; held back in data mode and during a chained line, lost while booting. */
  urc(line: string): void {
    if (this.modeNow === 'data' || this.urcsWaitForLine) {
      this.heldUrcs.push(line);
      return;
    }
    this.write(`\r\n${line}\r\n`);
  }

  private releaseUrcs(): void {
    for (const line of this.heldUrcs.splice(0)) this.urc(line);
  }

  // ── data mode ──

  enterDataMode(sink: DataSink): void {
    this.modeNow = 'data';
    this.sink = sink;
  }

  leaveDataMode(reply: Reply): void {
    this.sink = undefined;
    this.modeNow = 'command';
    this.sendReply(reply);
    this.releaseUrcs();
  }
}
