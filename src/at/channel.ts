// The AT channel (DESIGN.md §1 src/at): one command in flight, line framing, final result codes,
// per-command timeouts, URCs, upload data mode, and reopening the transport with backoff.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { checksum16 } from './checksum.js';
import {
  AtError,
  AtErrorResult,
  ChecksumError,
  ClosedError,
  CmeError,
  CmsError,
  TimeoutError,
} from './errors.js';
import { LineFramer } from './framing.js';
import { classifyLine, responsePrefixOf, type Phase } from './lines.js';
import { Link } from './link.js';
import type {
  AtCommander,
  AtCommanderEvents,
  AtResponse,
  CommandOptions,
  Transport,
  UploadOptions,
  UploadResult,
} from './types.js';
import { UrcRouter, type UrcHandler, type UrcOptions } from './urc-router.js';

export interface AtChannelOptions {
  /** Makes a NEW transport for every (re)open. */
  openTransport: () => Transport;
  logger: Logger;
  /** Default per-command timeout (DESIGN.md §3 modem.commandTimeoutMs). */
  defaultTimeoutMs?: number;
  /** First reopen delay after a failed open or a lost transport; doubles up to reopenMaxMs. */
  reopenMinMs?: number;
  reopenMaxMs?: number;
  /** Timeout of each resynchronisation probe after a timeout. */
  resyncTimeoutMs?: number;
  /** Silence before and after "+++" (DESIGN.md §6: about a second). */
  escapeGuardMs?: number;
}

export type AtChannelEvents = AtCommanderEvents;

/** The probe that resynchronises the line after a timeout: a 27.007 query with a distinct answer. */
const RESYNC_COMMAND = 'AT+CMEE?';
const RESYNC_PREFIX = '+CMEE:';
const RESYNC_TRIES = 3;
const ESCAPE_SEQUENCE = '+++';
/** The module's ACK in upload mode: a bare "A", without CR/LF. */
const ACK_TOKENS: readonly string[] = ['A'];

type WaitResult = { kind: 'ok'; lines: string[] } | { kind: 'connect' } | { kind: 'ack' };

interface Waiter {
  cmd: string;
  phase: Phase;
  prefix?: string;
  lines: string[];
  sawInfo: boolean;
  settled: boolean;
  /** The bytes were handed to the transport (the module may have them even if the port closes). */
  writeStarted: boolean;
  timer?: NodeJS.Timeout;
  promise: Promise<WaitResult>;
  resolve: (r: WaitResult) => void;
  reject: (e: Error) => void;
}

interface Job {
  cmd: string;
  /** An escape job recovers the line itself; it must not be preceded by another recovery. */
  recovery: boolean;
  run: () => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

interface Delay {
  timer: NodeJS.Timeout;
  reject: (e: Error) => void;
}

const UPLOAD_PHASES: ReadonlySet<Phase> = new Set(['connect', 'ack', 'final']);
/**
 * URCs a module sends when it has (re)started: it then is in command mode, so an upload it was
 * taking will never be acknowledged (DESIGN.md §6 "the module rebooting mid-message").
 */
const RESTART_URCS: ReadonlySet<string> = new Set(['RDY']);
const FINAL_INFO = /^\+[A-Z0-9_]+:\s*(\d+)\s*,\s*([0-9A-Fa-f]+)\s*$/i;

export class AtChannel extends EventEmitter<AtChannelEvents> implements AtCommander {
  private readonly log: Logger;
  private readonly defaultTimeoutMs: number;
  private readonly urcs: UrcRouter;
  private readonly resyncTimeoutMs: number;
  private readonly escapeGuardMs: number;
  private readonly link: Link;
  private readonly framer: LineFramer;

  private connected = false;
  /** The link generation the job in hand began on. */
  private jobGeneration = 0;

  private lastRxAt = 0;
  /**
   * Last write, or the opening of the transport: another process (an mmsd that crashed) may have
   * written just before we opened it, so the silence "+++" needs is counted from there too.
   */
  private lastTxAt = 0;
  private waiter: Waiter | undefined;
  /** The last commands written: their echo may still arrive (echo can come back on at any time). */
  private recentCommands: string[] = [];
  private readonly queue: Job[] = [];
  private pumping = false;
  private readonly delays = new Set<Delay>();
  private needResync = false;
  private needEscape = false;
  /** An RDY arrived during the upload in hand: the module left data mode by restarting. */
  private restartedInUpload = false;
  /** Between "+++" and the probe: what the module says then (an upload's result) is for no one. */
  private escaping = false;

