// Unit tests of bring-up, health and the recovery ladder of QuectelModem against a scripted AT channel.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { QuectelModem } from '../../src/modem/quectel.js';
import type { SettingsProvider, SettingsVerdict } from '../../src/modem/config.js';
import type { ModemStatus, SimIdentity } from '../../src/modem/types.js';
import { QUECTEL_URC_PREFIXES } from '../../src/modem/urcs.js';
import { FakeAt, STARTUP, cme, error, nextState, silentLogger, startReady, testConfig, whenState } from './modem-fake-at.js';

const modems: QuectelModem[] = [];

function build(at: FakeAt, over: Parameters<typeof testConfig>[0] = {}, clock?: () => number): QuectelModem {
  const m = new QuectelModem({ at, logger: silentLogger, config: testConfig(over), ...(clock ? { clock } : {}) });
  modems.push(m);
  return m;
}

afterEach(async () => {
  for (const m of modems.splice(0)) await m.stop();
  vi.useRealTimers();
});

describe('bring-up', () => {
  it('runs the start-up sequence of DESIGN.md §6 in order and becomes ready', async () => {
    const at = new FakeAt();
    const m = build(at, {}, () => 1234);
    const statuses: ModemStatus[] = [];
    m.on('status', (s: ModemStatus) => statuses.push(s));
    await m.start();
    const s = await whenState(m, 'ready');
    expect(at.transcript).toEqual(STARTUP);
    expect(s).toMatchObject({ state: 'ready', registration: 'home', operator: 'Test Net', signal: 21 });
    expect(statuses[0].state).toBe('initializing');
    expect(m.lastAtOkAt).toBe(1234);
    expect(m.session.charset).toBe('ASCII');
  });

  it('reads the module identity at bring-up and announces it once, again only when it changes', async () => {
    const at = new FakeAt();
    const m = build(at);
    const seen: unknown[] = [];
    m.on('identity', (id: unknown) => seen.push(id));
    expect(m.moduleIdentity).toBeUndefined();
    await startReady(m, at);
    const first = { imei: '866758040000001', manufacturer: 'Quectel', model: 'EC25', firmware: 'EC25EFAR06A11M4G' };
    expect(m.moduleIdentity).toEqual(first);
    expect(seen).toEqual([first]);
    // A reconnect reads it again; the same module is not announced twice, another one is.
    at.reply('AT+CGSN', ['866758040000002']);
    at.disconnect();
    at.connect();
    await nextState(m, 'ready');
    expect(seen).toEqual([first, { ...first, imei: '866758040000002' }]);
  });

  it('goes on without the identity fields a module refuses', async () => {
    const at = new FakeAt().reply('AT+CGSN', cme(4)).reply('AT+CGMR', error());
    const m = build(at);
    await m.start();
    await whenState(m, 'ready');
    expect(m.moduleIdentity).toEqual({ imei: '', manufacturer: 'Quectel', model: 'EC25', firmware: '' });
  });

  it('does not write anything to a constructed but not started modem', () => {
    const at = new FakeAt();
    build(at);
    expect(at.transcript).toEqual([]);
    expect(at.urcs.size).toBe(0);
  });

  it('registers every Quectel URC on start, acts on its own ones, and removes them all on stop', async () => {
    const at = new FakeAt();
    const m = build(at);
    await startReady(m, at);
    expect(at.urcs.prefixes().sort()).toEqual([...QUECTEL_URC_PREFIXES].sort());
    // Known but acted on by no one: routed (so never a command's answer), nothing written.
    expect(at.urc('+QIND: "csq",20,99')).toBe(true);
    expect(at.urc('+CMTI: "ME",1')).toBe(true);
    expect(at.transcript).toEqual([]);
    await m.stop();
    expect(at.urcs.size).toBe(0);
    expect(at.listenerCount('connected') + at.listenerCount('disconnected')).toBe(0);
  });

  it('skips AT+QIACT when the context is already active, attaches when detached', async () => {
    const at = new FakeAt().reply('AT+QIACT?', ['+QIACT: 1,1,1,"10.0.0.2"']).script('AT+CGATT?', ['+CGATT: 0']);
    const m = build(at);
    await m.start();
    await whenState(m, 'ready');
    expect(at.count('AT+QIACT=1')).toBe(0);
    const attach = at.transcript.indexOf('AT+CGATT?');
    expect(at.transcript.slice(attach, attach + 3)).toEqual(['AT+CGATT?', 'AT+CGATT=1', 'AT+CSQ']);
  });

  it('retries AT with short timeouts until the module answers', async () => {
    const { TimeoutError } = await import('../../src/at/errors.js');
    const at = new FakeAt().script('AT', new TimeoutError('AT', 1000), new TimeoutError('AT', 1000));
    const m = build(at);
    await m.start();
    await whenState(m, 'ready');
    expect(at.transcript.slice(0, 4)).toEqual(['AT', 'AT', 'AT', 'ATE0']);
    expect(at.commandOptions[0].opts?.timeoutMs).toBe(1000);
  });

  it('goes to error when the module never answers AT', async () => {
    const { TimeoutError } = await import('../../src/at/errors.js');
    const at = new FakeAt().reply('AT', new TimeoutError('AT', 1000));
    const m = build(at);
    await m.start();
    const s = await whenState(m, 'error');
    expect(s.detail).toMatch(/does not answer AT/);
    expect(at.count('AT')).toBe(10);
    expect(at.count('ATE0')).toBe(0);
  });

  it('registers through +CEREG alone on an LTE-only network', async () => {
    const at = new FakeAt().reply('AT+CGREG?', ['+CGREG: 2,0']).reply('AT+CEREG?', ['+CEREG: 2,5,"1A2B","01C3D4E",7']);
    const m = build(at);
    await m.start();
    const s = await whenState(m, 'ready');
    expect(s.registration).toBe('roaming');
  });

  it('waits in searching until a +CEREG URC says registered, then proceeds to ready', async () => {
    const at = new FakeAt().reply('AT+CGREG?', ['+CGREG: 2,0']).reply('AT+CEREG?', ['+CEREG: 2,2']);
    const m = build(at);
    await m.start();
    const s = await whenState(m, 'searching');
    expect(s.registration).toBe('searching');
    expect(at.count('AT+QIACT=1')).toBe(0);
    const ready = nextState(m, 'ready');
    at.reply('AT+CEREG?', ['+CEREG: 2,1']);
    at.urc('+CEREG: 1,"1A2B","01C3D4E",7');
    at.urc('+CGREG: 1');
    expect((await ready).registration).toBe('home');
    expect(at.count('AT+QIACT=1')).toBe(1);
  });

  it('reports denied registration', async () => {
    const at = new FakeAt().reply('AT+CGREG?', ['+CGREG: 2,3']).reply('AT+CEREG?', ['+CEREG: 2,3']);
    const m = build(at);
    await m.start();
    expect((await whenState(m, 'searching')).registration).toBe('denied');
  });

  it('waits in sim-missing, then proceeds to ready on +CPIN: READY', async () => {
    const at = new FakeAt().reply('AT+CPIN?', cme(10));
    const m = build(at);
    await m.start();
    await whenState(m, 'sim-missing');
    expect(at.transcript).toEqual(STARTUP.slice(0, STARTUP.indexOf('AT+CPIN?') + 1));
    at.clear();
    at.reply('AT+CPIN?', ['+CPIN: READY']);
    const ready = nextState(m, 'ready');
    at.urc('+CPIN: READY');
    await ready;
    expect(at.transcript).toEqual(STARTUP.slice(STARTUP.indexOf('AT+CPIN?')));
  });

  it('reports sim-locked for a SIM asking for its PIN', async () => {
    const at = new FakeAt().reply('AT+CPIN?', ['+CPIN: SIM PIN']);
    const m = build(at);
    await m.start();
    expect((await whenState(m, 'sim-locked')).detail).toBe('SIM PIN');
  });

  it('re-polls a missing SIM every healthIntervalS', async () => {
    vi.useFakeTimers();
    const at = new FakeAt().reply('AT+CPIN?', cme(10));
    const m = build(at);
    await m.start();
    await whenState(m, 'sim-missing');
    at.reply('AT+CPIN?', ['+CPIN: READY']);
    const ready = nextState(m, 'ready');
    await vi.advanceTimersByTimeAsync(30_000);
    await ready;
    expect(at.count('AT+CPIN?')).toBe(2);
  });

  it('a SIM removal URC while ready makes messages wait (sim-missing)', async () => {
    const at = new FakeAt();
    const m = build(at);
    await m.start();
    await whenState(m, 'ready');
    at.urc('+CPIN: NOT READY');
    expect(m.status.state).toBe('sim-missing');
  });

  it('a deregistration URC turns ready into searching at once', async () => {
    const at = new FakeAt();
    const m = build(at);
    await m.start();
    await whenState(m, 'ready');
    at.urc('+CGREG: 2');
    expect(m.status.state).toBe('ready'); // +CEREG still says home
    at.urc('+CEREG: 0');
    expect(m.status).toMatchObject({ state: 'searching', registration: 'searching' });
  });

  it('re-activates the context after a PDP drop URC', async () => {
    const at = new FakeAt();
    const m = build(at);
    const dropped: number[] = [];
    m.on('pdpDeactivated', (ctx: number) => dropped.push(ctx));
    await startReady(m, at);
    const registered = nextState(m, 'registered');
    const ready = nextState(m, 'ready');
    at.urc('+QIURC: "pdpdeact",1');
    await registered;
    await ready;
    expect(dropped).toEqual([1]);
    expect(at.transcript).toEqual(['AT+QIDEACT=1', 'AT+QIACT=1']);
  });

  it('ignores a PDP drop of another context', async () => {
    const at = new FakeAt();
    const m = build(at);
    await startReady(m, at);
    at.urc('+QIURC: "pdpdeact",3');
    expect(m.status.state).toBe('ready');
    expect(at.transcript).toEqual([]);
  });

  it('re-initialises fully, all AT+QMMSCFG included, after RDY', async () => {
    const at = new FakeAt();
    const m = build(at);
    let rebooted = 0;
    m.on('rebooted', () => rebooted++);
    await startReady(m, at);
    const ready = nextState(m, 'ready');
    at.urc('RDY');
    expect(m.session.charset).toBeUndefined();
    await ready;
    expect(rebooted).toBe(1);
    expect(at.transcript).toEqual(STARTUP);
  });

  it('applies an empty proxy too, at start-up and after RDY, so that a gateway set before is cleared', async () => {
    const at = new FakeAt();
    const m = build(at, { mms: { ...testConfig().mms, proxyHost: '' } });
    await m.start();
    await whenState(m, 'ready');
    const withoutProxy = STARTUP.map((l) => (l.startsWith('AT+QMMSCFG="proxy"') ? 'AT+QMMSCFG="proxy","",80' : l));
    expect(at.transcript).toEqual(withoutProxy);
    at.clear();
    const ready = nextState(m, 'ready');
    at.urc('RDY');
    await ready;
    expect(at.transcript).toEqual(withoutProxy);
  });

  it('goes absent on port loss and re-initialises on reconnect, announcing a reboot', async () => {
    const at = new FakeAt();
    const m = build(at);
    let rebooted = 0;
    m.on('rebooted', () => rebooted++);
    await m.start();
    await whenState(m, 'ready');
    at.disconnect();
    expect(m.status).toMatchObject({ state: 'absent', registration: 'unknown', operator: '', signal: -1 });
    at.clear();
    const ready = nextState(m, 'ready');
    at.connect();
    await ready;
    expect(rebooted).toBe(1);
    expect(at.transcript).toEqual(STARTUP);
  });

  it('stays absent when started without a port, and starts up when it connects', async () => {
    const at = new FakeAt();
    at.isConnected = false;
    const m = build(at);
    await m.start();
    expect(m.status.state).toBe('absent');
    const ready = nextState(m, 'ready');
    at.connect();
    await ready;
    expect(at.transcript).toEqual(STARTUP);
  });

  it('restarts a bring-up cut short by RDY from the beginning', async () => {
    const at = new FakeAt();
    at.script('AT+COPS?', () => {
      at.urc('RDY');
      return ['+COPS: 0,0,"Test Net",7'];
    });
    const m = build(at);
    await m.start();
    await whenState(m, 'ready');
    const second = at.transcript.indexOf('AT', 1);
    expect(at.transcript.slice(0, second)).toEqual(STARTUP.slice(0, STARTUP.indexOf('AT+COPS?') + 1));
    expect(at.transcript.slice(second)).toEqual(STARTUP);
  });
});

