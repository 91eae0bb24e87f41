// Carrier settings from the SIM end to end (DESIGN.md §10): the real daemon, the sim on a pty with
// the SIM's identity, a private bus, and the real Debian serviceproviders.xml. The config holds
// no carrier key: the sim plays the operator's network (--network), so that the database's MMSC,
// a real operator's host, reaches the loopback MMSC, as a real network carries it to the real one.
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import dbus from 'dbus-next';
import { describe, expect, it } from 'vitest';
import type { CarrierProperties } from '../../src/api/dbus/client.js';
import { LOG_EVENTS } from '../../src/core/log-events.js';
import { MMSCTL_BIN, type TestbedOptions } from '../../src/harness/testbed.js';
import { countAt, finalWithin, pseudoImage, receivedWithSubject, simView, startStack, transcript, until, type Stack } from '../helpers/stack.js';

const TO = ['+15550004000'];
const LUXGSM_IMSI = '270011234567890';

async function withStack(opts: TestbedOptions, fn: (s: Stack) => Promise<void>): Promise<void> {
  const s = await startStack({ carrierFromDatabase: true, ...opts });
  try {
    await fn(s);
  } finally {
    await s.stop();
  }
}

/** Polls D-Bus until ModemState is `state`. */
async function modemState(s: Stack, state: string, ms = 20_000): Promise<void> {
  await until(async () => ((await s.client.status()).ModemState === state ? true : undefined), ms, `ModemState ${state}`, 100);
}

/** Polls the Carrier property until `pred` holds. */
function carrierWhen(s: Stack, pred: (c: CarrierProperties) => boolean, what: string, ms = 20_000): Promise<CarrierProperties> {
  return until(async () => {
    const c = await s.client.carrier();
    return pred(c) ? c : undefined;
  }, ms, what, 100);
}

interface SimSettings {
  pdp: { active: number[]; contexts: Record<string, { apn: string; username: string; password: string; auth: number }> };
  mms: { contextId: number; mmsc: string; proxyHost: string; proxyPort: number };
  identity: { imsi: string; iccid: string; spn: string };
}

async function simSettings(s: Stack): Promise<SimSettings> {
  return (await s.tb.simState()) as unknown as SimSettings;
}

/** The state the daemon logged its modem in last, with the detail. */
function lastModemStatus(s: Stack): { state?: string; detail?: string } {
  const l = (s.tb.daemon?.lines ?? []).filter((x) => x.msg === LOG_EVENTS.modemStatus).at(-1);
  return (l?.modem as { state?: string; detail?: string } | undefined) ?? {};
}

async function sendOne(s: Stack, id: string, subject: string): Promise<string> {
  return s.client.sendData({ to: TO, subject, id }, [{ name: 'photo.jpg', data: pseudoImage(4096, 11) }]);
}

