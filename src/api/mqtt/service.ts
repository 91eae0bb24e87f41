// The MQTT front door (DESIGN.md §5): one persistent MQTT 5 session with the broker; takes send and
// cancel requests, acknowledges a request only once the outbox holds it, and publishes every
// message's status, the modem status and the daemon's availability.
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { connect, type IClientOptions, type IClientPublishOptions, type IConnackPacket, type IPublishPacket, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { RequestError } from '../../core/errors.js';
import type { DeliveryReportEvent, ReceivedRecord } from '../../core/inbound.js';
import { isFinal, type MessageRecord } from '../../core/message.js';
import type { ModemStatus } from '../../core/status.js';
import type { FrontDoorContext } from '../types.js';
import { HomeAssistant, type HomeAssistantConfig } from './homeassistant.js';
import {
  AVAILABILITY_OFFLINE,
  AVAILABILITY_ONLINE,
  cancelRefusedPayload,
  deliveryPayload,
  errorTopicPayload,
  messagePayload,
  parseCancelPayload,
  parseSendPayload,
  receivedPayload,
  rejectedPayload,
  statusPayload,
} from './schema.js';
import { SendTally } from './tally.js';
import { isPublishableTopic, Topics } from './topics.js';

/** The `mqtt.*` configuration keys (DESIGN.md §3); file paths are read by start(). */
export interface MqttConfig {
  url: string;
  username?: string;
  /** File holding the password (a trailing newline is removed). */
  passwordFile?: string;
  /** PEM files for TLS (`mqtts://`): CA bundle, client certificate and key. */
  ca?: string;
  cert?: string;
  key?: string;
  baseTopic: string;
  /** Stable across restarts: the broker keeps this client's session (and queued requests). */
  clientId: string;
  /** Default `<baseTopic>/send`; `$share/<group>/<topic>` for a fleet sharing one queue. */
  sendTopic?: string;
  /** DESIGN.md §12: a received message up to this many bytes carries its parts inline (base64); default 262,144. */
  inlineMaxBytes?: number;
}

export interface MqttServiceOptions {
  ctx: FrontDoorContext;
  config: MqttConfig;
  logger: Logger;
  /** Unix ms, for the `updated` of rejections. */
  clock?: () => number;
  /** How long start() waits for the first connection before it goes on in the background; 10 s. */
  connectTimeoutMs?: number;
  /** Reconnect delay: starts at min, doubles per failed attempt up to max; 1 s and 60 s. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** MQTT 5 session expiry: how long the broker keeps requests for a daemon that is away; 7 days. */
  sessionExpiryS?: number;
  /** How long stop() waits for requests in hand and the `offline` publish; 5 s. */
  stopTimeoutMs?: number;
  /** `homeAssistant.*` (DESIGN.md §13); disabled it still removes a discovery message left from before. */
  homeAssistant?: HomeAssistantConfig;
}

/** Where the replies to one request also go (MQTT 5 request/response, §5). */
interface ResponseRoute {
  topic: string;
  correlationData?: Buffer;
}

/**
 * start() could not put the door up for a reason outside mmsd: a credential file it cannot read,
 * a topic it cannot use, subscriptions the broker refuses. The message names what to fix; the
 * daemon exits 78.
 */
export class MqttStartError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MqttStartError';
  }
}

/** The outbox could not take a request for a reason of its own (disk, bug): not the client's. */
class RetryLater extends Error {
  override name = 'RetryLater';
}

const MAX_ROUTES_PER_ID = 8;

/**
 * Events: 'connected' () after every (re)connection once the subscriptions are in place;
 * 'disconnected' () when the connection to the broker is lost.
 */
export class MqttService extends EventEmitter {
  private client: MqttClient | undefined;
  private topics: Topics | undefined;
  private readonly log: Logger;
  private readonly clock: () => number;
  /** Per message id: a fingerprint of what was last published, so each change goes out once. */
  private readonly published = new Map<string, string>();
  private readonly routes = new Map<string, ResponseRoute[]>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly ctxListeners: [string, (...args: unknown[]) => void][] = [];
  private lastStatus: string | undefined;
  private readonly tally = new SendTally();
  private ha: HomeAssistant | undefined;
  private everConnected = false;
  /** Received-message publishes in order: each reads its files first (DESIGN.md §12). */
  private receivedChain: Promise<void> = Promise.resolve();
  private reconnectDelay: number;

