// Line classification of the AT channel: every line the module sends is sorted here, in one
// function, the way reference-ril's atchannel.c processLine does. Knows no vendor: which lines are
// URCs is what the driver registered (urc-router.ts).
import { AtError } from './errors.js';

/** Result codes that end a command (3GPP TS 27.007 §5.7; "NO CARRIER" etc. as in reference-ril). */
const ERROR_FINALS: readonly string[] = ['ERROR', 'NO CARRIER', 'NO ANSWER', 'NO DIALTONE', 'BUSY'];

/** What the channel is waiting for, which decides how an ambiguous line is read. */
export type Phase =
  /** An ordinary command: info lines by prefix (or any line that is no registered URC, without a prefix). */
  | 'command'
  /** A data-mode command before the module switched to data mode: CONNECT, or a final error. */
  | 'connect'
  /** In data mode: the protocol's tokens, info lines by prefix, the final result. */
  | 'data'
  /** Resynchronisation after a timeout: everything but the probe's answer and registered URCs is dropped. */
  | 'resync';

export interface LineContext {
  /** Whether a command is in flight; without one only echo, finals (stray) and URCs exist. */
  phase?: Phase;
  /** Info-line prefix of the command in flight. */
  prefix?: string;
  /** In the data phase: what the data-mode protocol sends as tokens (e.g. an ACK "A"). */
  tokens?: readonly string[];
  /** A PDU command took a header line: the next line is its PDU. */
  bodyPending?: boolean;
  /** Commands whose echo may still arrive (the one in flight, the one before). */
  echoes: readonly string[];
  /** The prefixes registered as URCs (by the driver, through the channel's onUrc). */
  urcPrefixes: readonly string[];
}

export type LineClass =
  | { kind: 'empty' }
  /** Control characters or undecodable bytes: line noise, a baud mismatch, a half-reset module. */
  | { kind: 'garbage' }
  | { kind: 'echo' }
  | { kind: 'ok' }
  | { kind: 'error'; text: string }
  | { kind: 'cme'; code: number; text?: string }
  | { kind: 'cms'; code: number; text?: string }
  | { kind: 'connect' }
  | { kind: 'token'; token: string }
  | { kind: 'info' }
  /** The PDU line after a PDU command's header. */
  | { kind: 'body' }
  /** A registered URC: for the router. */
  | { kind: 'urc' }
  /** For no one: not the command's, and no registered URC. Logged, and emitted for diagnostics. */
  | { kind: 'unsolicited' }
  /** Not for anyone: a stray line during resynchronisation. */
  | { kind: 'discard' };

const CME = /^\+CME ERROR:\s*(.*)$/;
const CMS = /^\+CMS ERROR:\s*(.*)$/;

function numericCode(text: string): { code: number; text?: string } {
  const t = text.trim();
  return /^\d+$/.test(t) ? { code: Number(t) } : { code: -1, text: t };
}

export function isRegisteredUrc(line: string, urcPrefixes: readonly string[]): boolean {
  return urcPrefixes.some((p) => line.startsWith(p));
}

/** True for a line carrying bytes no module would send in a text line. */
export function isGarbage(line: string): boolean {
  return /[\x00-\x08\x0b-\x1f\x7f\ufffd]/.test(line);
}

/** Sorts one received line (without CR/LF). Pure: the channel acts on the answer. */
export function classifyLine(raw: string, ctx: LineContext): LineClass {
  const line = raw.trim();
  if (line === '') return { kind: 'empty' };
  if (isGarbage(line)) return { kind: 'garbage' };
  const upper = line.toUpperCase();
  // Echo may come at any time: a module reboot turns ATE1 back on.
  if (ctx.echoes.some((c) => c.toUpperCase() === upper)) return { kind: 'echo' };

  if (line === 'OK') return { kind: 'ok' };
  if (ERROR_FINALS.includes(line)) return { kind: 'error', text: line };
  const cme = CME.exec(line);
  if (cme) return { kind: 'cme', ...numericCode(cme[1]) };
  const cms = CMS.exec(line);
  if (cms) return { kind: 'cms', ...numericCode(cms[1]) };

  const registered = isRegisteredUrc(line, ctx.urcPrefixes);
  const phase = ctx.phase;
  if (phase === undefined) return registered ? { kind: 'urc' } : { kind: 'unsolicited' };
  if (ctx.bodyPending) return registered ? { kind: 'urc' } : { kind: 'body' };
  if (phase === 'connect' && line.startsWith('CONNECT')) return { kind: 'connect' };
  if (phase === 'data' && ctx.tokens?.includes(line)) return { kind: 'token', token: line };
  if (ctx.prefix !== undefined && ctx.prefix !== '' && line.startsWith(ctx.prefix)) return { kind: 'info' };
  if (registered) return { kind: 'urc' };
  if (phase === 'resync') return { kind: 'discard' };
  if (phase === 'command' && (ctx.prefix === undefined || ctx.prefix === '')) return { kind: 'info' };
  return { kind: 'unsolicited' };
}

/**
 * The info-line prefix an extended command answers with: "AT+CMGR=1" → "+CMGR:".
 * Used when a data-mode command is given no prefix, so the channel needs no table of commands.
 */
export function responsePrefixOf(cmd: string): string | undefined {
  const m = /^AT([+$%^][A-Z0-9_]+)/i.exec(cmd.trim());
  return m ? `${m[1].toUpperCase()}:` : undefined;
}

/** A command must be one line: CR, LF or Ctrl-Z inside it would end it early or send it as text. */
export function checkCommand(cmd: string): AtError | undefined {
  if (cmd === '' || /[\r\n\x1a\x1b]/.test(cmd)) {
    return new AtError(`refusing a command with CR, LF, Ctrl-Z or ESC: ${JSON.stringify(cmd)}`, cmd.replace(/[\r\n\x1a\x1b]/g, ' '));
  }
  return undefined;
}
