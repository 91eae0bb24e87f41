// Precedence (DESIGN.md §10): explicit config keys win key by key over the database, the database
// over the config's defaults; carrier.auto false is the config alone. Also from a loaded config.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  carrierSettingsOf,
  DEFAULT_DATABASE,
  loadCarrierIndex,
  lookupCarrier,
  lookupNeeded,
  noMmscReason,
  resolveCarrier,
  type CarrierLookup,
  type CarrierSettings,
} from '../../src/carrier/index.js';
import { explicitKeys, loadConfig } from '../../src/config/load.js';

/** The schema's defaults for these keys. */
const DEFAULTS: CarrierSettings = { apn: '', username: '', password: '', auth: 0, mmsc: '', proxyHost: '', proxyPort: 80, maxMessageBytes: 307200 };

const FOUND: CarrierLookup = {
  source: 'database',
  mccMnc: '208-01',
  provider: 'Orange (208-01)',
  apn: 'orange-acte',
  username: 'orange',
  password: 'orange',
  auth: 3,
  mmsc: 'http://mms.orange.fr',
  proxy: { host: '192.168.10.200', port: 8080 },
  maxMessageBytes: undefined,
  candidates: [{ provider: 'Orange (208-01)', apn: 'orange-acte', mmsc: 'http://mms.orange.fr', configLine: '"carrier": {"provider": "Orange (208-01)"}' }],
  reason: 'Orange (208-01), chosen from the 5 candidates of 208-01 by the SPN "Orange"',
};

const AMBIGUOUS: CarrierLookup = {
  ...FOUND,
  source: 'ambiguous',
  provider: '',
  apn: '',
  username: '',
  password: '',
  auth: 0,
  mmsc: '',
  proxy: undefined,
  reason: '2 candidates of 208-01 remain: TEN (208-01), TeleCoop (208-01); set carrier.provider to one of them',
};

