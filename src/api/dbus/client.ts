// A client of org.example.Mms1 (DESIGN.md §4) for mmsctl and tests: typed calls over dbus-next's
// low-level Message API, and following one message's PropertiesChanged to a final state.
import dbus from 'dbus-next';
import { isFinal, type Status } from '../../core/message.js';
import { busAddress, openBus, raceBusError, unreachable, whenConnected, type BusKind, type MessageBus } from './bus.js';
import { optionsToVariants, type Variant } from './convert.js';
import {
  BUS_NAME,
  ERROR_PREFIX,
  MANAGER_INTERFACE,
  MANAGER_PATH,
  MESSAGE_INTERFACE,
  PROPERTIES_INTERFACE,
  RECEIVED_INTERFACE,
  messagePath,
  receivedPath,
} from './names.js';

const { DBusError, Message, MessageType } = dbus;
type DbusMessage = InstanceType<typeof Message>;

/** The manager's `Carrier` a{sv} (DESIGN.md §10), unwrapped. */
export interface CarrierProperties {
  Source: 'config' | 'database' | 'ambiguous' | 'not-found' | 'pending';
  Provider: string;
  MccMnc: string;
  Apn: string;
  Mmsc: string;
  /** "host:port", or "" for none. */
  Proxy: string;
  MaxMessageBytes: number;
  /** The config line that picks each candidate. */
  Candidates: string[];
  Reason: string;
  /** The explicit config keys that won over the database. */
  ConfigKeys: string[];
}

export interface ManagerProperties {
  ModemState: string;
  Registration: string;
  Operator: string;
  SignalQuality: number;
  QueueLength: number;
  /** Absent from a daemon older than the property. */
  MaxAttempts?: number;
  Version: string;
  /** Absent from a daemon older than the property. */
  Carrier?: CarrierProperties;
}

export interface MessageProperties {
  Id: string;
  Status: Status;
  To: string[];
  Cc: string[];
  Bcc: string[];
  Subject: string;
  Attempts: number;
  Progress: number;
  Error: string;
  HttpStatus: number;
  MmscResponse: string;
  /** Unix ms (uint64 on the bus, converted here). */
  Created: number;
  Updated: number;
  /** Unix ms of the next try while `retrying`, 0 otherwise (absent from an older daemon). */
  NextAttempt?: number;
  /** DESIGN.md §12: recipient → delivery state; empty without a report asked for (absent from an older daemon). */
  Delivery?: Record<string, string>;
  /** §11: what fitting did, one line per changed part (absent from an older daemon). */
  Adjustments?: string[];
}

/** One part of a received message (the `Parts a(ssst)` of DESIGN.md §12). */
export interface ReceivedPartProperties {
  name: string;
  contentType: string;
  path: string;
  size: number;
}

/** org.example.Mms1.Received (DESIGN.md §12); uint64 converted to number. */
export interface ReceivedProperties {
  Id: string;
  Status: 'notified' | 'retrieving' | 'received' | 'expired' | 'failed';
  From: string;
  To: string[];
  Cc: string[];
  Subject: string;
  Date: number;
  Size: number;
  Expiry: number;
  Parts: ReceivedPartProperties[];
  Error: string;
  MessageId?: string;
}

/** What `watch()` reports: one signal of mmsd, as it happens. */
export type WatchEvent =
  | { kind: 'added'; path: string; props: MessageProperties }
  | { kind: 'removed'; path: string }
  | { kind: 'changed'; path: string; iface: string; changed: Record<string, unknown> }
  | { kind: 'delivery'; path: string; recipient: string; status: string }
  | { kind: 'received'; path: string; props: ReceivedProperties };

/** What a send or resend call did. */
export interface SendResult {
  /** The message's object path. */
  path: string;
  /**
   * The message's properties as mmsd recorded them when it queued it (from its MessageAdded
   * signal); undefined when the id was already known and nothing was queued.
   */
  added?: MessageProperties;
}

export interface SendFields {
  to: string[];
  cc?: string[];
  bcc?: string[];
  subject?: string;
  id?: string;
  /** validity, priority, deliveryReport, readReport, visibility, class, timeout. */
  options?: Record<string, number | boolean | undefined>;
}

export interface DataAttachment {
  name: string;
  contentType?: string;
  data: Buffer;
}

export interface PathAttachment {
  path: string;
  contentType?: string;
}

/** The daemon left the bus while we were waiting on it. */
export class DaemonGoneError extends Error {
  override name = 'DaemonGoneError';
}

