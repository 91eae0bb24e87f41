// The "+CME ERROR" codes the virtual module answers with, and their verbose texts for AT+CMEE=2:
// 3GPP TS 27.007 §9.2 (SIM, network), the Quectel FILE note (4xx) and the MMS note §5 (75x–77x).

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
  // Quectel FILE application note.
  400: 'Invalid input value',
  401: 'Larger than the size of the file',
  402: 'Read zero byte',
  403: 'Drive full',
  405: 'File not found',
  406: 'Invalid file name',
  407: 'File already existed',
  409: 'Fail to write the file',
  410: 'Fail to open the file',
  411: 'Fail to read the file',
  420: 'No space',
  421: 'Time out',
  423: 'File too large',
  425: 'Invalid parameter',
  // Spec §5 Table 2.
  751: 'Unknown error',
  752: 'URL length error',
  753: 'URL error',
  754: 'Invalid proxy type',
  755: 'Proxy address error',
  756: 'Invalid parameter',
  757: 'Recipient address full',
  758: 'CC recipient address full',
  759: 'BCC recipient address full',
  760: 'Attachments full',
  761: 'File error',
  762: 'No recipient',
  763: 'File not found',
  764: 'MMS busy',
  765: 'Server response failed',
  766: 'Error response of HTTP(S) post',
  767: 'Invalid report of HTTP(S) post',
  768: 'PDP activation failed',
  769: 'PDP deactivated',
  770: 'Socket creation failed',
  771: 'Socket connection failed',
  772: 'Socket read failed',
  773: 'Socket write failed',
  774: 'Socket closed',
  775: 'Timeout',
  776: 'Encode data error',
  777: 'HTTP(S) decode data error',
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
