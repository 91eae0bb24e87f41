// The daemon as the shipped unit starts it (systemd/mmsd.service: NODE_OPTIONS with --jitless, a
// 256 MiB old space, one V8 worker; node started with --lite-mode by ExecStart=; docs/performance.md
// "Footprint"). The rest of the suite runs the daemon with plain node, so this file is what shows that
// the options and flags the package ships do not break a path: a send whose photo is fitted (the fitting child inherits the options),
// a list over D-Bus, and a received message fetched, decoded and written.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePhoto } from '../../src/harness/photos.js';
import { unitLaunch } from '../../src/harness/unit-environment.js';
import { decodeSendReq } from '../../src/mms/pdu.js';
import { finalWithin, sha256, startStack, until, type Stack } from '../helpers/stack.js';

const UNIT = unitLaunch();
const UNIT_ENV = UNIT.env;
let s: Stack;

beforeAll(async () => {
  s = await startStack({ env: UNIT_ENV, daemonNodeArgs: UNIT.nodeArgs, config: { inbound: { firstRetryS: 1 } } });
  await s.tb.modemReady();
}, 60_000);

afterAll(async () => {
  await s?.stop();
});

describe("the daemon with the unit's environment", () => {
  it('runs with exactly the NODE_OPTIONS the unit sets', async () => {
    expect(UNIT_ENV.NODE_OPTIONS).toMatch(/--jitless/);
    const environ = (await readFile(`/proc/${s.tb.daemon?.pid}/environ`, 'utf8')).split('\0');
    expect(environ).toContain(`NODE_OPTIONS=${UNIT_ENV.NODE_OPTIONS}`);
  });

  it("runs under node with exactly the flags of the unit's ExecStart=, before the script", async () => {
    expect(UNIT.nodeArgs).toContain('--lite-mode');
    const argv = (await readFile(`/proc/${s.tb.daemon?.pid}/cmdline`, 'utf8')).split('\0');
    const script = argv.findIndex((a) => a.endsWith('/cli/mmsd.js'));
    expect(argv.slice(1, script)).toEqual(UNIT.nodeArgs);
  });

  it('sends a message whose photo it fits in the child process, and lists it', async () => {
    const photo = await sharp(await makePhoto(sharp, 2400, 1800, 5)).jpeg({ quality: 95 }).toBuffer();
    expect(photo.length).toBeGreaterThan(307_200);
    const note = Buffer.from('unit environment ✓\n');
    const path = await s.client.sendData({ to: ['+15550004100'], subject: 'unit-env', id: 'unit-env' }, [
      { name: 'cam.jpg', contentType: 'image/jpeg', data: photo },
      { name: 'note.txt', contentType: 'text/plain; charset=utf-8', data: note },
    ]);
    const final = await finalWithin(s, path, 90_000);
    expect(final.Status, final.Error).toBe('sent');
    expect(final.Adjustments?.[0]).toMatch(/^cam\.jpg: 2400×1800 /);

    const msg = (await s.tb.received()).find((m) => m.subject === 'unit-env');
    expect(msg).toBeDefined();
    const req = decodeSendReq(await readFile(join(s.tb.storeDir, msg!.id, 'raw.mms')));
    const jpeg = req.parts.find((p) => p.contentType === 'image/jpeg')?.data;
    expect(jpeg && jpeg.length).toBeLessThan(307_200);
    expect((await sharp(jpeg).metadata()).format).toBe('jpeg');
    expect(req.parts.find((p) => p.contentType.startsWith('text/plain'))?.data.equals(note)).toBe(true);

    const listed = await s.client.list();
    expect(listed.map((m) => m.props.Id)).toContain('unit-env');
  }, 120_000);

  it('receives a message: fetched, decoded and written byte for byte', async () => {
    const data = Buffer.from('Empfangen unter den Optionen der Unit — ✓\n', 'utf8');
    await s.tb.receive({ from: '+4917012399', subject: 'unit-env-in', parts: [{ name: 'note.txt', contentType: 'text/plain', charset: 'utf-8', data }] });
    const p = await until(
      async () => (await s.client.listReceived()).find((r) => r.props.Subject === 'unit-env-in' && r.props.Status === 'received')?.props,
      30_000,
      'the received message',
    );
    const part = p.Parts.find((x) => x.name === 'note.txt');
    expect(part?.path).toBe(join(s.tb.inboxDir, p.Id, 'note.txt'));
    expect(sha256(await readFile(part!.path))).toBe(sha256(data));
  }, 60_000);
});
