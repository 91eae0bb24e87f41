// The MQTT front door's session with the broker (DESIGN.md §5): the `mqtt.*` configuration, the
// credential files, and the mqtt.js options of one persistent MQTT 5 session.
import { readFile } from 'node:fs/promises';
import type { IClientOptions } from 'mqtt';
import { AVAILABILITY_OFFLINE } from './schema.js';

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

export interface Secrets {
  username?: string;
  password?: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** Reads the files named by mqtt.passwordFile, .ca, .cert, .key; never puts a secret in an error. */
export async function readSecrets(config: MqttConfig): Promise<Secrets> {
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

/** The mqtt.js options of the session: persistent, `offline` as the last will, acks in our hands. */
export function sessionOptions(s: {
  clientId: string;
  sessionExpiryS: number;
  reconnectPeriod: number;
  availabilityTopic: string;
  customHandleAcks: NonNullable<IClientOptions['customHandleAcks']>;
  secrets: Secrets;
}): IClientOptions {
  return {
    protocolVersion: 5,
    // §5: a persistent session, so requests published while we are away wait for us.
    clean: false,
    clientId: s.clientId,
    properties: { sessionExpiryInterval: s.sessionExpiryS },
    keepalive: 30,
    connectTimeout: 10_000,
    reconnectPeriod: s.reconnectPeriod,
    reconnectOnConnackError: true,
    // We subscribe on every connect ourselves (a resumed session may lack a subscription whose
    // SUBACK never came), so mqtt.js need not.
    resubscribe: false,
    will: { topic: s.availabilityTopic, payload: Buffer.from(AVAILABILITY_OFFLINE), qos: 1, retain: true },
    // §5: PUBACK only once the request is in the outbox (or answered as rejected).
    customHandleAcks: s.customHandleAcks,
    ...s.secrets,
  };
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

export async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
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
