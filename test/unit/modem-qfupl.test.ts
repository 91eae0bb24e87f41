// The QFUPL upload protocol (src/modem/qfupl.ts) run by a real AtChannel against a scripted fake
// module: ACK mode in blocks, tokens bare or as lines, the checksum check, refusals, a stall and
// the escape after it, the port going away, and the module restarting mid-upload.
import { nextEvent } from '../../src/harness/wait.js';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { checksum16 } from '../../src/at/checksum.js';
import { AtError, ChecksumError, ClosedError, CmeError, TimeoutError } from '../../src/at/errors.js';
import { upload } from '../../src/modem/qfupl.js';
import { rig, stopChannels, until } from './at-fakes.js';

afterEach(stopChannels);

const up = (name: string, n: number): string => `AT+QFUPL="RAM:${name}",${n},60,1`;
const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff));

describe('QFUPL uploads through the AT channel', () => {
  for (const size of [1, 1023, 1024, 1025, 2048, 3000]) {
    it(`uploads ${size} bytes in 1024-byte blocks, waiting for each ACK`, async () => {
      const r = await rig();
      const data = bytes(size);
      const progress: [number, number][] = [];
      const res = await upload(r.ch, up('f.bin', size), data, { onProgress: (s, t) => progress.push([s, t]) });
      expect(res.size).toBe(size);
      expect(res.checksum).toBe(checksum16(data));
      expect(r.m().uploaded).toEqual(data);
      const blocks = Math.ceil(size / 1024);
      // One command write and one write per block.
      expect(r.t().writes).toHaveLength(1 + blocks);
      expect(r.t().writes.slice(1).map((w) => w.length)).toEqual(
        Array.from({ length: blocks }, (_, i) => Math.min(1024, size - i * 1024)),
      );
      expect(progress.at(-1)).toEqual([size, size]);
      expect(progress.map((p) => p[0])).toEqual([
        ...Array.from({ length: blocks - 1 }, (_, i) => (i + 1) * 1024),
        size,
      ]);
    });
  }

  for (const window of [1, 2, 4]) {
    for (const size of [1000, 2048, 5000, 9216]) {
      it(`keeps up to ${window} block(s) in flight for ${size} bytes, and the module gets them intact`, async () => {
        // The module takes a moment per block, so that the "A"s of a window come together.
        const r = await rig({}, (m) => {
          m.upload = { ackDelayMs: 3 };
        });
        const data = bytes(size);
        const progress: number[] = [];
        const res = await upload(r.ch, up('w.bin', size), data, { window, onProgress: (s) => progress.push(s) });
        expect(res).toMatchObject({ size, checksum: checksum16(data) });
        expect(r.m().uploaded).toEqual(data);
        const blocks = Math.ceil(size / 1024);
        // The first write fills the window; each "A" lets one more block go.
        const first = Math.min(window, blocks);
        expect(r.t().writes.slice(1).map((w) => w.length)).toEqual([
          Math.min(first * 1024, size),
          ...Array.from({ length: blocks - first }, (_, i) => Math.min(1024, size - (first + i) * 1024)),
        ]);
        // Never more than the window unacknowledged at the module, and the window refilled after the
        // first write (an "A" that came while no wait was armed is not lost).
        const unacked = r.m().unackedAtWrites;
        expect(Math.max(...unacked)).toBeLessThanOrEqual(window * 1024);
        if (blocks >= window + 2) expect(Math.max(...unacked.slice(1))).toBe(window * 1024);
        expect(progress.at(-1)).toBe(size);
        expect(progress).toEqual([...progress].sort((a, b) => a - b));
      });
    }
  }

  it('with two blocks in flight, one "A" lost on the way costs nothing: the result proves the bytes', async () => {
    // A lost "A" takes one place of the window for the rest of the upload; the second would stall it.
    const r = await rig({}, (m) => {
      m.upload = { dropAcks: [3] };
    });
    const data = bytes(6000);
    const res = await upload(r.ch, up('l', 6000), data, { window: 2, timeoutMs: 500 });
    expect(res).toMatchObject({ size: 6000, checksum: checksum16(data) });
    expect(r.m().uploaded).toEqual(data);
  });

  it('stop-and-wait (window 1) times out on a lost "A", then escapes data mode', async () => {
    const r = await rig({}, (m) => {
      m.upload = { dropAcks: [2] };
    });
    const err = await upload(r.ch, up('l1', 5000), bytes(5000), { window: 1, timeoutMs: 80 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    // Two blocks went; the third waits for the second's "A".
    expect(r.t().writes.slice(1).map((w) => w.length)).toEqual([1024, 1024]);
    r.t().onWrite = (d) => {
      const s = d.toString('latin1');
      if (s === '+++') r.t().reply('\r\n+QFUPL: 2048,0\r\n\r\nOK\r\n');
      else if (s === 'AT+CMEE?\r') r.t().reply('\r\n+CMEE: 1\r\n\r\nOK\r\n');
      else if (s === 'AT\r' || s === '\r') r.t().reply('\r\nOK\r\n');
    };
    await expect(r.ch.command('AT')).resolves.toEqual({ lines: [] });
    expect(r.t().writes.map((w) => w.toString('latin1'))).toContain('+++');
  });

  it('with four blocks in flight, times out when every "A" of the window is lost', async () => {
    const r = await rig({}, (m) => {
      m.upload = { dropAcks: [1, 2, 3, 4] };
    });
    const err = await upload(r.ch, up('l4', 9000), bytes(9000), { window: 4, timeoutMs: 80 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(r.t().writes.slice(1).map((w) => w.length)).toEqual([4096]);
  });

  it('with a window, a module that never answers a block fails with TimeoutError, not a success', async () => {
    const r = await rig({}, (m) => {
      m.upload = { silentAfterBlocks: 3 };
    });
    const err = await upload(r.ch, up('s4', 9000), bytes(9000), { window: 4, timeoutMs: 80 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
  });

  it('with a window, a short or wrong result still fails with ChecksumError', async () => {
    const r = await rig({}, (m) => {
      m.upload = { reportChecksum: (d) => checksum16(d) ^ 1 };
    });
    const data = bytes(5000);
    const err = await upload(r.ch, up('c2', 5000), data, { window: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChecksumError);
    await expect(r.ch.command('AT')).resolves.toEqual({ lines: [] });
  });

  for (const window of [0, 9, 1.5]) {
    it(`refuses an upload window of ${window} before writing anything`, async () => {
      const r = await rig();
      const err = await upload(r.ch, up('bad', 10), bytes(10), { window }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AtError);
      expect((err as Error).message).toContain(`invalid upload window ${window}`);
      expect(r.t().writes).toEqual([]);
    });
  }

  it('accepts "A\\r\\n" ACKs and a stray "A" before the result of a last full block', async () => {
    const r = await rig({}, (m) => {
      m.upload = { ack: 'crlf', ackLastFullBlock: true };
    });
    const data = bytes(4096);
    const res = await upload(r.ch, up('x', 4096), data);
    expect(res.size).toBe(4096);
    expect(r.urcs).toEqual([]);
  });

  it('accepts a bare "A" glued to the final result in one chunk', async () => {
    const r = await rig({}, (m) => {
      m.upload = { ack: 'bare', ackLastFullBlock: true };
    });
    const res = await upload(r.ch, up('x', 2048), bytes(2048), { blockSize: 1024 });
    expect(res.size).toBe(2048);
  });

  it('honours another block size', async () => {
    const r = await rig();
    const data = bytes(10);
    const t = r.t();
    t.onWrite = (d) => {
      if (d.toString().startsWith('AT+QFUPL')) return t.reply('\r\nCONNECT\r\n');
      const sent = Buffer.concat(t.writes.slice(1)).length;
      if (sent < 10) t.reply('A');
      else t.reply(`\r\n+QFUPL: 10,${checksum16(data).toString(16)}\r\n\r\nOK\r\n`);
    };
    const progress: number[] = [];
    await upload(r.ch, up('y', 10), data, { blockSize: 4, onProgress: (s) => progress.push(s) });
    expect(t.writes.slice(1).map((w) => w.length)).toEqual([4, 4, 2]);
    expect(progress).toEqual([4, 8, 10]);
  });

  it('refuses an empty upload with a clear error and writes nothing', async () => {
    const r = await rig();
    const err = await upload(r.ch, up('e', 0), Buffer.alloc(0)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AtError);
    expect((err as Error).message).toContain('0 bytes');
    expect(r.t().writes).toEqual([]);
  });

  it('rejects with ChecksumError when the module reports another checksum', async () => {
    const r = await rig({}, (m) => {
      m.upload = { reportChecksum: (d) => checksum16(d) ^ 0x0100 };
    });
    const data = bytes(1500);
    const err = await upload(r.ch, up('c', 1500), data).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChecksumError);
    expect((err as ChecksumError).expected).toEqual({ size: 1500, checksum: checksum16(data) });
    expect((err as ChecksumError).reported.checksum).toBe(checksum16(data) ^ 0x0100);
    // The channel stays usable.
    await expect(r.ch.command('AT')).resolves.toEqual({ lines: [] });
  });

  it('rejects with ChecksumError when the module took fewer bytes than sent', async () => {
    const r = await rig();
    const data = bytes(3000);
    // The command announces 1500 bytes: the module leaves data mode after the second block.
    const err = await upload(r.ch, up('s', 1500), data).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChecksumError);
    expect((err as ChecksumError).reported.size).toBe(2048);
  });

  it('rejects the typed error when the module refuses the upload instead of CONNECT', async () => {
    const r = await rig();
    r.m().on('AT+QFUPL=*', '+CME ERROR: 407');
    const err = await upload(r.ch, up('z', 5), bytes(5)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CmeError);
    expect((err as CmeError).code).toBe(407);
    expect(r.t().writes).toHaveLength(1);
  });

  it('after an upload stalls, escapes data mode before the next command', async () => {
    const r = await rig({}, (m) => {
      m.upload = { silentAfterBlocks: 1 };
    });
    const err = await upload(r.ch, up('t', 3000), bytes(3000), { timeoutMs: 50 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    // A module that answers commands again once it saw "+++".
    const t = r.t();
    let escaped = false;
    t.onWrite = (d) => {
      const s = d.toString('latin1');
      if (s === '+++') {
        escaped = true;
        // The module ends the upload keeping what arrived; that result is for no one.
        t.reply('\r\n+QFUPL: 2048,0\r\n\r\nOK\r\n');
      }
      else if (escaped && s === '\r') t.reply('\r\nERROR\r\n');
      else if (escaped && s === 'AT+CMEE?\r') t.reply('\r\n+CMEE: 1\r\n\r\nOK\r\n');
      else if (escaped && s === 'AT\r') t.reply('\r\nOK\r\n');
    };
    await expect(r.ch.command('AT')).resolves.toEqual({ lines: [] });
    const tail = t.writes.slice(-4).map((w) => w.toString('latin1'));
    expect(tail).toEqual(['+++', '\r', 'AT+CMEE?\r', 'AT\r']);
    expect(r.urcs).toEqual([]);
  });

  it('never writes upload bytes to the log', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'trace' }, { write: (s: string) => void lines.push(s) });
    const r = await rig({ logger });
    const secret = Buffer.from('SECRET-PAYLOAD-BYTES');
    await upload(r.ch, up('p', secret.length), secret);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('\n')).not.toContain('SECRET');
    expect(lines.join('\n')).toContain('AT+QFUPL');
  });

  it('fails at once when the module restarts mid-upload, and needs no escape after it', async () => {
    const r = await rig({}, (m) => {
      m.upload = { silentAfterBlocks: 1 };
    });
    const t = r.t();
    const onWrite = t.onWrite;
    let blocks = 0;
    t.onWrite = (d) => {
      onWrite?.(d);
      // The module reboots after the second block: it is in command mode, the ACK never comes.
      if (!d.toString('latin1').startsWith('AT') && ++blocks === 2) r.m().reboot();
    };
    const err = await upload(r.ch, up('r', 3000), bytes(3000), { timeoutMs: 60_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AtError);
    expect((err as Error).message).toBe(`${up('r', 3000)}: module restarted during the upload (RDY)`);
    expect(r.urcs).toEqual(['RDY']);
    await expect(r.ch.command('AT')).resolves.toEqual({ lines: [] });
    expect(t.writes.map((w) => w.toString('latin1')).slice(-1)).toEqual(['AT\r']);
    expect(t.written()).not.toContain('+++');
  });

  // The port going away mid-upload (AtChannel transport loss).
  it('escapes data mode on the returning port when a write failed mid-upload before the port closed', async () => {
    const r = await rig();
    const t = r.t();
    const write = t.write.bind(t);
    let blocks = 0;
    // USB unplugged: the third data block's write fails (EIO) before the port reports its close.
    t.write = async (data: Buffer): Promise<void> => {
      if (!data.toString('latin1').startsWith('AT') && ++blocks === 3) {
        setImmediate(() => t.lose(new Error('EIO')));
        throw new Error('EIO: i/o error, write');
      }
      return write(data);
    };
    const reconnected = nextEvent(r.ch, 'connected');
    const err = await upload(r.ch, up('w', 5000), bytes(5000)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClosedError);
    await reconnected;
    await expect(r.ch.command('AT')).resolves.toEqual({ lines: [] });
    // The module may still sit in data mode behind the new port: "+++" goes first.
    expect(r.t().writes.map((w) => w.toString('latin1'))).toEqual(['+++', '\r', 'AT+CMEE?\r', 'AT\r']);
  });

  it('fails an upload in progress when the port goes away', async () => {
    const r = await rig({}, (m) => {
      m.upload = { silentAfterBlocks: 1 };
    });
    const p = upload(r.ch, 'AT+QFUPL="RAM:a",3000,60,1', Buffer.alloc(3000, 1), { timeoutMs: 5000 }).catch((e: unknown) => e);
    await until(() => r.t().writes.length >= 3);
    r.t().lose();
    expect(await p).toBeInstanceOf(ClosedError);
  });

});
