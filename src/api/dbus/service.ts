// The D-Bus front door (DESIGN.md §4): owns the name org.example.Mms1, exports the manager and
// one object per outbox message, and mirrors the outbox and modem status as properties/signals.
import dbus from 'dbus-next';
import type { Logger } from 'pino';
import { asError, errorText as anyErrorText } from '../../core/errors.js';
import { TypedEmitter } from '../../core/events.js';
import { LOG_EVENTS } from '../../core/log-events.js';
import type { DeliveryReportEvent, ReceivedRecord } from '../../core/inbound.js';
import { isSettled, type MessageRecord } from '../../core/message.js';
import { ContextListeners } from '../listeners.js';
import type { FrontDoorContext, FrontDoorEvents } from '../types.js';
import {
  answerAsExported,
  busWritable,
  canAnswerUnexported,
  introspectNode,
  onBusClosed,
  openBus,
  writeRaw,
  raceBusError,
  whenConnected,
  type BusKind,
  type MessageBus,
} from './bus.js';
import { MESSAGE_PROPERTIES, RECEIVED_PROPERTIES, propertyVariants, toDBusError, writeMessageList } from './convert.js';
import { ManagerInterface, MessageInterface, ReceivedInterface, pageOf, type MessageRegistry } from './interfaces.js';
import {
  BUS_NAME,
  MANAGER_INTERFACE,
  MANAGER_PATH,
  MESSAGE_INTERFACE,
  MESSAGE_PATH_PREFIX,
  PROPERTIES_INTERFACE,
  escapePathElement,
  messageIdFromPath,
  messagePath,
  receivedPath,
} from './names.js';
import { marshalMethodReturn, noReplyExpected, type WireWriter } from './wire.js';

const { NameFlag, RequestNameReply, Message, MessageType } = dbus;
type BusMessage = InstanceType<typeof Message>;

export interface DbusServiceOptions {
  ctx: FrontDoorContext;
  bus: BusKind;
  logger: Logger;
  /** A bus address overriding the bus's environment variable and default (tests). */
  address?: string;
  /** How long start() waits for the bus and the name; default 10 s. */
  timeoutMs?: number;
}

/**
 * start() could not put the door up for a reason outside mmsd: no bus, the bus policy refusing
 * the name, the name already taken. The message names what to fix; the daemon exits 78.
 */
export class DbusStartError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DbusStartError';
  }
}

/** The bus closed mmsd's connection (dbus-daemon stopped or restarted, the socket closed). */
export class BusClosedError extends Error {
  override name = 'BusClosedError';
}

export interface DbusServiceEvents {
  /**
   * Once when the bus connection fails or closes after start() and before stop(): the daemon has
   * lost its front door and should exit so that systemd restarts it. A closed connection is
   * noticed when it closes, not at the next signal or reply.
   */
  busError: [err: Error];
}

/** Events: DbusServiceEvents. */
export class DbusService extends TypedEmitter<DbusServiceEvents> implements MessageRegistry {
  private conn: MessageBus | undefined;
  private manager: ManagerInterface | undefined;
  /** The exported message objects: messages not settled (core isSettled), unless settledServed is false. */
  private readonly messages = new Map<string, MessageInterface>();
  /**
   * Settled messages have no object of their own: onSettledCall answers on their paths (issue 19).
   * False when dbus-next's internals do not allow it: every message is then exported.
   */
  private settledServed = false;
  private readonly receivedObjects = new Map<string, ReceivedInterface>();
  private readonly ctxListeners: ContextListeners;
  private readonly log: Logger;
  private readonly inflight = new Set<Promise<unknown>>();
  /** The connection is gone (closed, or failed after start): nothing more can be written to it. */
  private lost = false;
  /** stop() has begun: the connection closing now is our own doing. */
  private stopping = false;

  constructor(private readonly opts: DbusServiceOptions) {
    super();
    this.log = opts.logger.child({ part: 'dbus' });
    this.ctxListeners = new ContextListeners(opts.ctx, (err, event) => this.log.error({ err, event }, 'could not publish an outbox event on D-Bus'));
  }

