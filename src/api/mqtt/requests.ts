// The MQTT front door's requests (DESIGN.md §5, §13): send and cancel payloads (and Home Assistant's
// notify commands) to the outbox, each answered on its message topic and responseTopic.
import type { IPublishPacket } from 'mqtt';
import type { Logger } from 'pino';
import { errorText, RequestError } from '../../core/errors.js';
import type { MessageRecord } from '../../core/message.js';
import type { FrontDoorContext } from '../types.js';
import type { HomeAssistant } from './homeassistant.js';
import { fingerprint, type Publisher, type ResponseRoute } from './publisher.js';
import { cancelRefusedPayload, errorTopicPayload, parseCancelPayload, parseSendPayload, rejectedPayload } from './schema.js';
import { isPublishableTopic, type Topics } from './topics.js';

/** The outbox could not take a request for a reason of its own (disk, bug): not the client's. */
export class RetryLater extends Error {
  override name = 'RetryLater';
}

export interface RequestsOptions {
  ctx: FrontDoorContext;
  log: Logger;
  /** Unix ms, for the `updated` of rejections. */
  clock: () => number;
  topics: () => Topics;
  homeAssistant: () => HomeAssistant | undefined;
  publisher: Publisher;
}

export class Requests {
  constructor(private readonly opts: RequestsOptions) {}

  /**
   * One request from the broker. Resolves once the outbox holds it or it was answered as
   * rejected; throws RetryLater when the outbox failed on its own account.
   */
  async handle(topic: string, payload: Buffer, packet: IPublishPacket): Promise<void> {
    const ha = this.opts.homeAssistant()?.owns(topic) ? this.opts.homeAssistant() : undefined;
    const kind = ha ? undefined : this.opts.topics().classify(topic);
    const route = this.responseRoute(packet);
    try {
      if (ha) {
        // §13: a notify command becomes a send request and takes the send path, acks and all.
        const request = ha.handle(topic, payload, { retained: packet.retain, redelivered: packet.dup });
        if (request) await this.handleSend(request, route);
      } else if (kind === 'send') await this.handleSend(payload, route);
      else if (kind === 'cancel') await this.handleCancel(payload, route);
      else this.opts.log.warn({ topic }, 'message on a topic we do not serve');
    } catch (err) {
      if (err instanceof RetryLater) throw err;
      // Our own bug: answer rather than crash or loop (the daemon never crashes on a payload).
      this.opts.log.error({ err: errorText(err), topic }, 'request handling failed');
      this.rejectRequest(undefined, new RequestError('InvalidRequest', 'the request could not be handled'), payload, route);
    }
  }

  private async handleSend(payload: Buffer, route: ResponseRoute | undefined): Promise<void> {
    const { ctx, log, publisher } = this.opts;
    const parsed = parseSendPayload(payload);
    // §5: a known id is not sent again; its current status is re-published, whatever else the
    // request carries (it is most likely the same request delivered twice).
    const known = parsed.id !== undefined ? ctx.get(parsed.id) : undefined;
    if (known) {
      log.info({ id: known.id, status: known.status }, 'send request for a known id: re-publishing its status');
      publisher.publishRecord(known, { force: true });
      publisher.replyRecord(route, known);
      return;
    }
    if (!parsed.ok) {
      this.rejectRequest(parsed.id, parsed.error, payload, route);
      return;
    }
    let result;
    try {
      result = await ctx.submit(parsed.value);
    } catch (err) {
      if (err instanceof RequestError) {
        this.rejectRequest(parsed.id, err, payload, route);
        return;
      }
      throw new RetryLater(errorText(err));
    }
    const { record, created } = result;
    log.info({ id: record.id, created }, created ? 'send request queued' : 'send request for a known id');
    // 'added' normally published it already; whichever comes first publishes (retained, see
    // Publisher.onRecord), the other is deduplicated.
    publisher.publishRecord(ctx.get(record.id) ?? record, { force: !created, retainQueued: created });
    publisher.replyRecord(route, record);
    const current = ctx.get(record.id);
    if (current && fingerprint(current) !== fingerprint(record)) publisher.replyRecord(route, current);
  }

  private async handleCancel(payload: Buffer, route: ResponseRoute | undefined): Promise<void> {
    const { ctx, log, publisher } = this.opts;
    const parsed = parseCancelPayload(payload);
    if (!parsed.ok) {
      this.rejectRequest(parsed.id, parsed.error, payload, route);
      return;
    }
    const { id } = parsed.value;
    let record: MessageRecord;
    try {
      record = await ctx.cancel(id);
    } catch (err) {
      if (!(err instanceof RequestError)) throw new RetryLater(errorText(err));
      const current = ctx.get(id);
      log.info({ id, error: err.errorName }, 'cancel refused');
      const body = current ? cancelRefusedPayload(current, err, this.opts.clock()) : rejectedPayload(id, err, this.opts.clock());
      publisher.publish(this.opts.topics().message(id)!, JSON.stringify(body), false);
      publisher.reply(route, JSON.stringify(body));
      return;
    }
    log.info({ id }, 'cancelled');
    publisher.publishRecord(record, {});
    publisher.replyRecord(route, record);
  }

  /** §5: `rejected` on `<base>/message/<id>`, or on `<base>/error` without a usable id. */
  private rejectRequest(id: string | undefined, error: RequestError, payload: Buffer, route: ResponseRoute | undefined): void {
    const topics = this.opts.topics();
    this.opts.log.info({ id, error: error.errorName, reason: error.message }, 'request rejected');
    const messageTopic = id !== undefined ? topics.message(id) : undefined;
    // Not retained: the daemon keeps nothing for a refused request, so nothing would ever clear it.
    const body =
      messageTopic !== undefined && id !== undefined
        ? JSON.stringify(rejectedPayload(id, error, this.opts.clock()))
        : JSON.stringify(errorTopicPayload(error, payload));
    this.opts.publisher.publish(messageTopic ?? topics.error, body, false);
    this.opts.publisher.reply(route, body);
  }

  private responseRoute(packet: IPublishPacket): ResponseRoute | undefined {
    const props = packet.properties;
    const topic = props?.responseTopic;
    if (topic === undefined) return undefined;
    if (!isPublishableTopic(topic)) {
      this.opts.log.warn({ responseTopic: topic.slice(0, 200) }, 'ignoring an unusable responseTopic');
      return undefined;
    }
    const correlationData = props?.correlationData;
    return correlationData !== undefined ? { topic, correlationData: Buffer.from(correlationData) } : { topic };
  }
}