  constructor(opts: AtChannelOptions) {
    super();
    this.log = opts.logger.child({ part: 'at' });
    this.defaultTimeoutMs = opts.defaultTimeoutMs ?? 5000;
    this.urcs = new UrcRouter((err, line) => this.log.error({ err, line }, 'URC handler threw'));
    this.resyncTimeoutMs = opts.resyncTimeoutMs ?? 1000;
    this.escapeGuardMs = opts.escapeGuardMs ?? 1000;
    this.framer = new LineFramer({
      tokens: () => {
        const w = this.activeWaiter();
        return w && (w.phase === 'ack' || w.phase === 'final') ? ACK_TOKENS : [];
      },
      line: (line) => this.onLine(line),
      raw: () => undefined,
      overlong: (bytes) => this.log.warn({ bytes }, 'dropping an overlong unterminated line'),
    });
    this.link = new Link({
      openTransport: opts.openTransport,
      log: this.log,
      reopenMinMs: opts.reopenMinMs ?? 500,
      reopenMaxMs: opts.reopenMaxMs ?? 30_000,
      opened: () => this.onOpened(),
      data: (chunk) => this.onData(chunk),
      lost: (err, port) => this.onTransportClose(err, port),
    });
  }

  get isConnected(): boolean {
    return this.connected && this.link.isOpen;
  }

  /** Opens the transport once; on failure keeps retrying in the background with backoff. */
  start(): Promise<void> {
    return this.link.start();
  }

  /** Stops reopening, fails every queued and in-flight command with ClosedError, closes the transport. */
  async stop(): Promise<void> {
    const wasConnected = await this.link.stop(() => {
      this.dropTransport();
      this.failAll('stopped');
    });
    if (wasConnected) this.emitSafe('disconnected');
  }

  onUrc(prefix: string, handler: UrcHandler, opts?: UrcOptions): () => void {
    return this.urcs.add(prefix, handler, opts);
  }

  command(cmd: string, opts: CommandOptions = {}): Promise<AtResponse> {
    const bad = checkCommand(cmd);
    if (bad) return Promise.reject(bad);
    const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
    return this.enqueue(cmd, false, async () => {
      const r = await this.exchange(cmd, 'command', opts.prefix, timeoutMs);
      return { lines: r.kind === 'ok' ? r.lines : [] };
    });
  }

  upload(cmd: string, data: Buffer, opts: UploadOptions = {}): Promise<UploadResult> {
    const bad = checkCommand(cmd);
    if (bad) return Promise.reject(bad);
    // The module cannot take a 0-byte file in data mode: refuse before it waits for bytes.
    if (data.length === 0) return Promise.reject(new AtError(`${cmd}: refusing to upload 0 bytes`, cmd));
    const blockSize = opts.blockSize ?? 1024;
    if (!Number.isInteger(blockSize) || blockSize < 1) {
      return Promise.reject(new AtError(`${cmd}: invalid block size ${blockSize}`, cmd));
    }
    const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
    const prefix = opts.prefix ?? responsePrefixOf(cmd);
    return this.enqueue(cmd, false, () => this.runUpload(cmd, data, blockSize, timeoutMs, prefix, opts.onProgress));
  }

  /** Leaves a data mode the module may still be in: silence, "+++", silence, then resynchronise. */
  escapeDataMode(): Promise<void> {
    return this.enqueue(ESCAPE_SEQUENCE, true, () => this.escape());
  }

  // ---- transport lifecycle (the link opens and reopens; this keeps the channel's side) ----

  private onOpened(): void {
    this.connected = true;
    this.framer.reset();
    this.lastTxAt = Date.now();
    this.emitSafe('connected');
  }

  private onTransportClose(err: Error | undefined, port: string): void {
    // DESIGN.md §6: a port lost mid-upload leaves the module in data mode (it keeps its state
    // while the USB port re-enumerates): leave it with "+++" before the first command.
    const w = this.activeWaiter();
    if (w && UPLOAD_PHASES.has(w.phase)) this.needEscape = true;
    this.dropTransport();
    this.log.warn({ err, port }, 'modem port closed');
    this.failAll(err ? `transport closed: ${err.message}` : 'transport closed');
    this.emitSafe('disconnected', err);
  }

  private dropTransport(): void {
    this.connected = false;
    this.framer.reset();
    const cut = this.urcs.reset();
    if (cut !== undefined) this.log.warn({ line: cut }, 'URC dropped: the port closed before its trailing lines');
  }

