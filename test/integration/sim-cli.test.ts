// mmsd-sim as a real process (dist/cli/mmsd-sim.js, built by test/global-setup.ts) on a
// real socat pty pair opened with the real serialport binding, and on tcp://; the §3.6 transcript.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SerialPort } from 'serialport';
import { checksum16 } from '../../src/at/checksum.js';
import { decodeSmsPdu, isWapPushSegment, type SmsDeliver } from '../../src/inbound/sms.js';
import { decodeWspPush } from '../../src/inbound/wap-push.js';
import { decodePushedMms, encodeNotifyRespInd } from '../../src/mms/notification.js';
import { decodeRetrieveConf } from '../../src/mms/retrieve.js';
import { reassemble, segmentOf } from '../../src/inbound/reassembly.js';
import { sampleInboundRequest } from '../../src/sim/mmsc-inbox.js';
import { Testbed } from '../../src/harness/testbed.js';
import { until } from '../../src/harness/wait.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(ROOT, 'dist/cli/mmsd-sim.js');

beforeAll(() => {
  expect(existsSync(CLI)).toBe(true); // built by test/global-setup.ts
});

interface Sim {
  proc: ChildProcess;
  ready: { port: string; mmsc?: string; control: string };
  dir: string;
}

const running: Sim[] = [];
const openPorts: { close(): void }[] = [];

afterEach(async () => {
  for (const p of openPorts.splice(0)) p.close();
  for (const sim of running.splice(0)) {
    if (sim.proc.exitCode === null && sim.proc.signalCode === null) {
      const exited = new Promise((r) => sim.proc.once('exit', r));
      sim.proc.kill('SIGTERM');
      await exited;
    }
    rmSync(sim.dir, { recursive: true, force: true });
  }
});

async function startSim(args: (dir: string) => string[]): Promise<Sim> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mmsd-sim-it-'));
  const proc = spawn(process.execPath, [CLI, ...args(dir), '--boot-ms', '100', '--escape-guard-ms', '300'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const sim: Sim = { proc, dir, ready: { port: '', control: '' } };
  running.push(sim);
  const first = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout });
    rl.once('line', resolve);
    proc.once('exit', (code) => reject(new Error(`mmsd-sim exited ${code}: ${stderr}`)));
  });
  sim.ready = JSON.parse(first) as Sim['ready'];
  return sim;
}

/** A host end of the line with exact-response helpers. */
class Host {
  out = '';
  constructor(private readonly writeFn: (b: Buffer) => void) {}
  push(b: Buffer): void {
    this.out += b.toString('latin1');
  }
  async waitFor(re: RegExp, from: number, ms = 5000): Promise<string> {
    await until(() => re.test(this.out.slice(from)), ms, `${String(re)} (so far: ${JSON.stringify(this.out.slice(from, from + 200))})`, 5);
    return this.out.slice(from);
  }
  writeRaw(b: Buffer): void {
    this.writeFn(b);
  }
  async at(cmd: string): Promise<string> {
    const m = this.out.length;
    this.writeFn(Buffer.from(`${cmd}\r`, 'latin1'));
    return this.waitFor(/\r\n(OK|ERROR|CONNECT|\+CME ERROR: [^\r]*)\r\n$/, m);
  }
  async data(bytes: Buffer): Promise<string> {
    const m = this.out.length;
    for (let off = 0; off < bytes.length; off += 1024) {
      const before = this.out.length;
      this.writeFn(bytes.subarray(off, off + 1024));
      if (off + 1024 <= bytes.length) await this.waitFor(/^A/, before);
    }
    return this.waitFor(/\r\nOK\r\n$/, m);
  }
}

