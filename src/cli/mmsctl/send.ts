// mmsctl send and resend: the request from the flags, and --wait / --wait-delivered following the
// message to its end (progress bar on a terminal).
import { readFile } from 'node:fs/promises';
import { basename, resolve as resolvePath } from 'node:path';
import cliProgress from 'cli-progress';
import type { MessageProperties, MmsClient, SendResult } from '../../api/dbus/client.js';
import { isFinal } from '../../core/message.js';
import { SEND_OPTIONS } from '../../core/options.js';
import { EXIT, parseAttach, UsageError, type OptionRow, type Output, type Values } from './args.js';
import { describeStatus, maxAttemptsOf, nextStep, toJson } from './messages.js';

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
export async function prepareSend(values: Values): Promise<(c: MmsClient, io: Output) => Promise<number>> {
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
export async function deliver(c: MmsClient, io: Output, values: Values, result: SendResult, resendOf?: string): Promise<number> {
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