describe('idle poll', () => {
  it('polls CPIN, CGREG/CEREG, CSQ and QIACT? every healthIntervalS and reports signal changes', async () => {
    vi.useFakeTimers();
    const at = new FakeAt();
    const m = build(at);
    await m.start();
    await whenState(m, 'ready');
    at.reply('AT+QIACT?', ['+QIACT: 1,1,1,"10.0.0.2"']).reply('AT+CSQ', ['+CSQ: 9,99']);
    at.clear();
    const statuses: ModemStatus[] = [];
    m.on('status', (s: ModemStatus) => statuses.push(s));
    await vi.advanceTimersByTimeAsync(30_000);
    expect(at.transcript).toEqual(['AT+CPIN?', 'AT+CGREG?', 'AT+CEREG?', 'AT+CSQ', 'AT+QIACT?']);
    expect(statuses.map((s) => s.signal)).toEqual([9]);
  });

  it('skips the poll while the send lock is held, and polls again after', async () => {
    vi.useFakeTimers();
    const at = new FakeAt().reply('AT+QIACT?', ['+QIACT: 1,1,1,"10.0.0.2"']);
    const m = build(at);
    await startReady(m, at);
    let release!: () => void;
    const held = m.withLock(() => new Promise<void>((r) => (release = r)));
    await vi.advanceTimersByTimeAsync(90_000);
    expect(at.transcript).toEqual([]);
    release();
    await held;
    await vi.advanceTimersByTimeAsync(30_000);
    expect(at.count('AT+CPIN?')).toBe(1);
  });

  it('re-activates a context the poll finds inactive', async () => {
    vi.useFakeTimers();
    const at = new FakeAt();
    const m = build(at);
    await startReady(m, at);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(at.transcript.slice(-2)).toEqual(['AT+QIACT?', 'AT+QIACT=1']);
    expect(m.status.state).toBe('ready');
  });
});