  /**
   * Connects, takes the name, exports the manager and every message. Throws DbusStartError when
   * the bus is not there, refuses the name or has it owned already.
   */
  async start(): Promise<void> {
    const { ctx, bus: kind, address } = this.opts;
    const timeoutMs = this.opts.timeoutMs ?? 10_000;
    const where = address !== undefined ? `the bus at ${address}` : `the ${kind} bus`;
    let conn: MessageBus;
    try {
      conn = openBus(kind, address);
    } catch (err) {
      throw new DbusStartError(`cannot connect to ${where} (${errorText(err)}); set dbus.bus, or dbus.enabled to false`, { cause: err });
    }
    this.conn = conn;
    this.lost = false;
    this.stopping = false;
    let started = false;
    // A missing 'error' listener would crash the process on any socket error. Before start()
    // is done the error is start()'s own, thrown (and reported) once.
    conn.on('error', (err: unknown) => {
      if (!started) return;
      this.loseConnection(asError(err));
    });
    onBusClosed(conn, () => {
      if (!started) return;
      this.loseConnection(new BusClosedError(`${where} closed the connection`));
    });
    try {
      try {
        await whenConnected(conn, timeoutMs);
      } catch (err) {
        const env = kind === 'system' ? 'DBUS_SYSTEM_BUS_ADDRESS' : 'DBUS_SESSION_BUS_ADDRESS';
        throw new DbusStartError(
          `cannot connect to ${where} (${errorText(err)}): is dbus running` + (address === undefined ? `, and ${env} right if set?` : '?'),
          { cause: err },
        );
      }
      let reply: number;
      try {
        reply = await raceBusError(conn, conn.requestName(BUS_NAME, NameFlag.DO_NOT_QUEUE), timeoutMs, 'requesting the name');
      } catch (err) {
        if (err instanceof dbus.DBusError && err.type === 'org.freedesktop.DBus.Error.AccessDenied') {
          throw new DbusStartError(
            `${where} refuses mmsd the name ${BUS_NAME} (${err.text}): install dbus/org.example.Mms1.conf in ` +
              '/etc/dbus-1/system.d/, reload dbus, and run mmsd as root or mmsd',
            { cause: err },
          );
        }
        throw new DbusStartError(`cannot own ${BUS_NAME} on ${where} (${errorText(err)})`, { cause: err });
      }
      if (reply !== RequestNameReply.PRIMARY_OWNER && reply !== RequestNameReply.ALREADY_OWNER) {
        const pid = await ownerPid(conn, timeoutMs);
        throw new DbusStartError(`${BUS_NAME} is already owned on ${where}${pid === undefined ? '' : ` by pid ${pid}`}: is another mmsd running?`);
      }
    } catch (err) {
      conn.disconnect();
      this.conn = undefined;
      throw err;
    }

    const manager = new ManagerInterface(ctx, this, this.log);
    this.manager = manager;
    conn.export(MANAGER_PATH, manager);
    conn.addMethodHandler(this.onListCall);
    this.settledServed = canAnswerUnexported(conn);
    if (this.settledServed) conn.addMethodHandler(this.onSettledCall);
    for (const record of ctx.list()) this.ensureExported(record);
    for (const record of ctx.listReceived()) this.exportReceived(record);
    manager.snapshot();

    // 'added' comes once per new message, before or after SendMessage exported its object.
    this.listen('added', (record: MessageRecord) => {
      this.ensureExported(record);
      manager.MessageAdded(messagePath(record.id), propertyVariants(MESSAGE_PROPERTIES, record));
      manager.refresh();
    });
    this.listen('changed', (record: MessageRecord) => {
      this.messageChanged(record);
      manager.refresh();
    });
    this.listen('removed', (id: string) => {
      const iface = this.messages.get(id);
      if (iface) {
        conn.unexport(messagePath(id), iface);
        this.messages.delete(id);
      }
      // A settled message had no object of its own, but it was on the bus all the same.
      if (iface || this.settledServed) manager.MessageRemoved(messagePath(id));
      manager.refresh();
    });
    this.listen('modemStatus', () => manager.refresh());
    this.listen('carrier', () => manager.refresh());
    this.listen('deliveryReport', (e: DeliveryReportEvent) => {
      manager.DeliveryReport(e.messageId === undefined ? '/' : messagePath(e.messageId), e.recipient, e.status);
    });
    // DESIGN.md §12: a new received message is exported and announced; a change is PropertiesChanged.
    this.listen('received', (record: ReceivedRecord) => {
      const iface = this.receivedObjects.get(record.id);
      if (iface) {
        iface.update(record);
        return;
      }
      this.exportReceived(record);
      manager.MessageReceived(receivedPath(record.id), propertyVariants(RECEIVED_PROPERTIES, record));
    });
    this.listen('receivedRemoved', (id: string) => {
      const iface = this.receivedObjects.get(id);
      if (!iface) return;
      conn.unexport(receivedPath(id), iface);
      this.receivedObjects.delete(id);
    });
    started = true;
    this.log.info({ bus: kind, name: BUS_NAME, messages: this.messages.size, received: this.receivedObjects.size }, 'D-Bus interface up');
  }

