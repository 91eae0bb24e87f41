// The AT channel (src/at) against mmsd-sim as a separate process: over a real pty pair through
// the real serialport binding, and over tcp://. §3.6 through the channel, ACK-mode uploads (the
// driver's QFUPL protocol) with verified checksums, data containing "+++", a window of blocks in
// flight against the module's finite receive buffer, URCs, and the port disappearing and returning.
import { createHash } from 'node:crypto';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AtChannel } from '../../src/at/channel.js';
import { checksum16 } from '../../src/at/checksum.js';
import { ClosedError, CmeError } from '../../src/at/errors.js';
import { createTransport } from '../../src/at/transport.js';
import { upload } from '../../src/modem/qfupl.js';
import { Testbed } from '../../src/harness/testbed.js';

const log = pino({ level: 'silent' });
let tb: Testbed | undefined;
let ch: AtChannel | undefined;

afterEach(async () => {
  await ch?.stop();
  await tb?.stop();
  ch = tb = undefined;
});

async function open(tcp: boolean, simArgs: string[] = []): Promise<AtChannel> {
  tb = await Testbed.start({ daemon: false, tcp, simArgs });
  const port = tb.simInfo.port;
  ch = new AtChannel({ openTransport: () => createTransport(port, 115200), logger: log, reopenMinMs: 100, reopenMaxMs: 500 });
  const connected = new Promise<void>((resolve) => ch!.once('connected', () => resolve()));
  await ch.start();
  if (!ch.isConnected) await connected;
  await ch.command('ATE0');
  await ch.command('AT+CMEE=1');
  return ch;
}

function pattern(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + (i >> 8)) & 0xff;
  return b;
}

