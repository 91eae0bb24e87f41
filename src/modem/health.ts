// The health monitor (DESIGN.md §6, spec §1.1, §4.1, §4.2): bring-up after start, reconnect and
// RDY; SIM, registration, attach, PDP and signal from URCs and an idle poll. Its parts: the task
// chain, the status board, the carrier setup (§10) and the recovery ladder (§4.2).
import type { Logger } from 'pino';
import { ClosedError } from '../at/errors.js';
import type { AtCommander } from '../at/types.js';
import { TypedEmitter } from '../core/events.js';
import { fieldsOf, parseRegistrationLine, unquote, simStateOf, type SimStatus } from './answers.js';
import type { QuectelCommands } from './commands.js';
import { CarrierSetup } from './carrier-setup.js';
import type { ModemConfig, ModemTimers, SettingsProvider } from './config.js';
import type { SendLock } from './lock.js';
import type { ModuleSession } from './session.js';
import type { ModemEvents, ModemIdentity, ModemState, ModemStatus, SimIdentity } from './types.js';
import { RecoveryLadder } from './recovery-ladder.js';
import { StatusBoard, type Domain } from './status-board.js';
import { TaskChain, tolerate } from './task-chain.js';
import { RESTART_URC } from './urcs.js';
import { errorText } from '../core/errors.js';

/** Tries of `AT` at bring-up, each with a short timeout (a booting module stays silent a while). */
export const PROBE_ATTEMPTS = 10;
export const PROBE_TIMEOUT_MS = 1000;

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

/**
 * Events: ModemEvents ('rebooted' on RDY or a reconnect; 'identity' when the module's identity is
 * first read or differs from the last one), which the driver relays.
 */
export class HealthMonitor extends TypedEmitter<ModemEvents> {
  /** The status clients see; 'status' when it changes. */
  private readonly board: StatusBoard;
  /** Bring-up, polls and recovery, one after the other; superseded by every bring-up request, disconnect and stop. */
  private readonly tasks = new TaskChain(
    () => this.running,
    (e) => this.onTaskError(e),
  );
  private timer: unknown;
  private running = false;
  private everConnected = false;
  private readonly detach: (() => void)[] = [];
  /** The SIM's identity, the carrier settings in force, the context claimed and the MMS settings (DESIGN.md §10). */
  private readonly carrier: CarrierSetup;
  /** §4.2: the context brought up against failures, with a rationed module restart. */
  private readonly ladder: RecoveryLadder;
  /** The module's identity (DESIGN.md §13) as last read at bring-up; undefined before. */
  private module: ModemIdentity | undefined;
  /** A `+CPIN: READY` came while ready: the SIM may be another one; checked at the next chance. */
  private simRecheck = false;

  constructor(private readonly o: HealthMonitorOptions) {
    super();
    this.board = new StatusBoard(o.logger, (s) => this.emit('status', s));
    const { commands, logger, config, session, settings } = o;
    const tasks = this.tasks;
    this.carrier = new CarrierSetup({ commands, logger, config, session, tasks, ...(settings ? { settings } : {}) });
    const host = { setState: this.setState.bind(this), readRegistration: this.readRegistration.bind(this) };
    this.ladder = new RecoveryLadder({ commands, logger, config, clock: o.clock, session, carrier: this.carrier, tasks, host });
  }

  /** The SIM's identity as last read (after SIM READY), undefined before. */
  get simIdentity(): SimIdentity | undefined {
    return this.carrier.simIdentity;
  }

  get status(): ModemStatus {
    return this.board.status;
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
    this.ladder.restarted();
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
    this.tasks.supersede();
    for (const off of this.detach.splice(0)) off();
    if (this.timer !== undefined) this.o.timers.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** §4.3: AT+QIDEACT then AT+QIACT, through the recovery ladder; rejects when it stays down. */
  async reactivate(): Promise<void> {
    const ok = await this.enqueue(async (gen) => {
      if (this.board.state === 'ready') this.setState('registered', 'PDP context re-activation');
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
    this.tasks.supersede();
    this.forgetModule();
    this.o.logger.warn({ err }, 'modem port lost');
    this.board.lost();
  }

  private onRestarted(): void {
    // §2.1: settings are not saved; the module restarted and lost them and its RAM files.
    this.o.logger.warn('module restarted (RDY)');
    this.ladder.restarted();
    this.rebooted();
    this.requestBringUp();
  }

  private onSimUrc(sim: SimStatus): void {
    const state = this.board.state;
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
          this.board.state === 'ready' ? this.o.lock.tryRun(() => this.recheckSim(gen)) : this.recheckSim(gen),
        );
      }
    } else if (sim.state !== 'busy' && (state === 'searching' || SIM_SETTLED.includes(state))) {
      // §4.1: messages wait while the SIM is gone; they are not failed.
      this.setState(sim.state === 'missing' ? 'sim-missing' : 'sim-locked', sim.text);
    }
  }

