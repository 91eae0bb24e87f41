// Receiving under stress (issue 17, DESIGN.md §12), the real daemon on the virtual modem: SIGKILL at
// seeded random points of a fetch never loses a notification nor makes two entries; 20 messages
// arriving while sends run all complete, fetches and sends alternating on the modem; with
// inbound.autoRetrieve false a message waits `notified` until Retrieve().
import { readFile, readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReceivedProperties } from '../../src/api/dbus/client.js';
import { countAt, prng, pseudoImage, sha256, startStack, transcript, until, waitForProps, type Stack } from '../helpers/stack.js';

async function bySubject(s: Stack, subject: string): Promise<ReceivedProperties[]> {
  return (await s.client.listReceived()).filter((r) => r.props.Subject === subject).map((r) => r.props);
}

async function noPartials(s: Stack): Promise<void> {
  const left = (await readdir(s.tb.inboxDir, { recursive: true })).map(String).filter((e) => e.includes('.partial') || e.includes('/.'));
  expect(left).toEqual([]);
}

describe('SIGKILL at random points of a fetch', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack({ config: { inbound: { firstRetryS: 1 } } });
    await s.tb.modemReady();
  }, 60_000);
  afterAll(async () => s?.stop());

  it('never loses the notification and never leaves two entries (seeded)', async () => {
    const seed = 1717;
    const random = prng(seed);
    const stages: string[] = [];
    for (let round = 0; round < 5; round++) {
      const subject = `crash-${seed}-${round}`;
      const data = pseudoImage(8_000 + round * 1_000, round + 1);
      // A slow body widens the fetch, so that the kill lands in it more often than not.
      await s.tb.fault({ inbox: { slowBodyMs: 1_500, count: 1 } });
      const from = s.tb.daemon!.lines.length;
      const receipt = await s.tb.receive({ from: '+4917012345', subject, parts: [{ name: 'p.jpg', contentType: 'image/jpeg', data }] });
      const killAfterMs = Math.floor(random() * 2_500);
      const daemon = s.tb.daemon!;
      // The kill point itself is what is random; nothing below depends on timing.
      await new Promise((r) => setTimeout(r, killAfterMs));
      const since = daemon.lines.slice(from);
      const stage = since.some((l) => l.msg === 'M-NotifyResp.ind posted') ? 'after the NotifyResp' : since.some((l) => l.msg === 'MMS notification stored') ? 'while fetching' : 'before the notification was stored';
      stages.push(`${killAfterMs} ms: ${stage}`);
      await daemon.stop('SIGKILL');
      await s.tb.startDaemon();
      await s.tb.modemReady();
      const p = await until(
        async () => {
          const found = await bySubject(s, subject);
          return found.length > 0 && found.every((x) => x.Status === 'received') ? found : undefined;
        },
        45_000,
        `${subject} received after a kill ${killAfterMs} ms in (${stage}; all kills: ${stages.join(', ')})`,
      );
      expect(p, `round ${round}: killed ${killAfterMs} ms in (${stage})`).toHaveLength(1);
      expect(sha256(await readFile(p[0].Parts[0].path))).toBe(sha256(data));
      await until(async () => ((await s.tb.receivedAcks()).some((a) => a.transactionId === receipt.transactionId && a.status === 'retrieved') ? true : undefined), 15_000, 'its NotifyResp');
    }
    // Killed before the SMS was even read: it waits in the module's storage and is read at start.
    await s.tb.daemon!.stop('SIGKILL');
    const away = pseudoImage(5_000, 99);
    await s.tb.receive({ from: '+4917012345', subject: 'while-away', parts: [{ name: 'p.jpg', contentType: 'image/jpeg', data: away }] });
    await s.tb.startDaemon();
    const [p] = await until(async () => {
      const r = await bySubject(s, 'while-away');
      return r.length === 1 && r[0].Status === 'received' ? r : undefined;
    }, 45_000, 'the message pushed while mmsd was down');
    expect(sha256(await readFile(p.Parts[0].path))).toBe(sha256(away));
    // Checked once the daemon has stopped: while it runs, a record being rewritten (the NotifyResp
    // noted after `received`) is a temporary file for a moment, not a leftover. What the kills
    // left was removed at each start.
    expect(await s.tb.daemon!.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    await noPartials(s);
  }, 240_000);
});

