// Transports: TCP against a real net.Server on a free port; serial over @serialport/binding-mock.
import { once } from 'node:events';
import { nextEvent } from '../../src/harness/wait.js';
import net from 'node:net';
import { SerialPortMock } from 'serialport';
import { afterEach, describe, expect, it } from 'vitest';
import { until } from './at-fakes.js';
import { createTransport, parseTcpUrl, SerialTransport, TcpTransport } from '../../src/at/transport.js';

describe('TcpTransport', () => {
  let server: net.Server | undefined;
  afterEach(async () => {
    if (server) await new Promise<void>((r) => server!.close(() => r()));
    server = undefined;
  });

  it('carries bytes both ways and reports the server closing the connection', async () => {
    const received: Buffer[] = [];
    let peer: net.Socket | undefined;
    server = net.createServer((s) => {
      peer = s;
      s.on('data', (d: Buffer) => {
        received.push(d);
        if (Buffer.concat(received).toString() === 'AT\r') s.write('\r\nOK\r\n');
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as net.AddressInfo;
    const t = createTransport(`tcp://127.0.0.1:${port}`, 115200);
    expect(t).toBeInstanceOf(TcpTransport);
    expect(t.description).toBe(`tcp://127.0.0.1:${port}`);
    await t.open();
    expect(t.isOpen).toBe(true);
    const data = nextEvent(t, 'data');
    await t.write(Buffer.from('AT\r'));
    expect((await data)[0].toString()).toBe('\r\nOK\r\n');
    const closed = nextEvent(t, 'close');
    peer!.destroy();
    await closed;
    expect(t.isOpen).toBe(false);
    await expect(t.write(Buffer.from('AT\r'))).rejects.toThrow(/not open/);
    await expect(t.close()).resolves.toBeUndefined();
  });

  it('rejects open when nothing listens', async () => {
    server = net.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as net.AddressInfo;
    await new Promise<void>((r) => server!.close(() => r()));
    server = undefined;
    const t = new TcpTransport(`tcp://127.0.0.1:${port}`);
    await expect(t.open()).rejects.toThrow(/ECONNREFUSED/);
    expect(t.isOpen).toBe(false);
  });

  it('parses tcp:// addresses and refuses bad ones', () => {
    expect(parseTcpUrl('tcp://10.0.0.1:4001')).toEqual({ host: '10.0.0.1', port: 4001 });
    expect(parseTcpUrl('tcp://[::1]:4001')).toEqual({ host: '::1', port: 4001 });
    expect(() => parseTcpUrl('tcp://host')).toThrow(/tcp:\/\/host:port/);
    expect(() => parseTcpUrl('tcp://host:70000')).toThrow();
    expect(createTransport('/dev/ttyUSB2', 115200)).toBeInstanceOf(SerialTransport);
  });
});

describe('SerialTransport', () => {
  // serialport's own instance of @serialport/binding-mock (the ESM import would be another one).
  const MockBinding = SerialPortMock.binding;
  afterEach(() => MockBinding.reset());

  it('opens, writes, reads and reports the device disappearing', async () => {
    MockBinding.createPort('/dev/ttyMOCK0', { echo: true, record: true });
    let mock: SerialPortMock | undefined;
    const t = new SerialTransport('/dev/ttyMOCK0', 115200, (o) => (mock = new SerialPortMock(o)));
    expect(t.isOpen).toBe(false);
    await t.open();
    expect(t.isOpen).toBe(true);
    expect(mock!.baudRate).toBe(115200);
    const data = nextEvent(t, 'data');
    await t.write(Buffer.from('ATE0\r'));
    expect((await data)[0].toString()).toBe('ATE0\r');
    const binding = mock!.port as unknown as { recording: Buffer; pendingRead: ((err: Error) => void) | null };
    expect(binding.recording.toString()).toBe('ATE0\r');
    // A read failing is how serialport sees a USB device vanish: it closes with a DisconnectedError.
    await until(() => binding.pendingRead !== null);
    const closed = nextEvent(t, 'close');
    binding.pendingRead!(new Error('EIO: device gone'));
    const [err] = (await closed) as [Error | undefined];
    expect(err?.message).toContain('EIO');
    expect(t.isOpen).toBe(false);
    await expect(t.write(Buffer.from('AT\r'))).rejects.toThrow(/not open/);
  });

  it('rejects open for a missing device', async () => {
    const t = new SerialTransport('/dev/ttyMOCK9', 115200, (o) => new SerialPortMock(o));
    await expect(t.open()).rejects.toThrow(/does not exist/);
    expect(t.isOpen).toBe(false);
  });
});
