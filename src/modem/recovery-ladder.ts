// The recovery ladder of spec §4.2 (DESIGN.md §6): AT+QIACT until the context is up, with attach,
// registration and the context settings checked between tries, and a rationed module restart.
import type { Logger } from 'pino';
import { ClosedError } from '../at/errors.js';
import type { CarrierSetup } from './carrier-setup.js';
import type { QuectelCommands } from './commands.js';
import type { ModemConfig } from './config.js';
import type { ModuleSession } from './session.js';
import { tolerate, type TaskChain } from './task-chain.js';
import type { ModemState } from './types.js';

/** §4.2: failed activation rounds before a module restart is considered. */
export const PDP_ROUNDS_BEFORE_RESTART = 3;

/** What the ladder needs of the health monitor it climbs for. */
export interface LadderHost {
  setState(state: ModemState, detail?: string): void;
  /** Queries both registrations; true when either is home or roaming. */
  readRegistration(gen: number): Promise<boolean>;
}

export interface RecoveryLadderOptions {
  commands: QuectelCommands;
  logger: Logger;
  config: ModemConfig;
  clock: () => number;
  session: ModuleSession;
  carrier: CarrierSetup;
  tasks: TaskChain;
  host: LadderHost;
}

export class RecoveryLadder {
  private failedRounds = 0;
  private lastRestartAt = 0;

  constructor(private readonly o: RecoveryLadderOptions) {}

  /** The module restarted now (RDY), or the daemon started: the next restart is rationed from here. */
  restarted(): void {
    this.lastRestartAt = this.o.clock();
  }

  /**
   * §4.2: AT+QIACT; on failure check attach (AT+CGATT=1 if detached), registration, re-apply
   * AT+QICSGP and retry. After three failed rounds the module is restarted (AT+CFUN=1,1), but
   * only when the last restart is at least `rebootMinIntervalS` ago; until then the next health
   * tick tries another round.
   */
  async activate(gen: number): Promise<boolean> {
    const c = this.o.commands;
    const { config, clock, logger, tasks, host } = this.o;
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
      tasks.check(gen);
      if (this.failedRounds >= PDP_ROUNDS_BEFORE_RESTART && clock() - this.lastRestartAt >= config.rebootMinIntervalS * 1000) {
        await this.restartModule(gen);
        return false;
      }
      // §4.2 steps 1–3: attach, registration, context settings.
      if (!(await c.queryAttach())) {
        tasks.check(gen);
        await tolerate(logger, () => c.attach());
      }
      tasks.check(gen);
      if (!(await host.readRegistration(gen))) {
        host.setState('searching');
        return false;
      }
      await this.o.carrier.configureContext(gen);
      if (this.failedRounds >= PDP_ROUNDS_BEFORE_RESTART) {
        host.setState('registered', `PDP activation failed ${this.failedRounds} times`);
        return false;
      }
    }
  }

  private async restartModule(gen: number): Promise<void> {
    const { logger, session, host } = this.o;
    logger.error({ rounds: this.failedRounds }, 'PDP activation keeps failing: restarting the module');
    this.lastRestartAt = this.o.clock();
    this.failedRounds = 0;
    session.forget();
    host.setState('initializing', 'module restart (AT+CFUN=1,1)');
    // A module that resets before its OK is what was asked for.
    await tolerate(logger, () => this.o.commands.restartModule(), true);
    this.o.tasks.check(gen);
  }
}
