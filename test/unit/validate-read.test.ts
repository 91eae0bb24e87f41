// validateRequest checks attachment sizes from stat before it opens a single file.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const opened = vi.hoisted(() => ({ paths: [] as string[] }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const orig = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...orig,
    open: (...args: Parameters<typeof orig.open>) => {
      opened.paths.push(String(args[0]));
      return orig.open(...args);
    },
  };
});

const { validateRequest } = await import('../../src/core/validate.js');
const { RequestError } = await import('../../src/core/errors.js');

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'mmsd-validate-read-'));
  await mkdir(join(root, 'in'));
  opened.paths.length = 0;
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('validateRequest reading files', () => {
  it('refuses an oversized message without opening any attachment file', async () => {
    await writeFile(join(root, 'in', 'small.jpg'), Buffer.alloc(10));
    await writeFile(join(root, 'in', 'big.jpg'), Buffer.alloc(5000));
    const err: unknown = await validateRequest(
      { to: ['12345'], attachments: [{ path: join(root, 'in', 'small.jpg') }, { path: join(root, 'in', 'big.jpg') }] },
      { maxMessageBytes: 4000, allowedDirs: [join(root, 'in')] },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RequestError);
    expect((err as InstanceType<typeof RequestError>).errorName).toBe('MessageTooLarge');
    expect(opened.paths).toEqual([]);
  });

  it('opens each file once when the message fits', async () => {
    await writeFile(join(root, 'in', 'small.jpg'), Buffer.alloc(10, 7));
    const req = await validateRequest(
      { to: ['12345'], attachments: [{ path: join(root, 'in', 'small.jpg') }] },
      { maxMessageBytes: 4000, allowedDirs: [join(root, 'in')] },
    );
    expect(req.attachments[0].data).toEqual(Buffer.alloc(10, 7));
    expect(opened.paths).toHaveLength(1);
  });
});
