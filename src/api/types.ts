// What a front door (D-Bus, MQTT) is given by the daemon's composition root.
import type { Logger } from 'pino';
import type { Listenable } from '../core/events.js';
import type { MessageRecord, RawSendRequest } from '../core/message.js';
import type { CarrierReport } from '../core/carrier.js';
import type { DeliveryReportEvent, ReceivedRecord } from '../core/inbound.js';
import type { ModemIdentity, ModemStatus } from '../core/status.js';
import type { SubmitResult } from '../outbox/types.js';

/** What the daemon's context tells its front doors: each event and its listeners' arguments. */
export interface FrontDoorEvents {
  /** A new message in the outbox. */
  added: [record: MessageRecord];
  /** A message's record changed (status, attempts, error …). */
  changed: [record: MessageRecord];
  /** The retention sweep removed a message from the outbox: its id. */
  removed: [id: string];
  modemStatus: [status: ModemStatus];
  /** The carrier settings, or what is known of them, changed (DESIGN.md §10). */
  carrier: [report: CarrierReport];
  /** The module's identity was first read, or changed (DESIGN.md §13). */
  modemIdentity: [identity: ModemIdentity];
  /**
   * From the inbound path (DESIGN.md §12, types in core/inbound.ts): once per M-Delivery.ind,
   * matched or not, after the message's record is durable.
   */
  deliveryReport: [event: DeliveryReportEvent];
  /** A received message is new or changed state. */
  received: [record: ReceivedRecord];
  /** A received message was deleted: its id. */
  receivedRemoved: [id: string];
}

/** Events: FrontDoorEvents; a door only listens. */
export interface FrontDoorContext extends Listenable<FrontDoorEvents> {
  /** Validates (throws RequestError with a name from core/errors) and durably queues. */
  submit(raw: RawSendRequest): Promise<SubmitResult>;
  get(id: string): MessageRecord | undefined;
  list(): MessageRecord[];
  /** RequestError NotFound / NotCancellable. */
  cancel(id: string): Promise<MessageRecord>;
  /**
   * Queues an `unknown` or `failed` message again as a new message (same recipients, subject,
   * attachments and options), validated like submit(); `newId` as its id, else one derived from
   * `id`. RequestError NotFound / NotResendable, or any of submit()'s.
   */
  resend(id: string, newId?: string): Promise<SubmitResult>;
  /** DESIGN.md §12: received messages, oldest first (none with inbound.enabled false). */
  listReceived(): ReceivedRecord[];
  getReceived(id: string): ReceivedRecord | undefined;
  /** Retrieve(): fetch a `notified` or `failed` message. RequestError NotFound / NotRetrievable / InboundDisabled. */
  retrieveReceived(id: string): Promise<ReceivedRecord>;
  /** Delete(): the record and its files at once. RequestError NotFound / InboundDisabled. */
  deleteReceived(id: string): Promise<void>;
  modemStatus(): ModemStatus;
  /** The module's IMEI, manufacturer, model and firmware (DESIGN.md §13); undefined until first read. */
  modemIdentity(): ModemIdentity | undefined;
  /** The carrier settings in force and where they came from (DESIGN.md §10); no credentials. */
  carrier(): CarrierReport;
  queueLength(): number;
  /** `outbox.maxAttempts`: tries a message gets before it fails. */
  readonly maxAttempts: number;
  readonly version: string;
  readonly logger: Logger;
}
