// Home Assistant over the MQTT door (DESIGN.md §13): one device-based discovery message for the
// gateway, events for delivery reports and received messages, and a notify entity whose text is
// sent as an MMS through the same path as `<base>/send`.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { DELIVERY_STATES, type DeliveryReportEvent, type ReceivedRecord, type ReceivedState } from '../../core/inbound.js';
import type { CarrierSource } from '../../core/carrier.js';
import type { MessageRecord } from '../../core/message.js';
import { MODEM_STATES, type ModemIdentity, type Registration } from '../../core/status.js';
import { ContextListeners } from '../listeners.js';
import type { FrontDoorContext } from '../types.js';
import { isPublishableTopic, topicMatches, type Topics } from './topics.js';
import { errorText } from '../../core/errors.js';

/** The `homeAssistant.*` configuration keys (DESIGN.md §3). */
export interface HomeAssistantConfig {
  enabled: boolean;
  /** HA's discovery prefix; its birth message comes on `<prefix>/status`. */
  prefix: string;
  /** Recipients of the notify entity; none: no notify entity. */
  notifyTo: string[];
}

export interface HomeAssistantOptions {
  ctx: FrontDoorContext;
  config: HomeAssistantConfig;
  topics: Topics;
  logger: Logger;
  /** The MQTT door's publish (QoS 1, topic checked). */
  publish: (topic: string, body: string, retain: boolean) => void;
  /** Subscribes (QoS 1) taking what the broker retains, without our own publishes echoed back. */
  subscribe: (filter: string) => Promise<void>;
  /** Unix ms, for the notify entity's ids. */
  clock?: () => number;
}

/** HA's birth and will payloads (its MQTT options' defaults). */
const HA_ONLINE = 'online';

/**
 * The notify entity (HA's `notify.send_message`): the same text again within this window, while
 * the earlier message is not `failed` or `cancelled`, is the same message. A QoS 1 redelivery (mmsd
 * queued the message and stopped before the broker had its PUBACK; the broker hands the command
 * over again once mmsd is back) and a retried command arrive within it.
 */
export const NOTIFY_REPEAT_WINDOW_MS = 10 * 60_000;

/** Ids of notify messages: `ha-<12 hex of the text's SHA-256>-<unix ms it arrived>`. */
const NOTIFY_ID = /^ha-([0-9a-f]{12})-([0-9]{1,15})$/;

/** A message in one of these states was not sent and may be asked for again. */
const NOT_SENT: ReadonlySet<string> = new Set(['failed', 'cancelled']);

/** Every Registration, for the enum sensor's options (the Record makes the list complete). */
const REGISTRATIONS = Object.keys({
  home: 1,
  roaming: 1,
  searching: 1,
  denied: 1,
  unknown: 1,
  'not-registered': 1,
} satisfies Record<Registration, 1>);

const CARRIER_SOURCES = Object.keys({
  config: 1,
  database: 1,
  ambiguous: 1,
  'not-found': 1,
  pending: 1,
} satisfies Record<CarrierSource, 1>);

/** A received message is announced once, when it reaches one of these (DESIGN.md §12). */
const RECEIVED_EVENT_TYPES = ['received', 'failed', 'expired'] as const satisfies readonly ReceivedState[];

/** What a delivery report can say: every delivery state but `pending` (X-Mms-Status). */
const DELIVERY_EVENT_TYPES = DELIVERY_STATES.filter((s) => s !== 'pending');

/** An HA template that gives `None` (HA: unknown) when the field is not of the type. */
const orNone = (field: string, test: 'number' | 'string'): string =>
  `{{ value_json.${field} if value_json.${field} is ${test} else 'None' }}`;

/** One component of the discovery message (abbreviated keys, HA's table). */
type Component = Record<string, unknown>;

/**
 * Events: none. start() listens to the context; the MQTT door calls subscriptions() and
 * onConnected() on every connection and hands it the messages on its topics (handle()).
 */
export class HomeAssistant {
  /** `<prefix>/status`: HA's birth (`online`) and will. */
  readonly birthTopic: string;
  /** `<base>/notify`: the notify entity's command topic. */
  readonly notifyTopic: string;
  readonly deliveryTopic: string;
  readonly receivedTopic: string;
  private readonly log: Logger;
  private readonly listeners: ContextListeners;
  private readonly clock: () => number;
  /** Received messages already announced (forgotten with the message). */
  private readonly announced = new Set<string>();
  /** The discovery topic our subscription watches, once the IMEI is known. */
  private watched: string | undefined;
  private connected = false;

