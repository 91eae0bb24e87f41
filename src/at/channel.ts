// The AT channel (DESIGN.md §1 src/at): one command in flight, final result codes, per-command
// timeouts and resynchronisation, URCs routed to whoever registered them, data mode run for a
// driver's protocol. Framing (framing.ts), classification (lines.ts), the link (link.ts) and the
// URC router (urc-router.ts) are parts of their own. Knows no vendor.
import { TypedEmitter } from '../core/events.js';
import type { Logger } from 'pino';
import { LOG_EVENTS } from '../core/log-events.js';
import { checkProtocol, Transfer } from './data-mode.js';
import { AtError, ClosedError, finalError, TimeoutError } from './errors.js';
import { LineFramer } from './framing.js';
import { checkCommand, classifyLine, responsePrefixOf, type Phase } from './lines.js';
import { Link } from './link.js';
import { JobQueue } from './queue.js';
import { ESCAPE_SEQUENCE, LineRecovery, RESYNC_COMMAND, RESYNC_PREFIX } from './recovery.js';
import type {
  AtCommander,
  AtCommanderEvents,
  AtResponse,
  CommandOptions,
  PduCommandOptions,
  PduResponse,
  DataModeProtocol,
  DataModeReply,
  DataModeSession,
  DataModeUntil,
  Transport,
} from './types.js';
import { UrcRouter, type UrcHandler, type UrcOptions } from './urc-router.js';
import { newWaiter, settleWaiter, type WaitFor, type WaitResult, type Waiter } from './waiter.js';
import { errorText } from '../core/errors.js';

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

/** From the data-mode command's write to its final result: the module may be deaf to AT. */
const DATA_PHASES: ReadonlySet<Phase> = new Set(['connect', 'data']);

export class AtChannel extends TypedEmitter<AtChannelEvents> implements AtCommander {
  private readonly log: Logger;
  private readonly defaultTimeoutMs: number;
  private readonly urcs: UrcRouter;
  private readonly recovery: LineRecovery;
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
  private readonly queue: JobQueue;
  /** The data-mode transfer in hand, from its command's write to the end of its protocol. */
  private transfer: Transfer | undefined;

