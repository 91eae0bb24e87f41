// The sender against a fake outbox and a scripted fake modem: the §6 sequence, the retry rules of
// §4.3/§5/§6, staging, cleanup, readiness and stop.
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { AtErrorResult, ChecksumError, ClosedError, CmeError, TimeoutError } from '../../src/at/errors.js';
import type { SendRequest } from '../../src/core/message.js';
import { SendNotAcceptedError, SendOutcomeUnknownError } from '../../src/modem/types.js';
import { attachmentNames } from '../../src/core/names.js';
import { DEFAULT_BUSY_WAIT_MS, MAX_REQUEUES_IN_ROW, type SenderConfig } from '../../src/sender/sender.js';
import { DEFAULTS, FakeModem, deferred, senderRig, stopSenderRigs, waitFor, type SenderRig } from './sender-fakes.js';


const TEXT = Buffer.from('你好, MMS 世界\n', 'utf8');
const IMAGE = Buffer.alloc(5000, 0xa5);

function request(over: Partial<SendRequest> = {}): SendRequest {
  return {
    id: 'm1',
    to: ['+15550000001', '+15550000002', '+15550000003'],
    cc: ['+15550000004', 'copy@example.com'],
    bcc: ['+15550000006'],
    subject: 'Hello there',
    attachments: [
      { name: 'note.txt', contentType: 'text/plain; charset=utf-8', data: TEXT },
      { name: 'photo.jpg', contentType: 'image/jpeg', data: IMAGE },
    ],
    options: {},
    ...over,
  };
}

const [N0, N1] = attachmentNames([{ name: 'note.txt' }, { name: 'photo.jpg' }]) as [string, string];

type Rig = SenderRig;

function rig(config: Partial<SenderConfig> = {}, logger = pino({ level: 'silent' })): Promise<Rig> {
  return senderRig({ config, logger });
}

afterEach(stopSenderRigs);

/**
 * Submits the standard request, waits for `unknown`, then kicks the idle sender: it must go idle
 * again without picking the message up (an `unknown` message is never sent again on its own).
 */
async function endsUnknownAndStays({ outbox, sender, until, time }: Rig): Promise<void> {
  sender.start([]);
  await outbox.submit(request());
  await until('unknown');
  await waitFor(() => time.idle, 'the sender to go idle');
  sender.kick();
  await waitFor(() => time.sleeps.filter((ms) => ms === Infinity).length >= 2, 'idle again after a kick');
}

/** The commands of §6 for the standard request, from the clear to the send. */
function editSequence(): string[] {
  return [
    'setCharset ASCII',
    'addRecipient to +15550000001',
    'addRecipient to +15550000002',
    'addRecipient to +15550000003',
    'addRecipient cc +15550000004',
    'addRecipient cc copy@example.com',
    'addRecipient bcc +15550000006',
    'setSubject Hello there ASCII',
    'setCharset UTF8',
    `addAttachment ${N0}`,
    `addAttachment ${N1}`,
    'send 300',
  ];
}

