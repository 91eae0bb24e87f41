// serialport's native binding, with one change: a read of 0 bytes is the device hanging up.
//
// @serialport/bindings-cpp 13 retries a 0-byte read at once, for ever (serialport/bindings-cpp
// #162, open). A tty in non-blocking raw mode reads 0 bytes only once it is hung up: the USB
// modem was unplugged or re-enumerated, or a pty's other end went away, while a read was in
// flight. The port then never reports its loss; the daemon burns a core, its memory climbs (each
// retry is another pending promise), and it never reopens the port. Here the 0-byte read fails
// as a disconnect instead, so the stream closes with that error and the AT channel reopens.
import { read } from 'node:fs';
import { promisify } from 'node:util';
import { autoDetect, DarwinPortBinding, LinuxPortBinding, type AutoDetectTypes } from '@serialport/bindings-cpp';
import { unixRead } from '@serialport/bindings-cpp/dist/unix-read.js';

const readAsync = promisify(read);

/** The error a hung-up tty's read ends with (the stream closes with it). */
export class HangupError extends Error {
  override name = 'HangupError';
  readonly code = 'EHANGUP';
  /** What @serialport/stream looks for to treat a read error as the port going away. */
  readonly disconnect = true;
  constructor() {
    super('the device hung up (read returned 0 bytes)');
  }
}

/** fs.read for the binding's read loop: 0 bytes → HangupError instead of another read. */
export const readOrHangup = (async (fd: number, buffer: Buffer, offset: number, length: number, position: number | null) => {
  const r = await readAsync(fd, buffer, offset, length, position);
  if (r.bytesRead === 0) throw new HangupError();
  return r;
}) as typeof readAsync;

/** The platform's binding, with ports whose reads end on a hang-up (Linux and macOS). */
export function hangupAwareBinding(base: AutoDetectTypes = autoDetect()): AutoDetectTypes {
  return {
    ...base,
    async open(options: Parameters<AutoDetectTypes['open']>[0]) {
      const port = await base.open(options as never);
      if (port instanceof LinuxPortBinding || port instanceof DarwinPortBinding) {
        port.read = (buffer: Buffer, offset: number, length: number) =>
          unixRead({ binding: port, buffer, offset, length, fsReadAsync: readOrHangup });
      }
      return port;
    },
  } as AutoDetectTypes;
}
