// The two exported D-Bus interfaces of DESIGN.md §4: org.example.Mms1 (manager) and
// org.example.Mms1.Message (one per message). Plain classes + configureMembers (dbus-next's
// decorators do not work under TypeScript).
import dbus from 'dbus-next';
import type { Logger } from 'pino';
import type { ReceivedRecord } from '../../core/inbound.js';
import type { MessageRecord, RawSendRequest } from '../../core/message.js';
import type { FrontDoorContext } from '../types.js';
import {
  MANAGER_PROPERTIES,
  MESSAGE_PROPERTIES,
  RECEIVED_PROPERTIES,
  changedValues,
  convertOptions,
  propertyValues,
  propertyVariants,
  toDBusError,
  type ManagerSource,
  type Variant,
} from './convert.js';
import { MANAGER_INTERFACE, MESSAGE_INTERFACE, RECEIVED_INTERFACE, messagePath, receivedPath } from './names.js';

const { Interface } = dbus.interface;

/** The most messages one ListMessagesPage reply carries. */
export const LIST_PAGE_MAX = 500;

/** The messages one ListMessagesPage(offset, count) answers. */
export function pageOf<T>(all: readonly T[], offset: number, count: number): T[] {
  return all.slice(offset, offset + Math.min(count, LIST_PAGE_MAX));
}

/** Argument names for the introspection XML (dbus-next leaves them out). */
const ARG_NAMES: Readonly<Record<string, readonly string[]>> = {
  SendMessage: ['to', 'cc', 'bcc', 'subject', 'attachments', 'options', 'message'],
  SendMessageData: ['to', 'cc', 'bcc', 'subject', 'attachments', 'options', 'message'],
  ListMessages: ['messages'],
  ListMessagesPage: ['offset', 'count', 'total', 'messages'],
  Cancel: ['id'],
  Resend: ['id', 'new_id', 'message'],
  MessageAdded: ['message', 'properties'],
  MessageRemoved: ['message'],
  DeliveryReport: ['message', 'recipient', 'status'],
  ListReceived: ['received'],
  MessageReceived: ['received', 'properties'],
};

interface IntrospectArg {
  $: { name?: string; direction?: string; type: string };
}
interface IntrospectMember {
  $: { name: string };
  arg?: IntrospectArg[];
}
interface IntrospectInterface {
  $: { name: string };
  method?: IntrospectMember[];
  signal?: IntrospectMember[];
}

// dbus-next builds introspection data in Interface.prototype.$introspect (not in its typings).
const baseIntrospect = (Interface.prototype as unknown as { $introspect: (this: unknown) => IntrospectInterface })
  .$introspect;

/** An Interface whose introspection names method and signal arguments from ARG_NAMES. */
class NamedInterface extends Interface {
  $introspect(): IntrospectInterface {
    const xml = baseIntrospect.call(this);
    for (const member of [...(xml.method ?? []), ...(xml.signal ?? [])]) {
      const names = ARG_NAMES[member.$.name];
      member.arg?.forEach((arg, i) => {
        const name = names?.[i];
        // `name` first, as gdbus and sd-bus print it.
        if (name !== undefined) arg.$ = { name, ...arg.$ };
      });
    }
    return xml;
  }
}

/** What the manager needs from the service around it. */
export interface MessageRegistry {
  /** Export the record's object now if it is not yet (a submit may resolve before 'added'). */
  ensureExported(record: MessageRecord): void;
  /** Lets stop() wait for calls still in progress before it closes the connection. */
  track<T>(work: Promise<T>): Promise<T>;
}

export class ManagerInterface extends NamedInterface {
  private last: Record<string, unknown> = {};

  constructor(
    private readonly ctx: FrontDoorContext,
    private readonly registry: MessageRegistry,
    private readonly logger: Logger,
  ) {
    super(MANAGER_INTERFACE);
  }

  private source(): ManagerSource {
    return {
      status: this.ctx.modemStatus(),
      carrier: this.ctx.carrier(),
      queueLength: this.ctx.queueLength(),
      maxAttempts: this.ctx.maxAttempts,
      version: this.ctx.version,
    };
  }

  private prop(name: string): unknown {
    return MANAGER_PROPERTIES[name].get(this.source());
  }

  /** Emit PropertiesChanged for every manager property that changed since the last call. */
  refresh(): void {
    const now = propertyValues(MANAGER_PROPERTIES, this.source());
    const changed = changedValues(this.last, now);
    this.last = now;
    if (Object.keys(changed).length > 0) Interface.emitPropertiesChanged(this, changed, []);
  }

  /** Take the current values as known (at export) without announcing them. */
  snapshot(): void {
    this.last = propertyValues(MANAGER_PROPERTIES, this.source());
  }

