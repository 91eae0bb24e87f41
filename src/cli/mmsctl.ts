#!/usr/bin/env node
// mmsctl: the command-line client of mmsd over D-Bus (DESIGN.md §2, §4). Argument parsing and
// output only; the calls live in src/api/dbus/client.ts.
import { constants as fsConstants, realpathSync } from 'node:fs';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { basename, join, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import dbus from 'dbus-next';
import { BusUnreachableError } from '../api/dbus/bus.js';
import {
  DaemonGoneError,
  MmsClient,
  type CarrierProperties,
  type MessageProperties,
  type ReceivedProperties,
  type SendResult,
  type WatchEvent,
} from '../api/dbus/client.js';
import { ERROR_PREFIX, messageIdFromPath, receivedIdFromPath } from '../api/dbus/names.js';
import { isFinal } from '../core/message.js';
import { SEND_OPTIONS } from '../core/options.js';

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

type OptionRow = (typeof SEND_OPTIONS)[number];

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

const HELP = `Usage: mmsctl [--bus system|session] [--json] COMMAND

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

class UsageError extends Error {}

interface Output {
  out(line: string): void;
  err(line: string): void;
}

/** parseArgs options for the send options' flags (core's SEND_OPTIONS); an integer comes as text. */
type OptionFlags = { [R in OptionRow as R['cli']['flag']]: { type: R['type'] extends 'boolean' ? 'boolean' : 'string' } };
const OPTION_FLAGS = Object.fromEntries(
  SEND_OPTIONS.map((o) => [o.cli.flag, { type: o.type === 'boolean' ? 'boolean' : 'string' }]),
) as OptionFlags;

const OPTIONS = {
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

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

/** Options that describe a new message: `send` takes them, `resend` does not. */
const SEND_ONLY: readonly (keyof Values)[] = ['to', 'cc', 'bcc', 'subject', 'attach', 'path', ...SEND_OPTIONS.map((o) => o.cli.flag)];

export async function main(argv: string[], io: Output = defaultOutput()): Promise<number> {
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true }));
  } catch (err) {
    io.err(`mmsctl: ${(err as Error).message}\n${HELP}`);
    return EXIT.usage;
  }
  if (values.help) {
    io.out(HELP);
    return EXIT.ok;
  }
  const [command, ...args] = positionals;
  const bus = values.bus ?? 'system';
  if (bus !== 'system' && bus !== 'session') return usage(io, `--bus must be system or session, not ${bus}`);

  let prepared: () => Promise<number>;
  let client: MmsClient | undefined;
  const withClient = (fn: (c: MmsClient) => Promise<number>) => async (): Promise<number> => {
    client = await MmsClient.connect(bus);
    return fn(client);
  };
  try {
    switch (command) {
      case 'send': {
        if (args.length > 0) throw new UsageError(`unexpected argument ${args[0]}`);
        const send = await prepareSend(values);
        prepared = withClient((c) => send(c, io));
        break;
      }
      case 'status':
      case 'list':
        if (args.length > 0) throw new UsageError(`unexpected argument ${args[0]}`);
        prepared = withClient((c) => (command === 'status' ? status(c, io, values) : list(c, io, values)));
        break;
      case 'carrier':
        if (args.length > 0) throw new UsageError(`unexpected argument ${args[0]}`);
        prepared = withClient((c) => carrier(c, io, values));
        break;
      case 'show':
      case 'cancel': {
        if (args.length !== 1) throw new UsageError(`${command} takes one message id`);
        const id = args[0];
        prepared = withClient((c) => (command === 'show' ? show(c, io, values, id) : cancel(c, io, values, id)));
        break;
      }
      case 'resend': {
        if (args.length !== 1) throw new UsageError('resend takes one message id');
        const given = SEND_ONLY.filter((k) => values[k] !== undefined);
        if (given.length > 0) throw new UsageError(`resend sends the message as it was: --${given[0]} is not taken (use send for a changed message)`);
        const id = args[0];
        prepared = withClient(async (c) => deliver(c, io, values, await c.resend(id, values.id), id));
        break;
      }
      case 'inbox': {
        const [sub, ...rest] = args;
        const want = (n: number, what: string): void => {
          if (rest.length !== n) throw new UsageError(`inbox ${sub} takes ${what}`);
        };
        if (sub === undefined) prepared = withClient((c) => inboxList(c, io, values));
        else if (sub === 'show') {
          want(1, 'one received message id');
          prepared = withClient((c) => inboxShow(c, io, values, rest[0]));
        } else if (sub === 'save') {
          want(2, 'a received message id and a directory');
          prepared = withClient((c) => inboxSave(c, io, values, rest[0], rest[1]));
        } else if (sub === 'delete' || sub === 'retrieve') {
          want(1, 'one received message id');
          prepared = withClient((c) => inboxAct(c, io, values, sub, rest[0]));
        } else throw new UsageError(`unknown inbox command ${sub} (show, save, retrieve, delete)`);
        break;
      }
      case 'watch':
        if (args.length > 0) throw new UsageError(`unexpected argument ${args[0]}`);
        prepared = withClient((c) => watch(c, io, values));
        break;
      case undefined:
        throw new UsageError('no command');
      default:
        throw new UsageError(`unknown command ${command}`);
    }
  } catch (err) {
    if (err instanceof UsageError) return usage(io, err.message);
    throw err;
  }

  try {
    return await prepared();
  } catch (err) {
    return reportError(io, err);
  } finally {
    client?.close();
  }
}

function usage(io: Output, message: string): number {
  io.err(`mmsctl: ${message} (see mmsctl --help)`);
  return EXIT.usage;
}

/** Errors from the bus or mmsd → a line on stderr and an exit code. */
function reportError(io: Output, err: unknown): number {
  if (err instanceof BusUnreachableError) {
    io.err(`mmsctl: ${err.message}`);
    return EXIT.unreachable;
  }
  if (err instanceof dbus.DBusError) {
    if (err.type.startsWith(ERROR_PREFIX)) {
      io.err(`mmsctl: ${err.type.slice(ERROR_PREFIX.length)}: ${err.text}`);
      return EXIT.refused;
    }
    if (err.type === 'org.freedesktop.DBus.Error.AccessDenied') {
      io.err(`mmsctl: AccessDenied: ${err.text} (sending, cancelling and listing need root or group mms; status and show do not)`);
      return EXIT.refused;
    }
    if (/\.(ServiceUnknown|NameHasNoOwner|NoReply|Disconnected|NoServer|TimedOut)$/.test(err.type)) {
      io.err(`mmsctl: cannot reach mmsd: ${err.type}: ${err.text}`);
      return EXIT.unreachable;
    }
    io.err(`mmsctl: ${err.type}: ${err.text}`);
    return EXIT.failed;
  }
  const e = err as NodeJS.ErrnoException;
  if (err instanceof DaemonGoneError) {
    io.err(`mmsctl: ${e.message}; the message stays in the outbox (mmsctl show ID)`);
    return EXIT.unreachable;
  }
  if (
    (e?.code && ['ENOENT', 'ECONNREFUSED', 'EACCES', 'ECONNRESET', 'EPIPE'].includes(e.code)) ||
    /timed out|closed stream|connect/i.test(e?.message ?? '')
  ) {
    io.err(`mmsctl: cannot reach the bus: ${e.message}`);
    return EXIT.unreachable;
  }
  io.err(`mmsctl: ${e?.message ?? String(err)}`);
  return EXIT.failed;
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

/** A send option's value from its flag: a boolean as given, an integer's text as a number. */
function optionValue(values: Values, o: OptionRow): number | boolean | undefined {
  const v = values[o.cli.flag];
  // `--no-fit`: the flag given turns the option off; not given leaves it to the daemon.
  if ('negates' in o.cli) return v === true ? false : undefined;
  if (v === undefined || typeof v === 'boolean') return v;
  if (!/^\d+$/.test(v)) throw new UsageError(`--${o.cli.flag} takes a number`);
  return Number(v);
}

/** Everything that can be checked without the bus; returns the work to do with it. */
async function prepareSend(values: Values): Promise<(c: MmsClient, io: Output) => Promise<number>> {
  const to = values.to ?? [];
  if (to.length === 0) throw new UsageError('send needs at least one --to');
  const fields = {
    to,
    cc: values.cc ?? [],
    bcc: values.bcc ?? [],
    subject: values.subject ?? '',
    ...(values.id !== undefined ? { id: values.id } : {}),
    options: Object.fromEntries(SEND_OPTIONS.map((o) => [o.key, optionValue(values, o)])),
  };
  // --wait-delivered waits for reports, so it asks for them (unless told otherwise explicitly).
  if (values['wait-delivered'] === true && fields.options.deliveryReport === undefined) fields.options.deliveryReport = true;
  const specs = (values.attach ?? []).map(parseAttach);
  if (values.path) {
    const paths = specs.map((s) => ({ path: resolvePath(s.file), contentType: s.contentType }));
    return async (c, io) => deliver(c, io, values, await c.send(fields, { paths }));
  }
  // Read with the caller's own permissions: mmsctl never asks the daemon to read for it.
  const data = await Promise.all(
    specs.map(async (s) => {
      try {
        return { name: basename(s.file), contentType: s.contentType, data: await readFile(s.file) };
      } catch (err) {
        throw new UsageError(`cannot read ${s.file}: ${(err as Error).message}`);
      }
    }),
  );
  return async (c, io) => deliver(c, io, values, await c.send(fields, { data }));
}

/**
 * After a send or resend call: without --wait, the status mmsd recorded when it queued the
 * message (or, for an id it already knew, its current one); with --wait, follow it to the end.
 */
async function deliver(c: MmsClient, io: Output, values: Values, result: SendResult, resendOf?: string): Promise<number> {
  const { path } = result;
  const untilDelivered = values['wait-delivered'] === true;
  if (!values.wait && !untilDelivered) {
    const props = result.added ?? (await c.getAll(path));
    const known = result.added === undefined;
    if (values.json) {
      io.out(JSON.stringify({ id: props.Id, path, status: props.Status, ...(known ? { known } : {}), ...(resendOf !== undefined ? { resendOf } : {}) }));
    } else {
      const note = known ? ' (the id was already known: nothing new was queued)' : resendOf !== undefined ? ` (a resend of ${resendOf})` : '';
      io.out(`${props.Status} ${props.Id}${note}`);
    }
    return EXIT.ok;
  }
  const view = new WaitView(io, values.json === true, process.stdout.isTTY === true, await maxAttemptsOf(c));
  let final: MessageProperties;
  try {
    final = await c.follow(path, (p) => view.update(p), untilDelivered ? deliveryDone : undefined);
  } finally {
    view.close();
  }
  if (values.json) io.out(JSON.stringify(toJson(final, path)));
  if (untilDelivered && final.Status === 'sent') {
    const states = Object.entries(final.Delivery ?? {});
    const why = states.length === 0 ? 'no delivery report was asked for' : states.map(([r, s]) => `${r} ${s}`).join(', ');
    io.err(`mmsctl: message ${final.Id} sent but not delivered: ${why}`);
    return EXIT.undelivered;
  }
  const code = exitForStatus(final.Status);
  if (final.Status === 'sent' || final.Status === 'delivered') {
    if (!values.json) io.out(`${final.Status} ${final.Id}`);
  } else {
    const why = final.Error ? `: ${final.Error}${final.HttpStatus ? ` (HTTP ${final.HttpStatus})` : ''}` : '';
    const next = nextStep(final);
    io.err(`mmsctl: message ${final.Id} ${final.Status}${why}${next ? ` — ${next}` : ''}`);
  }
  return code;
}

/** The daemon's MaxAttempts, for "attempt 2 of 5"; undefined when it cannot say. */
async function maxAttemptsOf(c: MmsClient): Promise<number | undefined> {
  return c.status().then(
    (s) => s.MaxAttempts,
    () => undefined,
  );
}

/**
 * `--wait-delivered` stops here: delivered, a final state other than sent, or sent with no
 * recipient left waiting (`pending`, `deferred`) for a report.
 */
export function deliveryDone(p: Pick<MessageProperties, 'Status' | 'Delivery'>): boolean {
  if (p.Status !== 'sent') return isFinal(p.Status);
  return Object.values(p.Delivery ?? {}).every((s) => s !== 'pending' && s !== 'deferred');
}

function exitForStatus(status: string): number {
  switch (status) {
    case 'sent':
    case 'delivered':
      return EXIT.sent;
    case 'cancelled':
      return EXIT.cancelled;
    case 'unknown':
      return EXIT.unknown;
    default:
      return EXIT.failed;
  }
}

/** Shows a message's progress: a bar on a terminal, plain lines otherwise, nothing with --json. */
class WaitView {
  private bar: cliProgress.SingleBar | undefined;
  private last: MessageProperties | undefined;
  private lastTenth = -1;

  constructor(
    private readonly io: Output,
    private readonly json: boolean,
    private readonly tty: boolean,
    private readonly maxAttempts: number | undefined,
  ) {}

  update(p: MessageProperties): void {
    if (this.json) return;
    const prev = this.last;
    this.last = p;
    if (!prev || prev.Status !== p.Status || prev.Attempts !== p.Attempts || prev.NextAttempt !== p.NextAttempt) {
      this.stopBar();
      const error = p.Error && p.Status !== 'sent' ? ` — ${p.Error}` : '';
      // The next step of a final state follows in the closing line.
      this.io.out(`${p.Id}: ${describeStatus(p, this.maxAttempts, Date.now(), false)}${error}`);
      this.lastTenth = -1;
    }
    if (p.Status !== 'sending') return;
    const percent = Math.round(Math.max(0, Math.min(1, p.Progress)) * 100);
    if (this.tty) {
      if (!this.bar) {
        this.bar = new cliProgress.SingleBar(
          { format: 'uploading [{bar}] {percentage}%', stream: process.stdout, hideCursor: true, clearOnComplete: false },
          cliProgress.Presets.shades_classic,
        );
        this.bar.start(100, percent);
      } else {
        this.bar.update(percent);
      }
    } else {
      const tenth = Math.floor(percent / 10);
      if (tenth > this.lastTenth) {
        this.lastTenth = tenth;
        this.io.out(`${p.Id}: uploading ${percent}%`);
      }
    }
  }

  private stopBar(): void {
    this.bar?.stop();
    this.bar = undefined;
  }

  close(): void {
    this.stopBar();
  }
}

function toJson(p: MessageProperties, path?: string): Record<string, unknown> {
  return {
    id: p.Id,
    ...(path !== undefined ? { path } : {}),
    status: p.Status,
    to: p.To,
    cc: p.Cc,
    bcc: p.Bcc,
    subject: p.Subject,
    attempts: p.Attempts,
    progress: p.Progress,
    error: p.Error,
    httpStatus: p.HttpStatus,
    mmscResponse: p.MmscResponse,
    created: p.Created,
    updated: p.Updated,
    nextAttempt: p.NextAttempt ?? 0,
    delivery: p.Delivery ?? {},
    adjustments: p.Adjustments ?? [],
  };
}

/**
 * A status as a person reads it: attempts (`attempt 2 of 5`) while the message is under way,
 * when a `retrying` message is tried next, and what to do about an `unknown` or `failed` one.
 */
export function describeStatus(
  p: Pick<MessageProperties, 'Id' | 'Status' | 'Attempts' | 'NextAttempt'>,
  maxAttempts: number | undefined,
  now: number,
  withNextStep = true,
): string {
  const attempt = p.Attempts > 0 ? `attempt ${p.Attempts}${maxAttempts && !isFinal(p.Status) ? ` of ${maxAttempts}` : ''}` : '';
  if (p.Status === 'retrying') {
    const at = p.NextAttempt ?? 0;
    const when = at === 0 ? '' : at <= now ? 'next try due now' : `next try in ${formatWait(at - now)} at ${formatClock(at, now)}`;
    const parts = [attempt, when].filter((x) => x !== '');
    return parts.length > 0 ? `retrying (${parts.join(', ')})` : 'retrying';
  }
  const base = attempt !== '' ? `${p.Status} (${attempt})` : p.Status;
  const next = withNextStep ? nextStep(p) : undefined;
  return next ? `${base}: ${next}` : base;
}

/** What a person can do about a message that ended without being sent, or nothing. */
function nextStep(p: Pick<MessageProperties, 'Id' | 'Status'>): string | undefined {
  if (p.Status === 'unknown') return `the MMSC may or may not have it; \`mmsctl resend ${p.Id}\` sends it again`;
  if (p.Status === 'failed') return `\`mmsctl resend ${p.Id}\` sends it again once the cause is fixed`;
  return undefined;
}

