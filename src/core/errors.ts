// One table of the module's MMS error codes (spec §5, §6) and the named request errors of the
// front doors (DESIGN.md §4). Code that classifies or names an error reads these tables.

export type SendErrorClass =
  /** Cannot succeed on retry: fail the message at once. */
  | 'permanent'
  /** Retry by the ladder of §4.3: resend, re-activate the context, back off. */
  | 'transient'
  /** 764: the module is busy; wait and retry without counting an attempt. */
  | 'busy'
  /** 761/763: the module lost its RAM files; re-upload once, then retry. */
  | 'files-lost'
  /**
   * The request may have reached the MMSC before the failure (the context dropped, the answer
   * was lost, late or unreadable): `unknown`, unless `outbox.resendAmbiguous` retries it.
   */
  | 'ambiguous';

export interface SpecCode {
  code: number;
  name: string;
  class: SendErrorClass;
}

/** Spec §5, table 2. */
export const SPEC_CODES: readonly SpecCode[] = [
  { code: 751, name: 'Unknown error', class: 'ambiguous' },
  { code: 752, name: 'URL length error', class: 'permanent' },
  { code: 753, name: 'URL error', class: 'permanent' },
  { code: 754, name: 'Invalid proxy type', class: 'permanent' },
  { code: 755, name: 'Proxy address error', class: 'permanent' },
  { code: 756, name: 'Invalid parameter', class: 'permanent' },
  { code: 757, name: 'Recipient address full', class: 'permanent' },
  { code: 758, name: 'CC recipient address full', class: 'permanent' },
  { code: 759, name: 'BCC recipient address full', class: 'permanent' },
  { code: 760, name: 'Attachments full', class: 'permanent' },
  { code: 761, name: 'File error', class: 'files-lost' },
  { code: 762, name: 'No recipient', class: 'permanent' },
  { code: 763, name: 'File not found', class: 'files-lost' },
  { code: 764, name: 'MMS busy', class: 'busy' },
  { code: 765, name: 'Server response failed', class: 'transient' },
  { code: 766, name: 'Error response of HTTP(S) post', class: 'transient' },
  { code: 767, name: 'Invalid report of HTTP(S) post', class: 'ambiguous' },
  { code: 768, name: 'PDP activation failed', class: 'transient' },
  { code: 769, name: 'PDP deactivated', class: 'ambiguous' },
  { code: 770, name: 'Socket creation failed', class: 'transient' },
  { code: 771, name: 'Socket connection failed', class: 'transient' },
  { code: 772, name: 'Socket read failed', class: 'ambiguous' },
  { code: 773, name: 'Socket write failed', class: 'transient' },
  { code: 774, name: 'Socket closed', class: 'ambiguous' },
  { code: 775, name: 'Timeout', class: 'ambiguous' },
  { code: 776, name: 'Encode data error', class: 'permanent' },
  { code: 777, name: 'HTTP(S) decode data error', class: 'ambiguous' },
];

const BY_CODE = new Map(SPEC_CODES.map((c) => [c.code, c]));

/** What an error answered to a FILE command (AT+QFUPL, AT+QFDEL, AT+QFLST) means for a message. */
export type FileErrorClass =
  /** The module's RAM cannot hold the message, even after leftovers were deleted: `MessageTooLarge`. */
  | 'ram-too-small'
  /** 407: a file of that name is already there: delete it and upload again, once. */
  | 'file-exists'
  /** Counts as a failed attempt: the retry ladder of §4.3. */
  | 'attempt'
  /** Cannot succeed on retry: fail the message at once. */
  | 'permanent';

export interface FileCode {
  code: number;
  name: string;
  class: FileErrorClass;
}

/**
 * The "+CME ERROR" codes of Quectel's FILE AT commands (FILE application note, "Summary of error
 * codes"), with the vendor's names. DESIGN.md §14 classifies those a message can meet.
 */
export const FILE_CODES: readonly FileCode[] = [
  { code: 400, name: 'Invalid input value', class: 'permanent' },
  { code: 401, name: 'Larger than the size of the file', class: 'permanent' },
  { code: 402, name: 'Read zero byte', class: 'attempt' },
  { code: 403, name: 'Drive full', class: 'ram-too-small' },
  { code: 405, name: 'File not found', class: 'attempt' },
  { code: 406, name: 'Invalid file name', class: 'permanent' },
  { code: 407, name: 'File already existed', class: 'file-exists' },
  { code: 409, name: 'Fail to write the file', class: 'attempt' },
  { code: 410, name: 'Fail to open the file', class: 'attempt' },
  { code: 411, name: 'Fail to read the file', class: 'attempt' },
  { code: 420, name: 'No space', class: 'ram-too-small' },
  { code: 421, name: 'Time out', class: 'attempt' },
  { code: 423, name: 'File too large', class: 'ram-too-small' },
  { code: 425, name: 'Invalid parameter', class: 'permanent' },
  { code: 426, name: 'File already opened', class: 'attempt' },
];