  /** Every pending thing ends with ClosedError: the waiter, queued jobs, escape's silences. */
  private failAll(reason: string): void {
    const w = this.waiter;
    if (w && !w.settled) this.settle(w, new ClosedError(w.cmd, reason, { mayHaveArrived: w.writeStarted }));
    for (const job of this.queue.splice(0)) job.reject(new ClosedError(job.cmd, reason));
    for (const d of [...this.delays]) {
      clearTimeout(d.timer);
      this.delays.delete(d);
      d.reject(new ClosedError(ESCAPE_SEQUENCE, reason));
    }
  }

  // ---- the queue: one job at a time ----

  private enqueue<T>(cmd: string, recovery: boolean, run: () => Promise<T>): Promise<T> {
    if (!this.isConnected) return Promise.reject(new ClosedError(cmd, 'not connected'));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ cmd, recovery, run, resolve: resolve as (v: unknown) => void, reject });
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (let job = this.queue.shift(); job; job = this.queue.shift()) {
        this.jobGeneration = this.link.generation;
        try {
          if (!job.recovery) await this.recover();
          job.resolve(await job.run());
        } catch (err) {
          job.reject(err instanceof Error ? err : new AtError(String(err), job.cmd));
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  /** After a timeout the line may carry a late answer (or the module may sit in data mode). */
  private async recover(): Promise<void> {
    if (this.needEscape) await this.escape();
    else if (this.needResync) await this.resync();
  }

  private async escape(): Promise<void> {
    this.needEscape = false;
    // §6: "+++" is an escape only when framed by about a second of silence.
    await this.waitForSilence(this.escapeGuardMs);
    this.log.debug({ at: ESCAPE_SEQUENCE }, 'tx');
    this.escaping = true;
    try {
      await this.send(ESCAPE_SEQUENCE, Buffer.from(ESCAPE_SEQUENCE, 'ascii'));
      // A fifth more than the guard: the module's own guard timer starts when "+++" reaches it.
      await this.delay(Math.ceil(this.escapeGuardMs * 1.2));
      // If the module was not in data mode, "+++" sits in its command buffer: end that line here
      // (its ERROR is dropped) so that the probe arrives on a line of its own.
      await this.send(ESCAPE_SEQUENCE, Buffer.from('\r', 'ascii'));
      this.needResync = true;
      await this.resync();
    } finally {
      this.escaping = false;
    }
  }

  /**
   * Sends the probe until its own answer ("+CMEE: n" then OK) comes back; a stray OK or ERROR
   * of the timed-out command arriving first is not taken for it.
   */
  private async resync(): Promise<void> {
    for (let attempt = 1; attempt <= RESYNC_TRIES; attempt++) {
      try {
        await this.exchange(RESYNC_COMMAND, 'resync', RESYNC_PREFIX, this.resyncTimeoutMs);
        this.needResync = false;
        this.log.debug({ attempt }, 'line resynchronised');
        return;
      } catch (err) {
        if (err instanceof ClosedError) throw err;
        this.log.debug({ err, attempt }, 'resynchronisation probe failed');
      }
    }
    // Give the next command its chance; if the module is gone it times out and we come back here.
    this.needResync = false;
    this.log.warn({ tries: RESYNC_TRIES }, 'could not resynchronise the AT line');
  }

  private async waitForSilence(ms: number): Promise<void> {
    // Bounded: a module that never stops talking still gets its "+++" eventually.
    for (let i = 0; i < 10; i++) {
      // Silence both ways: the module counts the guard from the last byte it received.
      const quietFor = Date.now() - Math.max(this.lastRxAt, this.lastTxAt);
      if (quietFor >= ms) return;
      await this.delay(ms - quietFor);
    }
  }

  private delay(ms: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const d: Delay = {
        timer: setTimeout(() => {
          this.delays.delete(d);
          resolve();
        }, ms),
        reject,
      };
      this.delays.add(d);
    });
  }

  // ---- one exchange: write, then wait for what the phase expects ----