  async SendMessage(
    to: string[],
    cc: string[],
    bcc: string[],
    subject: string,
    attachments: [string, string][],
    options: Record<string, Variant>,
  ): Promise<string> {
    return this.submit('SendMessage', to, cc, bcc, subject, options, () =>
      attachments.map(([path, contentType]) => (contentType === '' ? { path } : { path, contentType })),
    );
  }

  async SendMessageData(
    to: string[],
    cc: string[],
    bcc: string[],
    subject: string,
    attachments: [string, string, Buffer][],
    options: Record<string, Variant>,
  ): Promise<string> {
    return this.submit('SendMessageData', to, cc, bcc, subject, options, () =>
      attachments.map(([name, contentType, data]) =>
        contentType === '' ? { name, data } : { name, contentType, data },
      ),
    );
  }

  private async submit(
    method: string,
    to: string[],
    cc: string[],
    bcc: string[],
    subject: string,
    options: Record<string, Variant>,
    attachments: () => unknown[],
  ): Promise<string> {
    try {
      const converted = convertOptions(options);
      const raw: RawSendRequest = { to, cc, bcc, subject, attachments: attachments(), options: converted.options };
      if (converted.id !== undefined) raw.id = converted.id;
      const { record, created } = await this.registry.track(this.ctx.submit(raw));
      this.registry.ensureExported(record);
      this.logger.info({ id: record.id, created, method }, 'message submitted over D-Bus');
      return messagePath(record.id);
    } catch (err) {
      throw toDBusError(err, this.logger, method);
    }
  }

  ListMessages(): [string, Record<string, Variant>][] {
    return this.ctx.list().map((r) => [messagePath(r.id), propertyVariants(MESSAGE_PROPERTIES, r)]);
  }

  /**
   * ListMessages a page at a time (issue 19); `count` at most LIST_PAGE_MAX. Answers (total,
   * messages). The service answers both itself (DbusService.onListCall, wire.ts); these two are
   * dbus-next's path, taken only when the marshalled bytes cannot be written.
   */
  ListMessagesPage(offset: number, count: number): [number, [string, Record<string, Variant>][]] {
    const all = this.ctx.list();
    const page = pageOf(all, offset, count);
    return [all.length, page.map((r) => [messagePath(r.id), propertyVariants(MESSAGE_PROPERTIES, r)])];
  }

  /** DESIGN.md §12: every received message, oldest first. */
  ListReceived(): [string, Record<string, Variant>][] {
    return this.ctx.listReceived().map((r) => [receivedPath(r.id), propertyVariants(RECEIVED_PROPERTIES, r)]);
  }

  async Cancel(id: string): Promise<void> {
    try {
      await this.registry.track(this.ctx.cancel(id));
    } catch (err) {
      throw toDBusError(err, this.logger, 'Cancel');
    }
  }

  /** An `unknown` or `failed` message again as a new one; `newId` "" lets mmsd name it. */
  async Resend(id: string, newId: string): Promise<string> {
    try {
      const { record, created } = await this.registry.track(this.ctx.resend(id, newId === '' ? undefined : newId));
      this.registry.ensureExported(record);
      this.logger.info({ id: record.id, resendOf: id, created }, 'message resent over D-Bus');
      return messagePath(record.id);
    } catch (err) {
      throw toDBusError(err, this.logger, 'Resend');
    }
  }

  get ModemState(): unknown {
    return this.prop('ModemState');
  }
  get Registration(): unknown {
    return this.prop('Registration');
  }
  get Operator(): unknown {
    return this.prop('Operator');
  }
  get SignalQuality(): unknown {
    return this.prop('SignalQuality');
  }
  get QueueLength(): unknown {
    return this.prop('QueueLength');
  }
  get MaxAttempts(): unknown {
    return this.prop('MaxAttempts');
  }
  get Version(): unknown {
    return this.prop('Version');
  }
  get Carrier(): unknown {
    return this.prop('Carrier');
  }

  /** Signal body; dbus-next sends what this returns. */
  MessageAdded(path: string, properties: Record<string, Variant>): [string, Record<string, Variant>] {
    return [path, properties];
  }

  MessageRemoved(path: string): string {
    return path;
  }

  /** DESIGN.md §12: every delivery report; the message's path, or "/" when none matched. */
  DeliveryReport(path: string, recipient: string, status: string): [string, string, string] {
    return [path, recipient, status];
  }

  /** DESIGN.md §12: a new received message (its notification stored). */
  MessageReceived(path: string, properties: Record<string, Variant>): [string, Record<string, Variant>] {
    return [path, properties];
  }
}

