// Configuration of the Quectel driver (DESIGN.md §3: the `pdp.*`, `mms.*` and `modem.*` keys it
// uses) and the timer seam tests drive with fake time.
import type { CarrierParams } from '../core/carrier.js';
import type { Charset, SendParams, SimIdentity } from './types.js';

export interface PdpConfig {
  /** 1–16: AT+QICSGP, AT+QIACT, AT+QMMSCFG="contextid". */
  contextId: number;
  apn: string;
  username: string;
  password: string;
  /** AT+QICSGP <authentication>: 0 none, 1 PAP, 2 CHAP, 3 PAP or CHAP. */
  auth: number;
}

/** The `mms.*` settings; the sendparam of §2.1 is the messages' default. */
export interface MmsConfig extends SendParams {
  /** MMSC URL, ≤ 100 bytes (spec §2.1). */
  mmsc: string;
  /** Proxy gateway, ≤ 50 bytes; '' = no proxy (applied as `AT+QMMSCFG="proxy","",<port>`, which clears it). */
  proxyHost: string;
  proxyPort: number;
  /** Charset for non-ASCII subjects and the one applied at start-up. */
  charset: Charset;
  /** x-up-calling-id header: 0 or 1. */
  supportField: number;
  /** 1–125 s. */
  connectTimeoutS: number;
}

export interface ModemConfig {
  pdp: PdpConfig;
  mms: MmsConfig;
  /** Health poll period while idle (modem.healthIntervalS). */
  healthIntervalS: number;
  /** Default per-command timeout (modem.commandTimeoutMs); long commands carry their own. */
  commandTimeoutMs: number;
  /** §4.2: least time between two module restarts (AT+CFUN=1,1); 600 s by default. */
  rebootMinIntervalS: number;
  /** AT+QFUPL blocks in flight before their "A"s are awaited (modem.uploadWindow); 1 when absent. */
  uploadWindow?: number;
}

/** The settings that depend on the carrier (DESIGN.md §10); they may change at run time (another SIM). */
export type { CarrierParams };

/** What to configure the module with for a SIM: settings, or why there are none (`unconfigured`). */
export type SettingsVerdict = { use: CarrierParams } | { unconfigured: string };

/**
 * Asked after every SIM READY with the SIM's identity. The driver applies what it answers (again,
 * AT+QICSGP and every AT+QMMSCFG, when it differs from what the module has) or waits in
 * `unconfigured`, asking again at every health tick.
 */
export type SettingsProvider = (sim: SimIdentity) => Promise<SettingsVerdict>;

/** The CarrierParams a ModemConfig holds (used when no SettingsProvider is given). */
export function carrierParamsOf(config: Pick<ModemConfig, 'pdp' | 'mms'>): CarrierParams {
  const { apn, username, password, auth } = config.pdp;
  const { mmsc, proxyHost, proxyPort } = config.mms;
  return { apn, username, password, auth, mmsc, proxyHost, proxyPort };
}

/** setTimeout/clearTimeout as a seam; the default reads the globals at call time (fake timers work). */
export interface ModemTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemTimers: ModemTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
