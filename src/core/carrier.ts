// The carrier settings' status as the daemon shows it (DESIGN.md §10: D-Bus `Carrier`, MQTT
// `carrier`, `mmsctl carrier`): src/carrier produces it, the front doors publish it.

/**
 * The settings that depend on the carrier (DESIGN.md §10): the context's APN and credentials, the
 * MMSC and its proxy. The database fills them, the config pins them, the driver applies them.
 */
export interface CarrierParams {
  apn: string;
  username: string;
  password: string;
  /** `pdp.auth`: 0 none, 1 PAP, 2 CHAP, 3 PAP or CHAP. */
  auth: number;
  mmsc: string;
  /** '' = no proxy (WAP gateway). */
  proxyHost: string;
  proxyPort: number;
}

export type CarrierSource = 'config' | 'database' | 'ambiguous' | 'not-found' | 'pending';

/** One provider (and MMS setting) the SIM's MCC-MNC may belong to, with the line that picks it. */
export interface CarrierCandidate {
  /** The value `carrier.provider` takes: "<name> (<MCC>-<MNC>)", unique within the database. */
  provider: string;
  apn: string;
  mmsc: string;
  /** `"carrier": {"provider": "<provider>"}`, to paste into the config file. */
  configLine: string;
}

/** The `Carrier` status (D-Bus a{sv}, MQTT `carrier`, `mmsctl carrier`): no credentials in it. */
export interface CarrierReport {
  source: CarrierSource;
  provider: string;
  mccMnc: string;
  apn: string;
  mmsc: string;
  /** "host:port", or empty for none. */
  proxy: string;
  maxMessageBytes: number;
  candidates: CarrierCandidate[];
  reason: string;
  /** The explicit config keys that won over a database value. */
  configKeys: string[];
}
