// mmsctl inbox: received messages (DESIGN.md §12): list, show, save, retrieve, delete.
import { constants as fsConstants } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { MmsClient, ReceivedProperties } from '../../api/dbus/client.js';
import { EXIT, printTable, type Output, type Values } from './args.js';

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

export async function inboxList(c: MmsClient, io: Output, values: Values): Promise<number> {
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
  printTable(io, rows);
  return EXIT.ok;
}

export async function inboxShow(c: MmsClient, io: Output, values: Values, id: string): Promise<number> {
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

export async function inboxSave(c: MmsClient, io: Output, values: Values, id: string, dir: string): Promise<number> {
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

export async function inboxAct(c: MmsClient, io: Output, values: Values, action: 'delete' | 'retrieve', id: string): Promise<number> {
  if (action === 'delete') await c.deleteReceived(id);
  else await c.retrieveReceived(id);
  const done = action === 'delete' ? 'deleted' : 'retrieving';
  if (values.json) io.out(JSON.stringify({ id, action }));
  else io.out(`${done} ${id}`);
  return EXIT.ok;
}