  private async runUpload(
    cmd: string,
    data: Buffer,
    blockSize: number,
    timeoutMs: number,
    prefix: string | undefined,
    onProgress: ((sent: number, total: number) => void) | undefined,
  ): Promise<UploadResult> {
    const total = data.length;
    this.log.debug({ at: cmd, size: total, blockSize }, 'upload');
    await this.exchange(cmd, 'connect', undefined, timeoutMs);
    let sent = 0;
    let finalLines: string[] | undefined;
    this.restartedInUpload = false;
    try {
      while (finalLines === undefined) {
        const block = data.subarray(sent, sent + blockSize);
        const last = sent + block.length >= total;
        const r = await this.exchange(cmd, last ? 'final' : 'ack', prefix, timeoutMs, block);
        sent += block.length;
        // OK before the last block: the module took fewer bytes than we have; the size check says so.
        if (r.kind === 'ok') finalLines = r.lines;
        else this.progress(cmd, onProgress, sent, total);
      }
    } catch (err) {
      // Between CONNECT and the final code the module is in data mode, deaf to AT, whatever ended
      // our side (a failed write, a closed port, a timeout): leave it with "+++" before the next
      // command, on this port or the one that comes back. Not after a restart: it is in command mode.
      if (!this.restartedInUpload) this.needEscape = true;
      throw err;
    }
    this.progress(cmd, onProgress, sent, total);
    const info = finalLines.map((l) => FINAL_INFO.exec(l)).find((m) => m !== null);
    if (!info) throw new AtError(`${cmd}: no "<size>,<checksum>" line in the answer`, cmd);
    const reported = { size: Number(info[1]), checksum: parseInt(info[2], 16) };
    const expected = { size: total, checksum: checksum16(data) };
    if (reported.size !== expected.size || reported.checksum !== expected.checksum) {
      throw new ChecksumError(cmd, expected, reported);
    }
    return { lines: finalLines, size: reported.size, checksum: reported.checksum };
  }

  private progress(cmd: string, cb: ((sent: number, total: number) => void) | undefined, sent: number, total: number): void {
    try {
      cb?.(sent, total);
    } catch (err) {
      this.log.warn({ err, at: cmd }, 'upload progress listener threw');
    }
  }

  /**
   * Arms a waiter, writes (the command + CR, or a data block), starts the timer only once the
   * write resolved (zigbee-herdsman waitress), and waits.
   */
  private async exchange(
    cmd: string,
    phase: Phase,
    prefix: string | undefined,
    timeoutMs: number,
    payload?: Buffer,
  ): Promise<WaitResult> {
    const w = this.arm(cmd, phase, prefix);
    try {
      if (payload) {
        this.log.debug({ at: cmd, bytes: payload.length }, 'tx data');
      } else {
        this.log.debug({ at: cmd }, 'tx');
        this.recentCommands = [cmd, ...this.recentCommands.filter((c) => c !== cmd)].slice(0, 2);
      }
      // From here the module may get the bytes, even if the port closes before the write resolves.
      w.writeStarted = true;
      await this.send(cmd, payload ?? Buffer.from(`${cmd}\r`, 'utf8'));
      if (!w.settled) w.timer = setTimeout(() => this.onTimeout(w, timeoutMs), timeoutMs);
    } catch (err) {
      if (!w.settled) this.settle(w, err instanceof Error ? err : new ClosedError(cmd, String(err)));
    }
    try {
      return await w.promise;
    } finally {
      if (w.timer) clearTimeout(w.timer);
      if (this.waiter === w) this.waiter = undefined;
    }
  }

  private arm(cmd: string, phase: Phase, prefix: string | undefined): Waiter {
    let resolve!: (r: WaitResult) => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<WaitResult>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // The answer may come while exchange() still awaits the write (a pty drains after the module
    // replied): an error then would reject a promise nobody awaits yet, which ends the process.
    // exchange() awaits it right after the write and gets the same rejection.
    promise.catch(() => undefined);
    const w: Waiter = { cmd, phase, prefix, lines: [], sawInfo: false, settled: false, writeStarted: false, promise, resolve, reject };
    this.waiter = w;
    return w;
  }

  private settle(w: Waiter, outcome: WaitResult | Error): void {
    if (w.settled) return;
    w.settled = true;
    if (w.timer) clearTimeout(w.timer);
    if (outcome instanceof Error) w.reject(outcome);
    else w.resolve(outcome);
  }

  private onTimeout(w: Waiter, timeoutMs: number): void {
    if (w.settled) return;
    // In data mode the module is deaf to AT commands until "+++" or its own upload timeout.
    if (UPLOAD_PHASES.has(w.phase)) this.needEscape = true;
    else this.needResync = true;
    this.log.warn({ at: w.cmd, timeoutMs }, 'AT command timed out');
    this.settle(w, new TimeoutError(w.cmd, timeoutMs));
  }