  /** Throws an Error naming the key when the topics cannot work (the door turns it into MqttStartError). */
  constructor(private readonly opts: HomeAssistantOptions) {
    const { config, topics } = opts;
    const base = topics.status.slice(0, -'/status'.length);
    this.birthTopic = `${config.prefix}/status`;
    this.notifyTopic = `${base}/notify`;
    this.deliveryTopic = `${base}/event/delivery`;
    this.receivedTopic = `${base}/event/received`;
    this.log = opts.logger.child({ part: 'homeassistant' });
    this.listeners = new ContextListeners(opts.ctx, (err, event) => this.log.error({ err: errorText(err), event }, 'Home Assistant publish failed'));
    this.clock = opts.clock ?? Date.now;
    if (!isPublishableTopic(this.birthTopic) || config.prefix.endsWith('/')) {
      throw new Error(`homeAssistant.prefix ${JSON.stringify(config.prefix)} is not a usable topic (no '+', '#', leading '$' or trailing '/')`);
    }
    if (config.enabled && config.notifyTo.length > 0 && topicMatches(topics.sendFilter, this.notifyTopic)) {
      throw new Error(`mqtt.sendTopic ${JSON.stringify(topics.sendSubscription)} must not cover ${this.notifyTopic} (the notify entity's commands)`);
    }
  }

  get enabled(): boolean {
    return this.opts.config.enabled;
  }

  /** `<prefix>/device/mmsd_<imei>/config`, or undefined while the IMEI is unknown. */
  discoveryTopic(identity = this.opts.ctx.modemIdentity()): string | undefined {
    if (identity === undefined || !/^[0-9]{14,17}$/.test(identity.imei)) return undefined;
    return `${this.opts.config.prefix}/device/mmsd_${identity.imei}/config`;
  }

  start(): void {
    const { listeners } = this;
    // A new (or another) module: its device message, once.
    listeners.on('modemIdentity', () => {
      if (this.connected) this.sync('identity');
    });
    if (!this.enabled) return;
    listeners.on('deliveryReport', (e) => this.onDeliveryReport(e));
    listeners.on('received', (r) => this.onReceived(r));
    listeners.on('receivedRemoved', (id) => this.announced.delete(id));
  }

  stop(): void {
    this.listeners.clear();
    this.connected = false;
  }

  /** What the door subscribes to on every connect, besides its own topics. */
  subscriptions(): string[] {
    if (!this.enabled) return [];
    const subs = [this.birthTopic];
    if (this.opts.config.notifyTo.length > 0) subs.push(this.notifyTopic);
    return subs;
  }

  /** After every (re)connection, once subscribed: the discovery message, once. */
  onConnected(): void {
    this.connected = true;
    // Watched anew on every connection: a session the broker lost has lost the subscription too.
    this.watched = undefined;
    this.sync('connect');
  }

  onDisconnected(): void {
    this.connected = false;
  }

  /** True for a topic handle() serves. */
  owns(topic: string): boolean {
    return topic === this.watched || (this.enabled && (topic === this.birthTopic || (topic === this.notifyTopic && this.opts.config.notifyTo.length > 0)));
  }

  /**
   * A message on one of our topics. For a notify command: the `<base>/send` request to handle
   * (the door's own path, so acknowledged only once it is in the outbox).
   */
  handle(topic: string, payload: Buffer, how: { retained: boolean; redelivered: boolean }): Buffer | undefined {
    if (topic === this.watched) {
      if (how.retained) this.onRetainedDiscovery(payload);
      return undefined;
    }
    if (topic === this.birthTopic) {
      // A birth the broker hands us again after a reconnect (its PUBACK was lost with the old
      // connection) needs no answer: every connection publishes the discovery message anyway.
      if (payload.toString('utf8').trim() === HA_ONLINE && !how.redelivered) this.sync('birth');
      return undefined;
    }
    return this.notifyRequest(payload);
  }

  // ---- discovery ----

