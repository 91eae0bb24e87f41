// Byte pipes to the module: a serial device (serialport) or a raw TCP serial server (ser2net,
// `tcp://host:port`). Each instance is opened once; the channel makes a new one to reopen.
import { TypedEmitter } from '../core/events.js';
import net from 'node:net';
import { SerialPortStream } from '@serialport/stream';
import { hangupAwareBinding } from './tty-binding.js';
import type { Transport, TransportEvents } from './types.js';

/** What SerialTransport uses of serialport's stream (SerialPortStream, or SerialPortMock in tests). */
export interface SerialPortLike {
  readonly isOpen: boolean;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'close', listener: (err: Error | null) => void): unknown;
  open(callback: (err: Error | null) => void): void;
  close(callback?: (err: Error | null) => void): void;
  write(data: Buffer, callback: (err: Error | null | undefined) => void): boolean;
  drain(callback: (err: Error | null) => void): void;
}

/** Builds the port object; tests pass one over `@serialport/binding-mock` (SerialPortMock). */
export type SerialPortFactory = (opts: { path: string; baudRate: number; autoOpen: false }) => SerialPortLike;

/** serialport's stream over the native binding, minus its endless 0-byte reads (tty-binding.ts). */
const defaultSerialFactory: SerialPortFactory = (opts) => new SerialPortStream({ ...opts, binding: hangupAwareBinding() });

/**
 * Writes not yet confirmed; failed when the pipe closes so that no writer waits for ever
 * (STYLE.md: a write to a closed serial port can hang).
 */
class PendingWrites {
  private readonly rejects = new Set<(err: Error) => void>();

  track(start: (done: (err?: Error | null) => void) => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (err: Error): void => {
        if (settled) return;
        settled = true;
        this.rejects.delete(fail);
        reject(err);
      };
      this.rejects.add(fail);
      start((err) => {
        if (err) return fail(err);
        if (settled) return;
        settled = true;
        this.rejects.delete(fail);
        resolve();
      });
    });
  }

  failAll(err: Error): void {
    for (const fail of [...this.rejects]) fail(err);
  }
}

export class SerialTransport extends TypedEmitter<TransportEvents> implements Transport {
  private port: SerialPortLike | undefined;
  private closed = false;
  private lastError: Error | undefined;
  private readonly writes = new PendingWrites();

  constructor(
    private readonly path: string,
    private readonly baudRate: number,
    private readonly createPort: SerialPortFactory = defaultSerialFactory,
  ) {
    super();
  }

  get isOpen(): boolean {
    return !this.closed && (this.port?.isOpen ?? false);
  }

  get description(): string {
    return this.path;
  }

  async open(): Promise<void> {
    if (this.port) throw new Error(`${this.path}: transport already opened once; make a new one`);
    const port = this.createPort({ path: this.path, baudRate: this.baudRate, autoOpen: false });
    this.port = port;
    port.on('data', (chunk: Buffer) => this.emit('data', chunk));
    // serialport emits 'error' for failures without a callback; keep it for the close event.
    port.on('error', (err: Error) => {
      const first = this.lastError === undefined;
      this.lastError = err;
      if (first && port.isOpen) port.close();
    });
    // A device that disappears (USB re-enumeration) closes with a DisconnectedError.
    port.on('close', (err: Error | null) => this.finish(err ?? this.lastError));
    await new Promise<void>((resolve, reject) => {
      port.open((err) => (err ? reject(err) : resolve()));
    });
  }

  close(): Promise<void> {
    const port = this.port;
    if (!port || !port.isOpen) {
      this.closed = true;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      port.close(() => resolve());
    });
  }

  write(data: Buffer): Promise<void> {
    const port = this.port;
    if (!port || !this.isOpen) return Promise.reject(new Error(`${this.path} is not open`));
    return this.writes.track((done) => {
      port.write(data, (err) => {
        if (err) return done(err);
        port.drain((err2) => done(err2));
      });
    });
  }

  private finish(err: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.writes.failAll(err ?? new Error(`${this.path} closed`));
    this.emit('close', err);
  }
}

/** `tcp://host:port` to a raw TCP serial server. */
export class TcpTransport extends TypedEmitter<TransportEvents> implements Transport {
  private socket: net.Socket | undefined;
  private opened = false;
  private closed = false;
  private lastError: Error | undefined;
  private readonly writes = new PendingWrites();
  readonly host: string;
  readonly port: number;

  constructor(readonly url: string) {
    super();
    const parsed = parseTcpUrl(url);
    this.host = parsed.host;
    this.port = parsed.port;
  }

  get isOpen(): boolean {
    return this.opened && !this.closed && this.socket !== undefined && !this.socket.destroyed;
  }

  get description(): string {
    return this.url;
  }

  open(): Promise<void> {
    if (this.socket) return Promise.reject(new Error(`${this.url}: transport already opened once; make a new one`));
    const socket = new net.Socket();
    this.socket = socket;
    return new Promise<void>((resolve, reject) => {
      const onConnectError = (err: Error): void => {
        socket.destroy();
        this.closed = true;
        reject(err);
      };
      socket.once('error', onConnectError);
      socket.connect(this.port, this.host, () => {
        socket.off('error', onConnectError);
        socket.setNoDelay(true);
        this.opened = true;
        socket.on('data', (chunk: Buffer) => this.emit('data', chunk));
        socket.on('error', (err: Error) => {
          this.lastError = err;
        });
        // The server ending the connection or resetting it both mean the module is gone.
        socket.on('end', () => socket.destroy());
        socket.on('close', () => this.finish(this.lastError));
        resolve();
      });
    });
  }

  close(): Promise<void> {
    const socket = this.socket;
    if (!socket || socket.destroyed) {
      this.closed = true;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.destroy();
    });
  }

  write(data: Buffer): Promise<void> {
    const socket = this.socket;
    if (!socket || !this.isOpen) return Promise.reject(new Error(`${this.url} is not open`));
    return this.writes.track((done) => {
      socket.write(data, (err) => done(err));
    });
  }

  private finish(err: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.writes.failAll(err ?? new Error(`${this.url} closed`));
    this.emit('close', err);
  }
}

/** Parses `tcp://host:port` (IPv6 hosts in brackets). */
export function parseTcpUrl(url: string): { host: string; port: number } {
  const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d+)\/?$/.exec(url);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`invalid TCP port address "${url}": expected tcp://host:port`);
  }
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}

/** A transport for `modem.port`: `tcp://host:port` or a serial device path. */
export function createTransport(port: string, baudRate: number): Transport {
  return port.startsWith('tcp://') ? new TcpTransport(port) : new SerialTransport(port, baudRate);
}