async function openPty(p: string): Promise<{ host: Host; port: SerialPort }> {
  const port = new SerialPort({ path: p, baudRate: 115200, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  openPorts.push({ close: () => port.isOpen && port.close() });
  const host = new Host((b) => port.write(b));
  port.on('data', (b: Buffer) => host.push(b));
  return { host, port };
}

interface StateJson {
  ramFiles: { name: string; size: number }[];
  sendsAccepted: number;
  transcript: string[];
  boots: number;
}
interface ReceivedJson {
  to: string[];
  subject: string | null;
  parts: { name: string }[];
}

async function control<T = Record<string, unknown>>(
  sim: Sim,
  method: 'GET' | 'POST',
  route: string,
  body?: unknown,
): Promise<{ status: number; json: T }> {
  const res = await fetch(`${sim.ready.control}${route}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as T };
}

const OK = '\r\nOK\r\n';
const info = (...lines: string[]) => `\r\n${lines.join('\r\n')}\r\n${OK}`;

describe('mmsd-sim --pty', () => {
  it('prints one ready line and replays the spec §3.6 transcript with exact responses', async () => {
    const sim = await startSim((d) => ['--pty', path.join(d, 'modem')]);
    expect(Object.keys(sim.ready)).toEqual(['port', 'control']);
    expect(sim.ready.port).toBe(path.join(sim.dir, 'modem'));
    expect(lstatSync(sim.ready.port).isSymbolicLink()).toBe(true);
    const { host } = await openPty(sim.ready.port);

    expect(await host.at('ATE0')).toBe(`ATE0\r${OK}`);
    const transcript: [string, string][] = [
      ['AT+QICSGP=1,1,"UNIWAP","",1', OK],
      ['AT+QIACT=1', OK],
      ['AT+QIACT?', info('+QIACT: 1,1,1,"10.7.157.1"')],
      ['AT+QMMSCFG="contextid",1', OK],
      ['AT+QMMSCFG="contextid"', info('+QMMSCFG: "contextid",1')],
      ['AT+QMMSCFG="mmsc","mmsc.myuni.com"', OK],
      ['AT+QMMSCFG="mmsc"', info('+QMMSCFG: "mmsc","mmsc.myuni.com"')],
      ['AT+QMMSCFG="proxy","10.0.0.172",80', OK],
      ['AT+QMMSCFG="proxy"', info('+QMMSCFG: "proxy","10.0.0.172",80')],
      ['AT+QMMSCFG="sendparam",6,2,0,0,2,4', OK],
      ['AT+QMMSCFG="sendparam"', info('+QMMSCFG: "sendparam",6,2,0,0,2,4')],
      ['AT+QMMSEDIT=1,1,"13856122546"', OK],
      ['AT+QMMSEDIT=2,1,"copy.test@quectel.com"', OK],
      ['AT+QMMSEDIT=3,1,"secret.test@quectel.com"', OK],
      ['AT+QMMSEDIT=1', info('+QMMSEDIT: 1,"13856122546"')],
      ['AT+QMMSEDIT=2', info('+QMMSEDIT: 2,"copy.test@quectel.com"')],
      ['AT+QMMSEDIT=3', info('+QMMSEDIT: 3,"secret.test@quectel.com"')],
      ['AT+QMMSCFG="character","ASCII"', OK],
      ['AT+QMMSEDIT=4,1,"test EM05 mms"', OK],
      ['AT+QMMSEDIT=4', info('+QMMSEDIT: 4,"ASCII","test EM05 mms"')],
    ];
    for (const [cmd, want] of transcript) expect(await host.at(cmd), cmd).toBe(want);

    // "AB" repeated: an even number of equal words, so the XOR checksum is 0 as in the spec.
    expect(await host.at('AT+QFUPL="RAM:test_ram.txt",100,300,1')).toBe('\r\nCONNECT\r\n');
    expect(await host.data(Buffer.from('AB'.repeat(50)))).toBe(info('+QFUPL: 100,0'));
    const middle: [string, string][] = [
      ['AT+QFLST="RAM:*"', info('+QFLST: "RAM:test_ram.txt",100')],
      ['AT+QMMSCFG="character","ASCII"', OK],
      ['AT+QMMSEDIT=5,1,"RAM:test_ram.txt"', OK],
      ['AT+QMMSEDIT=5', info('+QMMSEDIT: 5,"RAM:test_ram.txt"')],
    ];
    for (const [cmd, want] of middle) expect(await host.at(cmd), cmd).toBe(want);
    expect(await host.at('AT+QFUPL="RAM:test_pic.jpg",200,300,1')).toBe('\r\nCONNECT\r\n');
    expect(await host.data(Buffer.from('AB'.repeat(100)))).toBe(info('+QFUPL: 200,0'));
    const rest: [string, string][] = [
      ['AT+QFLST="RAM:*"', info('+QFLST: "RAM:test_ram.txt",100', '+QFLST: "RAM:test_pic.jpg",200')],
      ['AT+QMMSEDIT=5,1,"RAM:test_pic.jpg"', OK],
      ['AT+QMMSEDIT=5', info('+QMMSEDIT: 5,"RAM:test_ram.txt"', '+QMMSEDIT: 5,"RAM:test_pic.jpg"')],
    ];
    for (const [cmd, want] of rest) expect(await host.at(cmd), cmd).toBe(want);
    const m = host.out.length;
    expect(await host.at('AT+QMMSEND=100')).toBe(OK);
    expect(await host.waitFor(/\+QMMSEND: .*\r\n$/, m)).toBe(`${OK}\r\n+QMMSEND: 0,200\r\n`);
    expect(await host.at('AT+QMMSEDIT=0')).toBe(OK);
    expect(await host.at('AT+QFDEL="RAM:test_ram.txt"')).toBe(OK);
    expect(await host.at('AT+QFDEL="RAM:test_pic.jpg"')).toBe(OK);

    const { json: state } = await control<StateJson>(sim, 'GET', '/state');
    expect(state.ramFiles).toEqual([]);
    expect(state.sendsAccepted).toBe(1);
    expect(state.transcript).toContain('AT+QMMSEND=100');
    expect(state.transcript.some((l) => l.includes('ABAB'))).toBe(false);
  });

  it('takes faults over the control API: SIM removal, injected results, restart', async () => {
    const sim = await startSim((d) => ['--pty', path.join(d, 'modem'), '--fail-send', '765:200:Error-service-denied']);
    const { host } = await openPty(sim.ready.port);
    await host.at('ATE0');
    // ACK mode over the real pty: an "A" per 1024 bytes; "+++" inside the data stays data.
    const blob = Buffer.alloc(2500, '+++a');
    expect(await host.at('AT+QFUPL="RAM:blob.bin",2500,10,1')).toBe('\r\nCONNECT\r\n');
    expect(await host.data(blob)).toBe(`AA\r\n+QFUPL: 2500,${checksum16(blob).toString(16)}\r\n${OK}`);
    await host.at('AT+QIACT=1');
    await host.at('AT+QMMSCFG="mmsc","http://127.0.0.1:9/mms"');
    await host.at('AT+QMMSEDIT=1,1,"123"');
    let m = host.out.length;
    await host.at('AT+QMMSEND=100');
    expect(await host.waitFor(/\+QMMSEND: .*\r\n$/, m)).toBe(`${OK}\r\n+QMMSEND: 765,200,"Error-service-denied"\r\n`);

    expect((await control(sim, 'POST', '/fault', { sendResults: [{ err: 0, http: 500 }] })).json).toEqual({ ok: true });
    m = host.out.length;
    await host.at('AT+QMMSEND=100');
    expect(await host.waitFor(/\+QMMSEND: .*\r\n$/, m)).toBe(`${OK}\r\n+QMMSEND: 0,500\r\n`);

    expect((await control(sim, 'POST', '/fault', { nonsense: 1 })).status).toBe(400);
    m = host.out.length;
    await control(sim, 'POST', '/fault', { sim: 'absent' });
    expect(await host.waitFor(/\+QIURC: "pdpdeact",1\r\n$/, m)).toBe('\r\n+CPIN: NOT READY\r\n\r\n+QIURC: "pdpdeact",1\r\n');
    expect(await host.at('AT+CPIN?')).toBe('\r\n+CME ERROR: 10\r\n');
    m = host.out.length;
    await control(sim, 'POST', '/fault', { sim: 'ready' });
    expect(await host.waitFor(/\+CPIN: READY\r\n$/, m)).toBe('\r\n+CPIN: READY\r\n');

    m = host.out.length;
    await control(sim, 'POST', '/fault', { reboot: true });
    expect(await host.waitFor(/SMS DONE\r\n$/, m)).toBe('\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\n+QIND: PB DONE\r\n\r\n+QIND: SMS DONE\r\n');
    expect(await host.at('AT')).toBe(`AT\r${OK}`);
    expect((await control<StateJson>(sim, 'GET', '/state')).json.boots).toBe(1);
  });

  it('takes the SIM\'s identity as options and swaps the SIM at run time (DESIGN.md §10)', async () => {
    const sim = await startSim((d) => ['--pty', path.join(d, 'modem'), '--imsi', '270011234567890', '--iccid', '89352010000000000001', '--spn', 'LUXGSM']);
    const { host } = await openPty(sim.ready.port);
    await host.at('ATE0');
    expect(await host.at('AT+CIMI')).toBe(`\r\n270011234567890\r\n${OK}`);
    expect(await host.at('AT+QCCID')).toBe(`\r\n+QCCID: 89352010000000000001\r\n${OK}`);
    expect(await host.at('AT+QSPN')).toBe(`\r\n+QSPN: "Virtual Operator","VOP","LUXGSM",0,"27001"\r\n${OK}`);
    const m = host.out.length;
    expect((await control(sim, 'POST', '/fault', { simSwap: { imsi: '208011234567890', spn: 'Orange', urcs: 'qusim' } })).json).toEqual({ ok: true });
    expect(await host.waitFor(/\+CPIN: READY\r\n$/, m)).toBe('\r\n+QUSIM: 1\r\n\r\n+CPIN: READY\r\n');
    expect(await host.at('AT+CIMI')).toBe(`\r\n208011234567890\r\n${OK}`);
    for (const bad of [{ imsi: '12' }, { spn: 'a"b' }, { urcs: 'both' }, { msisdn: '1' }]) {
      expect((await control(sim, 'POST', '/fault', { simSwap: bad })).status, JSON.stringify(bad)).toBe(400);
    }
    expect((await control(sim, 'POST', '/fault', { otherContext: { ctx: 2, apn: 'internet' } })).json).toEqual({ ok: true });
    expect(await host.at('AT+QIACT?')).toBe(`\r\n+QIACT: 2,1,1,"10.7.157.2"\r\n${OK}`);
  });

  it.each([
    [['--imsi', '27001x'], '--imsi wants 6-15 digits'],
    [['--spn', 'say "hi"'], '--spn wants up to 16 printable ASCII characters'],
    [['--network'], '--network needs --mmsc HOST:PORT'],
    [['--receive-sample'], '--receive-sample needs --mmsc HOST:PORT'],
    [['--mmsc', '127.0.0.1:0', '--delivery-for', '+4917=lost'], '--delivery-for plan of "+4917" must be one of retrieved, rejected'],
    [['--mmsc', '127.0.0.1:0', '--delivery-for', '+4917'], '--delivery-for wants ADDRESS=PLAN[:DELAY_MS], got "+4917"'],
    [['--delivery-for', '+4917=rejected:500'], '--delivery-for needs --mmsc HOST:PORT'],
  ])('refuses %j with exit 2 and says why', async (args, why) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mmsd-sim-it-'));
    try {
      const proc = spawn(process.execPath, [CLI, '--pty', path.join(dir, 'modem'), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const code = await new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
      expect(code).toBe(2);
      expect(stderr).toContain(why);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('loses the port for a while and serves the same module again on the same PATH', async () => {
    const sim = await startSim((d) => ['--pty', path.join(d, 'modem')]);
    const { host, port } = await openPty(sim.ready.port);
    await host.at('ATE0');
    await host.at('AT+QIACT=1');
    const closed = new Promise<void>((r) => port.once('close', () => r()));
    await control(sim, 'POST', '/fault', { portLoss: 500 });
    await closed;
    await until(() => !existsSync(sim.ready.port), 5000, 'PATH gone', 10);
    await until(() => existsSync(sim.ready.port), 5000, 'PATH back', 10);
    const again = await openPty(sim.ready.port);
    // Same module, no restart: echo still off, context still active.
    expect(await again.host.at('AT+QIACT?')).toBe(info('+QIACT: 1,1,1,"10.7.157.1"'));
  });

  it('removes PATH and stops socat on SIGTERM', async () => {
    const sim = await startSim((d) => ['--pty', path.join(d, 'modem')]);
    expect(existsSync(sim.ready.port)).toBe(true);
    const exited = new Promise<number | null>((r) => sim.proc.once('exit', (code) => r(code)));
    sim.proc.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(existsSync(sim.ready.port)).toBe(false);
  });

  it('sends a real MMS through the loopback MMSC with --mmsc', async () => {
    const sim = await startSim((d) => ['--pty', path.join(d, 'modem'), '--mmsc', '127.0.0.1:0', '--store', path.join(d, 'store')]);
    expect(sim.ready.mmsc).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mms$/);
    const mmsc = new URL(sim.ready.mmsc!);
    const { host } = await openPty(sim.ready.port);
    await host.at('ATE0');
    expect(await host.at('AT+QIACT=1')).toBe(OK);
    expect(await host.at(`AT+QMMSCFG="mmsc","${sim.ready.mmsc}"`)).toBe(OK);
    expect(await host.at(`AT+QMMSCFG="proxy","${mmsc.hostname}",${mmsc.port}`)).toBe(OK);
    expect(await host.at('AT+QMMSEDIT=1,1,"+4917012345"')).toBe(OK);
    expect(await host.at('AT+QMMSEDIT=4,1,"hello"')).toBe(OK);
    expect(await host.at('AT+QFUPL="RAM:note.txt",5,10,1')).toBe('\r\nCONNECT\r\n');
    await host.data(Buffer.from('hi +!'));
    expect(await host.at('AT+QMMSEDIT=5,1,"RAM:note.txt"')).toBe(OK);
    const m = host.out.length;
    await host.at('AT+QMMSEND=60');
    expect(await host.waitFor(/\+QMMSEND: .*\r\n$/, m, 20_000)).toBe(`${OK}\r\n+QMMSEND: 0,200\r\n`);
    const { json: received } = await control<ReceivedJson[]>(sim, 'GET', '/received');
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ to: ['+4917012345'], subject: 'hello' });
    expect(received[0].parts.map((p) => p.name)).toContain('note.txt');
  });
});

describe('mmsd-sim --receive-sample', () => {
  it('pushes the sample notification, serves its content through the proxy to AT+QHTTP…, and records the NotifyResp', async () => {
    const sim = await startSim((d) => ['--pty', path.join(d, 'modem'), '--mmsc', '127.0.0.1:0', '--receive-sample']);
    const proxy = `${new URL(sim.ready.mmsc!).origin}/`;
    const { host } = await openPty(sim.ready.port);
    await host.at('ATE0');
    // The notification, in as many SMS as it took, read back and reassembled.
    let list = '';
    await until(async () => /\+CMGL: /.test((list = await host.at('AT+CMGL=4'))), 5000, 'the notification SMS in the list', 0);
    const sms = [...list.matchAll(/\+CMGL: \d+,\d,,\d+\r\n([0-9A-F]+)/g)].map((x) => decodeSmsPdu(x[1]) as SmsDeliver);
    expect(sms.length).toBeGreaterThan(0);
    const segments = sms.map((x) => segmentOf(x));
    const push = segments.every((x) => x === undefined) ? sms[0].data : (reassemble(segments.map((x) => x!))[0] as { data: Buffer }).data;
    const pushed = decodePushedMms(decodeWspPush(push).body);
    if (pushed.kind !== 'notification') throw new Error(`expected a notification, got ${pushed.kind}`);
    const n = pushed.pdu;

    for (const cmd of ['AT+QIACT=1', 'AT+QHTTPCFG="contextid",1', 'AT+QHTTPCFG="requestheader",1']) expect(await host.at(cmd), cmd).toBe(OK);
    const setUrl = async (): Promise<void> => {
      expect(await host.at(`AT+QHTTPURL=${proxy.length},10`)).toBe('\r\nCONNECT\r\n');
      const m = host.out.length;
      host.writeRaw(Buffer.from(proxy));
      await host.waitFor(/\r\nOK\r\n$/, m);
    };
    await setUrl();
    const get = `GET ${n.contentLocation} HTTP/1.1\r\nHost: ${new URL(n.contentLocation).host}\r\nAccept: application/vnd.wap.mms-message\r\n\r\n`;
    expect(await host.at(`AT+QHTTPGET=30,${get.length}`)).toBe('\r\nCONNECT\r\n');
    let m = host.out.length;
    host.writeRaw(Buffer.from(get));
    expect(await host.waitFor(/\+QHTTPGET: [^\r]*\r\n/, m)).toBe(`${OK}\r\n+QHTTPGET: 0,200,${n.messageSize}\r\n`);
    m = host.out.length;
    host.writeRaw(Buffer.from('AT+QHTTPREADFILE="RAM:in.mms",30\r'));
    expect(await host.waitFor(/\+QHTTPREADFILE: [^\r]*\r\n/, m)).toBe(`${OK}\r\n+QHTTPREADFILE: 0\r\n`);
    m = host.out.length;
    host.writeRaw(Buffer.from('AT+QFDWL="RAM:in.mms"\r'));
    const size = n.messageSize!;
    const dl = Buffer.from(await host.waitFor(/\+QFDWL: [^\r]*\r\n\r\nOK\r\n$/, m), 'latin1');
    const data = dl.subarray('\r\nCONNECT\r\n'.length, '\r\nCONNECT\r\n'.length + size);
    expect(dl.subarray('\r\nCONNECT\r\n'.length + size).toString('latin1')).toBe(`\r\n+QFDWL: ${size},${checksum16(data).toString(16)}\r\n${OK}`);
    const conf = decodeRetrieveConf(data);
    expect(conf.subject).toBe('门口的照片');
    expect(conf.parts.map((p) => p.data)).toEqual(sampleInboundRequest().parts.map((p) => p.data));
    expect(await host.at('AT+QFDEL="RAM:in.mms"')).toBe(OK);

    const resp = encodeNotifyRespInd({ transactionId: n.transactionId, mmsVersion: '1.2', status: 'retrieved' });
    const post = Buffer.concat([Buffer.from(`POST ${sim.ready.mmsc!} HTTP/1.1\r\nHost: ${new URL(sim.ready.mmsc!).host}\r\nContent-Type: application/vnd.wap.mms-message\r\nContent-Length: ${resp.length}\r\n\r\n`), resp]);
    await setUrl();
    expect(await host.at(`AT+QHTTPPOST=${post.length},10,30`)).toBe('\r\nCONNECT\r\n');
    m = host.out.length;
    host.writeRaw(post);
    expect(await host.waitFor(/\+QHTTPPOST: [^\r]*\r\n/, m)).toBe(`${OK}\r\n+QHTTPPOST: 0,200,0\r\n`);
    const { json: acks } = await control<{ transactionId: string; status: string }[]>(sim, 'GET', '/received-acks');
    expect(acks).toMatchObject([{ transactionId: n.transactionId, status: 'retrieved' }]);
    const { json: inbox } = await control<{ served: number }[]>(sim, 'GET', '/inbox');
    expect(inbox).toMatchObject([{ served: 1 }]);
  });
});

describe('mmsd-sim --tcp', () => {
  it('serves one client at a time and answers like on the pty', async () => {
    const sim = await startSim(() => ['--tcp', '127.0.0.1:0']);
    const m = /^tcp:\/\/127\.0\.0\.1:(\d+)$/.exec(sim.ready.port);
    expect(m).not.toBeNull();
    const port = Number(m![1]);
    const sock = net.connect(port, '127.0.0.1');
    openPorts.push({ close: () => sock.destroy() });
    await new Promise<void>((r) => sock.once('connect', () => r()));
    const host = new Host((b) => sock.write(b));
    sock.on('data', (b: Buffer) => host.push(b));
    expect(await host.at('AT')).toBe(`AT\r${OK}`);
    await host.at('ATE0');
    expect(await host.at('AT+CEREG?')).toBe(info('+CEREG: 0,1'));

    const second = net.connect(port, '127.0.0.1');
    openPorts.push({ close: () => second.destroy() });
    await new Promise<void>((r) => second.once('close', () => r()));

    const lost = new Promise<void>((r) => sock.once('close', () => r()));
    await control(sim, 'POST', '/fault', { portLoss: 300 });
    await lost;
    let again: net.Socket | undefined;
    const deadline = Date.now() + 5000;
    while (!again) {
      const s = net.connect(port, '127.0.0.1');
      const okConnect = await new Promise<boolean>((r) => {
        s.once('connect', () => r(true));
        s.once('error', () => r(false));
      });
      if (okConnect) again = s;
      else if (Date.now() > deadline) throw new Error('port did not come back');
      else await new Promise((r) => setTimeout(r, 50));
    }
    openPorts.push({ close: () => again.destroy() });
    const host2 = new Host((b) => again.write(b));
    again.on('data', (b: Buffer) => host2.push(b));
    expect(await host2.at('AT+CEREG?')).toBe(info('+CEREG: 0,1'));
  });
});

describe('mmsd-sim SMS side and delivery reports', () => {
  it('pushes a delivery report per recipient after a send that asked for one: +CMTI, readable with AT+CMGR', async () => {
    const sim = await startSim((d) => ['--pty', path.join(d, 'modem'), '--mmsc', '127.0.0.1:0', '--delivery-delay-ms', '100']);
    const mmsc = new URL(sim.ready.mmsc!);
    expect(await control(sim, 'POST', '/fault', { delivery: { recipients: { '+4917022222': 'rejected' } } })).toEqual({ status: 200, json: { ok: true } });
    const { host } = await openPty(sim.ready.port);
    await host.at('ATE0');
    for (const cmd of ['AT+CMGF=0', 'AT+CNMI=2,1,0,0,0', 'AT+QIACT=1', `AT+QMMSCFG="mmsc","${sim.ready.mmsc}"`]) expect(await host.at(cmd), cmd).toBe(OK);
    expect(await host.at('AT+CPMS="ME","ME","ME"')).toBe(info('+CPMS: 0,25,0,25,0,25'));
    expect(await host.at(`AT+QMMSCFG="proxy","${mmsc.hostname}",${mmsc.port}`)).toBe(OK);
    expect(await host.at('AT+QMMSCFG="sendparam",6,2,1,0,2,4')).toBe(OK); // <sendrep> 1: delivery report
    expect(await host.at('AT+QMMSEDIT=1,1,"+4917012345"')).toBe(OK);
    expect(await host.at('AT+QMMSEDIT=1,1,"+4917022222"')).toBe(OK);
    expect(await host.at('AT+QMMSEDIT=4,1,"report please"')).toBe(OK);
    const m = host.out.length;
    await host.at('AT+QMMSEND=60');
    await host.waitFor(/\+QMMSEND: 0,200\r\n/, m, 20_000);
    const urcs = await host.waitFor(/(\+CMTI: "ME",\d+\r\n[^]*){2}/, m, 10_000);
    const indexes = [...urcs.matchAll(/\+CMTI: "ME",(\d+)/g)].map((x) => Number(x[1]));
    expect(indexes).toEqual([0, 1]);

    const { json: received } = await control<(ReceivedJson & { id: string })[]>(sim, 'GET', '/received');
    const reports = [];
    for (const i of indexes) {
      const r = await host.at(`AT+CMGR=${i}`);
      const got = /^\r\n\+CMGR: 0,,(\d+)\r\n([0-9A-F]+)\r\n\r\nOK\r\n$/.exec(r);
      expect(got, r).not.toBeNull();
      expect(Number(got![1])).toBe(got![2].length / 2 - 1);
      const sms = decodeSmsPdu(got![2]) as SmsDeliver;
      expect(isWapPushSegment(sms)).toBe(true);
      reports.push(decodePushedMms(decodeWspPush(sms.data).body));
    }
    expect(reports.map((r) => (r.kind === 'delivery' ? [r.pdu.to, r.pdu.status, r.pdu.messageId] : r.kind)).sort()).toEqual([
      ['+4917012345', 'retrieved', received[0].id],
      ['+4917022222', 'rejected', received[0].id],
    ]);

    // A plain text SMS from the control API sits beside them; all three listed, all read now.
    const { status, json } = await control<{ sms: { stored: { index: number } }[] }>(sim, 'POST', '/sms', { text: 'hello', from: '+4917099' });
    expect(status).toBe(200);
    expect(json.sms.map((s) => s.stored.index)).toEqual([2]);
    await host.waitFor(/\+CMTI: "ME",2\r\n/, m);
    const list = await host.at('AT+CMGL=4');
    expect([...list.matchAll(/\+CMGL: (\d+),(\d),,\d+/g)].map((x) => [Number(x[1]), Number(x[2])])).toEqual([
      [0, 1],
      [1, 1],
      [2, 0],
    ]);
    expect(await host.at('AT+CMGD=0,4')).toBe(OK);
    const { json: state } = await control<{ sms: { stores: { ME: { messages: unknown[] } } } }>(sim, 'GET', '/state');
    expect(state.sms.stores.ME.messages).toEqual([]);
  });

  it('answers POST /sms errors by name and stores nothing', async () => {
    const sim = await startSim((d) => ['--pty', path.join(d, 'modem')]);
    expect(await control(sim, 'POST', '/sms', { text: 'x' })).toEqual({ status: 400, json: { error: 'from must be a non-empty string' } });
    expect(await control(sim, 'POST', '/sms', { pdus: ['zz'] })).toEqual({ status: 400, json: { error: 'pdus[0] is not an SMS PDU in hex (SMSC field first)' } });
    expect(
      await control(sim, 'POST', '/sms', { push: { type: 'delivery', messageId: 'a', to: '+491', status: 'retrieved' }, segments: 2, order: [1, 1] }),
    ).toEqual({ status: 400, json: { error: 'order must be a permutation of 1..2' } });
    expect(await control(sim, 'POST', '/fault', { delivery: { plan: 'lost' } })).toEqual({ status: 400, json: { error: 'no loopback MMSC (start with --mmsc)' } });
    const { json: state } = await control<{ sms: { delivered: number } }>(sim, 'GET', '/state');
    expect(state.sms.delivered).toBe(0);
  });

  it('takes SMS through the Testbed: plain text and a push in segments, visible in /state', async () => {
    const tb = await Testbed.start({ daemon: false });
    try {
      const text = await tb.sms({ text: 'hello', from: '+4917099' });
      const push = await tb.sms({ push: { type: 'delivery', messageId: 'm1', to: '+4917012345', status: 'expired' }, segments: 2, order: 'reverse' });
      expect([...text, ...push].map((a) => a.stored?.index)).toEqual([0, 1, 2]);
      const state = (await tb.simState()) as { sms: { stores: { ME: { messages: { index: number; stat: number; pdu: string }[] } } } };
      expect(state.sms.stores.ME.messages).toEqual([...text, ...push].map((a, index) => ({ index, stat: 0, pdu: a.pdu })));
      await expect(tb.sms({ text: 'no sender' })).rejects.toThrow(/HTTP 400 .*from must be a non-empty string/);
    } finally {
      await tb.stop();
    }
  });
});
