// VirtualModem driven directly (feed/receive) on a manual clock: every command family of the
// spec, its limits and error codes, uploads with ACK and "+++", restarts, URCs and faults.
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { checksum16 } from '../../src/at/checksum.js';
import { VirtualModem, type VirtualModemOptions } from '../../src/sim/modem.js';
import { ManualClock } from './manual-clock.js';
import type { SimSendRequest, SimSendOutcome } from '../../src/sim/types.js';

const FINAL = /\r\n(OK|ERROR|CONNECT|\+CME ERROR: [^\r]*)\r\n$/;

function setup(opts: Partial<VirtualModemOptions> = {}) {
  const clock = new ManualClock();
  const modem = new VirtualModem({ logger: pino({ level: 'silent' }), clock, bootMs: 300, escapeGuardMs: 1000, sendDelayMs: 10, ...opts });
  let out = '';
  modem.on('data', (b: Buffer) => (out += b.toString('latin1')));
  modem.start();
  const h = {
    modem,
    clock,
    get out() {
      return out;
    },
    mark: () => out.length,
    since: (m: number) => out.slice(m),
    /** Sends a line and returns everything the module said until its final result code. */
    async at(line: string): Promise<string> {
      const m = out.length;
      modem.feed(Buffer.from(`${line}\r`, 'latin1'));
      for (let i = 0; i < 100 && !FINAL.test(out.slice(m)); i++) await clock.advance(1);
      return out.slice(m);
    },
    /** Answer with echo off: info lines and final code. */
    async q(line: string): Promise<string> {
      const r = await h.at(line);
      return r;
    },
    async init(): Promise<void> {
      await h.at('ATE0');
    },
  };
  return h;
}

const OK = '\r\nOK\r\n';
const ERROR = '\r\nERROR\r\n';
const cmeErr = (n: number) => `\r\n+CME ERROR: ${n}\r\n`;
const info = (...lines: string[]) => `\r\n${lines.join('\r\n')}\r\n${OK}`;

describe('VirtualModem: parser, echo and framing', () => {
  it('echoes the command line by default and frames OK as a real module', async () => {
    const h = setup();
    expect(await h.at('AT')).toBe(`AT\r${OK}`);
  });

  it('stops echoing after ATE0 and echoes again after ATE1', async () => {
    const h = setup();
    expect(await h.at('ATE0')).toBe(`ATE0\r${OK}`);
    expect(await h.at('AT')).toBe(OK);
    expect(await h.at('ATE1')).toBe(OK);
    expect(await h.at('AT')).toBe(`AT\r${OK}`);
  });

  it('answers ATI with the module identity', async () => {
    const h = setup();
    await h.init();
    expect(await h.at('ATI')).toBe(info('Quectel', 'EC25', 'Revision: EC25EFAR06A11M4G'));
  });

  it('answers ERROR to unknown and malformed commands and ignores lines without AT', async () => {
    const h = setup();
    await h.init();
    expect(await h.at('AT+NOSUCH')).toBe(ERROR);
    expect(await h.at('AT+QMMSCFG="mmsc')).toBe(ERROR);
    expect(await h.at('ATE0;+CMEE=1')).toBe(ERROR);
    const m = h.mark();
    h.modem.feed(Buffer.from('hello\r'));
    await h.clock.advance(10);
    expect(h.since(m)).toBe('');
    expect(h.modem.state().transcript).toEqual(['ATE0', 'AT+NOSUCH', 'AT+QMMSCFG="mmsc', 'ATE0;+CMEE=1']);
  });

  it('accepts commands in any letter case and CR LF terminators', async () => {
    const h = setup();
    await h.init();
    const m = h.mark();
    h.modem.feed(Buffer.from('at+cmee?\r\n'));
    await h.clock.advance(5);
    expect(h.since(m)).toBe(info('+CMEE: 1'));
  });

  it('reports CME errors as numbers (CMEE=1, the default), text (2) or plain ERROR (0)', async () => {
    const h = setup({ sim: 'absent' });
    await h.init();
    expect(await h.at('AT+CPIN?')).toBe(cmeErr(10));
    await h.at('AT+CMEE=2');
    expect(await h.at('AT+CPIN?')).toBe('\r\n+CME ERROR: SIM not inserted\r\n');
    await h.at('AT+CMEE=0');
    expect(await h.at('AT+CPIN?')).toBe(ERROR);
    expect(await h.at('AT+CMEE=3')).toBe(ERROR);
  });

  it('processes a command that arrives split over several writes', async () => {
    const h = setup();
    await h.init();
    const m = h.mark();
    h.modem.feed(Buffer.from('AT+C'));
    await h.clock.advance(5);
    h.modem.feed(Buffer.from('SQ\r'));
    await h.clock.advance(5);
    expect(h.since(m)).toBe(info('+CSQ: 20,99'));
  });
});