const FILE_BY_CODE = new Map(FILE_CODES.map((c) => [c.code, c]));

/** The FILE note's entry for a +CME ERROR code; undefined for a code outside its table. */
export function fileCode(code: number): FileCode | undefined {
  return FILE_BY_CODE.get(code);
}

/** Spec §6, table 3 (plus the statuses the retry rules name). */
export const HTTP_STATUS_NAMES: Readonly<Record<number, string>> = {
  200: 'OK',
  400: 'Bad request',
  403: 'Forbidden',
  404: 'Not found',
  408: 'Request timeout',
  409: 'Conflict',
  411: 'Length required',
  500: 'Internal server error',
  502: 'Bad gateway',
  503: 'Service unavailable',
  504: 'Gateway timeout',
};

export function specCode(code: number): SpecCode {
  return BY_CODE.get(code) ?? { code, name: `Error ${code}`, class: 'transient' };
}

/**
 * How a `+QMMSEND: <err>,<httprsp>` result is to be treated (DESIGN.md §6): HTTP 4xx other
 * than 408/409 cannot succeed on retry, whatever `<err>` says; 504 from a WAP gateway means it
 * passed the request on and heard nothing back in time, so the MMSC may have it.
 */
export function classifySendResult(err: number, httpStatus: number): SendErrorClass {
  if (httpStatus >= 400 && httpStatus < 500 && httpStatus !== 408 && httpStatus !== 409) return 'permanent';
  if (httpStatus === 504) return 'ambiguous';
  const known = BY_CODE.get(err);
  if (known) return known.class;
  // `0,<status>`: the server answered with an error, so it has not taken the message. A code
  // outside the table came from the module after the request may have gone out: nobody can say.
  return err === 0 ? 'transient' : 'ambiguous';
}

/** Named request errors (D-Bus `org.example.Mms1.Error.<Name>`, MQTT `error.name`). */
export const REQUEST_ERROR_NAMES = [
  'InvalidRecipient',
  'TooManyRecipients',
  'SubjectTooLong',
  'TooManyAttachments',
  'AttachmentNotAllowed',
  'AttachmentNotFound',
  'MessageTooLarge',
  'InvalidOption',
  'InvalidRequest',
  'NotFound',
  'NotCancellable',
  'NotResendable',
  'AccessDenied',
  // DESIGN.md §12: Retrieve() of a message that is not `notified` or `failed`; receiving with inbound.enabled false.
  'NotRetrievable',
  'InboundDisabled',
] as const;
export type RequestErrorName = (typeof REQUEST_ERROR_NAMES)[number];

/**
 * A submission that arrived while the daemon is stopping: not the request's fault, and nothing was
 * queued. D-Bus answers it as `org.freedesktop.DBus.Error.Failed` with this text; MQTT leaves the
 * request with the broker, which delivers it again once mmsd is back.
 */
export class StoppingError extends Error {
  override name = 'StoppingError';
  constructor() {
    super('mmsd is stopping; nothing was queued: send the message again once it is back');
  }
}

/** The text of anything thrown: an Error's message, anything else as a string. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Anything thrown as an Error: an Error as it is, anything else wrapped with its text. */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** A request refused at a front door, before anything was queued. */
export class RequestError extends Error {
  constructor(
    readonly errorName: RequestErrorName,
    message: string,
  ) {
    super(message);
    this.name = 'RequestError';
  }
}

/**
 * Quectel HTTP(S) AT Commands Manual, "Summary of error codes": answered as "+CME ERROR: <code>"
 * and carried as <err> in the +QHTTPGET/+QHTTPPOST/+QHTTPREAD/+QHTTPREADFILE result codes.
 */
export const HTTP_CODES: Readonly<Record<number, string>> = {
  701: 'HTTP(S) unknown error',
  702: 'HTTP(S) timeout',
  703: 'HTTP(S) busy',
  704: 'HTTP(S) UART busy',
  705: 'HTTP(S) no GET/POST requests',
  706: 'HTTP(S) network busy',
  707: 'HTTP(S) network open failed',
  708: 'HTTP(S) network no configuration',
  709: 'HTTP(S) network deactivated',
  710: 'HTTP(S) network error',
  711: 'HTTP(S) URL error',
  712: 'HTTP(S) empty URL',
  713: 'HTTP(S) IP address error',
  714: 'HTTP(S) DNS error',
  715: 'HTTP(S) socket create error',
  716: 'HTTP(S) socket connect error',
  717: 'HTTP(S) socket read error',
  718: 'HTTP(S) socket write error',
  719: 'HTTP(S) socket closed',
  720: 'HTTP(S) data encode error',
  721: 'HTTP(S) data decode error',
  722: 'HTTP(S) read timeout',
  723: 'HTTP(S) response failed',
  724: 'Incoming call busy',
  725: 'Voice call busy',
  726: 'Input timeout',
  727: 'Wait data timeout',
  728: 'Wait HTTP(S) response timeout',
  729: 'Memory allocation failed',
  730: 'Invalid parameter',
};
