// Opening a dbus-next connection to the system or session bus and waiting until it is usable,
// shared by the service and the mmsctl client.
import dbus from 'dbus-next';

export type BusKind = 'system' | 'session';
export type MessageBus = ReturnType<typeof dbus.sessionBus>;

/**
 * A new connection: `address` if given, else the bus's environment variable
 * (DBUS_SYSTEM_BUS_ADDRESS / DBUS_SESSION_BUS_ADDRESS, read by dbus-next), else its default.
 */
export function openBus(kind: BusKind, address?: string): MessageBus {
  if (address !== undefined) return dbus.sessionBus({ busAddress: address });
  return kind === 'system' ? dbus.systemBus() : dbus.sessionBus();
}

/**
 * Resolves once the bus said Hello back; rejects on the first connection error or after
 * `timeoutMs`. dbus-next never fails a pending call when the socket fails, so every wait on the
 * bus races its 'error' event.
 */
export function whenConnected(bus: MessageBus, timeoutMs: number): Promise<void> {
  return raceBusError(
    bus,
    new Promise<void>((resolve) => {
      if ((bus as unknown as { name: string | null }).name) resolve();
      else bus.once('connect', () => resolve());
    }),
    timeoutMs,
    'connecting to the bus',
  );
}

/** `work`, unless the bus errors or `timeoutMs` passes first. */
export function raceBusError<T>(bus: MessageBus, work: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onError = (err: unknown): void => {
      done();
      reject(err instanceof Error ? err : new Error(String(err)));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${timeoutMs} ms ${what}`));
    }, timeoutMs);
    // The socket keeps a waiting process alive; the timer alone must not (a CLI that closed the
    // bus while a call was pending has to exit).
    timer.unref();
    const done = (): void => {
      clearTimeout(timer);
      bus.removeListener('error', onError);
    };
    bus.on('error', onError);
    work.then(
      (v) => {
        done();
        resolve(v);
      },
      (err: unknown) => {
        done();
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