  /**
   * The first failure or close of the connection after start(), unless stop() closed it: stops
   * publishing (every write would fail) and emits 'busError' once.
   */
  private loseConnection(err: Error): void {
    if (this.stopping || this.lost) return;
    this.lost = true;
    this.ctxListeners.clear();
    // The daemon's door logs it (LOG_EVENTS.dbusLost) and stops.
    this.emit('busError', err);
  }

  /**
   * Unexports everything, releases the name and disconnects. On a connection that is already gone
   * there is nothing to release or reply to: it only lets go of the socket.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.ctxListeners.clear();
    const conn = this.conn;
    if (!conn) return;
    this.conn = undefined;
    for (const [id, iface] of this.messages) conn.unexport(messagePath(id), iface);
    this.messages.clear();
    for (const [id, iface] of this.receivedObjects) conn.unexport(receivedPath(id), iface);
    this.receivedObjects.clear();
    conn.removeMethodHandler(this.onListCall);
    conn.removeMethodHandler(this.onSettledCall);
    if (this.manager) conn.unexport(MANAGER_PATH, this.manager);
    this.manager = undefined;
    if (this.lost || !busWritable(conn)) {
      // The name goes with the connection; a call on a dead one would only run into the timeout.
      conn.disconnect();
      return;
    }
    // Replies to calls still being handled (a submit writing to the spool) go out before we close.
    if (this.inflight.size > 0) {
      await raceBusError(conn, Promise.allSettled([...this.inflight]), this.opts.timeoutMs ?? 10_000, 'finishing calls').catch(
        (err: unknown) => this.log.warn({ err }, 'D-Bus calls still running at stop'),
      );
      // Let dbus-next write the replies of the calls that just settled.
      await new Promise((resolve) => setImmediate(resolve));
    }
    try {
      await raceBusError(conn, conn.releaseName(BUS_NAME), this.opts.timeoutMs ?? 10_000, 'releasing the name');
    } catch (err) {
      this.log.warn({ err }, LOG_EVENTS.dbusReleaseFailed);
    }
    conn.disconnect();
  }

  /**
   * ListMessages and ListMessagesPage (DESIGN.md §4) answered with a reply marshalled here
   * (wire.ts) instead of through dbus-next's Variants: the whole list costs a buffer of its wire
   * size, not +71..+147 MiB for 10,000 messages (issue 19). False for every other call, and when
   * the bytes cannot be written on dbus-next's connection: dbus-next then answers through the
   * manager's own methods, with the same contract.
   */
  private readonly onListCall = (msg: BusMessage): boolean => {
    const conn = this.conn;
    if (!conn || msg.type !== MessageType.METHOD_CALL || msg.path !== MANAGER_PATH) return false;
    if (msg.interface && msg.interface !== MANAGER_INTERFACE) return false;
    const signature = msg.signature || '';
    let out: string;
    let body: (w: WireWriter) => void;
    try {
      if (msg.member === 'ListMessages' && signature === '') {
        const all = this.opts.ctx.list();
        out = 'a(oa{sv})';
        body = (w) => writeMessageList(w, all);
      } else if (msg.member === 'ListMessagesPage' && signature === 'uu') {
        const [offset, count] = msg.body as [number, number];
        const all = this.opts.ctx.list();
        const page = pageOf(all, offset, count);
        out = 'ua(oa{sv})';
        body = (w) => {
          w.uint32(all.length);
          writeMessageList(w, page);
        };
      } else {
        return false;
      }
      if (noReplyExpected(msg.flags)) return true;
      const reply = marshalMethodReturn(msg, conn.newSerial(), out, body);
      if (!writeRaw(conn, reply)) return false;
      this.log.debug({ method: msg.member, bytes: reply.length }, 'list answered');
      return true;
    } catch (err) {
      const e = toDBusError(err, this.log, msg.member);
      conn.send(Message.newError(msg as unknown as string, e.type, e.text));
      return true;
    }
  };

