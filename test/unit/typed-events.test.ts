// The typed emitters (src/core/events.ts): a wrong event name or payload on the outbox, the driver or
// its health monitor does not compile (each `@ts-expect-error` fails `npm run lint` once it is not an
// error any more), and at run time they are plain EventEmitters.
import { describe, expect, it } from 'vitest';
import { TypedEmitter } from '../../src/core/events.js';
import type { HealthMonitor } from '../../src/modem/health.js';
import type { QuectelModem } from '../../src/modem/quectel.js';
import type { ModemApi, ModemEvents } from '../../src/modem/types.js';
import type { Outbox } from '../../src/outbox/outbox.js';

/** Compiled, never called: the checks are the compiler's. */
export function typeChecks(outbox: Outbox, modem: QuectelModem, api: ModemApi, health: HealthMonitor): void {
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
