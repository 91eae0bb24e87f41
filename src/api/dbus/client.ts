// A client of org.example.Mms1 (DESIGN.md §4) for mmsctl, the benchmarks and tests: typed calls
// over dbus-next's low-level Message API. What comes back is in client-props.ts, listening to
// mmsd's signals (watch, follow) in client-signals.ts.
import dbus from 'dbus-next';
import { busAddress, openBus, raceBusError, unreachable, whenConnected, type BusKind, type MessageBus } from './bus.js';
import { optionsToVariants, type Variant } from './convert.js';
import {
  notFound,
  notFoundReceived,
  receivedProps,
  unwrap,
  type CarrierProperties,
  type DataAttachment,
  type ManagerProperties,
  type MessageProperties,
  type PathAttachment,
  type ReceivedProperties,
  type SendFields,
  type SendResult,
  type WatchEvent,
} from './client-props.js';
import { busCall, busMessage, CALL_TIMEOUT_MS, followMessage, watchSignals, type DbusMessage } from './client-signals.js';
import { BUS_NAME, MANAGER_INTERFACE, MANAGER_PATH, MESSAGE_INTERFACE, PROPERTIES_INTERFACE, RECEIVED_INTERFACE, messagePath, receivedPath } from './names.js';

export type {
  CarrierProperties,
  DataAttachment,
  ManagerProperties,
  MessageProperties,
  PathAttachment,
  ReceivedPartProperties,
  ReceivedProperties,
  SendFields,
  SendResult,
  WatchEvent,
} from './client-props.js';
export { BusLostError, DaemonGoneError } from './client-signals.js';

const { DBusError, Message, MessageType } = dbus;

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
    await busCall(this.bus, 'AddMatch', rule);
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
   * DaemonGoneError when mmsd leaves the bus, BusLostError when the bus closes the connection.
   * `onReady` once every signal is listened to.
   */
  watch(onEvent: (e: WatchEvent) => void, signal?: AbortSignal, onReady?: () => void): Promise<void> {
    return watchSignals(this.bus, onEvent, signal, onReady);
  }

  /**
   * Follows the message at `path` until `until` says so (by default: its Status is final) and
   * resolves with its last properties. `onUpdate` gets every state seen (first the current one).
   * Rejects with DaemonGoneError when mmsd leaves the bus, BusLostError when the bus closes the
   * connection.
   */
  follow(path: string, onUpdate: (props: MessageProperties) => void, until?: (props: MessageProperties) => boolean): Promise<MessageProperties> {
    return followMessage(this.bus, path, onUpdate, until);
  }
}
