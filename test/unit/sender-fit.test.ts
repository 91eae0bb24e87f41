// Photos that fit in the send pipeline (DESIGN.md §11): the sender against the real outbox in memory, a fake
// modem and a scripted fitter — when it fits, with which limit, that the record says so before the
// first upload, that a retry never fits again, and how a message that cannot be fitted ends.
import { afterEach, describe, expect, it } from 'vitest';
import type { AttachmentInput, SendRequest } from '../../src/core/message.js';
import { ImageError, ImagePixelLimitError, MessageTooLargeError } from '../../src/media/errors.js';
import type { FitFunction, SenderFitting } from '../../src/sender/sender.js';
import { senderRig, stopSenderRigs, type SenderRig } from './sender-fakes.js';

const LIMIT = 10_000;
const NOTE = Buffer.from('the front door, 07:12');
const PHOTO = Buffer.alloc(50_000, 0xa5);
const FITTED = Buffer.alloc(6_000, 0x5a);

function request(over: Partial<SendRequest> = {}): SendRequest {
  return {
    id: 'm1',
    to: ['+15550000001'],
    cc: [],
    bcc: [],
    subject: '',
    attachments: [
      { name: 'note.txt', contentType: 'text/plain', data: NOTE },
      { name: 'photo.png', contentType: 'image/png', data: PHOTO },
    ],
    options: {},
    ...over,
  };
}

/** A fitter that turns every part over 10 KB into FITTED, and records what it was asked. */
function scriptedFit(calls: Array<{ limit: number; parts: AttachmentInput[] }>): FitFunction {
  return (parts, limit) => {
    calls.push({ limit, parts });
    const out = parts.map((p) => (p.data.length > 10_000 ? { name: p.name.replace(/\.\w+$/, '.jpg'), contentType: 'image/jpeg', data: FITTED } : p));
    return Promise.resolve({ parts: out, adjustments: parts.filter((p) => p.data.length > 10_000).map((p) => `${p.name}: → JPEG q80 ${FITTED.length} B`) });
  };
}

function rig(fitting: Partial<SenderFitting> & Pick<SenderFitting, 'fit'>): Promise<SenderRig> {
  return senderRig({ fitting: { limit: () => ({ bytes: LIMIT, source: 'mms.maxMessageBytes' }), enabled: true, ...fitting } });
}

afterEach(stopSenderRigs);