describe('VirtualModem: chained command lines (V.250 §5.4)', () => {
  it('runs extended commands separated by ";" in order and answers one OK', async () => {
    const h = setup();
    await h.init();
    expect(await h.at('AT+CMEE=2;+CGREG=2;+CEREG=1')).toBe(OK);
    const s = h.modem.state();
    expect(s.cmee).toBe(2);
    expect(s.registration).toMatchObject({ cgregMode: 2, ceregMode: 1 });
    expect(h.modem.state().transcript.at(-1)).toBe('AT+CMEE=2;+CGREG=2;+CEREG=1');
  });

  it('gives the information lines of every command, then one final result code', async () => {
    const h = setup();
    await h.init();
    expect(await h.at('AT+CGREG?;+CSQ;+CMEE?')).toBe(info('+CGREG: 0,1', '+CSQ: 20,99', '+CMEE: 1'));
    expect(await h.at('ATI+CGSN')).toBe(info('Quectel', 'EC25', 'Revision: EC25EFAR06A11M4G', '866758040000001'));
  });

  it('stops at the first command that fails: its error is the result, later commands do not run', async () => {
    const h = setup();
    await h.init();
    expect(await h.at('AT+CSQ;+CPIN="1111";+CGREG=2')).toBe(`\r\n+CSQ: 20,99\r\n${cmeErr(3)}`);
    expect(h.modem.state().registration.cgregMode).toBe(0);
    expect(await h.at('AT+CMEE=2;+NOSUCH;+CEREG=2')).toBe(ERROR);
    expect(h.modem.state().cmee).toBe(2);
    expect(h.modem.state().registration.ceregMode).toBe(0);
    expect(await h.at('AT+CEREG=2;+CMEE=1;+CGREG="x"')).toBe(ERROR);
    expect(h.modem.state().registration.ceregMode).toBe(2);
  });

  it('concatenates basic commands, and an extended command after a basic one', async () => {
    const h = setup();
    expect(await h.at('ATE0V1')).toBe(`ATE0V1\r${OK}`);
    expect(await h.at('AT')).toBe(OK);
    expect(await h.at('ATE1Q0+CMEE=0')).toBe(OK);
    expect(h.modem.state()).toMatchObject({ echo: true, cmee: 0 });
    expect(await h.at('ATE0V2')).toBe(`ATE0V2\r${ERROR}`);
    expect(h.modem.state().echo).toBe(false);
  });

  it('refuses ";" after a basic command, an empty command and a malformed one, running none of them', async () => {
    const h = setup();
    await h.init();
    expect(await h.at('ATE1;+CMEE=2')).toBe(ERROR);
    expect(await h.at('AT+CMEE=2;;+CSQ')).toBe(ERROR);
    expect(await h.at('AT+CMEE=2;+CSQ E0')).toBe(ERROR);
    expect(h.modem.state()).toMatchObject({ echo: false, cmee: 1 });
    expect(await h.at('AT+CMEE=2;')).toBe(OK);
    expect(h.modem.state().cmee).toBe(2);
  });

  it('lets a later command see an earlier one\'s change; the URCs it causes follow the final OK', async () => {
    const h = setup();
    await h.init();
    const m = h.mark();
    h.modem.feed(Buffer.from('AT+CGREG=2;+CFUN=0;+CGREG?;+CSQ\r'));
    await h.clock.advance(5);
    expect(h.since(m)).toBe(`${info('+CGREG: 2,0', '+CSQ: 99,99')}\r\n+CGREG: 0\r\n`);
  });

  it('ends the line at a CONNECT: the upload gets the data, the rest of the line does not run', async () => {
    const h = setup();
    await h.init();
    expect(await h.at('AT+QFUPL="RAM:a.txt",3,5;+CMEE=2')).toBe('\r\nCONNECT\r\n');
    const m = h.mark();
    h.modem.feed(Buffer.from('abc'));
    await h.clock.advance(5);
    expect(h.since(m)).toBe(`\r\n+QFUPL: 3,${checksum16(Buffer.from('abc')).toString(16)}\r\n${OK}`);
    expect(h.modem.state().cmee).toBe(1);
  });

  it('ends the line at AT+CFUN=1,1: OK, then the restart', async () => {
    const h = setup({ bootMs: 300 });
    await h.init();
    const m = h.mark();
    h.modem.feed(Buffer.from('AT+CFUN=1,1;+CMEE=2\r'));
    await h.clock.advance(400);
    expect(h.since(m)).toBe(`${OK}\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\n+QIND: PB DONE\r\n\r\n+QIND: SMS DONE\r\n`);
    expect(h.modem.state().boots).toBe(1);
  });
});

describe('VirtualModem: SIM, registration, attach', () => {
  it('answers +CPIN: READY and the IMSI with a SIM', async () => {
    const h = setup();
    await h.init();
    expect(await h.at('AT+CPIN?')).toBe(info('+CPIN: READY'));
    expect(await h.at('AT+CIMI')).toBe(info('001010123456789'));
  });

  it('reads the SIM\'s identity given as options: AT+CIMI, AT+QCCID, AT+QSPN (DESIGN.md §10)', async () => {
    const h = setup({ identity: { imsi: '310260000000001', iccid: '8901260000000000001', spn: 'T-Mobile' } });
    await h.init();
    expect(await h.at('AT+CIMI')).toBe(info('310260000000001'));
    expect(await h.at('AT+QCCID')).toBe(info('+QCCID: 8901260000000000001'));
    expect(await h.at('AT+QSPN')).toBe(info('+QSPN: "Virtual Operator","VOP","T-Mobile",0,"310260"'));
    // The default SIM has no SPN.
    const d = setup();
    await d.init();
    expect(await d.at('AT+QSPN')).toBe(info('+QSPN: "Virtual Operator","VOP","",0,"00101"'));
  });

  it('swaps the SIM with the URCs a module sends: +CPIN: NOT READY then READY, or +QUSIM: 1 and +CPIN: READY', async () => {
    const h = setup();
    await h.init();
    await h.at('AT+CGREG=1');
    await h.at('AT+QICSGP=1,1,"mms.pt.lu","","",0');
    await h.at('AT+QIACT=1');
    let m = h.mark();
    h.modem.swapSim({ imsi: '208011234567890', spn: 'Orange' });
    await h.clock.advance(5);
    expect(h.since(m)).toBe('\r\n+CPIN: NOT READY\r\n\r\n+CGREG: 0\r\n\r\n+QIURC: "pdpdeact",1\r\n\r\n+CPIN: READY\r\n\r\n+CGREG: 1\r\n');
    expect(await h.at('AT+CIMI')).toBe(info('208011234567890'));
    expect(h.modem.state().identity).toEqual({ imsi: '208011234567890', iccid: '89860000000000000001', spn: 'Orange' });

    await h.at('AT+QIACT=1');
    m = h.mark();
    h.modem.swapSim({ imsi: '270011234567890', spn: '' }, 'qusim');
    await h.clock.advance(5);
    expect(h.since(m)).toBe('\r\n+QIURC: "pdpdeact",1\r\n\r\n+QUSIM: 1\r\n\r\n+CPIN: READY\r\n');
    expect(await h.at('AT+QSPN')).toBe(info('+QSPN: "Virtual Operator","VOP","",0,"27001"'));
  });

  it('lets someone else activate a context with its own APN (the host\'s internet), and AT+QICSGP=<ctx> shows it', async () => {
    const h = setup();
    await h.init();
    expect(h.modem.activateOtherContext(1, 'internet')).toBe(true);
    expect(await h.at('AT+QIACT?')).toBe(info('+QIACT: 1,1,1,"10.7.157.1"'));
    expect(await h.at('AT+QICSGP=1')).toBe(info('+QICSGP: 1,"internet","","",0'));
    expect(h.modem.activateOtherContext(2, 'b') && h.modem.activateOtherContext(3, 'c')).toBe(true);
    expect(h.modem.activateOtherContext(4, 'd')).toBe(false); // §4.2: three at most
  });

  it('answers SIM PIN for a locked card and unlocks with the right PIN', async () => {
    const h = setup({ sim: 'pin', pin: '4321' });
    await h.init();
    expect(await h.at('AT+CPIN?')).toBe(info('+CPIN: SIM PIN'));
    expect(await h.at('AT+CIMI')).toBe(cmeErr(11));
    expect(await h.at('AT+CPIN="0000"')).toBe(cmeErr(16));
    const r = await h.at('AT+CPIN="4321"');
    await h.clock.advance(5);
    expect(h.out.endsWith(`${OK}\r\n+CPIN: READY\r\n`)).toBe(true);
    expect(r.startsWith(OK)).toBe(true);
    expect(await h.at('AT+CPIN?')).toBe(info('+CPIN: READY'));
  });

  it('reports registration with n=0, 1, 2 and sends URCs on change', async () => {
    const h = setup();
    await h.init();
    expect(await h.at('AT+CGREG?')).toBe(info('+CGREG: 0,1'));
    expect(await h.at('AT+CGREG=2')).toBe(OK);
    expect(await h.at('AT+CEREG=1')).toBe(OK);
    expect(await h.at('AT+CGREG?')).toBe(info('+CGREG: 2,1,"1A2B","01C2D3E4",7'));
    expect(await h.at('AT+CEREG?')).toBe(info('+CEREG: 1,1'));
    const m = h.mark();
    h.modem.setRegistration(2);
    await h.clock.advance(5);
    expect(h.since(m)).toBe('\r\n+CGREG: 2\r\n\r\n+CEREG: 2\r\n');
    const m2 = h.mark();
    h.modem.setRegistration(5);
    await h.clock.advance(5);
    expect(h.since(m2)).toBe('\r\n+CGREG: 5,"1A2B","01C2D3E4",7\r\n\r\n+CEREG: 5\r\n');
    expect(await h.at('AT+CGREG=3')).toBe(ERROR);
  });

  it('shows registration only through +CEREG in LTE-only mode', async () => {
    const h = setup({ lteOnly: true });
    await h.init();
    expect(await h.at('AT+CGREG?')).toBe(info('+CGREG: 0,0'));
    expect(await h.at('AT+CEREG?')).toBe(info('+CEREG: 0,1'));
  });

  it('is not registered without a SIM and answers +COPS accordingly', async () => {
    const h = setup({ sim: 'absent' });
    await h.init();
    expect(await h.at('AT+CEREG?')).toBe(info('+CEREG: 0,0'));
    expect(await h.at('AT+COPS?')).toBe(info('+COPS: 0'));
    expect(await h.at('AT+CGATT?')).toBe(info('+CGATT: 0'));
    h.modem.setSim('ready');
    await h.clock.advance(5);
    expect(await h.at('AT+COPS?')).toBe(info('+COPS: 0,0,"Virtual Operator",7'));
  });

  it('attaches and detaches with AT+CGATT', async () => {
    const h = setup();
    await h.init();
    expect(await h.at('AT+CGATT?')).toBe(info('+CGATT: 1'));
    expect(await h.at('AT+CGATT=0')).toBe(OK);
    expect(await h.at('AT+CGATT?')).toBe(info('+CGATT: 0'));
    expect(await h.at('AT+QIACT=1')).toBe(ERROR);
    expect(await h.at('AT+CGATT=1')).toBe(OK);
    expect(await h.at('AT+QIACT=1')).toBe(OK);
    h.modem.setRegistration(0);
    await h.clock.advance(5);
    expect(await h.at('AT+CGATT=1')).toBe(cmeErr(30));
  });

  it('reports SIM removal with a URC, deregistration and a PDP drop', async () => {
    const h = setup();
    await h.init();
    await h.at('AT+CEREG=1');
    await h.at('AT+QIACT=1');
    const m = h.mark();
    h.modem.setSim('absent');
    await h.clock.advance(5);
    expect(h.since(m)).toBe('\r\n+CPIN: NOT READY\r\n\r\n+CEREG: 0\r\n\r\n+QIURC: "pdpdeact",1\r\n');
    expect(await h.at('AT+QIACT?')).toBe(OK);
  });
});