describe('resolveCarrier', () => {
  it('fills every key the config left at its default from the database', () => {
    const { settings, report } = resolveCarrier({ auto: true, config: DEFAULTS, explicit: new Set(), lookup: FOUND });
    expect(settings).toEqual({ apn: 'orange-acte', username: 'orange', password: 'orange', auth: 3, mmsc: 'http://mms.orange.fr', proxyHost: '192.168.10.200', proxyPort: 8080, maxMessageBytes: 307200 });
    expect(report).toEqual({
      source: 'database',
      provider: 'Orange (208-01)',
      mccMnc: '208-01',
      apn: 'orange-acte',
      mmsc: 'http://mms.orange.fr',
      proxy: '192.168.10.200:8080',
      maxMessageBytes: 307200,
      candidates: FOUND.candidates,
      reason: FOUND.reason,
      configKeys: [],
    });
    expect(JSON.stringify(report)).not.toContain('"orange"');
  });

  it('lets one explicit key win and takes the others from the database', () => {
    const config = { ...DEFAULTS, mmsc: 'http://mmsc.example/mms' };
    const { settings, report } = resolveCarrier({ auto: true, config, explicit: new Set(['mms.mmsc']), lookup: FOUND });
    expect(settings.mmsc).toBe('http://mmsc.example/mms');
    expect(settings.apn).toBe('orange-acte');
    expect(settings.proxyHost).toBe('192.168.10.200');
    expect(report).toMatchObject({ source: 'database', mmsc: 'http://mmsc.example/mms', configKeys: ['mms.mmsc'] });
  });

  it('keeps an explicit empty value (an APN the network chooses), since it was set', () => {
    const { settings } = resolveCarrier({ auto: true, config: DEFAULTS, explicit: new Set(['pdp.apn']), lookup: FOUND });
    expect(settings.apn).toBe('');
  });

  it('takes the entry\'s credentials only for the entry\'s APN (ignoring case), not for another APN set in the config', () => {
    const other = resolveCarrier({ auto: true, config: { ...DEFAULTS, apn: 'my.private.apn' }, explicit: new Set(['pdp.apn']), lookup: FOUND });
    expect(other.settings).toMatchObject({ apn: 'my.private.apn', username: '', password: '', auth: 0, mmsc: 'http://mms.orange.fr' });
    const same = resolveCarrier({ auto: true, config: { ...DEFAULTS, apn: 'ORANGE-ACTE' }, explicit: new Set(['pdp.apn']), lookup: FOUND });
    expect(same.settings).toMatchObject({ apn: 'ORANGE-ACTE', username: 'orange', password: 'orange', auth: 3 });
  });

  it('keeps the config\'s proxy port with a proxy host from the config', () => {
    const config = { ...DEFAULTS, proxyHost: 'proxy.example' };
    const { settings, report } = resolveCarrier({ auto: true, config, explicit: new Set(['mms.proxy.host']), lookup: FOUND });
    expect([settings.proxyHost, settings.proxyPort]).toEqual(['proxy.example', 80]);
    expect(report.proxy).toBe('proxy.example:80');
  });

  it('applies an explicit proxy port to the database\'s host', () => {
    const config = { ...DEFAULTS, proxyPort: 9201 };
    const { settings } = resolveCarrier({ auto: true, config, explicit: new Set(['mms.proxy.port']), lookup: FOUND });
    expect([settings.proxyHost, settings.proxyPort]).toEqual(['192.168.10.200', 9201]);
  });

  it('takes the config\'s port when the database gives a proxy without one, and no proxy when it gives none', () => {
    const noPort = resolveCarrier({ auto: true, config: DEFAULTS, explicit: new Set(), lookup: { ...FOUND, proxy: { host: '10.0.224.145' } } });
    expect(noPort.report.proxy).toBe('10.0.224.145:80');
    const config = { ...DEFAULTS, proxyHost: 'left.over', proxyPort: 8080 };
    const none = resolveCarrier({ auto: true, config, explicit: new Set(), lookup: { ...FOUND, proxy: undefined } });
    expect(none.settings.proxyHost).toBe('');
    expect(none.report.proxy).toBe('');
  });

  it('takes the size limit from the database when it has one, unless mms.maxMessageBytes is set', () => {
    const lookup = { ...FOUND, maxMessageBytes: 614400 };
    expect(resolveCarrier({ auto: true, config: DEFAULTS, explicit: new Set(), lookup }).settings.maxMessageBytes).toBe(614400);
    const config = { ...DEFAULTS, maxMessageBytes: 102400 };
    expect(resolveCarrier({ auto: true, config, explicit: new Set(['mms.maxMessageBytes']), lookup }).settings.maxMessageBytes).toBe(102400);
  });

  it('does not use a database value the key\'s own rule refuses, and says which (never showing a password)', () => {
    const lookup = { ...FOUND, password: 'a"b', mmsc: `http://${'m'.repeat(100)}` };
    const { settings, report } = resolveCarrier({ auto: true, config: DEFAULTS, explicit: new Set(), lookup });
    expect([settings.password, settings.mmsc, settings.apn]).toEqual(['', '', 'orange-acte']);
    expect(report.reason).toContain('the database\'s pdp.password (hidden) is not used: it must not contain " (it is sent on an AT command line); set pdp.password');
    expect(report.reason).toContain('the database\'s mms.mmsc "http://mmm');
    expect(report.reason).toContain('must be at most 100 bytes; set mms.mmsc');
    expect(report.reason).not.toContain('a"b');
  });

  it('is config when carrier.auto is false, whatever the lookup found', () => {
    const config = { ...DEFAULTS, mmsc: 'http://mine' };
    const { settings, report } = resolveCarrier({ auto: false, config, explicit: new Set(), lookup: FOUND });
    expect(settings).toEqual(config);
    expect(report).toMatchObject({ source: 'config', provider: '', mmsc: 'http://mine', candidates: [] });
  });

  it('is config when every key the database gives is set explicitly', () => {
    const all = new Set(['pdp.apn', 'pdp.username', 'pdp.password', 'pdp.auth', 'mms.mmsc', 'mms.proxy.host', 'mms.proxy.port']);
    const { settings, report } = resolveCarrier({ auto: true, config: DEFAULTS, explicit: all, lookup: FOUND });
    expect(settings).toEqual(DEFAULTS);
    expect(report.source).toBe('config');
    expect(report.configKeys).toEqual([...all]);
  });

  it('is pending until the SIM\'s identity is known', () => {
    const { settings, report } = resolveCarrier({ auto: true, config: DEFAULTS, explicit: new Set() });
    expect(settings).toEqual(DEFAULTS);
    expect(report).toMatchObject({ source: 'pending', mccMnc: '', reason: 'waiting for the SIM\'s identity' });
  });

  it('stays ambiguous with no MMSC, listing the candidates', () => {
    const { settings, report } = resolveCarrier({ auto: true, config: DEFAULTS, explicit: new Set(), lookup: AMBIGUOUS });
    expect(settings.mmsc).toBe('');
    expect(report).toMatchObject({ source: 'ambiguous', mccMnc: '208-01', candidates: AMBIGUOUS.candidates, reason: AMBIGUOUS.reason });
  });

  it('sends with the config when mms.mmsc is set and the lookup found nothing to use', () => {
    const config = { ...DEFAULTS, mmsc: 'http://mine' };
    const notFound: CarrierLookup = { ...AMBIGUOUS, source: 'not-found', candidates: [], reason: 'x knows no network 001-01 (nor 001-011)' };
    for (const lookup of [AMBIGUOUS, notFound]) {
      const { settings, report } = resolveCarrier({ auto: true, config, explicit: new Set(['mms.mmsc']), lookup });
      expect(settings).toEqual(config);
      expect(report.source).toBe('config');
      expect(report.reason).toBe(`mms.mmsc is set, so the config's settings are used (${lookup.reason})`);
    }
  });
});