  constructor(private readonly opts: MqttServiceOptions) {
    super();
    // The daemon's root logger redacts secrets too; this keeps the part safe on any logger.
    this.log = opts.logger.child({ part: 'mqtt' }, { redact: { paths: ['password', '*.password'], censor: '[redacted]' } });
    this.clock = opts.clock ?? Date.now;
    this.reconnectDelay = opts.reconnectMinMs ?? 1000;
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /**
   * Reads the credential files, connects and subscribes. Throws on a bad topic or an unreadable
   * file, or when the broker refuses the subscriptions; when the broker is merely unreachable it
   * resolves after connectTimeoutMs and mqtt.js keeps trying in the background.
   */
  async start(): Promise<void> {
    const { config } = this.opts;
    let topics: Topics;
    try {
      topics = new Topics(config.baseTopic, config.sendTopic);
    } catch (err) {
      throw new MqttStartError(errorText(err), { cause: err });
    }
    if (config.clientId === '') throw new MqttStartError('mqtt.clientId must not be empty');
    this.topics = topics;
    if (this.opts.homeAssistant) {
      try {
        this.ha = new HomeAssistant({
          ctx: this.opts.ctx,
          config: this.opts.homeAssistant,
          topics,
          logger: this.opts.logger,
          publish: (topic, body, retain) => this.publish(topic, body, retain),
          // No Local: our own discovery publishes are not handed back to us.
          subscribe: async (filter) => void (await this.client?.subscribeAsync({ [filter]: { qos: 1, rh: 0, nl: true } })),
          ...(this.opts.clock ? { clock: this.opts.clock } : {}),
        });
      } catch (err) {
        throw new MqttStartError(errorText(err), { cause: err });
      }
    }
    const secrets = await readSecrets(config);

    this.listen('added', (r) => this.onRecord(r as MessageRecord, true));
    this.listen('changed', (r) => this.onRecord(r as MessageRecord, false));
    // FrontDoorContext documents 'removed' with the id; a record is accepted too.
    this.listen('removed', (x) => this.onRemoved(typeof x === 'string' ? x : (x as MessageRecord).id));
    this.listen('modemStatus', (s) => {
      this.tally.modem(s as ModemStatus);
      this.publishStatus(false);
    });
    this.listen('carrier', () => this.publishStatus(false));
    this.listen('modemIdentity', () => this.publishStatus(false));
    this.ha?.start();
    this.listen('deliveryReport', (e) => this.publish(this.topics!.delivery, JSON.stringify(deliveryPayload(e as DeliveryReportEvent)), false));
    this.listen('received', (r) => this.queueReceived(r as ReceivedRecord));
    this.listen('receivedRemoved', (id) => this.queueReceivedRemoved(id as string));

    const options: IClientOptions = {
      protocolVersion: 5,
      // §5: a persistent session, so requests published while we are away wait for us.
      clean: false,
      clientId: config.clientId,
      properties: { sessionExpiryInterval: this.opts.sessionExpiryS ?? 7 * 24 * 3600 },
      keepalive: 30,
      connectTimeout: 10_000,
      reconnectPeriod: this.reconnectDelay,
      reconnectOnConnackError: true,
      // We subscribe on every connect ourselves (a resumed session may lack a subscription whose
      // SUBACK never came), so mqtt.js need not.
      resubscribe: false,
      will: { topic: topics.availability, payload: Buffer.from(AVAILABILITY_OFFLINE), qos: 1, retain: true },
      // §5: PUBACK only once the request is in the outbox (or answered as rejected).
      customHandleAcks: (topic, message, packet, done) => this.onAckable(topic, message, packet as IPublishPacket, done),
      ...secrets,
    };
    this.log.info(
      { url: redactUrl(config.url), clientId: config.clientId, sendTopic: topics.sendSubscription, tls: secrets.ca !== undefined || secrets.cert !== undefined },
      'connecting to the MQTT broker',
    );

    let onConnected: (() => void) | undefined;
    let onSubscribeFailed: ((err: Error) => void) | undefined;
    const firstConnect = new Promise<void>((resolve, reject) => {
      onConnected = resolve;
      onSubscribeFailed = reject;
      this.once('connected', onConnected);
      this.once('subscribeFailed', onSubscribeFailed);
    });
    const client = connect(config.url, options);
    this.client = client;
    // A missing 'error' listener would crash the daemon on any socket error.
    client.on('error', (err) => this.log.warn({ err: { message: err.message, code: (err as { code?: unknown }).code } }, 'MQTT error'));
    client.on('connect', (connack) => this.onConnect(client, connack));
    client.on('reconnect', () => {
      // Backoff on mqtt.js's own reconnect timer: the next attempt waits twice as long.
      this.reconnectDelay = Math.min(this.reconnectDelay * 2, this.opts.reconnectMaxMs ?? 60_000);
      client.options.reconnectPeriod = this.reconnectDelay;
      this.log.debug({ nextDelayMs: this.reconnectDelay }, 'reconnecting to the MQTT broker');
    });
    client.on('close', () => {
      this.ha?.onDisconnected();
      if (this.everConnected) this.emit('disconnected');
    });
    client.on('offline', () => this.log.warn('MQTT broker unreachable; requests wait in the broker session'));
    // QoS 1/2 requests come through customHandleAcks; QoS 0 ones (no ack to give) only here.
    client.on('message', (topic, message, packet) => {
      if (packet.qos !== 0) return;
      // Nothing to redeliver at QoS 0: a request the outbox could not take is only logged.
      const handled = this.handleRequest(topic, message, packet).catch((err: unknown) =>
        this.log.error({ err: errorText(err) }, 'QoS 0 request could not be queued and is lost'),
      );
      this.track(handled);
    });

    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.opts.connectTimeoutMs ?? 10_000);
    });
    try {
      const outcome = await Promise.race([firstConnect, timeout]);
      if (outcome === 'timeout') {
        this.log.warn({ url: redactUrl(config.url) }, 'MQTT broker not reachable yet; still trying in the background');
      }
    } catch (err) {
      await this.stop();
      throw err;
    } finally {
      clearTimeout(timer);
      if (onConnected) this.off('connected', onConnected);
      if (onSubscribeFailed) this.off('subscribeFailed', onSubscribeFailed);
    }
  }

  /** Finishes the requests in hand, publishes `offline`, and disconnects cleanly. */
  async stop(): Promise<void> {
    const stopTimeoutMs = this.opts.stopTimeoutMs ?? 5000;
    await withTimeout(Promise.allSettled([...this.inFlight]), stopTimeoutMs);
    for (const [event, fn] of this.ctxListeners) this.opts.ctx.off(event, fn);
    this.ctxListeners.length = 0;
    this.ha?.stop();
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    if (client.connected && this.topics) {
      await withTimeout(
        client.publishAsync(this.topics.availability, AVAILABILITY_OFFLINE, { qos: 1, retain: true }).then(
          () => undefined,
          () => undefined,
        ),
        stopTimeoutMs,
      );
    }
    const ended = await withTimeout(client.endAsync(false).then(() => true, () => true), stopTimeoutMs);
    if (ended !== true) await client.endAsync(true).catch(() => undefined);
  }

  // ---- connection ----

  private onConnect(client: MqttClient, connack: IConnackPacket): void {
    const topics = this.topics!;
    this.reconnectDelay = this.opts.reconnectMinMs ?? 1000;
    client.options.reconnectPeriod = this.reconnectDelay;
    this.log.info({ sessionPresent: connack.sessionPresent }, 'connected to the MQTT broker');
    this.publish(topics.availability, AVAILABILITY_ONLINE, true);
    this.publishStatus(true);
    // The broker may have lost its retained messages (or we never published them): put every
    // final status back, so that a late subscriber still learns each outcome.
    if (!this.everConnected || !connack.sessionPresent) {
      for (const record of this.opts.ctx.list()) if (isFinal(record.status)) this.publishRecord(record, { force: true });
      for (const record of this.opts.ctx.listReceived()) if (isFinalReceived(record)) this.queueReceived(record);
    }
    this.everConnected = true;
    // rh 2: never take a retained request at subscribe time (an id-less one would be sent again
    // at every reconnect).
    const subscriptions: Record<string, { qos: 1; rh: 2 }> = { [topics.sendSubscription]: { qos: 1, rh: 2 }, [topics.cancel]: { qos: 1, rh: 2 } };
    // HA's birth and the notify entity's commands: never a retained one (a stale command is not sent).
    for (const t of this.ha?.subscriptions() ?? []) subscriptions[t] = { qos: 1, rh: 2 };
    client
      .subscribeAsync(subscriptions)
      .then((granted) => {
        const refused = granted.filter((g) => g.qos !== 1 && g.qos !== 0 && g.qos !== 2);
        if (refused.length > 0) {
          const err = new MqttStartError(
            `the MQTT broker refused the subscriptions ${refused.map((g) => g.topic).join(', ')}: allow them for this client in the broker's ACL`,
          );
          this.log.error({ refused: refused.map((g) => g.topic) }, 'subscription refused; check the broker ACL');
          this.emit('subscribeFailed', err);
          return;
        }
        this.log.debug({ topics: granted.map((g) => g.topic) }, 'subscribed');
        this.ha?.onConnected();
        this.emit('connected');
      })
      .catch((err: unknown) => this.log.warn({ err: errorText(err) }, 'subscribe did not complete; retried on reconnect'));
  }

  // ---- requests ----

  /**
   * mqtt.js customHandleAcks: the PUBACK goes out when `done` is called, and mqtt.js handles no
   * other packet of this connection until then. `done(0)` after the outbox holds the request or a
   * rejection was published (a bad payload is answered once, not redelivered forever).
   */
  private onAckable(topic: string, message: Buffer, packet: IPublishPacket, done: (error: Error | number, code?: number) => void): void {
    this.track(
      this.handleRequest(topic, message, packet).then(
        () => done(0),
        (err) => this.onRetryLater(err),
      ),
    );
  }

  /**
   * The outbox failed on its own account (not a RequestError): we do not ack, and drop the
   * connection; the broker hands the request to us again when mqtt.js reconnects (backing off).
   */
  private onRetryLater(err: unknown): void {
    this.log.error({ err: errorText(err) }, 'request could not be queued; leaving it with the broker to be redelivered');
    this.client?.stream.destroy();
  }

  private track(p: Promise<void>): void {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private async handleRequest(topic: string, payload: Buffer, packet: IPublishPacket): Promise<void> {
    const ha = this.ha?.owns(topic) ? this.ha : undefined;
    const kind = ha ? undefined : this.topics!.classify(topic);
    const route = this.responseRoute(packet);
    try {
      if (ha) {
        // §13: a notify command becomes a send request and takes the send path, acks and all.
        const request = ha.handle(topic, payload, { retained: packet.retain, redelivered: packet.dup });
        if (request) await this.handleSend(request, route);
      } else if (kind === 'send') await this.handleSend(payload, route);
      else if (kind === 'cancel') await this.handleCancel(payload, route);
      else this.log.warn({ topic }, 'message on a topic we do not serve');
    } catch (err) {
      if (err instanceof RetryLater) throw err;
      // Our own bug: answer rather than crash or loop (the daemon never crashes on a payload).
      this.log.error({ err: errorText(err), topic }, 'request handling failed');
      this.rejectRequest(undefined, new RequestError('InvalidRequest', 'the request could not be handled'), payload, route);
    }
  }

  private async handleSend(payload: Buffer, route: ResponseRoute | undefined): Promise<void> {
    const ctx = this.opts.ctx;
    const parsed = parseSendPayload(payload);
    // §5: a known id is not sent again; its current status is re-published, whatever else the
    // request carries (it is most likely the same request delivered twice).
    const known = parsed.id !== undefined ? ctx.get(parsed.id) : undefined;
    if (known) {
      this.log.info({ id: known.id, status: known.status }, 'send request for a known id: re-publishing its status');
      this.publishRecord(known, { force: true });
      this.replyRecord(route, known);
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
    this.log.info({ id: record.id, created }, created ? 'send request queued' : 'send request for a known id');
    // 'added' normally published it already; whichever comes first publishes (retained, see
    // onRecord), the other is deduplicated.
    this.publishRecord(ctx.get(record.id) ?? record, { force: !created, retainQueued: created });
    this.replyRecord(route, record);
    const current = ctx.get(record.id);
    if (current && fingerprint(current) !== fingerprint(record)) this.replyRecord(route, current);
  }

  private async handleCancel(payload: Buffer, route: ResponseRoute | undefined): Promise<void> {
    const ctx = this.opts.ctx;
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
      this.log.info({ id, error: err.errorName }, 'cancel refused');
      const body = current ? cancelRefusedPayload(current, err, this.clock()) : rejectedPayload(id, err, this.clock());
      this.publish(this.topics!.message(id)!, JSON.stringify(body), false);
      this.reply(route, JSON.stringify(body));
      return;
    }
    this.log.info({ id }, 'cancelled');
    this.publishRecord(record, {});
    this.replyRecord(route, record);
  }

  /** §5: `rejected` on `<base>/message/<id>`, or on `<base>/error` without a usable id. */
  private rejectRequest(id: string | undefined, error: RequestError, payload: Buffer, route: ResponseRoute | undefined): void {
    const topics = this.topics!;
    this.log.info({ id, error: error.errorName, reason: error.message }, 'request rejected');
    const messageTopic = id !== undefined ? topics.message(id) : undefined;
    // Not retained: the daemon keeps nothing for a refused request, so nothing would ever clear it.
    const body =
      messageTopic !== undefined && id !== undefined
        ? JSON.stringify(rejectedPayload(id, error, this.clock()))
        : JSON.stringify(errorTopicPayload(error, payload));
    this.publish(messageTopic ?? topics.error, body, false);
    this.reply(route, body);
  }

  private responseRoute(packet: IPublishPacket): ResponseRoute | undefined {
    const props = packet.properties;
    const topic = props?.responseTopic;
    if (topic === undefined) return undefined;
    if (!isPublishableTopic(topic)) {
      this.log.warn({ responseTopic: topic.slice(0, 200) }, 'ignoring an unusable responseTopic');
      return undefined;
    }
    const correlationData = props?.correlationData;
    return correlationData !== undefined ? { topic, correlationData: Buffer.from(correlationData) } : { topic };
  }

  // ---- outbox events → topics ----

  private listen(event: string, fn: (...args: unknown[]) => void): void {
    const guarded = (...args: unknown[]): void => {
      try {
        fn(...args);
      } catch (err) {
        this.log.error({ err: errorText(err), event }, 'publishing an outbox event failed');
      }
    };
    this.opts.ctx.on(event, guarded);
    this.ctxListeners.push([event, guarded]);
  }

  private onRecord(record: MessageRecord, added: boolean): void {
    this.tally.observe(record);
    this.publishRecord(record, { retainQueued: added });
    this.publishStatus(false);
  }

  private onRemoved(id: string): void {
    const topic = this.topics!.message(id);
    // The outbox forgot the message (retention): clear its retained status, so that the id can
    // be used again without a stale outcome and retained messages do not pile up on the broker.
    if (topic !== undefined) this.publish(topic, '', true);
    this.published.delete(id);
    this.routes.delete(id);
    this.tally.forget(id);
    this.publishStatus(false);
  }

  /**
   * `<base>/message/<id>` (§5), once per change. Retained: every final status, and the first
   * `queued` of a newly created message — it replaces a retained final of an earlier message with
   * the same id, which would otherwise be what a fresh subscriber sees until this one ends.
   */
  private publishRecord(record: MessageRecord, opts: { force?: boolean; retainQueued?: boolean }): void {
    const topic = this.topics!.message(record.id);
    if (topic === undefined) {
      this.log.debug({ id: record.id }, 'message id cannot be an MQTT topic level; status not published');
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
  private queueReceived(record: ReceivedRecord): void {
    this.receivedChain = this.receivedChain.then(() =>
      this.publishReceived(record).catch((err: unknown) => this.log.warn({ id: record.id, err: errorText(err) }, 'received message not published')),
    );
    this.inFlight.add(this.receivedChain);
    const done = this.receivedChain;
    void done.finally(() => this.inFlight.delete(done));
  }

  private queueReceivedRemoved(id: string): void {
    this.receivedChain = this.receivedChain.then(() => {
      const topic = this.topics!.received(id);
      if (topic !== undefined) this.publish(topic, '', true);
    });
  }

  private async publishReceived(record: ReceivedRecord): Promise<void> {
    const topic = this.topics!.received(record.id);
    if (topic === undefined) return;
    const limit = this.opts.config.inlineMaxBytes ?? 262_144;
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
  private replyRecord(route: ResponseRoute | undefined, record: MessageRecord): void {
    if (!route) return;
    this.reply(route, JSON.stringify(messagePayload(record)));
    if (isFinal(record.status)) return;
    const list = this.routes.get(record.id) ?? [];
    const same = list.some((r) => r.topic === route.topic && bufEq(r.correlationData, route.correlationData));
    if (!same && list.length < MAX_ROUTES_PER_ID) list.push(route);
    this.routes.set(record.id, list);
  }

  private reply(route: ResponseRoute | undefined, body: string): void {
    if (route) this.publishTo(route, body);
  }

  private publishTo(route: ResponseRoute, body: string): void {
    const properties = route.correlationData !== undefined ? { correlationData: route.correlationData } : undefined;
    this.publish(route.topic, body, false, properties);
  }

  /** `<base>/status` (retained), when it changed or on connect. */
  private publishStatus(force: boolean): void {
    const { ctx } = this.opts;
    const { sentTotal, failedTotal, lastError } = this.tally;
    const extras = { sentTotal, failedTotal, lastError, identity: ctx.modemIdentity() };
    const body = JSON.stringify(statusPayload(ctx.modemStatus(), ctx.queueLength(), ctx.carrier(), extras));
    if (!force && body === this.lastStatus) return;
    this.lastStatus = body;
    this.publish(this.topics!.status, body, true);
  }

  /**
   * Every publish is QoS 1 and goes through here. Not awaited: mqtt.js handles no PUBACK while a
   * request is in hand, and it queues QoS 1 publishes while the broker is away.
   */
  private publish(topic: string, body: string, retain: boolean, properties?: IClientPublishOptions['properties']): void {
    const client = this.client;
    if (!client) return;
    if (!isPublishableTopic(topic)) {
      this.log.error({ topic: topic.slice(0, 200) }, 'refusing to publish to an unsafe topic');
      return;
    }
    const options: IClientPublishOptions = properties ? { qos: 1, retain, properties } : { qos: 1, retain };
    client.publish(topic, body, options, (err) => {
      if (err) this.log.debug({ topic, err: err.message }, 'publish not completed');
    });
  }
}

/** received, expired and failed: what stays retained (a failed one may still be retrieved again). */
function isFinalReceived(r: ReceivedRecord): boolean {
  return r.status === 'received' || r.status === 'expired' || r.status === 'failed';
}

/**
 * What a subscriber sees of one state of a message: its payload without `updated`. The outbox
 * also announces changes that show nowhere in the payload (the RAM file journal, the
 * `sendAccepted` flag, `progress` outside `sending`), each with a new `updated`: those must not
 * publish the same status again.
 */
function fingerprint(r: MessageRecord): string {
  const { updated: _updated, ...shown } = messagePayload(r);
  return JSON.stringify(shown);
}

function bufEq(a: Buffer | undefined, b: Buffer | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.equals(b);
}

interface Secrets {
  username?: string;
  password?: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** Reads the files named by mqtt.passwordFile, .ca, .cert, .key; never puts a secret in an error. */
async function readSecrets(config: MqttConfig): Promise<Secrets> {
  const read = async (key: string, path: string): Promise<Buffer> => {
    try {
      return await readFile(path);
    } catch (err) {
      throw new MqttStartError(`cannot read mqtt.${key} ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
    }
  };
  const out: Secrets = {};
  if (config.username !== undefined && config.username !== '') out.username = config.username;
  if (config.passwordFile !== undefined && config.passwordFile !== '') {
    out.password = (await read('passwordFile', config.passwordFile)).toString('utf8').replace(/\r?\n$/, '');
  }
  if (config.ca) out.ca = await read('ca', config.ca);
  if (config.cert) out.cert = await read('cert', config.cert);
  if (config.key) out.key = await read('key', config.key);
  return out;
}

/** The broker URL without a password that may be embedded in it. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = 'redacted';
    return u.toString();
  } catch {
    return '[unparsable url]';
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}
