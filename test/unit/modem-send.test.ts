// Unit tests of QuectelModem's editing, file and send functions against a scripted AT channel.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ClosedError } from '../../src/at/errors.js';
import { InvalidArgumentError } from '../../src/modem/quote.js';
import { QuectelModem } from '../../src/modem/quectel.js';
import { SendNotAcceptedError, SendOutcomeUnknownError } from '../../src/modem/types.js';
import { FakeAt, cme, error, silentLogger, testConfig, nextState, startReady, whenState } from './modem-fake-at.js';

const modems: QuectelModem[] = [];

function build(at: FakeAt): QuectelModem {
  const m = new QuectelModem({ at, logger: silentLogger, config: testConfig() });
  modems.push(m);
  return m;
}

afterEach(async () => {
  for (const m of modems.splice(0)) await m.stop();
  vi.useRealTimers();
});

/** AT+QMMSEND answers OK, then the module reports `line` (after the OK, on the next turn). */
function resultAfterOk(at: FakeAt, line: string): void {
  at.reply('AT+QMMSEND=300', () => {
    setImmediate(() => at.urc(line));
    return [];
  });
}

describe('send()', () => {
  it('returns the +QMMSEND result after OK, having run onAccepted in between', async () => {
    const at = new FakeAt();
    resultAfterOk(at, '+QMMSEND: 0,200');
    const m = build(at);
    const order: string[] = [];
    const r = await m.send(300, () => {
      order.push(`accepted after ${at.transcript.join(' ')}`);
      return Promise.resolve();
    });
    expect(r).toEqual({ err: 0, httpStatus: 200 });
    expect(order).toEqual(['accepted after AT+QMMSEND=300']);
    expect(at.urcs.size).toBe(0);
    expect(at.listenerCount('disconnected')).toBe(0);
  });

  it('keeps a result that arrives while onAccepted is still running', async () => {
    const at = new FakeAt();
    const m = build(at);
    const r = await m.send(300, async () => {
      at.urc('+QMMSEND: 0,200,"Message-ID 42"');
      await new Promise((res) => setImmediate(res));
    });
    expect(r).toEqual({ err: 0, httpStatus: 200, mmscResponse: 'Message-ID 42' });
  });

  it('catches a result that comes with the OK, before the command has even resolved', async () => {
    const at = new FakeAt().reply('AT+QMMSEND=300', () => {
      at.urc('+QMMSEND: 0,200');
      return [];
    });
    const m = build(at);
    expect(await m.send(300, () => Promise.resolve())).toEqual({ err: 0, httpStatus: 200 });
  });

  it('reads <mmsrsp> quoted and unquoted', async () => {
    const at = new FakeAt();
    const m = build(at);
    resultAfterOk(at, '+QMMSEND: 765,500,"Server error, later"');
    expect(await m.send(300, () => Promise.resolve())).toEqual({ err: 765, httpStatus: 500, mmscResponse: 'Server error, later' });
    resultAfterOk(at, '+QMMSEND: 766,403,Forbidden');
    expect(await m.send(300, () => Promise.resolve())).toEqual({ err: 766, httpStatus: 403, mmscResponse: 'Forbidden' });
  });

  it('ignores other URCs while waiting', async () => {
    const at = new FakeAt();
    const m = build(at);
    const r = await m.send(300, () => {
      setImmediate(() => {
        at.urc('+CEREG: 1');
        at.urc('+QMMSEND: 0,200');
      });
      return Promise.resolve();
    });
    expect(r.err).toBe(0);
  });

  it('CME 764 (busy) → SendNotAcceptedError(764), onAccepted not run', async () => {
    const at = new FakeAt().reply('AT+QMMSEND=300', cme(764));
    const m = build(at);
    const onAccepted = vi.fn(() => Promise.resolve());
    const err = await m.send(300, onAccepted).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SendNotAcceptedError);
    expect((err as SendNotAcceptedError).code).toBe(764);
    expect(onAccepted).not.toHaveBeenCalled();
    expect(at.urcs.size).toBe(0);
  });

  it('plain ERROR → SendNotAcceptedError without a code', async () => {
    const at = new FakeAt().reply('AT+QMMSEND=300', error());
    const m = build(at);
    const err = await m.send(300, () => Promise.resolve()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SendNotAcceptedError);
    expect((err as SendNotAcceptedError).code).toBeUndefined();
  });

  it('accepted, then the port is lost → SendOutcomeUnknownError', async () => {
    const at = new FakeAt();
    const m = build(at);
    const p = m.send(300, () => {
      at.disconnect();
      return Promise.resolve();
    });
    await expect(p).rejects.toBeInstanceOf(SendOutcomeUnknownError);
  });

  it('the port closes after AT+QMMSEND was written, before its answer → SendOutcomeUnknownError, not a refusal', async () => {
    const at = new FakeAt().script('AT+QMMSEND=300', new ClosedError('AT+QMMSEND=300', 'USB gone', { mayHaveArrived: true }));
    const m = build(at);
    let accepted = false;
    const err = await m
      .send(300, () => {
        accepted = true;
        return Promise.resolve();
      })
      .catch((e: unknown) => e);
    // The module may be sending: resending would risk a duplicate.
    expect(err).toBeInstanceOf(SendOutcomeUnknownError);
    expect(accepted).toBe(false);
  });

  it('the port closed before AT+QMMSEND was written → SendNotAcceptedError (safe to send again)', async () => {
    const at = new FakeAt().script('AT+QMMSEND=300', new ClosedError('AT+QMMSEND=300', 'not open'));
    const m = build(at);
    await expect(m.send(300, () => Promise.resolve())).rejects.toBeInstanceOf(SendNotAcceptedError);
  });

  it('accepted, then the module reboots (RDY) → SendOutcomeUnknownError', async () => {
    const at = new FakeAt();
    resultAfterOk(at, 'RDY');
    const m = build(at);
    await expect(m.send(300, () => Promise.resolve())).rejects.toBeInstanceOf(SendOutcomeUnknownError);
  });

  it('accepted, then no result within <timeout> + 30 s → SendOutcomeUnknownError', async () => {
    vi.useFakeTimers();
    const at = new FakeAt();
    const m = build(at);
    let settled: unknown;
    const p = m.send(10, () => Promise.resolve()).then(
      (r) => (settled = r),
      (e: unknown) => (settled = e),
    );
    await vi.advanceTimersByTimeAsync(39_000);
    expect(settled).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1_000);
    await p;
    expect(settled).toBeInstanceOf(SendOutcomeUnknownError);
  });

  it('no final code to AT+QMMSEND is not "not accepted": the result is still awaited', async () => {
    const { TimeoutError } = await import('../../src/at/errors.js');
    const at = new FakeAt().reply('AT+QMMSEND=300', () => {
      setImmediate(() => at.urc('+QMMSEND: 0,200'));
      return new TimeoutError('AT+QMMSEND=300', 5000);
    });
    const m = build(at);
    const onAccepted = vi.fn(() => Promise.resolve());
    expect(await m.send(300, onAccepted)).toEqual({ err: 0, httpStatus: 200 });
    expect(onAccepted).toHaveBeenCalledOnce();
  });

  it('refuses a timeout out of range before writing', async () => {
    const at = new FakeAt();
    const m = build(at);
    await expect(m.send(0, () => Promise.resolve())).rejects.toThrow(InvalidArgumentError);
    expect(at.transcript).toEqual([]);
  });
});