describe('VirtualModem: PDP contexts', () => {
  it('configures, activates, lists and deactivates a context (spec §3.6 step 1)', async () => {
    const h = setup();
    await h.init();
    expect(await h.at('AT+QICSGP=1,1,"UNIWAP","",1')).toBe(OK);
    expect(await h.at('AT+QICSGP=1')).toBe(info('+QICSGP: 1,"UNIWAP","","1",0'));
    expect(await h.at('AT+QICSGP=2,1,"internet","user","pass",3')).toBe(OK);
    expect(await h.at('AT+QICSGP=2')).toBe(info('+QICSGP: 1,"internet","user","pass",3'));
    expect(await h.at('AT+QIACT=1')).toBe(OK);
    expect(await h.at('AT+QIACT?')).toBe(info('+QIACT: 1,1,1,"10.7.157.1"'));
    expect(await h.at('AT+QIACT=1')).toBe(ERROR);
    expect(await h.at('AT+QIDEACT=1')).toBe(OK);
    expect(await h.at('AT+QIACT?')).toBe(OK);
  });

  it('refuses out-of-range contexts and a fourth active context', async () => {
    const h = setup();
    await h.init();
    expect(await h.at('AT+QICSGP=17,1,"x"')).toBe(ERROR);
    expect(await h.at('AT+QICSGP=1,4,"x"')).toBe(ERROR);
    expect(await h.at('AT+QIACT=0')).toBe(ERROR);
    for (const ctx of [1, 2, 3]) expect(await h.at(`AT+QIACT=${ctx}`)).toBe(OK);
    expect(await h.at('AT+QIACT=4')).toBe(ERROR);
  });

  it('needs registration to activate and fails injected activations', async () => {
    const h = setup({ registration: 2 });
    await h.init();
    expect(await h.at('AT+QIACT=1')).toBe(ERROR);
    h.modem.setRegistration(1);
    h.modem.failNextActivations(1);
    expect(await h.at('AT+QIACT=1')).toBe(ERROR);
    expect(await h.at('AT+QIACT=1')).toBe(OK);
  });

  it('emits +QIURC: "pdpdeact" when the network drops the context', async () => {
    const h = setup();
    await h.init();
    await h.at('AT+QIACT=1');
    const m = h.mark();
    expect(h.modem.dropPdp(1)).toBe(true);
    await h.clock.advance(5);
    expect(h.since(m)).toBe('\r\n+QIURC: "pdpdeact",1\r\n');
    expect(h.modem.dropPdp(1)).toBe(false);
  });
});

/** Streams an upload the way the daemon does: ACK mode waits for "A" after each 1024 bytes. */
async function upload(h: ReturnType<typeof setup>, name: string, data: Buffer, ack = true): Promise<string> {
  const r = await h.at(`AT+QFUPL="${name}",${data.length},10,${ack ? 1 : 0}`);
  expect(r).toBe('\r\nCONNECT\r\n');
  const m = h.mark();
  for (let off = 0; off < data.length; off += 1024) {
    const block = data.subarray(off, off + 1024);
    const before = h.out.length;
    h.modem.feed(block);
    await h.clock.advance(1);
    if (ack && block.length === 1024) expect(h.out.slice(before).startsWith('A')).toBe(true);
  }
  for (let i = 0; i < 50 && !FINAL.test(h.since(m)); i++) await h.clock.advance(1);
  return h.since(m);
}

function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

