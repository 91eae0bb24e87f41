// The configuration schema (DESIGN.md §3): the single source of every key's type, default, range,
// environment variable and documentation. loadConfig, the convict formats and docs.ts all read it.
import { isAbsolute } from 'node:path';
import { RequestError } from '../core/errors.js';
import { LIMITS } from '../core/limits.js';
import { normalizeAddress } from '../core/validate.js';

/** The daemon's configuration, as loadConfig returns it. */
export interface Config {
  modem: {
    port: string;
    baudRate: number;
    commandTimeoutMs: number;
    healthIntervalS: number;
    rebootMinIntervalS: number;
    uploadWindow: number;
  };
  pdp: {
    contextId: number;
    apn: string;
    username: string;
    password: string;
    auth: number;
  };
  mms: {
    mmsc: string;
    proxy: { host: string; port: number };
    charset: 'ASCII' | 'UTF8' | 'UCS2' | 'GBK';
    validity: number;
    priority: number;
    deliveryReport: number;
    readReport: number;
    visibility: number;
    class: number;
    supportField: number;
    connectTimeoutS: number;
    sendTimeoutS: number;
    maxMessageBytes: number;
  };
  outbox: {
    dir: string;
    maxAttempts: number;
    resendAmbiguous: boolean;
    retentionDays: number;
  };
  attachments: {
    allowedDirs: string[];
  };
  dbus: {
    enabled: boolean;
    bus: 'system' | 'session';
  };
  mqtt: {
    enabled: boolean;
    url: string;
    username: string;
    passwordFile: string;
    ca: string;
    cert: string;
    key: string;
    baseTopic: string;
    clientId: string;
    sendTopic: string;
    inlineMaxBytes: number;
  };
  log: {
    level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  };
  carrier: {
    auto: boolean;
    database: string;
    provider: string;
  };
  inbound: {
    enabled: boolean;
    smsStorage: 'ME' | 'SM' | 'MT';
    deleteOtherSms: boolean;
    autoRetrieve: boolean;
    dir: string;
    maxMessageBytes: number;
    retentionDays: number;
    firstRetryS: number;
  };
  homeAssistant: {
    enabled: boolean;
    prefix: string;
    notifyTo: string[];
  };
  media: {
    fit: boolean;
    maxWidth: number;
    maxHeight: number;
  };
}

interface LeafBase {
  doc: string;
  env: string;
  sensitive?: boolean;
}

export interface IntLeaf extends LeafBase {
  format: 'mmsd-int';
  default: number;
  min: number;
  max: number;
  /** When set, only these values (e.g. standard baud rates). */
  oneOf?: readonly number[];
}

export interface BoolLeaf extends LeafBase {
  format: 'mmsd-bool';
  default: boolean;
}

export interface EnumLeaf extends LeafBase {
  format: 'mmsd-enum';
  default: string;
  values: readonly string[];
}

export interface StringLeaf extends LeafBase {
  format: 'mmsd-string';
  default: string;
  /** Empty is refused. */
  required?: boolean;
  maxBytes?: number;
  /** Goes on an AT command line: printable ASCII without `"` or `;` (DESIGN.md §6). */
  atLine?: boolean;
  /** What a valid value looks like, for errors and docs; checked by `check`. */
  shape?: string;
  /** Extra rule on a non-empty value; returns a problem or undefined. */
  check?: (value: string) => string | undefined;
}

export interface PathListLeaf extends LeafBase {
  format: 'mmsd-paths';
  default: string[];
}

/** Recipients (phone numbers or e-mail addresses), checked as a send request's `to` is. */
export interface AddressListLeaf extends LeafBase {
  format: 'mmsd-addresses';
  default: string[];
}

export type Leaf = IntLeaf | BoolLeaf | EnumLeaf | StringLeaf | PathListLeaf | AddressListLeaf;
export interface Group {
  [key: string]: Leaf | Group;
}

export function isLeaf(node: Leaf | Group): node is Leaf {
  return typeof (node as Leaf).format === 'string' && 'default' in node;
}

