// validateRequest: each named error from a bad input, the allowed-directory rules, sizes checked
// before reading, names made safe, and nothing AT-unsafe passing.
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RequestError, type RequestErrorName } from '../../src/core/errors.js';
import { ATTACHMENT_NAME_MAX_BYTES, FIT_INPUT_MAX_BYTES } from '../../src/core/limits.js';
import type { RawSendRequest } from '../../src/core/message.js';
import { resendId, validateRequest, type RequestLimits } from '../../src/core/validate.js';
import { checkNonImageParts } from '../../src/media/fit.js';

let root: string;
let allowed: string;
let outside: string;
let limits: RequestLimits;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'mmsd-validate-'));
  allowed = join(root, 'incoming');
  outside = join(root, 'secret');
  await mkdir(allowed);
  await mkdir(outside);
  limits = { maxMessageBytes: 1000, allowedDirs: [allowed] };
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function rejects(raw: RawSendRequest, name: RequestErrorName, message?: RegExp): Promise<RequestError> {
  try {
    await validateRequest(raw, limits);
  } catch (err) {
    expect(err).toBeInstanceOf(RequestError);
    const e = err as RequestError;
    expect(e.errorName, e.message).toBe(name);
    if (message) expect(e.message).toMatch(message);
    return e;
  }
  throw new Error(`expected ${name}`);
}

const base = { to: ['+491701234567'] };