  /**
   * Calls on the path of a settled message, which has no exported object (issue 19): answered by
   * dbus-next's own dispatch with a MessageInterface for the current record exported for the call
   * (bus.ts answerAsExported), so Properties Get/GetAll/Set, Introspect and Cancel answer exactly
   * as on an exported message. Introspect of the messages' parent node (and of the manager's, when
   * no message has an object) lists the settled ones too. False for every other call.
   */
  private readonly onSettledCall = (msg: BusMessage): boolean => {
    const conn = this.conn;
    const path = msg.path;
    if (!conn || msg.type !== MessageType.METHOD_CALL || !path) return false;
    if (path === MESSAGES_NODE || path === MANAGER_PATH) {
      if (msg.interface !== INTROSPECTABLE || msg.member !== 'Introspect' || (msg.signature || '') !== '') return false;
      // The manager's node lists "message" from an exported message while there is one.
      if (path === MANAGER_PATH && this.messages.size > 0) return false;
      const all = this.opts.ctx.list();
      const children = path === MANAGER_PATH ? (all.length > 0 ? [MESSAGES_NODE.slice(MANAGER_PATH.length + 1)] : []) : all.map((r) => escapePathElement(r.id));
      conn.send(Message.newMethodReturn(msg, 's', [introspectNode(conn, path, children)]));
      return true;
    }
    if (!path.startsWith(MESSAGE_PATH_PREFIX)) return false;
    const id = messageIdFromPath(path);
    if (id === undefined || this.messages.has(id)) return false;
    const record = this.opts.ctx.get(id);
    if (!record) return false;
    if (!isSettled(record)) {
      this.ensureExported(record);
      return false;
    }
    return answerAsExported(conn, msg, path, new MessageInterface(record, this.opts.ctx, this, this.log));
  };

  /**
   * A message changed: its object announces what changed (PropertiesChanged) and goes once the
   * message is settled. A settled message has no object and no previous values to compare with: a
   * change to it (a late delivery report) is announced with every property's value.
   */
  private messageChanged(record: MessageRecord): void {
    const conn = this.conn;
    const iface = this.messages.get(record.id);
    if (iface) {
      iface.update(record);
      if (conn && this.settledServed && isSettled(record)) {
        conn.unexport(messagePath(record.id), iface);
        this.messages.delete(record.id);
      }
    } else if (conn && this.settledServed && isSettled(record)) {
      conn.send(
        Message.newSignal(messagePath(record.id), PROPERTIES_INTERFACE, 'PropertiesChanged', 'sa{sv}as', [
          MESSAGE_INTERFACE,
          propertyVariants(MESSAGE_PROPERTIES, record),
          [],
        ]),
      );
    } else {
      this.ensureExported(record);
    }
  }

  ensureExported(record: MessageRecord): void {
    if (!this.conn || this.messages.has(record.id)) return;
    if (this.settledServed && isSettled(record)) return;
    const iface = new MessageInterface(record, this.opts.ctx, this, this.log);
    this.conn.export(messagePath(record.id), iface);
    this.messages.set(record.id, iface);
  }

  private exportReceived(record: ReceivedRecord): void {
    if (!this.conn || this.receivedObjects.has(record.id)) return;
    const iface = new ReceivedInterface(record, this.opts.ctx, this, this.log);
    this.conn.export(receivedPath(record.id), iface);
    this.receivedObjects.set(record.id, iface);
  }

  track<T>(work: Promise<T>): Promise<T> {
    this.inflight.add(work);
    const forget = (): void => {
      this.inflight.delete(work);
    };
    work.then(forget, forget);
    return work;
  }

  private listen<K extends keyof FrontDoorEvents>(event: K, fn: (...args: FrontDoorEvents[K]) => void): void {
    this.ctxListeners.on(event, fn);
  }
}

/** The node whose children are the messages' objects: `/org/example/Mms1/message`. */
const MESSAGES_NODE = MESSAGE_PATH_PREFIX.slice(0, -1);
const INTROSPECTABLE = 'org.freedesktop.DBus.Introspectable';

/** The pid of the connection owning our name, when the bus tells (for the error message). */
async function ownerPid(conn: MessageBus, timeoutMs: number): Promise<number | undefined> {
  const ask = new dbus.Message({
    destination: 'org.freedesktop.DBus',
    path: '/org/freedesktop/DBus',
    interface: 'org.freedesktop.DBus',
    member: 'GetConnectionUnixProcessID',
    signature: 's',
    body: [BUS_NAME],
  });
  try {
    const reply = await raceBusError(conn, conn.call(ask), timeoutMs, 'asking for the owner of the name');
    const pid: unknown = reply?.body[0];
    return typeof pid === 'number' ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** A D-Bus error by its name and text; anything else as core's errorText gives it. */
function errorText(err: unknown): string {
  if (err instanceof dbus.DBusError) return `${err.type}: ${err.text}`;
  return anyErrorText(err);
}
