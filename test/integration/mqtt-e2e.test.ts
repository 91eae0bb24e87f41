// The MQTT front door end to end (issue 6, DESIGN.md §5): a real mosquitto, the real mmsd process,
// the virtual modem on a pty and its loopback MMSC (`mmsd-sim`). What the MMSC received is the proof.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Testbed } from '../../src/harness/testbed.js';
import type { ReceivedMessage } from '../../src/sim/types.js';
import { BackgroundShell, cliEnvFor, Mosquitto, MqttObserver, runShell, runTool, until } from '../helpers/mosquitto.js';
import { pseudoImage, sha256, transcript } from '../helpers/stack.js';

const ROOT = new URL('../../', import.meta.url);

let broker: Mosquitto;
let tb: Testbed;
let watch: MqttObserver;
let dir: string;
let cliEnv: NodeJS.ProcessEnv;

beforeAll(async () => {
  broker = await Mosquitto.start();
  dir = await mkdtemp(join(tmpdir(), 'mmsd-mqtt-e2e-'));
  cliEnv = await cliEnvFor(broker, join(dir, 'xdg'));
  tb = await Testbed.start({ mqttUrl: broker.url, config: { mqtt: { clientId: 'mmsd-e2e' } } });
  await tb.modemReady();
  // A requester with its own persistent session: what is published while it is away (a broker
  // restart) waits for it, as it would for a real client.
  watch = await MqttObserver.connect(broker.url, ['mmsd/message/+', 'mmsd/status', 'mmsd/availability'], {
    clean: false,
    clientId: 'e2e-watch',
    properties: { sessionExpiryInterval: 600 },
  });
});