describe('Sender', () => {
  it('sends a 3 TO / 2 CC / 1 BCC message with subject, text and image in the exact §6 sequence', async () => {
    const { outbox, modem, sender, until } = await rig();
    sender.start([]);
    await outbox.submit(request());
    await until('sent');
    expect(modem.calls).toEqual([
      'mmsClear',
      'ramSpace', // §14: one AT+QFLDS="RAM" before the uploads
      `uploadFile ${N0} ${TEXT.length}`,
      `uploadFile ${N1} ${IMAGE.length}`,
      ...editSequence(),
      'mmsClear',
      `deleteFile ${N0}`,
      `deleteFile ${N1}`,
    ]);
    const rec = outbox.get('m1')!;
    expect(rec).toMatchObject({ status: 'sent', attempts: 1, ramFiles: [], progress: 1 });
    expect(rec.error).toBeUndefined();
    expect(modem.ram.size).toBe(0);
  });

  it('journals the RAM names durably before the first upload', async () => {
    const { outbox, trace, sender, until } = await rig();
    sender.start([]);
    await outbox.submit(request());
    await until('sent');
    const journal = trace.indexOf(`outbox.update ${JSON.stringify({ ramFiles: [N0, N1] })}`);
    const firstUpload = trace.findIndex((t) => t.startsWith('modem.uploadFile'));
    expect(journal).toBeGreaterThanOrEqual(0);
    expect(journal).toBeLessThan(firstUpload);
    expect(outbox.patches.find((p) => p.patch.ramFiles?.length === 2)?.durable).toBe(true);
  });

  it('records sendAccepted durably before AT+QMMSEND is written (a crash after it means unknown)', async () => {
    const { outbox, trace, sender, until } = await rig();
    sender.start([]);
    await outbox.submit(request());
    await until('sent');
    const accepted = trace.indexOf(`outbox.update ${JSON.stringify({ sendAccepted: true })}`);
    expect(accepted).toBeGreaterThanOrEqual(0);
    expect(accepted).toBeLessThan(trace.indexOf('modem.send 300'));
  });

  it('puts a non-ASCII subject under UTF8 and applies per-message options only when they differ', async () => {
    const { outbox, modem, sender, until } = await rig();
    sender.start([]);
    await outbox.submit(request({ subject: '测试 EM05 彩信', options: { priority: 1, deliveryReport: true, timeout: 120 } }));
    await until('sent');
    await outbox.submit(request({ id: 'm2', attachments: [], options: { priority: 1, deliveryReport: true } }));
    await until('sent', 'm2');
    await outbox.submit(request({ id: 'm3', attachments: [] }));
    await until('sent', 'm3');
    const merged = { ...DEFAULTS, priority: 1, deliveryReport: true };
    expect(modem.calls.filter((c) => c.startsWith('setSendParams'))).toEqual([
      `setSendParams ${JSON.stringify(merged)}`,
      `setSendParams ${JSON.stringify(DEFAULTS)}`,
    ]);
    const subject = modem.calls.indexOf('setSubject 测试 EM05 彩信 UTF8');
    expect(modem.calls[subject - 1]).toBe('setCharset UTF8');
    expect(modem.calls).toContain('send 120');
  });

  it("takes the charset in force from the module's session, not from a copy of its own", async () => {
    const { outbox, modem, sender, until } = await rig();
    // The session stops knowing the charset after the last recipient (as when the driver loses
    // track of it): the ASCII subject needs AT+QMMSCFG="character","ASCII" written again.
    modem.hooks.addRecipient = (kind) => {
      if (kind === 'bcc') modem.session.forget();
    };
    sender.start([]);
    await outbox.submit(request());
    await until('sent');
    const subject = modem.calls.indexOf('setSubject Hello there ASCII');
    expect(modem.calls.slice(subject - 2, subject)).toEqual(['addRecipient bcc +15550000006', 'setCharset ASCII']);
    expect(modem.calls.filter((c) => c === 'setCharset ASCII')).toHaveLength(2);
  });

  it('resends at once after one 765, without re-activating the context', async () => {
    const { outbox, modem, sender, until, time } = await rig();
    modem.sendScript.push({ err: 765, httpStatus: 0 });
    sender.start([]);
    await outbox.submit(request());
    await until('sent');
    expect(modem.count('send')).toBe(2);
    expect(modem.count('reactivatePdp')).toBe(0);
    expect(outbox.get('m1')).toMatchObject({ attempts: 2 });
    expect(time.sleeps.filter((ms) => Number.isFinite(ms))).toEqual([]);
  });

  it('re-activates the PDP context after two failed sends, then sends again', async () => {
    const { outbox, modem, sender, until } = await rig();
    modem.sendScript.push({ err: 765, httpStatus: 0 }, { err: 765, httpStatus: 0 });
    sender.start([]);
    await outbox.submit(request());
    await until('sent');
    const sends = modem.calls.flatMap((c, i) => (c === 'send 300' ? [i] : []));
    const reactivate = modem.calls.indexOf('reactivatePdp');
    expect(sends).toHaveLength(3);
    expect(modem.count('reactivatePdp')).toBe(1);
    expect(reactivate).toBeGreaterThan(sends[1]);
    expect(reactivate).toBeLessThan(sends[2]);
    expect(outbox.get('m1')).toMatchObject({ status: 'sent', attempts: 3 });
  });

  it.each([
    [{ err: 766, httpStatus: 403, mmscResponse: 'Forbidden' }, 'Error response of HTTP(S) post'],
    [{ err: 757, httpStatus: 0 }, 'Recipient address full'],
    [{ err: 0, httpStatus: 404 }, 'HTTP 404 Not found'],
  ])('fails at once on a permanent error, without resending: %j', async (result, name) => {
    const { outbox, modem, sender, until } = await rig();
    modem.sendScript.push(result);
    sender.start([]);
    await outbox.submit(request());
    await until('failed');
    expect(modem.count('send')).toBe(1);
    expect(modem.count('reactivatePdp')).toBe(0);
    const rec = outbox.get('m1')!;
    expect(rec.error).toEqual({
      code: result.err,
      name,
      ...(result.httpStatus ? { httpStatus: result.httpStatus } : {}),
      ...('mmscResponse' in result ? { mmscResponse: result.mmscResponse } : {}),
    });
    // §6: cleaned up after a final failure too.
    expect(rec.ramFiles).toEqual([]);
    expect(modem.calls.slice(-3)).toEqual(['mmsClear', `deleteFile ${N0}`, `deleteFile ${N1}`]);
  });

  it.each([
    [{ err: 751, httpStatus: 0 }, 'Unknown error'],
    [{ err: 767, httpStatus: 200 }, 'Invalid report of HTTP(S) post'],
    [{ err: 769, httpStatus: 0 }, 'PDP deactivated'],
    [{ err: 772, httpStatus: 200 }, 'Socket read failed'],
    [{ err: 774, httpStatus: 0 }, 'Socket closed'],
    [{ err: 775, httpStatus: 0 }, 'Timeout'],
    [{ err: 777, httpStatus: 200 }, 'HTTP(S) decode data error'],
    [{ err: 766, httpStatus: 504 }, 'Error response of HTTP(S) post'],
    [{ err: 790, httpStatus: 0 }, 'Error 790'],
  ])('makes the message unknown after a result that leaves open whether the MMSC has it: %j', async (result, name) => {
    const r = await rig();
    const { outbox, modem } = r;
    modem.sendScript.push(result);
    await endsUnknownAndStays(r);
    expect(modem.count('send')).toBe(1);
    expect(modem.count('reactivatePdp')).toBe(0);
    const rec = outbox.get('m1')!;
    expect(rec).toMatchObject({ status: 'unknown', attempts: 1, ramFiles: [] });
    expect(rec.error).toEqual({ code: result.err, name, ...(result.httpStatus ? { httpStatus: result.httpStatus } : {}) });
    expect(modem.calls.slice(-3)).toEqual(['mmsClear', `deleteFile ${N0}`, `deleteFile ${N1}`]);
  });

  it('with resendAmbiguous, retries such a result like any failure', async () => {
    const { outbox, modem, sender, until } = await rig({ resendAmbiguous: true });
    modem.sendScript.push({ err: 775, httpStatus: 0 }, { err: 769, httpStatus: 0 });
    sender.start([]);
    await outbox.submit(request());
    await until('sent');
    expect(modem.count('send')).toBe(3);
    expect(modem.count('reactivatePdp')).toBe(1);
    expect(outbox.get('m1')).toMatchObject({ status: 'sent', attempts: 3 });
  });

  it.each([
    ['a refusal of AT+QMMSEND with 769', new SendNotAcceptedError('AT+QMMSEND refused: error 769', 769)],
    ['an edit command answered with 775', new CmeError('AT+QMMSEDIT=1,1,1,"+15550000001"', 775)],
    ['HTTP 500 with err 0', { err: 0, httpStatus: 500 }],
  ])('retries %s: nothing reached the MMSC, or it answered', async (_what, failure) => {
    const { outbox, modem, sender, until } = await rig();
    if (failure instanceof CmeError) {
      modem.hooks.addRecipient = () => {
        if (modem.count('addRecipient') === 1) throw failure;
      };
    } else {
      modem.sendScript.push(failure);
    }
    sender.start([]);
    await outbox.submit(request());
    await until('sent');
    expect(outbox.get('m1')).toMatchObject({ status: 'sent', attempts: 2 });
  });

  it('waits after 764 (refused or as a result) and retries without counting an attempt', async () => {
    const { outbox, modem, sender, until, time } = await rig();
    modem.sendScript.push(new SendNotAcceptedError('busy', 764), { err: 764, httpStatus: 0 });
    sender.start([]);
    await outbox.submit(request());
    await until('sent');
    expect(modem.count('send')).toBe(3);
    expect(modem.count('reactivatePdp')).toBe(0);
    expect(time.sleeps.filter((ms) => ms === DEFAULT_BUSY_WAIT_MS)).toHaveLength(2);
    expect(outbox.get('m1')).toMatchObject({ status: 'sent', attempts: 1 });
  });

  it('does not write AT+QMMSEND when the context dropped while the message was prepared', async () => {
    const { outbox, modem, sender, until } = await rig();
    // +QIURC "pdpdeact" during the last edit: the driver leaves `ready` for `registered`.
    let dropped = false;
    modem.hooks.addAttachment = () => {
      if (!dropped) {
        dropped = true;
        modem.setState('registered');
        setImmediate(() => modem.setState('ready'));
      }
    };
    sender.start([]);
    await outbox.submit(request());
    await until('sent');
    // Sent once, after the context was back; the first try went back to the queue uncounted.
    expect(modem.count('send')).toBe(1);
    expect(outbox.history('m1', 'status')).toEqual(['sending', 'queued', 'sending', 'sent']);
    expect(outbox.get('m1')).toMatchObject({ attempts: 1 });
  });

  it('puts the message back to the queue when AT+QMMSEND is refused without a code', async () => {
    const { outbox, modem, sender, until } = await rig();
    modem.sendScript.push(new SendNotAcceptedError('AT+QMMSEND refused: ERROR'));
    sender.start([]);
    await outbox.submit(request());
    await until('sent');
    expect(outbox.history('m1', 'status')).toEqual(['sending', 'queued', 'sending', 'sent']);
    expect(outbox.get('m1')).toMatchObject({ attempts: 1 });
    expect(modem.count('send')).toBe(2);
  });

  it('fails at once when AT+QMMSEND is refused with a permanent code, naming it', async () => {
    const { outbox, modem, sender, until } = await rig();
    modem.sendScript.push(new SendNotAcceptedError('AT+QMMSEND refused: error 753', 753));
    sender.start([]);
    await outbox.submit(request());
    await until('failed');
    expect(outbox.get('m1')!.error).toEqual({ code: 753, name: 'URL error' });
    expect(modem.count('send')).toBe(1);
  });

  it('re-uploads the attachments once after 763, then follows the ladder', async () => {
    const { outbox, modem, sender, until } = await rig();
    modem.sendScript.push({ err: 763, httpStatus: 0 }, { err: 763, httpStatus: 0 });
    sender.start([]);
    await outbox.submit(request());
    await until('sent');
    // Initial upload + one forced re-upload (the files were still listed); the third try reuses.
    expect(modem.count(`uploadFile ${N0}`)).toBe(2);
    expect(modem.count(`uploadFile ${N1}`)).toBe(2);
    expect(modem.count('send')).toBe(3);
    expect(modem.count('reactivatePdp')).toBe(1);
  });

  it('backs off 30 s, 2 min, 10 min, 10 min, then fails with the last error after maxAttempts', async () => {
    const { outbox, modem, sender, until } = await rig({ maxAttempts: 7 });
    for (let i = 0; i < 6; i++) modem.sendScript.push({ err: 765, httpStatus: 0 });
    modem.sendScript.push({ err: 771, httpStatus: 0 });
    sender.start([]);
    await outbox.submit(request());
    await until('failed');
    const delays = outbox.patches
      .filter((p) => p.patch.status === 'retrying')
      .map((p) => p.patch.notBefore! - p.at);
    expect(delays).toEqual([30_000, 120_000, 600_000, 600_000]);
    expect(modem.count('send')).toBe(7);
    expect(outbox.get('m1')).toMatchObject({
      status: 'failed',
      attempts: 7,
      error: { code: 771, name: 'Socket connection failed' },
      ramFiles: [],
    });
  });

  it('marks a send whose result never came unknown, and never sends it again', async () => {
    const r = await rig();
    const { outbox, modem } = r;
    modem.sendScript.push(new SendOutcomeUnknownError('no +QMMSEND within 310 s'));
    await endsUnknownAndStays(r);
    expect(modem.count('send')).toBe(1);
    expect(outbox.get('m1')!.error).toEqual({ code: 0, name: 'Result unknown: no +QMMSEND within 310 s' });
    expect(outbox.history('m1', 'sendAccepted')).toContain(true);
    expect(outbox.get('m1')!.ramFiles).toEqual([]);
  });

  it('puts a message back to the queue when the port is lost mid-upload, and sends it later', async () => {
    const { outbox, modem, sender, until } = await rig();
    let failed = false;
    modem.hooks.uploadFile = (name) => {
      if (failed || name !== N1) return;
      failed = true;
      modem.ram.set(N1, 1000); // a partial file left behind
      throw new ClosedError('AT+QFUPL', 'port lost');
    };
    sender.start([]);
    await outbox.submit(request());
    await until('sent');
    expect(outbox.history('m1', 'status')).toEqual(['sending', 'queued', 'sending', 'sent']);
    expect(outbox.history('m1', 'attempts')).toEqual([1, 0, 1]);
    expect(modem.count('send')).toBe(1);
    // The second try lists RAM, deletes the partial file, and uploads again.
    const relist = modem.calls.indexOf('listFiles');
    expect(modem.calls.slice(relist)).toContain(`deleteFile ${N1}`);
    expect(modem.calls.indexOf(`deleteFile ${N1}`, relist)).toBeLessThan(modem.calls.lastIndexOf(`uploadFile ${N1} ${IMAGE.length}`));
    expect(modem.ram.size).toBe(0);
  });

  it('reuses the files already in RAM when resending after a failure (no second upload)', async () => {
    const { outbox, modem, sender, until } = await rig();
    modem.sendScript.push({ err: 765, httpStatus: 0 });
    sender.start([]);
    await outbox.submit(request());
    await until('sent');
    expect(modem.count('uploadFile')).toBe(2);
    const first = modem.calls.indexOf('send 300');
    expect(modem.calls.slice(first + 1, first + 3)).toEqual(['mmsClear', 'listFiles']);
    expect(modem.calls.slice(first + 3, first + 3 + editSequence().length)).toEqual(editSequence());
  });

  it('does not trust files in RAM after a rebooted event', async () => {
    const { outbox, modem, sender, until } = await rig();
    modem.sendScript.push({ err: 765, httpStatus: 0 });
    modem.hooks.result = () => {
      if (modem.count('send') === 1) modem.reboot(true); // port came back: RAM suspect
    };
    sender.start([]);
    await outbox.submit(request());
    await until('sent');
    expect(modem.count(`uploadFile ${N0}`)).toBe(2);
    expect(modem.count(`uploadFile ${N1}`)).toBe(2);
    expect(modem.count(`deleteFile ${N0}`)).toBeGreaterThanOrEqual(2);
  });

  it('goes back to the queue when the module restarts mid-edit instead of sending a half-edited message', async () => {
    const { outbox, modem, sender, until } = await rig();
    let rebooted = false;
    modem.hooks.addRecipient = () => {
      if (rebooted) return;
      rebooted = true;
      modem.reboot();
    };
    sender.start([]);
    await outbox.submit(request());
    await until('sent');
    expect(modem.count('send')).toBe(1);
    expect(outbox.history('m1', 'status')).toEqual(['sending', 'queued', 'sending', 'sent']);
    const send = modem.calls.indexOf('send 300');
    expect(modem.calls.slice(send - editSequence().length + 1, send + 1)).toEqual(editSequence());
  });

  it('uploads again after a checksum mismatch, and requeues after the third', async () => {
    const { outbox, modem, sender, until } = await rig();
    let bad = 2;
    modem.hooks.uploadFile = (name) => {
      if (name === N0 && bad > 0) {
        bad -= 1;
        modem.ram.set(N0, 3);
        throw new ChecksumError('AT+QFUPL', { size: 3, checksum: 1 }, { size: 3, checksum: 2 });
      }
    };
    sender.start([]);
    await outbox.submit(request());
    await until('sent');
    expect(modem.count(`uploadFile ${N0}`)).toBe(3);
    expect(outbox.history('m1', 'status')).toEqual(['sending', 'sent']);

    const r2 = await rig();
    r2.modem.hooks.uploadFile = (name) => {
      if (name === N0 && r2.modem.count(`uploadFile ${N0}`) <= 3) {
        throw new ChecksumError('AT+QFUPL', { size: 3, checksum: 1 }, { size: 3, checksum: 2 });
      }
    };
    r2.sender.start([]);
    await r2.outbox.submit(request());
    await r2.until('sent');
    expect(r2.outbox.history('m1', 'status')).toEqual(['sending', 'queued', 'sending', 'sent']);
  });

  it('classifies a spec code answered to an edit command like a send result', async () => {
    const { outbox, modem, sender, until } = await rig();
    modem.hooks.addRecipient = () => {
      throw new CmeError('AT+QMMSEDIT=1,1', 757);
    };
    sender.start([]);
    await outbox.submit(request());
    await until('failed');
    expect(modem.count('send')).toBe(0);
    expect(outbox.get('m1')!.error).toEqual({ code: 757, name: 'Recipient address full' });
  });

  it('waits without any modem call while the modem is not ready, then sends', async () => {
    const { outbox, modem, sender, until } = await rig();
    modem.setState('sim-missing');
    sender.start([]);
    await outbox.submit(request());
    await waitFor(() => modem.whenReadyWaiting > 0, 'the sender to wait for the modem');
    modem.setState('searching');
    expect(modem.calls).toEqual([]);
    expect(outbox.get('m1')).toMatchObject({ status: 'queued', attempts: 0 });
    modem.setState('ready');
    await until('sent');
    expect(outbox.get('m1')!.attempts).toBe(1);
  });

  it('parks a message as retrying when the modem stops being ready between tries', async () => {
    const { outbox, modem, sender, until } = await rig();
    modem.sendScript.push({ err: 768, httpStatus: 0 });
    modem.hooks.result = () => {
      if (modem.count('send') === 1) modem.setState('searching');
    };
    sender.start([]);
    await outbox.submit(request());
    await until('retrying');
    await waitFor(() => modem.whenReadyWaiting > 0, 'the sender to wait for the modem');
    expect(modem.count('send')).toBe(1);
    modem.setState('ready');
    await until('sent');
    expect(outbox.get('m1')).toMatchObject({ attempts: 2 });
  });

  it('deletes exactly the leftover RAM files at start once the modem is ready', async () => {
    const { outbox, modem, sender } = await rig();
    await outbox.seed({ id: 'old' }, ['sending', 'sent'], { ramFiles: ['old_0_a.jpg', 'old_1_b.txt'] });
    await outbox.seed({ id: 'other' }, ['sending', 'sent']);
    modem.ram.set('old_0_a.jpg', 10).set('old_1_b.txt', 5).set('keep_me', 1);
    modem.setState('initializing');
    sender.start(['old_0_a.jpg', 'old_1_b.txt']);
    await waitFor(() => modem.whenReadyWaiting > 0, 'the sender to wait for the modem');
    expect(modem.calls).toEqual([]);
    modem.setState('ready');
    await waitFor(() => outbox.get('old')!.ramFiles.length === 0, 'journal cleared');
    expect(modem.calls).toEqual(['deleteFile old_0_a.jpg', 'deleteFile old_1_b.txt']);
    expect([...modem.ram.keys()]).toEqual(['keep_me']);
  });

  it('puts the message back to the queue when stopped during an upload', async () => {
    const { outbox, modem, sender, until } = await rig();
    const gate = deferred();
    let entered = false;
    modem.hooks.uploadFile = async () => {
      entered = true;
      await gate.promise;
    };
    sender.start([]);
    await outbox.submit(request());
    await waitFor(() => entered, 'the upload to start');
    let stopped = false;
    const stopping = sender.stop().then(() => (stopped = true));
    await new Promise((r) => setImmediate(r));
    expect(stopped).toBe(false); // it waits for the safe point
    gate.resolve();
    await stopping;
    await until('queued');
    expect(outbox.get('m1')).toMatchObject({ attempts: 0, sendAccepted: false });
    expect(modem.count('uploadFile')).toBe(1);
    expect(modem.count('addRecipient')).toBe(0);
    expect(modem.count('send')).toBe(0);
  });

  it('waits for the result when stopped after AT+QMMSEND was accepted', async () => {
    const { outbox, modem, sender, until } = await rig();
    const gate = deferred();
    let accepted = false;
    modem.hooks.result = async () => {
      accepted = true;
      await gate.promise;
    };
    sender.start([]);
    await outbox.submit(request());
    await waitFor(() => accepted, 'the send to be accepted');
    const stopping = sender.stop();
    gate.resolve();
    await stopping;
    await until('sent');
    expect(modem.calls.slice(-3)).toEqual(['mmsClear', `deleteFile ${N0}`, `deleteFile ${N1}`]);
  });

  it('never picks a cancelled message, and deletes the RAM files of one cancelled while retrying', async () => {
    const { outbox, modem, sender, until, time } = await rig();
    await outbox.submit(request({ id: 'gone' }));
    await outbox.cancel('gone');
    for (let i = 0; i < 3; i++) modem.sendScript.push({ err: 765, httpStatus: 0 });
    time.hold = true; // the 30 s back-off lasts until something wakes the sender
    sender.start([]);
    await outbox.submit(request());
    await until('retrying');
    await outbox.cancel('m1');
    await waitFor(() => outbox.get('m1')!.ramFiles.length === 0, 'RAM files of the cancelled message deleted');
    await waitFor(() => time.idle, 'the sender to go idle');
    expect(outbox.get('gone')).toMatchObject({ status: 'cancelled', attempts: 0 });
    expect(modem.count('send')).toBe(3);
    expect(modem.ram.size).toBe(0);
  });

  it('reports upload progress without fsync, throttled, ending at 1', async () => {
    const { outbox, modem, sender, until } = await rig();
    modem.blockSize = 256;
    sender.start([]);
    await outbox.submit(request({ attachments: [{ name: 'big.bin', contentType: 'application/octet-stream', data: Buffer.alloc(100_000) }] }));
    await until('sent');
    const progress = outbox.patches.filter((p) => p.patch.progress !== undefined && p.patch.status === undefined);
    expect(progress.every((p) => !p.durable)).toBe(true);
    expect(progress.length).toBeGreaterThan(5);
    expect(progress.length).toBeLessThanOrEqual(21); // 391 blocks, at most one update per 5 %
    const values = progress.map((p) => p.patch.progress!);
    expect(values).toEqual([...values].sort((a, b) => a - b));
    expect(values.at(-1)).toBe(1);
  });

  it('emits attempt and result events with the outcome of each try', async () => {
    const { outbox, modem, sender, until, results } = await rig();
    const attempts: number[] = [];
    sender.on('attempt', (a) => attempts.push(a.attempt));
    modem.sendScript.push({ err: 765, httpStatus: 0 });
    sender.start([]);
    await outbox.submit(request());
    await until('sent');
    expect(attempts).toEqual([1, 2]);
    expect(results.map((r) => [r.outcome, r.error?.code])).toEqual([
      ['resend', 765],
      ['sent', undefined],
    ]);
  });
});

