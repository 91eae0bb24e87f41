// What a front door (D-Bus, MQTT) is given by the daemon's composition root.
import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { MessageRecord, RawSendRequest } from '../core/message.js';
import type { CarrierReport } from '../core/carrier.js';
import type { ReceivedRecord } from '../core/inbound.js';
import type { ModemIdentity, ModemStatus } from '../core/status.js';
import type { SubmitResult } from '../outbox/types.js';

/**
 * Events: 'added' (record), 'changed' (record), 'removed' (id), 'modemStatus' (ModemStatus),
 * 'carrier' (CarrierReport), 'modemIdentity' (ModemIdentity) when the module's identity is first read
 * or changes; from the inbound path (DESIGN.md §12, types in core/inbound.ts):
 * 'deliveryReport' (DeliveryReportEvent) once per M-Delivery.ind, matched or not, after the
 * message's record is durable; 'received' (ReceivedRecord) when a received message is new or
 * changes state; 'receivedRemoved' (id).
 */
export interface FrontDoorContext extends EventEmitter {
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