afterAll(async () => {
  await watch?.end();
  await tb?.stop();
  await broker?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** mosquitto_pub, the real CLI, QoS 1, MQTT 5; the payload from a file (base64 makes it long). */
async function pub(topic: string, body: unknown): Promise<void> {
  const file = join(dir, `req-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(file, typeof body === 'string' ? body : JSON.stringify(body));
  const r = await runTool('mosquitto_pub', ['-V', '5', '-h', '127.0.0.1', '-p', String(broker.port), '-q', '1', '-t', topic, '-f', file]);
  expect(r.code, r.stderr).toBe(0);
}

/** How many times the loopback MMSC received a message with this subject. */
function countAt(received: ReceivedMessage[], subject: string): number {
  return received.filter((m) => m.subject === subject).length;
}

const statuses = (id: string): unknown[] => watch.json(`mmsd/message/${id}`).map((p) => p.status);

describe('mmsd over MQTT with the real daemon and mmsd-sim', () => {
  it('sends a request from mosquitto_pub with two base64 attachments, parts intact; a repeated id is not sent again', async () => {
    const text = Buffer.from('Grüße über MQTT — zwei Anhänge ✓\n');
    const image = pseudoImage(30 * 1024, 11);
    const id = 'e2e-two-parts';
    await pub('mmsd/send', {
      id,
      to: ['+15550000001'],
      cc: ['dave@example.org'],
      subject: id,
      attachments: [
        { name: 'note.txt', contentType: 'text/plain; charset=utf-8', data: text.toString('base64') },
        { name: 'photo.jpg', data: image.toString('base64') },
      ],
    });
    await watch.waitForJson(`mmsd/message/${id}`, { status: 'sent' }, 20_000);
    const seen = statuses(id);
    expect(seen[0]).toBe('queued');
    expect(seen).toContain('sending');
    expect(seen.at(-1)).toBe('sent');
    const sending = watch.json(`mmsd/message/${id}`).filter((p) => p.status === 'sending');
    expect(sending.some((p) => typeof p.progress === 'number' && p.progress > 0)).toBe(true);

    const got = (await tb.received()).filter((m) => m.subject === id);
    expect(got).toHaveLength(1);
    expect(got[0].to).toEqual(['+15550000001']);
    expect(got[0].cc).toEqual(['dave@example.org']);
    const parts = new Map(got[0].parts.map((p) => [p.name, p]));
    expect(parts.get('note.txt')).toMatchObject({ size: text.length, sha256: sha256(text) });
    expect(parts.get('photo.jpg')).toMatchObject({ contentType: 'image/jpeg', size: image.length, sha256: sha256(image) });

    // The final status is retained: a late subscriber learns the outcome.
    const late = await MqttObserver.connect(broker.url, [`mmsd/message/${id}`]);
    try {
      const m = await late.waitFor((r) => r.topic === `mmsd/message/${id}` && r.payload.length > 0, 10_000, 'the retained status');
      expect(m.retain).toBe(true);
      expect(JSON.parse(m.payload.toString())).toMatchObject({ id, status: 'sent', attempts: 1 });
    } finally {
      await late.end();
    }

    // §5: the same id again → nothing queued, the current status published again.
    const sentBefore = statuses(id).filter((s) => s === 'sent').length;
    const sendsBefore = (await transcript(tb)).filter((c) => c.startsWith('AT+QMMSEND=')).length;
    await pub('mmsd/send', { id, to: ['+15550000001'], subject: id });
    await until(() => statuses(id).filter((s) => s === 'sent').length > sentBefore, 're-published status');
    expect(statuses(id).at(-1)).toBe('sent');
    expect(statuses(id).filter((s) => s === 'queued')).toHaveLength(1);
    expect(countAt(await tb.received(), id)).toBe(1);
    expect((await transcript(tb)).filter((c) => c.startsWith('AT+QMMSEND=')).length).toBe(sendsBefore);
  });

  it('publishes each status change and each progress step of one send once on mmsd/message/<id>', async () => {
    const id = 'e2e-once';
    const image = pseudoImage(40 * 1024, 17);
    // A subscriber of its own, counting from before the request: every message on the topic.
    const counter = await MqttObserver.connect(broker.url, [`mmsd/message/${id}`, 'mmsd/message/e2e-once-next']);
    try {
      await pub('mmsd/send', { id, to: ['+15550000031'], subject: id, attachments: [{ name: 'photo.jpg', data: image.toString('base64') }] });
      await counter.waitForJson(`mmsd/message/${id}`, { status: 'sent' }, 20_000);
      // The sender takes the next message only once this one is cleaned up (its RAM journal
      // cleared, which the outbox announces too), and the broker keeps one publisher's messages
      // in order: once that one is sent, nothing more can come for ours.
      await pub('mmsd/send', { id: 'e2e-once-next', to: ['+15550000031'], subject: 'e2e-once-next' });
      await counter.waitForJson('mmsd/message/e2e-once-next', { status: 'sent' }, 20_000);
    } finally {
      await counter.end();
    }
    const seen = counter.json(`mmsd/message/${id}`).map(({ updated: _updated, ...rest }) => rest);
    const shown = seen.map((p) => JSON.stringify(p));
    // No state twice in a row, no state twice at all (one attempt: progress only grows).
    expect(new Set(shown).size, shown.join('\n')).toBe(shown.length);
    expect(seen.map((p) => p.status).filter((st) => st !== 'sending')).toEqual(['queued', 'sent']);
    const progress = seen.filter((p) => p.status === 'sending').map((p) => p.progress as number);
    expect(progress[0]).toBe(0);
    expect(progress.at(-1)).toBe(1);
    expect(progress.every((v, i) => i === 0 || v > progress[i - 1]), progress.join(' ')).toBe(true);
  });

  it('says on mmsd/message/<id> when a retrying message is tried next (nextAttempt)', async () => {
    const id = 'e2e-retrying';
    // Three failures: sent again at once, again after re-activating the context, then it backs off.
    await tb.fault({ sendResults: [{ err: 765, http: 500 }, { err: 765, http: 500 }, { err: 765, http: 500 }] });
    await pub('mmsd/send', { id, to: ['+15550000032'], subject: id });
    const retrying = await watch.waitForJson(`mmsd/message/${id}`, { status: 'retrying' }, 20_000);
    expect(retrying).toMatchObject({ attempts: 3, error: { code: 765, name: 'Server response failed', httpStatus: 500 } });
    const wait = (retrying.nextAttempt as number) - (retrying.updated as number);
    expect(wait).toBeGreaterThanOrEqual(29_000);
    expect(wait).toBeLessThanOrEqual(31_000);
    await pub('mmsd/cancel', { id });
    const cancelled = await watch.waitForJson(`mmsd/message/${id}`, { status: 'cancelled' }, 10_000);
    expect(cancelled).not.toHaveProperty('nextAttempt');
  });

  it('rejects too many recipients and a subject over 200 bytes with the named error; nothing reaches the modem', async () => {
    const before = (await transcript(tb)).length;
    const tooMany = Array.from({ length: 7 }, (_, i) => `+1555999000${i + 1}`);
    await pub('mmsd/send', { id: 'e2e-bad-rcpt', to: tooMany, subject: 'e2e-bad-rcpt' });
    // 70 CJK characters: only 70 characters, but 210 bytes in UTF-8.
    const longSubject = '测'.repeat(70);
    await pub('mmsd/send', { id: 'e2e-bad-subj', to: ['+15559990008'], subject: longSubject });

    const r1 = await watch.waitForJson('mmsd/message/e2e-bad-rcpt', { status: 'rejected' });
    expect(r1).toMatchObject({ id: 'e2e-bad-rcpt', attempts: 0, error: { name: 'TooManyRecipients' } });
    expect((r1.error as { message: string }).message).toMatch(/at most 6/);
    const r2 = await watch.waitForJson('mmsd/message/e2e-bad-subj', { status: 'rejected' });
    expect(r2).toMatchObject({ id: 'e2e-bad-subj', attempts: 0, error: { name: 'SubjectTooLong' } });
    expect(statuses('e2e-bad-rcpt')).toEqual(['rejected']);
    expect(statuses('e2e-bad-subj')).toEqual(['rejected']);

    // The daemon still serves a good request afterwards; by the time it is sent, anything queued
    // before it would have been sent too.
    await pub('mmsd/send', { id: 'e2e-after-bad', to: ['+15550000042'], subject: 'e2e-after-bad' });
    await watch.waitForJson('mmsd/message/e2e-after-bad', { status: 'sent' }, 20_000);
    const at = (await transcript(tb)).slice(before);
    const edits = at.filter((c) => c.startsWith('AT+QMMSEDIT='));
    expect(edits).toContain('AT+QMMSEDIT=1,1,"+15550000042"');
    expect(edits.filter((c) => c.includes('1555999'))).toEqual([]);
    const hexSubject = Buffer.from(longSubject).toString('hex').toUpperCase();
    expect(edits.filter((c) => c.includes(hexSubject) || c.includes(longSubject))).toEqual([]);
    expect(at.filter((c) => c.startsWith('AT+QMMSEND='))).toHaveLength(1);
    const received = await tb.received();
    expect(countAt(received, 'e2e-bad-rcpt')).toBe(0);
    expect(received.filter((m) => m.subject === longSubject)).toEqual([]);
  });

  it('delivers the final status after the broker was restarted mid-send', async () => {
    const id = 'e2e-broker-restart';
    // ~20 KB at 115200 baud (11.5 KB/s): the upload takes about two seconds; `hold` keeps the
    // AT+QMMSEND from reporting until the broker is back, so the restart is surely mid-send.
    await tb.fault({ baud: 115_200, hold: true });
    try {
      const image = pseudoImage(20 * 1024, 23);
      await pub('mmsd/send', { id, to: ['+15550000007'], subject: id, attachments: [{ name: 'slow.jpg', data: image.toString('base64') }] });
      await watch.waitForJson(`mmsd/message/${id}`, { status: 'sending' }, 15_000);
      expect(statuses(id)).not.toContain('sent');

      const mark = watch.received.length;
      await broker.restart();
      await tb.fault({ hold: false });
      await watch.waitForJson(`mmsd/message/${id}`, { status: 'sent' }, 30_000);
      const got = (await tb.received()).filter((m) => m.subject === id);
      expect(got).toHaveLength(1);
      expect(got[0].parts.find((p) => p.name === 'slow.jpg')).toMatchObject({ size: image.length, sha256: sha256(image) });
      // The daemon's session survived: it reconnected and announced itself again.
      await watch.waitFor(
        (m) => m.topic === 'mmsd/availability' && m.payload.toString() === 'online' && watch.received.indexOf(m) >= mark,
        10_000,
        'online after the restart',
      );
      expect(tb.daemon!.lines.filter((l) => l.msg === 'connected to the MQTT broker').length).toBeGreaterThanOrEqual(2);
    } finally {
      await tb.fault({ baud: 0, hold: false });
    }
  });

  it('takes the requests published while the daemon was stopped, and sends each exactly once', async () => {
    await tb.daemon!.stop('SIGTERM');
    // A clean stop says so.
    await watch.waitFor((m) => m.topic === 'mmsd/availability' && m.payload.toString() === 'offline', 10_000, 'offline');
    const ids = ['e2e-away-1', 'e2e-away-2', 'e2e-away-3'];
    for (const id of ids) await pub('mmsd/send', { id, to: ['+15550000010'], subject: id });

    await tb.startDaemon();
    for (const id of ids) await watch.waitForJson(`mmsd/message/${id}`, { status: 'sent' }, 30_000);
    // The queue is empty (the latest status says so): no second copy is on its way.
    await until(() => watch.json('mmsd/status').at(-1)?.queueLength === 0, 'an empty queue');
    const received = await tb.received();
    for (const id of ids) {
      expect(countAt(received, id), id).toBe(1);
      expect(statuses(id).filter((s) => s === 'queued'), id).toHaveLength(1);
    }
  });

  it('runs the README example verbatim', async () => {
    const doc = await readFile(new URL('README.md', ROOT), 'utf8');
    const source = 'README.md';
    const after = doc.slice(doc.indexOf('<!-- mqtt-example -->'));
    const block = /```(?:sh|bash|console)\n([\s\S]*?)```/.exec(after);
    expect(block, `a fenced sh block after the marker in ${source}`).not.toBeNull();
    const lines = block![1].split('\n').filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
    expect(lines.map((l) => l.split(' ')[0])).toEqual(['mosquitto_sub', 'mosquitto_pub']);
    const [subLine, pubLine] = lines as [string, string];
    const id = /"id":"([^"]+)"/.exec(pubLine)?.[1];
    expect(id, 'the example names its id').toBeDefined();

    const sub = BackgroundShell.start(subLine, { cwd: dir, env: cliEnv });
    try {
      // The subscriber is in place once the retained availability reaches it.
      await sub.waitFor('mmsd/availability online');
      const r = await runShell(pubLine, { cwd: dir, env: cliEnv });
      expect(r.code, r.stderr).toBe(0);
      await sub.waitFor(`mmsd/message/${id} {"id":"${id}","status":"queued"`);
      await sub.waitFor(`mmsd/message/${id} {"id":"${id}","status":"sent"`, 20_000);
      expect(sub.text).toMatch(new RegExp(`mmsd/message/${id} \\{"id":"${id}","status":"sending"`));
      expect(sub.text).toMatch(/mmsd\/status \{"modemState":"ready"/);
    } finally {
      await sub.stop();
    }
    const got = (await tb.received()).filter((m) => m.to.includes('+4917012345678'));
    expect(got).toHaveLength(1);
    const hello = Buffer.from('Hello from mmsd!');
    expect(got[0].parts.find((p) => p.name === 'hello.txt')).toMatchObject({ size: hello.length, sha256: sha256(hello) });
  });

  it('runs the README recipe for a photo verbatim: 150 KB through a request file, parts intact', async () => {
    const doc = await readFile(new URL('README.md', ROOT), 'utf8');
    const block = /<!-- mqtt-file-example -->\s*```sh\n([\s\S]*?)```/.exec(doc);
    expect(block, 'the photo recipe in README.md').not.toBeNull();
    const id = /"id":"([^"]+)"/.exec(block![1])?.[1];
    expect(id, 'the recipe names its id').toBeDefined();
    const photo = pseudoImage(150 * 1024, 29);
    await writeFile(join(dir, 'photo.jpg'), photo);
    const r = await runShell(block![1], { cwd: dir, env: cliEnv });
    expect(r.code, r.stderr).toBe(0);
    await watch.waitForJson(`mmsd/message/${id!}`, { status: 'sent' }, 30_000);
    const got = (await tb.received()).filter((m) => m.subject === 'Front door');
    expect(got).toHaveLength(1);
    expect(got[0].parts.find((p) => p.name === 'photo.jpg')).toMatchObject({ contentType: 'image/jpeg', size: photo.length, sha256: sha256(photo) });
  });

  it('keeps mmsd/status retained with the modem ready, and the last will says offline when the daemon is killed', async () => {
    const fresh = await MqttObserver.connect(broker.url, ['mmsd/status', 'mmsd/availability']);
    try {
      const status = await fresh.waitFor((m) => m.topic === 'mmsd/status', 10_000, 'retained status');
      expect(status.retain).toBe(true);
      expect(JSON.parse(status.payload.toString())).toMatchObject({ modemState: 'ready', queueLength: 0 });
      const avail = await fresh.waitFor((m) => m.topic === 'mmsd/availability', 10_000, 'retained availability');
      expect(avail.retain).toBe(true);
      expect(avail.payload.toString()).toBe('online');

      const r = await tb.daemon!.stop('SIGKILL');
      expect(r.signal).toBe('SIGKILL');
      await fresh.waitFor((m) => m.topic === 'mmsd/availability' && m.payload.toString() === 'offline', 10_000, 'the last will');
    } finally {
      await fresh.end();
    }
    // Retained too: a client arriving now learns the daemon is gone.
    const later = await MqttObserver.connect(broker.url, ['mmsd/availability']);
    try {
      const m = await later.waitFor((x) => x.topic === 'mmsd/availability', 10_000, 'retained offline');
      expect(m.retain).toBe(true);
      expect(m.payload.toString()).toBe('offline');
    } finally {
      await later.end();
    }
  });
});
