// mmsctl list, show and cancel: the outbox's messages as a person or a program reads them.
import type { MessageProperties, MmsClient } from '../../api/dbus/client.js';
import { isFinal } from '../../core/message.js';
import { EXIT, printTable, type Output, type Values } from './args.js';

/** The daemon's MaxAttempts, for "attempt 2 of 5"; undefined when it cannot say. */
export async function maxAttemptsOf(c: MmsClient): Promise<number | undefined> {
  return c.status().then(
    (s) => s.MaxAttempts,
    () => undefined,
  );
}

export function toJson(p: MessageProperties, path?: string): Record<string, unknown> {
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
export function nextStep(p: Pick<MessageProperties, 'Id' | 'Status'>): string | undefined {
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

export async function list(c: MmsClient, io: Output, values: Values): Promise<number> {
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
  printTable(io, rows);
  return EXIT.ok;
}

export async function show(c: MmsClient, io: Output, values: Values, id: string): Promise<number> {
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

export async function cancel(c: MmsClient, io: Output, values: Values, id: string): Promise<number> {
  await c.cancel(id);
  if (values.json) io.out(JSON.stringify({ id, status: 'cancelled' }));
  else io.out(`cancelled ${id}`);
  return EXIT.ok;
}