describe('VirtualModem: RAM files', () => {
  it('uploads in ACK mode and reports size and the 16-bit XOR checksum', async () => {
    const h = setup();
    await h.init();
    const data = pattern(3000);
    const r = await upload(h, 'RAM:pic.jpg', data);
    expect(r).toBe(`AA\r\n+QFUPL: 3000,${checksum16(data).toString(16)}\r\n${OK}`);
    expect(h.modem.ramFile('RAM:pic.jpg')).toEqual(data);
    expect(await h.at('AT+QFLST="RAM:*"')).toBe(info('+QFLST: "RAM:pic.jpg",3000'));
  });

  it('sends an A after the last block too when the size is a multiple of 1024', async () => {
    const h = setup();
    await h.init();
    const data = pattern(2048);
    expect(await upload(h, 'RAM:b.bin', data)).toBe(`AA\r\n+QFUPL: 2048,${checksum16(data).toString(16)}\r\n${OK}`);
  });

  it('with a finite receive buffer, stores blocks one after another and acknowledges each once stored', async () => {
    const h = setup({ uploadBufferBytes: 2048, uploadBlockMs: 10 });
    await h.init();
    const data = pattern(3000);
    expect(await h.at(`AT+QFUPL="RAM:w.bin",3000,10,1`)).toBe('\r\nCONNECT\r\n');
    const m = h.mark();
    // Two blocks in flight: they fit the buffer; each "A" comes once its block is stored.
    h.modem.feed(data.subarray(0, 2048));
    await h.clock.advance(5);
    expect(h.since(m)).toBe('');
    await h.clock.advance(5);
    expect(h.since(m)).toBe('A');
    h.modem.feed(data.subarray(2048));
    await h.clock.advance(10);
    expect(h.since(m)).toBe('AA');
    await h.clock.advance(10);
    expect(h.since(m)).toBe(`AA\r\n+QFUPL: 3000,${checksum16(data).toString(16)}\r\n${OK}`);
    expect(h.modem.ramFile('RAM:w.bin')).toEqual(data);
  });

  it('loses what overflows the receive buffer and fails the upload with +CME ERROR: 409, keeping no file', async () => {
    const h = setup({ uploadBufferBytes: 2048, uploadBlockMs: 10 });
    await h.init();
    const data = pattern(5000);
    expect(await h.at(`AT+QFUPL="RAM:o.bin",5000,10,1`)).toBe('\r\nCONNECT\r\n');
    const m = h.mark();
    // Four blocks at once: two fit, two are lost; the module acknowledges nothing more.
    h.modem.feed(data.subarray(0, 4096));
    await h.clock.advance(50);
    expect(h.since(m)).toBe('');
    // Bytes keep coming: still lost, and the report waits for the line to be quiet.
    h.modem.feed(data.subarray(4096, 4500));
    await h.clock.advance(60);
    expect(h.since(m)).toBe('');
    await h.clock.advance(50);
    expect(h.since(m)).toBe(cmeErr(409));
    expect(h.modem.ramFile('RAM:o.bin')).toBeUndefined();
    // Back in command mode: the file can be uploaded again, a block at a time.
    expect(await h.at('AT+QFLST="RAM:*"')).toBe(OK);
    expect(await h.at(`AT+QFUPL="RAM:o.bin",5000,10,1`)).toBe('\r\nCONNECT\r\n');
    const again = h.mark();
    for (let off = 0; off < 5000; off += 1024) {
      h.modem.feed(data.subarray(off, off + 1024));
      await h.clock.advance(11);
    }
    expect(h.since(again)).toBe(`AAAA\r\n+QFUPL: 5000,${checksum16(data).toString(16)}\r\n${OK}`);
  });

  it('uploads without ACK mode', async () => {
    const h = setup();
    await h.init();
    const data = pattern(1500);
    expect(await upload(h, 'RAM:c.bin', data, false)).toBe(`\r\n+QFUPL: 1500,${checksum16(data).toString(16)}\r\n${OK}`);
  });

  it('keeps "+++" inside continuous data as data', async () => {
    const h = setup();
    await h.init();
    const data = Buffer.from('hello+++world, and +++ again+++');
    const r = await upload(h, 'RAM:plus.txt', data);
    expect(r).toBe(`\r\n+QFUPL: ${data.length},${checksum16(data).toString(16)}\r\n${OK}`);
    expect(h.modem.ramFile('RAM:plus.txt')).toEqual(data);
  });

  it('keeps "+++" after a pause as data when more data follows within the guard time', async () => {
    const h = setup();
    await h.init();
    await h.at('AT+QFUPL="RAM:p.txt",12,10,1');
    h.modem.feed(Buffer.from('abc'));
    await h.clock.advance(1500);
    h.modem.feed(Buffer.from('+++'));
    await h.clock.advance(500);
    const m = h.mark();
    h.modem.feed(Buffer.from('defghi'));
    await h.clock.advance(5);
    const want = Buffer.from('abc+++defghi');
    expect(h.since(m)).toBe(`\r\n+QFUPL: 12,${checksum16(want).toString(16)}\r\n${OK}`);
    expect(h.modem.ramFile('RAM:p.txt')).toEqual(want);
  });

  it('ends the upload on "+++" framed by the guard silence, keeping what arrived', async () => {
    const h = setup();
    await h.init();
    await h.at('AT+QFUPL="RAM:x.bin",100,10,1');
    h.modem.feed(Buffer.from('0123456789'));
    await h.clock.advance(1100);
    const m = h.mark();
    h.modem.feed(Buffer.from('+++'));
    await h.clock.advance(999);
    expect(h.since(m)).toBe('');
    await h.clock.advance(2);
    const want = Buffer.from('0123456789');
    expect(h.since(m)).toBe(`\r\n+QFUPL: 10,${checksum16(want).toString(16)}\r\n${OK}`);
    expect(await h.at('AT+QFLST="RAM:*"')).toBe(info('+QFLST: "RAM:x.bin",10'));
  });

  it('ends the upload after <timeout> seconds without data', async () => {
    const h = setup();
    await h.init();
    await h.at('AT+QFUPL="RAM:t.bin",100,2,1');
    h.modem.feed(Buffer.from('abc'));
    const m = h.mark();
    await h.clock.advance(1999);
    expect(h.since(m)).toBe('');
    await h.clock.advance(2);
    expect(h.since(m)).toBe(`\r\n+QFUPL: 3,${checksum16(Buffer.from('abc')).toString(16)}\r\n${OK}`);
  });

  it('holds URCs back during data mode and gives them after the upload', async () => {
    const h = setup();
    await h.init();
    await h.at('AT+QIACT=1');
    await h.at('AT+QFUPL="RAM:u.bin",4,10,1');
    const m = h.mark();
    h.modem.dropPdp(1);
    h.modem.feed(Buffer.from('abcd'));
    await h.clock.advance(5);
    expect(h.since(m)).toBe(`\r\n+QFUPL: 4,${checksum16(Buffer.from('abcd')).toString(16)}\r\n${OK}\r\n+QIURC: "pdpdeact",1\r\n`);
  });

  it('refuses an existing file, a bad name, sizes beyond the store', async () => {
    const h = setup({ ramBytes: 5000 });
    await h.init();
    await upload(h, 'RAM:a.txt', Buffer.from('x'));
    expect(await h.at('AT+QFUPL="RAM:a.txt",10')).toBe(cmeErr(407));
    expect(await h.at(`AT+QFUPL="RAM:${'n'.repeat(77)}",10`)).toBe(cmeErr(406));
    expect(await h.at(`AT+QFUPL="RAM:${'n'.repeat(76)}",1,5,1`)).toBe('\r\nCONNECT\r\n');
    h.modem.feed(Buffer.from('z'));
    await h.clock.advance(5);
    expect(await h.at('AT+QFUPL="RAM:big",6000')).toBe(cmeErr(423));
    expect(await h.at('AT+QFUPL="RAM:big",4999')).toBe(cmeErr(420));
    expect(await h.at('AT+QFUPL="RAM:big",0')).toBe(cmeErr(400));
    expect(await h.at('AT+QFUPL="RAM:big",10,5,2')).toBe(cmeErr(400));
  });

  it('deletes files one by one and all at once, and reports free space', async () => {
    const h = setup({ ramBytes: 10000 });
    await h.init();
    await upload(h, 'RAM:a', pattern(100));
    await upload(h, 'RAM:b', pattern(200));
    expect(await h.at('AT+QFLDS="RAM"')).toBe(info('+QFLDS: 9700,10000'));
    expect(await h.at('AT+QFDEL="RAM:a"')).toBe(OK);
    expect(await h.at('AT+QFDEL="RAM:a"')).toBe(cmeErr(405));
    expect(await h.at('AT+QFLST="RAM:*"')).toBe(info('+QFLST: "RAM:b",200'));
    expect(await h.at('AT+QFDEL="RAM:*"')).toBe(OK);
    expect(await h.at('AT+QFLST="RAM:*"')).toBe(OK);
    expect(await h.at('AT+QFLDS="RAM"')).toBe(info('+QFLDS: 10000,10000'));
  });
});