  private onRegistrationUrc(domain: Domain, stat: number): void {
    this.board.noteRegistration(domain, stat);
    const registered = this.board.updateRegistration();
    const state = this.board.state;
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
    if (this.board.state !== 'ready') return;
    this.setState('registered', 'PDP context deactivated');
    this.enqueueWhile(['registered'], (gen) => this.bringUpPdp(gen, true));
  }

  // --- task chain: bring-up, polls and recovery run one after the other ---

  private requestBringUp(): void {
    this.tasks.supersede();
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
    this.enqueueAt(async (gen) => (states.includes(this.board.state) ? task(gen) : undefined));
  }

  private enqueue<T>(task: (gen: number) => Promise<T>): Promise<T | undefined> {
    return this.tasks.enqueue(task);
  }

  /** A task of the current generation failed. */
  private onTaskError(e: unknown): void {
    if (e instanceof ClosedError) {
      // The port went away under the task; 'disconnected' says so, or the next tick retries.
      this.o.logger.warn({ err: e }, 'modem task ended: channel closed');
      if (!this.o.at.isConnected) this.setState('absent');
      return;
    }
    this.o.logger.error({ err: e }, 'modem task failed');
    this.setState('error', errorText(e));
  }

  /** Ends the task (Superseded) once a newer bring-up, a disconnect or stop passed its generation. */
  private check(gen: number): void {
    this.tasks.check(gen);
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
    switch (this.board.state) {
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
    throw new Error(`module does not answer AT (${PROBE_ATTEMPTS} tries): ${errorText(last)}`);
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
    this.board.setSignal(await c.querySignal());
    this.check(gen);
    this.board.setOperator(await c.queryOperator());
    this.check(gen);
    this.board.emit();
    const settings = await this.carrier.resolveSettings(gen);
    if ('unconfigured' in settings) {
      this.setState('unconfigured', settings.unconfigured);
      return;
    }
    // Not ready again until the module has them (a SIM swapped while ready).
    if (settings.changed && this.board.state === 'ready') this.setState('registered', 'applying the carrier settings of another SIM');
    const claim = await this.carrier.claimContext(gen);
    if ('inUse' in claim) {
      this.setState('context-in-use', claim.inUse);
      return;
    }
    await this.carrier.configureContext(gen);
    if (this.board.state !== 'ready') this.setState('registered');
    await this.bringUpPdp(gen, false, claim.active);
  }

  /** Queries both registrations; true when either is home or roaming. */
  private async readRegistration(gen: number): Promise<boolean> {
    for (const domain of ['CGREG', 'CEREG'] as const) {
      const stat = await this.tolerate(() => this.o.commands.queryRegistration(domain));
      this.check(gen);
      if (stat !== undefined) this.board.noteRegistration(domain, stat);
    }
    return this.board.updateRegistration();
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
    if (!active && !(await this.ladder.activate(gen))) return false;
    if (!this.o.session.mmsConfigured) await this.carrier.applyMmsSettings(gen);
    this.setState('ready');
    return true;
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
    this.board.setSignal(await c.querySignal());
    this.check(gen);
    this.board.emit();
    const ctx = this.o.config.pdp.contextId;
    if (!(await c.queryContexts()).some((x) => x.contextId === ctx && x.active)) {
      this.check(gen);
      this.setState('registered', 'PDP context not active');
      await this.bringUpPdp(gen, false);
    }
  }

  /** Runs a command whose ERROR/CME answer is not fatal here (logged); other failures propagate. */
  private tolerate<T>(fn: () => Promise<T>, alsoClosed = false): Promise<T | undefined> {
    return tolerate(this.o.logger, fn, alsoClosed);
  }

  private setState(state: ModemState, detail?: string): void {
    this.board.setState(state, detail);
  }
}