describe('lookupNeeded and noMmscReason', () => {
  const EVERY = ['pdp.apn', 'pdp.username', 'pdp.password', 'pdp.auth', 'mms.mmsc', 'mms.proxy.host', 'mms.proxy.port', 'mms.maxMessageBytes'];

  it('needs the database only with carrier.auto and some carrier key left to it', () => {
    expect(lookupNeeded(true, new Set())).toBe(true);
    expect(lookupNeeded(true, new Set(EVERY.slice(1)))).toBe(true);
    expect(lookupNeeded(true, new Set(EVERY))).toBe(false);
    expect(lookupNeeded(false, new Set())).toBe(false);
  });

  it('is config, with no lookup, when every carrier key is set', () => {
    const config = { ...DEFAULTS, mmsc: 'http://mine' };
    const r = resolveCarrier({ auto: true, config, explicit: new Set(EVERY) });
    expect(r.settings).toEqual(config);
    expect(r.report).toMatchObject({ source: 'config', reason: 'every carrier key is set in the config: no lookup' });
  });

  it('says why there is no MMSC and what to set, for each way of having none', () => {
    const notFound: CarrierLookup = { ...AMBIGUOUS, source: 'not-found', mccMnc: '001-01', candidates: [], reason: '/x.xml knows no network 001-01 (nor 001-010)' };
    const reasons = [
      resolveCarrier({ auto: true, config: DEFAULTS, explicit: new Set(), lookup: notFound }),
      resolveCarrier({ auto: true, config: DEFAULTS, explicit: new Set(), lookup: AMBIGUOUS }),
      resolveCarrier({ auto: false, config: DEFAULTS, explicit: new Set() }),
      resolveCarrier({ auto: true, config: DEFAULTS, explicit: new Set(), lookup: { ...FOUND, mmsc: `http://${'m'.repeat(100)}` } }),
    ].map(noMmscReason);
    expect(reasons).toEqual([
      'no MMSC: /x.xml knows no network 001-01 (nor 001-010); set mms.mmsc',
      `no MMSC: ${AMBIGUOUS.reason}, or set mms.mmsc`,
      "no MMSC: mms.mmsc is empty (carrier.auto is false: the settings are the config's); set mms.mmsc",
      expect.stringMatching(/^no MMSC: Orange .*the database's mms.mmsc "http:\/\/m+" is not used: it must be at most 100 bytes; set mms.mmsc$/),
    ]);
    expect(noMmscReason(resolveCarrier({ auto: true, config: DEFAULTS, explicit: new Set(), lookup: FOUND }))).toBeUndefined();
  });
});

describe('from a loaded config and the real database', () => {
  it('overrides the database with the keys of the file and the environment only', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mmsd-carrier-settings-'));
    try {
      const file = join(dir, 'mmsd.json');
      await writeFile(file, JSON.stringify({ mms: { mmsc: 'http://mmsc.example/mms', proxy: { port: 8080 } } }));
      const config = loadConfig({ file, env: { MMSD_PDP_APN: 'orange.acte' } });
      const explicit = explicitKeys(config);
      const lookup = lookupCarrier(await loadCarrierIndex(DEFAULT_DATABASE), { imsi: '208011234567890', spn: 'Orange' }, { apn: config.pdp.apn });
      const { settings, report } = resolveCarrier({ auto: true, config: carrierSettingsOf(config), explicit, lookup });
      expect(report.provider).toBe('Orange (208-01)');
      expect(settings.mmsc).toBe('http://mmsc.example/mms');
      expect(settings.apn).toBe('orange.acte');
      expect(settings.proxyHost).toBe('192.168.10.200');
      expect(settings.maxMessageBytes).toBe(307200);
      expect(report.configKeys).toEqual(['pdp.apn', 'mms.mmsc', 'mms.proxy.port']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
