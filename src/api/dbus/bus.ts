// Opening a dbus-next connection to the system or session bus and waiting until it is usable,
// shared by the service and the mmsctl client.
import { createRequire } from 'node:module';
import dbus from 'dbus-next';
import { asError } from '../../core/errors.js';

export type BusKind = 'system' | 'session';
export type MessageBus = ReturnType<typeof dbus.sessionBus>;

const SYSTEM_BUS_DEFAULT = 'unix:path=/var/run/dbus/system_bus_socket';

/** The bus cannot be reached at all (no address, no socket, refused): not mmsd's doing. */
export class BusUnreachableError extends Error {
  override name = 'BusUnreachableError';
}

/**
 * The address of a bus: `address` if given, else the bus's environment variable
 * (DBUS_SYSTEM_BUS_ADDRESS / DBUS_SESSION_BUS_ADDRESS), else the system bus's well-known socket.
 * The session bus has no default: without its variable it throws BusUnreachableError (dbus-next
 * would look for an X11 DISPLAY instead, which a gateway never has).
 */
export function busAddress(kind: BusKind, address?: string): string {
  if (address !== undefined) return address;
  if (kind === 'system') return process.env.DBUS_SYSTEM_BUS_ADDRESS || SYSTEM_BUS_DEFAULT;
  const session = process.env.DBUS_SESSION_BUS_ADDRESS;
  if (!session) throw new BusUnreachableError('cannot reach the session bus: DBUS_SESSION_BUS_ADDRESS is not set');
  return session;
}

/** A new connection to the bus at busAddress(kind, address); BusUnreachableError when there is none. */
export function openBus(kind: BusKind, address?: string): MessageBus {
  const resolved = busAddress(kind, address);
  try {
    return dbus.sessionBus({ busAddress: resolved });
  } catch {
    // dbus-next parses the address while it opens the socket, with errors that name its internals.
    throw new BusUnreachableError(
      `cannot reach the ${kind} bus: its address ${JSON.stringify(resolved)} is not a D-Bus address like unix:path=/run/dbus/system_bus_socket`,
    );
  }
}

/**
 * A connection error of the bus's socket as one line a person can act on, naming the bus and
 * where it was looked for; undefined for other errors (an authentication refusal, a bug).
 */
export function unreachable(kind: BusKind, address: string, err: unknown): BusUnreachableError | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const path = /(?:^|;)unix:(?:[^;]*,)?path=([^,;]+)/.exec(address)?.[1];
  const where = path ?? address;
  const why: Record<string, string> = {
    ENOENT: `${where} does not exist (is dbus running?)`,
    ECONNREFUSED: `nothing accepts connections at ${where} (is dbus running?)`,
    EACCES: `permission denied on ${where}`,
    ENOTSOCK: `${where} is not a socket`,
    ECONNRESET: `the bus closed the connection at ${where}`,
    EPIPE: `the bus closed the connection at ${where}`,
  };
  if (code !== undefined && why[code] !== undefined) return new BusUnreachableError(`cannot reach the ${kind} bus: ${why[code]}`);
  if (err instanceof Error && /^timed out after \d+ ms connecting/.test(err.message)) {
    return new BusUnreachableError(`cannot reach the ${kind} bus at ${where}: ${err.message}`);
  }
  return undefined;
}

/**
 * Resolves once the bus said Hello back; rejects on the first connection error or after
 * `timeoutMs`. dbus-next never fails a pending call when the socket fails, so every wait on the
 * bus races its 'error' event.
 */
export function whenConnected(bus: MessageBus, timeoutMs: number): Promise<void> {
  return raceBusError(
    bus,
    new Promise<void>((resolve) => {
      if ((bus as unknown as { name: string | null }).name) resolve();
      else bus.once('connect', () => resolve());
    }),
    timeoutMs,
    'connecting to the bus',
  );
}