ManagerInterface.configureMembers({
  methods: {
    SendMessage: { inSignature: 'asasassa(ss)a{sv}', outSignature: 'o' },
    SendMessageData: { inSignature: 'asasassa(ssay)a{sv}', outSignature: 'o' },
    ListMessages: { inSignature: '', outSignature: 'a(oa{sv})' },
    ListMessagesPage: { inSignature: 'uu', outSignature: 'ua(oa{sv})' },
    Cancel: { inSignature: 's', outSignature: '' },
    Resend: { inSignature: 'ss', outSignature: 'o' },
    ListReceived: { inSignature: '', outSignature: 'a(oa{sv})' },
  },
  properties: Object.fromEntries(
    Object.entries(MANAGER_PROPERTIES).map(([name, spec]) => [name, { signature: spec.signature, access: 'read' }]),
  ),
  signals: {
    MessageAdded: { signature: 'oa{sv}' },
    MessageRemoved: { signature: 'o' },
    DeliveryReport: { signature: 'oss' },
    MessageReceived: { signature: 'oa{sv}' },
  },
});

/**
 * One per message. It keeps only the record (the outbox's own object, not a copy) and derives the
 * property values when asked: no snapshot of the values per message (issue 19). Records are
 * replaced, never changed in place, so the previous record gives the previous values.
 */
export class MessageInterface extends NamedInterface {
  constructor(
    private record: MessageRecord,
    private readonly ctx: FrontDoorContext,
    private readonly registry: MessageRegistry,
    private readonly logger: Logger,
  ) {
    super(MESSAGE_INTERFACE);
  }

  get id(): string {
    return this.record.id;
  }

  /** The value of one property of MESSAGE_PROPERTIES, from the current record. */
  property(name: string): unknown {
    return MESSAGE_PROPERTIES[name].get(this.record);
  }

  /** Take a newer record and announce what changed (status, attempts, progress, error…). */
  update(record: MessageRecord): void {
    const before = propertyValues(MESSAGE_PROPERTIES, this.record);
    this.record = record;
    const changed = changedValues(before, propertyValues(MESSAGE_PROPERTIES, record));
    if (Object.keys(changed).length > 0) Interface.emitPropertiesChanged(this, changed, []);
  }

  async Cancel(): Promise<void> {
    try {
      await this.registry.track(this.ctx.cancel(this.record.id));
    } catch (err) {
      throw toDBusError(err, this.logger, 'Message.Cancel');
    }
  }
}

// Property getters from the one table: dbus-next reads `iface[name]`.
for (const name of Object.keys(MESSAGE_PROPERTIES)) {
  Object.defineProperty(MessageInterface.prototype, name, {
    get(this: MessageInterface) {
      return this.property(name);
    },
  });
}

MessageInterface.configureMembers({
  methods: { Cancel: { inSignature: '', outSignature: '' } },
  properties: Object.fromEntries(
    Object.entries(MESSAGE_PROPERTIES).map(([name, spec]) => [name, { signature: spec.signature, access: 'read' }]),
  ),
});

/** org.example.Mms1.Received (DESIGN.md §12): one object per received message. */
export class ReceivedInterface extends NamedInterface {
  private values: Record<string, unknown>;

  constructor(
    private record: ReceivedRecord,
    private readonly ctx: FrontDoorContext,
    private readonly registry: MessageRegistry,
    private readonly logger: Logger,
  ) {
    super(RECEIVED_INTERFACE);
    this.values = propertyValues(RECEIVED_PROPERTIES, record);
  }

  get id(): string {
    return this.record.id;
  }

  /** Take a newer record and announce what changed. */
  update(record: ReceivedRecord): void {
    this.record = record;
    const now = propertyValues(RECEIVED_PROPERTIES, record);
    const changed = changedValues(this.values, now);
    this.values = now;
    if (Object.keys(changed).length > 0) Interface.emitPropertiesChanged(this, changed, []);
  }

  /** Fetch a `notified` or `failed` message now. */
  async Retrieve(): Promise<void> {
    try {
      await this.registry.track(this.ctx.retrieveReceived(this.record.id));
      this.logger.info({ id: this.record.id }, 'retrieve asked over D-Bus');
    } catch (err) {
      throw toDBusError(err, this.logger, 'Received.Retrieve');
    }
  }

  /** Remove the record and its files now. */
  async Delete(): Promise<void> {
    try {
      await this.registry.track(this.ctx.deleteReceived(this.record.id));
      this.logger.info({ id: this.record.id }, 'received message deleted over D-Bus');
    } catch (err) {
      throw toDBusError(err, this.logger, 'Received.Delete');
    }
  }
}

for (const name of Object.keys(RECEIVED_PROPERTIES)) {
  Object.defineProperty(ReceivedInterface.prototype, name, {
    get(this: ReceivedInterface) {
      return (this as unknown as { values: Record<string, unknown> }).values[name];
    },
  });
}

ReceivedInterface.configureMembers({
  methods: { Retrieve: { inSignature: '', outSignature: '' }, Delete: { inSignature: '', outSignature: '' } },
  properties: Object.fromEntries(
    Object.entries(RECEIVED_PROPERTIES).map(([name, spec]) => [name, { signature: spec.signature, access: 'read' }]),
  ),
});
