// The carrier database: reading the real serviceproviders.xml and small written fixtures into the
// index, once and lazily, and a named error for a file that is missing or not the right XML.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CarrierDatabase, CarrierDatabaseError, DEFAULT_DATABASE, loadCarrierIndex, type CarrierIndex } from '../../src/carrier/index.js';
import { indexServiceProviders } from '../../src/carrier/parse.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mmsd-carrier-db-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fileWith(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

async function rejection(p: Promise<unknown>): Promise<CarrierDatabaseError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CarrierDatabaseError);
  return err as CarrierDatabaseError;
}

describe('the real database (mobile-broadband-provider-info)', () => {
  let index: CarrierIndex;
  beforeAll(async () => {
    index = await loadCarrierIndex(DEFAULT_DATABASE);
  });

  it('indexes only providers with an MMSC, by every MCC-MNC they list', () => {
    expect(index.path).toBe(DEFAULT_DATABASE);
    // 285 providers, 443 codes and 818 known codes in package 20230416; any version has hundreds.
    expect(index.providers).toBeGreaterThan(200);
    expect(index.byCode.size).toBeGreaterThan(300);
    expect(index.knownCodes.size).toBeGreaterThan(index.byCode.size);
    for (const [code, providers] of index.byCode) {
      expect(code).toMatch(/^[0-9]{3}-[0-9]{2,3}$/);
      expect(index.knownCodes.has(code)).toBe(true);
      for (const p of providers) {
        expect(p.names.length).toBeGreaterThan(0);
        expect(p.apns.length).toBeGreaterThan(0);
        for (const a of p.apns) expect(a.mmsc).not.toBe('');
      }
    }
  });

  it('keeps provider names, not the names of their APNs or their country', () => {
    const lux = index.byCode.get('270-01') ?? [];
    expect(lux.map((p) => p.names[0])).toEqual(['LUXGSM']);
    expect(lux[0].country).toBe('lu');
    expect(lux[0].apns.map((a) => a.apn)).toEqual(['mms.pt.lu']);
  });

  it('keeps an MMSC listed under an internet APN (T-Mobile US, 310-260)', () => {
    const tmobile = (index.byCode.get('310-260') ?? []).find((p) => p.names.includes('T-Mobile'));
    expect(tmobile?.apns.length).toBeGreaterThan(0);
    expect(tmobile?.apns.every((a) => a.usage === 'internet')).toBe(true);
  });
});

describe('CarrierDatabase', () => {
  it('reads nothing until the first lookup, then loads once', async () => {
    const path = join(dir, 'later.xml');
    const db = new CarrierDatabase(path); // the file does not exist yet: nothing is read here
    await writeFile(path, '<serviceproviders format="2.0"/>');
    const loading = db.index();
    expect(db.index()).toBe(loading); // two lookups at once share one load
    const first = await loading;
    expect(first.providers).toBe(0);
    await rm(path);
    // Kept: a second call does not read the (now removed) file again.
    expect(await db.index()).toBe(first);
    expect((await db.lookup({ imsi: '208011234567890' })).source).toBe('not-found');
  });

  it('tries the file again after a failed load', async () => {
    const path = join(dir, 'installed-later.xml');
    const db = new CarrierDatabase(path);
    const err = await rejection(db.index());
    expect(err.message).toContain('ENOENT');
    await writeFile(path, '<serviceproviders format="2.0"/>');
    expect((await db.index()).path).toBe(path);
  });

  it('defaults to the Debian path', () => {
    expect(new CarrierDatabase().path).toBe('/usr/share/mobile-broadband-provider-info/serviceproviders.xml');
  });
});