  constructor(opts: AtChannelOptions) {
    super();
    this.log = opts.logger.child({ part: 'at' });
    this.defaultTimeoutMs = opts.defaultTimeoutMs ?? 5000;
    this.urcs = new UrcRouter((err, line) => this.log.error({ err, line }, 'URC handler threw'));
    this.recovery = new LineRecovery({
      log: this.log,
      escapeGuardMs: opts.escapeGuardMs ?? 1000,
      resyncTimeoutMs: opts.resyncTimeoutMs ?? 1000,
      write: (label, bytes) => this.send(label, bytes),
      probe: async (timeoutMs) => {
        await this.exchange(RESYNC_COMMAND, 'resync', RESYNC_PREFIX, timeoutMs);
      },
      lastActivityAt: () => Math.max(this.lastRxAt, this.lastTxAt),
    });
    this.framer = new LineFramer({
      tokens: () => this.dataTokens(),
      line: (line) => this.onLine(line),
      raw: (bytes) => this.onRaw(bytes),
      overlong: (bytes) => this.log.warn({ bytes }, 'dropping an overlong unterminated line'),
    });
    this.queue = new JobQueue({
      accepting: () => this.isConnected,
      starting: () => (this.jobGeneration = this.link.generation),
      recover: () => this.recovery.run(),
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

  command(cmd: string, opts: PduCommandOptions): Promise<PduResponse>;
  command(cmd: string, opts?: CommandOptions): Promise<AtResponse>;
  command(cmd: string, opts: CommandOptions = {}): Promise<AtResponse | PduResponse> {
    const bad =
      checkCommand(cmd) ??
      (opts.pdu && !opts.prefix ? new AtError(`${cmd}: a PDU command needs the prefix of its header lines`, cmd) : undefined);
    if (bad) return Promise.reject(bad);
    const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
    const pdu = opts.pdu ?? false;
    return this.queue.enqueue(cmd, false, async () => {
      const r = await this.exchange(cmd, 'command', opts.prefix, timeoutMs, undefined, { pdu });
      const lines = r.kind === 'ok' ? r.lines : [];
      return pdu ? { lines, pdus: r.kind === 'ok' ? r.pdus : [] } : { lines };
    });
  }

  dataMode<R>(cmd: string, protocol: DataModeProtocol<R>, opts: CommandOptions = {}): Promise<R> {
    const bad = checkCommand(cmd) ?? checkProtocol(cmd, protocol);
    if (bad) return Promise.reject(bad);
    const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
    const prefix = opts.prefix ?? responsePrefixOf(cmd);
    return this.queue.enqueue(cmd, false, () => this.runDataMode(cmd, new Transfer(protocol, prefix), prefix, timeoutMs));
  }

  /** Leaves a data mode the module may still be in: silence, "+++", silence, then resynchronise. */
  escapeDataMode(): Promise<void> {
    return this.queue.enqueue(ESCAPE_SEQUENCE, true, () => this.recovery.escape());
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
    if (w && DATA_PHASES.has(w.phase)) this.recovery.needEscape = true;
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
    this.queue.failQueued(reason);
    this.recovery.failDelays(reason);
  }

  // ---- one exchange: write, then wait for what the phase expects ----

  /**
   * Writes the command, waits for CONNECT, then runs the protocol. Between CONNECT and the final
   * OK the module is in data mode, deaf to AT, whatever ended our side (a failed write, a closed
   * port, a timeout, the protocol itself): it is left with "+++" before the next command, on this
   * port or the one that comes back. Not after a restart URC: the module is in command mode.
   */
  private async runDataMode<R>(cmd: string, t: Transfer<R>, prefix: string | undefined, timeoutMs: number): Promise<R> {
    this.log.debug({ at: cmd, ...t.protocol.logFields }, t.protocol.name);
    this.transfer = t;
    try {
      const c = await this.exchange(cmd, 'connect', undefined, timeoutMs);
      const step = (until: DataModeUntil, data?: Buffer): Promise<DataModeReply> =>
        this.transferStep(t, cmd, prefix, timeoutMs, until, data);
      const session: DataModeSession = {
        command: cmd,
        connectLine: c.kind === 'connect' ? c.line : 'CONNECT',
        log: this.log,
        send: (data, until) => step(until, data),
        receive: (until) => step(until),
      };
      try {
        return await t.protocol.run(session);
      } catch (err) {
        if (!t.finished && !t.restarted) this.recovery.needEscape = true;
        throw err;
      }
    } finally {
      if (this.transfer === t) this.transfer = undefined;
      if (this.waiter?.parked) this.waiter = undefined;
    }
  }

  /** One wait of a protocol: a write (or none) and what ends the wait. */
  private async transferStep(
    t: Transfer,
    cmd: string,
    prefix: string | undefined,
    timeoutMs: number,
    until: DataModeUntil,
    data?: Buffer,
  ): Promise<DataModeReply> {
    if (this.transfer !== t || t.finished) throw new AtError(`${cmd}: the ${t.protocol.name} is over`, cmd);
    if (until === 'bytes') {
      const unavailable = t.rawUnavailable(cmd);
      if (unavailable) throw unavailable;
      const held = t.takeHeld();
      if (held) return { kind: 'bytes', data: held };
    }
    const r = await this.exchange(cmd, 'data', prefix, timeoutMs, data, { until });
    switch (r.kind) {
      case 'ok':
        t.finished = true;
        return { kind: 'final', lines: r.lines };
      case 'connect':
        throw new AtError(`${cmd}: a second CONNECT`, cmd);
      default:
        return r;
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
    wait: WaitFor = {},
  ): Promise<WaitResult> {
    const parked = phase === 'data' ? this.unpark() : undefined;
    if (parked) parked.until = wait.until;
    const w = parked ?? this.arm(cmd, phase, prefix, wait);
    try {
      if (phase === 'data') {
        if (payload) this.log.debug({ at: cmd, bytes: payload.length }, LOG_EVENTS.txData);
      } else {
        this.log.debug({ at: cmd }, LOG_EVENTS.tx);
        this.recentCommands = [cmd, ...this.recentCommands.filter((c) => c !== cmd)].slice(0, 2);
      }
      const bytes = phase === 'data' ? payload : Buffer.from(`${cmd}\r`, 'utf8');
      // Not when the module ended data mode already (its final result came while parked).
      if (bytes && !w.settled) {
        // From here the module may get the bytes, even if the port closes before the write resolves.
        w.writeStarted = true;
        await this.send(cmd, bytes);
      }
      // A token that came between two waits (several blocks in flight) ends this one at once.
      const held = parked && wait.until === 'token' && !w.settled ? this.transfer?.takeToken() : undefined;
      if (held !== undefined) this.settle(w, { kind: 'token', token: held });
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

  private arm(cmd: string, phase: Phase, prefix: string | undefined, wait?: WaitFor): Waiter {
    const w = newWaiter(cmd, phase, prefix, wait);
    this.waiter = w;
    return w;
  }

  private settle(w: Waiter, outcome: WaitResult | Error): void {
    if (!settleWaiter(w, outcome)) return;
    // Still in data mode: keep listening, at once (the rest of this chunk may be for the protocol).
    if (!(outcome instanceof Error) && outcome.kind !== 'ok' && this.transfer && DATA_PHASES.has(w.phase)) {
      this.arm(w.cmd, 'data', this.transfer.prefix).parked = true;
    }
  }

  /** The waiter parked between a transfer's waits, for the next one to take over. */
  private unpark(): Waiter | undefined {
    const w = this.waiter;
    if (!w?.parked) return undefined;
    w.parked = false;
    return w;
  }

  private onTimeout(w: Waiter, timeoutMs: number): void {
    if (w.settled) return;
    // In data mode the module is deaf to AT commands until "+++" or its own timeout.
    if (DATA_PHASES.has(w.phase)) this.recovery.needEscape = true;
    else this.recovery.needResync = true;
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
      throw new ClosedError(cmd, `write failed: ${errorText(err)}`);
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

  /** The protocol's tokens, while a wait in data mode is armed. */
  private dataTokens(): readonly string[] {
    return this.activeWaiter()?.phase === 'data' ? (this.transfer?.tokens ?? []) : [];
  }

  /** Raw bytes after CONNECT (never logged): to the protocol once all have come. */
  private onRaw(bytes: Buffer): void {
    const t = this.transfer;
    const all = t?.addRaw(bytes);
    if (!t || !all) return;
    const w = this.activeWaiter();
    if (w?.phase === 'data' && w.until === 'bytes') {
      t.handedOut();
      this.settle(w, { kind: 'bytes', data: all });
    } else {
      t.hold(all);
    }
  }

  private onLine(line: string): void {
    const w = this.activeWaiter();
    this.log.debug({ at: w?.cmd, line }, LOG_EVENTS.rx);
    // The lines a registered URC said follow it are its own, whatever they look like.
    if (this.urcs.waitingForLines) {
      if (line.trim() !== '') this.urcs.take(line.trim());
      return;
    }
    const c = classifyLine(line, {
      phase: w?.phase ?? (this.recovery.escaping ? 'resync' : undefined),
      prefix: w?.prefix,
      tokens: w?.phase === 'data' ? this.transfer?.tokens : undefined,
      bodyPending: w?.header !== undefined,
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
          if (w.pdu) w.header = line.trim();
        }
        return;
      case 'body':
        if (w?.header !== undefined) {
          w.lines.push(line.trim());
          w.pdus.push({ header: w.header, body: line.trim() });
          w.header = undefined;
        }
        return;
      case 'connect':
        if (w) this.onConnect(w, line.trim());
        return;
      case 'token':
        // A token the wait is not for (an ACK before the final result) is dropped; one that comes
        // between two waits is kept for the next wait for a token (several blocks in flight).
        if (w?.phase === 'data' && w.until === 'token') this.settle(w, { kind: 'token', token: c.token });
        else if (w?.parked) this.transfer?.holdToken(c.token);
        return;
      case 'ok':
        if (!w || (w.phase === 'resync' && !w.sawInfo)) return this.stray(line);
        if (w.phase === 'connect') return this.settle(w, new AtError(`${w.cmd}: OK without CONNECT`, w.cmd));
        if (w.header !== undefined) return this.settle(w, new AtError(`${w.cmd}: "${w.header}" came without its PDU line`, w.cmd));
        return this.settle(w, { kind: 'ok', lines: w.lines, pdus: w.pdus });
      case 'error':
      case 'cme':
      case 'cms':
        // While resynchronising, an error is the timed-out command's late answer.
        if (!w || w.phase === 'resync') return this.stray(line);
        return this.settle(w, finalError(w.cmd, c));
    }
  }

  /** CONNECT: raw bytes may follow at once, so the framer is told before the next byte is read. */
  private onConnect(w: Waiter, line: string): void {
    const t = this.transfer;
    try {
      const n = t?.rawAfter(w.cmd, line) ?? 0;
      if (n > 0) this.framer.captureRaw(n);
    } catch (err) {
      this.settle(w, err instanceof Error ? err : new AtError(String(err), w.cmd));
      return;
    }
    this.settle(w, { kind: 'connect', line });
  }

  /**
   * A restarted module is in command mode (DESIGN.md §6 "the module rebooting mid-message"): the
   * transfer's next token or result never comes, so fail it now instead of after its (long)
   * timeout; no escape is needed. The protocol names the URCs that say so.
   */
  private checkRestart(w: Waiter | undefined, line: string): void {
    const t = this.transfer;
    if (w && t && DATA_PHASES.has(w.phase) && t.isRestart(line.trim())) {
      t.restarted = true;
      this.settle(w, new AtError(`${w.cmd}: module restarted during the ${t.protocol.name} (${line.trim()})`, w.cmd));
    }
  }

  private stray(line: string): void {
    this.log.debug({ line }, 'stray final result code dropped');
  }

  private emitSafe<K extends keyof AtChannelEvents>(event: K, ...args: AtChannelEvents[K]): void {
    try {
      this.emit(event, ...args);
    } catch (err) {
      this.log.error({ err, event }, 'AT channel listener threw');
    }
  }
}
