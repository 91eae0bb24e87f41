// The lookup of DESIGN.md §10 against the real serviceproviders.xml (facts checked in package
// 20230416 that have stood for years) and against written entries for the edge cases.
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_DATABASE, InvalidImsiError, loadCarrierIndex, lookupCarrier, type CarrierIndex, type CarrierLookup } from '../../src/carrier/index.js';
import { indexServiceProviders } from '../../src/carrier/parse.js';

let real: CarrierIndex;
beforeAll(async () => {
  real = await loadCarrierIndex(DEFAULT_DATABASE);
});

/** An IMSI of that MCC-MNC: the code's digits, then a subscriber number. */
function imsiOf(code: string): string {
  return `${code.replace('-', '')}123456789`.slice(0, 15);
}

function keys(r: CarrierLookup): string[] {
  return r.candidates.map((c) => c.provider);
}

describe('lookup in the real database', () => {
  it('uses the only provider of a code with an MMSC (LUXGSM, 270-01), its MMS APN', () => {
    const r = lookupCarrier(real, { imsi: imsiOf('270-01') });
    expect(r).toMatchObject({ source: 'database', mccMnc: '270-01', provider: 'LUXGSM (270-01)', apn: 'mms.pt.lu', mmsc: 'http://mmsc.pt.lu' });
    expect(r.proxy?.port).toBeGreaterThan(0);
    expect(r.candidates).toEqual([{ provider: 'LUXGSM (270-01)', apn: 'mms.pt.lu', mmsc: 'http://mmsc.pt.lu', configLine: '"carrier": {"provider": "LUXGSM (270-01)"}' }]);
    expect(r.reason).toBe('LUXGSM (270-01) is the only provider of 270-01 with an MMSC');
  });

  it('reads a three-digit MNC (310-260, not 310-26) and picks T-Mobile by the SPN, its MMSC under an internet APN', () => {
    const r = lookupCarrier(real, { imsi: '310260000000001', spn: 'T-Mobile' });
    expect(r.source).toBe('database');
    expect(r.mccMnc).toBe('310-260');
    expect(r.provider).toBe('T-Mobile (310-260)');
    expect(r.mmsc).toMatch(/^http:\/\/[^/]*t-mobile\.com\//);
    expect(keys(r)).toContain('T-Mobile (310-260)');
    expect(r.candidates.length).toBeGreaterThan(1);
    expect(r.reason).toContain('by the SPN "T-Mobile"');
  });

  it('uses the three-digit MNC for AT&T too (310-410) and one of its APNs that share an MMSC', () => {
    const r = lookupCarrier(real, { imsi: '310410987654321', spn: 'AT&T' });
    expect(r).toMatchObject({ source: 'database', mccMnc: '310-410', provider: 'AT&T (310-410)', mmsc: 'http://mmsc.mobile.att.net' });
    expect(r.proxy).toEqual({ host: 'proxy.mobile.att.net', port: 80 });
  });

  it('leaves 208-01 ambiguous without an SPN, listing every candidate with the line that picks it', () => {
    const r = lookupCarrier(real, { imsi: '208011234567890' });
    expect(r.source).toBe('ambiguous');
    expect(r.mccMnc).toBe('208-01');
    expect(r).toMatchObject({ provider: '', apn: '', mmsc: '', proxy: undefined });
    const names = keys(r);
    expect(names).toEqual(expect.arrayContaining(['Orange (208-01)', 'TEN (208-01)', 'TeleCoop (208-01)']));
    expect(names.some((k) => k.startsWith('Prixtel (208-01'))).toBe(true);
    expect(new Set(names).size).toBe(names.length);
    for (const c of r.candidates) expect(c.configLine).toBe(`"carrier": {"provider": ${JSON.stringify(c.provider)}}`);
    expect(r.reason).toMatch(/^\d+ candidates of 208-01 remain: .*; set carrier.provider to one of them$/);
  });

  it('resolves 208-01 by the SPN, ignoring case and taking whole words ("ORANGE F" is Orange)', () => {
    for (const spn of ['Orange', 'orange', 'ORANGE F']) {
      const r = lookupCarrier(real, { imsi: '208011234567890', spn });
      expect([r.source, r.provider, r.mmsc]).toEqual(['database', 'Orange (208-01)', 'http://mms.orange.fr']);
    }
    expect(lookupCarrier(real, { imsi: '208011234567890', spn: 'TeleCoop' }).provider).toBe('TeleCoop (208-01)');
  });

  it('stays ambiguous when the SPN names none of the candidates', () => {
    const r = lookupCarrier(real, { imsi: '208011234567890', spn: 'Free' });
    expect(r.source).toBe('ambiguous');
    expect(keys(r)).toEqual(keys(lookupCarrier(real, { imsi: '208011234567890' })));
  });

  it('narrows by pdp.apn after the SPN', () => {
    const r = lookupCarrier(real, { imsi: '208011234567890' }, { apn: 'ORANGE-ACTE' });
    expect([r.source, r.provider]).toEqual(['database', 'Orange (208-01)']);
    expect(r.reason).toContain('by pdp.apn "ORANGE-ACTE"');
  });

  it('lets carrier.provider pick each candidate, by its key or by a name only one has', () => {
    const ambiguous = lookupCarrier(real, { imsi: '208011234567890' });
    for (const c of ambiguous.candidates) {
      const r = lookupCarrier(real, { imsi: '208011234567890' }, { provider: c.provider });
      expect([r.source, r.provider, r.apn, r.mmsc]).toEqual(['database', c.provider, c.apn, c.mmsc]);
    }
    const byName = lookupCarrier(real, { imsi: '208011234567890', spn: 'Orange' }, { provider: 'telecoop' });
    expect(byName.provider).toBe('TeleCoop (208-01)');
    expect(byName.reason).toContain('by carrier.provider "telecoop"');
  });

  it('ignores a carrier.provider that is none of the candidates, and says so', () => {
    const r = lookupCarrier(real, { imsi: '208011234567890', spn: 'Orange' }, { provider: 'Orange (234-33)' });
    expect(r.provider).toBe('Orange (208-01)');
    expect(r.reason).toMatch(/^carrier.provider "Orange \(234-33\)" is none of the candidates of 208-01 and is ignored; /);
  });

  it('names the MCC-MNC it could not find', () => {
    const r = lookupCarrier(real, { imsi: '001019876543210' });
    expect(r).toMatchObject({ source: 'not-found', mccMnc: '001-01', provider: '', mmsc: '', candidates: [] });
    expect(r.reason).toBe(`${DEFAULT_DATABASE} knows no network 001-01 (nor 001-019)`);
  });

  it('is not-found for a network the file lists without any MMSC', () => {
    const code = [...real.knownCodes].find((c) => !real.byCode.has(c) && c.length === 6 && !real.knownCodes.has(`${c}9`));
    expect(code).toBeDefined();
    const r = lookupCarrier(real, { imsi: `${code!.replace('-', '')}9876543210` });
    expect(r).toMatchObject({ source: 'not-found', mccMnc: code });
    expect(r.reason).toBe(`no provider of ${code} has an MMSC in ${DEFAULT_DATABASE}`);
  });

  it('refuses an IMSI that is not 6–15 digits with InvalidImsiError', () => {
    for (const imsi of ['', '20801', '2080112345678901', '20801x234567890', ' 208011234567890']) {
      expect(() => lookupCarrier(real, { imsi })).toThrow(InvalidImsiError);
    }
    expect(() => lookupCarrier(real, { imsi: 'abc' })).toThrow('IMSI "abc" is not 6–15 digits');
  });
});

describe('lookup in written entries', () => {
  const provider = (name: string, ids: string[], apns: string): string =>
    `<provider><name>${name}</name><gsm>${ids.map((id) => `<network-id mcc="${id.slice(0, 3)}" mnc="${id.slice(4)}"/>`).join('')}${apns}</gsm></provider>`;
  const apn = (value: string, mmsc: string, extra = ''): string => `<apn value="${value}">${extra}<mmsc>${mmsc}</mmsc></apn>`;
  const index = indexServiceProviders(
    `<serviceproviders format="2.0"><country code="xx">
      ${provider('Two', ['999-12'], apn('two', 'http://two', '<usage type="mms"/>'))}
      ${provider('Three', ['999-123'], apn('three', 'http://three', '<usage type="mms"/><mmsattachmentsize>1048576</mmsattachmentsize>'))}
      ${provider('NoMms', ['999-125'], '<apn value="internet"><usage type="internet"/></apn>')}
      ${provider('Ranked', ['998-01'], apn('inet', 'http://inet', '<usage type="internet"/>') + apn('hipri', 'http://hipri', '<usage type="mms-internet-hipri"/>') + apn('mms', 'http://mms', '<usage type="mms"/>'))}
      ${provider('Twin', ['997-01'], apn('a', 'http://a'))}
      ${provider('Twin', ['997-01'], apn('b', 'http://b'))}
      ${provider('Auth', ['996-01'], apn('pap', 'http://p', '<username>u</username><authentication method="pap"/>'))}
      ${provider('Creds', ['996-02'], apn('x', 'http://x', '<password>p</password>'))}
      ${provider('Chap', ['996-03'], apn('x', 'http://x', '<username>u</username><password>p</password><authentication method="chap"/>'))}
      ${provider('Split', ['995-01'], apn('one', 'http://same', '<usage type="mms"/>') + apn('two', 'http://same', '<usage type="mms"/>') + apn('other', 'http://other', '<usage type="mms"/>'))}
    </country></serviceproviders>`,
    'fixture.xml',
  );

  it('tries a three-digit MNC first, then two', () => {
    expect(lookupCarrier(index, { imsi: '999123000000000' })).toMatchObject({ source: 'database', mccMnc: '999-123', provider: 'Three (999-123)' });
    expect(lookupCarrier(index, { imsi: '999124000000000' })).toMatchObject({ source: 'database', mccMnc: '999-12', provider: 'Two (999-12)' });
  });

  it('does not fall back to two digits when the file knows the three-digit network', () => {
    expect(lookupCarrier(index, { imsi: '999125000000000' })).toMatchObject({ source: 'not-found', mccMnc: '999-125' });
  });

  it('takes the size limit from <mmsattachmentsize> when the entry has one', () => {
    expect(lookupCarrier(index, { imsi: '999123000000000' }).maxMessageBytes).toBe(1048576);
    expect(lookupCarrier(index, { imsi: '999124000000000' }).maxMessageBytes).toBeUndefined();
  });

  it('prefers an MMS APN to a hipri one, and that to an internet one', () => {
    expect(lookupCarrier(index, { imsi: '998010000000000' })).toMatchObject({ apn: 'mms', mmsc: 'http://mms', candidates: [{ provider: 'Ranked (998-01)' }] });
  });

  it('keys two providers of one name apart, and each key picks its own', () => {
    const r = lookupCarrier(index, { imsi: '997010000000000', spn: 'Twin' });
    expect(r.source).toBe('ambiguous');
    expect(keys(r)).toEqual(['Twin (997-01) #1', 'Twin (997-01) #2']);
    expect(lookupCarrier(index, { imsi: '997010000000000' }, { provider: 'Twin (997-01) #2' })).toMatchObject({ source: 'database', apn: 'b' });
  });

  it('maps the entry\'s authentication to pdp.auth (PAP 1, CHAP 2, credentials without a method 3, none 0)', () => {
    expect(lookupCarrier(index, { imsi: '996010000000000' })).toMatchObject({ auth: 1, username: 'u', password: '' });
    expect(lookupCarrier(index, { imsi: '996030000000000' })).toMatchObject({ auth: 2, username: 'u', password: 'p' });
    expect(lookupCarrier(index, { imsi: '996020000000000' })).toMatchObject({ auth: 3, username: '', password: 'p' });
    expect(lookupCarrier(index, { imsi: '999124000000000' })).toMatchObject({ auth: 0, username: '', password: '' });
  });

  it('treats APNs of one provider with another MMSC as separate candidates, and pdp.apn picks among them', () => {
    const r = lookupCarrier(index, { imsi: '995010000000000' });
    expect(r.source).toBe('ambiguous');
    expect(r.candidates.map((c) => [c.provider, c.mmsc])).toEqual([
      ['Split (995-01, one)', 'http://same'],
      ['Split (995-01, other)', 'http://other'],
    ]);
    expect(lookupCarrier(index, { imsi: '995010000000000' }, { apn: 'two' })).toMatchObject({ source: 'database', provider: 'Split (995-01, one)', mmsc: 'http://same' });
  });
});