const CALL_TIMEOUT_MS = 120_000;

/** Received properties from the bus: the parts' tuples as objects, their sizes as numbers. */
function receivedProps(dict: Record<string, Variant>): ReceivedProperties {
  const p = unwrap(dict);
  const parts = (p.Parts as [string, string, string, bigint | number][] | undefined) ?? [];
  return { ...(p as unknown as ReceivedProperties), Parts: parts.map(([name, contentType, path, size]) => ({ name, contentType, path, size: Number(size) })) };
}

/** Variants → plain values, an a{sv} inside one too; uint64/int64 (BigInt) → number at the edge. */
function unwrap(dict: Record<string, Variant>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(dict)) {
    const value: unknown = v.value;
    if (typeof value === 'bigint') out[k] = Number(value);
    else if (v.signature === 'a{sv}' && typeof value === 'object' && value !== null) out[k] = unwrap(value as Record<string, Variant>);
    else out[k] = value;
  }
  return out;
}

export class MmsClient {
  private constructor(private readonly bus: MessageBus) {}

  /**
   * Connects to the bus; rejects if the bus cannot be reached (not whether mmsd is there), with
   * BusUnreachableError when there is no bus at all.
   */
  static async connect(kind: BusKind, address?: string, timeoutMs = 10_000): Promise<MmsClient> {
    const resolved = busAddress(kind, address);
    const bus = openBus(kind, resolved);
    // dbus-next crashes the process on an 'error' without a listener; calls race it below.
    bus.on('error', () => undefined);
    try {
      await whenConnected(bus, timeoutMs);
    } catch (err) {
      bus.disconnect();
      throw unreachable(kind, resolved, err) ?? err;
    }
    return new MmsClient(bus);
  }

  close(): void {
    this.bus.disconnect();
  }

  private async call(path: string, iface: string, member: string, signature: string, body: unknown[]): Promise<DbusMessage> {
    const msg = new Message({ destination: BUS_NAME, path, interface: iface, member, signature, body });
    const reply = await raceBusError(this.bus, this.bus.call(msg), CALL_TIMEOUT_MS, `calling ${member}`);
    if (!reply) throw new Error(`no reply to ${member}`);
    return reply;
  }

  /** SendMessageData: the caller's bytes travel in the call. Returns the message's object path. */
  async sendData(fields: SendFields, attachments: DataAttachment[]): Promise<string> {
    return (await this.send(fields, { data: attachments }, false)).path;
  }

  /** SendMessage: the daemon reads the paths (only inside its attachments.allowedDirs). */
  async sendPaths(fields: SendFields, attachments: PathAttachment[]): Promise<string> {
    return (await this.send(fields, { paths: attachments }, false)).path;
  }

  /**
   * SendMessageData with `data`, SendMessage with `paths`. With `watchAdded` (two more round trips
   * to the bus) it also says whether this call queued the message, and with which status.
   */
  async send(
    fields: SendFields,
    attachments: { data: DataAttachment[] } | { paths: PathAttachment[] },
    watchAdded = true,
  ): Promise<SendResult> {
    const common = [fields.to, fields.cc ?? [], fields.bcc ?? [], fields.subject ?? ''];
    const options = optionsToVariants({ ...(fields.options ?? {}), id: fields.id });
    if ('data' in attachments) {
      const atts = attachments.data.map((a) => [a.name, a.contentType ?? '', a.data]);
      return this.submit('SendMessageData', 'asasassa(ssay)a{sv}', [...common, atts, options], watchAdded);
    }
    const atts = attachments.paths.map((a) => [a.path, a.contentType ?? '']);
    return this.submit('SendMessage', 'asasassa(ss)a{sv}', [...common, atts, options], watchAdded);
  }

  /** Resend: an `unknown` or `failed` message again as a new one, named `newId` or by mmsd. */
  async resend(id: string, newId?: string): Promise<SendResult> {
    return this.submit('Resend', 'ss', [id, newId ?? ''], true);
  }