/** Bytes the standard request puts in the module's RAM. */
const NEEDED = TEXT.length + IMAGE.length;

/** The photo's upload answers `+CME ERROR: <code>` (`times` times, or always). */
function failPhotoUpload(modem: FakeModem, code: number, times = Infinity): void {
  let left = times;
  modem.hooks.uploadFile = (name) => {
    if (name !== N1 || left <= 0) return;
    left -= 1;
    throw new CmeError('AT+QFUPL', code);
  };
}

describe('Sender: errors of the FILE commands (DESIGN.md §14)', () => {
  it.each([
    [403, 'Drive full'],
    [420, 'No space'],
    [423, 'File too large'],
  ])('fails the message at once as MessageTooLarge after %i %s, naming the sizes', async (code, name) => {
    const { outbox, modem, sender, until } = await rig();
    failPhotoUpload(modem, code);
    sender.start([]);
    await outbox.submit(request());
    await until('failed');
    expect(outbox.get('m1')).toMatchObject({
      attempts: 1,
      error: { code, name: `${name} (MessageTooLarge: the attachments need ${NEEDED} bytes of the module's RAM, which has 10000000 free of 10000000)` },
      ramFiles: [],
    });
    expect(modem.count(`uploadFile ${N1}`)).toBe(1);
    expect(modem.count('send')).toBe(0);
    expect(modem.ram.size).toBe(0);
  });

  it.each([
    [400, 'Invalid input value'],
    [425, 'Invalid parameter'],
  ])('fails the message at once after %i %s', async (code, name) => {
    const { outbox, modem, sender, until } = await rig();
    failPhotoUpload(modem, code);
    sender.start([]);
    await outbox.submit(request());
    await until('failed');
    expect(outbox.get('m1')).toMatchObject({ attempts: 1, error: { code, name } });
    expect(modem.count(`uploadFile ${N1}`)).toBe(1);
    expect(modem.count('send')).toBe(0);
  });

  it.each([
    [421, 'Time out'],
    [409, 'Fail to write the file'],
    [426, 'File already opened'],
  ])('counts %i %s as a failed attempt: sent again at once, failed after maxAttempts', async (code, name) => {
    const once = await rig();
    failPhotoUpload(once.modem, code, 1);
    once.sender.start([]);
    await once.outbox.submit(request());
    await once.until('sent');
    expect(once.outbox.get('m1')).toMatchObject({ attempts: 2 });
    expect(once.results.map((r) => [r.outcome, r.error])).toEqual([
      ['resend', { code, name }],
      ['sent', undefined],
    ]);

    const always = await rig({ maxAttempts: 3 });
    failPhotoUpload(always.modem, code);
    always.sender.start([]);
    await always.outbox.submit(request());
    await always.until('failed');
    expect(always.outbox.get('m1')).toMatchObject({ attempts: 3, error: { code, name } });
    expect(always.modem.count('reactivatePdp')).toBe(1);
  });

  it('deletes the file and uploads again, once, after 407 File already existed', async () => {
    const once = await rig();
    failPhotoUpload(once.modem, 407, 1);
    once.sender.start([]);
    await once.outbox.submit(request());
    await once.until('sent');
    const photo = once.modem.calls.filter((c) => c.endsWith(N1) || c.startsWith(`uploadFile ${N1}`));
    expect(photo.slice(0, 3)).toEqual([`uploadFile ${N1} ${IMAGE.length}`, `deleteFile ${N1}`, `uploadFile ${N1} ${IMAGE.length}`]);
    expect(once.outbox.get('m1')).toMatchObject({ attempts: 1 });

    // Met again after the delete: a failed attempt like any other.
    const twice = await rig({ maxAttempts: 1 });
    failPhotoUpload(twice.modem, 407);
    twice.sender.start([]);
    await twice.outbox.submit(request());
    await twice.until('failed');
    expect(twice.modem.count(`uploadFile ${N1}`)).toBe(2);
    expect(twice.outbox.get('m1')).toMatchObject({ attempts: 1, error: { code: 407, name: 'File already existed' } });
  });

  it('fails a message the RAM cannot hold without uploading it, and sends the next one', async () => {
    const { outbox, modem, sender, until } = await rig();
    modem.ramTotal = 4000;
    sender.start([]);
    await outbox.submit(request());
    await outbox.submit(request({ id: 'small', attachments: [{ name: 'hi.txt', contentType: 'text/plain', data: Buffer.from('hi') }] }));
    await until('failed');
    await until('sent', 'small');
    expect(outbox.get('m1')).toMatchObject({
      attempts: 1,
      error: { code: 0, name: `MessageTooLarge: the attachments need ${NEEDED} bytes of the module's RAM, which has 4000 free of 4000` },
    });
    expect(modem.calls.filter((c) => c.startsWith('uploadFile'))).toEqual(['uploadFile hi.txt 2']);
    expect(modem.count('send')).toBe(1);
  });

  it('deletes files no message journalled when they take the room the message needs', async () => {
    const { outbox, modem, sender, until } = await rig();
    modem.ram.set('stray.bin', modem.ramTotal - 1000);
    sender.start([]);
    await outbox.submit(request());
    await until('sent');
    expect(modem.calls.slice(0, 4)).toEqual(['mmsClear', 'ramSpace', 'listFiles', 'deleteFile stray.bin']);
    expect(modem.ram.size).toBe(0);
  });

  it('reads the RAM space once per try that uploads, and uploads anyway when the module cannot tell', async () => {
    const { outbox, modem, sender, until } = await rig();
    modem.sendScript.push({ err: 765, httpStatus: 0 });
    sender.start([]);
    await outbox.submit(request());
    await until('sent');
    expect(modem.count('send')).toBe(2);
    expect(modem.count('ramSpace')).toBe(1); // the resend reuses the files in RAM

    const mute = await rig();
    mute.modem.hooks.ramSpace = () => {
      throw new AtErrorResult('AT+QFLDS="RAM"');
    };
    mute.sender.start([]);
    await mute.outbox.submit(request());
    await mute.until('sent');
    expect(mute.modem.count('uploadFile')).toBe(2);
  });

  it('warns once at start when mms.maxMessageBytes is more than the module RAM holds', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) });
    const { modem, sender, time, outbox, until } = await rig({ maxMessageBytes: 3_000_000 }, logger);
    modem.ramTotal = 2 * 1024 * 1024;
    sender.start([]);
    await waitFor(() => time.idle, 'the sender to go idle');
    expect(modem.calls).toEqual(['ramSpace']);
    expect(lines).toEqual([expect.objectContaining({ maxMessageBytes: 3_000_000, ramTotal: 2 * 1024 * 1024, ramFree: 2 * 1024 * 1024 })]);
    await outbox.submit(request());
    await until('sent');
    expect(modem.count('ramSpace')).toBe(2); // the message's own; no second start-up check
  });
});