describe('VirtualModem: AT+QMMSCFG (spec §2.1)', () => {
  it('sets and queries every sub-command', async () => {
    const h = setup();
    await h.init();
    expect(await h.at('AT+QMMSCFG="contextid",2')).toBe(OK);
    expect(await h.at('AT+QMMSCFG="contextid"')).toBe(info('+QMMSCFG: "contextid",2'));
    expect(await h.at('AT+QMMSCFG="mmsc","http://mmsc.example/mms"')).toBe(OK);
    expect(await h.at('AT+QMMSCFG="mmsc"')).toBe(info('+QMMSCFG: "mmsc","http://mmsc.example/mms"'));
    expect(await h.at('AT+QMMSCFG="proxy","10.0.0.172",80')).toBe(OK);
    expect(await h.at('AT+QMMSCFG="proxy"')).toBe(info('+QMMSCFG: "proxy","10.0.0.172",80'));
    // An empty gateway clears it: the module then connects to the MMSC directly.
    expect(await h.at('AT+QMMSCFG="proxy","",80')).toBe(OK);
    expect(await h.at('AT+QMMSCFG="proxy"')).toBe(info('+QMMSCFG: "proxy","",80'));
    expect(h.modem.state().mms.proxyHost).toBe('');
    expect(await h.at('AT+QMMSCFG="character", "UTF8"')).toBe(OK);
    expect(await h.at('AT+QMMSCFG="character"')).toBe(info('+QMMSCFG: "character","UTF8"'));
    expect(await h.at('AT+QMMSCFG="sendparam",6,2,0,0,2,4')).toBe(OK);
    expect(await h.at('AT+QMMSCFG="sendparam"')).toBe(info('+QMMSCFG: "sendparam",6,2,0,0,2,4'));
    expect(await h.at('AT+QMMSCFG="supportfield",1')).toBe(OK);
    expect(await h.at('AT+QMMSCFG="supportfield"')).toBe(info('+QMMSCFG: "supportfield",1'));
    expect(await h.at('AT+QMMSCFG="connecttimeout",30')).toBe(OK);
    expect(await h.at('AT+QMMSCFG="connecttimeout"')).toBe(info('+QMMSCFG: "connecttimeout",30'));
    expect(await h.at('AT+QMMSCFG?')).toBe(OK);
    expect((await h.at('AT+QMMSCFG=?')).split('\r\n').filter((l) => l.startsWith('+QMMSCFG:'))).toHaveLength(7);
  });

  it('answers the spec error codes to values out of range', async () => {
    const h = setup();
    await h.init();
    expect(await h.at('AT+QMMSCFG="contextid",17')).toBe(cmeErr(756));
    expect(await h.at('AT+QMMSCFG="contextid",0')).toBe(cmeErr(756));
    expect(await h.at(`AT+QMMSCFG="mmsc","${'u'.repeat(101)}"`)).toBe(cmeErr(752));
    expect(await h.at(`AT+QMMSCFG="mmsc","${'u'.repeat(100)}"`)).toBe(OK);
    expect(await h.at(`AT+QMMSCFG="proxy","${'p'.repeat(51)}",80`)).toBe(cmeErr(755));
    expect(await h.at('AT+QMMSCFG="proxy","10.0.0.1",0')).toBe(cmeErr(756));
    expect(await h.at('AT+QMMSCFG="proxy","10.0.0.1",65536')).toBe(cmeErr(756));
    expect(await h.at('AT+QMMSCFG="character","LATIN1"')).toBe(cmeErr(756));
    expect(await h.at('AT+QMMSCFG="sendparam",7,2,0,0,2,4')).toBe(cmeErr(756));
    expect(await h.at('AT+QMMSCFG="sendparam",6,4,0,0,2,4')).toBe(cmeErr(756));
    expect(await h.at('AT+QMMSCFG="sendparam",6,2,0,0,2,5')).toBe(cmeErr(756));
    expect(await h.at('AT+QMMSCFG="sendparam",6,2,0')).toBe(cmeErr(756));
    expect(await h.at('AT+QMMSCFG="supportfield",2')).toBe(cmeErr(756));
    expect(await h.at('AT+QMMSCFG="connecttimeout",126')).toBe(cmeErr(756));
    expect(await h.at('AT+QMMSCFG="connecttimeout",0')).toBe(cmeErr(756));
    expect(await h.at('AT+QMMSCFG="nosuch",1')).toBe(cmeErr(756));
  });

  it('answers ERROR to MMS commands without a ready SIM (spec §4.1)', async () => {
    const h = setup({ sim: 'absent' });
    await h.init();
    expect(await h.at('AT+QMMSCFG="contextid",1')).toBe(ERROR);
    expect(await h.at('AT+QMMSEDIT=1,1,"123"')).toBe(ERROR);
    expect(await h.at('AT+QMMSEND=100')).toBe(ERROR);
  });
});

