// Contract of the AT layer: transports, the channel's public surface, and its typed errors.
// Knows no Quectel command (DESIGN.md §1).
import type { Listenable } from '../core/events.js';
import type { Logger } from 'pino';
import type { UrcHandler, UrcOptions } from './urc-router.js';

export type { UrcHandler, UrcOptions } from './urc-router.js';

export interface TransportEvents {
  /** Bytes from the module. */
  data: [chunk: Buffer];
  /** The pipe closed (by close(), or by itself: then with the reason when known). */
  close: [err?: Error];
}

/** A byte pipe to the module: a serial device or a raw TCP socket (ser2net). */
export interface Transport extends Listenable<TransportEvents> {
  /** Opens the pipe; rejects when it cannot be opened. */
  open(): Promise<void>;
  /** Closes the pipe; resolves also when already closed. */
  close(): Promise<void>;
  /** Writes bytes; resolves once handed to the OS (drained). Rejects when closed. */
  write(data: Buffer): Promise<void>;
  readonly isOpen: boolean;
  /** Human-readable location, e.g. "/dev/ttyUSB2" or "tcp://10.0.0.1:4001". */
  readonly description: string;
}

export interface CommandOptions {
  /** Milliseconds until the command fails with TimeoutError; default from the channel. */
  timeoutMs?: number;
  /**
   * Prefix of the information lines this command answers with, e.g. "+CGREG:".
   * Lines with this prefix are collected; other lines that arrive meanwhile are URCs (or for no one).
   * When omitted, lines that are no registered URC are collected (for AT+CIMI, ATI …).
   */
  prefix?: string;
  /**
   * The PDU command type (3GPP TS 27.005 AT+CMGR, AT+CMGL in PDU mode): each line with `prefix`
   * is followed by its PDU, a line without a prefix; the answer carries the pairs as `pdus`.
   * Needs `prefix`. A header followed by the final result instead of its PDU fails with AtError.
   * Nothing comes between a header and its PDU on a real module; should a registered URC land
   * there anyway, it is routed as a URC and the PDU is the next line (a PDU is hex, never a URC).
   */
  pdu?: boolean;
}

/** CommandOptions of the PDU command type. */
export interface PduCommandOptions extends CommandOptions {
  prefix: string;
  pdu: true;
}

/** One prefixed line of a PDU command's answer and the PDU line that followed it. */
export interface PduEntry {
  /** E.g. `+CMGL: 1,0,,24`. */
  header: string;
  /** The PDU, hex as the module sent it. */
  body: string;
}

export interface AtResponse {
  /** Information lines, without the final result code and without echo. */
  lines: string[];
}

/** The answer of a PDU command: `lines` holds every header and PDU line, in order. */
export interface PduResponse extends AtResponse {
  pdus: PduEntry[];
}

/** What ends a wait in data mode (DataModeSession). */
export type DataModeUntil = 'token' | 'final' | 'bytes';

export type DataModeReply =
  /** One of the protocol's tokens (e.g. an upload's ACK "A"). */
  | { kind: 'token'; token: string }
  /** The raw bytes announced by `rawBytesAfter`, all of them. */
  | { kind: 'bytes'; data: Buffer }
  /** The final OK: the module left data mode; its information lines by the command's prefix. */
  | { kind: 'final'; lines: string[] };

/**
 * A data-mode transfer in progress, as the channel offers it to the protocol. A final error code
 * (ERROR, +CME ERROR …) rejects with the typed error, like a command; so do a timeout
 * (TimeoutError, counted from the end of the write) and the port closing (ClosedError).
 */
export interface DataModeSession {
  /** The command that entered data mode (for messages; it holds no user data). */
  readonly command: string;
  /** The module's CONNECT line, e.g. "CONNECT" or "CONNECT 1024". */
  readonly connectLine: string;
  /** The channel's logger, for the protocol's own messages (never data). */
  readonly log: Logger;
  /**
   * Writes `data` (never logged) and waits: 'token' — for one of the protocol's tokens (at once
   * when one came since the last wait: several blocks may be in flight), or the final result;
   * 'final' — for the final result only (tokens are dropped).
   */
  send(data: Buffer, until: 'token' | 'final'): Promise<DataModeReply>;
  /**
   * Waits without writing: 'bytes' — for the raw bytes `rawBytesAfter` announced (the final
   * result, should it come first); 'final' — for the final result.
   */
  receive(until: 'bytes' | 'final'): Promise<DataModeReply>;
}

/**
 * A data mode (`CONNECT` → raw bytes → final result) that the driver hands the channel: the channel
 * writes the command, waits for CONNECT and runs the protocol; it knows no such command itself
 * (DESIGN.md §1). After a failure between CONNECT and the final OK the channel leaves data mode
 * with "+++" before its next command, unless one of `restartUrcs` came (the module restarted).
 */
export interface DataModeProtocol<R> {
  /** What the transfer is called in logs and errors, e.g. "upload". */
  readonly name: string;
  /** Fields of the channel's debug line about the transfer (sizes; never data). */
  readonly logFields?: Readonly<Record<string, unknown>>;
  /** What the module sends in data mode without CR/LF, e.g. an ACK "A"; framed only while waiting in data mode. */
  readonly tokens?: readonly string[];
  /** URC lines that mean the module restarted, so is in command mode: the transfer fails at once. */
  readonly restartUrcs?: readonly string[];
  /** How many raw bytes follow the CONNECT line before lines resume (a download); 0 or absent: none. */
  rawBytesAfter?(connectLine: string): number;
  /** Drives the transfer once the module said CONNECT; its result is what dataMode() resolves with. */
  run(session: DataModeSession): Promise<R>;
}

export interface AtCommanderEvents {
  /** A transport is open (the first time, or again after it was lost). */
  connected: [];
  /** The transport closed; every pending command failed with ClosedError. */
  disconnected: [err?: Error];
  /** A line for no one: not the command's, and no registered URC (diagnostics; it is dropped). */
  unsolicited: [line: string];
}

/**
 * What the modem driver needs of the AT channel. `AtChannel` implements it; unit tests of
 * `src/modem` use a fake.
 */
export interface AtCommander extends Listenable<AtCommanderEvents> {
  /**
   * Routes URCs starting with `prefix` to `handler` (with `trailingLines` lines that follow them);
   * also makes such lines URCs rather than the answer of a command without a prefix. Returns the
   * function that removes the registration.
   */
  onUrc(prefix: string, handler: UrcHandler, opts?: UrcOptions): () => void;
  /** Sends "<cmd>\r" (cmd without the trailing CR, e.g. 'AT+CGREG?') and waits for the final code. */
  command(cmd: string, opts: PduCommandOptions): Promise<PduResponse>;
  command(cmd: string, opts?: CommandOptions): Promise<AtResponse>;
  /**
   * Sends a command that switches the module to data mode (e.g. an upload), waits for CONNECT,
   * then runs `protocol`; `opts.prefix` (default: the command's own, "AT+XY=…" → "+XY:") names
   * the information lines of its final answer. A final error instead of CONNECT rejects typed.
   */
  dataMode<R>(cmd: string, protocol: DataModeProtocol<R>, opts?: CommandOptions): Promise<R>;
  /** Leaves a data mode the module may still be in: 1 s silence, "+++", 1 s silence. */
  escapeDataMode(): Promise<void>;
  readonly isConnected: boolean;
}
