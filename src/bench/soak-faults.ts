// The soak's faults (src/bench/soak.ts): each a thing that happens to a real router (DESIGN.md §6),
// chosen at random by weight and applied to the testbed, and the record of each one applied.
import { SPEC_CODES } from '../core/errors.js';
import type { Testbed } from '../harness/testbed.js';
import type { Mosquitto } from '../harness/mosquitto.js';
import { sleep } from './common.js';

export interface FaultRecord {
  atS: number;
  kind: string;
  detail?: unknown;
}

/** What a fault may act on besides the testbed. */
export interface FaultScene {
  broker: Mosquitto;
}

export interface Fault {
  kind: string;
  weight: number;
  run: (tb: Testbed, r: () => number, scene: FaultScene) => Promise<unknown>;
}

export const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
export const between = (r: () => number, lo: number, hi: number): number => Math.round(lo + r() * (hi - lo));

/** The faults, each a thing that happens to a real router (DESIGN.md §6). */
export const FAULTS: readonly Fault[] = [
  {
    // Every +QMMSEND error code of spec §5 over the run, sometimes two in a row (resend, re-activate).
    kind: 'qmmsend-error',
    weight: 6,
    run: async (tb, r) => {
      const n = r() < 0.3 ? 2 : 1;
      const results = Array.from({ length: n }, () => ({ err: pick(r, SPEC_CODES).code, http: 0 }));
      await tb.fault({ sendResults: results });
      return results;
    },
  },
  {
    kind: 'http-status',
    weight: 3,
    run: async (tb, r) => {
      const http = pick(r, [500, 502, 503, 404, 408, 409, 403]);
      await tb.fault({ sendResults: [{ err: 0, http }] });
      return http;
    },
  },
  {
    kind: 'mmsc-fault',
    weight: 3,
    run: async (tb, r) => {
      const f = pick(r, [{ httpStatus: 500 }, { httpStatus: 503 }, { drop: true }, { garbage: true }, { mmsStatus: 0xc1 }, { mmsStatus: 0xe2 }, { delayMs: 3000 }]);
      await tb.fault({ mmsc: { ...f, count: 1 } });
      return f;
    },
  },
  {
    kind: 'reboot',
    weight: 2,
    run: async (tb) => tb.fault({ reboot: true }),
  },
  {
    kind: 'port-loss',
    weight: 2,
    run: async (tb, r) => {
      const ms = between(r, 1000, 5000);
      await tb.fault({ portLoss: ms });
      return ms;
    },
  },
  {
    kind: 'sim-removed',
    weight: 1,
    run: async (tb, r) => {
      const ms = between(r, 3000, 10_000);
      await tb.fault({ sim: 'absent' });
      await sleep(ms);
      await tb.fault({ sim: 'ready' });
      return ms;
    },
  },
  {
    kind: 'pdp-drop',
    weight: 2,
    run: async (tb) => tb.fault({ dropPdp: 1 }),
  },
  {
    kind: 'deregistered',
    weight: 1,
    run: async (tb, r) => {
      const ms = between(r, 2000, 8000);
      await tb.fault({ registration: 0 });
      await sleep(ms);
      await tb.fault({ registration: 1 });
      return ms;
    },
  },
  {
    kind: 'garbled-or-dropped-response',
    weight: 2,
    run: async (tb, r) => {
      const f = r() < 0.5 ? { garble: 1 } : { drop: 1 };
      await tb.fault(f);
      return f;
    },
  },
  {
    // An accepted send that reports late; released before the send timeout.
    kind: 'send-held',
    weight: 1,
    run: async (tb, r) => {
      const ms = between(r, 2000, 8000);
      await tb.fault({ hold: true });
      await sleep(ms);
      await tb.fault({ hold: false });
      return ms;
    },
  },
  {
    kind: 'sigkill',
    weight: 2,
    run: async (tb, r) => {
      await tb.daemon!.stop('SIGKILL');
      const ms = between(r, 200, 3000);
      await sleep(ms);
      await tb.startDaemon();
      return ms;
    },
  },
  {
    // The broker goes away and comes back with its persistence: the daemon's session (and the
    // requests waiting in it) survives, both clients reconnect (docs/mqtt.md, "Reconnecting").
    kind: 'broker-restart',
    weight: 2,
    run: async (_tb, r, { broker }) => {
      const ms = between(r, 500, 5000);
      await broker.restart(ms);
      return ms;
    },
  },
];

