// mmsd under systemd's notify protocol, for real: NOTIFY_SOCKET points at a datagram socket this
// test reads; READY=1 with STATUS=, WATCHDOG=1 only while the AT channel answers, STOPPING=1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOG_EVENTS } from '../../src/core/log-events.js';
import { Testbed } from '../../src/harness/testbed.js';
import { NotifySocket, type Datagram } from '../helpers/notify-socket.js';
import { countAt, startStack, transcript, until } from '../helpers/stack.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const isWatchdog = (d: Datagram): boolean => d.fields.WATCHDOG === '1';

describe('systemd notify protocol', () => {
  let dir: string;
  let ns: NotifySocket;
  let tb: Testbed;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mmsd-notify-'));
    ns = await NotifySocket.start(dir);
    tb = await Testbed.start({ env: { NOTIFY_SOCKET: ns.path, WATCHDOG_USEC: '1000000' } });
  });
  afterAll(async () => {
    await tb?.stop();
    ns?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('says READY=1 once the modem is ready, with the state in STATUS=', async () => {
    const ready = await ns.next((d) => d.fields.READY === '1');
    expect(ready.fields.STATUS).toMatch(/^(modem ready|initialising|registered|waiting)/);
    const status = await ns.next((d) => /^modem ready.*; 0 queued$/.test(d.fields.STATUS ?? ''));
    expect(status.fields.STATUS).toContain('Virtual Operator');
    // Nothing says READY twice.
    expect(ns.datagrams.filter((d) => d.fields.READY === '1')).toHaveLength(1);
  });

  it('pings the watchdog while the AT channel answers, and stops when it is wedged', async () => {
    const first = await ns.next(isWatchdog);
    await ns.next(isWatchdog, ns.datagrams.indexOf(first) + 1);

    // Wedge the channel: the module stops answering anything.
    await tb.fault({ drop: 1_000_000 });
    const withheld = (): number => tb.daemon!.lines.filter((l) => /withholding the watchdog ping/.test(l.msg)).length;
    await tb.daemon!.waitFor((l) => /withholding the watchdog ping/.test(l.msg), 10_000, 'withheld watchdog');
    const pingsBefore = ns.datagrams.filter(isWatchdog).length;
    const count = withheld();
    // Two more watchdog periods pass (the daemon says so each time): no ping in between.
    await tb.daemon!.waitFor(() => withheld() >= count + 2, 10_000, 'two more withheld periods');
    expect(ns.datagrams.filter(isWatchdog).length).toBe(pingsBefore);

    // The module answers again: the pings come back.
    await tb.fault({ drop: 0 });
    await ns.next(isWatchdog, ns.datagrams.length, 15_000);
  });

  it('says STOPPING=1 on SIGTERM and exits 0', async () => {
    const from = ns.datagrams.length;
    const exited = await tb.daemon!.stop('SIGTERM');
    expect(exited.code).toBe(0);
    const stopping = await ns.next((d) => d.fields.STOPPING === '1', from, 5_000);
    expect(stopping.fields.STATUS).toBe('stopping');
  });
});

describe('stopping while the module sends a message', () => {
  it('asks systemd for the time the send result may take (EXTEND_TIMEOUT_USEC), waits for it, and exits 0', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mmsd-notify-'));
    const ns = await NotifySocket.start(dir);
    const s = await startStack({ env: { NOTIFY_SOCKET: ns.path } });
    try {
      await s.tb.modemReady(15_000);
      await s.tb.fault({ hold: true });
      const path = await s.client.sendData({ to: ['+15550001001'], subject: 'held', id: 'held-1', options: { timeout: 60 } }, [
        { name: 'note.txt', contentType: 'text/plain', data: Buffer.from('sent while stopping') },
      ]);
      const d = s.tb.daemon!;
      await until(async () => countAt(await transcript(s.tb), /^AT\+QMMSEND=60$/) === 1, 15_000, 'AT+QMMSEND');
      const from = ns.datagrams.length;
      const exited = d.stop('SIGTERM', 30_000);
      const extend = await ns.next((x) => x.fields.EXTEND_TIMEOUT_USEC !== undefined, from, 10_000);
      // <timeout> 60 s + the driver's 30 s margin + 10 s of slack, less what has passed since.
      const usec = Number(extend.fields.EXTEND_TIMEOUT_USEC);
      expect(usec).toBeGreaterThan(80_000_000);
      expect(usec).toBeLessThanOrEqual(100_000_000);
      expect(extend.fields.STATUS).toMatch(/^stopping: waiting for the send result of held-1 \(at most \d+ s\)$/);
      // The stop is still waiting: the result decides. The D-Bus door still answers meanwhile, and
      // refuses new work.
      expect(d.running).toBe(true);
      expect((await s.client.show('held-1')).Status).toBe('sending');
      await expect(s.client.sendData({ to: ['+15550001001'], id: 'late-1' }, [])).rejects.toThrow(/mmsd is stopping/);
      const outcome = s.client.follow(path, () => undefined);
      await s.tb.fault({ hold: false });
      // A client following the message hears its outcome before the daemon leaves the bus.
      expect((await outcome).Status).toBe('sent');
      expect((await exited).code).toBe(0);
      expect(d.lines.some((l) => l.msg === LOG_EVENTS.sendResult && l.id === 'held-1' && l.outcome === 'sent')).toBe(true);
      expect((await s.tb.received()).filter((m) => m.subject === 'held')).toHaveLength(1);
      expect(countAt(await transcript(s.tb), /^AT\+QMMSEND=/)).toBe(1);
    } finally {
      await s.stop();
      ns.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
