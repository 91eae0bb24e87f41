// The daemon's pino logger (DESIGN.md §14): JSON lines to stdout without duplicate keys, secrets
// redacted wherever they appear, the syslog priority in front of each line when stdout is the
// journal, and the id of the message being sent on every line of the modem side.
import { fstatSync } from 'node:fs';
import { pino, symbols, type DestinationStream, type Logger } from 'pino';

export const REDACT_PATHS = [
  'password',
  '*.password',
  'pdp.password',
  'config.pdp.password',
  'mqtt.password',
  '*.passwordFile',
];

/**
 * Syslog priority of a pino level, for journald (`journalctl -p`): fatal 2 (crit), error 3 (err),
 * warn 4 (warning), info 6 (info), debug and trace 7 (debug).
 */
export function syslogPriority(level: number): number {
  if (level >= 60) return 2;
  if (level >= 50) return 3;
  if (level >= 40) return 4;
  if (level >= 30) return 6;
  return 7;
}

/**
 * Whether file descriptor `fd` is the journal stream systemd announced in JOURNAL_STREAM
 * (`<device>:<inode>`, systemd.exec(5)): an inherited variable with stdout sent elsewhere (a pipe,
 * a file) does not count.
 */
export function isJournalStream(env: NodeJS.ProcessEnv, fd: number): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!m) return false;
  try {
    const st = fstatSync(fd, { bigint: true });
    return st.dev === BigInt(m[1]) && st.ino === BigInt(m[2]);
  } catch {
    return false;
  }
}

/**
 * pino's error serializer (type, message, stack and the error's own fields, the stack in its own
 * field), minus the "Error: " some libraries put into the message itself: serialport's bindings
 * say "Error: No such file or directory, cannot open …", which a stack shows as "Error: Error: …".
 */
export function serializeError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const out = pino.stdSerializers.err(err);
  const repeated = /^(?:Error: )+/.exec(out.message);
  if (repeated) {
    const message = out.message.slice(repeated[0].length);
    if (typeof out.stack === 'string' && out.stack.startsWith(`${err.name}: ${out.message}`)) {
      out.stack = `${err.name}: ${message}${out.stack.slice(`${err.name}: ${out.message}`.length)}`;
    }
    out.message = message;
  }
  return out;
}

/**
 * The one secret an AT line carries: a data context's user name and password (`AT+QICSGP=<ctx>,
 * <type>,"<apn>","<user>","<password>"…` and its answer `+QICSGP: <type>,"<apn>","<user>",
 * "<password>"…`). The AT channel logs every line it writes and reads, and errors quote their
 * command, so they are taken out of every string field of a line, at every level.
 */
const CONTEXT_CREDENTIALS = /(\+QICSGP(?:=\s*\d+\s*,\s*\d+\s*,|:\s*\d+\s*,)\s*"[^"]*"\s*,)\s*"[^"]*"\s*,\s*"[^"]*"/gi;

export function scrubCredentials(text: string): string {
  return text.replace(CONTEXT_CREDENTIALS, '$1"[redacted]","[redacted]"');
}

function scrubFields(obj: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const [key, value] of Object.entries(obj)) {
    let clean = value;
    if (typeof value === 'string') clean = scrubCredentials(value);
    else if (value !== null && typeof value === 'object' && !Array.isArray(value) && key === 'err') {
      const e = serializeError(value) as Record<string, unknown>;
      clean = typeof e === 'object' && e !== null ? scrubFields({ ...e }) : e;
    }
    if (clean !== value) (out ??= { ...obj })[key] = clean;
  }
  return out ?? obj;
}

/** journald reads a leading `<N>` as the line's priority (SyslogLevelPrefix=, on by default). */
class PriorityPrefixed {
  readonly [symbols.needsMetadataGsym] = true as const;
  // Set by pino before each write.
  lastLevel = 30;
  lastTime = '';
  lastMsg = '';
  lastObj: object = {};
  lastLogger!: Logger;

  constructor(private readonly out: DestinationStream & { flush?: (cb?: (err?: Error) => void) => void }) {}

  write(line: string): void {
    this.out.write(`<${syslogPriority(this.lastLevel)}>${line}`);
  }

  flush(cb?: (err?: Error) => void): void {
    if (this.out.flush) this.out.flush(cb);
    else cb?.();
  }
}

/** Parts whose lines belong to the story of the message being sent (DESIGN.md §14). */
const MESSAGE_PARTS: ReadonlySet<string> = new Set(['at', 'modem', 'sender']);

export interface LogOptions {
  /** Prefix each line with its syslog priority `<N>` (stdout is the journal: isJournalStream). */
  journal?: boolean;
  /**
   * The id of the message being sent now, if any: added as `id` to the lines of the parts that
   * send it (the AT lines included) unless the line names a message itself.
   */
  currentMessage?: () => string | undefined;
}

export function createLogger(level: string, destination?: DestinationStream, opts: LogOptions = {}): Logger {
  const out = destination ?? pino.destination({ fd: 1, sync: false });
  const partOf = new WeakMap<object, string | undefined>();
  const currentMessage = opts.currentMessage;
  return pino(
    {
      level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      // No `name`: lines have a `name` of their own (an error's, a bus name's), and a key twice in
      // one line is read differently by every JSON tool. journald records the program anyway.
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      serializers: { err: serializeError },
      formatters: { log: scrubFields },
      mixin: currentMessage
        ? (_obj, _level, logger) => {
            const id = currentMessage();
            if (id === undefined) return {};
            let part = partOf.get(logger);
            if (part === undefined && !partOf.has(logger)) {
              part = (logger.bindings() as { part?: string }).part;
              partOf.set(logger, part);
            }
            // The line's own fields win over this one (pino merges the mixin under them).
            return part !== undefined && MESSAGE_PARTS.has(part) ? { id } : {};
          }
        : undefined,
    },
    opts.journal ? new PriorityPrefixed(out) : out,
  );
}

/** The exit status after an error no handler caught (sysexits EX_SOFTWARE): systemd restarts. */
export const EX_SOFTWARE = 70;

/**
 * The process's last word on an error that escaped every handler (an exception, or a rejection
 * nobody awaited): one fatal JSON line with the error and its stack, then exit. The process's
 * state is unknown by then, so it does not go on; systemd restarts it and the outbox recovers.
 */
export function crashHandler(logger: Logger, exit: (code: number) => void = (c) => process.exit(c)): (err: unknown, origin: string) => void {
  return (err, origin) => {
    try {
      logger.fatal({ err, origin }, 'unhandled error; exiting so that systemd restarts mmsd');
    } finally {
      exit(EX_SOFTWARE);
    }
  };
}