/** `work`, unless the bus errors or `timeoutMs` passes first. */
export function raceBusError<T>(bus: MessageBus, work: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onError = (err: unknown): void => {
      done();
      reject(asError(err));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${timeoutMs} ms ${what}`));
    }, timeoutMs);
    // The socket keeps a waiting process alive; the timer alone must not (a CLI that closed the
    // bus while a call was pending has to exit).
    timer.unref();
    const done = (): void => {
      clearTimeout(timer);
      bus.removeListener('error', onError);
    };
    bus.on('error', onError);
    work.then(
      (v) => {
        done();
        resolve(v);
      },
      (err: unknown) => {
        done();
        reject(asError(err));
      },
    );
  });
}

/**
 * The socket under a dbus-next connection, and the connection's state: not in dbus-next's types
 * (0.10.x, pinned in the lock file). The functions below are the only places that reach into it.
 */
interface BusStream {
  readonly writable: boolean;
  readonly supportsUnixFd?: boolean;
  write(data: unknown): boolean;
  once(event: 'end' | 'close', fn: () => void): unknown;
  removeListener(event: 'end' | 'close', fn: () => void): unknown;
}

function connectionOf(bus: MessageBus): { state?: string; stream?: BusStream } | undefined {
  return (bus as unknown as { _connection?: { state?: string; stream?: BusStream } })._connection;
}

function streamOf(bus: MessageBus): BusStream {
  const stream = connectionOf(bus)?.stream;
  if (!stream) throw new Error('dbus-next connection has no stream (internals changed?)');
  return stream;
}

/**
 * Writes a marshalled message on dbus-next's connection, as its own Connection.message() does once
 * connected (synchronously, so nothing else can come between its bytes). dbus-next has no public
 * way to send pre-marshalled bytes; false (nothing written) when its internals are not as in
 * 0.10.x, and the caller then replies through dbus-next instead.
 */
export function writeRaw(bus: MessageBus, data: Buffer): boolean {
  const conn = connectionOf(bus);
  const stream = conn?.stream;
  if (conn?.state !== 'connected' || !stream || !stream.writable || typeof stream.write !== 'function') return false;
  if (stream.supportsUnixFd) stream.write({ data, fds: [] });
  else stream.write(data);
  return true;
}

/**
 * Calls `fn` once when the bus's socket ends or closes, whoever closed it (the bus went away, or
 * disconnect()); returns a function that stops listening. dbus-next emits 'error' only for a
 * socket error or a write to a closed socket: a bus that exits ends the socket, which dbus-next
 * would notice at its next write, so the door listens to the socket itself.
 */
export function onBusClosed(bus: MessageBus, fn: () => void): () => void {
  const stream = streamOf(bus);
  let called = false;
  const once = (): void => {
    if (called) return;
    called = true;
    off();
    fn();
  };
  const off = (): void => {
    stream.removeListener('end', once);
    stream.removeListener('close', once);
  };
  stream.once('end', once);
  stream.once('close', once);
  return off;
}

/** Whether the bus's socket can still be written to: false once it ended, closed or failed. */
export function busWritable(bus: MessageBus): boolean {
  return streamOf(bus).writable;
}

/** dbus-next's method dispatch (lib/service/handlers.js, 0.10.x): what answers calls on exported objects. */
type Dispatch = (msg: unknown, bus: unknown) => boolean;
let dispatch: Dispatch | null | undefined;

function dbusNextDispatch(): Dispatch | null {
  if (dispatch === undefined) {
    try {
      const loaded: unknown = createRequire(import.meta.url)('dbus-next/lib/service/handlers.js');
      dispatch = typeof loaded === 'function' ? (loaded as Dispatch) : null;
    } catch {
      dispatch = null;
    }
  }
  return dispatch;
}

/** What of dbus-next's object table and introspection the two functions below use (0.10.x). */
interface ObjectTable {
  _serviceObjects?: Record<string, { introspect(): unknown }>;
  _builder?: { buildObject(xml: unknown): string };
}

function tableOf(bus: MessageBus): ObjectTable {
  return bus as unknown as ObjectTable;
}

/**
 * Whether answerAsExported() and introspectNode() work on this connection: false when dbus-next's
 * internals are not as in 0.10.x, and the caller then exports objects as usual.
 */
export function canAnswerUnexported(bus: MessageBus): boolean {
  const t = tableOf(bus);
  return dbusNextDispatch() !== null && typeof t._serviceObjects === 'object' && typeof t._builder?.buildObject === 'function';
}

/**
 * Answers one call on `path` as dbus-next would if `iface` were exported there: exports it, lets
 * dbus-next's own dispatch handle the call (Properties, Introspectable, the interface's methods,
 * with dbus-next's answers and errors), and unexports it again, all synchronously (an async
 * method replies later through the bus, without the object). False, with nothing exported, when
 * another object is at `path` or dbus-next did not handle the call (it then answers as for an
 * unknown method).
 */
export function answerAsExported(bus: MessageBus, msg: unknown, path: string, iface: InstanceType<typeof dbus.interface.Interface>): boolean {
  const handle = dbusNextDispatch();
  if (handle === null || tableOf(bus)._serviceObjects?.[path] !== undefined) return false;
  bus.export(path, iface);
  try {
    return handle(msg, bus);
  } finally {
    bus.unexport(path, iface);
  }
}

const INTROSPECT_HEADER =
  '<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">\n';

/**
 * The introspection XML of `path` as dbus-next writes it (its builder, its header), with the child
 * nodes `children` first, then those of exported objects not among them.
 */
export function introspectNode(bus: MessageBus, path: string, children: Iterable<string>): string {
  const t = tableOf(bus);
  const objects = t._serviceObjects ?? {};
  const builder = t._builder;
  if (!builder) throw new Error('dbus-next connection has no introspection builder (internals changed?)');
  const xml: { node: { node: { $: { name: string } }[]; interface?: unknown } } = { node: { node: [] } };
  const own = objects[path];
  if (own) xml.node.interface = own.introspect();
  const names = new Set(children);
  const depth = path.split('/').filter((n) => n).length;
  const prefix = path === '/' ? '/' : `${path}/`;
  for (const key of Object.keys(objects)) {
    if (!key.startsWith(prefix)) continue;
    const child = key.split('/').filter((n) => n)[depth];
    if (child !== undefined) names.add(child);
  }
  for (const name of names) xml.node.node.push({ $: { name } });
  return INTROSPECT_HEADER + builder.buildObject(xml);
}