function int(d: number, min: number, max: number, env: string, doc: string, oneOf?: readonly number[]): IntLeaf {
  return { format: 'mmsd-int', default: d, min, max, env, doc, ...(oneOf ? { oneOf } : {}) };
}
function bool(d: boolean, env: string, doc: string): BoolLeaf {
  return { format: 'mmsd-bool', default: d, env, doc };
}
function oneOf(d: string, values: readonly string[], env: string, doc: string): EnumLeaf {
  return { format: 'mmsd-enum', default: d, values, env, doc };
}
function str(d: string, env: string, doc: string, rules: Omit<StringLeaf, 'format' | 'default' | 'env' | 'doc'> = {}): StringLeaf {
  return { format: 'mmsd-string', default: d, env, doc, ...rules };
}

const absolutePath = (v: string): string | undefined => (isAbsolute(v) ? undefined : 'must be an absolute path');

function modemPort(v: string): string | undefined {
  if (v.startsWith('/')) return /\s/.test(v) ? 'must not contain spaces' : undefined;
  const m = /^tcp:\/\/([^\s:/]+|\[[0-9A-Fa-f:.]+\]):([0-9]{1,5})$/.exec(v);
  if (m) {
    const port = Number(m[2]);
    return port >= 1 && port <= 65535 ? undefined : 'must have a TCP port between 1 and 65535';
  }
  return 'must be a device path such as /dev/ttyUSB2, or tcp://host:port';
}

function mqttUrl(v: string): string | undefined {
  return /^(mqtts?|wss?):\/\/[^\s/]+/.test(v) ? undefined : 'must be an mqtt://, mqtts://, ws:// or wss:// URL';
}

