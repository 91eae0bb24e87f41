// The health monitor (DESIGN.md §6, spec §1.1, §4.1, §4.2): bring-up after start, reconnect and
// RDY; SIM, registration, attach, PDP and signal from URCs and an idle poll; the recovery ladder.
import type { Logger } from 'pino';
import { AtErrorResult, ClosedError, CmeError } from '../at/errors.js';
import type { AtCommander } from '../at/types.js';
import { TypedEmitter } from '../core/events.js';
import {
  type QuectelCommands,
  fieldsOf,
  isRegistered,
  parseRegistrationLine,
  registrationOf,
  unquote,
  simStateOf,
  type SimStatus,
} from './commands.js';
import { carrierParamsOf, type CarrierParams, type ModemConfig, type ModemTimers, type SettingsProvider } from './config.js';
import type { SendLock } from './lock.js';
import type { ModuleSession } from './session.js';
import type { ModemEvents, ModemIdentity, ModemState, ModemStatus, Registration, SimIdentity } from './types.js';
import { RESTART_URC } from './urcs.js';

/** Tries of `AT` at bring-up, each with a short timeout (a booting module stays silent a while). */
export const PROBE_ATTEMPTS = 10;
export const PROBE_TIMEOUT_MS = 1000;
/** §4.2: failed activation rounds before a module restart is considered. */
export const PDP_ROUNDS_BEFORE_RESTART = 3;

/** Thrown inside a task that a newer bring-up (or a disconnect, or stop) made obsolete. */
class Superseded extends Error {
  override name = 'Superseded';
}

export interface HealthMonitorOptions {
  at: AtCommander;
  commands: QuectelCommands;
  logger: Logger;
  config: ModemConfig;
  clock: () => number;
  timers: ModemTimers;
  lock: SendLock;
  /** What the module holds: reset on RDY and a reconnect, forgotten at every bring-up. */
  session: ModuleSession;
  /** DESIGN.md §10: the carrier settings for a SIM; without it, the config's are used. */
  settings?: SettingsProvider;
}

/** States past the SIM and registration in which a `+CPIN: READY` may mean another SIM. */
const SIM_SETTLED: readonly ModemState[] = ['registered', 'ready', 'unconfigured', 'context-in-use'];

