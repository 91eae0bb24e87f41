// What the module is set up with for its SIM (DESIGN.md §10, spec §1.1, §2.1): the SIM's identity,
// the carrier settings in force, the data context claimed and configured, and the MMS settings.
import type { Logger } from 'pino';
import type { QuectelCommands } from './commands.js';
import { carrierParamsOf, type CarrierParams, type ModemConfig, type SettingsProvider } from './config.js';
import type { ModuleSession } from './session.js';
import { tolerate, type TaskChain } from './task-chain.js';
import type { SimIdentity } from './types.js';

export interface CarrierSetupOptions {
  commands: QuectelCommands;
  logger: Logger;
  config: ModemConfig;
  session: ModuleSession;
  /** DESIGN.md §10: the carrier settings for a SIM; without it, the config's are used. */
  settings?: SettingsProvider;
  /** The health monitor's tasks: every step checks that its task is still current. */
  tasks: TaskChain;
}

/** What the settings provider answered: none (`unconfigured`, with the reason), or whether they changed. */
export type SettingsOutcome = { unconfigured: string } | { changed: boolean };

/** pdp.contextId is ours (active with our APN, or not active), or held by someone else (`inUse`). */
export type ContextClaim = { active: boolean } | { inUse: string };

/** APNs are case-insensitive (3GPP TS 23.003 §9.1). */
function sameApn(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

export class CarrierSetup {
  /** The carrier settings in force (DESIGN.md §10): the config's until a SettingsProvider answers. */
  private params: CarrierParams;
  /** The SIM's identity as last read; undefined before the first read. */
  private sim: SimIdentity | undefined;
  /** The APN mmsd itself last wrote to pdp.contextId (AT+QICSGP): that context is not someone else's. */
  private ownApn: string | undefined;

  constructor(private readonly o: CarrierSetupOptions) {
    this.params = carrierParamsOf(o.config);
  }

  /** The SIM's identity as last read (after SIM READY), undefined before. */
  get simIdentity(): SimIdentity | undefined {
    return this.sim && { ...this.sim };
  }

  /**
   * §10: the SIM's identity (AT+CIMI, AT+QCCID, AT+QSPN), read once registered (some firmware
   * answers AT+QSPN only then). A command that fails leaves its field empty.
   */
  private async readIdentity(gen: number): Promise<SimIdentity> {
    const c = this.o.commands;
    const { tasks, logger } = this.o;
    const imsi = (await tolerate(logger, () => c.readImsi())) ?? '';
    tasks.check(gen);
    const iccid = (await tolerate(logger, () => c.readIccid())) ?? '';
    tasks.check(gen);
    const spn = await c.readSpn();
    tasks.check(gen);
    const sim = { imsi, iccid, spn };
    if (this.sim?.imsi !== imsi || this.sim.iccid !== iccid || this.sim.spn !== spn) {
      const first = this.sim === undefined;
      logger.info({ mcc: imsi.slice(0, 3), spn, iccid }, first ? 'SIM identity' : 'SIM identity changed');
    }
    this.sim = sim;
    return sim;
  }

  /**
   * §10: the carrier settings for this SIM. New ones (another SIM, or the first answer) mean
   * everything is applied again: AT+QICSGP and every AT+QMMSCFG. None: `unconfigured` with the
   * reason.
   */
  async resolveSettings(gen: number): Promise<SettingsOutcome> {
    const sim = await this.readIdentity(gen);
    // §10: another SIM gets everything applied again, even where its settings are the same.
    if (this.o.session.appliedForOtherSim(sim.imsi)) this.o.session.settingsStale();
    const provider = this.o.settings;
    if (provider === undefined) return { changed: false };
    const verdict = await provider(sim);
    this.o.tasks.check(gen);
    if ('unconfigured' in verdict) return { unconfigured: verdict.unconfigured };
    const next = verdict.use;
    const p = this.params;
    const changed = (Object.keys(next) as (keyof CarrierParams)[]).some((k) => next[k] !== p[k]);
    if (changed) {
      this.o.logger.info({ apn: next.apn, mmsc: next.mmsc, proxyHost: next.proxyHost, proxyPort: next.proxyPort }, 'carrier settings to apply');
      this.params = { ...next };
      this.o.session.settingsStale();
    }
    return { changed };
  }

  /**
   * §10: never take over someone else's data context. Reads AT+QIACT? and, when pdp.contextId is
   * active, the APN it holds (AT+QICSGP=<ctx>). Active with another APN than ours: left alone,
   * `inUse` with a hint. Active with the APN mmsd itself set before (another SIM's): deactivated to
   * be set up anew. Otherwise whether the context is active (with our APN).
   */
  async claimContext(gen: number): Promise<ContextClaim> {
    const c = this.o.commands;
    const { tasks, logger } = this.o;
    const ctx = this.o.config.pdp.contextId;
    const contexts = await c.queryContexts();
    tasks.check(gen);
    if (!contexts.some((x) => x.contextId === ctx && x.active)) return { active: false };
    const apn = await c.queryContextApn(ctx);
    tasks.check(gen);
    if (sameApn(apn, this.params.apn)) return { active: true };
    if (this.ownApn !== undefined && sameApn(apn, this.ownApn)) {
      logger.info({ contextId: ctx, from: apn, to: this.params.apn }, 'context holds the APN mmsd set before: setting it up anew');
      await tolerate(logger, () => c.deactivateContext(ctx));
      tasks.check(gen);
      return { active: false };
    }
    const taken = new Set(contexts.filter((x) => x.active).map((x) => x.contextId));
    const free = Array.from({ length: 16 }, (_, i) => i + 1).find((n) => n !== ctx && !taken.has(n));
    const hint = free === undefined ? 'set pdp.contextId to a free context' : `set pdp.contextId to a free context, e.g. ${free}`;
    return { inUse: `context ${ctx} is active with APN '${apn}'; ${hint}` };
  }

  /** AT+QICSGP with the settings in force. */
  async configureContext(gen: number): Promise<void> {
    const { contextId } = this.o.config.pdp;
    const { apn, username, password, auth } = this.params;
    await this.o.commands.configureContext({ contextId, apn, username, password, auth });
    this.ownApn = apn;
    this.o.tasks.check(gen);
  }

  /**
   * Spec §1.1 steps 1–3 and §2.1: every AT+QMMSCFG setting, empty ones included (the module does
   * not keep them across a restart, but keeps what an earlier run set until it restarts).
   */
  async applyMmsSettings(gen: number): Promise<void> {
    const c = this.o.commands;
    const { session, tasks } = this.o;
    const { pdp, mms } = this.o.config;
    const { mmsc, proxyHost, proxyPort } = this.params;
    // Every setting is written (the module may hold an earlier run's), each recorded once it is in.
    session.settingsStale();
    await c.mmsContextId(pdp.contextId);
    tasks.check(gen);
    await c.mmsMmsc(mmsc);
    tasks.check(gen);
    // Applied when empty too: "" clears a gateway the module still holds from an earlier run of
    // mmsd (a daemon restart does not restart the module).
    await c.mmsProxy(proxyHost, proxyPort);
    tasks.check(gen);
    await session.writeSendParams(mms, () => c.mmsSendParams(mms));
    tasks.check(gen);
    // The charset every message needs first (its addresses go under "ASCII", DESIGN.md §6);
    // mms.charset is applied when a subject needs it, so setting it here would cost each first
    // message after a restart one more round trip.
    await session.useCharset('ASCII', () => c.mmsCharset('ASCII'));
    tasks.check(gen);
    await c.mmsSupportField(mms.supportField);
    tasks.check(gen);
    await c.mmsConnectTimeout(mms.connectTimeoutS);
    tasks.check(gen);
    session.mmsApplied(this.sim?.imsi);
  }
}
