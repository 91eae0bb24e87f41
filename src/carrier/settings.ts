// Precedence of DESIGN.md §10, a pure function: key by key, a config key set explicitly wins over
// the database, the database over the config's default; carrier.auto false means the config only.
import type { Config } from '../config/schema.js';
import { checkLeaf, leaves, type Leaf } from '../config/schema.js';
import { CARRIER_KEYS, type CarrierLookup, type CarrierReport, type CarrierSettings, type CarrierSource } from './types.js';

export interface CarrierInputs {
  /** `carrier.auto`. */
  auto: boolean;
  /** The config's value of every key, its default where none was set (carrierSettingsOf). */
  config: CarrierSettings;
  /** The config keys set in the file or the environment (config/load.ts explicitKeys). */
  explicit: ReadonlySet<string>;
  /** The lookup's result; undefined while the SIM's identity is not known (`pending`). */
  lookup?: CarrierLookup;
}

export interface ResolvedCarrier {
  /** What the modem is configured with. */
  settings: CarrierSettings;
  /** What the front doors show. */
  report: CarrierReport;
}

/** The keys of CARRIER_KEYS as the loaded config holds them. */
export function carrierSettingsOf(config: Pick<Config, 'pdp' | 'mms'>): CarrierSettings {
  return {
    apn: config.pdp.apn,
    username: config.pdp.username,
    password: config.pdp.password,
    auth: config.pdp.auth,
    mmsc: config.mms.mmsc,
    proxyHost: config.mms.proxy.host,
    proxyPort: config.mms.proxy.port,
    maxMessageBytes: config.mms.maxMessageBytes,
  };
}

const FIELDS = Object.keys(CARRIER_KEYS) as Array<keyof CarrierSettings>;
const LEAVES: ReadonlyMap<string, Leaf> = new Map(leaves().map(({ key, leaf }) => [key, leaf]));

/** The database's value of each field; undefined where the entry gives none. */
function databaseValues(l: CarrierLookup): Partial<CarrierSettings> {
  return {
    apn: l.apn,
    username: l.username,
    password: l.password,
    auth: l.auth,
    mmsc: l.mmsc,
    proxyHost: l.proxy?.host ?? '',
    proxyPort: l.proxy?.port,
    maxMessageBytes: l.maxMessageBytes,
  };
}

function reportOf(source: CarrierSource, s: CarrierSettings, l: CarrierLookup | undefined, reason: string, configKeys: string[]): CarrierReport {
  return {
    source,
    provider: source === 'database' && l ? l.provider : '',
    mccMnc: l?.mccMnc ?? '',
    apn: s.apn,
    mmsc: s.mmsc,
    proxy: s.proxyHost === '' ? '' : `${s.proxyHost}:${s.proxyPort}`,
    maxMessageBytes: s.maxMessageBytes,
    candidates: l?.candidates ?? [],
    reason,
    configKeys,
  };
}

/**
 * Whether the database has anything to give: carrier.auto is on and some key of CARRIER_KEYS was
 * not set explicitly. When false, the database is never read (nor its parser loaded).
 */
export function lookupNeeded(auto: boolean, explicit: ReadonlySet<string>): boolean {
  return auto && Object.values(CARRIER_KEYS).some((key) => !explicit.has(key));
}

/**
 * Why mmsd cannot send with what was resolved — no MMSC from the config or the database — in one
 * sentence that names what to set (ModemState `unconfigured`); undefined when there is an MMSC.
 */
export function noMmscReason(resolved: ResolvedCarrier): string | undefined {
  const { settings, report } = resolved;
  if (settings.mmsc !== '') return undefined;
  if (report.source === 'ambiguous') return `no MMSC: ${report.reason}, or set mms.mmsc`;
  if (report.source === 'config') return `no MMSC: mms.mmsc is empty (${report.reason}); set mms.mmsc`;
  const reason = report.reason.endsWith('set mms.mmsc') ? report.reason : `${report.reason}; set mms.mmsc`;
  return `no MMSC: ${reason}`;
}

/** The effective settings and the Carrier report. */
export function resolveCarrier(inputs: CarrierInputs): ResolvedCarrier {
  const { config, explicit, lookup } = inputs;
  const isSet = (f: keyof CarrierSettings): boolean => explicit.has(CARRIER_KEYS[f]);
  if (!inputs.auto) {
    return { settings: { ...config }, report: reportOf('config', config, undefined, 'carrier.auto is false: the settings are the config\'s', []) };
  }
  if (!lookupNeeded(inputs.auto, explicit)) {
    return { settings: { ...config }, report: reportOf('config', config, undefined, 'every carrier key is set in the config: no lookup', []) };
  }
  if (lookup === undefined) {
    return { settings: { ...config }, report: reportOf('pending', config, undefined, 'waiting for the SIM\'s identity', []) };
  }
  if (lookup.source !== 'database') {
    // Nothing to take from the database; an MMSC set in the config still lets mmsd send.
    const source = isSet('mmsc') ? 'config' : lookup.source;
    const reason = source === 'config' ? `mms.mmsc is set, so the config's settings are used (${lookup.reason})` : lookup.reason;
    return { settings: { ...config }, report: reportOf(source, config, lookup, reason, []) };
  }

  const db = databaseValues(lookup);
  const settings = { ...config };
  const configKeys: string[] = [];
  const problems: string[] = [];
  let fromDatabase = 0;
  // Credentials belong to their APN: with pdp.apn set to another APN than the entry's, the entry's
  // user name, password and authentication are not that APN's, and the config's stand.
  const otherApn = isSet('apn') && config.apn.toLowerCase() !== lookup.apn.toLowerCase();
  for (const f of FIELDS) {
    const key = CARRIER_KEYS[f];
    const value = db[f];
    if (value === undefined) continue;
    if (isSet(f)) {
      configKeys.push(key);
      continue;
    }
    // A port belongs to its host: a proxy host from the config keeps the config's port.
    if (f === 'proxyPort' && (isSet('proxyHost') || db.proxyHost === '')) continue;
    if ((f === 'username' || f === 'password' || f === 'auth') && otherApn) continue;
    const leaf = LEAVES.get(key);
    const problem = leaf && checkLeaf(leaf, value);
    if (problem) {
      problems.push(`the database's ${key} ${f === 'password' ? '(hidden)' : JSON.stringify(value)} is not used: it ${problem}; set ${key}`);
      continue;
    }
    (settings as Record<keyof CarrierSettings, string | number>)[f] = value;
    fromDatabase++;
  }
  const reason = [lookup.reason, ...problems].join('; ');
  return { settings, report: reportOf(fromDatabase > 0 ? 'database' : 'config', settings, lookup, reason, configKeys) };
}
