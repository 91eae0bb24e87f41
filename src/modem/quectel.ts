// The Quectel driver (DESIGN.md §1, §6): the ModemApi the sender and the daemon use, built on
// the typed commands, the health monitor and the send lock. Knows no queue, D-Bus or MQTT.
import type { Logger } from 'pino';
import { AtError, ClosedError, CmeError, CmsError, TimeoutError } from '../at/errors.js';
import type { AtCommander } from '../at/types.js';
import { TypedEmitter } from '../core/events.js';
import { LOG_EVENTS } from '../core/log-events.js';
import { encodeSubject } from './charset.js';
import { parseSendResult } from './answers.js';
import { QuectelCommands } from './commands.js';
import { systemTimers, type ModemConfig, type ModemTimers, type SettingsProvider } from './config.js';
import { HealthMonitor } from './health.js';
import { SendLock } from './lock.js';
import { int, quote } from './quote.js';
import { ModuleSession, type ModuleSessionView } from './session.js';
import {
  SendNotAcceptedError,
  SendOutcomeUnknownError,
  type Charset,
  type ModemApi,
  type ModemIdentity,
  type ModemEvents,
  type ModemStatus,
  type RamSpace,
  type SendParams,
  type SendResult,
  type SimIdentity,
} from './types.js';
import { RESTART_URC, registerQuectelUrcs } from './urcs.js';

/** DESIGN.md §6: how long past `<timeout>` the +QMMSEND result is still awaited. */
export const SEND_RESULT_MARGIN_S = 30;

export interface QuectelModemOptions {
  at: AtCommander;
  logger: Logger;
  config: ModemConfig;
  /** Milliseconds since the epoch; drives the §4.2 restart spacing. */
  clock?: () => number;
  timers?: ModemTimers;
  /**
   * DESIGN.md §10: asked for the carrier settings after every SIM READY, with the SIM's identity;
   * without it the config's `pdp.*` and `mms.*` are used.
   */
  settings?: SettingsProvider;
}

/**
 * Events: ModemEvents, relayed from the health monitor ('identity' when the module's identity is
 * first read or changes, DESIGN.md §13).
 * The sender runs each message inside `withLock()`; the idle health poll is skipped meanwhile.
 */
export class QuectelModem extends TypedEmitter<ModemEvents> implements ModemApi {
  /** Time (clock ms) of the last AT command that got its final OK; 0 before the first. */
  lastAtOkAt = 0;

  private readonly at: AtCommander;
  private readonly log: Logger;
  private readonly config: ModemConfig;
  private readonly clock: () => number;
  private readonly timers: ModemTimers;
  private readonly commands: QuectelCommands;
  private readonly lock = new SendLock();
  /** What the module holds (charset, sendparam, edit buffer, staged files, epoch): its one owner. */
  private readonly module = new ModuleSession();
  private readonly health: HealthMonitor;
  private unregisterUrcs: (() => void) | undefined;
  // The health monitor's events, relayed as the driver's.
  private readonly relayStatus = (s: ModemStatus): boolean => this.emit('status', s);
  private readonly relayRebooted = (): boolean => this.emit('rebooted');
  private readonly relayPdpDeactivated = (ctx: number): boolean => this.emit('pdpDeactivated', ctx);
  private readonly relayIdentity = (id: ModemIdentity): boolean => this.emit('identity', id);

  constructor(o: QuectelModemOptions) {
    super();
    this.at = o.at;
    this.log = o.logger.child({ part: 'modem' });
    this.config = o.config;
    this.clock = o.clock ?? Date.now;
    this.timers = o.timers ?? systemTimers;
    this.commands = new QuectelCommands(o.at, o.config.commandTimeoutMs, () => (this.lastAtOkAt = this.clock()));
    this.health = new HealthMonitor({
      at: o.at,
      commands: this.commands,
      logger: this.log,
      config: o.config,
      clock: this.clock,
      timers: this.timers,
      lock: this.lock,
      session: this.module,
      ...(o.settings ? { settings: o.settings } : {}),
    });
  }

  get status(): ModemStatus {
    return this.health.status;
  }

  /** The module's IMEI, manufacturer, model and firmware (DESIGN.md §13); undefined before the first bring-up. */
  get moduleIdentity(): ModemIdentity | undefined {
    return this.health.moduleIdentity;
  }