/** A topic we publish under: no wildcards, no empty level at either end, not a `$` system topic. */
function baseTopic(v: string): string | undefined {
  if (/[+#\0]/.test(v)) return 'must not contain +, # or NUL';
  if (v.startsWith('$')) return 'must not start with $ (reserved for broker topics)';
  if (v.startsWith('/') || v.endsWith('/')) return 'must not start or end with /';
  return undefined;
}

/** The topic send requests are taken from: plain, or `$share/<group>/<topic>` (DESIGN.md §5). */
function sendTopic(v: string): string | undefined {
  if (/[+#\0]/.test(v)) return 'must not contain +, # or NUL';
  if (v.startsWith('$share/')) {
    return /^\$share\/[^/]+\/[^$/].*$/.test(v) ? undefined : 'must be $share/<group>/<topic>';
  }
  return baseTopic(v);
}

function hostName(v: string): string | undefined {
  return /^[A-Za-z0-9.:-]+$/.test(v) ? undefined : 'must be a host name or IP address (letters, digits, ".", "-", ":")';
}

/** The MMSC's URL with its scheme: a module given "mms.example.net/mms" guesses, and may guess wrong. */
function mmscUrl(v: string): string | undefined {
  if (/\s/.test(v)) return 'must not contain spaces';
  return /^https?:\/\/[^/?#]+/i.test(v) ? undefined : 'must be a URL starting with http:// or https://, e.g. http://mms.example.net/mms';
}

function noSpaces(v: string): string | undefined {
  return /\s/.test(v) ? 'must not contain spaces' : undefined;
}

/** Where Debian's mobile-broadband-provider-info installs its database. */
export const DEFAULT_CARRIER_DATABASE = '/usr/share/mobile-broadband-provider-info/serviceproviders.xml';

/**
 * modem.uploadWindow when the config does not set it (issue 19): 2 where USB or TCP flow control
 * keeps the module's receive buffer from overflowing, 1 on a bare UART. A symlink such as the udev
 * rule's /dev/mmsd-modem is followed to the device it names.
 */
export function defaultUploadWindow(port: string, resolve: (path: string) => string = (p) => p): number {
  if (port.startsWith('tcp://')) return 2;
  let device = port;
  try {
    device = resolve(port);
  } catch {
    // Not there (yet): judge by the name given.
  }
  return /^tty(USB|ACM)\d*$/.test(device.split('/').pop() ?? '') ? 2 : 1;
}

/** Baud rates the Quectel modules' AT+IPR accepts (and the serial bindings know). */
export const BAUD_RATES = [4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 3000000] as const;

export const CHARSETS = ['ASCII', 'UTF8', 'UCS2', 'GBK'] as const;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Every key, in the order of DESIGN.md §3 (and of docs/configuration.md). */
export const SCHEMA = {
  modem: {
    port: str('/dev/ttyUSB2', 'MMSD_MODEM_PORT', 'Serial device of the modem\'s AT port, or tcp://host:port for a raw TCP serial server (ser2net).', {
      required: true,
      shape: 'a device path or tcp://host:port',
      check: modemPort,
    }),
    baudRate: int(115200, 4800, 3000000, 'MMSD_MODEM_BAUD_RATE', 'Serial line speed.', BAUD_RATES),
    commandTimeoutMs: int(5000, 100, 600000, 'MMSD_MODEM_COMMAND_TIMEOUT_MS', 'Default timeout of one AT command, in milliseconds; slow commands have longer ones of their own.'),
    healthIntervalS: int(30, 5, 3600, 'MMSD_MODEM_HEALTH_INTERVAL_S', 'Health poll period while idle, in seconds.'),
    rebootMinIntervalS: int(600, 60, 86400, 'MMSD_MODEM_REBOOT_MIN_INTERVAL_S', 'Recovery ladder (spec §4.2): the module is restarted with AT+CFUN=1,1 only after three failed recovery rounds at least this many seconds apart.'),
    uploadWindow: int(2, 1, 8, 'MMSD_MODEM_UPLOAD_WINDOW', 'Blocks of 1,024 bytes an upload (AT+QFUPL, ACK mode) writes before it waits for their "A"s; 1 waits for each. Not set: 2 on USB serial ports (/dev/ttyUSB*, /dev/ttyACM*, and names that point to them) and tcp://, 1 on other serial devices (a bare UART without flow control, where the module\'s receive buffer is the limit). See docs/performance.md.'),
  },
  pdp: {
    contextId: int(1, 1, 16, 'MMSD_PDP_CONTEXT_ID', 'PDP context used for MMS (AT+QICSGP, AT+QIACT, AT+QMMSCFG="contextid"), spec §2.1.'),
    apn: str('', 'MMSD_PDP_APN', 'Access point name of the MMS context. Not set: from the carrier database (docs/carriers.md); set to "" to let the network choose.', {
      maxBytes: 100,
      atLine: true,
      check: noSpaces,
    }),
    username: str('', 'MMSD_PDP_USERNAME', 'User name of the PDP context, if the operator wants one. Not set: from the carrier database.', { maxBytes: 127, atLine: true }),
    password: {
      ...str('', 'MMSD_PDP_PASSWORD', 'Password of the PDP context. Prefer the environment variable to the file. Not set: from the carrier database.', { maxBytes: 127, atLine: true }),
      sensitive: true,
    },
    auth: int(0, 0, 3, 'MMSD_PDP_AUTH', 'Authentication of the PDP context: 0 none, 1 PAP, 2 CHAP, 3 PAP or CHAP. Not set: from the carrier database.'),
  },
  mms: {
    mmsc: str('', 'MMSD_MMS_MMSC', 'URL of the operator\'s MMSC (AT+QMMSCFG="mmsc") with its scheme, e.g. http://mms.example.net/mms. Empty: taken from the carrier database (docs/carriers.md); set it to override the database.', {
      maxBytes: 100,
      atLine: true,
      shape: 'http:// or https:// URL',
      check: mmscUrl,
    }),
    proxy: {
      host: str('', 'MMSD_MMS_PROXY_HOST', 'WAP gateway (MMS proxy) address (AT+QMMSCFG="proxy"). Not set: from the carrier database; "" for none, which clears a gateway the module still holds.', {
        maxBytes: 50,
        atLine: true,
        shape: 'a host name or IP address',
        check: hostName,
      }),
      port: int(80, 1, 65535, 'MMSD_MMS_PROXY_PORT', 'WAP gateway port. Not set: the carrier database\'s, with its gateway.'),
    },
    charset: oneOf('UTF8', CHARSETS, 'MMSD_MMS_CHARSET', 'Charset for subjects and text that are not plain ASCII (spec §2.2, §3.3).'),
    validity: int(6, 0, 6, 'MMSD_MMS_VALIDITY', 'sendparam <valid>: 0 1 hour, 1 12 hours, 2 24 hours, 3 2 days, 4 1 week, 5 maximum, 6 network default.'),
    priority: int(3, 0, 3, 'MMSD_MMS_PRIORITY', 'sendparam <pri>: 0 low, 1 normal, 2 high, 3 network default.'),
    deliveryReport: int(0, 0, 1, 'MMSD_MMS_DELIVERY_REPORT', 'sendparam <sendrep>: 1 asks for a delivery report.'),
    readReport: int(0, 0, 1, 'MMSD_MMS_READ_REPORT', 'sendparam <readrep>: 1 asks for a read report.'),
    visibility: int(2, 0, 2, 'MMSD_MMS_VISIBILITY', 'sendparam <visible>: 0 hide all addresses, 1 show all (BCC included), 2 network default.'),
    class: int(4, 0, 4, 'MMSD_MMS_CLASS', 'sendparam <class>: 0 personal, 1 advertisement, 2 informational, 3 auto, 4 network default.'),
    supportField: int(0, 0, 1, 'MMSD_MMS_SUPPORT_FIELD', 'supportfield <mode>: 1 adds the x-up-calling-id header.'),
    connectTimeoutS: int(125, 1, 125, 'MMSD_MMS_CONNECT_TIMEOUT_S', 'TCP handshake timeout towards the MMSC, in seconds (AT+QMMSCFG="connecttimeout").'),
    sendTimeoutS: int(300, 1, 65535, 'MMSD_MMS_SEND_TIMEOUT_S', 'Default AT+QMMSEND=<timeout>, in seconds; a message may set its own.'),
    maxMessageBytes: int(307200, 1024, 10485760, 'MMSD_MMS_MAX_MESSAGE_BYTES', 'Total attachment bytes one message may carry; larger requests are refused (MessageTooLarge) unless making their photos smaller can make them fit (media.fit). A message the module\'s RAM drive cannot hold fails as MessageTooLarge when it is sent; mmsd warns at start when this is more than the RAM holds. Not set: the carrier\'s <mmsattachmentsize> when the database has one.'),
  },
  outbox: {
    dir: str('/var/lib/mmsd', 'MMSD_OUTBOX_DIR', 'Where the durable outbox (the spool) lives.', { required: true, shape: 'absolute path', check: absolutePath }),
    maxAttempts: int(5, 1, 100, 'MMSD_OUTBOX_MAX_ATTEMPTS', 'Send attempts before a message is failed (busy 764 does not count).'),
    resendAmbiguous: bool(
      false,
      'MMSD_OUTBOX_RESEND_AMBIGUOUS',
      'After a send result that leaves open whether the MMSC took the message (751, 767, 769, 772, 774, 775, 777, or HTTP 504): false makes the message `unknown` (never sent twice); true retries it like any failure (never left unsent, but it may arrive twice).',
    ),
    retentionDays: int(7, 0, 3650, 'MMSD_OUTBOX_RETENTION_DAYS', 'Days a finished message is kept: its metadata, and for a message that ended unknown or failed its attachment bytes too (for mmsctl resend); those of sent and cancelled messages go at once.'),
  },
  attachments: {
    allowedDirs: {
      format: 'mmsd-paths',
      default: ['/var/lib/mmsd/incoming'],
      env: 'MMSD_ATTACHMENTS_ALLOWED_DIRS',
      doc: 'The only directories a path attachment may resolve into (after symlinks). In the environment: a JSON array or a comma-separated list. Empty: path attachments are refused.',
    } satisfies PathListLeaf,
  },
  dbus: {
    enabled: bool(true, 'MMSD_DBUS_ENABLED', 'Serve org.example.Mms1 on D-Bus.'),
    bus: oneOf('system', ['system', 'session'], 'MMSD_DBUS_BUS', 'Which bus.'),
  },
  mqtt: {
    enabled: bool(false, 'MMSD_MQTT_ENABLED', 'Serve the MQTT front door.'),
    url: str('mqtt://localhost:1883', 'MMSD_MQTT_URL', 'Broker URL.', { required: true, shape: 'mqtt://, mqtts://, ws:// or wss:// URL', check: mqttUrl }),
    username: str('', 'MMSD_MQTT_USERNAME', 'Broker user name.'),
    passwordFile: str('', 'MMSD_MQTT_PASSWORD_FILE', 'File holding the broker password (the password itself is never a config key).', { shape: 'absolute path or empty', check: absolutePath }),
    ca: str('', 'MMSD_MQTT_CA', 'CA certificate file (PEM) for mqtts://.', { shape: 'absolute path or empty', check: absolutePath }),
    cert: str('', 'MMSD_MQTT_CERT', 'Client certificate file (PEM); goes with mqtt.key.', { shape: 'absolute path or empty', check: absolutePath }),
    key: str('', 'MMSD_MQTT_KEY', 'Client key file (PEM); goes with mqtt.cert.', { shape: 'absolute path or empty', check: absolutePath }),
    baseTopic: str('mmsd', 'MMSD_MQTT_BASE_TOPIC', 'Prefix of every topic mmsd publishes and subscribes to.', { required: true, shape: 'topic without wildcards', check: baseTopic }),
    clientId: str('', 'MMSD_MQTT_CLIENT_ID', 'MQTT client id; empty: mmsd-<host name>.', { maxBytes: 128, shape: 'string without spaces', check: noSpaces }),
    sendTopic: str('', 'MMSD_MQTT_SEND_TOPIC', 'Where send requests are taken from; empty: <baseTopic>/send. $share/<group>/<topic> lets a fleet share one queue.', {
      shape: 'topic without wildcards, or empty',
      check: sendTopic,
    }),
    inlineMaxBytes: int(
      262144,
      0,
      16777216,
      'MMSD_MQTT_INLINE_MAX_BYTES',
      'A received message of at most this many bytes carries its parts inside its mmsd/received/<id> payload (base64 `data`); a larger one names only their paths (DESIGN.md §12, docs/mqtt.md). 0: never inline.',
    ),
  },
  log: {
    level: oneOf('info', LOG_LEVELS, 'MMSD_LOG_LEVEL', 'pino log level.'),
  },
  carrier: {
    auto: bool(
      true,
      'MMSD_CARRIER_AUTO',
      'Look the SIM up in the carrier database (DESIGN.md §10, docs/carriers.md) and take every carrier key not set here (pdp.apn, pdp.username, pdp.password, pdp.auth, mms.mmsc, mms.proxy.*, mms.maxMessageBytes) from it. false: the config alone.',
    ),
    database: str(DEFAULT_CARRIER_DATABASE, 'MMSD_CARRIER_DATABASE', 'The mobile-broadband-provider-info file (serviceproviders.xml); read only when a lookup is needed.', {
      required: true,
      shape: 'absolute path',
      check: absolutePath,
    }),
    provider: str('', 'MMSD_CARRIER_PROVIDER', 'Picks one provider when the SIM\'s network has several in the database: the name mmsctl carrier lists, e.g. "Orange (208-01)". Empty: chosen by the SIM\'s service provider name, else none (ambiguous).', {
      maxBytes: 200,
    }),
  },
  inbound: {
    enabled: bool(
      true,
      'MMSD_INBOUND_ENABLED',
      'Read SMS from the module (PDU mode, +CMTI, AT+CMGL at start): WAP pushes carrying MMS PDUs, i.e. delivery reports (DESIGN.md §12, docs/inbound.md). false: no SMS command is sent.',
    ),
    smsStorage: oneOf('ME', ['ME', 'SM', 'MT'], 'MMSD_INBOUND_SMS_STORAGE', 'Where the module keeps SMS (AT+CPMS for reading, writing and arrivals): ME the module, SM the SIM, MT both.'),
    deleteOtherSms: bool(
      false,
      'MMSD_INBOUND_DELETE_OTHER_SMS',
      'Delete SMS that are not MMS pushes (plain text, other ports) once read. false: they stay in the module\'s storage untouched, for other programs.',
    ),
    autoRetrieve: bool(true, 'MMSD_INBOUND_AUTO_RETRIEVE', 'Fetch a received message as soon as its notification arrives. false: it stays `notified` until a client calls Retrieve() (DESIGN.md §12, docs/inbound.md).'),
    dir: str('/var/lib/mmsd/inbox', 'MMSD_INBOUND_DIR', 'Where received messages are kept: one folder per message with its parts (files 0640), and their records under records/.', {
      required: true,
      shape: 'absolute path',
      check: absolutePath,
    }),
    maxMessageBytes: int(2097152, 1024, 104857600, 'MMSD_INBOUND_MAX_MESSAGE_BYTES', 'Largest received message fetched, in bytes: one whose notification announces more is not fetched, and a body that turns out larger is not read (both end failed, MessageTooLarge).'),
    retentionDays: int(30, 0, 3650, 'MMSD_INBOUND_RETENTION_DAYS', 'Days a received, expired or failed message is kept, with its files, after its last change.'),
    firstRetryS: int(
      60,
      1,
      3600,
      'MMSD_INBOUND_FIRST_RETRY_S',
      'Seconds before a failed fetch is tried again the first time; the later waits keep the proportions of DESIGN.md §12 (60 gives 1 min, 5 min, 30 min, then hourly) until the notification expires.',
    ),
  },
  homeAssistant: {
    enabled: bool(false, 'MMSD_HOME_ASSISTANT_ENABLED', 'Announce the gateway to Home Assistant by MQTT discovery (docs/homeassistant.md): its modem as a device with sensors, delivery reports and received messages as events. Needs mqtt.enabled. false after true: the discovery message is removed.'),
    prefix: str('homeassistant', 'MMSD_HOME_ASSISTANT_PREFIX', 'Home Assistant\'s discovery prefix (its MQTT option "discovery prefix"); its birth message is awaited on <prefix>/status.', {
      required: true,
      shape: 'topic without wildcards',
      check: baseTopic,
    }),
    notifyTo: {
      format: 'mmsd-addresses',
      default: [],
      env: 'MMSD_HOME_ASSISTANT_NOTIFY_TO',
      doc: `Recipients of Home Assistant's notify entity (at most ${LIMITS.recipientsPerField}): its message is sent to them as an MMS. Empty: no notify entity. In the environment: a JSON array or a comma-separated list.`,
    } satisfies AddressListLeaf,
  },
  media: {
    fit: bool(
      true,
      'MMSD_MEDIA_FIT',
      "Make photos fit (DESIGN.md §11): a message over its size limit (the carrier's or mms.maxMessageBytes, and the module's free RAM) has its images re-encoded as JPEG before the first upload. false: such a message is refused (MessageTooLarge). A message's option fit: false turns it off for that message.",
    ),
    maxWidth: int(1600, 320, 10000, 'MMSD_MEDIA_MAX_WIDTH', 'Widest a fitted image may be, in pixels (images that already fit are not touched).'),
    maxHeight: int(1600, 320, 10000, 'MMSD_MEDIA_MAX_HEIGHT', 'Tallest a fitted image may be, in pixels.'),
  },
} satisfies Group;

/** Every leaf with its dotted key, in schema order. */
export function leaves(group: Group = SCHEMA, prefix = ''): Array<{ key: string; leaf: Leaf }> {
  const out: Array<{ key: string; leaf: Leaf }> = [];
  for (const [name, node] of Object.entries(group)) {
    const key = prefix ? `${prefix}.${name}` : name;
    if (isLeaf(node)) out.push({ key, leaf: node });
    else out.push(...leaves(node, key));
  }
  return out;
}

/** The environment variable a key gets: MMSD_ + its path in upper snake case. */
export function envNameOf(key: string): string {
  return (
    'MMSD_' +
    key
      .split('.')
      .map((part) => part.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase())
      .join('_')
  );
}

const AT_UNSAFE: ReadonlyArray<[string, string]> = [
  ['"', '"'],
  [';', ';'],
  ['\r', 'CR'],
  ['\n', 'LF'],
  ['\x1a', 'Ctrl-Z'],
];

/** Human description of what a leaf accepts, for errors and docs. */
export function describeLeaf(leaf: Leaf): string {
  switch (leaf.format) {
    case 'mmsd-int':
      if (leaf.oneOf) return `one of ${leaf.oneOf.join(', ')}`;
      return `integer ${leaf.min}–${leaf.max}`;
    case 'mmsd-bool':
      return 'boolean';
    case 'mmsd-enum':
      return leaf.values.map((v) => `\`${v}\``).join(', ');
    case 'mmsd-paths':
      return 'list of absolute paths';
    case 'mmsd-addresses':
      return `list of phone numbers or e-mail addresses, at most ${LIMITS.recipientsPerField}`;
    case 'mmsd-string': {
      const parts = [leaf.shape ?? 'string'];
      if (leaf.maxBytes !== undefined) parts.push(`≤ ${leaf.maxBytes} bytes`);
      if (leaf.atLine) parts.push('printable ASCII without `"` or `;`');
      if (leaf.required) parts.push('required');
      return parts.join(', ');
    }
  }
}

/** Checks a (coerced) value against its leaf; returns a problem without the value, or undefined. */
export function checkLeaf(leaf: Leaf, value: unknown): string | undefined {
  switch (leaf.format) {
    case 'mmsd-int': {
      if (leaf.oneOf) {
        return typeof value === 'number' && leaf.oneOf.includes(value) ? undefined : `must be one of ${leaf.oneOf.join(', ')}`;
      }
      return Number.isInteger(value) && (value as number) >= leaf.min && (value as number) <= leaf.max
        ? undefined
        : `must be an integer between ${leaf.min} and ${leaf.max}`;
    }
    case 'mmsd-bool':
      return typeof value === 'boolean' ? undefined : 'must be true or false';
    case 'mmsd-enum':
      return typeof value === 'string' && leaf.values.includes(value)
        ? undefined
        : `must be one of ${leaf.values.join(', ')}`;
    case 'mmsd-paths':
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) return 'must be a list of absolute paths';
      return value.every((v: string) => isAbsolute(v)) ? undefined : 'must contain absolute paths only';
    case 'mmsd-addresses': {
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) return 'must be a list of phone numbers or e-mail addresses';
      if (value.length > LIMITS.recipientsPerField) return `must hold at most ${LIMITS.recipientsPerField} recipients`;
      for (const v of value) {
        try {
          normalizeAddress(v);
        } catch (err) {
          if (err instanceof RequestError) return err.message;
          throw err;
        }
      }
      return undefined;
    }
    case 'mmsd-string': {
      if (typeof value !== 'string') return 'must be a string';
      if (value === '') return leaf.required ? 'must be set' : undefined;
      if (leaf.maxBytes !== undefined && Buffer.byteLength(value) > leaf.maxBytes) {
        return `must be at most ${leaf.maxBytes} bytes`;
      }
      if (leaf.atLine) {
        // DESIGN.md §6: it goes on an AT command line, inside quotes.
        const bad = AT_UNSAFE.filter(([c]) => value.includes(c)).map(([, n]) => n);
        if (bad.length > 0) return `must not contain ${bad.join(', ')} (it is sent on an AT command line)`;
        if (!/^[\x20-\x7e]*$/.test(value)) return 'must be printable ASCII (it is sent on an AT command line)';
      } else if (/[\0-\x1f\x7f]/.test(value)) {
        return 'must not contain control characters';
      }
      return leaf.check?.(value);
    }
  }
}

/** Strict coercion of a string (environment variable, or a string in the file) to the leaf's type. */
export function coerceString(leaf: Leaf, raw: string): unknown {
  switch (leaf.format) {
    case 'mmsd-int':
      return /^\s*-?[0-9]+\s*$/.test(raw) ? Number(raw) : raw;
    case 'mmsd-bool': {
      const v = raw.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(v)) return true;
      if (['false', '0', 'no', 'off'].includes(v)) return false;
      return raw;
    }
    case 'mmsd-paths':
    case 'mmsd-addresses': {
      const t = raw.trim();
      if (t.startsWith('[')) {
        try {
          return JSON.parse(t) as unknown;
        } catch {
          return raw;
        }
      }
      return t === '' ? [] : t.split(',').map((s) => s.trim());
    }
    default:
      return raw;
  }
}
