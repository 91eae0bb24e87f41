// What the module currently holds of mmsd's making (DESIGN.md §6; spec §2.1: nothing of it survives a
// module restart): the charset in force, the sendparam, whether the MMS settings are in, the edit
// buffer, the RAM files staged, the HTTP settings (§12), and the epoch a restart ends. The one owner of that state: the
// driver writes it as its commands succeed, the health monitor resets it, the sender reads it.
import { pickSendParams, sameSendParams } from '../core/options.js';
import type { Charset, SendParams } from './types.js';

/** What the sender may read of the session, and the RAM files it stages under it; the HTTP driver's settings. */
export interface ModuleSessionView extends HttpSettingsSession {
  /**
   * Bumped when the module restarted (RDY) or the port came back: what was staged or edited under
   * an older epoch is gone or suspect.
   */
  readonly epoch: number;
  /** The charset the module has in force (AT+QMMSCFG="character"); undefined when unknown. */
  readonly charset: Charset | undefined;
  /** The sendparam the module has in force (AT+QMMSCFG="sendparam"); undefined when unknown. */
  readonly sendParams: SendParams | undefined;
  /** Whether `p` must be written before a message is sent with it. */
  needsSendParams(p: SendParams): boolean;
  /** The RAM files staged completely for `owner` (a message id) in this epoch; undefined: none trusted. */
  stagedFor(owner: string): readonly string[] | undefined;
  /** `owner`'s files are all in RAM, complete, as of now (this epoch). */
  recordStaged(owner: string, names: readonly string[]): void;
  /** `owner`'s files are no longer trusted (deleted, cleaned up, being staged anew). */
  dropStaged(owner: string): void;
}

/** What the HTTP driver (http.ts) keeps in the session: its AT+QHTTPCFG settings. */
export interface HttpSettingsSession {
  /** Runs `write` unless `settings` are in force in this module already; unknown while it runs. */
  useHttpSettings(settings: string, write: () => Promise<void>): Promise<void>;
  /** The settings may have changed behind the driver's back (a request failed halfway): written again next time. */
  httpSettingsUnknown(): void;
}

export class ModuleSession implements ModuleSessionView, HttpSettingsSession {
  private epochNo = 0;
  private charsetNow: Charset | undefined;
  private params: SendParams | undefined;
  /**
   * True while the MMS edit buffer is known to be empty: AT+QMMSEDIT=0 answered OK on this module
   * and no edit or send command was written since (false when unknown).
   */
  private editBufferEmpty = false;
  /** The MMS settings (every AT+QMMSCFG of spec §2.1) are in, applied for the SIM with this IMSI. */
  private mms: { imsi: string | undefined } | undefined;
  private readonly staged = new Map<string, readonly string[]>();
  /** DESIGN.md §12: the AT+QHTTPCFG settings in force, as the HTTP driver names them; undefined when unknown. */
  private http: string | undefined;

  get epoch(): number {
    return this.epochNo;
  }

  get charset(): Charset | undefined {
    return this.charsetNow;
  }

  get sendParams(): SendParams | undefined {
    return this.params && { ...this.params };
  }

  /** Whether every AT+QMMSCFG setting is in the module (for the SIM it was applied for). */
  get mmsConfigured(): boolean {
    return this.mms !== undefined;
  }

  // --- what a reset invalidates: the one place that decides what is written again ---

  /**
   * The module restarted (RDY) or the port came back: a new epoch. Its settings are gone (§2.1:
   * not saved) and its RAM files gone or suspect, so everything is written again.
   */
  reset(): void {
    this.epochNo++;
    this.staged.clear();
    this.forget();
  }

  /**
   * What the module holds is unknown (a bring-up begins, the port was lost, a restart was asked
   * for): every setting is written again. The epoch, and with it the staged files, ends only with
   * `reset()`, when the module is seen to have restarted.
   */
  forget(): void {
    this.settingsStale();
    this.editBufferEmpty = false;
    this.http = undefined;
  }

  /** DESIGN.md §10: another SIM or other carrier settings: every AT+QMMSCFG is written again. */
  settingsStale(): void {
    this.mms = undefined;
    this.charsetNow = undefined;
    this.params = undefined;
  }

  /** Every AT+QMMSCFG setting was written, for the SIM with `imsi`. */
  mmsApplied(imsi: string | undefined): void {
    this.mms = { imsi };
  }

  /** True when the settings in the module were applied for another SIM than the one with `imsi`. */
  appliedForOtherSim(imsi: string): boolean {
    return this.mms !== undefined && this.mms.imsi !== imsi;
  }

  // --- settings, each written only when the module may hold another value ---

  /** Writes the charset unless it is in force; unknown while the command runs (it may fail). */
  async useCharset(charset: Charset, write: () => Promise<void>): Promise<void> {
    if (this.charsetNow === charset) return;
    this.charsetNow = undefined;
    await write();
    this.charsetNow = charset;
  }

  needsSendParams(p: SendParams): boolean {
    return !sameSendParams(p, this.params);
  }

  /** Writes the sendparam (always: the health monitor applies it with every setting); unknown while it runs. */
  async writeSendParams(p: SendParams, write: () => Promise<void>): Promise<void> {
    this.params = undefined;
    await write();
    this.params = pickSendParams(p);
  }

  // --- the HTTP stack (§12 "Fetching"): AT+QHTTPCFG holds until a restart ---

  async useHttpSettings(settings: string, write: () => Promise<void>): Promise<void> {
    if (this.http === settings) return;
    this.http = undefined;
    await write();
    this.http = settings;
  }

  httpSettingsUnknown(): void {
    this.http = undefined;
  }

  // --- the edit buffer ---

  /** AT+QMMSEDIT=0 unless the buffer is known to be empty already. */
  async clearEditBuffer(write: () => Promise<void>): Promise<void> {
    if (this.editBufferEmpty) return;
    await write();
    this.editBufferEmpty = true;
  }

  /** Before any command that may change the edit buffer: from now on it is not known to be empty. */
  editing(): void {
    this.editBufferEmpty = false;
  }

  // --- RAM files ---

  stagedFor(owner: string): readonly string[] | undefined {
    return this.staged.get(owner);
  }

  recordStaged(owner: string, names: readonly string[]): void {
    this.staged.set(owner, [...names]);
  }

  dropStaged(owner: string): void {
    this.staged.delete(owner);
  }
}
