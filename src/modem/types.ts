// Contract of the Quectel driver (src/modem): what the sender and the daemon use of it.
import type { Charset } from '../core/charset.js';
import type { Listenable } from '../core/events.js';
import type { SendParams } from '../core/options.js';
import type { ModemIdentity, ModemStatus } from '../core/status.js';
import type { ModuleSessionView } from './session.js';

// The status the driver reports (the front doors show it as is) and the sendparam it applies
// (spec §2.1: validity, priority, sendrep, readrep, visible, class) are the daemon's model, in core.
export { MODEM_STATES, type ModemIdentity, type ModemState, type ModemStatus, type Registration } from '../core/status.js';
export type { SendParams } from '../core/options.js';
// The module's charsets and the rules that pick one are core's (the sender reads them too).
export type { Charset } from '../core/charset.js';
export type { ModuleSessionView } from './session.js';

/** What the driver reads of the SIM once it is READY (DESIGN.md §10); '' where it could not. */
export interface SimIdentity {
  /** AT+CIMI: MCC + MNC + subscriber number. */
  imsi: string;
  /** AT+QCCID: the card's serial number. */
  iccid: string;
  /** AT+QSPN: the service provider name; '' when the SIM has none. */
  spn: string;
}


/** The module's RAM drive (AT+QFLDS="RAM"), in bytes. */
export interface RamSpace {
  free: number;
  total: number;
}

/** Result of one AT+QMMSEND (the +QMMSEND URC). */
export interface SendResult {
  err: number;
  httpStatus: number;
  mmscResponse?: string;
}

/** AT+QMMSEND was not accepted (no OK): the message certainly did not leave. */
export class SendNotAcceptedError extends Error {
  override name = 'SendNotAcceptedError';
  constructor(
    message: string,
    readonly code?: number,
  ) {
    super(message);
  }
}

/**
 * AT+QMMSEND was accepted but its result never came (timeout, port loss, reboot): the message
 * may or may not have been sent (DESIGN.md §6 → `unknown`).
 */
export class SendOutcomeUnknownError extends Error {
  override name = 'SendOutcomeUnknownError';
}

/** The driver's events (its health monitor's, relayed). */
export interface ModemEvents {
  /** Any change a client sees (state, registration, operator, signal). */
  status: [status: ModemStatus];
  /** The module restarted (RDY) or the port came back: its RAM files are gone or suspect. */
  rebooted: [];
  /** `+QIURC: "pdpdeact",<ctx>` for the configured context. */
  pdpDeactivated: [contextId: number];
  /** The module's identity (DESIGN.md §13), when first read or when it differs from the last one. */
  identity: [identity: ModemIdentity];
}

export interface ModemApi extends Listenable<ModemEvents> {
  readonly status: ModemStatus;
  /** What the module holds now (epoch, charset, sendparam, staged RAM files); reset when it restarts. */
  readonly session: ModuleSessionView;
  /** Resolves when state is `ready` (SIM ready, registered, context active, MMS configured). */
  whenReady(signal?: AbortSignal): Promise<void>;

  // One typed function per command the sender uses (§3, §6). Text arguments are checked by the
  // driver: a `"`, CR, LF, Ctrl-Z or `;` makes it throw before anything is written.
  mmsClear(): Promise<void>; // AT+QMMSEDIT=0
  setCharset(charset: Charset): Promise<void>; // AT+QMMSCFG="character",<cs>
  setSendParams(p: SendParams): Promise<void>; // AT+QMMSCFG="sendparam",…
  addRecipient(kind: 'to' | 'cc' | 'bcc', address: string): Promise<void>; // AT+QMMSEDIT=1|2|3,1,"…"
  /** Subject under the charset rules of DESIGN.md §6 (ASCII as is, else hex in `charset`). */
  setSubject(subject: string, charset: Charset): Promise<void>;
  addAttachment(ramName: string): Promise<void>; // AT+QMMSEDIT=5,1,"RAM:<name>"
  /** AT+QFUPL="RAM:<name>",<size>,<timeout>,1 in ACK mode, checksum verified. */
  uploadFile(ramName: string, data: Buffer, onProgress?: (sent: number, total: number) => void): Promise<void>;
  /** AT+QFLST="RAM:*" → name (without "RAM:") → size. */
  listFiles(): Promise<Map<string, number>>;
  /** AT+QFLDS="RAM" → free and total bytes of the RAM drive. */
  ramSpace(): Promise<RamSpace>;
  /** AT+QFDEL="RAM:<name>"; a missing file is not an error. */
  deleteFile(ramName: string): Promise<void>;
  /**
   * AT+QMMSEND=<timeoutS>, then waits for the +QMMSEND URC (timeoutS plus a margin).
   * `onAccepted` runs (and is awaited) after the OK, before the result can arrive; it is told
   * how long, at most, the result will now be waited for (ms).
   * Throws SendNotAcceptedError / SendOutcomeUnknownError as documented above.
   */
  send(timeoutS: number, onAccepted: (resultWaitMs: number) => Promise<void>): Promise<SendResult>;
  /** AT+QIDEACT then AT+QIACT on the configured context (§4.3). */
  reactivatePdp(): Promise<void>;
}
