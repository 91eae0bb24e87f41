// Listening to mmsd on the bus for MmsClient: every signal it sends (watch), or one message followed
// to a final state (follow). Match rules are added for the time of the listening and removed after.
import dbus from 'dbus-next';
import { asError } from '../../core/errors.js';
import { isFinal } from '../../core/message.js';
import { onBusClosed, raceBusError, type MessageBus } from './bus.js';
import type { Variant } from './convert.js';
import { notFound, receivedProps, unwrap, type MessageProperties, type WatchEvent } from './client-props.js';
import { BUS_NAME, MANAGER_INTERFACE, MESSAGE_INTERFACE, PROPERTIES_INTERFACE, RECEIVED_INTERFACE } from './names.js';

const { DBusError, Message, MessageType } = dbus;
export type DbusMessage = InstanceType<typeof Message>;

/** How long a call to mmsd or the bus may take. */
export const CALL_TIMEOUT_MS = 120_000;

/** The daemon left the bus while we were waiting on it. */
export class DaemonGoneError extends Error {
  override name = 'DaemonGoneError';
}

/**
 * The bus closed our connection (dbus-daemon stopped or restarted) while we were listening: no
 * NameOwnerChanged or 'error' comes then. `path` is the message being followed, if any.
 */
export class BusLostError extends Error {
  override name = 'BusLostError';
  constructor(readonly path?: string) {
    super(`it closed the connection (dbus-daemon stopped or restarted)${path === undefined ? '' : ` while waiting for ${path}`}`);
  }
}

/**
 * Follows mmsd's signals (new and removed messages, property changes of sent and received
 * messages, delivery reports, received messages) until `signal` aborts; rejects with
 * DaemonGoneError when mmsd leaves the bus, BusLostError when the bus closes the connection.
 * `onReady` once every signal is listened to.
 */
export async function watchSignals(bus: MessageBus, onEvent: (e: WatchEvent) => void, signal?: AbortSignal, onReady?: () => void): Promise<void> {
  const rules = [
    `type='signal',sender='${BUS_NAME}',interface='${MANAGER_INTERFACE}'`,
    `type='signal',sender='${BUS_NAME}',interface='${PROPERTIES_INTERFACE}',member='PropertiesChanged'`,
    `type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='${BUS_NAME}'`,
  ];
  for (const rule of rules) await busCall(bus, 'AddMatch', rule);
  await new Promise<void>((resolve, reject) => {
    let offClosed = (): void => undefined;
    const finish = (err?: Error): void => {
      bus.removeListener('message', onMessage);
      bus.removeListener('error', onError);
      signal?.removeEventListener('abort', onAbort);
      offClosed();
      // On a closed connection there is no match left to remove.
      if (!(err instanceof BusLostError)) for (const rule of rules) bus.call(busMessage('RemoveMatch', rule)).catch(() => undefined);
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
    const onError = (err: unknown): void => finish(asError(err));
    const onAbort = (): void => finish();
    if (signal?.aborted) return finish();
    bus.on('message', onMessage);
    bus.on('error', onError);
    offClosed = onBusClosed(bus, () => finish(new BusLostError()));
    signal?.addEventListener('abort', onAbort, { once: true });
    onReady?.();
  });
}

/**
 * Follows the message at `path` until `until` says so (by default: its Status is final) and
 * resolves with its last properties. `onUpdate` gets every state seen (first the current one).
 * Rejects with DaemonGoneError when mmsd leaves the bus, BusLostError when the bus closes the
 * connection.
 */
export async function followMessage(
  bus: MessageBus,
  path: string,
  onUpdate: (props: MessageProperties) => void,
  until: (props: MessageProperties) => boolean = (p) => isFinal(p.Status),
): Promise<MessageProperties> {
  const propsRule = `type='signal',sender='${BUS_NAME}',path='${path}',interface='${PROPERTIES_INTERFACE}',member='PropertiesChanged'`;
  const ownerRule = `type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='${BUS_NAME}'`;
  await busCall(bus, 'AddMatch', propsRule);
  await busCall(bus, 'AddMatch', ownerRule);

  return new Promise<MessageProperties>((resolve, reject) => {
    let state: MessageProperties | undefined;
    let done = false;
    let offClosed = (): void => undefined;
    const getAll = new Message({
      destination: BUS_NAME,
      path,
      interface: PROPERTIES_INTERFACE,
      member: 'GetAll',
      signature: 's',
      body: [MESSAGE_INTERFACE],
    });
    getAll.serial = bus.newSerial();
    const serial = getAll.serial;

    const finish = (err: Error | undefined, value?: MessageProperties): void => {
      if (done) return;
      done = true;
      bus.removeListener('message', onMessage);
      bus.removeListener('error', onError);
      offClosed();
      // Best effort, not awaited: the connection is usually closed right after.
      if (!(err instanceof BusLostError)) for (const rule of [propsRule, ownerRule]) bus.call(busMessage('RemoveMatch', rule)).catch(() => undefined);
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
    const onError = (err: unknown): void => finish(asError(err));
    bus.on('message', onMessage);
    bus.on('error', onError);
    offClosed = onBusClosed(bus, () => finish(new BusLostError(path)));
    bus.call(getAll).catch((err: unknown) => {
      if (err instanceof DBusError && /InvalidArgs|UnknownObject/.test(err.type)) finish(notFound(path));
      else finish(asError(err));
    });
  });
}

/** AddMatch / RemoveMatch on the bus, raced against its errors. */
export async function busCall(bus: MessageBus, member: string, arg: string): Promise<void> {
  await raceBusError(bus, bus.call(busMessage(member, arg)), CALL_TIMEOUT_MS, member);
}

/** A call to the bus itself (AddMatch, RemoveMatch) with one string argument. */
export function busMessage(member: string, arg: string): DbusMessage {
  return new Message({
    destination: 'org.freedesktop.DBus',
    path: '/org/freedesktop/DBus',
    interface: 'org.freedesktop.DBus',
    member,
    signature: 's',
    body: [arg],
  });
}
