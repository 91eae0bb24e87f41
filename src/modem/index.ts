// The Quectel driver's public surface (DESIGN.md §1): what the daemon wires and the sender uses.
export { QuectelModem, SEND_RESULT_MARGIN_S, type QuectelModemOptions } from './quectel.js';
export type { ModemConfig, PdpConfig, MmsConfig, ModemTimers, CarrierParams, SettingsProvider, SettingsVerdict } from './config.js';
export { carrierParamsOf } from './config.js';
export { InvalidArgumentError, quote } from './quote.js';
export { encodeSubject, SUBJECT_MAX_BYTES } from './charset.js';
export * from './types.js';