describe('a database that cannot be used is a CarrierDatabaseError naming the file', () => {
  it('missing: the error says how to get it', async () => {
    const path = join(dir, 'missing.xml');
    const err = await rejection(loadCarrierIndex(path));
    expect(err.path).toBe(path);
    expect(err.message).toBe(`carrier database ${path}: cannot read it: ENOENT (install mobile-broadband-provider-info, or set carrier.database)`);
  });

  it('a directory', async () => {
    const err = await rejection(loadCarrierIndex(dir));
    expect(err.message).toMatch(/cannot read it: EISDIR/);
  });

  it('cut off in the middle', async () => {
    const path = await fileWith('truncated.xml', '<serviceproviders format="2.0">\n<country code="fr">\n<provider><name>X</name>');
    const err = await rejection(loadCarrierIndex(path));
    expect(err.message).toMatch(/^carrier database .*truncated\.xml: not well-formed XML: line \d+:\d+: /);
  });

  it('not XML at all', async () => {
    const path = await fileWith('garbage.xml', '{"serviceproviders": []}');
    expect((await rejection(loadCarrierIndex(path))).detail).toMatch(/^not well-formed XML/);
  });

  it('empty', async () => {
    const path = await fileWith('empty.xml', '');
    expect((await rejection(loadCarrierIndex(path))).detail).toMatch(/^not well-formed XML/);
  });

  it('another kind of XML document', async () => {
    const path = await fileWith('apns-conf.xml', '<?xml version="1.0"?><apns version="8"><apn carrier="X" mcc="208" mnc="01"/></apns>');
    expect((await rejection(loadCarrierIndex(path))).detail).toBe('the root element is <apns>, not <serviceproviders>');
  });

  it('mismatched tags deep inside', () => {
    const xml = '<serviceproviders format="2.0"><country code="xx"><provider><name>A</name><gsm></provider></country></serviceproviders>';
    expect(() => indexServiceProviders(xml, 'bad.xml')).toThrow(CarrierDatabaseError);
    expect(() => indexServiceProviders(xml, 'bad.xml')).toThrow(/^carrier database bad\.xml: not well-formed XML: line 1:\d+: unexpected close tag/);
  });
});

describe('indexServiceProviders on written entries', () => {
  const xml = `<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE serviceproviders SYSTEM "serviceproviders.2.dtd">
<serviceproviders format="2.0">
<country code="xx">
  <name>Testland</name>
  <provider>
    <name>Walk &amp; Talk</name>
    <name xml:lang="de">Geh &amp; Sprich</name>
    <gsm>
      <network-id mcc="999" mnc="01"/>
      <network-id mcc="999" mnc="01"/>
      <network-id mcc="999" mnc="1"/>
      <apn value="web"><usage type="internet"/></apn>
      <apn value=" mms.example ">
        <usage type="mms"/>
        <name>Walk MMS</name>
        <username>u</username>
        <password><![CDATA[p&w]]></password>
        <authentication method="chap"/>
        <mmsc>
          http://mmsc.example/mms
        </mmsc>
        <mmsproxy>10.0.0.1:8080</mmsproxy>
        <mmsattachmentsize>614400</mmsattachmentsize>
      </apn>
      <apn value="noport"><mmsc>http://m</mmsc><mmsproxy>10.0.0.2</mmsproxy><mmsattachmentsize>lots</mmsattachmentsize></apn>
    </gsm>
  </provider>
  <provider>
    <name>Data Only</name>
    <gsm><network-id mcc="999" mnc="02"/><apn value="internet"><mmsc></mmsc></apn></gsm>
  </provider>
  <provider><name>CDMA</name><cdma><sid value="1"/></cdma></provider>
</country>
</serviceproviders>`;

  it('keeps what the lookup needs, trimmed, entities and CDATA decoded', () => {
    const index = indexServiceProviders(xml, 'fixture.xml');
    expect(index.providers).toBe(1);
    expect([...index.byCode.keys()]).toEqual(['999-01']);
    const [p] = index.byCode.get('999-01') ?? [];
    expect(p).toEqual({
      names: ['Walk & Talk', 'Geh & Sprich'],
      country: 'xx',
      apns: [
        {
          apn: 'mms.example',
          usage: 'mms',
          username: 'u',
          password: 'p&w',
          auth: 'chap',
          mmsc: 'http://mmsc.example/mms',
          proxy: { host: '10.0.0.1', port: 8080 },
          maxMessageBytes: 614400,
        },
        { apn: 'noport', mmsc: 'http://m', proxy: { host: '10.0.0.2' } },
      ],
    });
  });

  it('knows codes without an MMSC, and says what it skipped', () => {
    const index = indexServiceProviders(xml, 'fixture.xml');
    expect([...index.knownCodes].sort()).toEqual(['999-01', '999-02']);
    expect(index.warnings).toEqual([
      'xx: network-id mcc="999" mnc="1" is not 3 + 2–3 digits; skipped',
      'Walk & Talk apn noport: mmsattachmentsize "lots" is not a positive number of bytes; ignored',
    ]);
  });
});