  /** The SIM's identity as last read (DESIGN.md §10); undefined before the SIM was first READY. */
  get simIdentity(): SimIdentity | undefined {
    return this.health.simIdentity;
  }

  /** What the module holds, for the sender: the epoch, the charset, the sendparam, the files it staged. */
  get session(): ModuleSessionView {
    return this.module;
  }

  start(): Promise<void> {
    this.unregisterUrcs ??= registerQuectelUrcs(this.at);
    this.health.on('status', this.relayStatus).on('rebooted', this.relayRebooted).on('pdpDeactivated', this.relayPdpDeactivated).on('identity', this.relayIdentity);
    this.health.start();
    return Promise.resolve();
  }

  /** Stops polls and listeners; a command in flight is not waited for (the channel owns it). */
  stop(): Promise<void> {
    this.health.stop();
    this.health.off('status', this.relayStatus).off('rebooted', this.relayRebooted).off('pdpDeactivated', this.relayPdpDeactivated).off('identity', this.relayIdentity);
    this.unregisterUrcs?.();
    this.unregisterUrcs = undefined;
    return Promise.resolve();
  }

  whenReady(signal?: AbortSignal): Promise<void> {
    if (this.status.state === 'ready') return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onStatus = (s: ModemStatus): void => {
        if (s.state !== 'ready') return;
        cleanup();
        resolve();
      };
      const onAbort = (): void => {
        cleanup();
        reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted while waiting for the modem'));
      };
      const cleanup = (): void => {
        this.off('status', onStatus);
        signal?.removeEventListener('abort', onAbort);
      };
      if (signal?.aborted) return onAbort();
      this.on('status', onStatus);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Runs `fn` holding the send lock (one holder at a time). The idle health poll is skipped
   * while it is held or awaited, so no poll runs between the steps of one message.
   */
  withLock<T>(fn: () => Promise<T>): Promise<T> {
    return this.lock.run(fn);
  }

  /**
   * One `AT` round trip for the systemd watchdog when no command succeeded lately; true on OK
   * (it also moves `lastAtOkAt`). Harmless between edit steps: the channel queues it.
   */
  async ping(timeoutMs: number): Promise<boolean> {
    try {
      await this.commands.attention(timeoutMs);
      return true;
    } catch {
      return false;
    }
  }

  // --- editing (spec §2.2, DESIGN.md §6) ---

  /**
   * Empties the edit buffer (AT+QMMSEDIT=0). Skipped when it is known to be empty already: the
   * previous message's clean-up cleared it and nothing was edited since on this module, which
   * saves the clear at the start of each message (DESIGN.md §6, docs/design.md §9).
   */
  mmsClear(): Promise<void> {
    return this.module.clearEditBuffer(() => this.commands.mmsClear());
  }

  /** Before any command that may change the edit buffer: from now on it is not known to be empty. */
  private editing(): void {
    this.module.editing();
  }

  /** AT+QMMSCFG="character",<cs>, only when another charset is (or may be) in force. */
  setCharset(charset: Charset): Promise<void> {
    return this.module.useCharset(charset, () => this.commands.mmsCharset(charset));
  }

  /** AT+QMMSCFG="sendparam",…; the session then holds it (the sender asks it whether to write). */
  setSendParams(p: SendParams): Promise<void> {
    return this.module.writeSendParams(p, () => this.commands.mmsSendParams(p));
  }

  /** Addresses always go under "ASCII" (DESIGN.md §6: firmware may read them as hex otherwise). */
  async addRecipient(kind: 'to' | 'cc' | 'bcc', address: string): Promise<void> {
    quote(address, 'address'); // refuse before anything is written
    await this.setCharset('ASCII');
    this.editing();
    await this.commands.mmsAddAddress(kind, address);
  }

  /** DESIGN.md §6: plain ASCII as is under "ASCII", anything else as hex under `charset` (UTF8 for ASCII). */
  async setSubject(subject: string, charset: Charset): Promise<void> {
    const enc = encodeSubject(subject, charset);
    await this.setCharset(enc.charset);
    this.editing();
    await this.commands.mmsSetSubject(enc.optstring);
  }

  addAttachment(ramName: string): Promise<void> {
    this.editing();
    return this.commands.mmsAddAttachment(ramName);
  }

  // --- RAM files ---

  async uploadFile(ramName: string, data: Buffer, onProgress?: (sent: number, total: number) => void): Promise<void> {
    await this.commands.fileUpload(ramName, data, onProgress, this.config.uploadWindow);
  }

  listFiles(): Promise<Map<string, number>> {
    return this.commands.fileList();
  }

  ramSpace(): Promise<RamSpace> {
    return this.commands.ramSpace();
  }

  deleteFile(ramName: string): Promise<void> {
    return this.commands.fileDelete(ramName);
  }

  // --- sending (spec §2.3, DESIGN.md §6) ---

  async send(timeoutS: number, onAccepted: (resultWaitMs: number) => Promise<void>): Promise<SendResult> {
    int(timeoutS, 1, 65535, 'send timeout');
    // Listening before the command is written: the result may follow the OK at once.
    const outcome = new SendOutcome(this.at, this.timers);
    this.editing();
    try {
      try {
        await this.commands.mmsSend(timeoutS);
      } catch (e) {
        // No final code at all: the OK may have been lost on the line, so the module may be
        // sending. Treated as accepted: only the URC (or its absence) can tell.
        // The port closing after the command went out is no refusal either: the module may have
        // taken it and be sending, so the outcome is unknown (DESIGN.md §6: never send twice).
        if (e instanceof ClosedError && e.mayHaveArrived) {
          throw new SendOutcomeUnknownError('the port closed after AT+QMMSEND was written, before its answer', { cause: e });
        }
        if (!(e instanceof TimeoutError)) throw notAccepted(e);
        this.log.warn({ err: e }, 'AT+QMMSEND: no final code; waiting for a result anyway');
      }
      const resultWaitMs = (timeoutS + SEND_RESULT_MARGIN_S) * 1000;
      outcome.arm(resultWaitMs);
      try {
        await onAccepted(resultWaitMs);
      } catch (e) {
        throw new SendOutcomeUnknownError('AT+QMMSEND was accepted but recording it failed', { cause: e });
      }
      const result = await outcome.result;
      this.log.info({ err: result.err, httpStatus: result.httpStatus }, LOG_EVENTS.sendResultUrc);
      return result;
    } finally {
      outcome.dispose();
    }
  }

  async reactivatePdp(): Promise<void> {
    await this.health.reactivate();
  }
}

function notAccepted(e: unknown): unknown {
  if (e instanceof CmeError || e instanceof CmsError) {
    return new SendNotAcceptedError(`AT+QMMSEND refused: error ${e.code}`, e.code);
  }
  // ERROR, or the port closed before the command was written: the module did not take it.
  if (e instanceof AtError) return new SendNotAcceptedError(`AT+QMMSEND refused: ${e.message}`);
  return e;
}

/**
 * The +QMMSEND result of one send: subscribed before the command is written and buffered until
 * awaited. Port loss, a module restart (RDY) or the deadline make the outcome unknown.
 */
class SendOutcome {
  readonly result: Promise<SendResult>;
  private settle!: (r: SendResult | Error) => void;
  private timer: unknown;
  private readonly unsubscribe: (() => void)[];
  private readonly onDisconnected = (): void => {
    this.settle(new SendOutcomeUnknownError('port lost before the +QMMSEND result'));
  };