describe('editing', () => {
  it.each(['"', '\r', '\n', '\x1a', ';', '\x00', 'é', '中'])('refuses %j in an address, a file name, an upload — nothing written', async (c) => {
    const at = new FakeAt();
    const m = build(at);
    await expect(m.addRecipient('to', `+4912${c}34`)).rejects.toThrow(InvalidArgumentError);
    await expect(m.addAttachment(`a${c}.txt`)).rejects.toThrow(InvalidArgumentError);
    await expect(m.uploadFile(`a${c}.txt`, Buffer.from('x'))).rejects.toThrow(InvalidArgumentError);
    await expect(m.deleteFile(`a${c}.txt`)).rejects.toThrow(InvalidArgumentError);
    expect(at.transcript).toEqual([]);
  });

  it('adds addresses under ASCII, setting the charset only when another is in force', async () => {
    const at = new FakeAt();
    const m = build(at);
    await m.start();
    await whenState(m, 'ready'); // bring-up leaves "ASCII" in force, what addresses need
    at.clear();
    await m.addRecipient('to', '+8613856122546');
    await m.addRecipient('cc', 'copy.test@quectel.com');
    await m.addRecipient('bcc', 'secret.test@quectel.com');
    await m.setSubject('你好', 'UTF8');
    await m.addRecipient('to', '13856122546');
    expect(at.transcript).toEqual([
      'AT+QMMSEDIT=1,1,"+8613856122546"',
      'AT+QMMSEDIT=2,1,"copy.test@quectel.com"',
      'AT+QMMSEDIT=3,1,"secret.test@quectel.com"',
      'AT+QMMSCFG="character","UTF8"',
      'AT+QMMSEDIT=4,1,"E4BDA0E5A5BD"',
      'AT+QMMSCFG="character","ASCII"',
      'AT+QMMSEDIT=1,1,"13856122546"',
    ]);
  });

  it('sets the charset again when a character command failed (its state is then unknown)', async () => {
    const at = new FakeAt().script('AT+QMMSCFG="character","ASCII"', cme(756));
    const m = build(at);
    await expect(m.setCharset('ASCII')).rejects.toThrow();
    await m.setCharset('ASCII');
    await m.setCharset('ASCII');
    expect(at.count('AT+QMMSCFG="character","ASCII"')).toBe(2);
  });

  it.each([
    ['test EM05 mms', 'UTF8', 'ASCII', 'test EM05 mms'],
    ['你好', 'UTF8', 'UTF8', 'E4BDA0E5A5BD'],
    ['你好', 'ASCII', 'UTF8', 'E4BDA0E5A5BD'],
    ['你好', 'UCS2', 'UCS2', '4F60597D'],
    ['你好', 'GBK', 'GBK', 'C4E3BAC3'],
    ['50% off; today', 'GBK', 'GBK', '353025206F66663B20746F646179'],
  ] as const)('subject %j with %s → under %s as %s', async (subject, configured, charset, optstring) => {
    const at = new FakeAt();
    const m = build(at);
    await m.setSubject(subject, configured);
    expect(at.transcript).toEqual([`AT+QMMSCFG="character","${charset}"`, `AT+QMMSEDIT=4,1,"${optstring}"`]);
  });

  it('refuses a subject over 200 bytes before writing', async () => {
    const at = new FakeAt();
    const m = build(at);
    await expect(m.setSubject('中'.repeat(67), 'UTF8')).rejects.toThrow(InvalidArgumentError);
    expect(at.transcript).toEqual([]);
  });

  it('skips a clear while the edit buffer is known to be empty, not after an edit, a send or a restart', async () => {
    const at = new FakeAt();
    const m = build(at);
    await startReady(m, at);
    await m.mmsClear(); // unknown after bring-up: cleared
    await m.mmsClear(); // known empty: skipped
    await m.addAttachment('a.txt');
    await m.mmsClear();
    await m.addRecipient('to', '+8613856122546');
    await m.mmsClear();
    await m.setSubject('hi', 'UTF8');
    await m.mmsClear();
    expect(at.transcript.filter((c) => c === 'AT+QMMSEDIT=0')).toHaveLength(4);
    expect(at.transcript.at(-1)).toBe('AT+QMMSEDIT=0');
    at.clear();
    at.script('AT+QMMSEDIT=0', cme(50));
    await m.addAttachment('b.txt');
    await expect(m.mmsClear()).rejects.toThrow(); // failed: still unknown
    await m.mmsClear();
    expect(at.count('AT+QMMSEDIT=0')).toBe(2);
    const ready = nextState(m, 'ready');
    at.urc('RDY'); // a restarted module: nothing is known about it
    await ready;
    at.clear();
    await m.mmsClear();
    expect(at.transcript).toEqual(['AT+QMMSEDIT=0']);
  });

  it('clears, sets send parameters and adds attachments', async () => {
    const at = new FakeAt();
    const m = build(at);
    await m.mmsClear();
    await m.setSendParams({ validity: 1, priority: 2, deliveryReport: true, readReport: false, visibility: 0, class: 3 });
    await m.addAttachment('m1_0_pic.jpg');
    expect(at.transcript).toEqual([
      'AT+QMMSEDIT=0',
      'AT+QMMSCFG="sendparam",1,2,1,0,0,3',
      'AT+QMMSEDIT=5,1,"RAM:m1_0_pic.jpg"',
    ]);
  });
});

