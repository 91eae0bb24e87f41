// mmsctl watch: sends, delivery reports and received messages as they happen, one line each.
import type { MmsClient, WatchEvent } from '../../api/dbus/client.js';
import { messageIdFromPath, receivedIdFromPath } from '../../api/dbus/names.js';
import { EXIT, type Output, type Values } from './args.js';

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

export async function watch(c: MmsClient, io: Output, values: Values): Promise<number> {
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