  constructor(
    private readonly at: AtCommander,
    private readonly timers: ModemTimers,
  ) {
    this.result = new Promise<SendResult>((resolve, reject) => {
      let done = false;
      this.settle = (r) => {
        if (done) return;
        done = true;
        this.dispose();
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
    });
    // Settled early (port lost while the sender records the acceptance) is not unhandled.
    this.result.catch(() => undefined);
    this.unsubscribe = [
      at.onUrc('+QMMSEND:', (line) => {
        const r = parseSendResult(line);
        if (r) this.settle(r);
      }),
      at.onUrc(RESTART_URC, (line) => {
        if (line === RESTART_URC) this.settle(new SendOutcomeUnknownError('module restarted before the +QMMSEND result'));
      }),
    ];
    at.on('disconnected', this.onDisconnected);
  }

  /** Starts the deadline (after the OK, DESIGN.md §6: `<timeout>` plus a margin). */
  arm(ms: number): void {
    this.timer = this.timers.setTimeout(() => {
      this.settle(new SendOutcomeUnknownError(`no +QMMSEND result within ${Math.round(ms / 1000)} s`));
    }, ms);
  }

  dispose(): void {
    for (const off of this.unsubscribe.splice(0)) off();
    this.at.off('disconnected', this.onDisconnected);
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
  }
}
