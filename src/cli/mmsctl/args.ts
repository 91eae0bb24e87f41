// mmsctl's flags, help text, exit codes and output: what every command shares (DESIGN.md §4).
import { parseArgs } from 'node:util';
import { SEND_OPTIONS } from '../../core/options.js';

/** Exit codes (docs/dbus.md). */
export const EXIT = {
  sent: 0,
  ok: 0,
  failed: 1,
  usage: 2,
  refused: 3,
  unknown: 4,
  cancelled: 5,
  unreachable: 6,
  undelivered: 7,
} as const;

export type OptionRow = (typeof SEND_OPTIONS)[number];

/** `[--validity 0-6] [--delivery-report] [--timeout S] …`: the send options' flags, wrapped for the help. */
function optionUsage(indent: string, width = 80): string {
  const items = SEND_OPTIONS.map((o) => {
    if (o.type === 'boolean') return `[--${o.cli.flag}]`;
    return `[--${o.cli.flag} ${'arg' in o.cli ? o.cli.arg : `${o.range[0]}-${o.range[1]}`}]`;
  });
  const lines: string[] = [];
  for (const item of items) {
    const last = lines.length - 1;
    if (last >= 0 && lines[last].length + 1 + item.length <= width) lines[last] += ` ${item}`;
    else lines.push(`${indent}${item}`);
  }
  return lines.join('\n');
}

export const HELP = `Usage: mmsctl [--bus system|session] [--json] COMMAND

Commands:
  send --to N [--to N…] [--cc N]… [--bcc N]… [--subject S] [--attach FILE[:TYPE]]…
       [--id ID] [--wait | --wait-delivered] [--path]
${optionUsage('       ')}
                  queue an MMS. Attachments are read by mmsctl with your own permissions
                  and sent as bytes; with --path the daemon reads them instead (only inside
                  its attachments.allowedDirs). TYPE defaults to a guess from the name.
                  --wait follows the message to a final state (progress bar on a terminal).
                  --wait-delivered goes on after sent until every recipient's delivery
                  report is in (asks for reports: implies --delivery-report).
  status          modem state, registration, operator, signal, queue length, version
  carrier         the carrier settings in force (APN, MMSC, proxy, size limit) and where they
                  came from: the config or the carrier database (docs/carriers.md); when the
                  database cannot decide, the config line that picks each candidate
  list            every message in the outbox
  show ID         all properties of one message
  cancel ID       cancel a queued or retrying message
  resend ID [--id NEW] [--wait]
                  send an unknown or failed message again, as a new message with the same
                  recipients, subject, attachments and options; its id is NEW, or
                  ID-resend-1 (then -2, …)
  inbox           received messages (DESIGN.md §12): id, status, from, subject, parts
  inbox show ID   all properties of one received message, with its parts
  inbox save ID DIR
                  copy the parts of a received message into DIR (created if missing; an
                  existing file is not overwritten)
  inbox retrieve ID
                  fetch a notified or failed message now (inbound.autoRetrieve false)
  inbox delete ID remove a received message and its files
  watch           follow sends, delivery reports and received messages as they happen, one
                  line each (--json: one JSON object a line), until Ctrl-C
On the system bus, send, resend, list, cancel and inbox need root or group mms (reading the
parts' files too); status, show and watch do not.

Options:
  --bus system|session   which bus (default system; DBUS_SYSTEM_BUS_ADDRESS and
                         DBUS_SESSION_BUS_ADDRESS are honoured)
  --json                 machine-readable output
  -h, --help             this text

Exit codes:
  0  done (send --wait: the message was sent; --wait-delivered: delivered to every recipient)
  1  the message failed (its error is printed), or another error
  2  usage error, or an --attach file you cannot read
  3  refused by mmsd or the bus policy (the error name is printed, e.g. InvalidRecipient)
  4  the message's outcome is unknown (it may or may not have been sent)
  5  the message was cancelled
  6  cannot reach mmsd or the bus (no bus, or mmsd not running)
  7  --wait-delivered: sent, but a recipient's report says it was not retrieved
     (rejected, expired, …), or no report was asked for
`;

export class UsageError extends Error {}

export interface Output {
  out(line: string): void;
  err(line: string): void;
}

/** parseArgs options for the send options' flags (core's SEND_OPTIONS); an integer comes as text. */
type OptionFlags = { [R in OptionRow as R['cli']['flag']]: { type: R['type'] extends 'boolean' ? 'boolean' : 'string' } };
const OPTION_FLAGS = Object.fromEntries(
  SEND_OPTIONS.map((o) => [o.cli.flag, { type: o.type === 'boolean' ? 'boolean' : 'string' }]),
) as OptionFlags;

export const OPTIONS = {
  to: { type: 'string', multiple: true },
  cc: { type: 'string', multiple: true },
  bcc: { type: 'string', multiple: true },
  subject: { type: 'string' },
  attach: { type: 'string', multiple: true },
  id: { type: 'string' },
  wait: { type: 'boolean' },
  'wait-delivered': { type: 'boolean' },
  path: { type: 'boolean' },
  json: { type: 'boolean' },
  bus: { type: 'string' },
  ...OPTION_FLAGS,
  help: { type: 'boolean', short: 'h' },
} as const;

export type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

/** Options that describe a new message: `send` takes them, `resend` does not. */
export const SEND_ONLY: readonly (keyof Values)[] = ['to', 'cc', 'bcc', 'subject', 'attach', 'path', ...SEND_OPTIONS.map((o) => o.cli.flag)];

export function usage(io: Output, message: string): number {
  io.err(`mmsctl: ${message} (see mmsctl --help)`);
  return EXIT.usage;
}

/** `FILE[:TYPE]`: the part after the last ':' is a type only if it looks like one (a/b). */
export function parseAttach(spec: string): { file: string; contentType?: string } {
  const colon = spec.lastIndexOf(':');
  if (colon > 0) {
    const type = spec.slice(colon + 1);
    if (/^[\w.+-]+\/[\w.+-]+(?:;.*)?$/.test(type)) return { file: spec.slice(0, colon), contentType: type };
  }
  return { file: spec };
}

/** `list` and `inbox`: rows in columns two spaces apart, the first row the header. */
export function printTable(io: Output, rows: string[][]): void {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) io.out(r.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd());
}

export function defaultOutput(): Output {
  return {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  };
}
