// Carrier settings from the SIM (DESIGN.md §10): what the daemon wires. The driver hands over the
// SIM's identity; CarrierDatabase looks it up; resolveCarrier applies the config's precedence.
export { CarrierDatabase, DEFAULT_DATABASE, loadCarrierIndex } from './database.js';
export { CarrierDatabaseError, InvalidImsiError } from './errors.js';
export { lookupCarrier, type LookupChoice } from './lookup.js';
export type { CarrierIndex, MmsApn, ProviderEntry } from './parse.js';
export { carrierSettingsOf, lookupNeeded, noMmscReason, resolveCarrier, type CarrierInputs, type ResolvedCarrier } from './settings.js';
export * from './types.js';