  /**
   * A manager method that queues a message and answers its path. mmsd emits MessageAdded before
   * it replies, and the bus keeps one sender's messages in order: a MessageAdded for the path seen
   * by the time the reply arrives says this call queued it, with the status recorded then.
   */
  private async submit(member: string, signature: string, body: unknown[], watchAdded: boolean): Promise<SendResult> {
    if (!watchAdded) {
      const reply = await this.call(MANAGER_PATH, MANAGER_INTERFACE, member, signature, body);
      return { path: reply.body[0] as string };
    }
    const rule = `type='signal',sender='${BUS_NAME}',path='${MANAGER_PATH}',interface='${MANAGER_INTERFACE}',member='MessageAdded'`;
    await this.busCall('AddMatch', rule);
    const added = new Map<string, MessageProperties>();
    const onMessage = (msg: DbusMessage): void => {
      if (
        msg.type === MessageType.SIGNAL &&
        msg.member === 'MessageAdded' &&
        msg.path === MANAGER_PATH &&
        msg.interface === MANAGER_INTERFACE
      ) {
        added.set(msg.body[0] as string, unwrap(msg.body[1] as Record<string, Variant>) as unknown as MessageProperties);
      }
    };
    this.bus.on('message', onMessage);
    try {
      const reply = await this.call(MANAGER_PATH, MANAGER_INTERFACE, member, signature, body);
      const path = reply.body[0] as string;
      const props = added.get(path);
      return props ? { path, added: props } : { path };
    } finally {
      this.bus.removeListener('message', onMessage);
      this.bus.call(busMessage('RemoveMatch', rule)).catch(() => undefined);
    }
  }

  async status(): Promise<ManagerProperties> {
    const reply = await this.call(MANAGER_PATH, PROPERTIES_INTERFACE, 'GetAll', 's', [MANAGER_INTERFACE]);
    return unwrap(reply.body[0] as Record<string, Variant>) as unknown as ManagerProperties;
  }

  /** The manager's Carrier property (DESIGN.md §10). */
  async carrier(): Promise<CarrierProperties> {
    const reply = await this.call(MANAGER_PATH, PROPERTIES_INTERFACE, 'Get', 'ss', [MANAGER_INTERFACE, 'Carrier']);
    const v = reply.body[0] as Variant;
    return unwrap(v.value as Record<string, Variant>) as unknown as CarrierProperties;
  }

  async list(): Promise<{ path: string; props: MessageProperties }[]> {
    const reply = await this.call(MANAGER_PATH, MANAGER_INTERFACE, 'ListMessages', '', []);
    const entries = reply.body[0] as [string, Record<string, Variant>][];
    return entries.map(([path, dict]) => ({ path, props: unwrap(dict) as unknown as MessageProperties }));
  }

  /** Every message through ListMessagesPage, `pageSize` at a time (cheaper for the daemon than list()). */
  async listPaged(pageSize = 200): Promise<{ path: string; props: MessageProperties }[]> {
    const out: { path: string; props: MessageProperties }[] = [];
    for (let offset = 0; ; offset += pageSize) {
      const reply = await this.call(MANAGER_PATH, MANAGER_INTERFACE, 'ListMessagesPage', 'uu', [offset, pageSize]);
      const total = reply.body[0] as number;
      const entries = reply.body[1] as [string, Record<string, Variant>][];
      for (const [path, dict] of entries) out.push({ path, props: unwrap(dict) as unknown as MessageProperties });
      if (entries.length === 0 || offset + entries.length >= total) return out;
    }
  }

  /** All properties of one message; DBusError org.example.Mms1.Error.NotFound when unknown. */
  async show(id: string): Promise<MessageProperties> {
    return this.getAll(messagePath(id), id);
  }

  async getAll(path: string, id = path): Promise<MessageProperties> {
    try {
      const reply = await this.call(path, PROPERTIES_INTERFACE, 'GetAll', 's', [MESSAGE_INTERFACE]);
      const props = unwrap(reply.body[0] as Record<string, Variant>);
      // An unexported path answers GetAll with an empty dict or InvalidArgs, by library.
      if (props.Id === undefined) throw notFound(id);
      return props as unknown as MessageProperties;
    } catch (err) {
      if (err instanceof DBusError && /InvalidArgs|UnknownObject/.test(err.type)) throw notFound(id);
      throw err;
    }
  }

  async cancel(id: string): Promise<void> {
    await this.call(MANAGER_PATH, MANAGER_INTERFACE, 'Cancel', 's', [id]);
  }

  /** ListReceived (DESIGN.md §12): every received message, oldest first. */
  async listReceived(): Promise<{ path: string; props: ReceivedProperties }[]> {
    const reply = await this.call(MANAGER_PATH, MANAGER_INTERFACE, 'ListReceived', '', []);
    const entries = reply.body[0] as [string, Record<string, Variant>][];
    return entries.map(([path, dict]) => ({ path, props: receivedProps(dict) }));
  }

