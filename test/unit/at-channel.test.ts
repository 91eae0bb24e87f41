// AtChannel against a scripted fake transport: final codes, prefixes, URCs and their routing,
// echo, timeouts and resynchronisation, data mode run for a protocol, escape, and transport loss
// with reopen. (The QFUPL upload protocol's own tests: modem-qfupl.test.ts.)
import { nextEvent } from '../../src/harness/wait.js';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AtChannel } from '../../src/at/channel.js';
import { AtError, AtErrorResult, ClosedError, CmeError, CmsError, TimeoutError } from '../../src/at/errors.js';
import type { DataModeProtocol, DataModeSession } from '../../src/at/types.js';
import { FakeTransport, ScriptedModem, rig, stopChannels, stopLater, until } from './at-fakes.js';

const log = pino({ level: 'silent' });

afterEach(stopChannels);

describe('AtChannel commands', () => {
  it('writes the command with CR in one write and resolves its info lines on OK', async () => {
    const r = await rig();
    r.m().on('AT+CGREG?', '+CGREG: 2,1,"1A2B","01C3D4E5",7\r\n\r\nOK');
    const res = await r.ch.command('AT+CGREG?', { prefix: '+CGREG:' });
    expect(res.lines).toEqual(['+CGREG: 2,1,"1A2B","01C3D4E5",7']);
    expect(r.t().writes.map((b) => b.toString())).toContain('AT+CGREG?\r');
    expect(r.urcs).toEqual([]);
  });

  it('rejects cleanly when the error comes back before the write has resolved', async () => {
    // A pty drains after the module (or the sim) already answered: "+CME ERROR: 10" to AT+CPIN?
    // with no SIM used to reject a promise nobody awaited yet, and Node ended the daemon for it.
    const r = await rig();
    r.m().on('AT+CPIN?', '+CME ERROR: 10');
    const t = r.t();
    t.write = async (data: Buffer): Promise<void> => {
      t.writes.push(Buffer.from(data));
      setImmediate(() => t.onWrite?.(data));
      await new Promise((res) => setTimeout(res, 30));
    };
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => {
      unhandled.push(e);
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      const err = await r.ch.command('AT+CPIN?').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CmeError);
      expect((err as CmeError).code).toBe(10);
      await new Promise((res) => setImmediate(res));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('rejects ERROR, +CME ERROR, +CMS ERROR and NO CARRIER with typed errors', async () => {
    const r = await rig();
    r.m().on('AT+A', 'ERROR').on('AT+B', '+CME ERROR: 10').on('AT+C', '+CMS ERROR: 500');
    r.m().on('AT+D', '+CME ERROR: SIM not inserted').on('AT+E', 'NO CARRIER');
    await expect(r.ch.command('AT+A')).rejects.toBeInstanceOf(AtErrorResult);
    const cme = await r.ch.command('AT+B').catch((e: unknown) => e);
    expect(cme).toBeInstanceOf(CmeError);
    expect((cme as CmeError).code).toBe(10);
    expect((cme as CmeError).command).toBe('AT+B');
    const cms = await r.ch.command('AT+C').catch((e: unknown) => e);
    expect(cms).toBeInstanceOf(CmsError);
    expect((cms as CmsError).code).toBe(500);
    const text = await r.ch.command('AT+D').catch((e: unknown) => e);
    expect(text).toBeInstanceOf(CmeError);
    expect((text as CmeError).text).toBe('SIM not inserted');
    const nc = await r.ch.command('AT+E').catch((e: unknown) => e);
    expect(nc).toBeInstanceOf(AtErrorResult);
    expect((nc as Error).message).toContain('NO CARRIER');
  });

  it('collects only prefixed lines and routes the rest as URCs, even mid-response', async () => {
    const r = await rig();
    r.m().on('AT+QFLST="RAM:*"', '+QFLST: "RAM:a.txt",10\r\n+CEREG: 1\r\n+QFLST: "RAM:b.jpg",20\r\nRDY\r\nnoise\r\n\r\nOK');
    const res = await r.ch.command('AT+QFLST="RAM:*"', { prefix: '+QFLST:' });
    expect(res.lines).toEqual(['+QFLST: "RAM:a.txt",10', '+QFLST: "RAM:b.jpg",20']);
    expect(r.urcs).toEqual(['+CEREG: 1', 'RDY']);
    expect(r.unsolicited).toEqual(['noise']);
  });

  it('without a prefix collects every line that is not a registered URC', async () => {
    const r = await rig();
    r.m().on('ATI', 'Quectel\r\nEC25\r\n+QIND: "csq",20,99\r\nRevision: EC25EFAR06A06M4G\r\n\r\nOK');
    const res = await r.ch.command('ATI');
    expect(res.lines).toEqual(['Quectel', 'EC25', 'Revision: EC25EFAR06A06M4G']);
    expect(r.urcs).toEqual(['+QIND: "csq",20,99']);
  });

  it('takes "+CPIN: READY" as the answer of AT+CPIN? and as a URC otherwise', async () => {
    const r = await rig();
    r.m().on('AT+CPIN?', '+CPIN: READY\r\n\r\nOK');
    expect((await r.ch.command('AT+CPIN?', { prefix: '+CPIN:' })).lines).toEqual(['+CPIN: READY']);
    expect(r.urcs).toEqual([]);
    r.t().reply('\r\n+CPIN: READY\r\n');
    await until(() => r.urcs.length === 1);
    expect(r.urcs).toEqual(['+CPIN: READY']);
  });

  it('emits URCs between commands and splits lines on CR, LF or both, across chunks', async () => {
    const r = await rig();
    r.t().reply('\r\n+CEREG: 5\r');
    r.t().reply('\n+QIURC: "pdpde');
    r.t().reply('act",1\n\n+CGREG: 1\r\n');
    await until(() => r.urcs.length === 3);
    expect(r.urcs).toEqual(['+CEREG: 5', '+QIURC: "pdpdeact",1', '+CGREG: 1']);
  });

  it('drops the echo when the module has echo on', async () => {
    const r = await rig();
    r.m().echo = true;
    r.m().on('AT+CSQ', '+CSQ: 23,99\r\n\r\nOK');
    expect((await r.ch.command('AT+CSQ', { prefix: '+CSQ:' })).lines).toEqual(['+CSQ: 23,99']);
    r.m().on('AT+CGMR', 'EC25EFAR06A06M4G\r\n\r\nOK');
    expect((await r.ch.command('AT+CGMR')).lines).toEqual(['EC25EFAR06A06M4G']);
    expect(r.urcs).toEqual([]);
  });

  it('runs one command at a time, in order', async () => {
    const r = await rig();
    r.m().on('AT+X=*', (c) => `+X: ${c.slice(5)}\r\n\r\nOK`);
    const all = await Promise.all([1, 2, 3, 4].map((n) => r.ch.command(`AT+X=${n}`, { prefix: '+X:' })));
    expect(all.map((a) => a.lines)).toEqual([['+X: 1'], ['+X: 2'], ['+X: 3'], ['+X: 4']]);
    expect(r.m().commands).toEqual(['AT+X=1', 'AT+X=2', 'AT+X=3', 'AT+X=4']);
  });

  it('starts the timer only once the write resolved', async () => {
    const r = await rig();
    r.t().writeDelayMs = 150;
    await expect(r.ch.command('AT', { timeoutMs: 50 })).resolves.toEqual({ lines: [] });
  });

  it('refuses a command holding CR, LF or Ctrl-Z without writing it', async () => {
    const r = await rig();
    await expect(r.ch.command('AT+X="a\rAT+CFUN=0"')).rejects.toBeInstanceOf(AtError);
    await expect(r.ch.command('AT+X="\x1a"')).rejects.toBeInstanceOf(AtError);
    expect(r.t().writes).toEqual([]);
  });

  it('after a timeout resynchronises, so a late OK is not taken for the next command', async () => {
    const r = await rig();
    r.m().on('AT+SLOW', () => undefined);
    r.m().on('AT+CGATT?', '+CGATT: 1\r\n\r\nOK');
    const err = await r.ch.command('AT+SLOW', { timeoutMs: 30 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).timeoutMs).toBe(30);
    // The timed-out command's answer turns up late, before the next command.
    r.t().reply('\r\nsome late info\r\n\r\nOK\r\n');
    const res = await r.ch.command('AT+CGATT?', { prefix: '+CGATT:' });
    expect(res.lines).toEqual(['+CGATT: 1']);
    expect(r.m().commands).toEqual(['AT+SLOW', 'AT+CMEE?', 'AT+CGATT?']);
  });

  it('does not take a stray OK arriving during resynchronisation for the probe answer', async () => {
    const r = await rig();
    r.m().on('AT+SLOW', () => undefined);
    // The late OK of AT+SLOW comes just before the probe's own answer.
    r.m().on('AT+CMEE?', 'OK\r\n\r\n+CMEE: 1\r\n\r\nOK');
    r.m().on('AT+CSQ', '+CSQ: 10,99\r\n\r\nOK');
    await expect(r.ch.command('AT+SLOW', { timeoutMs: 30 })).rejects.toBeInstanceOf(TimeoutError);
    expect((await r.ch.command('AT+CSQ', { prefix: '+CSQ:' })).lines).toEqual(['+CSQ: 10,99']);
  });

  it('keeps the channel usable when the resynchronisation probe is never answered', async () => {
    const r = await rig();
    r.m().on('AT+SLOW', () => undefined).on('AT+CMEE?', () => undefined);
    await expect(r.ch.command('AT+SLOW', { timeoutMs: 20 })).rejects.toBeInstanceOf(TimeoutError);
    await expect(r.ch.command('AT')).resolves.toEqual({ lines: [] });
    expect(r.m().commands.filter((c) => c === 'AT+CMEE?')).toHaveLength(3);
  });

  it('logs garbage lines, emits them as unsolicited between commands and ignores them inside one', async () => {
    const r = await rig();
    r.t().reply('\r\n\x00\x13\xff\xfe\r\n');
    await until(() => r.unsolicited.length === 1);
    expect(r.unsolicited[0]).toContain('\u0013');
    r.m().on('AT+CGSN', '\x01\x02junk\r\n867698040123456\r\n\r\nOK');
    expect((await r.ch.command('AT+CGSN')).lines).toEqual(['867698040123456']);
    expect(r.unsolicited).toHaveLength(1);
    expect(r.urcs).toEqual([]);
  });

  it('drops a stray final result code that arrives between commands', async () => {
    const r = await rig();
    r.t().reply('\r\nOK\r\n\r\nERROR\r\n');
    r.m().on('AT+CSQ', '+CSQ: 5,99\r\n\r\nOK');
    expect((await r.ch.command('AT+CSQ', { prefix: '+CSQ:' })).lines).toEqual(['+CSQ: 5,99']);
    expect(r.urcs).toEqual([]);
  });

  it('knows only the URCs registered, until their registration is removed', async () => {
    const r = await rig({}, undefined, []);
    const mine: string[] = [];
    const off = r.ch.onUrc('+MYURC:', (l) => mine.push(l));
    r.m().on('ATI', '+MYURC: 1\r\n+CEREG: 1\r\n\r\nOK');
    expect((await r.ch.command('ATI')).lines).toEqual(['+CEREG: 1']);
    expect(mine).toEqual(['+MYURC: 1']);
    off();
    expect((await r.ch.command('ATI')).lines).toEqual(['+MYURC: 1', '+CEREG: 1']);
    r.t().reply('\r\n+MYURC: 2\r\n');
    await until(() => r.unsolicited.length === 1);
    expect(r.unsolicited).toEqual(['+MYURC: 2']);
    expect(mine).toEqual(['+MYURC: 1']);
  });
});

describe('AtChannel URC routing', () => {
  const PDU = '07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07';

  it('hands a URC its trailing lines, between commands and mid-response', async () => {
    const r = await rig();
    const cmt: [string, readonly string[]][] = [];
    r.ch.onUrc('+CMT:', (line, trailing) => cmt.push([line, trailing]), { trailingLines: 1 });
    r.t().reply(`\r\n+CMT: ,24\r\n${PDU}\r\n`);
    await until(() => cmt.length === 1);
    // Mid-response of a command without a prefix, whose info lines would otherwise take the PDU.
    r.m().on('AT+CGSN', `867698040123456\r\n+CMT: "",24\r\n${PDU}\r\n\r\nOK`);
    expect((await r.ch.command('AT+CGSN')).lines).toEqual(['867698040123456']);
    expect(cmt).toEqual([
      ['+CMT: ,24', [PDU]],
      ['+CMT: "",24', [PDU]],
    ]);
    expect(r.unsolicited).toEqual([]);
  });

  it('calls every handler of a prefix once per URC, and the others even when one throws', async () => {
    const r = await rig();
    const a: string[] = [];
    const b: string[] = [];
    const offA = r.ch.onUrc('+CMTI:', (l) => a.push(l));
    r.ch.onUrc('+CMTI:', () => {
      throw new Error('handler bug');
    });
    r.ch.onUrc('+CMTI:', (l) => b.push(l));
    r.t().reply('\r\n+CMTI: "ME",3\r\n');
    await until(() => b.length === 1);
    offA();
    r.t().reply('\r\n+CMTI: "ME",4\r\n');
    await until(() => b.length === 2);
    expect(a).toEqual(['+CMTI: "ME",3']);
    expect(b).toEqual(['+CMTI: "ME",3', '+CMTI: "ME",4']);
    // The rig's own registration of +CMTI: got both as well; the channel still works.
    expect(r.urcs).toEqual(['+CMTI: "ME",3', '+CMTI: "ME",4']);
    await expect(r.ch.command('AT')).resolves.toEqual({ lines: [] });
  });

  it('drops a URC whose trailing lines were cut off by the port closing', async () => {
    const r = await rig();
    const cmt: string[] = [];
    r.ch.onUrc('+CMT:', (l) => cmt.push(l), { trailingLines: 1 });
    const reconnected = nextEvent(r.ch, 'connected');
    r.t().reply('\r\n+CMT: ,24\r\n'); // taken at once: the fake emits synchronously
    r.t().lose();
    await reconnected;
    r.t().reply('\r\n+CEREG: 1\r\n');
    await until(() => r.urcs.length === 1);
    expect(r.urcs).toEqual(['+CEREG: 1']);
    expect(cmt).toEqual([]);
  });

  it('refuses an empty prefix and a negative number of trailing lines', () => {
    const ch = new AtChannel({ logger: log, openTransport: () => new FakeTransport() });
    expect(() => ch.onUrc('', () => undefined)).toThrow(TypeError);
    expect(() => ch.onUrc('+CMT:', () => undefined, { trailingLines: -1 })).toThrow(TypeError);
  });
});

describe('AtChannel PDU commands (27.005 AT+CMGR, AT+CMGL in PDU mode)', () => {
  const PDU1 = '07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07';
  const PDU2 = '0791448720003023240DD0E474D81C0EBB010000111011315214000BE474D81C0EBB5DE3771B';
  const CMGR = { prefix: '+CMGR:', pdu: true } as const;
  const CMGL = { prefix: '+CMGL:', pdu: true } as const;

  it('takes the line after each header as its PDU: AT+CMGR', async () => {
    const r = await rig();
    r.m().on('AT+CMGR=3', `+CMGR: 0,,38\r\n${PDU1}\r\n\r\nOK`);
    expect(await r.ch.command('AT+CMGR=3', CMGR)).toEqual({
      lines: ['+CMGR: 0,,38', PDU1],
      pdus: [{ header: '+CMGR: 0,,38', body: PDU1 }],
    });
    expect(r.urcs).toEqual([]);
    expect(r.unsolicited).toEqual([]);
  });

  it('pairs every header with its PDU: AT+CMGL=4, and an empty list', async () => {
    const r = await rig();
    r.m().on('AT+CMGL=4', `+CMGL: 1,0,,38\r\n${PDU1}\r\n+CMGL: 2,1,,37\r\n${PDU2}\r\n\r\nOK`);
    expect(await r.ch.command('AT+CMGL=4', CMGL)).toEqual({
      lines: ['+CMGL: 1,0,,38', PDU1, '+CMGL: 2,1,,37', PDU2],
      pdus: [
        { header: '+CMGL: 1,0,,38', body: PDU1 },
        { header: '+CMGL: 2,1,,37', body: PDU2 },
      ],
    });
    r.m().on('AT+CMGL=4', 'OK');
    expect(await r.ch.command('AT+CMGL=4', CMGL)).toEqual({ lines: [], pdus: [] });
  });

  it('routes a +CMTI arriving mid-response as a URC, between pairs and even inside one', async () => {
    const r = await rig();
    r.m().on(
      'AT+CMGL=4',
      `+CMGL: 1,0,,38\r\n${PDU1}\r\n+CMTI: "ME",5\r\n+CMGL: 2,1,,37\r\n+CMTI: "ME",6\r\n${PDU2}\r\n\r\nOK`,
    );
    const res = await r.ch.command('AT+CMGL=4', CMGL);
    expect(res.pdus).toEqual([
      { header: '+CMGL: 1,0,,38', body: PDU1 },
      { header: '+CMGL: 2,1,,37', body: PDU2 },
    ]);
    expect(res.lines).toEqual(['+CMGL: 1,0,,38', PDU1, '+CMGL: 2,1,,37', PDU2]);
    expect(r.urcs).toEqual(['+CMTI: "ME",5', '+CMTI: "ME",6']);
  });

  it('fails with AtError when a header comes without its PDU, and typed on +CMS ERROR', async () => {
    const r = await rig();
    r.m().on('AT+CMGR=1', '+CMGR: 0,,38\r\n\r\nOK');
    const err = await r.ch.command('AT+CMGR=1', CMGR).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AtError);
    expect((err as Error).message).toBe('AT+CMGR=1: "+CMGR: 0,,38" came without its PDU line');
    r.m().on('AT+CMGR=2', '+CMS ERROR: 321');
    const cms = await r.ch.command('AT+CMGR=2', CMGR).catch((e: unknown) => e);
    expect(cms).toBeInstanceOf(CmsError);
    expect((cms as CmsError).code).toBe(321);
    // Without the PDU type the same answer is a header and a line for no one.
    r.m().on('AT+CMGR=3', `+CMGR: 0,,38\r\n${PDU1}\r\n\r\nOK`);
    expect(await r.ch.command('AT+CMGR=3', { prefix: '+CMGR:' })).toEqual({ lines: ['+CMGR: 0,,38'] });
    expect(r.unsolicited).toEqual([PDU1]);
  });

  it('refuses a PDU command without a prefix before writing it', async () => {
    const r = await rig();
    await expect(r.ch.command('AT+CMGR=1', { pdu: true })).rejects.toThrow('a PDU command needs the prefix');
    expect(r.t().writes).toEqual([]);
  });
});

/** A download: "CONNECT <n>", exactly n raw bytes, then "+XDL: <n>" and OK (a QFDWL-like shape). */
class TestDownload implements DataModeProtocol<{ connectLine: string; data: Buffer; lines: string[] }> {
  readonly name = 'download';
  rawBytesAfter(line: string): number {
    return Number(/^CONNECT (\d+)$/.exec(line)?.[1] ?? 0);
  }
  async run(s: DataModeSession): Promise<{ connectLine: string; data: Buffer; lines: string[] }> {
    const b = await s.receive('bytes');
    const f = await s.receive('final');
    if (b.kind !== 'bytes' || f.kind !== 'final') throw new Error(`unexpected ${b.kind}, ${f.kind}`);
    return { connectLine: s.connectLine, data: b.data, lines: f.lines };
  }
}

/** Sends one block, waits for its ">" token; `fail` makes it throw after CONNECT instead. */
class TestBlock implements DataModeProtocol<string> {
  readonly name = 'test transfer';
  readonly tokens = ['>'];
  readonly restartUrcs = ['RDY'];
  session: DataModeSession | undefined;
  constructor(private readonly fail = false) {}
  async run(s: DataModeSession): Promise<string> {
    this.session = s;
    if (this.fail) throw new Error('protocol gave up');
    const r = await s.send(Buffer.from('payload'), 'token');
    return r.kind === 'token' ? r.token : r.kind;
  }
}

describe('AtChannel data mode', () => {
  // Holds CR, LF, "OK", "A" and "+": none of it may be read as a line.
  const PAYLOAD = Buffer.from('\r\nOK\r\nA+X\x00\xff\n', 'latin1');

  function downloadModule(r: Awaited<ReturnType<typeof rig>>, chunks: (all: Buffer) => Buffer[]): void {
    const t = r.t();
    const onWrite = t.onWrite;
    t.onWrite = (d) => {
      if (d.toString('latin1') !== 'AT+XDL\r') return onWrite?.(d);
      const all = Buffer.concat([
        Buffer.from(`\r\nCONNECT ${PAYLOAD.length}\r\n`),
        PAYLOAD,
        Buffer.from(`\r\n+XDL: ${PAYLOAD.length}\r\n\r\nOK\r\n`),
      ]);
      const parts = chunks(all);
      const next = (i: number): void => {
        if (i >= parts.length) return;
        t.reply(parts[i]);
        setImmediate(() => next(i + 1));
      };
      next(0);
    };
  }

  for (const [how, chunks] of [
    ['in one chunk', (all: Buffer) => [all]],
    ['byte by byte', (all: Buffer) => [...all].map((b) => Buffer.from([b]))],
  ] as const) {
    it(`reads exactly the raw bytes announced after CONNECT, then the trailer, ${how}`, async () => {
      const r = await rig();
      downloadModule(r, chunks);
      const res = await r.ch.dataMode('AT+XDL', new TestDownload());
      expect(res).toEqual({ connectLine: `CONNECT ${PAYLOAD.length}`, data: PAYLOAD, lines: [`+XDL: ${PAYLOAD.length}`] });
      expect(r.unsolicited).toEqual([]);
      // The module left data mode with its OK: the next command goes out as it is.
      await expect(r.ch.command('AT')).resolves.toEqual({ lines: [] });
      expect(r.t().writes.map((w) => w.toString('latin1'))).toEqual(['AT+XDL\r', 'AT\r']);
    });
  }

  it('fails a transfer at once on a restart URC its protocol names, and needs no escape after it', async () => {
    const r = await rig();
    r.m().on('AT+XUP', 'CONNECT');
    const t = r.t();
    t.onWrite = ((inner) => (d: Buffer) => {
      if (d.toString('latin1') === 'payload') t.reply('\r\nRDY\r\n');
      else inner?.(d);
    })(t.onWrite);
    const err = await r.ch.dataMode('AT+XUP', new TestBlock(), { timeoutMs: 60_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AtError);
    expect((err as Error).message).toBe('AT+XUP: module restarted during the test transfer (RDY)');
    expect(r.urcs).toEqual(['RDY']);
    await expect(r.ch.command('AT')).resolves.toEqual({ lines: [] });
    expect(r.t().writes.map((w) => w.toString('latin1'))).toEqual(['AT+XUP\r', 'payload', 'AT\r']);
  });

  it('takes the protocol\'s token bare, and leaves data mode with "+++" when the protocol fails', async () => {
    const r = await rig();
    r.m().on('AT+XUP', 'CONNECT');
    const t = r.t();
    t.onWrite = ((inner) => (d: Buffer) => {
      if (d.toString('latin1') === 'payload') t.reply('>');
      else inner?.(d);
    })(t.onWrite);
    expect(await r.ch.dataMode('AT+XUP', new TestBlock())).toBe('>');
    const failing = new TestBlock(true);
    await expect(r.ch.dataMode('AT+XUP', failing)).rejects.toThrow('protocol gave up');
    await expect(r.ch.command('AT')).resolves.toEqual({ lines: [] });
    expect(r.t().writes.map((w) => w.toString('latin1')).slice(-5)).toEqual(['AT+XUP\r', '+++', '\r', 'AT+CMEE?\r', 'AT\r']);
    // A session is good for its own transfer only.
    await expect(failing.session!.send(Buffer.from('late'), 'token')).rejects.toThrow('AT+XUP: the test transfer is over');
    // Outside data mode the token is an ordinary line.
    r.m().on('ATI', '>\r\n\r\nOK');
    expect((await r.ch.command('ATI')).lines).toEqual(['>']);
  });

  it('refuses a protocol with an empty token, or none with a name, before writing anything', async () => {
    const r = await rig();
    const noName: DataModeProtocol<void> = { name: '', run: () => Promise.resolve() };
    const emptyToken: DataModeProtocol<void> = { name: 'x', tokens: [''], run: () => Promise.resolve() };
    await expect(r.ch.dataMode('AT+XUP', noName)).rejects.toBeInstanceOf(AtError);
    await expect(r.ch.dataMode('AT+XUP', emptyToken)).rejects.toThrow('invalid data-mode token ""');
    expect(r.t().writes).toEqual([]);
  });

  it('fails the transfer when the protocol announces an impossible number of raw bytes', async () => {
    const r = await rig();
    r.m().on('AT+XDL', 'CONNECT 12');
    const bad: DataModeProtocol<void> = { name: 'download', rawBytesAfter: () => -1, run: () => Promise.resolve() };
    await expect(r.ch.dataMode('AT+XDL', bad)).rejects.toThrow('expects -1 raw bytes after "CONNECT 12"');
  });
});

describe('AtChannel escape', () => {
  it('writes "+++" framed by silence and resynchronises', async () => {
    const r = await rig();
    await r.ch.escapeDataMode();
    expect(r.t().writes.map((w) => w.toString())).toEqual(['+++', '\r', 'AT+CMEE?\r']);
    expect(r.m().commands).toEqual(['+++', 'AT+CMEE?']);
  });

  it('ignores a failed resynchronisation', async () => {
    const r = await rig();
    r.m().on('AT+CMEE?', () => undefined);
    await expect(r.ch.escapeDataMode()).resolves.toBeUndefined();
    await expect(r.ch.command('AT')).resolves.toEqual({ lines: [] });
  });
});

describe('AtChannel transport loss', () => {
  it('fails the in-flight and queued commands with ClosedError, then reopens and works again', async () => {
    const r = await rig();
    r.m().on('AT+HANG', () => undefined);
    const disconnected = nextEvent(r.ch, 'disconnected');
    const inflight = r.ch.command('AT+HANG').catch((e: unknown) => e);
    const queued = r.ch.command('AT').catch((e: unknown) => e);
    await until(() => r.m().commands.includes('AT+HANG'));
    const reconnected = nextEvent(r.ch, 'connected');
    r.t().lose(new Error('USB gone'));
    expect(await inflight).toBeInstanceOf(ClosedError);
    expect(await queued).toBeInstanceOf(ClosedError);
    // The in-flight command was written (the module may have acted on it); the queued one was not.
    expect((await inflight as ClosedError).mayHaveArrived).toBe(true);
    expect((await queued as ClosedError).mayHaveArrived).toBe(false);
    expect(((await disconnected) as [Error])[0].message).toBe('USB gone');
    expect(r.ch.isConnected).toBe(false);
    await expect(r.ch.command('AT')).rejects.toBeInstanceOf(ClosedError);
    await reconnected;
    expect(r.ch.isConnected).toBe(true);
    expect(r.transports).toHaveLength(2);
    await expect(r.ch.command('AT')).resolves.toEqual({ lines: [] });
  });

  it('keeps retrying to open with backoff and connects once the port appears', async () => {
    let attempts = 0;
    const ch = new AtChannel({
      logger: log,
      reopenMinMs: 5,
      reopenMaxMs: 10,
      openTransport: () => {
        attempts++;
        const t = new FakeTransport(attempts < 4);
        new ScriptedModem(t);
        return t;
      },
    });
    stopLater(ch);
    const connected = nextEvent(ch, 'connected');
    await ch.start();
    expect(ch.isConnected).toBe(false);
    await expect(ch.command('AT')).rejects.toBeInstanceOf(ClosedError);
    await connected;
    expect(attempts).toBe(4);
    await expect(ch.command('AT')).resolves.toEqual({ lines: [] });
  });

  it('stop() fails pending commands, closes the transport and does not reopen', async () => {
    const r = await rig();
    r.m().on('AT+HANG', () => undefined);
    const p = r.ch.command('AT+HANG').catch((e: unknown) => e);
    await until(() => r.m().commands.includes('AT+HANG'));
    // A reopen would be a timer: with timers faked from here, none may be pending after stop(),
    // and running every timer there is opens nothing.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      await r.ch.stop();
      expect(await p).toBeInstanceOf(ClosedError);
      expect(r.t().isOpen).toBe(false);
      expect(r.ch.isConnected).toBe(false);
      expect(vi.getTimerCount()).toBe(0);
      await vi.runAllTimersAsync();
      expect(r.transports).toHaveLength(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it('fails instead of hanging when the transport write rejects', async () => {
    const r = await rig();
    const t = r.t();
    t.write = () => Promise.reject(new Error('EIO'));
    const err = await r.ch.command('AT').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClosedError);
    expect((err as Error).message).toContain('EIO');
    expect((err as ClosedError).mayHaveArrived).toBe(false);
  });
});