describe('recovery ladder (§4.2)', () => {
  it('checks attach, registration and context settings between AT+QIACT tries', async () => {
    const at = new FakeAt().script('AT+QIACT=1', error()).script('AT+CGATT?', ['+CGATT: 1'], ['+CGATT: 0']);
    const m = build(at);
    await m.start();
    await whenState(m, 'ready');
    expect(at.transcript.slice(STARTUP.indexOf('AT+QIACT=1'), STARTUP.indexOf('AT+QIACT=1') + 9)).toEqual([
      'AT+QIACT=1',
      'AT+CGATT?',
      'AT+CGATT=1',
      'AT+CGREG?',
      'AT+CEREG?',
      'AT+QICSGP=1,1,"internet","","",0',
      'AT+QIACT=1',
      'AT+QMMSCFG="contextid",1',
      'AT+QMMSCFG="mmsc","http://mmsc.example/mms"',
    ]);
  });

  it('restarts the module only after three failed rounds and ten minutes since the last restart', async () => {
    vi.useFakeTimers();
    const at = new FakeAt().reply('AT+QIACT=1', cme(768));
    const m = build(at, {}, () => Date.now());
    await m.start();
    const s = await whenState(m, 'registered');
    await vi.advanceTimersByTimeAsync(0);
    expect(m.status.detail).toMatch(/failed 3 times/);
    expect(s.state).toBe('registered');
    expect(at.count('AT+QIACT=1')).toBe(3);

    // Every tick tries another round; within ten minutes of start no restart.
    await vi.advanceTimersByTimeAsync(9 * 60_000);
    expect(at.count('AT+QIACT=1')).toBe(3 + 18);
    expect(at.count('AT+CFUN=1,1')).toBe(0);

    // Past ten minutes the next failed round restarts the module, exactly once.
    at.reply('AT+CFUN=1,1', () => {
      queueMicrotask(() => at.urc('RDY'));
      return [];
    });
    await vi.advanceTimersByTimeAsync(90_000);
    expect(at.count('AT+CFUN=1,1')).toBe(1);
    // After the restart the count starts again: three more rounds, another ten minutes.
    await vi.advanceTimersByTimeAsync(5 * 60_000);
    expect(at.count('AT+CFUN=1,1')).toBe(1);
    await vi.advanceTimersByTimeAsync(6 * 60_000);
    expect(at.count('AT+CFUN=1,1')).toBe(2);
  });

  it('reactivatePdp() deactivates then activates the context', async () => {
    const at = new FakeAt();
    const m = build(at);
    await startReady(m, at);
    await m.reactivatePdp();
    expect(at.transcript).toEqual(['AT+QIDEACT=1', 'AT+QIACT=1']);
    expect(m.status.state).toBe('ready');
  });

  it('reactivatePdp() rejects when the context stays down', async () => {
    const at = new FakeAt();
    const m = build(at);
    await m.start();
    await whenState(m, 'ready');
    at.reply('AT+QIACT=1', error());
    await expect(m.reactivatePdp()).rejects.toThrow(/could not be re-activated/);
    expect(m.status.state).toBe('registered');
  });

  it('whenReady() resolves on ready and rejects on abort', async () => {
    const at = new FakeAt().reply('AT+CPIN?', cme(10));
    const m = build(at);
    await m.start();
    await whenState(m, 'sim-missing');
    const ac = new AbortController();
    const aborted = m.whenReady(ac.signal);
    ac.abort(new Error('stopping'));
    await expect(aborted).rejects.toThrow('stopping');
    const ready = m.whenReady();
    at.reply('AT+CPIN?', ['+CPIN: READY']);
    at.urc('+CPIN: READY');
    await expect(ready).resolves.toBeUndefined();
  });
});

