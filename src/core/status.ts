// The modem's state as the daemon shows it (DESIGN.md §4 ModemState, Registration, …): the driver
// produces it, the front doors publish it.

export const MODEM_STATES = [
  'absent',
  'initializing',
  'sim-missing',
  'sim-locked',
  'searching',
  'registered',
  'ready',
  'error',
  // DESIGN.md §10: no MMSC from the config or the carrier database; messages wait.
  'unconfigured',
  // DESIGN.md §10: pdp.contextId is active with another APN (someone else's data): left alone.
  'context-in-use',
] as const;
export type ModemState = (typeof MODEM_STATES)[number];

export type Registration = 'home' | 'roaming' | 'searching' | 'denied' | 'unknown' | 'not-registered';

export interface ModemStatus {
  state: ModemState;
  registration: Registration;
  operator: string;
  /** 0..31 from +CSQ, -1 unknown (99). */
  signal: number;
  /** Last failure that put the modem into `error`, for STATUS= and logs. */
  detail?: string;
}

/**
 * The module itself (DESIGN.md §13), read at every bring-up: AT+CGSN (IMEI), AT+CGMI, AT+CGMM,
 * AT+CGMR. '' where the module did not say.
 */
export interface ModemIdentity {
  imei: string;
  manufacturer: string;
  model: string;
  firmware: string;
}