describe('VirtualModem: AT+QMMSEDIT (spec §2.2, §3)', () => {
  it('adds, queries and deletes TO/CC/BCC (spec §3.1, §3.2)', async () => {
    const h = setup();
    await h.init();
    expect(await h.at('AT+QMMSEDIT=1,1,"13856122546"')).toBe(OK);
    expect(await h.at('AT+QMMSEDIT=1,1,"recipient.test@quectel.com"')).toBe(OK);
    expect(await h.at('AT+QMMSEDIT=1')).toBe(info('+QMMSEDIT: 1,"13856122546"', '+QMMSEDIT: 1,"recipient.test@quectel.com"'));
    expect(await h.at('AT+QMMSEDIT=1,0')).toBe(OK);
    expect(await h.at('AT+QMMSEDIT=1')).toBe(OK);
    expect(await h.at('AT+QMMSEDIT=2,1,"13856122546"')).toBe(OK);
    expect(await h.at('AT+QMMSEDIT=2')).toBe(info('+QMMSEDIT: 2,"13856122546"'));
    expect(await h.at('AT+QMMSEDIT=3,1,"secret.test@quectel.com"')).toBe(OK);
    expect(await h.at('AT+QMMSEDIT=3')).toBe(info('+QMMSEDIT: 3,"secret.test@quectel.com"'));
  });

  it('refuses the seventh address of each kind with 757/758/759 and long addresses', async () => {
    const h = setup();
    await h.init();
    for (const [fn, code] of [
      [1, 757],
      [2, 758],
      [3, 759],
    ] as const) {
      for (let i = 0; i < 6; i++) expect(await h.at(`AT+QMMSEDIT=${fn},1,"1385612254${i}"`)).toBe(OK);
      expect(await h.at(`AT+QMMSEDIT=${fn},1,"13856122549"`)).toBe(cmeErr(code));
    }
    await h.at('AT+QMMSEDIT=0');
    expect(await h.at(`AT+QMMSEDIT=1,1,"${'1'.repeat(51)}"`)).toBe(cmeErr(756));
    expect(await h.at(`AT+QMMSEDIT=1,1,"${'1'.repeat(50)}"`)).toBe(OK);
  });

  it('stores the subject with the charset in force (spec §3.3)', async () => {
    const h = setup();
    await h.init();
    await h.at('AT+QMMSCFG="character","ASCII"');
    expect(await h.at('AT+QMMSEDIT=4,1,"test EM05 mms"')).toBe(OK);
    expect(await h.at('AT+QMMSEDIT=4')).toBe(info('+QMMSEDIT: 4,"ASCII","test EM05 mms"'));
    await h.at('AT+QMMSCFG="character","UTF8"');
    expect(await h.at('AT+QMMSEDIT=4,1,"7465737420454D3035206D6D73"')).toBe(OK);
    expect(await h.at('AT+QMMSEDIT=4')).toBe(info('+QMMSEDIT: 4,"UTF8","7465737420454D3035206D6D73"'));
    expect(h.modem.state().edit.subject).toEqual({ charset: 'UTF8', text: 'test EM05 mms' });
    expect(await h.at('AT+QMMSEDIT=4,0')).toBe(OK);
    expect(await h.at('AT+QMMSEDIT=4')).toBe(OK);
  });

  it('answers 756 to plain text under a non-ASCII charset and decodes UCS2 and GBK hex', async () => {
    const h = setup();
    await h.init();
    await h.at('AT+QMMSCFG="character","UTF8"');
    expect(await h.at('AT+QMMSEDIT=4,1,"hello"')).toBe(cmeErr(756));
    expect(await h.at('AT+QMMSEDIT=4,1,"ABC"')).toBe(cmeErr(756));
    expect(await h.at('AT+QMMSEDIT=4,1,"C3"')).toBe(cmeErr(756));
    await h.at('AT+QMMSCFG="character","UCS2"');
    expect(await h.at('AT+QMMSEDIT=4,1,"4F60597D"')).toBe(OK);
    expect(h.modem.state().edit.subject).toEqual({ charset: 'UCS2', text: '你好' });
    await h.at('AT+QMMSCFG="character","GBK"');
    expect(await h.at('AT+QMMSEDIT=4,1,"C4E3BAC3"')).toBe(OK);
    expect(h.modem.state().edit.subject).toEqual({ charset: 'GBK', text: '你好' });
  });

  it('limits the subject to 200 bytes after decoding', async () => {
    const h = setup();
    await h.init();
    expect(await h.at(`AT+QMMSEDIT=4,1,"${'s'.repeat(201)}"`)).toBe(cmeErr(756));
    expect(await h.at(`AT+QMMSEDIT=4,1,"${'s'.repeat(200)}"`)).toBe(OK);
    await h.at('AT+QMMSCFG="character","UTF8"');
    expect(await h.at(`AT+QMMSEDIT=4,1,"${'41'.repeat(201)}"`)).toBe(cmeErr(756));
    expect(await h.at(`AT+QMMSEDIT=4,1,"${'41'.repeat(200)}"`)).toBe(OK);
  });

  it('reads addresses as hex under a non-ASCII charset', async () => {
    const h = setup();
    await h.init();
    await h.at('AT+QMMSCFG="character","UTF8"');
    expect(await h.at('AT+QMMSEDIT=1,1,"+491701234567"')).toBe(cmeErr(756));
    expect(await h.at('AT+QMMSEDIT=1,1,"3132333435"')).toBe(OK);
    expect(h.modem.state().edit.to).toEqual(['12345']);
  });

  it('adds attachments that exist, with their charset, at most 12 (spec §3.4)', async () => {
    const h = setup();
    await h.init();
    expect(await h.at('AT+QMMSEDIT=5,1,"RAM:none.txt"')).toBe(cmeErr(763));
    await upload(h, 'RAM:test_mms.txt', pattern(100));
    await h.at('AT+QMMSCFG="character","UTF8"');
    expect(await h.at('AT+QMMSEDIT=5,1,"RAM:test_mms.txt"')).toBe(OK);
    expect(await h.at('AT+QMMSEDIT=5')).toBe(info('+QMMSEDIT: 5,"RAM:test_mms.txt"'));
    expect(h.modem.state().edit.attachments).toEqual([{ name: 'RAM:test_mms.txt', charset: 'UTF8' }]);
    for (let i = 1; i < 12; i++) expect(await h.at('AT+QMMSEDIT=5,1,"RAM:test_mms.txt"')).toBe(OK);
    expect(await h.at('AT+QMMSEDIT=5,1,"RAM:test_mms.txt"')).toBe(cmeErr(760));
    expect(await h.at('AT+QMMSEDIT=5,0')).toBe(OK);
    expect(await h.at('AT+QMMSEDIT=5')).toBe(OK);
  });

  it('clears everything with AT+QMMSEDIT=0 (spec §3.5) and refuses bad forms', async () => {
    const h = setup();
    await h.init();
    await h.at('AT+QMMSEDIT=1,1,"1"');
    await h.at('AT+QMMSEDIT=4,1,"s"');
    expect(await h.at('AT+QMMSEDIT=0')).toBe(OK);
    for (const fn of [1, 2, 3, 4, 5]) expect(await h.at(`AT+QMMSEDIT=${fn}`)).toBe(OK);
    expect(await h.at('AT+QMMSEDIT=6')).toBe(cmeErr(756));
    expect(await h.at('AT+QMMSEDIT=1,2,"x"')).toBe(cmeErr(756));
    expect(await h.at('AT+QMMSEDIT=1,0,"x"')).toBe(cmeErr(756));
    expect(await h.at('AT+QMMSEDIT=1,1')).toBe(cmeErr(756));
  });
});

