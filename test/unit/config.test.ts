// loadConfig: defaults, file + environment precedence, one clear line per bad key, secrets hidden.
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, EX_CONFIG, explicitKeys, loadConfig } from '../../src/config/load.js';
import { envNameOf, leaves } from '../../src/config/schema.js';

const MMSC = { MMSD_MMS_MMSC: 'http://mms.example.net/mms' };

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mmsd-config-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(content: unknown): Promise<string> {
  const path = join(dir, 'mmsd.json');
  await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('gives the defaults of DESIGN.md §3', () => {
    const c = loadConfig({ env: MMSC });
    expect(c.modem).toEqual({
      port: '/dev/ttyUSB2',
      baudRate: 115200,
      commandTimeoutMs: 5000,
      healthIntervalS: 30,
      rebootMinIntervalS: 600,
      uploadWindow: 2,
    });
    expect(c.pdp).toEqual({ contextId: 1, apn: '', username: '', password: '', auth: 0 });
    expect(c.mms).toMatchObject({
      proxy: { host: '', port: 80 },
      charset: 'UTF8',
      validity: 6,
      priority: 3,
      deliveryReport: 0,
      readReport: 0,
      visibility: 2,
      class: 4,
      supportField: 0,
      connectTimeoutS: 125,
      sendTimeoutS: 300,
      maxMessageBytes: 307200,
    });
    expect(c.outbox).toEqual({ dir: '/var/lib/mmsd', maxAttempts: 5, resendAmbiguous: false, retentionDays: 7 });
    expect(c.attachments.allowedDirs).toEqual(['/var/lib/mmsd/incoming']);
    expect(c.dbus).toEqual({ enabled: true, bus: 'system' });
    expect(c.mqtt).toMatchObject({ enabled: false, url: 'mqtt://localhost:1883', baseTopic: 'mmsd', sendTopic: 'mmsd/send' });
    expect(c.mqtt.clientId).toBe(`mmsd-${hostname().replace(/[^A-Za-z0-9_-]/g, '_')}`);
    expect(c.log.level).toBe('info');
    expect(c.media).toEqual({ fit: true, maxWidth: 1600, maxHeight: 1600 });
    expect(c).not.toHaveProperty('mqtt.password');
  });

  it('refuses a media.maxWidth or media.maxHeight under 320 pixels (§11: fitting stops at 320)', () => {
    expect(problemsOf(() => loadConfig({ env: { ...MMSC, MMSD_MEDIA_MAX_WIDTH: '319', MMSD_MEDIA_MAX_HEIGHT: '100' } }))).toEqual([
      'media.maxWidth: must be an integer between 320 and 10000, got 319 (from MMSD_MEDIA_MAX_WIDTH)',
      'media.maxHeight: must be an integer between 320 and 10000, got 100 (from MMSD_MEDIA_MAX_HEIGHT)',
    ]);
    expect(loadConfig({ env: { ...MMSC, MMSD_MEDIA_MAX_WIDTH: '320', MMSD_MEDIA_FIT: 'false' } }).media).toEqual({ fit: false, maxWidth: 320, maxHeight: 1600 });
  });

  it('gives every key an MMSD_ environment variable named after its path', () => {
    const all = leaves();
    expect(all.length).toBeGreaterThan(40);
    for (const { key, leaf } of all) expect(leaf.env, key).toBe(envNameOf(key));
    expect(envNameOf('modem.port')).toBe('MMSD_MODEM_PORT');
    expect(envNameOf('mms.connectTimeoutS')).toBe('MMSD_MMS_CONNECT_TIMEOUT_S');
    expect(all.filter((l) => l.leaf.sensitive).map((l) => l.key)).toEqual(['pdp.password']);
  });

  it('takes the file over the defaults and the environment over the file', async () => {
    const path = await file({
      modem: { port: '/dev/mmsd-modem', baudRate: 9600 },
      pdp: { apn: 'file.apn' },
      mms: { mmsc: 'http://file/mms', proxy: { host: '10.0.0.172' } },
      mqtt: { baseTopic: 'gw/17' },
    });
    const c = loadConfig({
      file: path,
      env: { MMSD_PDP_APN: 'env.apn', MMSD_MODEM_BAUD_RATE: '921600', MMSD_MQTT_ENABLED: 'true', MMSD_DBUS_ENABLED: '0' },
    });
    expect(c.modem.port).toBe('/dev/mmsd-modem');
    expect(c.modem.baudRate).toBe(921600);
    expect(c.pdp.apn).toBe('env.apn');
    expect(c.mms.mmsc).toBe('http://file/mms');
    expect(c.mms.proxy).toEqual({ host: '10.0.0.172', port: 80 });
    expect(c.mqtt.enabled).toBe(true);
    expect(c.dbus.enabled).toBe(false);
    expect(c.mqtt.sendTopic).toBe('gw/17/send');
  });

  it('reads lists from the environment as JSON or comma-separated', () => {
    expect(loadConfig({ env: { ...MMSC, MMSD_ATTACHMENTS_ALLOWED_DIRS: '/a, /b' } }).attachments.allowedDirs).toEqual(['/a', '/b']);
    expect(loadConfig({ env: { ...MMSC, MMSD_ATTACHMENTS_ALLOWED_DIRS: '["/x,y"]' } }).attachments.allowedDirs).toEqual(['/x,y']);
    expect(loadConfig({ env: { ...MMSC, MMSD_ATTACHMENTS_ALLOWED_DIRS: '' } }).attachments.allowedDirs).toEqual([]);
  });

  it('sizes modem.uploadWindow by the port when not set: 2 on USB serial and tcp://, 1 on a UART; a set value wins', async () => {
    const window = (env: Record<string, string>): number => loadConfig({ env: { ...MMSC, ...env } }).modem.uploadWindow;
    expect(window({ MMSD_MODEM_PORT: '/dev/ttyUSB2' })).toBe(2);
    expect(window({ MMSD_MODEM_PORT: '/dev/ttyACM0' })).toBe(2);
    expect(window({ MMSD_MODEM_PORT: 'tcp://10.0.0.1:4001' })).toBe(2);
    expect(window({ MMSD_MODEM_PORT: '/dev/ttyS1' })).toBe(1);
    expect(window({ MMSD_MODEM_PORT: '/dev/ttyAMA0' })).toBe(1);
    expect(window({ MMSD_MODEM_PORT: '/dev/ttyS1', MMSD_MODEM_UPLOAD_WINDOW: '4' })).toBe(4);
    expect(window({ MMSD_MODEM_PORT: '/dev/ttyUSB2', MMSD_MODEM_UPLOAD_WINDOW: '1' })).toBe(1);
    // The udev rule's stable name is a symlink: the device behind it decides.
    const dir = await mkdtemp(join(tmpdir(), 'mmsd-window-'));
    try {
      await writeFile(join(dir, 'ttyUSB7'), '');
      await writeFile(join(dir, 'ttyS3'), '');
      await symlink(join(dir, 'ttyUSB7'), join(dir, 'usb-modem'));
      await symlink(join(dir, 'ttyS3'), join(dir, 'uart-modem'));
      expect(window({ MMSD_MODEM_PORT: join(dir, 'usb-modem') })).toBe(2);
      expect(window({ MMSD_MODEM_PORT: join(dir, 'uart-modem') })).toBe(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    for (const bad of ['0', '9']) {
      expect(problemsOf(() => window({ MMSD_MODEM_UPLOAD_WINDOW: bad }))).toEqual([
        `modem.uploadWindow: must be an integer between 1 and 8, got ${bad} (from MMSD_MODEM_UPLOAD_WINDOW)`,
      ]);
    }
  });

  it('keeps an explicit send topic, shared subscriptions included', () => {
    const c = loadConfig({ env: { ...MMSC, MMSD_MQTT_SEND_TOPIC: '$share/fleet/mmsd/send' } });
    expect(c.mqtt.sendTopic).toBe('$share/fleet/mmsd/send');
  });

  it('loads the shipped example file, which sets the port alone so that the carrier database fills in the rest', () => {
    const c = loadConfig({ file: new URL('../../config/mmsd.example.json', import.meta.url).pathname, env: {} });
    expect(c.modem.port).toBe('/dev/mmsd-modem');
    // An APN or MMSC here would win over the database (DESIGN.md §10), for every user of the file.
    expect([...explicitKeys(c)]).toEqual(['modem.port']);
    expect(c.carrier).toEqual({ auto: true, database: '/usr/share/mobile-broadband-provider-info/serviceproviders.xml', provider: '' });
  });

  it('refuses an out-of-range value with one line naming key, rule and value', () => {
    expect(problemsOf(() => loadConfig({ env: { ...MMSC, MMSD_MMS_CONNECT_TIMEOUT_S: '0' } }))).toEqual([
      'mms.connectTimeoutS: must be an integer between 1 and 125, got 0 (from MMSD_MMS_CONNECT_TIMEOUT_S)',
    ]);
  });

  it('reports every bad key, one line each', async () => {
    const path = await file({
      modem: { baudRate: 12345, commandTimeoutMs: 'slow' },
      pdp: { contextId: 17, auth: 4, apn: 'in"ternet' },
      mms: {
        mmsc: `http://${'x'.repeat(100)}`,
        proxy: { host: 'a'.repeat(51), port: 0 },
        charset: 'latin1',
        validity: 7,
        priority: -1,
        deliveryReport: 2,
        readReport: true,
        visibility: 3,
        class: 5,
        sendTimeoutS: 65536,
      },
      attachments: { allowedDirs: ['relative/dir'] },
      dbus: { bus: 'user' },
      mqtt: { url: 'http://broker', sendTopic: 'mmsd/#' },
      log: { level: 'verbose' },
    });
    const problems = problemsOf(() => loadConfig({ file: path, env: { MMSD_DBUS_ENABLED: 'maybe' } }));
    const keys = problems.map((p) => p.slice(0, p.indexOf(':')));
    expect(keys.sort()).toEqual(
      [
        'modem.baudRate',
        'modem.commandTimeoutMs',
        'pdp.contextId',
        'pdp.auth',
        'pdp.apn',
        'mms.mmsc',
        'mms.proxy.host',
        'mms.proxy.port',
        'mms.charset',
        'mms.validity',
        'mms.priority',
        'mms.deliveryReport',
        'mms.readReport',
        'mms.visibility',
        'mms.class',
        'mms.sendTimeoutS',
        'attachments.allowedDirs',
        'dbus.enabled',
        'dbus.bus',
        'mqtt.url',
        'mqtt.sendTopic',
        'log.level',
      ].sort(),
    );
    for (const p of problems) expect(p).not.toContain('\n');
    expect(problems).toContain('modem.commandTimeoutMs: must be an integer between 100 and 600000, got "slow"');
    expect(problems).toContain('mms.mmsc: must be at most 100 bytes, got "' + `http://${'x'.repeat(100)}`.slice(0, 76) + '...');
    expect(problems).toContain('mms.charset: must be one of ASCII, UTF8, UCS2, GBK, got "latin1"');
    expect(problems).toContain('dbus.enabled: must be true or false, got "maybe" (from MMSD_DBUS_ENABLED)');
    expect(problems.find((p) => p.startsWith('pdp.apn'))).toMatch(/must not contain " \(it is sent on an AT command line\)/);
  });

  it('refuses AT-unsafe characters in every string that goes on an AT line', () => {
    const cases: Record<string, string> = {
      MMSD_PDP_APN: 'internet;AT+CFUN=0',
      MMSD_PDP_USERNAME: 'user\r\nAT',
      MMSD_MMS_MMSC: 'http://mmsc/\x1a',
      MMSD_MMS_PROXY_HOST: '10.0.0.1"',
    };
    const problems = problemsOf(() => loadConfig({ env: cases }));
    expect(problems.map((p) => p.slice(0, p.indexOf(':'))).sort()).toEqual(['mms.mmsc', 'mms.proxy.host', 'pdp.apn', 'pdp.username']);
    for (const p of problems) expect(p).toMatch(/must not contain|must be a host name|must be printable ASCII/);
  });

  it('starts without an MMSC (the carrier database may have it) and with the carrier lookup on', () => {
    const c = loadConfig({ env: {} });
    expect(c.mms.mmsc).toBe('');
    expect(c.carrier).toEqual({ auto: true, database: '/usr/share/mobile-broadband-provider-info/serviceproviders.xml', provider: '' });
    expect(explicitKeys(c).size).toBe(0);
  });

  it('reads the carrier keys from the file and the environment, and refuses a relative database path', async () => {
    const path = await file({ carrier: { auto: false, provider: 'Orange (208-01)' } });
    const c = loadConfig({ file: path, env: { MMSD_CARRIER_DATABASE: '/opt/mbpi/serviceproviders.xml' } });
    expect(c.carrier).toEqual({ auto: false, database: '/opt/mbpi/serviceproviders.xml', provider: 'Orange (208-01)' });
    expect(problemsOf(() => loadConfig({ env: { MMSD_CARRIER_DATABASE: 'serviceproviders.xml' } }))).toEqual([
      'carrier.database: must be an absolute path, got "serviceproviders.xml" (from MMSD_CARRIER_DATABASE)',
    ]);
  });

  it.each(['mms.example.net/mms', 'mms.example.net', 'ftp://mms.example.net/mms', 'http://', 'http:/mms.example.net'])(
    'refuses an MMSC URL without an http:// or https:// scheme: %j',
    async (mmsc) => {
      const problem = `mms.mmsc: must be a URL starting with http:// or https://, e.g. http://mms.example.net/mms, got ${JSON.stringify(mmsc)}`;
      const path = await file({ mms: { mmsc } });
      expect(problemsOf(() => loadConfig({ file: path, env: {} }))).toEqual([problem]);
      expect(problemsOf(() => loadConfig({ env: { MMSD_MMS_MMSC: mmsc } }))).toEqual([`${problem} (from MMSD_MMS_MMSC)`]);
    },
  );

  it.each(['http://mms.example.net/mms', 'https://mms.example.net:8443/mms', 'HTTP://10.0.0.1', 'http://mmsc'])(
    'takes the MMSC URL %j',
    (mmsc) => {
      expect(loadConfig({ env: { MMSD_MMS_MMSC: mmsc } }).mms.mmsc).toBe(mmsc);
    },
  );

  it('never prints the value of a secret key', () => {
    const secret = 'hunter2;"\r';
    const problems = problemsOf(() => loadConfig({ env: { ...MMSC, MMSD_PDP_PASSWORD: secret } }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^pdp\.password: .*got \(hidden\)/);
    expect(problems.join('\n')).not.toContain('hunter2');
    let message = '';
    try {
      loadConfig({ env: { ...MMSC, MMSD_PDP_PASSWORD: secret } });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).not.toContain('hunter2');
  });

  it('refuses unknown keys and mqtt.password in the file (strict)', async () => {
    const path = await file({ modem: { prot: '/dev/ttyUSB3' }, mqtt: { password: 'x' }, extra: 1 });
    const problems = problemsOf(() => loadConfig({ file: path, env: MMSC }));
    expect(problems).toEqual([
      'modem.prot: unknown key (see docs/configuration.md for the valid ones)',
      'mqtt.password: unknown key (see docs/configuration.md for the valid ones)',
      'extra: unknown key (see docs/configuration.md for the valid ones)',
    ]);
  });

  it('refuses wrong nesting without crashing', async () => {
    const path = await file({ modem: 5, pdp: { apn: { deep: { deeper: 1 } } }, mms: { mmsc: 'http://m/mms' } });
    const problems = problemsOf(() => loadConfig({ file: path, env: {} }));
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^modem: must be an object holding port, baudRate/);
    expect(problems[1]).toMatch(/^pdp\.apn: must be a string, got \{"deep"/);
  });

  it('says which file could not be read or parsed', async () => {
    expect(problemsOf(() => loadConfig({ file: join(dir, 'missing.json'), env: MMSC }))[0]).toMatch(/missing\.json: cannot read the config file \(ENOENT\)/);
    const bad = await file('{ "modem": ');
    expect(problemsOf(() => loadConfig({ file: bad, env: MMSC }))[0]).toMatch(/mmsd\.json: not valid JSON/);
  });

  it('checks the modem port, paths and topics', () => {
    const problems = problemsOf(() =>
      loadConfig({
        env: {
          ...MMSC,
          MMSD_MODEM_PORT: 'tcp://host:70000',
          MMSD_OUTBOX_DIR: 'var/lib/mmsd',
          MMSD_MQTT_BASE_TOPIC: 'mmsd/+',
          MMSD_MQTT_CERT: '/etc/mmsd/cert.pem',
        },
      }),
    );
    expect(problems).toEqual([
      'modem.port: must have a TCP port between 1 and 65535, got "tcp://host:70000" (from MMSD_MODEM_PORT)',
      'outbox.dir: must be an absolute path, got "var/lib/mmsd" (from MMSD_OUTBOX_DIR)',
      'mqtt.baseTopic: must not contain +, # or NUL, got "mmsd/+" (from MMSD_MQTT_BASE_TOPIC)',
      'mqtt.cert: mqtt.cert and mqtt.key go together; set both or neither',
    ]);
    expect(loadConfig({ env: { ...MMSC, MMSD_MODEM_PORT: 'tcp://127.0.0.1:2000' } }).modem.port).toBe('tcp://127.0.0.1:2000');
  });

  it('takes the homeAssistant keys (DESIGN.md §13): off by default, on only with MQTT, notifyTo checked as recipients', async () => {
    expect(loadConfig({ env: MMSC }).homeAssistant).toEqual({ enabled: false, prefix: 'homeassistant', notifyTo: [] });
    const c = loadConfig({
      env: { ...MMSC, MMSD_MQTT_ENABLED: 'true', MMSD_HOME_ASSISTANT_ENABLED: 'true', MMSD_HOME_ASSISTANT_NOTIFY_TO: '+49 170 1234567,ops@example.org' },
    });
    expect(c.homeAssistant).toEqual({ enabled: true, prefix: 'homeassistant', notifyTo: ['+49 170 1234567', 'ops@example.org'] });
    expect(problemsOf(() => loadConfig({ env: { ...MMSC, MMSD_HOME_ASSISTANT_ENABLED: 'true' } }))).toEqual([
      'homeAssistant.enabled: needs mqtt.enabled (Home Assistant reaches mmsd over MQTT); set mqtt.enabled and mqtt.url too',
    ]);
    const bad = await file({
      mqtt: { enabled: true },
      homeAssistant: { enabled: true, prefix: 'ha/#', notifyTo: ['+4917012345678', 'not a number'] },
    });
    const problems = problemsOf(() => loadConfig({ file: bad, env: MMSC }));
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^homeAssistant\.prefix: must not contain \+, # or NUL/);
    expect(problems[1]).toMatch(/^homeAssistant\.notifyTo: recipient "not a number" is neither a phone number .* got \["\+4917012345678","not a number"\]$/);
    const many = await file({ homeAssistant: { notifyTo: ['+1555000001', '+1555000002', '+1555000003', '+1555000004', '+1555000005', '+1555000006', '+1555000007'] } });
    expect(problemsOf(() => loadConfig({ file: many, env: MMSC }))[0]).toMatch(/^homeAssistant\.notifyTo: must hold at most 6 recipients/);
  });

  it('exits the daemon with EX_CONFIG', () => {
    expect(EX_CONFIG).toBe(78);
  });
});

describe('explicitKeys', () => {
  it('names the keys the file or the environment set, not the defaulted ones', async () => {
    const path = await file({ pdp: { apn: 'orange.acte', auth: 0 }, mms: { proxy: { port: 80 } } });
    const c = loadConfig({ file: path, env: { ...MMSC, MMSD_PDP_USERNAME: '' } });
    // Set to the default value, or to an empty string, is still set.
    expect([...explicitKeys(c)].sort()).toEqual(['mms.mmsc', 'mms.proxy.port', 'pdp.apn', 'pdp.auth', 'pdp.username']);
    expect(explicitKeys(loadConfig({ env: MMSC }))).toEqual(new Set(['mms.mmsc']));
  });

  it('refuses a config that loadConfig did not return', () => {
    const c = loadConfig({ env: MMSC });
    expect(() => explicitKeys({ ...c })).toThrow('explicitKeys: this Config object was not returned by loadConfig');
  });
});
