// The seam between the virtual modem's core (modem-core.ts, composed by VirtualModem in modem.ts)
// and its capability modules (modem-v250, -network, -files, -mms): what a command answers, the
// core's services a module may use, and what a capability is — a command table plus its own state.
import type { Logger } from 'pino';
import type { ParsedCommand } from './at-parser.js';
import type { SimClock } from './line-pacer.js';

/** A command's final result code; `cme` is shown as AT+CMEE says (number, text or plain ERROR). */
export type Final = 'OK' | 'ERROR' | 'CONNECT' | { cme: number };

export interface Reply {
  /** Information text lines, in order. */
  lines: string[];
  final: Final;
  /**
   * State changes that follow the answer: runs right after the reply is queued on the line. In a
   * chained command line it runs before the next command, and the URCs it causes wait for the
   * line's final result code.
   */
  after?: () => void;
  /** Nothing after this command on the same command line runs (the module restarts). */
  endsLine?: boolean;
}

export function ok(lines: string[] = [], after?: () => void): Reply {
  return { lines, final: 'OK', after };
}

export function error(): Reply {
  return { lines: [], final: 'ERROR' };
}

export function cme(code: number): Reply {
  return { lines: [], final: { cme: code } };
}

export type CommandHandler = (c: ParsedCommand) => Reply | Promise<Reply>;

/** Command name as the parser gives it ("+QMMSCFG", "E", "&F", "" for a bare AT) → its handler. */
export type CommandTable = Readonly<Record<string, CommandHandler>>;

export type ModuleMode = 'off' | 'booting' | 'command' | 'data';

/** Takes the host's bytes while the module is in data mode (after a CONNECT). */
export interface DataSink {
  byte(b: number, now: number): void;
}

/** What the core offers the capabilities. */
export interface ModuleCore {
  readonly log: Logger;
  readonly clock: SimClock;
  /** Length of one module second (AT timeouts in seconds). */
  readonly secondMs: number;
  /** Changes on every restart and stop: work started under another generation is stale. */
  readonly generation: number;
  readonly mode: ModuleMode;
  /** Booted and powered: in command or data mode. */
  readonly running: boolean;
  /** When the bytes written so far will have left the module's UART. */
  readonly txDrainedAt: number;
  /** Bytes on the line since start, each way. */
  readonly lineBytes: { rx: number; tx: number };
  /** Raw bytes to the host (e.g. the "A" of an ACK-mode upload). */
  write(bytes: Buffer | string): void;
  /** An unsolicited result code; held back in data mode and while a chained line runs. */
  urc(line: string): void;
  /** From now on the host's bytes go to `sink` instead of the command line. */
  enterDataMode(sink: DataSink): void;
  /** Back to command mode with this answer; the URCs held back meanwhile follow it. */
  leaveDataMode(reply: Reply): void;
  /** Takes bytes that crossed the line by now and processes them; false when none were waiting. */
  processLateInput(): boolean;
  /** A timer that dies with the module (restart, stop). */
  after(ms: number, fn: () => void): unknown;
  cancel(handle: unknown): void;
  sleep(ms: number): Promise<void>;
  /** Restarts the module now: everything a capability holds is lost, RDY after the boot time. */
  reboot(): void;
}

/**
 * A capability of the module: its AT commands as a table and the state they work on, which it
 * alone owns. VirtualModem merges the tables (a name in two tables is a programming error) and
 * calls the hooks in the order the capabilities are listed.
 */
export interface Capability {
  readonly name: string;
  readonly commands: CommandTable;
  /** Power-on state, at start and after every restart: what the module loses on a restart. */
  reset(): void;
  /** The module stops or restarts now: abandon work in progress (the core's timers are gone). */
  halt?(): void;
  /** After "RDY": the URCs this capability gives when the module has booted. */
  announceBoot?(): void;
}