describe('VirtualModem: AT+QMMSEND (spec §2.3)', () => {
  async function ready(opts: Partial<VirtualModemOptions> = {}) {
    const h = setup(opts);
    await h.init();
    await h.at('AT+QIACT=1');
    await h.at('AT+QMMSCFG="mmsc","http://mmsc.example/mms"');
    await h.at('AT+QMMSEDIT=1,1,"13856122546"');
    return h;
  }

  it('answers OK and later +QMMSEND: 0,200', async () => {
    const h = await ready();
    const m = h.mark();
    expect(await h.at('AT+QMMSEND=100')).toBe(OK);
    await h.clock.advance(20);
    expect(h.since(m)).toBe(`${OK}\r\n+QMMSEND: 0,200\r\n`);
    expect(h.modem.state().sendsAccepted).toBe(1);
  });

  it('counts the bytes on the line, and where they stood at the last +QMMSEND result', async () => {
    const h = await ready();
    const before = h.modem.state().line;
    expect(before.atLastSendResult).toBeNull();
    await h.at('AT+QMMSEND=100');
    await h.clock.advance(20);
    await h.at('AT');
    const after = h.modem.state().line;
    // "AT+QMMSEND=100\r" and "AT\r" in; "\r\nOK\r\n", the result line and the last OK out.
    expect(after.rx - before.rx).toBe(15 + 3);
    expect(after.tx - before.tx).toBe(6 + '\r\n+QMMSEND: 0,200\r\n'.length + 6);
    expect(after.atLastSendResult).toEqual({ rx: before.rx + 15, tx: before.tx + 6 + '\r\n+QMMSEND: 0,200\r\n'.length });
  });

  it('answers 762 without a recipient, 764 while a send runs, 756 for a bad timeout', async () => {
    const h = await ready({ sendDelayMs: 100 });
    expect(await h.at('AT+QMMSEND=0')).toBe(cmeErr(756));
    expect(await h.at('AT+QMMSEND=65536')).toBe(cmeErr(756));
    expect(await h.at('AT+QMMSEND=100')).toBe(OK);
    expect(await h.at('AT+QMMSEND=100')).toBe(cmeErr(764));
    expect(await h.at('AT+QMMSEDIT=1,1,"1"')).toBe(cmeErr(764));
    await h.clock.advance(200);
    await h.at('AT+QMMSEDIT=0');
    expect(await h.at('AT+QMMSEND=100')).toBe(cmeErr(762));
    expect(h.modem.state().sendCommands).toBe(5);
  });

  it('reports 769 when the PDP context is not active', async () => {
    const h = await ready();
    await h.at('AT+QIDEACT=1');
    const m = h.mark();
    await h.at('AT+QMMSEND=100');
    await h.clock.advance(20);
    expect(h.since(m)).toBe(`${OK}\r\n+QMMSEND: 769,0\r\n`);
  });

  it('gives injected results in order, each needing an active context', async () => {
    const h = await ready({ sendResults: [{ err: 765, httpStatus: 200, mmsrsp: 'Error-service-denied' }] });
    h.modem.queueSendResults([{ err: 0, httpStatus: 500 }]);
    let m = h.mark();
    await h.at('AT+QMMSEND=100');
    await h.clock.advance(20);
    expect(h.since(m)).toBe(`${OK}\r\n+QMMSEND: 765,200,"Error-service-denied"\r\n`);
    await h.at('AT+QIDEACT=1');
    m = h.mark();
    await h.at('AT+QMMSEND=100');
    await h.clock.advance(20);
    expect(h.since(m)).toBe(`${OK}\r\n+QMMSEND: 769,0\r\n`);
    await h.at('AT+QIACT=1');
    m = h.mark();
    await h.at('AT+QMMSEND=100');
    await h.clock.advance(20);
    expect(h.since(m)).toBe(`${OK}\r\n+QMMSEND: 0,500\r\n`);
  });

  it('hands the edited message to the sender with charsets and decoded text', async () => {
    const seen: SimSendRequest[] = [];
    const h = await ready({
      sender: (req) => {
        seen.push(req);
        return Promise.resolve<SimSendOutcome>({ err: 0, httpStatus: 200 });
      },
    });
    await h.at('AT+QMMSCFG="proxy","127.0.0.1",8080');
    await h.at('AT+QMMSEDIT=2,1,"copy@example.com"');
    await h.at('AT+QMMSCFG="character","UTF8"');
    await h.at(`AT+QMMSEDIT=4,1,"${Buffer.from('Grüße').toString('hex')}"`);
    await upload(h, 'RAM:a.txt', Buffer.from('text'));
    await h.at('AT+QMMSEDIT=5,1,"RAM:a.txt"');
    const m = h.mark();
    await h.at('AT+QMMSEND=30');
    await h.clock.advance(20);
    expect(h.since(m)).toBe(`${OK}\r\n+QMMSEND: 0,200\r\n`);
    expect(seen).toHaveLength(1);
    const req = seen[0];
    expect(req).toMatchObject({
      to: ['13856122546'],
      cc: ['copy@example.com'],
      bcc: [],
      subject: { charset: 'UTF8', text: 'Grüße' },
      mmsc: 'http://mmsc.example/mms',
      proxy: { host: '127.0.0.1', port: 8080 },
      timeoutS: 30,
      connectTimeoutS: 125,
      supportField: 0,
      sendParam: { validity: 6, priority: 3, sendrep: 0, readrep: 0, visible: 2, class: 4 },
    });
    expect(req.attachments).toEqual([{ name: 'RAM:a.txt', data: Buffer.from('text'), charset: 'UTF8' }]);
  });

  it('reports 775 when the sender does not finish within <timeout>', async () => {
    let aborted = false;
    const h = await ready({
      sender: (req) =>
        new Promise<SimSendOutcome>(() => {
          req.signal?.addEventListener('abort', () => (aborted = true));
        }),
    });
    const m = h.mark();
    await h.at('AT+QMMSEND=2');
    await h.clock.advance(2100);
    expect(h.since(m)).toBe(`${OK}\r\n+QMMSEND: 775,0\r\n`);
    expect(aborted).toBe(true);
  });

  it('never reports while held, and reports once released', async () => {
    const h = await ready();
    h.modem.holdSend(true);
    const m = h.mark();
    await h.at('AT+QMMSEND=100');
    await h.clock.advance(10_000);
    expect(h.since(m)).toBe(OK);
    expect(h.modem.state().sending).toBe(true);
    h.modem.holdSend(false);
    await h.clock.advance(20);
    expect(h.since(m)).toBe(`${OK}\r\n+QMMSEND: 0,200\r\n`);
  });

  it('reports 769 when the network drops the context mid-send', async () => {
    const h = await ready();
    h.modem.holdSend(true);
    await h.at('AT+QMMSEND=100');
    const m = h.mark();
    h.modem.dropPdp(1);
    await h.clock.advance(5);
    expect(h.since(m)).toBe('\r\n+QIURC: "pdpdeact",1\r\n\r\n+QMMSEND: 769,0\r\n');
  });

  it('reports 753 when no MMSC URL is configured', async () => {
    const h = setup();
    await h.init();
    await h.at('AT+QIACT=1');
    await h.at('AT+QMMSEDIT=1,1,"1"');
    const m = h.mark();
    await h.at('AT+QMMSEND=100');
    await h.clock.advance(20);
    expect(h.since(m)).toBe(`${OK}\r\n+QMMSEND: 753,0\r\n`);
  });
});