  /**
   * Watches our discovery topic (what the broker retains there tells what HA was told before),
   * then publishes the device message when enabled. Nothing until the IMEI is known.
   */
  private sync(why: 'connect' | 'birth' | 'identity'): void {
    const identity = this.opts.ctx.modemIdentity();
    const topic = this.discoveryTopic(identity);
    if (identity === undefined || topic === undefined) {
      this.log.debug({ why }, 'module identity (IMEI) not known yet: Home Assistant discovery waits for it');
      return;
    }
    const publish = (): void => {
      if (!this.enabled) return;
      this.opts.publish(topic, JSON.stringify(this.discoveryPayload(identity)), true);
      this.log.info({ topic, why }, 'Home Assistant discovery published');
    };
    if (this.watched === topic) {
      publish();
      return;
    }
    this.watched = topic;
    this.opts.subscribe(topic).then(publish, (err: unknown) => {
      this.log.warn({ topic, err: errorText(err) }, 'cannot watch the discovery topic; publishing anyway');
      publish();
    });
  }

  /**
   * The broker's retained copy of our discovery topic, as it was before this connection. Disabled:
   * it is cleared (HA removes the device). Enabled: components it has that ours no longer has
   * (the notify entity after notifyTo was emptied) are removed the way HA's docs say, with an
   * update holding only their platform, then the current message again.
   */
  private onRetainedDiscovery(payload: Buffer): void {
    const topic = this.watched!;
    if (payload.length === 0) return;
    if (!this.enabled) {
      this.opts.publish(topic, '', true);
      this.log.info({ topic }, 'Home Assistant is disabled: discovery message removed');
      return;
    }
    let old: Record<string, unknown>;
    try {
      old = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
    } catch {
      return;
    }
    const oldCmps = (old.cmps ?? old.components) as Record<string, Component> | undefined;
    if (typeof oldCmps !== 'object' || oldCmps === null) return;
    const identity = this.opts.ctx.modemIdentity();
    if (identity === undefined || this.discoveryTopic(identity) !== topic) return;
    const current = this.discoveryPayload(identity);
    const cmps = current.cmps as Record<string, Component>;
    const gone = Object.keys(oldCmps).filter((k) => !(k in cmps));
    if (gone.length === 0) return;
    const tombstones: Record<string, Component> = { ...cmps };
    for (const k of gone) tombstones[k] = { p: oldCmps[k]?.p ?? oldCmps[k]?.platform };
    this.opts.publish(topic, JSON.stringify({ ...current, cmps: tombstones }), false);
    this.opts.publish(topic, JSON.stringify(current), true);
    this.log.info({ topic, removed: gone }, 'Home Assistant components removed');
  }

  /** The device-based discovery message (HA `mqtt` docs, "Device discovery payload"). */
  discoveryPayload(identity: ModemIdentity): Record<string, unknown> {
    const { ctx, topics, config } = this.opts;
    const uid = `mmsd_${identity.imei}`;
    const status = topics.status;
    const sensor = (extra: Component): Component => ({ p: 'sensor', stat_t: status, ...extra });
    const diagnostic = { ent_cat: 'diagnostic' };
    const cmps: Record<string, Component> = {
      connectivity: {
        p: 'binary_sensor',
        name: 'Modem ready',
        dev_cla: 'connectivity',
        stat_t: status,
        val_tpl: "{{ 'ON' if value_json.modemState == 'ready' else 'OFF' }}",
      },
      modem_state: sensor({ name: 'Modem state', dev_cla: 'enum', ops: [...MODEM_STATES], val_tpl: '{{ value_json.modemState }}', ic: 'mdi:router-wireless' }),
      registration: sensor({ name: 'Registration', dev_cla: 'enum', ops: REGISTRATIONS, val_tpl: '{{ value_json.registration }}', ic: 'mdi:sim', ...diagnostic }),
      operator: sensor({ name: 'Operator', val_tpl: "{{ value_json.operator if value_json.operator else 'None' }}", ic: 'mdi:antenna', ...diagnostic }),
      signal: sensor({ name: 'Signal', dev_cla: 'signal_strength', stat_cla: 'measurement', unit_of_meas: 'dBm', val_tpl: orNone('signalDbm', 'number'), ...diagnostic }),
      queue: sensor({ name: 'Queue', stat_cla: 'measurement', unit_of_meas: 'messages', val_tpl: '{{ value_json.queueLength }}', ic: 'mdi:tray-full' }),
      carrier_source: sensor({
        name: 'Carrier settings',
        dev_cla: 'enum',
        ops: CARRIER_SOURCES,
        val_tpl: "{{ value_json.carrier.source if value_json.carrier is defined else 'None' }}",
        ic: 'mdi:database-cog',
        ...diagnostic,
      }),
      last_error: sensor({ name: 'Last error', val_tpl: orNone('lastError', 'string'), ic: 'mdi:alert-circle-outline', ...diagnostic }),
      sent: sensor({ name: 'Sent', stat_cla: 'total_increasing', unit_of_meas: 'messages', val_tpl: '{{ value_json.sentTotal }}', ic: 'mdi:email-arrow-right' }),
      failed: sensor({ name: 'Failed', stat_cla: 'total_increasing', unit_of_meas: 'messages', val_tpl: '{{ value_json.failedTotal }}', ic: 'mdi:email-remove' }),
      delivery: { p: 'event', name: 'Delivery report', stat_t: this.deliveryTopic, evt_typ: [...DELIVERY_EVENT_TYPES], ic: 'mdi:email-check' },
      received: { p: 'event', name: 'Received message', stat_t: this.receivedTopic, evt_typ: [...RECEIVED_EVENT_TYPES], ic: 'mdi:email-receive' },
    };
    if (config.notifyTo.length > 0) {
      cmps.notify = { p: 'notify', name: 'MMS', cmd_t: this.notifyTopic, ic: 'mdi:message-image' };
    }
    for (const [key, c] of Object.entries(cmps)) c.uniq_id = `${uid}_${key}`;
    return {
      dev: {
        ids: [uid],
        name: 'MMS gateway',
        mf: identity.manufacturer || undefined,
        mdl: identity.model || undefined,
        sw: identity.firmware || undefined,
        sn: identity.imei,
      },
      o: { name: 'mmsd', sw: ctx.version },
      avty: [{ t: topics.availability }],
      qos: 1,
      cmps,
    };
  }