  /** Never hangs on a closed port: checks isOpen and the generation first, fails instead. */
  private async send(cmd: string, bytes: Buffer): Promise<void> {
    if (!this.link.writable(this.jobGeneration)) throw new ClosedError(cmd, 'not open');
    try {
      this.lastTxAt = Date.now();
      await this.link.write(bytes);
      this.lastTxAt = Date.now();
    } catch (err) {
      throw new ClosedError(cmd, `write failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  // ---- receiving ----

  private activeWaiter(): Waiter | undefined {
    const w = this.waiter;
    return w && !w.settled ? w : undefined;
  }

  private onData(chunk: Buffer): void {
    this.lastRxAt = Date.now();
    this.framer.push(chunk);
  }

  private onLine(line: string): void {
    const w = this.activeWaiter();
    this.log.debug({ at: w?.cmd, line }, 'rx');
    // The lines a registered URC said follow it are its own, whatever they look like.
    if (this.urcs.waitingForLines) {
      if (line.trim() !== '') this.urcs.take(line.trim());
      return;
    }
    const c = classifyLine(line, {
      phase: w?.phase ?? (this.escaping ? 'resync' : undefined),
      prefix: w?.prefix,
      echoes: w ? [w.cmd, ...this.recentCommands] : this.recentCommands,
      urcPrefixes: this.urcs.prefixes(),
    });
    switch (c.kind) {
      case 'empty':
      case 'echo':
        return;
      case 'garbage':
        this.log.warn({ at: w?.cmd, line: JSON.stringify(line) }, 'garbage on the AT line');
        if (!w) this.emitSafe('unsolicited', line);
        return;
      case 'discard':
        this.log.debug({ at: w?.cmd, line }, 'discarded while resynchronising');
        return;
      case 'urc':
        this.urcs.route(line.trim());
        this.checkRestart(w, line);
        return;
      case 'unsolicited':
        this.log.debug({ at: w?.cmd, line }, 'a line for no one: dropped');
        this.emitSafe('unsolicited', line.trim());
        this.checkRestart(w, line);
        return;
      case 'info':
        if (w) {
          w.lines.push(line.trim());
          w.sawInfo = true;
        }
        return;
      case 'connect':
        if (w) this.settle(w, { kind: 'connect' });
        return;
      case 'ack':
        if (w?.phase === 'ack') this.settle(w, { kind: 'ack' });
        return;
      case 'ok':
        if (!w || (w.phase === 'resync' && !w.sawInfo)) return this.stray(line);
        if (w.phase === 'connect') return this.settle(w, new AtError(`${w.cmd}: OK without CONNECT`, w.cmd));
        return this.settle(w, { kind: 'ok', lines: w.lines });
      case 'error':
      case 'cme':
      case 'cms':
        // While resynchronising, an error is the timed-out command's late answer.
        if (!w || w.phase === 'resync') return this.stray(line);
        return this.settle(w, finalError(w.cmd, c));
    }
  }

  /**
   * A restarted module is in command mode: the upload's next ACK or result never comes, so fail it
   * now instead of after its (long) timeout; no escape is needed.
   */
  private checkRestart(w: Waiter | undefined, line: string): void {
    if (w && UPLOAD_PHASES.has(w.phase) && RESTART_URCS.has(line.trim())) {
      this.restartedInUpload = true;
      this.settle(w, new AtError(`${w.cmd}: module restarted during the upload (${line.trim()})`, w.cmd));
    }
  }

  private stray(line: string): void {
    this.log.debug({ line }, 'stray final result code dropped');
  }

  private emitSafe<K extends keyof AtChannelEvents>(event: K, ...args: AtChannelEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: AtChannelEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      this.log.error({ err, event }, 'AT channel listener threw');
    }
  }
}

function finalError(
  cmd: string,
  c: { kind: 'error'; text: string } | { kind: 'cme'; code: number; text?: string } | { kind: 'cms'; code: number; text?: string },
): AtError {
  switch (c.kind) {
    case 'cme':
      return new CmeError(cmd, c.code, c.text);
    case 'cms':
      return new CmsError(cmd, c.code);
    case 'error': {
      // "NO CARRIER" and the like end a command as "ERROR" does; keep their text in the message.
      const e = new AtErrorResult(cmd);
      if (c.text !== 'ERROR') e.message = `${cmd}: ${c.text}`;
      return e;
    }
  }
}

/** A command must be one line: CR, LF or Ctrl-Z inside it would end it early or send it as text. */
function checkCommand(cmd: string): AtError | undefined {
  if (cmd === '' || /[\r\n\x1a\x1b]/.test(cmd)) {
    return new AtError(`refusing a command with CR, LF, Ctrl-Z or ESC: ${JSON.stringify(cmd)}`, cmd.replace(/[\r\n\x1a\x1b]/g, ' '));
  }
  return undefined;
}