describe('VirtualModem: restart', () => {
  it('answers OK to AT+CFUN=1,1, then restarts with RDY and loses all state', async () => {
    const h = setup({ bootMs: 300 });
    await h.init();
    await h.at('AT+CMEE=2');
    await h.at('AT+CEREG=2');
    await h.at('AT+QIACT=1');
    await h.at('AT+QMMSCFG="mmsc","http://x/mms"');
    await h.at('AT+QMMSEDIT=1,1,"1"');
    await upload(h, 'RAM:a', pattern(10));
    const m = h.mark();
    expect(await h.at('AT+CFUN=1,1')).toBe(OK);
    h.modem.feed(Buffer.from('AT\r'));
    await h.clock.advance(200);
    expect(h.since(m)).toBe(OK);
    await h.clock.advance(200);
    expect(h.since(m)).toBe(`${OK}\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\n+QIND: PB DONE\r\n\r\n+QIND: SMS DONE\r\n`);
    expect(await h.at('AT')).toBe(`AT\r${OK}`);
    await h.at('ATE0');
    expect(await h.at('AT+CMEE?')).toBe(info('+CMEE: 1'));
    expect(await h.at('AT+CEREG?')).toBe(info('+CEREG: 0,1'));
    expect(await h.at('AT+QIACT?')).toBe(OK);
    expect(await h.at('AT+QMMSCFG="mmsc"')).toBe(info('+QMMSCFG: "mmsc",""'));
    expect(await h.at('AT+QMMSEDIT=1')).toBe(OK);
    expect(await h.at('AT+QFLST="RAM:*"')).toBe(OK);
    expect(h.modem.state().boots).toBe(1);
  });

  it('gives no +QMMSEND when the module restarts mid-send', async () => {
    const h = setup({ bootMs: 100, sendDelayMs: 500 });
    await h.init();
    await h.at('AT+QIACT=1');
    await h.at('AT+QMMSCFG="mmsc","http://x/mms"');
    await h.at('AT+QMMSEDIT=1,1,"1"');
    await h.at('AT+QMMSEND=100');
    const m = h.mark();
    h.modem.reboot();
    await h.clock.advance(2000);
    expect(h.since(m)).toBe('\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\n+QIND: PB DONE\r\n\r\n+QIND: SMS DONE\r\n');
  });

  it('drops an upload in progress on restart', async () => {
    const h = setup({ bootMs: 100 });
    await h.init();
    await h.at('AT+QFUPL="RAM:a",100,10,1');
    h.modem.feed(Buffer.from('abc'));
    await h.clock.advance(5);
    h.modem.reboot();
    await h.clock.advance(200);
    expect(await h.at('AT+QFLST="RAM:*"')).toBe(`AT+QFLST="RAM:*"\r${OK}`);
  });
});

describe('VirtualModem: faults', () => {
  it('drops the next responses but still echoes', async () => {
    const h = setup();
    h.modem.dropNextResponses(1);
    const m = h.mark();
    h.modem.feed(Buffer.from('AT\r'));
    await h.clock.advance(10);
    expect(h.since(m)).toBe('AT\r');
    expect(await h.at('AT')).toBe(`AT\r${OK}`);
  });

  it('garbles the next responses', async () => {
    const h = setup();
    await h.init();
    h.modem.garbleNextResponses(1);
    const m = h.mark();
    h.modem.feed(Buffer.from('AT\r'));
    await h.clock.advance(10);
    expect(h.since(m)).toBe('\r\n\xcf\xcb\r\n');
    expect(await h.at('AT')).toBe(OK);
  });

  it('puts a URC in the middle of the next response', async () => {
    const h = setup();
    await h.init();
    await upload(h, 'RAM:a', pattern(1));
    await upload(h, 'RAM:b', pattern(2));
    h.modem.injectUrcMidResponse('+QIURC: "pdpdeact",1');
    expect(await h.at('AT+QFLST="RAM:*"')).toBe('\r\n+QFLST: "RAM:a",1\r\n\r\n+QIURC: "pdpdeact",1\r\n+QFLST: "RAM:b",2\r\n\r\nOK\r\n');
  });

  it('delays responses', async () => {
    const h = setup();
    await h.init();
    h.modem.setDelay(500);
    const m = h.mark();
    h.modem.feed(Buffer.from('AT\r'));
    await h.clock.advance(499);
    expect(h.since(m)).toBe('');
    await h.clock.advance(2);
    expect(h.since(m)).toBe(OK);
  });

  it('throttles output to the line rate', async () => {
    const h = setup({ bytesPerSecond: 100 });
    const m = h.mark();
    h.modem.feed(Buffer.from('ATI\r'));
    // 4 bytes in (40 ms), then echo (4 bytes) and 47 bytes of answer out at 10 ms per byte.
    await h.clock.advance(40);
    await h.clock.advance(100);
    const partial = h.since(m).length;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(20);
    await h.clock.advance(1000);
    expect(h.since(m)).toBe(`ATI\r${info('Quectel', 'EC25', 'Revision: EC25EFAR06A11M4G')}`);
  });

  it('does not send the ACK before 1024 bytes could have crossed the line', async () => {
    const h = setup({ bytesPerSecond: 1000 });
    await h.init();
    await h.clock.advance(100);
    await h.at('AT+QFUPL="RAM:a",2048,10,1');
    await h.clock.advance(100);
    const m = h.mark();
    h.modem.feed(pattern(1024));
    await h.clock.advance(1022);
    expect(h.since(m)).toBe('');
    await h.clock.advance(20);
    expect(h.since(m)).toBe('A');
  });
});
