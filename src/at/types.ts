// Contract of the AT layer: transports, the channel's public surface, and its typed errors.
// Knows no Quectel command (DESIGN.md §1).
import type { EventEmitter } from 'node:events';
import type { UrcHandler, UrcOptions } from './urc-router.js';

export type { UrcHandler, UrcOptions } from './urc-router.js';

export interface TransportEvents {
  /** Bytes from the module. */
  data: [chunk: Buffer];
  /** The pipe closed (by close(), or by itself: then with the reason when known). */
  close: [err?: Error];
}

/** A byte pipe to the module: a serial device or a raw TCP socket (ser2net). */
export interface Transport extends EventEmitter<TransportEvents> {
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
}

export interface AtResponse {
  /** Information lines, without the final result code and without echo. */
  lines: string[];
}

export interface UploadOptions extends CommandOptions {
  /** Bytes per ACK block (module sends "A" after each). Default 1024. */
  blockSize?: number;
  /** Called after each acknowledged block with bytes sent so far and total. */
  onProgress?: (sent: number, total: number) => void;
}

export interface UploadResult extends AtResponse {
  /** Size the module reported in "+QFUPL: <size>,<checksum>". */
  size: number;
  /** Checksum the module reported (16-bit XOR, as number). */
  checksum: number;
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
export interface AtCommander extends EventEmitter<AtCommanderEvents> {
  /**
   * Routes URCs starting with `prefix` to `handler` (with `trailingLines` lines that follow them);
   * also makes such lines URCs rather than the answer of a command without a prefix. Returns the
   * function that removes the registration.
   */
  onUrc(prefix: string, handler: UrcHandler, opts?: UrcOptions): () => void;
  /** Sends "<cmd>\r" (cmd without the trailing CR, e.g. 'AT+CGREG?') and waits for the final code. */
  command(cmd: string, opts?: CommandOptions): Promise<AtResponse>;
  /**
   * Sends an upload command (AT+QFUPL=…,1), waits for CONNECT, streams `data` in ACK mode,
   * then waits for "+QFUPL: <size>,<checksum>" and OK; verifies size and checksum (ChecksumError).
   */
  upload(cmd: string, data: Buffer, opts?: UploadOptions): Promise<UploadResult>;
  /** Leaves a data mode the module may still be in: 1 s silence, "+++", 1 s silence. */
  escapeDataMode(): Promise<void>;
  readonly isConnected: boolean;
}