describe('20 messages arriving while sends run', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack({ config: { inbound: { firstRetryS: 1 } } });
    await s.tb.modemReady();
  }, 60_000);
  afterAll(async () => s?.stop());

  it('every send and every receive completes; fetches and sends alternate on the modem', async () => {
    const sends = Array.from({ length: 6 }, (_, i) => `load-send-${i}`);
    const incoming = Array.from({ length: 20 }, (_, i) => ({ subject: `load-recv-${i}`, data: pseudoImage(4_000 + i * 100, 100 + i) }));
    // Sends queued first, then the messages arrive while they go out.
    for (const id of sends) {
      await s.client.sendData({ id, to: ['+4917055555'], subject: id }, [{ name: 'p.jpg', contentType: 'image/jpeg', data: pseudoImage(20_000, 9) }]);
    }
    for (const m of incoming) await s.tb.receive({ from: '+4917012345', subject: m.subject, parts: [{ name: 'p.jpg', contentType: 'image/jpeg', data: m.data }] });

    for (const id of sends) await waitForProps(s.client, id, (p) => p.Status === 'sent', 120_000, `${id} sent`);
    const received = await until(
      async () => {
        const all = (await s.client.listReceived()).map((r) => r.props).filter((p) => p.Subject.startsWith('load-recv-'));
        return all.length === incoming.length && all.every((p) => p.Status === 'received') ? all : undefined;
      },
      120_000,
      'all 20 received',
    );
    for (const m of incoming) {
      const p = received.find((x) => x.Subject === m.subject)!;
      expect(sha256(await readFile(p.Parts[0].path))).toBe(sha256(m.data));
    }
    await until(async () => ((await s.tb.receivedAcks()).length === incoming.length ? true : undefined), 30_000, '20 NotifyResp');

    // Alternation (DESIGN.md §12), per hold of the modem lock: while sends wait, no fetch follows
    // another without a sender hold (AT+QMMS…) between them. A message takes two holds (the send,
    // then the clean-up of its RAM files), so it meets at most two fetches between its send and the
    // previous one.
    const t = (await transcript(s.tb)).filter((l) => /^AT\+QMMS|^AT\+QHTTPGET=/.test(l));
    expect(countAt(t, /^AT\+QMMSEND/)).toBeGreaterThanOrEqual(sends.length);
    expect(countAt(t, /^AT\+QHTTPGET=/)).toBe(incoming.length);
    const lastSend = t.map((l) => l.startsWith('AT+QMMSEND')).lastIndexOf(true);
    const window = t.slice(t.findIndex((x) => x.startsWith('AT+QHTTPGET')), lastSend + 1);
    let gets = 0;
    let getsSinceSend = 0;
    for (const l of window) {
      gets = l.startsWith('AT+QHTTPGET') ? gets + 1 : 0;
      expect(gets, window.join(' ')).toBeLessThanOrEqual(1);
      if (l.startsWith('AT+QMMSEND')) getsSinceSend = 0;
      else if (l.startsWith('AT+QHTTPGET')) getsSinceSend += 1;
      expect(getsSinceSend, window.join(' ')).toBeLessThanOrEqual(2);
    }
  }, 300_000);
});

describe('inbound.autoRetrieve false', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack({ config: { inbound: { autoRetrieve: false } } });
    await s.tb.modemReady();
  }, 60_000);
  afterAll(async () => s?.stop());

  it('leaves a message notified until Retrieve()', async () => {
    const data = Buffer.from('wait for me', 'utf8');
    const receipt = await s.tb.receive({ from: '+4917012345', subject: 'manual', parts: [{ name: 'a.txt', contentType: 'text/plain', charset: 'utf-8', data }] });
    const [n] = await until(async () => {
      const r = await bySubject(s, 'manual');
      return r.length > 0 ? r : undefined;
    }, 30_000, 'the notification');
    expect(n.Status).toBe('notified');
    // A send goes through the modem lock the receiver would use: afterwards it still has not fetched.
    await s.client.sendData({ id: 'between', to: ['+4917055555'], subject: 'x' }, [{ name: 'a.txt', contentType: 'text/plain', data: Buffer.from('x') }]);
    await waitForProps(s.client, 'between', (p) => p.Status === 'sent', 30_000, 'between sent');
    expect((await s.client.showReceived(n.Id)).Status).toBe('notified');
    expect((await s.tb.mmscInbox()).find((m) => m.id === receipt.id)?.served).toBe(0);

    await s.client.retrieveReceived(n.Id);
    const p = await until(async () => {
      const x = await s.client.showReceived(n.Id);
      return x.Status === 'received' ? x : undefined;
    }, 30_000, 'received after Retrieve()');
    expect(await readFile(p.Parts[0].path, 'utf8')).toBe('wait for me');
    // Retrieve() of a received message is refused with a name.
    await expect(s.client.retrieveReceived(n.Id)).rejects.toMatchObject({ type: 'org.example.Mms1.Error.NotRetrievable' });
  });
});
