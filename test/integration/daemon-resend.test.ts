// What a user does about a message that did not go out, against the real daemon, mmsd-sim and its
// loopback MMSC: `mmsctl show` of a retrying message says when it is tried next, and an `unknown`
// one is sent again with `mmsctl resend`, its parts kept in the spool across a restart.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MMSCTL_BIN } from '../../src/harness/testbed.js';
import { run, type Run } from '../helpers/dbus-daemon.js';
import { pseudoImage, sha256, startStack, waitForProps, type Stack } from '../helpers/stack.js';

const TO = '+15550002001';

let s: Stack;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  s = await startStack();
  await s.tb.modemReady(15_000);
  env = { ...process.env, DBUS_SESSION_BUS_ADDRESS: s.tb.bus!.address };
});

afterAll(async () => {
  await s?.stop();
});

function mmsctl(...args: string[]): Promise<Run> {
  return run(process.execPath, [MMSCTL_BIN, '--bus', 'session', ...args], { env, timeoutMs: 60_000 });
}

describe('mmsctl with the real daemon', () => {
  it('resends an unknown message after a restart: the MMSC gets it once, with the same parts, under the new id', async () => {
    const photo = pseudoImage(20 * 1024, 41);
    const file = join(s.tb.dir, 'door.jpg');
    await writeFile(file, photo);
    // 775 after the module took AT+QMMSEND: the MMSC may have it, so mmsd does not send it again.
    await s.tb.fault({ sendResults: [{ err: 775, http: 0 }] });
    const first = await mmsctl('send', '--to', TO, '--subject', 'resend-me', '--attach', file, '--id', 'rs-1', '--wait');
    expect(first.code, first.stderr).toBe(4);
    expect(first.stderr).toBe('mmsctl: message rs-1 unknown: 775 Timeout — the MMSC may or may not have it; `mmsctl resend rs-1` sends it again\n');

    // The parts outlive a restart of the daemon (they stay in the spool until retention).
    await s.tb.daemon!.stop('SIGTERM');
    await s.tb.startDaemon();
    await s.tb.modemReady(15_000);
    const show = await mmsctl('show', 'rs-1');
    expect(show.stdout).toContain('status:        unknown (attempt 1): the MMSC may or may not have it; `mmsctl resend rs-1` sends it again\n');

    const again = await mmsctl('resend', 'rs-1', '--wait');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('sent rs-1-resend-1');
    const got = (await s.tb.received()).filter((m) => m.subject === 'resend-me');
    expect(got).toHaveLength(1);
    expect(got[0].to).toEqual([TO]);
    expect(got[0].parts.find((p) => p.name === 'door.jpg')).toMatchObject({ contentType: 'image/jpeg', size: photo.length, sha256: sha256(photo) });
    expect((await s.client.show('rs-1')).Status).toBe('unknown');

    // A sent message is not resent; the refusal names why.
    const refused = await mmsctl('resend', 'rs-1-resend-1');
    expect(refused.code).toBe(3);
    expect(refused.stderr).toBe('mmsctl: NotResendable: message rs-1-resend-1 is sent; only unknown or failed messages can be resent\n');
  });

  it('shows which attempt a retrying message is at and when it is tried next', async () => {
    // Three failures: sent again at once, again after re-activating the context, then it backs off.
    await s.tb.fault({ sendResults: [{ err: 765, http: 500 }, { err: 765, http: 500 }, { err: 765, http: 500 }] });
    await s.client.sendData({ to: [TO], subject: 'retry-me', id: 'rt-1' }, [{ name: 'n.txt', contentType: 'text/plain', data: Buffer.from('x') }]);
    const p = await waitForProps(s.client, 'rt-1', (x) => x.Status === 'retrying', 20_000, 'rt-1 retrying');
    expect(p.Attempts).toBe(3);
    expect(p.NextAttempt! - p.Updated).toBeGreaterThanOrEqual(29_000);
    expect(p.NextAttempt! - p.Updated).toBeLessThanOrEqual(30_000);
    const clock = new Date(p.NextAttempt!).toTimeString().slice(0, 8);
    const show = await mmsctl('show', 'rt-1');
    expect(show.stdout).toMatch(new RegExp(`status:        retrying \\(attempt 3 of 5, next try in (2[0-9]|30) s at ${clock}\\)\\n`));
    expect((await mmsctl('cancel', 'rt-1')).code).toBe(0);
    expect((await s.client.show('rt-1')).NextAttempt).toBe(0);
  });
});
