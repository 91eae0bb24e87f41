// The MQTT front door (DESIGN.md §5): one persistent MQTT 5 session with the broker; takes send and
// cancel requests, acknowledges a request only once the outbox holds it, and publishes every
// message's status, the modem status and the daemon's availability. This file owns the session's
// lifecycle; requests.ts handles the requests, publisher.ts the publishing, session.ts the options.
import { connect, type IConnackPacket, type IPublishPacket, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { errorText } from '../../core/errors.js';
import { TypedEmitter } from '../../core/events.js';
import { isFinal } from '../../core/message.js';
import { ContextListeners } from '../listeners.js';
import type { FrontDoorContext, FrontDoorEvents } from '../types.js';
import { HomeAssistant, type HomeAssistantConfig } from './homeassistant.js';
import { isFinalReceived, Publisher } from './publisher.js';
import { Requests } from './requests.js';
import { AVAILABILITY_OFFLINE, AVAILABILITY_ONLINE } from './schema.js';
import { MqttStartError, readSecrets, redactUrl, sessionOptions, withTimeout, type MqttConfig } from './session.js';
import { Topics } from './topics.js';

export { MqttStartError, redactUrl, type MqttConfig } from './session.js';

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

export interface MqttServiceEvents {
  /** After every (re)connection, once the subscriptions are in place. */
  connected: [];
  /** The connection to the broker is lost. */
  disconnected: [];
  /** A subscription was refused while connecting. */
  subscribeFailed: [err: Error];
}

export class MqttService extends TypedEmitter<MqttServiceEvents> {
  private client: MqttClient | undefined;
  private topics: Topics | undefined;
  private readonly log: Logger;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly ctxListeners: ContextListeners;
  private readonly publisher: Publisher;
  private readonly requests: Requests;
  private ha: HomeAssistant | undefined;
  private everConnected = false;
  private reconnectDelay: number;

  constructor(private readonly opts: MqttServiceOptions) {
    super();
    // The daemon's root logger redacts secrets too; this keeps the part safe on any logger.
    this.log = opts.logger.child({ part: 'mqtt' }, { redact: { paths: ['password', '*.password'], censor: '[redacted]' } });
    this.reconnectDelay = opts.reconnectMinMs ?? 1000;
    this.ctxListeners = new ContextListeners(opts.ctx, (err, event) => this.log.error({ err: errorText(err), event }, 'publishing an outbox event failed'));
    const topics = (): Topics => this.topics!;
    this.publisher = new Publisher({
      ctx: opts.ctx,
      log: this.log,
      client: () => this.client,
      topics,
      inlineMaxBytes: opts.config.inlineMaxBytes ?? 262_144,
      track: (p) => this.track(p),
    });
    this.requests = new Requests({
      ctx: opts.ctx,
      log: this.log,
      clock: opts.clock ?? Date.now,
      topics,
      homeAssistant: () => this.ha,
      publisher: this.publisher,
    });
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
          publish: (topic, body, retain) => this.publisher.publish(topic, body, retain),
          // No Local: our own discovery publishes are not handed back to us.
          subscribe: async (filter) => void (await this.client?.subscribeAsync({ [filter]: { qos: 1, rh: 0, nl: true } })),
          ...(this.opts.clock ? { clock: this.opts.clock } : {}),
        });
      } catch (err) {
        throw new MqttStartError(errorText(err), { cause: err });
      }
    }
    const secrets = await readSecrets(config);

    this.listen('added', (r) => this.publisher.onRecord(r, true));
    this.listen('changed', (r) => this.publisher.onRecord(r, false));
    this.listen('removed', (id) => this.publisher.onRemoved(id));
    this.listen('modemStatus', (s) => this.publisher.onModemStatus(s));
    this.listen('carrier', () => this.publisher.publishStatus(false));
    this.listen('modemIdentity', () => this.publisher.publishStatus(false));
    this.ha?.start();
    this.listen('deliveryReport', (e) => this.publisher.onDeliveryReport(e));
    this.listen('received', (r) => this.publisher.queueReceived(r));
    this.listen('receivedRemoved', (id) => this.publisher.queueReceivedRemoved(id));

    const options = sessionOptions({
      clientId: config.clientId,
      sessionExpiryS: this.opts.sessionExpiryS ?? 7 * 24 * 3600,
      reconnectPeriod: this.reconnectDelay,
      availabilityTopic: topics.availability,
      customHandleAcks: (topic, message, packet, done) => this.onAckable(topic, message, packet as IPublishPacket, done),
      secrets,
    });
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
      const handled = this.requests.handle(topic, message, packet).catch((err: unknown) =>
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
    this.ctxListeners.clear();
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
    this.publisher.publish(topics.availability, AVAILABILITY_ONLINE, true);
    this.publisher.publishStatus(true);
    // The broker may have lost its retained messages (or we never published them): put every
    // final status back, so that a late subscriber still learns each outcome.
    if (!this.everConnected || !connack.sessionPresent) {
      for (const record of this.opts.ctx.list()) if (isFinal(record.status)) this.publisher.publishRecord(record, { force: true });
      for (const record of this.opts.ctx.listReceived()) if (isFinalReceived(record)) this.publisher.queueReceived(record);
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
      this.requests.handle(topic, message, packet).then(
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

  // ---- outbox events → topics ----

  private listen<K extends keyof FrontDoorEvents>(event: K, fn: (...args: FrontDoorEvents[K]) => void): void {
    this.ctxListeners.on(event, fn);
  }
}