  /** All properties of one received message; DBusError org.example.Mms1.Error.NotFound when unknown. */
  async showReceived(id: string): Promise<ReceivedProperties> {
    try {
      const reply = await this.call(receivedPath(id), PROPERTIES_INTERFACE, 'GetAll', 's', [RECEIVED_INTERFACE]);
      const props = receivedProps(reply.body[0] as Record<string, Variant>);
      if (props.Id === undefined) throw notFoundReceived(id);
      return props;
    } catch (err) {
      if (err instanceof DBusError && /InvalidArgs|UnknownObject|UnknownMethod|UnknownInterface/.test(err.type)) throw notFoundReceived(id);
      throw err;
    }
  }

  /** Retrieve() of a `notified` or `failed` received message. */
  async retrieveReceived(id: string): Promise<void> {
    await this.receivedCall(id, 'Retrieve');
  }

  /** Delete() of a received message: its record and files. */
  async deleteReceived(id: string): Promise<void> {
    await this.receivedCall(id, 'Delete');
  }

  private async receivedCall(id: string, member: string): Promise<void> {
    try {
      await this.call(receivedPath(id), RECEIVED_INTERFACE, member, '', []);
    } catch (err) {
      if (err instanceof DBusError && /UnknownObject|UnknownMethod|UnknownInterface/.test(err.type)) throw notFoundReceived(id);
      throw err;
    }
  }

  /**
   * Follows mmsd's signals (new and removed messages, property changes of sent and received
   * messages, delivery reports, received messages) until `signal` aborts; rejects with
   * DaemonGoneError when mmsd leaves the bus. `onReady` once every signal is listened to.
   */
  async watch(onEvent: (e: WatchEvent) => void, signal?: AbortSignal, onReady?: () => void): Promise<void> {
    const rules = [
      `type='signal',sender='${BUS_NAME}',interface='${MANAGER_INTERFACE}'`,
      `type='signal',sender='${BUS_NAME}',interface='${PROPERTIES_INTERFACE}',member='PropertiesChanged'`,
      `type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='${BUS_NAME}'`,
    ];
    for (const rule of rules) await this.busCall('AddMatch', rule);
    await new Promise<void>((resolve, reject) => {
      const finish = (err?: Error): void => {
        this.bus.removeListener('message', onMessage);
        this.bus.removeListener('error', onError);
        signal?.removeEventListener('abort', onAbort);
        for (const rule of rules) this.bus.call(busMessage('RemoveMatch', rule)).catch(() => undefined);
        if (err) reject(err);
        else resolve();
      };
      const onMessage = (msg: DbusMessage): void => {
        if (msg.type !== MessageType.SIGNAL) return;
        const path = msg.path ?? '';
        if (msg.interface === MANAGER_INTERFACE) {
          if (msg.member === 'MessageAdded') onEvent({ kind: 'added', path: msg.body[0] as string, props: unwrap(msg.body[1] as Record<string, Variant>) as unknown as MessageProperties });
          else if (msg.member === 'MessageRemoved') onEvent({ kind: 'removed', path: msg.body[0] as string });
          else if (msg.member === 'DeliveryReport') onEvent({ kind: 'delivery', path: msg.body[0] as string, recipient: msg.body[1] as string, status: msg.body[2] as string });
          else if (msg.member === 'MessageReceived') onEvent({ kind: 'received', path: msg.body[0] as string, props: receivedProps(msg.body[1] as Record<string, Variant>) });
        } else if (msg.interface === PROPERTIES_INTERFACE && msg.member === 'PropertiesChanged') {
          const iface = msg.body[0] as string;
          if (iface !== MESSAGE_INTERFACE && iface !== RECEIVED_INTERFACE) return;
          const dict = msg.body[1] as Record<string, Variant>;
          const changed = iface === RECEIVED_INTERFACE ? (receivedProps(dict) as unknown as Record<string, unknown>) : unwrap(dict);
          if (iface === RECEIVED_INTERFACE && dict.Parts === undefined) delete changed.Parts;
          onEvent({ kind: 'changed', path, iface, changed });
        } else if (msg.member === 'NameOwnerChanged' && msg.body[0] === BUS_NAME && msg.body[2] === '') {
          finish(new DaemonGoneError(`${BUS_NAME} left the bus`));
        }
      };
      const onError = (err: unknown): void => finish(err instanceof Error ? err : new Error(String(err)));
      const onAbort = (): void => finish();
      if (signal?.aborted) return finish();
      this.bus.on('message', onMessage);
      this.bus.on('error', onError);
      signal?.addEventListener('abort', onAbort, { once: true });
      onReady?.();
    });
  }

