// The carrier settings' shared types (DESIGN.md §10): the SIM's identity the driver hands over, the
// settings the database can fill and the config can pin, and the report the front doors publish
// (its types live in src/core/carrier.ts, where the front doors can read them).
import type { CarrierCandidate, CarrierParams } from '../core/carrier.js';

export type { CarrierCandidate, CarrierReport, CarrierSource } from '../core/carrier.js';

/** What the modem driver reads once the SIM is READY. src/carrier never asks the modem itself. */
export interface SimIdentity {
  /** `AT+CIMI`: 6–15 digits, MCC + MNC + subscriber number. */
  imsi: string;
  /** `AT+QSPN`'s service provider name; empty or absent when the SIM has none. */
  spn?: string;
}

/** The values the carrier database can supply, one field per config key (CARRIER_KEYS). */
export interface CarrierSettings extends CarrierParams {
  maxMessageBytes: number;
}

/** Which config key each setting is (DESIGN.md §10 "Precedence, key by key"). */
export const CARRIER_KEYS = {
  apn: 'pdp.apn',
  username: 'pdp.username',
  password: 'pdp.password',
  auth: 'pdp.auth',
  mmsc: 'mms.mmsc',
  proxyHost: 'mms.proxy.host',
  proxyPort: 'mms.proxy.port',
  maxMessageBytes: 'mms.maxMessageBytes',
} as const satisfies Record<keyof CarrierSettings, string>;

/** What the database says about one SIM (lookupCarrier). Settings are empty unless `database`. */
export interface CarrierLookup {
  source: 'database' | 'ambiguous' | 'not-found';
  /** "208-01" or "310-260": the code the lookup used (for `not-found`, the IMSI's MCC and 2-digit MNC). */
  mccMnc: string;
  /** The chosen candidate's key; empty unless `database`. */
  provider: string;
  apn: string;
  username: string;
  password: string;
  /** `pdp.auth` the entry implies: its method (PAP 1, CHAP 2), else 3 when it has credentials, else 0. */
  auth: number;
  mmsc: string;
  /** `<mmsproxy>`; the port is absent when the entry gives none. */
  proxy: { host: string; port?: number } | undefined;
  /** `<mmsattachmentsize>`, when the entry has one. */
  maxMessageBytes: number | undefined;
  /** `database`: every candidate of the code; `ambiguous`: those still left; `not-found`: none. */
  candidates: CarrierCandidate[];
  /** One sentence on how the lookup ended, for the log and `mmsctl carrier`. */
  reason: string;
}