describe('validateRequest', () => {
  it('accepts a full request and normalises it', async () => {
    await writeFile(join(allowed, 'photo 1.JPG'), Buffer.alloc(100, 1));
    const req = await validateRequest(
      {
        id: 'order-17.a_b',
        to: ['+49 170 123-4567', 'alice@example.com'],
        cc: ['12345'],
        bcc: [],
        subject: '你好 — hello',
        attachments: [
          { name: 'note.txt', data: Buffer.from('hi') },
          { path: join(allowed, 'photo 1.JPG') },
          { name: 'x', contentType: 'Image/PNG', data: new Uint8Array([1, 2, 3]) },
        ],
        options: { validity: 0, priority: 3, deliveryReport: true, readReport: false, visibility: 2, class: 4, timeout: 65535 },
      },
      limits,
    );
    expect(req.id).toBe('order-17.a_b');
    expect(req.to).toEqual(['+491701234567', 'alice@example.com']);
    expect(req.cc).toEqual(['12345']);
    expect(req.subject).toBe('你好 — hello');
    expect(req.attachments.map((a) => [a.name, a.contentType, a.data.length])).toEqual([
      ['note.txt', 'text/plain', 2],
      ['photo_1.JPG', 'image/jpeg', 100],
      ['x.png', 'image/png', 3],
    ]);
    expect(Buffer.isBuffer(req.attachments[2].data)).toBe(true);
    expect(req.options.deliveryReport).toBe(true);
  });

  it('leaves out the id when none is given and defaults empty fields', async () => {
    const req = await validateRequest({ to: ['555123'] }, limits);
    expect(req).toEqual({ to: ['555123'], cc: [], bcc: [], subject: '', attachments: [], options: {} });
  });

  describe('recipients', () => {
    it.each([
      ['12'],
      ['+1234567890123456789012'],
      ['12a45'],
      ['not an address'],
      ['a@b'],
      ['bob@exa mple.com'],
      [`${'a'.repeat(40)}@example.com`],
    ])('refuses %j as InvalidRecipient', async (addr) => {
      await rejects({ to: [addr] }, 'InvalidRecipient');
    });

    it.each([['+4917012"34'], ['12345;AT'], ['12345\r'], ['12345\n'], ['12345\x1a'], ['a"b@example.com']])(
      'refuses the AT-unsafe %j',
      async (addr) => {
        await rejects({ cc: [addr] }, 'InvalidRecipient', /not allowed/);
      },
    );

    it('requires at least one recipient', async () => {
      await rejects({ to: [], cc: [], bcc: [] }, 'InvalidRecipient', /no recipient/);
      await rejects({}, 'InvalidRecipient', /no recipient/);
    });

    it.each(['to', 'cc', 'bcc'])('allows 6 and refuses 7 in %s', async (field) => {
      const six = Array.from({ length: 6 }, (_, i) => `+4917000000${i}`);
      await expect(validateRequest({ [field]: six }, limits)).resolves.toBeDefined();
      await rejects({ [field]: [...six, '+49170000009'] }, 'TooManyRecipients', new RegExp(`${field} has 7`));
    });

    it('refuses a recipient list that is not a list of strings', async () => {
      await rejects({ to: '+491701234567' }, 'InvalidRequest', /to must be a list of strings/);
      await rejects({ to: [491701234567] }, 'InvalidRequest');
    });
  });

  it('refuses a subject over 200 bytes of UTF-8 (not characters)', async () => {
    await expect(validateRequest({ ...base, subject: '你'.repeat(66) }, limits)).resolves.toBeDefined(); // 198 bytes
    await rejects({ ...base, subject: '你'.repeat(67) }, 'SubjectTooLong', /201 bytes/);
    await rejects({ ...base, subject: 'line\nbreak' }, 'InvalidRequest', /control characters/);
    await rejects({ ...base, subject: 42 }, 'InvalidRequest');
    await rejects({ ...base, subject: 'bad \uD800 surrogate' }, 'InvalidRequest', /Unicode/);
  });

  it('refuses more than 12 attachments', async () => {
    const a = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `a${i}.txt`, data: Buffer.from('x') }));
    await expect(validateRequest({ ...base, attachments: a(12) }, limits)).resolves.toBeDefined();
    await rejects({ ...base, attachments: a(13) }, 'TooManyAttachments', /13 attachments/);
  });

  it('names each limit in words a user can act on, never a section of the vendor spec', async () => {
    const seven = Array.from({ length: 7 }, (_, i) => `+4917000000${i}`);
    const many = Array.from({ length: 13 }, (_, i) => ({ name: `a${i}.txt`, data: Buffer.from('x') }));
    const errors = [
      await rejects({ cc: seven, to: ['+491701234567'] }, 'TooManyRecipients'),
      await rejects({ ...base, subject: 'x'.repeat(201) }, 'SubjectTooLong'),
      await rejects({ ...base, attachments: many }, 'TooManyAttachments'),
    ];
    expect(errors.map((e) => e.message)).toEqual([
      'cc has 7 recipients; at most 6 recipients are allowed in each of to, cc and bcc',
      'subject is 201 bytes in UTF-8; at most 200 bytes are allowed (a letter outside ASCII takes 2–4): shorten it',
      '13 attachments; at most 12 attachments are allowed in one message',
    ]);
    for (const e of errors) expect(e.message).not.toMatch(/§|\bspec\b/);
  });

  describe('options', () => {
    it.each([
      [{ validity: 7 }],
      [{ validity: -1 }],
      [{ priority: 4 }],
      [{ visibility: 3 }],
      [{ class: 5 }],
      [{ timeout: 0 }],
      [{ timeout: 65536 }],
      [{ timeout: 1.5 }],
      [{ priority: '1' }],
      [{ deliveryReport: 1 }],
      [{ readReport: 'yes' }],
      [{ colour: 'red' }],
    ])('refuses %j as InvalidOption', async (options) => {
      await rejects({ ...base, options }, 'InvalidOption');
    });

    it('refuses options that are not an object', async () => {
      await rejects({ ...base, options: [1] }, 'InvalidOption');
    });
  });

  describe('ids', () => {
    it.each([[''], ['a'.repeat(65)], ['has space'], ['../etc'], ['..'], ['.'], ['a/b'], [17]])('refuses %j', async (id) => {
      await rejects({ ...base, id }, 'InvalidRequest', /id must be/);
    });
    it('accepts 64 characters', async () => {
      expect((await validateRequest({ ...base, id: 'A'.repeat(64) }, limits)).id).toBe('A'.repeat(64));
    });
  });

  describe('attachments by path', () => {
    it('refuses a path outside the allowed directories without looking at it', async () => {
      await writeFile(join(outside, 'key.pem'), 'secret');
      await rejects({ ...base, attachments: [{ path: join(outside, 'key.pem') }] }, 'AttachmentNotAllowed', /not inside an allowed directory/);
      // A missing file outside is the same answer: nothing can be learnt about the file system.
      await rejects({ ...base, attachments: [{ path: join(outside, 'nope') }] }, 'AttachmentNotAllowed');
    });

    it('refuses a symlink that leads out of the allowed directory', async () => {
      await writeFile(join(outside, 'key.pem'), 'secret');
      await symlink(join(outside, 'key.pem'), join(allowed, 'innocent.jpg'));
      await rejects({ ...base, attachments: [{ path: join(allowed, 'innocent.jpg') }] }, 'AttachmentNotAllowed', /resolves to/);
      await symlink(outside, join(allowed, 'dirlink'));
      await rejects({ ...base, attachments: [{ path: join(allowed, 'dirlink', 'key.pem') }] }, 'AttachmentNotAllowed', /resolves to/);
    });

    it('refuses .. that climbs out', async () => {
      await writeFile(join(outside, 'key.pem'), 'secret');
      await rejects({ ...base, attachments: [{ path: `${allowed}/../secret/key.pem` }] }, 'AttachmentNotAllowed');
      await rejects({ ...base, attachments: [{ path: `${allowed}/..` }] }, 'AttachmentNotAllowed');
    });

    it('accepts a symlink inside the allowed directory, and an allowed dir that is itself a symlink', async () => {
      await writeFile(join(allowed, 'real.png'), 'png!');
      await symlink(join(allowed, 'real.png'), join(allowed, 'link.png'));
      const linkedDir = join(root, 'linked');
      await symlink(allowed, linkedDir);
      limits.allowedDirs = [linkedDir];
      const req = await validateRequest({ ...base, attachments: [{ path: join(linkedDir, 'link.png') }] }, limits);
      expect(req.attachments[0].data.toString()).toBe('png!');
      expect(req.attachments[0].name).toBe('link.png');
    });

    it('refuses a relative path, a directory and a prefix look-alike', async () => {
      await rejects({ ...base, attachments: [{ path: 'incoming/a.jpg' }] }, 'AttachmentNotAllowed', /absolute/);
      await mkdir(join(allowed, 'sub'));
      await rejects({ ...base, attachments: [{ path: join(allowed, 'sub') }] }, 'AttachmentNotAllowed', /not a regular file/);
      await mkdir(`${allowed}-evil`);
      await writeFile(join(`${allowed}-evil`, 'a.jpg'), 'x');
      await rejects({ ...base, attachments: [{ path: join(`${allowed}-evil`, 'a.jpg') }] }, 'AttachmentNotAllowed');
    });

    it('says AttachmentNotFound for a missing file inside', async () => {
      await rejects({ ...base, attachments: [{ path: join(allowed, 'gone.jpg') }] }, 'AttachmentNotFound', /no such file/);
    });

    it('refuses path attachments when no directory is allowed', async () => {
      await writeFile(join(allowed, 'a.jpg'), 'x');
      limits.allowedDirs = [];
      await rejects({ ...base, attachments: [{ path: join(allowed, 'a.jpg') }] }, 'AttachmentNotAllowed');
    });

  });

  describe('size', () => {
    it('refuses a message whose attachments total more than maxMessageBytes', async () => {
      await rejects({ ...base, attachments: [{ name: 'a', data: Buffer.alloc(600) }, { name: 'b', data: Buffer.alloc(401) }] }, 'MessageTooLarge', /1001 bytes/);
      await expect(validateRequest({ ...base, attachments: [{ name: 'a', data: Buffer.alloc(1000) }] }, limits)).resolves.toBeDefined();
    });

    it('counts path attachments by their size on disk', async () => {
      await writeFile(join(allowed, 'big.bin'), Buffer.alloc(2_000_000));
      const e = await rejects({ ...base, attachments: [{ name: 'a', data: Buffer.alloc(10) }, { path: join(allowed, 'big.bin') }] }, 'MessageTooLarge');
      expect(e.message).toMatch(/2000010 bytes/);
    });

    it('refuses empty attachments', async () => {
      await rejects({ ...base, attachments: [{ name: 'a', data: Buffer.alloc(0) }] }, 'InvalidRequest', /empty/);
    });

    it('names where the limit comes from and by how much the message is over', async () => {
      limits.limitSource = "the carrier database's entry for LuxGSM (270-01)";
      await rejects({ ...base, attachments: [{ name: 'a', data: Buffer.alloc(1500) }] }, 'MessageTooLarge', /^attachments total 1500 bytes, 500 over the limit of 1000 \(the carrier database's entry for LuxGSM \(270-01\)\)$/);
    });

    describe('with photos that fit (§11)', () => {
      beforeEach(() => {
        limits.fit = { check: checkNonImageParts };
      });

      it('takes images over the limit, to be fitted when sent, but not with the option fit false', async () => {
        const req = await validateRequest({ ...base, attachments: [{ name: 'p.jpg', data: Buffer.alloc(5000, 1) }, { name: 'n.txt', data: Buffer.from('hi') }] }, limits);
        expect(req.attachments.map((a) => [a.name, a.data.length])).toEqual([['p.jpg', 5000], ['n.txt', 2]]);
        await rejects({ ...base, options: { fit: false }, attachments: [{ name: 'p.jpg', data: Buffer.alloc(5000, 1) }] }, 'MessageTooLarge', /4000 over the limit of 1000 \(mms\.maxMessageBytes\); the message's option fit is false/);
      });

      it('refuses at the door a message whose other parts alone exceed the limit: it can never fit', async () => {
        await rejects(
          { ...base, attachments: [{ name: 'p.jpg', data: Buffer.alloc(5000, 1) }, { name: 'data.bin', data: Buffer.alloc(1200) }] },
          'MessageTooLarge',
          /the parts other than images total 1200 bytes, 200 over the limit of 1000; only images can be made smaller \(mms\.maxMessageBytes\)/,
        );
      });

      it('reads a path image larger than the limit, and refuses more than FIT_INPUT_MAX_BYTES', async () => {
        await writeFile(join(allowed, 'cam.jpg'), Buffer.alloc(3000, 2));
        const req = await validateRequest({ ...base, attachments: [{ path: join(allowed, 'cam.jpg') }] }, limits);
        expect(req.attachments[0]?.data.length).toBe(3000);
        await writeFile(join(allowed, 'huge.jpg'), Buffer.alloc(FIT_INPUT_MAX_BYTES + 1));
        await rejects({ ...base, attachments: [{ path: join(allowed, 'huge.jpg') }] }, 'MessageTooLarge', /even to be made smaller/);
      });
    });
  });

  describe('attachment shape and type', () => {
    it.each([
      [[{ name: 'a' }]],
      [[{ name: 'a', data: 'aGVsbG8=' }]],
      [[{ data: Buffer.from('x') }]],
      [[{ name: 'a', data: Buffer.from('x'), path: '/x' }]],
      [['a.jpg']],
      ['a.jpg'],
    ])('refuses %j as InvalidRequest', async (attachments) => {
      await rejects({ ...base, attachments }, 'InvalidRequest');
    });

    it('keeps a charset parameter, normalised, for text parts', async () => {
      const req = await validateRequest(
        { ...base, attachments: [{ name: 'a.txt', contentType: 'Text/Plain;Charset="UTF-8"', data: Buffer.from('x') }] },
        limits,
      );
      expect(req.attachments[0].contentType).toBe('text/plain; charset=utf-8');
    });

    it.each([['image/jpeg; name=x'], ['text/plain; charset=a;b'], ['image'], ['image/jp"eg'], ['text/plain\r\n'], [`a/${'b'.repeat(100)}`]])(
      'refuses the content type %j',
      async (contentType) => {
        await rejects({ ...base, attachments: [{ name: 'a', contentType, data: Buffer.from('x') }] }, 'InvalidRequest', /content type/);
      },
    );
  });

  describe('names', () => {
    it('reduces names to a safe set and makes them unique', async () => {
      const req = await validateRequest(
        {
          ...base,
          attachments: [
            { name: '照片.jpg', data: Buffer.from('1') },
            { name: 'a;b".jpg', data: Buffer.from('2') },
            { name: 'a_b_.JPG', data: Buffer.from('3') },
            { name: '../../etc/passwd', data: Buffer.from('4') },
            { name: '...', data: Buffer.from('5') },
            { name: 'a_b_.jpg', data: Buffer.from('6') },
          ],
        },
        limits,
      );
      expect(req.attachments.map((a) => a.name)).toEqual(['part.jpg', 'a_b.jpg', 'a_b-2.JPG', 'etc_passwd', 'part', 'a_b-3.jpg']);
    });

    it('shortens long names keeping the extension, so RAM:<name> fits in 80 bytes', async () => {
      const long = `${'x'.repeat(200)}.jpeg`;
      const req = await validateRequest(
        { ...base, attachments: [{ name: long, data: Buffer.from('1') }, { name: long, data: Buffer.from('2') }] },
        limits,
      );
      const [a, b] = req.attachments.map((x) => x.name);
      expect(a.length).toBe(ATTACHMENT_NAME_MAX_BYTES);
      expect(b.length).toBe(ATTACHMENT_NAME_MAX_BYTES);
      expect(a).toMatch(/^x+\.jpeg$/);
      expect(b).toMatch(/^x+-2\.jpeg$/);
      expect(`RAM:${a}`.length).toBe(80);
    });
  });

  it('lets no AT-unsafe character through in any field (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.string({ unit: 'binary', maxLength: 30 }), { minLength: 1, maxLength: 3 }),
        fc.string({ unit: 'binary', maxLength: 30 }),
        async (to, name) => {
          try {
            const req = await validateRequest({ to, attachments: [{ name, data: Buffer.from('x') }] }, limits);
            const text = [...req.to, ...req.attachments.map((a) => a.name + a.contentType)].join('');
            return !/["';\r\n\x1a]/.test(text);
          } catch (err) {
            return err instanceof RequestError;
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('resendId', () => {
  it('takes <id>-resend-<n> with the first free n, counting on from an earlier resend', () => {
    const taken = new Set(['order-7-resend-1', 'order-7-resend-2']);
    expect(resendId('order-7', (c) => taken.has(c))).toBe('order-7-resend-3');
    expect(resendId('order-7-resend-2', (c) => taken.has(c))).toBe('order-7-resend-3');
    expect(resendId('x', () => false)).toBe('x-resend-1');
  });

  it('gives up (the outbox then generates an id) when the id would be longer than 64 characters', () => {
    expect(resendId('a'.repeat(55), () => false)).toBe(`${'a'.repeat(55)}-resend-1`);
    expect(resendId('a'.repeat(56), () => false)).toBeUndefined();
  });
});
