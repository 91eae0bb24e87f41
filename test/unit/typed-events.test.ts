// The typed emitters (src/core/events.ts): a wrong event name or payload on the outbox, the driver,
// its health monitor, the AT channel, a transport, the sender, the daemon's context for the front
// doors or the D-Bus door does not compile (each `@ts-expect-error` fails `npm run lint` once it is
// not an error any more), and at run time they are plain EventEmitters.
import { describe, expect, it } from 'vitest';
import type { DbusService } from '../../src/api/dbus/service.js';
import type { ContextListeners } from '../../src/api/listeners.js';
import type { FrontDoorContext } from '../../src/api/types.js';
import type { AtChannel } from '../../src/at/channel.js';
import type { AtCommander, Transport } from '../../src/at/types.js';
import { TypedEmitter } from '../../src/core/events.js';
import type { HealthMonitor } from '../../src/modem/health.js';
import type { QuectelModem } from '../../src/modem/quectel.js';
import type { Daemon } from '../../src/daemon/daemon.js';
import type { ModemApi, ModemEvents } from '../../src/modem/types.js';
import type { Outbox } from '../../src/outbox/outbox.js';
import type { Sender } from '../../src/sender/sender.js';

/** Compiled, never called: the checks are the compiler's. */
export function typeChecks(outbox: Outbox, modem: QuectelModem, api: ModemApi, health: HealthMonitor, ch: AtChannel, at: AtCommander, t: Transport): void {
  outbox.on('changed', (rec) => rec.status);
  // @ts-expect-error: the outbox has no 'change' event
  outbox.on('change', () => undefined);
  // @ts-expect-error: 'removed' carries the id, not a record
  outbox.on('removed', (rec: { status: string }) => rec.status);
  modem.on('status', (s) => s.state);
  // @ts-expect-error: 'rebooted' carries nothing
  modem.emit('rebooted', 1);
  // @ts-expect-error: the driver has no 'reboot' event
  api.on('reboot', () => undefined);
  // @ts-expect-error: 'pdpDeactivated' carries the context id
  health.emit('pdpDeactivated', 'ctx');
  ch.on('disconnected', (err) => err?.message);
  // @ts-expect-error: the channel has no 'connect' event
  ch.once('connect', () => undefined);
  // @ts-expect-error: 'unsolicited' carries the line, a string
  ch.emit('unsolicited', Buffer.from('RING'));
  at.on('unsolicited', (line) => line.trim());
  // @ts-expect-error: what the driver sees of the channel has no 'urc' event (URCs are registered by prefix)
  at.on('urc', () => undefined);
  t.on('data', (chunk) => chunk.length);
  // @ts-expect-error: 'data' carries a Buffer
  t.on('data', (chunk: string) => chunk.length);
  // @ts-expect-error: a transport has no 'error' event (a failure closes it, with the reason)
  t.on('error', () => undefined);
}

/** Compiled, never called: the daemon's context, what the doors see of it, their listeners, the D-Bus door, the sender. */
export function doorTypeChecks(daemon: Daemon, ctx: FrontDoorContext, listeners: ContextListeners, dbus: DbusService, sender: Sender): void {
  daemon.on('added', (rec) => rec.status);
  // @ts-expect-error: 'removed' carries the id, not a record
  daemon.emit('removed', { id: 'm1' });
  // @ts-expect-error: the daemon has no 'status' event (the modem's is relayed as 'modemStatus')
  daemon.emit('status', { state: 'ready' });
  ctx.on('received', (rec) => rec.status);
  // @ts-expect-error: 'modemStatus' carries a ModemStatus, whose state is a string
  ctx.on('modemStatus', (s: { state: number }) => s.state);
  /* eslint-disable @typescript-eslint/no-unsafe-call -- the call that must not compile */
  // @ts-expect-error: a door only listens; it does not emit on the daemon's context
  ctx.emit('added', daemon.list()[0]);
  /* eslint-enable @typescript-eslint/no-unsafe-call */
  listeners.on('deliveryReport', (e) => e.recipient);
  // @ts-expect-error: the context has no 'delivery' event
  listeners.on('delivery', () => undefined);
  dbus.on('busError', (err) => err.message);
  // @ts-expect-error: the D-Bus door has no 'error' event (a lost bus is 'busError')
  dbus.on('error', () => undefined);
  // @ts-expect-error: 'busError' carries an Error
  dbus.emit('busError', 'closed');
  sender.on('result', (r) => r.outcome);
  // @ts-expect-error: the sender has no 'results' event (Node's EventEmitter<T> took any name)
  sender.on('results', () => undefined);
}

describe('TypedEmitter', () => {
  it('delivers the payload of a named event to its listeners, and stops after off()', () => {
    const e = new TypedEmitter<ModemEvents>();
    const got: number[] = [];
    const fn = (ctx: number): void => void got.push(ctx);
    e.on('pdpDeactivated', fn);
    e.emit('pdpDeactivated', 3);
    e.off('pdpDeactivated', fn);
    e.emit('pdpDeactivated', 4);
    expect(got).toEqual([3]);
    expect(e.listenerCount('pdpDeactivated')).toBe(0);
  });
});