/** mmsctl against the test's private bus. */
function mmsctl(s: Stack, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [MMSCTL_BIN, '--bus', 'session', ...args], { env: s.tb.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Rewrites the daemon's config file with `edit` applied, and restarts the daemon. */
async function restartWith(s: Stack, edit: (c: Record<string, Record<string, unknown>>) => void): Promise<void> {
  expect((await s.tb.daemon!.stop('SIGTERM', 10_000)).code).toBe(0);
  const config = JSON.parse(await readFile(s.tb.configFile, 'utf8')) as Record<string, Record<string, unknown>>;
  edit(config);
  await writeFile(s.tb.configFile, JSON.stringify(config));
  await s.tb.startDaemon();
}

describe('carrier settings from the SIM and the carrier database', () => {
  it('sends with nothing configured but the port: LUXGSM (270-01), its APN, credentials, MMSC and proxy', async () => {
    await withStack({ simArgs: ['--imsi', LUXGSM_IMSI] }, async (s) => {
      const written = JSON.parse(await readFile(s.tb.configFile, 'utf8')) as Record<string, unknown>;
      expect(written).not.toHaveProperty('pdp');
      expect(written).not.toHaveProperty('mms');
      await s.tb.modemReady(20_000);
      expect(await s.client.carrier()).toEqual({
        Source: 'database',
        Provider: 'LUXGSM (270-01)',
        MccMnc: '270-01',
        Apn: 'mms.pt.lu',
        Mmsc: 'http://mmsc.pt.lu',
        Proxy: '194.154.192.88:8080',
        MaxMessageBytes: 307200,
        Candidates: ['"carrier": {"provider": "LUXGSM (270-01)"}'],
        Reason: 'LUXGSM (270-01) is the only provider of 270-01 with an MMSC',
        ConfigKeys: [],
      });
      const sim = await simSettings(s);
      expect(sim.pdp.contexts['1']).toEqual({ type: 1, apn: 'mms.pt.lu', username: 'mms', password: 'mms', auth: 3 });
      expect(sim.mms).toMatchObject({ contextId: 1, mmsc: 'http://mmsc.pt.lu', proxyHost: '194.154.192.88', proxyPort: 8080 });
      expect((await transcript(s.tb)).slice(0, 20)).toEqual(expect.arrayContaining(['AT+CIMI', 'AT+QCCID', 'AT+QSPN']));

      const path = await sendOne(s, 'lux-1', 'from the database');
      expect((await finalWithin(s, path, 30_000)).Status).toBe('sent');
      expect(await receivedWithSubject(s.tb, 'from the database')).toBe(1);
      // What users see: the carrier line of mmsctl status.
      expect((await mmsctl(s, 'status')).stdout).toContain('carrier:      LUXGSM (270-01) (carrier database)');
    });
  });

  it('reads a three-digit MNC (310-260) and picks T-Mobile by the SPN: its MMSC under an internet APN, no proxy', async () => {
    await withStack({ simArgs: ['--imsi', '310260000000001', '--spn', 'T-Mobile'] }, async (s) => {
      await s.tb.modemReady(20_000);
      const c = await s.client.carrier();
      expect(c).toMatchObject({ Source: 'database', Provider: 'T-Mobile (310-260)', MccMnc: '310-260', Apn: 'fast.t-mobile.com', Proxy: '' });
      expect(c.Mmsc).toMatch(/^http:\/\/[^/]*t-mobile\.com\//);
      expect(c.Candidates.length).toBeGreaterThan(1);
      const sim = await simSettings(s);
      expect(sim.pdp.contexts['1'].apn).toBe('fast.t-mobile.com');
      expect(sim.mms).toMatchObject({ mmsc: c.Mmsc, proxyHost: '' });
      const path = await sendOne(s, 'tmo-1', 'three-digit mnc');
      expect((await finalWithin(s, path, 30_000)).Status).toBe('sent');
      expect(await receivedWithSubject(s.tb, 'three-digit mnc')).toBe(1);
    });
  });

  it('resolves 208-01 by the SPN "Orange"', async () => {
    await withStack({ simArgs: ['--imsi', '208011234567890', '--spn', 'Orange'] }, async (s) => {
      await s.tb.modemReady(20_000);
      expect(await s.client.carrier()).toMatchObject({ Source: 'database', Provider: 'Orange (208-01)', Mmsc: 'http://mms.orange.fr', Proxy: '192.168.10.200:8080' });
      expect((await simSettings(s)).pdp.contexts['1'].apn).toBe('orange-acte');
    });
  });

  it('keeps a message queued while 208-01 is ambiguous, prints the line per candidate, and sends it once carrier.provider is set', async () => {
    await withStack({ simArgs: ['--imsi', '208011234567890'] }, async (s) => {
      await modemState(s, 'unconfigured');
      const c = await s.client.carrier();
      expect(c).toMatchObject({ Source: 'ambiguous', MccMnc: '208-01', Provider: '', Mmsc: '' });
      expect(c.Candidates).toEqual(expect.arrayContaining(['"carrier": {"provider": "Orange (208-01)"}', '"carrier": {"provider": "TEN (208-01)"}']));
      expect(lastModemStatus(s).detail).toMatch(/^no MMSC: 5 candidates of 208-01 remain: .*; set carrier.provider to one of them, or set mms.mmsc$/);

      const path = await sendOne(s, 'amb-1', 'after the choice');
      // Messages wait: nothing of the carrier's or the message's reaches the module.
      expect((await s.client.show('amb-1')).Status).toBe('queued');
      const at = await transcript(s.tb);
      expect(countAt(at, /^AT\+QICSGP=1,|^AT\+QIACT=|^AT\+QMMSCFG=|^AT\+QMMSEDIT|^AT\+QFUPL/)).toBe(0);
      expect((await simView(s.tb)).sendCommands).toBe(0);

      const printed = await mmsctl(s, 'carrier');
      expect(printed.code).toBe(0);
      expect(printed.stdout).toContain('source:    ambiguous\n');
      for (const line of c.Candidates) expect(printed.stdout).toContain(`\n  ${line}\n`);
      expect((await mmsctl(s, 'status')).stdout).toContain('modem:        unconfigured');

      await restartWith(s, (config) => {
        config.carrier = { provider: 'Orange (208-01)' };
      });
      expect((await finalWithin(s, path, 30_000)).Status).toBe('sent');
      expect(await receivedWithSubject(s.tb, 'after the choice')).toBe(1);
      expect(await s.client.carrier()).toMatchObject({ Source: 'database', Provider: 'Orange (208-01)' });
    });
  });

  it('names the network it cannot find (001-01), and says to set mms.mmsc', async () => {
    await withStack({}, async (s) => {
      await modemState(s, 'unconfigured');
      const c = await s.client.carrier();
      expect(c).toMatchObject({ Source: 'not-found', MccMnc: '001-01', Mmsc: '', Candidates: [] });
      expect(c.Reason).toBe('/usr/share/mobile-broadband-provider-info/serviceproviders.xml knows no network 001-01 (nor 001-010)');
      expect(lastModemStatus(s).detail).toBe(`no MMSC: ${c.Reason}; set mms.mmsc`);
      expect((await mmsctl(s, 'carrier')).stdout).toContain('report the network upstream to mobile-broadband-provider-info');
    });
  });

  it('lets one explicit key win (mms.mmsc) and takes the others from the database', async () => {
    const mmsc = 'http://mms.example.net/override';
    await withStack({ simArgs: ['--imsi', LUXGSM_IMSI], config: { mms: { mmsc } } }, async (s) => {
      await s.tb.modemReady(20_000);
      expect(await s.client.carrier()).toMatchObject({ Source: 'database', Provider: 'LUXGSM (270-01)', Apn: 'mms.pt.lu', Mmsc: mmsc, Proxy: '194.154.192.88:8080', ConfigKeys: ['mms.mmsc'] });
      const sim = await simSettings(s);
      expect(sim.mms).toMatchObject({ mmsc, proxyHost: '194.154.192.88', proxyPort: 8080 });
      expect(sim.pdp.contexts['1'].apn).toBe('mms.pt.lu');
      const path = await sendOne(s, 'over-1', 'one key overridden');
      expect((await finalWithin(s, path, 30_000)).Status).toBe('sent');
    });
  });

  it('redoes the lookup after a SIM swap at run time and applies the new settings (NOT READY/READY, then +QUSIM)', async () => {
    await withStack({ simArgs: ['--imsi', LUXGSM_IMSI] }, async (s) => {
      await s.tb.modemReady(20_000);
      const before = (await transcript(s.tb)).length;
      await s.tb.fault({ simSwap: { imsi: '310260000000001', iccid: '8901260000000000001', spn: 'T-Mobile' } });
      await carrierWhen(s, (c) => c.Provider === 'T-Mobile (310-260)', 'the T-Mobile settings');
      const tmobile = ['AT+CIMI', 'AT+QICSGP=1,1,"fast.t-mobile.com","","",0', 'AT+QMMSCFG="mmsc","http://mms.msg.eng.t-mobile.com/mms/wapenc"', 'AT+QMMSCFG="proxy","",80'];
      await until(async () => {
        const after = (await transcript(s.tb)).slice(before);
        return tmobile.every((c) => after.includes(c)) ? true : undefined;
      }, 20_000, 'the T-Mobile settings applied to the module');
      await modemState(s, 'ready');
      expect((await simSettings(s)).pdp.contexts['1'].apn).toBe('fast.t-mobile.com');
      const path = await sendOne(s, 'swap-1', 'after a swap');
      expect((await finalWithin(s, path, 30_000)).Status).toBe('sent');

      // Back to the first SIM, the way a module with SIM hot-swap detection says it: +QUSIM: 1, +CPIN: READY.
      const mark = (await transcript(s.tb)).length;
      await s.tb.fault({ simSwap: { imsi: LUXGSM_IMSI, iccid: '89352010000000000001', spn: '', urcs: 'qusim' } });
      await carrierWhen(s, (c) => c.Provider === 'LUXGSM (270-01)', 'the LUXGSM settings again');
      const luxgsm = ['AT+QICSGP=1,1,"mms.pt.lu","mms","mms",3', 'AT+QMMSCFG="mmsc","http://mmsc.pt.lu"', 'AT+QMMSCFG="proxy","194.154.192.88",8080'];
      await until(async () => {
        const after = (await transcript(s.tb)).slice(mark);
        return luxgsm.every((c) => after.includes(c)) ? true : undefined;
      }, 20_000, 'the LUXGSM settings applied to the module');
      await modemState(s, 'ready');
      expect((await simSettings(s)).mms).toMatchObject({ mmsc: 'http://mmsc.pt.lu', proxyHost: '194.154.192.88', proxyPort: 8080 });
      const again = await sendOne(s, 'swap-2', 'after a second swap');
      expect((await finalWithin(s, again, 30_000)).Status).toBe('sent');
    });
  });

  it("writes a message's sendparam again after a SIM swap put the configured one back in the module", async () => {
    await withStack({ simArgs: ['--imsi', LUXGSM_IMSI] }, async (s) => {
      await s.tb.modemReady(20_000);
      const urgent = (id: string): Promise<string> =>
        s.client.sendData({ to: TO, subject: id, id, options: { priority: 1 } }, [{ name: 'photo.jpg', data: pseudoImage(2048, 5) }]);
      /** The sendparam the module had when it was last told to send. */
      const sendParamAtLastSend = async (): Promise<string | undefined> => {
        const t = await transcript(s.tb);
        const send = t.findLastIndex((c) => c.startsWith('AT+QMMSEND='));
        return t.slice(0, send).findLast((c) => c.startsWith('AT+QMMSCFG="sendparam",'));
      };
      expect((await finalWithin(s, await urgent('before-swap'), 30_000)).Status).toBe('sent');
      expect(await sendParamAtLastSend()).toBe('AT+QMMSCFG="sendparam",6,1,0,0,2,4');

      // Another SIM: every AT+QMMSCFG goes in again, the configured sendparam (priority 3) with them.
      const mark = (await transcript(s.tb)).length;
      await s.tb.fault({ simSwap: { imsi: '310260000000001', iccid: '8901260000000000001', spn: 'T-Mobile' } });
      await until(async () => {
        const after = (await transcript(s.tb)).slice(mark);
        return after.includes('AT+QMMSCFG="sendparam",6,3,0,0,2,4') ? true : undefined;
      }, 20_000, 'the configured sendparam applied again');
      await modemState(s, 'ready');
      expect((await finalWithin(s, await urgent('after-swap'), 30_000)).Status).toBe('sent');
      expect(await sendParamAtLastSend()).toBe('AT+QMMSCFG="sendparam",6,1,0,0,2,4');
    });
  });

  it('leaves a context active with another APN alone (context-in-use), and works on the free context the reason names', async () => {
    await withStack({ simArgs: ['--imsi', LUXGSM_IMSI], daemon: false }, async (s) => {
      // The gateway's own internet, up on context 1 before mmsd starts.
      await s.tb.fault({ otherContext: { ctx: 1, apn: 'internet' } });
      await s.tb.startDaemon();
      await modemState(s, 'context-in-use');
      expect(lastModemStatus(s).detail).toBe("context 1 is active with APN 'internet'; set pdp.contextId to a free context, e.g. 2");
      const path = await sendOne(s, 'ctx-1', 'on a free context');
      expect((await s.client.show('ctx-1')).Status).toBe('queued');
      let sim = await simSettings(s);
      expect(sim.pdp.active).toEqual([1]);
      expect(sim.pdp.contexts['1'].apn).toBe('internet');
      expect(countAt(await transcript(s.tb), /^AT\+QICSGP=1,|^AT\+QIDEACT|^AT\+QIACT=|^AT\+QMMSCFG=/)).toBe(0);

      await restartWith(s, (config) => {
        config.pdp = { contextId: 2 };
      });
      expect((await finalWithin(s, path, 30_000)).Status).toBe('sent');
      sim = await simSettings(s);
      expect(sim.pdp.active).toEqual([1, 2]);
      expect(sim.pdp.contexts['1'].apn).toBe('internet');
      expect(sim.pdp.contexts['2'].apn).toBe('mms.pt.lu');
      expect(sim.mms.contextId).toBe(2);
    });
  });

  it('takes the size limit from the entry\'s <mmsattachmentsize> and refuses a larger message at the door', async () => {
    await withStack({ daemon: false }, async (s) => {
      const database = join(s.tb.dir, 'serviceproviders.xml');
      await writeFile(
        database,
        `<?xml version="1.0"?>
<serviceproviders format="2.0">
  <country code="xx">
    <provider>
      <name>Small Test Net</name>
      <gsm>
        <network-id mcc="001" mnc="01"/>
        <apn value="mms.small">
          <usage type="mms"/>
          <mmsc>http://mms.small.example/mms</mmsc>
          <mmsattachmentsize>5000</mmsattachmentsize>
        </apn>
      </gsm>
    </provider>
  </country>
</serviceproviders>
`,
      );
      const config = JSON.parse(await readFile(s.tb.configFile, 'utf8')) as Record<string, unknown>;
      config.carrier = { database };
      await writeFile(s.tb.configFile, JSON.stringify(config));
      await s.tb.startDaemon();
      await s.tb.modemReady(20_000);
      expect(await s.client.carrier()).toMatchObject({ Source: 'database', Provider: 'Small Test Net (001-01)', MaxMessageBytes: 5000 });
      const err = await s.client.sendData({ to: TO, id: 'big-1' }, [{ name: 'a.bin', data: pseudoImage(6000, 3) }]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(dbus.DBusError);
      expect((err as InstanceType<typeof dbus.DBusError>).type).toBe('org.example.Mms1.Error.MessageTooLarge');
      // The limit named with where it came from (§11): the database's entry, not the config.
      expect((err as InstanceType<typeof dbus.DBusError>).text).toContain("1000 over the limit of 5000; only images can be made smaller (the carrier database's entry for Small Test Net (001-01)");
      const path = await s.client.sendData({ to: TO, subject: 'fits', id: 'small-1' }, [{ name: 'a.bin', data: pseudoImage(4000, 3) }]);
      expect((await finalWithin(s, path, 30_000)).Status).toBe('sent');
    });
  });
});