describe('RAM files', () => {
  it('uploads in ACK mode with a timeout sized from the data', async () => {
    const at = new FakeAt();
    const m = build(at);
    const progress: number[] = [];
    await m.uploadFile('pic.jpg', Buffer.alloc(102_400, 7), (sent) => progress.push(sent));
    expect(at.transcript).toEqual(['AT+QFUPL="RAM:pic.jpg",102400,80,1']);
    expect(at.uploads[0].opts?.timeoutMs).toBe(90_000);
    // One call per acknowledged 1024-byte block (the driver's QFUPL protocol).
    expect(progress).toEqual(Array.from({ length: 100 }, (_, i) => (i + 1) * 1024));
    expect(at.uploads[0].data).toEqual(Buffer.alloc(102_400, 7));
  });

  it('keeps modem.uploadWindow blocks in flight', async () => {
    const at = new FakeAt();
    const m = new QuectelModem({ at, logger: silentLogger, config: testConfig({ uploadWindow: 3 }) });
    modems.push(m);
    await m.uploadFile('w.bin', Buffer.alloc(10_000, 1));
    // The first write fills the window of three blocks; each "A" lets one more go.
    expect(at.uploads[0].writes).toEqual([3072, 1024, 1024, 1024, 1024, 1024, 1024, 784]);
    expect(at.uploads[0].data).toEqual(Buffer.alloc(10_000, 1));
  });

  it('lists RAM files by name without the prefix', async () => {
    const at = new FakeAt().reply('AT+QFLST="RAM:*"', ['+QFLST: "RAM:test_mms.txt",100', '+QFLST: "RAM:test_pic.jpg",200']);
    const m = build(at);
    expect(await m.listFiles()).toEqual(
      new Map([
        ['test_mms.txt', 100],
        ['test_pic.jpg', 200],
      ]),
    );
  });

  it('deleting a file that is not there succeeds; other errors do not', async () => {
    const at = new FakeAt().script('AT+QFDEL="RAM:gone.txt"', cme(405)).script('AT+QFDEL="RAM:bad.txt"', cme(406));
    const m = build(at);
    await expect(m.deleteFile('gone.txt')).resolves.toBeUndefined();
    await expect(m.deleteFile('bad.txt')).rejects.toThrow();
  });
});

describe('watchdog', () => {
  it('ping() is one AT round trip that moves lastAtOkAt; false when the module is silent', async () => {
    const { TimeoutError } = await import('../../src/at/errors.js');
    const at = new FakeAt().script('AT', [], new TimeoutError('AT', 500));
    let now = 1000;
    const m = new QuectelModem({ at, logger: silentLogger, config: testConfig(), clock: () => now });
    expect(m.lastAtOkAt).toBe(0);
    expect(await m.ping(500)).toBe(true);
    expect(m.lastAtOkAt).toBe(1000);
    now = 2000;
    expect(await m.ping(500)).toBe(false);
    expect(m.lastAtOkAt).toBe(1000);
    expect(at.commandOptions.map((c) => [c.cmd, c.opts?.timeoutMs])).toEqual([
      ['AT', 500],
      ['AT', 500],
    ]);
  });
});