describe('carrier settings from the SIM (DESIGN.md §10)', () => {
  const LUX = { apn: 'mms.pt.lu', username: '', password: '', auth: 0, mmsc: 'http://mmsc.pt.lu', proxyHost: '194.154.192.88', proxyPort: 8080 };
  const TMO = { apn: 'fast.t-mobile.com', username: '', password: '', auth: 0, mmsc: 'http://mms.msg.eng.t-mobile.com/mms/wapenc', proxyHost: '', proxyPort: 80 };

  function withSettings(at: FakeAt, settings: SettingsProvider): QuectelModem {
    const m = new QuectelModem({ at, logger: silentLogger, config: testConfig(), settings });
    modems.push(m);
    return m;
  }

  /** The settings of each IMSI, and every identity the driver asked about. */
  function provider(byImsi: Record<string, SettingsVerdict>): { asked: SimIdentity[]; settings: SettingsProvider } {
    const asked: SimIdentity[] = [];
    return {
      asked,
      settings: (sim) => {
        asked.push(sim);
        return Promise.resolve(byImsi[sim.imsi] ?? { unconfigured: `no MMSC: nothing for ${sim.imsi}` });
      },
    };
  }

  it('reads the SIM\'s identity once registered and applies what the provider answers for it', async () => {
    const at = new FakeAt().reply('AT+CIMI', ['270011234567890']).reply('AT+QICSGP=1', ['+QICSGP: 1,"","","",0']);
    const p = provider({ '270011234567890': { use: LUX } });
    const m = withSettings(at, p.settings);
    await m.start();
    await whenState(m, 'ready');
    expect(p.asked).toEqual([{ imsi: '270011234567890', iccid: '89860000000000000001', spn: 'Test SPN' }]);
    expect(m.simIdentity).toEqual(p.asked[0]);
    const apply = at.transcript.filter((c) => /QICSGP=1,|"mmsc"|"proxy"/.test(c));
    expect(apply).toEqual(['AT+QICSGP=1,1,"mms.pt.lu","","",0', 'AT+QMMSCFG="mmsc","http://mmsc.pt.lu"', 'AT+QMMSCFG="proxy","194.154.192.88",8080']);
  });

  it('waits in unconfigured with the provider\'s reason, writes no settings, and asks again at every tick', async () => {
    vi.useFakeTimers();
    const at = new FakeAt().reply('AT+CIMI', ['001010123456789']);
    const table: Record<string, SettingsVerdict> = {};
    const p = provider(table);
    const m = withSettings(at, p.settings);
    await m.start();
    const s = await whenState(m, 'unconfigured');
    expect(s.detail).toBe('no MMSC: nothing for 001010123456789');
    expect(at.transcript.filter((c) => /QICSGP|QIACT|QMMSCFG/.test(c))).toEqual([]);
    // The database learned the network meanwhile (a newer package): the next tick proceeds.
    table['001010123456789'] = { use: LUX };
    const ready = nextState(m, 'ready');
    await vi.advanceTimersByTimeAsync(30_000);
    await ready;
    expect(p.asked.map((x) => x.imsi)).toEqual(['001010123456789', '001010123456789']);
    expect(at.transcript).toContain('AT+QMMSCFG="mmsc","http://mmsc.pt.lu"');
  });

  it('leaves a context active with another APN alone (context-in-use, naming pdp.contextId) and proceeds once it is released', async () => {
    vi.useFakeTimers();
    const at = new FakeAt()
      .reply('AT+QIACT?', ['+QIACT: 1,1,1,"10.64.1.2"', '+QIACT: 3,1,1,"10.64.9.9"'])
      .reply('AT+QICSGP=1', ['+QICSGP: 1,"internet.gateway","user","secret",2']);
    const m = build(at);
    await m.start();
    const s = await whenState(m, 'context-in-use');
    expect(s.detail).toBe("context 1 is active with APN 'internet.gateway'; set pdp.contextId to a free context, e.g. 2");
    expect(at.transcript.filter((c) => /^AT\+QICSGP=1,|^AT\+QIACT=|^AT\+QIDEACT|QMMSCFG/.test(c))).toEqual([]);
    // Still in use at the next tick: still left alone.
    await vi.advanceTimersByTimeAsync(30_000);
    expect(m.status.state).toBe('context-in-use');
    at.reply('AT+QIACT?', ['+QIACT: 3,1,1,"10.64.9.9"']);
    const ready = nextState(m, 'ready');
    await vi.advanceTimersByTimeAsync(30_000);
    await ready;
    expect(at.transcript.filter((c) => /^AT\+QIDEACT/.test(c))).toEqual([]);
    expect(at.transcript.slice(-9, -7)).toEqual(['AT+QICSGP=1,1,"internet","","",0', 'AT+QIACT=1']);
  });

  it('uses a context that is active with its own APN as it is (ignoring case)', async () => {
    const at = new FakeAt().reply('AT+QIACT?', ['+QIACT: 1,1,1,"10.64.1.2"']).reply('AT+QICSGP=1', ['+QICSGP: 1,"INTERNET","","",0']);
    const m = build(at);
    await m.start();
    await whenState(m, 'ready');
    expect(at.count('AT+QIACT=1')).toBe(0);
    expect(at.count('AT+QIDEACT=1')).toBe(0);
  });

  it('redoes the lookup after a SIM swap (NOT READY, READY) and re-applies AT+QICSGP and every AT+QMMSCFG', async () => {
    const at = new FakeAt().reply('AT+CIMI', ['270011234567890']);
    const p = provider({ '270011234567890': { use: LUX }, '310260000000001': { use: TMO } });
    const m = withSettings(at, p.settings);
    await startReady(m, at);
    at.urc('+CPIN: NOT READY');
    expect(m.status.state).toBe('sim-missing');
    at.reply('AT+CIMI', ['310260000000001']).reply('AT+QSPN', ['+QSPN: "T-Mobile","T-Mobile","T-Mobile",0,"310260"']);
    const ready = nextState(m, 'ready');
    at.urc('+CPIN: READY');
    await ready;
    expect(p.asked.at(-1)).toEqual({ imsi: '310260000000001', iccid: '89860000000000000001', spn: 'T-Mobile' });
    expect(at.transcript.filter((c) => /QICSGP=1,|QMMSCFG/.test(c))).toEqual([
      'AT+QICSGP=1,1,"fast.t-mobile.com","","",0',
      'AT+QMMSCFG="contextid",1',
      'AT+QMMSCFG="mmsc","http://mms.msg.eng.t-mobile.com/mms/wapenc"',
      'AT+QMMSCFG="proxy","",80',
      'AT+QMMSCFG="sendparam",6,3,0,0,2,4',
      'AT+QMMSCFG="character","ASCII"',
      'AT+QMMSCFG="supportfield",0',
      'AT+QMMSCFG="connecttimeout",125',
    ]);
  });

  it('checks the identity on a +CPIN: READY while ready (+QUSIM swap), and resets its own context for the new SIM', async () => {
    const at = new FakeAt().reply('AT+CIMI', ['270011234567890']);
    const p = provider({ '270011234567890': { use: LUX }, '310260000000001': { use: TMO } });
    const m = withSettings(at, p.settings);
    await startReady(m, at);
    // The module kept context 1 up with the APN mmsd set for the first SIM.
    at.reply('AT+QIACT?', ['+QIACT: 1,1,1,"10.64.1.2"']).reply('AT+QICSGP=1', ['+QICSGP: 1,"mms.pt.lu","","",0']);
    at.reply('AT+CIMI', ['310260000000001']);
    const states: string[] = [];
    m.on('status', (st: ModemStatus) => states.push(`${st.state}${st.detail ? `: ${st.detail}` : ''}`));
    at.urc('+QUSIM: 1');
    at.urc('+CPIN: READY');
    await vi.waitFor(() => expect(at.transcript).toContain('AT+QMMSCFG="connecttimeout",125'));
    expect(m.status.state).toBe('ready');
    // Not ready while the new SIM's settings go in: no message starts on half of them.
    expect(states).toEqual(['registered: applying the carrier settings of another SIM', 'registered', 'ready']);
    expect(at.transcript.filter((c) => /QIDEACT|QICSGP=1,|QIACT=1|"mmsc"/.test(c))).toEqual([
      'AT+QIDEACT=1',
      'AT+QICSGP=1,1,"fast.t-mobile.com","","",0',
      'AT+QIACT=1',
      'AT+QMMSCFG="mmsc","http://mms.msg.eng.t-mobile.com/mms/wapenc"',
    ]);
  });

  it('applies every AT+QMMSCFG again for another SIM of the same carrier (same settings, another IMSI)', async () => {
    const at = new FakeAt().reply('AT+CIMI', ['270011234567890']);
    const p = provider({ '270011234567890': { use: LUX }, '270019999999999': { use: LUX } });
    const m = withSettings(at, p.settings);
    await startReady(m, at);
    at.urc('+CPIN: NOT READY');
    at.reply('AT+CIMI', ['270019999999999']);
    const ready = nextState(m, 'ready');
    at.urc('+CPIN: READY');
    await ready;
    expect(at.transcript.filter((c) => /QMMSCFG/.test(c))).toHaveLength(7);
  });

  it('re-applies nothing when a +CPIN: READY brings the same SIM', async () => {
    const at = new FakeAt().reply('AT+CIMI', ['270011234567890']);
    const p = provider({ '270011234567890': { use: LUX } });
    const m = withSettings(at, p.settings);
    await startReady(m, at);
    at.reply('AT+QIACT?', ['+QIACT: 1,1,1,"10.64.1.2"']).reply('AT+QICSGP=1', ['+QICSGP: 1,"mms.pt.lu","","",0']);
    at.urc('+CPIN: READY');
    await vi.waitFor(() => expect(p.asked).toHaveLength(2));
    await vi.waitFor(() => expect(at.transcript.at(-1)).toBe('AT+QICSGP=1,1,"mms.pt.lu","","",0'));
    expect(at.transcript.filter((c) => /QMMSCFG|QIACT=|QIDEACT/.test(c))).toEqual([]);
    expect(m.status.state).toBe('ready');
  });
});