/** A wait as "45 s", "2 min", "1 h 5 min". */
export function formatWait(ms: number): string {
  const s = Math.max(1, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const min = Math.round(s / 60);
  if (min < 60) return `${min} min`;
  return `${Math.floor(min / 60)} h${min % 60 > 0 ? ` ${min % 60} min` : ''}`;
}

/** A moment as local "14:03:10", with its date in front when it is not today. */
function formatClock(at: number, now: number): string {
  const d = new Date(at);
  const pad = (n: number): string => String(n).padStart(2, '0');
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return d.toDateString() === new Date(now).toDateString() ? time : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

async function status(c: MmsClient, io: Output, values: Values): Promise<number> {
  const s = await c.status();
  if (values.json) {
    io.out(
      JSON.stringify({
        modemState: s.ModemState,
        registration: s.Registration,
        operator: s.Operator,
        signal: s.SignalQuality,
        queueLength: s.QueueLength,
        version: s.Version,
        ...(s.Carrier ? { carrier: carrierJson(s.Carrier) } : {}),
      }),
    );
  } else {
    io.out(
      [
        `modem:        ${s.ModemState}`,
        `registration: ${s.Registration}`,
        `operator:     ${s.Operator || '-'}`,
        `signal:       ${s.SignalQuality < 0 ? 'unknown' : `${s.SignalQuality}/31`}`,
        `queue:        ${s.QueueLength}`,
        `version:      ${s.Version}`,
        ...(s.Carrier ? [`carrier:      ${carrierLine(s.Carrier)}`] : []),
      ].join('\n'),
    );
  }
  return EXIT.ok;
}

async function carrier(c: MmsClient, io: Output, values: Values): Promise<number> {
  const p = await c.carrier();
  if (values.json) {
    io.out(JSON.stringify(carrierJson(p)));
    return EXIT.ok;
  }
  io.out(describeCarrier(p).join('\n'));
  return EXIT.ok;
}

/** One line for `mmsctl status`: where the settings came from, and a pointer when there are none. */
function carrierLine(p: CarrierProperties): string {
  if (p.Source === 'database') return `${p.Provider} (carrier database)`;
  if (p.Source === 'config') return 'from the config';
  if (p.Source === 'pending') return 'waiting for the SIM';
  return `${p.Source}: mmsctl carrier says what to set`;
}

/** The `carrier` of mmsd/status (docs/mqtt.md): the same fields in camelCase. */
function carrierJson(p: CarrierProperties): Record<string, unknown> {
  return {
    source: p.Source,
    provider: p.Provider,
    mccMnc: p.MccMnc,
    apn: p.Apn,
    mmsc: p.Mmsc,
    proxy: p.Proxy,
    maxMessageBytes: p.MaxMessageBytes,
    candidates: p.Candidates,
    reason: p.Reason,
    configKeys: p.ConfigKeys,
  };
}

/** `mmsctl carrier` as a person reads it; for `ambiguous`, the line that picks each candidate. */
export function describeCarrier(p: CarrierProperties): string[] {
  const lines = [
    `source:    ${p.Source}`,
    `provider:  ${p.Provider || '-'}`,
    `network:   ${p.MccMnc || '-'}`,
    `apn:       ${p.Apn === '' ? '- (the network chooses)' : p.Apn}`,
    `mmsc:      ${p.Mmsc || '-'}`,
    `proxy:     ${p.Proxy || '-'}`,
    `max size:  ${p.MaxMessageBytes} bytes`,
  ];
  if (p.ConfigKeys.length > 0) lines.push(`from the config over the database: ${p.ConfigKeys.join(', ')}`);
  lines.push(`why:       ${p.Reason}`);
  if (p.Source === 'ambiguous') {
    lines.push('', 'The carrier database has several providers for this SIM and mmsd guesses none.');
    lines.push('Put the line of yours inside the config file\'s outer braces (a comma between it and the key before), then restart mmsd:');
    for (const line of p.Candidates) lines.push(`  ${line}`);
  } else if (p.Source === 'not-found') {
    lines.push('', 'Set mms.mmsc (and pdp.apn, mms.proxy.host, mms.proxy.port as your operator says) in the');
    lines.push('config file, and report the network upstream to mobile-broadband-provider-info (docs/carriers.md).');
  } else if (p.Source === 'database' && p.Candidates.length > 1) {
    lines.push('', `Chosen from ${p.Candidates.length} providers of ${p.MccMnc}; another one is picked with its line:`);
    for (const line of p.Candidates) lines.push(`  ${line}`);
  }
  return lines;
}

async function list(c: MmsClient, io: Output, values: Values): Promise<number> {
  const messages = (await c.listPaged()).sort((a, b) => a.props.Created - b.props.Created);
  if (values.json) {
    io.out(JSON.stringify(messages.map((m) => toJson(m.props, m.path))));
    return EXIT.ok;
  }
  if (messages.length === 0) {
    io.out('no messages');
    return EXIT.ok;
  }
  const rows = [
    ['ID', 'STATUS', 'TRIES', 'UPDATED', 'TO', 'ERROR'],
    ...messages.map(({ props: p }) => [
      p.Id,
      p.Status,
      String(p.Attempts),
      new Date(p.Updated).toISOString(),
      [...p.To, ...p.Cc, ...p.Bcc].join(','),
      p.Error,
    ]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) io.out(r.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd());
  return EXIT.ok;
}

async function show(c: MmsClient, io: Output, values: Values, id: string): Promise<number> {
  const p = await c.show(id);
  if (values.json) {
    io.out(JSON.stringify(toJson(p)));
    return EXIT.ok;
  }
  const maxAttempts = await maxAttemptsOf(c);
  io.out(
    [
      `id:            ${p.Id}`,
      `status:        ${describeStatus(p, maxAttempts, Date.now())}`,
      `to:            ${p.To.join(', ')}`,
      `cc:            ${p.Cc.join(', ')}`,
      `bcc:           ${p.Bcc.join(', ')}`,
      `subject:       ${p.Subject}`,
      `attempts:      ${p.Attempts}`,
      `progress:      ${Math.round(p.Progress * 100)}%`,
      `error:         ${p.Error || '-'}`,
      `http status:   ${p.HttpStatus || '-'}`,
      `mmsc response: ${p.MmscResponse || '-'}`,
      `created:       ${new Date(p.Created).toISOString()}`,
      `updated:       ${new Date(p.Updated).toISOString()}`,
      ...describeDelivery(p.Delivery),
      // §11: what fitting did, one line per changed part.
      ...(p.Adjustments ?? []).map((line, i) => `${i === 0 ? 'adjustments:  ' : '              '} ${line}`),
    ].join('\n'),
  );
  return EXIT.ok;
}

/** `mmsctl show`'s per-recipient delivery states (DESIGN.md §12), one line each. */
export function describeDelivery(delivery: Record<string, string> | undefined): string[] {
  const entries = Object.entries(delivery ?? {});
  if (entries.length === 0) return ['delivery:      - (no report asked for)'];
  const width = Math.max(...entries.map(([r]) => r.length));
  return ['delivery:', ...entries.map(([r, s]) => `  ${r.padEnd(width)}  ${s}`)];
}

async function cancel(c: MmsClient, io: Output, values: Values, id: string): Promise<number> {
  await c.cancel(id);
  if (values.json) io.out(JSON.stringify({ id, status: 'cancelled' }));
  else io.out(`cancelled ${id}`);
  return EXIT.ok;
}

// ---- received messages (DESIGN.md §12) ----

function receivedJson(p: ReceivedProperties, path?: string): Record<string, unknown> {
  return {
    ...(path === undefined ? {} : { path }),
    id: p.Id,
    status: p.Status,
    from: p.From,
    to: p.To,
    cc: p.Cc,
    subject: p.Subject,
    date: p.Date,
    size: p.Size,
    expiry: p.Expiry,
    parts: p.Parts,
    ...(p.Error ? { error: p.Error } : {}),
    ...(p.MessageId ? { messageId: p.MessageId } : {}),
  };
}

async function inboxList(c: MmsClient, io: Output, values: Values): Promise<number> {
  const received = await c.listReceived();
  if (values.json) {
    io.out(JSON.stringify(received.map((r) => receivedJson(r.props, r.path))));
    return EXIT.ok;
  }
  if (received.length === 0) {
    io.out('no received messages');
    return EXIT.ok;
  }
  const rows = [
    ['ID', 'STATUS', 'DATE', 'FROM', 'SIZE', 'PARTS', 'SUBJECT'],
    ...received.map(({ props: p }) => [p.Id, p.Status, new Date(p.Date).toISOString(), p.From, String(p.Size), String(p.Parts.length), p.Subject]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) io.out(r.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd());
  return EXIT.ok;
}

async function inboxShow(c: MmsClient, io: Output, values: Values, id: string): Promise<number> {
  const p = await c.showReceived(id);
  if (values.json) {
    io.out(JSON.stringify(receivedJson(p)));
    return EXIT.ok;
  }
  const width = Math.max(0, ...p.Parts.map((x) => x.name.length));
  io.out(
    [
      `id:       ${p.Id}`,
      `status:   ${p.Status}`,
      `from:     ${p.From}`,
      `to:       ${p.To.join(', ')}`,
      `cc:       ${p.Cc.join(', ')}`,
      `subject:  ${p.Subject}`,
      `date:     ${new Date(p.Date).toISOString()}`,
      `size:     ${p.Size}`,
      `expiry:   ${new Date(p.Expiry).toISOString()}`,
      `error:    ${p.Error || '-'}`,
      p.Parts.length === 0 ? 'parts:    -' : 'parts:',
      ...p.Parts.map((x) => `  ${x.name.padEnd(width)}  ${x.contentType}  ${x.size} bytes  ${x.path}`),
    ].join('\n'),
  );
  return EXIT.ok;
}

async function inboxSave(c: MmsClient, io: Output, values: Values, id: string, dir: string): Promise<number> {
  const p = await c.showReceived(id);
  if (p.Status !== 'received') {
    io.err(`mmsctl: received message ${id} is ${p.Status}: nothing to save${p.Error ? ` (${p.Error})` : ''}`);
    return EXIT.failed;
  }
  await mkdir(dir, { recursive: true });
  const saved: string[] = [];
  for (const part of p.Parts) {
    // Names are sanitised by mmsd (no separators, no leading dot); basename() guards once more.
    const target = join(dir, basename(part.name));
    try {
      await copyFile(part.path, target, fsConstants.COPYFILE_EXCL);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why = e.code === 'EEXIST' ? `${target} exists already` : e.code === 'EACCES' ? `cannot read ${part.path} (needs root or group mms)` : e.message;
      io.err(`mmsctl: ${why}`);
      return EXIT.failed;
    }
    saved.push(target);
  }
  if (values.json) io.out(JSON.stringify({ id, saved }));
  else for (const f of saved) io.out(f);
  return EXIT.ok;
}

async function inboxAct(c: MmsClient, io: Output, values: Values, action: 'delete' | 'retrieve', id: string): Promise<number> {
  if (action === 'delete') await c.deleteReceived(id);
  else await c.retrieveReceived(id);
  const done = action === 'delete' ? 'deleted' : 'retrieving';
  if (values.json) io.out(JSON.stringify({ id, action }));
  else io.out(`${done} ${id}`);
  return EXIT.ok;
}

/** One line of `mmsctl watch` for a signal; undefined for a change nobody needs to see. */
export function watchLine(e: WatchEvent, now: number): Record<string, unknown> | undefined {
  const at = new Date(now).toISOString();
  switch (e.kind) {
    case 'added':
      return { at, event: 'message', id: e.props.Id, status: e.props.Status, to: [...e.props.To, ...e.props.Cc, ...e.props.Bcc] };
    case 'removed':
      return { at, event: 'message-removed', id: messageIdFromPath(e.path) ?? e.path };
    case 'delivery':
      return { at, event: 'delivery', id: e.path === '/' ? null : (messageIdFromPath(e.path) ?? e.path), recipient: e.recipient, status: e.status };
    case 'received':
      return { at, event: 'received', id: e.props.Id, status: e.props.Status, from: e.props.From, subject: e.props.Subject, size: e.props.Size };
    case 'changed': {
      if (e.changed.Status === undefined) return undefined;
      const received = receivedIdFromPath(e.path);
      if (received !== undefined) {
        const parts = e.changed.Parts as { name: string }[] | undefined;
        return { at, event: 'received', id: received, status: e.changed.Status, ...(parts ? { parts: parts.map((x) => x.name) } : {}), ...(e.changed.Error ? { error: e.changed.Error } : {}) };
      }
      return { at, event: 'message', id: messageIdFromPath(e.path) ?? e.path, status: e.changed.Status, ...(e.changed.Error ? { error: e.changed.Error } : {}) };
    }
  }
}

function watchText(l: Record<string, unknown>): string {
  const rest = Object.entries(l)
    .filter(([k]) => !['at', 'event', 'id', 'status'].includes(k))
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : typeof v === 'string' ? JSON.stringify(v) : String(v)}`);
  return [l.at, l.event, l.id ?? '-', l.status, ...rest].join(' ');
}

async function watch(c: MmsClient, io: Output, values: Values): Promise<number> {
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await c.watch(
      (e) => {
        const line = watchLine(e, Date.now());
        if (line) io.out(values.json ? JSON.stringify(line) : watchText(line));
      },
      stop.signal,
      () => io.err('mmsctl: watching mmsd (Ctrl-C to stop)'),
    );
    return EXIT.ok;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function defaultOutput(): Output {
  return {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  };
}

function isEntryPoint(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

// Run as a program (also through npm's bin symlink), not when imported by a test.
if (isEntryPoint()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`mmsctl: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = EXIT.failed;
    },
  );
}
