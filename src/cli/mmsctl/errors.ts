// mmsctl: an error from the bus or mmsd → a line on stderr and an exit code (docs/dbus.md).
import dbus from 'dbus-next';
import { BusUnreachableError } from '../../api/dbus/bus.js';
import { BusLostError, DaemonGoneError } from '../../api/dbus/client.js';
import { ERROR_PREFIX } from '../../api/dbus/names.js';
import { EXIT, type Output } from './args.js';

/** Errors from the bus or mmsd → a line on stderr and an exit code. */
export function reportError(io: Output, err: unknown): number {
  if (err instanceof BusUnreachableError) {
    io.err(`mmsctl: ${err.message}`);
    return EXIT.unreachable;
  }
  if (err instanceof dbus.DBusError) {
    if (err.type.startsWith(ERROR_PREFIX)) {
      io.err(`mmsctl: ${err.type.slice(ERROR_PREFIX.length)}: ${err.text}`);
      return EXIT.refused;
    }
    if (err.type === 'org.freedesktop.DBus.Error.AccessDenied') {
      io.err(`mmsctl: AccessDenied: ${err.text} (sending, cancelling and listing need root or group mms; status and show do not)`);
      return EXIT.refused;
    }
    if (/\.(ServiceUnknown|NameHasNoOwner|NoReply|Disconnected|NoServer|TimedOut)$/.test(err.type)) {
      io.err(`mmsctl: cannot reach mmsd: ${err.type}: ${err.text}`);
      return EXIT.unreachable;
    }
    io.err(`mmsctl: ${err.type}: ${err.text}`);
    return EXIT.failed;
  }
  const e = err as NodeJS.ErrnoException;
  if (err instanceof BusLostError) {
    io.err(`mmsctl: lost the bus: ${err.message}${err.path === undefined ? '' : '; the message stays in the outbox (mmsctl show ID)'}`);
    return EXIT.unreachable;
  }
  if (err instanceof DaemonGoneError) {
    io.err(`mmsctl: ${e.message}; the message stays in the outbox (mmsctl show ID)`);
    return EXIT.unreachable;
  }
  if (
    (e?.code && ['ENOENT', 'ECONNREFUSED', 'EACCES', 'ECONNRESET', 'EPIPE'].includes(e.code)) ||
    /timed out|closed stream|connect/i.test(e?.message ?? '')
  ) {
    io.err(`mmsctl: cannot reach the bus: ${e.message}`);
    return EXIT.unreachable;
  }
  io.err(`mmsctl: ${e?.message ?? String(err)}`);
  return EXIT.failed;
}