  // ---- events ----

  /** `<base>/event/delivery`: one event per delivery report, matched or not (not retained). */
  private onDeliveryReport(e: DeliveryReportEvent): void {
    this.opts.publish(
      this.deliveryTopic,
      JSON.stringify({
        event_type: e.status,
        message_id: e.messageId ?? null,
        recipient: e.recipient,
        date: new Date(e.date).toISOString(),
        mmsc_message_id: e.reportMessageId,
      }),
      false,
    );
  }

  /** `<base>/event/received`: once per received message, when it is received, failed or expired. */
  private onReceived(r: ReceivedRecord): void {
    if (!(RECEIVED_EVENT_TYPES as readonly string[]).includes(r.status) || this.announced.has(r.id)) return;
    this.announced.add(r.id);
    this.opts.publish(
      this.receivedTopic,
      JSON.stringify({
        event_type: r.status,
        id: r.id,
        from: r.from,
        to: r.to,
        subject: r.subject,
        date: new Date(r.date).toISOString(),
        parts: r.parts.map((p) => p.name),
        paths: r.parts.map((p) => p.path),
        ...(r.error ? { error: r.error.name } : {}),
      }),
      false,
    );
  }

  // ---- notify ----

  /**
   * A notify command → a `<base>/send` request: the text as a text/plain part to notifyTo, with an
   * id from the text's hash and its arrival. The same text within NOTIFY_REPEAT_WINDOW_MS of a
   * message that was not failed or cancelled gets that message's id, so the door re-publishes its
   * status instead of sending it again. The outbox is the memory, so this holds across a restart:
   * a command redelivered after mmsd stopped between queuing it and acknowledging it finds it.
   * (Content and time are all a redelivered command has in common with the first one: HA's notify
   * sends only the text, and a broker's redelivery is a new publish with a new packet id.)
   */
  private notifyRequest(payload: Buffer): Buffer {
    const hash = createHash('sha256').update(payload).digest('hex').slice(0, 12);
    const now = this.clock();
    const earlier = this.opts.ctx
      .list()
      .filter((r) => sameNotify(r, hash, now))
      .sort((a, b) => b.created - a.created)[0];
    const id = earlier?.id ?? `ha-${hash}-${now}`;
    if (earlier) this.log.info({ id, status: earlier.status }, 'notify: the same text again within the window; not sent twice');
    return Buffer.from(
      JSON.stringify({
        id,
        to: this.opts.config.notifyTo,
        attachments: [{ name: 'message.txt', contentType: 'text/plain; charset=utf-8', data: payload.toString('base64') }],
      }),
    );
  }
}

function sameNotify(r: MessageRecord, hash: string, now: number): boolean {
  const m = NOTIFY_ID.exec(r.id);
  if (!m || m[1] !== hash || NOT_SENT.has(r.status)) return false;
  const at = Number(m[2]);
  return at <= now && now - at <= NOTIFY_REPEAT_WINDOW_MS;
}