describe('Sender: photos that fit (§11)', () => {
  it('fits a message over its limit once, records it before the first upload, and a resend sends the same bytes; one within it goes as it is', async () => {
    const calls: Array<{ limit: number; parts: AttachmentInput[] }> = [];
    const { trace, outbox, modem, sender, until } = await rig({ fit: scriptedFit(calls) });
    modem.sendScript.push({ err: 765, httpStatus: 0 });
    sender.start([]);
    await outbox.submit(request());
    await outbox.submit(request({ id: 'small', attachments: [{ name: 'small.png', contentType: 'image/png', data: Buffer.alloc(LIMIT, 1) }] }));
    await until('sent');
    await until('sent', 'small');
    expect(outbox.get('small')?.adjustments).toBeUndefined();
    expect(calls).toHaveLength(1);
    expect(calls[0]?.limit).toBe(LIMIT);
    expect(calls[0]?.parts.map((p) => p.data.length)).toEqual([NOTE.length, PHOTO.length]);
    const rec = outbox.get('m1');
    expect(rec?.adjustments).toEqual([`photo.png: → JPEG q80 ${FITTED.length} B`]);
    expect(rec?.attachments.map((a) => [a.name, a.contentType, a.size])).toEqual([
      ['note.txt', 'text/plain', NOTE.length],
      ['photo.jpg', 'image/jpeg', FITTED.length],
    ]);
    // Durably replaced before anything was uploaded; the upload carries the fitted bytes.
    const replaced = trace.findIndex((l) => l.startsWith('outbox.replaceAttachments m1'));
    const firstUpload = trace.findIndex((l) => l.includes('uploadFile'));
    expect(replaced).toBeGreaterThanOrEqual(0);
    expect(replaced).toBeLessThan(firstUpload);
    expect(modem.calls.filter((c) => c.startsWith('uploadFile'))).toEqual([`uploadFile note.txt ${NOTE.length}`, `uploadFile photo.jpg ${FITTED.length}`, `uploadFile small.png ${LIMIT}`]);
    expect(modem.count('send')).toBe(3);
  });

  it("fits to the module's free RAM when it is less than the limit, and says so", async () => {
    const calls: Array<{ limit: number; parts: AttachmentInput[] }> = [];
    const { outbox, modem, sender, until } = await rig({ fit: scriptedFit(calls), limit: () => ({ bytes: 100_000, source: 'mms.maxMessageBytes' }) });
    modem.ramTotal = 8_000;
    sender.start([]);
    await outbox.submit(request({ attachments: [{ name: 'photo.png', contentType: 'image/png', data: Buffer.alloc(120_000, 3) }] }));
    await until('sent');
    expect(calls.map((c) => c.limit)).toEqual([8_000]);

    const tooBig = await rig({ fit: () => Promise.reject(new MessageTooLargeError('photo.png: 9 KB even at 320×240 JPEG q40, 1200 bytes over its budget of 5952 bytes', 1200, 'photo.png')), limit: () => ({ bytes: 100_000, source: 'mms.maxMessageBytes' }) });
    tooBig.modem.ramTotal = 8_000;
    tooBig.sender.start([]);
    await tooBig.outbox.submit(request({ attachments: [{ name: 'photo.png', contentType: 'image/png', data: Buffer.alloc(120_000, 3) }] }));
    await tooBig.until('failed');
    expect(tooBig.outbox.get('m1')?.error).toEqual({
      code: 0,
      name: "MessageTooLarge: photo.png: 9 KB even at 320×240 JPEG q40, 1200 bytes over its budget of 5952 bytes; the limit of 8000 bytes is the module's free RAM (AT+QFLDS: 8000 of 8000 bytes)",
    });
  });

  it('fails a message over its limit as MessageTooLarge when its option fit is false, or media.fit is, and sends the next', async () => {
    for (const [enabled, fitOption, why] of [
      [true, false, "the message's option fit is false"],
      [false, undefined, 'media.fit is false'],
    ] as const) {
      const calls: Array<{ limit: number; parts: AttachmentInput[] }> = [];
      const { outbox, modem, sender, until } = await rig({ fit: scriptedFit(calls), enabled });
      sender.start([]);
      await outbox.submit(request({ options: fitOption === undefined ? {} : { fit: fitOption } }));
      await outbox.submit(request({ id: 'next', attachments: [{ name: 'hi.txt', contentType: 'text/plain', data: Buffer.from('hi') }] }));
      await until('failed');
      await until('sent', 'next');
      const total = NOTE.length + PHOTO.length;
      expect(outbox.get('m1')).toMatchObject({
        attempts: 1,
        error: { code: 0, name: `MessageTooLarge: attachments total ${total} bytes, ${total - LIMIT} over the limit of ${LIMIT} (mms.maxMessageBytes); photos are not fitted: ${why}` },
      });
      expect(calls).toEqual([]);
      expect(modem.calls.filter((c) => c.startsWith('uploadFile'))).toEqual(['uploadFile hi.txt 2']);
    }
  });

  it.each([
    ['a corrupt image', new ImageError('photo.png', 'unreadable', 'cannot be decoded: VipsJpeg: premature end of JPEG image'), 'ImageError: photo.png: cannot be decoded: VipsJpeg: premature end of JPEG image'],
    ['a pixel bomb', new ImagePixelLimitError('photo.png', 30000, 30000, 50_000_000), 'ImagePixelLimitError: photo.png: 30000×30000 is 900.0 megapixels; images over 50 megapixels are not decoded'],
    [
      'no image library',
      new MessageTooLargeError(`attachments total 50021 bytes, 40021 over the limit of ${LIMIT}; image fitting is off: Cannot find package 'sharp'`, 40021),
      `MessageTooLarge: attachments total 50021 bytes, 40021 over the limit of ${LIMIT}; image fitting is off: Cannot find package 'sharp'; the limit of ${LIMIT} bytes is mms.maxMessageBytes`,
    ],
    ['a fitter that died', new Error('image fitting could not start: spawn ENOMEM'), 'FitFailed: image fitting could not start: spawn ENOMEM'],
  ])('fails the message at once, by name, after %s: one fit, no retry, and the next message goes', async (_what, error, name) => {
    let fits = 0;
    const { outbox, modem, sender, until } = await rig({
      fit: () => {
        fits += 1;
        return Promise.reject(error);
      },
    });
    sender.start([]);
    await outbox.submit(request());
    await outbox.submit(request({ id: 'next', attachments: [{ name: 'hi.txt', contentType: 'text/plain', data: Buffer.from('hi') }] }));
    await until('failed');
    await until('sent', 'next');
    expect(fits).toBe(1);
    expect(outbox.get('m1')).toMatchObject({ status: 'failed', attempts: 1, error: { code: 0, name } });
    expect(outbox.get('m1')?.adjustments).toBeUndefined();
    expect(modem.calls.filter((c) => c.startsWith('uploadFile'))).toEqual(['uploadFile hi.txt 2']);
  });
});
