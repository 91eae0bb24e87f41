// Every MQTT topic of DESIGN.md §5 is built and parsed here, and nothing is published to a topic
// that this module did not check: no `+`, `#`, control characters, or a message id holding `/`.

/** Longest message id (UTF-8 bytes) the MQTT front door accepts as a topic level. */
export const MAX_ID_BYTES = 128;

/**
 * Characters a broker may refuse in a topic name (MQTT 5 §1.5.4: U+0000, control characters,
 * non-characters) — mosquitto disconnects a client that publishes one, and a request that made us
 * do so would be redelivered forever. Lone surrogates (broken UTF-16) are refused too.
 */
const UNSAFE_TOPIC_CHARS = /[\u0000-\u001f\u007f-\u009f\ufdd0-\ufdef\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/u;

/** A topic name we may publish to: non-empty, no wildcards, no `$` system topic, safe characters. */
export function isPublishableTopic(topic: string): boolean {
  return (
    topic.length > 0 &&
    Buffer.byteLength(topic, 'utf8') <= 65535 &&
    !topic.includes('+') &&
    !topic.includes('#') &&
    !topic.startsWith('$') &&
    !UNSAFE_TOPIC_CHARS.test(topic)
  );
}

/** A message id usable as one topic level (§5 `mmsd/message/<id>`). */
export function isUsableId(id: unknown): id is string {
  return (
    typeof id === 'string' &&
    id.length > 0 &&
    Buffer.byteLength(id, 'utf8') <= MAX_ID_BYTES &&
    !id.includes('/') &&
    isPublishableTopic(id)
  );
}

/** Does `topic` (a topic name) match the subscription `filter` (which may hold `+` and `#`)? */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i += 1) {
    if (f[i] === '#') return !(i === 0 && topic.startsWith('$'));
    if (i >= t.length) return false;
    if (f[i] === '+') {
      if (i === 0 && topic.startsWith('$')) return false;
      continue;
    }
    if (f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** A valid subscription filter: `#` only as the last level, wildcards only as whole levels. */
function isValidFilter(filter: string): boolean {
  if (filter.length === 0 || UNSAFE_TOPIC_CHARS.test(filter)) return false;
  const levels = filter.split('/');
  return levels.every((level, i) => {
    if (level === '#') return i === levels.length - 1;
    if (level === '+') return true;
    return !level.includes('+') && !level.includes('#');
  });
}

/** The topics of one daemon, derived from `mqtt.baseTopic` and `mqtt.sendTopic` (§3, §5). */
export class Topics {
  readonly availability: string;
  readonly status: string;
  readonly error: string;
  readonly cancel: string;
  /** `<base>/delivery`: every delivery report (DESIGN.md §12), not retained. */
  readonly delivery: string;
  /** What we subscribe to for send requests: `<base>/send` or the configured (shared) filter. */
  readonly sendSubscription: string;
  /** The filter incoming send requests match (`$share/<group>/` removed). */
  readonly sendFilter: string;
  private readonly messagePrefix: string;
  private readonly receivedPrefix: string;

  /** Throws an Error naming the bad key when the configured topics are unusable. */
  constructor(baseTopic: string, sendTopic?: string) {
    if (!isPublishableTopic(baseTopic) || baseTopic.endsWith('/')) {
      throw new Error(
        `mqtt.baseTopic ${JSON.stringify(baseTopic)} is not a usable topic (no '+', '#', leading '$' or trailing '/')`,
      );
    }
    this.availability = `${baseTopic}/availability`;
    this.status = `${baseTopic}/status`;
    this.error = `${baseTopic}/error`;
    this.cancel = `${baseTopic}/cancel`;
    this.delivery = `${baseTopic}/delivery`;
    this.messagePrefix = `${baseTopic}/message/`;
    this.receivedPrefix = `${baseTopic}/received/`;
    this.sendSubscription = sendTopic === undefined || sendTopic === '' ? `${baseTopic}/send` : sendTopic;
    const shared = /^\$share\/([^/+#]+)\/(.+)$/.exec(this.sendSubscription);
    this.sendFilter = shared ? shared[2] : this.sendSubscription;
    if (!isValidFilter(this.sendFilter) || (this.sendSubscription.startsWith('$share/') && !shared)) {
      throw new Error(
        `mqtt.sendTopic ${JSON.stringify(this.sendSubscription)} is not a topic filter or $share/<group>/<filter>`,
      );
    }
    if (topicMatches(this.sendFilter, this.cancel)) {
      throw new Error(`mqtt.sendTopic ${JSON.stringify(this.sendSubscription)} must not cover ${this.cancel}`);
    }
  }

  /** `<base>/message/<id>`, or undefined when the id cannot be a topic level. */
  message(id: string): string | undefined {
    return isUsableId(id) ? this.messagePrefix + id : undefined;
  }

  /** `<base>/received/<id>` (DESIGN.md §12), or undefined when the id cannot be a topic level. */
  received(id: string): string | undefined {
    return isUsableId(id) ? this.receivedPrefix + id : undefined;
  }

  /** What an incoming publish is: a send request, a cancel request, or neither. */
  classify(topic: string): 'send' | 'cancel' | undefined {
    if (topic === this.cancel) return 'cancel';
    if (topicMatches(this.sendFilter, topic)) return 'send';
    return undefined;
  }
}