for (const tcp of [false, true]) {
  describe(`AtChannel against mmsd-sim over ${tcp ? 'tcp://' : 'a pty'}`, () => {
    it('replays the §3.6 example through the channel and the MMSC gets the message', async () => {
      const at = await open(tcp);
      const mmsc = new URL(tb!.simInfo.mmsc);
      await at.command('AT+QICSGP=1,1,"UNIWAP","",1');
      await at.command('AT+QIACT=1', { timeoutMs: 150_000 });
      expect((await at.command('AT+QIACT?', { prefix: '+QIACT:' })).lines).toEqual(['+QIACT: 1,1,1,"10.7.157.1"']);
      await at.command('AT+QMMSCFG="contextid",1');
      expect((await at.command('AT+QMMSCFG="contextid"', { prefix: '+QMMSCFG:' })).lines).toEqual(['+QMMSCFG: "contextid",1']);
      await at.command(`AT+QMMSCFG="mmsc","${tb!.simInfo.mmsc}"`);
      await at.command(`AT+QMMSCFG="proxy","${mmsc.hostname}",${mmsc.port}`);
      await at.command('AT+QMMSCFG="sendparam",6,2,0,0,2,4');
      expect((await at.command('AT+QMMSCFG="sendparam"', { prefix: '+QMMSCFG:' })).lines).toEqual(['+QMMSCFG: "sendparam",6,2,0,0,2,4']);
      await at.command('AT+QMMSEDIT=1,1,"13856122546"');
      await at.command('AT+QMMSEDIT=2,1,"copy.test@quectel.com"');
      await at.command('AT+QMMSEDIT=3,1,"secret.test@quectel.com"');
      expect((await at.command('AT+QMMSEDIT=3', { prefix: '+QMMSEDIT:' })).lines).toEqual(['+QMMSEDIT: 3,"secret.test@quectel.com"']);
      await at.command('AT+QMMSCFG="character","ASCII"');
      await at.command('AT+QMMSEDIT=4,1,"test EM05 mms"');
      expect((await at.command('AT+QMMSEDIT=4', { prefix: '+QMMSEDIT:' })).lines).toEqual(['+QMMSEDIT: 4,"ASCII","test EM05 mms"']);
      const text = Buffer.from('x'.repeat(100));
      const up = await upload(at, 'AT+QFUPL="RAM:test_ram.txt",100,300,1', text);
      expect(up).toMatchObject({ size: 100, checksum: checksum16(text) });
      expect((await at.command('AT+QFLST="RAM:*"', { prefix: '+QFLST:' })).lines).toEqual(['+QFLST: "RAM:test_ram.txt",100']);
      await at.command('AT+QMMSEDIT=5,1,"RAM:test_ram.txt"');
      const pic = pattern(200);
      await upload(at, 'AT+QFUPL="RAM:test_pic.jpg",200,300,1', pic);
      await at.command('AT+QMMSEDIT=5,1,"RAM:test_pic.jpg"');
      expect((await at.command('AT+QMMSEDIT=5', { prefix: '+QMMSEDIT:' })).lines).toEqual([
        '+QMMSEDIT: 5,"RAM:test_ram.txt"',
        '+QMMSEDIT: 5,"RAM:test_pic.jpg"',
      ]);
      const result = new Promise<string>((resolve) => at.onUrc('+QMMSEND:', resolve));
      await at.command('AT+QMMSEND=100');
      expect(await result).toBe('+QMMSEND: 0,200');
      await at.command('AT+QMMSEDIT=0');
      await at.command('AT+QFDEL="RAM:test_ram.txt"');
      await at.command('AT+QFDEL="RAM:test_pic.jpg"');
      expect((await at.command('AT+QFLST="RAM:*"', { prefix: '+QFLST:' })).lines).toEqual([]);

      const [m] = await tb!.received();
      expect(m).toMatchObject({ to: ['13856122546'], cc: ['copy.test@quectel.com'], bcc: ['secret.test@quectel.com'], subject: 'test EM05 mms' });
      const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
      expect(m.parts.find((p) => p.name === 'test_ram.txt')?.sha256).toBe(sha(text));
      expect(m.parts.find((p) => p.name === 'test_pic.jpg')?.sha256).toBe(sha(pic));
    });

    it('uploads 200 KB in ACK mode, data full of "+++", with the checksum verified', async () => {
      const at = await open(tcp);
      const data = Buffer.alloc(200 * 1024, '+++');
      data.set(pattern(4096), 100_000);
      const progress: number[] = [];
      const r = await upload(at, `AT+QFUPL="RAM:plus.bin",${data.length},120,1`, data, { onProgress: (sent) => progress.push(sent) });
      expect(r).toMatchObject({ size: data.length, checksum: checksum16(data) });
      expect(progress.at(-1)).toBe(data.length);
      expect(progress.length).toBeGreaterThanOrEqual(200);
      const st = (await tb!.simState()) as { ramFiles: { name: string; size: number }[] };
      expect(st.ramFiles).toEqual([expect.objectContaining({ name: 'RAM:plus.bin', size: data.length })]);
      await expect(upload(at, `AT+QFUPL="RAM:plus.bin",10,10,1`, Buffer.alloc(10))).rejects.toBeInstanceOf(CmeError);
      expect((await at.command('AT')).lines).toEqual([]); // still usable after the refusal
    });

    it('keeps a window of blocks in flight that the module\'s receive buffer holds, and catches one it does not', async () => {
      // A module that holds two unstored blocks and takes 20 ms to store each.
      const at = await open(tcp, ['--upload-buffer', '2048', '--upload-block-ms', '20']);
      const data = pattern(20_000);
      const ok = await upload(at, `AT+QFUPL="RAM:w2.bin",${data.length},60,1`, data, { window: 2 });
      expect(ok).toMatchObject({ size: data.length, checksum: checksum16(data) });
      // Four blocks ahead overflow it: bytes are lost, and the module says so; no file is kept.
      const err = await upload(at, `AT+QFUPL="RAM:w4.bin",${data.length},60,1`, data, { window: 4 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CmeError);
      expect((err as CmeError).code).toBe(409);
      const st = (await tb!.simState()) as { ramFiles: { name: string; size: number }[] };
      expect(st.ramFiles).toEqual([{ name: 'RAM:w2.bin', size: data.length }]);
      // The channel is usable and the same file goes with a window that fits.
      expect((await at.command('AT')).lines).toEqual([]);
      const again = await upload(at, `AT+QFUPL="RAM:w4.bin",${data.length},60,1`, data, { window: 2 });
      expect(again).toMatchObject({ size: data.length, checksum: checksum16(data) });
    });

    it('fails commands with ClosedError when the port goes, and works again when it returns', async () => {
      const at = await open(tcp);
      const down = new Promise<void>((resolve) => at.once('disconnected', () => resolve()));
      const up = new Promise<void>((resolve) => at.once('connected', () => resolve()));
      await tb!.fault({ portLoss: 400 });
      await down;
      await expect(at.command('AT')).rejects.toBeInstanceOf(ClosedError);
      await up;
      expect((await at.command('AT')).lines).toEqual([]);
    });
  });
}

describe('the virtual modem posts real MMS (raw AT over a pty)', () => {
  async function sendSubject(at: AtChannel, charset: string, hex: string): Promise<string> {
    await at.command('AT+QMMSEDIT=0');
    await at.command('AT+QMMSCFG="character","ASCII"');
    await at.command('AT+QMMSEDIT=1,1,"+8613800000000"');
    await at.command(`AT+QMMSCFG="character","${charset}"`);
    await at.command(`AT+QMMSEDIT=4,1,"${hex}"`);
    const result = new Promise<string>((resolve) => {
      const off = at.onUrc('+QMMSEND:', (l) => {
        off();
        resolve(l);
      });
    });
    await at.command('AT+QMMSEND=30');
    return result;
  }

  it('decodes UTF-8, UCS-2 and GBK subjects given as hex, and maps MMSC faults to +QMMSEND', async () => {
    const at = await open(false);
    const mmsc = new URL(tb!.simInfo.mmsc);
    await at.command('AT+QIACT=1', { timeoutMs: 150_000 });
    await at.command(`AT+QMMSCFG="mmsc","${tb!.simInfo.mmsc}"`);
    await at.command(`AT+QMMSCFG="proxy","${mmsc.hostname}",${mmsc.port}`);
    const subject = '彩信测试';
    const { default: iconv } = await import('iconv-lite');
    const hex = (b: Buffer): string => b.toString('hex').toUpperCase();
    expect(await sendSubject(at, 'UTF8', hex(Buffer.from(subject, 'utf8')))).toBe('+QMMSEND: 0,200');
    expect(await sendSubject(at, 'UCS2', hex(Buffer.from(subject, 'utf16le').swap16()))).toBe('+QMMSEND: 0,200');
    expect(await sendSubject(at, 'GBK', hex(iconv.encode(subject, 'gbk')))).toBe('+QMMSEND: 0,200');
    expect((await tb!.received()).map((m) => m.subject)).toEqual([subject, subject, subject]);

    await tb!.fault({ mmsc: { httpStatus: 503, count: 1 } });
    expect(await sendSubject(at, 'UTF8', hex(Buffer.from('x')))).toBe('+QMMSEND: 766,503');
    await tb!.fault({ mmsc: { mmsStatus: 0xe2, mmsText: 'Bad address', count: 1 } });
    expect(await sendSubject(at, 'UTF8', hex(Buffer.from('x')))).toBe('+QMMSEND: 765,200,"Bad address"');
    await tb!.fault({ mmsc: { garbage: true, count: 1 } });
    expect(await sendSubject(at, 'UTF8', hex(Buffer.from('x')))).toMatch(/^\+QMMSEND: 777,200/);
    await tb!.fault({ mmsc: { drop: true, count: 1 } });
    expect(await sendSubject(at, 'UTF8', hex(Buffer.from('x')))).toMatch(/^\+QMMSEND: 77[2-4],/);
    await tb!.fault({ dropPdp: 1 });
    expect(await sendSubject(at, 'UTF8', hex(Buffer.from('x')))).toBe('+QMMSEND: 769,0');
    expect((await tb!.received())).toHaveLength(3);
  });
});
