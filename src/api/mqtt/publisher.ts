// The MQTT front door's publishing (DESIGN.md §5, §12): each message's status once per change, the
// received messages in order, delivery reports, the modem status, and the replies on a request's
// responseTopic while its message is under way.
import { readFile } from 'node:fs/promises';
import type { IClientPublishOptions, MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { DeliveryReportEvent, ReceivedRecord } from '../../core/inbound.js';
import { isFinal, type MessageRecord } from '../../core/message.js';
import type { ModemStatus } from '../../core/status.js';
import type { FrontDoorContext } from '../types.js';
import { deliveryPayload, messagePayload, receivedPayload, statusPayload } from './schema.js';
import { errorText } from '../../core/errors.js';
import { SendTally } from './tally.js';
import { isPublishableTopic, type Topics } from './topics.js';

/** Where the replies to one request also go (MQTT 5 request/response, §5). */
export interface ResponseRoute {
  topic: string;
  correlationData?: Buffer;
}

const MAX_ROUTES_PER_ID = 8;

export interface PublisherOptions {
  ctx: FrontDoorContext;
  log: Logger;
  /** The session's client while there is one; nothing is published without it. */
  client: () => MqttClient | undefined;
  /** Known once start() has checked the configured topics. */
  topics: () => Topics;
  /** DESIGN.md §12: parts inline up to this many bytes. */
  inlineMaxBytes: number;
  /** Work stop() waits for. */
  track: (p: Promise<void>) => void;
}

export class Publisher {
  /** Per message id: a fingerprint of what was last published, so each change goes out once. */
  private readonly published = new Map<string, string>();
  private readonly routes = new Map<string, ResponseRoute[]>();
  private lastStatus: string | undefined;
  private readonly tally = new SendTally();
  /** Received-message publishes in order: each reads its files first (DESIGN.md §12). */
  private receivedChain: Promise<void> = Promise.resolve();

  constructor(private readonly opts: PublisherOptions) {}

  onRecord(record: MessageRecord, added: boolean): void {
    this.tally.observe(record);
    this.publishRecord(record, { retainQueued: added });
    this.publishStatus(false);
  }

  onRemoved(id: string): void {
    const topic = this.opts.topics().message(id);
    // The outbox forgot the message (retention): clear its retained status, so that the id can
    // be used again without a stale outcome and retained messages do not pile up on the broker.
    if (topic !== undefined) this.publish(topic, '', true);
    this.published.delete(id);
    this.routes.delete(id);
    this.tally.forget(id);
    this.publishStatus(false);
  }

  onModemStatus(status: ModemStatus): void {
    this.tally.modem(status);
    this.publishStatus(false);
  }

  onDeliveryReport(e: DeliveryReportEvent): void {
    this.publish(this.opts.topics().delivery, JSON.stringify(deliveryPayload(e)), false);
  }

  /**
   * `<base>/message/<id>` (§5), once per change. Retained: every final status, and the first
   * `queued` of a newly created message — it replaces a retained final of an earlier message with
   * the same id, which would otherwise be what a fresh subscriber sees until this one ends.
   */
  publishRecord(record: MessageRecord, opts: { force?: boolean; retainQueued?: boolean }): void {
    const topic = this.opts.topics().message(record.id);
    if (topic === undefined) {
      this.opts.log.debug({ id: record.id }, 'message id cannot be an MQTT topic level; status not published');
      return;
    }
    const fp = fingerprint(record);
    if (!opts.force && this.published.get(record.id) === fp) return;
    this.published.set(record.id, fp);
    const final = isFinal(record.status);
    const retain = final || (opts.retainQueued === true && record.status === 'queued');
    const body = JSON.stringify(messagePayload(record));
    this.publish(topic, body, retain);
    for (const route of this.routes.get(record.id) ?? []) this.publishTo(route, body);
    if (final) this.routes.delete(record.id);
  }

  /** `<base>/received/<id>`, after the ones before it; the final states retained (DESIGN.md §12). */
  queueReceived(record: ReceivedRecord): void {
    this.receivedChain = this.receivedChain.then(() =>
      this.publishReceived(record).catch((err: unknown) => this.opts.log.warn({ id: record.id, err: errorText(err) }, 'received message not published')),
    );
    this.opts.track(this.receivedChain);
  }

  queueReceivedRemoved(id: string): void {
    this.receivedChain = this.receivedChain.then(() => {
      const topic = this.opts.topics().received(id);
      if (topic !== undefined) this.publish(topic, '', true);
    });
  }

  private async publishReceived(record: ReceivedRecord): Promise<void> {
    const topic = this.opts.topics().received(record.id);
    if (topic === undefined) return;
    const limit = this.opts.inlineMaxBytes;
    let data: Buffer[] | undefined;
    if (record.status === 'received' && record.parts.length > 0 && record.size <= limit) {
      try {
        data = await Promise.all(record.parts.map((p) => readFile(p.path)));
      } catch (err) {
        // Deleted meanwhile: its removal follows in the chain and clears the topic.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
    }
    this.publish(topic, JSON.stringify(receivedPayload(record, data)), isFinalReceived(record));
  }

  /** Answers a request on its responseTopic, and keeps the route while the message is under way. */
  replyRecord(route: ResponseRoute | undefined, record: MessageRecord): void {
    if (!route) return;
    this.reply(route, JSON.stringify(messagePayload(record)));
    if (isFinal(record.status)) return;
    const list = this.routes.get(record.id) ?? [];
    const same = list.some((r) => r.topic === route.topic && bufEq(r.correlationData, route.correlationData));
    if (!same && list.length < MAX_ROUTES_PER_ID) list.push(route);
    this.routes.set(record.id, list);
  }

  reply(route: ResponseRoute | undefined, body: string): void {
    if (route) this.publishTo(route, body);
  }

  private publishTo(route: ResponseRoute, body: string): void {
    const properties = route.correlationData !== undefined ? { correlationData: route.correlationData } : undefined;
    this.publish(route.topic, body, false, properties);
  }

  /** `<base>/status` (retained), when it changed or on connect. */
  publishStatus(force: boolean): void {
    const { ctx } = this.opts;
    const { sentTotal, failedTotal, lastError } = this.tally;
    const extras = { sentTotal, failedTotal, lastError, identity: ctx.modemIdentity() };
    const body = JSON.stringify(statusPayload(ctx.modemStatus(), ctx.queueLength(), ctx.carrier(), extras));
    if (!force && body === this.lastStatus) return;
    this.lastStatus = body;
    this.publish(this.opts.topics().status, body, true);
  }

  /**
   * Every publish is QoS 1 and goes through here. Not awaited: mqtt.js handles no PUBACK while a
   * request is in hand, and it queues QoS 1 publishes while the broker is away.
   */
  publish(topic: string, body: string, retain: boolean, properties?: IClientPublishOptions['properties']): void {
    const client = this.opts.client();
    if (!client) return;
    if (!isPublishableTopic(topic)) {
      this.opts.log.error({ topic: topic.slice(0, 200) }, 'refusing to publish to an unsafe topic');
      return;
    }
    const options: IClientPublishOptions = properties ? { qos: 1, retain, properties } : { qos: 1, retain };
    client.publish(topic, body, options, (err) => {
      if (err) this.opts.log.debug({ topic, err: err.message }, 'publish not completed');
    });
  }
}

/** received, expired and failed: what stays retained (a failed one may still be retrieved again). */
export function isFinalReceived(r: ReceivedRecord): boolean {
  return r.status === 'received' || r.status === 'expired' || r.status === 'failed';
}

/**
 * What a subscriber sees of one state of a message: its payload without `updated`. The outbox
 * also announces changes that show nowhere in the payload (the RAM file journal, the
 * `sendAccepted` flag, `progress` outside `sending`), each with a new `updated`: those must not
 * publish the same status again.
 */
export function fingerprint(r: MessageRecord): string {
  const { updated: _updated, ...shown } = messagePayload(r);
  return JSON.stringify(shown);
}

function bufEq(a: Buffer | undefined, b: Buffer | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.equals(b);
}