  /**
   * Follows the message at `path` until `until` says so (by default: its Status is final) and
   * resolves with its last properties. `onUpdate` gets every state seen (first the current one).
   * Rejects with DaemonGoneError when mmsd leaves the bus.
   */
  async follow(
    path: string,
    onUpdate: (props: MessageProperties) => void,
    until: (props: MessageProperties) => boolean = (p) => isFinal(p.Status),
  ): Promise<MessageProperties> {
    const propsRule = `type='signal',sender='${BUS_NAME}',path='${path}',interface='${PROPERTIES_INTERFACE}',member='PropertiesChanged'`;
    const ownerRule = `type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='${BUS_NAME}'`;
    await this.busCall('AddMatch', propsRule);
    await this.busCall('AddMatch', ownerRule);

    return new Promise<MessageProperties>((resolve, reject) => {
      let state: MessageProperties | undefined;
      let done = false;
      const getAll = new Message({
        destination: BUS_NAME,
        path,
        interface: PROPERTIES_INTERFACE,
        member: 'GetAll',
        signature: 's',
        body: [MESSAGE_INTERFACE],
      });
      getAll.serial = this.bus.newSerial();
      const serial = getAll.serial;

      const finish = (err: Error | undefined, value?: MessageProperties): void => {
        if (done) return;
        done = true;
        this.bus.removeListener('message', onMessage);
        this.bus.removeListener('error', onError);
        // Best effort, not awaited: the connection is usually closed right after.
        for (const rule of [propsRule, ownerRule]) this.bus.call(busMessage('RemoveMatch', rule)).catch(() => undefined);
        if (err) reject(err);
        else resolve(value!);
      };
      const step = (next: MessageProperties): void => {
        if (done) return;
        state = next;
        onUpdate(next);
        if (until(next)) finish(undefined, next);
      };
      // Messages arrive in the order the bus delivered them: the GetAll reply is a snapshot, signals
      // before it are already in it, signals after it are applied on top.
      const onMessage = (msg: DbusMessage): void => {
        if (msg.type === MessageType.METHOD_RETURN && Number(msg.replySerial) === serial) {
          const props = unwrap(msg.body[0] as Record<string, Variant>);
          if (props.Id === undefined) finish(notFound(path));
          else step(props as unknown as MessageProperties);
        } else if (
          msg.type === MessageType.SIGNAL &&
          msg.member === 'PropertiesChanged' &&
          msg.path === path &&
          msg.body[0] === MESSAGE_INTERFACE &&
          state !== undefined
        ) {
          step({ ...state, ...(unwrap(msg.body[1] as Record<string, Variant>) as Partial<MessageProperties>) });
        } else if (
          msg.type === MessageType.SIGNAL &&
          msg.member === 'NameOwnerChanged' &&
          msg.body[0] === BUS_NAME &&
          msg.body[2] === ''
        ) {
          finish(new DaemonGoneError(`${BUS_NAME} left the bus while waiting for ${path}`));
        }
      };
      const onError = (err: unknown): void => finish(err instanceof Error ? err : new Error(String(err)));
      this.bus.on('message', onMessage);
      this.bus.on('error', onError);
      this.bus.call(getAll).catch((err: unknown) => {
        if (err instanceof DBusError && /InvalidArgs|UnknownObject/.test(err.type)) finish(notFound(path));
        else finish(err instanceof Error ? err : new Error(String(err)));
      });
    });
  }

  private async busCall(member: string, arg: string): Promise<void> {
    await raceBusError(this.bus, this.bus.call(busMessage(member, arg)), CALL_TIMEOUT_MS, member);
  }
}

/** A call to the bus itself (AddMatch, RemoveMatch) with one string argument. */
function busMessage(member: string, arg: string): DbusMessage {
  return new Message({
    destination: 'org.freedesktop.DBus',
    path: '/org/freedesktop/DBus',
    interface: 'org.freedesktop.DBus',
    member,
    signature: 's',
    body: [arg],
  });
}

function notFoundReceived(id: string): InstanceType<typeof DBusError> {
  return new DBusError(`${ERROR_PREFIX}NotFound`, `no received message ${id}`);
}

function notFound(id: string): InstanceType<typeof DBusError> {
  return new DBusError(`${ERROR_PREFIX}NotFound`, `no message ${id}`);
}
