// The "+CME ERROR" codes the virtual module answers with, and their verbose texts for AT+CMEE=2:
// 3GPP TS 27.007 §9.2 (SIM, network), the Quectel FILE note (4xx), the HTTP(S) manual (701–730)
// and the MMS note §5 (75x–77x).
import { FILE_CODES, HTTP_CODES, SPEC_CODES } from '../core/errors.js';


/** The HTTP(S) codes the emulation gives, by name. */
export const HTTP_ERR = {
  unknown: 701,
  timeout: 702,
  busy: 703,
  noRequest: 705,
  networkDeactivated: 709,
  urlError: 711,
  emptyUrl: 712,
  dnsError: 714,
  socketConnect: 716,
  socketRead: 717,
  socketWrite: 718,
  socketClosed: 719,
  readTimeout: 722,
  inputTimeout: 726,
  invalidParameter: 730,
} as const;

export const CME_TEXT: Readonly<Record<number, string>> = {
  3: 'operation not allowed',
  4: 'operation not supported',
  10: 'SIM not inserted',
  11: 'SIM PIN required',
  12: 'SIM PUK required',
  13: 'SIM failure',
  14: 'SIM busy',
  16: 'incorrect password',
  30: 'no network service',
  50: 'Incorrect parameters',
  // The FILE note's and spec §5's names, from the daemon's one table of each.
  ...Object.fromEntries(FILE_CODES.map((c) => [c.code, c.name])),
  ...HTTP_CODES,
  ...Object.fromEntries(SPEC_CODES.map((c) => [c.code, c.name])),
};

/** Spec §5 codes by name, for the emulation's own decisions. */
export const MMS_ERR = {
  unknown: 751,
  urlLength: 752,
  url: 753,
  proxyAddress: 755,
  invalidParameter: 756,
  toFull: 757,
  ccFull: 758,
  bccFull: 759,
  attachmentsFull: 760,
  noRecipient: 762,
  fileNotFound: 763,
  busy: 764,
  pdpDeactivated: 769,
  timeout: 775,
} as const;

export const CME_SIM_NOT_INSERTED = 10;
export const CME_SIM_PIN_REQUIRED = 11;
export const CME_NOT_ALLOWED = 3;
export const CME_INCORRECT_PASSWORD = 16;
export const CME_NO_NETWORK = 30;

/** The "+CMS ERROR" codes the SMS commands answer with (3GPP TS 27.005 §3.2.5) and their texts. */
export const CMS_TEXT: Readonly<Record<number, string>> = {
  302: 'operation not allowed',
  303: 'operation not supported',
  304: 'invalid PDU mode parameter',
  310: 'SIM not inserted',
  321: 'invalid memory index',
  322: 'memory full',
  500: 'unknown error',
};
