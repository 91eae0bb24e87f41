// The modem status clients see (DESIGN.md §6): the state and its detail, the registration combined
// from +CGREG and +CEREG, the operator and the signal; announced only when something in it changed.
import type { Logger } from 'pino';
import { isRegistered, registrationOf } from './answers.js';
import type { ModemState, ModemStatus, Registration } from './types.js';

/** Domains whose +CGREG/+CEREG stat the monitor tracks (LTE-only networks answer only +CEREG). */
export type Domain = 'CGREG' | 'CEREG';

export class StatusBoard {
  private readonly current: ModemStatus = { state: 'absent', registration: 'unknown', operator: '', signal: -1 };
  private readonly stat: Record<Domain, number> = { CGREG: 0, CEREG: 0 };
  private lastEmitted = '';

  constructor(
    private readonly logger: Logger,
    /** Called with a copy of the status each time it changed. */
    private readonly announce: (status: ModemStatus) => void,
  ) {}

  get status(): ModemStatus {
    return { ...this.current };
  }

  get state(): ModemState {
    return this.current.state;
  }

  setState(state: ModemState, detail?: string): void {
    if (state === this.current.state && detail === this.current.detail) return;
    if (state !== this.current.state) this.logger.info({ from: this.current.state, to: state, detail }, 'modem state');
    this.current.state = state;
    if (detail === undefined) delete this.current.detail;
    else this.current.detail = detail;
    this.emit();
  }

  /** A domain's registration stat (+CGREG/+CEREG), combined at the next `updateRegistration`. */
  noteRegistration(domain: Domain, stat: number): void {
    this.stat[domain] = stat;
  }

  /** Combines both domains into one registration; true when registered through either. */
  updateRegistration(): boolean {
    const regs = [registrationOf(this.stat.CGREG), registrationOf(this.stat.CEREG)];
    const pick = (...order: Registration[]): Registration => order.find((r) => regs.includes(r)) ?? 'not-registered';
    const registration = pick('home', 'roaming', 'searching', 'denied', 'unknown', 'not-registered');
    if (registration !== this.current.registration) {
      this.current.registration = registration;
      this.emit();
    }
    return isRegistered(registration);
  }

  /** AT+CSQ's value; announced with the next change or `emit`. */
  setSignal(value: number): void {
    this.current.signal = value;
  }

  /** AT+COPS?'s operator; announced with the next change or `emit`. */
  setOperator(value: string): void {
    this.current.operator = value;
  }

  /** The port is gone: nothing is known of the network any more, and the state is `absent`. */
  lost(): void {
    this.stat.CGREG = 0;
    this.stat.CEREG = 0;
    this.current.registration = 'unknown';
    this.current.signal = -1;
    this.current.operator = '';
    this.setState('absent');
  }

  /** Announces the status when something a client sees changed since the last announcement. */
  emit(): void {
    const s = this.status;
    const key = JSON.stringify(s);
    if (key === this.lastEmitted) return;
    this.lastEmitted = key;
    this.announce(s);
  }
}