/** APNs are case-insensitive (3GPP TS 23.003 §9.1). */
function sameApn(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** Domains whose +CGREG/+CEREG stat the monitor tracks (LTE-only networks answer only +CEREG). */
type Domain = 'CGREG' | 'CEREG';

/**
 * Events: ModemEvents ('rebooted' on RDY or a reconnect; 'identity' when the module's identity is
 * first read or differs from the last one), which the driver relays.
 */
export class HealthMonitor extends TypedEmitter<ModemEvents> {
  private current: ModemStatus = { state: 'absent', registration: 'unknown', operator: '', signal: -1 };
  private readonly stat: Record<Domain, number> = { CGREG: 0, CEREG: 0 };
  /** Bumped by every bring-up request, disconnect and stop: older tasks stop at their next step. */
  private generation = 0;
  private chain: Promise<void> = Promise.resolve();
  private timer: unknown;
  private running = false;
  private everConnected = false;
  private failedRounds = 0;
  private lastRestartAt = 0;
  private readonly detach: (() => void)[] = [];
  /** The carrier settings in force (DESIGN.md §10): the config's until a SettingsProvider answers. */
  private params: CarrierParams;
  /** The SIM's identity as last read; undefined before the first read. */
  private sim: SimIdentity | undefined;
  /** The module's identity (DESIGN.md §13) as last read at bring-up; undefined before. */
  private module: ModemIdentity | undefined;
  /** The APN mmsd itself last wrote to pdp.contextId (AT+QICSGP): that context is not someone else's. */
  private ownApn: string | undefined;
  /** A `+CPIN: READY` came while ready: the SIM may be another one; checked at the next chance. */
  private simRecheck = false;

  constructor(private readonly o: HealthMonitorOptions) {
    super();
    this.params = carrierParamsOf(o.config);
  }

  /** The SIM's identity as last read (after SIM READY), undefined before. */
  get simIdentity(): SimIdentity | undefined {
    return this.sim && { ...this.sim };
  }

  get status(): ModemStatus {
    return { ...this.current };
  }

  /** The module's identity (IMEI, manufacturer, model, firmware) as last read; undefined before. */
  get moduleIdentity(): ModemIdentity | undefined {
    return this.module && { ...this.module };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    // §4.2: the daemon's start counts as a restart, so a restart loop of the daemon cannot
    // become a restart loop of the module.
    this.lastRestartAt = this.o.clock();
    this.listenUrcs();
    const at = this.o.at;
    const onConnected = (): void => this.onConnected();
    const onDisconnected = (err?: Error): void => this.onDisconnected(err);
    at.on('connected', onConnected);
    at.on('disconnected', onDisconnected);
    this.detach.push(() => {
      at.off('connected', onConnected);
      at.off('disconnected', onDisconnected);
    });
    if (this.o.at.isConnected) {
      this.everConnected = true;
      this.requestBringUp();
    }
    this.scheduleTick();
  }

  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.generation++;
    for (const off of this.detach.splice(0)) off();
    if (this.timer !== undefined) this.o.timers.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** §4.3: AT+QIDEACT then AT+QIACT, through the recovery ladder; rejects when it stays down. */
  async reactivate(): Promise<void> {
    const ok = await this.enqueue(async (gen) => {
      if (this.current.state === 'ready') this.setState('registered', 'PDP context re-activation');
      return this.bringUpPdp(gen, true);
    });
    if (ok !== true) {
      throw new Error(`PDP context ${this.o.config.pdp.contextId} could not be re-activated`);
    }
  }

  // --- events from the channel ---

  /** The URCs the monitor acts on, each parsed by its own handler. */
  private listenUrcs(): void {
    const on = (prefix: string, fn: (line: string) => void): void => {
      this.detach.push(this.o.at.onUrc(prefix, fn));
    };
    on(RESTART_URC, (line) => {
      if (line === RESTART_URC) this.onRestarted();
    });
    on('+CPIN:', (line) => this.onSimUrc({ state: simStateOf(unquote(fieldsOf(line, '+CPIN:').join(','))), text: line }));
    for (const domain of ['CGREG', 'CEREG'] as const) {
      on(`+${domain}:`, (line) => {
        const stat = parseRegistrationLine(line, `+${domain}:`, 'urc');
        if (stat !== undefined) this.onRegistrationUrc(domain, stat);
      });
    }
    on('+QIURC:', (line) => {
      const f = fieldsOf(line, '+QIURC:');
      if (unquote(f[0] ?? '') === 'pdpdeact' && Number(f[1]) === this.o.config.pdp.contextId) this.onPdpDeactivated();
    });
  }

  private onConnected(): void {
    // The port came back: the module may have rebooted with it, its RAM files are suspect.
    if (this.everConnected) this.rebooted();
    this.everConnected = true;
    this.requestBringUp();
  }

  private onDisconnected(err?: Error): void {
    this.generation++;
    this.forgetModule();
    this.o.logger.warn({ err }, 'modem port lost');
    this.stat.CGREG = 0;
    this.stat.CEREG = 0;
    this.current.registration = 'unknown';
    this.current.signal = -1;
    this.current.operator = '';
    this.setState('absent');
  }

  private onRestarted(): void {
    // §2.1: settings are not saved; the module restarted and lost them and its RAM files.
    this.o.logger.warn('module restarted (RDY)');
    this.lastRestartAt = this.o.clock();
    this.rebooted();
    this.requestBringUp();
  }

  private onSimUrc(sim: SimStatus): void {
    const state = this.current.state;
    if (sim.state === 'ready') {
      if (state === 'sim-missing' || state === 'sim-locked') {
        this.o.logger.info('SIM ready');
        this.enqueueWhile(['sim-missing', 'sim-locked'], (gen) => this.fromSim(gen));
      } else if (SIM_SETTLED.includes(state)) {
        // §10: a SIM swapped without a NOT READY in between (`+QUSIM: 1`, `+CPIN: READY`) may be
        // another SIM: its identity is read again, and a new one is looked up and applied. While
        // ready, not between a message's edit steps: under the send lock, else at the next poll.
        this.o.logger.info({ state }, 'SIM ready again: checking its identity');
        this.simRecheck = true;
        this.enqueueWhile(SIM_SETTLED, (gen) =>
          this.current.state === 'ready' ? this.o.lock.tryRun(() => this.recheckSim(gen)) : this.recheckSim(gen),
        );
      }
    } else if (sim.state !== 'busy' && (state === 'searching' || SIM_SETTLED.includes(state))) {
      // §4.1: messages wait while the SIM is gone; they are not failed.
      this.setState(sim.state === 'missing' ? 'sim-missing' : 'sim-locked', sim.text);
    }
  }

  private onRegistrationUrc(domain: Domain, stat: number): void {
    this.stat[domain] = stat;
    const registered = this.updateRegistration();
    const state = this.current.state;
    if (registered && state === 'searching') {
      this.enqueueWhile(['searching'], (gen) => this.fromRegistration(gen));
    } else if (!registered && (state === 'registered' || state === 'ready')) {
      this.setState('searching');
    }
  }

  private async recheckSim(gen: number): Promise<void> {
    if (!this.simRecheck) return;
    this.simRecheck = false;
    await this.fromRegistration(gen);
  }

  private onPdpDeactivated(): void {
    const ctx = this.o.config.pdp.contextId;
    this.o.logger.warn({ contextId: ctx }, 'PDP context deactivated by the network');
    this.emit('pdpDeactivated', ctx);
    if (this.current.state !== 'ready') return;
    this.setState('registered', 'PDP context deactivated');
    this.enqueueWhile(['registered'], (gen) => this.bringUpPdp(gen, true));
  }

  // --- task chain: bring-up, polls and recovery run one after the other ---

  private requestBringUp(): void {
    this.generation++;
    this.forgetModule();
    this.enqueueAt((gen) => this.bringUp(gen));
  }

  private forgetModule(): void {
    this.o.session.forget();
  }

  /** A new epoch of the module (RDY, or the port came back), then 'rebooted'. */
  private rebooted(): void {
    this.o.session.reset();
    this.emit('rebooted');
  }

  /** Queues a task bound to the current generation; it is skipped once that has passed. */
  private enqueueAt(task: (gen: number) => Promise<unknown>): void {
    void this.enqueue(task);
  }

  /** Queues a URC's follow-up, run only if the state is still one of `states` when its turn comes. */
  private enqueueWhile(states: readonly ModemState[], task: (gen: number) => Promise<unknown>): void {
    this.enqueueAt(async (gen) => (states.includes(this.current.state) ? task(gen) : undefined));
  }

  private enqueue<T>(task: (gen: number) => Promise<T>): Promise<T | undefined> {
    const gen = this.generation;
    const run = this.chain.then(async () => {
      if (gen !== this.generation) return undefined;
      try {
        return await task(gen);
      } catch (e) {
        this.onTaskError(e, gen);
        return undefined;
      }
    });
    this.chain = run.then(() => undefined);
    return run;
  }

  private onTaskError(e: unknown, gen: number): void {
    if (e instanceof Superseded || gen !== this.generation) return;
    if (e instanceof ClosedError) {
      // The port went away under the task; 'disconnected' says so, or the next tick retries.
      this.o.logger.warn({ err: e }, 'modem task ended: channel closed');
      if (!this.o.at.isConnected) this.setState('absent');
      return;
    }
    this.o.logger.error({ err: e }, 'modem task failed');
    this.setState('error', e instanceof Error ? e.message : String(e));
  }

  private check(gen: number): void {
    if (gen !== this.generation || !this.running) throw new Superseded();
  }

  private scheduleTick(): void {
    if (!this.running) return;
    this.timer = this.o.timers.setTimeout(() => {
      this.timer = undefined;
      void this.enqueue((gen) => this.tick(gen)).finally(() => this.scheduleTick());
    }, this.o.config.healthIntervalS * 1000);
  }

  /** One health step, chosen by the state the module is in when it runs. */
  private async tick(gen: number): Promise<void> {
    switch (this.current.state) {
      case 'absent':
        return;
      case 'initializing':
      case 'error':
        return this.bringUp(gen);
      case 'sim-missing':
      case 'sim-locked':
        return this.fromSim(gen);
      case 'searching':
        return this.fromRegistration(gen);
      case 'registered':
        await this.bringUpPdp(gen, false);
        return;
      case 'unconfigured':
      case 'context-in-use':
        // §10: asked again (a database installed meanwhile; the other user's context released).
        return this.fromRegistration(gen);
      case 'ready':
        // Never between the AT+QMMSEDIT steps of a send: skipped while the sender holds the lock.
        await this.o.lock.tryRun(() => this.pollReady(gen));
        return;
    }
  }

  // --- the bring-up sequence (DESIGN.md §6 "Start") ---

  private async bringUp(gen: number): Promise<void> {
    const c = this.o.commands;
    this.setState('initializing');
    await this.probe(gen);
    await c.echoOff();
    this.check(gen);
    await c.numericErrors();
    this.check(gen);
    await this.readModuleIdentity(gen);
    await this.tolerate(() => c.enableRegistrationUrcs('CGREG'));
    this.check(gen);
    await this.tolerate(() => c.enableRegistrationUrcs('CEREG'));
    this.check(gen);
    await this.fromSim(gen);
  }

  /** §13: who the module is, at every bring-up (a reconnect may find another module on the port). */
  private async readModuleIdentity(gen: number): Promise<void> {
    const id = await this.o.commands.readModuleIdentity();
    this.check(gen);
    if (JSON.stringify(id) === JSON.stringify(this.module)) return;
    this.o.logger.info({ identity: id }, 'module identity');
    this.module = id;
    this.emit('identity', { ...id });
  }

  /** `AT` until OK, each try with a short timeout. */
  private async probe(gen: number): Promise<void> {
    let last: unknown;
    for (let i = 0; i < PROBE_ATTEMPTS; i++) {
      this.check(gen);
      try {
        await this.o.commands.attention(Math.min(PROBE_TIMEOUT_MS, this.o.config.commandTimeoutMs));
        return;
      } catch (e) {
        if (e instanceof ClosedError) throw e;
        last = e;
      }
    }
    throw new Error(`module does not answer AT (${PROBE_ATTEMPTS} tries): ${last instanceof Error ? last.message : String(last)}`);
  }

  /** §4.1: the SIM must answer READY before anything else is worth doing. */
  private async fromSim(gen: number): Promise<void> {
    const sim = await this.o.commands.querySim();
    this.check(gen);
    if (sim.state === 'busy') {
      this.setState('initializing', sim.text);
      return;
    }
    if (sim.state !== 'ready') {
      this.setState(sim.state === 'missing' ? 'sim-missing' : 'sim-locked', sim.text);
      return;
    }
    await this.fromRegistration(gen);
  }

  /** Registration through +CGREG or +CEREG, then attach, signal, operator, context, MMS settings. */
  private async fromRegistration(gen: number): Promise<void> {
    const c = this.o.commands;
    if (!(await this.readRegistration(gen))) {
      this.setState('searching');
      return;
    }
    if (!(await c.queryAttach())) {
      this.check(gen);
      await this.tolerate(() => c.attach());
    }
    this.check(gen);
    this.current.signal = await c.querySignal();
    this.check(gen);
    this.current.operator = await c.queryOperator();
    this.check(gen);
    this.emitStatus();
    if (!(await this.resolveSettings(gen))) return;
    const active = await this.claimContext(gen);
    if (active === undefined) return;
    await this.configureContext(gen);
    if (this.current.state !== 'ready') this.setState('registered');
    await this.bringUpPdp(gen, false, active);
  }

  /**
   * §10: the SIM's identity (AT+CIMI, AT+QCCID, AT+QSPN), read once registered (some firmware
   * answers AT+QSPN only then). A command that fails leaves its field empty.
   */
  private async readIdentity(gen: number): Promise<SimIdentity> {
    const c = this.o.commands;
    const imsi = (await this.tolerate(() => c.readImsi())) ?? '';
    this.check(gen);
    const iccid = (await this.tolerate(() => c.readIccid())) ?? '';
    this.check(gen);
    const spn = await c.readSpn();
    this.check(gen);
    const sim = { imsi, iccid, spn };
    if (this.sim?.imsi !== imsi || this.sim.iccid !== iccid || this.sim.spn !== spn) {
      const first = this.sim === undefined;
      this.o.logger.info({ mcc: imsi.slice(0, 3), spn, iccid }, first ? 'SIM identity' : 'SIM identity changed');
    }
    this.sim = sim;
    return sim;
  }

  /**
   * §10: the carrier settings for this SIM. New ones (another SIM, or the first answer) mean
   * everything is applied again: AT+QICSGP and every AT+QMMSCFG. None: `unconfigured` with the
   * reason; false then.
   */
  private async resolveSettings(gen: number): Promise<boolean> {
    const sim = await this.readIdentity(gen);
    // §10: another SIM gets everything applied again, even where its settings are the same.
    if (this.o.session.appliedForOtherSim(sim.imsi)) this.o.session.settingsStale();
    const provider = this.o.settings;
    if (provider === undefined) return true;
    const verdict = await provider(sim);
    this.check(gen);
    if ('unconfigured' in verdict) {
      this.setState('unconfigured', verdict.unconfigured);
      return false;
    }
    const next = verdict.use;
    const p = this.params;
    const changed = (Object.keys(next) as (keyof CarrierParams)[]).some((k) => next[k] !== p[k]);
    if (changed) {
      this.o.logger.info({ apn: next.apn, mmsc: next.mmsc, proxyHost: next.proxyHost, proxyPort: next.proxyPort }, 'carrier settings to apply');
      this.params = { ...next };
      this.o.session.settingsStale();
      // Not ready again until the module has them (a SIM swapped while ready).
      if (this.current.state === 'ready') this.setState('registered', 'applying the carrier settings of another SIM');
    }
    return true;
  }

  /**
   * §10: never take over someone else's data context. Reads AT+QIACT? and, when pdp.contextId is
   * active, the APN it holds (AT+QICSGP=<ctx>). Active with another APN than ours: left alone,
   * `context-in-use`, undefined. Active with the APN mmsd itself set before (another SIM's):
   * deactivated to be set up anew. Returns whether the context is active (with our APN).
   */
  private async claimContext(gen: number): Promise<boolean | undefined> {
    const c = this.o.commands;
    const ctx = this.o.config.pdp.contextId;
    const contexts = await c.queryContexts();
    this.check(gen);
    if (!contexts.some((x) => x.contextId === ctx && x.active)) return false;
    const apn = await c.queryContextApn(ctx);
    this.check(gen);
    if (sameApn(apn, this.params.apn)) return true;
    if (this.ownApn !== undefined && sameApn(apn, this.ownApn)) {
      this.o.logger.info({ contextId: ctx, from: apn, to: this.params.apn }, 'context holds the APN mmsd set before: setting it up anew');
      await this.tolerate(() => c.deactivateContext(ctx));
      this.check(gen);
      return false;
    }
    const taken = new Set(contexts.filter((x) => x.active).map((x) => x.contextId));
    const free = Array.from({ length: 16 }, (_, i) => i + 1).find((n) => n !== ctx && !taken.has(n));
    const hint = free === undefined ? 'set pdp.contextId to a free context' : `set pdp.contextId to a free context, e.g. ${free}`;
    this.setState('context-in-use', `context ${ctx} is active with APN '${apn}'; ${hint}`);
    return undefined;
  }

  /** AT+QICSGP with the settings in force. */
  private async configureContext(gen: number): Promise<void> {
    const { contextId } = this.o.config.pdp;
    const { apn, username, password, auth } = this.params;
    await this.o.commands.configureContext({ contextId, apn, username, password, auth });
    this.ownApn = apn;
    this.check(gen);
  }

  /** Queries both registrations; true when either is home or roaming. */
  private async readRegistration(gen: number): Promise<boolean> {
    for (const domain of ['CGREG', 'CEREG'] as const) {
      const stat = await this.tolerate(() => this.o.commands.queryRegistration(domain));
      this.check(gen);
      if (stat !== undefined) this.stat[domain] = stat;
    }
    return this.updateRegistration();
  }

  /**
   * The context up (skipped when AT+QIACT? shows it active), then the MMS settings if the module
   * has not got them: state `ready`. Returns whether it got there.
   */
  private async bringUpPdp(gen: number, deactivateFirst: boolean, knownActive?: boolean): Promise<boolean> {
    const c = this.o.commands;
    const ctx = this.o.config.pdp.contextId;
    let active = false;
    if (deactivateFirst) {
      await this.tolerate(() => c.deactivateContext(ctx));
    } else {
      active = knownActive ?? (await c.queryContexts()).some((x) => x.contextId === ctx && x.active);
    }
    this.check(gen);
    if (!active && !(await this.activateWithRecovery(gen))) return false;
    if (!this.o.session.mmsConfigured) await this.applyMmsSettings(gen);
    this.setState('ready');
    return true;
  }

  /**
   * §4.2: AT+QIACT; on failure check attach (AT+CGATT=1 if detached), registration, re-apply
   * AT+QICSGP and retry. After three failed rounds the module is restarted (AT+CFUN=1,1), but
   * only when the last restart is at least `rebootMinIntervalS` ago; until then the next health
   * tick tries another round.
   */
  private async activateWithRecovery(gen: number): Promise<boolean> {
    const c = this.o.commands;
    const { config, clock, logger } = this.o;
    for (;;) {
      try {
        await c.activateContext(config.pdp.contextId);
        this.failedRounds = 0;
        return true;
      } catch (e) {
        if (e instanceof ClosedError) throw e;
        this.failedRounds++;
        logger.warn({ err: e, round: this.failedRounds }, 'PDP activation failed');
      }
      this.check(gen);
      if (this.failedRounds >= PDP_ROUNDS_BEFORE_RESTART && clock() - this.lastRestartAt >= config.rebootMinIntervalS * 1000) {
        await this.restartModule(gen);
        return false;
      }
      // §4.2 steps 1–3: attach, registration, context settings.
      if (!(await c.queryAttach())) {
        this.check(gen);
        await this.tolerate(() => c.attach());
      }
      this.check(gen);
      if (!(await this.readRegistration(gen))) {
        this.setState('searching');
        return false;
      }
      await this.configureContext(gen);
      if (this.failedRounds >= PDP_ROUNDS_BEFORE_RESTART) {
        this.setState('registered', `PDP activation failed ${this.failedRounds} times`);
        return false;
      }
    }
  }

  private async restartModule(gen: number): Promise<void> {
    this.o.logger.error({ rounds: this.failedRounds }, 'PDP activation keeps failing: restarting the module');
    this.lastRestartAt = this.o.clock();
    this.failedRounds = 0;
    this.forgetModule();
    this.setState('initializing', 'module restart (AT+CFUN=1,1)');
    // A module that resets before its OK is what was asked for.
    await this.tolerate(() => this.o.commands.restartModule(), true);
    this.check(gen);
  }

  /**
   * Spec §1.1 steps 1–3 and §2.1: every AT+QMMSCFG setting, empty ones included (the module does
   * not keep them across a restart, but keeps what an earlier run set until it restarts).
   */
  private async applyMmsSettings(gen: number): Promise<void> {
    const c = this.o.commands;
    const session = this.o.session;
    const { pdp, mms } = this.o.config;
    const { mmsc, proxyHost, proxyPort } = this.params;
    // Every setting is written (the module may hold an earlier run's), each recorded once it is in.
    session.settingsStale();
    await c.mmsContextId(pdp.contextId);
    this.check(gen);
    await c.mmsMmsc(mmsc);
    this.check(gen);
    // Applied when empty too: "" clears a gateway the module still holds from an earlier run of
    // mmsd (a daemon restart does not restart the module).
    await c.mmsProxy(proxyHost, proxyPort);
    this.check(gen);
    await session.writeSendParams(mms, () => c.mmsSendParams(mms));
    this.check(gen);
    // The charset every message needs first (its addresses go under "ASCII", DESIGN.md §6);
    // mms.charset is applied when a subject needs it, so setting it here would cost each first
    // message after a restart one more round trip.
    await session.useCharset('ASCII', () => c.mmsCharset('ASCII'));
    this.check(gen);
    await c.mmsSupportField(mms.supportField);
    this.check(gen);
    await c.mmsConnectTimeout(mms.connectTimeoutS);
    this.check(gen);
    session.mmsApplied(this.sim?.imsi);
  }

  /** The idle poll while ready (AT+CPIN?, +CGREG/+CEREG, +CSQ, AT+QIACT?). */
  private async pollReady(gen: number): Promise<void> {
    // A SIM READY that came while a message held the lock: the SIM may be another one.
    if (this.simRecheck) return this.recheckSim(gen);
    const c = this.o.commands;
    const sim = await c.querySim();
    this.check(gen);
    if (sim.state === 'missing' || sim.state === 'locked') {
      this.setState(sim.state === 'missing' ? 'sim-missing' : 'sim-locked', sim.text);
      return;
    }
    if (!(await this.readRegistration(gen))) {
      this.setState('searching');
      return;
    }
    this.current.signal = await c.querySignal();
    this.check(gen);
    this.emitStatus();
    const ctx = this.o.config.pdp.contextId;
    if (!(await c.queryContexts()).some((x) => x.contextId === ctx && x.active)) {
      this.check(gen);
      this.setState('registered', 'PDP context not active');
      await this.bringUpPdp(gen, false);
    }
  }

  /** Runs a command whose ERROR/CME answer is not fatal here (logged); other failures propagate. */
  private async tolerate<T>(fn: () => Promise<T>, alsoClosed = false): Promise<T | undefined> {
    try {
      return await fn();
    } catch (e) {
      const tolerated =
        e instanceof AtErrorResult || e instanceof CmeError || (alsoClosed && e instanceof Error && e.name !== 'Superseded');
      if (!tolerated) throw e;
      this.o.logger.warn({ err: e }, 'command failed; going on');
      return undefined;
    }
  }

  // --- status ---

  /** Combines both domains into one registration; true when registered through either. */
  private updateRegistration(): boolean {
    const regs = [registrationOf(this.stat.CGREG), registrationOf(this.stat.CEREG)];
    const pick = (...order: Registration[]): Registration => order.find((r) => regs.includes(r)) ?? 'not-registered';
    const registration = pick('home', 'roaming', 'searching', 'denied', 'unknown', 'not-registered');
    if (registration !== this.current.registration) {
      this.current.registration = registration;
      this.emitStatus();
    }
    return isRegistered(registration);
  }

  private setState(state: ModemState, detail?: string): void {
    if (state === this.current.state && detail === this.current.detail) return;
    if (state !== this.current.state) this.o.logger.info({ from: this.current.state, to: state, detail }, 'modem state');
    this.current.state = state;
    if (detail === undefined) delete this.current.detail;
    else this.current.detail = detail;
    this.emitStatus();
  }

  private lastEmitted = '';

  /** 'status' only when something a client sees changed. */
  private emitStatus(): void {
    const s = this.status;
    const key = JSON.stringify(s);
    if (key === this.lastEmitted) return;
    this.lastEmitted = key;
    this.emit('status', s);
  }
}