describe('Sender: no message holds up the others (DESIGN.md §14)', () => {
  it('sends the message behind one that went back to the queue uncounted first', async () => {
    const { outbox, modem, sender, until, results } = await rig();
    let failed = false;
    modem.hooks.uploadFile = (name) => {
      if (failed || name !== N1) return;
      failed = true;
      throw new TimeoutError('AT+QFUPL', 5000);
    };
    sender.start([]);
    await outbox.submit(request());
    await outbox.submit(request({ id: 'm2' }));
    await until('sent');
    await until('sent', 'm2');
    expect(results.map((r) => [r.id, r.outcome])).toEqual([
      ['m1', 'requeued'],
      ['m2', 'sent'],
      ['m1', 'sent'],
    ]);
    // While it waited, it said why; once sent, the error is gone.
    expect(outbox.history('m1', 'error')[0]).toEqual({ code: 0, name: 'Not sent, back in the queue: AT+QFUPL: no answer within 5000 ms' });
    expect(outbox.get('m1')).toMatchObject({ attempts: 1 });
    expect(outbox.get('m1')!.error).toBeUndefined();
  });

  it('names the command of a return to the queue without its arguments (they carry the message)', async () => {
    const { outbox, modem, sender, until } = await rig();
    let failed = false;
    modem.hooks.addRecipient = () => {
      if (failed) return;
      failed = true;
      throw new CmeError('AT+QMMSEDIT=1,1,"+15550000001"', 3);
    };
    sender.start([]);
    await outbox.submit(request());
    await until('sent');
    expect(outbox.history('m1', 'error')[0]).toEqual({ code: 3, name: 'Not sent, back in the queue: AT+QMMSEDIT: +CME ERROR: 3' });
  });

  it('counts every tenth return to the queue in a row as a failed attempt, and fails after maxAttempts', async () => {
    const { outbox, modem, sender, until, results } = await rig({ maxAttempts: 2 });
    modem.hooks.uploadFile = (name) => {
      if (name === N1) throw new CmeError('AT+QFUPL', 3);
    };
    sender.start([]);
    await outbox.submit(request());
    await outbox.submit(request({ id: 'm2', attachments: [] }));
    await until('failed');
    await until('sent', 'm2');
    const m1 = results.filter((r) => r.id === 'm1').map((r) => r.outcome);
    const requeued = Array<string>(MAX_REQUEUES_IN_ROW - 1).fill('requeued');
    expect(m1).toEqual([...requeued, 'resend', ...requeued, 'failed']);
    expect(results.findIndex((r) => r.id === 'm2')).toBe(1);
    expect(outbox.get('m1')).toMatchObject({
      attempts: 2,
      error: { code: 3, name: `Not sent ${MAX_REQUEUES_IN_ROW} times in a row: AT+QFUPL: +CME ERROR: 3` },
    });
    expect(outbox.history('m1', 'error')).toContainEqual({ code: 3, name: 'Not sent, back in the queue: AT+QFUPL: +CME ERROR: 3' });
  });
});
